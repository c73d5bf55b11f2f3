"""BroRL's mass-balance identity (Hu et al. 2025): first-order change of the correct mass after one update from N rollouts at one softmax decision.

Source: Hu, Liu, Lu, Wu, Harchaoui, Diao, Choi, Molchanov, Yang, Kautz, Dong (2025), "BroRL:
Scaling Reinforcement Learning via Broadened Exploration", arXiv 2510.01180 (the equation and
its terms verified from a third-party review quoting the paper). The logit update that
reproduces it is our reconstruction, checked algebraically (spec sheet
``difficulty_filtering_and_brorl.md``); its simulation settings are not verified.

One decision: logits ``z`` (V,), ``p = softmax(z)``, correct tokens ``C``,
``Q_pos = sum_C p``, ``Q_neg = 1 - Q_pos``; rewards ``R_c >= 0 >= R_w`` (the audit: with
``R_w = 0`` the unsampled term never wins, so use +1/-1). Of N rollouts, ``A`` and ``B`` are
the sets of DISTINCT sampled correct and incorrect tokens, ``U`` the unsampled ones.

Set model (BroRL's equation): ``dz = (eta/N) grad_z sum_{k in A u B} r_k p_k``, i.e.
``dz_k = (eta/N) p_k (r_k 1[k in A u B] - S_R)``, ``S_R = sum_{A u B} p_k r_k``; to first
order ``dQ_pos = 1_C^T J dz`` with ``J = diag(p) - p p^T``, which equals

    (eta/N) [ (R_c - S_R) Q_neg A_2 + (S_R - R_w) Q_pos B_2
              + S_R (Q_pos U_neg,2 - Q_neg U_pos,2) ],

``A_2 = sum_A p^2``, ``B_2 = sum_B p^2``, ``U_pos,2 = sum_{C n U} p^2``,
``U_neg,2 = sum_{U \\ C} p^2``. The first two terms are >= 0; the third can be negative.
Count model (plain REINFORCE): ``dz = (eta/N) sum_n r_n (e_{a_n} - p)``, with
``E[dQ_pos] = eta (R_c - R_w)(Q_neg^2 sum_C p^2 + Q_pos^2 sum_{not C} p^2)`` for every N.
"""
from __future__ import annotations

import numpy as np

from tabular.mdp import _read_int
from tabular.rlvr._checks import read_distribution, read_mask, read_scalar, read_values
from tabular.rlvr._softmax import jvp, softmax

__all__ = [
    "token_rewards", "set_update", "count_update", "mass_balance_terms",
    "first_order_mass_change", "exact_mass_change", "expected_count_mass_change",
    "sheet_bandit",
]


def _read_case(p, correct):
    p = read_distribution(p, "p")
    if p.ndim != 1:
        raise ValueError(f"p must be 1-d (one decision), got shape {p.shape}")
    return p, read_mask(correct, "correct", p.shape)


def _read_sampled(sampled, p):
    sampled = np.asarray(sampled)
    shape = sampled.shape if sampled.ndim == 2 and sampled.shape[-1] == p.size else p.shape
    return read_mask(sampled, "sampled", shape)


def _read_rewards(R_c, R_w):
    R_c = read_scalar(R_c, "R_c", low=0.0)
    R_w = read_scalar(R_w, "R_w", high=0.0)
    return R_c, R_w


def _read_step(eta, N):
    return read_scalar(eta, "eta", low=0.0, low_open=True), _read_int(N, "N")


def token_rewards(correct, R_c: float, R_w: float) -> np.ndarray:
    """``r_k = R_c`` on correct tokens and ``R_w`` elsewhere; needs ``R_c >= 0 >= R_w``.

    ``correct`` is a bool mask (or 0/1 integers) of any shape; other integers raise
    ``ValueError``, other dtypes ``TypeError``, rewards of the wrong sign ``ValueError``.
    """
    correct = read_mask(correct, "correct", np.shape(correct))
    R_c, R_w = _read_rewards(R_c, R_w)
    return np.where(correct, R_c, R_w)


def set_update(p, correct, sampled, R_c: float, R_w: float, eta: float, N: int) -> np.ndarray:
    """BroRL's logit update ``dz_k = (eta/N) p_k (r_k 1[k sampled] - S_R)``, shape (V,).

    Parameters
    ----------
    p : array_like, shape (V,)
        Current token probabilities (sums to 1, atol 1e-9).
    correct : array_like of bool, shape (V,)
        Correct tokens ``C``.
    sampled : array_like of bool, shape (V,) or (n_draws, V)
        The set ``A u B`` of distinct sampled tokens (one row per draw).
    R_c, R_w : float
        Rewards of correct (>= 0) and wrong (<= 0) tokens.
    eta : float > 0
        Learning rate.
    N : int >= 1
        Number of rollouts (the ``eta/N`` prefactor).

    Returns
    -------
    numpy.ndarray of float64, shape of ``sampled``

    Source: Hu et al. (2025), arXiv 2510.01180 (reconstructed update; spec sheet).
    """
    p, correct = _read_case(p, correct)
    sampled = _read_sampled(sampled, p)
    eta, N = _read_step(eta, N)
    x = np.where(sampled, token_rewards(correct, R_c, R_w), 0.0)
    return (eta / N) * jvp(p, x)


def count_update(p, counts, correct, R_c: float, R_w: float, eta: float) -> np.ndarray:
    """REINFORCE's update ``dz = (eta/N) sum_n r_n (e_{a_n} - p)`` from token counts, shape (V,).

    Parameters
    ----------
    counts : array_like of int, shape (V,) or (n_draws, V)
        How often each token was sampled (one row per draw); ``N`` is the row sum.

    Returns
    -------
    numpy.ndarray of float64, shape of ``counts``
    """
    p, correct = _read_case(p, correct)
    counts = np.asarray(counts)
    if (counts.dtype.kind not in "iu" or counts.shape[-1:] != p.shape or counts.ndim > 2
            or np.any(counts < 0)):
        raise ValueError(f"counts must be non-negative ints of shape {p.shape} or (n_draws, {p.size})")
    N = counts.sum(axis=-1, keepdims=True)
    if np.any(N < 1):
        raise ValueError("every row of counts must contain at least one rollout")
    eta = read_scalar(eta, "eta", low=0.0, low_open=True)
    weighted = counts * token_rewards(correct, R_c, R_w)
    return (eta / N) * (weighted - weighted.sum(axis=-1, keepdims=True) * p)


def mass_balance_terms(p, correct, sampled, R_c: float, R_w: float, eta: float, N: int) -> np.ndarray:
    """The three terms of BroRL's mass balance, shape (3,) (or (n_draws, 3) for a batch of
    sampled sets); their sum is ``1_C^T J dz``.

    ``[(R_c - S_R) Q_neg A_2, (S_R - R_w) Q_pos B_2, S_R (Q_pos U_neg,2 - Q_neg U_pos,2)]``,
    each times ``eta/N`` (module docstring). The first two are >= 0 whenever
    ``R_c >= 0 >= R_w``.

    Source: Hu et al. (2025), arXiv 2510.01180, the mass-balance equation (verified from a
    review quoting it).
    """
    p, correct = _read_case(p, correct)
    sampled = _read_sampled(sampled, p)
    R_c, R_w = _read_rewards(R_c, R_w)
    eta, N = _read_step(eta, N)
    Q_pos = p[correct].sum()
    Q_neg = 1.0 - Q_pos
    p2 = p * p

    def mass(values, mask):
        return np.where(mask, values, 0.0).sum(axis=-1)

    A_2 = mass(p2, sampled & correct)
    B_2 = mass(p2, sampled & ~correct)
    U_pos2 = mass(p2, ~sampled & correct)
    U_neg2 = mass(p2, ~sampled & ~correct)
    S_R = R_c * mass(p, sampled & correct) + R_w * mass(p, sampled & ~correct)
    terms = np.stack([(R_c - S_R) * Q_neg * A_2, (S_R - R_w) * Q_pos * B_2,
                      S_R * (Q_pos * U_neg2 - Q_neg * U_pos2)], axis=-1)
    return (eta / N) * terms


def first_order_mass_change(p, correct, dz):
    """``sum_{i in C} (J dz)_i``: the first-order change of ``Q_pos`` under logits ``z + dz``.

    ``dz`` of shape (V,) gives a float; (n_draws, V) gives an array (n_draws,)."""
    p, correct = _read_case(p, correct)
    dz = read_values(dz, "dz")
    if dz.shape[-1:] != p.shape or dz.ndim > 2:
        raise ValueError(f"dz has shape {dz.shape}, expected {p.shape} or (n_draws, {p.size})")
    change = np.where(correct, jvp(p, dz), 0.0).sum(axis=-1)
    return float(change) if dz.ndim == 1 else change


def exact_mass_change(p, correct, dz) -> float:
    """``Q_pos(softmax(log p + dz)) - Q_pos(p)``: the true change after the step (all orders)."""
    p, correct = _read_case(p, correct)
    dz = read_values(dz, "dz", shape=p.shape)
    with np.errstate(divide="ignore"):
        new = softmax(np.log(p) + dz)
    return float(new[correct].sum() - p[correct].sum())


def expected_count_mass_change(p, correct, R_c: float, R_w: float, eta: float) -> float:
    """``E[dQ_pos] = eta (R_c - R_w)(Q_neg^2 sum_C p^2 + Q_pos^2 sum_{not C} p^2)`` (count model).

    The expectation over ``N`` i.i.d. rollouts of the first-order change under
    :func:`count_update`; independent of ``N`` (``N`` only changes the variance).
    """
    p, correct = _read_case(p, correct)
    R_c, R_w = _read_rewards(R_c, R_w)
    eta = read_scalar(eta, "eta", low=0.0, low_open=True)
    Q_pos = p[correct].sum()
    Q_neg = 1.0 - Q_pos
    p2 = p * p
    return float(eta * (R_c - R_w) * (Q_neg ** 2 * p2[correct].sum() + Q_pos ** 2 * p2[~correct].sum()))


def sheet_bandit(V: int, n_correct: int, n_head: int, logit_scale: float, seed):
    """The spec sheet's bandit: logits ``logit_scale * N(0, 1)`` over ``V`` tokens and
    ``n_correct`` correct tokens, ``n_head`` of them above the median logit, the rest below.

    Parameters
    ----------
    V : int >= 2
    n_correct : int in [0, V]
    n_head : int in [0, n_correct], with ``n_head <= V // 2`` and ``n_correct - n_head <= V // 2``
    logit_scale : float >= 0
    seed : int, SeedSequence or Generator (draw order: logits, tail picks, head picks)

    Returns
    -------
    (p, correct) : float64 (V,) token probabilities and bool (V,) correct mask

    Source: spec sheet ``difficulty_filtering_and_brorl.md`` (V = 1000, scale 2, |C| = 50
    "mostly in the tail"), as used by the brorl figures.
    """
    from proofs_check.seeding import as_generator

    V = _read_int(V, "V", minimum=2)
    n_correct = _read_int(n_correct, "n_correct", minimum=0)
    n_head = _read_int(n_head, "n_head", minimum=0)
    half = V // 2
    if n_head > n_correct or n_head > half or n_correct - n_head > half:
        raise ValueError(f"n_head = {n_head} and n_correct - n_head = {n_correct - n_head} must "
                         f"lie in [0, V // 2 = {half}] with n_head <= n_correct = {n_correct}")
    logit_scale = read_scalar(logit_scale, "logit_scale", low=0.0)
    rng = as_generator(seed)
    z = logit_scale * rng.standard_normal(V)
    p = np.exp(z - z.max())
    p /= p.sum()
    order = np.argsort(z)
    tail, head = order[:half], order[half:]
    correct = np.zeros(V, dtype=bool)
    correct[rng.choice(tail, n_correct - n_head, replace=False)] = True
    correct[rng.choice(head, n_head, replace=False)] = True
    return p, correct
