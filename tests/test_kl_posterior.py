"""The KL-regularised optimum as a posterior (Korbak et al. 2022) on tree MDPs: VI identity,
frontier, factorisation, binary corollaries, limits, chain rule, soft policy iteration and
exact gradient ascent; each check catches a planted error (the exp(beta r) convention)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tabular.rlvr.kl import (
    binary_posterior_accuracy, binary_posterior_kl, kl_objective, kl_objective_gradient,
    posterior_leaf_probs, posterior_policy, sequence_kl, soft_policy_iteration, soft_value,
    token_kl,
)
from tabular.strategies import tree_mdps, tree_policies
from tabular.tree import TreeMDP, TreePolicy, expected_reward, leaf_probs

BETAS = st.sampled_from([0.05, 0.1, 0.3, 1.0, 3.0])


@st.composite
def instances(draw, rewards=st.sampled_from(["binary", "float"]), masked=False):
    tree = draw(tree_mdps(rewards=rewards))
    pi0 = draw(tree_policies(tree, scale=st.floats(0.0, 2.0), masked=masked)).pi(tree)
    pi = draw(tree_policies(tree, masked=masked)).pi(tree)
    return tree, pi0, pi, draw(BETAS)


def kl_direct(p, q):
    """sum p log(p/q) over the support of p, straight from leaf probabilities."""
    mask = p > 0
    with np.errstate(divide="ignore"):  # +inf where q = 0 < p
        return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


@given(instances())
def test_vi_identity_and_frontier(case):
    """Tests 1-2: J_KL(pi) = -beta KL(pi || pi*) + beta log Z <= beta log Z, equal at pi*."""
    tree, pi0, pi, beta = case
    post, log_Z = posterior_leaf_probs(tree, pi0, beta)
    p = leaf_probs(tree, pi)
    for x in range(tree.n_prompts):
        J = float(p[x] @ tree.R[x]) - beta * kl_direct(p[x], leaf_probs(tree, pi0)[x])
        assert abs(J - (-beta * kl_direct(p[x], post[x]) + beta * log_Z[x])) < 1e-12 * max(1, abs(J))
    J = kl_objective(tree, pi, pi0, beta)
    assert np.all(J <= beta * log_Z + 1e-12)
    pi_star, _ = posterior_policy(tree, pi0, beta)
    assert np.allclose(kl_objective(tree, pi_star, pi0, beta), beta * log_Z, rtol=0, atol=1e-12)


@given(instances())
def test_factorisation_and_soft_value(case):
    """Test 3: prod_t pi*(a_t|s) equals pi0 e^{r/beta} / Z on every leaf (1e-12), rows sum to
    1, log Z(root) agrees, and V_soft^{pi*} = beta log Z at every node."""
    tree, pi0, _, beta = case
    post, log_Z = posterior_leaf_probs(tree, pi0, beta)
    pi_star, log_Z_nodes = posterior_policy(tree, pi0, beta)
    assert np.abs(leaf_probs(tree, pi_star) - post).max() < 1e-12
    assert np.allclose(pi_star.sum(axis=-1), 1.0, atol=1e-12, rtol=0)
    assert np.allclose(log_Z_nodes[:, 0], log_Z, atol=1e-12, rtol=0)
    p0 = leaf_probs(tree, pi0)
    assert np.allclose(post, p0 * np.exp(tree.R / beta) / np.exp(log_Z)[:, None],
                       atol=1e-12, rtol=0)
    live = ~tree.done
    assert np.allclose(soft_value(tree, pi_star, pi0, beta).V[:, live],
                       beta * log_Z_nodes[:, live], atol=1e-10, rtol=0)


def test_factorisation_catches_exp_beta_r():
    """Planted: the recursion run with the exp(beta r) convention (beta -> 1/beta)."""
    rng = np.random.default_rng(2)
    tree = TreeMDP(rng.random((2, 64)) < 0.1, n_vocab=4, depth=3)
    pi0 = TreePolicy.random(tree, seed=3).pi(tree)
    post, _ = posterior_leaf_probs(tree, pi0, 0.3)
    planted, _ = posterior_policy(tree, pi0, 1 / 0.3)
    assert np.abs(leaf_probs(tree, planted) - post).max() > 1e-3


@given(instances(rewards=st.just("binary")))
def test_binary_reward_corollaries(case):
    """Test 4: p*, logit(p*) = logit(p) + 1/beta, class proportions kept, KL(pi*||pi0)."""
    tree, pi0, _, beta = case
    p0 = leaf_probs(tree, pi0)
    post, _ = posterior_leaf_probs(tree, pi0, beta)
    C = tree.correct
    p = np.clip((p0 * C).sum(axis=1), 0.0, 1.0)  # a sum of leaf probabilities may round past 1
    p_star = (post * C).sum(axis=1)
    closed = p * np.exp(1 / beta) / (1 - p + p * np.exp(1 / beta))
    assert np.allclose(p_star, closed, atol=1e-12, rtol=0)
    assert np.allclose(binary_posterior_accuracy(p, beta), closed, atol=1e-12, rtol=0)
    # log-odds from the two class masses, each summed directly (1 - p* would cancel near 1)
    wrong = ~C & tree.answer_mask
    both = ((p0 * C).sum(axis=1) > 0) & ((p0 * wrong).sum(axis=1) > 0)
    log_odds = lambda q: np.log((q * C).sum(axis=1)[both]) - np.log((q * wrong).sum(axis=1)[both])
    assert np.allclose(log_odds(post), log_odds(p0) + 1 / beta, atol=1e-9, rtol=0)
    for x in range(tree.n_prompts):
        for cls in (C[x], ~C[x] & tree.answer_mask):
            if p0[x, cls].sum() > 1e-12:
                assert np.allclose(post[x, cls] / post[x, cls].sum(),
                                   p0[x, cls] / p0[x, cls].sum(), atol=1e-12, rtol=0)
    kl_closed = p_star / beta - np.log(1 - p + p * np.exp(1 / beta))
    assert np.allclose(sequence_kl(tree, posterior_policy(tree, pi0, beta)[0], pi0), kl_closed,
                       atol=1e-10, rtol=0)
    assert np.allclose(binary_posterior_kl(p, beta), kl_closed, atol=1e-10, rtol=0)


def test_binary_corollary_catches_planted_convention():
    p, beta = 0.2, 0.3
    planted = p * np.exp(beta) / (1 - p + p * np.exp(beta))  # exp(beta r)
    assert abs(planted - binary_posterior_accuracy(p, beta)) > 0.1


def test_limits():
    """Test 5: beta -> inf gives pi0; beta -> 0 conditions on C (binary); a graded reward with
    a unique maximiser (gap >= 0.03) gives a Dirac within 1e-6 at beta = 1e-3."""
    rng = np.random.default_rng(4)
    tree = TreeMDP(rng.random((2, 64)) < 0.2, n_vocab=4, depth=3)
    pi0 = TreePolicy.random(tree, seed=5).pi(tree)
    p0 = leaf_probs(tree, pi0)
    assert np.abs(posterior_leaf_probs(tree, pi0, 1e6)[0] - p0).max() < 1e-6
    cond = p0 * tree.correct / (p0 * tree.correct).sum(axis=1, keepdims=True)
    assert np.abs(posterior_leaf_probs(tree, pi0, 1e-3)[0] - cond).max() < 1e-6
    R = np.linspace(0.0, 0.9, 16)
    R[7] = 0.93 + 0.04  # unique maximum, runner-up gap 0.07 >= 0.03
    graded = TreeMDP(R, n_vocab=4, depth=2)
    pi0 = TreePolicy.random(graded, seed=6).pi(graded)
    assert np.abs(posterior_leaf_probs(graded, pi0, 1e-3)[0][0] - np.eye(16)[7]).max() < 1e-6


@given(instances(masked=st.booleans()))
def test_chain_rule(case):
    """Test 6: KL(pi || pi0) = sum_s d_pi(s) KL(pi(.|s) || pi0(.|s)), 1e-12; with masked
    logits the KL may be +inf, and then both forms are (never NaN)."""
    tree, pi0, pi, _ = case
    seq = sequence_kl(tree, pi, pi0)
    assert not np.isnan(token_kl(tree, pi, pi0)).any()
    assert np.allclose(token_kl(tree, pi, pi0), seq, rtol=0, atol=1e-12)
    for x in range(tree.n_prompts):
        assert seq[x] == pytest.approx(kl_direct(leaf_probs(tree, pi)[x], leaf_probs(tree, pi0)[x]),
                                       rel=0, abs=1e-12)


@settings(max_examples=15)
@given(instances())
def test_soft_policy_iteration_reaches_posterior_in_depth_sweeps(case):
    """Test 7: soft policy iteration reaches KL(pi || pi*) < 1e-12 after D sweeps."""
    tree, pi0, pi, beta = case
    result = soft_policy_iteration(tree, pi0, beta, pi_init=pi)
    assert result.kl.shape == (tree.depth + 1, tree.n_prompts)
    assert np.all(result.kl[-1] < 1e-12)
    _, log_Z = posterior_leaf_probs(tree, pi0, beta)
    assert np.allclose(result.J[-1], beta * log_Z, atol=1e-12, rtol=0)


def test_soft_policy_iteration_catches_planted_convention_and_needs_depth_sweeps():
    rng = np.random.default_rng(8)
    tree = TreeMDP(rng.random((2, 256)) < 0.05, n_vocab=4, depth=4)
    pi0 = TreePolicy.random(tree, seed=9).pi(tree)
    uniform = np.full((tree.n_nodes, 4), 0.25)
    kl = soft_policy_iteration(tree, pi0, 0.3, pi_init=uniform).kl
    assert np.all(kl[-2] > 1e-9) and np.all(kl[-1] < 1e-12)  # D - 1 sweeps are not enough
    planted = soft_policy_iteration(tree, pi0, 1 / 0.3)  # the exp(beta r) convention
    post, _ = posterior_leaf_probs(tree, pi0, 0.3)
    p = leaf_probs(tree, planted.pi)
    assert max(kl_direct(p[x], post[x]) for x in range(2)) > 1e-3


@settings(max_examples=10)
@given(instances(), st.booleans())
def test_kl_objective_gradient_matches_central_differences(case, shared):
    tree, pi0, _, beta = case
    if tree.n_leaves > 64:
        tree = TreeMDP(np.arange(16) % 3 == 0, n_vocab=2, depth=4)
        pi0 = TreePolicy.random(tree, seed=1).pi(tree)
    policy = TreePolicy.random(tree, shared_scale=float(shared), prompt_scale=1.0,
                               c=0.6 if shared else 1.0, seed=2)
    grad = kl_objective_gradient(tree, policy, pi0, beta)
    f = lambda pol: float(kl_objective(tree, pol.pi(tree), pi0, beta).mean())
    h = 1e-6
    for part in ("z_shared", "z_prompt"):
        arr = getattr(policy, part)
        for idx in list(np.ndindex(arr.shape))[:: max(1, arr.size // 40)]:
            plus, minus = policy.copy(), policy.copy()
            getattr(plus, part)[idx] += h
            getattr(minus, part)[idx] -= h
            numeric = (f(plus) - f(minus)) / (2 * h)
            assert getattr(grad, part)[idx] == pytest.approx(numeric, abs=1e-7, rel=0)


def test_exact_gradient_ascent_raises_objective_below_the_frontier():
    """Test 7 (second part), the sheet's setting: per-prompt tables, lr 1, each prompt's own
    J_KL (weights 1). J_KL(x) never decreases, J >= J_prev - 1e-12, and stays below
    beta log Z(x); the KL to pi* is reported by the figure, not asserted."""
    rng = np.random.default_rng(10)
    tree = TreeMDP(rng.random((4, 256)) < 0.05, n_vocab=4, depth=4)
    base = TreePolicy.random(tree, seed=11)
    assert base.parts == ("z_prompt",)
    pi0 = base.pi(tree)
    ones = np.ones(tree.n_prompts)
    for beta in (0.1, 1.0):
        _, log_Z = posterior_leaf_probs(tree, pi0, beta)
        policy = base.copy()
        J = [kl_objective(tree, policy.pi(tree), pi0, beta)]
        for _ in range(100):
            policy = policy.step(kl_objective_gradient(tree, policy, pi0, beta, ones), 1.0)
            J.append(kl_objective(tree, policy.pi(tree), pi0, beta))
        J = np.array(J)
        assert np.all(J[1:] >= J[:-1] - 1e-12)
        assert np.all(J[-1] > J[0])  # it moved
        assert np.all(J <= beta * log_Z + 1e-12)
        assert np.all(policy.z_shared == 0)  # the tables were trained, not a shared part
    # planted: a descent step (lr -1) lowers J_KL at the first step
    policy = base.step(kl_objective_gradient(tree, base, pi0, 0.1, ones), -1.0)
    assert np.any(kl_objective(tree, policy.pi(tree), pi0, 0.1) < J[0] - 1e-12)


def test_token_kl_ignores_unreached_nodes_where_pi0_masks_a_token():
    """pi0 forbids token 1 at node 2 (prefix "1"); pi never plays token 1 at the root, so it
    never reaches node 2, where it does play token 1: both KLs are finite and agree. Once
    pi reaches node 2, both are +inf."""
    tree = TreeMDP(np.array([1, 0, 0, 1, 0, 1, 1, 0], float), n_vocab=2, depth=3)
    z0 = np.zeros((1, 7, 2))
    z0[0, 2, 1] = -np.inf
    pi0 = TreePolicy.tabular(z0).pi(tree)
    z = np.random.default_rng(3).normal(size=(1, 7, 2))
    z[0, 0, 1] = -np.inf
    pi = TreePolicy.tabular(z).pi(tree)
    assert pi[0, 2, 1] > 0 and pi0[0, 2, 1] == 0
    seq, tok = sequence_kl(tree, pi, pi0), token_kl(tree, pi, pi0)
    assert np.isfinite(tok).all() and abs(tok[0] - seq[0]) < 1e-12
    p, p0 = leaf_probs(tree, pi)[0], leaf_probs(tree, pi0)[0]
    assert abs(tok[0] - kl_direct(p, p0)) < 1e-12
    z[0, 0, 1] = 0.0
    pi = TreePolicy.tabular(z).pi(tree)
    assert token_kl(tree, pi, pi0)[0] == np.inf == sequence_kl(tree, pi, pi0)[0]


def test_binary_closed_forms_at_the_edges():
    """p in {0, 1} and small beta: no 0/0. Reference values by mpmath at 50 digits."""
    import mpmath

    mpmath.mp.dps = 50
    assert binary_posterior_accuracy(0.0, 1e-3) == 0.0
    assert binary_posterior_accuracy(1.0, 1e-3) == 1.0
    assert binary_posterior_kl(0.0, 1e-3) == 0.0 and binary_posterior_kl(1.0, 1e-3) == 0.0
    acc = binary_posterior_accuracy(np.array([0.0, 0.5, 1.0]), 0.3)
    assert acc.shape == (3,) and acc[0] == 0.0 and acc[2] == 1.0
    for p, beta in ((1e-3, 1e-3), (0.5, 0.05), (1e-6, 0.1), (0.999, 2.0), (0.3, 1e-2)):
        P, t = mpmath.mpf(p), 1 / mpmath.mpf(beta)
        p_star = P * mpmath.e**t / (1 - P + P * mpmath.e**t)
        kl = p_star * t - mpmath.log(1 - P + P * mpmath.e**t)
        assert abs(binary_posterior_accuracy(p, beta) - float(p_star)) <= 1e-15
        assert abs(binary_posterior_kl(p, beta) - float(kl)) <= 1e-12 * max(1.0, float(kl))
    with pytest.raises(ValueError, match="1 / beta overflows"):
        binary_posterior_accuracy(0.5, 1e-320)
    with pytest.raises(ValueError, match="is not in"):
        binary_posterior_kl(1.5, 1.0)


def test_tiny_beta_raises_instead_of_nan():
    tree = TreeMDP(np.array([[1, 0, 0, 2.0]]), n_vocab=2, depth=2)
    pi0 = np.full((3, 2), 0.5)
    for fn in (posterior_leaf_probs, posterior_policy, soft_policy_iteration):
        with pytest.raises(ValueError, match=r"beta = 1e-308 is too small.*overflows"):
            fn(tree, pi0, 1e-308)
    probs, log_Z = posterior_leaf_probs(tree, pi0, 1e-300)  # R / beta = 2e300: still finite
    assert np.array_equal(probs, [[0.0, 0.0, 0.0, 1.0]]) and np.isfinite(log_Z).all()


def test_soft_policy_iteration_rejects_pi_init_outside_pi0_support():
    tree = TreeMDP(np.array([1, 0, 0, 1, 0, 1, 1, 0], float), n_vocab=2, depth=3)
    z0 = np.zeros((1, 7, 2))
    z0[0, 3, 0] = -np.inf  # pi0 never plays token 0 after the prefix (0, 0)
    pi0 = TreePolicy.tabular(z0).pi(tree)
    with pytest.raises(ValueError, match=r"not absolutely continuous.*pi_init\[0, 3, 0\] = 0.5"):
        soft_policy_iteration(tree, pi0, 0.5, pi_init=np.full((7, 2), 0.5))
    z = np.random.default_rng(2).normal(size=(1, 7, 2))
    z[0, 3, 0] = -np.inf  # the same mask: allowed
    result = soft_policy_iteration(tree, pi0, 0.5, pi_init=TreePolicy.tabular(z).pi(tree))
    assert result.kl[0, 0] > 1e-3 and np.all(result.kl[-1] < 1e-12)


def test_bad_beta_and_expected_reward_of_posterior():
    tree = TreeMDP(np.array([1, 0, 0, 0], float), n_vocab=2, depth=2)
    pi0 = np.full((3, 2), 0.5)
    with pytest.raises(ValueError, match="beta"):
        posterior_policy(tree, pi0, 0.0)
    with pytest.raises(TypeError, match="beta"):
        posterior_policy(tree, pi0, "1")
    pi_star, _ = posterior_policy(tree, pi0, 1.0)
    e = np.e
    assert expected_reward(tree, pi_star)[0] == pytest.approx(e / (e + 3), rel=1e-14)


def test_chain_rule_and_frontier_checks_catch_planted_errors():
    """Planted: the chain rule without the reach weights d_pi(s); log Z with exp(beta r)."""
    rng = np.random.default_rng(12)
    tree = TreeMDP(rng.random((2, 64)) < 0.1, n_vocab=4, depth=3)
    pi0 = TreePolicy.random(tree, seed=13).pi(tree)
    pi = TreePolicy.random(tree, seed=14).pi(tree)
    unweighted = (pi * np.log(pi / pi0)).sum(axis=(1, 2))
    assert np.abs(unweighted - sequence_kl(tree, pi, pi0)).max() > 0.1
    beta = 0.3
    pi_star, _ = posterior_policy(tree, pi0, beta)
    _, planted_log_Z = posterior_leaf_probs(tree, pi0, 1 / beta)  # exp(beta r)
    assert np.any(kl_objective(tree, pi_star, pi0, beta) > beta * planted_log_Z + 1e-3)
