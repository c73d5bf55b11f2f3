"""f-DVL's implicit maximum: the closed-form minimiser of the f-DVL V loss (Sikchi, Zheng, Zhang, Niekum, "Dual RL", ICLR 2024, arXiv 2302.08560; spec sheet ``papers/dual_rl_lp.md`` sec. D).

:func:`fdvl_value` gives the value ``V(s)`` that minimises the f-DVL V loss under a behaviour
``mu(a|s)`` in closed form per state; :func:`fdvl_value_descent` is a plain gradient-descent
minimiser of the same loss to check the closed forms against.
"""
from __future__ import annotations

import numpy as np

from tabular.lp import conjugate, optimal_ratio
from tabular.mdp import (
    _as_numeric_array,
    _check_finite,
    _check_nonnegative,
    _check_rows_sum_to_one,
    _read_int,
    _read_positive,
)

__all__ = ["FDVL_DIVERGENCES", "fdvl_loss", "fdvl_loss_grad", "fdvl_value", "fdvl_value_descent"]

FDVL_DIVERGENCES = ("tv", "kl", "chi2")


def _float_array(x, name: str, ndim: int) -> np.ndarray:
    """``x`` as a finite float64 array with ``ndim`` non-empty axes (also read by tabular.odice)."""
    arr = np.array(_as_numeric_array(x, name), dtype=np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} axes, got shape {arr.shape}")
    if 0 in arr.shape:
        raise ValueError(f"{name} has shape {arr.shape}: no axis may be empty")
    _check_finite(arr, name)
    return arr


def _read_fdvl(Q, mu, divergence, lam, beta):
    """Validated ``(Q (S, A), mu (S, A), divergence, lam, beta)`` for the f-DVL functions."""
    if divergence not in FDVL_DIVERGENCES:
        raise ValueError(f"divergence = {divergence!r} must be one of {FDVL_DIVERGENCES}")
    Q = _float_array(Q, "Q", 2)
    mu = _float_array(mu, "mu", 2)
    if mu.shape != Q.shape:
        raise ValueError(f"mu has shape {mu.shape} but Q has shape {Q.shape}")
    _check_nonnegative(mu, "mu")
    _check_rows_sum_to_one(mu, "mu", 16 * Q.shape[1] * np.finfo(np.float64).eps)
    if divergence == "kl":
        if lam is not None:
            raise ValueError("divergence 'kl' (XQL's Gumbel loss) is indexed by beta, not lam")
        if beta is None:
            raise ValueError("divergence 'kl' needs the temperature beta > 0")
        beta = _read_positive(beta, "beta")
        return Q, mu, divergence, None, beta
    if beta is not None:
        raise ValueError(f"divergence {divergence!r} is indexed by lam, not beta")
    if lam is None:
        raise ValueError(f"divergence {divergence!r} needs lam")
    lam = _read_positive(lam, "lam")
    if divergence == "tv" and not 0.5 < lam <= 1.0:
        raise ValueError(f"lam = {lam!r} must lie in (1/2, 1] for 'tv' (the quantile level "
                         "(2 lam - 1) / lam must be positive)")
    if divergence == "chi2" and not 0.0 < lam < 1.0:
        raise ValueError(f"lam = {lam!r} must lie in (0, 1) for 'chi2' (at lam = 1 every "
                         "V >= max Q + 2 minimises the loss)")
    return Q, mu, divergence, lam, None


def _read_V(V, S: int) -> np.ndarray:
    V = _float_array(V, "V", 1)
    if V.shape != (S,):
        raise ValueError(f"V has shape {V.shape}, expected ({S},)")
    return V


def _fdvl_loss(V, Q, mu, divergence, lam, beta) -> np.ndarray:
    z = Q - V[:, None]
    if divergence == "kl":
        u = z / beta
        with np.errstate(over="ignore"):
            return (mu * (np.exp(u) - u - 1.0)).sum(axis=1)
    g = np.maximum(z, 0.0) if divergence == "tv" else conjugate("chi2", z)
    return lam * (mu * g).sum(axis=1) + (1.0 - lam) * V


def _fdvl_grad(V, Q, mu, divergence, lam, beta) -> np.ndarray:
    z = Q - V[:, None]
    if divergence == "kl":
        with np.errstate(over="ignore"):
            return (mu * (1.0 - np.exp(z / beta))).sum(axis=1) / beta
    slope = (z > 0).astype(np.float64) if divergence == "tv" else optimal_ratio("chi2", z)
    return -lam * (mu * slope).sum(axis=1) + (1.0 - lam)


def fdvl_loss(V, Q, mu, divergence: str, *, lam: float | None = None,
              beta: float | None = None) -> np.ndarray:
    """The per-state f-DVL V loss (Sikchi et al. 2024, f-DVL; spec sheet sec. D).

    With ``z = Q(s, a) - V(s)`` and ``E_mu`` the expectation over ``a ~ mu(. | s)``:

    * ``"tv"``: ``lam E_mu[max(z, 0)] + (1 - lam) V(s)`` (the public code's
      ``lam max(z, 0) - (1 - lam) z`` plus the V-free ``(1 - lam) E_mu[Q]``);
    * ``"chi2"``: ``lam E_mu[f*_p(z)] + (1 - lam) V(s)``,
      ``f*_p(z) = (max(z, -2) + 2)^2 / 4 - 1`` (Pearson chi2, non-negative conjugate);
    * ``"kl"``: XQL's Gumbel loss ``E_mu[exp(z / beta) - z / beta - 1]``.

    Parameters
    ----------
    V : array_like (S,)
    Q : array_like (S, A), float
    mu : array_like (S, A)
        Behaviour policy: non-negative rows summing to 1 (zeros allowed).
    divergence : {"tv", "chi2", "kl"}
    lam : float
        For "tv" in (1/2, 1], for "chi2" in (0, 1); None for "kl".
    beta : float
        For "kl", > 0; None otherwise.

    Returns
    -------
    numpy.ndarray, float64, (S,)
        ``inf`` where ``exp`` overflows ("kl").

    Raises
    ------
    ValueError
        For shapes that do not match, non-finite entries, a ``mu`` row that is not a
        distribution (named), or a ``lam`` / ``beta`` outside its range or given for the
        wrong divergence.
    """
    Q, mu, divergence, lam, beta = _read_fdvl(Q, mu, divergence, lam, beta)
    return _fdvl_loss(_read_V(V, Q.shape[0]), Q, mu, divergence, lam, beta)


def fdvl_loss_grad(V, Q, mu, divergence: str, *, lam: float | None = None,
                   beta: float | None = None) -> np.ndarray:
    """``d fdvl_loss / d V(s)``, shape (S,) (each state's loss depends on its own V(s) only).

    * ``"tv"``: ``-lam Pr_mu(Q > V) + (1 - lam)`` (the right-continuous subgradient);
    * ``"chi2"``: ``-lam E_mu[max(1 + (Q - V) / 2, 0)] + (1 - lam)``;
    * ``"kl"``: ``E_mu[1 - exp((Q - V) / beta)] / beta``.

    Arguments and errors as :func:`fdvl_loss`.
    """
    Q, mu, divergence, lam, beta = _read_fdvl(Q, mu, divergence, lam, beta)
    return _fdvl_grad(_read_V(V, Q.shape[0]), Q, mu, divergence, lam, beta)


def _tv_value(Q, mu, lam) -> np.ndarray:
    """Per state, the lowest atom v of Q(s, .) under mu with Pr_mu(Q > v) <= (1 - lam) / lam
    (the quantile at level (2 lam - 1) / lam; exact at lam = 1, where the bound is 0)."""
    tail_max = (1.0 - lam) / lam
    V = np.empty(Q.shape[0])
    for s in range(Q.shape[0]):
        keep = mu[s] > 0
        q, m = Q[s, keep], mu[s, keep]
        tail = np.array([m[q > v].sum() for v in q])  # Pr_mu(Q > v) at each atom
        V[s] = q[tail <= tail_max].min()
    return V


def _chi2_value(Q, mu, lam) -> np.ndarray:
    from scipy.optimize import brentq

    V = np.empty(Q.shape[0])
    for s in range(Q.shape[0]):
        keep = mu[s] > 0
        q, m = Q[s, keep], mu[s, keep]

        def g(v, q=q, m=m):
            return lam * float(m @ optimal_ratio("chi2", q - v)) - (1.0 - lam)

        # g decreases in v; g(hi) = -(1 - lam) < 0 and g(lo) >= lam / 2 > 0 (see fdvl_value).
        lo = min(float(q.min()), float(m @ q) + 2.0 - 2.0 * (1.0 - lam) / lam) - 1.0
        hi = float(q.max()) + 2.0
        V[s] = brentq(g, lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=500)
    return V


def fdvl_value(Q, mu, divergence: str, *, lam: float | None = None,
               beta: float | None = None) -> np.ndarray:
    """The f-DVL value ``V(s) = argmin_v`` of :func:`fdvl_loss`, per state in closed form
    (Sikchi et al. 2024, f-DVL; the closed forms are derived in the spec sheet, sec. D).

    Setting the derivative of the loss to zero:

    * ``"tv"``: ``Pr_mu(Q > V) = (1 - lam) / lam``: V is the quantile of ``Q(s, .)`` under
      ``mu`` at level ``(2 lam - 1) / lam`` (the lowest atom ``v`` with
      ``Pr_mu(Q > v) <= (1 - lam) / lam``); ``lam = 1`` gives ``max_{supp mu} Q``.
    * ``"kl"``: ``E_mu[exp((Q - V) / beta)] = 1``, i.e. ``V = beta log E_mu[exp(Q / beta)]``
      (computed as a log-sum-exp); tends to ``max_{supp mu} Q`` as ``beta -> 0``.
    * ``"chi2"``: V is the root of ``lam E_mu[max(1 + (Q - V) / 2, 0)] = 1 - lam``, found by
      Brent's method (``scipy.optimize.brentq``, xtol 1e-14) on the bracket
      ``[min(min Q, E_mu Q + 2 - 2 (1 - lam) / lam) - 1, max Q + 2]``: at the right end the
      left side is 0 < 1 - lam; at ``v0 = min(...)`` every term is active and the left side is
      at least ``1 - lam``, and one unit further left it grows by ``lam / 2``.

    Audit note (spec sheet): with the non-negative conjugate ``f*_p``, the chi2 value does NOT
    tend to ``max Q`` as ``lam -> 1`` but to ``max_{supp mu} Q + 2``: once only the best
    action ``a*`` keeps ``1 + (Q - V)/2 > 0``, ``V = Q(a*) + 2 - 2 (1 - lam) / (lam mu(a*))``
    (2.89 for max Q = 0.91, 8 uniform actions, lam = 0.999). The public code's loss
    ``max(z + z^2/4, 0)`` differs from ``f*_p`` for ``z`` in (-4, 0) and does reach max Q near
    lam = 1 when ``max Q - min Q < 4``; it is not implemented here.

    Parameters
    ----------
    Q : array_like (S, A)
    mu : array_like (S, A)
        Behaviour policy; only actions with ``mu > 0`` count.
    divergence : {"tv", "chi2", "kl"}
    lam : float
        For "tv" in (1/2, 1], for "chi2" in (0, 1).
    beta : float
        For "kl", > 0.

    Returns
    -------
    numpy.ndarray, float64, (S,)
        Same units as Q.

    Raises
    ------
    ValueError
        As :func:`fdvl_loss`.
    """
    from scipy.special import logsumexp

    Q, mu, divergence, lam, beta = _read_fdvl(Q, mu, divergence, lam, beta)
    if divergence == "tv":
        return _tv_value(Q, mu, lam)
    if divergence == "chi2":
        return _chi2_value(Q, mu, lam)
    return beta * logsumexp(Q / beta, b=mu, axis=1)


def fdvl_value_descent(Q, mu, divergence: str, *, lam: float | None = None,
                       beta: float | None = None, n_steps: int = 1000,
                       step: float = 1.0) -> np.ndarray:
    """Minimise :func:`fdvl_loss` by gradient descent, independently of the closed forms.

    Per state, from ``V = max_{supp mu} Q``: ``V' = V - eta g(V)`` with ``g`` from
    :func:`fdvl_loss_grad`; the step is accepted when the loss strictly decreases (then
    ``eta *= 1.5``), otherwise ``eta /= 2``. For these one-dimensional convex losses (the TV
    one piecewise linear) the iterates converge to the minimiser.

    Parameters
    ----------
    Q, mu, divergence, lam, beta
        As :func:`fdvl_loss`.
    n_steps : int, default 1000
        Iterations (>= 1).
    step : float, default 1.0
        Initial step size ``eta`` (> 0).

    Returns
    -------
    numpy.ndarray, float64, (S,)

    Raises
    ------
    ValueError
        As :func:`fdvl_loss`, or for ``n_steps < 1`` or a non-positive step.
    """
    Q, mu, divergence, lam, beta = _read_fdvl(Q, mu, divergence, lam, beta)
    n_steps = _read_int(n_steps, "n_steps")
    eta0 = _read_positive(step, "step")
    V = np.where(mu > 0, Q, -np.inf).max(axis=1)
    eta = np.full_like(V, eta0)
    loss = _fdvl_loss(V, Q, mu, divergence, lam, beta)
    for _ in range(n_steps):
        candidate = V - eta * _fdvl_grad(V, Q, mu, divergence, lam, beta)
        new_loss = _fdvl_loss(candidate, Q, mu, divergence, lam, beta)
        better = new_loss < loss
        V = np.where(better, candidate, V)
        loss = np.where(better, new_loss, loss)
        eta = np.where(better, eta * 1.5, eta * 0.5)
    return V
