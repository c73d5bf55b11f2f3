"""f-divergence regularisers of DPH-RL (Li et al. 2025) and the exact optima of E_pi[r] - eta D_f(pi || pi0) over answer distributions.

Source: Li, Zhou, Hao, Liu, Miao, Pang, Tan, Chu, Wang, Pan, Qu, Qi (2025), "The Choice of
Divergence: A Neglected Key to Mitigating Diversity Collapse in Reinforcement Learning with
Verifiable Reward", arXiv 2509.07430 (generators verified from the paper's code; the
optima below are our own derivations, standard Lagrangian algebra, stated in the project's
spec sheet ``divergence_choice_dph_rl.md``).

Convention: ``D_f(pi || pi0) = sum_y pi0(y) f(u(y))`` with ``u = pi / pi0`` (estimated on
samples of ``pi0``). Generators: forward KL ``f(u) = -log u`` (or the low-variance
``u - 1 - log u``, same value), JS ``f(u) = u log u - (u + 1) log((u + 1) / 2)`` (twice the
Jensen-Shannon divergence, at most ``2 log 2``), reverse KL ``f(u) = u log u``.

What is closed form and what is numeric. Every optimum has ``u(y) = phi(r_max - r(y))``, a
function of the reward gap alone, so ``pi / pi0`` is constant on each reward level (within-
class proportions are kept). Reverse KL: ``u = exp(r / beta) / Z``, closed form. Forward KL:
``u = eta / (lam - r)`` with ``lam > r_max`` fixed by ``sum pi = 1``; for binary rewards
``lam = ((1 + eta) + sqrt((1 + eta)^2 - 4 eta (1 - p))) / 2`` (closed form), otherwise a 1-d
root. JS: ``u = t / (2 - t)``, ``t = exp((r - lam) / eta)``; for binary rewards ``t`` solves a
quadratic, otherwise a 1-d root. Here both are solved by the same 1-d root find: in the
ratio ``u* = u(argmax r)`` in ``[1, 1 / pi0(argmax r)]``, where the constraint
``sum pi0 u - 1`` is increasing and changes sign (Brent's method, relative tolerance 4 eps).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tabular.rlvr._checks import read_distribution, read_scalar, read_values

__all__ = [
    "KINDS", "generator", "generator_gradient_weight", "f_divergence", "kl", "js",
    "divergence_gradient", "regularized_objective", "RegularizedOptimum",
    "forward_kl_optimum", "js_optimum", "reverse_kl_optimum",
]

KINDS = ("forward_kl", "forward_kl_lowvar", "js", "reverse_kl")
# f'(inf) = lim f(u)/u: the price per unit of pi-mass where pi0 = 0 (general D_f definition).
_F_PRIME_INF = {"forward_kl": 0.0, "forward_kl_lowvar": 1.0, "js": np.log(2.0),
                "reverse_kl": np.inf}


def _read_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return kind


def generator(u, kind: str) -> np.ndarray:
    """The generator ``f(u)`` of an f-divergence, elementwise (``u >= 0``; ``f(1) = 0``).

    Parameters
    ----------
    u : array_like of float >= 0
        Likelihood ratios ``pi_theta(y) / pi0(y)``.
    kind : {"forward_kl", "forward_kl_lowvar", "js", "reverse_kl"}
        ``-log u``; ``u - 1 - log u``; ``u log u - (u + 1) log((u + 1) / 2)``; ``u log u``.

    Returns
    -------
    numpy.ndarray of float64 (``+inf`` at ``u = 0`` for the forward-KL forms)

    Source: Li et al. (2025), arXiv 2509.07430, sec. 3 (generators; JS form from the code).
    """
    kind = _read_kind(kind)
    u = read_values(u, "u")
    if np.any(u < 0):
        raise ValueError(f"u must be >= 0, got min(u) = {float(u.min())!r}")
    with np.errstate(divide="ignore"):
        log_u = np.log(u)
    xlogx = np.where(u > 0, u * np.where(u > 0, log_u, 0.0), 0.0)
    if kind == "forward_kl":
        return -log_u
    if kind == "forward_kl_lowvar":
        return u - 1.0 - log_u
    if kind == "reverse_kl":
        return xlogx
    return xlogx - (u + 1.0) * np.log((u + 1.0) / 2.0)


def generator_gradient_weight(u, kind: str) -> np.ndarray:
    """The weight ``w(u) = u f'(u)`` of ``grad log pi_theta(y)`` in ``grad f(u(y))`` on a pi0 sample.

    ``grad_theta f(pi_theta(y) / pi0(y)) = u f'(u) grad log pi_theta(y)``: ``-1`` (forward KL,
    log form, whatever ``u``), ``u - 1`` (low-variance form), ``u log(2u / (u + 1))`` (JS,
    vanishing as ``u -> 0``), ``u (log u + 1)`` (reverse KL).

    Source: Li et al. (2025), arXiv 2509.07430 (the generators); the weights are the chain
    rule (spec sheet, step 4).
    """
    kind = _read_kind(kind)
    u = read_values(u, "u")
    if np.any(u < 0):
        raise ValueError(f"u must be >= 0, got min(u) = {float(u.min())!r}")
    safe = np.where(u > 0, u, 1.0)
    if kind == "forward_kl":
        return -np.ones_like(u)
    if kind == "forward_kl_lowvar":
        return u - 1.0
    if kind == "js":
        return np.where(u > 0, u * np.log(2.0 * safe / (safe + 1.0)), 0.0)
    return np.where(u > 0, u * (np.log(safe) + 1.0), 0.0)


def _pair(pi, pi0):
    pi = read_distribution(pi, "pi")
    pi0 = read_distribution(pi0, "pi0")
    if pi.shape != pi0.shape:
        raise ValueError(f"pi has shape {pi.shape} but pi0 has shape {pi0.shape}")
    return pi, pi0


def f_divergence(pi, pi0, kind: str) -> np.ndarray:
    """Exact ``D_f(pi || pi0) = sum_{pi0 > 0} pi0 f(pi / pi0) + f'(inf) pi(pi0 = 0)``, per row.

    The last term is the general definition's price of mass outside ``supp(pi0)``:
    ``f'(inf) = lim f(u)/u`` is 0 for forward KL (no price), 1 for its low-variance form,
    ``log 2`` for JS and ``inf`` for reverse KL.

    Parameters
    ----------
    pi, pi0 : array_like, shape (..., n)
        Distributions (rows sum to 1, atol 1e-9).
    kind : one of :data:`KINDS`

    Returns
    -------
    numpy.ndarray of float64, shape ``pi.shape[:-1]``: ``KL(pi0 || pi)`` for the forward-KL
    forms, ``KL(pi || M) + KL(pi0 || M)`` with ``M = (pi + pi0)/2`` for JS, ``KL(pi || pi0)``
    for reverse KL.

    Source: Li et al. (2025), arXiv 2509.07430 (the convention ``E_{pi0} f(u)``).
    """
    kind = _read_kind(kind)
    pi, pi0 = _pair(pi, pi0)
    inside = pi0 > 0
    u = np.where(inside, pi / np.where(inside, pi0, 1.0), 1.0)
    with np.errstate(invalid="ignore"):
        terms = np.where(inside, pi0 * generator(u, kind), 0.0)
        outside = np.where(inside, 0.0, pi).sum(axis=-1)
        extra = np.where(outside > 0, _F_PRIME_INF[kind] * outside, 0.0)
    return terms.sum(axis=-1) + extra


def kl(p, q) -> np.ndarray:
    """``KL(p || q) = sum_y p(y) log(p(y) / q(y))`` per row (``inf`` where ``p > 0 = q``).

    Source: Cover and Thomas (2006), eq. (2.26).
    """
    p, q = _pair(p, q)
    with np.errstate(divide="ignore"):
        ratio = np.where(p > 0, np.log(np.where(p > 0, p, 1.0)) - np.log(q), 0.0)
    return (p * ratio).sum(axis=-1)


def js(p, q) -> np.ndarray:
    """Jensen-Shannon divergence ``(KL(p || M) + KL(q || M)) / 2``, ``M = (p + q) / 2``, in [0, log 2].

    Source: Lin (1991), "Divergence measures based on the Shannon entropy", IEEE Trans. Inf.
    Theory 37(1).
    """
    p, q = _pair(p, q)
    m = (p + q) / 2.0
    return 0.5 * (kl(p, m) + kl(q, m))


def divergence_gradient(pi, pi0, kind: str) -> np.ndarray:
    """``dD_f(pi || pi0) / dpi(y)``: ``f'(pi(y) / pi0(y))`` on ``supp(pi0)``, ``f'(inf)`` off it.

    The sequence-level gradient with respect to the leaf (or answer) probabilities, to be
    chained through a softmax tree by the tree core's backward pass. On ``supp(pi0)``:
    forward KL ``-pi0 / pi``; its low-variance form ``1 - pi0 / pi``; JS ``log(2u / (u + 1))``
    (``-inf`` at ``u = 0``); reverse KL ``log u + 1`` (``-inf`` at ``u = 0``). Where
    ``pi0 = 0``, :func:`f_divergence` charges ``f'(inf) pi(y)``, so the derivative there is
    ``f'(inf)``: 0, 1, ``log 2`` and ``+inf`` (reverse KL) respectively. The tree core's
    backward pass ignores entries at leaves with ``pi(y) = 0`` (a masked leaf), so the
    infinite values only matter where ``pi`` itself puts mass.

    Parameters
    ----------
    pi, pi0 : array_like, shape (..., n)
        Distributions (rows sum to 1, atol 1e-9).
    kind : one of :data:`KINDS`

    Returns
    -------
    numpy.ndarray of float64, shape ``pi.shape`` (may hold ``+-inf`` as stated above)

    Raises
    ------
    ValueError
        If ``pi = 0`` somewhere on ``supp(pi0)`` for a forward-KL form (infinite gradient).

    Source: the f-divergence with mass outside ``supp(pi0)`` (Liese and Vajda 2006, "On
    divergences and informations in statistics and information theory", IEEE Trans. Inf.
    Theory 52(10)), with the generators of Li et al. (2025), arXiv 2509.07430.
    """
    kind = _read_kind(kind)
    pi, pi0 = _pair(pi, pi0)
    inside = pi0 > 0
    if kind.startswith("forward_kl") and np.any(inside & (pi == 0)):
        idx = tuple(np.argwhere(inside & (pi == 0))[0])
        raise ValueError(f"pi{list(idx)} = 0 where pi0 > 0: the forward KL is infinite there")
    u = np.where(inside, pi / np.where(inside, pi0, 1.0), 1.0)
    safe = np.where(u > 0, u, 1.0)
    if kind == "forward_kl":
        grad = -1.0 / safe
    elif kind == "forward_kl_lowvar":
        grad = 1.0 - 1.0 / safe
    elif kind == "js":
        grad = np.where(u > 0, np.log(2.0 * safe / (safe + 1.0)), -np.inf)
    else:
        grad = np.where(u > 0, np.log(safe) + 1.0, -np.inf)
    return np.where(inside, grad, _F_PRIME_INF[kind])


def regularized_objective(pi, pi0, r, eta: float, kind: str) -> np.ndarray:
    """``J(pi) = E_pi[r] - eta D_f(pi || pi0)``, per row.

    Parameters
    ----------
    pi, pi0 : array_like, shape (..., n)
    r : array_like, shape (..., n) (broadcast)
        Rewards.
    eta : float > 0
        Regularisation coefficient (``beta`` for reverse KL).
    kind : one of :data:`KINDS`
    """
    pi, pi0 = _pair(pi, pi0)
    r = np.broadcast_to(read_values(r, "r"), pi.shape)
    eta = read_scalar(eta, "eta", low=0.0, low_open=True)
    return (pi * r).sum(axis=-1) - eta * f_divergence(pi, pi0, kind)


@dataclass(frozen=True)
class RegularizedOptimum:
    """An exact optimum of ``E_pi[r] - eta D_f(pi || pi0)`` over ``pi`` supported on ``supp(pi0)``.

    Attributes
    ----------
    pi : numpy.ndarray, shape (..., n)
        The optimal distributions: 0 outside ``supp(pi0)``, and > 0 on it in exact
        arithmetic. In float64, JS and reverse-KL optima carry the factor
        ``exp(-(r_max - r(y)) / eta)``, which underflows to 0 once the scaled gap exceeds
        about 745 (``eta`` below ``gap / 745``): such answers then get probability exactly 0
        although they are in ``supp(pi0)``. Forward-KL optima (``u = u*/(1 + u* gap/eta)``)
        stay > 0 for every finite gap.
    u_star : numpy.ndarray, shape (...)
        The ratio ``pi / pi0`` on the highest-reward answers (``>= 1``).
    lam : numpy.ndarray, shape (...)
        The Lagrange multiplier of ``sum pi = 1`` (forward KL: ``lam > r_max``).
    residual : numpy.ndarray, shape (...)
        ``|sum pi - 1|`` before the final renormalisation (the root's accuracy).
    """

    pi: np.ndarray
    u_star: np.ndarray
    lam: np.ndarray
    residual: np.ndarray


def _read_problem(pi0, r, eta):
    pi0 = read_distribution(pi0, "pi0")
    r = np.array(np.broadcast_to(read_values(r, "r"), pi0.shape), dtype=np.float64)
    eta = read_scalar(eta, "eta", low=0.0, low_open=True)
    return pi0, r, eta


def _solve_rows(pi0, r, eta, ratio):
    """Root ``u*`` of ``sum pi0 u(u*) = 1`` per row, with ``u = ratio(u*, gap / eta)``."""
    from scipy.optimize import brentq

    flat0 = pi0.reshape(-1, pi0.shape[-1])
    flat_r = r.reshape(flat0.shape)
    pi = np.zeros_like(flat0)
    u_star = np.ones(flat0.shape[0])
    residual = np.zeros(flat0.shape[0])
    for i, (q, rewards) in enumerate(zip(flat0, flat_r)):
        inside = q > 0
        r_max = rewards[inside].max()
        scaled_gap = (r_max - rewards[inside]) / eta
        q_in = q[inside]
        m = q_in[scaled_gap == 0].sum()

        def excess(v, q_in=q_in, scaled_gap=scaled_gap):
            return float(q_in @ ratio(v, scaled_gap)) - 1.0

        lo, hi = 1.0, 1.0 / m
        if excess(lo) >= 0.0:  # all rewards equal on supp(pi0): pi = pi0
            v = lo
        elif excess(hi) <= 0.0:
            v = hi
        else:
            v = brentq(excess, lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
        row = q_in * ratio(v, scaled_gap)
        residual[i] = abs(row.sum() - 1.0)
        pi[i, inside] = row / row.sum()
        u_star[i] = v
    return pi.reshape(pi0.shape), u_star.reshape(pi0.shape[:-1]), residual.reshape(pi0.shape[:-1])


def _r_max(pi0, r):
    return np.where(pi0 > 0, r, -np.inf).max(axis=-1)


def forward_kl_optimum(pi0, r, eta: float) -> RegularizedOptimum:
    """Exact maximiser of ``E_pi[r] - eta KL(pi0 || pi)`` over distributions on ``supp(pi0)``.

    Stationarity gives ``pi(y) = eta pi0(y) / (lam - r(y))`` with ``lam > r_max``; written in
    the ratio on the best answers ``u* = eta / (lam - r_max)``, ``u(y) = u* / (1 + u* gap(y) /
    eta)`` with ``gap = r_max - r``, and ``u*`` in ``[1, 1/pi0(argmax r)]`` is the root of
    ``sum pi0 u = 1`` (Brent). Binary rewards have the closed form ``lam = ((1 + eta) +
    sqrt((1 + eta)^2 - 4 eta (1 - p))) / 2``, ``p = pi0(C)`` (used by the tests, not here).
    The optimum is > 0 on all of ``supp(pi0)`` and keeps ``pi / pi0`` constant on each reward
    level (tilt factor ``lam / (lam - 1)`` between correct and wrong for binary rewards).

    Without the restriction to ``supp(pi0)`` the forward KL puts no price on mass where
    ``pi0 = 0`` (``f'(inf) = 0``); the restriction is what a softmax over the base's masked
    logits can express.

    Parameters
    ----------
    pi0 : array_like, shape (..., n)
        Base distributions (rows sum to 1, atol 1e-9); rows are solved independently.
    r : array_like, broadcast to ``pi0.shape``
        Rewards (any finite values).
    eta : float > 0

    Returns
    -------
    RegularizedOptimum

    Source: Li et al. (2025), arXiv 2509.07430 (objective); the optimum is derived (spec
    sheet ``divergence_choice_dph_rl.md``, property test 5).
    """
    pi0, r, eta = _read_problem(pi0, r, eta)
    pi, u_star, residual = _solve_rows(pi0, r, eta, lambda v, g: v / (1.0 + v * g))
    lam = _r_max(pi0, r) + eta / u_star
    return RegularizedOptimum(pi, u_star, lam, residual)


def js_optimum(pi0, r, eta: float) -> RegularizedOptimum:
    """Exact maximiser of ``E_pi[r] - eta D_JS(pi || pi0)`` (JS generator) on ``supp(pi0)``.

    Stationarity: ``r(y) - eta log(2u / (u + 1)) = lam``, so ``u = t / (2 - t)`` with
    ``t = exp((r - lam)/eta) < 2``. In the ratio on the best answers ``u*``:
    ``u(y) = u* a / (1 + u* (1 - a))``, ``a = exp(-gap(y) / eta)``, and ``u*`` in
    ``[1, 1/pi0(argmax r)]`` is the root of ``sum pi0 u = 1`` (Brent). For binary rewards
    ``t`` solves ``a t^2 - (1 + p + a (2 - p)) t + 2 = 0`` with ``a = exp(-1/eta)``.

    Without the restriction to ``supp(pi0)`` mass where ``pi0 = 0`` costs ``eta log 2`` per unit.
    Answers with ``gap / eta`` above about 745 get probability exactly 0 (``exp`` underflows;
    see :class:`RegularizedOptimum`).

    Parameters, returns: as :func:`forward_kl_optimum`; ``lam = r_max - eta log(2u*/(1+u*))``.

    Source: Li et al. (2025), arXiv 2509.07430 (objective, JS generator); the optimum is
    derived here.
    """
    pi0, r, eta = _read_problem(pi0, r, eta)

    def ratio(v, g):
        a = np.exp(-g)
        return v * a / (1.0 - v * np.expm1(-g))

    pi, u_star, residual = _solve_rows(pi0, r, eta, ratio)
    lam = _r_max(pi0, r) - eta * np.log(2.0 * u_star / (1.0 + u_star))
    return RegularizedOptimum(pi, u_star, lam, residual)


def reverse_kl_optimum(pi0, r, beta: float) -> RegularizedOptimum:
    """The maximiser ``pi ∝ pi0 exp(r / beta)`` of ``E_pi[r] - beta KL(pi || pi0)`` (closed form).

    The Bayesian posterior of Korbak, Perez and Buckley (2022); on trees see
    :mod:`tabular.rlvr.kl`. Here it is computed per row in log space (no overflow for small
    ``beta``); ``lam = beta log Z`` is the optimal value. Answers with ``(r_max - r) / beta``
    above about 745 get probability exactly 0 (``exp`` underflows; see
    :class:`RegularizedOptimum`).

    Source: Korbak, Perez, Buckley (2022), "RL with KL penalties is better viewed as
    Bayesian inference", Findings of EMNLP, arXiv 2205.11275, sec. 2.
    """
    pi0, r, beta = _read_problem(pi0, r, beta)
    inside = pi0 > 0
    r_max = _r_max(pi0, r)
    w = np.where(inside, pi0 * np.exp((np.where(inside, r, 0.0) - r_max[..., None]) / beta), 0.0)
    Z = w.sum(axis=-1)
    pi = w / Z[..., None]
    lam = r_max + beta * np.log(Z)
    with np.errstate(invalid="ignore"):
        u_star = np.where(inside & (r == r_max[..., None]), pi / np.where(inside, pi0, 1.0),
                          -np.inf).max(axis=-1)
    return RegularizedOptimum(pi, u_star, lam, np.zeros(pi0.shape[:-1]))
