"""Robust regularised backups ``inf_q {E_q[V] + lam D_f(q || P)}`` (KL, TV, chi-square), tabular and d-rectangular, and R2PVI (Tang, Liu, Xu 2025, "Robust Offline RL with Linearly Structured f-Divergence Regularization", ICML, arXiv 2411.18612).

The closed forms below were derived for the spec sheet (``offline_online_misc.md`` [4]) and
are checked against a cvxpy solution of the inner minimisation in the tests; they were not
read off the paper's own propositions. Conventions (the sheet's pitfalls):

* ``D_TV(q || p) = 0.5 ||q - p||_1`` (``f(x) = |x - 1| / 2``); other conventions move the
  clipping threshold by a factor 2.
* TV may move mass to states outside ``supp p`` (``f'(inf) = 1/2`` is finite), so its limit
  ``lam -> 0`` is the minimum of V over ALL states; KL and chi-square
  (``f(x) = x log x`` and ``(x - 1)^2``) put infinite cost on such mass and tend to the
  minimum over ``supp p``.
* ``lam = inf`` is allowed and gives the nominal expectation ``E_p[V]`` (the regulariser
  forces ``q = p``): R2PVI with ``lam = inf`` is plain pessimistic value iteration with the
  same estimator and penalty, the baseline the figure compares against.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from tabular.mdp import (
    TabularMDP,
    _as_numeric_array,
    _check_finite,
    _check_nonnegative,
    _check_rows_sum_to_one,
    _read_gamma,
    _read_int,
    _read_positive,
    _require_mdp,
    validate_policy,
)
from tabular.planning import PlanningResult, PolicyValue
from tabular.sampling import Episodes, _read_episodes

__all__ = [
    "DIVERGENCES",
    "R2PVIResult",
    "linear_robust_backup",
    "one_hot_features",
    "r2pvi",
    "robust_backup",
    "robust_evaluate_policy",
    "robust_expectation",
    "robust_value_iteration",
    "worst_case_kernel",
]

DIVERGENCES = ("kl", "chi2", "tv")  # the names of tabular.lp


# --- input checks -----------------------------------------------------------------------


def _read_divergence(divergence) -> str:
    if not isinstance(divergence, str):
        raise TypeError(f"divergence must be a string, got {type(divergence).__name__}")
    if divergence not in DIVERGENCES:
        raise ValueError(f"divergence = {divergence!r} is not one of {DIVERGENCES}")
    return divergence


def _read_lam(lam) -> float:
    return _read_positive(lam, "lam", allow_inf=True)


def _read_simplex_rows(P, name: str, *, min_ndim: int = 1) -> np.ndarray:
    """``P`` as float64 with every last-axis row in the probability simplex."""
    arr = _as_numeric_array(P, name)
    if arr.ndim < min_ndim or arr.shape[-1] < 1:
        raise ValueError(f"{name} must have at least {min_ndim} axis(es) and a non-empty "
                         f"last axis, got shape {arr.shape}")
    arr = np.array(arr, dtype=np.float64)
    _check_finite(arr, name)
    _check_nonnegative(arr, name)
    _check_rows_sum_to_one(arr, name, 16 * arr.shape[-1] * float(np.finfo(np.float64).eps))
    return arr


def _read_vector(V, S: int, name: str = "V") -> np.ndarray:
    arr = np.array(_as_numeric_array(V, name), dtype=np.float64)
    if arr.shape != (S,):
        raise ValueError(f"{name} has shape {arr.shape}, expected ({S},) to match P's last axis")
    _check_finite(arr, name)
    return arr


# --- the inner minimisation in closed form ------------------------------------------------


def _tv(P: np.ndarray, V: np.ndarray, lam: float) -> np.ndarray:
    # Mass above min_s V + lam is moved to the argmin over ALL states (cost lam per unit).
    return P @ np.minimum(V, V.min() + lam)


def _support_min(P: np.ndarray, V: np.ndarray) -> np.ndarray:
    return np.where(P > 0, V, np.inf).min(axis=-1)


def _kl(P: np.ndarray, V: np.ndarray, lam: float) -> np.ndarray:
    # -lam log E_P exp(-V/lam) as a log-sum-exp shifted at the support minimum m:
    # m - lam log(1 + sum_s P(s) expm1(-(V(s) - m)/lam)), exact near both limits.
    m = _support_min(P, V)
    b = np.where(P > 0, -(V - m[..., None]) / lam, 0.0)
    return m - lam * np.log1p(np.sum(P * np.expm1(b), axis=-1))


def _chi2_lam_fstar(u: np.ndarray, lam: float) -> np.ndarray:
    """``lam f*_p(u / lam)`` for f = (x - 1)^2, written without cancellation:
    ``u + u^2/(4 lam)`` for ``u >= -2 lam`` and ``-lam`` below."""
    # Not lam * tabular.lp.conjugate("chi2", u / lam): its form (y + 2)^2 / 4 - 1 cancels for
    # small y, an absolute error ~ lam * eps (2e-7 at lam = 1e9, u ~ 1), larger than the
    # whole robust correction Var / (4 lam) as lam -> inf.
    return np.where(u >= -2.0 * lam, u + u * u / (4.0 * lam), -lam)


def _chi2_row(p: np.ndarray, V: np.ndarray, lam: float) -> tuple[float, float]:
    """Maximiser ``eta*`` and value of ``g(eta) = eta - lam E_p[f*_p((eta - V)/lam)]``."""
    keep = p > 0
    w, v = p[keep], V[keep]
    lo, hi = float(v.min()) - 2.0 * lam, float(v.max())

    def dg(eta):
        return 1.0 - float(np.sum(w * np.maximum(0.0, 1.0 + (eta - v) / (2.0 * lam))))

    eta = hi if dg(hi) >= 0.0 else brentq(dg, lo, hi, xtol=1e-14 * max(1.0, hi - lo),
                                         rtol=4 * np.finfo(float).eps)
    return eta, eta - float(np.sum(w * _chi2_lam_fstar(eta - v, lam)))


def _chi2(P: np.ndarray, V: np.ndarray, lam: float, *, with_eta: bool = False):
    rows = P.reshape(-1, P.shape[-1])
    out = np.array([_chi2_row(p, V, lam) for p in rows]).reshape(P.shape[:-1] + (2,))
    return (out[..., 1], out[..., 0]) if with_eta else out[..., 1]


_CLOSED_FORMS = {"kl": _kl, "tv": _tv, "chi2": _chi2}


def _robust_expectation(P, V, lam, divergence):
    """Unchecked core of :func:`robust_expectation` (float64 arrays, valid arguments)."""
    if math.isinf(lam):
        return P @ V
    return _CLOSED_FORMS[divergence](P, V, lam)


def robust_expectation(P, V, lam, divergence: str) -> np.ndarray:
    """Regularised robust expectation ``inf_{q in simplex} { E_q[V] + lam D_f(q || p) }`` of
    every row ``p`` of ``P``.

    Closed forms (derived for the sheet [4]; checked against cvxpy in the tests):

    * ``"kl"`` (``D = sum q log(q/p)``): ``-lam log E_p[exp(-V/lam)]``, evaluated as a
      log-sum-exp shifted at ``m = min_{supp p} V``:
      ``m - lam log1p(sum_s p(s) expm1(-(V(s) - m)/lam))`` (no overflow as ``lam -> 0``,
      no cancellation as ``lam -> inf``). Worst case ``q ~ p exp(-V/lam)``.
    * ``"tv"`` (``D = 0.5 ||q - p||_1``): ``E_p[min(V, min_s V + lam)]`` with the minimum
      over ALL states: moving a unit of mass from s to the argmin costs ``lam`` (half of it
      leaving s, half arriving) and gains ``V(s) - min V``.
    * ``"chi2"`` (``f(x) = (x - 1)^2``, ``D = sum (q - p)^2 / p``): by Lagrange duality on
      ``sum q = 1`` (the constraint ``q >= 0`` is kept in the conjugate),
      ``sup_eta g(eta)``, ``g(eta) = eta - lam E_p[f*_p((eta - V)/lam)]`` with the
      non-negative conjugate ``f*_p(y) = y + y^2/4`` for ``y >= -2`` and ``-1`` below.
      ``g`` is concave (``f*_p`` is convex) and continuously differentiable with
      ``g'(eta) = 1 - E_p[max(0, 1 + (eta - V)/(2 lam))]``, non-increasing in eta.

      Bracket ``[min_{supp p} V - 2 lam, max_{supp p} V]``, proof: for
      ``eta <= min_{supp p} V - 2 lam`` every term ``max(0, 1 + (eta - V(s))/(2 lam))``
      with ``p(s) > 0`` is 0, so ``g' = 1 > 0`` and g increases; for
      ``eta >= max_{supp p} V`` every such term is at least 1, so ``g' <= 0`` and g does
      not increase. A maximiser therefore lies in the bracket, and is the root of the
      continuous, non-increasing ``g'`` there, found by ``scipy.optimize.brentq``
      (xtol 1e-14 times the bracket width; the value's error is second order in it since
      ``g'(eta*) = 0``). Worst case ``q(s) = p(s) max(0, 1 + (eta* - V(s))/(2 lam))``.
      One Python-level root search per row: meant for tabular sizes.

    Limits: ``lam -> inf`` gives ``E_p[V]`` (``lam = inf`` returns ``P @ V``);
    ``lam -> 0`` gives ``min_s V`` over all states for TV and ``min_{supp p} V`` for KL
    and chi-square.

    Parameters
    ----------
    P : array_like, shape (..., S)
        Nominal distributions, one per row: finite, non-negative, rows summing to 1 within
        ``16 S eps``. Any number of leading axes, e.g. ``(S, A, S)``.
    V : array_like, shape (S,)
        Finite next-state values.
    lam : float
        Regularisation weight in (0, inf] (same units as V per unit of divergence).
    divergence : {"kl", "tv", "chi2"}

    Returns
    -------
    numpy.ndarray, float64, shape ``P.shape[:-1]``

    Raises
    ------
    ValueError
        A row of P not in the simplex (naming it), V of the wrong shape or not finite,
        ``lam <= 0`` or NaN, an unknown divergence.
    TypeError
        Non-numeric arrays, a non-real ``lam``, a non-string ``divergence``.
    """
    divergence = _read_divergence(divergence)
    lam = _read_lam(lam)
    P = _read_simplex_rows(P, "P")
    V = _read_vector(V, P.shape[-1])
    return _robust_expectation(P, V, lam, divergence)


def worst_case_kernel(P, V, lam, divergence: str) -> np.ndarray:
    """The minimiser ``q*`` of ``E_q[V] + lam D_f(q || p)`` for every row p of P.

    KL: ``q* ~ p exp(-V/lam)``; TV: the p-mass of every state with
    ``V(s) > min_s V + lam`` moved to the lowest-index argmin of V over all states;
    chi-square: ``q*(s) = p(s) max(0, 1 + (eta* - V(s))/(2 lam))`` with ``eta*`` the
    maximiser of :func:`robust_expectation`'s dual (renormalised against the root
    finder's tolerance); ``lam = inf``: ``q* = p``. Then
    ``E_{q*}[V] + lam D_f(q* || p)`` equals :func:`robust_expectation` (tested with
    :func:`tabular.lp.f_divergence`).

    Parameters and errors as :func:`robust_expectation`.

    Returns
    -------
    numpy.ndarray, float64, shape ``P.shape``
        Rows in the simplex.
    """
    divergence = _read_divergence(divergence)
    lam = _read_lam(lam)
    P = _read_simplex_rows(P, "P")
    V = _read_vector(V, P.shape[-1])
    if math.isinf(lam):
        return P.copy()
    if divergence == "kl":
        m = _support_min(P, V)
        q = P * np.exp(np.where(P > 0, -(V - m[..., None]) / lam, 0.0))
    elif divergence == "tv":
        move = V > V.min() + lam
        q = np.where(move, 0.0, P)
        q[..., int(np.argmin(V))] += np.sum(np.where(move, P, 0.0), axis=-1)
    else:
        _, eta = _chi2(P, V, lam, with_eta=True)
        q = P * np.maximum(0.0, 1.0 + (eta[..., None] - V) / (2.0 * lam))
    return q / q.sum(axis=-1, keepdims=True)


# --- backups: tabular and d-rectangular ---------------------------------------------------


def robust_backup(P, R, V, lam, divergence: str, *, gamma: float = 1.0) -> np.ndarray:
    """Tabular regularised robust Bellman backup
    ``Q(s, a) = R(s, a) + gamma inf_q { E_q[V] + lam D_f(q || P(.|s, a)) }``
    (Tang, Liu, Xu 2025, the RRMDP Bellman equation; the sheet [4]).

    Parameters
    ----------
    P : array_like, shape (S, A, S)
        Nominal kernel, rows in the simplex.
    R : array_like, shape (S, A)
        Finite rewards.
    V : array_like, shape (S,)
        Finite next-step values.
    lam, divergence : see :func:`robust_expectation`.
    gamma : float, default 1.0
        Discount in [0, 1].

    Returns
    -------
    numpy.ndarray, float64, shape (S, A)

    Raises
    ------
    ValueError
        As :func:`robust_expectation`, or R of the wrong shape or not finite.
    """
    divergence = _read_divergence(divergence)
    lam = _read_lam(lam)
    gamma = _read_gamma(gamma)
    P = _read_simplex_rows(P, "P", min_ndim=3)
    if P.ndim != 3 or P.shape[0] != P.shape[2]:
        raise ValueError(f"P must have shape (S, A, S), got {P.shape}")
    R = _read_rewards(R, P.shape[:2])
    V = _read_vector(V, P.shape[-1])
    S, A = R.shape
    # Rows as one (S * A, S) matrix: the same computation as linear_robust_backup's with
    # one-hot features, so that the two agree bit for bit.
    return R + gamma * _robust_expectation(P.reshape(S * A, S), V, lam, divergence).reshape(S, A)


def _read_rewards(R, shape) -> np.ndarray:
    R = np.array(_as_numeric_array(R, "R"), dtype=np.float64)
    if R.shape != tuple(shape):
        raise ValueError(f"R has shape {R.shape}, expected {tuple(shape)}")
    _check_finite(R, "R")
    return R


def one_hot_features(S: int, A: int) -> np.ndarray:
    """Tabular features ``phi[s, a, s * A + a] = 1`` (d = S A): the d-rectangular model with
    ``mu = P.reshape(S * A, S)`` is then the tabular one (the sheet's setting [4]).

    Returns
    -------
    numpy.ndarray, float64, shape (S, A, S * A)
    """
    S, A = _read_int(S, "S"), _read_int(A, "A")
    return np.eye(S * A).reshape(S, A, S * A)


def _read_features(phi, S=None, A=None) -> np.ndarray:
    phi = _read_simplex_rows(phi, "phi", min_ndim=3)
    if phi.ndim != 3:
        raise ValueError(f"phi must have shape (S, A, d), got {phi.shape}")
    if (S is not None and phi.shape[0] != S) or (A is not None and phi.shape[1] != A):
        raise ValueError(f"phi has shape {phi.shape}, expected ({S}, {A}, d)")
    return phi


def linear_robust_backup(phi, mu, R, V, lam, divergence: str, *, gamma: float = 1.0) -> np.ndarray:
    """d-rectangular regularised robust backup (Tang, Liu, Xu 2025, the d-RRMDP Bellman
    equation): with ``P(.|s, a) = sum_i phi_i(s, a) mu_i(.)`` and the regulariser
    ``sum_i phi_i(s, a) D_f(q_i || mu_i)``, the adversary perturbs each factor separately:
    ``Q(s, a) = R(s, a) + gamma sum_i phi_i(s, a) inf_{q_i} { E_{q_i}[V] + lam D_f(q_i || mu_i) }``.
    With :func:`one_hot_features` and ``mu = P.reshape(S * A, S)`` this equals
    :func:`robust_backup` exactly (bit for bit).

    Parameters
    ----------
    phi : array_like, shape (S, A, d)
        Features in the simplex (non-negative, summing to 1 over i).
    mu : array_like, shape (d, S)
        Factor distributions, rows in the simplex.
    R : array_like, shape (S, A)
    V : array_like, shape (S,)
    lam, divergence, gamma : see :func:`robust_backup`.

    Returns
    -------
    numpy.ndarray, float64, shape (S, A)

    Raises
    ------
    ValueError
        Rows of phi or mu not in the simplex, shapes that do not match (d or S), and as
        :func:`robust_expectation`.
    """
    divergence = _read_divergence(divergence)
    lam = _read_lam(lam)
    gamma = _read_gamma(gamma)
    phi = _read_features(phi)
    mu = _read_simplex_rows(mu, "mu")
    S, A, d = phi.shape
    if mu.shape != (d, S):
        raise ValueError(f"mu has shape {mu.shape}, expected (d, S) = ({d}, {S}) to match phi")
    R = _read_rewards(R, (S, A))
    V = _read_vector(V, S)
    return R + gamma * (phi @ _robust_expectation(mu, V, lam, divergence))


# --- planning with a known nominal model --------------------------------------------------


def _read_model_args(mdp, lam, divergence):
    _require_mdp(mdp)
    divergence = _read_divergence(divergence)
    lam = _read_lam(lam)
    if mdp.kind == "episodic":
        raise ValueError("robust planning needs a finite horizon H or gamma < 1; got an "
                         "episodic (gamma = 1, terminal states) MDP")
    return lam, divergence


def robust_value_iteration(mdp: TabularMDP, lam, divergence: str, *, epsilon: float = 1e-10,
                           max_iter: int = 100_000) -> PlanningResult:
    """Optimal regularised robust values of a known nominal model (RRMDP planning).

    Finite horizon: backward induction ``Q_h = R_h + gamma inf_q {E_q V_{h+1} + lam D}``,
    ``V_h = max_a Q_h``, ``V_H = 0`` (exact up to rounding and, for chi-square, the root
    finder's tolerance). Discounted: iterates the same backup, a gamma-contraction in the
    sup norm (monotone, and ``E_q[V + c] = E_q[V] + c``), until
    ``gamma ||V_k - V_{k-1}||_inf / (1 - gamma) <= epsilon``, which bounds
    ``||V_k - V*||_inf`` (rounding not included).

    Parameters
    ----------
    mdp : TabularMDP
        ``"finite"`` (stationary or time-inhomogeneous) or ``"discounted"``.
    lam, divergence : see :func:`robust_expectation`.
    epsilon : float
        Discounted only: target bound on the value error, > 0.
    max_iter : int
        Discounted only: cap on the sweeps (``converged=False`` if reached).

    Returns
    -------
    PlanningResult
        As :func:`tabular.planning.value_iteration` / ``backward_induction``:
        ``V (S,)`` or ``(H, S)``, ``Q``, greedy ``pi`` (ties to the lowest action).

    Raises
    ------
    ValueError
        Episodic MDP, and as :func:`robust_expectation`.
    """
    lam, divergence = _read_model_args(mdp, lam, divergence)
    S, A = mdp.S, mdp.A
    if mdp.kind == "finite":
        V = np.zeros((mdp.H + 1, S))
        Q = np.empty((mdp.H, S, A))
        for h in range(mdp.H - 1, -1, -1):
            Q[h] = mdp.R_h(h) + mdp.gamma * _robust_expectation(mdp.P_h(h), V[h + 1], lam,
                                                                divergence)
            V[h] = Q[h].max(axis=-1)
        return PlanningResult(V=V[:-1], Q=Q, pi=np.argmax(Q, axis=-1), n_iter=mdp.H,
                              converged=True, residual=0.0, error_bound=0.0,
                              epsilon_refers_to="value", method="robust_backward_induction")
    epsilon = _read_positive(epsilon, "epsilon", allow_inf=False)
    max_iter = _read_int(max_iter, "max_iter")
    gamma = mdp.gamma
    V, residual, n_iter = np.zeros(S), math.inf, 0
    while n_iter < max_iter:
        Q = mdp.R + gamma * _robust_expectation(mdp.P, V, lam, divergence)
        V_new = Q.max(axis=-1)
        residual = float(np.max(np.abs(V_new - V)))
        V, n_iter = V_new, n_iter + 1
        if gamma * residual <= epsilon * (1.0 - gamma):
            break
    error_bound = gamma * residual / (1.0 - gamma)
    return PlanningResult(V=V, Q=Q, pi=np.argmax(Q, axis=-1), n_iter=n_iter,
                          converged=bool(error_bound <= epsilon), residual=residual,
                          error_bound=error_bound, epsilon_refers_to="value",
                          method="robust_value_iteration")


def robust_evaluate_policy(mdp: TabularMDP, pi, lam, divergence: str, *,
                           epsilon: float = 1e-10, max_iter: int = 100_000) -> PolicyValue:
    """Regularised robust value of a fixed policy:
    ``Q_h = R_h + gamma inf_q {E_q V_{h+1} + lam D}``, ``V_h(s) = sum_a pi_h(a|s) Q_h(s, a)``
    (finite horizon, exact recursion), or the fixed point of the same operator
    (discounted, iterated as in :func:`robust_value_iteration`). ``V <= V^pi`` (the nominal
    value) always, since ``q = P`` is feasible with ``D = 0``.

    Parameters
    ----------
    mdp : TabularMDP
        ``"finite"`` or ``"discounted"``.
    pi : array_like
        A policy as accepted by :func:`tabular.mdp.validate_policy`.
    lam, divergence, epsilon, max_iter : see :func:`robust_value_iteration`.

    Returns
    -------
    PolicyValue
        ``V (H, S)`` and ``Q (H, S, A)`` (finite horizon) or ``V (S,)`` and ``Q (S, A)``;
        ``residual`` is the last sweep's ``||V_k - V_{k-1}||_inf`` (0.0 for finite horizon).

    Raises
    ------
    ValueError
        An invalid policy, an episodic MDP, a discounted evaluation that did not reach
        ``epsilon`` within ``max_iter`` sweeps, and as :func:`robust_expectation`.
    """
    lam, divergence = _read_model_args(mdp, lam, divergence)
    pi_prob = validate_policy(mdp, pi)
    S, A = mdp.S, mdp.A
    if mdp.kind == "finite":
        pi3 = np.broadcast_to(pi_prob, (mdp.H, S, A))
        V = np.zeros((mdp.H + 1, S))
        Q = np.empty((mdp.H, S, A))
        for h in range(mdp.H - 1, -1, -1):
            Q[h] = mdp.R_h(h) + mdp.gamma * _robust_expectation(mdp.P_h(h), V[h + 1], lam,
                                                                divergence)
            V[h] = np.sum(pi3[h] * Q[h], axis=-1)
        return PolicyValue(V=V[:-1], Q=Q, residual=0.0)
    epsilon = _read_positive(epsilon, "epsilon", allow_inf=False)
    max_iter = _read_int(max_iter, "max_iter")
    gamma, V = mdp.gamma, np.zeros(S)
    for _ in range(max_iter):
        Q = mdp.R + gamma * _robust_expectation(mdp.P, V, lam, divergence)
        V_new = np.sum(pi_prob * Q, axis=-1)
        residual = float(np.max(np.abs(V_new - V)))
        V = V_new
        if gamma * residual <= epsilon * (1.0 - gamma):
            return PolicyValue(V=V, Q=Q, residual=residual)
    raise ValueError(f"robust policy evaluation did not reach epsilon = {epsilon:g} in "
                     f"{max_iter} sweeps (last residual {residual:.3g}); raise max_iter")


# --- R2PVI: offline, finite horizon -------------------------------------------------------


@dataclass(frozen=True)
class R2PVIResult:
    """Output of :func:`r2pvi`.

    Attributes
    ----------
    pi : numpy.ndarray, int64, (H, S)
        Greedy policy for the pessimistic Q, ties to the lowest action; actions whose
        factors have no data are never preferred over covered ones.
    V : numpy.ndarray, float64, (H, S)
        Pessimistic robust values ``V_h(s) = Q_h(s, pi_h(s))`` in ``[0, H - h]``.
    Q : numpy.ndarray, float64, (H, S, A)
        ``clip(r_hat + sum_i phi_i nu_i - Gamma, 0, H - h)``.
    Gamma : numpy.ndarray, float64, (H, S, A)
        The penalty ``beta sum_i phi_i(s, a) sqrt((Lambda_h^-1)_ii)``.
    factor_counts : numpy.ndarray, float64, (H, d)
        ``sum_tau phi_i(s_tau, a_tau)`` at each step (the visit counts n_h(s, a) for
        one-hot features).
    covered : numpy.ndarray, bool, (H, S, A)
        Whether every factor of (s, a) (``phi_i(s, a) > 0``) has data at step h.
    """

    pi: np.ndarray
    V: np.ndarray
    Q: np.ndarray
    Gamma: np.ndarray
    factor_counts: np.ndarray
    covered: np.ndarray


def _r2pvi_episodes(episodes, S: int, A: int):
    """``(states, actions, rewards, H)`` of ``episodes`` read by the shared
    :func:`tabular.sampling._read_episodes`, plus R2PVI's reward range [0, 1]."""
    episodes = _read_episodes(episodes, S, A)
    actions, rewards = episodes.actions, episodes.rewards
    bad = (actions >= 0) & ~((rewards >= 0) & (rewards <= 1))
    if bad.any():
        i, h = (int(x) for x in np.argwhere(bad)[0])
        raise ValueError(f"episodes.rewards[{i}, {h}] = {float(rewards[i, h])!r} is outside "
                         "[0, 1], the reward range R2PVI's clipping to [0, H - h] assumes")
    return episodes.states, actions, rewards, actions.shape[1]


def r2pvi(episodes: Episodes, S: int, A: int, *, lam, divergence: str, beta: float,
          phi=None, ridge: float = 1.0) -> R2PVIResult:
    """Robust Regularised Pessimistic Value Iteration (R2PVI; Tang, Liu, Xu 2025, Algorithm 1
    as summarised by the sheet [4]: pessimistic VI with an LCB penalty on phi and the
    regularised robust backup applied per factor mu_i), finite horizon as in the paper.

    For ``h = H-1, ..., 0``, from the transitions ``(s, a, r, s')`` of step h (episodes
    padded with action -1 after termination contribute nothing there):

    * ``Lambda_h = sum_tau phi_tau phi_tau^T + ridge I`` (d, d);
      ``r_hat = phi^T Lambda_h^-1 sum_tau phi_tau r_tau`` (ridge regression);
    * factor kernels: the ridge regression of the next-state indicator,
      ``M = Lambda_h^-1 sum_tau phi_tau e_{s'_tau}^T`` (d, S) (the paper regresses each
      target g(s') separately, which equals ``M g``), clipped at 0 and normalised per row so
      that the closed forms apply to a distribution (our choice; for one-hot phi this is
      the empirical kernel of the visited pair). A factor without data keeps its ridge
      estimate 0;
    * ``nu_i = inf_q {E_q[V_{h+1}] + lam D_f(q || mu_hat_i)}`` (:func:`robust_expectation`);
    * ``Gamma_h(s, a) = beta sum_i phi_i(s, a) sqrt((Lambda_h^-1)_ii)`` (the d-rectangular
      penalty; ``beta / sqrt(n_h(s, a) + ridge)`` for one-hot phi);
    * ``Q_h = clip(r_hat + phi^T nu - Gamma_h, 0, H - h)``, ``pi_h = argmax_a Q_h`` over
      covered actions, ``V_h(s) = Q_h(s, pi_h(s))``.

    Cost per step: dense (d, d) solves and an inverse (d = S A for one-hot features), and
    for chi-square one root search per factor: meant for small tabular or feature sizes.

    ``lam = inf`` gives plain pessimistic value iteration with the same estimator and
    penalty (the nominal backup ``E_mu_hat[V]``): the baseline of the figure
    ``robust-regularized``. Not verified against the paper's text: the exact form of its
    estimator (the normalisation above is ours) and of its constant beta (take it from the
    configuration).

    Parameters
    ----------
    episodes : tabular.sampling.Episodes
        n >= 1 episodes of H steps; rewards in [0, 1].
    S, A : int
        Numbers of states and actions.
    lam : float
        Regularisation weight in (0, inf].
    divergence : {"kl", "tv", "chi2"}
    beta : float
        Penalty scale, >= 0 (0 gives the plug-in robust VI).
    phi : array_like (S, A, d), optional
        Features in the simplex; default :func:`one_hot_features` (tabular).
    ridge : float
        Ridge parameter of ``Lambda_h``, > 0 (default 1, the usual choice in linear
        pessimistic VI).

    Returns
    -------
    R2PVIResult

    Raises
    ------
    ValueError
        No episodes, inconsistent fields of ``episodes`` (shapes, lengths, padding; named),
        states or actions out of range, rewards outside [0, 1], phi not of
        shape (S, A, d) or not in the simplex, ``beta < 0``, ``ridge <= 0``, and as
        :func:`robust_expectation`.
    TypeError
        If ``episodes`` is not an ``Episodes`` or a field has the wrong dtype.
    """
    S, A = _read_int(S, "S"), _read_int(A, "A")
    divergence = _read_divergence(divergence)
    lam = _read_lam(lam)
    ridge = _read_positive(ridge, "ridge", allow_inf=False)
    if isinstance(beta, (bool, np.bool_)) or not isinstance(beta, numbers.Real):
        raise TypeError(f"beta must be a real number, got {type(beta).__name__}")
    if not (math.isfinite(beta) and beta >= 0):
        raise ValueError(f"beta = {beta!r} must be finite and non-negative")
    phi = one_hot_features(S, A) if phi is None else _read_features(phi, S, A)
    states, actions, rewards, H = _r2pvi_episodes(episodes, S, A)
    d = phi.shape[-1]
    V = np.zeros((H + 1, S))
    Q, Gamma = np.empty((H, S, A)), np.empty((H, S, A))
    pi = np.empty((H, S), dtype=np.int64)
    counts, covered = np.empty((H, d)), np.empty((H, S, A), dtype=bool)
    for h in range(H - 1, -1, -1):
        taken = actions[:, h] >= 0
        s, a, s_next = states[taken, h], actions[taken, h], states[taken, h + 1]
        Phi = phi[s, a]  # (n_h, d)
        Lam = Phi.T @ Phi + ridge * np.eye(d)
        E_next = np.zeros((s.size, S))
        E_next[np.arange(s.size), s_next] = 1.0
        sol = np.linalg.solve(Lam, np.column_stack([Phi.T @ rewards[taken, h], Phi.T @ E_next]))
        theta, M = sol[:, 0], np.maximum(sol[:, 1:], 0.0)
        counts[h] = Phi.sum(axis=0)
        mass = M.sum(axis=1)
        seen = (counts[h] > 0) & (mass > 0)
        nu = np.zeros(d)
        if seen.any():
            nu[seen] = _robust_expectation(M[seen] / mass[seen, None], V[h + 1], lam, divergence)
        Gamma[h] = beta * (phi @ np.sqrt(np.diag(np.linalg.inv(Lam))))
        Q[h] = np.clip(phi @ theta + phi @ nu - Gamma[h], 0.0, H - h)
        covered[h] = np.all((phi == 0) | seen, axis=-1)
        any_covered = covered[h].any(axis=1, keepdims=True)
        choose = np.where(covered[h] | ~any_covered, Q[h], -np.inf)
        pi[h] = np.argmax(choose, axis=-1)
        V[h] = Q[h][np.arange(S), pi[h]]
    return R2PVIResult(pi=pi, V=V[:-1], Q=Q, Gamma=Gamma, factor_counts=counts, covered=covered)
