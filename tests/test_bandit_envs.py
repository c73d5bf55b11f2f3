"""Tests for bandits.environments and bandits.strategies: validation, sampling, offline data, C*."""
import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from bandits import (
    BernoulliBandit,
    C_star,
    GaussianBandit,
    dataset_statistics,
    offline_dataset,
    sample_statistics,
)
from bandits.strategies import bandits, behaviour_distributions

EPS = np.finfo(np.float64).eps


# --- instances ------------------------------------------------------------------------

def test_properties_on_hand_instance():
    bandit = BernoulliBandit([0.2, 0.7, 0.7, 0.1])
    assert bandit.nA == 4
    assert bandit.optimal_arm == 1  # lowest index among the two maxima
    np.testing.assert_allclose(bandit.gaps, [0.5, 0.0, 0.0, 0.6], rtol=0, atol=1e-15)
    gaussian = GaussianBandit([-1.0, 3.0], sigma=2)
    assert (gaussian.nA, gaussian.optimal_arm, gaussian.sigma) == (2, 1, 2.0)


def test_instances_are_immutable():
    bandit = BernoulliBandit([0.2, 0.7])
    with pytest.raises(ValueError):
        bandit.means[0] = 0.9
    with pytest.raises(dataclasses.FrozenInstanceError):
        bandit.means = np.array([0.1, 0.2])
    source = np.array([0.2, 0.7])
    bandit = BernoulliBandit(source)
    source[0] = 0.9
    assert bandit.means[0] == 0.2


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: BernoulliBandit([0.2, 1.3]), r"means\[1\] = 1.3 is outside \[0.0, 1.0\]"),
        (lambda: BernoulliBandit([-0.1, 0.5]), r"means\[0\] = -0.1"),
        (lambda: BernoulliBandit([0.2, np.nan]), r"means\[1\] = nan is not finite"),
        (lambda: BernoulliBandit([]), r"nA >= 1"),
        (lambda: BernoulliBandit([[0.1, 0.2]]), r"shape \(nA,\)"),
        (lambda: GaussianBandit([0.0, np.inf]), r"means\[1\] = inf is not finite"),
        (lambda: GaussianBandit([0.0, 1.0], sigma=0.0), r"sigma = 0.0 must be finite and > 0"),
        (lambda: GaussianBandit([0.0, 1.0], sigma=np.nan), r"sigma = nan"),
    ],
)
def test_bad_instances_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_types_raise_type_error():
    with pytest.raises(TypeError, match="means must be real numbers"):
        BernoulliBandit(["a", "b"])
    with pytest.raises(TypeError, match="sigma must be a real number"):
        GaussianBandit([0.0], sigma="1")
    with pytest.raises(TypeError, match="arms must be integers"):
        BernoulliBandit([0.5]).sample(np.array([0.0]), seed=0)


def test_sample_values_shapes_and_seeding():
    bandit = BernoulliBandit([0.0, 1.0, 0.5])
    arms = np.array([[0, 1], [2, 2]])
    rewards = bandit.sample(arms, seed=3)
    assert rewards.shape == (2, 2) and rewards.dtype == np.float64
    assert rewards[0, 0] == 0.0 and rewards[0, 1] == 1.0
    assert set(np.unique(rewards)) <= {0.0, 1.0}
    np.testing.assert_array_equal(rewards, bandit.sample(arms, seed=3))
    with pytest.raises(ValueError, match=r"arms\[1, 0\] = 3 is not an arm index in \[0, 2\]"):
        bandit.sample(np.array([[0, 1], [3, 0]]), seed=0)


def test_gaussian_sample_moments():
    # Mean of 4e4 draws: sd sigma / 200 = 0.01; |z| < 4.5 has two-sided level < 1e-5.
    bandit = GaussianBandit([1.0, -2.0], sigma=2.0)
    rewards = bandit.sample(np.ones(40_000, dtype=np.int64), seed=1)
    assert abs(rewards.mean() - (-2.0)) < 4.5 * 0.01
    assert abs(rewards.std() - 2.0) < 0.05


# --- offline datasets -----------------------------------------------------------------

def test_offline_dataset_shapes_and_support():
    bandit = BernoulliBandit([0.3, 0.6, 0.9])
    arms, rewards = offline_dataset(bandit, [0.5, 0.0, 0.5], 500, seed=0)
    assert arms.shape == rewards.shape == (500,)
    assert arms.dtype == np.int64 and rewards.dtype == np.float64
    assert not np.any(arms == 1)  # mu[1] = 0
    assert set(np.unique(rewards)) <= {0.0, 1.0}
    again = offline_dataset(bandit, [0.5, 0.0, 0.5], 500, seed=0)
    np.testing.assert_array_equal(arms, again[0])
    np.testing.assert_array_equal(rewards, again[1])
    empty = offline_dataset(bandit, [1.0, 0.0, 0.0], 0, seed=0)
    assert empty[0].shape == (0,)


@pytest.mark.parametrize(
    "mu, match",
    [
        ([0.5, 0.6, -0.1], r"mu\[2\] = -0.1 is negative"),
        ([0.5, 0.4, 0.0], r"mu sums to 0.9, not 1"),
        ([0.5, np.nan, 0.5], r"mu\[1\] = nan is not finite"),
        ([0.5, 0.5], r"mu must have shape \(3,\)"),
    ],
)
def test_bad_behaviour_distribution(mu, match):
    with pytest.raises(ValueError, match=match):
        offline_dataset(BernoulliBandit([0.1, 0.2, 0.3]), mu, 10, seed=0)


def test_behaviour_sum_tolerance_is_16_nA_eps():
    bandit = BernoulliBandit([0.1, 0.2, 0.3, 0.4])
    offline_dataset(bandit, [0.25, 0.25, 0.25, 0.25 + 60 * EPS], 5, seed=0)  # 60 eps < 64 eps
    with pytest.raises(ValueError, match="not 1"):
        offline_dataset(bandit, [0.25, 0.25, 0.25, 0.25 + 80 * EPS], 5, seed=0)


def test_bad_sizes():
    bandit = BernoulliBandit([0.5])
    with pytest.raises(ValueError, match="N must be >= 0"):
        offline_dataset(bandit, [1.0], -1, seed=0)
    with pytest.raises(TypeError, match="N must be an int"):
        offline_dataset(bandit, [1.0], 10.0, seed=0)
    with pytest.raises(ValueError, match="R must be >= 1"):
        sample_statistics(bandit, [1.0], 10, 0, seed=0)
    with pytest.raises(TypeError, match="bandit must be"):
        sample_statistics([0.5], [1.0], 10, 1, seed=0)


def test_dataset_statistics_against_a_loop():
    arms = np.array([[2, 0, 2, 2], [1, 1, 0, 1]])
    rewards = np.array([[0.5, 1.0, 0.25, 1.0], [0.0, 1.0, 0.75, 1.0]])
    counts, sums = dataset_statistics(arms, rewards, 3)
    np.testing.assert_array_equal(counts, [[1, 0, 3], [1, 3, 0]])
    np.testing.assert_array_equal(sums, [[1.0, 0.0, 1.75], [0.75, 2.0, 0.0]])
    assert counts.dtype == np.int64 and sums.dtype == np.float64
    one_counts, one_sums = dataset_statistics(arms[1], rewards[1], 3)
    np.testing.assert_array_equal(one_counts, [1, 3, 0])
    np.testing.assert_array_equal(one_sums, [0.75, 2.0, 0.0])


def test_dataset_statistics_bad_input():
    with pytest.raises(ValueError, match="must share one shape"):
        dataset_statistics(np.array([0, 1]), np.array([1.0]), 2)
    with pytest.raises(ValueError, match=r"rewards\[1\] = nan is not finite"):
        dataset_statistics(np.array([0, 1]), np.array([1.0, np.nan]), 2)
    with pytest.raises(ValueError, match=r"arms\[0\] = 2 is not an arm index"):
        dataset_statistics(np.array([2, 1]), np.array([1.0, 0.0]), 2)


def test_sample_statistics_invariants():
    bandit = BernoulliBandit([0.3, 0.6, 0.9])
    counts, sums = sample_statistics(bandit, [0.2, 0.0, 0.8], 37, 500, seed=1)
    assert counts.shape == sums.shape == (500, 3)
    assert counts.dtype == np.int64 and sums.dtype == np.float64
    np.testing.assert_array_equal(counts.sum(axis=1), 37)
    assert np.all(counts[:, 1] == 0) and np.all(sums[:, 1] == 0)
    assert np.all((0 <= sums) & (sums <= counts)) and np.all(sums == np.round(sums))
    counts_g, sums_g = sample_statistics(GaussianBandit([0.0, 5.0, 1.0]), [0.2, 0.0, 0.8], 37, 5, seed=1)
    assert np.all(sums_g[:, 1] == 0) and np.all(np.isfinite(sums_g))


# --- fast path vs dataset path, in distribution ---------------------------------------

N_DIST, R_DIST = 40, 4000
ALPHA_EACH = 1e-3 / 4  # Bonferroni over 4 tests: 2 statistics x 2 reward laws
MU_DIST = np.array([0.5, 0.3, 0.2])


def _two_sample_pvalue(x, y, n_bins=12):
    """Chi-square test of homogeneity of x and y, binned at pooled quantiles."""
    edges = np.unique(np.quantile(np.concatenate([x, y]), np.linspace(0, 1, n_bins + 1)))
    cells = len(edges) - 1
    table = np.array([np.bincount(np.searchsorted(edges[1:-1], v, side="right"), minlength=cells) for v in (x, y)])
    table = table[:, table.sum(axis=0) > 0]
    return stats.chi2_contingency(table).pvalue


def _dataset_path(bandit, seed):
    arms, rewards = offline_dataset(bandit, MU_DIST, N_DIST * R_DIST, seed=seed)
    return dataset_statistics(arms.reshape(R_DIST, N_DIST), rewards.reshape(R_DIST, N_DIST), bandit.nA)


def _pvalues(bandit, fast_bandit, fast_mu=MU_DIST):
    counts_d, sums_d = _dataset_path(bandit, seed=11)
    counts_f, sums_f = sample_statistics(fast_bandit, fast_mu, N_DIST, R_DIST, seed=12)
    return (
        _two_sample_pvalue(counts_d[:, 0], counts_f[:, 0]),
        _two_sample_pvalue(sums_d.sum(axis=1), sums_f.sum(axis=1)),
    )


@pytest.mark.parametrize("bandit", [BernoulliBandit([0.2, 0.5, 0.7]), GaussianBandit([0.2, 0.5, 0.7], 0.5)])
def test_fast_path_matches_dataset_path_in_distribution(bandit):
    p_counts, p_sums = _pvalues(bandit, bandit)
    assert p_counts > ALPHA_EACH and p_sums > ALPHA_EACH


@pytest.mark.parametrize(
    "bandit, wrong",
    [
        (BernoulliBandit([0.2, 0.5, 0.7]), BernoulliBandit([0.25, 0.5, 0.7])),
        (GaussianBandit([0.2, 0.5, 0.7], 0.5), GaussianBandit([0.25, 0.5, 0.7], 0.5)),
    ],
)
def test_distribution_check_catches_a_wrong_mean(bandit, wrong):
    _, p_sums = _pvalues(bandit, wrong)
    assert p_sums < ALPHA_EACH


def test_distribution_check_catches_a_wrong_behaviour_distribution():
    bandit = BernoulliBandit([0.2, 0.5, 0.7])
    p_counts, _ = _pvalues(bandit, bandit, fast_mu=[0.45, 0.35, 0.2])
    assert p_counts < ALPHA_EACH


# --- C* (the sheet's test 1) ----------------------------------------------------------

@given(bandits(), st.data())
def test_C_star_at_least_one(bandit, data):
    mu = data.draw(behaviour_distributions(bandit.nA))
    c = C_star(mu, bandit)
    assert c >= 1
    a_star = bandit.optimal_arm
    assert c == (np.inf if mu[a_star] == 0 else 1 / mu[a_star])
    assert C_star(mu, a_star) == c


@given(bandits())
def test_C_star_expert_and_uncovered(bandit):
    a_star = bandit.optimal_arm
    expert = np.zeros(bandit.nA)
    expert[a_star] = 1.0
    assert C_star(expert, bandit) == 1.0
    if bandit.nA > 1:
        uncovered = np.full(bandit.nA, 1.0)
        uncovered[a_star] = 0.0
        assert C_star(uncovered / uncovered.sum(), bandit) == np.inf


def test_C_star_hand_values_and_errors():
    assert C_star([0.25, 0.75], 0) == 4.0
    assert C_star([2 / 3, 1 / 3], BernoulliBandit([0.6, 0.5])) == 1.5
    with pytest.raises(ValueError, match="optimal_arm = 2 is not an index"):
        C_star([0.5, 0.5], 2)
    with pytest.raises(ValueError, match="is negative"):
        C_star([1.5, -0.5], 0)


# --- strategies -----------------------------------------------------------------------

@given(bandits(nA=st.integers(1, 6), min_gap=0.2))
def test_strategy_min_gap(bandit):
    assert isinstance(bandit, BernoulliBandit)
    others = np.delete(bandit.means, bandit.optimal_arm)
    assert np.all(bandit.means.max() - others >= 0.2)
    assert np.all((0 <= bandit.means) & (bandit.means <= 1))


@given(bandits(nA=3, kind="gaussian", min_gap=0.5))
def test_strategy_gaussian(bandit):
    assert isinstance(bandit, GaussianBandit) and bandit.nA == 3 and bandit.sigma > 0
    assert np.all(np.delete(bandit.gaps, bandit.optimal_arm) >= 0.5)


@given(st.integers(1, 9).flatmap(behaviour_distributions))
def test_strategy_behaviour_distributions_are_valid(mu):
    assert np.all(mu >= 0)
    assert abs(mu.sum() - 1) <= 16 * mu.shape[0] * EPS
    offline_dataset(BernoulliBandit(np.full(mu.shape[0], 0.5)), mu, 3, seed=0)  # validates mu


@pytest.mark.parametrize("kwargs, match", [({"kind": "poisson"}, "kind must be one of"), ({"min_gap": 1.5}, "min_gap")])
def test_strategy_bad_arguments(kwargs, match):
    @given(bandits(**kwargs))
    def draw_one(bandit):
        pass

    with pytest.raises(ValueError, match=match):
        draw_one()


# --- regressions: empty datasets, float32 mu, huge N, message formatting -----------------

@pytest.mark.parametrize("shape, expected", [((3, 0), (3, 2)), ((0, 5), (0, 2)), ((0,), (2,))])
def test_dataset_statistics_of_empty_datasets_are_zero(shape, expected):
    counts, sums = dataset_statistics(np.zeros(shape, int), np.zeros(shape), 2)
    assert counts.shape == expected and counts.dtype == np.int64
    assert sums.shape == expected and sums.dtype == np.float64
    assert not counts.any() and not sums.any()


def test_float32_mu_uses_its_own_precision():
    # 100 float32 entries of 0.01: the float32 sum is 1 to float32 precision, but in float64
    # it is 1 - 2.2e-8, which both float64's 16 nA eps and numpy's own samplers reject.
    mu = np.full(100, 0.01, np.float32)
    assert abs(float(mu.astype(np.float64).sum()) - 1) > 16 * 100 * EPS
    bandit = BernoulliBandit(np.linspace(0.0, 1.0, 100))
    counts, _ = sample_statistics(bandit, mu, 50, 3, seed=0)
    assert counts.sum(axis=1).tolist() == [50, 50, 50]
    arms, _ = offline_dataset(bandit, mu, 50, seed=0)
    assert arms.shape == (50,)
    assert C_star(mu, bandit) == pytest.approx(100.0, rel=1e-6)


def test_float32_mu_tolerance_is_16_nA_float32_eps():
    eps32 = float(np.finfo(np.float32).eps)
    bandit = BernoulliBandit([0.1, 0.2])
    ok = np.array([0.5, 0.5 + 24 * eps32], np.float32)  # 24 eps < 32 eps
    assert C_star(ok, bandit) == pytest.approx(2.0, rel=1e-5)
    with pytest.raises(ValueError, match="not 1"):
        C_star(np.array([0.5, 0.5 + 64 * eps32], np.float32), bandit)


@pytest.mark.parametrize("N", [2**63, np.uint64(2**63), 2**62 + 1])
def test_N_above_the_limit_raises_naming_it(N):
    bandit = BernoulliBandit([0.5, 0.5])
    with pytest.raises(ValueError, match=f"N = {int(N)} exceeds the limit"):
        sample_statistics(bandit, [0.5, 0.5], N, 1, seed=0)
    with pytest.raises(ValueError, match=f"N = {int(N)} exceeds the limit"):
        offline_dataset(bandit, [0.5, 0.5], N, seed=0)


def test_N_at_the_limit_is_exact():
    counts, _ = sample_statistics(BernoulliBandit([0.5, 0.5]), [0.5, 0.5], 2**62, 1, seed=0)
    assert int(counts.sum()) == 2**62


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: GaussianBandit([0.0], sigma=np.float64(-1.0)), r"sigma = -1.0 must"),
        (lambda: BernoulliBandit(np.array([np.float32(1.5)])), r"means\[0\] = 1.5 is outside"),
        (lambda: C_star(np.array([np.float64(30.0), 0.5]), 0), r"mu sums to 30.5,"),
        (lambda: C_star(np.array([np.float32(-0.5), 1.5]), 0), r"mu\[0\] = -0.5 is negative"),
        (lambda: dataset_statistics(np.array([0]), np.array([np.float32(np.inf)]), 1), r"rewards\[0\] = inf"),
    ],
)
def test_messages_print_plain_numbers(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "np." not in str(info.value)
