"""ReCOIL: offline imitation from arbitrary data plus expert demonstrations, as a tabular primal over occupancies (Sikchi, Zheng, Zhang, Niekum, "Dual RL", ICLR 2024, arXiv 2302.08560; spec sheet ``papers/dual_rl_lp.md`` sec. E).

:func:`recoil` solves the primal; :func:`ratio_imitation` is the occupancy-ratio
(SMODICE-style) baseline that needs ``dO >> dE``; :func:`discounted_occupancy_estimate`
estimates ``dE`` and ``dS`` from sampled episodes. cvxpy is imported inside the functions that
need it, so ``import tabular.recoil`` stays light.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tabular.lp import _check_kind, _solve, flow_matrix
from tabular.mdp import TabularMDP, _read_positive
from tabular.planning import _read_distribution
from tabular.sampling import _read_episodes

__all__ = [
    "ReCOILResult",
    "discounted_occupancy_estimate",
    "feasible_support",
    "ratio_imitation",
    "recoil",
]


@dataclass(frozen=True)
class ReCOILResult:
    """The solution of an occupancy-matching program (:func:`recoil`, :func:`ratio_imitation`).

    Attributes
    ----------
    status : str
        ``"optimal"``; ``"infeasible"`` when no occupancy lives on the allowed pairs (decided
        exactly by :func:`feasible_support`, before any solver runs); otherwise cvxpy's status
        (``"optimal_inaccurate"``, ...) or ``"solver_error"`` when Clarabel stopped without
        one (a solver failure, not a proof of infeasibility). Only ``"optimal"`` carries a
        solution: otherwise
        ``d`` and ``pi`` are None and the numbers nan.
    objective : float
        The optimal value (nats for KL).
    d : numpy.ndarray or None
        (S, A) normalised occupancy (sums to 1), exactly 0 off the allowed pairs.
    pi : numpy.ndarray or None
        (S, A) float64: ``d / sum_a d`` where ``sum_a d > 1e-12``; uniform elsewhere (states
        the occupancy does not visit, where the action does not affect the return).
    flow_residual : float
        ``||F d - b||_inf`` of the returned ``d`` (nan without a solution).
    allowed : numpy.ndarray
        (S, A) bool: the pairs the program may use (the support of its target).
    form : str
        ``"recoil-kl"`` or ``"ratio-kl"``.
    """

    status: str
    objective: float
    d: np.ndarray | None
    pi: np.ndarray | None
    flow_residual: float
    allowed: np.ndarray
    form: str

    @property
    def ok(self) -> bool:
        """True when the status is ``"optimal"``."""
        return self.status == "optimal"


_VISITED = 1e-12


def feasible_support(mdp: TabularMDP, allowed) -> np.ndarray:
    """The pairs that some occupancy supported on ``allowed`` can use, or an empty mask.

    An occupancy ``d >= 0`` of a discounted MDP with ``gamma > 0`` puts mass on every
    successor of a pair it uses (``sum_a d(s', a) >= gamma P(s'|s, a) d(s, a)``), so its
    support is closed under successors. The greatest set of states ``W`` from which one can
    stay on allowed pairs forever is the fixed point of ``W <- {s : some allowed (s, a) has
    all its successors in W}`` (from ``W`` = all states); an occupancy on the allowed pairs
    exists iff ``supp(mu0) <= W`` (then any policy on the pairs kept below has its
    occupancy there). With ``gamma = 0`` only ``supp(mu0)`` needs an allowed action.

    Parameters
    ----------
    mdp : TabularMDP
        Discounted.
    allowed : array_like of bool, (S, A)

    Returns
    -------
    numpy.ndarray of bool, (S, A)
        The allowed pairs at states of ``W`` whose successors all lie in ``W``; all False
        when ``supp(mu0)`` is not inside ``W`` (no occupancy exists).

    Raises
    ------
    ValueError
        For a non-discounted MDP or a mask of the wrong shape.
    """
    _check_kind(mdp, ("discounted",), "feasible_support")
    allowed = np.asarray(allowed)
    if allowed.dtype != bool or allowed.shape != (mdp.S, mdp.A):
        raise ValueError(f"allowed must be a boolean mask of shape ({mdp.S}, {mdp.A}), got "
                         f"{allowed.dtype} {allowed.shape}")
    reach = mdp.P > 0
    W = np.ones(mdp.S, dtype=bool)
    while True:
        closed = ~(reach & ~W[None, None, :]).any(axis=2) if mdp.gamma > 0 else True
        keep = allowed & closed & W[:, None]
        W_new = keep.any(axis=1)
        if np.array_equal(W_new, W):
            break
        W = W_new
    if (mdp.mu0 > 0)[~W].any():
        return np.zeros_like(allowed)
    return keep


def _solve_kl_program(mdp, allowed, objective_of, form, solver_options):
    """Shared body: variables on the feasible pairs only, flow constraint, Clarabel."""
    import cvxpy as cp

    pairs = feasible_support(mdp, allowed)
    if not pairs.any():
        return ReCOILResult("infeasible", math.nan, None, None, math.nan, allowed, form)
    F, b = flow_matrix(mdp)
    idx = np.flatnonzero(pairs.ravel())
    x = cp.Variable(idx.size, nonneg=True)
    problem = cp.Problem(cp.Minimize(objective_of(x, idx)), [F[:, idx] @ x == b])
    status, _ = _solve(problem, "CLARABEL", solver_options)
    if status != "optimal":
        return ReCOILResult(status, math.nan, None, None, math.nan, allowed, form)
    flat = np.zeros(mdp.S * mdp.A)
    flat[idx] = np.maximum(x.value, 0.0)
    d = flat.reshape(mdp.S, mdp.A)
    mass = d.sum(axis=1, keepdims=True)
    visited = mass > _VISITED
    pi = np.where(visited, d / np.where(visited, mass, 1.0), 1.0 / mdp.A)
    residual = float(np.max(np.abs(F @ flat - b)))
    return ReCOILResult("optimal", float(problem.value), d, pi, residual, allowed, form)


def recoil(mdp: TabularMDP, dE, dS, *, beta: float = 0.5,
           solver_options: dict | None = None) -> ReCOILResult:
    """ReCOIL's tabular primal (Sikchi et al. 2024, ReCOIL; spec sheet sec. E)::

        min_d  KL(beta d + (1 - beta) dS  ||  beta dE + (1 - beta) dS)
        s.t.   sum_a d(s', a) - gamma sum_{s,a} P(s'|s, a) d(s, a) = (1 - gamma) mu0(s'),  d >= 0

    solved by Clarabel through cvxpy (``cp.rel_entr``, the module's explicit tolerances
    ``tabular.lp.CLARABEL_OPTIONS``; no solver fallback). The recovered policy is
    ``pi = d / sum_a d``. The target mixture ``dEmix = beta dE + (1 - beta) dS`` needs no
    ratio ``dE / dS``, so it stays finite where ``dS = 0 < dE`` (the coverage failure that
    breaks :func:`ratio_imitation`); the KL is finite iff ``d = 0`` off ``supp(dEmix)``, so the
    variables live on that support (restricted further by :func:`feasible_support`).

    With ``dE`` the exact occupancy of a policy ``pi_E``, ``d = dE`` attains divergence 0
    and is the unique minimiser (``beta > 0``), so ``pi = pi_E`` on ``supp(dE)``.

    This is the primal of an idealised tabular ReCOIL: the flow constraint uses the true
    ``P`` (the paper's dual needs only samples of ``dEmix`` and ``dS``).

    Parameters
    ----------
    mdp : TabularMDP
        Discounted.
    dE : array_like (S, A)
        Expert occupancy (or its estimate): non-negative, summing to 1 (atol 1e-9).
    dS : array_like (S, A)
        Distribution of the suboptimal / replay data, same conditions.
    beta : float in (0, 1], default 0.5
        Weight of the expert part of the mixture.
    solver_options : dict, optional
        Clarabel settings that replace entries of ``tabular.lp.CLARABEL_OPTIONS`` (1e-8).
        The KL is flat at its minimum: a gap ``g`` leaves ``||d - d*||_1`` of order
        ``sqrt(2 g) / beta`` (Pinsker), so checks of ``d`` itself want 1e-10.

    Returns
    -------
    ReCOILResult
        ``form = "recoil-kl"``; ``allowed = supp(dEmix)``; ``status = "infeasible"`` when no
        occupancy lives on ``supp(dEmix)``.

    Raises
    ------
    ValueError
        For a non-discounted MDP, ``dE`` or ``dS`` of the wrong shape, with a negative or
        non-finite entry, or not summing to 1, or ``beta`` outside (0, 1].
    ImportError
        If Clarabel is not installed (no solver fallback). A solver that stops without a
        solution is reported by the status (``"solver_error"``, ...), not raised.
    """
    import cvxpy as cp

    _check_kind(mdp, ("discounted",), "recoil")
    dE = _read_distribution(dE, ((mdp.S, mdp.A),), "dE")
    dS = _read_distribution(dS, ((mdp.S, mdp.A),), "dS")
    beta = _read_positive(beta, "beta")
    if beta > 1.0:
        raise ValueError(f"beta = {beta!r} must lie in (0, 1]")
    target = beta * dE + (1.0 - beta) * dS

    def objective(x, idx):
        mixed = beta * x + (1.0 - beta) * dS.ravel()[idx]
        # Pairs off the variables contribute rel_entr((1 - beta) dS, target) >= 0 constants.
        rest = np.ones(dS.size, dtype=bool)
        rest[idx] = False
        const = _rel_entr_sum((1.0 - beta) * dS.ravel()[rest], target.ravel()[rest])
        return cp.sum(cp.rel_entr(mixed, target.ravel()[idx])) + const

    return _solve_kl_program(mdp, target > 0, objective, "recoil-kl", solver_options)


def _rel_entr_sum(p: np.ndarray, q: np.ndarray) -> float:
    from scipy.special import rel_entr

    return float(rel_entr(p, q).sum())


def ratio_imitation(mdp: TabularMDP, dE, dO, *, clip: float = 1e-6,
                    solver_options: dict | None = None) -> ReCOILResult:
    """The occupancy-ratio baseline, "KL(d || dE) via the dO-ratio" (SMODICE-style; Ma et al.
    2022, as summarised by Sikchi et al. 2024, sec. on imitation; spec sheet sec. E)::

        max_d  sum_{s,a} d(s, a) R(s)  -  KL(d || dO)   s.t. the flow constraint, d >= 0,
        R(s) = log(dE(s) / dO(s))      (the discriminator's log-ratio, state marginals)

    ``KL(d || dO)`` is finite only for ``d << dO``: the method reweights the data ``dO`` and
    can only represent occupancies ``d = w dO``. Written as one KL, the objective is
    ``-KL(d || q)`` with ``q(s, a) = dO(s, a) exp(R(s)) = dE(s) dO(a | s)``, so where
    ``dO(s) = 0 < dE(s)`` the ratio is ``+inf`` while ``dO`` carries no sample to weight:
    the product is ``0 * inf``. This implementation clips the discriminator
    ``c = dE / (dE + dO)`` to ``[clip, 1 - clip]`` as practical implementations do, which
    keeps ``R`` finite but leaves ``q = 0`` wherever ``dO = 0``. When the expert's states are
    missing from ``dO`` and the start state is one of them (the sheet's coverage-failure
    instance), no occupancy lives on ``supp(dO)``: the primal is infeasible (its dual
    unbounded) and this function returns ``status = "infeasible"`` and no policy. The
    method's own setting (SMODICE) has ``dO`` contain the expert demonstrations, which
    makes the primal feasible; the figure ``recoil-imitation`` uses that setting.

    Parameters
    ----------
    mdp : TabularMDP
        Discounted.
    dE, dO : array_like (S, A)
        Expert occupancy and the offline data distribution: non-negative, summing to 1.
    clip : float in (0, 1/2), default 1e-6
        Discriminator clip.
    solver_options : dict, optional
        As :func:`recoil`.

    Returns
    -------
    ReCOILResult
        ``form = "ratio-kl"``; ``allowed = supp(dO)``; ``objective`` is
        ``KL(d || dO) - E_d[R]`` at the optimum.

    Raises
    ------
    ValueError
        As :func:`recoil`, or ``clip`` outside (0, 1/2).
    ImportError
        As :func:`recoil`.
    """
    import cvxpy as cp

    _check_kind(mdp, ("discounted",), "ratio_imitation")
    dE = _read_distribution(dE, ((mdp.S, mdp.A),), "dE")
    dO = _read_distribution(dO, ((mdp.S, mdp.A),), "dO")
    clip = _read_positive(clip, "clip")
    if clip >= 0.5:
        raise ValueError(f"clip = {clip!r} must lie in (0, 1/2)")
    dE_s, dO_s = dE.sum(axis=1), dO.sum(axis=1)
    with np.errstate(invalid="ignore"):
        c = np.where(dE_s + dO_s > 0, dE_s / (dE_s + dO_s), 0.5)
    c = np.clip(c, clip, 1.0 - clip)
    R = np.repeat(np.log(c / (1.0 - c)), mdp.A)

    def objective(x, idx):
        return cp.sum(cp.rel_entr(x, dO.ravel()[idx])) - R[idx] @ x

    return _solve_kl_program(mdp, dO > 0, objective, "ratio-kl", solver_options)


def discounted_occupancy_estimate(mdp: TabularMDP, episodes) -> np.ndarray:
    """Estimate of the normalised occupancy from sampled episodes (Monte Carlo).

    ``d_hat(s, a) = (1/n) sum_i (1 - gamma) sum_{t < L_i} gamma^t 1{s_t = s, a_t = a}`` plus,
    for an episode that reached a terminal state at step ``L_i``, the remaining discounted
    mass ``gamma^{L_i}`` on that terminal state, split evenly over its actions (a terminal
    state is absorbing, so every action continues the same occupancy). Episodes cut at H
    without termination lose ``gamma^H``; the estimate is renormalised to sum to 1.

    Parameters
    ----------
    mdp : TabularMDP
        Discounted.
    episodes : tabular.sampling.Episodes
        At least one episode.

    Returns
    -------
    numpy.ndarray, float64, (S, A), summing to 1

    Raises
    ------
    ValueError
        For a non-discounted MDP, no episode, episodes of another MDP (a state or action
        index out of range) or with inconsistent fields (named).
    TypeError
        If ``episodes`` is not an :class:`~tabular.sampling.Episodes`.
    """
    _check_kind(mdp, ("discounted",), "discounted_occupancy_estimate")
    episodes = _read_episodes(episodes, mdp.S, mdp.A)
    states, actions, lengths = episodes.states, episodes.actions, episodes.lengths
    n, H = actions.shape
    weights = (1.0 - mdp.gamma) * mdp.gamma ** np.arange(H)
    d = np.zeros((mdp.S, mdp.A))
    taken = actions >= 0
    np.add.at(d, (states[:, :H][taken], actions[taken]), np.broadcast_to(weights, (n, H))[taken])
    last = states[np.arange(n), lengths]
    ended = mdp.terminal[last]
    np.add.at(d, last[ended], (mdp.gamma ** lengths[ended])[:, None] / mdp.A)
    return d / d.sum()
