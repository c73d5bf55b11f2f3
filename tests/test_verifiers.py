"""Noisy verifiers: channel means, exact expected gradients (forward = uncorrected), Monte Carlo, GRPO trap, appeals."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from proofs_check.stats import clopper_pearson
from tabular.rlvr import verifiers as ver
from tabular.strategies import tree_mdps, tree_policies
from tabular.tree import TreeMDP, TreePolicy, expected_reward_gradient, leaf_probs, score_gradient

GRID = [(r0, r1) for r0 in np.linspace(0, 0.45, 10) for r1 in np.linspace(0, 0.5, 10)]


def _channel_mean(weight_of, R, rho0, rho1):
    """E[weight(R~) | R] by enumerating R~ in {0, 1}."""
    p1 = rho0 if R == 0 else 1 - rho1
    return p1 * weight_of(1.0) + (1 - p1) * weight_of(0.0)


def test_channel_means_on_a_grid():
    for rho0, rho1 in GRID:
        for R in (0.0, 1.0):
            back = _channel_mean(lambda x, r0=rho0, r1=rho1: float(ver.backward_correction(x, r0, r1)),
                                 R, rho0, rho1)
            fwd = _channel_mean(lambda x, r1=rho1: float(ver.forward_weights(x, r1)), R, rho0, rho1)
            assert back == pytest.approx(R, rel=0, abs=1e-12)
            assert fwd == pytest.approx(0.0 if R == 1 else -(1 - rho0 - rho1), rel=0, abs=1e-12)
            for method, value in (("backward", back), ("forward", fwd)):
                assert float(ver.expected_weight(R, rho0, rho1, method)) == pytest.approx(value, rel=0, abs=1e-12)


def _exact_estimator_mean(tree, pi, weight_of, rho0, rho1):
    """sum over leaves and channel outcomes of pi(y) P(R~|R(y)) w(R~) grad log pi(y), for
    one-table policies: score_gradient over all leaves with those weights."""
    answers = np.flatnonzero(tree.answer_mask)  # with EOS, padded leaves only
    leaves = np.tile(answers, (tree.n_prompts, 1))
    p = leaf_probs(tree, pi)[:, answers]
    r0 = np.broadcast_to(np.asarray(rho0, float).reshape(-1, 1), p.shape)
    r1 = np.broadcast_to(np.asarray(rho1, float).reshape(-1, 1), p.shape)
    p1 = np.where(tree.R[:, answers] == 1, 1 - r1, r0)
    w = p1 * weight_of(1.0, r0, r1) + (1 - p1) * weight_of(0.0, r0, r1)
    return score_gradient(tree, pi, leaves, p * w / tree.n_prompts)


WEIGHTS = {
    "none": lambda x, r0, r1: np.full_like(r0, x),
    "backward": lambda x, r0, r1: (x - r0) / (1 - r0 - r1),
    "forward": lambda x, r0, r1: x - (1 - r1),
}


@given(tree_mdps(rewards="binary", max_leaves=64), st.data())
def test_expected_gradients_exact(tree, data):
    policy = data.draw(tree_policies(tree, shared=False))
    pi = policy.pi(tree)
    rho0, rho1 = data.draw(st.sampled_from(GRID))
    clean = expected_reward_gradient(tree, policy).z_prompt
    scale = 1 - rho0 - rho1
    means = {m: _exact_estimator_mean(tree, pi, f, rho0, rho1) for m, f in WEIGHTS.items()}
    assert np.allclose(means["backward"], clean, rtol=0, atol=1e-12)
    assert np.allclose(means["none"], scale * clean, rtol=0, atol=1e-12)
    assert np.allclose(means["forward"], scale * clean, rtol=0, atol=1e-12)
    # the module's tree-level expected gradients agree
    for method, target in (("backward", clean), ("none", scale * clean), ("forward", scale * clean)):
        got = ver.tree_expected_gradient(tree, policy, rho0, rho1, method).z_prompt
        assert np.allclose(got, target, rtol=0, atol=1e-12)
    # forward = uncorrected whatever rho1 is plugged in
    wrong_rho1 = ver.tree_expected_gradient(tree, policy, rho0, rho1, "forward", rho1_used=0.37)
    assert np.allclose(wrong_rho1.z_prompt, scale * clean, rtol=0, atol=1e-12)


def test_forward_weights_on_the_wrong_side_are_caught():
    """Planted error: w = rho1 at R~ = 0 and rho1 - 1 at R~ = 1 flips the expected gradient."""
    tree = TreeMDP(np.array([[1, 0, 0, 1, 0, 0, 0, 0, 1]], float), n_vocab=3, depth=2)
    policy = TreePolicy.random(tree, seed=2)
    clean = expected_reward_gradient(tree, policy).z_prompt
    def swapped(x, r0, r1):
        return np.where(x == 1.0, r1 - 1, r1) + 0 * r0

    got = _exact_estimator_mean(tree, policy.pi(tree), swapped, 0.1, 0.3)
    assert not np.allclose(got, 0.6 * clean, rtol=0, atol=1e-6)
    assert np.allclose(got, -0.6 * clean, rtol=0, atol=1e-12)  # the sign flips


def test_heterogeneous_rates_bias_uncorrected_and_forward_only():
    rng = np.random.default_rng(0)
    tree = TreeMDP(rng.random((4, 27)) < 0.3, n_vocab=3, depth=3)
    policy = TreePolicy.random(tree, shared_scale=1.0, prompt_scale=0.5, c=1.0, seed=1)
    rho0 = np.array([0.05, 0.05, 0.05, 0.05])
    rho1 = np.array([0.5, 0.05, 0.5, 0.05])
    clean = expected_reward_gradient(tree, policy).z_shared.ravel()

    def cos(g):
        g = g.z_shared.ravel()
        return g @ clean / np.linalg.norm(g) / np.linalg.norm(clean)

    assert cos(ver.tree_expected_gradient(tree, policy, rho0, rho1, "backward")) == pytest.approx(1.0, rel=0, abs=1e-12)
    assert cos(ver.tree_expected_gradient(tree, policy, rho0, rho1, "none")) < 1 - 1e-6
    assert cos(ver.tree_expected_gradient(tree, policy, rho0, rho1, "forward")) < 1 - 1e-6


def test_forward_equals_uncorrected_under_per_prompt_rates():
    """The audit's claim with per-prompt channel rates and a per-prompt (wrong) rho1_used:
    E[g_F] = E[g_N] exactly (the forward weight is R~ minus a per-prompt constant), both from
    the module and from the enumeration over leaves and channel outcomes; neither is then
    parallel to the clean gradient, while the backward surrogate stays unbiased."""
    rng = np.random.default_rng(4)
    tree = TreeMDP(rng.random((3, 27)) < 0.3, n_vocab=3, depth=3)
    policy = TreePolicy.random(tree, seed=6)
    pi = policy.pi(tree)
    rho0 = np.array([0.05, 0.2, 0.1])
    rho1 = np.array([0.5, 0.05, 0.3])
    rho1_used = np.array([0.1, 0.4, 0.25])
    forward = ver.tree_expected_gradient(tree, policy, rho0, rho1, "forward", rho1_used=rho1_used)
    none = ver.tree_expected_gradient(tree, policy, rho0, rho1, "none")
    for part in ("z_shared", "z_prompt"):
        assert np.allclose(getattr(forward, part), getattr(none, part), rtol=0, atol=1e-12)

    def forward_used(x, r0, r1):
        return x - (1 - rho1_used[:, None]) + 0 * r0

    enumerated = {m: _exact_estimator_mean(tree, pi, f, rho0, rho1)
                  for m, f in (("forward", forward_used), ("none", WEIGHTS["none"]),
                               ("backward", WEIGHTS["backward"]))}
    assert np.allclose(enumerated["forward"], enumerated["none"], rtol=0, atol=1e-12)
    assert np.allclose(forward.z_prompt, enumerated["forward"], rtol=0, atol=1e-12)
    clean = expected_reward_gradient(tree, policy).z_prompt
    assert np.allclose(enumerated["backward"], clean, rtol=0, atol=1e-12)
    # per-prompt scaling: prompt x's part is (1 - rho0_x - rho1_x) times its clean part
    scale = (1 - rho0 - rho1)[:, None, None]
    assert np.allclose(none.z_prompt, scale * clean, rtol=0, atol=1e-12)


def test_per_prompt_equality_check_catches_a_leaf_dependent_offset():
    """Planted error: a forward weight whose offset depends on the leaf (not only on the
    prompt) is no longer a baseline, and the equality check fails."""
    rng = np.random.default_rng(4)
    tree = TreeMDP(rng.random((3, 27)) < 0.3, n_vocab=3, depth=3)
    pi = TreePolicy.random(tree, seed=6).pi(tree)
    rho0, rho1 = np.array([0.05, 0.2, 0.1]), np.array([0.5, 0.05, 0.3])
    offsets = rng.uniform(0.5, 0.9, (3, 27))

    def leafwise(x, r0, r1):
        return x - offsets + 0 * r0

    got = _exact_estimator_mean(tree, pi, leafwise, rho0, rho1)
    none = _exact_estimator_mean(tree, pi, WEIGHTS["none"], rho0, rho1)
    assert not np.allclose(got, none, rtol=0, atol=1e-6)


def _monte_carlo(weights_of, rho0, rho1, seed, n_batches=100, batch=500):
    rng = np.random.default_rng(seed)
    pi = np.array([0.05, 0.15, 0.3, 0.1, 0.4])
    R = np.array([1.0, 0.0, 1.0, 0.0, 0.0])
    means = []
    for _ in range(n_batches):
        answers = rng.choice(pi.size, size=batch, p=pi)
        R_tilde = ver.sample_verifier(R[answers], rho0, rho1, seed=rng)
        means.append(ver.sampled_answer_gradient(pi, answers, weights_of(R_tilde)))
    means = np.array(means)
    return pi, R, means.mean(axis=0), means.std(axis=0, ddof=1) / np.sqrt(n_batches)


@pytest.mark.parametrize("method", ["none", "backward", "forward"])
def test_monte_carlo_means_match_exact(method):
    rho0, rho1 = 0.1, 0.3
    f = {"none": lambda x: x, "backward": lambda x: ver.backward_correction(x, rho0, rho1),
         "forward": lambda x: ver.forward_weights(x, rho1)}[method]
    pi, R, mean, se = _monte_carlo(f, rho0, rho1, seed=5)
    exact = ver.expected_answer_gradient(pi, ver.expected_weight(R, rho0, rho1, method))
    assert np.all(np.abs(mean - exact) <= 5 * se + 5e-4)


def test_monte_carlo_check_catches_an_uncorrected_reward():
    """Planted error: the observed reward taken as unbiased for the clean gradient.

    (Swapping rho0 and rho1 inside the backward correction would NOT be caught, rightly:
    it shifts the surrogate by a constant, which leaves the expected gradient unchanged.)"""
    rho0, rho1 = 0.1, 0.3
    pi, R, mean, se = _monte_carlo(lambda x: x, rho0, rho1, seed=5)
    exact = ver.expected_answer_gradient(pi, R)
    assert not np.all(np.abs(mean - exact) <= 5 * se + 5e-4)
    # swapped rates: E[(R~ - rho1)/(1 - rho0 - rho1) | R] = R + (rho0 - rho1)/(1 - rho0 - rho1)
    swapped_mean = R + (rho0 - rho1) / (1 - rho0 - rho1)
    assert np.allclose(ver.expected_answer_gradient(pi, swapped_mean), exact, rtol=0, atol=1e-15)


def test_grpo_zscore_trap():
    rng = np.random.default_rng(3)
    R_tilde = (rng.random((50, 8)) < 0.4).astype(float)
    for rho0, rho1 in GRID[::7]:
        R_hat = ver.backward_correction(R_tilde, rho0, rho1)
        z_hat = ver.group_advantages(R_hat)
        z_obs = ver.group_advantages(R_tilde)
        assert np.allclose(z_hat, z_obs, rtol=0, atol=1e-12)
        m_hat = ver.group_advantages(R_hat, normalize="mean")
        m_obs = ver.group_advantages(R_tilde, normalize="mean")
        assert np.allclose(m_hat, m_obs / (1 - rho0 - rho1), rtol=0, atol=1e-12)
        w = ver.forward_weights(R_tilde, rho1)
        assert np.allclose(w - w.mean(axis=1, keepdims=True), m_obs, rtol=0, atol=1e-12)
    # a group with no spread gets advantage 0
    assert np.all(ver.group_advantages(np.ones((1, 4))) == 0)


def test_appeals_estimator_covers_the_truth():
    rng = np.random.default_rng(8)
    rho1, covered, trials = 0.3, 0, 200
    for _ in range(trials):
        R = (rng.random(400) < 0.5).astype(float)
        R_tilde = ver.sample_verifier(R, 0.0, rho1, seed=rng)
        overturned = (R_tilde == 0) & (R == 1)  # perfect second verifier
        est = ver.appeal_fn_rate(R_tilde, overturned)
        n_pos = int(R.sum())
        lo, hi = clopper_pearson(round(est * n_pos), n_pos, 0.01)
        covered += lo <= rho1 <= hi
    assert covered >= 0.95 * trials


def test_bad_input():
    with pytest.raises(ValueError, match="rho0 \\+ rho1"):
        ver.backward_correction(1.0, 0.5, 0.5)
    with pytest.raises(ValueError, match="binary"):
        ver.positive_rate(0.5, 0.1, 0.1)
    with pytest.raises(ValueError, match="method"):
        ver.expected_weight(1.0, 0.1, 0.1, "both")
    with pytest.raises(ValueError, match="only negatives"):
        ver.appeal_fn_rate([1.0, 0.0], [True, False])
    with pytest.raises(ValueError, match="answers is empty"):
        ver.sampled_answer_gradient([0.5, 0.5], np.array([], dtype=int), [])
    with pytest.raises(ValueError, match="eps = nan"):
        ver.group_advantages([[1.0, 0.0]], eps=np.nan)
    with pytest.raises(TypeError, match="eps must be a real number"):
        ver.group_advantages([[1.0, 0.0]], eps="a")
    with pytest.raises(ValueError, match="^rho0 = nan is not finite"):
        ver.positive_rate(1.0, np.nan, 0.1)
