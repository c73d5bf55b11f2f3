"""Tests for bandits.contextual: instances, joint (s, a) ~ mu data, C*, LCB-CB and the hard instances (Rashidinejad et al. 2021)."""
import itertools
import math

import numpy as np
import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from bandits import contextual as cb
from bandits.strategies import behaviour_distributions, contextual_bandits
from proofs_check.theorems import lcb_pessimism as theory

LEVEL = 1e-3


def cp_upper(k, n, level):
    return 1.0 if k == n else stats.beta.ppf(1 - level, k + 1, n - k)


def cp_lower(k, n, level):
    return 0.0 if k == 0 else stats.beta.ppf(level, k, n - k + 1)


def expert_mu(bandit):
    """``mu(s, a) = rho(s) 1{a = pi*(s)}`` (C* = 1)."""
    mu = np.zeros((bandit.S, bandit.nA))
    mu[np.arange(bandit.S), bandit.optimal_policy] = bandit.rho
    return mu


# --- the instance -----------------------------------------------------------------------

def test_instance_hand_values():
    bandit = cb.ContextualBandit([0.25, 0.75], [[0.2, 0.7], [0.9, 0.1]])
    assert (bandit.S, bandit.nA) == (2, 2)
    np.testing.assert_array_equal(bandit.optimal_policy, [1, 0])
    assert bandit.optimal_value == pytest.approx(0.25 * 0.7 + 0.75 * 0.9, abs=1e-15)
    assert bandit.value(np.array([0, 0])) == pytest.approx(0.25 * 0.2 + 0.75 * 0.9, abs=1e-15)
    np.testing.assert_allclose(bandit.value(np.array([[1, 0], [0, 1]])), [0.85, 0.25 * 0.2 + 0.75 * 0.1], atol=1e-15)
    assert cb.suboptimality(bandit, np.array([0, 0])) == pytest.approx(0.25 * 0.5, abs=1e-15)
    np.testing.assert_allclose(cb.suboptimality(bandit, np.array([[1, 0], [0, 1]])), [0.0, 0.125 + 0.6], atol=1e-15)
    with pytest.raises(ValueError):
        bandit.means[0, 0] = 0.5  # read-only


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: cb.ContextualBandit([0.5, 0.5], [[0.1, 1.2], [0.3, 0.4]]), r"means\[0, 1\] = 1.2 is outside \[0, 1\]"),
        (lambda: cb.ContextualBandit([0.5, 0.5], [0.1, 0.2]), r"means must have shape \(S, nA\)"),
        (lambda: cb.ContextualBandit([1.0], [[0.1, 0.2], [0.3, 0.4]]), r"rho must have shape \(2,\)"),
        (lambda: cb.ContextualBandit([0.6, 0.6], [[0.1], [0.2]]), r"rho sums to 1.2, not 1"),
        (lambda: cb.ContextualBandit([1.1, -0.1], [[0.1], [0.2]]), r"rho\[1\] = -0.1 is negative"),
    ],
)
def test_bad_instances(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# --- data -------------------------------------------------------------------------------

BANDIT = cb.ContextualBandit([0.5, 0.3, 0.2], [[0.2, 0.8], [0.5, 0.4], [0.9, 0.1]])
MU = np.array([[0.3, 0.1], [0.0, 0.3], [0.2, 0.1]])


def test_offline_dataset_support_shapes_and_seeding():
    contexts, actions, rewards = cb.offline_dataset(BANDIT, MU, 2000, seed=0)
    assert contexts.shape == actions.shape == rewards.shape == (2000,)
    assert contexts.dtype == actions.dtype == np.int64 and rewards.dtype == np.float64
    assert not np.any((contexts == 1) & (actions == 0))  # mu[1, 0] = 0
    assert set(np.unique(rewards)) <= {0.0, 1.0}
    again = cb.offline_dataset(BANDIT, MU, 2000, seed=0)
    for x, y in zip((contexts, actions, rewards), again):
        np.testing.assert_array_equal(x, y)


def test_dataset_statistics_against_a_loop():
    contexts, actions, rewards = cb.offline_dataset(BANDIT, MU, 300, seed=1)
    counts, sums = cb.dataset_statistics(contexts.reshape(3, 100), actions.reshape(3, 100), rewards.reshape(3, 100), 3, 2)
    loop_counts, loop_sums = np.zeros((3, 3, 2), int), np.zeros((3, 3, 2))
    for i in range(300):
        loop_counts[i // 100, contexts[i], actions[i]] += 1
        loop_sums[i // 100, contexts[i], actions[i]] += rewards[i]
    np.testing.assert_array_equal(counts, loop_counts)
    np.testing.assert_array_equal(sums, loop_sums)
    one = cb.dataset_statistics(contexts[:100], actions[:100], rewards[:100], 3, 2)
    np.testing.assert_array_equal(one[0], loop_counts[0])
    empty_counts, _ = cb.dataset_statistics(np.zeros(0, int), np.zeros(0, int), np.zeros(0), 3, 2)
    assert empty_counts.shape == (3, 2) and not empty_counts.any()


def test_sample_statistics_invariants():
    counts, sums = cb.sample_statistics(BANDIT, MU, 37, 500, seed=2)
    assert counts.shape == sums.shape == (500, 3, 2) and counts.dtype == np.int64
    assert np.all(counts.sum(axis=(1, 2)) == 37) and np.all(counts[:, 1, 0] == 0)
    assert np.all((0 <= sums) & (sums <= counts)) and np.all(sums == np.round(sums))


# Fast path (multinomial counts, binomial sums) against the per-sample path, in distribution.
N_DIST, R_DIST = 30, 4000
ALPHA_EACH = LEVEL / 2  # Bonferroni over the 2 statistics of the passing test


def _two_sample_pvalue(x, y, n_bins=12):
    """Chi-square test of homogeneity of x and y, binned at pooled quantiles."""
    edges = np.unique(np.quantile(np.concatenate([x, y]), np.linspace(0, 1, n_bins + 1)))
    cells = len(edges) - 1
    table = np.array([np.bincount(np.searchsorted(edges[1:-1], v, side="right"), minlength=cells) for v in (x, y)])
    return stats.chi2_contingency(table[:, table.sum(axis=0) > 0]).pvalue


def _pvalues(fast_bandit, fast_mu):
    data = cb.offline_dataset(BANDIT, MU, N_DIST * R_DIST, seed=11)
    counts_d, sums_d = cb.dataset_statistics(*(x.reshape(R_DIST, N_DIST) for x in data), 3, 2)
    counts_f, sums_f = cb.sample_statistics(fast_bandit, fast_mu, N_DIST, R_DIST, seed=12)
    return (_two_sample_pvalue(counts_d[:, 0, 0], counts_f[:, 0, 0]),
            _two_sample_pvalue(sums_d.sum(axis=(1, 2)), sums_f.sum(axis=(1, 2))))


def test_fast_path_matches_dataset_path_in_distribution():
    p_counts, p_sums = _pvalues(BANDIT, MU)
    assert p_counts > ALPHA_EACH and p_sums > ALPHA_EACH


def test_distribution_check_catches_a_wrong_behaviour_distribution():
    wrong_mu = MU + np.array([[0.06, 0.0], [0.0, -0.06], [0.0, 0.0]])
    p_counts, _ = _pvalues(BANDIT, wrong_mu)
    assert p_counts < ALPHA_EACH


def test_distribution_check_catches_wrong_means():
    wrong = cb.ContextualBandit(BANDIT.rho, BANDIT.means + np.array([[0.1, 0.0], [0.0, 0.0], [-0.1, 0.0]]))
    _, p_sums = _pvalues(wrong, MU)
    assert p_sums < ALPHA_EACH


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: cb.offline_dataset(BANDIT, MU.T, 10, seed=0), r"mu must have shape \(3, 2\)"),
        (lambda: cb.offline_dataset(BANDIT, MU * 0.9, 10, seed=0), r"mu sums to 0.9(0*1)?, not 1"),
        (lambda: cb.sample_statistics(BANDIT, MU + [[0.1, 0], [-0.1, 0], [0, 0]], 10, 2, seed=0), r"mu\[1, 0\] = -0.1 is negative"),
        (lambda: cb.sample_statistics(BANDIT, np.where(MU == 0, np.nan, MU), 10, 2, seed=0), r"mu\[1, 0\] = nan is not finite"),
        (lambda: cb.sample_statistics(BANDIT, MU, 10, 0, seed=0), r"R must be >= 1"),
        (lambda: cb.dataset_statistics(np.array([0, 1, 3]), np.array([0, 0, 0]), np.zeros(3), 3, 2), r"contexts\[2\] = 3 is out of range \[0, 2\]"),
        (lambda: cb.dataset_statistics(np.array([0, 1]), np.array([0, -1]), np.zeros(2), 3, 2), r"actions\[1\] = -1 is out of range"),
        (lambda: cb.dataset_statistics(np.array([0, 1]), np.array([0]), np.zeros(2), 3, 2), r"must share one shape"),
        (lambda: cb.dataset_statistics(np.zeros((1, 2, 2), int), np.zeros((1, 2, 2), int), np.zeros((1, 2, 2)), 3, 2),
         r"contexts must have shape \(N,\) or \(R, N\), got \(1, 2, 2\)"),
        (lambda: cb.offline_dataset(BANDIT, [[0.3, 0.1], [0.3], [0.2, 0.1]], 10, seed=0), r"mu is ragged"),
        (lambda: cb.ContextualBandit([0.5, 0.5], [[0.1, 0.2], [0.3]]), r"ContextualBandit: means is ragged"),
        (lambda: cb.C_star(MU, BANDIT, pi_star=np.array([0, 2, 0])), r"policy\[1\] = 2 is not an action index"),
        (lambda: cb.suboptimality(BANDIT, np.array([0, 1])), r"policy must have shape \(S,\) or \(R, S\) with S = 3"),
    ],
)
def test_bad_data_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_types():
    with pytest.raises(TypeError, match="bandit must be a ContextualBandit"):
        cb.offline_dataset(object(), MU, 10, seed=0)
    with pytest.raises(TypeError, match="contexts must be integers"):
        cb.dataset_statistics(np.array([0.0]), np.array([0]), np.zeros(1), 3, 2)
    with pytest.raises(TypeError, match="N must be an int"):
        cb.offline_dataset(BANDIT, MU, 10.0, seed=0)


# --- C* (joint definition) ----------------------------------------------------------------

def brute_force_C_star(mu, rho, means):
    """max over contexts with rho > 0 of rho(s) / mu(s, pi*(s)), pi* by a loop (lowest index)."""
    worst = 0.0
    for s in range(len(rho)):
        if rho[s] == 0:
            continue
        best = 0
        for a in range(len(means[s])):
            if means[s][a] > means[s][best]:
                best = a
        worst = max(worst, math.inf if mu[s][best] == 0 else rho[s] / mu[s][best])
    return worst


@given(contextual_bandits(), st.data())
def test_C_star_matches_brute_force(bandit, data):
    mu = data.draw(behaviour_distributions(bandit.S * bandit.nA)).reshape(bandit.S, bandit.nA)
    value = cb.C_star(mu, bandit)
    assert value == pytest.approx(brute_force_C_star(mu.tolist(), bandit.rho.tolist(), bandit.means.tolist()), rel=1e-14)
    assert value >= 1 - 1e-12  # sum_s mu(s, pi*(s)) <= 1 = sum_s rho(s)


@given(contextual_bandits())
def test_C_star_is_one_on_expert_data(bandit):
    assert cb.C_star(expert_mu(bandit), bandit) == pytest.approx(1.0, rel=1e-14)


def test_C_star_hand_values():
    # rho / mu(s, pi*(s)) = 0.5/0.1, 0.3/0.3, 0.2/0.2 (pi* = [1, 0, 0]): mu[1, 0] = 0 -> inf
    assert cb.C_star(MU, BANDIT) == math.inf
    assert cb.C_star(MU, BANDIT, pi_star=np.array([1, 1, 0])) == pytest.approx(5.0, rel=1e-14)
    bandit, mu = cb.two_action_instance(4, 2.5, 0.1)
    assert cb.C_star(mu, bandit) == pytest.approx(2.5, rel=1e-14)
    np.testing.assert_array_equal(bandit.optimal_policy, [1, 1, 1, 1])
    zero_context = cb.ContextualBandit([1.0, 0.0], [[0.1, 0.9], [0.9, 0.1]])
    assert cb.C_star([[0.0, 1.0], [0.0, 0.0]], zero_context) == 1.0  # rho(1) = 0 does not count


# --- LCB-CB, greedy, behaviour cloning ------------------------------------------------------

def reference_choices(counts, sums, delta, bonus_scale):
    """LCB, greedy and per-context MPA with Python loops; unseen contexts get action 0."""
    R, S, nA = counts.shape
    out = np.zeros((3, R, S), dtype=np.int64)
    for r in range(R):
        for s in range(S):
            best = [-math.inf, -math.inf, -1]
            for a in range(nA):
                n = int(counts[r, s, a])
                if n == 0:
                    continue
                rhat = sums[r, s, a] / n
                b = bonus_scale * math.sqrt(math.log(2 * S * nA / delta) / (2 * n))
                for m, score in enumerate((rhat - b, rhat, n)):
                    if score > best[m]:
                        best[m], out[m, r, s] = score, a
    return out


@pytest.mark.parametrize("bonus_scale", [1.0, 0.3])
def test_choices_match_the_reference(bonus_scale):
    bandit = cb.ContextualBandit([0.4, 0.3, 0.3], [[0.4, 0.5, 0.45], [0.6, 0.55, 0.5], [0.2, 0.9, 0.3]])
    mu = np.array([[0.2, 0.1, 0.05], [0.1, 0.0, 0.2], [0.0, 0.3, 0.05]])
    counts, sums = cb.sample_statistics(bandit, mu, 9, 400, seed=5)
    ref = reference_choices(counts, sums, 0.05, bonus_scale)
    lcb = cb.lcb(counts, sums, 0.05, bonus_scale=bonus_scale)
    np.testing.assert_array_equal(lcb.policy, ref[0])
    np.testing.assert_array_equal(cb.greedy(counts, sums).policy, ref[1])
    np.testing.assert_array_equal(cb.most_played_arm(counts).policy, ref[2])
    unseen = counts.sum(axis=2) == 0
    assert unseen.any()  # the convention is exercised
    np.testing.assert_array_equal(lcb.unseen, unseen)
    assert np.all(lcb.policy[unseen] == 0)
    for r in range(0, 400, 41):  # one dataset (2-d input) equals its batch row
        np.testing.assert_array_equal(cb.lcb(counts[r], sums[r], 0.05, bonus_scale=bonus_scale).policy, ref[0, r])


def test_default_delta_is_one_over_N():
    counts, sums = cb.sample_statistics(BANDIT, MU, 50, 20, seed=6)
    np.testing.assert_array_equal(cb.lcb_bonus(counts, None), cb.lcb_bonus(counts, 1 / 50))
    np.testing.assert_array_equal(cb.lcb(counts, sums).policy, cb.lcb(counts, sums, 1 / 50).policy)
    # A batch of datasets of different sizes: each gets its own 1/N.
    mixed = np.array([[[4, 0], [1, 2], [0, 3]], [[1, 1], [0, 0], [0, 0]]])
    b_mixed = cb.lcb_bonus(mixed, None)
    for r, N in enumerate((10, 2)):
        with np.errstate(divide="ignore"):  # unseen pairs: width inf
            expected = np.sqrt(np.log(2 * 3 * 2 * N) / (2 * mixed[r]))
        np.testing.assert_allclose(b_mixed[r], expected, rtol=1e-15)
    b = cb.lcb_bonus(np.array([[4, 0], [1, 2]]), 0.1)
    np.testing.assert_allclose(b, [[math.sqrt(math.log(80) / 8), math.inf],
                                   [math.sqrt(math.log(80) / 2), math.sqrt(math.log(80) / 4)]], rtol=1e-15)


def test_empty_dataset():
    zeros = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"dataset is empty .* pass delta explicitly"):
        cb.lcb(zeros.astype(int), zeros)
    with pytest.raises(ValueError, match=r"dataset\[1\] is empty"):
        cb.lcb(np.stack([np.ones((3, 2), int), zeros.astype(int)]), np.zeros((2, 3, 2)))
    choice = cb.lcb(zeros.astype(int), zeros, 0.1)
    np.testing.assert_array_equal(choice.policy, [0, 0, 0])
    assert choice.unseen.all()


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: cb.lcb([[2, -1]], [[1.0, 0.0]], 0.1), r"counts\[0, 1\] = -1 is not a non-negative integer"),
        (lambda: cb.lcb([[[2.5, 1]]], [[[1.0, 0.0]]], 0.1), r"counts\[0, 0, 0\] = 2.5"),
        (lambda: cb.lcb([[2, 0]], [[1.0, 1.0]], 0.1), r"reward_sums\[0, 1\] = 1.0 is non-zero for a pair with count 0"),
        (lambda: cb.lcb([[2, 1]], [[1.0]], 0.1), r"reward_sums has shape \(1, 1\), counts has \(1, 2\)"),
        (lambda: cb.lcb([2, 1], [1.0, 0.0], 0.1), r"counts must have shape \(S, nA\) or \(R, S, nA\)"),
        (lambda: cb.lcb([[2, 1]], [[1.0, 0.0]], 0.0), r"delta must be a number in \(0, 1\), got 0.0"),
        (lambda: cb.lcb([[2, 1]], [[1.0, 0.0]], 1.0), r"delta must be a number in \(0, 1\), got 1.0"),
        (lambda: cb.lcb_bonus([[2, 1]], True), r"delta must be a number in \(0, 1\), got True"),
        (lambda: cb.lcb([[1, 0], [0, 0]], [[1.0, 0.0], [0.0, 0.0]]), r"dataset has N = 1: the default delta = 1/N = 1"),
        (lambda: cb.lcb([[2, 1]], [[2.5, 0.0]], 0.1), r"reward_sums\[0, 0\] = 2.5 is outside \[0, counts\[0, 0\]\] = \[0, 2\]"),
        (lambda: cb.greedy([[[2, 1]]], [[[1.0, -0.5]]]), r"reward_sums\[0, 0, 1\] = -0.5 is outside"),
        (lambda: cb.lcb([[2, 1]], [[1.0, 0.0]], 0.1, bonus_scale=-1.0), r"bonus_scale must be a finite number > 0"),
        (lambda: cb.most_played_arm(np.array([[2**62 + 1, 1]], np.int64)), r"counts\[0, 0\] = 4611686018427387905 exceeds"),
        (lambda: cb.lcb_event_holds(np.ones((2, 2), int), np.ones((2, 2)), BANDIT, 0.1), r"the bandit has \(S, nA\) = \(3, 2\)"),
        (lambda: cb.missing_mass_instance(5, 4), r"needs N >= S"),
        (lambda: cb.missing_mass_instance(1, 4), r"S must be >= 2"),
        (lambda: cb.missing_mass_instance(3, 4, rare_action=2), r"rare_action must be 0 or 1"),
        (lambda: cb.two_action_instance(2, 0.5, 0.1), r"C_star_value must be a finite number >= 1"),
        (lambda: cb.two_action_instance(2, 2.0, 0.6), r"gap must be a number in \(0, 1/2\]"),
    ],
)
def test_bad_algorithm_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# Sheet test 2, per context and beyond expert data. Rewards of pi*(s) are all 1 and those of
# the other actions all 0, with ANY counts of the other actions (possibly far more than of
# pi*(s), so behaviour cloning fails). If N[s, pi*(s)] > log(2 S nA / delta) / 2, then
# b[s, pi*(s)] < 1, so LCB's score of pi*(s), 1 - b, is > 0 > -b[s, a] for every other seen
# action: LCB returns pi*(s) exactly (expert data is the case of other counts 0).
@given(st.integers(1, 5), st.integers(2, 4), st.floats(1e-3, 0.5), st.data())
def test_lcb_returns_pi_star_under_the_N_condition(S, nA, delta, data):
    pi_star = np.array(data.draw(st.lists(st.integers(0, nA - 1), min_size=S, max_size=S), label="pi_star"))
    others = st.lists(st.integers(0, 10**5), min_size=nA, max_size=nA)
    counts = np.array(data.draw(st.lists(others, min_size=S, max_size=S), label="counts"))
    n_star = math.floor(math.log(2 * S * nA / delta) / 2) + 1 + data.draw(st.integers(0, 20), label="extra")
    counts[np.arange(S), pi_star] = n_star
    sums = np.zeros(counts.shape)
    sums[np.arange(S), pi_star] = n_star
    np.testing.assert_array_equal(cb.lcb(counts, sums, delta).policy, pi_star)


def test_N_condition_is_sharp_and_the_baselines_fail():
    """Hand-computed scores, S = 3, nA = 2, delta = 1e-3: log(2 S nA / delta) = log(12000) = 9.393,
    so the N condition is N[s, pi*(s)] >= 5 (b(5) = 0.969, b(4) = 1.084, b(2) = 1.532,
    b(1000) = 0.0685). pi*(s) = 1 everywhere, its rewards all 1.

    - s = 0: action 0 has 1000 zero rewards, pi* has 5 samples. LCB: 1 - 0.969 > -0.0685;
      behaviour cloning picks action 0.
    - s = 1: action 0 (mean 1/2) has 2 samples, both 1: greedy ties at 1 and takes action 0;
      LCB: 1 - 0.969 > 1 - 1.532.
    - s = 2: as s = 0 but pi* has only 4 samples (below the condition): LCB's
      1 - 1.084 = -0.084 < -0.0685, so LCB picks action 0 too.
    """
    counts = np.array([[1000, 5], [2, 5], [1000, 4]])
    sums = np.array([[0.0, 5.0], [2.0, 5.0], [0.0, 4.0]])
    np.testing.assert_array_equal(cb.lcb(counts, sums, 1e-3).policy, [1, 1, 0])
    np.testing.assert_array_equal(cb.greedy(counts, sums).policy, [1, 0, 1])
    np.testing.assert_array_equal(cb.most_played_arm(counts).policy, [0, 1, 0])


# Sheet test 3: the event |rhat - r| <= b on all seen pairs fails with probability <= delta.
S3, NA3, N3, R3, DELTA3 = 50, 2, 10_000, 10_000, 0.1


def event_failures(bonus_scale):
    """S = 50 contexts x 2 actions, all Bernoulli(1/2), uniform joint mu, N = 1e4 (100 per pair)."""
    bandit = cb.ContextualBandit(np.full(S3, 1 / S3), np.full((S3, NA3), 0.5))
    counts, sums = cb.sample_statistics(bandit, np.full((S3, NA3), 1 / (S3 * NA3)), N3, R3, seed=3)
    return int(np.sum(~cb.lcb_event_holds(counts, sums, bandit, DELTA3, bonus_scale)))


def test_event_failure_rate_at_most_delta():
    assert cp_upper(event_failures(1.0), R3, LEVEL) <= DELTA3


def test_event_check_catches_a_missing_union_bound_over_contexts():
    # Planted error: widths with log(2 nA / delta) (union over actions only) instead of log(2 S nA / delta).
    k = event_failures(math.sqrt(math.log(2 * NA3 / DELTA3) / math.log(2 * S3 * NA3 / DELTA3)))
    assert cp_upper(k, R3, LEVEL) > DELTA3 and cp_lower(k, R3, LEVEL) > DELTA3


# Sheet test 4, per context: on the event, r(s, pi*(s)) - r(s, pi_hat(s)) <= 2 b[s, pi*(s)].
def gap_bound_violations(bandit, counts, sums, delta, policy):
    pi_star = bandit.optimal_policy
    b_star = np.take_along_axis(cb.lcb_bonus(counts, delta), pi_star[None, :, None], axis=2)[..., 0]
    gap = bandit.gaps[np.arange(bandit.S), policy]
    on_event = cb.lcb_event_holds(counts, sums, bandit, delta)[:, None]
    return int(np.sum(on_event & (gap > 2 * b_star + 1e-12)))


@given(contextual_bandits(), st.data(), st.integers(1, 200))
def test_lcb_gap_bound_on_the_event(bandit, data, N):
    mu = data.draw(behaviour_distributions(bandit.S * bandit.nA)).reshape(bandit.S, bandit.nA)
    counts, sums = cb.sample_statistics(bandit, mu, N, 200, seed=N)
    assert gap_bound_violations(bandit, counts, sums, 0.1, cb.lcb(counts, sums, 0.1).policy) == 0


def test_gap_bound_check_catches_greedy():
    # 2 contexts; in each, a* (0.6) has 90% of the mass and 50 actions of mean 0.5 share the rest.
    means = np.full((2, 51), 0.5)
    means[:, 0] = 0.6
    mu = np.full((2, 51), 0.05 / 50)
    mu[:, 0] = 0.45
    bandit = cb.ContextualBandit([0.5, 0.5], means)
    counts, sums = cb.sample_statistics(bandit, mu, 20_000, 500, seed=4)
    assert np.mean(cb.lcb_event_holds(counts, sums, bandit, 0.1)) > 0.8  # not vacuous
    assert gap_bound_violations(bandit, counts, sums, 0.1, cb.lcb(counts, sums, 0.1).policy) == 0
    assert gap_bound_violations(bandit, counts, sums, 0.1, cb.greedy(counts, sums).policy) > 100


# --- the missing-mass instance (C* = 1) ---------------------------------------------------

@pytest.mark.parametrize("S, N", [(2, 2), (2, 3), (3, 3), (3, 4)])
def test_missing_mass_formula_by_exhaustive_enumeration(S, N):
    """Every dataset of N cells, its exact probability, and LCB's exact sub-optimality on it."""
    bandit, mu = cb.missing_mass_instance(S, N)
    assert cb.C_star(mu, bandit) == pytest.approx(1.0, rel=1e-14)
    cells = [(s, a) for s in range(S) for a in range(2) if mu[s, a] > 0]
    expected = 0.0
    for draw in itertools.product(cells, repeat=N):
        counts = np.zeros((S, 2), dtype=int)
        for s, a in draw:
            counts[s, a] += 1
        sums = counts * bandit.means  # deterministic rewards
        prob = math.prod(mu[s, a] for s, a in draw)
        expected += prob * cb.suboptimality(bandit, cb.lcb(counts, sums).policy)
    assert cb.missing_mass_suboptimality(S, N) == pytest.approx(expected, rel=1e-12)
    assert cb.missing_mass_suboptimality(S, N) == pytest.approx((S - 1) / N * (1 - 1 / N) ** N, rel=1e-12)


MM_CASES = [(5, 5), (5, 100), (20, 200)]
R_MM = 20_000


def missing_mass_z(S, N, rare_action=1, level_formula=None):
    """z statistic of LCB's mean sub-optimality over R_MM datasets against a claimed level."""
    bandit, mu = cb.missing_mass_instance(S, N, rare_action=rare_action)
    counts, sums = cb.sample_statistics(bandit, mu, N, R_MM, seed=S * N)
    subopt = cb.suboptimality(bandit, cb.lcb(counts, sums).policy)
    claimed = cb.missing_mass_suboptimality(S, N) if level_formula is None else level_formula(S, N)
    se = subopt.std(ddof=1) / math.sqrt(R_MM)
    return (subopt.mean() - claimed) / se if se > 0 else math.inf


Z_CRIT = stats.norm.ppf(1 - LEVEL / len(MM_CASES) / 2)  # two-sided, Bonferroni over the cases


@pytest.mark.parametrize("S, N", MM_CASES)
def test_missing_mass_simulation_matches_the_exact_formula(S, N):
    assert abs(missing_mass_z(S, N)) <= Z_CRIT


def test_missing_mass_check_catches_the_asymptotic_level_at_small_N():
    # Planted error: (S - 1)/(e N) instead of the exact (S - 1)(1/N)(1 - 1/N)^N, at N = S = 5.
    assert abs(missing_mass_z(5, 5, level_formula=lambda S, N: (S - 1) / (math.e * N))) > Z_CRIT


def test_missing_mass_check_catches_the_audits_pitfall():
    # Planted error: pi*(s) = 0 on rare contexts makes unseen contexts right by luck (error 0).
    assert abs(missing_mass_z(5, 100, rare_action=0)) > Z_CRIT


# --- the stated bounds ---------------------------------------------------------------------

def test_cb_bonus_union_bound_sums_to_delta():
    S_value, nA_value, delta_value = 4, 3, 0.1
    counts = np.array([1, 3, 7, 50, 100, 100, 200, 300, 120, 119, 2, 9])
    b = theory.LCB_CB_BONUS.evaluate(S=S_value, nA=nA_value, delta=delta_value, N_sa=counts)
    np.testing.assert_allclose(b, cb.lcb_bonus(counts.reshape(S_value, nA_value), delta_value).ravel(), rtol=1e-14)
    assert np.sum(2 * np.exp(-2 * counts * b**2)) == pytest.approx(delta_value, rel=1e-12)


def test_cb_bounds_in_the_catalogue():
    for name in ("LCB_CB_UPPER", "CB_MINIMAX_LOWER", "LCB_CB_BONUS", "LCB_CB_EVENT", "CB_MISSING_MASS"):
        assert theory.CLAIMS[name].name == name
    assert theory.LCB_CB_UPPER.source.status == "recalled"
    assert theory.LCB_CB_EVENT.source.status == "derived"
    assert theory.LCB_CB_UPPER.rate("N", C_star=1) == -1
    assert theory.LCB_CB_UPPER.rate("N", C_star=2) == sympy.Rational(-1, 2)
    for S, N in [(5, 100), (20, 1000)]:
        assert float(theory.CB_MISSING_MASS.evaluate(S=S, N=N)) == pytest.approx(cb.missing_mass_suboptimality(S, N), rel=1e-12)
