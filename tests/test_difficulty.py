"""KL(pi_init || pi*) against the success variance p(1-p) (difficulty filtering), exactly."""
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import binom

from tabular.rlvr import difficulty as dif
from tabular.rlvr.divergences import kl, reverse_kl_optimum

BETAS = (0.3, 1.0, 3.0)


def _leaf_kl(p, beta, n_correct=3, n_wrong=5, seed=0):
    """KL(pi_init || pi*) summed over leaves of a random base with accuracy p."""
    rng = np.random.default_rng(seed)
    c = rng.dirichlet(np.ones(n_correct)) * p
    w = rng.dirichlet(np.ones(n_wrong)) * (1 - p)
    pi0 = np.concatenate([c, w])
    r = np.r_[np.ones(n_correct), np.zeros(n_wrong)]
    # pi* computed here from its definition, not from the module under test
    star = pi0 * np.exp(r / beta)
    star /= star.sum()
    return float(np.sum(pi0 * np.log(pi0 / star)))


@pytest.mark.parametrize("beta", BETAS)
def test_closed_form_kl_equals_leaf_sum(beta):
    for p in (0.01, 0.2, 0.5, 0.77, 0.999):
        assert dif.kl_to_optimum(p, beta) == pytest.approx(_leaf_kl(p, beta), rel=0, abs=1e-12)


def test_closed_form_kl_matches_divergences_module():
    rng = np.random.default_rng(1)
    pi0 = rng.dirichlet(np.ones(8))
    r = (np.arange(8) < 3).astype(float)
    star = reverse_kl_optimum(pi0, r, 0.7).pi
    assert dif.kl_to_optimum(pi0[:3].sum(), 0.7) == pytest.approx(float(kl(pi0, star)), rel=0, abs=1e-12)


@pytest.mark.parametrize("beta", BETAS)
def test_both_lower_bounds_hold_on_a_fine_grid(beta):
    p = np.linspace(0.0, 1.0, 100_001)
    kl_exact = dif.kl_to_optimum(p, beta)
    assert np.all(kl_exact - dif.variance_lower_bound(p, beta) >= -1e-15)
    assert np.all(kl_exact - dif.pinsker_lower_bound(p, beta) >= -1e-15)
    # the bounds are not vacuous: both are positive inside (0, 1)
    inner = (p > 0) & (p < 1)
    assert np.all(dif.variance_lower_bound(p[inner], beta) > 0)


def test_a_wrong_bound_constant_is_caught():
    """Planted error: t^2 (not t^2/2) times min variance exceeds the KL somewhere."""
    p = np.linspace(0.0, 1.0, 10_001)
    for beta in BETAS:
        assert np.any(dif.kl_to_optimum(p, beta) - 2 * dif.variance_lower_bound(p, beta) < -1e-6)


@pytest.mark.parametrize("beta", BETAS)
def test_kl_zero_exactly_at_the_ends(beta):
    assert dif.kl_to_optimum(0.0, beta) == 0.0 and dif.kl_to_optimum(1.0, beta) == 0.0
    assert np.all(dif.kl_to_optimum(np.linspace(1e-6, 1 - 1e-6, 1000), beta) > 0)


@pytest.mark.parametrize("beta", (0.3, 1.0, 3.0, 30.0))
def test_kl_argmax_below_half_and_matches_numeric_argmax(beta):
    from scipy.optimize import minimize_scalar

    p_max = dif.kl_argmax_accuracy(beta)
    res = minimize_scalar(lambda p: -float(dif.kl_to_optimum(p, beta)), bounds=(1e-9, 1 - 1e-9),
                          method="bounded", options={"xatol": 1e-12})
    assert p_max == pytest.approx(res.x, rel=0, abs=1e-6)
    assert p_max < 0.5
    # and tends to 1/2 as beta grows
    assert abs(dif.kl_argmax_accuracy(1e4) - 0.5) < 1e-4


def test_optimal_accuracy_is_the_shifted_logit():
    for p in (1e-3, 0.3, 0.9):
        t = 1 / 0.4
        assert dif.optimal_accuracy(p, 0.4) == pytest.approx(p * np.exp(t) / (1 - p + p * np.exp(t)), rel=1e-14)


def test_informative_group_probability_symmetric_and_max_at_half():
    p = np.linspace(0, 1, 1001)
    for n in (2, 4, 8):
        v = dif.informative_group_probability(p, n)
        assert np.allclose(v, v[::-1], rtol=0, atol=1e-15)
        assert p[np.argmax(v)] == 0.5
        # exact enumeration: P(0 < c < n)
        c = np.arange(1, n)
        assert np.allclose(v, binom.pmf(c[:, None], n, p).sum(axis=0), rtol=0, atol=1e-14)
    var = p * (1 - p)
    assert p[np.argmax(var)] == 0.5


@given(st.integers(0, 2**32 - 1))
def test_symmetric_band_never_lowers_mean_variance(seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(2, 12))
    p_values = rng.random(m)
    weights = rng.dirichlet(np.ones(m))
    for band in ((0.25, 0.75), (0.125, 0.875), (0.5, 0.5)):
        kept, overall = dif.filtered_variance(p_values, weights, 8, band)
        assert kept >= overall - 1e-12


def test_asymmetric_band_can_lower_mean_variance():
    """The audit's counterexample: band [1/8, 3/8], n = 8, p ~ Beta(8.9, 17.7) (discretised)."""
    from scipy.stats import beta as beta_law

    grid = np.linspace(0.0005, 0.9995, 1000)
    w = beta_law.pdf(grid, 8.9, 17.7)
    w /= w.sum()
    kept, overall = dif.filtered_variance(grid, w, 8, (1 / 8, 3 / 8))
    assert kept < overall
    assert kept == pytest.approx(0.210, rel=0, abs=2e-3) and overall == pytest.approx(0.215, rel=0, abs=2e-3)


def test_bad_input():
    with pytest.raises(ValueError, match="beta"):
        dif.kl_to_optimum(0.5, 0.0)
    with pytest.raises(ValueError, match="1/beta overflows"):
        dif.pinsker_lower_bound(0.5, 1e-320)
    with pytest.raises(ValueError, match="^p = nan is not finite"):
        dif.kl_to_optimum(np.nan, 1.0)
    with pytest.raises(ValueError, match=r"p\[1\]"):
        dif.kl_to_optimum([0.5, 1.5], 1.0)
    with pytest.raises(ValueError, match="p_lo <= p_hi"):
        dif.kept_probability(0.5, 8, (0.8, 0.2))


def _argmax_reference(beta):
    """1/t - 1/(e^t - 1), t = 1/beta, in 80-digit arithmetic (mpmath ships with sympy)."""
    import mpmath

    with mpmath.workdps(80):
        t = 1 / mpmath.mpf(beta)
        return float(1 / t - 1 / mpmath.expm1(t))


@pytest.mark.parametrize("beta", [1e-300, 1e-3, 0.05, 0.3, 9.99, 10.0, 10.01, 1e3, 1e9, 1e16, 1e30])
def test_kl_argmax_at_extreme_beta_against_mpmath(beta):
    got = dif.kl_argmax_accuracy(beta)
    assert got == pytest.approx(_argmax_reference(beta), rel=1e-14, abs=0)
    assert 0 < got < 0.5 or (beta >= 1e16 and got == 0.5)  # 0.5 - 1/(12 beta) rounds to 0.5


def test_kl_argmax_of_the_unstable_form_is_caught():
    """Planted error: the direct [(e^t - 1)/t - 1]/(e^t - 1) is NaN at beta = 1e-3 and breaks
    '< 1/2' at beta = 1e9 (the reviewer's numbers); the mpmath check sees both."""
    def direct(beta):
        with np.errstate(all="ignore"):
            t = 1 / beta
            em1 = np.expm1(t)
            return float((em1 / t - 1.0) / em1)

    assert np.isnan(direct(1e-3))
    assert direct(1e9) != pytest.approx(_argmax_reference(1e9), rel=1e-14, abs=0)


@pytest.mark.parametrize("beta", [1e-300, 1e-3, 1e3, 1e300])
def test_bounds_finite_and_zero_at_the_ends_for_extreme_beta(beta):
    p = np.array([0.0, 1e-300, 1e-9, 0.3, 0.5, 1 - 1e-9, 1.0])
    with warnings.catch_warnings():  # no overflow / invalid-value RuntimeWarning either
        warnings.simplefilter("error")
        kl_exact = dif.kl_to_optimum(p, beta)
        bounds = dif.pinsker_lower_bound(p, beta), dif.variance_lower_bound(p, beta)
    for bound in bounds:
        assert np.all(np.isfinite(bound))
        assert bound[0] == 0.0 and bound[-1] == 0.0
        assert np.all(kl_exact - bound >= -1e-15 * np.maximum(1.0, kl_exact))


def test_pinsker_gap_equals_the_accuracy_shift():
    """p* - p from the stable form against p e^t/(1 - p + p e^t) - p written out (moderate t)."""
    p = np.linspace(0.0, 1.0, 1001)
    for beta in BETAS:
        t = 1 / beta
        shift = p * np.exp(t) / (1 - p + p * np.exp(t)) - p
        assert np.allclose(dif.pinsker_lower_bound(p, beta), 2 * shift**2, rtol=0, atol=1e-15)


def test_a_wrong_pinsker_constant_is_caught():
    """Planted error: 4 (p* - p)^2 (not 2) exceeds the KL near p = 1/2 for small t."""
    p = np.linspace(0.0, 1.0, 10_001)
    assert np.any(dif.kl_to_optimum(p, 3.0) - 2 * dif.pinsker_lower_bound(p, 3.0) < -1e-6)


@pytest.mark.parametrize("band,error", [(0.3, TypeError), ((0.1,), TypeError), ("ab", TypeError),
                                        ((0.1, 0.2, 0.3), TypeError), ((0.1, np.nan), ValueError),
                                        ((-0.1, 0.5), ValueError), ((0.1, "x"), TypeError)])
def test_bad_band(band, error):
    with pytest.raises(error, match="band"):
        dif.kept_probability(0.5, 8, band)


def test_difficulty_filter_rejects_bad_input():
    from tabular.rlvr.difficulty import difficulty_filter

    with pytest.raises(ValueError, match="unknown strategy"):
        difficulty_filter("medium", [0.5])
    with pytest.raises(ValueError):
        difficulty_filter("balanced", [1.5])
    with pytest.raises(ValueError):
        difficulty_filter("balanced", [0.5], band=(0.8, 0.2))
