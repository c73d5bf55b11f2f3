"""Episode sampling: alias tables, per-step marginals (G-tests with planted errors), padding, seeding."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import chi2_contingency, power_divergence

from tabular import _kernels
from tabular._reference import sample_episodes_ref
from tabular.generators import gridworld
from tabular.mdp import TabularMDP, validate_policy
from tabular.planning import occupancy
from tabular.sampling import Episodes, _alias_tables, sample_episodes
from tabular.strategies import mdps, policies

ALPHA = 1e-3  # family-wise level of each statistical test (Bonferroni over the steps tested)


# --- alias tables -----------------------------------------------------------------------


def alias_probabilities(table):
    """Pr(k) = (q_k + sum_{j: alias_j = k} (1 - q_j)) / K for each row of an (M, K, 2) table."""
    M, K, _ = table.shape
    prob = table[:, :, 0].copy()
    for m in range(M):
        np.add.at(prob[m], table[m, :, 1].astype(int), 1.0 - table[m, :, 0])
    return prob / K


def test_alias_tables_reproduce_the_distribution_exactly():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(50), size=40)
    p[::3, ::4] = 0.0  # zero-probability outcomes
    p /= p.sum(axis=1, keepdims=True)
    p[0] = 0.0
    p[0, 7] = 1.0  # a point mass
    table = _alias_tables(p)
    assert np.all((table[:, :, 0] >= 0) & (table[:, :, 0] <= 1))
    np.testing.assert_allclose(alias_probabilities(table), p, rtol=0, atol=1e-14)
    zero = p == 0
    assert np.all(table[:, :, 0][zero] == 0.0)  # a zero-probability column always defers
    np.testing.assert_allclose(alias_probabilities(_alias_tables(np.ones((1, 1)))), [[1.0]])


# --- G-test of per-step marginals -------------------------------------------------------


def g_test(counts, expected):
    """p-value of the G-test of ``counts`` against ``expected`` (same total), cells with an
    expected count below 5 pooled into one; an observation in a zero-probability cell gives 0."""
    counts = np.asarray(counts, dtype=float)
    expected = np.asarray(expected, dtype=float) * counts.sum() / np.sum(expected)
    if np.any(counts[expected == 0] > 0):
        return 0.0
    small = expected < 5
    obs = np.append(counts[~small], counts[small].sum())
    exp = np.append(expected[~small], expected[small].sum())
    keep = exp > 0
    return power_divergence(obs[keep], exp[keep], lambda_="log-likelihood").pvalue


def marginal_pvalues(episodes, d, steps):
    """G-test p-value of the (s_h, a_h) counts of the episodes against ``n * d[h]`` for each
    tested step h (one pair per independent episode)."""
    S, A = d.shape[1:]
    out = []
    for h in steps:
        pairs = episodes.states[:, h] * A + episodes.actions[:, h]
        out.append(g_test(np.bincount(pairs, minlength=S * A), d[h].ravel()))
    return np.array(out)


def random_inhomogeneous(seed, S=4, A=3, H=6):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(S), size=(H, S, A))
    P[:, 0, 0] = np.eye(S)[1]  # deterministic rows
    mdp = TabularMDP(P, rng.uniform(-1, 1, (H, S, A)), rng.dirichlet(np.ones(S)), H=H)
    pi = rng.dirichlet(np.ones(A), size=(H, S))
    pi[:, 2] = np.eye(A)[0]  # zero-probability actions
    return mdp, pi


def truncated_discounted(seed, S=5, A=2, H=5):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(S), size=(S, A))
    mdp = TabularMDP(P, rng.uniform(-1, 1, (S, A)), rng.dirichlet(np.ones(S)), gamma=0.9)
    pi = rng.integers(0, A, S)
    return mdp, pi


N_EPISODES = 20_000


def test_marginals_time_inhomogeneous_stochastic_policy():
    mdp, pi = random_inhomogeneous(1)
    steps = [0, 2, 5]
    episodes = sample_episodes(mdp, pi, N_EPISODES, seed=11)
    p = marginal_pvalues(episodes, occupancy(mdp, pi), steps)
    assert p.min() >= ALPHA / len(steps), p


def test_marginals_truncated_discounted_deterministic_policy():
    mdp, pi = truncated_discounted(2)
    steps = [1, 4]
    episodes = sample_episodes(mdp, pi, N_EPISODES, H=5, seed=12)
    d = occupancy(mdp.replace(H=5), pi)  # per-step distributions of the first 5 steps
    p = marginal_pvalues(episodes, d, steps)
    assert p.min() >= ALPHA / len(steps), p


def test_marginal_g_test_catches_a_perturbed_P():
    mdp, pi = random_inhomogeneous(1)
    steps = [0, 2, 5]
    S = mdp.S
    wrong = mdp.replace(P=0.9 * mdp.P + 0.1 / S)  # a sampler reading a slightly wrong P
    episodes = sample_episodes(wrong, pi, N_EPISODES, seed=11)
    p = marginal_pvalues(episodes, occupancy(mdp, pi), steps)
    assert p.min() < ALPHA / len(steps), p


def test_marginal_g_test_catches_an_off_by_one_step_index():
    mdp, pi = random_inhomogeneous(1)
    steps = [0, 2, 5]
    # A sampler that reads P and R at step h + 1 instead of h (the last step wraps).
    shifted = mdp.replace(P=np.roll(mdp.P, -1, axis=0), R=np.roll(mdp.R, -1, axis=0))
    episodes = sample_episodes(shifted, pi, N_EPISODES, seed=11)
    p = marginal_pvalues(episodes, occupancy(mdp, pi), steps)
    assert p.min() < ALPHA / len(steps), p


# --- kernel against the Python reference, in distribution --------------------------------


def small_episodic():
    """4 states, state 3 terminal, 2 actions; reward -1 off the terminal state."""
    P = np.array([
        [[0.2, 0.5, 0.2, 0.1], [0.0, 0.0, 0.6, 0.4]],
        [[0.5, 0.0, 0.3, 0.2], [0.1, 0.8, 0.1, 0.0]],
        [[0.0, 0.3, 0.3, 0.4], [0.5, 0.5, 0.0, 0.0]],
        [[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0]],
    ])
    R = np.array([[-1.0, -0.5], [-1.0, -0.2], [-0.3, -1.0], [0.0, 0.0]])
    mdp = TabularMDP(P, R, [0.5, 0.3, 0.2, 0.0], terminal=[3])
    pi = np.array([[0.5, 0.5], [0.3, 0.7], [0.9, 0.1], [1.0, 0.0]])
    return mdp, pi


def two_sample_pvalues(a, b, A, steps):
    """Likelihood-ratio test of equal (s_h, a_h) distributions (a = -1 after termination) in
    two samples, per step; columns with an expected count below 5 pooled."""
    out = []
    for h in steps:
        codes = [ep.states[:, h] * (A + 1) + ep.actions[:, h] + 1 for ep in (a, b)]
        K = int(max(c.max() for c in codes)) + 1
        table = np.array([np.bincount(c, minlength=K) for c in codes], dtype=float)
        table = table[:, table.sum(axis=0) > 0]
        expected = table.sum(axis=0) * table.sum(axis=1, keepdims=True) / table.sum()
        small = expected.min(axis=0) < 5
        if small.any():
            table = np.column_stack([table[:, ~small], table[:, small].sum(axis=1)])
        out.append(chi2_contingency(table, correction=False, lambda_="log-likelihood").pvalue)
    return np.array(out)


def reference_episodes(mdp, pi, n, H, seed):
    pi_prob = validate_policy(mdp, pi)
    return Episodes(*sample_episodes_ref(mdp, pi_prob, n, H, np.random.default_rng(seed)))


def test_kernel_matches_reference_sampler_in_distribution():
    mdp, pi = small_episodic()
    steps = [1, 3, 5]
    kernel = sample_episodes(mdp, pi, 20_000, H=6, seed=3)
    ref = reference_episodes(mdp, pi, 3_000, 6, seed=4)
    p = two_sample_pvalues(kernel, ref, mdp.A, steps)
    assert p.min() >= ALPHA / len(steps), p
    # Rewards and lengths from the reference follow the same convention.
    np.testing.assert_array_equal(ref.rewards == 0, ref.actions == -1)


def test_two_sample_test_catches_a_perturbed_reference():
    mdp, pi = small_episodic()
    steps = [1, 3, 5]
    wrong = mdp.replace(P=0.8 * mdp.P + 0.2 * np.eye(4)[3])  # terminates more often
    kernel = sample_episodes(mdp, pi, 20_000, H=6, seed=3)
    ref = reference_episodes(wrong, pi, 3_000, 6, seed=4)
    p = two_sample_pvalues(kernel, ref, mdp.A, steps)
    assert p.min() < ALPHA / len(steps), p


# --- conventions ------------------------------------------------------------------------


def test_padding_after_termination():
    mdp = gridworld("T...\n....\n....\n...T")
    ep = sample_episodes(mdp, np.full((mdp.S, mdp.A), 0.25), 300, H=40, seed=5)
    H = 40
    assert (ep.lengths < H).any() and (ep.lengths == H).any()
    for s, a, r, L in zip(ep.states, ep.actions, ep.rewards, ep.lengths):
        assert not mdp.terminal[s[:L]].any()
        assert np.all(a[:L] >= 0) and np.all(r[:L] == -1.0)
        assert np.all(a[L:] == -1) and np.all(r[L:] == 0.0)
        if L < H:
            assert mdp.terminal[s[L]] and np.all(s[L:] == s[L])


def test_deterministic_policy_records_its_actions_and_pads():
    # The deterministic shortcut samples from tables of the rows (s, pi(s)) alone; the actions
    # it records must still be pi(s_h), and the padding after termination (-1, 0) must hold.
    mdp = gridworld("T...\n....\n....\n...T")
    pi = np.arange(mdp.S) % mdp.A
    ep = sample_episodes(mdp, pi, 37, H=30, seed=8)  # 37: not a multiple of the kernel's block
    assert (ep.lengths < 30).any()
    steps = np.arange(30) < ep.lengths[:, None]
    s, a = ep.states[:, :30], pi[ep.states[:, :30]]
    np.testing.assert_array_equal(ep.actions, np.where(steps, a, -1))
    np.testing.assert_array_equal(ep.rewards, np.where(steps, mdp.R[s, a], 0.0))


def test_episode_starting_in_a_terminal_state_is_all_padding():
    mdp, pi = small_episodic()
    mdp = mdp.replace(mu0=[0.0, 0.0, 0.5, 0.5])
    ep = sample_episodes(mdp, pi, 200, H=3, seed=6)
    start_terminal = ep.states[:, 0] == 3
    assert 0 < start_terminal.sum() < 200
    assert np.all(ep.lengths[start_terminal] == 0)
    assert np.all(ep.states[start_terminal] == 3) and np.all(ep.actions[start_terminal] == -1)
    assert np.all(ep.rewards[start_terminal] == 0.0)
    assert np.all(ep.lengths[~start_terminal] >= 1)


@given(st.data())
def test_episodes_follow_the_model(data):
    mdp = data.draw(mdps(kind=st.sampled_from(["discounted", "finite", "episodic"]),
                         time_inhomogeneous=False) | mdps(kind="finite", time_inhomogeneous=True))
    pi = data.draw(policies(mdp))
    H = mdp.H if mdp.H is not None else data.draw(st.integers(1, 6))
    ep = sample_episodes(mdp, pi, 30, H=H, seed=data.draw(st.integers(0, 2**32)))
    pi_prob = np.broadcast_to(validate_policy(mdp, pi), (H, mdp.S, mdp.A))
    assert ep.states.shape == (30, H + 1) and ep.actions.shape == (30, H)
    assert ep.rewards.shape == (30, H) and ep.lengths.shape == (30,)
    assert ep.states.dtype == ep.actions.dtype == ep.lengths.dtype == np.int64
    assert np.all(mdp.mu0[ep.states[:, 0]] > 0)
    for e in range(30):
        for h in range(ep.lengths[e]):
            s, a, s_next = ep.states[e, h], ep.actions[e, h], ep.states[e, h + 1]
            assert pi_prob[h, s, a] > 0
            assert mdp.P_h(h)[s, a, s_next] > 0
            assert ep.rewards[e, h] == mdp.R_h(h)[s, a]
        assert np.all(ep.actions[e, ep.lengths[e]:] == -1)


def test_same_seed_same_episodes():
    mdp, pi = random_inhomogeneous(3)
    runs = [sample_episodes(mdp, pi, 50, seed=s) for s in (7, 7, np.random.SeedSequence(7), 8)]
    for field in ("states", "actions", "rewards", "lengths"):
        np.testing.assert_array_equal(getattr(runs[0], field), getattr(runs[1], field))
        np.testing.assert_array_equal(getattr(runs[0], field), getattr(runs[2], field))
    assert not np.array_equal(runs[0].states, runs[3].states)
    rng = np.random.default_rng(7)
    first, second = sample_episodes(mdp, pi, 50, seed=rng), sample_episodes(mdp, pi, 50, seed=rng)
    np.testing.assert_array_equal(first.states, runs[0].states)  # a Generator's stream is shared
    assert not np.array_equal(first.states, second.states)


def test_one_hot_float_policy_is_the_deterministic_policy():
    mdp, pi = truncated_discounted(4)
    a = sample_episodes(mdp, pi, 100, H=4, seed=1)
    b = sample_episodes(mdp, np.eye(mdp.A)[pi], 100, H=4, seed=1)
    np.testing.assert_array_equal(a.states, b.states)
    np.testing.assert_array_equal(a.actions, b.actions)


@pytest.mark.parametrize("make", [truncated_discounted, random_inhomogeneous])
def test_deterministic_shortcut_draws_what_the_full_tables_draw(make):
    # sample_episodes restricts P to the rows (h, s, pi_h(s)) for a deterministic policy; the
    # kernel on the full alias tables must give the same arrays for the same seed.
    mdp, pi = make(9)
    pi_det = np.argmax(validate_policy(mdp, pi), axis=-1).reshape(-1, mdp.S)
    args = (_alias_tables(mdp.P.reshape(-1, mdp.S)), mdp.R.reshape(-1, mdp.S, mdp.A),
            _alias_tables(mdp.mu0.reshape(1, mdp.S)), pi_det, np.zeros((1, mdp.A, 2)), False,
            mdp.terminal, 200, 5, np.random.default_rng(2))
    full = _kernels.sample_episodes_kernel(*args)
    short = sample_episodes(mdp, pi_det if mdp.H else pi_det[0], 200, H=5, seed=2)
    for got, want in zip((short.states, short.actions, short.rewards, short.lengths), full):
        np.testing.assert_array_equal(got, want)


def test_no_episodes():
    mdp, pi = truncated_discounted(4)
    ep = sample_episodes(mdp, pi, 0, H=3, seed=0)
    assert ep.states.shape == (0, 4) and ep.lengths.shape == (0,)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(n=5), ValueError, "H is required"),
        (dict(n=5, H=0), ValueError, "H = 0"),
        (dict(n=-1, H=3), ValueError, "n = -1"),
        (dict(n=2.0, H=3), TypeError, "n must be an int"),
        (dict(n=5, H=3, pi=np.array([0, 5, 0, 0, 0])), ValueError, r"pi\[1\] = 5"),
        (dict(n=5, H=3, seed="x"), TypeError, "seed"),
    ],
)
def test_bad_input(kwargs, error, match):
    mdp, pi = truncated_discounted(4)
    pi = kwargs.pop("pi", pi)
    with pytest.raises(error, match=match):
        sample_episodes(mdp, pi, **kwargs)


def test_horizon_beyond_the_mdp_horizon():
    mdp, pi = random_inhomogeneous(3)
    with pytest.raises(ValueError, match="exceeds"):
        sample_episodes(mdp, pi, 5, H=7)
    assert sample_episodes(mdp, pi[0], 5, H=2, seed=0).actions.shape == (5, 2)
