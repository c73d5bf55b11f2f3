"""Learning from mixed offline data: trajectory weighting (Hong et al. 2023), demonstration-regularised RL (Tiapkin et al. 2024), RCSL and MBRCSL stitching (Zhou et al. 2024).

Three families, each a few small functions over arrays:

- Trajectory weighting: return-weighted (RW) and advantage-weighted (AW) sampling
  probabilities over the trajectories of a dataset, seeded resampling, behaviour cloning on
  the resampled trajectories, and the return positive-sided variance (RPSV).
- Demonstration-regularised RL: finite-horizon soft value iteration with a KL penalty
  towards a prior policy (a smoothed behaviour-cloning policy), on a given model.
- Return-conditioned supervised learning (RCSL) on tabular data with two documented
  test-time acting rules (:data:`RCSL_RULES`: the target clipped into the data's support at
  each state, or not clipped), its exact evaluation, and MBRCSL (roll out the cloned
  behaviour in the empirical model, keep the rollouts that beat the dataset, train RCSL on
  them), with the stitching graph of the spec sheet.

Datasets are :class:`tabular.sampling.Episodes`, read by the shared validator
:func:`tabular.sampling._read_episodes`; returns are undiscounted sums of rewards.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from proofs_check.messages import plain
from proofs_check.seeding import as_generator
from tabular.mdp import TabularMDP, _read_int, _read_positive, _require_mdp, validate_policy
from tabular.offline import behaviour_cloning, empirical_model
from tabular.sampling import (
    Episodes,
    _read_episodes,
    episodes_to_transitions,
    sample_episodes,
    transition_statistics,
)

__all__ = [
    "trajectory_returns",
    "normalize_returns",
    "return_weights",
    "advantage_weights",
    "rpsv",
    "resample_trajectories",
    "state_action_counts",
    "resampled_behaviour_cloning",
    "SoftVIResult",
    "kl_regularized_vi",
    "regularized_value",
    "demonstration_regularized_policy",
    "RCSLPolicy",
    "RCSLEvaluation",
    "RCSL_RULES",
    "fit_rcsl",
    "rcsl_action_probabilities",
    "evaluate_rcsl",
    "MBRCSLResult",
    "mbrcsl",
    "STITCH_STATES",
    "stitching_mdp",
    "stitching_dataset",
]


# --- input checks -------------------------------------------------------------------------


def _read_returns(G, name: str = "G") -> np.ndarray:
    arr = np.asarray(G)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must have shape (n,) with n >= 1, got {arr.shape}")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}[{i}] = {plain(arr[i])} is not finite")
    return arr


# --- trajectory weighting (Hong, Agrawal, Tachet des Combes, Laroche, ICLR 2023) -------------


def trajectory_returns(episodes: Episodes) -> np.ndarray:
    """Undiscounted returns ``G_i = sum_h r_{i,h}``, float64 (n,), in reward units.

    Raises ValueError for an empty dataset or fields that disagree (shapes, lengths,
    padding; named by :func:`tabular.sampling._read_episodes`), TypeError for a non-Episodes.
    """
    episodes = _read_episodes(episodes)
    return episodes.rewards.sum(axis=1)


def normalize_returns(G) -> np.ndarray:
    """Max-min normalisation ``(G - min G) / (max G - min G)`` into [0, 1], float64 (n,).

    All zeros when every ``G_i`` is equal. The normalisation makes the temperature ``alpha``
    of :func:`return_weights` scale-free: ``alpha`` is measured in units of the dataset's
    return range (the normalisation of the authors' code, "max-min normalization in AW and
    RW"; only the scale matters, since a shift cancels in the softmax).

    Raises
    ------
    ValueError
        If ``G`` is empty, not 1-d or not finite (naming the index).
    """
    G = _read_returns(G)
    span = G.max() - G.min()
    if span == 0.0:
        return np.zeros_like(G)
    return (G - G.min()) / span


def _softmax_weights(z: np.ndarray, alpha: float) -> np.ndarray:
    """``w_i = exp(z_i / alpha) / sum_j exp(z_j / alpha)``; uniform for ``alpha = inf``."""
    if alpha == np.inf:
        return np.full(z.size, 1.0 / z.size)
    w = np.exp((z - z.max()) / alpha)  # shifted by the maximum: no overflow, the largest is 1
    return w / w.sum()


def return_weights(G, alpha: float) -> np.ndarray:
    """Return-weighted (RW) sampling probabilities ``w_i ∝ exp(G~_i / alpha)``.

    ``G~`` is the max-min normalised return (:func:`normalize_returns`), so ``alpha`` is in
    units of the dataset's return range. Source: Hong, Agrawal, Tachet des Combes, Laroche
    (2023), "Harnessing Mixed Offline RL Datasets via Trajectory Weighting", ICLR, return-
    weighted sampling (the exponential form per the spec sheet; the paper's default
    temperature is not verified).

    Parameters
    ----------
    G : array_like, float (n,)
        Trajectory returns.
    alpha : float
        Temperature > 0; ``np.inf`` gives the uniform weights ``1/n`` (the limit alpha -> inf),
        ``alpha -> 0`` concentrates the mass on the best trajectories.

    Returns
    -------
    numpy.ndarray, float64 (n,)
        Probabilities summing to 1, non-decreasing in ``G`` (comonotone with the returns, so
        ``sum_i w_i G_i >= mean(G)`` for every alpha: Chebyshev's sum inequality).

    Raises
    ------
    ValueError
        For an empty or non-finite ``G`` or a non-positive ``alpha``.
    TypeError
        If ``alpha`` is not a real number.
    """
    alpha = _read_positive(alpha, "alpha", allow_inf=True)
    return _softmax_weights(normalize_returns(G), alpha)


def _group_means(G: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``mean(G_j : groups_j = groups_i)`` for each i (the tabular regression on groups)."""
    _, inverse = np.unique(groups, return_inverse=True)
    sums = np.bincount(inverse, weights=G)
    sizes = np.bincount(inverse)
    return (sums / sizes)[inverse]


def advantage_weights(G, s0, alpha: float) -> np.ndarray:
    """Advantage-weighted (AW) sampling probabilities ``w_i ∝ exp(A~_i / alpha)``.

    ``A_i = G_i - V^(s0_i)`` with ``V^`` the regression of the return on the initial state;
    tabular: ``V^(s) = mean(G_j : s0_j = s)``. ``A~`` is ``A`` max-min normalised (as in
    :func:`normalize_returns`). Within one initial state the weights are non-decreasing in
    ``G``; across initial states they remove the part of the return that the start alone
    explains. Source: Hong et al. (2023), ICLR, advantage-weighted sampling (sheet [1]).

    Parameters
    ----------
    G : array_like, float (n,)
        Trajectory returns.
    s0 : array_like, int (n,)
        Initial state of each trajectory.
    alpha : float
        Temperature > 0 (``np.inf``: uniform).

    Returns
    -------
    numpy.ndarray, float64 (n,), summing to 1.

    Raises
    ------
    ValueError
        For mismatched shapes, an empty or non-finite ``G``, or a non-positive ``alpha``.
    TypeError
        If ``s0`` does not hold integers (states are indices) or ``alpha`` is not real.
    """
    alpha = _read_positive(alpha, "alpha", allow_inf=True)
    G = _read_returns(G)
    s0 = np.asarray(s0)
    if s0.dtype.kind not in "iu":
        raise TypeError(f"s0 must hold integer states, got dtype {s0.dtype}")
    if s0.shape != G.shape:
        raise ValueError(f"s0 has shape {s0.shape}, expected {G.shape} (one initial state per return)")
    return _softmax_weights(normalize_returns(G - _group_means(G, s0)), alpha)


def rpsv(G) -> float:
    """Return positive-sided variance ``RPSV = mean((G_i - mean G)_+^2)``, in reward units squared.

    Source: Hong et al. (2023), ICLR (abstract): the achievable improvement of reweighting
    correlates with the RPSV of the dataset's returns.

    Raises
    ------
    ValueError
        For an empty or non-finite ``G``.
    """
    G = _read_returns(G)
    return float(np.mean(np.maximum(G - G.mean(), 0.0) ** 2))


def _read_weights(weights, n: int) -> np.ndarray:
    w = _read_returns(weights, "weights")
    if w.size != n:
        raise ValueError(f"weights has {w.size} entries, expected one per trajectory ({n})")
    if (w < 0).any():
        i = int(np.flatnonzero(w < 0)[0])
        raise ValueError(f"weights[{i}] = {plain(w[i])} is negative")
    if abs(w.sum() - 1.0) > 1e-9:
        raise ValueError(f"weights sum to {plain(w.sum())}, not 1 (atol 1e-09)")
    return w


def resample_trajectories(weights, n: int, seed=None) -> np.ndarray:
    """Indices of ``n`` trajectories drawn i.i.d. with probabilities ``weights`` (with replacement).

    Parameters
    ----------
    weights : array_like, float (m,)
        Sampling probabilities (non-negative, summing to 1 within 1e-9).
    n : int
        Number of draws (>= 1).
    seed : int, SeedSequence, Generator or None

    Returns
    -------
    numpy.ndarray, int64 (n,), entries in ``[0, m)``.

    Raises
    ------
    ValueError
        For negative or non-finite weights, weights not summing to 1, or ``n < 1``.
    """
    n = _read_int(n, "n")
    w = _read_weights(weights, np.size(weights))
    rng = as_generator(seed)
    return rng.choice(w.size, size=n, replace=True, p=w / w.sum()).astype(np.int64)


def state_action_counts(episodes: Episodes, S: int, A: int, index=None) -> np.ndarray:
    """Visit counts ``n(s, a)`` over the steps of (a selection of) the trajectories.

    Parameters
    ----------
    episodes : Episodes
    S, A : int
        Numbers of states and actions.
    index : array_like of int (m,), optional
        Trajectories to count, with repetitions counted as often as they appear (a resample);
        default every trajectory once.

    Returns
    -------
    numpy.ndarray, int64 (S, A)
        Steps with action -1 (after termination) are not counted (via
        :func:`tabular.sampling.episodes_to_transitions` and :func:`~tabular.sampling.transition_statistics`).

    Raises
    ------
    ValueError
        For an empty dataset, inconsistent fields of ``episodes`` (named, by
        :func:`tabular.sampling._read_episodes`), states or actions out of range, an index
        that is not 1-d or out of range.
    TypeError
        For a non-Episodes ``episodes`` or a non-integer ``index``.
    """
    S, A = _read_int(S, "S"), _read_int(A, "A")
    episodes = _read_episodes(episodes, S, A)
    states, actions = episodes.states, episodes.actions
    rewards, lengths = episodes.rewards, episodes.lengths
    if index is not None:
        index = np.asarray(index)
        n = states.shape[0]
        if index.dtype.kind not in "iu":
            raise TypeError(f"index must hold integer trajectory indices, got dtype {index.dtype}")
        if index.ndim != 1:
            raise ValueError(f"index must have shape (m,), got {index.shape}")
        bad = (index < 0) | (index >= n)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"index[{i}] = {int(index[i])} is not a trajectory (n = {n})")
        states, actions, rewards, lengths = (x[index] for x in (states, actions, rewards, lengths))
    selected = Episodes(states=states, actions=actions, rewards=rewards, lengths=lengths)
    data = episodes_to_transitions(selected, S, A, per_step=False)
    return transition_statistics(data).counts


def resampled_behaviour_cloning(episodes: Episodes, S: int, A: int, weights, *, n=None,
                                smoothing: float = 0.0, seed=None) -> np.ndarray:
    """Behaviour cloning on trajectories resampled with probabilities ``weights``.

    Draws ``n`` trajectory indices with :func:`resample_trajectories` and returns
    :func:`tabular.offline.behaviour_cloning` of their state-action counts (a state never
    visited by the resample gets the uniform policy). Source: Hong et al. (2023), ICLR:
    weighted sampling of trajectories, then any offline learner (here BC).

    Parameters
    ----------
    episodes : Episodes
        The dataset (m trajectories).
    S, A : int
    weights : array_like, float (m,)
        Trajectory sampling probabilities (:func:`return_weights`, :func:`advantage_weights`).
    n : int, optional
        Resample size; default m.
    smoothing : float
        Pseudo-count of the smoothed BC (0: maximum likelihood).
    seed : int, SeedSequence, Generator or None

    Returns
    -------
    numpy.ndarray, float64 (S, A)
        A stochastic policy.
    """
    episodes = _read_episodes(episodes, S, A)
    m = episodes.states.shape[0]
    index = resample_trajectories(_read_weights(weights, m), m if n is None else n, seed)
    return behaviour_cloning(state_action_counts(episodes, S, A, index), smoothing)


# --- demonstration-regularised RL (Tiapkin et al., ICLR 2024) --------------------------------


@dataclass(frozen=True)
class SoftVIResult:
    """KL-regularised soft value iteration.

    Attributes
    ----------
    V : numpy.ndarray, float64 (H, S)
        The regularised optimal value ``V_h(s)`` (``H - h`` steps to go):
        ``max_pi E[sum_t gamma^t (r_t - lam KL(pi_t(.|s_t) || prior_t(.|s_t)))]``.
    Q : numpy.ndarray, float64 (H, S, A)
        ``Q_h = R_h + gamma P_h V_{h+1}`` (``V_H = 0``).
    pi : numpy.ndarray, float64 (H, S, A)
        The regularised optimal policy ``pi_h(a|s) ∝ prior_h(a|s) exp(Q_h(s, a) / lam)``.
    lam : float
        The KL weight.
    """

    V: np.ndarray
    Q: np.ndarray
    pi: np.ndarray
    lam: float


def _finite_mdp(mdp) -> TabularMDP:
    _require_mdp(mdp)
    if mdp.kind != "finite":
        raise ValueError(f"needs a finite-horizon MDP (H given), got kind {mdp.kind!r}")
    return mdp


def _prior_per_step(mdp: TabularMDP, prior) -> np.ndarray:
    """``prior`` validated as a stochastic policy and broadcast to (H, S, A)."""
    arr = np.asarray(prior)
    if arr.dtype.kind != "f":
        raise TypeError(f"the prior policy must be stochastic (float dtype), got {arr.dtype}")
    prior = validate_policy(mdp, arr)
    return np.broadcast_to(prior, (mdp.H, mdp.S, mdp.A))


def kl_regularized_vi(mdp: TabularMDP, prior, lam: float) -> SoftVIResult:
    """Soft value iteration with a KL penalty towards a prior policy, finite horizon.

    For ``h = H-1, ..., 0``: ``Q_h = R_h + gamma P_h V_{h+1}`` (``V_H = 0``),
    ``V_h(s) = lam log sum_a prior_h(a|s) exp(Q_h(s, a) / lam)`` (computed with
    ``scipy.special.logsumexp``), ``pi_h(a|s) = prior_h(a|s) exp((Q_h(s, a) - V_h(s)) / lam)``.
    ``V_0`` is the optimum of ``E[sum_t gamma^t (r_t - lam KL(pi_t || prior_t))]`` and ``pi`` attains it.
    Limits: ``lam -> 0`` gives the optimal values over actions in the prior's support, with
    ``V*_h - (H - h) lam log(1 / min prior) <= V_h <= V*_h`` when the prior has full support;
    ``lam -> inf`` gives ``pi -> prior``, with ``|log pi - log prior| <= span_a Q_h(s, .) / lam``.

    Source: Tiapkin et al. (2024), "Demonstration-Regularized RL", ICLR: KL-regularised RL
    towards the behaviour-cloning policy (spec sheet [2] (b); the paper adds exploration
    bonuses for online learning, not implemented here). The recursion is the standard soft
    Bellman equation with a prior (derived).

    Parameters
    ----------
    mdp : TabularMDP
        Finite horizon (``H`` given), stationary or time-inhomogeneous, any ``gamma``; the
        true model or an empirical one.
    prior : array_like, float (S, A) or (H, S, A)
        The prior policy, e.g. :func:`tabular.offline.behaviour_cloning` with smoothing > 0.
    lam : float
        KL weight > 0, finite (in reward units).

    Returns
    -------
    SoftVIResult

    Raises
    ------
    ValueError
        For an MDP without horizon, an invalid prior (naming the index), a non-positive or
        non-finite ``lam``, or a ``lam`` so small that ``Q_h / lam`` overflows float64
        (about ``lam < max |Q| / 1.8e308``; the result would be NaN).
    TypeError
        If ``mdp`` is not a TabularMDP, the prior is not a float array, or ``lam`` is not real.
    """
    mdp = _finite_mdp(mdp)
    lam = _read_positive(lam, "lam")
    prior = _prior_per_step(mdp, prior)
    H, S, A = mdp.H, mdp.S, mdp.A
    V = np.zeros((H + 1, S))
    Q = np.empty((H, S, A))
    pi = np.empty((H, S, A))
    with np.errstate(divide="ignore"):
        log_prior = np.log(prior)  # -inf outside the prior's support: those actions get pi = 0
    for h in range(H - 1, -1, -1):
        Q[h] = mdp.R_h(h) + mdp.gamma * mdp.P_h(h) @ V[h + 1]
        with np.errstate(over="ignore"):
            z = Q[h] / lam
        if not np.all(np.isfinite(z)):
            raise ValueError(f"lam = {lam!r} is too small for this MDP: Q_h / lam overflows "
                             f"float64 at step h = {h} (max |Q_h| = {plain(np.abs(Q[h]).max())})")
        w = log_prior[h] + z  # log of the unnormalised pi_h; V_h / lam = logsumexp(w)
        V[h] = lam * logsumexp(w, axis=1)
        # pi from w shifted by its maximum, not from (Q - V) / lam: for small lam the
        # rounding error of V (about 1e-16 |Q|) divided by lam would overflow exp.
        p = np.exp(w - w.max(axis=1, keepdims=True))
        pi[h] = p / p.sum(axis=1, keepdims=True)
    return SoftVIResult(V=V[:H], Q=Q, pi=pi, lam=lam)


def regularized_value(mdp: TabularMDP, pi, prior, lam: float) -> np.ndarray:
    """``V^pi_lam``: the value of ``pi`` under the reward ``r - lam KL(pi_h(.|s) || prior_h(.|s))``.

    Computed by exact policy evaluation (:func:`tabular.planning.evaluate_policy`) in the MDP
    whose reward at ``(h, s, a)`` is ``R_h(s, a) - lam KL(pi_h(.|s) || prior_h(.|s))``, which
    gives the objective of :func:`kl_regularized_vi`; ``V^{prior}_lam = V^{prior}`` and
    ``V^pi_lam <= V`` of the soft value iteration for every ``pi``.

    Parameters
    ----------
    mdp : TabularMDP
        Finite horizon.
    pi : array_like
        A policy (deterministic or stochastic, stationary or per step).
    prior : array_like, float (S, A) or (H, S, A)
    lam : float
        KL weight >= 0, finite.

    Returns
    -------
    numpy.ndarray, float64 (H, S)

    Raises
    ------
    ValueError
        If ``pi`` puts mass on an action the prior excludes (the KL is infinite; named), or
        as :func:`kl_regularized_vi`.
    """
    from tabular.planning import evaluate_policy

    mdp = _finite_mdp(mdp)
    if isinstance(lam, (bool, np.bool_)) or not isinstance(lam, numbers.Real):
        raise TypeError(f"lam must be a real number, got {type(lam).__name__}")
    lam = float(lam)
    if not (np.isfinite(lam) and lam >= 0):
        raise ValueError(f"lam = {plain(lam)} must be finite and non-negative")
    prior = _prior_per_step(mdp, prior)
    pi3 = np.broadcast_to(validate_policy(mdp, pi), prior.shape)
    outside = (pi3 > 0) & (prior == 0)
    if outside.any():
        h, s, a = (int(i) for i in np.argwhere(outside)[0])
        raise ValueError(f"pi[{h}, {s}, {a}] > 0 where the prior is 0: KL(pi || prior) is infinite")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(pi3 > 0, pi3 * (np.log(pi3) - np.log(prior)), 0.0)
    KL = terms.sum(axis=2)  # (H, S)
    R = np.stack([mdp.R_h(h) for h in range(mdp.H)]) - lam * KL[:, :, None]
    return evaluate_policy(mdp.replace(R=R), pi3).V


def demonstration_regularized_policy(mdp: TabularMDP, counts, lam: float,
                                     smoothing: float = 1.0) -> SoftVIResult:
    """KL-regularised planning towards the smoothed behaviour-cloning policy of ``counts``.

    ``prior = behaviour_cloning(counts, smoothing)``, ``(n(s, a) + c) / (n(s) + c A)``
    (:func:`tabular.offline.behaviour_cloning`), then :func:`kl_regularized_vi`. With
    ``smoothing > 0`` the prior has full support, so ``lam -> 0`` recovers the optimal policy
    of ``mdp``. Source: Tiapkin et al. (2024), ICLR (spec sheet [2]: (a) smoothed BC,
    form of the regulariser approximate; (b) KL-regularised RL towards it).

    Parameters
    ----------
    mdp : TabularMDP
        Finite horizon: the model to plan in (true or empirical).
    counts : array_like of int, (S, A) or (H, S, A)
        State-action counts of the demonstrations.
    lam : float
        KL weight > 0.
    smoothing : float, default 1.0
        BC pseudo-count c >= 0.

    Returns
    -------
    SoftVIResult
    """
    return kl_regularized_vi(mdp, behaviour_cloning(counts, smoothing), lam)


# --- RCSL and MBRCSL (Zhou, Zhu, Zhou, Cui, Gupta, Du, ICLR 2024) --------------------------


@dataclass(frozen=True)
class RCSLPolicy:
    """A tabular return-conditioned policy ``pi(a | s, R)``.

    Attributes
    ----------
    returns : numpy.ndarray, float64 (n_bins,)
        The distinct return-to-go values seen in the training data (rounded to
        ``bin_width``), increasing.
    counts : numpy.ndarray, int64 (S, n_bins, A)
        ``counts[s, k, a]``: steps with state s, return-to-go ``returns[k]`` and action a.
    bin_width : float
        Resolution of the return-to-go grid.
    """

    returns: np.ndarray
    counts: np.ndarray
    bin_width: float


@dataclass(frozen=True)
class RCSLEvaluation:
    """Exact outcome of an RCSL policy: ``final_state (S,)`` the distribution of ``s_H``, and
    ``expected_return`` (undiscounted)."""

    final_state: np.ndarray
    expected_return: float


def _returns_to_go(episodes: Episodes) -> np.ndarray:
    """``rtg[i, h] = sum_{t >= h} r_{i,t}``, float64 (n, H)."""
    return np.cumsum(episodes.rewards[:, ::-1], axis=1)[:, ::-1]


def fit_rcsl(episodes: Episodes, S: int, A: int, *, bin_width: float = 1e-6) -> RCSLPolicy:
    """Fit a tabular return-conditioned policy by counting ``(s_h, R_h, a_h)``.

    ``R_h = sum_{t >= h} r_t`` is the return-to-go of step h, rounded to the grid
    ``bin_width * Z``; the supervised-learning step of RCSL (Brandfonbrener et al. 2022;
    Zhou et al. 2024, ICLR, sheet [5]) is, in a table, the empirical conditional
    ``pi(a | s, R) = n(s, R, a) / n(s, R)``.

    Parameters
    ----------
    episodes : Episodes
        Training trajectories (non-empty).
    S, A : int
    bin_width : float
        Resolution of the return grid (> 0, in reward units).

    Returns
    -------
    RCSLPolicy

    Raises
    ------
    ValueError
        For an empty dataset, states or actions out of range, or a non-positive bin width.
    """
    S, A = _read_int(S, "S"), _read_int(A, "A")
    episodes = _read_episodes(episodes, S, A)
    bin_width = _read_positive(bin_width, "bin_width")
    keys = np.round(_returns_to_go(episodes) / bin_width).astype(np.int64)
    taken = episodes.actions >= 0
    s, k, a = episodes.states[:, :-1][taken], keys[taken], episodes.actions[taken]
    grid, k_index = np.unique(k, return_inverse=True)
    counts = np.zeros((S, grid.size, A), dtype=np.int64)
    np.add.at(counts, (s, k_index, a), 1)
    return RCSLPolicy(returns=grid * bin_width, counts=counts, bin_width=bin_width)


#: Test-time acting rules of RCSL (:func:`rcsl_action_probabilities`).
RCSL_RULES = ("clip", "nearest")


def _read_rule(rule) -> str:
    if not isinstance(rule, str):
        raise TypeError(f"rule must be a string, got {type(rule).__name__}")
    if rule not in RCSL_RULES:
        raise ValueError(f"rule = {rule!r} is not one of {RCSL_RULES}")
    return rule


def _read_target(R, name: str) -> float:
    """A target return: a real number or ``+inf`` (NaN and ``-inf`` have no nearest return)."""
    if isinstance(R, (bool, np.bool_)) or not isinstance(R, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(R).__name__}")
    R = float(R)
    if np.isnan(R) or R == -np.inf:
        raise ValueError(f"{name} = {R!r} must be a real number or inf")
    return R


def rcsl_action_probabilities(policy: RCSLPolicy, s: int, R: float, *,
                              rule: str = "clip") -> tuple[np.ndarray, float]:
    """Action probabilities of RCSL at state ``s`` with target return-to-go ``R``.

    The policy acts as ``pi(. | s, k)`` for the grid value ``returns[k]`` seen at ``s``
    that is nearest to the target ``R'`` (ties to the larger); ``R'`` depends on ``rule``:

    - ``"clip"`` (in-support conditioning): ``R' = min(R, max_k {returns[k] : n(s, k) > 0})``,
      the target lowered to the largest return-to-go seen at ``s``. Brandfonbrener, Bietti,
      Buckman, Laroche, Bruna (2022, NeurIPS) analyse RCSL with a test-time target chosen at
      the start inside the returns the data show from there ("return coverage"), then
      reduced by each reward received; clipping at every visited state is our extension of
      that convention. With the update ``R <- R' - r`` the policy can at most reproduce the
      best return-to-go its data show at each state: it cannot stitch.
    - ``"nearest"``: ``R' = R``, no clipping: the start target (e.g. the dataset's largest
      return, or higher, as return-conditioned agents are usually run) is only reduced by
      the rewards received, and a target never seen at ``s`` is met by the nearest seen
      return-to-go: our tabular stand-in for how a learned ``pi(a | s, R)`` extrapolates.
      This rule can stitch (on :func:`stitching_mdp` with target ``inf``: A -> B, then at B
      the nearest seen return-to-go, 1, leads to E).

    A state never seen gets the uniform distribution and leaves ``R`` unchanged (both rules).

    Parameters
    ----------
    policy : RCSLPolicy
    s : int
        State.
    R : float
        Target return-to-go, real or ``np.inf`` (``"clip"``: the best seen at ``s``;
        ``"nearest"``: the largest seen at every state).
    rule : {"clip", "nearest"}

    Returns
    -------
    probabilities : numpy.ndarray, float64 (A,)
    R_used : float
        ``R'`` (the caller subtracts the reward to get the next target).

    Raises
    ------
    ValueError
        If ``s`` is not a state of the policy, ``R`` is NaN or ``-inf``, or ``rule`` is
        unknown.
    TypeError
        If ``R`` is not a real number or ``rule`` not a string.
    """
    S = policy.counts.shape[0]
    s = _read_int(s, "s", minimum=0)
    if s >= S:
        raise ValueError(f"s = {s} is not a state (S = {S})")
    R = _read_target(R, "R")
    rule = _read_rule(rule)
    n_sk = policy.counts[s].sum(axis=1)
    seen = np.flatnonzero(n_sk > 0)
    A = policy.counts.shape[2]
    if seen.size == 0:
        return np.full(A, 1.0 / A), R
    R_used = min(R, float(policy.returns[seen[-1]])) if rule == "clip" else R
    gaps = np.abs(policy.returns[seen] - R_used)  # all inf for R_used = inf: the largest wins
    k = seen[np.flatnonzero(gaps == gaps.min())[-1]]
    return policy.counts[s, k] / n_sk[k], R_used


def evaluate_rcsl(mdp: TabularMDP, policy: RCSLPolicy, R_target: float = np.inf, *,
                  rule: str = "clip") -> RCSLEvaluation:
    """Exact distribution of the final state and expected return of RCSL in ``mdp``.

    The policy starts from ``s_0 ~ mu0`` with target ``R_target``; at each step it acts with
    :func:`rcsl_action_probabilities` under ``rule`` and the next target is
    ``R' - R_h(s, a)`` (the reward just received subtracted, as RCSL does at test time).
    The recursion runs over the reachable (state, target) pairs, which stay few on small
    tabular tasks.

    Parameters
    ----------
    mdp : TabularMDP
        Finite horizon, ``S`` and ``A`` matching the policy.
    policy : RCSLPolicy
    R_target : float
        Initial target return, real or ``np.inf`` (the default: under ``"clip"`` the best
        return-to-go seen at the start, under ``"nearest"`` the largest seen at every state).
    rule : {"clip", "nearest"}
        The acting rule (:func:`rcsl_action_probabilities`).

    Returns
    -------
    RCSLEvaluation

    Raises
    ------
    ValueError
        For an MDP without horizon, sizes that do not match the policy, a NaN or ``-inf``
        target, or an unknown rule.
    TypeError
        For a non-real target or a non-string rule.
    """
    mdp = _finite_mdp(mdp)
    R_target = _read_target(R_target, "R_target")
    rule = _read_rule(rule)
    if policy.counts.shape[0] != mdp.S or policy.counts.shape[2] != mdp.A:
        raise ValueError(f"policy has counts of shape {policy.counts.shape}, expected "
                         f"(S, n_bins, A) with S = {mdp.S}, A = {mdp.A}")
    belief = {(int(s), float(R_target)): float(p) for s, p in enumerate(mdp.mu0) if p > 0}
    expected = 0.0
    for h in range(mdp.H):
        R_h, P_h = mdp.R_h(h), mdp.P_h(h)
        nxt: dict = {}
        for (s, R), p in belief.items():
            probs, R_used = rcsl_action_probabilities(policy, s, R, rule=rule)
            for a in np.flatnonzero(probs > 0):
                p_a = p * probs[a]
                expected += p_a * R_h[s, a]
                R_next = R_used - float(R_h[s, a])
                for s_next in np.flatnonzero(P_h[s, a] > 0):
                    key = (int(s_next), R_next)
                    nxt[key] = nxt.get(key, 0.0) + p_a * P_h[s, a, s_next]
        belief = nxt
    final = np.zeros(mdp.S)
    for (s, _), p in belief.items():
        final[s] += p
    return RCSLEvaluation(final_state=final, expected_return=float(expected))


def _episode_model(episodes: Episodes, S: int, A: int) -> TabularMDP:
    """The empirical stationary MDP of a trajectory dataset, horizon = the trajectories' length.

    ``P^, R^`` from :func:`tabular.offline.empirical_model` of the pooled transitions
    (unseen pairs: ``P^`` uniform, ``R^ = 0``, its convention); ``mu0^`` the empirical
    initial-state distribution.
    """
    model = empirical_model(episodes_to_transitions(episodes, S, A, per_step=False))
    mu0 = np.bincount(episodes.states[:, 0], minlength=S) / episodes.states.shape[0]
    return TabularMDP(model.Phat, model.rhat, mu0, H=episodes.actions.shape[1])


@dataclass(frozen=True)
class MBRCSLResult:
    """Output of :func:`mbrcsl`.

    Attributes
    ----------
    policy : RCSLPolicy
        RCSL trained on the kept rollouts (on the dataset itself when none was kept).
    rollouts : Episodes
        The rollouts of the cloned behaviour in the empirical model.
    kept : numpy.ndarray, bool (n_rollouts,)
        Rollouts whose return exceeds ``threshold``.
    threshold : float
        The return a rollout must exceed.
    """

    policy: RCSLPolicy
    rollouts: Episodes
    kept: np.ndarray
    threshold: float


def mbrcsl(episodes: Episodes, S: int, A: int, n_rollouts: int, *, threshold=None,
           bin_width: float = 1e-6, seed=None) -> MBRCSLResult:
    """Model-based RCSL: stitch trajectories by rolling out the cloned behaviour in a learned model.

    1. The empirical model ``P^, R^`` and initial-state distribution of the data.
    2. The behaviour policy ``mu^ = behaviour_cloning(counts)`` (maximum likelihood; unseen
       states uniform).
    3. ``n_rollouts`` rollouts of ``mu^`` in ``P^`` from the data's initial states, each as
       long as the data's trajectories.
    4. Keep the rollouts whose return exceeds ``threshold`` (default: the largest return in
       the dataset).
    5. :func:`fit_rcsl` on the kept rollouts; if none is kept, on the dataset itself.

    Step 1 uses :func:`tabular.offline.empirical_model` of the pooled transitions (a
    stationary model; unseen pairs: uniform ``P^``, reward 0, its convention).

    Source: Zhou, Zhu, Zhou, Cui, Gupta, Du (2024), "Free from Bellman Completeness:
    Trajectory Stitching via Model-based Return-conditioned Supervised Learning", ICLR
    (spec sheet [5]; learned neural models and behaviour replaced by tables here).

    Parameters
    ----------
    episodes : Episodes
        The offline dataset (non-empty).
    S, A : int
    n_rollouts : int
        Number of model rollouts (>= 1).
    threshold : float, optional
        Keep rollouts with return strictly above it (finite, in reward units); default
        ``max_i G_i`` of the data.
    bin_width : float
        Return grid of the RCSL fit.
    seed : int, SeedSequence, Generator or None

    Returns
    -------
    MBRCSLResult

    Raises
    ------
    ValueError
        For an empty dataset, inconsistent fields of ``episodes`` (named), states or actions
        out of range, ``n_rollouts < 1``, a non-finite ``threshold`` (NaN would keep no
        rollout and silently fall back to plain RCSL).
    TypeError
        For a non-Episodes ``episodes``, a non-int ``n_rollouts`` or a non-real ``threshold``.
    """
    S, A = _read_int(S, "S"), _read_int(A, "A")
    episodes = _read_episodes(episodes, S, A)
    n_rollouts = _read_int(n_rollouts, "n_rollouts")
    if threshold is not None:
        if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, numbers.Real):
            raise TypeError(f"threshold must be a real number or None, got {type(threshold).__name__}")
        threshold = float(threshold)
        if not np.isfinite(threshold):
            raise ValueError(f"threshold = {threshold!r} must be finite")
    model = _episode_model(episodes, S, A)
    mu_hat = behaviour_cloning(state_action_counts(episodes, S, A))
    rollouts = sample_episodes(model, mu_hat, n_rollouts, seed=seed)
    if threshold is None:
        threshold = float(trajectory_returns(episodes).max())
    G = rollouts.rewards.sum(axis=1)
    kept = G > threshold
    if kept.any():
        chosen = Episodes(states=rollouts.states[kept], actions=rollouts.actions[kept],
                          rewards=rollouts.rewards[kept], lengths=rollouts.lengths[kept])
    else:
        chosen = episodes
    return MBRCSLResult(policy=fit_rcsl(chosen, S, A, bin_width=bin_width), rollouts=rollouts,
                        kept=kept, threshold=float(threshold))


# --- the stitching graph (sheet [5][6], hard instance) --------------------------------------

#: State indices of :func:`stitching_mdp`.
STITCH_STATES = {"A": 0, "D": 1, "B": 2, "C": 3, "E": 4, "T": 5}


def stitching_mdp() -> TabularMDP:
    """The stitching graph: data A->B->C (low return) and D->B->E (high); A->B->E is best.

    Deterministic, ``H = 2``, ``A = 2`` actions, states ``A, D, B, C, E, T``
    (:data:`STITCH_STATES`), start state A (``mu0`` the point mass on A):

    - A: action 0 -> B with reward 0.5; action 1 -> T, reward 0.
    - D: action 0 -> B, reward 0; action 1 -> T, reward 0.
    - B: action 0 -> C, reward 0; action 1 -> E, reward 1.
    - C, E, T: absorbing, reward 0 (reached at the last step).

    Returns: A->B->C 0.5, D->B->E 1, A->B->E 1.5 (the optimum from A, above every return
    in the data of :func:`stitching_dataset`). Source: the stitching instance of the spec
    sheet ([5][6]); the rewards are our choice.
    """
    A_, D, B, C, E, T = (STITCH_STATES[k] for k in ("A", "D", "B", "C", "E", "T"))
    S = len(STITCH_STATES)
    P = np.zeros((S, 2, S))
    R = np.zeros((S, 2))
    P[A_, 0, B], R[A_, 0] = 1.0, 0.5
    P[A_, 1, T] = 1.0
    P[D, 0, B] = 1.0
    P[D, 1, T] = 1.0
    P[B, 0, C] = 1.0
    P[B, 1, E], R[B, 1] = 1.0, 1.0
    for s in (C, E, T):
        P[s, :, s] = 1.0
    mu0 = np.zeros(S)
    mu0[A_] = 1.0
    return TabularMDP(P, R, mu0, H=2)


def stitching_dataset(n: int, *, share_from_A: float = 0.5, seed=None) -> Episodes:
    """Trajectories A->B->C and D->B->E of :func:`stitching_mdp`, never A->B->E.

    Each of the ``n`` trajectories starts at A with probability ``share_from_A`` (then
    follows A->B->C) and at D otherwise (then D->B->E): two behaviour policies, so that no
    trajectory passes from A to E. Trajectories from A come first.

    Parameters
    ----------
    n : int
        Number of trajectories (>= 1).
    share_from_A : float
        In [0, 1].
    seed : int, SeedSequence, Generator or None

    Returns
    -------
    Episodes
        ``states (n, 3)``, ``actions (n, 2)``, ``rewards (n, 2)``, ``lengths (n,)``.
    """
    n = _read_int(n, "n")
    share = float(share_from_A)
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share_from_A = {plain(share)} must lie in [0, 1]")
    rng = as_generator(seed)
    mdp = stitching_mdp()
    n_A = int(rng.binomial(n, share))
    B = STITCH_STATES["B"]
    parts = []
    for start, n_part, action_at_B in (("A", n_A, 0), ("D", n - n_A, 1)):
        mu0 = np.zeros(mdp.S)
        mu0[STITCH_STATES[start]] = 1.0
        pi = np.zeros(mdp.S, dtype=np.int64)
        pi[B] = action_at_B
        parts.append(sample_episodes(mdp.replace(mu0=mu0), pi, n_part, seed=rng))
    return Episodes(*(np.concatenate([getattr(p, f) for p in parts])
                      for f in ("states", "actions", "rewards", "lengths")))
