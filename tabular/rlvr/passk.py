"""pass@k, exact and unbiased (Chen et al. 2021), support categories (Wu et al. 2025) and entropies (Yue et al. 2025) of answer distributions.

Sources: Chen et al. (2021), "Evaluating Large Language Models Trained on Code", arXiv
2107.03374, sec. 2.1 (the unbiased estimator and its product form); Yue et al. (2025), "Does
Reinforcement Learning Really Incentivize Reasoning Capacity in LLMs Beyond the Base Model?",
arXiv 2504.13837 (pass@k as the reasoning boundary); Wu et al. (2025), "The Invisible Leash:
Why RLVR May (or May Not) Escape Its Origin", arXiv 2507.14843 v1 (support categories and
metrics; the NSCR denominator is not verified). The exact identities are standard algebra.
"""
from __future__ import annotations

import numpy as np

from tabular.mdp import _read_int
from tabular.rlvr._checks import read_distribution, read_mask, read_probability, read_scalar

__all__ = [
    "pass_at_k", "pass_at_k_curve", "pass_at_k_estimator", "accuracy", "answer_distribution",
    "entropy", "token_entropy", "support", "support_categories", "support_metrics",
]


def _read_ks(k) -> np.ndarray:
    arr = np.asarray(k)
    if arr.dtype == bool or arr.dtype.kind not in "iu":
        raise TypeError(f"k must be an int or an array of ints, got dtype {arr.dtype}")
    if np.any(arr < 1):
        raise ValueError(f"k must be at least 1, got min(k) = {int(arr.min())}")
    return arr.astype(np.int64)


def pass_at_k(p, k) -> np.ndarray:
    """Exact pass@k of prompts with accuracy ``p``: ``1 - (1 - p)^k``.

    Computed as ``-expm1(k log1p(-p))``, accurate for tiny ``p`` and ``p = 1``.

    Parameters
    ----------
    p : float or array_like of float in [0, 1]
        Per-prompt probability of a correct answer, ``p_x = sum_{y in C(x)} pi(y|x)``.
    k : int or array_like of int >= 1
        Number of independent attempts; broadcast against ``p``.

    Returns
    -------
    numpy.ndarray of float64, shape ``broadcast(p, k)``

    Raises
    ------
    ValueError
        If an entry of ``p`` is outside [0, 1] or not finite, or some ``k < 1``.
    TypeError
        If ``k`` is not integer.

    Source: Yue et al. (2025), arXiv 2504.13837, sec. 2 (pass@k of independent samples).
    """
    p = read_probability(p, "p")
    k = _read_ks(k)
    with np.errstate(divide="ignore"):  # log1p(-1) = -inf gives pass@k = 1, as it should
        return -np.expm1(k * np.log1p(-p))


def pass_at_k_curve(p, ks) -> np.ndarray:
    """Benchmark pass@k: the mean over prompts of :func:`pass_at_k`, for each k in ``ks``.

    Parameters
    ----------
    p : array_like, shape (n_prompts,)
        Per-prompt accuracies in [0, 1].
    ks : array_like of int, shape (n_k,)

    Returns
    -------
    numpy.ndarray of float64, shape (n_k,)
    """
    p = read_probability(p, "p")
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"p must be a non-empty 1-d array of per-prompt accuracies, got shape {p.shape}")
    ks = _read_ks(ks)
    if ks.ndim != 1:
        raise ValueError(f"ks must be 1-d, got shape {ks.shape}")
    return pass_at_k(p[None, :], ks[:, None]).mean(axis=1)


def pass_at_k_estimator(n: int, c, k: int) -> np.ndarray:
    """Unbiased pass@k from ``n`` samples of which ``c`` are correct: ``1 - C(n-c, k)/C(n, k)``.

    Evaluated in the numerically stable product form ``1 - prod_{i=n-c+1}^{n} (1 - k/i)``;
    equal to 1 exactly when ``n - c < k`` (the product then contains the factor ``1 - k/k``).
    Its expectation under ``c ~ Binomial(n, p)`` is ``1 - (1 - p)^k`` for every ``k <= n``.
    Never use the biased plug-in ``1 - (1 - c/n)^k``.

    Parameters
    ----------
    n : int >= 1
        Number of samples drawn per prompt.
    c : int or array_like of int in [0, n]
        Number of correct samples (any shape).
    k : int, 1 <= k <= n

    Returns
    -------
    numpy.ndarray of float64, shape of ``c``

    Raises
    ------
    ValueError
        If ``k > n``, or an entry of ``c`` is outside [0, n].
    TypeError
        If ``n``, ``k`` or ``c`` are not integers.

    Source: Chen et al. (2021), arXiv 2107.03374, sec. 2.1, eq. (1) and its numpy form.
    """
    n = _read_int(n, "n")
    k = _read_int(k, "k")
    if k > n:
        raise ValueError(f"k = {k} exceeds the number of samples n = {n}: the unbiased "
                         "estimator needs k <= n")
    c = np.asarray(c)
    if c.dtype == bool or c.dtype.kind not in "iu":
        raise TypeError(f"c must be integer counts, got dtype {c.dtype}")
    if np.any((c < 0) | (c > n)):
        bad = c[(c < 0) | (c > n)].flat[0]
        raise ValueError(f"c = {int(bad)} is outside [0, n] = [0, {n}]")
    factors = 1.0 - k / np.arange(1, n + 1, dtype=np.float64)  # factor i at index i - 1
    # suffix[c] = prod_{i=n-c+1}^{n} factors; the factor at i = k is exactly 0.
    suffix = np.concatenate(([1.0], np.cumprod(factors[::-1])))
    return 1.0 - suffix[c]


def accuracy(pi, correct) -> np.ndarray:
    """``p = sum_{a in C} pi(a)``: the probability of a correct answer, per row of ``pi``.

    Parameters
    ----------
    pi : array_like, shape (..., n_answers)
        Answer (or leaf) distributions; rows sum to 1 (atol 1e-9).
    correct : array_like of bool, same shape as ``pi``
        Correct answers ``C``.

    Returns
    -------
    numpy.ndarray of float64, shape ``pi.shape[:-1]``
    """
    pi = read_distribution(pi, "pi")
    correct = read_mask(correct, "correct", pi.shape)
    return np.where(correct, pi, 0.0).sum(axis=-1)


def answer_distribution(leaf_probs, answer_of, n_answers: int) -> np.ndarray:
    """``pi_A(a) = sum_{y: ans(y) = a} pi(y)``: the answer distribution of a leaf distribution.

    Parameters
    ----------
    leaf_probs : array_like, shape (..., n_leaves)
        Leaf distributions (rows sum to 1, atol 1e-9).
    answer_of : array_like of int, shape (n_leaves,)
        The answer index of every leaf, in ``[0, n_answers)``.
    n_answers : int

    Returns
    -------
    numpy.ndarray of float64, shape (..., n_answers)
    """
    leaf_probs = read_distribution(leaf_probs, "leaf_probs")
    n_answers = _read_int(n_answers, "n_answers")
    answer_of = np.asarray(answer_of)
    if answer_of.dtype == bool or answer_of.dtype.kind not in "iu":
        raise TypeError(f"answer_of must hold integer answer indices, got dtype {answer_of.dtype}")
    if answer_of.shape != leaf_probs.shape[-1:]:
        raise ValueError(f"answer_of has shape {answer_of.shape}, expected {leaf_probs.shape[-1:]}")
    bad = (answer_of < 0) | (answer_of >= n_answers)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"answer_of[{i}] = {int(answer_of[i])} is outside [0, {n_answers})")
    onehot = np.zeros((answer_of.size, n_answers))
    onehot[np.arange(answer_of.size), answer_of] = 1.0
    return leaf_probs @ onehot


def entropy(pi) -> np.ndarray:
    """Shannon entropy ``H(pi) = -sum_a pi(a) log pi(a)`` in nats (``0 log 0 = 0``), per row.

    Parameters
    ----------
    pi : array_like, shape (..., n)
        Distributions (rows sum to 1, atol 1e-9).

    Returns
    -------
    numpy.ndarray of float64, shape ``pi.shape[:-1]``

    Source: Cover and Thomas (2006), Elements of Information Theory, eq. (2.1). Applied to
    answer distributions it is Yue et al.'s answer-level entropy; applied to leaf
    distributions, the sequence-level entropy (``H_ans <= H_seq``, data processing).
    """
    pi = read_distribution(pi, "pi")
    logs = np.log(np.where(pi > 0, pi, 1.0))
    return -(pi * logs).sum(axis=-1)


def support(pi, epsilon: float = 0.0) -> np.ndarray:
    """``pi > epsilon`` entrywise: the (epsilon-)support of a distribution.

    With softmax policies a probability is exactly 0 only under a logit of ``-inf`` (a
    masked token); every other "zero" is an epsilon-support statement, and ``epsilon``
    should match the sampling budget (about ``1/k``). ``pass@inf = 1`` iff a correct answer
    is in the exact support (``epsilon = 0``).

    Parameters
    ----------
    pi : array_like, shape (..., n)
    epsilon : float in [0, 1)

    Returns
    -------
    numpy.ndarray of bool, shape of ``pi``
    """
    pi = read_distribution(pi, "pi")
    epsilon = read_scalar(epsilon, "epsilon", low=0.0, high=1.0, high_open=True)
    return pi > epsilon


def support_categories(q, pi, correct, epsilon: float) -> dict[str, np.ndarray]:
    """The Invisible Leash's partition of the correct answers by epsilon-support.

    For ``a in C``: preserved ``P`` (``q > eps`` and ``pi > eps``), shrunk ``S`` (``q > eps``,
    ``pi <= eps``), expanded ``E`` (``q <= eps``, ``pi > eps``), out of support ``O`` (both
    ``<= eps``). The four masks partition ``C``.

    Parameters
    ----------
    q, pi : array_like, shape (..., n)
        Base and trained distributions (rows sum to 1, atol 1e-9).
    correct : array_like of bool, shape (..., n)
    epsilon : float in [0, 1)

    Returns
    -------
    dict
        ``"P", "S", "E", "O"``: bool arrays of shape (..., n).

    Source: Wu et al. (2025), arXiv 2507.14843 v1, sec. 4 (empirical support).
    """
    q = read_distribution(q, "q")
    pi = read_distribution(pi, "pi")
    if q.shape != pi.shape:
        raise ValueError(f"q has shape {q.shape} but pi has shape {pi.shape}")
    correct = read_mask(correct, "correct", q.shape)
    base, new = support(q, epsilon), support(pi, epsilon)
    return {"P": correct & base & new, "S": correct & base & ~new,
            "E": correct & ~base & new, "O": correct & ~base & ~new}


def support_metrics(categories: dict) -> dict[str, np.ndarray]:
    """SRR, NDR, SDS and NSCR from the category masks of :func:`support_categories`.

    ``SRR = |P| / (|P| + |S|)`` (share of the base's solutions kept), ``NDR = |E| / (|P| + |E|)``
    (share of the trained policy's solutions that are new), ``SDS`` their harmonic mean, and
    ``NSCR = (|E| - |S|) / (|P| + |S| + |E|)`` (net expansion; this denominator is not
    verified against the paper). An empty denominator gives NaN.

    Parameters
    ----------
    categories : dict
        Bool masks of one shape (..., n) under the keys ``"P", "S", "E", "O"``.

    Returns
    -------
    dict of float64 arrays, shape ``mask.shape[:-1]``
        Also the counts ``"n_P", "n_S", "n_E", "n_O"``.

    Raises
    ------
    TypeError
        If ``categories`` is not a dict or a mask is not boolean.
    ValueError
        If a key is missing or the masks differ in shape (or are 0-d).

    Source: Wu et al. (2025), arXiv 2507.14843 v1, sec. 4 (metric names verified; exact
    formulas of NSCR not verified).
    """
    if not isinstance(categories, dict):
        raise TypeError(f"categories must be a dict of masks, got {type(categories).__name__}")
    missing = [key for key in "PSEO" if key not in categories]
    if missing:
        raise ValueError(f"categories lacks the keys {missing} (need 'P', 'S', 'E', 'O', as "
                         "returned by support_categories)")
    shape = np.shape(categories["P"])
    if len(shape) == 0:
        raise ValueError("the category masks must have an answer axis, got 0-d masks")
    masks = {key: read_mask(categories[key], f"categories[{key!r}]", shape) for key in "PSEO"}
    n = {key: masks[key].sum(axis=-1).astype(np.float64) for key in "PSEO"}
    with np.errstate(invalid="ignore", divide="ignore"):
        srr = n["P"] / (n["P"] + n["S"])
        ndr = n["E"] / (n["P"] + n["E"])
        sds = 2 * srr * ndr / (srr + ndr)
        sds = np.where((srr == 0) & (ndr == 0), 0.0, sds)
        nscr = (n["E"] - n["S"]) / (n["P"] + n["S"] + n["E"])
    return {"SRR": srr, "NDR": ndr, "SDS": sds, "NSCR": nscr,
            **{f"n_{key}": n[key] for key in "PSEO"}}


def token_entropy(tree, pi) -> np.ndarray:
    """Token-level entropy ``H_tok = E_{y ~ pi}[(1/L(y)) sum_{t < L(y)} H(pi(.|s_t))]`` per prompt.

    The mean per-token entropy along a generated answer, weighted by the answer's
    probability (so every state counts with its reach probability), in nats. ``L(y)`` is the
    number of generated tokens: ``depth``, or with an end-of-sequence token the position of
    the first EOS plus one (the forced EOS tokens after it have entropy 0 and are not
    counted). Without EOS the chain rule of entropy gives ``H_tok = H_seq / depth`` exactly,
    with ``H_seq`` the entropy of the leaf distribution; with EOS the two differ.

    Parameters
    ----------
    tree : tabular.tree.TreeMDP
    pi : array_like, (n_prompts, n_nodes, V) or (n_nodes, V)
        A tree policy (rows sum to 1, atol 1e-9).

    Returns
    -------
    numpy.ndarray of float64, shape (n_prompts,)

    Source: Yue et al. (2025), arXiv 2504.13837 and Wu et al. (2025), arXiv 2507.14843
    (token- vs answer-level entropy; the reach weighting follows the spec sheet).
    """
    from tabular.tree import leaf_probs, validate_tree_policy

    pi = validate_tree_policy(tree, pi)
    V, D = tree.n_vocab, tree.depth
    H_node = entropy(pi)  # (n_prompts, n_nodes); done rows are one-hot: 0
    path_sum = np.zeros((tree.n_prompts, 1))
    for t in range(D):
        path_sum = path_sum + H_node[:, tree.level(t)]
        path_sum = np.repeat(path_sum, V, axis=1)  # children of level t are level-t+1 nodes
    length = np.full(tree.n_leaves, D, dtype=np.float64)
    if tree.eos is not None:
        tokens = tree.leaf_tokens(np.arange(tree.n_leaves))
        is_eos = tokens == tree.eos
        length = np.where(is_eos.any(axis=1), is_eos.argmax(axis=1) + 1, D).astype(np.float64)
    return (leaf_probs(tree, pi) * path_sum / length).sum(axis=1)
