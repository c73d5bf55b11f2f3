"""PSR/NSR: the decomposition, grad L_NSR = grad L_PSR exactly, unbiased sampled estimators, per-token changes."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabular.rlvr import psr_nsr
from tabular.strategies import tree_mdps, tree_policies
from tabular.tree import TreeMDP, TreePolicy, leaf_probs, sample_leaves, score_gradient


@st.composite
def answer_problems(draw):
    """A softmax over n answers (logits), with a correct set that may be empty or full."""
    n = draw(st.integers(2, 8))
    z = np.array(draw(st.lists(st.floats(-4, 4), min_size=n, max_size=n)))
    correct = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    return z, correct


def _softmax(z):
    w = np.exp(z - z.max())
    return w / w.sum()


def _central_difference(f, z, h=1e-6):
    g = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        e = np.zeros_like(z)
        e[i] = h
        g[i] = (f(z + e) - f(z - e)) / (2 * h)
    return g


@given(answer_problems())
def test_decomposition_and_gradient_identity_at_answer_level(problem):
    z, correct = problem
    pi = _softmax(z)
    r = np.where(correct, 1.0, -1.0)
    L = {k: float(psr_nsr.loss(pi, correct, k)) for k in ("psr", "nsr", "rlvr")}
    assert L["rlvr"] == pytest.approx(-(pi @ r), rel=0, abs=1e-12)
    assert L["rlvr"] == pytest.approx(L["psr"] + L["nsr"], rel=0, abs=1e-12)
    g_psr = psr_nsr.answer_gradient(pi, correct, "psr")
    g_nsr = psr_nsr.answer_gradient(pi, correct, "nsr")
    assert np.allclose(g_psr, g_nsr, rtol=0, atol=1e-12)
    assert np.allclose(psr_nsr.answer_gradient(pi, correct, "w", lam=0.1), 1.1 * g_psr, rtol=0, atol=1e-12)
    # against central differences of the losses themselves
    num = _central_difference(lambda v: -_softmax(v)[correct].sum(), z)
    assert np.allclose(g_psr, num, rtol=0, atol=1e-8)
    num_nsr = _central_difference(lambda v: _softmax(v)[~correct].sum(), z)
    assert np.allclose(num_nsr, num, rtol=0, atol=1e-8)


@given(tree_mdps(rewards="binary", max_leaves=64), st.data())
def test_tree_gradients_identity_and_central_differences(tree, data):
    policy = data.draw(tree_policies(tree, shared=True))
    g = {k: psr_nsr.tree_gradient(tree, policy, k) for k in ("psr", "nsr", "w")}
    assert np.allclose(g["psr"].z_shared, g["nsr"].z_shared, rtol=0, atol=1e-12)
    assert np.allclose(g["psr"].z_prompt, g["nsr"].z_prompt, rtol=0, atol=1e-12)
    assert np.allclose(g["w"].z_shared, 1.1 * g["psr"].z_shared, rtol=0, atol=1e-12)

    def mean_nsr(z_shared):
        p = leaf_probs(tree, TreePolicy(z_shared, policy.z_prompt, policy.c).pi(tree))
        return float(np.mean(np.where(tree.correct, 0.0, p).sum(axis=1)))

    num = _central_difference(mean_nsr, policy.z_shared)
    assert np.allclose(g["nsr"].z_shared, num, rtol=0, atol=1e-7)


def test_central_difference_check_catches_a_dropped_baseline_term():
    """Planted error: grad_z pi_C computed as pi * 1_C (the '- pi <pi, 1_C>' term dropped)."""
    z = np.array([0.3, -1.0, 0.8, 0.1])
    correct = np.array([True, False, True, False])
    pi = _softmax(z)
    wrong = -(pi * correct)
    num = _central_difference(lambda v: -_softmax(v)[correct].sum(), z)
    assert not np.allclose(wrong, num, rtol=0, atol=1e-6)


def _batch_means(tree, pi, weights_of, n_batches, batch, seed):
    rng = np.random.default_rng(seed)
    means = []
    for _ in range(n_batches):
        leaves = sample_leaves(tree, pi, batch, seed=rng)
        correct = np.take_along_axis(tree.correct, leaves, axis=1)
        means.append(score_gradient(tree, pi, leaves, weights_of(correct) / batch))
    return np.array(means)


def _sampled_vs_exact(weights_of, objective, seed=3):
    rng = np.random.default_rng(11)
    V, D = 3, 3
    R = rng.random((2, V**D)) < 0.25
    tree = TreeMDP(R, n_vocab=V, depth=D)
    policy = TreePolicy.random(tree, seed=5, prompt_scale=1.0)
    pi = policy.pi(tree)
    exact = psr_nsr.tree_gradient(tree, policy, objective, weights=np.ones(2))
    # effective-logit gradient: per-prompt table (c = 1) so z_prompt's gradient is dz itself
    means = _batch_means(tree, pi, weights_of, 200, 100, seed)
    mean = means.mean(axis=0)
    se = means.std(axis=0, ddof=1) / np.sqrt(means.shape[0])
    return np.abs(mean - exact.z_prompt) <= 5 * se + 5e-4


@pytest.mark.parametrize("objective", ["psr", "nsr"])
def test_sampled_estimators_are_unbiased(objective):
    ok = _sampled_vs_exact(lambda c: psr_nsr.sample_weights(c, objective), objective)
    assert ok.all()


def test_unbiasedness_check_catches_swapped_sample_sets():
    """Planted error: the NSR estimator weighting the correct samples instead of the wrong ones."""
    ok = _sampled_vs_exact(lambda c: psr_nsr.sample_weights(~c, "nsr"), "nsr")
    assert not ok.all()


def test_no_signal_groups_give_exactly_zero():
    all_correct = np.ones(8, bool)
    assert np.all(psr_nsr.sample_weights(all_correct, "nsr") == 0)
    assert np.all(psr_nsr.sample_weights(~all_correct, "psr") == 0)
    w = psr_nsr.sample_weights(np.array([True, False]), "w", lam=0.1)
    assert w.tolist() == [-0.1, 1.0]


def test_token_formulas_equal_the_softmax_jacobian():
    rng = np.random.default_rng(0)
    for _ in range(1500):
        V = int(rng.integers(2, 10))
        p = rng.dirichlet(np.ones(V) * rng.uniform(0.1, 2))
        k, c = int(rng.integers(V)), rng.uniform(0, 2)
        J = np.diag(p) - np.outer(p, p)
        e = np.eye(V)[k]
        nsr = psr_nsr.token_change(p, k, c, "nsr")
        assert np.allclose(nsr, J @ (-c * (e - p)), rtol=0, atol=1e-12)
        assert np.allclose(psr_nsr.token_change(p, k, c, "psr"), J @ (c * (e - p)), rtol=0, atol=1e-12)
        assert nsr[k] <= 1e-15


def test_nsr_never_raises_the_sampled_token_10k_softmaxes():
    # dp_k = -c p_k (1 - 2 p_k + |p|^2) from J dz, vectorised; 1 - 2p_k + |p|^2 >= (1 - p_k)^2
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(6) * 0.3, size=10_000)
    k = rng.integers(6, size=10_000)
    e = np.eye(6)[k]
    dz = -(e - p)
    Jdz = p * (dz - (p * dz).sum(axis=1, keepdims=True))
    assert np.all(Jdz[np.arange(10_000), k] <= 1e-15)


def test_tiny_token_loses_mass_under_nsr():
    dp = psr_nsr.token_change(np.array([0.9, 0.05, 0.05]), 1, 1.0, "nsr")
    assert dp[1] < 0 and dp[2] < 0 and dp[0] > 0


@pytest.mark.parametrize("objective,sign", [("psr", 1.0), ("nsr", -1.0)])
def test_log_change_rate_of_an_unsampled_token(objective, sign):
    """d log p_v / dc at c = 0 equals the formula, against a central difference in c."""
    rng = np.random.default_rng(4)
    for _ in range(50):
        V = 5
        z = rng.normal(0, 1.5, V)
        p = _softmax(z)
        k = int(rng.integers(V))
        e = np.eye(V)[k]
        rate = psr_nsr.token_change(p, k, 1.0, objective) / p
        formula = sign * ((np.arange(V) == k) - p - p[k] + p @ p)
        h = 1e-5
        num = (np.log(_softmax(z + sign * h * (e - p))) - np.log(_softmax(z - sign * h * (e - p)))) / (2 * h)
        assert np.allclose(rate, formula, rtol=1e-12, atol=1e-14)
        assert np.allclose(rate, num, rtol=1e-6, atol=1e-9)


def test_bad_input():
    with pytest.raises(ValueError, match="objective"):
        psr_nsr.loss_dpi(np.array([True]), "grpo")
    with pytest.raises(ValueError, match="k = 3"):
        psr_nsr.token_change([0.5, 0.5], 3, 1.0, "nsr")
    with pytest.raises(ValueError, match="binary"):
        tree = TreeMDP(np.array([[0.5, 0.0]]), n_vocab=2, depth=1)
        psr_nsr.tree_gradient(tree, TreePolicy.uniform(tree), "psr")
    with pytest.raises(TypeError):
        psr_nsr.loss_dpi(np.array([1, 0]), "psr")
    with pytest.raises(ValueError, match=r"is_correct\[0\] = 2 is not a mask value"):
        psr_nsr.sample_weights([2, 0], "psr")
    with pytest.raises(TypeError, match="is_correct must be a bool mask"):
        psr_nsr.sample_weights([0.5, 0.0], "psr")
    assert psr_nsr.sample_weights([1, 0], "nsr").tolist() == [0.0, 1.0]
