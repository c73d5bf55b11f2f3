"""Offline MDP datasets: i.i.d. transitions, trajectories, statistics, mixture behaviours, C*."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from proofs_check.stats import g_test
from tabular.generators import chain, garnet, gridworld, river_swim
from tabular.planning import C_star, backward_induction, occupancy, value_iteration
from tabular.sampling import (
    Transitions,
    _alias_tables,
    _statistics_kernel,
    _statistics_numpy,
    _transitions_kernel,
    _transitions_numpy,
    episodes_to_transitions,
    mixture_behaviour,
    sample_episodes,
    sample_transitions,
    transition_statistics,
)
from tabular.strategies import mdps

LEVEL = 1e-3  # family-wise level of each statistical test


def garnet_mu(S=4, A=3, seed=0, H=None):
    mdp = garnet(S, A, branching=S, gamma=0.9, H=H, seed=seed)
    rng = np.random.default_rng(seed + 100)
    shape = (S, A) if H is None else (H, S, A)
    mu = rng.dirichlet(np.ones(S * A), size=1 if H is None else H).reshape(shape)
    return mdp, mu


# --- the container ----------------------------------------------------------------------


def test_transitions_validates_and_names_the_entry():
    ok = {"s": [0, 1], "a": [1, 0], "r": [0.5, 1.0], "s_next": [1, 1], "S": 2, "A": 2}
    data = Transitions(**ok)
    assert data.N == 2 and data.s.dtype == np.int64 and data.r.dtype == np.float64
    with pytest.raises(ValueError, match=r"s\[1\] = 2 is not a state"):
        Transitions(**{**ok, "s": [0, 2]})
    with pytest.raises(ValueError, match=r"a\[0\] = -1 is not an action"):
        Transitions(**{**ok, "a": [-1, 0]})
    with pytest.raises(ValueError, match=r"s_next\[0\] = 5"):
        Transitions(**{**ok, "s_next": [5, 0]})
    with pytest.raises(ValueError, match=r"r\[1\] = nan is not finite"):
        Transitions(**{**ok, "r": [0.0, np.nan]})
    with pytest.raises(ValueError, match="equal lengths"):
        Transitions(**{**ok, "r": [0.0]})
    with pytest.raises(ValueError, match="both h"):
        Transitions(**ok, h=[0, 0])
    with pytest.raises(ValueError, match=r"h\[1\] = 3 is not a step"):
        Transitions(**ok, h=[0, 3], H=3)
    with pytest.raises(TypeError, match="integers"):
        Transitions(**{**ok, "s": [0.0, 1.0]})
    empty = Transitions(np.zeros(0, int), np.zeros(0, int), np.zeros(0), np.zeros(0, int), 2, 2)
    stats = transition_statistics(empty)
    assert empty.N == 0 and stats.N == 0 and stats.counts.shape == (2, 2)


# --- i.i.d. transitions -----------------------------------------------------------------


@pytest.mark.parametrize("bernoulli", [False, True])
def test_kernel_matches_numpy_reference_bit_for_bit(bernoulli):
    mdp, mu = garnet_mu()
    S, A = mdp.S, mdp.A
    pair_tab = _alias_tables(mu.reshape(1, S * A))
    P_tab = _alias_tables(mdp.P.reshape(S * A, S))
    R = np.ascontiguousarray(mdp.R.reshape(-1))
    got = _transitions_kernel(pair_tab, P_tab, R, bernoulli, A, 5000, np.random.default_rng(7))
    ref = _transitions_numpy(pair_tab, P_tab, R, bernoulli, A, 5000, np.random.default_rng(7))
    for x, y in zip(got, ref):
        np.testing.assert_array_equal(x, y)


def test_same_seed_same_dataset():
    mdp, mu = garnet_mu()
    a = sample_transitions(mdp, mu, 1000, seed=3)
    b = sample_transitions(mdp, mu, 1000, seed=np.random.SeedSequence(3))
    c = sample_transitions(mdp, mu, 1000, seed=4)
    for name in ("s", "a", "r", "s_next"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.s_next, c.s_next)


def pair_and_next_state_pvalues(mdp, mu, data):
    """G-test p-values: the (s, a) counts against N mu, and the next states of each of the
    three most frequent pairs against P[s, a]."""
    stats = transition_statistics(data)
    pvals = [g_test(stats.counts.ravel(), data.N * mu.ravel())[2]]
    for k in np.argsort(stats.counts.ravel())[::-1][:3]:
        s, a = divmod(int(k), mdp.A)
        pvals.append(g_test(stats.transition_counts[s, a], stats.counts[s, a] * mdp.P[s, a])[2])
    return pvals


def test_pairs_follow_mu_and_next_states_follow_P():
    mdp, mu = garnet_mu()
    data = sample_transitions(mdp, mu, 20_000, seed=11)
    pvals = pair_and_next_state_pvalues(mdp, mu, data)
    assert min(pvals) > LEVEL / len(pvals), pvals  # Bonferroni over the four tests
    np.testing.assert_array_equal(data.r, mdp.R[data.s, data.a])


def test_planted_biased_samplers_are_caught():
    mdp, mu = garnet_mu()
    # Planted error 1: pairs drawn from a mu with one pair's mass doubled, then renormalised.
    biased = mu.copy()
    biased[0, 0] *= 2.0
    biased /= biased.sum()
    data = sample_transitions(mdp, biased, 20_000, seed=11)
    assert g_test(transition_statistics(data).counts.ravel(), data.N * mu.ravel())[2] < LEVEL
    # Planted error 2: next states drawn from the rows of action 0 whatever the action.
    wrong = mdp.replace(P=np.repeat(mdp.P[:, :1, :], mdp.A, axis=1))
    data = sample_transitions(wrong, mu, 20_000, seed=11)
    assert min(pair_and_next_state_pvalues(mdp, mu, data)[1:]) < LEVEL / 4


def bernoulli_pvalues(mdp, data, k=3):
    """G-test p-values of the reward counts (ones, zeros) of the k most frequent pairs
    against Binomial(n(s, a), R(s, a))."""
    stats = transition_statistics(data)
    pvals = []
    for idx in np.argsort(stats.counts.ravel())[::-1][:k]:
        s, a = divmod(int(idx), mdp.A)
        n, ones = stats.counts[s, a], stats.reward_sums[s, a]
        pvals.append(g_test([ones, n - ones], [n * mdp.R[s, a], n * (1 - mdp.R[s, a])])[2])
    return pvals


def test_bernoulli_rewards_have_mean_R_and_a_planted_shift_is_caught():
    mdp, mu = garnet_mu()
    data = sample_transitions(mdp, mu, 20_000, rewards="bernoulli", seed=12)
    assert set(np.unique(data.r)) <= {0.0, 1.0}
    pvals = bernoulli_pvalues(mdp, data)
    assert min(pvals) > LEVEL / len(pvals), pvals  # Bonferroni over the three pairs
    # The pairs and next states still follow mu and P (same tests as deterministic rewards).
    pvals = pair_and_next_state_pvalues(mdp, mu, data)
    assert min(pvals) > LEVEL / len(pvals), pvals
    # Planted error: Bernoulli means shifted by 0.05 towards 1/2.
    shifted = mdp.replace(R=mdp.R + 0.05 * np.sign(0.5 - mdp.R))
    planted = sample_transitions(shifted, mu, 20_000, rewards="bernoulli", seed=12)
    assert min(bernoulli_pvalues(mdp, planted)) < LEVEL / 3


def test_bernoulli_rewards_per_step_and_bad_input():
    mdp, mu = garnet_mu(S=3, A=2, H=2)
    data = sample_transitions(mdp, mu, 50, rewards="bernoulli", seed=0)
    assert data.N == 100 and set(np.unique(data.r)) <= {0.0, 1.0}
    ones = mdp.replace(R=np.ones((3, 2)))  # Bernoulli(1) = 1 and Bernoulli(0) = 0 exactly
    np.testing.assert_array_equal(sample_transitions(ones, mu, 20, rewards="bernoulli").r, 1.0)
    with pytest.raises(ValueError, match=r"R\[1, 0\] = 1.5"):
        sample_transitions(mdp.replace(R=np.array([[0.0, 1.0], [1.5, 0.0], [0.0, 0.0]])), mu, 5,
                           rewards="bernoulli")
    with pytest.raises(ValueError, match="rewards must be"):
        sample_transitions(mdp, mu, 5, rewards="gaussian")


def test_per_step_data_follow_mu_h_and_P_h():
    mdp, mu = garnet_mu(S=3, A=2, H=3)
    P = np.stack([np.random.default_rng(h).dirichlet(np.ones(3), size=(3, 2)) for h in range(3)])
    mdp = mdp.replace(P=P)  # time-inhomogeneous: step h must use P_h
    data = sample_transitions(mdp, mu, 10_000, seed=2)
    assert data.N == 30_000 and data.H == 3
    np.testing.assert_array_equal(np.bincount(data.h), [10_000] * 3)
    stats = transition_statistics(data)
    assert stats.per_step and stats.counts.shape == (3, 3, 2)
    pvals = []
    for h in range(3):
        pvals.append(g_test(stats.counts[h].ravel(), 10_000 * mu[h].ravel())[2])
        s, a = np.unravel_index(np.argmax(stats.counts[h]), (3, 2))
        pvals.append(g_test(stats.transition_counts[h, s, a],
                            stats.counts[h, s, a] * P[h, s, a])[2])
    assert min(pvals) > LEVEL / len(pvals), pvals


def test_bad_mu_is_named():
    mdp, mu = garnet_mu()
    with pytest.raises(ValueError, match=r"mu has shape \(3, 4\), expected one of \(\(4, 3\),\)"):
        sample_transitions(mdp, mu.T, 10)
    with pytest.raises(ValueError, match="sums to"):
        sample_transitions(mdp, mu * 0.9, 10)
    bad = mu.copy()
    bad[1, 2] = -0.1
    with pytest.raises(ValueError, match=r"mu\[1, 2\]"):
        sample_transitions(mdp, bad, 10)
    with pytest.raises(ValueError, match=r"N = -1"):
        sample_transitions(mdp, mu, -1)
    finite, mu_h = garnet_mu(S=3, A=2, H=2)
    inhomogeneous = finite.replace(P=np.stack([finite.P, finite.P]))
    with pytest.raises(ValueError, match="time-inhomogeneous"):
        sample_transitions(inhomogeneous, mu_h[0], 10)
    assert sample_transitions(mdp, mu, 0).N == 0


# --- trajectories -----------------------------------------------------------------------


def test_episodes_become_consecutive_transitions():
    mdp = river_swim(5, gamma=0.9)
    episodes = sample_episodes(mdp, np.full((5, 2), 0.5), 50, H=7, seed=1)
    data = episodes_to_transitions(episodes, mdp.S, mdp.A)
    assert data.N == 350 and data.H == 7
    s, s_next = data.s.reshape(50, 7), data.s_next.reshape(50, 7)
    np.testing.assert_array_equal(s[:, 1:], s_next[:, :-1])  # s_{h+1} of step h starts step h+1
    np.testing.assert_array_equal(data.h.reshape(50, 7), np.tile(np.arange(7), (50, 1)))
    np.testing.assert_array_equal(data.r, mdp.R[data.s, data.a])
    pooled = episodes_to_transitions(episodes, mdp.S, mdp.A, per_step=False)
    assert pooled.h is None and transition_statistics(pooled).counts.shape == (5, 2)


def test_steps_after_termination_are_dropped():
    mdp = gridworld("S.G", gamma=1.0)
    episodes = sample_episodes(mdp, np.ones(mdp.S, dtype=np.int64), 4, H=5, seed=0)
    data = episodes_to_transitions(episodes, mdp.S, mdp.A)
    assert data.N == int(episodes.lengths.sum()) == 8  # two moves right, then padding
    with pytest.raises(TypeError, match="Episodes"):
        episodes_to_transitions(data, mdp.S, mdp.A)


# --- statistics -------------------------------------------------------------------------


@given(st.integers(1, 4), st.integers(1, 3), st.integers(1, 3), st.integers(0, 200),
       st.integers(0, 2**32 - 1))
def test_statistics_kernel_matches_numpy(S, A, G, N, seed):
    rng = np.random.default_rng(seed)
    g, s, a, s_next = (rng.integers(0, k, N) for k in (G, S, A, S))
    r = rng.normal(size=N)
    got = _statistics_kernel(g, s, a, r, s_next, G, S, A)
    ref = _statistics_numpy(g, s, a, r, s_next, G, S, A)
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(got[2], ref[2])
    assert got[0].sum() == N and np.array_equal(got[2].sum(axis=-1), got[0])


def test_statistics_by_hand():
    data = Transitions(s=[0, 0, 1, 0], a=[1, 1, 0, 0], r=[0.5, 1.0, 0.0, 0.25],
                       s_next=[1, 0, 1, 1], S=2, A=2)
    stats = transition_statistics(data)
    np.testing.assert_array_equal(stats.counts, [[1, 2], [1, 0]])
    np.testing.assert_array_equal(stats.reward_sums, [[0.25, 1.5], [0.0, 0.0]])
    np.testing.assert_array_equal(stats.transition_counts[0, 1], [1, 1])
    assert stats.N == 4 and not stats.per_step


# --- mixture behaviours and concentrability ---------------------------------------------


@given(mdps(kind="discounted", S=st.integers(1, 5), A=st.integers(1, 3), reward_range=(0.0, 1.0)),
       st.floats(0.0, 1.0))
def test_mixture_is_a_distribution_with_closed_form_C_star(mdp, lam):
    pi_star = value_iteration(mdp).pi
    d = occupancy(mdp, pi_star)
    # Flow equation of the normalised occupancy, independently of tabular.planning's solve.
    P_pi = mdp.P[np.arange(mdp.S), pi_star]
    d_S = d.sum(axis=1)
    np.testing.assert_allclose(d_S - mdp.gamma * P_pi.T @ d_S, (1 - mdp.gamma) * mdp.mu0,
                               atol=1e-10)
    mu = mixture_behaviour(mdp, pi_star, lam)
    assert mu.shape == (mdp.S, mdp.A) and np.all(mu >= 0)
    assert mu.sum() == pytest.approx(1.0, abs=1e-12)
    u = 1.0 / (mdp.S * mdp.A)
    assert d.sum() == pytest.approx(1.0, abs=1e-10)
    assert C_star(mdp, d, pi_star) == pytest.approx(1.0, abs=1e-12)  # mu = d^{pi*}
    if lam < 1.0:
        d_max = d.max()  # d / (lam d + (1 - lam) u) increases in d
        expected = d_max / (lam * d_max + (1 - lam) * u)
        assert C_star(mdp, mu, pi_star) == pytest.approx(expected, rel=1e-9)
        assert C_star(mdp, mu, pi_star) >= 1.0 - 1e-12
    else:
        assert C_star(mdp, mu, pi_star) == pytest.approx(1.0, abs=1e-12)


def test_finite_horizon_mixture_and_C_star():
    mdp = chain(4, p_success=0.8, gamma=1.0, H=5)
    pi_star = backward_induction(mdp).pi
    d = occupancy(mdp, pi_star)
    np.testing.assert_allclose(d.sum(axis=(1, 2)), 1.0, atol=1e-12)
    for h in range(4):  # forward recursion d_{h+1}(s') = sum d_h(s, a) P(s' | s, a)
        np.testing.assert_allclose(d[h + 1].sum(axis=1), np.einsum("sa,sat->t", d[h], mdp.P),
                                   atol=1e-12)
    mu = mixture_behaviour(mdp, pi_star, 0.25)
    assert mu.shape == (5, 4, 2)
    np.testing.assert_allclose(mu.sum(axis=(1, 2)), 1.0, atol=1e-12)
    d_max = d.max()
    assert C_star(mdp, mu, pi_star) == pytest.approx(d_max / (0.25 * d_max + 0.75 / 8), rel=1e-12)
    assert C_star(mdp, mixture_behaviour(mdp, pi_star, 1.0), pi_star) == pytest.approx(1.0)


def test_mixture_bad_input():
    mdp = chain(3)
    pi = np.zeros(3, dtype=np.int64)
    with pytest.raises(ValueError, match="lam = 1.5"):
        mixture_behaviour(mdp, pi, 1.5)
    with pytest.raises(TypeError, match="lam"):
        mixture_behaviour(mdp, pi, "0.5")
    with pytest.raises(ValueError, match="episodic"):
        mixture_behaviour(gridworld("S.G"), np.ones(3, dtype=np.int64), 0.5)
