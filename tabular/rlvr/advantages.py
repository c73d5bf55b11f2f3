"""Group advantages of RLVR policy-gradient methods: GRPO (Shao et al. 2024), Dr.GRPO (Liu et al. 2025), RLOO, the group-mean baseline and the PSR/NSR/W-REINFORCE weights (Zhu et al. 2025).

Sources: Shao et al. (2024), "DeepSeekMath", arXiv 2402.03300, sec. 4.1 (GRPO's outcome
advantage ``(r_i - mean r) / std r``); Liu et al. (2025), "Understanding R1-Zero-Like
Training", arXiv 2503.20783 (Dr.GRPO: no std division); Kool, van Hoof, Welling (2019),
"Buy 4 REINFORCE samples, get a baseline for free!" (RLOO); Zhu et al. (2025), arXiv
2506.01347, official code (PSR/NSR/W advantages). Spec sheets ``rlvr_misc.md`` (property 1)
and ``nsr_psr_negative_reinforcement.md``.

Closed forms (binary rewards, a group of G with ``c`` correct, ``p^ = c / G``; population
std, ``eps = 0``): ``A_correct = sqrt((1 - p^) / p^)``, ``A_wrong = -sqrt(p^ / (1 - p^))``,
``sum_i A_i = 0``, ``sum_i A_i^2 = G``; with the sample std (ddof 1) every advantage is
multiplied by ``sqrt((G - 1) / G)``. A group of equal rewards gets ``A = 0`` (no signal).
RLOO: ``A_i = r_i - mean_{j != i} r_j = G / (G - 1) (r_i - mean r)``.

Sign convention: advantages are ascent weights (a positive advantage raises the sample's
probability); the losses of :mod:`tabular.rlvr.losses` are their negatives.
"""
from __future__ import annotations

import numpy as np

from tabular.mdp import _read_int
from tabular.rlvr._checks import read_probability, read_scalar, read_values
from tabular.rlvr.psr_nsr import sample_weights

__all__ = ["KINDS", "STDS", "binary_grpo_advantages", "group_advantages"]

KINDS = ("reward", "mean", "rloo", "grpo", "drgrpo", "psr", "nsr", "w", "rlvr")
STDS = ("population", "sample")
EQUAL_RTOL = 1e-12
"""A group counts as equal (GRPO advantage 0) when ``max r - min r <= EQUAL_RTOL max |r|``."""


def _read_rewards(rewards) -> np.ndarray:
    r = read_values(rewards, "rewards")
    if r.ndim == 0 or r.shape[-1] == 0:
        raise ValueError(f"rewards must have a non-empty group axis (last), got shape {r.shape}")
    return r


def group_advantages(rewards, kind: str = "grpo", *, std: str = "population", eps: float = 0.0,
                     lam: float = 0.1) -> np.ndarray:
    """Advantages ``A_i`` of the samples of each group (the last axis).

    ``"reward"``: ``A = r`` (REINFORCE, no baseline). ``"mean"``: ``r - mean r`` (group-mean
    baseline; also Dr.GRPO). ``"drgrpo"``: the same as ``"mean"`` (Liu et al. 2025).
    ``"rloo"``: ``r_i - mean_{j != i} r_j`` (needs ``G >= 2``). ``"grpo"``: ``(r - mean r) /
    (std r + eps)`` with the population (ddof 0) or sample (ddof 1) std; a group of equal
    rewards gives 0 (also when ``eps = 0``), equal meaning a spread ``max r - min r`` of at
    most :data:`EQUAL_RTOL` ``max |r|`` (rounding noise is not signal). ``"psr"``: ``1[r > 0]``; ``"nsr"``:
    ``-1[r <= 0]``; ``"w"``: ``lam`` for ``r > 0``, ``-1`` otherwise; ``"rlvr"``: ``+-1``.
    For the last four, ``r > 0`` marks a correct sample (0/1 or +-1 rewards both work); they
    equal the code's advantages with 0/1 scores ``s``: ``s``, ``s - 1``, ``lam s`` or ``-1``.

    Parameters
    ----------
    rewards : array_like of float, shape (..., G)
        Rewards of each group, finite.
    kind : one of :data:`KINDS`
    std : {"population", "sample"}
        Only for ``"grpo"``.
    eps : float >= 0
        Added to the std (``"grpo"`` only).
    lam : float >= 0
        W-REINFORCE's weight on correct samples (``"w"`` only; 0.1 in the paper).

    Returns
    -------
    numpy.ndarray, float64, shape of ``rewards``

    Raises
    ------
    ValueError
        Unknown ``kind`` or ``std``, non-finite rewards, ``eps < 0``, ``"rloo"`` or a sample
        std with groups of one, an empty group axis.
    """
    r = _read_rewards(rewards)
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if std not in STDS:
        raise ValueError(f"std must be one of {STDS}, got {std!r}")
    eps = read_scalar(eps, "eps", low=0.0)
    G = r.shape[-1]
    if kind == "reward":
        return r.copy()
    if kind in ("psr", "nsr", "w", "rlvr"):
        return -sample_weights(r > 0, kind, lam)  # loss weights, negated
    centred = r - r.mean(axis=-1, keepdims=True)
    if kind in ("mean", "drgrpo"):
        return centred
    if kind == "rloo":
        if G < 2:
            raise ValueError("rloo needs groups of at least 2 samples")
        return centred * (G / (G - 1))
    ddof = 0 if std == "population" else 1
    if ddof and G < 2:
        raise ValueError("the sample std needs groups of at least 2 samples")
    scale = r.std(axis=-1, ddof=ddof, keepdims=True) + eps
    # equal up to rounding: a spread of a few ulps would be blown up to O(1) advantages
    spread = r.max(axis=-1, keepdims=True) - r.min(axis=-1, keepdims=True)
    equal = spread <= EQUAL_RTOL * np.abs(r).max(axis=-1, keepdims=True)
    return np.where(equal, 0.0, centred / np.where(equal, 1.0, scale))


def binary_grpo_advantages(p_hat, G: int, *, std: str = "population"):
    """Closed-form GRPO advantages of a binary group with a share ``p_hat`` of correct samples.

    ``A_correct = sqrt((1 - p) / p)``, ``A_wrong = -sqrt(p / (1 - p))`` (population std,
    ``eps = 0``); times ``sqrt((G - 1) / G)`` with the sample std. Both are 0 when
    ``p_hat`` is 0 or 1 (equal rewards).

    Parameters
    ----------
    p_hat : float or array_like in [0, 1]
        ``c / G``.
    G : int >= 2
    std : {"population", "sample"}

    Returns
    -------
    (A_correct, A_wrong) : numpy.ndarray float64, shape of ``p_hat``

    Source: rlvr_misc.md property 1 (derived from Shao et al. 2024's definition).
    """
    p = read_probability(p_hat, "p_hat")
    G = _read_int(G, "G", minimum=2)
    if std not in STDS:
        raise ValueError(f"std must be one of {STDS}, got {std!r}")
    factor = 1.0 if std == "population" else np.sqrt((G - 1) / G)
    inside = (p > 0) & (p < 1)
    q = np.where(inside, p, 0.5)
    a_c = np.where(inside, factor * np.sqrt((1 - q) / q), 0.0)
    a_w = np.where(inside, -factor * np.sqrt(q / (1 - q)), 0.0)
    return a_c, a_w
