"""The checkable identities of the RLVR miscellany (RLCR, PACS, Posterior-GRPO, FAPO, Lp-Reg, SIREN, ProRL, CURE, Echo Chamber, 1-shot RLVR) on tree MDPs.

Spec sheet ``rlvr_misc.md`` (with its audit notes); its numbered "property tests" are cited
as [P1]..[P12]. Every formula marked (nv) there is a standard formulation not verified from
the paper and is kept configurable here.

Implemented (one section each below):

- RLCR (Damani et al. 2025, arXiv 2507.16806) [P7]: Brier-calibrated reward, its expectation
  ``c - (q - c)^2 - c(1 - c)``, optimum ``q = c`` with value ``c^2``; the log-score variant
  whose optimum ``c - H(c)`` is not monotone in ``c`` (a surely-wrong answer can win).
- PACS (Li et al. 2025, arXiv 2509.02522) [P8]: score ``beta * sum_t log rho``, leave-one-out
  ``psi``, the BCE loss (mean over the group, the code's default; ``reduction="sum"`` is G times
  larger), its exact logit gradient, and the first-step RLOO identity.
- Posterior-GRPO (Fan et al. 2025, arXiv 2508.05170) [P9]: process reward gated on success
  (``alpha`` nv) and the additive control, with the condition under which a hack wins.
- FAPO (Ding et al. 2025, arXiv 2510.22543) [P10]: flawed-positive rewards (``lambda`` nv), the
  group-mean advantage and its sign condition.
- Lp-Reg (Huang et al. 2025, arXiv 2510.03222) [P3]: the thresholded proxy, its KL
  ``-log Z`` and logit gradient (threshold rule and position selection nv: absolute ``tau``,
  positions chosen by the caller).
- SIREN (arXiv 2509.25133) [P11]: top-p nucleus entropy, its gradient (zero outside the
  nucleus with the mask fixed), the top-quantile position mask.
- ProRL (Liu et al. 2025, arXiv 2505.24864) [P5]: reference resets; after ``m`` converged
  phases (``m - 1`` resets) the policy is the KL posterior with effective ``beta / m``.
- CURE (Li et al. 2025, arXiv 2508.11016) [P12]: branching from the highest-entropy prefix
  (critical-position rule nv), exact continuation sampling, and the exact leaf reweighting of
  the combined batch (none when the critical position is decided from the prefix alone).
- Echo Chamber (Zhao et al. 2025, arXiv 2504.07912) [P6]: the exact gradient on first-token
  ("format") logits in replicator form ``w_f (s_f - sum_g w_g s_g)``.
- 1-shot RLVR (Wang et al. 2025, arXiv 2504.20571) [P4]: exact gradient steps, or sampled
  training with ``tabular.rlvr.training.train``, on one prompt; with per-prompt tables every
  other prompt's policy is bit-identical afterwards (transfer needs shared logits).

Left out, with the reason:

- GRPO, Dr.GRPO, DAPO and PPO-clip advantages and losses, k3 KL [P1, P2]: the general training
  code (``tabular.rlvr.advantages``, ``losses``, ``training``); FAPO's group-mean baseline is
  ``tabular.rlvr.advantages.group_advantages(r, "mean")``.
- SIREN's self-anchored form (anchor form nv in the sheet) and CURE's stage 2 (plain DAPO):
  nothing exact to check beyond the pieces above.
- RLCR's ECE curves, Lp-Reg "sparks", ProRL pass@k, Echo Chamber's format collapse, 1-shot
  post-saturation generalisation, PACS/SIREN/CURE entropy curves: empirical training toys
  (figures), not identities.
"""
from __future__ import annotations

import numpy as np
from scipy.special import entr

from proofs_check.seeding import as_generator
from tabular.mdp import _read_int
from tabular.rlvr._checks import (
    read_distribution,
    read_mask,
    read_probability,
    read_scalar,
    read_values,
)
from tabular.rlvr.passk import entropy
from tabular.tree import (
    PolicyGradient,
    TreeMDP,
    TreePolicy,
    _require_policy,
    _require_tree,
    evaluate,
    expected_reward_gradient,
    leaf_probs,
    path_nodes,
    reach_probs,
    sample_leaves,
    score_gradient,
    token_log_probs,
    validate_tree_policy,
)

__all__ = [
    # RLCR
    "rlcr_reward", "rlcr_expected_reward", "log_score_reward", "log_score_expected_reward",
    "calibrated_value", "best_answer", "confidence_rewards",
    # PACS
    "pacs_psi", "pacs_loss", "pacs_sample_weights", "pacs_log_ratios", "pacs_tree_gradient",
    "pacs_first_step_weights",
    # Posterior-GRPO, FAPO
    "posterior_grpo_reward", "process_rewarded_tree", "hack_wins",
    "fapo_rewards", "flawed_advantage", "flawed_advantage_positive",
    # Lp-Reg, SIREN
    "lp_proxy", "lp_kl", "lp_kl_logit_gradient",
    "nucleus_mask", "nucleus_entropy", "nucleus_entropy_logit_gradient",
    "top_quantile_mask",
    # ProRL, CURE, Echo Chamber, 1-shot
    "reset_reference", "prorl_phases", "effective_beta",
    "critical_depths", "continuation_policy", "continuation_probs", "sample_continuations",
    "cure_reweighting", "cure_batch", "node_visits",
    "format_success", "replicator_gradient",
    "one_shot_gradient", "one_shot_train", "one_shot_train_sampled", "untouched_prompts",
]


# --- RLCR: calibration rewards [P7] ---------------------------------------------------------


def _read_correct(correct) -> np.ndarray:
    correct = np.asarray(correct)
    if correct.dtype != bool:
        raise TypeError(f"correct must be a bool array, got dtype {correct.dtype}")
    return correct


def rlcr_reward(correct, q) -> np.ndarray:
    """RLCR's reward ``R = 1[correct] - (q - 1[correct])^2`` (correctness plus Brier score).

    Parameters
    ----------
    correct : array_like of bool
    q : array_like of float in [0, 1]
        The stated confidence; broadcast with ``correct``.

    Returns
    -------
    numpy.ndarray, float64, the broadcast shape.

    Source: Damani et al. 2025 (RLCR), arXiv 2507.16806 (correctness plus Brier reward).
    """
    y = _read_correct(correct).astype(np.float64)
    q = read_probability(q, "q")
    return y - (q - y) ** 2


def rlcr_expected_reward(c, q) -> np.ndarray:
    """``E[R] = c - (q - c)^2 - c (1 - c)`` for success probability ``c`` and confidence ``q``
    ([P7]: ``E[(q - Y)^2] = (q - c)^2 + Var Y``). Maximised at ``q = c``, value ``c^2``."""
    c = read_probability(c, "c")
    q = read_probability(q, "q")
    return c - (q - c) ** 2 - c * (1 - c)


def log_score_reward(correct, q) -> np.ndarray:
    """Log-score variant ``R = 1[correct] + log q`` if correct, ``log(1 - q)`` if wrong
    (``-inf`` at a confident mistake)."""
    y = _read_correct(correct)
    q = read_probability(q, "q")
    with np.errstate(divide="ignore"):
        return np.where(y, 1.0 + np.log(q), np.log1p(-q))


def log_score_expected_reward(c, q) -> np.ndarray:
    """``E[R] = c + c log q + (1 - c) log(1 - q)`` (``0 log 0 = 0``; ``-inf`` where a
    positive-probability outcome gets confidence 0)."""
    c = read_probability(c, "c")
    q = read_probability(q, "q")
    c, q = np.broadcast_arrays(c, q)
    with np.errstate(divide="ignore", invalid="ignore"):
        right = np.where(c > 0, c * np.log(q), 0.0)
        wrong = np.where(c < 1, (1 - c) * np.log1p(-q), 0.0)
    return c + right + wrong


def calibrated_value(c, score: str = "brier") -> np.ndarray:
    """Expected reward at the optimal confidence ``q = c`` ([P7]).

    ``"brier"``: ``c^2`` (increasing in c: the best answer is the most-likely-correct one).
    ``"log"``: ``c - H(c)``, ``H`` the binary entropy in nats, not monotone: ``c = 0`` gives 0
    while ``c = 0.2`` gives about -0.30, so a surely-wrong answer can be preferred.
    """
    c = read_probability(c, "c")
    if score == "brier":
        return c**2
    if score == "log":
        return c - entr(c) - entr(1 - c)
    raise ValueError(f"score must be 'brier' or 'log', got {score!r}")


def best_answer(c, score: str = "brier") -> np.ndarray:
    """Index of the answer a calibrated policy prefers: argmax over the last axis of
    :func:`calibrated_value` (first on ties). ``c``: success probabilities (..., n_answers)."""
    return np.argmax(calibrated_value(c, score), axis=-1)


def confidence_rewards(c, q_grid, score: str = "brier") -> np.ndarray:
    """Expected reward of every (answer, confidence) pair, (n_answers, n_q): the leaf rewards of
    the sheet's toy where an answer is followed by a confidence token from ``q_grid``.

    Parameters
    ----------
    c : array_like (n_answers,), success probabilities in [0, 1]
    q_grid : array_like (n_q,), confidences in [0, 1] (e.g. 0, 0.1, ..., 1)
    score : {"brier", "log"}
    """
    c = read_probability(c, "c")[:, None]
    q = read_probability(q_grid, "q_grid")[None, :]
    if score == "brier":
        return rlcr_expected_reward(c, q)
    if score == "log":
        return log_score_expected_reward(c, q)
    raise ValueError(f"score must be 'brier' or 'log', got {score!r}")


# --- PACS: supervised learning of the reward [P8] -------------------------------------------


def _read_group(x, name: str) -> np.ndarray:
    x = read_values(x, name)
    if x.ndim == 0 or x.shape[-1] < 2:
        raise ValueError(f"{name} must have a group axis (last) of size >= 2, got shape {x.shape}")
    return x


def pacs_psi(log_ratio, beta: float) -> np.ndarray:
    """``psi_i = r_i - mean_{j != i} r_j`` with the score ``r_i = beta * log_ratio_i``.

    Parameters
    ----------
    log_ratio : array_like, (..., G), G >= 2
        ``sum_t log rho_{i,t} = log pi_theta(y_i) - log pi_old(y_i)`` per rollout.
    beta : float > 0

    Source: Li et al. 2025 (PACS), arXiv 2509.02522, and its code (leave-one-out baseline).
    """
    log_ratio = _read_group(log_ratio, "log_ratio")
    beta = read_scalar(beta, "beta", low=0.0, low_open=True)
    r_hat = beta * log_ratio
    G = r_hat.shape[-1]
    return r_hat - (r_hat.sum(axis=-1, keepdims=True) - r_hat) / (G - 1)


def _reduce(reduction: str, G: int) -> float:
    if reduction == "mean":
        return 1.0 / G
    if reduction == "sum":
        return 1.0
    raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")


def _read_pacs(log_ratio, r, weights):
    log_ratio = _read_group(log_ratio, "log_ratio")
    r = read_probability(r, "r")
    if r.shape != log_ratio.shape:
        raise ValueError(f"r has shape {r.shape}, log_ratio has shape {log_ratio.shape}")
    w = np.ones_like(r) if weights is None else read_values(weights, "weights", r.shape)
    return log_ratio, r, w


def pacs_loss(log_ratio, r, beta: float, *, weights=None, reduction: str = "mean") -> np.ndarray:
    """PACS's loss ``sum_i w_i BCE(sigmoid(psi_i), r_i)`` over a group, times 1/G for "mean".

    ``BCE(sigmoid(psi), r) = log(1 + e^psi) - r psi`` (computed stably).

    Parameters
    ----------
    log_ratio : array_like, (..., G)
    r : array_like in [0, 1], (..., G)
        The verifier's rewards (targets).
    beta : float > 0
    weights : array_like (..., G), optional
        Per-sample weights (e.g. a class balance per prompt, nv); default 1.
    reduction : {"mean", "sum"}
        "mean" over the group is the code's default (the sheet's audit note).

    Returns
    -------
    numpy.ndarray, float64, ``log_ratio.shape[:-1]``
    """
    log_ratio, r, w = _read_pacs(log_ratio, r, weights)
    psi = pacs_psi(log_ratio, beta)
    bce = np.logaddexp(0.0, psi) - r * psi
    return _reduce(reduction, psi.shape[-1]) * (w * bce).sum(axis=-1)


def pacs_sample_weights(log_ratio, r, beta: float, *, weights=None,
                        reduction: str = "mean") -> np.ndarray:
    """``dL/dlog pi(y_k)`` of :func:`pacs_loss`, (..., G): the loss gradient is
    ``sum_k c_k grad log pi(y_k)``.

    With ``u_i = w_i (sigmoid(psi_i) - r_i)`` and ``S = sum_i u_i``:
    ``c_k = beta * scale * (u_k - (S - u_k) / (G - 1))``, scale 1/G ("mean") or 1 ("sum").
    Pass ``c`` as per-sample weights to :func:`tabular.tree.score_gradient`.
    """
    log_ratio, r, w = _read_pacs(log_ratio, r, weights)
    beta = read_scalar(beta, "beta", low=0.0, low_open=True)
    psi = pacs_psi(log_ratio, beta)
    G = psi.shape[-1]
    u = w * (0.5 * (1.0 + np.tanh(0.5 * psi)) - r)  # sigmoid without overflow
    S = u.sum(axis=-1, keepdims=True)
    return beta * _reduce(reduction, G) * (u - (S - u) / (G - 1))


def pacs_log_ratios(tree: TreeMDP, pi, pi_old, leaves) -> np.ndarray:
    """``log pi(y_i|x) - log pi_old(y_i|x)`` of sampled answers, (n_prompts, G) (sum of the
    per-token log-ratios; ``pi_old`` must give every sampled token positive probability)."""
    lp = token_log_probs(tree, pi, leaves).sum(axis=-1)
    lp_old = token_log_probs(tree, pi_old, leaves).sum(axis=-1)
    if not np.all(np.isfinite(lp_old)):
        x, i = np.argwhere(~np.isfinite(lp_old))[0]
        raise ValueError(f"pi_old gives answer leaves[{x}, {i}] probability 0; it must be the "
                         "rollout policy")
    return lp - lp_old


def pacs_tree_gradient(tree: TreeMDP, pi, pi_old, leaves, r, beta: float, *, weights=None,
                       reduction: str = "mean") -> np.ndarray:
    """Exact gradient of ``sum_x pacs_loss(group of prompt x)`` w.r.t. the effective logits of
    ``pi``, (n_prompts, n_nodes, V) (map to parameters with :meth:`TreePolicy.gradient`).

    Parameters
    ----------
    tree : TreeMDP
    pi, pi_old : array_like, (n_prompts, n_nodes, V)
        Current and rollout (old) policies.
    leaves : array_like of int, (n_prompts, G)
        The group of each prompt (sampled from ``pi_old``).
    r : array_like in [0, 1], (n_prompts, G)
    beta : float > 0
    """
    pi = validate_tree_policy(tree, pi)
    log_ratio = pacs_log_ratios(tree, pi, pi_old, leaves)
    c = pacs_sample_weights(log_ratio, r, beta, weights=weights, reduction=reduction)
    return score_gradient(tree, pi, leaves, c)


def pacs_first_step_weights(r, beta: float) -> np.ndarray:
    """At ``theta = theta_old`` (``psi = 0``) the mean-reduced PACS loss has gradient
    ``-(beta / (G - 1)) sum_i (r_i - rbar) grad log pi(y_i)`` ([P8]): an RLOO direction.
    Returns these per-sample weights, (..., G)."""
    r = _read_group(read_probability(r, "r"), "r")
    beta = read_scalar(beta, "beta", low=0.0, low_open=True)
    G = r.shape[-1]
    return -(beta / (G - 1)) * (r - r.mean(axis=-1, keepdims=True))


# --- Posterior-GRPO [P9] and FAPO [P10] ------------------------------------------------------


def _read_binary(r_out, name: str = "r_out") -> np.ndarray:
    r = read_values(r_out, name)
    bad = (r != 0) & (r != 1)
    if bad.any():
        raise ValueError(f"{name} must be 0/1 outcome rewards; found {float(r[bad][0])!r}")
    return r


def posterior_grpo_reward(r_out, r_proc, alpha: float, *, gated: bool = True) -> np.ndarray:
    """``r = r_out + 1[r_out = 1] alpha r_proc`` (gated, Posterior-GRPO) or the additive control
    ``r_out + alpha r_proc``.

    Parameters
    ----------
    r_out : array_like of 0/1
        Outcome rewards.
    r_proc : array_like in [0, 1]
        Process (reasoning) scores, broadcast with ``r_out``.
    alpha : float >= 0
        Process weight (nv in the sheet).
    gated : bool

    Source: Fan et al. 2025, arXiv 2508.05170 (reward gated on success).
    """
    r_out = _read_binary(r_out)
    r_proc = read_probability(r_proc, "r_proc")
    alpha = read_scalar(alpha, "alpha", low=0.0)
    gate = (r_out == 1) if gated else True
    return r_out + np.where(gate, alpha * r_proc, 0.0)


def process_rewarded_tree(tree: TreeMDP, r_proc, alpha: float, *, gated: bool = True) -> TreeMDP:
    """``tree`` (binary rewards) with leaf rewards :func:`posterior_grpo_reward`
    (``r_proc``: (n_prompts, n_leaves) in [0, 1]; ignored on non-answer leaves)."""
    _require_tree(tree)
    if not tree.binary:
        raise ValueError("process_rewarded_tree needs a tree with 0/1 outcome rewards")
    r_proc = read_probability(r_proc, "r_proc")
    shape = (tree.n_prompts, tree.n_leaves)
    if r_proc.shape != shape:
        raise ValueError(f"r_proc has shape {r_proc.shape}, expected (n_prompts, n_leaves) = "
                         f"{shape}")
    R = posterior_grpo_reward(tree.R, np.where(tree.answer_mask, r_proc, 0.0), alpha, gated=gated)
    return tree.replace(R=R)


def hack_wins(alpha: float, r_proc_hack, r_proc_best_correct) -> np.ndarray:
    """Under the additive reward, a wrong "hack" answer beats every correct one iff
    ``alpha r_proc(hack) > 1 + alpha r_proc(best correct)`` ([P9]); under the gated reward never
    (a wrong answer's reward is 0 < 1)."""
    alpha = read_scalar(alpha, "alpha", low=0.0)
    h = read_probability(r_proc_hack, "r_proc_hack")
    b = read_probability(r_proc_best_correct, "r_proc_best_correct")
    return alpha * h > 1 + alpha * b


def fapo_rewards(correct, flawed, *, r_clean: float = 1.0, r_flawed: float = 0.0,
                 r_wrong: float = 0.0) -> np.ndarray:
    """Per-rollout rewards with flawed positives: ``r_clean`` for correct unflagged answers,
    ``r_flawed`` for correct answers the generative RM flags, ``r_wrong`` otherwise.

    The sheet's parametrisations: ``(1, 1 - lam, 0)``, or ``(1, 0, -1)`` (+-1 outcome reward,
    flawed positives 0). ``lam`` is nv (FAPO is described as parameter-free).

    Raises
    ------
    ValueError
        A flagged answer that is not correct (``flawed`` must imply ``correct``).

    Source: Ding et al. 2025 (FAPO), arXiv 2510.22543.
    """
    correct = _read_correct(correct)
    flawed = read_mask(flawed, "flawed", correct.shape)
    if (flawed & ~correct).any():
        idx = tuple(np.argwhere(flawed & ~correct)[0])
        raise ValueError(f"flawed{list(idx)} is set on a wrong answer; only positives are flagged")
    vals = [read_scalar(v, n) for v, n in ((r_clean, "r_clean"), (r_flawed, "r_flawed"),
                                           (r_wrong, "r_wrong"))]
    return np.where(flawed, vals[1], np.where(correct, vals[0], vals[2]))


def flawed_advantage(a, f, *, r_clean: float = 1.0, r_flawed: float = 0.0,
                     r_wrong: float = 0.0) -> np.ndarray:
    """Group-mean advantage (``advantages.group_advantages(r, "mean")``) of a flawed positive
    in a group with fractions ``a`` clean, ``f`` flawed, ``1 - a - f`` wrong:
    ``r_flawed - (a r_clean + f r_flawed + (1 - a - f) r_wrong)``."""
    a = read_probability(a, "a")
    f = read_probability(f, "f")
    if np.any(a + f > 1 + 1e-12):
        raise ValueError("the fractions a + f must not exceed 1")
    return r_flawed - (a * r_clean + f * r_flawed + (1 - a - f) * r_wrong)


def flawed_advantage_positive(a, f, lam: float = 1.0, *, signed: bool = False) -> np.ndarray:
    """The sheet's sign condition [P10]: ``(1 - lam)(1 - f) > a`` for rewards (1, 1 - lam, 0);
    with ``signed=True`` (+-1 rewards, flawed 0, ``lam`` unused): ``a < (1 - f) / 2``."""
    a = read_probability(a, "a")
    f = read_probability(f, "f")
    if signed:
        return a < (1 - f) / 2
    lam = read_scalar(lam, "lam")
    return (1 - lam) * (1 - f) > a


# --- Lp-Reg [P3] and SIREN [P11]: per-row distributions (..., V) ------------------------------


def _read_kept(pi, tau):
    pi = read_distribution(pi, "pi")
    tau = read_scalar(tau, "tau", low=0.0, high=1.0, high_open=True)
    kept = pi > tau
    Z = np.where(kept, pi, 0.0).sum(axis=-1)
    if np.any(Z == 0):
        idx = tuple(np.argwhere(Z == 0)[0])
        raise ValueError(f"no token of pi[{', '.join(map(str, idx))}, :] exceeds tau = {tau!r}")
    return pi, kept, Z


def lp_proxy(pi, tau: float) -> np.ndarray:
    """Lp-Reg's proxy: ``pi`` restricted to tokens with ``pi(a) > tau``, renormalised.

    Parameters
    ----------
    pi : array_like, (..., V), rows are distributions (e.g. a tree policy table)
    tau : float in [0, 1)
        Absolute threshold (the paper's threshold rule is nv).

    Raises
    ------
    ValueError
        A row with no token above ``tau``.

    Source: Huang et al. 2025 (Lp-Reg), arXiv 2510.03222.
    """
    pi, kept, Z = _read_kept(pi, tau)
    return np.where(kept, pi, 0.0) / Z[..., None]


def lp_kl(pi, tau: float) -> np.ndarray:
    """``KL(pi_proxy || pi) = -log Z``, ``Z`` the kept mass ([P3]), shape ``pi.shape[:-1]``."""
    _, _, Z = _read_kept(pi, tau)
    return -np.log(Z)


def lp_kl_logit_gradient(pi, tau: float) -> np.ndarray:
    """``d KL(pi_proxy || pi) / dz_v = pi_v (1 - 1[v kept] / Z)`` ([P3]), (..., V): the same
    with the proxy held fixed (stop-gradient) or differentiated with the kept set fixed. A
    gradient-descent step raises the kept tokens and lowers the removed ones."""
    pi, kept, Z = _read_kept(pi, tau)
    return pi * (1.0 - kept / Z[..., None])


def nucleus_mask(pi, top_p: float) -> np.ndarray:
    """Top-p nucleus: the smallest set of most likely tokens with mass >= ``top_p``, (..., V)
    bool. A token is in it when the mass of the tokens ranked before it is < ``top_p``
    (ranking by probability, ties by index)."""
    pi = read_distribution(pi, "pi")
    top_p = read_scalar(top_p, "top_p", low=0.0, high=1.0, low_open=True)
    order = np.argsort(-pi, axis=-1, kind="stable")
    sorted_pi = np.take_along_axis(pi, order, axis=-1)
    before = np.cumsum(sorted_pi, axis=-1) - sorted_pi
    mask = np.empty(pi.shape, dtype=bool)
    np.put_along_axis(mask, order, before < top_p, axis=-1)
    return mask


def _nucleus(pi, mask):
    pi = read_distribution(pi, "pi")
    mask = read_mask(mask, "mask", pi.shape)
    Z = np.where(mask, pi, 0.0).sum(axis=-1, keepdims=True)
    if np.any(Z == 0):
        raise ValueError("mask keeps no probability mass in some row")
    return np.where(mask, pi, 0.0) / Z


def nucleus_entropy(pi, mask) -> np.ndarray:
    """Entropy of ``pi`` restricted to ``mask`` and renormalised, ``<= log |mask|`` ([P11]).

    Parameters
    ----------
    pi : array_like, (..., V)
    mask : array_like of bool, (..., V), e.g. :func:`nucleus_mask`

    Source: SIREN, arXiv 2509.25133 (entropy over the top-p nucleus).
    """
    return entr(_nucleus(pi, mask)).sum(axis=-1)


def nucleus_entropy_logit_gradient(pi, mask) -> np.ndarray:
    """``dH_nucleus / dz_v = -q_v (log q_v + H)`` inside the mask, 0 outside (mask fixed), with
    ``q`` the renormalised nucleus distribution ([P11]), (..., V)."""
    q = _nucleus(pi, mask)
    H = entr(q).sum(axis=-1, keepdims=True)
    return entr(q) - q * H


def top_quantile_mask(H, fraction: float) -> np.ndarray:
    """Positions whose entropy is among the ``ceil(fraction * n)`` largest of the batch (ties
    by position), bool of ``H``'s shape (flattened ranking; SIREN's quantile rule, nv)."""
    H = read_values(H, "H")
    fraction = read_scalar(fraction, "fraction", low=0.0, high=1.0)
    k = int(np.ceil(fraction * H.size))
    mask = np.zeros(H.size, dtype=bool)
    mask[np.argsort(-H.ravel(), kind="stable")[:k]] = True
    return mask.reshape(H.shape)


# --- ProRL: reference resets [P5] -------------------------------------------------------------


def reset_reference(tree: TreeMDP, policy: TreePolicy) -> np.ndarray:
    """ProRL's reset ``pi_ref <- pi_theta``: a copy of the policy's table (n_prompts, n_nodes, V).
    Right after it the KL to the reference and its gradient are 0."""
    _require_policy(tree, policy)
    return policy.pi(tree).copy()


def prorl_phases(tree: TreeMDP, pi0, beta: float, m: int) -> np.ndarray:
    """Policies after 0..m converged KL-regularised phases with a reference reset between them.

    Phase k converges to ``pi_k ∝ pi_{k-1} e^{R/beta}`` (the posterior of
    :func:`tabular.rlvr.kl.posterior_policy` with prior ``pi_{k-1}``), then ``pi_ref <- pi_k``.
    After m phases (m - 1 resets) ``pi_m ∝ pi0 e^{m R / beta}``: effective ``beta / m`` ([P5],
    audit: "after m phases", not "after m resets").

    Returns
    -------
    numpy.ndarray, float64, (m + 1, n_prompts, n_nodes, V)
        Index k is the policy after k phases (index 0 = ``pi0``).

    Source: Liu et al. 2025 (ProRL), arXiv 2505.24864 (reference resets); the closed form is
    derived (sheet property 5).
    """
    from tabular.rlvr.kl import posterior_policy

    m = _read_int(m, "m", minimum=0)
    pi = validate_tree_policy(tree, pi0)
    out = [pi]
    for _ in range(m):
        pi = posterior_policy(tree, pi, beta)[0]
        out.append(pi)
    return np.stack(out)


def effective_beta(beta: float, m: int) -> float:
    """``beta / m``: the KL weight to ``pi0`` that the policy after m converged phases solves."""
    beta = read_scalar(beta, "beta", low=0.0, low_open=True)
    return beta / _read_int(m, "m", minimum=1)


# --- CURE: branching at critical positions [P12] ---------------------------------------------


def critical_depths(tree: TreeMDP, pi) -> np.ndarray:
    """Depth ``t`` of the critical position of each answer, (n_prompts, n_leaves) int64: the
    node on its path with the highest next-token entropy (earliest on ties). CURE's rule picks
    high-entropy tokens; the exact rule (per rollout, per batch quantile) is nv."""
    pi = validate_tree_policy(tree, pi)
    H = entropy(pi)  # (n_prompts, n_nodes)
    nodes, _ = path_nodes(tree, np.arange(tree.n_leaves))
    return np.argmax(H[:, nodes], axis=-1).astype(np.int64)


def _read_nodes(tree: TreeMDP, node) -> np.ndarray:
    node = np.asarray(node)
    if node.dtype.kind not in "iu" or node.shape != (tree.n_prompts,):
        raise ValueError(f"node must be integer node ids of shape (n_prompts,) = "
                         f"({tree.n_prompts},), got {node.dtype} {node.shape}")
    if np.any((node < 0) | (node >= tree.n_nodes)):
        raise ValueError(f"node ids must be in [0, {tree.n_nodes}), got {node.tolist()}")
    return node.astype(np.int64)


def continuation_policy(tree: TreeMDP, pi, node) -> np.ndarray:
    """``pi`` with the rows on the path to ``node[x]`` forced one-hot onto that path: its leaf
    distribution is ``pi(y | prefix node[x])`` (zero outside the subtree), and sampling it
    re-generates continuations of the prefix exactly.

    Parameters
    ----------
    tree : TreeMDP
    pi : array_like, (n_prompts, n_nodes, V)
    node : array_like of int, (n_prompts,)
        Global id of one internal node (prefix) per prompt.
    """
    pi = validate_tree_policy(tree, pi).copy()
    node = _read_nodes(tree, node)
    V = tree.n_vocab
    for x, s in enumerate(node):
        t = int(np.searchsorted(tree.offsets, s, side="right")) - 1
        j = s - tree.offsets[t]
        for u in range(t):  # ancestor at level u: prefix j // V**(t-u), token = next digit
            anc, tok = j // V ** (t - u), (j // V ** (t - u - 1)) % V
            pi[x, tree.offsets[u] + anc] = np.eye(V)[tok]
    return pi


def continuation_probs(tree: TreeMDP, pi, node) -> np.ndarray:
    """``pi(y | node[x])`` over leaves, (n_prompts, n_leaves)."""
    return leaf_probs(tree, continuation_policy(tree, pi, node))


def sample_continuations(tree: TreeMDP, pi, node, n: int, *, seed=None) -> np.ndarray:
    """``n`` continuations of the prefix ``node[x]`` per prompt, exact samples of
    ``pi(. | prefix)`` ([P12]), (n_prompts, n) leaf indices."""
    return sample_leaves(tree, continuation_policy(tree, pi, node), n, seed=seed)


def _read_critical(tree: TreeMDP, pi, critical):
    if critical is None:
        return critical_depths(tree, pi)
    crit = np.asarray(critical)
    if crit.dtype.kind not in "iu" or crit.shape != (tree.n_prompts, tree.n_leaves):
        raise ValueError(f"critical must be integer depths of shape (n_prompts, n_leaves) = "
                         f"{(tree.n_prompts, tree.n_leaves)}")
    if np.any((crit < 0) | (crit >= tree.depth)):
        raise ValueError(f"critical depths must be in [0, {tree.depth})")
    return crit.astype(np.int64)


def cure_reweighting(tree: TreeMDP, pi, K: int, critical=None) -> tuple[np.ndarray, np.ndarray]:
    """Exact leaf distribution of CURE's combined batch and its weight against on-policy.

    Each on-policy rollout ``y'`` is kept and ``K`` continuations are drawn from its critical
    prefix ``s(y')`` (depth ``critical[x, y']``). A rollout drawn uniformly from the combined
    batch (``1 + K`` per original) has leaf distribution

        q(y) = pi(y) (1 + K sum_t m_t(s_t(y)) / d_pi(s_t(y))) / (1 + K),

    with ``s_t(y)`` the prefix of y at depth t, ``d_pi`` its reach probability and ``m_t(s)``
    the probability that a rollout's critical prefix is ``s`` (derived, sheet property 12).
    When the critical position is decided from the prefix alone (a stopping time, e.g. the
    first node whose entropy exceeds a level), ``sum_t m_t / d_pi = 1`` on every path and
    ``q = pi``: the batch is on-policy. The reweighting comes from rules that look ahead, like
    the default (the highest entropy along the whole rollout).

    Parameters
    ----------
    tree : TreeMDP
    pi : array_like, (n_prompts, n_nodes, V)
    K : int >= 0
        Branches per rollout.
    critical : array_like of int, (n_prompts, n_leaves), optional
        Critical depth of each leaf; default :func:`critical_depths`.

    Returns
    -------
    q : numpy.ndarray, (n_prompts, n_leaves)
    weight : numpy.ndarray, (n_prompts, n_leaves)
        ``q / pi`` (0 where ``pi(y) = 0``).

    Source: Li et al. 2025 (CURE), arXiv 2508.11016 (stage 1 branching).
    """
    pi = validate_tree_policy(tree, pi)
    K = _read_int(K, "K", minimum=0)
    crit = _read_critical(tree, pi, critical)
    p = leaf_probs(tree, pi)
    d = reach_probs(tree, pi)
    nodes, _ = path_nodes(tree, np.arange(tree.n_leaves))  # (n_leaves, D)
    x = np.arange(tree.n_prompts)[:, None]
    m = np.zeros((tree.n_prompts, tree.n_nodes))
    np.add.at(m, (np.broadcast_to(x, crit.shape), nodes[np.arange(tree.n_leaves), crit]), p)
    ratio = np.divide(m, d, out=np.zeros_like(m), where=d > 0)
    weight = (1.0 + K * ratio[:, nodes].sum(axis=-1)) / (1 + K)
    weight = np.where(p > 0, weight, 0.0)
    return p * weight, weight


def cure_batch(tree: TreeMDP, pi, n: int, K: int, *, critical=None, seed=None) -> np.ndarray:
    """Sample CURE's stage-1 batch: ``n`` rollouts per prompt, then ``K`` continuations of each
    from its critical prefix, (n_prompts, n (1 + K)) leaves (originals first, then each
    original's branches in order)."""
    pi = validate_tree_policy(tree, pi)
    n = _read_int(n, "n", minimum=0)
    K = _read_int(K, "K", minimum=0)
    crit = _read_critical(tree, pi, critical)
    rng = as_generator(seed)
    original = sample_leaves(tree, pi, n, seed=rng)
    nodes, _ = path_nodes(tree, original)  # (n_prompts, n, D)
    x = np.arange(tree.n_prompts)[:, None]
    crit_node = nodes[x, np.arange(n)[None], crit[x, original]]  # (n_prompts, n)
    branches = np.empty((tree.n_prompts, n, K), dtype=np.int64)
    for i in range(n):
        branches[:, i] = sample_continuations(tree, pi, crit_node[:, i], K, seed=rng)
    return np.concatenate([original, branches.reshape(tree.n_prompts, n * K)], axis=1)


def node_visits(tree: TreeMDP, q) -> np.ndarray:
    """Probability that a rollout with leaf distribution ``q`` (n_prompts, n_leaves) passes each
    internal node, (n_prompts, n_nodes): the state-visitation weights of a batch (for ``q = pi``'s
    leaf probabilities, :func:`tabular.tree.reach_probs`)."""
    _require_tree(tree)
    q = read_values(q, "q", (tree.n_prompts, tree.n_leaves))
    out = np.empty((tree.n_prompts, tree.n_nodes))
    for t in range(tree.depth):
        out[:, tree.level(t)] = q.reshape(tree.n_prompts, tree.n_vocab**t, -1).sum(axis=-1)
    return out


# --- Echo Chamber: replicator form [P6] --------------------------------------------------------


def format_success(tree: TreeMDP, pi) -> np.ndarray:
    """``s[x, f] = E[R | first token f]`` (the Q-value at the root), (n_prompts, V): the success
    rate of "format" f when the first token picks the format."""
    return evaluate(tree, pi).Q[:, 0]


def replicator_gradient(w, s) -> np.ndarray:
    """``dJ/dz_f = w_f (s_f - sum_g w_g s_g)`` for ``J = sum_f w_f s_f``, ``w = softmax(z)``
    (replicator dynamics; [P6]). ``w``: (..., n_formats) distribution; ``s``: same shape.

    Source: Zhao et al. 2025 (Echo Chamber), arXiv 2504.07912 (setting); derived.
    """
    w = read_distribution(w, "w")
    s = read_values(s, "s")
    return w * (s - (w * s).sum(axis=-1, keepdims=True))


# --- 1-shot RLVR [P4] -------------------------------------------------------------------------


def one_shot_gradient(tree: TreeMDP, policy: TreePolicy, prompt: int) -> PolicyGradient:
    """Exact gradient of the expected reward of the single training prompt ``prompt``."""
    _require_policy(tree, policy)
    prompt = _read_int(prompt, "prompt", minimum=0)
    if prompt >= tree.n_prompts:
        raise ValueError(f"prompt = {prompt} is out of range for {tree.n_prompts} prompts")
    weights = np.zeros(tree.n_prompts)
    weights[prompt] = 1.0
    return expected_reward_gradient(tree, policy, weights)


def one_shot_train(tree: TreeMDP, policy: TreePolicy, prompt: int, lr: float,
                   n_steps: int) -> TreePolicy:
    """``n_steps`` exact gradient-ascent steps on one prompt (1-shot RLVR's training set of
    size one; Wang et al. 2025, arXiv 2504.20571). The entropy bonus is left out."""
    n_steps = _read_int(n_steps, "n_steps", minimum=0)
    for _ in range(n_steps):
        policy = policy.step(one_shot_gradient(tree, policy, prompt), lr)
    return policy


def one_shot_train_sampled(tree: TreeMDP, policy: TreePolicy, prompt: int, method, *, n: int,
                           n_steps: int, optimizer, K: int = 1, seed=None) -> TreePolicy:
    """Sampled 1-shot training: :func:`tabular.rlvr.training.train` on the full tree with
    ``rl_prompts`` set to the one training prompt, so every other prompt's loss term is
    masked out (its z_prompt gradient rows are 0, only the shared logits carry transfer).
    Returns the full policy after training.

    Parameters
    ----------
    tree : TreeMDP
    policy : TreePolicy
        Not modified.
    prompt : int
        The training prompt.
    method : tabular.rlvr.losses.Method
        E.g. ``losses.preset("grpo")``.
    n, n_steps, optimizer, K, seed
        As in :func:`tabular.rlvr.training.train` (``n``: the group size; every prompt is
        sampled each step, the masked ones' rollouts are unused).
    """
    from tabular.rlvr.training import train

    _require_policy(tree, policy)
    prompt = _read_int(prompt, "prompt", minimum=0)
    if prompt >= tree.n_prompts:
        raise ValueError(f"prompt = {prompt} is out of range for {tree.n_prompts} prompts")
    rl = np.arange(tree.n_prompts) == prompt
    return train(tree, policy, method, n=n, n_steps=n_steps, optimizer=optimizer, K=K,
                 ks=(1,), rl_prompts=rl, seed=seed).policy


def untouched_prompts(tree: TreeMDP, before: TreePolicy, after: TreePolicy) -> np.ndarray:
    """Bool (n_prompts,): whether each prompt's policy table is bit-identical in both ([P4])."""
    a, b = before.pi(tree), after.pi(tree)
    return np.array([np.array_equal(a[x], b[x]) for x in range(tree.n_prompts)])
