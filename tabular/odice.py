"""ODICE: the orthogonal-gradient update of V-DICE value learning on linear features (Mao, Xu, Zhang, Zhan, "ODICE", ICLR 2024, arXiv 2402.00348; spec sheet ``papers/dual_rl_lp.md`` sec. F).

Forward and backward gradients of the V-DICE loss for ``V = Phi theta``, the orthogonal
projection and the three update rules (semi, true, orthogonal). The training loop of
:func:`odice_train` is a Numba kernel (``_train_kernel``) with a plain-numpy reference
(``_train_numpy``) that the tests compare it with.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from tabular.fdvl import _float_array
from tabular.lp import conjugate, optimal_ratio
from tabular.mdp import (
    _check_nonnegative,
    _check_rows_sum_to_one,
    _read_int,
    _read_positive,
)

__all__ = [
    "ODICE_MODES",
    "ODICEGradients",
    "ODICERun",
    "odice_direction",
    "odice_gradients",
    "odice_loss",
    "odice_per_sample_direction",
    "odice_train",
    "orthogonal_projection",
    "rbf_features",
]

ODICE_DIVERGENCES = ("chi2", "kl")
ODICE_MODES = ("semi", "true", "orthogonal")
PROJECTION_FLOOR = 1e-10  # max(||g_f||^2, 1e-10) in the projection, as in the public code


def rbf_features(S: int, dim: int, *, width: float | None = None) -> np.ndarray:
    """Gaussian radial-basis features of the states ``0..S-1`` of a chain.

    ``phi_j(s) = exp(-(s - c_j)^2 / (2 width^2))`` with centres ``c = linspace(0, S - 1, dim)``
    and default width the spacing of the centres, ``(S - 1) / (dim - 1)``.

    Parameters
    ----------
    S, dim : int
        Number of states (>= 1) and features (>= 2).
    width : float, optional
        > 0.

    Returns
    -------
    numpy.ndarray, float64, (S, dim)

    Raises
    ------
    ValueError
        For ``S < 1``, ``dim < 2`` or a non-positive width.
    """
    S = _read_int(S, "S")
    dim = _read_int(dim, "dim", minimum=2)
    centres = np.linspace(0.0, S - 1.0, dim)
    if width is None and S == 1:
        raise ValueError("S = 1 needs an explicit width (the centres have no spacing)")
    width = (S - 1.0) / (dim - 1.0) if width is None else _read_positive(width, "width")
    return np.exp(-((np.arange(S)[:, None] - centres[None, :]) ** 2) / (2.0 * width**2))


@dataclass(frozen=True)
class ODICEGradients:
    """The parts of the V-DICE gradient at ``theta`` (Mao et al. 2024; spec sheet sec. F).

    Attributes
    ----------
    g0 : numpy.ndarray (dim,)
        ``(1 - lam) grad E_D[V(s)]``.
    g_f : numpy.ndarray (dim,)
        Forward gradient: ``grad`` of ``lam E_D[f*_p(r + gamma Vbar(s') - V(s))]`` through
        ``V(s)`` only.
    g_b : numpy.ndarray (dim,)
        Backward gradient: ``grad`` of ``eta lam E_D[f*_p(r + gamma V(s') - Vbar(s))]`` through
        ``V(s')`` only.
    residual : numpy.ndarray (N,)
        ``delta = r + gamma V(s') - V(s)`` per transition.
    """

    g0: np.ndarray
    g_f: np.ndarray
    g_b: np.ndarray
    residual: np.ndarray


def _read_transitions(Phi, s, r, s_next, weights):
    Phi = _float_array(Phi, "Phi", 2)
    S = Phi.shape[0]
    out = []
    for x, name in ((s, "s"), (s_next, "s_next")):
        arr = np.asarray(x)
        if arr.dtype.kind not in "iu" or arr.ndim != 1:
            raise TypeError(f"{name} must be a 1-d integer array of state indices")
        bad = (arr < 0) | (arr >= S)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{name}[{i}] = {int(arr[i])} is not a row of Phi (S = {S})")
        out.append(arr.astype(np.int64))
    s, s_next = out
    r = _float_array(r, "r", 1)
    N = s.shape[0]
    if N == 0 or s_next.shape != (N,) or r.shape != (N,):
        raise ValueError(f"s, r, s_next must have the same non-zero length, got {s.shape}, "
                         f"{r.shape}, {s_next.shape}")
    if weights is None:
        w = np.full(N, 1.0 / N)
    else:
        w = _float_array(weights, "weights", 1)
        if w.shape != (N,):
            raise ValueError(f"weights has shape {w.shape}, expected ({N},)")
        _check_nonnegative(w, "weights")
        _check_rows_sum_to_one(w, "weights", 1e-9)
    return Phi, s, r, s_next, w


def _read_odice(theta, dim, gamma, lam, eta, divergence):
    theta = _float_array(theta, "theta", 1)
    if theta.shape != (dim,):
        raise ValueError(f"theta has shape {theta.shape}, expected ({dim},) (columns of Phi)")
    gamma = _read_positive(gamma, "gamma", allow_zero=True)
    lam = _read_positive(lam, "lam")
    eta = _read_positive(eta, "eta", allow_zero=True)
    if gamma >= 1.0:
        raise ValueError(f"gamma = {gamma!r} must lie in [0, 1)")
    if lam >= 1.0:
        raise ValueError(f"lam = {lam!r} must lie in (0, 1)")
    if divergence not in ODICE_DIVERGENCES:
        raise ValueError(f"divergence = {divergence!r} must be one of {ODICE_DIVERGENCES}")
    return theta, gamma, lam, eta


def odice_loss(theta, Phi, s, r, s_next, weights=None, *, gamma: float, lam: float = 0.8,
               divergence: str = "chi2") -> float:
    """The V-DICE loss ``(1 - lam) E_D[V(s)] + lam E_D[f*_p(r + gamma V(s') - V(s))]`` with
    ``V = Phi theta`` (Mao et al. 2024; spec sheet sec. F). Arguments as
    :func:`odice_gradients`."""
    theta, gamma, lam, _ = _read_odice(theta, np.shape(Phi)[-1], gamma, lam, 0.0, divergence)
    Phi, s, r, s_next, w = _read_transitions(Phi, s, r, s_next, weights)
    return _odice_parts(theta, Phi, s, r, s_next, w, gamma, lam, 0.0, divergence)[1]


def odice_gradients(theta, Phi, s, r, s_next, weights=None, *, gamma: float, lam: float = 0.8,
                    eta: float = 1.0, divergence: str = "chi2") -> ODICEGradients:
    """Forward and backward gradients of the V-DICE loss for ``V = Phi theta`` (Mao, Xu,
    Zhang, Zhan 2024, ODICE; formulas as verified in the spec sheet, sec. F).

    With ``delta_i = r_i + gamma V(s'_i) - V(s_i)`` and ``f*_p'`` the conjugate's slope
    (chi2: ``max(1 + y/2, 0)``; KL: ``exp(y - 1)``; :func:`tabular.lp.optimal_ratio`), over
    the whole weighted batch::

        g0  = (1 - lam)  sum_i w_i phi(s_i)
        g_f = -lam       sum_i w_i f*_p'(delta_i) phi(s_i)
        g_b = eta lam gamma sum_i w_i f*_p'(delta_i) phi(s'_i)

    ``g0 + g_f + g_b`` (eta = 1) is the gradient of :func:`odice_loss`; ``g0 + g_f`` is the
    semi-gradient.

    Parameters
    ----------
    theta : array_like (dim,)
    Phi : array_like (S, dim)
        Features of every state (one-hot rows: tabular V).
    s, s_next : array_like of int (N,)
        States and next states of the N transitions.
    r : array_like (N,)
        Rewards.
    weights : array_like (N,), optional
        Probabilities of the transitions (sum to 1); uniform by default.
    gamma : float in [0, 1)
    lam : float in (0, 1), default 0.8
    eta : float >= 0, default 1.0
    divergence : {"chi2", "kl"}, default "chi2"

    Returns
    -------
    ODICEGradients

    Raises
    ------
    ValueError
        Mismatched shapes, state indices outside ``Phi``, non-finite values, weights that
        are not a distribution, or a parameter outside its range.
    TypeError
        For non-integer state arrays.
    """
    theta, gamma, lam, eta = _read_odice(theta, np.shape(Phi)[-1], gamma, lam, eta, divergence)
    Phi, s, r, s_next, w = _read_transitions(Phi, s, r, s_next, weights)
    return _odice_gradients(theta, Phi, s, r, s_next, w, gamma, lam, eta, divergence)


def _odice_parts(theta, Phi, s, r, s_next, w, gamma, lam, eta, divergence):
    """``(ODICEGradients, loss)``; per-transition weights are summed per state first
    (``np.bincount``), since the features depend on the state only."""
    S = Phi.shape[0]
    V = Phi @ theta
    delta = r + gamma * V[s_next] - V[s]
    with np.errstate(over="ignore", invalid="ignore"):
        slope = w * optimal_ratio(divergence, delta)
        loss = float((1.0 - lam) * (w @ V[s]) + lam * (w @ conjugate(divergence, delta)))
    g0 = (1.0 - lam) * (np.bincount(s, w, S) @ Phi)
    g_f = -lam * (np.bincount(s, slope, S) @ Phi)
    g_b = eta * lam * gamma * (np.bincount(s_next, slope, S) @ Phi)
    return ODICEGradients(g0=g0, g_f=g_f, g_b=g_b, residual=delta), loss


def _odice_gradients(theta, Phi, s, r, s_next, w, gamma, lam, eta, divergence):
    return _odice_parts(theta, Phi, s, r, s_next, w, gamma, lam, eta, divergence)[0]


def orthogonal_projection(g_b, g_f) -> np.ndarray:
    """``g_perp = g_b - (<g_f, g_b> / max(||g_f||^2, 1e-10)) g_f`` (Mao et al. 2024; spec
    sheet sec. F), the part of ``g_b`` orthogonal to ``g_f`` (when ``||g_f||^2 >= 1e-10``).

    The map is a projection: applying it to its output changes nothing (up to rounding).

    Parameters
    ----------
    g_b, g_f : array_like (dim,) or (N, dim)
        Flattened gradients; with 2-d input each row is projected on its own.
    Returns
    -------
    numpy.ndarray, float64, shape of ``g_b``

    Raises
    ------
    ValueError
        For different shapes or non-finite entries.
    """
    g_b = np.asarray(g_b, dtype=np.float64)
    g_f = np.asarray(g_f, dtype=np.float64)
    if g_b.shape != g_f.shape or g_b.ndim not in (1, 2):
        raise ValueError(f"g_b {g_b.shape} and g_f {g_f.shape} must have the same 1-d or 2-d shape")
    if not (np.isfinite(g_b).all() and np.isfinite(g_f).all()):
        raise ValueError("g_b and g_f must be finite")
    dot = (g_f * g_b).sum(axis=-1, keepdims=True)
    norm2 = np.maximum((g_f * g_f).sum(axis=-1, keepdims=True), PROJECTION_FLOOR)
    return g_b - (dot / norm2) * g_f


def odice_direction(grads: ODICEGradients, mode: str) -> np.ndarray:
    """The update direction (descent: ``theta <- theta - lr * direction``; Mao et al. 2024,
    ODICE; spec sheet sec. F).

    * ``"semi"``: ``g0 + g_f`` (the backward part dropped);
    * ``"true"``: ``g0 + g_f + g_b``, the full gradient when ``eta = 1``;
    * ``"orthogonal"``: ``g0 + g_f + g_perp`` with ``g_perp`` the projection of ``g_b`` (which
      already carries ``eta``) orthogonal to ``g_f`` (:func:`orthogonal_projection`).

    With ``eta = 0``, ``g_b = 0`` and the orthogonal direction equals the semi-gradient
    exactly (``g_perp = 0``).

    Parameters
    ----------
    grads : ODICEGradients
        From :func:`odice_gradients`: ``g0``, ``g_f``, ``g_b`` float64 arrays of shape (dim,).
    mode : {"semi", "true", "orthogonal"}

    Returns
    -------
    numpy.ndarray, float64, (dim,)
        In the units of the loss per unit of ``theta``.

    Raises
    ------
    ValueError
        For an unknown mode.
    """
    if mode not in ODICE_MODES:
        raise ValueError(f"mode = {mode!r} must be one of {ODICE_MODES}")
    base = grads.g0 + grads.g_f
    if mode == "semi":
        return base
    if mode == "true":
        return base + grads.g_b
    return base + orthogonal_projection(grads.g_b, grads.g_f)


def odice_per_sample_direction(theta, Phi, s, r, s_next, weights=None, *, gamma: float,
                               lam: float = 0.8, eta: float = 1.0,
                               divergence: str = "chi2") -> np.ndarray:
    """The orthogonal direction with the projection applied per transition, then averaged:
    ``g0 + sum_i w_i (g_f,i + proj(g_b,i, g_f,i))`` (NOT the public code's rule, which
    projects the whole-batch gradients; spec sheet, pitfalls).

    With tabular (one-hot) features, ``g_f,i`` is a multiple of ``e_{s_i}`` and ``g_b,i`` of
    ``e_{s'_i}``: for ``s'_i != s_i`` they are orthogonal and the projection leaves ``g_b,i``
    unchanged; for ``s'_i = s_i`` (a self-loop) ``g_b,i = -eta gamma g_f,i`` and the
    projection removes it. So per-sample tabular ODICE is the true gradient minus the
    backward terms of self-loop transitions: the orthogonal update is vacuous there.

    Arguments and errors as :func:`odice_gradients`; returns (dim,).
    """
    theta, gamma, lam, eta = _read_odice(theta, np.shape(Phi)[-1], gamma, lam, eta, divergence)
    Phi, s, r, s_next, w = _read_transitions(Phi, s, r, s_next, weights)
    V = Phi @ theta
    slope = optimal_ratio(divergence, r + gamma * V[s_next] - V[s])
    g_f = -lam * slope[:, None] * Phi[s]
    g_b = eta * lam * gamma * slope[:, None] * Phi[s_next]
    g0 = (1.0 - lam) * (w @ Phi[s])
    return g0 + w @ (g_f + orthogonal_projection(g_b, g_f))


@dataclass(frozen=True)
class ODICERun:
    """A run of :func:`odice_train`.

    Attributes
    ----------
    theta : numpy.ndarray (n_steps + 1, dim)
        ``theta[k]`` after k updates (``theta[0]`` the start).
    direction_norm : numpy.ndarray (n_steps + 1,)
        Euclidean norm of the update direction (:func:`odice_direction`) at ``theta[k]``;
        the last entry, at the final iterate, measures how far the run is from a fixed point
        of its rule.
    loss : numpy.ndarray (n_steps + 1,)
        :func:`odice_loss` at ``theta[k]``.
    """

    theta: np.ndarray
    direction_norm: np.ndarray
    loss: np.ndarray


def odice_train(Phi, s, r, s_next, weights=None, *, gamma: float, mode: str,
                lam: float = 0.8, eta: float = 1.0, lr: float = 0.1, n_steps: int = 3000,
                theta0=None, divergence: str = "chi2") -> ODICERun:
    """Full-batch gradient descent on the V-DICE loss with one of the three update rules
    (Mao et al. 2024, ODICE; spec sheet sec. F): ``theta <- theta - lr * direction`` with
    :func:`odice_direction`, the projection on the whole batch's flattened gradients.

    Parameters
    ----------
    Phi, s, r, s_next, weights, gamma, lam, eta, divergence
        As :func:`odice_gradients`.
    mode : {"semi", "true", "orthogonal"}
    lr : float > 0, default 0.1
    n_steps : int >= 1, default 3000
    theta0 : array_like (dim,), optional
        Zeros by default.

    Returns
    -------
    ODICERun
        If a rule diverges (non-finite gradients) the run stops there and the remaining rows
        of ``theta``, ``direction_norm`` and ``loss`` are nan.

    Raises
    ------
    ValueError
        As :func:`odice_gradients`, an unknown mode, ``n_steps < 1`` or a non-positive lr.
    """
    dim = np.shape(Phi)[-1]
    theta = np.zeros(dim) if theta0 is None else theta0
    theta, gamma, lam, eta = _read_odice(theta, dim, gamma, lam, eta, divergence)
    Phi, s, r, s_next, w = _read_transitions(Phi, s, r, s_next, weights)
    if mode not in ODICE_MODES:
        raise ValueError(f"mode = {mode!r} must be one of {ODICE_MODES}")
    n_steps = _read_int(n_steps, "n_steps")
    lr = _read_positive(lr, "lr")
    thetas, norms, losses = _train_kernel(
        np.ascontiguousarray(Phi), s, r, s_next, w, gamma, lam, eta, lr, n_steps,
        ODICE_MODES.index(mode), divergence == "kl", theta)
    return ODICERun(theta=thetas, direction_norm=norms, loss=losses)


def _train_numpy(Phi, s, r, s_next, w, gamma, lam, eta, lr, n_steps, mode, divergence, theta):
    """Plain-numpy reference of :func:`_train_kernel` (validated inputs; mode a name)."""
    dim = Phi.shape[1]
    thetas = np.full((n_steps + 1, dim), np.nan)
    norms = np.full(n_steps + 1, np.nan)
    losses = np.full(n_steps + 1, np.nan)
    for k in range(n_steps + 1):
        grads, loss = _odice_parts(theta, Phi, s, r, s_next, w, gamma, lam, eta, divergence)
        if not (np.isfinite(grads.g_f).all() and np.isfinite(grads.g_b).all()):
            break
        direction = odice_direction(grads, mode)
        thetas[k], losses[k], norms[k] = theta, loss, np.linalg.norm(direction)
        theta = theta - lr * direction
    return thetas, norms, losses


@njit(cache=True)
def _train_kernel(Phi, s, r, s_next, w, gamma, lam, eta, lr, n_steps, mode, kl, theta0):
    """``n_steps`` updates of one rule (mode 0 semi, 1 true, 2 orthogonal; ``kl`` False for
    chi2): ``(thetas (n_steps + 1, dim), direction norms, losses)``, nan rows after a
    non-finite gradient. Same arithmetic as :func:`_train_numpy` up to summation order."""
    S, dim = Phi.shape
    N = s.size
    thetas = np.full((n_steps + 1, dim), np.nan)
    norms = np.full(n_steps + 1, np.nan)
    losses = np.full(n_steps + 1, np.nan)
    theta = theta0.copy()
    V = np.empty(S)
    c0, cf, cb = np.zeros(S), np.empty(S), np.empty(S)
    for i in range(N):
        c0[s[i]] += w[i]
    g0, g_f, g_b, d = np.empty(dim), np.empty(dim), np.empty(dim), np.empty(dim)
    for k in range(n_steps + 1):
        for x in range(S):
            acc = 0.0
            for j in range(dim):
                acc += Phi[x, j] * theta[j]
            V[x] = acc
        cf[:] = 0.0
        cb[:] = 0.0
        loss = 0.0
        for i in range(N):
            delta = r[i] + gamma * V[s_next[i]] - V[s[i]]
            if kl:
                slope = np.exp(delta - 1.0)
                fstar = slope
            else:
                slope = max(1.0 + delta / 2.0, 0.0)
                fstar = (max(delta, -2.0) + 2.0) ** 2 / 4.0 - 1.0
            cf[s[i]] += w[i] * slope
            cb[s_next[i]] += w[i] * slope
            loss += w[i] * ((1.0 - lam) * V[s[i]] + lam * fstar)
        finite = True
        for j in range(dim):
            a0, af, ab = 0.0, 0.0, 0.0
            for x in range(S):
                a0 += c0[x] * Phi[x, j]
                af += cf[x] * Phi[x, j]
                ab += cb[x] * Phi[x, j]
            g0[j] = (1.0 - lam) * a0
            g_f[j] = -lam * af
            g_b[j] = eta * lam * gamma * ab
            finite = finite and np.isfinite(g_f[j]) and np.isfinite(g_b[j])
        if not finite:
            break
        dot, norm2 = 0.0, 0.0
        for j in range(dim):
            dot += g_f[j] * g_b[j]
            norm2 += g_f[j] * g_f[j]
        coef = dot / max(norm2, PROJECTION_FLOOR)
        size = 0.0
        for j in range(dim):
            d[j] = g0[j] + g_f[j]
            if mode == 1:
                d[j] = d[j] + g_b[j]
            elif mode == 2:
                d[j] = d[j] + (g_b[j] - coef * g_f[j])
            size += d[j] * d[j]
        thetas[k] = theta
        losses[k] = loss
        norms[k] = np.sqrt(size)
        for j in range(dim):
            theta[j] = theta[j] - lr * d[j]
    return thetas, norms, losses
