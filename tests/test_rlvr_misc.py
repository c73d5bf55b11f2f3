"""rlvr_misc.md identities: RLCR, PACS, Posterior-GRPO, FAPO, Lp-Reg, SIREN, ProRL, CURE, Echo Chamber, 1-shot; each with a planted error it catches."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from proofs_check.stats import g_test
from tabular.rlvr import misc
from tabular.rlvr.advantages import group_advantages
from tabular.rlvr.kl import kl_objective_gradient, sequence_kl
from tabular.rlvr.passk import entropy
from tabular.strategies import tree_mdps, tree_policies
from tabular.tree import (
    TreeMDP,
    TreePolicy,
    expected_reward_gradient,
    leaf_probs,
    path_nodes,
    reach_probs,
    sample_leaves,
    score_gradient,
)

probs = st.floats(0.0, 1.0)
ATOL = 1e-12


def _softmax(z):
    w = np.exp(z - z.max(axis=-1, keepdims=True))
    return w / w.sum(axis=-1, keepdims=True)


def _five_point(f, z, h=1e-3):
    """Five-point central differences (error O(h^4)) of a scalar function of an array."""
    g = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        e = np.zeros_like(z)
        e[i] = h
        g[i] = (-f(z + 2 * e) + 8 * f(z + e) - 8 * f(z - e) + f(z - 2 * e)) / (12 * h)
    return g


def _logits(draw, shape, scale=2.0):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return scale * rng.standard_normal(shape)


# --- RLCR [P7] --------------------------------------------------------------------------------


def _rlcr_errors(expected):
    """Max error of an expected-reward formula against enumeration of the two outcomes, and
    of its value at q = c against c^2, over a grid."""
    c, q = np.meshgrid(np.linspace(0, 1, 21), np.linspace(0, 1, 21))
    enum = c * misc.rlcr_reward(True, q) + (1 - c) * misc.rlcr_reward(False, q)
    return np.abs(expected(c, q) - enum).max(), np.abs(expected(c, c) - c**2).max()


def test_rlcr_expected_reward_enumeration_and_optimum():
    assert max(_rlcr_errors(misc.rlcr_expected_reward)) < ATOL
    # planted: forgetting the variance term c(1 - c)
    assert min(_rlcr_errors(lambda c, q: c - (q - c) ** 2)) > 0.2


@given(probs, st.lists(probs, min_size=2, max_size=6))
def test_rlcr_calibrated_q_is_optimal_and_best_answer_is_most_likely(c, cs):
    grid = np.linspace(0, 1, 101)
    assert misc.rlcr_expected_reward(c, grid).max() <= c**2 + ATOL
    assert misc.rlcr_expected_reward(c, c) == pytest.approx(c**2, abs=ATOL)
    cs = np.array(cs)
    assert cs[misc.best_answer(cs)] == cs.max()


@given(probs)
def test_log_score_optimum_is_c_minus_entropy(c):
    grid = np.linspace(1e-6, 1 - 1e-6, 2001)
    vals = misc.log_score_expected_reward(c, grid)
    enum = c * misc.log_score_reward(True, grid) + (1 - c) * misc.log_score_reward(False, grid)
    assert np.allclose(vals, enum, rtol=0, atol=1e-12)
    H = -sum(p * np.log(p) for p in (c, 1 - c) if p > 0)
    assert misc.calibrated_value(c, "log") == pytest.approx(c - H, abs=ATOL)
    assert vals.max() <= c - H + 1e-12


def test_log_score_counterexample_prefers_surely_wrong_answer():
    v = misc.calibrated_value([0.0, 0.2], "log")
    assert v[0] == 0.0
    assert v[1] == pytest.approx(0.2 + 0.2 * np.log(0.2) + 0.8 * np.log(0.8), abs=ATOL)
    assert v[1] == pytest.approx(-0.3004, abs=1e-4)
    assert misc.best_answer([0.0, 0.2], "log") == 0
    assert misc.best_answer([0.0, 0.2], "brier") == 1  # planted contrast: Brier picks c = 0.2


def test_confidence_token_toy_picks_nearest_grid_confidence():
    c = np.array([0.13, 0.5, 0.88, 1.0])
    grid = np.round(np.linspace(0, 1, 11), 12)
    R = misc.confidence_rewards(c, grid)
    assert np.array_equal(grid[R.argmax(axis=1)], [0.1, 0.5, 0.9, 1.0])
    with pytest.raises(ValueError, match="q_grid"):
        misc.confidence_rewards(c, [0.5, 1.2])
    with pytest.raises(TypeError, match="bool"):
        misc.rlcr_reward([1, 0], 0.5)


# --- PACS [P8] --------------------------------------------------------------------------------


def _pacs_reference(tree, z, z_old, leaves, r, beta, G_scale):
    """PACS loss summed over prompts as a plain function of the logits z (no EOS)."""
    nodes, tokens = path_nodes(tree, leaves)
    x = np.arange(tree.n_prompts)[:, None, None]

    def logp(zz):
        lse = np.log(np.exp(zz).sum(axis=-1))
        return (zz[x, nodes, tokens] - lse[x, nodes]).sum(axis=-1)

    lr_old = logp(z_old)

    def loss(zz):
        s = beta * (logp(zz) - lr_old)
        G = s.shape[-1]
        psi = np.array([[s[p, i] - (s[p].sum() - s[p, i]) / (G - 1) for i in range(G)]
                        for p in range(s.shape[0])])
        return G_scale(G) * (np.log1p(np.exp(psi)) - r * psi).sum()

    return loss


@st.composite
def pacs_problems(draw):
    tree = draw(tree_mdps(n_vocab=st.integers(2, 3), depth=st.integers(1, 3),
                          n_prompts=st.integers(1, 2), eos=False))
    shape = (tree.n_prompts, tree.n_nodes, tree.n_vocab)
    z_old = _logits(draw, shape, 1.0)
    z = z_old + _logits(draw, shape, 0.5)
    G = draw(st.integers(2, 5))
    leaves = sample_leaves(tree, _softmax(z_old), G, seed=draw(st.integers(0, 1000)))
    # the verifier's 0/1 rewards of the group, both values present (the identities hold for
    # any rewards; tree rewards would often give all-equal groups and a zero gradient)
    r = (np.random.default_rng(draw(st.integers(0, 1000))).random(leaves.shape) < 0.5) * 1.0
    r[:, 0], r[:, 1] = 1.0, 0.0
    return tree, z, z_old, leaves, r, draw(st.floats(0.1, 2.0))


@given(pacs_problems())
def test_pacs_gradient_matches_central_differences(problem):
    tree, z, z_old, leaves, r, beta = problem
    g = misc.pacs_tree_gradient(tree, _softmax(z), _softmax(z_old), leaves, r, beta)
    mean_loss = _pacs_reference(tree, z, z_old, leaves, r, beta, lambda G: 1.0 / G)
    assert np.allclose(g, _five_point(mean_loss, z), rtol=0, atol=1e-9)
    lr = misc.pacs_log_ratios(tree, _softmax(z), _softmax(z_old), leaves)
    assert misc.pacs_loss(lr, r, beta).sum() == pytest.approx(mean_loss(z), abs=1e-12)
    # "sum" reduction: G times the mean; planted: the summed loss is not the mean's gradient
    g_sum = misc.pacs_tree_gradient(tree, _softmax(z), _softmax(z_old), leaves, r, beta,
                                    reduction="sum")
    assert np.allclose(g_sum, leaves.shape[1] * g, rtol=0, atol=1e-12)


@given(pacs_problems())
def test_pacs_first_step_is_rloo_direction(problem):
    tree, _, z_old, leaves, r, beta = problem
    pi_old = _softmax(z_old)
    g = misc.pacs_tree_gradient(tree, pi_old, pi_old, leaves, r, beta)
    G = leaves.shape[1]
    rloo = score_gradient(tree, pi_old, leaves, -(beta / (G - 1)) * (r - r.mean(-1, keepdims=True)))
    assert np.allclose(g, rloo, rtol=0, atol=1e-12)
    assert np.allclose(score_gradient(tree, pi_old, leaves, misc.pacs_first_step_weights(r, beta)),
                       rloo, rtol=0, atol=1e-12)
    mean_loss = _pacs_reference(tree, z_old, z_old, leaves, r, beta, lambda G: 1.0 / G)
    num = _five_point(mean_loss, z_old)
    assert np.allclose(rloo, num, rtol=0, atol=1e-9)
    # planted: the audit's summed loss is G times larger, caught when the direction is non-zero
    if np.abs(rloo).max() > 1e-6:  # zero only when the group's answers coincide
        sum_loss = _pacs_reference(tree, z_old, z_old, leaves, r, beta, lambda G: 1.0)
        num_sum = _five_point(sum_loss, z_old)
        assert not np.allclose(rloo, num_sum, rtol=0, atol=1e-9)


@given(st.lists(st.floats(-5, 5), min_size=2, max_size=8), st.floats(-3, 3), st.floats(0.1, 3))
def test_pacs_psi_is_centred_and_shift_invariant(lr, shift, beta):
    lr = np.array(lr)
    psi = misc.pacs_psi(lr, beta)
    assert psi.sum() == pytest.approx(0.0, abs=1e-10)
    assert np.allclose(misc.pacs_psi(lr + shift, beta), psi, rtol=0, atol=1e-10)
    G = lr.size
    assert psi[0] == pytest.approx(beta * (lr[0] - lr[1:].mean()), abs=1e-10)
    assert G >= 2


def test_pacs_rejects_bad_input():
    with pytest.raises(ValueError, match="group axis"):
        misc.pacs_psi([1.0], 1.0)
    with pytest.raises(ValueError, match="beta"):
        misc.pacs_psi([1.0, 2.0], 0.0)
    with pytest.raises(ValueError, match="r has shape"):
        misc.pacs_loss([0.0, 0.0], [1.0, 0.0, 1.0], 1.0)
    with pytest.raises(ValueError, match="reduction"):
        misc.pacs_loss([0.0, 0.0], [1.0, 0.0], 1.0, reduction="max")


# --- Posterior-GRPO [P9] -----------------------------------------------------------------------


@given(tree_mdps(rewards="binary", eos=False, max_leaves=64), st.data())
def test_gated_process_reward_keeps_argmax_correct_additive_can_be_hacked(tree, data):
    assume(tree.correct.any(axis=1).all() and (~tree.correct).any(axis=1).all())
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    r_proc = rng.random(tree.R.shape)
    alpha = data.draw(st.floats(0.0, 5.0))
    gated = misc.process_rewarded_tree(tree, r_proc, alpha)
    assert np.all(gated.R[~tree.correct] == 0.0)
    assert np.all(tree.correct[np.arange(tree.n_prompts), gated.R.argmax(axis=1)])
    additive = misc.process_rewarded_tree(tree, r_proc, alpha, gated=False)
    best_wrong = np.where(tree.correct, -1.0, r_proc).max(axis=1)
    best_right = np.where(tree.correct, r_proc, -1.0).max(axis=1)
    lhs, rhs = alpha * best_wrong, 1 + alpha * best_right
    assume(np.all(np.abs(lhs - rhs) > 1e-9))
    hacked = ~tree.correct[np.arange(tree.n_prompts), additive.R.argmax(axis=1)]
    assert np.array_equal(hacked, misc.hack_wins(alpha, best_wrong, best_right))


def test_additive_process_reward_is_hacked_on_planted_instance():
    # leaf 0 correct with weak reasoning, leaf 1 a wrong "hack" with a perfect process score
    tree = TreeMDP([[1.0, 0.0]], n_vocab=2, depth=1)
    r_proc = np.array([[0.1, 1.0]])
    assert misc.hack_wins(2.0, 1.0, 0.1)
    assert misc.process_rewarded_tree(tree, r_proc, 2.0, gated=False).R.argmax() == 1
    assert misc.process_rewarded_tree(tree, r_proc, 2.0).R.argmax() == 0
    with pytest.raises(ValueError, match="0/1"):
        misc.posterior_grpo_reward([0.5], [0.2], 1.0)


# --- FAPO [P10] --------------------------------------------------------------------------------


def _fapo_case(G, n_clean, n_flawed):
    correct = np.arange(G) < n_clean + n_flawed
    flawed = (np.arange(G) >= n_clean) & correct
    return correct, flawed, n_clean / G, n_flawed / G


@given(st.integers(2, 16), st.data(), st.floats(0.0, 1.0))
def test_flawed_advantage_sign_condition(G, data, lam):
    n_flawed = data.draw(st.integers(1, G))
    n_clean = data.draw(st.integers(0, G - n_flawed))
    correct, flawed, a, f = _fapo_case(G, n_clean, n_flawed)
    cases = (((1.0, 1 - lam, 0.0), {"lam": lam}), ((1.0, 0.0, -1.0), {"signed": True}))
    for rewards, kwargs in cases:
        r = misc.fapo_rewards(correct, flawed, r_clean=rewards[0], r_flawed=rewards[1],
                              r_wrong=rewards[2])
        A = group_advantages(r, "mean")[flawed][0]
        closed = misc.flawed_advantage(a, f, r_clean=rewards[0], r_flawed=rewards[1],
                                       r_wrong=rewards[2])
        assert A == pytest.approx(float(closed), abs=1e-12)
        if abs(A) > 1e-9:
            assert (A > 0) == bool(misc.flawed_advantage_positive(a, f, **kwargs))


def test_fapo_condition_catches_planted_swap():
    """A swapped condition ``(1 - lam)(1 - a) > f`` disagrees with the sampled advantage."""
    lam, G = 0.5, 10
    disagree = 0
    for n_clean in range(G):
        for n_flawed in range(1, G - n_clean + 1):
            correct, flawed, a, f = _fapo_case(G, n_clean, n_flawed)
            A = group_advantages(misc.fapo_rewards(correct, flawed, r_flawed=1 - lam), "mean")
            disagree += (A[flawed][0] > 0) != ((1 - lam) * (1 - a) > f)
    assert disagree > 0
    with pytest.raises(ValueError, match="wrong answer"):
        misc.fapo_rewards(np.array([True, False]), np.array([False, True]))


# --- Lp-Reg [P3] -------------------------------------------------------------------------------


@given(st.integers(2, 6), st.data())
def test_lp_reg_kl_and_logit_gradient(V, data):
    z = _logits(data.draw, (V,), 2.0)
    pi = _softmax(z)
    tau = data.draw(st.floats(0.0, float(pi.max()) * 0.999))
    kept = pi > tau
    proxy = misc.lp_proxy(pi, tau)
    kl_def = sum(proxy[a] * np.log(proxy[a] / pi[a]) for a in range(V) if proxy[a] > 0)
    assert misc.lp_kl(pi, tau) == pytest.approx(kl_def, abs=1e-12)
    assert misc.lp_kl(pi, tau) == pytest.approx(-np.log(pi[kept].sum()), abs=1e-12)
    g = misc.lp_kl_logit_gradient(pi, tau)
    # proxy held fixed (stop-gradient) and -log Z with the kept set fixed: same gradient
    p_k = proxy[kept]
    stop = _five_point(lambda v: float(p_k @ (np.log(p_k) - np.log(_softmax(v)[kept]))), z)
    direct = _five_point(lambda v: -np.log(_softmax(v)[kept].sum()), z)
    assert np.allclose(g, stop, rtol=0, atol=1e-9)
    assert np.allclose(g, direct, rtol=0, atol=1e-9)
    if not kept.all():  # planted: forgetting the 1/Z on kept tokens
        assert not np.allclose(pi * (1.0 - kept), stop, rtol=0, atol=1e-9)


def test_lp_reg_rows_and_errors():
    pi = np.array([[0.7, 0.2, 0.1], [0.5, 0.45, 0.05]])
    want = [[0.7 / 0.9, 0.2 / 0.9, 0], [0.5 / 0.95, 0.45 / 0.95, 0]]
    assert np.allclose(misc.lp_proxy(pi, 0.15), want, rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="exceeds tau"):
        misc.lp_kl(pi, 0.8)
    with pytest.raises(ValueError, match="sums to"):
        misc.lp_kl([0.5, 0.4], 0.1)


# --- SIREN [P11] -------------------------------------------------------------------------------


@given(st.integers(2, 6), st.data())
def test_nucleus_mask_entropy_bound_and_gradient_support(V, data):
    z = _logits(data.draw, (V,), 2.0)
    pi = _softmax(z)
    p = data.draw(st.floats(0.05, 1.0))
    mask = misc.nucleus_mask(pi, p)
    # definition: the k most likely tokens, k the least with top-k mass >= p
    order = np.argsort(-pi, kind="stable")
    k = int(np.argmax(np.cumsum(pi[order]) >= p - 1e-15)) + 1
    assume(abs(np.cumsum(pi[order])[k - 1] - p) > 1e-12)
    expected = np.zeros(V, dtype=bool)
    expected[order[:k]] = True
    assert np.array_equal(mask, expected)
    H = misc.nucleus_entropy(pi, mask)
    assert H <= np.log(mask.sum()) + 1e-12
    g = misc.nucleus_entropy_logit_gradient(pi, mask)

    def H_of(v):
        q = _softmax(v)[mask]
        q = q / q.sum()
        return float(-(q * np.log(q)).sum())

    assert np.allclose(g, _five_point(H_of, z), rtol=0, atol=1e-9)
    assert np.all(g[~mask] == 0.0)
    if not mask.all():  # planted: the full entropy's gradient leaks outside the nucleus
        full = _five_point(lambda v: float(-(_softmax(v) * np.log(_softmax(v))).sum()), z)
        assert np.abs(full[~mask]).max() > 1e-9


def test_nucleus_boundary_and_errors():
    # the smallest set with mass >= p: mass exactly p stops the nucleus
    assert np.array_equal(misc.nucleus_mask([0.5, 0.3, 0.2], 0.5), [True, False, False])
    assert np.array_equal(misc.nucleus_mask([0.2, 0.3, 0.5], 0.8), [False, True, True])
    assert np.array_equal(misc.nucleus_mask([0.25, 0.25, 0.5], 0.6), [True, False, True])
    H = misc.nucleus_entropy([0.25, 0.25, 0.5], [True, True, False])
    assert H == pytest.approx(np.log(2), abs=1e-15)
    with pytest.raises(ValueError, match="top_p"):
        misc.nucleus_mask([0.5, 0.5], 0.0)
    with pytest.raises(ValueError, match="no probability mass"):
        misc.nucleus_entropy([1.0, 0.0], [False, True])


@given(st.lists(st.floats(0, 3), min_size=1, max_size=30), st.floats(0, 1))
def test_top_quantile_mask(H, fraction):
    H = np.array(H)
    m = misc.top_quantile_mask(H, fraction)
    assert m.sum() == int(np.ceil(fraction * H.size))
    if m.any() and (~m).any():
        assert H[m].min() >= H[~m].max()


# --- ProRL [P5] --------------------------------------------------------------------------------


@given(tree_mdps(rewards="float", max_leaves=64), st.data())
def test_kl_and_its_gradient_vanish_after_reset(tree, data):
    policy = data.draw(tree_policies(tree))
    pi_ref = misc.reset_reference(tree, policy)
    assert np.all(sequence_kl(tree, policy.pi(tree), pi_ref) == 0.0)
    zero_reward = tree.replace(R=np.zeros_like(tree.R))
    g = kl_objective_gradient(zero_reward, policy, pi_ref, 0.05)
    assert np.abs(g.z_shared).max() <= 1e-15 and np.abs(g.z_prompt).max() <= 1e-15


@given(tree_mdps(rewards="float", max_leaves=64), st.data(), st.integers(1, 4))
def test_prorl_m_phases_equal_effective_beta_over_m(tree, data, m):
    pi0 = data.draw(tree_policies(tree, scale=st.floats(0, 1.5))).pi(tree)
    beta = data.draw(st.floats(0.2, 2.0))
    phases = misc.prorl_phases(tree, pi0, beta, m)
    p0 = leaf_probs(tree, pi0)

    def posterior(n_phases):
        w = p0 * np.exp(n_phases * tree.R / beta)
        return w / w.sum(axis=1, keepdims=True)

    assert phases.shape == (m + 1,) + pi0.shape
    assert np.array_equal(phases[0], pi0)
    got = leaf_probs(tree, phases[m])
    assert np.allclose(got, posterior(m), rtol=0, atol=1e-12)
    assert misc.effective_beta(beta, m) == beta / m
    # planted: the audit's off-by-one ("after m resets" = m + 1 phases) is caught
    if np.ptp(tree.R[p0 > 0]) > 0.1:
        assert not np.allclose(got, posterior(m + 1), rtol=0, atol=1e-6)


# --- CURE [P12] --------------------------------------------------------------------------------


def _prefix_of(tree, y, t):
    return y // tree.n_vocab ** (tree.depth - t)


def _cure_reference(tree, pi, K, crit):
    """q(y) = (pi(y) + K sum_y' pi(y') pi(y | s_crit(y'))) / (1 + K), by enumeration."""
    p = leaf_probs(tree, pi)
    ys = np.arange(tree.n_leaves)
    q = p.copy()
    for x in range(tree.n_prompts):
        for y2 in ys[p[x] > 0]:
            t = crit[x, y2]
            under = _prefix_of(tree, ys, t) == _prefix_of(tree, y2, t)
            q[x] += K * p[x, y2] * np.where(under, p[x], 0.0) / p[x, under].sum()
    return q / (1 + K)


@given(tree_mdps(max_leaves=64, eos=False), st.data(), st.integers(0, 3))
def test_cure_reweighting_matches_enumeration(tree, data, K):
    pi = data.draw(tree_policies(tree)).pi(tree)
    crit = misc.critical_depths(tree, pi)
    q, w = misc.cure_reweighting(tree, pi, K)
    assert np.allclose(q, _cure_reference(tree, pi, K, crit), rtol=0, atol=1e-12)
    assert np.allclose(q.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    assert np.allclose(q, leaf_probs(tree, pi) * w, rtol=0, atol=1e-15)
    assert np.allclose(misc.node_visits(tree, leaf_probs(tree, pi)), reach_probs(tree, pi),
                       rtol=0, atol=1e-12)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    other = rng.integers(0, tree.depth, size=crit.shape)
    assert np.allclose(misc.cure_reweighting(tree, pi, K, other)[0],
                       _cure_reference(tree, pi, K, other), rtol=0, atol=1e-12)


@given(tree_mdps(max_leaves=64, eos=False), st.data())
def test_continuation_probs_are_conditionals(tree, data):
    pi = data.draw(tree_policies(tree)).pi(tree)
    node = np.array([data.draw(st.integers(0, tree.n_nodes - 1)) for _ in range(tree.n_prompts)])
    p = leaf_probs(tree, pi)
    got = misc.continuation_probs(tree, pi, node)
    ys = np.arange(tree.n_leaves)
    for x, s in enumerate(node):
        t = int(np.searchsorted(tree.offsets, s, side="right")) - 1
        under = _prefix_of(tree, ys, t) == s - tree.offsets[t]
        assume(p[x, under].sum() > 0)
        assert np.allclose(got[x], np.where(under, p[x], 0) / p[x, under].sum(), rtol=0, atol=1e-12)


def _cure_instance():
    """Root peaked; its likely child moderately uncertain; below it one flat node (critical
    when reached) and two peaked ones (then the level-1 node is critical): the rule looks ahead."""
    tree = TreeMDP(np.zeros((1, 27)), n_vocab=3, depth=3)
    z = np.zeros((1, tree.n_nodes, 3))
    z[0, 0] = [3.0, 0.0, -1.0]
    z[0, 1:4] = [[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    z[0, 4:7] = [[0.0, 0.0, 0.0], [4.0, 0.0, 0.0], [0.0, 4.0, 0.0]]
    z[0, 7:] = np.random.default_rng(7).normal(0, 2.0, (6, 3))
    return tree, _softmax(z)


def _counts(leaves, n_leaves):
    return np.bincount(np.ravel(leaves), minlength=n_leaves).astype(float)


def test_cure_batch_samples_match_exact_distribution_and_catch_biased_sampler():
    tree, pi = _cure_instance()
    n, K = 3000, 2
    batch = misc.cure_batch(tree, pi, n, K, seed=11)
    q, _ = misc.cure_reweighting(tree, pi, K)
    # the K branches of one original share its prefix: test the originals, and the first
    # branch of each original (i.i.d. across originals), each at level 1e-3 / 2 (Bonferroni)
    p = leaf_probs(tree, pi)[0]
    _, _, p_orig = g_test(_counts(batch[0, :n], 27), n * p)
    branch_dist = ((1 + K) * q[0] - p) / K
    _, _, p_branch = g_test(_counts(batch[0, n::K], 27), n * branch_dist)
    assert min(p_orig, p_branch) > 1e-3 / 2
    assert batch.shape == (1, n * (1 + K))
    # planted: "branches" re-sampled from the root (plain on-policy) are rejected
    plain = sample_leaves(tree, pi, n, seed=12)
    _, _, p_plain = g_test(_counts(plain, 27), n * branch_dist)
    assert p_plain < 1e-3


def test_cure_reweighting_differs_from_on_policy_on_instance():
    tree, pi = _cure_instance()
    q, _ = misc.cure_reweighting(tree, pi, 1)
    visits, d = misc.node_visits(tree, q), reach_probs(tree, pi)
    assert visits[0, 0] == pytest.approx(1.0, abs=1e-12)
    # rollouts through node 4 branch there (they stay in it); those through nodes 5 and 6
    # branch at node 1 and re-draw its token, reaching node 4 with probability pi(0|1):
    # visits(4) = (d(4) + d(4) + d(1) (1 - pi(0|1)) pi(0|1)) / 2
    d1, p0 = d[0, 1], pi[0, 1, 0]
    assert visits[0, 4] == pytest.approx((2 * d[0, 4] + d1 * (1 - p0) * p0) / 2, abs=1e-12)
    assert visits[0, 4] - d[0, 4] > 0.05


@given(tree_mdps(max_leaves=64, eos=False), st.data(), st.integers(1, 3))
def test_cure_prefix_decided_critical_rule_is_on_policy(tree, data, K):
    """When the critical position is decided from the prefix alone (a stopping time: here the
    first node whose entropy exceeds h), the combined batch is exactly on-policy; the
    reweighting comes from rules that look ahead (the default, highest entropy on the path)."""
    pi = data.draw(tree_policies(tree)).pi(tree)
    h = data.draw(st.floats(0.0, 1.0))
    nodes, _ = path_nodes(tree, np.arange(tree.n_leaves))
    over = entropy(pi)[:, nodes] > h  # (n_prompts, n_leaves, D)
    first = np.where(over.any(axis=-1), over.argmax(axis=-1), tree.depth - 1)
    q, w = misc.cure_reweighting(tree, pi, K, first)
    p = leaf_probs(tree, pi)
    assert np.allclose(q, p, rtol=0, atol=1e-12)
    assert np.allclose(w[p > 0], 1.0, rtol=0, atol=1e-12)
    # planted contrast: the look-ahead rule on the instance above is off-policy
    tree2, pi2 = _cure_instance()
    assert not np.allclose(misc.cure_reweighting(tree2, pi2, K)[0], leaf_probs(tree2, pi2),
                           rtol=0, atol=1e-3)


# --- Echo Chamber [P6] -------------------------------------------------------------------------


def _first_token_success(tree, pi):
    p = leaf_probs(tree, pi).reshape(tree.n_prompts, tree.n_vocab, -1)
    R = tree.R.reshape(p.shape)
    mass = p.sum(axis=-1)
    return np.divide((p * R).sum(axis=-1), mass, out=np.zeros_like(mass), where=mass > 0)


@given(tree_mdps(rewards="float", eos=False, max_leaves=64, depth=st.integers(2, 3)), st.data())
def test_format_logit_gradient_is_replicator(tree, data):
    z_shared = _logits(data.draw, (tree.n_nodes, tree.n_vocab), 1.5)
    policy = TreePolicy.shared(z_shared, tree.n_prompts)
    pi = policy.pi(tree)
    s = _first_token_success(tree, pi)
    assert np.allclose(misc.format_success(tree, pi), s, rtol=0, atol=1e-12)
    g = expected_reward_gradient(tree, policy).z_shared[0]
    w = pi[0, 0]
    assert np.allclose(g, misc.replicator_gradient(w, s.mean(axis=0)), rtol=0, atol=1e-12)
    if abs(w @ s.mean(axis=0)) > 1e-9:  # planted: no baseline, w_f s_f
        assert not np.allclose(g, w * s.mean(axis=0), rtol=0, atol=1e-12)
    # per-prompt tables: prompt x's root logits get (1/n) w_x (s_x - w_x . s_x)
    tab = TreePolicy.tabular(policy.logits())
    g_tab = expected_reward_gradient(tree, tab).z_prompt[:, 0]
    want = misc.replicator_gradient(pi[:, 0], s) / tree.n_prompts
    assert np.allclose(g_tab, want, rtol=0, atol=1e-12)


# --- 1-shot RLVR [P4] --------------------------------------------------------------------------


def _one_shot_tree():
    R = np.zeros((4, 9))
    R[:, [1, 5]] = 1.0
    R[2, 7] = 1.0
    return TreeMDP(R, n_vocab=3, depth=2)


def test_one_shot_tabular_leaves_other_prompts_bit_identical():
    tree = _one_shot_tree()
    before = TreePolicy.random(tree, seed=3)
    after = misc.one_shot_train(tree, before, 1, 0.5, 5)
    untouched = misc.untouched_prompts(tree, before, after)
    assert np.array_equal(untouched, [True, False, True, True])
    assert np.array_equal(np.delete(after.z_prompt, 1, 0), np.delete(before.z_prompt, 1, 0))
    # planted: a step on the mean over prompts (not one prompt) moves the others
    leaky = before.step(expected_reward_gradient(tree, before), 0.5)
    assert not misc.untouched_prompts(tree, before, leaky)[[0, 2, 3]].all()


def test_one_shot_with_shared_logits_transfers():
    tree = _one_shot_tree()
    before = TreePolicy.random(tree, shared_scale=2.0, prompt_scale=1.0, c=0.3, seed=4)
    after = misc.one_shot_train(tree, before, 1, 0.5, 5)
    assert not misc.untouched_prompts(tree, before, after)[[0, 2, 3]].any()
    with pytest.raises(ValueError, match="out of range"):
        misc.one_shot_gradient(tree, before, 4)


@pytest.mark.parametrize("shared", [False, True])
def test_one_shot_sampled_grpo_training(shared):
    from tabular.rlvr.losses import preset
    from tabular.rlvr.training import SGD

    tree = _one_shot_tree()
    before = (TreePolicy.random(tree, shared_scale=2.0, prompt_scale=1.0, c=0.3, seed=5) if shared
              else TreePolicy.random(tree, seed=5))
    after = misc.one_shot_train_sampled(tree, before, 1, preset("grpo"), n=8, n_steps=4,
                                        optimizer=SGD(0.5), seed=6)
    untouched = misc.untouched_prompts(tree, before, after)
    assert not untouched[1]  # the training prompt moved
    if shared:
        assert not untouched[[0, 2, 3]].any()
    else:
        assert untouched[[0, 2, 3]].all()
        assert np.array_equal(np.delete(after.z_prompt, 1, 0), np.delete(before.z_prompt, 1, 0))
        # planted: the same training without the prompt mask moves the other tables
        from tabular.rlvr.training import train

        unmasked = train(tree, before, preset("grpo"), n=8, n_steps=4, optimizer=SGD(0.5),
                         ks=(1,), seed=6).policy
        assert not misc.untouched_prompts(tree, before, unmasked)[[0, 2, 3]].all()
