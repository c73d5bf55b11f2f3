"""Noisy verifiers in RLVR (Cai et al. 2025): the class-conditional channel, backward and forward corrections, and the GRPO z-scoring trap.

Source: Cai, Wang, Liu, Liu, Niu, Sugiyama (2025), "Reinforcement Learning with Verifiable
yet Noisy Rewards under Imperfect Verifiers", arXiv 2510.00915 (channel, backward surrogate
and forward weights verified from the abstract and a summary). The expectation identities
are our derivations (spec sheet ``noisy_verifier_corrections.md`` with its audit).

Channel: clean reward ``R in {0, 1}``; the verifier reports ``R~ = 1`` with probability
``rho0`` when ``R = 0`` (false positive) and ``R~ = 0`` with probability ``rho1`` when
``R = 1`` (false negative), independently at every call; ``rho0 + rho1 < 1``. Hence
``E[R~ | y] = rho0 + (1 - rho0 - rho1) R(y)``.

Audit result, stated and tested: the forward weight is ``w = R~ - (1 - rho1)``, the observed
reward minus a constant, so its expected score-function gradient EQUALS the uncorrected one,
``E[g_F] = E[g_N]``, whatever value is plugged in for ``rho1`` (global or per prompt), with
global or per-prompt channel rates; the forward correction changes only the variance (an
implicit baseline). With global rates both also equal ``(1 - rho0 - rho1) grad J``; with
per-prompt rates they equal ``grad sum_x w_x (1 - rho0_x - rho1_x) J_x`` instead, which is
not parallel to ``grad J`` in general. The backward surrogate is unbiased in both cases:
``E[g_B] = grad J``.
"""
from __future__ import annotations

import numpy as np

from proofs_check.seeding import as_generator
from tabular.rlvr._checks import (
    read_distribution,
    read_mask,
    read_probability,
    read_prompt_weights,
    read_rates,
    read_values,
)
from tabular.rlvr._softmax import jvp
from tabular.rlvr.advantages import group_advantages as _group_advantages

__all__ = [
    "METHODS", "positive_rate", "sample_verifier", "backward_correction", "forward_weights",
    "expected_weight", "expected_answer_gradient", "tree_expected_gradient", "sampled_answer_gradient",
    "group_advantages", "appeal_fn_rate",
]

METHODS = ("clean", "none", "backward", "forward")


def _read_clean(R) -> np.ndarray:
    R = np.asarray(R)
    if R.dtype == bool:
        return R.astype(np.float64)
    R = read_values(R, "R")
    if np.any((R != 0) & (R != 1)):
        raise ValueError("the noisy-verifier channel needs binary clean rewards R in {0, 1}, "
                         f"got a value {float(R[(R != 0) & (R != 1)].flat[0])!r}")
    return R


def positive_rate(R, rho0, rho1) -> np.ndarray:
    """``P(R~ = 1 | R) = rho0 + (1 - rho0 - rho1) R``, elementwise.

    Parameters
    ----------
    R : array_like of {0, 1} (or bool), shape (...)
        Clean rewards.
    rho0, rho1 : float or array_like, broadcast against ``R``
        False-positive and false-negative rates, ``rho0 + rho1 < 1``.

    Raises
    ------
    ValueError
        If a rate is outside [0, 1], ``rho0 + rho1 >= 1`` somewhere, or ``R`` is not binary.
    """
    R = _read_clean(R)
    rho0, rho1 = read_rates(rho0, rho1)
    return rho0 + (1.0 - rho0 - rho1) * R


def sample_verifier(R, rho0, rho1, *, seed=None) -> np.ndarray:
    """One verifier call per entry of ``R``: ``R~`` in {0., 1.}, drawn fresh at every call.

    Redrawing per call is what the class-conditional derivations need: a corrupted label
    fixed per leaf would be instance-dependent noise.

    Parameters
    ----------
    R : array_like of {0, 1}, shape (...)
    rho0, rho1 : float or array_like, broadcast against ``R``
    seed : int, SeedSequence or Generator

    Returns
    -------
    numpy.ndarray of float64, shape of ``R``
    """
    p = positive_rate(R, rho0, rho1)
    rng = as_generator(seed)
    return (rng.random(p.shape) < p).astype(np.float64)


def backward_correction(R_tilde, rho0, rho1) -> np.ndarray:
    """The unbiased surrogate ``R^ = (R~ - rho0) / (1 - rho0 - rho1)``: ``E[R^ | R] = R``.

    Values ``(1 - rho0)/(1 - rho0 - rho1)`` at ``R~ = 1`` and ``-rho0/(1 - rho0 - rho1)`` at
    ``R~ = 0``; the variance grows like ``(1 - rho0 - rho1)^-2``.

    Source: Cai et al. (2025), arXiv 2510.00915, backward correction (verified).
    """
    R_tilde = _read_clean(R_tilde)
    rho0, rho1 = read_rates(rho0, rho1)
    return (R_tilde - rho0) / (1.0 - rho0 - rho1)


def forward_weights(R_tilde, rho1) -> np.ndarray:
    """Forward-correction weights ``w = rho1`` at ``R~ = 1`` and ``rho1 - 1`` at ``R~ = 0``.

    That is ``w = R~ - (1 - rho1)``: ``E[w | R = 1] = 0``, ``E[w | R = 0] = -(1 - rho0 - rho1)``.
    Being ``R~`` minus a constant, its expected score-function gradient equals that of the
    uncorrected reward (module docstring).

    Source: Cai et al. (2025), arXiv 2510.00915, forward correction (weights verified).
    """
    R_tilde = _read_clean(R_tilde)
    rho1 = read_probability(rho1, "rho1")
    return R_tilde - (1.0 - rho1)


def expected_weight(R, rho0, rho1, method: str, *, rho1_used=None) -> np.ndarray:
    """``m(y) = E[weight | R(y)]`` over the channel, per answer, for each estimator.

    ``"clean"``: ``R``; ``"none"`` (observed reward): ``rho0 + (1 - rho0 - rho1) R``;
    ``"backward"``: ``R``; ``"forward"``: ``rho0 + (1 - rho0 - rho1) R - (1 - rho1_used)``,
    which is ``-(1 - rho0 - rho1)(1 - R)`` when ``rho1_used = rho1``. The expected
    score-function gradient of an estimator is the gradient of ``sum_y pi(y) m(y)``.

    Parameters
    ----------
    R : array_like of {0, 1}, shape (...)
    rho0, rho1 : float or array_like, broadcast against ``R`` (true channel rates)
    method : {"clean", "none", "backward", "forward"}
    rho1_used : float or array_like, optional
        The false-negative rate plugged into the forward weights (default: the true ``rho1``).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    R = _read_clean(R)
    rho0, rho1 = read_rates(rho0, rho1)
    observed = rho0 + (1.0 - rho0 - rho1) * R
    if method in ("clean", "backward"):
        return np.broadcast_to(R, observed.shape).copy()
    if method == "none":
        return observed
    used = rho1 if rho1_used is None else read_probability(rho1_used, "rho1_used")
    return observed - (1.0 - used)


def expected_answer_gradient(pi, m) -> np.ndarray:
    """``E[g] = sum_y pi(y) m(y) grad_z log pi(y) = J m``: the exact expected gradient, on the
    logits ``z`` of a softmax over answers, of an estimator with mean weight ``m``.

    Parameters
    ----------
    pi : array_like, shape (..., n)
        Answer distributions (rows sum to 1, atol 1e-9).
    m : array_like, broadcast to ``pi.shape``
        Mean weights, e.g. from :func:`expected_weight`.

    Returns
    -------
    numpy.ndarray of float64, shape ``pi.shape``

    For trees, pass ``m`` as ``dF_dpi`` to ``tabular.tree.logit_gradient``.
    """
    pi = read_distribution(pi, "pi")
    m = np.broadcast_to(read_values(m, "m"), pi.shape)
    return jvp(pi, m)


def tree_expected_gradient(tree, policy, rho0, rho1, method: str, *, rho1_used=None,
                           weights=None):
    """Exact expected gradient, for a tree policy, of the score-function estimator ``method``.

    ``E[g] = grad_theta sum_x w_x sum_y pi(y|x) m(x, y)`` with ``m`` from
    :func:`expected_weight` (the channel averaged out exactly), chained through the softmax
    tree by ``tabular.tree.objective_gradient``.

    Parameters
    ----------
    tree : tabular.tree.TreeMDP
        Binary rewards (the clean reward ``R``).
    policy : tabular.tree.TreePolicy
    rho0, rho1 : float or array_like of shape (n_prompts,)
        Global or per-prompt channel rates.
    method : {"clean", "none", "backward", "forward"}
    rho1_used : float or array_like of shape (n_prompts,), optional
        The rate plugged into the forward weights (default: the true one).
    weights : array_like, shape (n_prompts,), optional
        Prompt weights (default ``1/n_prompts``).

    Returns
    -------
    tabular.tree.PolicyGradient
    """
    from tabular.tree import objective_gradient

    if not tree.binary:
        raise ValueError("the noisy-verifier channel needs a tree with binary rewards")
    per_prompt = [np.asarray(v, dtype=np.float64) for v in (rho0, rho1)]
    if rho1_used is not None:
        per_prompt.append(np.asarray(rho1_used, dtype=np.float64))
    for v in per_prompt:
        if v.ndim > 1 or (v.ndim == 1 and v.shape != (tree.n_prompts,)):
            raise ValueError(f"rates must be scalars or of shape (n_prompts,) = ({tree.n_prompts},), "
                             f"got shape {v.shape}")
    col = [v[:, None] if v.ndim == 1 else v for v in per_prompt]
    used = col[2] if rho1_used is not None else None
    m = expected_weight(tree.R, col[0], col[1], method, rho1_used=used)
    w = read_prompt_weights(weights, tree.n_prompts)
    return objective_gradient(tree, policy, w[:, None] * m)


def sampled_answer_gradient(pi, answers, weights) -> np.ndarray:
    """``g = (1/n) sum_i w_i grad_z log pi(y_i) = (1/n) sum_i w_i (e_{y_i} - pi)``.

    Parameters
    ----------
    pi : array_like, shape (n_answers,)
    answers : array_like of int, shape (n,)
        Sampled answers.
    weights : array_like of float, shape (n,)
        Their weights (observed, corrected or forward).

    Returns
    -------
    numpy.ndarray of float64, shape (n_answers,)

    Raises
    ------
    ValueError
        If ``answers`` is empty or out of range, or ``weights`` has the wrong shape or is
        not finite.
    TypeError
        If ``answers`` is not a 1-d integer array.
    """
    pi = read_distribution(pi, "pi")
    if pi.ndim != 1:
        raise ValueError(f"pi must be 1-d, got shape {pi.shape}")
    answers = np.asarray(answers)
    if answers.dtype.kind not in "iu" or answers.ndim != 1:
        raise TypeError("answers must be a 1-d array of integer answer indices")
    if np.any((answers < 0) | (answers >= pi.size)):
        raise ValueError(f"answers must lie in [0, {pi.size})")
    if answers.size == 0:
        raise ValueError("answers is empty: the sampled gradient needs at least one answer")
    weights = read_values(weights, "weights", shape=answers.shape)
    n = answers.size
    g = np.bincount(answers, weights=weights, minlength=pi.size) / n
    return g - weights.mean() * pi


def group_advantages(rewards, *, normalize: str = "zscore", eps: float = 0.0) -> np.ndarray:
    """GRPO advantages within each group (last axis): ``r - mean`` or ``(r - mean)/(std + eps)``.

    The trap (spec sheet tests 5-6): any affine map of the rewards with positive slope, in
    particular the backward correction with global rates, leaves z-scored advantages
    unchanged (``eps = 0``), and mean-centring reduces it to a rescaling by
    ``1/(1 - rho0 - rho1)``; the forward weights minus their group mean equal ``R~`` minus
    its group mean. Where a correction hook sits relative to normalisation decides whether
    it does anything. A group with zero spread gets advantage 0 under z-scoring.

    Parameters
    ----------
    rewards : array_like, shape (..., n)
    normalize : {"zscore", "mean"}
    eps : float >= 0
        Added to the population standard deviation.

    Returns
    -------
    numpy.ndarray of float64, shape of ``rewards``

    Raises
    ------
    ValueError
        If ``rewards`` is 0-d, has an empty group axis or is not finite, ``normalize`` is
        unknown, or ``eps`` is negative or not finite.
    TypeError
        If ``eps`` is not a real number.

    Source: Shao et al. (2024), "DeepSeekMath", arXiv 2402.03300, eq. for GRPO's advantage.
    Delegates to :func:`tabular.rlvr.advantages.group_advantages` (``"grpo"`` / ``"mean"``).
    """
    if normalize not in ("zscore", "mean"):
        raise ValueError(f"normalize must be 'zscore' or 'mean', got {normalize!r}")
    return _group_advantages(rewards, "grpo" if normalize == "zscore" else "mean", eps=eps)


def appeal_fn_rate(R_tilde, overturned) -> float:
    """``rho1^ = #overturned / (#observed positives + #overturned)`` from appeals.

    Every observed negative is re-checked by a second verifier; ``overturned`` marks those it
    finds correct. Consistent for ``rho1`` when ``rho0 = 0`` and the second verifier is
    perfect. Our concrete version of the paper's appeals (details not verified).

    Parameters
    ----------
    R_tilde : array_like of {0, 1}, shape (n,)
    overturned : array_like of bool, shape (n,); only entries with ``R~ = 0`` may be True.

    Returns
    -------
    float (NaN when nothing was observed positive or overturned)
    """
    R_tilde = _read_clean(R_tilde)
    overturned = read_mask(overturned, "overturned", R_tilde.shape)
    if np.any(overturned & (R_tilde == 1)):
        raise ValueError("overturned marks an observed positive: only negatives are appealed")
    n_over = overturned.sum()
    total = R_tilde.sum() + n_over
    return float(n_over / total) if total > 0 else float("nan")
