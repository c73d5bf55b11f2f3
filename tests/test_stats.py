"""Tests of proofs_check.stats (exact intervals, high-probability checks, rate fits, G-test)
and of the generic strategies in proofs_check.strategies."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import optimize, stats

from proofs_check.stats import (
    RateFit,
    band_verdict,
    check_high_probability,
    clopper_pearson,
    fit_rate,
    fit_rates,
    g_test,
    lower_bound_verdict,
    upper_bound_verdict,
)
from proofs_check.strategies import probability_vectors, stochastic_arrays

METHODS = ["multinomial", "gaussian"]


# -- Clopper-Pearson ----------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 7, 100])
@pytest.mark.parametrize("alpha", [1e-3, 0.05])
def test_clopper_pearson_closed_forms_at_the_ends(n, alpha):
    assert clopper_pearson(0, n, alpha) == pytest.approx((0.0, 1 - (alpha / 2) ** (1 / n)), rel=1e-10)
    assert clopper_pearson(n, n, alpha) == pytest.approx(((alpha / 2) ** (1 / n), 1.0), rel=1e-10)
    assert clopper_pearson(0, n, alpha, sided="upper") == pytest.approx((0.0, 1 - alpha ** (1 / n)), rel=1e-10)
    assert clopper_pearson(n, n, alpha, sided="lower") == pytest.approx((alpha ** (1 / n), 1.0), rel=1e-10)


def test_clopper_pearson_printed_values():
    # Commonly printed exact 95% intervals: 2/20 -> (0.0123, 0.3170), 1/10 -> (0.0025, 0.4450).
    assert clopper_pearson(2, 20, 0.05) == pytest.approx((0.0123, 0.3170), abs=5e-5)
    assert clopper_pearson(1, 10, 0.05) == pytest.approx((0.0025, 0.4450), abs=5e-5)


def test_clopper_pearson_inverts_the_binomial_tails():
    k, n, alpha = 7, 40, 0.01
    # Definition: lo solves P(X >= k | p) = alpha/2, hi solves P(X <= k | p) = alpha/2.
    lo = optimize.brentq(lambda p: stats.binom.sf(k - 1, n, p) - alpha / 2, 1e-9, 1 - 1e-9, xtol=1e-14)
    hi = optimize.brentq(lambda p: stats.binom.cdf(k, n, p) - alpha / 2, 1e-9, 1 - 1e-9, xtol=1e-14)
    assert clopper_pearson(k, n, alpha) == pytest.approx((lo, hi), abs=1e-10)
    hi_one = optimize.brentq(lambda p: stats.binom.cdf(k, n, p) - alpha, 1e-9, 1 - 1e-9, xtol=1e-14)
    assert clopper_pearson(k, n, alpha, sided="upper") == pytest.approx((0.0, hi_one), abs=1e-10)


def test_clopper_pearson_is_vectorised_over_k():
    ks = np.array([0, 3, 10])
    lo, hi = clopper_pearson(ks, 10, 0.05)
    assert lo.shape == hi.shape == (3,)
    for i, k in enumerate(ks):
        assert (lo[i], hi[i]) == pytest.approx(clopper_pearson(int(k), 10, 0.05), abs=1e-15)


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((11, 10), {}, "0 <= k <= n"),
        ((-1, 10), {}, "0 <= k <= n"),
        ((0, 0), {}, "n must be >= 1"),
        ((1.5, 10), {}, "integers"),
        ((1, 10, 1.5), {}, "alpha"),
        ((1, 10), {"sided": "left"}, "sided"),
    ],
)
def test_clopper_pearson_validation(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        clopper_pearson(*args, **kwargs)


@given(st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_clopper_pearson_brackets_the_rate(kn):
    k, n = kn
    lo, hi = clopper_pearson(k, n, 1e-3)
    assert lo <= k / n <= hi
    assert clopper_pearson(k, n, 1e-3, sided="upper")[1] <= hi
    assert clopper_pearson(k, n, 1e-3, sided="lower")[0] >= lo


# -- check_high_probability ---------------------------------------------------------------


@pytest.fixture(scope="module")
def exponential_samples():
    return np.random.default_rng(2024).exponential(size=20_000)


def test_a_loose_correct_bound_is_certified(exponential_samples):
    delta = 0.05
    check = check_high_probability(exponential_samples, -math.log(delta / 2), delta)  # true violation 0.025
    assert check.certified and check.consistent and check.ok
    assert check.n == 20_000 and check.k == np.count_nonzero(exponential_samples > -math.log(delta / 2))
    assert "Clopper-Pearson" in check.text and "0.001" in check.text and "certified" in check.text


def test_a_tight_correct_bound_is_consistent_but_not_certified(exponential_samples):
    delta = 0.05
    check = check_high_probability(exponential_samples, -math.log(delta), delta)  # violation exactly delta
    assert check.consistent and not check.certified and not check.ok


def test_a_planted_wrong_bound_is_rejected(exponential_samples):
    delta = 0.05
    check = check_high_probability(exponential_samples, -math.log(2 * delta), delta)  # violated w.p. 2 delta
    assert not check.consistent and not check.certified
    assert "REJECTED" in check.text


def test_per_run_bounds(exponential_samples):
    scale = np.linspace(0.5, 2.0, exponential_samples.size)
    check = check_high_probability(exponential_samples * scale, -math.log(0.025) * scale, 0.05)
    assert check.k == np.count_nonzero(exponential_samples > -math.log(0.025))
    assert check.certified


@pytest.mark.parametrize(
    "samples, bound, delta, match",
    [
        ([[1.0]], 1.0, 0.1, "1-d"),
        ([], 1.0, 0.1, "non-empty"),
        ([1.0, np.nan], 1.0, 0.1, r"samples\[1\]"),
        ([1.0, 2.0], [1.0, 2.0, 3.0], 0.1, "shape"),
        ([1.0, 2.0], 1.0, 1.0, "delta"),
    ],
)
def test_check_high_probability_validation(samples, bound, delta, match):
    with pytest.raises(ValueError, match=match):
        check_high_probability(samples, bound, delta)


# -- fit_rate -----------------------------------------------------------------------------

X = np.array([1e2, 1e3, 1e4, 1e5])


def power_law_units(exponent, n_units=2000, seed=7):
    """Exponential noise around the means 3 x^exponent, one column per x."""
    return 3.0 * X**exponent * np.random.default_rng(seed).exponential(size=(n_units, X.size))


@pytest.mark.parametrize("method", METHODS)
def test_fit_rate_recovers_the_exponent_and_flags_a_wrong_one(method):
    right = fit_rate(X, power_law_units(-0.5), n_boot=2000, seed=1, method=method)
    assert right.ci[0] <= -0.5 <= right.ci[1]
    assert right.statistic == pytest.approx(power_law_units(-0.5).mean(axis=0), rel=1e-14)
    ok, text = upper_bound_verdict(right, -0.5)
    assert ok and "consistent" in text and "2000 resamples" in text and "99.9%" in text
    # Planted error: data decaying as x^-0.3 checked against an x^-0.5 bound.
    wrong = fit_rate(X, power_law_units(-0.3), n_boot=2000, seed=1, method=method)
    ok, text = upper_bound_verdict(wrong, -0.5)
    assert not ok and "NOT consistent" in text
    # ... and the mirror rule catches a decay faster than a claimed lower bound's slope.
    assert lower_bound_verdict(right, -0.5)[0]
    assert not lower_bound_verdict(right, -0.3)[0]


def test_fit_rate_bootstrap_moments_match_the_multinomial_bootstrap():
    samples = power_law_units(-0.5, n_units=500)
    fit = fit_rate(X, samples, n_boot=4000, seed=3)
    centred = samples - samples.mean(axis=0)
    exact_var = (centred**2).sum(axis=0) / samples.shape[0] ** 2  # Var of a resampled mean, given the data
    assert fit.boot_statistic.var(axis=0) == pytest.approx(exact_var, rel=0.1)
    se = np.sqrt(exact_var / 4000)
    assert np.all(np.abs(fit.boot_statistic.mean(axis=0) - samples.mean(axis=0)) < 5 * se)


def anticorrelated_units(n_units=400):
    """Half the units are (1, 0) over a 2-point grid, half (0, 1), at each of 2 x values."""
    unit = np.zeros((n_units, 2, 2))
    unit[: n_units // 2, :, 0] = 1.0
    unit[n_units // 2:, :, 1] = 1.0
    return unit


@pytest.mark.parametrize("grid_axis", [2, -1])
def test_grid_statistic_is_the_max_of_unit_means(grid_axis):
    samples = power_law_units(-0.5).reshape(500, 4, 4)
    fit = fit_rate(X, samples, grid_axis=grid_axis, n_boot=500, level=0.01, seed=0)
    assert fit.statistic == pytest.approx(samples.mean(axis=0).max(axis=1), rel=1e-14)
    units = anticorrelated_units()
    fit = fit_rate([1.0, 2.0], units, grid_axis=grid_axis, n_boot=500, level=0.01, seed=0)
    assert fit.statistic == pytest.approx([0.5, 0.5], abs=1e-15)
    assert units.max(axis=2).mean(axis=0) == pytest.approx([1.0, 1.0])  # mean of per-unit maxima differs


@pytest.mark.parametrize("method", METHODS)
def test_grid_maximum_is_recomputed_in_each_resample(method):
    n_units, n_boot = 400, 4000
    fit = fit_rate([1.0, 2.0], anticorrelated_units(n_units), grid_axis=2, n_boot=n_boot, seed=5, method=method)
    # In a resample with B units of type (1, 0) the statistic is max(B, n - B) / n, B ~ Bin(n, 1/2)
    # (the mean of per-unit maxima would be 1). Its exact mean, from the binomial pmf:
    b = np.arange(n_units + 1)
    exact_mean = np.sum(stats.binom.pmf(b, n_units, 0.5) * np.maximum(b, n_units - b)) / n_units
    # >= 0.5 always; 0.65 is 6 standard deviations of max(B, n - B) / n above 0.5
    assert np.all(fit.boot_statistic >= 0.5) and np.all(fit.boot_statistic < 0.65)
    assert fit.boot_statistic.mean(axis=0) == pytest.approx([exact_mean] * 2, abs=0.0015)  # ~6 s.e.


def test_same_seed_same_resamples():
    samples = power_law_units(-0.5, n_units=300)
    a = fit_rate(X, samples, n_boot=300, level=0.05, seed=11)
    b = fit_rate(X, samples, n_boot=300, level=0.05, seed=np.random.SeedSequence(11))
    c = fit_rate(X, samples, n_boot=300, level=0.05, seed=12)
    assert np.array_equal(a.boot_slopes, b.boot_slopes)
    assert not np.array_equal(a.boot_slopes, c.boot_slopes)
    assert a.boot_slopes.shape == (300,) and a.boot_statistic.shape == (300, 4) and a.seed == 11


def test_nonpositive_statistics_raise_naming_x():
    samples = power_law_units(-0.5, n_units=100)
    samples[:, 2] = 0.0
    with pytest.raises(ValueError, match="x = 10000"):
        fit_rate(X, samples, n_boot=100, level=0.05, seed=0)
    samples[:, 2] = 0.0
    samples[0, 2] = 1.0  # a single non-zero unit: about 37% of resamples miss it
    for method in METHODS:
        with pytest.raises(ValueError, match=r"resampled statistic at x = 10000 is <= 0 in \d+\.\d+%"):
            fit_rate(X, samples, n_boot=200, level=0.05, seed=0, method=method)


@pytest.mark.parametrize(
    "x, samples, kwargs, match",
    [
        ([1.0, -2.0], np.ones((5, 2)), {}, "positive"),
        ([1.0, 1.0], np.ones((5, 2)), {}, "distinct"),
        ([1.0], np.ones((5, 1)), {}, "at least 2 points"),
        ([1.0, 2.0], np.ones((5, 3)), {}, "x has 2 points"),
        ([1.0, 2.0], np.ones((5, 2)), {"grid_axis": 2}, "n_grid"),
        ([1.0, 2.0], np.ones((5, 2, 3)), {}, r"\(n_units, n_x\)"),
        ([1.0, 2.0], np.ones((5, 2, 3)), {"grid_axis": 1}, "grid_axis must be"),
        ([1.0, 2.0], np.ones((1, 2)), {}, "at least 2 units"),
        ([1.0, 2.0], np.full((5, 2), np.nan), {}, "finite"),
        ([1.0, 2.0], np.ones((5, 2)), {"n_boot": 0}, "n_boot"),
        ([1.0, 2.0], np.ones((5, 2)), {"method": "bayes"}, "method"),
        ([1.0, 2.0], np.ones((5, 2)), {"n_boot": 100}, "increase n_boot"),
    ],
)
def test_fit_rate_validation(x, samples, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_rate(x, samples, **kwargs)


# -- verdicts on constructed fits ---------------------------------------------------------


def constructed_fit(lo, hi, n_boot=40_001):
    """A RateFit whose bootstrap slopes are evenly spaced on [lo, hi]: its percentile
    interval at level a is lo + (hi - lo) * (a/2, 1 - a/2) exactly."""
    slopes = np.linspace(lo, hi, n_boot)
    stat = np.ones((n_boot, 2))
    return RateFit(np.array([1.0, 10.0]), np.ones(2), (lo + hi) / 2, slopes, n_boot, 1e-3, None, (lo, hi), stat)


def test_interval_is_the_percentile_interval():
    fit = constructed_fit(-0.6, -0.4)
    assert fit.interval(1e-3) == pytest.approx((-0.6 + 0.2 * 5e-4, -0.4 - 0.2 * 5e-4), abs=1e-12)
    lo, hi = fit.stat_interval(0.1)
    assert lo == pytest.approx([1.0, 1.0]) and hi == pytest.approx([1.0, 1.0])


def test_band_verdict_and_bonferroni():
    fit = constructed_fit(-0.6, -0.4)
    assert band_verdict(fit, -0.61, -0.39)[0]
    ok, text = band_verdict(fit, -0.55, -0.3)
    assert not ok and "NOT inside" in text
    # Interval at 1e-3 is [-0.5999, -0.4001]; at 1e-4 (10 claims) [-0.59999, -0.40001].
    assert band_verdict(fit, -0.59995, -0.35)[0]
    ok, text = band_verdict(fit, -0.59995, -0.35, n_claims=10)
    assert not ok and "Bonferroni over 10 claims" in text and "99.99%" in text
    wide, narrow = fit.interval(1e-4), fit.interval(1e-3)
    assert wide[0] < narrow[0] and wide[1] > narrow[1]
    with pytest.raises(ValueError, match="increase n_boot"):
        band_verdict(fit, -1, 0, n_claims=100)
    with pytest.raises(ValueError, match="lo <= hi"):
        band_verdict(fit, 0, -1)


def test_slope_verdicts_on_constructed_fits():
    fit = constructed_fit(-0.52, -0.48)
    assert upper_bound_verdict(fit, -0.5)[0]  # upper end -0.48 <= -0.47
    assert not upper_bound_verdict(fit, -0.52)[0]  # -0.48 > -0.49
    assert lower_bound_verdict(fit, -0.5)[0]  # lower end -0.52 >= -0.53
    ok, text = lower_bound_verdict(fit, -0.47)
    assert not ok and "local slope -0.470" in text
    assert upper_bound_verdict(fit, -0.5, tol=0.0)[0] is False


# -- G-test -------------------------------------------------------------------------------


def g_by_hand(obs, exp):
    return 2 * sum(o * math.log(o / e) for o, e in zip(obs, exp) if o > 0)


def test_g_test_pools_small_cells():
    statistic, dof, p = g_test([48, 35, 4, 0, 13], [50, 30, 3, 2, 15])
    # Cells 2 and 3 (expected 3 and 2) pool into one cell with expected 5.
    g = g_by_hand([48, 35, 13, 4], [50, 30, 15, 5])
    assert (statistic, dof) == (pytest.approx(g, rel=1e-12), 3)
    assert p == pytest.approx(stats.chi2.sf(g, 3), rel=1e-10)


def test_g_test_merges_a_still_small_pool_into_the_smallest_cell():
    statistic, dof, _ = g_test([60, 37, 2, 1], [55, 41, 3, 1])
    assert (statistic, dof) == (pytest.approx(g_by_hand([60, 40], [55, 45]), rel=1e-12), 1)


def test_g_test_zero_cells():
    statistic, dof, _ = g_test([45, 0, 55], [50, 0, 50])
    assert (statistic, dof) == (pytest.approx(g_by_hand([45, 55], [50, 50]), rel=1e-12), 1)
    with pytest.raises(ValueError, match=r"observed\[1\] = 1 but expected\[1\] = 0"):
        g_test([45, 1, 54], [50, 0, 50])
    with pytest.raises(ValueError, match="total"):
        g_test([45, 55], [0.5, 0.5])
    with pytest.raises(ValueError, match="fewer than 2 cells"):
        g_test([3, 2], [2.5, 2.5])


def test_g_test_accepts_the_right_distribution_and_rejects_a_planted_wrong_one():
    p_true = np.array([0.3, 0.25, 0.2, 0.15, 0.1])
    p_wrong = np.array([0.25, 0.25, 0.2, 0.15, 0.15])
    n = 2000
    observed = np.random.default_rng(99).multinomial(n, p_true)
    assert g_test(observed, n * p_true)[2] > 1e-3
    assert g_test(observed, n * p_wrong)[2] < 1e-3


# -- strategies ---------------------------------------------------------------------------


@given(probability_vectors(st.integers(1, 8)))
def test_probability_vectors_lie_on_the_simplex(p):
    assert p.ndim == 1 and np.all(p >= 0)
    assert abs(p.sum() - 1) <= 4 * p.size * np.finfo(float).eps


@given(probability_vectors(5, positive=True))
def test_positive_probability_vectors(p):
    assert np.all(p >= 1e-3 / 5)


@given(stochastic_arrays((2, 3, 4)))
def test_stochastic_arrays_rows_sum_to_one(P):
    assert P.shape == (2, 3, 4) and np.all(P >= 0)
    assert np.all(np.abs(P.sum(axis=-1) - 1) <= 4 * 4 * np.finfo(float).eps)


def test_resample_counts_kernel_matches_numpy_reference():
    from proofs_check._kernels import resample_counts, resample_counts_ref

    for n_units in (1, 7, 1000):
        W = resample_counts(np.random.default_rng(9), 13, n_units)
        assert np.array_equal(W, resample_counts_ref(np.random.default_rng(9), 13, n_units))
        assert np.all(W.sum(axis=1) == n_units)


def test_fit_rates_share_draws_and_equal_fit_rate_for_one_claim():
    a = power_law_units(-0.5, n_units=300)
    b = power_law_units(-0.3, n_units=300)
    single = fit_rate(X, a, n_boot=400, level=0.05, seed=4)
    [again] = fit_rates(X, [a], n_boot=400, level=0.05, seed=4)
    assert np.array_equal(single.boot_slopes, again.boot_slopes)
    fa, fb = fit_rates(X, [a, b], n_boot=400, level=0.05, seed=4)
    assert fa.slope == pytest.approx(single.slope, rel=1e-14)
    assert fb.slope == pytest.approx(fit_rate(X, b, n_boot=400, level=0.05, seed=4).slope, rel=1e-14)
    with pytest.raises(ValueError, match="same number of units"):
        fit_rates(X, [a, b[:10]], n_boot=400, level=0.05, seed=4)
    with pytest.raises(ValueError, match="claim 1: statistic at x = 100"):
        fit_rates(X, [a, np.zeros_like(b)], n_boot=400, level=0.05, seed=4)


# -- regressions: non-finite binomial counts, message formatting ---------------------------


@pytest.mark.parametrize(
    "k, n, match",
    [
        (math.inf, math.inf, r"got k = inf$"),
        (3, math.inf, r"got n = inf$"),
        (math.nan, 10, r"got k = nan$"),
        ([1, -math.inf], 10, r"got k\[1\] = -inf$"),
        (np.array([1.0, 2.5]), 10, r"got k\[1\] = 2.5$"),
    ],
)
def test_clopper_pearson_rejects_non_finite_counts(k, n, match):
    with pytest.raises(ValueError, match="k and n must be finite integers, " + match):
        clopper_pearson(k, n)


def test_clopper_pearson_range_errors_name_the_entry():
    with pytest.raises(ValueError, match=r"got k\[1\] = 11, n\[1\] = 10$"):
        clopper_pearson([1, 11], [np.int64(10), np.int64(10)])
    with pytest.raises(ValueError, match=r"got n\[0\] = 0$") as info:
        clopper_pearson(0, [np.int64(0), np.int64(3)])
    assert "np." not in str(info.value)


def test_messages_print_plain_numbers():
    with pytest.raises(ValueError, match=r"got 3.0$") as info:
        fit_rate([1.0, 2.0], np.ones((5, 2)), n_boot=np.float64(3.0))
    assert "np." not in str(info.value)
    with pytest.raises(ValueError, match=r"got 0$") as info:
        band_verdict(constructed_fit(-1.0, 1.0), -2.0, 2.0, n_claims=np.int64(0))
    assert "np." not in str(info.value)
