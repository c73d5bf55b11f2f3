"""Tree MDPs: validation, indexing, exact leaf distributions and values, the generic backward
pass against central differences, the score-function gradient, and the Numba sampler."""
import itertools
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proofs_check.stats import g_test
from tabular.strategies import tree_mdps, tree_policies
from tabular.tree import (
    PolicyGradient, TreeMDP, TreePolicy, _sample_leaves_kernel, _sample_leaves_reference,
    answer_lengths, evaluate, expected_reward, expected_reward_gradient, leaf_log_probs,
    leaf_probs, logit_gradient, objective_gradient, optimal_q, path_nodes, reach_probs,
    sample_leaves, score_gradient, softmax_policy, token_log_probs, uniform_policy, uniform_q,
    validate_tree_policy,
)

TOL = 1e-9


def brute_leaf_probs(tree, pi):
    """pi(y|x) by walking each leaf's path with explicit prefix arithmetic (no level tables)."""
    V, D = tree.n_vocab, tree.depth
    out = np.zeros((tree.n_prompts, tree.n_leaves))
    for y, tokens in enumerate(itertools.product(range(V), repeat=D)):
        p = np.ones(tree.n_prompts)
        prefix = 0
        for t, a in enumerate(tokens):
            node = sum(V**u for u in range(t)) + prefix
            p = p * pi[:, node, a]
            prefix = prefix * V + a
        out[:, y] = p
    return out


@st.composite
def trees_and_policies(draw, **tree_kwargs):
    tree = draw(tree_mdps(**tree_kwargs))
    policy = draw(tree_policies(tree, masked=st.booleans()))
    return tree, policy


# --- validation and indexing ---------------------------------------------------------------

def test_bad_inputs_raise_naming_the_problem():
    with pytest.raises(ValueError, match=r"expected \(n_prompts, 8\)"):
        TreeMDP(np.zeros((2, 9)), n_vocab=2, depth=3)
    R = np.zeros((2, 8))
    R[1, 5] = np.nan
    with pytest.raises(ValueError, match=r"R\[1, 5\]"):
        TreeMDP(R, n_vocab=2, depth=3)
    with pytest.raises(ValueError, match="eos = 2 is not a token"):
        TreeMDP(np.zeros(8), n_vocab=2, depth=3, eos=2)
    R = np.zeros(8)
    R[0b001] = 1.0  # tokens (0, 0, 1): a 1 after EOS = 0
    with pytest.raises(ValueError, match=r"R\[0, 1\].*not an answer"):
        TreeMDP(R, n_vocab=2, depth=3, eos=0)
    with pytest.raises(ValueError, match=r"2\*\*25 = 2\*\*25 leaves exceeds the limit 2\*\*24"):
        TreeMDP(np.zeros(1), n_vocab=2, depth=25)
    with pytest.raises(ValueError, match=r"= 2\*\*1e\+09 leaves") as err:
        TreeMDP(np.zeros(1), n_vocab=2, depth=10**9)  # rejected before V**D is formed
    assert len(str(err.value)) < 200
    with pytest.raises(ValueError, match="n_vocab = 1 must be at least 2"):
        TreeMDP(np.zeros(1), n_vocab=1, depth=3)
    with pytest.raises(TypeError, match="n_vocab must be an int"):
        TreeMDP(np.zeros(8), n_vocab=2.0, depth=3)
    with pytest.raises(TypeError, match="real numbers"):
        TreeMDP(["a"] * 8, n_vocab=2, depth=3)


def test_tree_is_immutable_and_pickles():
    tree = TreeMDP(np.arange(8) % 3 == 0, n_vocab=2, depth=3)
    assert tree.R.dtype == np.float64 and tree.binary and tree.R.shape == (1, 8)
    with pytest.raises(AttributeError):
        tree.depth = 4
    with pytest.raises(ValueError):
        tree.R[0, 0] = 2.0
    back = pickle.loads(pickle.dumps(tree))
    assert np.array_equal(back.R, tree.R) and back.depth == 3


def test_indexing_conventions():
    V, D = 3, 4
    tree = TreeMDP(np.zeros(V**D), n_vocab=V, depth=D)
    y = np.arange(V**D)
    tokens = tree.leaf_tokens(y)
    assert np.array_equal(np.arange(V**D).reshape((V,) * D)[tuple(tokens.T)], y)
    assert np.array_equal(tree.leaf_index(tokens), y)
    assert tree.n_nodes == 1 + 3 + 9 + 27
    assert [tree.level(t) for t in range(D)] == [slice(0, 1), slice(1, 4), slice(4, 13),
                                                  slice(13, 40)]
    nodes, toks = path_nodes(tree, np.array([0, 80]))
    assert nodes.tolist() == [[0, 1, 4, 13], [0, 3, 12, 39]]
    assert toks.tolist() == [[0, 0, 0, 0], [2, 2, 2, 2]]
    with pytest.raises(ValueError, match="not a leaf"):
        tree.leaf_tokens(np.array([81]))


@pytest.mark.parametrize("V, D, eos", [(2, 3, 0), (3, 4, 1), (4, 3, 3)])
def test_eos_answers_and_done_nodes(V, D, eos):
    tree = TreeMDP(np.zeros(V**D), n_vocab=V, depth=D, eos=eos)
    # an answer: EOS first at position t after t other tokens, or no EOS at all
    assert tree.answer_mask.sum() == sum((V - 1) ** t for t in range(D)) + (V - 1) ** D
    for y, tokens in enumerate(itertools.product(range(V), repeat=D)):
        first = tokens.index(eos) if eos in tokens else D
        assert tree.answer_mask[y] == all(a == eos for a in tokens[first:])
    for t in range(D):
        for j, prefix in enumerate(itertools.product(range(V), repeat=t)):
            assert tree.done[tree.level(t)][j] == (eos in prefix)
    pi = TreePolicy.random(tree, seed=0).pi(tree)
    p = leaf_probs(tree, pi)
    assert np.all(p[:, ~tree.answer_mask] == 0) and abs(p.sum() - 1) < TOL


# --- policies -------------------------------------------------------------------------------

def test_policy_validation_and_softmax():
    tree = TreeMDP(np.zeros(8), n_vocab=2, depth=3)
    pi = uniform_policy(tree)
    pi[0, 2] = [0.75, 0.125]
    with pytest.raises(ValueError, match=r"row pi\[0, 2, :\] sums to 0.875"):
        validate_tree_policy(tree, pi)
    pi[0, 2] = [1.2, -0.2]
    with pytest.raises(ValueError, match=r"pi\[0, 2, 1\] = -0.2"):
        validate_tree_policy(tree, pi)
    with pytest.raises(ValueError, match="expected"):
        validate_tree_policy(tree, np.full((2, 7, 2), 0.5))
    z = np.zeros((7, 2))
    z[3, 1] = -np.inf
    assert np.array_equal(softmax_policy(tree, z)[0, 3], [1.0, 0.0])
    z[3, 0] = -np.inf
    with pytest.raises(ValueError, match="all -inf"):
        softmax_policy(tree, z)
    z[3, 0] = np.nan
    with pytest.raises(ValueError, match="finite or -inf"):
        softmax_policy(tree, z)


def test_tree_policy_parts_and_masks():
    tree = TreeMDP(np.zeros((2, 8)), n_vocab=2, depth=3)
    z_prompt = np.zeros((2, 7, 2))
    z_prompt[1, 0, 0] = -np.inf
    shared_only = TreePolicy(np.ones((7, 2)), z_prompt, c=0.0)  # c = 0 ignores the mask
    assert np.all(shared_only.pi(tree) == 0.5)
    masked = TreePolicy(np.zeros((7, 2)), z_prompt, c=0.3)
    assert masked.pi(tree)[1, 0, 0] == 0.0 and masked.pi(tree)[0, 0, 0] == 0.5
    with pytest.raises(ValueError, match="c = -1.0"):
        TreePolicy(np.zeros((7, 2)), z_prompt, c=-1.0)
    with pytest.raises(ValueError, match="z_prompt has shape"):
        TreePolicy(np.zeros((6, 2)), z_prompt)
    with pytest.raises(ValueError, match="tree needs"):
        TreePolicy.uniform(TreeMDP(np.zeros(8), n_vocab=2, depth=3)).check(tree)
    tab = TreePolicy.tabular(np.ones((2, 7, 2)))
    assert tab.c == 1.0 and np.all(tab.z_shared == 0)


def test_masks_persist_under_steps_when_c_is_positive():
    """-inf in z_prompt masks a token for ever (any finite steps) when c > 0."""
    tree = TreeMDP(np.array([[0, 1, 0, 0, 1, 0, 0, 1], [1, 0, 0, 0, 0, 0, 0, 0]]), n_vocab=2,
                   depth=3)
    z_prompt = np.zeros((2, 7, 2))
    z_prompt[0, 0, 1] = -np.inf
    policy = TreePolicy(np.zeros((7, 2)), z_prompt, c=0.5)
    for _ in range(5):
        policy = policy.step(expected_reward_gradient(tree, policy), 10.0)
        policy = policy.step(PolicyGradient(np.ones((7, 2)), np.ones((2, 7, 2))), 3.0)
    pi = policy.pi(tree)
    assert pi[0, 0, 1] == 0.0 and pi[1, 0, 1] > 0.0


def test_tree_policy_step_trains_the_policy_parts():
    """step: z += lr * grad on the policy's own parts (tabular: z_prompt only), new arrays."""
    rng = np.random.default_rng(0)
    g_shared, g_prompt = rng.normal(size=(7, 2)), rng.normal(size=(3, 7, 2))
    grad = PolicyGradient(g_shared, g_prompt)
    z = rng.normal(size=(3, 7, 2))
    tab = TreePolicy.tabular(z)
    assert tab.parts == ("z_prompt",) and tab.z_prompt is not z  # the caller's array is copied
    new = tab.step(grad, 0.5)
    assert np.array_equal(new.z_shared, np.zeros((7, 2)))
    assert np.array_equal(new.z_prompt, z + 0.5 * g_prompt) and new.parts == ("z_prompt",)
    assert np.array_equal(tab.z_prompt, z)  # the old policy is unchanged
    both = tab.step(grad, 0.5, parts=("z_shared", "z_prompt"))
    assert np.array_equal(both.z_shared, 0.5 * g_shared)
    only_shared = tab.step(grad, -2.0, parts=("z_shared",))
    assert np.array_equal(only_shared.z_shared, -2.0 * g_shared)
    assert np.array_equal(only_shared.z_prompt, z) and only_shared.z_prompt is not tab.z_prompt
    full = TreePolicy(np.ones((7, 2)), z, 0.3)
    assert full.parts == ("z_shared", "z_prompt")
    stepped = full.step(grad, 1.0)
    assert np.array_equal(stepped.z_shared, 1.0 + g_shared) and stepped.c == 0.3
    assert np.array_equal(stepped.z_prompt, z + g_prompt)
    assert TreePolicy.uniform(TreeMDP(np.zeros(8), n_vocab=2, depth=3)).parts == ("z_prompt",)
    tree = TreeMDP(np.zeros((3, 8)), n_vocab=2, depth=3)
    assert TreePolicy.random(tree, seed=0).parts == ("z_prompt",)
    assert TreePolicy.random(tree, shared_scale=1.0, seed=0).parts == ("z_shared", "z_prompt")


def test_tree_policy_shared():
    """One table for all prompts: every prompt gets softmax(z_shared); with c = 0 a step
    moves z_shared by lr * sum_x dz and leaves z_prompt at 0."""
    R = np.zeros((3, 8))
    R[0, 1] = R[1, 6] = R[2, 7] = 1.0
    tree = TreeMDP(R, n_vocab=2, depth=3)
    z_shared = np.random.default_rng(1).normal(size=(7, 2))
    policy = TreePolicy.shared(z_shared, 3)
    assert policy.c == 0.0 and policy.parts == ("z_shared", "z_prompt")
    assert policy.z_shared is not z_shared and np.array_equal(policy.z_prompt, np.zeros((3, 7, 2)))
    e = np.exp(z_shared)
    assert np.allclose(policy.pi(tree), e / e.sum(axis=-1, keepdims=True), rtol=0, atol=1e-15)
    dz = logit_gradient(tree, policy.pi(tree), tree.R)
    new = policy.step(policy.gradient(dz), 0.7)
    assert np.allclose(new.z_shared, z_shared + 0.7 * dz.sum(axis=0), rtol=0, atol=1e-15)
    assert np.array_equal(new.z_prompt, np.zeros((3, 7, 2)))
    coupled = TreePolicy.shared(z_shared, 3, z_prompt=np.ones((3, 7, 2)), c=0.5)
    assert np.allclose(coupled.logits(), z_shared + 0.5, rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="n_prompts = 2"):
        TreePolicy.shared(z_shared, 2, z_prompt=np.ones((3, 7, 2)))


def test_tree_policy_input_checks():
    tree = TreeMDP(np.zeros((2, 8)), n_vocab=2, depth=3)
    policy = TreePolicy.random(tree, shared_scale=1.0, seed=3)
    grad = expected_reward_gradient(tree, policy)
    with pytest.raises(ValueError, match=r"grad.z_prompt has shape \(1, 7, 2\)"):
        policy.step(PolicyGradient(grad.z_shared, grad.z_prompt[:1]), 1.0)
    with pytest.raises(ValueError, match=r"grad.z_shared has shape \(7,\)"):
        policy.step(PolicyGradient(grad.z_shared[:, 0], grad.z_prompt), 1.0)
    with pytest.raises(TypeError, match="must be a PolicyGradient"):
        policy.step(grad.z_prompt, 1.0)
    with pytest.raises(TypeError, match="already a PolicyGradient"):
        policy.gradient(grad)
    with pytest.raises(ValueError, match=r"dz has shape \(7, 2\)"):
        policy.gradient(np.zeros((7, 2)))
    with pytest.raises(ValueError, match=r"parts \['z'\] are not parameters"):
        policy.step(grad, 1.0, parts=("z",))
    with pytest.raises(TypeError, match="lr must be a real number"):
        policy.step(grad, "1")
    with pytest.raises(ValueError, match=r"grad.z_shared\[0, 0\] = nan"):
        policy.step(PolicyGradient(np.full((7, 2), np.nan), grad.z_prompt), 1.0)


@given(tree_mdps(n_vocab=3, depth=4, n_prompts=3, eos=False), st.data())
def test_masked_strategy_varies_the_kept_token(tree, data):
    """Every row keeps a token, and no token is the one kept in every row (planted: the old
    strategy kept the same drawn token in all rows)."""
    policy = data.draw(tree_policies(tree, masked=True))
    live = np.isfinite(policy.z_prompt)
    assert live.any(axis=-1).all()
    assert not live.all(axis=(0, 1)).any()
    planted = live.copy()
    planted[..., 1] = True
    assert planted.all(axis=(0, 1)).any()


# --- exact distributions and values --------------------------------------------------------

@given(trees_and_policies(max_leaves=81))
def test_leaf_probs_match_path_products(case):
    tree, policy = case
    pi = policy.pi(tree)
    p = leaf_probs(tree, pi)
    assert np.allclose(p, brute_leaf_probs(tree, pi), rtol=0, atol=1e-12)
    assert np.allclose(p.sum(axis=1), 1.0, atol=TOL, rtol=0)
    with np.errstate(divide="ignore"):
        assert np.allclose(leaf_log_probs(tree, pi), np.log(p), atol=1e-9, rtol=0)
    d = reach_probs(tree, pi)
    # reach of the next level's prefixes, or of the leaves, is d(s) pi(a|s)
    for t in range(tree.depth):
        below = leaf_probs(tree, pi).reshape(tree.n_prompts, tree.n_vocab ** (t + 1), -1).sum(-1)
        assert np.allclose(d[:, tree.level(t)][..., None] * pi[:, tree.level(t)],
                           below.reshape(tree.n_prompts, -1, tree.n_vocab), atol=1e-12, rtol=0)


@given(trees_and_policies(rewards=st.sampled_from(["binary", "float"])))
def test_values_bellman_and_root(case):
    tree, policy = case
    pi = policy.pi(tree)
    values = evaluate(tree, pi)
    assert np.allclose(values.root, (leaf_probs(tree, pi) * tree.R).sum(axis=1), atol=TOL, rtol=0)
    assert np.allclose(values.root, expected_reward(tree, pi), atol=TOL, rtol=0)
    assert np.allclose(values.V, (pi * values.Q).sum(axis=-1), atol=TOL, rtol=0)
    star = optimal_q(tree)
    best = np.where(tree.answer_mask, tree.R, -np.inf).max(axis=1)
    assert np.allclose(star.root, best, atol=0, rtol=0)
    assert np.all(values.V <= star.V + TOL)


@given(tree_mdps())
def test_optimal_q_is_subtree_indicator_for_binary_rewards(tree):
    star = optimal_q(tree)
    for t in range(tree.depth):
        V = tree.n_vocab
        has = (tree.R.reshape(tree.n_prompts, V ** (t + 1), -1) > 0).any(axis=-1)
        live = ~tree.done[tree.level(t)]
        assert np.array_equal(star.Q[:, tree.level(t)][:, live],
                              has.reshape(tree.n_prompts, V**t, V)[:, live].astype(float))


def test_uniform_q_by_hand():
    R = np.array([1, 0, 0, 0, 1, 1, 0, 1], dtype=float)  # V = 2, D = 3
    Q = uniform_q(TreeMDP(R, n_vocab=2, depth=3)).Q[0]
    assert np.allclose(Q[0], [0.25, 0.75], rtol=0, atol=1e-15)
    assert np.allclose(Q[1:3], [[0.5, 0.0], [1.0, 0.5]], rtol=0, atol=1e-15)
    assert np.allclose(Q[3:7], R.reshape(4, 2), rtol=0, atol=1e-15)


# --- gradients ------------------------------------------------------------------------------

def central_differences(f, policy, h=1e-6):
    """Numeric gradient of f(policy) in every parameter, both parts."""
    out = {}
    for part in ("z_shared", "z_prompt"):
        arr = getattr(policy, part)
        g = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            if not np.isfinite(arr[idx]):
                continue
            plus, minus = policy.copy(), policy.copy()
            getattr(plus, part)[idx] += h
            getattr(minus, part)[idx] -= h
            g[idx] = (f(plus) - f(minus)) / (2 * h)
        out[part] = g
    return out


def passk_objective(tree, k=3):
    """F = mean_x [1 - (1 - p_x)^k]: a nonlinear answer-level objective, and dF/dpi."""
    def F(policy):
        p = (leaf_probs(tree, policy.pi(tree)) * tree.correct).sum(axis=1)
        return float(np.mean(1 - (1 - p) ** k))

    def dF_dpi(policy):
        p = (leaf_probs(tree, policy.pi(tree)) * tree.correct).sum(axis=1)
        return (k * (1 - p) ** (k - 1))[:, None] * tree.correct / tree.n_prompts

    return F, dF_dpi


def assert_gradient_matches(grad, numeric, atol=1e-7):
    for part in ("z_shared", "z_prompt"):
        got = getattr(grad, part)
        finite = np.isfinite(numeric[part])
        assert np.allclose(got[finite], numeric[part][finite], atol=atol, rtol=0), part


@settings(max_examples=12)
@given(trees_and_policies(max_leaves=27, n_prompts=st.integers(1, 2),
                          rewards=st.sampled_from(["binary", "float"])))
def test_expected_reward_gradient_matches_central_differences(case):
    tree, policy = case
    weights = np.linspace(0.5, 1.5, tree.n_prompts)
    f = lambda pol: float(weights @ expected_reward(tree, pol.pi(tree)))
    assert_gradient_matches(expected_reward_gradient(tree, policy, weights),
                            central_differences(f, policy))


@settings(max_examples=12)
@given(trees_and_policies(max_leaves=27, n_prompts=st.integers(1, 2)))
def test_generic_backward_matches_central_differences(case):
    tree, policy = case
    F, dF_dpi = passk_objective(tree)
    grad = objective_gradient(tree, policy, dF_dpi(policy))
    assert_gradient_matches(grad, central_differences(F, policy))
    W = leaf_probs(tree, policy.pi(tree)) * dF_dpi(policy)
    same = objective_gradient(tree, policy, dF_dlogpi=W)
    assert np.allclose(same.z_prompt, grad.z_prompt, atol=1e-14, rtol=0)


def test_planted_backward_error_is_caught():
    """A backward pass without the softmax's -pi(b|s) Wsum(s) term fails the numeric check."""
    tree = TreeMDP(np.arange(27) % 4 == 0, n_vocab=3, depth=3)
    policy = TreePolicy.random(tree, shared_scale=1.0, prompt_scale=0.5, c=0.7, seed=3)
    F, dF_dpi = passk_objective(tree)
    numeric = central_differences(F, policy)
    pi = policy.pi(tree)
    W = leaf_probs(tree, pi) * dF_dpi(policy)
    bad = np.empty_like(pi)
    below = W
    for t in reversed(range(tree.depth)):
        children = below.reshape(1, -1, 3)
        bad[:, tree.level(t)] = children  # planted: the baseline term is missing
        below = children.sum(axis=-1)
    with pytest.raises(AssertionError):
        assert_gradient_matches(policy.gradient(bad), numeric)
    assert_gradient_matches(objective_gradient(tree, policy, dF_dpi(policy)), numeric)


def test_backward_ignores_zero_probability_leaves_and_constants():
    tree = TreeMDP(np.array([0, 1, 1, 0, 0, 0, 1, 0], float), n_vocab=2, depth=3)
    z = np.zeros((1, 7, 2))
    z[0, 0, 1] = -np.inf  # token 1 at the root is masked: leaves 4..7 have probability 0
    policy = TreePolicy.tabular(z)
    G = np.ones((1, 8))
    G[0, 4:] = np.inf
    assert np.all(objective_gradient(tree, policy, G).z_prompt == 0)  # constant G: no gradient
    G[0, :4] = tree.R[0, :4]
    g = logit_gradient(tree, policy.pi(tree), G)
    assert np.all(g[0, 0] == 0) and np.all(g[0, [2, 5, 6]] == 0)  # masked subtree
    assert np.abs(g[0, [1, 3, 4]]).max() > 0.1
    G[0, 1] = np.nan
    with pytest.raises(ValueError, match=r"dF_dpi\[0, 1\]"):
        logit_gradient(tree, policy.pi(tree), G)
    with pytest.raises(ValueError, match="exactly one"):
        logit_gradient(tree, policy.pi(tree))


@given(trees_and_policies(max_leaves=64))
def test_score_gradient_expectation_is_exact_gradient(case):
    """Summing the per-sample estimator over every leaf, weighted by pi(y) w(y), gives the
    exact gradient of E[w] (the REINFORCE identity, exact)."""
    tree, policy = case
    pi = policy.pi(tree)
    p = leaf_probs(tree, pi)
    w = tree.R - 0.3
    answers = np.flatnonzero(tree.answer_mask)
    leaves = np.broadcast_to(answers, (tree.n_prompts, answers.size))
    weights = (p * w)[:, answers]
    got = score_gradient(tree, pi, leaves, weights)
    assert np.allclose(got, logit_gradient(tree, pi, w), atol=1e-12, rtol=0)


def path_reference(tree, leaves):
    """Nodes and tokens of each leaf's path by explicit prefix arithmetic, with the answer
    length (first EOS + 1, else D), one leaf at a time."""
    V, D = tree.n_vocab, tree.depth
    nodes = np.zeros(leaves.shape + (D,), dtype=int)
    tokens = np.zeros(leaves.shape + (D,), dtype=int)
    lengths = np.full(leaves.shape, D)
    for idx in np.ndindex(leaves.shape):
        seq = list(itertools.product(range(V), repeat=D))[leaves[idx]]
        prefix = 0
        for t, a in enumerate(seq):
            nodes[idx + (t,)] = sum(V**u for u in range(t)) + prefix
            tokens[idx + (t,)] = a
            prefix = prefix * V + a
        if tree.eos is not None and tree.eos in seq:
            lengths[idx] = seq.index(tree.eos) + 1
    return nodes, tokens, lengths


@settings(max_examples=15)
@given(trees_and_policies(max_leaves=81), st.integers(0, 2**32 - 1))
def test_token_log_probs_and_answer_lengths_match_references(case, seed):
    tree, policy = case
    pi = policy.pi(tree)
    leaves = sample_leaves(tree, pi, 6, seed=seed)
    nodes, tokens, lengths = path_reference(tree, leaves)
    x = np.arange(tree.n_prompts)[:, None, None]
    with np.errstate(divide="ignore"):
        expected = np.log(pi[x, nodes, tokens])
    got = token_log_probs(tree, pi, leaves)
    assert got.shape == leaves.shape + (tree.depth,)
    assert np.array_equal(got, expected)
    sums = got.sum(axis=-1)
    ref = np.take_along_axis(leaf_log_probs(tree, pi), leaves, axis=1)
    assert np.allclose(sums, ref, rtol=0, atol=1e-12)
    assert np.array_equal(answer_lengths(tree, leaves), lengths)
    after = np.arange(tree.depth) >= answer_lengths(tree, leaves)[..., None]
    assert np.all(got[after] == 0.0)  # forced tokens after EOS have probability 1


def test_answer_lengths_by_hand_and_errors():
    tree = TreeMDP(np.zeros(27), n_vocab=3, depth=3, eos=0)
    # tokens (1, 2, 1): no EOS; (2, 0, 0): EOS second; (0, 0, 0): EOS first; (1, 1, 0)
    leaves = tree.leaf_index(np.array([[[1, 2, 1], [2, 0, 0], [0, 0, 0], [1, 1, 0]]]))
    assert answer_lengths(tree, leaves).tolist() == [[3, 2, 1, 3]]
    with pytest.raises(ValueError, match=r"leaves\[0, 0\] = 1 is not an answer"):
        answer_lengths(tree, np.array([[1]]))  # tokens (0, 0, 1): a token after EOS
    with pytest.raises(ValueError, match=r"shape \(n_prompts, n\)"):
        token_log_probs(tree, uniform_policy(tree), np.array([0, 1]))
    fixed = TreeMDP(np.zeros(8), n_vocab=2, depth=3)
    assert answer_lengths(fixed, np.array([[0, 7]])).tolist() == [[3, 3]]


@settings(max_examples=10)
@given(trees_and_policies(max_leaves=27, n_prompts=st.integers(1, 2)), st.integers(0, 2**32 - 1))
def test_per_token_score_gradient_matches_central_differences(case, seed):
    """F = sum_{x,i,t} w[x,i,t] log pi(a_t|s_t) along fixed sampled answers: score_gradient
    with per-token weights equals F's central differences in every parameter."""
    tree, policy = case
    leaves = sample_leaves(tree, policy.pi(tree), 4, seed=seed)
    rng = np.random.default_rng(seed)
    w = rng.normal(size=leaves.shape + (tree.depth,))
    F = lambda pol: float((w * token_log_probs(tree, pol.pi(tree), leaves)).sum())
    grad = policy.gradient(score_gradient(tree, policy.pi(tree), leaves, w))
    assert_gradient_matches(grad, central_differences(F, policy))


def test_per_token_weights_reduce_to_per_sample_and_planted_error():
    tree = TreeMDP(np.zeros((2, 64)), n_vocab=4, depth=3, eos=3)
    pi = TreePolicy.random(tree, seed=5).pi(tree)
    leaves = sample_leaves(tree, pi, 50, seed=6)
    w = np.random.default_rng(7).normal(size=leaves.shape)
    per_sample = score_gradient(tree, pi, leaves, w)
    per_token = score_gradient(tree, pi, leaves, np.repeat(w[..., None], 3, axis=-1))
    assert np.allclose(per_token, per_sample, rtol=0, atol=1e-12)
    # per-token weights: only the token at depth t moves; a numpy reference, sample by sample
    wt = np.random.default_rng(8).normal(size=leaves.shape + (3,))
    nodes, tokens, _ = path_reference(tree, leaves)
    ref = np.zeros_like(pi)
    for x, i, t in np.ndindex(wt.shape):
        s, a = nodes[x, i, t], tokens[x, i, t]
        ref[x, s] += wt[x, i, t] * (np.eye(4)[a] - pi[x, s])
    assert np.allclose(score_gradient(tree, pi, leaves, wt), ref, rtol=0, atol=1e-12)
    # planted: per-token weights read in the wrong order (time reversed) are caught
    assert np.abs(score_gradient(tree, pi, leaves, wt[..., ::-1]) - ref).max() > 0.1
    with pytest.raises(ValueError, match=r"per-token \(2, 50, 3\)"):
        score_gradient(tree, pi, leaves, np.zeros((2, 50, 2)))


def test_gradient_zero_where_every_leaf_is_correct():
    """KL sheet test 9: at nodes whose whole subtree is correct, the no-KL gradient is 0."""
    R = np.zeros(64)
    R[:16] = 1.0  # the subtree under first token 0
    R[20] = 1.0
    tree = TreeMDP(R, n_vocab=4, depth=3)
    policy = TreePolicy.random(tree, seed=4)
    g = expected_reward_gradient(tree, policy).z_prompt[0]
    inside = [1, 5, 6, 7, 8]  # node "0" and its children
    assert np.abs(g[inside]).max() < 1e-16
    assert np.abs(g[0]).max() > 1e-3


# --- sampling -------------------------------------------------------------------------------

def test_kernel_matches_numpy_reference_bit_for_bit():
    tree = TreeMDP(np.zeros((3, 81)), n_vocab=3, depth=4)
    z = np.random.default_rng(0).normal(size=(3, 40, 3)) * 2
    z[1, :, 2] = -np.inf
    pi = TreePolicy.tabular(z).pi(tree)
    a = _sample_leaves_kernel(pi, tree.offsets, 500, np.random.default_rng(7))
    b = _sample_leaves_reference(pi, tree.offsets, 500, np.random.default_rng(7))
    assert np.array_equal(a, b)
    assert np.array_equal(sample_leaves(tree, pi, 500, seed=7), a)
    assert not np.any(tree.leaf_tokens(a[1]) == 2)  # masked token never drawn


def g_test_p_value(tree, pi, leaves, x):
    p = leaf_probs(tree, pi)[x]
    observed = np.bincount(leaves[x], minlength=tree.n_leaves)
    return g_test(observed, p * leaves.shape[1])[2]


def test_sampler_distribution_g_test_and_planted_bias():
    tree = TreeMDP(np.zeros((2, 64)), n_vocab=4, depth=3, eos=3)
    pi = TreePolicy.random(tree, prompt_scale=1.0, seed=11).pi(tree)
    n = 40_000
    leaves = sample_leaves(tree, pi, n, seed=12)
    assert tree.answer_mask[leaves].all()
    level = 1e-3 / 2  # Bonferroni over the two prompts
    assert min(g_test_p_value(tree, pi, leaves, x) for x in range(2)) > level
    # planted: a sampler that draws from the softmax at temperature 1.1 (a biased sampler)
    biased = pi ** (1 / 1.1)
    biased /= biased.sum(axis=-1, keepdims=True)
    bad = _sample_leaves_reference(biased, tree.offsets, n, np.random.default_rng(12))
    assert min(g_test_p_value(tree, pi, bad, x) for x in range(2)) < level


def test_sampler_seeds_and_errors():
    tree = TreeMDP(np.zeros(8), n_vocab=2, depth=3)
    pi = uniform_policy(tree)
    assert np.array_equal(sample_leaves(tree, pi, 10, seed=1), sample_leaves(tree, pi, 10, seed=1))
    assert sample_leaves(tree, pi, 0, seed=1).shape == (1, 0)
    with pytest.raises(ValueError, match="n = -1"):
        sample_leaves(tree, pi, -1)


def test_leaf_product_check_catches_planted_ordering():
    """Planted: outer products in the wrong order (token index most significant last)."""
    tree = TreeMDP(np.zeros(27), n_vocab=3, depth=3)
    pi = TreePolicy.random(tree, seed=2).pi(tree)
    level = np.ones((1, 1))
    for t in range(tree.depth):
        level = (pi[:, tree.level(t)] * level[:, :, None]).transpose(0, 2, 1).reshape(1, -1)
    assert np.abs(level - brute_leaf_probs(tree, pi)).max() > 1e-3
    assert np.abs(leaf_probs(tree, pi) - brute_leaf_probs(tree, pi)).max() < 1e-15
