"""Offline RL in tabular MDPs: behaviour cloning, the empirical model, VI-LCB (Rashidinejad, Zhu, Ma, Jiao, Russell 2021) and finite-horizon pessimistic value iteration (Li, Shi, Chen, Chi, Wei 2022, Algorithm 2).

Unseen-pair convention (as in :mod:`bandits.offline`): a state-action pair with no sample
is never preferred over a seen one: its Q is ``-inf`` in plain VI and VI-LCB, and the greedy
policies of pessimistic VI break ties towards seen pairs. A state with no seen action gets
``V = 0`` and action 0 in plain VI and pessimistic VI, and keeps its previous value and
action in VI-LCB. Behaviour cloning treats a state with no sample as uniform
(:func:`behaviour_cloning`) or as action 0 (:func:`bc_greedy`).

Data come from :mod:`tabular.sampling` (:func:`~tabular.sampling.sample_transitions`,
:func:`~tabular.sampling.transition_statistics`); the concentrability ``C*`` of a data
distribution is :func:`tabular.planning.C_star` (discounted and per-step finite horizon).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from proofs_check.messages import plain
from proofs_check.seeding import as_generator
from tabular.mdp import _index, _read_gamma, _read_int, _read_positive
from tabular.sampling import (
    Transitions,
    TransitionStatistics,
    _grouped_statistics,
    _read_counts,
    transition_statistics,
)

__all__ = [
    "EmpiricalModel",
    "OfflineResult",
    "VILCBResult",
    "bc_greedy",
    "behaviour_cloning",
    "bernstein_penalty",
    "empirical_model",
    "hoeffding_penalty",
    "model_based_vi",
    "pessimistic_value_iteration",
    "vi_lcb",
]


def behaviour_cloning(counts, smoothing: float = 0.0) -> np.ndarray:
    """Smoothed maximum-likelihood behaviour cloning from state-action counts.

    ``pi(a | s) = (n(s, a) + c) / (n(s) + c A)`` with ``n(s) = sum_a n(s, a)`` and
    ``c = smoothing`` (additive, Laplace smoothing for ``c = 1``; ``c = 0`` is the MLE).
    Convention: a state with ``n(s) = 0`` gets the uniform distribution (the formula's
    value for ``c > 0``; for ``c = 0`` it would be 0/0). Per-step counts ``(H, S, A)``
    give one policy per step.

    Parameters
    ----------
    counts : array_like of int, shape (S, A) or (H, S, A)
        Sample counts ``n(s, a)`` (``n_h(s, a)``): non-negative, integer-valued.
    smoothing : float, default 0.0
        The pseudo-count ``c >= 0``, finite.

    Returns
    -------
    numpy.ndarray, float64, same shape as ``counts``
        A stochastic policy: rows sum to 1.

    Raises
    ------
    ValueError
        If ``counts`` has the wrong shape or a negative or non-integer entry (named), or
        ``smoothing`` is negative or not finite.
    TypeError
        If ``counts`` is not numeric or ``smoothing`` is not a real number.

    Source: behaviour cloning as the imitation baseline of Rashidinejad et al. (2021).
    """
    n = _read_counts(counts).astype(np.float64)
    c = _read_positive(smoothing, "smoothing", allow_zero=True)
    A = n.shape[-1]
    total = n.sum(axis=-1, keepdims=True) + c * A
    with np.errstate(invalid="ignore", divide="ignore"):
        pi = (n + c) / total
    return np.where(total > 0, pi, 1.0 / A)


def bc_greedy(counts) -> np.ndarray:
    """Deterministic behaviour cloning: the most frequent action in each state.

    ``pi(s) = argmax_a n(s, a)``, ties to the lowest action index. Convention: a state with
    no sample gets action 0 (the argmax of an all-zero row). Per-step counts ``(H, S, A)``
    give a per-step policy ``(H, S)``.

    Parameters
    ----------
    counts : array_like of int, shape (S, A) or (H, S, A)

    Returns
    -------
    numpy.ndarray, int64, shape (S,) or (H, S)

    Raises
    ------
    ValueError, TypeError
        As :func:`behaviour_cloning`.

    Source: the per-state majority action, the behaviour-cloning baseline of Rashidinejad
    et al. (2021) (most-played arm per state).
    """
    n = _read_counts(counts)
    return np.argmax(n, axis=-1).astype(np.int64)


# --- the empirical model ----------------------------------------------------------------


def _as_statistics(data) -> TransitionStatistics:
    """The statistics of a :class:`Transitions`, or a :class:`TransitionStatistics` as is
    (its construction validated it)."""
    if isinstance(data, Transitions):
        return transition_statistics(data)
    if not isinstance(data, TransitionStatistics):
        raise TypeError(f"data must be a Transitions or a TransitionStatistics, got "
                        f"{type(data).__name__}")
    return data


def _require_data(stats: TransitionStatistics) -> None:
    if stats.N == 0:
        raise ValueError("the dataset is empty (N = 0 transitions): nothing to learn from")


def _require_unit_rewards(rhat: np.ndarray, seen: np.ndarray, who: str) -> None:
    bad = seen & ((rhat < 0) | (rhat > 1))
    if bad.any():
        idx = tuple(np.argwhere(bad)[0])
        raise ValueError(f"{who} assumes rewards in [0, 1]; the mean observed reward at "
                         f"({_index(idx)}) is {plain(float(rhat[idx]))}")


@dataclass(frozen=True)
class EmpiricalModel:
    """The empirical MDP of a dataset.

    Attributes
    ----------
    rhat : numpy.ndarray, float64, (S, A) or (H, S, A)
        Mean observed reward on seen pairs, 0 on unseen ones.
    Phat : numpy.ndarray, float64, (S, A, S) or (H, S, A, S)
        ``n(s, a, s') / n(s, a)`` on seen pairs, ``1/S`` on unseen ones (Li et al. 2022,
        eqs. (25) and (51)).
    counts : numpy.ndarray, int64, (S, A) or (H, S, A)
    """

    rhat: np.ndarray
    Phat: np.ndarray
    counts: np.ndarray

    @property
    def seen(self) -> np.ndarray:
        """Boolean mask of the pairs with at least one sample."""
        return self.counts > 0


def empirical_model(data) -> EmpiricalModel:
    """The empirical (plug-in) model ``(rhat, Phat, counts)`` of a dataset.

    Source: Li, Shi, Chen, Chi, Wei (2022), "Settling the sample complexity of model-based
    offline reinforcement learning", Annals of Statistics 52(1) 2024, eqs. (24)-(25)
    (discounted) and (50)-(51) (per step): ``Phat(s' | s, a) = n(s, a, s') / n(s, a)`` if
    ``n(s, a) > 0``, else ``1 / S``.

    Parameters
    ----------
    data : Transitions or TransitionStatistics
        Pooled (S, A) or per-step (H, S, A) statistics.

    Returns
    -------
    EmpiricalModel
        Unseen pairs: ``rhat = 0`` and ``Phat`` uniform (a convention, never a NaN).

    Raises
    ------
    TypeError
        If ``data`` is neither a Transitions nor a TransitionStatistics (inconsistent
        statistics are refused when the TransitionStatistics is built).
    """
    stats = _as_statistics(data)
    n = stats.counts
    S = stats.transition_counts.shape[-1]
    seen = n > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        rhat = np.where(seen, stats.reward_sums / n, 0.0)
        Phat = np.where(seen[..., None], stats.transition_counts / n[..., None], 1.0 / S)
    return EmpiricalModel(rhat=rhat, Phat=Phat, counts=n)


# --- plain model-based value iteration --------------------------------------------------


@dataclass(frozen=True)
class OfflineResult:
    """The output of an offline planner.

    Attributes
    ----------
    pi : numpy.ndarray, int64, (S,) or (H, S)
        The returned deterministic policy.
    V : numpy.ndarray, float64, (S,) or (H, S)
        The algorithm's value estimate (``V[h]`` with ``H - h`` steps to go).
    Q : numpy.ndarray, float64, (S, A) or (H, S, A)
        Its action values (``-inf`` on unseen pairs for plain VI).
    penalty : numpy.ndarray or None
        The penalty ``b`` subtracted at each pair (pessimistic VI), else None.
    method : str
    converged : bool
        Discounted plain VI: whether the stopping rule was met; True otherwise.
    """

    pi: np.ndarray
    V: np.ndarray
    Q: np.ndarray
    penalty: np.ndarray | None
    method: str
    converged: bool = True


def _greedy_seen(Q: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """argmax over seen actions (ties to the lowest index); action 0 where none is seen."""
    return np.argmax(np.where(seen, Q, -np.inf), axis=-1).astype(np.int64)


def _masked_backup(model: EmpiricalModel, h, V: np.ndarray, gamma: float):
    """``Q = rhat + gamma Phat V`` on seen pairs, -inf on unseen; ``V = max`` over seen
    actions, 0 at a state with none."""
    rhat, Phat, seen = (model.rhat, model.Phat, model.seen) if h is None else (
        model.rhat[h], model.Phat[h], model.seen[h])
    Q = np.where(seen, rhat + gamma * (Phat @ V), -np.inf)
    return Q, np.where(seen.any(axis=-1), Q.max(axis=-1), 0.0)


def model_based_vi(data, gamma=None, *, epsilon: float = 1e-10,
                   max_iter: int = 100_000) -> OfflineResult:
    """Plain (non-pessimistic) value iteration on the empirical model of a dataset.

    Discounted (pooled statistics): ``Q(s, a) = rhat(s, a) + gamma Phat(s, a) V``,
    ``V(s) = max_a Q(s, a)``, iterated from ``V = 0`` until
    ``gamma ||V_k - V_{k-1}||_inf / (1 - gamma) <= epsilon`` (then ``||V - Vhat*|| <= epsilon``
    for the empirical model's fixed point; Puterman 1994, Thm. 6.3.1). Finite horizon
    (per-step statistics): backward induction from ``V_H = 0``. Convention: unseen pairs get
    ``Q = -inf`` (never chosen), and a state with no seen action gets ``V = 0`` and action 0.
    The baseline "plain model-based VI" of Rashidinejad et al. (2021).

    Parameters
    ----------
    data : Transitions or TransitionStatistics
    gamma : float
        Discount: required in [0, 1) for pooled statistics; in [0, 1], default 1, per step.
    epsilon : float, default 1e-10
        Stopping tolerance (discounted), > 0.
    max_iter : int, default 100000
        Iteration cap (discounted); ``converged`` says whether the rule was met.

    Returns
    -------
    OfflineResult
        ``pi`` greedy over seen actions (ties to the lowest index), ``V``, ``Q``;
        ``penalty = None``.

    Raises
    ------
    ValueError
        An empty dataset, gamma missing or out of range, epsilon not positive, max_iter < 1.
    TypeError
        ``data`` neither a Transitions nor a TransitionStatistics, ``gamma`` or
        ``epsilon`` not a real number, ``max_iter`` not an int.
    """
    stats = _as_statistics(data)
    _require_data(stats)
    model = empirical_model(stats)
    if stats.per_step:
        gamma = 1.0 if gamma is None else _read_gamma(gamma, allow_one=True)
        H, S, A = stats.counts.shape
        V, Q = np.zeros((H + 1, S)), np.empty((H, S, A))
        for h in reversed(range(H)):
            Q[h], V[h] = _masked_backup(model, h, V[h + 1], gamma)
        return OfflineResult(pi=_greedy_seen(Q, model.seen), V=V[:H], Q=Q, penalty=None,
                             method="model_based_vi")
    if gamma is None:
        raise ValueError("gamma is required for pooled (discounted) statistics")
    gamma = _read_gamma(gamma, allow_one=False)
    epsilon = _read_positive(epsilon, "epsilon")
    max_iter = _read_int(max_iter, "max_iter")
    V, Q, converged = _masked_vi_kernel(model.rhat, model.Phat, model.seen, gamma,
                                        epsilon, max_iter)
    return OfflineResult(pi=_greedy_seen(Q, model.seen), V=V, Q=Q, penalty=None,
                         method="model_based_vi", converged=bool(converged))


@njit(cache=True)
def _masked_vi_kernel(rhat, Phat, seen, gamma, epsilon, max_iter):
    """Discounted value iteration over seen pairs from ``V = 0`` (see :func:`model_based_vi`):
    returns ``V (S,)``, ``Q (S, A)`` (-inf on unseen pairs) and whether
    ``gamma ||V_k - V_{k-1}|| <= epsilon (1 - gamma)`` was met within ``max_iter`` sweeps."""
    S, A = rhat.shape
    V = np.zeros(S)
    V_new = np.zeros(S)
    Q = np.full((S, A), -np.inf)
    for _ in range(max_iter):
        change = 0.0
        for s in range(S):
            best = -np.inf
            for a in range(A):
                if not seen[s, a]:
                    continue
                acc = 0.0
                for j in range(S):
                    acc += Phat[s, a, j] * V[j]
                Q[s, a] = rhat[s, a] + gamma * acc
                best = max(best, Q[s, a])
            V_new[s] = best if best > -np.inf else 0.0
            change = max(change, abs(V_new[s] - V[s]))
        V[:] = V_new
        if gamma * change <= epsilon * (1.0 - gamma):
            return V, Q, True
    return V, Q, False


def _masked_vi_numpy(rhat, Phat, seen, gamma, epsilon, max_iter):
    """Plain-numpy reference of :func:`_masked_vi_kernel`."""
    model = EmpiricalModel(rhat=rhat, Phat=Phat, counts=seen.astype(np.int64))
    V = np.zeros(rhat.shape[0])
    Q = np.full(rhat.shape, -np.inf)
    for _ in range(max_iter):
        Q, V_new = _masked_backup(model, None, V, gamma)
        change = float(np.max(np.abs(V_new - V)))
        V = V_new
        if gamma * change <= epsilon * (1.0 - gamma):
            return V, Q, True
    return V, Q, False


# --- VI-LCB (discounted, with data splitting) -------------------------------------------


@dataclass(frozen=True)
class VILCBResult:
    """The output of :func:`vi_lcb`.

    Attributes
    ----------
    pi : numpy.ndarray, int64, (S,)
        ``pi_T``, the returned policy.
    V : numpy.ndarray, float64, (S,)
        ``V_T``, the final (pessimistic) value estimate.
    Q : numpy.ndarray, float64, (S, A)
        ``Q_T`` of the last iteration (``-inf`` on pairs unseen in fold T).
    V_history : numpy.ndarray, float64, (T + 1, S)
        ``V_0 = 0, V_1, ..., V_T`` (non-decreasing in t by construction).
    pi_history : numpy.ndarray, int64, (T + 1, S)
        ``pi_0, ..., pi_T``.
    fold_indices : numpy.ndarray, int64, (T + 1, m)
        Row k holds the dataset indices of fold k (fold 0 estimates the reward).
    fold_sizes : numpy.ndarray, int64, (T + 1,)
        All equal to ``m = N // (T + 1)``; the ``N - (T + 1) m`` other samples are unused.
    T : int
    c, delta, L_c : float
        The constant, failure probability and ``L_c = c log(2 (T + 1) S A / delta)``.
    """

    pi: np.ndarray
    V: np.ndarray
    Q: np.ndarray
    V_history: np.ndarray
    pi_history: np.ndarray
    fold_indices: np.ndarray
    fold_sizes: np.ndarray
    T: int
    c: float
    delta: float
    L_c: float


def _read_delta(delta) -> float:
    delta = _read_positive(delta, "delta")
    if delta >= 1:
        raise ValueError(f"delta = {delta!r} must lie in (0, 1)")
    return delta


def vi_lcb(data: Transitions, gamma: float, *, c: float = 0.5, delta: float | None = None,
           pi0=None, seed=None) -> VILCBResult:
    """VI-LCB for a discounted MDP, with the paper's data splitting (Rashidinejad, Zhu, Ma,
    Jiao, Russell 2021, NeurIPS, algorithm "VI-LCB"; as recalled by the spec sheet, the
    constant of the paper's penalty not re-checked).

    1. ``T = ceil(log N / (1 - gamma))``; split the data at random into ``T + 1`` folds of
       ``m = N // (T + 1)`` samples (the remaining samples are not used).
    2. Fold 0 gives ``rhat`` (0 on pairs it does not see); ``V_0 = 0``, ``pi_0 = pi0``.
    3. For ``t = 1..T``, on fold t alone: counts ``m_t(s, a)``, ``Phat_t``, penalty
       ``b_t = Vmax sqrt(L_c / max(m_t, 1))`` with ``Vmax = 1 / (1 - gamma)`` and
       ``L_c = c log(2 (T + 1) S A / delta)``;
       ``Q_t = rhat - b_t + gamma Phat_t V_{t-1}`` on pairs seen in fold t (``-inf``
       otherwise: never preferred); ``Vmid = max_a Q_t``; where ``Vmid > V_{t-1}`` set
       ``V_t = Vmid`` and ``pi_t = argmax_a Q_t`` (ties to the lowest index), elsewhere keep
       ``V_{t-1}, pi_{t-1}`` (so a state with no seen action keeps both, and ``V_t`` is
       non-decreasing).
    4. Return ``pi_T``.

    The iterations run in a Numba kernel (``_vi_lcb_kernel``; numpy reference
    ``_vi_lcb_numpy``).

    With rewards in [0, 1] known on the pairs seen in fold 0 (deterministic rewards), Hoeffding's
    inequality on each fold (independent of ``V_{t-1}``) with a union bound over the
    ``(T + 1) S A`` triples gives ``V_T <= V^{pi_T}`` with probability at least ``1 - delta``
    for ``c >= 1/2`` (spec sheet, property 7, derived). The paper states the rate with an
    absolute constant of order 10^3 (recalled, not verified).

    Parameters
    ----------
    data : Transitions
        i.i.d. transitions without steps (see :func:`tabular.sampling.sample_transitions`),
        rewards in [0, 1], ``N >= 1``.
    gamma : float in [0, 1)
    c : float, default 0.5
        Penalty constant, >= 0 (0 removes pessimism).
    delta : float in (0, 1), optional
        Failure probability; default ``1 / N`` (the paper's choice), which needs
        ``N >= 2`` (at ``N = 1`` it would be 1: give ``delta`` explicitly).
    pi0 : array_like of int, shape (S,), optional
        Initial policy; default action 0 everywhere.
    seed : int, SeedSequence, Generator or None
        Randomness of the split.

    Returns
    -------
    VILCBResult

    Raises
    ------
    ValueError
        An empty dataset, data with steps, ``N`` too small to give every fold a sample
        (``m = 0``), rewards outside [0, 1], ``gamma``, ``c``, ``delta`` or ``pi0`` invalid,
        ``delta`` left to its default ``1 / N`` at ``N = 1``.
    TypeError
        If ``data`` is not a :class:`~tabular.sampling.Transitions`.
    """
    if not isinstance(data, Transitions):
        raise TypeError(f"data must be a Transitions, got {type(data).__name__}")
    if data.h is not None:
        raise ValueError("vi_lcb takes pooled data of a discounted MDP; these data have steps "
                         "(use pessimistic_value_iteration for finite horizon)")
    gamma = _read_gamma(gamma, allow_one=False)
    c = _read_positive(c, "c", allow_zero=True)
    N, S, A = data.N, data.S, data.A
    if N == 0:
        raise ValueError("the dataset is empty (N = 0 transitions): nothing to learn from")
    bad = np.flatnonzero((data.r < 0) | (data.r > 1))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"vi_lcb assumes rewards in [0, 1] (Vmax = 1/(1 - gamma)); "
                         f"r[{i}] = {plain(float(data.r[i]))}")
    if delta is None and N == 1:
        raise ValueError("delta defaults to 1 / N, which is 1 at N = 1 transition (outside "
                         "(0, 1)): give delta explicitly")
    delta = 1.0 / N if delta is None else _read_delta(delta)
    if pi0 is None:
        pi = np.zeros(S, dtype=np.int64)
    else:
        pi = np.array(pi0)
        if pi.dtype.kind not in "iu" or pi.shape != (S,) or np.any((pi < 0) | (pi >= A)):
            raise ValueError(f"pi0 must be an int array of shape ({S},) with actions in "
                             f"[0, {A}), got {pi0!r}")
        pi = pi.astype(np.int64)
    T = math.ceil(math.log(N) / (1.0 - gamma))
    m = N // (T + 1)
    if m == 0:
        raise ValueError(f"N = {N} transitions cannot fill T + 1 = {T + 1} folds "
                         f"(T = ceil(log N / (1 - gamma)) at gamma = {gamma:g}); need "
                         f"N >= {T + 1}")
    folds = as_generator(seed).permutation(N)[: (T + 1) * m].reshape(T + 1, m)
    labels = np.repeat(np.arange(T + 1, dtype=np.int64), m)
    counts, sums, trans = _grouped_statistics(data.subset(folds.ravel()), labels, T + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rhat = np.where(counts[0] > 0, sums[0] / counts[0], 0.0)
    L_c = c * math.log(2 * (T + 1) * S * A / delta)
    V_hist, pi_hist, Q = _vi_lcb_kernel(rhat, counts, trans, gamma, 1.0 / (1.0 - gamma), L_c, pi)
    return VILCBResult(pi=pi_hist[-1], V=V_hist[-1], Q=Q, V_history=V_hist, pi_history=pi_hist,
                       fold_indices=folds, fold_sizes=np.full(T + 1, m, dtype=np.int64),
                       T=T, c=c, delta=delta, L_c=L_c)


@njit(cache=True)
def _vi_lcb_kernel(rhat, counts, trans, gamma, V_max, L_c, pi0):
    """The iterations t = 1..T of :func:`vi_lcb` on per-fold statistics ``counts (T+1, S, A)``
    and ``trans (T+1, S, A, S)``: returns ``V_history (T+1, S)``, ``pi_history (T+1, S)`` and
    ``Q_T (S, A)`` (-inf on pairs unseen in fold T)."""
    T1, S, A = counts.shape
    V = np.zeros((T1, S))
    pi = np.empty((T1, S), dtype=np.int64)
    for s in range(S):  # explicit loops and math.sqrt: several times faster to compile
        pi[0, s] = pi0[s]
    Q = np.full((S, A), -np.inf)
    for t in range(1, T1):
        for s in range(S):
            best = -np.inf
            arg = 0
            for a in range(A):
                n = counts[t, s, a]
                if n == 0:
                    Q[s, a] = -np.inf
                    continue
                acc = 0.0
                for j in range(S):
                    acc += trans[t, s, a, j] * V[t - 1, j]
                Q[s, a] = rhat[s, a] - V_max * math.sqrt(L_c / n) + gamma * (acc / n)
                if Q[s, a] > best:
                    best = Q[s, a]
                    arg = a
            if best > V[t - 1, s]:
                V[t, s] = best
                pi[t, s] = arg
            else:
                V[t, s] = V[t - 1, s]
                pi[t, s] = pi[t - 1, s]
    return V, pi, Q


def _vi_lcb_numpy(rhat, counts, trans, gamma, V_max, L_c, pi0):
    """Plain-numpy reference of :func:`_vi_lcb_kernel` (whole-array operations per t)."""
    T1, S, A = counts.shape
    V, pi = np.zeros(S), np.array(pi0, dtype=np.int64)
    V_hist, pi_hist = np.zeros((T1, S)), np.empty((T1, S), dtype=np.int64)
    pi_hist[0] = pi
    Q = np.full((S, A), -np.inf)
    for t in range(1, T1):
        n_safe = np.maximum(counts[t], 1)
        Q = np.where(counts[t] > 0,
                     rhat - V_max * np.sqrt(L_c / n_safe) + gamma * ((trans[t] @ V) / n_safe),
                     -np.inf)
        V_mid = Q.max(axis=1)
        better = V_mid > V
        V = np.where(better, V_mid, V)
        pi = np.where(better, np.argmax(Q, axis=1), pi)
        V_hist[t], pi_hist[t] = V, pi
    return V_hist, pi_hist, Q


# --- finite-horizon pessimistic value iteration -----------------------------------------


def hoeffding_penalty(counts, delta: float, c: float = 0.5) -> np.ndarray:
    """Hoeffding penalties ``b_h(s, a) = (H - h) sqrt(c log(4 S A H / delta) / n_h(s, a))``.

    With 0-based steps ``h = 0..H-1`` (``H - h`` steps to go, the range of
    ``r_h + V_{h+1}`` for rewards in [0, 1]). An unseen pair (``n_h(s, a) = 0``) gets
    ``b_h = H - h``, at least ``rhat_h + Phat_h Vhat_{h+1}`` there (``rhat = 0``,
    ``Vhat_{h+1} <= H - h - 1``), so its pessimistic ``Qhat_h`` is 0 whatever ``c`` (as
    :func:`bernstein_penalty` gives ``H``); the formula at ``max(n, 1)`` would fall below
    that value when ``c log(4 S A H / delta) < 1``. Source: the spec sheet's episodic variant of
    VI-LCB (derived), with the audit's valid constant: ``|(Phat_h - P_h) V_{h+1}| <= b_h``
    on every seen triple simultaneously with probability at least ``1 - delta/2`` for
    ``c >= 1/2`` (Hoeffding, union bound over ``S A H``), when ``Phat_h`` is independent of
    ``V_{h+1}`` (e.g. independent samples at each step).

    Parameters
    ----------
    counts : array_like of int, shape (H, S, A)
    delta : float in (0, 1)
    c : float, default 0.5
        >= 0.

    Returns
    -------
    numpy.ndarray, float64, (H, S, A)
        ``H - h`` on unseen pairs.

    Raises
    ------
    ValueError, TypeError
        Invalid counts (named), ``delta`` or ``c``.
    """
    n = _read_counts(counts, shapes="(H, S, A)", ndims=(3,))
    delta = _read_delta(delta)
    c = _read_positive(c, "c", allow_zero=True)
    H, S, A = n.shape
    steps_to_go = (H - np.arange(H, dtype=np.float64))[:, None, None]
    b = steps_to_go * np.sqrt(c * math.log(4 * S * A * H / delta) / np.maximum(n, 1))
    return np.where(n > 0, b, steps_to_go)


def bernstein_penalty(counts_h, variance_h, N: int, H: int, delta: float,
                      c: float = 16.0) -> np.ndarray:
    """Bernstein-style penalty of Li, Shi, Chen, Chi, Wei (2022), eq. (55).

    ``b_h(s, a) = min{ sqrt(c_b log(N H / delta) Var_{Phat_h(s,a)}(V_{h+1}) / N_h(s, a))
    + c_b H log(N H / delta) / N_h(s, a), H }``, and ``b_h = H`` where ``N_h(s, a) = 0``
    (the limit). Li et al. use ``c_b = 16`` as an example and prove Theorem 6 (pessimism
    ``Qhat_h <= Q^{pihat}_h`` and the sub-optimality bound) for ``c_b >= 16``
    (Remark 4 asks ``c_b >= 16`` for Theorem 3). Source status: equation (55), Algorithm 2
    and these constants were checked against a third-party transcription of the published
    paper (Annals of Statistics 52(1), 2024; arXiv 2204.05275) and its extracted text, not
    against the PDF itself.

    Parameters
    ----------
    counts_h : array_like of int, shape (S, A)
        ``N_h(s, a)`` at step h.
    variance_h : array_like of float, shape (S, A)
        ``Var_{Phat_h(s,a)}(V_{h+1})``, non-negative.
    N : int
        Total number of transitions in the dataset (all steps), >= 1.
    H : int
        Horizon, >= 1.
    delta : float in (0, 1)
    c : float, default 16.0
        ``c_b``, >= 0.

    Returns
    -------
    numpy.ndarray, float64, (S, A), in [0, H]

    Raises
    ------
    ValueError, TypeError
        Invalid counts, a negative or non-finite variance (named), shapes that differ,
        ``N, H < 1``, ``delta`` or ``c`` out of range.
    """
    n = _read_counts(counts_h, "counts_h", shapes="(S, A)", ndims=(2,))
    var = np.asarray(variance_h, dtype=np.float64)
    if var.shape != n.shape:
        raise ValueError(f"variance_h has shape {var.shape}, expected {n.shape}")
    bad = ~np.isfinite(var) | (var < 0)
    if bad.any():
        idx = tuple(np.argwhere(bad)[0])
        raise ValueError(f"variance_h[{_index(idx)}] = {plain(float(var[idx]))} is negative "
                         "or not finite")
    N, H = _read_int(N, "N"), _read_int(H, "H")
    delta = _read_delta(delta)
    c = _read_positive(c, "c", allow_zero=True)
    L = math.log(N * H / delta)
    n_safe = np.maximum(n, 1)
    b = np.sqrt(c * L * var / n_safe) + c * H * L / n_safe
    return np.where(n > 0, np.minimum(b, float(H)), float(H))


def pessimistic_value_iteration(data, *, penalty: str = "bernstein", c: float | None = None,
                                delta: float = 0.1) -> OfflineResult:
    """Finite-horizon pessimistic value iteration (VI-LCB for finite-horizon MDPs).

    Li, Shi, Chen, Chi, Wei (2022), Algorithm 2 with the update (52)
    ``Qhat_h(s, a) = max{ rhat_h(s, a) + Phat_h(s, a) Vhat_{h+1} - b_h(s, a), 0 }``,
    ``Vhat_h = max_a Qhat_h``, ``Vhat_H = 0`` (0-based steps), on the empirical model
    (51) (``Phat = 1/S`` on unseen pairs). ``Qhat_h`` is also clipped above at ``H - h``,
    which never binds for rewards in [0, 1] (their Lemma 6). Penalties:

    * ``"bernstein"``: eq. (55), :func:`bernstein_penalty`, default ``c = c_b = 16``
      (Theorem 6 needs ``c_b >= 16``);
    * ``"hoeffding"``: :func:`hoeffding_penalty`, default ``c = 1/2`` (pessimistic for
      ``c >= 1/2`` by the spec sheet's audit).

    The guarantees assume that, given the counts, the transitions are independent, with
    ``Phat_h`` independent of ``Vhat_{h+1}``: true for independent samples at each step
    (:func:`~tabular.sampling.sample_transitions` with an (H, S, A) ``mu``); Li et al.
    obtain it from trajectories by two-fold subsampling (Algorithm 3), not implemented here.
    Undiscounted (the paper's setting). An unseen pair has ``b_h = H`` (Bernstein) or
    ``H - h`` (Hoeffding), hence ``Qhat = 0`` for every ``c``; so ``Vhat_h(s)`` is the
    maximum over seen actions (0 at a state with none), and the greedy policy over seen
    pairs never prefers an unseen one (a state with no seen action takes action 0).

    Parameters
    ----------
    data : Transitions or TransitionStatistics
        Per-step data (steps ``h`` in ``[0, H)``), rewards in [0, 1], ``N >= 1``.
    penalty : {"bernstein", "hoeffding"}
    c : float, optional
        The constant (``c_b`` or the Hoeffding ``c``), >= 0.
    delta : float in (0, 1), default 0.1

    Returns
    -------
    OfflineResult
        ``pi (H, S)``, ``V (H, S)``, ``Q (H, S, A)``, ``penalty (H, S, A)``.

    Raises
    ------
    ValueError
        An empty dataset, pooled data (no steps), an unknown penalty, mean rewards outside
        [0, 1], ``c`` or ``delta`` out of range.
    """
    stats = _as_statistics(data)
    if not stats.per_step:
        raise ValueError("pessimistic_value_iteration needs per-step data (H, S, A); these "
                         "are pooled (use vi_lcb for a discounted MDP)")
    _require_data(stats)
    if penalty not in ("bernstein", "hoeffding"):
        raise ValueError(f"penalty must be 'bernstein' or 'hoeffding', got {penalty!r}")
    if c is None:
        c = 16.0 if penalty == "bernstein" else 0.5
    delta = _read_delta(delta)
    model = empirical_model(stats)
    _require_unit_rewards(model.rhat, model.seen, "pessimistic_value_iteration")
    H, S, A = stats.counts.shape
    if penalty == "hoeffding":
        b_all = hoeffding_penalty(stats.counts, delta, c)
    else:
        b_all = np.empty((H, S, A))
    V, Q = np.zeros((H + 1, S)), np.empty((H, S, A))
    for h in reversed(range(H)):
        PV = model.Phat[h] @ V[h + 1]
        if penalty == "bernstein":
            variance = np.einsum("sat,sat->sa", model.Phat[h],
                                 (V[h + 1][None, None, :] - PV[..., None]) ** 2)
            b_all[h] = bernstein_penalty(stats.counts[h], variance, stats.N, H, delta, c)
        Q[h] = np.clip(model.rhat[h] + PV - b_all[h], 0.0, float(H - h))
        V[h] = Q[h].max(axis=1)
    return OfflineResult(pi=_greedy_seen(Q, model.seen), V=V[:H], Q=Q, penalty=b_all,
                         method=f"pessimistic_value_iteration ({penalty})")
