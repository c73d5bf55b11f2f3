"""Tests for bandits.offline: LCB, greedy and MPA (Rashidinejad et al. 2021, spec sheet tests 2-6)."""
import math
import re
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from bandits import (
    BernoulliBandit,
    greedy,
    lcb,
    lcb_bonus,
    lcb_event_holds,
    most_played_arm,
    sample_statistics,
    suboptimality,
)
from bandits.strategies import bandits, behaviour_distributions

N_EXAMPLES = 25  # Hypothesis examples per test (the "ci" profile); used for Bonferroni


def cp_upper(k, n, level):
    """One-sided Clopper-Pearson upper bound on a binomial proportion at ``level``."""
    return 1.0 if k == n else stats.beta.ppf(1 - level, k + 1, n - k)


def cp_lower(k, n, level):
    """One-sided Clopper-Pearson lower bound on a binomial proportion at ``level``."""
    return 0.0 if k == 0 else stats.beta.ppf(level, k, n - k + 1)


# --- hand-computed values -------------------------------------------------------------

def test_lcb_bonus_hand_values():
    b = lcb_bonus(np.array([[8, 0, 2]]), 3, 0.1)
    expected = [math.sqrt(math.log(60) / 16), math.inf, math.sqrt(math.log(60) / 4)]
    np.testing.assert_allclose(b[0], expected, rtol=1e-15)
    np.testing.assert_allclose(lcb_bonus([8, 0, 2], 3, 0.1, bonus_scale=2.0), 2 * np.array(expected), rtol=1e-15)
    np.testing.assert_allclose(lcb_bonus([1], 100, 0.5), math.sqrt(math.log(400) / 2), rtol=1e-15)


def test_worked_example():
    # log(2 * 3 / 0.5) = log 12; b = sqrt(log 12 / 8) = 0.557 and sqrt(log 12 / 2) = 1.115:
    # LCB 0.75 - 0.557 = 0.193 > 1.0 - 1.115 = -0.115 picks arm 0; greedy 1.0 > 0.75 picks arm 1.
    counts, sums = np.array([4, 1, 0]), np.array([3.0, 1.0, 0.0])
    assert lcb(counts, sums, 0.5) == (0, False)
    assert greedy(counts, sums) == (1, False)
    assert most_played_arm(counts) == (0, False)
    assert lcb_event_holds(counts, sums, [0.7, 0.2, 0.5], 0.5)  # |0.75-0.7| <= 0.557, |1-0.2| <= 1.115
    assert not lcb_event_holds(counts, sums, [0.1, 0.2, 0.5], 0.5)  # |0.75-0.1| = 0.65 > 0.557


def test_ties_go_to_the_lowest_index():
    counts, sums = np.array([[2, 2, 1], [0, 3, 3]]), np.array([[1.0, 1.0, 0.0], [0.0, 3.0, 3.0]])
    np.testing.assert_array_equal(lcb(counts, sums, 0.1).arms, [0, 1])
    np.testing.assert_array_equal(greedy(counts, sums).arms, [0, 1])
    np.testing.assert_array_equal(most_played_arm(counts).arms, [0, 1])


def test_unseen_arm_never_beats_a_seen_arm():
    # The sheet's pitfall: with (rhat, b) = (0, 1) for unseen arms, arm 0 (unseen) scores -1,
    # above the seen arm's 0 - sqrt(log(2 nA / delta) / 2) whenever log(2 nA / delta) > 2.
    delta = 0.1
    assert math.log(2 * 2 / delta) > 2 and -1 > 0 - math.sqrt(math.log(2 * 2 / delta) / 2)
    counts, sums = np.array([0, 1]), np.array([0.0, 0.0])
    assert lcb(counts, sums, delta) == (1, False)
    assert greedy(counts, sums) == (1, False)


def test_nothing_seen_returns_arm_zero_and_the_flag():
    counts, sums = np.array([[0, 0, 0], [0, 2, 0]]), np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    for choice in (lcb(counts, sums, 0.1), greedy(counts, sums), most_played_arm(counts)):
        np.testing.assert_array_equal(choice.arms, [0, 1])
        np.testing.assert_array_equal(choice.nothing_seen, [True, False])
        assert choice.arms.dtype == np.int64 and choice.nothing_seen.dtype == bool
    assert lcb(counts[0], sums[0], 0.1) == (0, True)
    assert lcb_event_holds(counts[0], sums[0], [0.1, 0.2, 0.3], 0.1)  # vacuous


def test_one_dimensional_input_gives_scalars():
    choice = lcb([3, 1], [1.0, 1.0], 0.2)
    assert type(choice.arms) is int and type(choice.nothing_seen) is bool
    assert type(suboptimality(BernoulliBandit([0.3, 0.4]), choice.arms)) is float
    assert type(lcb_event_holds([3, 1], [1.0, 1.0], [0.3, 0.4], 0.2)) is bool


def test_suboptimality_hand_values():
    bandit = BernoulliBandit([0.3, 0.8, 0.5])
    np.testing.assert_allclose(suboptimality(bandit, np.array([0, 1, 2])), [0.5, 0.0, 0.3], atol=1e-15)
    np.testing.assert_allclose(suboptimality([0.3, 0.8, 0.5], 2), 0.3, atol=1e-15)


# --- plain-numpy reference --------------------------------------------------------------

def reference_choices(counts, sums, delta, bonus_scale):
    """LCB, greedy and MPA per repetition with Python loops and the math module."""
    R, nA = counts.shape
    out = np.zeros((3, R), dtype=np.int64)
    for r in range(R):
        best = [-math.inf, -math.inf, -1]
        for a in range(nA):
            n = int(counts[r, a])
            if n == 0:
                continue
            rhat = sums[r, a] / n
            scores = [rhat - bonus_scale * math.sqrt(math.log(2 * nA / delta) / (2 * n)), rhat, n]
            for m in range(3):
                if scores[m] > best[m]:
                    best[m], out[m, r] = scores[m], a
    return out


@pytest.mark.parametrize("bonus_scale", [1.0, 0.3])
def test_vectorised_choices_match_the_reference(bonus_scale):
    bandit = BernoulliBandit([0.4, 0.5, 0.45, 0.6, 0.55])
    counts, sums = sample_statistics(bandit, [0.3, 0.3, 0.2, 0.0, 0.2], 12, 400, seed=5)
    ref = reference_choices(counts, sums, 0.05, bonus_scale)
    np.testing.assert_array_equal(lcb(counts, sums, 0.05, bonus_scale=bonus_scale).arms, ref[0])
    np.testing.assert_array_equal(greedy(counts, sums).arms, ref[1])
    np.testing.assert_array_equal(most_played_arm(counts).arms, ref[2])
    for r in range(0, 400, 37):  # batch rows equal the 1-d calls
        assert lcb(counts[r], sums[r], 0.05, bonus_scale=bonus_scale).arms == ref[0, r]


# --- sheet test 2: C* = 1 -------------------------------------------------------------

@given(bandits(), st.floats(1e-3, 0.5), st.integers(0, 200))
def test_expert_data_lcb_returns_a_star(bandit, delta, extra):
    a_star = bandit.optimal_arm
    mu = np.zeros(bandit.nA)
    mu[a_star] = 1.0
    N = math.floor(math.log(2 * bandit.nA / delta) / 2) + 1 + extra  # N > log(2 nA / delta) / 2
    counts, sums = sample_statistics(bandit, mu, N, 200, seed=extra)
    choice = lcb(counts, sums, delta)
    assert np.all(choice.arms == a_star) and not choice.nothing_seen.any()


# --- sheet test 3: the event holds with probability >= 1 - delta -----------------------

LEVEL = 1e-3
DELTA3, N3, R3, NA3 = 0.1, 1000, 10_000, 10


def event_failures(bonus_scale, seed=3):
    """Failures of the event on the powered instance: nA = 10 Bernoulli(1/2), uniform mu."""
    bandit = BernoulliBandit(np.full(NA3, 0.5))
    counts, sums = sample_statistics(bandit, np.full(NA3, 1 / NA3), N3, R3, seed=seed)
    return int(np.sum(~lcb_event_holds(counts, sums, bandit.means, DELTA3, bonus_scale)))


def test_event_failure_rate_at_most_delta():
    k = event_failures(1.0)
    assert cp_upper(k, R3, LEVEL) <= DELTA3


@pytest.mark.parametrize(
    "bonus_scale",
    [math.sqrt(math.log(2 / DELTA3) / math.log(2 * NA3 / DELTA3)), 0.5],
    ids=["no-union-bound", "halved"],
)
def test_event_check_catches_a_too_small_bonus(bonus_scale):
    k = event_failures(bonus_scale)
    assert cp_upper(k, R3, LEVEL) > DELTA3  # the check fails ...
    assert cp_lower(k, R3, LEVEL) > DELTA3  # ... with significant evidence


@given(bandits(), st.data(), st.integers(1, 60), st.sampled_from([0.05, 0.2]))
def test_event_not_violated_on_random_instances(bandit, data, N, delta):
    mu = data.draw(behaviour_distributions(bandit.nA))
    counts, sums = sample_statistics(bandit, mu, N, 2000, seed=N)
    k = int(np.sum(~lcb_event_holds(counts, sums, bandit, delta)))
    assert cp_lower(k, 2000, LEVEL / N_EXAMPLES) <= delta


# --- sheet test 4: on the event, r[a*] - r[a_hat] <= 2 b[a*] --------------------------

def gap_bound_violations(bandit, counts, sums, delta, arms):
    """Repetitions where the event holds but ``r[a*] - r[arms] > 2 b[a*] + 1e-12``."""
    a_star = bandit.optimal_arm
    b_star = lcb_bonus(counts, bandit.nA, delta)[:, a_star]
    on_event = lcb_event_holds(counts, sums, bandit, delta)
    return int(np.sum(on_event & (suboptimality(bandit, arms) > 2 * b_star + 1e-12)))


@given(bandits(), st.data(), st.integers(1, 200))
def test_lcb_gap_bound_on_the_event(bandit, data, N):
    mu = data.draw(behaviour_distributions(bandit.nA))
    counts, sums = sample_statistics(bandit, mu, N, 300, seed=N)
    assert gap_bound_violations(bandit, counts, sums, 0.1, lcb(counts, sums, 0.1).arms) == 0


def _well_covered_instance():
    """a* (mean 0.6) has 90% of N = 1e4 samples; 50 arms of mean 0.5 get 20 samples each."""
    means = np.full(51, 0.5)
    means[0] = 0.6
    mu = np.full(51, 0.1 / 50)
    mu[0] = 0.9
    bandit = BernoulliBandit(means)
    return bandit, *sample_statistics(bandit, mu, 10_000, 1000, seed=4)


def test_lcb_gap_bound_on_a_powered_instance():
    bandit, counts, sums = _well_covered_instance()
    assert np.mean(lcb_event_holds(counts, sums, bandit, 0.1)) > 0.8  # the check is not vacuous
    assert gap_bound_violations(bandit, counts, sums, 0.1, lcb(counts, sums, 0.1).arms) == 0


def test_gap_bound_check_catches_greedy():
    # Planted error: greedy picks a lucky poorly covered arm, and 2 b[a*] = 0.039 < gap 0.1.
    bandit, counts, sums = _well_covered_instance()
    assert gap_bound_violations(bandit, counts, sums, 0.1, greedy(counts, sums).arms) > 100


# --- sheet test 5: C* = 1.5, MPA beats LCB in the worst case over gaps ------------------

GAPS = np.geomspace(1e-3, 0.45, 40)


def worst_case_errors(C, N=1000, R=20_000):
    """Worst case over GAPS of MPA's exact error and of a lower confidence bound on LCB's.

    Instance: two arms Bernoulli(1/2 + D) (a* = 0) and Bernoulli(1/2), mu = (1/C, 1 - 1/C),
    delta = 1/N. MPA errs iff N[0] < N[1] (ties go to arm 0), i.e. N[0] <= (N - 1) // 2 with
    N[0] ~ Binomial(N, 1/C): its error at gap D is D * P(N[0] <= (N - 1) // 2), exactly.
    LCB errs with an unknown probability p_D, bounded below by a one-sided Clopper-Pearson
    bound at level 1e-3 / 40 (Bonferroni over the grid) from R repetitions per gap.
    """
    mpa = GAPS.max() * stats.binom.cdf((N - 1) // 2, N, 1 / C)
    lcb_lower = 0.0
    for i, D in enumerate(GAPS):
        bandit = BernoulliBandit([0.5 + D, 0.5])
        counts, sums = sample_statistics(bandit, [1 / C, 1 - 1 / C], N, R, seed=i)
        k = int(np.sum(lcb(counts, sums, 1 / N).arms != 0))
        lcb_lower = max(lcb_lower, D * cp_lower(k, R, LEVEL / len(GAPS)))
    return mpa, lcb_lower


def test_mpa_beats_lcb_for_nearly_expert_data():
    mpa, lcb_lower = worst_case_errors(1.5)
    assert mpa < lcb_lower


def test_mpa_comparison_fails_when_mpa_is_not_better():
    # Planted error: at C* = 4 the behaviour's favourite arm is sub-optimal, MPA's error ~ 0.45.
    mpa, lcb_lower = worst_case_errors(4.0, R=2000)
    assert not mpa < lcb_lower


# --- sheet test 6: many poorly covered arms --------------------------------------------

def many_arms_errors(bonus_scale=1.0):
    """Mean errors of LCB and greedy: a* (mean 0.6, mu 1/2, last index), 50 arms of mean 0.5
    sharing the other half of mu, N = 1e3, delta = 1/N, 1000 repetitions."""
    means = np.full(51, 0.5)
    means[50] = 0.6
    mu = np.full(51, 0.5 / 50)
    mu[50] = 0.5
    bandit = BernoulliBandit(means)
    counts, sums = sample_statistics(bandit, mu, 1000, 1000, seed=6)
    lcb_error = suboptimality(bandit, lcb(counts, sums, 1e-3, bonus_scale=bonus_scale).arms).mean()
    return lcb_error, suboptimality(bandit, greedy(counts, sums).arms).mean()


def test_lcb_beats_greedy_with_many_poorly_covered_arms():
    lcb_error, greedy_error = many_arms_errors()
    assert lcb_error <= 0.005
    assert greedy_error >= 0.05


def test_many_arms_check_catches_a_tiny_bonus():
    lcb_error, _ = many_arms_errors(bonus_scale=0.1)
    assert lcb_error > 0.005


# --- bad input ------------------------------------------------------------------------

@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: lcb([2, -1], [1.0, 0.0], 0.1), r"counts\[1\] = -1 is not a non-negative integer"),
        (lambda: lcb([2.5, 1], [1.0, 0.0], 0.1), r"counts\[0\] = 2.5"),
        (lambda: lcb([[2, 1]], [1.0, 0.0], 0.1), r"reward_sums has shape \(2,\), counts has \(1, 2\)"),
        (lambda: lcb([2, 1], [np.nan, 0.0], 0.1), r"reward_sums\[0\] = nan is not finite"),
        (lambda: lcb([2, 0], [1.0, 1.0], 0.1), r"reward_sums\[1\] = 1.0 is non-zero for an arm with count 0"),
        (lambda: lcb([2, 1], [1.0, 0.0], 0.0), r"delta must be a number in \(0, 1\)"),
        (lambda: lcb([2, 1], [1.0, 0.0], 1.0), r"delta must be a number in \(0, 1\)"),
        (lambda: lcb([2, 1], [1.0, 0.0], 0.1, bonus_scale=0.0), r"bonus_scale must be a finite number > 0"),
        (lambda: lcb(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), 0.1), r"counts must have shape \(nA,\) or \(R, nA\)"),
        (lambda: lcb_bonus([2, 1], 0, 0.1), r"nA must be an int >= 1"),
        (lambda: most_played_arm([[1, 2], [3, -4]]), r"counts\[1, 1\] = -4"),
        (lambda: suboptimality([0.1, 0.2], np.array([0, 2])), r"arms\[1\] = 2 is not an arm index"),
        (lambda: lcb_event_holds([1, 1], [1.0, 0.0], [0.5], 0.1), r"means has shape \(1,\), expected \(2,\)"),
    ],
)
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_types_raise_type_error():
    with pytest.raises(TypeError, match="counts must be integers"):
        most_played_arm(np.array(["a", "b"]))
    with pytest.raises(TypeError, match="arms must be integers"):
        suboptimality([0.1, 0.2], np.array([0.0]))


# --- regressions: counts near int64 overflow, message formatting -------------------------

@pytest.mark.parametrize(
    "counts, shown",
    [
        (np.array([1e300, 1.0]), "1e+300"),
        (np.array([2**63, 1], np.uint64), str(2**63)),
        (np.array([2**62 + 1, 1], np.int64), str(2**62 + 1)),
        (np.array([2.0**63, 1.0]), str(float(2**63))),
    ],
)
def test_counts_above_the_limit_raise_naming_the_value(counts, shown):
    match = rf"counts\[0\] = {re.escape(shown)} exceeds the limit"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow RuntimeWarning on the way
        for call in (
            lambda: lcb(counts, np.zeros(2), 0.1),
            lambda: greedy(counts, np.zeros(2)),
            lambda: lcb_bonus(counts, 2, 0.1),
            lambda: most_played_arm(counts),
        ):
            with pytest.raises(ValueError, match=match):
                call()


@pytest.mark.parametrize("dtype", [np.uint64, np.int64, np.float64])
def test_counts_at_the_limit_are_exact(dtype):
    b = lcb_bonus(np.array([2**62, 1], dtype), 2, 0.1)
    np.testing.assert_allclose(b, [math.sqrt(math.log(40) / 2**63), math.sqrt(math.log(40) / 2)], rtol=1e-15)
    # Four arms of 2**62 sum to 2**64, which wraps to 0 in int64: the data are not empty.
    arm, nothing_seen = most_played_arm(np.full(4, 2**62, dtype))
    assert (arm, nothing_seen) == (0, False)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: lcb([2, 1], [1.0, 0.0], np.float64(30.0)), r"got 30.0$"),
        (lambda: lcb([2, 1], [1.0, 0.0], 0.1, bonus_scale=np.float32(-2.0)), r"got -2.0$"),
        (lambda: lcb_bonus([2, 1], np.float64(2.0), 0.1), r"got 2.0$"),
        (lambda: lcb(np.array([np.float32(2.5), 1]), [1.0, 0.0], 0.1), r"counts\[0\] = 2.5 is not"),
        (lambda: lcb([2, 0], np.array([1.0, np.float32(0.5)]), 0.1), r"reward_sums\[1\] = 0.5 is non-zero"),
    ],
)
def test_messages_print_plain_numbers(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "np." not in str(info.value)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.int8, np.uint8])
def test_small_count_dtypes_are_checked_without_overflow(dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # float16 cannot hold 2**62: no comparison against it
        b = lcb_bonus(np.array([2, 1], dtype), 2, 0.1)
        np.testing.assert_allclose(b, [math.sqrt(math.log(40) / 4), math.sqrt(math.log(40) / 2)], rtol=1e-15)
        if dtype is not np.uint8:
            with pytest.raises(ValueError, match=r"counts\[0\] = -3(\.0)? is not a non-negative integer"):
                lcb_bonus(np.array([-3, 1], dtype), 2, 0.1)
