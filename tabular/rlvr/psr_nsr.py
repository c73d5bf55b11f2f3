"""Positive and negative sample reinforcement (Zhu et al. 2025): objectives, the exact identity grad L_NSR = grad L_PSR, and per-token first-order changes.

Source: Zhu, Xia, Wei, Chen, Chen, Meng (2025), "The Surprising Effectiveness of Negative
Reinforcement in LLM Reasoning", arXiv 2506.01347 (objective decomposition and W-REINFORCE's
advantages verified from the paper's code; the gradient formulas are derived by us for
tabular softmax, spec sheet ``nsr_psr_negative_reinforcement.md``).

Losses (minimised), per prompt: ``L_PSR = -sum_{y in C} pi(y)``,
``L_NSR = +sum_{y not in C} pi(y)``, ``L_RLVR = L_PSR + L_NSR = -E_pi[r]`` with ``r = +-1``,
``L_lam = lam L_PSR + L_NSR`` (W-REINFORCE, ``lam = 0.1``). Because ``sum_y pi(y) = 1``,
``L_NSR = L_PSR + 1``, so ``grad L_NSR = grad L_PSR`` exactly and ``grad L_lam = (1 + lam)
grad L_PSR``: in expectation the three differ only by a step size; their differences come
from sampling, clipping and off-policy steps.
"""
from __future__ import annotations

import numpy as np

from tabular.mdp import _read_int
from tabular.rlvr._checks import read_distribution, read_mask, read_prompt_weights, read_scalar
from tabular.rlvr._softmax import jvp

__all__ = [
    "OBJECTIVES", "loss", "loss_dpi", "answer_gradient", "tree_gradient", "sample_weights",
    "token_change",
]

OBJECTIVES = ("psr", "nsr", "rlvr", "w")


def _read_objective(objective: str) -> str:
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    return objective


def loss_dpi(correct, objective: str, lam: float = 0.1) -> np.ndarray:
    """``dL/dpi(y)`` of a loss linear in the answer probabilities, shape of ``correct``.

    ``"psr"``: ``-1[y in C]``; ``"nsr"``: ``1[y not in C]``; ``"rlvr"``: ``-r(y)`` with
    ``r = +-1``; ``"w"``: ``-lam 1[y in C] + 1[y not in C]``. Pass it as ``dF_dpi`` to
    ``tabular.tree.logit_gradient`` (a tree) or to :func:`answer_gradient` (one softmax).

    Parameters
    ----------
    correct : array_like of bool, shape (..., n)
    objective : {"psr", "nsr", "rlvr", "w"}
    lam : float >= 0
        W-REINFORCE's weight on the positive term (only for ``"w"``).
    """
    correct = np.asarray(correct)
    if correct.dtype != bool:
        raise TypeError(f"correct must be a bool mask, got dtype {correct.dtype}")
    objective = _read_objective(objective)
    lam = read_scalar(lam, "lam", low=0.0)
    pos = {"psr": 1.0, "nsr": 0.0, "rlvr": 1.0, "w": lam}[objective]
    neg = {"psr": 0.0, "nsr": 1.0, "rlvr": 1.0, "w": 1.0}[objective]
    return np.where(correct, -pos, neg)


def loss(pi, correct, objective: str, lam: float = 0.1) -> np.ndarray:
    """The loss ``sum_y pi(y) dL/dpi(y)`` per row (losses are linear in ``pi``).

    Parameters
    ----------
    pi : array_like, shape (..., n)
        Answer or leaf distributions (rows sum to 1, atol 1e-9).
    correct : array_like of bool, shape (..., n)

    Returns
    -------
    numpy.ndarray of float64, shape ``pi.shape[:-1]``
    """
    pi = read_distribution(pi, "pi")
    correct = read_mask(correct, "correct", pi.shape)
    return (pi * loss_dpi(correct, objective, lam)).sum(axis=-1)


def answer_gradient(pi, correct, objective: str, lam: float = 0.1) -> np.ndarray:
    """Exact ``grad_z L`` for a softmax over answers with logits ``z``: ``J dL/dpi``.

    Returns
    -------
    numpy.ndarray of float64, shape ``pi.shape``

    Source: derived (spec sheet, property test 2): ``psr`` and ``nsr`` give the same array.
    """
    pi = read_distribution(pi, "pi")
    correct = read_mask(correct, "correct", pi.shape)
    return jvp(pi, loss_dpi(correct, objective, lam))


def tree_gradient(tree, policy, objective: str, lam: float = 0.1, weights=None):
    """Exact gradient of the mean-over-prompts loss ``sum_x w_x L(x)`` for a tree policy.

    The leaf-level ``dL/dpi`` of :func:`loss_dpi` (correct leaves ``tree.correct``) chained
    through the softmax tree by ``tabular.tree.objective_gradient``.

    Parameters
    ----------
    tree : tabular.tree.TreeMDP
        Binary rewards; ``tree.correct`` is ``C(x)``.
    policy : tabular.tree.TreePolicy
    objective : {"psr", "nsr", "rlvr", "w"}
    lam : float
    weights : array_like, shape (n_prompts,), optional
        Prompt weights (default ``1/n_prompts``).

    Returns
    -------
    tabular.tree.PolicyGradient
        Loss gradients (descend them) for ``z_shared`` and ``z_prompt``.
    """
    from tabular.tree import objective_gradient

    if not tree.binary:
        raise ValueError("PSR/NSR need binary rewards (C(x) = leaves with reward 1)")
    w = read_prompt_weights(weights, tree.n_prompts)
    return objective_gradient(tree, policy, w[:, None] * loss_dpi(tree.correct, objective, lam))


def sample_weights(is_correct, objective: str, lam: float = 0.1) -> np.ndarray:
    """Per-sample weights ``w_i`` of the sampled loss gradient ``(1/n) sum_i w_i grad log pi(y_i)``.

    PSR: ``-1[y_i in C]``; NSR: ``+1[y_i not in C]``; RLVR: ``-r_i``; W: ``-lam`` (correct) or
    ``+1`` (wrong). An all-correct group gives exactly 0 for NSR, an all-wrong group exactly 0
    for PSR. (The paper's advantages are the negatives: these are loss-gradient weights.)

    ``is_correct`` is a bool mask (or 0/1 integers); other integers raise
    ``ValueError``, other dtypes ``TypeError``.

    Source: Zhu et al. (2025), arXiv 2506.01347, official code (advantage assignment).
    """
    return loss_dpi(read_mask(is_correct, "is_correct", np.shape(is_correct)), objective, lam)


def token_change(p, k: int, c: float, objective: str) -> np.ndarray:
    """First-order ``dp`` at one softmax after a PSR or NSR step on sampled token ``k``.

    PSR (a correct sample): ``dz = +c (e_k - p)``; NSR (a wrong sample): ``dz = -c (e_k - p)``.
    Then ``dp_k = +-c p_k (1 - 2 p_k + |p|^2)`` and, for ``v != k``,
    ``dp_v = -+c p_v (p_v + p_k - |p|^2)`` (upper sign PSR): NSR hands the removed mass to the
    other tokens in proportion to ``p_v (p_v + p_k - |p|^2)``, which can be negative for a tiny
    ``p_v`` when another token dominates.

    Parameters
    ----------
    p : array_like, shape (V,)
    k : int in [0, V)
    c : float >= 0
        Step size.
    objective : {"psr", "nsr"}

    Returns
    -------
    numpy.ndarray of float64, shape (V,)

    Source: derived (spec sheet, per-token formulas).
    """
    p = read_distribution(p, "p")
    if p.ndim != 1:
        raise ValueError(f"p must be 1-d, got shape {p.shape}")
    k = _read_int(k, "k", minimum=0)
    if k >= p.size:
        raise ValueError(f"k = {k} is outside [0, {p.size})")
    c = read_scalar(c, "c", low=0.0)
    if objective not in ("psr", "nsr"):
        raise ValueError(f"objective must be 'psr' or 'nsr', got {objective!r}")
    sign = 1.0 if objective == "psr" else -1.0
    norm2 = float(p @ p)
    dp = -sign * c * p * (p + p[k] - norm2)
    dp[k] = sign * c * p[k] * (1.0 - 2.0 * p[k] + norm2)
    return dp
