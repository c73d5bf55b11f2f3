"""Exact and iterative planning in tabular MDPs: value iteration, backward induction, policy iteration, policy evaluation, occupancy measures (Puterman 1994, ch. 4 and 6; Bertsekas and Tsitsiklis 1991) and the concentrability C* (Rashidinejad et al. 2021)."""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numba
import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from tabular import _kernels
from tabular.mdp import TabularMDP, _read_int, _require_mdp, proper_policy, validate_policy

__all__ = [
    "PlanningResult",
    "PolicyValue",
    "value_iteration",
    "backward_induction",
    "policy_iteration",
    "evaluate_policy",
    "occupancy",
    "expected_return",
    "C_star",
]


@dataclass(frozen=True)
class PlanningResult:
    """The output of a planner.

    Attributes
    ----------
    V : numpy.ndarray, float64
        (S,) for discounted and episodic MDPs; (H, S) for finite horizon, ``V[h]`` the value
        with ``H - h`` steps to go.
    Q : numpy.ndarray, float64
        (S, A), or (H, S, A) for finite horizon.
    pi : numpy.ndarray, int64
        (S,) or (H, S): the greedy policy for ``Q``, ties to the lowest action index (policy
        iteration returns its stable policy instead, see :func:`policy_iteration`).
    n_iter : int
        Sweeps (value iteration), steps (backward induction: H) or policy evaluations
        (policy iteration).
    converged : bool
        Whether the stopping rule was met before the iteration cap.
    residual : float
        The method's last residual (see each method).
    error_bound : float
        A certified bound on ``||V - V*||_inf`` (up to floating-point rounding).
    epsilon_refers_to : str
        ``"value"`` (stops on a bound on the value error) or ``"policy"`` (stops when the
        policy is stable).
    method : str
        ``"value_iteration"``, ``"backward_induction"`` or ``"policy_iteration"``.
    """

    V: np.ndarray
    Q: np.ndarray
    pi: np.ndarray
    n_iter: int
    converged: bool
    residual: float
    error_bound: float
    epsilon_refers_to: str
    method: str


@dataclass(frozen=True)
class PolicyValue:
    """Exact value of a policy: ``V`` (S,) or (H, S), ``Q`` (S, A) or (H, S, A), and the
    residual ``||(I - gamma P_pi) V - R_pi||_inf`` of the linear solve (0.0 for finite horizon)."""

    V: np.ndarray
    Q: np.ndarray
    residual: float


# --- helpers ----------------------------------------------------------------------------


def _rows(mdp: TabularMDP):
    """P as (HP, S*A, S) and R as (HR, S*A) views, HP and HR in {1, H} (no copies)."""
    S, A = mdp.S, mdp.A
    P3 = mdp.P.reshape(-1, S * A, S)
    R2 = mdp.R.reshape(-1, S * A)
    return P3, R2


def _threaded() -> bool:
    """Whether backups may run on Numba's threads (``numba.set_num_threads``); the results
    are bit-identical either way."""
    return numba.get_num_threads() > 1


def _greedy(Q: np.ndarray) -> np.ndarray:
    """argmax over the last axis, ties to the lowest index, int64."""
    return np.argmax(Q, axis=-1).astype(np.int64)


def _P_pi(mdp: TabularMDP, pi_SA: np.ndarray):
    """State-to-state transitions ``P_pi (S, S)`` and rewards ``R_pi (S,)`` of a stationary
    policy in a stationary MDP."""
    P_pi = np.einsum("sa,sat->st", pi_SA, mdp.P)
    R_pi = np.einsum("sa,sa->s", pi_SA, mdp.R)
    return P_pi, R_pi


def _reached_from(adjacency, start: np.ndarray) -> np.ndarray:
    """Mask (S,) of the nodes reached from the nodes of the mask ``start`` (S,) along the
    edges of the sparse (S, S) ``adjacency`` (``start`` included)."""
    S = start.shape[0]
    # Add a source node S with an edge to every start node and search from it.
    source_row = sparse.csr_array(np.append(start, False)[None, :])
    graph = sparse.hstack([adjacency, sparse.csr_array((S, 1), dtype=bool)])
    graph = sparse.vstack([graph, source_row]).tocsr()
    reached = np.zeros(S + 1, dtype=bool)
    reached[csgraph.breadth_first_order(graph, S, directed=True, return_predecessors=False)] = True
    return reached[:S]


def _check_proper(P_pi: np.ndarray, terminal: np.ndarray) -> None:
    """Raise ValueError unless every state reaches the terminal set under ``P_pi``.

    Reachability is read off the graph ``s -> s'`` iff ``P_pi[s, s'] > 0`` (a finite chain
    reaches a set w.p. 1 from everywhere iff it can reach it from everywhere).
    """
    # States reached from the terminal set in the reversed graph are those that can reach it.
    stuck = ~_reached_from(sparse.csr_array(P_pi > 0).T, terminal)
    if not stuck.any():
        return
    # States that cannot reach the terminal set only lead to such states: walk until a repeat.
    s = int(np.flatnonzero(stuck)[0])
    path, seen = [], {}
    while s not in seen:
        seen[s] = len(path)
        path.append(s)
        s = int(np.flatnonzero((P_pi[s] > 0) & stuck)[0])
    cycle = path[seen[s]:] + [s]
    raise ValueError(
        f"policy is improper: from state {cycle[0]} it never reaches a terminal state "
        f"(cycle {' -> '.join(str(c) for c in cycle)})"
    )


def _evaluate_stationary(mdp: TabularMDP, pi_SA: np.ndarray):
    """Exact ``V^pi`` of a stationary policy (discounted or episodic MDP) by a linear solve.

    Returns ``(V (S,), residual, P_pi, keep)`` with ``keep`` the mask of states solved for
    (non-terminal ones for episodic MDPs, all otherwise)."""
    P_pi, R_pi = _P_pi(mdp, pi_SA)
    if mdp.kind == "episodic":
        _check_proper(P_pi, mdp.terminal)
        keep = ~mdp.terminal
    else:
        keep = np.ones(mdp.S, dtype=bool)
    M = np.eye(int(keep.sum())) - mdp.gamma * P_pi[np.ix_(keep, keep)]
    V = np.zeros(mdp.S)
    V[keep] = np.linalg.solve(M, R_pi[keep])
    residual = float(np.max(np.abs(M @ V[keep] - R_pi[keep]), initial=0.0))
    return V, residual, P_pi, keep


def _q_from_v(mdp: TabularMDP, V: np.ndarray) -> np.ndarray:
    """``Q = R + gamma P V`` (S, A) for a stationary MDP."""
    P3, R2 = _rows(mdp)
    V = np.ascontiguousarray(V, dtype=np.float64)
    return _kernels.q_backup(P3[0], R2[0], V, mdp.gamma, _threaded()).reshape(mdp.S, mdp.A)


# --- planners ---------------------------------------------------------------------------


_UNIT_ROUNDOFF = np.finfo(np.float64).eps / 2
_MAX_DEFAULT_SWEEPS = 10**7


def _rounding_floor(mdp: TabularMDP, V0: np.ndarray) -> float:
    """Bound on ``||V_k - V*||_inf`` that float64 rounding alone can cause in value iteration.

    One computed backup differs from the exact one by at most
    ``delta = gamma_n (||R||_inf + gamma V_max)`` with ``gamma_n = n u / (1 - n u)``,
    ``n = S + 2`` (a dot product of length S, a product and a sum; Higham 2002, *Accuracy
    and Stability of Numerical Algorithms*, Lemma 3.1 and eq. 3.5), ``u = 2**-53`` and
    ``V_max = max(||V0||, ||R|| / (1 - gamma))`` bounding every iterate. Then
    ``||V_k - V*|| <= (gamma ||V_k - V_{k-1}|| + delta) / (1 - gamma)``.
    """
    n = mdp.S + 2
    gamma_n = n * _UNIT_ROUNDOFF / (1.0 - n * _UNIT_ROUNDOFF)
    R_max = float(np.max(np.abs(mdp.R)))
    V_max = max(float(np.max(np.abs(V0), initial=0.0)), R_max / (1.0 - mdp.gamma))
    return gamma_n * (R_max + mdp.gamma * V_max) / (1.0 - mdp.gamma)


def _default_max_iter(mdp: TabularMDP, V0: np.ndarray, epsilon: float) -> int:
    """Sweeps that provably meet the stopping rule, plus a margin for rounding.

    ``||V_k - V_{k-1}|| <= gamma^(k-1) D`` with ``D = ||R|| + (1 + gamma) ||V0|| >= ||T V0 - V0||``,
    so ``gamma ||V_k - V_{k-1}|| / (1 - gamma) <= epsilon`` once
    ``k >= k* = log(epsilon (1 - gamma) / D) / log(gamma)``; the cap is ``k* + ceil(k*/10) + 10``.
    """
    gamma = mdp.gamma
    D = float(np.max(np.abs(mdp.R))) + (1.0 + gamma) * float(np.max(np.abs(V0), initial=0.0))
    if gamma == 0.0 or D == 0.0:
        k_star = 1
    else:
        k_star = max(1, math.ceil(math.log(epsilon * (1.0 - gamma) / D) / math.log(gamma)))
    return k_star + math.ceil(k_star / 10) + 10


def value_iteration(mdp: TabularMDP, *, epsilon: float | None = None,
                    max_iter: int | None = None, V0=None) -> PlanningResult:
    """Value iteration ``V_k = max_a (R + gamma P V_{k-1})`` (Puterman 1994, sec. 6.3).

    Stops at the first k with the certified bound
    ``(gamma ||V_k - V_{k-1}||_inf + delta) / (1 - gamma) <= epsilon``, which implies
    ``||V_k - V*||_inf <= epsilon`` (Puterman 1994, Thm. 6.3.1 / Prop. 6.6.5), where
    ``delta`` bounds the float64 rounding of one backup (Higham 2002, Lemma 3.1; see
    ``_rounding_floor``): without it a residual that rounds to 0 near gamma = 1 would
    certify an error of 0.
    Sweeps over a P of at least 2**18 entries run on Numba's threads
    (``numba.set_num_threads``); the result is bit-identical whatever their number.

    Parameters
    ----------
    mdp : TabularMDP
        ``"discounted"`` (gamma < 1). A ``"finite"`` MDP is solved exactly by
        :func:`backward_induction` instead (``max_iter`` and ``V0`` must then be None).
    epsilon : float or None
        Target bound on ``||V - V*||_inf`` (same units as R); > 0. Default: 1e-10, or twice
        the rounding floor ``delta / (1 - gamma)`` when that is larger.
    max_iter : int or None
        Iteration cap, honoured exactly (``converged=False`` when reached first). Default:
        the number of sweeps that provably reaches ``epsilon`` from ``V0``,
        ``k* = ceil(log(epsilon (1 - gamma) / D) / log(gamma))`` with
        ``D = ||R||_inf + (1 + gamma) ||V0||_inf``, plus ``ceil(k*/10) + 10`` for rounding
        (an epsilon below the rounding floor of ``||V*||`` then ends with converged=False).
    V0 : array_like (S,), optional
        Initial values; zeros by default.

    Returns
    -------
    PlanningResult
        ``V = V_k (S,)``; ``Q = R + gamma P V_{k-1} (S, A)`` (so ``V = max_a Q``); ``pi`` greedy
        for ``Q``; ``residual = ||V_k - V_{k-1}||_inf``;
        ``error_bound = (gamma * residual + delta) / (1 - gamma)``;
        ``epsilon_refers_to = "value"``.

    Raises
    ------
    ValueError
        For an episodic MDP (gamma = 1 without H: use :func:`policy_iteration`), a
        non-positive or non-finite epsilon, ``max_iter < 1``, a ``V0`` of the wrong shape or
        not finite; without ``max_iter``, an epsilon at or below the rounding floor (it cannot
        be certified) or one that needs more than 1e7 sweeps (gamma very close to 1: use
        :func:`policy_iteration`, or give ``max_iter``).
    TypeError
        If ``mdp`` is not a TabularMDP, ``epsilon`` is not a real number or ``max_iter`` is
        not an int.
    """
    _require_mdp(mdp)
    if mdp.kind == "finite":
        if max_iter is not None or V0 is not None:
            raise ValueError(
                "finite-horizon MDP: value iteration is backward induction, which is exact; "
                "max_iter and V0 do not apply (call backward_induction(mdp))"
            )
        return backward_induction(mdp)
    if mdp.kind == "episodic":
        raise ValueError(
            "value_iteration needs gamma < 1 (it certifies its error through the contraction "
            "factor gamma); for an episodic MDP (gamma = 1, terminal states) use "
            "policy_iteration(mdp)"
        )
    if epsilon is not None:
        if isinstance(epsilon, (bool, np.bool_)) or not isinstance(epsilon, numbers.Real):
            raise TypeError(f"epsilon must be a real number, got {type(epsilon).__name__}")
        epsilon = float(epsilon)
        if not (np.isfinite(epsilon) and epsilon > 0):
            raise ValueError(f"epsilon = {epsilon!r} must be positive and finite")
    if V0 is None:
        V0 = np.zeros(mdp.S)
    else:
        V0 = np.array(V0, dtype=np.float64)
        if V0.shape != (mdp.S,):
            raise ValueError(f"V0 has shape {V0.shape}, expected ({mdp.S},)")
        if not np.isfinite(V0).all():
            s = int(np.flatnonzero(~np.isfinite(V0))[0])
            raise ValueError(f"V0[{s}] = {V0[s]} is not finite")
    floor = _rounding_floor(mdp, V0)
    if epsilon is None:
        epsilon = max(1e-10, 2.0 * floor)
    if max_iter is None:
        if epsilon <= floor:
            raise ValueError(
                f"epsilon = {epsilon:g} is at or below what float64 value iteration can certify "
                f"here: rounding alone allows an error of {floor:.3g} (gamma = {mdp.gamma:g}, "
                f"S = {mdp.S}); ask for a larger epsilon, use policy_iteration(mdp), or give "
                "max_iter to run a fixed number of sweeps"
            )
        max_iter = _default_max_iter(mdp, V0, epsilon - floor)
        if max_iter > _MAX_DEFAULT_SWEEPS:
            raise ValueError(
                f"certifying epsilon = {epsilon:g} at gamma = {mdp.gamma:g} needs about "
                f"{max_iter:.3g} sweeps; use policy_iteration(mdp) (exact linear solves), a "
                "larger epsilon, or give max_iter explicitly"
            )
    max_iter = _read_int(max_iter, "max_iter")
    P3, R2 = _rows(mdp)
    # The kernel stops on gamma * residual / (1 - gamma) <= epsilon - floor (never, if < 0).
    V, Q, n_iter, residual = _kernels.value_iteration_kernel(
        P3[0], R2[0], mdp.gamma, V0, epsilon - floor, max_iter, _threaded()
    )
    Q = Q.reshape(mdp.S, mdp.A)
    error_bound = (mdp.gamma * residual) / (1.0 - mdp.gamma) + floor
    return PlanningResult(
        V=V, Q=Q, pi=_greedy(Q), n_iter=int(n_iter), converged=bool(error_bound <= epsilon),
        residual=float(residual), error_bound=float(error_bound), epsilon_refers_to="value",
        method="value_iteration",
    )


def backward_induction(mdp: TabularMDP) -> PlanningResult:
    """Backward induction ``Q_h = R_h + gamma P_h V_{h+1}``, ``V_h = max_a Q_h``, ``V_H = 0``
    (Puterman 1994, sec. 4.5), for stationary or time-inhomogeneous P and R and any gamma <= 1.
    Threads as in :func:`value_iteration` (bit-identical results whatever their number).

    Parameters
    ----------
    mdp : TabularMDP
        Of kind ``"finite"``.

    Returns
    -------
    PlanningResult
        ``V (H, S)``, ``Q (H, S, A)``, ``pi (H, S)`` with ``h = 0..H-1`` (``V[h]`` has
        ``H - h`` steps to go); exact up to floating-point rounding: ``residual = 0.0``,
        ``error_bound = 0.0``, ``n_iter = H``, ``converged = True``.

    Raises
    ------
    ValueError
        If the MDP has no horizon H.
    """
    _require_mdp(mdp)
    if mdp.kind != "finite":
        raise ValueError(
            f"backward_induction needs a finite-horizon MDP (H given), got kind {mdp.kind!r}; "
            "use value_iteration (discounted) or policy_iteration (episodic)"
        )
    P3, R2 = _rows(mdp)
    V, Q = _kernels.backward_induction_kernel(P3, R2, mdp.gamma, mdp.H, _threaded())
    Q = Q.reshape(mdp.H, mdp.S, mdp.A)
    return PlanningResult(
        V=V, Q=Q, pi=_greedy(Q), n_iter=mdp.H, converged=True, residual=0.0, error_bound=0.0,
        epsilon_refers_to="value", method="backward_induction",
    )


def policy_iteration(mdp: TabularMDP, *, pi0=None, max_iter: int = 1000) -> PlanningResult:
    """Policy iteration with exact evaluation (Howard 1960; Puterman 1994, sec. 6.4;
    Bertsekas and Tsitsiklis 1991 for episodic / SSP MDPs).

    Each iteration solves ``(I - gamma P_pi) V = R_pi`` (on the non-terminal states for
    episodic MDPs, with V = 0 on terminal states), forms ``Q = R + gamma P V`` and switches
    state s to the lowest-index maximiser of ``Q[s]`` only when it is strictly better than
    the current action (ties keep the current action, so the iteration terminates). It
    stops when the policy is stable.

    Parameters
    ----------
    mdp : TabularMDP
        ``"discounted"`` or ``"episodic"``.
    pi0 : array_like of int (S,), optional
        Initial deterministic policy. Default: :func:`~tabular.mdp.proper_policy` for
        episodic MDPs, the one-step greedy policy ``argmax_a R[s, a]`` for discounted ones.
        For an episodic MDP an improper ``pi0`` raises.
    max_iter : int, default 1000
        Cap on the number of policy evaluations, honoured exactly.

    Returns
    -------
    PlanningResult
        ``V = V^pi (S,)`` and ``Q = R + gamma P V (S, A)`` for the last evaluated policy
        ``pi (S,)`` (the stable policy when converged; ties keep earlier actions, not the lowest
        index); ``n_iter`` = policy evaluations; ``residual = ||(I - gamma P_pi) V - R_pi||_inf``
        of the last solve; ``epsilon_refers_to = "policy"``. ``error_bound``: discounted
        ``(residual + gap) / (1 - gamma)`` with ``gap = ||max_a Q - Q_pi||_inf`` (0 when the
        policy is stable), since ``||V - V*|| <= ||T V - V|| / (1 - gamma)``; episodic
        ``residual * max_s E_pi[steps to termination from s]`` (solving
        ``(I - P_pi) T = 1`` on non-terminal states) when converged, ``inf`` otherwise.

    Raises
    ------
    ValueError
        For a finite-horizon MDP (use :func:`backward_induction`), an invalid or (episodic)
        improper ``pi0``, ``max_iter < 1``, or an episodic MDP where an improved policy
        turns out improper (the SSP assumptions checked by TabularMDP exclude this).
    TypeError
        If ``pi0`` is not an integer array.
    """
    _require_mdp(mdp)
    if mdp.kind == "finite":
        raise ValueError("policy_iteration needs a discounted or episodic MDP; for a "
                         "finite-horizon MDP use backward_induction(mdp)")
    max_iter = _read_int(max_iter, "max_iter")
    if pi0 is None:
        pi = proper_policy(mdp) if mdp.kind == "episodic" else _greedy(mdp.R)
    else:
        arr = np.asarray(pi0)
        if arr.dtype.kind not in "iu":
            raise TypeError(
                f"pi0 must be a deterministic policy (integer array (S,)), got dtype {arr.dtype}"
            )
        try:  # the MDP has no horizon here, so validate_policy only accepts shape (S,)
            validate_policy(mdp, arr)
        except ValueError as err:
            raise ValueError(f"invalid pi0: {err}") from None
        pi = arr.astype(np.int64)
    eye = np.eye(mdp.A)
    states = np.arange(mdp.S)
    converged = False
    for n_iter in range(1, max_iter + 1):
        V, residual, P_pi, keep = _evaluate_stationary(mdp, eye[pi])
        Q = _q_from_v(mdp, V)
        q_pi = Q[states, pi]
        best = _greedy(Q)
        switch = Q[states, best] > q_pi
        if not switch.any():
            converged = True
            break
        if n_iter < max_iter:
            pi = np.where(switch, best, pi)
    gap = float(np.max(Q.max(axis=1) - q_pi))
    if mdp.kind == "discounted":
        error_bound = (residual + gap) / (1.0 - mdp.gamma)
    elif converged:
        M = np.eye(int(keep.sum())) - P_pi[np.ix_(keep, keep)]
        T = np.linalg.solve(M, np.ones(M.shape[0]))
        error_bound = residual * float(np.max(T, initial=0.0))
    else:
        error_bound = math.inf
    return PlanningResult(
        V=V, Q=Q, pi=pi, n_iter=n_iter, converged=converged, residual=residual,
        error_bound=float(error_bound), epsilon_refers_to="policy", method="policy_iteration",
    )


# --- evaluation and occupancy -----------------------------------------------------------


def _time_indexed(pi_prob: np.ndarray) -> np.ndarray:
    """(S, A) or (H, S, A) policy as a C-contiguous (HPI, S, A), HPI in {1, H}."""
    return np.ascontiguousarray(pi_prob.reshape((-1,) + pi_prob.shape[-2:]))


def evaluate_policy(mdp: TabularMDP, pi) -> PolicyValue:
    """Exact value of a policy (Puterman 1994, sec. 4.2 and 6.1).

    Discounted: ``V = (I - gamma P_pi)^{-1} R_pi``; episodic: the same with gamma = 1 on the
    non-terminal states (V = 0 on terminal states), after checking that ``pi`` is proper;
    finite horizon: the backward recursion ``V_h = sum_a pi_h(a|s) (R_h + gamma P_h V_{h+1})``,
    ``V_H = 0``.

    Parameters
    ----------
    mdp : TabularMDP
    pi : array_like
        Deterministic (S,) / (H, S) int or stochastic (S, A) / (H, S, A) float (time-indexed
        shapes only for finite horizon); see :func:`~tabular.mdp.validate_policy`.

    Returns
    -------
    PolicyValue
        ``V (S,)``, ``Q = R + gamma P V (S, A)`` (finite horizon: ``V (H, S)``,
        ``Q (H, S, A)``) and the residual ``||(I - gamma P_pi) V - R_pi||_inf`` of the solve
        (0.0 for finite horizon, exact up to rounding).

    Raises
    ------
    ValueError
        For an invalid policy (naming the index) or, episodic MDPs, an improper one
        (naming a state on a cycle that never reaches a terminal state).
    """
    _require_mdp(mdp)
    pi_prob = validate_policy(mdp, pi)
    if mdp.kind == "finite":
        P3, R2 = _rows(mdp)
        V, Q = _kernels.evaluate_finite_kernel(P3, R2, _time_indexed(pi_prob), mdp.gamma, mdp.H,
                                               _threaded())
        return PolicyValue(V=V, Q=Q.reshape(mdp.H, mdp.S, mdp.A), residual=0.0)
    V, residual, _, _ = _evaluate_stationary(mdp, pi_prob)
    return PolicyValue(V=V, Q=_q_from_v(mdp, V), residual=residual)


def occupancy(mdp: TabularMDP, pi) -> np.ndarray:
    """State-action occupancy measure of ``pi`` from ``mu0`` (Puterman 1994, sec. 6.9).

    Parameters
    ----------
    mdp : TabularMDP
    pi : array_like
        A policy (see :func:`evaluate_policy`).

    Returns
    -------
    numpy.ndarray, float64
        * discounted: ``d(s, a) = (1 - gamma) sum_t gamma^t Pr(s_t = s, a_t = a)``, (S, A),
          summing to 1; ``d_S`` solves ``(I - gamma P_pi^T) d_S = (1 - gamma) mu0``.
        * finite horizon: per-step distributions ``d_h(s, a) = Pr(s_h = s, a_h = a)``,
          (H, S, A), each ``d_h`` summing to 1 (forward recursion).
        * episodic: expected number of visits to (s, a) before termination, (S, A), zero on
          terminal states (solve ``(I - P_pi^T) x = mu0`` on non-terminal states).

    Raises
    ------
    ValueError
        For an invalid policy, or an improper policy of an episodic MDP.
    """
    _require_mdp(mdp)
    pi_prob = validate_policy(mdp, pi)
    S = mdp.S
    if mdp.kind == "finite":
        pi3 = np.broadcast_to(pi_prob, (mdp.H, S, mdp.A))
        d = np.empty((mdp.H, S, mdp.A))
        d_S = np.array(mdp.mu0)
        for h in range(mdp.H):
            d[h] = d_S[:, None] * pi3[h]
            if h + 1 < mdp.H:
                d_S = np.tensordot(d[h], mdp.P_h(h), axes=2)
        return d
    P_pi, _ = _P_pi(mdp, pi_prob)
    if mdp.kind == "discounted":
        d_S = np.linalg.solve(np.eye(S) - mdp.gamma * P_pi.T, (1.0 - mdp.gamma) * mdp.mu0)
        return d_S[:, None] * pi_prob
    _check_proper(P_pi, mdp.terminal)
    keep = ~mdp.terminal
    d_S = np.zeros(S)
    d_S[keep] = np.linalg.solve(np.eye(int(keep.sum())) - P_pi[np.ix_(keep, keep)].T, mdp.mu0[keep])
    return d_S[:, None] * pi_prob


def expected_return(mdp: TabularMDP, pi) -> float:
    """``J(pi) = sum_s mu0(s) V^pi(s)`` (at h = 0 for finite horizon), in reward units.

    Raises ValueError as :func:`evaluate_policy`."""
    V = evaluate_policy(mdp, pi).V
    V0 = V[0] if mdp.kind == "finite" else V
    return float(mdp.mu0 @ V0)


def _read_distribution(mu, shape, name: str) -> np.ndarray:
    arr = np.asarray(mu)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.shape not in shape:
        raise ValueError(f"{name} has shape {arr.shape}, expected one of {shape}")
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        where = ", ".join(map(str, idx))
        raise ValueError(f"{name}[{where}] = {arr[idx]} is negative or not finite")
    atol = 1e-9
    sums = arr.reshape(-1, arr.shape[-2] * arr.shape[-1]).sum(axis=1)
    bad = np.abs(sums - 1.0) > atol
    if bad.any():
        h = int(np.flatnonzero(bad)[0])
        where = name if arr.ndim == 2 else f"{name}[{h}]"
        raise ValueError(f"{where} sums to {sums[h]!r}, not 1 (atol {atol:.2g})")
    return arr


def _occupancy_support(mdp: TabularMDP, pi_prob: np.ndarray) -> np.ndarray:
    """Mask (S, A) of the pairs with positive occupancy under a stationary policy
    (discounted or episodic MDP): s reachable from supp(mu0) along the edges s -> s' with
    ``pi(a|s) P[s, a, s'] > 0`` for some a (only s_0 counts when gamma = 0; non-terminal s
    for episodic MDPs), and ``pi(a|s) > 0``."""
    acts = pi_prob > 0
    reached = mdp.mu0 > 0
    if mdp.gamma > 0.0:
        adjacency = sparse.csr_array((acts[:, :, None] & (mdp.P > 0)).any(axis=1))
        reached = _reached_from(adjacency, reached)
    if mdp.kind == "episodic":
        reached = reached & ~mdp.terminal
    return reached[:, None] & acts


def C_star(mdp: TabularMDP, mu, pi=None) -> float:
    """Single-policy concentrability ``C* = max_{s,a} d^pi(s, a) / mu(s, a)``
    (Rashidinejad, Zhu, Ma, Jiao and Russell 2021, NeurIPS, "Bridging offline reinforcement
    learning and imitation learning: a tale of pessimism", definition of C*).

    Parameters
    ----------
    mdp : TabularMDP
    mu : array_like (S, A), or (H, S, A) for finite horizon
        Data distribution over state-action pairs (per step for (H, S, A)): non-negative,
        each distribution summing to 1 (atol 1e-9).
    pi : array_like, optional
        The comparator policy; default an optimal policy (value iteration, backward induction
        or policy iteration by kind).

    Returns
    -------
    float
        ``max`` over (h,) s, a of ``d / mu`` where ``d`` is the normalised occupancy of ``pi``
        (discounted: as :func:`occupancy`; finite horizon: per step; episodic: expected visits
        divided by the expected episode length); pairs with ``d > 0 = mu`` give ``inf``, where
        ``d > 0`` is decided exactly (discounted and episodic: from reachability in the graph
        of ``P`` under ``pi``, not from the rounded solve). At least 1, since d and mu both
        sum to 1.

    Raises
    ------
    ValueError
        For an invalid ``mu`` (naming the index or the row sum), an invalid policy, or an
        episodic MDP whose ``mu0`` sits on terminal states only (no occupancy to normalise).
    """
    _require_mdp(mdp)
    S, A = mdp.S, mdp.A
    shapes = ((S, A), (mdp.H, S, A)) if mdp.kind == "finite" else ((S, A),)
    mu = _read_distribution(mu, shapes, "mu")
    if pi is None:
        solve = {"discounted": value_iteration, "finite": backward_induction,
                 "episodic": policy_iteration}[mdp.kind]
        pi = solve(mdp).pi
    pi_prob = validate_policy(mdp, pi)
    d = occupancy(mdp, pi_prob)
    if mdp.kind == "episodic":
        total = d.sum()
        if total == 0.0:
            raise ValueError("mu0 puts all its mass on terminal states: the occupancy is zero")
        d = d / total
    d, mu = np.broadcast_arrays(d, mu)
    # The forward recursion of a finite horizon leaves exact zeros off the support; a linear
    # solve may not (~1e-17 at unreachable pairs), so there the support is read off the graph.
    support = d > 0 if mdp.kind == "finite" else _occupancy_support(mdp, pi_prob)
    if (support & (mu == 0)).any():
        return math.inf
    return float(np.max(d[support] / mu[support]))
