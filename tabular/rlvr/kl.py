"""The KL-regularised optimum as a Bayesian posterior on tree MDPs (Korbak, Perez, Buckley 2022, "RL with KL penalties is better viewed as Bayesian inference"), its token-level recursion and soft policy iteration."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from proofs_check.messages import plain
from tabular.mdp import _read_int
from tabular.rlvr._checks import read_probability, read_prompt_weights, read_scalar
from tabular.rlvr.difficulty import optimal_accuracy
from tabular.tree import (
    PolicyGradient, TreeMDP, TreePolicy, TreeValues, _leaf_log_probs, _logit_gradient,
    _require_policy, _row_max, _row_sum, expected_reward, leaf_log_probs, reach_probs,
    softmax_policy, validate_tree_policy,
)

__all__ = [
    "sequence_kl", "token_kl", "kl_objective", "kl_objective_gradient",
    "posterior_leaf_probs", "posterior_policy", "soft_value",
    "SoftPIResult", "soft_policy_iteration",
    "binary_posterior_accuracy", "binary_posterior_kl",
]


def _read_beta(beta) -> float:
    return read_scalar(beta, "beta", low=0.0, low_open=True)


def _rewards_over_beta(R: np.ndarray, beta: float) -> np.ndarray:
    """``R / beta``, refusing an overflow (it would turn the log-space sums into NaN)."""
    with np.errstate(over="ignore"):
        scaled = R / beta
    if not np.all(np.isfinite(scaled)):
        raise ValueError(f"beta = {beta!r} is too small for the rewards: max |R| / beta = "
                         f"{plain(float(np.abs(R).max()))} / {beta!r} overflows float64")
    return scaled


def _log_ratio_terms(p: np.ndarray, log_p: np.ndarray, log_q: np.ndarray) -> np.ndarray:
    """``p (log p - log q)`` elementwise, 0 where p = 0, +inf where p > 0 = q."""
    with np.errstate(invalid="ignore"):
        terms = p * (log_p - log_q)
    return np.where(p > 0, terms, 0.0)


def sequence_kl(tree: TreeMDP, pi, pi0) -> np.ndarray:
    """``KL(pi(.|x) || pi0(.|x)) = sum_y pi(y|x) log(pi(y|x) / pi0(y|x))`` per prompt.

    Leaf log-probabilities are sums of token log-probabilities (no underflow).

    Parameters
    ----------
    tree : TreeMDP
    pi, pi0 : array_like, (n_prompts, n_nodes, V) or (n_nodes, V)

    Returns
    -------
    numpy.ndarray, float64, (n_prompts,)
        ``+inf`` where pi puts mass on a leaf of pi0-probability 0.
    """
    log_p = leaf_log_probs(tree, pi)
    log_p0 = leaf_log_probs(tree, pi0)
    return _log_ratio_terms(np.exp(log_p), log_p, log_p0).sum(axis=1)


def token_kl(tree: TreeMDP, pi, pi0) -> np.ndarray:
    """Chain rule of the KL: ``sum_s d_pi(s) KL(pi(.|s) || pi0(.|s))`` per prompt, with
    ``d_pi`` the reach probability (Cover and Thomas 2006, Theorem 2.5.3).

    Only nodes that pi reaches (``d_pi(s) > 0``) contribute, so a token pi0 forbids at a
    node pi never reaches costs nothing. Equals :func:`sequence_kl`.

    Parameters
    ----------
    tree : TreeMDP
    pi, pi0 : array_like, (n_prompts, n_nodes, V) or (n_nodes, V)

    Returns
    -------
    numpy.ndarray, float64, (n_prompts,)
        ``+inf`` where pi, at a node it reaches, uses a token pi0 forbids.
    """
    pi = validate_tree_policy(tree, pi)
    pi0 = validate_tree_policy(tree, pi0)
    with np.errstate(divide="ignore"):
        node_kl = _log_ratio_terms(pi, np.log(pi), np.log(pi0)).sum(axis=-1)
    reach = reach_probs(tree, pi)
    with np.errstate(invalid="ignore"):
        return np.where(reach > 0, reach * node_kl, 0.0).sum(axis=1)


def kl_objective(tree: TreeMDP, pi, pi0, beta: float) -> np.ndarray:
    """``J_KL(pi) = E_{y ~ pi}[R] - beta KL(pi || pi0)`` per prompt (the objective of Korbak
    et al. 2022), (n_prompts,) float64.

    Parameters
    ----------
    tree : TreeMDP
    pi, pi0 : array_like, (n_prompts, n_nodes, V) or (n_nodes, V)
    beta : float
        KL weight, > 0.
    """
    beta = _read_beta(beta)
    return expected_reward(tree, pi) - beta * sequence_kl(tree, pi, pi0)


def kl_objective_gradient(tree: TreeMDP, policy: TreePolicy, pi0, beta: float,
                          weights=None) -> PolicyGradient:
    """Exact gradient of ``sum_x weights[x] J_KL(pi(.|x))`` for both parameter parts.

    ``dJ_KL/dlog pi(y) = pi(y) (R(y) - beta log(pi(y)/pi0(y)) - beta)``; the constant
    ``-beta`` drops out of a softmax gradient. Through :func:`tabular.tree.logit_gradient`.

    Parameters
    ----------
    tree : TreeMDP
    policy : TreePolicy
    pi0 : array_like, (n_prompts, n_nodes, V) or (n_nodes, V)
        The reference (base) policy.
    beta : float
        KL weight, > 0.
    weights : array_like (n_prompts,), optional
        Default ``1 / n_prompts`` (the mean over prompts); ones give each prompt's own
        gradient (per-prompt tables).

    Raises
    ------
    ValueError
        If pi puts mass on a leaf where pi0 has none (the KL is infinite).
    """
    beta = _read_beta(beta)
    _require_policy(tree, policy)
    w = read_prompt_weights(weights, tree.n_prompts)
    pi = policy.pi(tree)
    log_p = _leaf_log_probs(tree, pi)
    log_p0 = _leaf_log_probs(tree, validate_tree_policy(tree, pi0))
    p = np.exp(log_p)
    if np.any((p > 0) & (log_p0 == -np.inf)):
        raise ValueError("pi puts mass on a leaf where pi0 has none: KL(pi || pi0) is infinite")
    with np.errstate(invalid="ignore"):
        W = np.where(p > 0, p * (tree.R - beta * (log_p - log_p0)), 0.0)
    return policy.gradient(_logit_gradient(tree, pi, w[:, None] * W))


def _posterior_log_probs(tree: TreeMDP, pi0, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """``log pi*(y)`` (n_prompts, n_leaves) and ``log Z`` (n_prompts,), by log-sum-exp."""
    a = leaf_log_probs(tree, pi0) + _rewards_over_beta(tree.R, beta)
    m = a.max(axis=1, keepdims=True)  # finite: pi0 puts mass on some leaf
    log_Z = m[:, 0] + np.log(np.exp(a - m).sum(axis=1))
    return a - log_Z[:, None], log_Z


def posterior_leaf_probs(tree: TreeMDP, pi0, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """The KL-regularised optimum in closed form: ``pi*(y) = pi0(y) exp(R(y)/beta) / Z``.

    Korbak et al. (2022): the posterior with prior pi0 and likelihood ``exp(r/beta)``
    (verified statement). The convention is ``exp(r / beta)`` with beta the KL weight (some
    papers write ``exp(beta r)``). Computed in log space (``log Z`` by log-sum-exp).

    Parameters
    ----------
    tree : TreeMDP
    pi0 : array_like, (n_prompts, n_nodes, V) or (n_nodes, V)
        The prior (base) policy.
    beta : float
        KL weight, > 0.

    Returns
    -------
    probs : numpy.ndarray, float64, (n_prompts, n_leaves)
    log_Z : numpy.ndarray, float64, (n_prompts,)
        ``log sum_y pi0(y) exp(R(y)/beta)``; ``beta log Z = max_pi J_KL(pi)``.

    Raises
    ------
    ValueError
        An invalid pi0, ``beta <= 0``, or ``max |R| / beta`` overflowing float64.
    """
    beta = _read_beta(beta)
    log_post, log_Z = _posterior_log_probs(tree, pi0, beta)
    return np.exp(log_post), log_Z


def posterior_policy(tree: TreeMDP, pi0, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """Token-level form of the posterior by a backward log-sum-exp recursion.

    ``log Z(y) = R(y)/beta`` at a leaf, ``log Z(s) = log sum_a pi0(a|s) Z(s . a)`` and
    ``pi*(a|s) = pi0(a|s) Z(s . a) / Z(s)``; the soft value is ``V_soft(s) = beta log Z(s)``
    (standard soft-RL algebra; spec sheet, "token-level form", derived, not from the paper).
    Its leaf products equal :func:`posterior_leaf_probs`.

    Parameters
    ----------
    tree : TreeMDP
    pi0 : array_like, (n_prompts, n_nodes, V) or (n_nodes, V)
        The prior (base) policy.
    beta : float
        KL weight, > 0.

    Returns
    -------
    pi_star : numpy.ndarray, float64, (n_prompts, n_nodes, V)
        Done rows (EOS trees) are one-hot EOS.
    log_Z : numpy.ndarray, float64, (n_prompts, n_nodes)
        ``log Z`` of every internal node (``log_Z[:, 0]`` the root's).

    Raises
    ------
    ValueError
        An invalid pi0, ``beta <= 0``, or ``max |R| / beta`` overflowing float64.
    """
    beta = _read_beta(beta)
    pi0 = validate_tree_policy(tree, pi0)
    n, V = tree.n_prompts, tree.n_vocab
    with np.errstate(divide="ignore"):
        log_pi0 = np.log(pi0)
    logits = np.empty_like(pi0)  # log pi0(a|s) + log Z(s . a)
    log_Z = np.empty((n, tree.n_nodes))
    below = _rewards_over_beta(tree.R, beta)
    for t in reversed(range(tree.depth)):
        sl = tree.level(t)
        a = log_pi0[:, sl] + below.reshape(n, -1, V)
        logits[:, sl] = a
        m = _row_max(a, keepdims=True)
        below = (m + np.log(_row_sum(np.exp(a - m), keepdims=True)))[..., 0]
        log_Z[:, sl] = below
    return softmax_policy(tree, logits), log_Z


def soft_value(tree: TreeMDP, pi, pi0, beta: float) -> TreeValues:
    """KL-penalised values of ``pi``: ``V(s) = sum_a pi(a|s) [Q(s, a) - beta log(pi(a|s)/pi0(a|s))]``,
    ``Q(s, a) = V(s . a)``, ``V(leaf) = R`` (so ``V(root) = J_KL(pi)``, by the chain rule).

    Parameters
    ----------
    tree : TreeMDP
    pi : array_like, (n_prompts, n_nodes, V) or (n_nodes, V)
        The policy evaluated.
    pi0 : array_like, (n_prompts, n_nodes, V) or (n_nodes, V)
        The reference policy.
    beta : float
        KL weight, > 0.

    Returns
    -------
    TreeValues
        ``V (n_prompts, n_nodes)``, ``Q (n_prompts, n_nodes, V)`` (``-inf`` possible where pi
        uses a token pi0 forbids).
    """
    beta = _read_beta(beta)
    pi = validate_tree_policy(tree, pi)
    pi0 = validate_tree_policy(tree, pi0)
    with np.errstate(divide="ignore"):
        penalty = beta * _log_ratio_terms(pi, np.log(pi), np.log(pi0))
    n, V = tree.n_prompts, tree.n_vocab
    values = np.empty((n, tree.n_nodes))
    Q = np.empty_like(pi)
    below = tree.R
    for t in reversed(range(tree.depth)):
        sl = tree.level(t)
        Q_t = below.reshape(n, -1, V)
        with np.errstate(invalid="ignore"):
            weighted = np.where(pi[:, sl] > 0, pi[:, sl] * Q_t, 0.0)
        V_t = weighted.sum(axis=-1) - penalty[:, sl].sum(axis=-1)
        Q[:, sl] = Q_t
        values[:, sl] = V_t
        below = V_t
    return TreeValues(V=values, Q=Q)


@dataclass(frozen=True, eq=False)
class SoftPIResult:
    """Output of :func:`soft_policy_iteration`.

    Attributes
    ----------
    pi : numpy.ndarray, float64, (n_prompts, n_nodes, V)
        The last policy.
    kl : numpy.ndarray, float64, (n_sweeps + 1, n_prompts)
        ``KL(pi_k || pi*)`` over leaves for k = 0..n_sweeps (pi_0 the initial policy).
    J : numpy.ndarray, float64, (n_sweeps + 1, n_prompts)
        ``J_KL(pi_k)``.
    """

    pi: np.ndarray
    kl: np.ndarray
    J: np.ndarray


def _check_absolutely_continuous(pi: np.ndarray, pi0: np.ndarray) -> None:
    """Raise unless ``pi(a|s) > 0`` implies ``pi0(a|s) > 0`` at every node, reached or not:
    soft policy iteration updates every node from the soft values below it, and one token pi0
    forbids gives a soft value of -inf."""
    bad = (pi > 0) & (pi0 == 0)
    if bad.any():
        x, s, a = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"pi_init is not absolutely continuous w.r.t. pi0: pi_init[{x}, {s}, "
                         f"{a}] = {plain(pi[x, s, a])} but pi0[{x}, {s}, {a}] = 0 (a token pi0 "
                         "forbids has an infinite KL penalty)")


def soft_policy_iteration(tree: TreeMDP, pi0, beta: float, *, n_sweeps: int | None = None,
                          pi_init=None) -> SoftPIResult:
    """Soft policy iteration toward the KL posterior.

    ``pi_{k+1}(a|s) ∝ pi0(a|s) exp(Q_soft^{pi_k}(s, a) / beta)`` with ``Q_soft^{pi_k}`` from
    :func:`soft_value` (Haarnoja et al. 2018's soft policy improvement, with the reference
    pi0; spec sheet, test 7). On a tree, after k sweeps the last k levels equal the
    posterior's, so ``n_sweeps = depth`` reaches ``pi*`` exactly (up to rounding).

    Parameters
    ----------
    tree : TreeMDP
    pi0 : array_like, (n_prompts, n_nodes, V) or (n_nodes, V)
        Reference policy.
    beta : float
        KL weight, > 0.
    n_sweeps : int, optional
        Number of sweeps (>= 0); default ``tree.depth``.
    pi_init : array_like, (n_prompts, n_nodes, V) or (n_nodes, V), optional
        Starting policy (default pi0); must be absolutely continuous w.r.t. pi0 row by row:
        ``pi_init(a|s) > 0`` only where ``pi0(a|s) > 0``, at every node (reached or not,
        since every node's soft values enter the update).

    Returns
    -------
    SoftPIResult
        ``pi`` (n_prompts, n_nodes, V), ``kl`` and ``J`` (n_sweeps + 1, n_prompts).

    Raises
    ------
    ValueError
        Invalid policies, ``beta <= 0``, ``max |R| / beta`` overflowing float64, or a
        ``pi_init`` that is not absolutely continuous w.r.t. pi0.
    """
    beta = _read_beta(beta)
    n_sweeps = tree.depth if n_sweeps is None else _read_int(n_sweeps, "n_sweeps", minimum=0)
    pi0 = validate_tree_policy(tree, pi0)
    if pi_init is None:
        pi = pi0.copy()
    else:
        pi = validate_tree_policy(tree, pi_init)
        _check_absolutely_continuous(pi, pi0)
    log_post, _ = _posterior_log_probs(tree, pi0, beta)
    with np.errstate(divide="ignore"):
        log_pi0 = np.log(pi0)
    kl, J = [], []

    def record(pi_k):
        log_p = _leaf_log_probs(tree, pi_k)
        kl.append(_log_ratio_terms(np.exp(log_p), log_p, log_post).sum(axis=1))
        J.append(kl_objective(tree, pi_k, pi0, beta))

    record(pi)
    for _ in range(n_sweeps):
        pi = softmax_policy(tree, log_pi0 + soft_value(tree, pi, pi0, beta).Q / beta)
        record(pi)
    return SoftPIResult(pi=pi, kl=np.array(kl), J=np.array(J))


def _inverse_beta(beta) -> float:
    beta = _read_beta(beta)
    t = 1.0 / beta
    if not np.isfinite(t):
        raise ValueError(f"beta = {beta!r} is too small: 1 / beta overflows float64")
    return t


def binary_posterior_accuracy(p, beta: float):
    """Accuracy of the posterior for a binary reward: ``p* = p e^{1/beta} / (1 - p + p e^{1/beta})``,
    equivalently ``logit(p*) = logit(p) + 1/beta`` (derived from Korbak et al. 2022's
    posterior; spec sheet, test 4).

    The same quantity as :func:`tabular.rlvr.difficulty.optimal_accuracy`, which computes it
    (``expit(logit(p) + 1/beta)``: no overflow, exact at ``p in {0, 1}``).

    Parameters
    ----------
    p : float or array_like, in [0, 1]
        Base accuracy ``pi0(C)``.
    beta : float
        KL weight, > 0, with ``1/beta`` finite.

    Returns
    -------
    numpy.ndarray of float64, shape of ``p`` (a numpy scalar for scalar ``p``)
    """
    _inverse_beta(beta)
    return optimal_accuracy(p, beta)


def binary_posterior_kl(p, beta: float):
    """``KL(pi* || pi0) = p*/beta - log(1 - p + p e^{1/beta})`` for a binary reward (spec sheet,
    test 4), with ``p*`` from :func:`binary_posterior_accuracy`.

    Within-class proportions are kept, so this is the Bernoulli KL ``p* log(p*/p) + (1 - p*)
    log((1 - p*)/(1 - p))``, which is how it is computed (``1 - p* = expit(-logit(p) -
    1/beta)``, no cancellation; 0 at ``p in {0, 1}``).

    Parameters
    ----------
    p : float or array_like, in [0, 1]
        Base accuracy.
    beta : float
        KL weight, > 0, with ``1/beta`` finite.

    Returns
    -------
    numpy.ndarray of float64, shape of ``p`` (a numpy scalar for scalar ``p``), in nats.
    """
    from scipy.special import expit, logit, rel_entr

    t = _inverse_beta(beta)
    p = read_probability(p, "p")
    with np.errstate(divide="ignore"):
        shifted = logit(p) + t
    return rel_entr(expit(shifted), p) + rel_entr(expit(-shifted), 1.0 - p)
