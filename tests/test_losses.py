"""RLVR losses: sampled gradients vs their exact expectations, PPO clipping, k3, ROVER's first-step identity, PSR/NSR per-token changes, each with a planted error."""
import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import norm

from tabular.rlvr import losses as L
from tabular.rlvr.kl import kl_objective_gradient, sequence_kl
from tabular.rlvr.psr_nsr import token_change
from tabular.strategies import tree_mdps, tree_policies
from tabular.tree import (
    TreeMDP,
    TreePolicy,
    answer_lengths,
    leaf_probs,
    reach_probs,
    sample_leaves,
    score_gradient,
    softmax_policy,
)

M = 3000  # independent groups per case
MIN_NONZERO = 100  # a coordinate is z-tested only with this many non-zero samples (CLT)
ALPHA = 1e-3  # family-wise level of all sampled-vs-exact checks of this module


def _tree(eos=None, seed=0, V=3, D=3, P=2):
    rng = np.random.default_rng(seed)
    base = TreeMDP(np.zeros((P, V**D)), n_vocab=V, depth=D, eos=eos)
    R = (rng.random((P, V**D)) < 0.4) & base.answer_mask
    R[:, np.flatnonzero(base.answer_mask)[0]] = True  # every prompt has a correct answer
    return base.replace(R=R.astype(float))


def _policy(tree, seed, scale=1.0):
    return TreePolicy.tabular(scale * np.random.default_rng(seed).standard_normal(
        (tree.n_prompts, tree.n_nodes, tree.n_vocab)))


def _tile(method, M_):
    changes = {}
    for name in ("rho0", "rho1"):
        v = getattr(method, name)
        if isinstance(v, tuple):
            changes[name] = tuple(np.tile(v, M_))
    return dataclasses.replace(method, **changes)


def _sampled(tree, policy, method, n, seed, pi_old=None, pi_ref=None):
    """M independent batch gradients (z_prompt), by replicating the prompts M times."""
    P = tree.n_prompts
    big = tree.replace(R=np.tile(tree.R, (M, 1)))
    pol = TreePolicy.tabular(np.tile(policy.logits(), (M, 1, 1)))
    pi_old = policy.pi(tree) if pi_old is None else pi_old
    ref = None if pi_ref is None else np.tile(pi_ref, (M, 1, 1))
    m = _tile(method, M)
    batch = L.make_rollouts(big, np.tile(pi_old, (M, 1, 1)), m, n, pi_ref=ref, seed=seed)
    g = L.loss_gradient(big, pol, batch, m, pi_ref=ref).z_prompt
    return g.reshape((M, P) + g.shape[1:]) * M  # the normaliser of M*P prompts -> of P


def _z_scores(samples, exact):
    """|mean - exact| / se of the z-tested coordinates (>= MIN_NONZERO non-zero samples);
    coordinates without noise give 0 when they agree to 1e-12 and inf otherwise; sparse ones
    (a few non-zero samples: the normal tail is unreliable) are left out."""
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / np.sqrt(samples.shape[0])
    flat = se == 0
    tested = ~flat & ((samples != 0).sum(axis=0) >= MIN_NONZERO)
    exact_ok = np.abs(mean - exact)[flat] <= 1e-12
    z = np.abs(mean - exact)[tested] / se[tested]
    return np.concatenate([z, np.where(exact_ok, 0.0, np.inf)])


NO_EOS_CASES = {
    "reinforce_kl_reward": L.preset("reinforce_kl_reward", beta=0.5),
    "reinforce_mean": L.preset("reinforce_mean"),
    "rloo": L.preset("rloo"),
    "psr": L.preset("psr"),
    "nsr": L.preset("nsr"),
    "w_reinforce": L.preset("w_reinforce"),
    "grpo": L.preset("grpo"),
    "grpo_sample_std": L.preset("grpo", std="sample", eps_std=1e-6),
    "drgrpo": L.preset("drgrpo"),
    "rover": L.preset("rover"),
    "grpo_reverse_kl": L.preset("grpo_reverse_kl", beta=0.5),
    "dph_forward_kl": L.preset("dph_forward_kl", beta=0.5),
    "dph_forward_kl_lowvar": L.preset("dph_forward_kl", regularizer="forward_kl_lowvar", beta=0.5),
    "dph_js": L.preset("dph_js", beta=0.5),
    "noisy_none": L.preset("reinforce", verifier="none", rho0=0.1, rho1=0.3),
    "noisy_backward": L.preset("reinforce", verifier="backward", rho0=0.1, rho1=0.3),
    "noisy_forward_grpo": L.preset("grpo", verifier="forward", rho0=(0.05, 0.2), rho1=(0.5, 0.1)),
}
EOS_CASES = {
    "grpo": L.preset("grpo"),
    "drgrpo": L.preset("drgrpo"),
    "rover_seq_mean": L.preset("rover", aggregation="seq_mean"),
}
OFF_POLICY_CASES = {  # theta != theta_old: clipping active, ROVER's V^ non-zero
    "grpo": L.preset("grpo"),
    "dapo_keep_groups": L.preset("dapo", drop_equal=False),
    "rover": L.preset("rover"),
}
# reinforce_mean, rloo, drgrpo and rover share their draws (same seed) and their gradients
# are scalar multiples of each other without EOS at theta = theta_old (advantages r - mean r
# times 1, G/(G-1), 1, 2 rho; normaliser 1/(P G D) each): identical z-scores, one check.
_SCALAR_MULTIPLES = ("reinforce_mean", "rloo", "drgrpo", "rover")
N_CHECKS = (len(NO_EOS_CASES) - (len(_SCALAR_MULTIPLES) - 1) + len(EOS_CASES)
            + len(OFF_POLICY_CASES) + 1)  # + the prompt-split test
_T = _tree()
N_COORDS = N_CHECKS * _T.n_prompts * _T.n_nodes * _T.n_vocab  # at most this many z-tests
Z_MAX = float(norm.isf(ALPHA / (2 * N_COORDS)))  # two-sided, Bonferroni over N_COORDS


def _check_case(tree, method, seed, pi_old=None, policy=None):
    policy = _policy(tree, 1) if policy is None else policy
    pi_ref = _policy(tree, 2, scale=0.7).pi(tree)
    samples = _sampled(tree, policy, method, 8, seed, pi_old=pi_old, pi_ref=pi_ref)
    exact = L.expected_loss_gradient(tree, policy, method, 8, pi_old=pi_old,
                                     pi_ref=pi_ref).z_prompt
    assert np.abs(exact).max() > 1e-4  # a non-trivial expectation
    return _z_scores(samples, exact)


@pytest.mark.parametrize("name", sorted(NO_EOS_CASES))
def test_sampled_gradient_matches_exact_expectation(name):
    z = _check_case(_tree(), NO_EOS_CASES[name], seed=10)
    assert z.max() < Z_MAX, (name, z.max())


@pytest.mark.parametrize("name", sorted(EOS_CASES))
def test_sampled_gradient_matches_exact_expectation_with_eos(name):
    z = _check_case(_tree(eos=0), EOS_CASES[name], seed=11)
    assert z.max() < Z_MAX, (name, z.max())


@pytest.mark.parametrize("name", sorted(OFF_POLICY_CASES))
def test_sampled_gradient_matches_exact_expectation_off_policy(name):
    tree = _tree()
    pi_old = _policy(tree, 3).pi(tree)
    policy = TreePolicy.tabular(np.log(pi_old) + 0.4 * np.random.default_rng(4).standard_normal(
        pi_old.shape))
    z = _check_case(tree, OFF_POLICY_CASES[name], seed=12, pi_old=pi_old, policy=policy)
    assert z.max() < Z_MAX, (name, z.max())


def test_unbiasedness_check_catches_planted_errors():
    tree = _tree()
    policy = _policy(tree, 1)
    # (a) NSR with the wrong sign
    nsr = L.preset("nsr")
    samples = _sampled(tree, policy, nsr, 8, seed=13)
    exact = L.expected_loss_gradient(tree, policy, nsr, 8).z_prompt
    assert _z_scores(samples, -exact).max() > Z_MAX
    # (b) a missing baseline term: the group-mean baseline's exact mean taken as REINFORCE's
    mean = L.preset("reinforce_mean")
    samples = _sampled(tree, policy, mean, 8, seed=14)
    wrong = L.expected_loss_gradient(tree, policy, L.preset("reinforce"), 8).z_prompt
    assert _z_scores(samples, wrong).max() > Z_MAX


def test_unbiasedness_check_catches_a_wrong_length_normaliser_with_eos():
    """Planted: GRPO's per-sequence token mean (seq_mean) compared with Dr.GRPO's constant
    normaliser on a tree with EOS (lengths vary)."""
    tree = _tree(eos=0)
    policy = _policy(tree, 1)
    samples = _sampled(tree, policy, L.preset("grpo"), 8, seed=11)
    wrong = L.expected_loss_gradient(tree, policy, L.preset("grpo", aggregation="constant"),
                                     8).z_prompt
    assert _z_scores(samples, wrong).max() > Z_MAX


def test_unbiasedness_check_catches_missing_clipping_off_policy():
    """Planted: the clipped PPO gradient compared with the unclipped one's expectation."""
    tree = _tree()
    pi_old = _policy(tree, 3).pi(tree)
    policy = TreePolicy.tabular(np.log(pi_old) + 0.4 * np.random.default_rng(4).standard_normal(
        pi_old.shape))
    samples = _sampled(tree, policy, L.preset("grpo"), 8, seed=12, pi_old=pi_old)
    unclipped = L.preset("grpo", clip_low=1.0 - 1e-12, clip_high=1e12)
    wrong = L.expected_loss_gradient(tree, policy, unclipped, 8, pi_old=pi_old).z_prompt
    assert _z_scores(samples, wrong).max() > Z_MAX


def test_expected_gradient_identities():
    """Exact expectations in closed form: NSR = PSR, W = 1.1 PSR, RLOO = REINFORCE, mean
    baseline = (1 - 1/n) REINFORCE, ROVER's first step = 2 rho x mean baseline (token mean =
    seq mean without EOS), forward correction = uncorrected (noisy verifier sheet, audit)."""
    tree, n = _tree(), 8
    policy = _policy(tree, 5)
    g = {k: L.expected_loss_gradient(tree, policy, L.preset(k), n).z_prompt
         for k in ("psr", "nsr", "w_reinforce", "reinforce", "rloo", "reinforce_mean", "rover")}
    assert np.allclose(g["nsr"], g["psr"], atol=1e-13, rtol=0)
    assert np.allclose(g["reinforce"], g["psr"], atol=1e-13, rtol=0)  # 0/1 rewards: A = r = 1[correct]
    assert np.allclose(g["w_reinforce"], 1.1 * g["psr"], atol=1e-13, rtol=0)
    assert np.allclose(g["rloo"], g["reinforce"], atol=1e-13, rtol=0)
    assert np.allclose(g["reinforce_mean"], (1 - 1 / n) * g["reinforce"], atol=1e-13, rtol=0)
    assert np.allclose(g["rover"], 2.0 * g["reinforce_mean"], atol=1e-13, rtol=0)
    noisy = {v: L.expected_loss_gradient(tree, policy, L.preset(
        "reinforce", verifier=v, rho0=0.1, rho1=0.3), n).z_prompt for v in ("none", "forward", "backward")}
    assert np.allclose(noisy["forward"], noisy["none"], atol=1e-13, rtol=0)
    assert np.allclose(noisy["none"], 0.6 * g["reinforce"], atol=1e-13, rtol=0)
    assert np.allclose(noisy["backward"], g["reinforce"], atol=1e-13, rtol=0)
    # exact REINFORCE expectation = -grad E[R] / (P D) (seq-mean normaliser 1/(P n D))
    P, D = tree.n_prompts, tree.depth
    p = leaf_probs(tree, policy.pi(tree))
    direct = -score_gradient(tree, policy.pi(tree), np.tile(np.arange(tree.n_leaves), (P, 1)),
                             p * tree.R) / (P * D)
    assert np.allclose(g["reinforce"], direct, atol=1e-13, rtol=0)
    # KL as a reward penalty: -(1/D) grad of mean_x [E R - beta KL(pi || pi_ref)] (kl.py)
    pi_ref = _policy(tree, 2, scale=0.7).pi(tree)
    shaped = L.expected_loss_gradient(tree, policy, L.preset("reinforce_kl_reward", beta=0.5), n,
                                      pi_ref=pi_ref).z_prompt
    target = kl_objective_gradient(tree, policy, pi_ref, 0.5).z_prompt / -D
    assert np.allclose(shaped, target, atol=1e-13, rtol=0)
    assert not np.allclose(shaped, g["reinforce"], rtol=0, atol=1e-4)
    # planted errors the identities catch: a missing (1 - 1/n), a wrong ROVER temperature
    assert not np.allclose(g["reinforce_mean"], g["reinforce"], rtol=0, atol=1e-6)
    rover_half = L.expected_loss_gradient(tree, policy, L.preset("rover", rho=0.5), n).z_prompt
    assert not np.allclose(rover_half, 2.0 * g["reinforce_mean"], rtol=0, atol=1e-6)
    # the reverse_kl preset is REINFORCE on the KL-shaped reward: the true reverse-KL gradient
    rkl = L.expected_loss_gradient(tree, policy, L.preset("reverse_kl", beta=0.5), n,
                                   pi_ref=pi_ref).z_prompt
    assert np.allclose(rkl, target, rtol=0, atol=1e-13)


def test_k3_expected_gradient_is_per_state_pi_minus_pi_ref():
    """GRPO's k3 term: its exact expected update is beta/(P D) d_pi(s) (pi - pi_ref)(.|s) in
    the logits of each node s (seq-mean normaliser, no EOS), not the reverse-KL gradient."""
    tree, n, beta = _tree(), 8, 0.5
    policy = _policy(tree, 5)
    pi = policy.pi(tree)
    pi_ref = _policy(tree, 2, scale=0.7).pi(tree)
    base = L.Method(advantage="reward", loss="pg")
    k3 = L.Method(advantage="reward", loss="pg", regularizer="k3", beta=beta)
    g = (L.expected_loss_gradient(tree, policy, k3, n, pi_ref=pi_ref).z_prompt
         - L.expected_loss_gradient(tree, policy, base, n).z_prompt)
    P, D = tree.n_prompts, tree.depth
    d = reach_probs(tree, pi)
    want = beta / (P * D) * d[..., None] * (pi - pi_ref)
    assert np.allclose(g, want, rtol=0, atol=1e-13)
    # planted: the true reverse-KL gradient (KL-penalty objective minus the reward part)
    # kl_objective_gradient(b) = grad (E R - b KL): the difference of b = beta and 2 beta is
    # beta grad KL, on the loss scale of the KL-reward identity above (divided by D)
    true_kl = (kl_objective_gradient(tree, policy, pi_ref, beta).z_prompt
               - kl_objective_gradient(tree, policy, pi_ref, 2 * beta).z_prompt) / D
    assert not np.allclose(true_kl, want, rtol=0, atol=1e-4)
    # a different direction, not just a different scale: the part of the true gradient
    # orthogonal to the k3 update (cosine 0.93 here: sin 0.37)
    cos = (true_kl * want).sum() / np.sqrt((true_kl**2).sum() * (want**2).sum())
    assert np.sqrt(1 - cos**2) > 0.2, cos


def _grpo_population_exact(tree, policy, n):
    """Independent exact GRPO expectation (binary rewards, population std, eps 0, token mean
    within a sequence): enumerate every outcome vector of the group, weight by its
    probability; the first sample's gradient is A_1 grad log pi(y_1) / L(y_1)."""
    import itertools

    pi = policy.pi(tree)
    p = leaf_probs(tree, pi)
    acc = (p * tree.R).sum(axis=1)
    P = tree.n_prompts
    a = np.zeros((P, 2))
    for x in range(P):
        for own in (0, 1):
            for rest in itertools.product((0, 1), repeat=n - 1):
                r = np.array((own,) + rest, dtype=float)
                prob = np.prod(np.where(np.array(rest) == 1, acc[x], 1 - acc[x]))
                A = 0.0 if r.std() == 0 else (r[0] - r.mean()) / r.std()
                a[x, own] += prob * A
    A_leaf = np.where(tree.R > 0, a[:, 1:2], a[:, 0:1])
    answers = np.flatnonzero(tree.answer_mask)
    leaves = np.tile(answers, (P, 1))
    lengths = answer_lengths(tree, leaves)
    W = (p * A_leaf)[:, answers] / lengths
    return -score_gradient(tree, pi, leaves, W) / P


@given(tree_mdps(rewards="binary", max_leaves=64, n_prompts=st.integers(1, 2)), st.data())
def test_grpo_exact_expectation_by_enumeration_on_random_trees(tree, data):
    policy = data.draw(tree_policies(tree, shared=True))
    n = data.draw(st.integers(2, 5))
    exact = L.expected_loss_gradient(tree, policy, L.preset("grpo"), n)
    expected = _grpo_population_exact(tree, policy, n)
    assert np.allclose(exact.z_prompt, policy.c * expected, rtol=0, atol=1e-12)
    assert np.allclose(exact.z_shared, expected.sum(axis=0), rtol=0, atol=1e-12)


def test_grpo_exact_expectation_by_full_enumeration():
    tree, n = _tree(D=2), 6
    policy = _policy(tree, 6)
    exact = L.expected_loss_gradient(tree, policy, L.preset("grpo"), n).z_prompt
    assert np.allclose(exact, _grpo_population_exact(tree, policy, n), atol=1e-13, rtol=0)
    wrong = L.expected_loss_gradient(tree, policy, L.preset("grpo", std="sample"), n).z_prompt
    assert not np.allclose(wrong, _grpo_population_exact(tree, policy, n), atol=1e-6, rtol=0)


# --- PPO clipping (rlvr_misc property 2) ------------------------------------------------


def _one_token_batch(pi_old_row, k, A, P=1):
    tree = TreeMDP(np.zeros(len(pi_old_row)), n_vocab=len(pi_old_row), depth=1)
    pi_old = np.array(pi_old_row)[None, None, :]
    batch = L.Rollouts(leaves=np.array([[k]]), rewards=np.array([[0.0]]),
                       advantages=np.array([[A]]), kept=np.array([True]), pi_old=pi_old)
    return tree, batch


@pytest.mark.parametrize("A, ratio, clipped", [(1.0, 1.5, True), (-1.0, 0.5, True),
                                                (1.0, 0.5, False), (-1.0, 1.5, False),
                                                (2.0, 1.0, False), (1.0, 1.1, False)])
def test_clipping_zeroes_the_gradient_exactly_where_it_should(A, ratio, clipped):
    pi_old = np.array([0.2, 0.3, 0.5])
    k = 0
    tree, batch = _one_token_batch(pi_old, k, A)
    # a policy with pi(k) = ratio * pi_old(k), the others scaled to sum to 1
    pi = pi_old * (1 - ratio * pi_old[k]) / (1 - pi_old[k])
    pi[k] = ratio * pi_old[k]
    policy = TreePolicy.tabular(np.log(pi)[None, None, :])
    g = L.loss_gradient(tree, policy, batch, L.preset("grpo")).z_prompt[0, 0]
    if clipped:
        assert np.all(g == 0.0)
    else:  # -A rho grad log pi(k), grad log pi(k) = e_k - pi (normaliser 1)
        expected = -A * ratio * (np.eye(3)[k] - pi)
        assert np.allclose(g, expected, atol=1e-14, rtol=0)


def test_clip_higher_uses_its_own_bound_and_a_planted_missing_clip_is_caught():
    pi_old = np.array([0.2, 0.3, 0.5])
    tree, batch = _one_token_batch(pi_old, 0, 1.0)
    pi = pi_old * (1 - 1.25 * 0.2) / 0.8
    pi[0] = 1.25 * 0.2  # rho = 1.25: clipped at eps 0.2, not at DAPO's eps_high 0.28
    policy = TreePolicy.tabular(np.log(pi)[None, None, :])
    assert np.all(L.loss_gradient(tree, policy, batch, L.preset("grpo")).z_prompt == 0)
    assert np.any(L.loss_gradient(tree, policy, batch, L.preset("dapo")).z_prompt != 0)
    planted = L.preset("grpo", clip_high=10.0)  # clipping switched off
    assert np.any(L.loss_gradient(tree, policy, batch, planted).z_prompt != 0)


def _central_difference(f, z, h=1e-6):
    g = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        if not np.isfinite(z[i]):
            continue
        e = np.zeros_like(z)
        e[i] = h
        g[i] = (f(z + e) - f(z - e)) / (2 * h)
    return g


@pytest.mark.parametrize("name", ["grpo", "grpo_reverse_kl", "dph_forward_kl", "dph_js", "drgrpo"])
def test_loss_gradient_matches_central_differences_of_the_loss(name):
    tree = _tree(eos=0, D=2)
    method = L.preset(name, beta=0.3) if "kl" in name or "js" in name else L.preset(name)
    pi_old = _policy(tree, 7).pi(tree)
    pi_ref = _policy(tree, 8).pi(tree)
    batch = L.make_rollouts(tree, pi_old, method, 6, pi_ref=pi_ref, seed=9)
    with np.errstate(divide="ignore"):  # done rows (EOS): log 0 = -inf, a masked logit
        z0 = np.log(pi_old) + 0.3 * np.random.default_rng(10).standard_normal(pi_old.shape)
    f = lambda z: L.loss_value(tree, TreePolicy.tabular(z), batch, method, pi_ref=pi_ref)
    g = L.loss_gradient(tree, TreePolicy.tabular(z0), batch, method, pi_ref=pi_ref).z_prompt
    assert np.allclose(g, _central_difference(f, z0), atol=1e-8, rtol=0)


# --- k3 (rlvr_misc property 2) ------------------------------------------------------------


def _k3_planted(tree, pi, pi_ref, leaves):
    """k3 with the ratio inverted (pi / pi_ref): a planted error."""
    return L.k3_per_token(tree, pi_ref, pi, leaves)


def test_k3_exact_leaf_sum_is_the_kl_and_monte_carlo_within_4_se():
    tree = _tree(eos=0)
    pi = _policy(tree, 11).pi(tree)
    pi_ref = _policy(tree, 12).pi(tree)
    kl = sequence_kl(tree, pi, pi_ref)
    leaves = np.tile(np.flatnonzero(tree.answer_mask), (tree.n_prompts, 1))
    p = leaf_probs(tree, pi)[:, leaves[0]]
    exact = (p * L.k3_per_token(tree, pi, pi_ref, leaves).sum(-1)).sum(1)
    assert np.allclose(exact, kl, rtol=0, atol=1e-12)
    planted = (p * _k3_planted(tree, pi, pi_ref, leaves).sum(-1)).sum(1)
    assert np.abs(planted - kl).max() > 1e-3
    # Monte Carlo, 1e5 trajectories per prompt: 2 prompts x 2 checks at 4 SE, level 4 * 6.3e-5
    draws = sample_leaves(tree, pi, 100_000, seed=13)
    for fn, should_pass in ((L.k3_per_token, True), (_k3_planted, False)):
        s = fn(tree, pi, pi_ref, draws).sum(-1)
        z = np.abs(s.mean(1) - kl) / (s.std(1, ddof=1) / np.sqrt(s.shape[1]))
        assert (z.max() < 4.0) == should_pass, z


# --- ROVER's first-step identity (property 7) -------------------------------------------


def test_rover_first_step_identity_and_central_differences():
    tree = _tree(eos=0)
    rho = 0.7
    method = L.preset("rover", rho=rho)
    policy = _policy(tree, 14)
    pi_old = policy.pi(tree)
    batch = L.make_rollouts(tree, pi_old, method, 5, seed=15)
    targets = L.rover_targets(tree, pi_old, pi_old, batch.leaves, batch.advantages, rho)
    g = L.loss_gradient(tree, policy, batch, method).z_prompt
    z0 = policy.logits()
    f = lambda z: L.loss_value(tree, TreePolicy.tabular(z), batch, method, targets=targets)
    assert np.allclose(g, _central_difference(f, z0), rtol=0, atol=1e-9)
    # identity: grad L = -(2 rho / N_tok) sum_{i,t} r~_i grad log pi(a_t|s_t)
    lengths = answer_lengths(tree, batch.leaves)
    mask = np.arange(tree.depth) < lengths[..., None]
    W = np.where(mask, batch.advantages[..., None], 0.0)
    identity = -(2 * rho / lengths.sum()) * score_gradient(tree, pi_old, batch.leaves, W)
    assert np.allclose(g, identity, rtol=0, atol=1e-12)
    assert np.abs(identity).max() > 1e-3


def test_rover_stop_gradient_matters_off_policy():
    """Away from theta_old the gradient differs from the loss's derivative when the targets
    move with theta (a planted missing stop-gradient is caught)."""
    tree = _tree()
    method = L.preset("rover")
    pi_old = _policy(tree, 16).pi(tree)
    batch = L.make_rollouts(tree, pi_old, method, 5, seed=17)
    z0 = np.log(pi_old) + 0.5 * np.random.default_rng(18).standard_normal(pi_old.shape)
    targets = L.rover_targets(tree, softmax_policy(tree, z0), pi_old, batch.leaves,
                              batch.advantages)
    g = L.loss_gradient(tree, TreePolicy.tabular(z0), batch, method).z_prompt
    fixed = lambda z: L.loss_value(tree, TreePolicy.tabular(z), batch, method, targets=targets)
    moving = lambda z: L.loss_value(tree, TreePolicy.tabular(z), batch, method)
    assert np.allclose(g, _central_difference(fixed, z0), rtol=0, atol=1e-9)
    assert not np.allclose(g, _central_difference(moving, z0), rtol=0, atol=1e-6)


# --- PSR/NSR first-order changes per token ----------------------------------------------


@pytest.mark.parametrize("objective, correct", [("psr", True), ("nsr", False)])
def test_psr_nsr_token_change_matches_central_differences(objective, correct):
    rng = np.random.default_rng(19)
    for _ in range(20):
        V = int(rng.integers(2, 6))
        tree = TreeMDP(np.zeros(V), n_vocab=V, depth=1)
        z = rng.normal(0, 1.5, V)
        k = int(rng.integers(V))
        tree = tree.replace(R=np.eye(V)[k] * correct)
        pi = softmax_policy(tree, z[None, :])
        method = L.preset(objective)
        batch = L.Rollouts(np.array([[k]]), np.array([[float(correct)]]),
                           np.array([[1.0 if correct else -1.0]]), np.array([True]), pi)
        g = L.loss_gradient(tree, TreePolicy.tabular(z[None, None, :]), batch, method).z_prompt[0, 0]
        def p_at(c, tree=tree, z=z, g=g):
            return softmax_policy(tree, (z - c * g)[None, :])[0, 0]

        h = 1e-5
        numeric = (p_at(h) - p_at(-h)) / (2 * h)
        assert np.allclose(numeric, token_change(pi[0, 0], k, 1.0, objective), rtol=1e-6, atol=1e-10)
        other = "nsr" if objective == "psr" else "psr"  # planted: the other formula
        assert not np.allclose(numeric, token_change(pi[0, 0], k, 1.0, other), rtol=1e-6, atol=1e-10)


# --- bad input ------------------------------------------------------------------------------


def test_bad_input():
    tree = _tree()
    policy = _policy(tree, 0)
    with pytest.raises(ValueError, match="advantage"):
        L.Method(advantage="bogus")
    with pytest.raises(ValueError, match="clip_low"):
        L.Method(clip_low=1.5)
    with pytest.raises(ValueError, match="rho0"):
        L.Method(verifier="backward", rho0=0.6, rho1=0.5)
    with pytest.raises(ValueError, match="unknown method"):
        L.preset("ppo2")
    with pytest.raises(ValueError, match="pi_ref"):
        L.make_rollouts(tree, policy.pi(tree), L.preset("dph_js"), 4, seed=0)
    with pytest.raises(ValueError, match="drop_equal"):
        L.expected_loss_gradient(tree, policy, L.preset("dapo"), 8)
    graded = tree.replace(R=np.full(tree.R.shape, 0.5))
    with pytest.raises(ValueError, match="non-binary"):
        L.expected_loss_gradient(graded, policy, L.preset("grpo"), 8)
    with pytest.raises(ValueError, match="different lengths"):
        t = _tree(eos=0)
        L.expected_loss_gradient(t, _policy(t, 0), L.preset("rover"), 8)
    with pytest.raises(TypeError):
        L.loss_gradient(tree, policy, "batch", L.preset("grpo"))
    with pytest.raises(ValueError, match="aggregation"):
        L.normalizer(tree, np.zeros((2, 3), dtype=np.int64), "sum")
    for adv in ("psr", "nsr", "w", "rlvr"):
        with pytest.raises(ValueError, match="forward"):
            L.Method(advantage=adv, verifier="forward", rho0=0.1, rho1=0.2)
    with pytest.raises(ValueError, match="rho1_used"):
        L.Method(verifier="forward", rho1=0.2, rho1_used=1.5)
    pi = policy.pi(tree)
    leaves = np.zeros((2, 3), dtype=np.int64) + np.flatnonzero(tree.answer_mask)[0]
    with pytest.raises(ValueError, match="advantages must have the shape"):
        L.rover_targets(tree, pi, pi, leaves, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="leaves must have shape"):
        L.rover_targets(tree, pi, pi, leaves[0], np.zeros(3))


def test_normalizers_by_hand_with_dropped_groups_and_subsets():
    tree = _tree(eos=0, D=3)  # EOS = token 0: lengths vary
    leaves = np.array([[tree.leaf_index(np.array([0, 0, 0])), tree.leaf_index(np.array([1, 2, 1]))],
                       [tree.leaf_index(np.array([2, 0, 0])), tree.leaf_index(np.array([1, 1, 0]))]])
    lengths = np.array([[1, 3], [2, 3]], dtype=float)
    assert np.array_equal(answer_lengths(tree, leaves), lengths)
    assert np.allclose(L.normalizer(tree, leaves, "seq_mean"), 1 / (2 * 2 * lengths), rtol=0)
    assert np.allclose(L.normalizer(tree, leaves, "constant"), 1 / (2 * 2 * 3), rtol=0)
    assert np.allclose(L.normalizer(tree, leaves, "token_mean"), 1 / 9, rtol=0)
    kept = np.array([False, True])  # DAPO: group 0 dropped
    assert np.allclose(L.normalizer(tree, leaves, "token_mean", kept), [[0, 0], [1 / 5, 1 / 5]], rtol=0)
    assert np.allclose(L.normalizer(tree, leaves, "seq_mean", kept), [[0, 0], [1 / 4, 1 / 6]], rtol=0)
    sub = np.array([[True, False], [True, True]])  # PSR subset: one sample left out
    assert np.allclose(L.normalizer(tree, leaves, "seq_mean", sub), [[1 / 2, 0], [1 / 8, 1 / 12]], rtol=0)
    # the subset PSR gradient (token mean over the correct samples) equals PSR's with one
    # token mean over all samples times (all tokens) / (tokens of correct samples): a
    # global rescale
    policy = _policy(tree, 3)
    batch = L.make_rollouts(tree, policy.pi(tree), L.preset("psr"), 6, seed=4)
    lengths_b = answer_lengths(tree, batch.leaves)
    correct = batch.advantages > 0
    assert correct.any() and not correct.all()
    g = L.loss_gradient(tree, policy, batch, L.preset("psr", aggregation="token_mean")).z_prompt
    g_sub = L.loss_gradient(tree, policy, batch, L.preset("psr_subset")).z_prompt
    scale = lengths_b.sum() / lengths_b[correct].sum()
    assert np.allclose(g_sub, g * scale, rtol=0, atol=1e-14)


def test_difficulty_band_and_drop_equal_keep_the_right_groups():
    V, D = 3, 2
    R = np.zeros((3, V**D))
    R[0] = 1.0  # always correct
    R[2, :4] = 1.0  # mixed
    tree = TreeMDP(R, n_vocab=V, depth=D)
    policy = TreePolicy.uniform(tree)
    for method, always in ((L.preset("dapo"), [False, False]),
                           (L.preset("grpo_balanced"), [False, False]),
                           (L.preset("grpo", band=(0.0, 1.0)), [True, True]),
                           (L.preset("grpo", band=(1.0, 1.0)), [True, False])):
        for seed in range(5):
            batch = L.make_rollouts(tree, policy.pi(tree), method, 4, seed=seed)
            assert list(batch.kept[:2]) == always
            p_hat = batch.rewards[2].mean()
            lo, hi = method.band if method.band else (0.0, 1.0)
            keep2 = lo <= p_hat <= hi and (not method.drop_equal or 0 < p_hat < 1)
            assert batch.kept[2] == keep2
            g = L.loss_gradient(tree, policy, batch, method).z_prompt
            assert np.all(g[~batch.kept] == 0)
    with pytest.raises(ValueError, match="p_hi"):
        L.preset("grpo", band=(0.8, 0.2))


def test_prompt_split_sampled_matches_exact_and_masks_prompts():
    """DPH-RL's split: RL term on prompt 0, f-divergence on prompt 1 (one of the N_CHECKS)."""
    tree = _tree()
    policy = _policy(tree, 1)
    pi_ref = _policy(tree, 2, scale=0.7).pi(tree)
    method = L.preset("dph_js", beta=0.5)
    rl, ref = np.array([True, False]), np.array([False, True])
    big = tree.replace(R=np.tile(tree.R, (M, 1)))
    batch = L.make_rollouts(big, np.tile(policy.pi(tree), (M, 1, 1)), method, 8,
                            pi_ref=np.tile(pi_ref, (M, 1, 1)), rl_prompts=np.tile(rl, M),
                            ref_prompts=np.tile(ref, M), seed=21)
    g = L.loss_gradient(big, TreePolicy.tabular(np.tile(policy.logits(), (M, 1, 1))), batch,
                        method, pi_ref=np.tile(pi_ref, (M, 1, 1))).z_prompt
    samples = g.reshape((M, 2) + g.shape[1:]) * M
    exact = L.expected_loss_gradient(tree, policy, method, 8, pi_ref=pi_ref, rl_prompts=rl,
                                     ref_prompts=ref).z_prompt
    assert _z_scores(samples, exact).max() < Z_MAX
    # each prompt gets only its own term
    only_rl = L.expected_loss_gradient(tree, policy, L.preset("grpo"), 8).z_prompt
    only_ref = L.expected_loss_gradient(tree, policy, method, 8, pi_ref=pi_ref,
                                        rl_prompts=np.array([False, False])).z_prompt
    assert np.allclose(exact[0], 2 * only_rl[0], atol=1e-14, rtol=0)  # P_rl = 1 instead of 2
    assert np.allclose(exact[1], 2 * only_ref[1], atol=1e-14, rtol=0)
