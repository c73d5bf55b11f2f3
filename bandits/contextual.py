"""Offline contextual bandits: instances, joint (s, a) ~ mu data, C*, LCB-CB, greedy, behaviour cloning (Rashidinejad et al. 2021, contextual-bandit setting).

Data model (the spec sheet's audit reading): a dataset is ``N`` i.i.d. triples
``(s_i, a_i, r_i)`` with ``(s_i, a_i) ~ mu`` drawn jointly from a distribution ``mu`` of
shape ``(S, nA)`` and ``r_i ~ Bernoulli(means[s_i, a_i])``. The policy is scored under the
context distribution ``rho``: ``J(pi) = sum_s rho(s) means[s, pi(s)]``, and the
concentrability is ``C* = max_{s: rho(s) > 0} rho(s) / mu(s, pi*(s))``. (The per-context
reading ``C* = max_s 1 / mu(pi*(s) | s)`` makes per-context behaviour cloning O(S/N) for
C* < 2, contradicting the ``sqrt(S (C* - 1) / N)`` rates; the sheet marks the joint reading
as not verified against the paper.)

Every algorithm takes the sufficient statistics ``counts (R, S, nA)`` and
``reward_sums (R, S, nA)`` of ``R`` datasets (an ``(S, nA)`` input is one dataset) and
returns one action per context. The algorithms are thin wrappers: each context of each
dataset is one row of :mod:`bandits.offline` (counts reshaped to ``(R * S, nA)``), and LCB's
union bound over the ``S * nA`` pairs is the MAB bonus at ``delta / S``, since
``log(2 nA / (delta / S)) = log(2 S nA / delta)``.

``delta`` follows :mod:`bandits.offline`: a number in (0, 1) (0, 1 and bools are rejected).
The default ``delta=None`` is the paper's ``1 / N`` per dataset, so it needs ``N >= 2``.
Reward sums must lie in ``[0, counts]`` (rewards in [0, 1]; the Hoeffding widths need it).

Conventions, as in :mod:`bandits.offline`:

- unseen action (``N[s, a] = 0``) in a seen context: scores ``-inf`` in LCB and greedy, so
  it is never preferred over a seen action of that context;
- unseen context (``N[s, :] = 0``): every method returns action 0 and sets ``unseen[s]``.
  This convention is where the sheet's audit matters: on an instance whose optimal action
  is 0 on rarely seen contexts, "action 0" is right by luck and the missing-mass error
  vanishes. :func:`missing_mass_instance` therefore puts ``pi*(s) = 1`` on rare contexts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from bandits import offline
from bandits.environments import (
    _as_array,
    _index,
    _real_array,
    _validate_count,
    _validate_distribution,
)
from bandits.environments import dataset_statistics as _cell_statistics
from bandits.offline import _empirical_means, _validate_delta
from bandits.offline import _validate_counts as _validate_offline_counts
from bandits.offline import _validate_statistics as _validate_offline_statistics
from proofs_check.messages import plain
from proofs_check.seeding import as_generator

__all__ = [
    "ContextualBandit",
    "offline_dataset",
    "dataset_statistics",
    "sample_statistics",
    "C_star",
    "ContextualChoice",
    "lcb_bonus",
    "lcb",
    "greedy",
    "most_played_arm",
    "suboptimality",
    "lcb_event_holds",
    "missing_mass_instance",
    "missing_mass_suboptimality",
    "two_action_instance",
]


# -- validation ------------------------------------------------------------------------------

_SHAPES = "(S, nA) or (R, S, nA) with S, nA >= 1"


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


def _validate_counts(counts) -> np.ndarray:
    """``counts`` of shape (S, nA) or (R, S, nA) as int64 (the checks of :mod:`bandits.offline`)."""
    return _validate_offline_counts(counts, (2, 3), _SHAPES)


def _validate_statistics(counts, reward_sums) -> tuple[np.ndarray, np.ndarray]:
    """Counts and reward sums as :mod:`bandits.offline` checks them, and sums in ``[0, counts]``.

    Rewards lie in [0, 1] (Bernoulli), so ``0 <= reward_sums <= counts``; a relative slack
    of 1e-12 above ``counts`` allows for rounding in sums of non-integer rewards.
    """
    counts, sums = _validate_offline_statistics(counts, reward_sums, (2, 3), _SHAPES, "a pair")
    bad = (sums < 0) | (sums > counts * (1 + 1e-12))
    if np.any(bad):
        i = tuple(np.argwhere(bad)[0])
        raise ValueError(f"reward_sums{_index(i)} = {plain(sums[i])} is outside [0, counts{_index(i)}] = "
                         f"[0, {int(counts[i])}] (rewards lie in [0, 1])")
    return counts, sums


def _validate_policy(pi, S: int, nA: int) -> np.ndarray:
    arr = _as_array(pi, "policy")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"policy must be integers (one action per context), got dtype {arr.dtype}")
    if arr.ndim not in (1, 2) or arr.shape[-1] != S:
        raise ValueError(f"policy must have shape (S,) or (R, S) with S = {S}, got {arr.shape}")
    bad = (arr < 0) | (arr >= nA)
    if np.any(bad):
        i = tuple(np.argwhere(bad)[0])
        raise ValueError(f"policy{_index(i)} = {plain(arr[i])} is not an action index in [0, {nA - 1}]")
    return arr.astype(np.int64)


# -- the instance ----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ContextualBandit:
    """A contextual bandit with Bernoulli rewards: context ``s ~ rho``, reward of action ``a``
    in context ``s`` is 1 with probability ``means[s, a]``, else 0.

    Source: the contextual-bandit setting of Rashidinejad et al. (2021) (spec sheet
    "Setting"): ``J(pi) = E_{s ~ rho} means[s, pi(s)]``.

    Parameters
    ----------
    rho : array_like, shape (S,)
        Context distribution: finite, non-negative, summing to 1 within ``16 * S * eps``.
    means : array_like, shape (S, nA)
        Success probabilities, finite, in [0, 1].

    Attributes
    ----------
    S, nA : int
        Numbers of contexts and actions.
    optimal_policy : ndarray, shape (S,), int64
        ``pi*(s) = argmax_a means[s, a]``, the lowest index among the maxima.
    gaps : ndarray, shape (S, nA), float64
        ``max_b means[s, b] - means[s, a]``.
    optimal_value : float
        ``J(pi*)``.

    Raises
    ------
    TypeError
        If ``rho`` or ``means`` is not numeric.
    ValueError
        If ``means`` is not 2-d and non-empty or an entry is not finite or outside [0, 1],
        or ``rho`` has the wrong shape, a negative or non-finite entry or does not sum to 1
        (each message names the entry).
    """

    rho: np.ndarray
    means: np.ndarray

    def __post_init__(self):
        means = _real_array(self.means, "ContextualBandit: means").astype(np.float64)
        if means.ndim != 2 or min(means.shape) < 1:
            raise ValueError(f"ContextualBandit: means must have shape (S, nA) with S, nA >= 1, got {means.shape}")
        bad = ~np.isfinite(means) | (means < 0) | (means > 1)
        if np.any(bad):
            i = tuple(np.argwhere(bad)[0])
            why = "is not finite" if not np.isfinite(means[i]) else "is outside [0, 1]"
            raise ValueError(f"ContextualBandit: means{_index(i)} = {plain(means[i])} {why}")
        rho = _validate_distribution(self.rho, "rho", (means.shape[0],), "(one entry per context of means)")
        object.__setattr__(self, "means", _readonly(means))
        object.__setattr__(self, "rho", _readonly(rho))

    @property
    def S(self) -> int:
        """Number of contexts."""
        return int(self.means.shape[0])

    @property
    def nA(self) -> int:
        """Number of actions."""
        return int(self.means.shape[1])

    @property
    def optimal_policy(self) -> np.ndarray:
        """``(S,)`` int64 ``pi*(s)``, the lowest-index maximiser of ``means[s]``."""
        return np.argmax(self.means, axis=1).astype(np.int64)

    @property
    def gaps(self) -> np.ndarray:
        """``(S, nA)`` float64 sub-optimality gaps per context (>= 0)."""
        return self.means.max(axis=1, keepdims=True) - self.means

    @property
    def optimal_value(self) -> float:
        """``J(pi*) = sum_s rho(s) max_a means[s, a]``."""
        return float(self.rho @ self.means.max(axis=1))

    def value(self, pi) -> np.ndarray | float:
        """``J(pi) = sum_s rho(s) means[s, pi(s)]`` of deterministic policies.

        Parameters
        ----------
        pi : array_like of int, shape (S,) or (R, S)

        Returns
        -------
        float, or ndarray of shape (R,) float64

        Raises
        ------
        TypeError, ValueError
            If ``pi`` is not integer, has the wrong shape or an action out of range.
        """
        pi = _validate_policy(pi, self.S, self.nA)
        J = self.means[np.arange(self.S), pi] @ self.rho
        return float(J) if pi.ndim == 1 else J


def _check_bandit(bandit) -> None:
    if not isinstance(bandit, ContextualBandit):
        raise TypeError(f"bandit must be a ContextualBandit, got {type(bandit).__name__}")


def _validate_mu(mu, bandit: ContextualBandit) -> np.ndarray:
    return _validate_distribution(mu, "mu", (bandit.S, bandit.nA), "(S, nA), to match the bandit")


# -- data ------------------------------------------------------------------------------------


def offline_dataset(bandit, mu, N: int, *, seed=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``N`` i.i.d. triples ``(s_i, a_i, r_i)`` with ``(s_i, a_i) ~ mu`` jointly.

    Source: the contextual-bandit data model of Rashidinejad et al. (2021) in the spec
    sheet's audit reading (joint ``mu`` on ``S x A``).

    Parameters
    ----------
    bandit : ContextualBandit
    mu : array_like, shape (S, nA)
        Joint behaviour distribution over (context, action) pairs: finite, non-negative,
        summing to 1 within ``16 * S * nA * eps``. Its context marginal need not equal
        ``bandit.rho`` (``C_star`` measures the mismatch).
    N : int
        Number of samples, in ``[0, MAX_COUNT]``.
    seed : int, SeedSequence, Generator or None

    Returns
    -------
    contexts, actions : ndarray, shape (N,), int64
    rewards : ndarray, shape (N,), float64
        In {0.0, 1.0}.

    Raises
    ------
    TypeError
        If ``bandit`` is not a :class:`ContextualBandit` or ``N`` not an int.
    ValueError
        If ``mu`` has the wrong shape, a negative or non-finite entry (named) or does not
        sum to 1, or ``N`` is out of range.
    """
    _check_bandit(bandit)
    mu = _validate_mu(mu, bandit)
    N = _validate_count(N, "N", 0, capped=True)
    rng = as_generator(seed)
    cells = rng.choice(mu.size, size=N, p=mu.ravel()).astype(np.int64)
    contexts, actions = np.divmod(cells, bandit.nA)
    rewards = (rng.random(N) < bandit.means[contexts, actions]).astype(np.float64)
    return contexts, actions, rewards


def dataset_statistics(contexts, actions, rewards, S: int, nA: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts ``N[s, a]`` and reward sums of one dataset or of a batch of datasets.

    Parameters
    ----------
    contexts, actions : array_like of int, shape (N,) or (R, N)
        Context indices in ``[0, S)`` and action indices in ``[0, nA)``; a 2-d input holds
        ``R`` datasets, one per row. Empty datasets are valid (all counts 0).
    rewards : array_like of float, same shape
        Finite rewards.
    S, nA : int
        Numbers of contexts and actions, >= 1.

    Returns
    -------
    counts : ndarray, int64, shape (S, nA) or (R, S, nA)
    reward_sums : ndarray, float64, same shape

    Raises
    ------
    TypeError
        If an index array is not integer or ``rewards`` not numeric.
    ValueError
        If the shapes differ or are not 1-d/2-d, a context or action is out of range (the
        message names the entry), or a reward is not finite.
    """
    S = _validate_count(S, "S", 1)
    nA = _validate_count(nA, "nA", 1)
    index = {}
    for name, values, size in (("contexts", contexts, S), ("actions", actions, nA)):
        arr = _as_array(values, name)
        if arr.dtype.kind not in "iu":
            raise TypeError(f"{name} must be integers, got dtype {arr.dtype}")
        if arr.ndim not in (1, 2):
            raise ValueError(f"{name} must have shape (N,) or (R, N), got {arr.shape}")
        bad = (arr < 0) | (arr >= size)
        if np.any(bad):
            i = tuple(np.argwhere(bad)[0])
            raise ValueError(f"{name}{_index(i)} = {plain(arr[i])} is out of range [0, {size - 1}]")
        index[name] = arr.astype(np.int64)
    if index["contexts"].shape != index["actions"].shape:
        raise ValueError(f"contexts {index['contexts'].shape} and actions {index['actions'].shape} "
                         "must share one shape")
    rewards = _real_array(rewards, "rewards")
    if rewards.shape != index["contexts"].shape:
        raise ValueError(f"rewards {rewards.shape} must have the shape of contexts {index['contexts'].shape}")
    cells = index["contexts"] * nA + index["actions"]
    counts, sums = _cell_statistics(cells, rewards, S * nA)
    return counts.reshape(counts.shape[:-1] + (S, nA)), sums.reshape(sums.shape[:-1] + (S, nA))


def sample_statistics(bandit, mu, N: int, R: int, *, seed=None) -> tuple[np.ndarray, np.ndarray]:
    """Draw the counts and reward sums of ``R`` independent datasets of size ``N``.

    Same law as ``dataset_statistics(*offline_dataset(bandit, mu, N), S, nA)`` repeated
    ``R`` times, without materialising the datasets: ``counts[r] ~ Multinomial(N, mu)``
    over the ``S * nA`` cells, ``reward_sums[r, s, a] ~ Binomial(counts[r, s, a], means[s, a])``.

    Parameters
    ----------
    bandit : ContextualBandit
    mu : array_like, shape (S, nA)
        Joint behaviour distribution (validated as in :func:`offline_dataset`).
    N : int
        Dataset size, in ``[0, MAX_COUNT]``.
    R : int
        Number of repetitions, >= 1.
    seed : int, SeedSequence, Generator or None

    Returns
    -------
    counts : ndarray, shape (R, S, nA), int64
    reward_sums : ndarray, shape (R, S, nA), float64

    Raises
    ------
    TypeError, ValueError
        As :func:`offline_dataset`; also if ``R < 1``.
    """
    _check_bandit(bandit)
    mu = _validate_mu(mu, bandit)
    N = _validate_count(N, "N", 0, capped=True)
    R = _validate_count(R, "R", 1)
    rng = as_generator(seed)
    counts = rng.multinomial(N, mu.ravel(), size=R).astype(np.int64).reshape(R, bandit.S, bandit.nA)
    sums = rng.binomial(counts, bandit.means).astype(np.float64)
    return counts, sums


def C_star(mu, bandit, pi_star=None) -> float:
    """Single-policy concentrability ``C* = max_{s: rho(s) > 0} rho(s) / mu(s, pi*(s))``.

    Source: Rashidinejad et al. (2021), contextual bandits, with ``(s, a) ~ mu`` jointly
    (the spec sheet's audit reading, not verified against the paper). ``C* >= 1`` because
    ``sum_s mu(s, pi*(s)) <= 1 = sum_s rho(s)``; ``C* = 1`` for expert data
    ``mu(s, a) = rho(s) 1{a = pi*(s)}``.

    Parameters
    ----------
    mu : array_like, shape (S, nA)
        Joint behaviour distribution (validated as in :func:`offline_dataset`).
    bandit : ContextualBandit
    pi_star : array_like of int, shape (S,), optional
        The comparator policy; default ``bandit.optimal_policy`` (lowest-index maximisers).

    Returns
    -------
    float
        ``inf`` if ``mu(s, pi*(s)) = 0`` for some context with ``rho(s) > 0``.

    Raises
    ------
    TypeError, ValueError
        If ``bandit`` is not a :class:`ContextualBandit`, ``mu`` is invalid, or ``pi_star``
        is not an ``(S,)`` array of actions.
    """
    _check_bandit(bandit)
    mu = _validate_mu(mu, bandit)
    pi = bandit.optimal_policy if pi_star is None else _validate_policy(pi_star, bandit.S, bandit.nA)
    if pi.ndim != 1:
        raise ValueError(f"pi_star must have shape ({bandit.S},), got {pi.shape}")
    covered = mu[np.arange(bandit.S), pi]
    active = bandit.rho > 0
    if np.any(covered[active] == 0):
        return float("inf")
    with np.errstate(over="ignore"):  # a subnormal mu(s, pi*(s)) gives C* = inf, as it should
        return float(np.max(bandit.rho[active] / covered[active]))


# -- algorithms ------------------------------------------------------------------------------


class ContextualChoice(NamedTuple):
    """The policy an offline method returns, per repetition.

    Attributes
    ----------
    policy : ndarray, shape (R, S) or (S,), int64
        The chosen action in each context.
    unseen : ndarray, same shape, bool
        True where the context never appeared in the data; its action is 0 by convention.
    """

    policy: np.ndarray
    unseen: np.ndarray


def _delta_groups(batch: np.ndarray, delta, bonus_scale, batched: bool) -> list:
    """``[(datasets, delta)]``: which rows of ``batch (R, S, nA)`` use which ``delta``.

    A given ``delta`` serves every dataset; ``None`` means ``1 / N`` per dataset, one group
    per distinct dataset size ``N`` (a batch from :func:`sample_statistics` is one group).
    """
    if delta is not None:
        _validate_delta(delta, bonus_scale)
        return [(np.arange(batch.shape[0]), delta)]
    N = batch.sum(axis=(1, 2), dtype=np.float64)  # float: no int64 overflow near MAX_COUNT
    for bad, why in ((N == 0, "is empty (all counts 0): the default delta = 1/N is undefined"),
                     (N == 1, "has N = 1: the default delta = 1/N = 1 is outside (0, 1)")):
        if np.any(bad):
            where = f"[{int(np.flatnonzero(bad)[0])}]" if batched else ""
            raise ValueError(f"dataset{where} {why}; pass delta explicitly")
    return [(np.flatnonzero(N == n), 1.0 / n) for n in np.unique(N)]


def _context_rows(counts: np.ndarray, *arrays):
    """``(R, S, nA)`` or ``(S, nA)`` arrays as ``(R * S, nA)``: one :mod:`bandits.offline`
    dataset (row) per context of each dataset."""
    return tuple(a.reshape(-1, counts.shape[-1]) for a in (counts,) + arrays)


def _as_choice(choice: offline.Choice, counts: np.ndarray) -> ContextualChoice:
    """Per-row choices of :mod:`bandits.offline` back in the shape ``counts.shape[:-1]``."""
    shape = counts.shape[:-1]
    return ContextualChoice(np.reshape(choice.arms, shape), np.reshape(choice.nothing_seen, shape))


def lcb_bonus(counts, delta=None, bonus_scale: float = 1.0) -> np.ndarray:
    """Hoeffding widths with a union bound over all ``S * nA`` pairs.

    ``b[s, a] = bonus_scale * sqrt(log(2 S nA / delta) / (2 N[s, a]))`` for ``N[s, a] >= 1``,
    ``inf`` for unseen pairs (Rashidinejad et al. 2021, LCB for contextual bandits, as
    recalled in the spec sheet). With ``bonus_scale = 1`` and rewards in [0, 1], Hoeffding
    at level ``delta / (S nA)`` per pair gives ``|rhat - r| <= b`` on all seen pairs with
    probability at least ``1 - delta``. Computed as :func:`bandits.offline.lcb_bonus` on
    the ``R * S`` rows of ``counts`` with ``delta / S``
    (``log(2 nA / (delta / S)) = log(2 S nA / delta)``).

    Parameters
    ----------
    counts : array_like of int, shape (S, nA) or (R, S, nA)
    delta : float in (0, 1), or None
        Failure probability, in (0, 1) as in :mod:`bandits.offline` (a bool is rejected).
        None means ``1 / N`` per dataset (the paper's choice), which needs ``N >= 2``.
    bonus_scale : float, default 1.0
        Multiplier of the width, finite and > 0.

    Returns
    -------
    ndarray, float64, same shape as ``counts``

    Raises
    ------
    TypeError, ValueError
        On non-integer, negative or too large counts, ``delta`` outside (0, 1),
        ``bonus_scale`` not finite and positive, or, with ``delta=None``, a dataset with
        ``N = 0`` or ``N = 1`` (the message names it).
    """
    counts = _validate_counts(counts)
    batch = counts.reshape((-1,) + counts.shape[-2:])
    S, nA = batch.shape[1:]
    b = np.empty(batch.shape)
    for rows, d in _delta_groups(batch, delta, bonus_scale, counts.ndim == 3):
        b[rows] = offline.lcb_bonus(batch[rows].reshape(-1, nA), nA, d / S, bonus_scale).reshape(-1, S, nA)
    return b.reshape(counts.shape)


def lcb(counts, reward_sums, delta=None, *, bonus_scale: float = 1.0) -> ContextualChoice:
    """LCB for offline contextual bandits: ``pi_hat(s) = argmax_a rhat[s, a] - b[s, a]``.

    Source: Rashidinejad et al. (2021), LCB for contextual bandits (spec sheet, [R]), with
    the widths of :func:`lcb_bonus`. It is :func:`bandits.offline.lcb` run on each context
    (the ``R * S`` rows of ``counts``) with ``delta / S``, so unseen pairs score ``-inf``
    and unseen contexts get action 0 (module docstring); ties go to the lowest index.

    Parameters
    ----------
    counts : array_like of int, shape (S, nA) or (R, S, nA)
    reward_sums : array_like of float, same shape
        In ``[0, counts]`` (rewards in [0, 1]); 0 where the count is 0.
    delta : float in (0, 1), or None
        None (default) uses ``1 / N`` per dataset, ``N = counts.sum()``, which needs ``N >= 2``.
    bonus_scale : float, default 1.0
        Multiplier of the width (1 is the paper's; other values plant errors).

    Returns
    -------
    ContextualChoice
        ``policy`` and ``unseen`` of shape (R, S) (or (S,)).

    Raises
    ------
    TypeError, ValueError
        On bad counts or sums (named entry, including a sum outside ``[0, counts]``),
        mismatched shapes, ``delta``/``bonus_scale`` out of range, or, with ``delta=None``,
        a dataset with ``N < 2``.
    """
    counts, sums = _validate_statistics(counts, reward_sums)
    batch, batch_sums = (a.reshape((-1,) + counts.shape[-2:]) for a in (counts, sums))
    S = batch.shape[1]
    policy, unseen = np.empty(batch.shape[:2], np.int64), np.empty(batch.shape[:2], bool)
    for rows, d in _delta_groups(batch, delta, bonus_scale, counts.ndim == 3):
        choice = offline.lcb(*_context_rows(batch[rows], batch_sums[rows]), d / S, bonus_scale=bonus_scale)
        policy[rows], unseen[rows] = choice.arms.reshape(-1, S), choice.nothing_seen.reshape(-1, S)
    return ContextualChoice(policy.reshape(counts.shape[:-1]), unseen.reshape(counts.shape[:-1]))


def greedy(counts, reward_sums) -> ContextualChoice:
    """Greedy per context: ``argmax_a rhat[s, a]`` over seen actions (baseline of
    Rashidinejad et al. 2021): :func:`bandits.offline.greedy` on each context. Shapes,
    conventions and errors as :func:`lcb`."""
    counts, sums = _validate_statistics(counts, reward_sums)
    return _as_choice(offline.greedy(*_context_rows(counts, sums)), counts)


def most_played_arm(counts) -> ContextualChoice:
    """Behaviour cloning per context: ``argmax_a N[s, a]`` (ties to the lowest index).

    Baseline of Rashidinejad et al. (2021): :func:`bandits.offline.most_played_arm` on each
    context. Unseen contexts get action 0.

    Parameters
    ----------
    counts : array_like of int, shape (S, nA) or (R, S, nA)

    Returns
    -------
    ContextualChoice

    Raises
    ------
    TypeError, ValueError
        On non-integer, negative or too large counts, or a wrong number of dimensions.
    """
    counts = _validate_counts(counts)
    return _as_choice(offline.most_played_arm(*_context_rows(counts)), counts)


def suboptimality(bandit, policy) -> np.ndarray | float:
    """Exact sub-optimality ``J(pi*) - J(pi) = sum_s rho(s) (max_a means[s, a] - means[s, pi(s)])``.

    Source: the metric of Rashidinejad et al. (2021); its mean over datasets is
    ``E[J(pi*) - J(pi_hat)]``.

    Parameters
    ----------
    bandit : ContextualBandit
    policy : array_like of int, shape (S,) or (R, S)
        E.g. ``lcb(...).policy``.

    Returns
    -------
    float, or ndarray of shape (R,) float64; non-negative.

    Raises
    ------
    TypeError, ValueError
        If ``bandit`` is not a :class:`ContextualBandit` or ``policy`` is invalid.
    """
    _check_bandit(bandit)
    pi = _validate_policy(policy, bandit.S, bandit.nA)
    gap = bandit.gaps[np.arange(bandit.S), pi] @ bandit.rho
    return float(gap) if pi.ndim == 1 else gap


def lcb_event_holds(counts, reward_sums, bandit, delta=None, bonus_scale: float = 1.0):
    """The concentration event of LCB-CB: ``|rhat[s, a] - means[s, a]| <= b[s, a]`` on every seen pair.

    Source: the LCB analysis of Rashidinejad et al. (2021) (Hoeffding with a union bound
    over ``S * nA`` pairs, :func:`lcb_bonus`); it holds with probability >= ``1 - delta``.

    Parameters
    ----------
    counts, reward_sums : array_like, shape (S, nA) or (R, S, nA)
    bandit : ContextualBandit
        Supplies the true ``means``; its shape must match the counts.
    delta, bonus_scale : as :func:`lcb_bonus`

    Returns
    -------
    bool, or ndarray of shape (R,) bool

    Raises
    ------
    TypeError, ValueError
        As :func:`lcb`, and if the counts do not have the bandit's shape ``(S, nA)``.
    """
    _check_bandit(bandit)
    counts, sums = _validate_statistics(counts, reward_sums)
    if counts.shape[-2:] != bandit.means.shape:
        raise ValueError(f"counts end in shape {counts.shape[-2:]}, the bandit has (S, nA) = {bandit.means.shape}")
    b = lcb_bonus(counts, delta, bonus_scale)
    inside = (counts == 0) | (np.abs(_empirical_means(counts, sums) - bandit.means) <= b)
    holds = inside.all(axis=(-2, -1))
    return bool(holds) if holds.ndim == 0 else holds


# -- hard instances --------------------------------------------------------------------------


def _instance_size(S, N):
    S = _validate_count(S, "S", 2)
    N = _validate_count(N, "N", 1, capped=True)
    if N < S:
        raise ValueError(f"the missing-mass instance needs N >= S (context 0 keeps mass 1 - (S - 1)/N > 0), got N = {N}, S = {S}")
    return S, N


def missing_mass_instance(S: int, N: int, *, rare_action: int = 1) -> tuple[ContextualBandit, np.ndarray]:
    """The C* = 1 hard instance (missing mass) for a dataset of size ``N``.

    Source: the spec sheet's lower-bound instance for contextual bandits with C* = 1
    (derived). ``S - 1`` rare contexts ``s = 1..S-1`` with ``rho(s) = 1/N`` each, context 0
    with the rest; two actions; reward 1 for ``pi*(s)`` and 0 otherwise (deterministic
    Bernoulli means), with ``pi*(0) = 0`` and ``pi*(s) = rare_action`` on rare contexts.
    Expert data: ``mu(s, a) = rho(s) 1{a = pi*(s)}``, so ``C* = 1``.

    Parameters
    ----------
    S : int
        Number of contexts, >= 2.
    N : int
        The dataset size the instance is built for, ``N >= S``.
    rare_action : {1, 0}, default 1
        ``pi*`` on rare contexts. Keep 1: then the unseen-context convention (action 0) is
        wrong there, as the lower bound needs (the sheet's audit). 0 reproduces the audit's
        pitfall (unseen contexts are right by luck, the error is 0) and serves as a
        planted error.

    Returns
    -------
    bandit : ContextualBandit
    mu : ndarray, shape (S, 2), float64

    Raises
    ------
    TypeError, ValueError
        If ``S < 2``, ``N < S``, either is not an int, or ``rare_action`` is not 0 or 1.
    """
    S, N = _instance_size(S, N)
    if isinstance(rare_action, (bool, np.bool_)) or rare_action not in (0, 1):
        raise ValueError(f"rare_action must be 0 or 1, got {plain(rare_action)}")
    rho = np.full(S, 1.0 / N)
    rho[0] = 1.0 - (S - 1) / N
    pi_star = np.full(S, int(rare_action), dtype=np.int64)
    pi_star[0] = 0
    means = np.zeros((S, 2))
    means[np.arange(S), pi_star] = 1.0
    mu = means * rho[:, None]
    return ContextualBandit(rho, means), mu


def missing_mass_suboptimality(S: int, N: int) -> float:
    """Exact ``E[J(pi*) - J(pi_hat)]`` on :func:`missing_mass_instance` (``rare_action = 1``)
    for LCB, greedy and behaviour cloning: ``(S - 1) (1/N) (1 - 1/N)^N``, about ``(S - 1) / (e N)``.

    Derivation (spec sheet, [D]): with expert data only ``pi*(s)`` is ever seen in context
    ``s``, so each method returns ``pi*(s)`` on every seen context (an unseen action never
    beats a seen one) and action 0 on unseen ones. Context 0 has ``pi*(0) = 0``: no error.
    A rare context is unseen with probability ``(1 - 1/N)^N`` (each of the N samples misses
    it with probability ``1 - mu(s, pi*(s)) = 1 - 1/N``) and then costs
    ``rho(s) * gap = (1/N) * 1``. Summing over the ``S - 1`` rare contexts gives the formula.

    Raises
    ------
    TypeError, ValueError
        As :func:`missing_mass_instance`.
    """
    S, N = _instance_size(S, N)
    return float((S - 1) / N * np.exp(N * np.log1p(-1.0 / N)))


def two_action_instance(S: int, C_star_value: float, gap: float) -> tuple[ContextualBandit, np.ndarray]:
    """The C* > 1 hard instance: the two-armed MAB instance in each of ``S`` uniform contexts.

    Source: the spec sheet's lower-bound heuristic for contextual bandits with C* > 1
    (not verified): ``rho(s) = 1/S``; in every context action 1 is Bernoulli(1/2 + gap)
    (optimal) and action 0 Bernoulli(1/2); ``mu(s, a*) = (1/S)(1/C*)`` and
    ``mu(s, 0) = (1/S)(1 - 1/C*)``, so ``C* = max_s rho(s) / mu(s, pi*(s))`` equals
    ``C_star_value``. The optimal action is 1, not 0, so neither the unseen-context
    convention nor ties (lowest index) favour it.

    Parameters
    ----------
    S : int
        Number of contexts, >= 1.
    C_star_value : float
        Concentrability, >= 1.
    gap : float
        Per-context gap, in (0, 1/2].

    Returns
    -------
    bandit : ContextualBandit
    mu : ndarray, shape (S, 2), float64

    Raises
    ------
    ValueError
        If ``S < 1``, ``C_star_value < 1`` or ``gap`` is outside (0, 1/2].
    """
    S = _validate_count(S, "S", 1)
    if not (isinstance(C_star_value, (int, float, np.integer, np.floating)) and 1 <= C_star_value < np.inf):
        raise ValueError(f"C_star_value must be a finite number >= 1, got {plain(C_star_value)}")
    if not (isinstance(gap, (int, float, np.integer, np.floating)) and 0 < gap <= 0.5):
        raise ValueError(f"gap must be a number in (0, 1/2], got {plain(gap)}")
    means = np.tile([0.5, 0.5 + float(gap)], (S, 1))
    mu = np.tile([1.0 - 1.0 / C_star_value, 1.0 / C_star_value], (S, 1)) / S
    return ContextualBandit(np.full(S, 1.0 / S), means), mu
