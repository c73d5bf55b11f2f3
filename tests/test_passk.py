"""pass@k exact and unbiased, support and its preservation under masked logits, entropies."""
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import binom

from tabular.rlvr import passk as pk
from tabular.rlvr.divergences import reverse_kl_optimum
from tabular.rlvr.kl import kl_objective_gradient
from tabular.rlvr.psr_nsr import tree_gradient
from tabular.strategies import tree_mdps, tree_policies
from tabular.tree import TreeMDP, TreePolicy, expected_reward_gradient, leaf_probs, logit_gradient

P_GRID = np.linspace(0.0, 1.0, 20)


def _binomial_form(n, c, k):
    """1 - C(n-c, k)/C(n, k) in exact rational arithmetic."""
    return 1 - Fraction(math.comb(n - c, k), math.comb(n, k))


@pytest.mark.parametrize("n", [8, 32, 256])
def test_estimator_is_unbiased_exactly(n):
    ks = sorted({1, 2, 3, n // 4, n // 2, n - 1, n})
    c = np.arange(n + 1)
    for k in ks:
        est = pk.pass_at_k_estimator(n, c, k)
        for p in P_GRID:
            mean = float(binom.pmf(c, n, p) @ est)
            assert mean == pytest.approx(1 - (1 - p) ** k, rel=0, abs=1e-10)


def test_unbiasedness_check_catches_the_plug_in_estimator():
    """Planted error: 1 - (1 - c/n)^k is biased (Chen et al. 2021 warn against it)."""
    n, k = 32, 8
    c = np.arange(n + 1)
    biased = 1 - (1 - c / n) ** k
    errors = [abs(float(binom.pmf(c, n, p) @ biased) - (1 - (1 - p) ** k)) for p in P_GRID]
    assert max(errors) > 1e-3


def test_product_form_equals_binomial_form_and_edge_cases():
    for n in (1, 5, 8, 30, 64):
        c = np.arange(n + 1)
        for k in range(1, n + 1):
            est = pk.pass_at_k_estimator(n, c, k)
            exact = np.array([float(_binomial_form(n, int(ci), k)) for ci in c])
            assert np.allclose(est, exact, rtol=0, atol=1e-12)
            assert np.all((est >= 0) & (est <= 1))
            assert np.all(est[n - c < k] == 1.0)
        assert np.allclose(pk.pass_at_k_estimator(n, c, 1), c / n, rtol=0, atol=1e-15)


@st.composite
def accuracies(draw):
    n = draw(st.integers(1, 6))
    return np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))


@given(accuracies())
def test_exact_pass_at_k_monotone_and_concave_in_k(p):
    ks = np.arange(1, 300)
    single = pk.pass_at_k(p[:, None], ks[None, :])
    curve = pk.pass_at_k_curve(p, ks)
    for values in (*single, curve):
        assert np.all(np.diff(values) >= -1e-15)
        assert np.all(np.diff(values, 2) <= 1e-15)
    assert np.allclose(single, 1 - (1 - p[:, None]) ** ks[None, :], rtol=0, atol=1e-14)


def test_pass_at_k_accurate_for_tiny_p():
    assert pk.pass_at_k(1e-18, 1000) == pytest.approx(1e-15, rel=1e-12)
    assert pk.pass_at_k(1.0, 3) == 1.0 and pk.pass_at_k(0.0, 3) == 0.0


@given(accuracies(), accuracies())
def test_single_prompt_dominance_and_crossing_needs_a_loser(p_base, p_rl):
    n = min(p_base.size, p_rl.size)
    p_base, p_rl = p_base[:n], p_rl[:n]
    ks = np.arange(1, 1025)
    for b, r in zip(p_base, p_rl):
        if r >= b:
            assert np.all(pk.pass_at_k(r, ks) >= pk.pass_at_k(b, ks))
    diff = pk.pass_at_k_curve(p_rl, ks) - pk.pass_at_k_curve(p_base, ks)
    if diff.max() > 0 and diff.min() < 0:  # a crossing of the mean curves
        assert np.any(p_rl < p_base)


@given(tree_mdps(max_leaves=81), st.data())
def test_support_preserved_under_masked_logits_after_exact_steps(tree, data):
    """Leaves with base probability 0 (a -inf logit on their path) stay at 0 after any number
    of exact-gradient steps (PG, PSR, NSR, reverse KL); pass@inf cannot grow."""
    policy = data.draw(tree_policies(tree, masked=True))
    base = policy.pi(tree)
    q = leaf_probs(tree, base)
    for step in range(3):
        kind = data.draw(st.sampled_from(["pg", "psr", "nsr", "kl"]))
        if kind == "pg" or not tree.binary:
            g = expected_reward_gradient(tree, policy)
            policy = policy.step(g, 5.0)
        elif kind == "kl":
            policy = policy.step(kl_objective_gradient(tree, policy, base, 0.1), 5.0)
        else:
            policy = policy.step(tree_gradient(tree, policy, kind), -5.0)  # descend the loss
    pi = leaf_probs(tree, policy.pi(tree))
    assert np.all(pi[q == 0] == 0.0)
    reach_base = (q * tree.correct).sum(axis=1) > 0
    reach_new = (pi * tree.correct).sum(axis=1) > 0
    assert np.all(reach_new <= reach_base)


def _off_policy_training(z, tree, steps=60, lr=2.0):
    """Exact expected REINFORCE from UNIFORM behaviour without importance weights: the
    gradient W = u(y) R(y) on the leaves reaches tokens the policy itself never plays."""
    u = np.full((1, tree.n_leaves), 1.0 / tree.n_leaves)
    policy = TreePolicy.tabular(z)
    for _ in range(steps):
        dz = logit_gradient(tree, policy.pi(tree), dF_dlogpi=u * tree.R)
        policy = policy.step(policy.gradient(dz), lr)
    return leaf_probs(tree, policy.pi(tree))[0]


def test_support_check_catches_a_finite_mask():
    """-inf logits are absorbing under any finite update, even off-policy; a planted finite
    mask (-50) is revived by the same update, and the support check fails on it."""
    tree = TreeMDP(np.array([[0, 1, 0, 0]], float), n_vocab=2, depth=2)
    for mask, revived in ((-np.inf, False), (-50.0, True)):
        z = np.zeros((1, tree.n_nodes, 2))
        z[0, 1, 1] = mask  # the only correct leaf (tokens 0, 1)
        pi = _off_policy_training(z, tree)
        assert (pi[1] > 0.5) == revived
        assert (pi[1] == 0.0) == (not revived)


def _tilt(q, r, beta):
    """pi_beta ∝ q exp(beta r), the sheet's tilting convention (= posterior with 1/beta)."""
    return reverse_kl_optimum(q, r, 1.0 / beta).pi


@pytest.mark.parametrize("seed", range(5))
def test_tilting_identities_by_finite_differences(seed):
    rng = np.random.default_rng(seed)
    q = rng.dirichlet(np.ones(9))
    r = (rng.random(9) < 0.4).astype(float)
    r[0] = 1.0
    r[-1] = 0.0
    for beta in (0.3, 1.0, 3.0):
        h = 1e-5
        p = _tilt(q, r, beta)
        dE = ((_tilt(q, r, beta + h) @ r) - (_tilt(q, r, beta - h) @ r)) / (2 * h)
        var = p @ r**2 - (p @ r) ** 2
        assert dE == pytest.approx(var, rel=1e-6)
        assert var >= 0
        dH = (pk.entropy(_tilt(q, r, beta + h)) - pk.entropy(_tilt(q, r, beta - h))) / (2 * h)
        logp = np.log(p)
        cov = p @ (logp * r) - (p @ logp) * (p @ r)
        assert dH == pytest.approx(-cov, rel=1e-6, abs=1e-10)


def test_tilting_can_raise_entropy():
    """One dominant wrong leaf and many rare correct ones: tilting toward C raises H."""
    q = np.r_[0.9, np.full(20, 0.1 / 20)]
    r = np.r_[0.0, np.ones(20)]
    H = [float(pk.entropy(_tilt(q, r, beta))) for beta in (0.0001, 0.5, 1.0, 2.0)]
    assert H[1] > H[0] and H[2] > H[1]
    # and for uniform q the entropy falls (dH/dbeta = -beta Var <= 0)
    u = np.full(21, 1 / 21)
    assert pk.entropy(_tilt(u, r, 2.0)) < pk.entropy(_tilt(u, r, 1.0))


@given(tree_mdps(max_leaves=81), st.data())
def test_answer_entropy_at_most_sequence_entropy_and_token_entropy_chain_rule(tree, data):
    pi = data.draw(tree_policies(tree)).pi(tree)
    leaves = leaf_probs(tree, pi)
    answer_of = tree.leaf_tokens(np.arange(tree.n_leaves))[:, -1]  # last token
    H_seq = pk.entropy(leaves)
    H_ans = pk.entropy(pk.answer_distribution(leaves, answer_of, tree.n_vocab))
    assert np.all(H_ans <= H_seq + 1e-12)
    H_tok = pk.token_entropy(tree, pi)
    if tree.eos is None:
        assert np.allclose(H_tok * tree.depth, H_seq, rtol=0, atol=1e-12)
    # reference: per-state entropies summed along each answer's explicit path
    node_H = -(np.where(pi > 0, pi * np.log(np.where(pi > 0, pi, 1)), 0)).sum(-1)
    ref = np.zeros(tree.n_prompts)
    for y in np.flatnonzero(tree.answer_mask):
        tokens = tree.leaf_tokens(y)
        L = tree.depth
        if tree.eos is not None and np.any(tokens == tree.eos):
            L = int(np.argmax(tokens == tree.eos)) + 1
        node = 0
        path = []
        for t in range(tree.depth):
            path.append(tree.offsets[t] + node)
            node = node * tree.n_vocab + tokens[t]
        ref += leaves[:, y] * node_H[:, path[:L]].sum(axis=1) / L
    assert np.allclose(H_tok, ref, rtol=0, atol=1e-12)


def test_token_entropy_can_rise_while_answer_entropy_falls():
    """Many equivalent paths to one answer: spreading over paths raises H_tok, while moving
    mass to that answer lowers H_ans (answer = last token)."""
    tree = TreeMDP(np.zeros(16), n_vocab=2, depth=4)
    answer_of = tree.leaf_tokens(np.arange(16))[:, -1]
    z0 = np.zeros((1, tree.n_nodes, 2))
    z0[0, :, 0] = 3.0  # almost deterministic path 0000: answer 0
    z0[0, tree.level(3), 0] = 0.0  # last token uniform: answers 0/1 balanced
    z1 = np.zeros((1, tree.n_nodes, 2))  # every prefix uniform ...
    z1[0, tree.level(3), 1] = 4.0  # ... and the last token almost always 1
    H = {}
    for name, z in (("before", z0), ("after", z1)):
        pi = TreePolicy.tabular(z).pi(tree)
        leaves = leaf_probs(tree, pi)
        H[name] = (float(pk.token_entropy(tree, pi)[0]),
                   float(pk.entropy(pk.answer_distribution(leaves, answer_of, 2))[0]))
    assert H["after"][0] > H["before"][0] and H["after"][1] < H["before"][1]


def test_token_entropy_without_reach_weighting_is_caught():
    """Planted error: the plain mean of per-state entropies over all states differs."""
    tree = TreeMDP(np.zeros(27), n_vocab=3, depth=3)
    pi = TreePolicy.random(tree, seed=1, prompt_scale=2.0).pi(tree)
    node_H = -(pi * np.log(pi)).sum(-1)
    unweighted = np.mean([node_H[0, tree.level(t)].mean() for t in range(3)])
    assert abs(unweighted - float(pk.token_entropy(tree, pi)[0])) > 1e-3


@given(st.data())
def test_support_categories_partition_and_metric_ranges(data):
    n = data.draw(st.integers(2, 12))
    q = np.array(data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))) + 1e-9
    pi = np.array(data.draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))) + 1e-9
    q, pi = q / q.sum(), pi / pi.sum()
    correct = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    eps = data.draw(st.sampled_from([1e-3, 1e-2, 0.1]))
    cat = pk.support_categories(q, pi, correct, eps)
    total = sum(cat[key].astype(int) for key in "PSEO")
    assert np.array_equal(total, correct.astype(int))
    m = pk.support_metrics(cat)
    for key in ("SRR", "NDR", "SDS"):
        assert np.isnan(m[key]) or 0 <= m[key] <= 1
    assert np.isnan(m["NSCR"]) or -1 <= m["NSCR"] <= 1
    # the categories by their definitions
    assert np.array_equal(cat["S"], correct & (q > eps) & (pi <= eps))


def _hand_example():
    """Eight answers, six correct; eps = 0.05. Base q and trained pi put, on the correct
    answers 0..5: (0.2, 0.2), (0.1, 0.01), (0.01, 0.15), (0.1, 0.2), (0.01, 0.01),
    (0.3, 0.02): P = {0, 3}, S = {1, 5}, E = {2}, O = {4}. Hence SRR = 2/4, NDR = 1/3,
    SDS = 2 (1/2)(1/3) / (1/2 + 1/3) = 2/5, NSCR = (1 - 2)/5."""
    q = np.array([0.2, 0.1, 0.01, 0.1, 0.01, 0.3, 0.18, 0.1])
    pi = np.array([0.2, 0.01, 0.15, 0.2, 0.01, 0.02, 0.21, 0.2])
    correct = np.array([True] * 6 + [False] * 2)
    expected = {"SRR": 0.5, "NDR": 1 / 3, "SDS": 0.4, "NSCR": -0.2,
                "n_P": 2, "n_S": 2, "n_E": 1, "n_O": 1}
    return q, pi, correct, expected


def test_support_metrics_on_a_hand_computed_example():
    q, pi, correct, expected = _hand_example()
    cat = pk.support_categories(q, pi, correct, 0.05)
    assert [np.flatnonzero(cat[key]).tolist() for key in "PSEO"] == [[0, 3], [1, 5], [2], [4]]
    m = pk.support_metrics(cat)
    for key, value in expected.items():
        assert float(m[key]) == pytest.approx(value, rel=1e-15, abs=0)


def test_support_metrics_check_catches_swapped_shrink_and_expand():
    """Planted error: S and E swapped (categories computed with q and pi exchanged) changes
    SRR, NDR and the sign of NSCR, and the hand-computed values catch it."""
    q, pi, correct, expected = _hand_example()
    m = pk.support_metrics(pk.support_categories(pi, q, correct, 0.05))
    assert float(m["NSCR"]) == pytest.approx(-expected["NSCR"], rel=1e-15, abs=0)
    assert any(float(m[key]) != pytest.approx(expected[key], rel=1e-12, abs=0)
               for key in ("SRR", "NDR", "NSCR"))


def test_bad_input():
    q, pi, correct, _ = _hand_example()
    cat = pk.support_categories(q, pi, correct, 0.05)
    with pytest.raises(ValueError, match=r"lacks the keys \['O'\]"):
        pk.support_metrics({key: cat[key] for key in "PSE"})
    with pytest.raises(ValueError, match=r"categories\['E'\] has shape"):
        pk.support_metrics({**cat, "E": cat["E"][:3]})
    with pytest.raises(TypeError, match="categories must be a dict"):
        pk.support_metrics([cat["P"]])
    with pytest.raises(ValueError, match="^p = nan is not finite"):
        pk.pass_at_k(np.nan, 2)
    with pytest.raises(ValueError, match="k = 9 exceeds"):
        pk.pass_at_k_estimator(8, 3, 9)
    with pytest.raises(ValueError, match="outside"):
        pk.pass_at_k_estimator(8, 9, 2)
    with pytest.raises(ValueError, match=r"p\[1\] = 1.5"):
        pk.pass_at_k([0.2, 1.5], 2)
    with pytest.raises(TypeError):
        pk.pass_at_k(0.5, 2.0)
    with pytest.raises(ValueError, match="at least 1"):
        pk.pass_at_k(0.5, 0)
    with pytest.raises(ValueError, match="sums to"):
        pk.entropy([0.5, 0.6])
