"""Tests for bandits.stochastic and bandits._kernels: UCB1 and KL-UCB against plain-Python references."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import optimize, special

from bandits import BernoulliBandit, GaussianBandit, KL_UCB_TOL, kl_ucb, ucb1
from bandits._kernels import kl_bernoulli, kl_ucb_index, ucb_run
from bandits.strategies import bandits
from proofs_check.seeding import spawn


# --- plain-Python references (textbook formulas, same random stream) -------------------

def _reward(mean, sigma, gaussian, rng):
    if gaussian:
        return mean + sigma * rng.standard_normal()
    return 1.0 if rng.random() < mean else 0.0


def _simulate(means, T, record_every, index, rng, sigma=0.0, gaussian=False):
    """Play arms 0..nA-1 once, then argmax ``index(rhat, N, n)`` (first maximiser)."""
    nA, mu_star = len(means), max(means)
    counts, sums = [0] * nA, [0.0] * nA
    gap_sum, reward_sum, pseudo, realised = 0.0, 0.0, [], []
    for t in range(1, T + 1):
        if t <= nA:
            a = t - 1
        else:
            scores = [index(sums[k] / counts[k], counts[k], t - 1) for k in range(nA)]
            a = scores.index(max(scores))
        r = _reward(means[a], sigma, gaussian, rng)
        counts[a] += 1
        sums[a] += r
        gap_sum += mu_star - means[a]
        reward_sum += r
        if t % record_every == 0:
            pseudo.append(gap_sum)
            realised.append(t * mu_star - reward_sum)
    return np.array(pseudo), np.array(realised), np.array(counts)


def reference_ucb1(means, T, record_every, rng, sigma=1.0, gaussian=False):
    """UCB1 (Auer et al. 2002, Fig. 1): rhat + sigma sqrt(2 log n / N)."""
    scale = sigma if gaussian else 1.0
    index = lambda rhat, N, n: rhat + scale * math.sqrt(2 * math.log(n) / N)  # noqa: E731
    return _simulate(means, T, record_every, index, rng, sigma, gaussian)


def brentq_kl_index(p, N, level):
    """max{q in [p, 1] : N kl(p, q) <= level} by scipy's brentq on kl from scipy.special."""
    f = lambda q: special.rel_entr(p, q) + special.rel_entr(1 - p, 1 - q) - level / N  # noqa: E731
    if p >= 1 or f(1.0) <= 0:
        return 1.0
    return optimize.brentq(f, p, 1.0, xtol=1e-15, rtol=4 * np.finfo(float).eps)


def reference_kl_ucb(means, T, record_every, c, rng):
    """KL-UCB (Garivier and Cappe 2011, Alg. 1), level log n + c log log n (log log n if log n > 1)."""
    def index(rhat, N, n):
        level = math.log(n) + (c * math.log(math.log(n)) if math.log(n) > 1 else 0.0)
        return brentq_kl_index(rhat, N, level)

    return _simulate(means, T, record_every, index, rng)


def _assert_matches(result, run, reference):
    pseudo, realised, counts = reference
    np.testing.assert_array_equal(result.counts[run], counts)
    np.testing.assert_allclose(result.pseudo_regret[run], pseudo, rtol=1e-13, atol=1e-9)
    np.testing.assert_allclose(result.realised_regret[run], realised, rtol=1e-13, atol=1e-9)


# --- exact agreement with the references -----------------------------------------------

@pytest.mark.parametrize("record_every", [1, 7])
def test_ucb1_bernoulli_matches_reference(record_every):
    means = [0.45, 0.6, 0.5]
    result = ucb1(BernoulliBandit(means), 1500, n_runs=2, record_every=record_every, seed=21)
    for run, child in enumerate(spawn(21, 2)):
        _assert_matches(result, run, reference_ucb1(means, 1500, record_every, np.random.default_rng(child)))


def test_ucb1_gaussian_matches_reference():
    means = [0.0, 0.3, -0.2]
    result = ucb1(GaussianBandit(means, sigma=0.7), 1200, seed=22)
    rng = np.random.default_rng(spawn(22, 1)[0])
    _assert_matches(result, 0, reference_ucb1(means, 1200, 1, rng, sigma=0.7, gaussian=True))


@pytest.mark.parametrize("c", [0.0, 3.0])
def test_kl_ucb_matches_reference(c):
    means = [0.3, 0.5, 0.45]
    result = kl_ucb(BernoulliBandit(means), 600, c=c, record_every=3, seed=23)
    rng = np.random.default_rng(spawn(23, 1)[0])
    _assert_matches(result, 0, reference_kl_ucb(means, 600, 3, c, rng))


@given(bandits(nA=st.integers(1, 5)), st.integers(1, 120))
def test_ucb1_matches_reference_on_random_instances(bandit, T):
    result = ucb1(bandit, T, seed=T)
    rng = np.random.default_rng(spawn(T, 1)[0])
    _assert_matches(result, 0, reference_ucb1(list(bandit.means), T, 1, rng))


# --- the KL-UCB index -------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.0, 1e-12, 0.1, 0.5, 0.93, 1 - 1e-9, 1.0])
@pytest.mark.parametrize("N", [1, 7, 1000, 10**6])
@pytest.mark.parametrize("level", [0.01, 0.69, 3.0, 40.0])
def test_kl_ucb_index_against_brentq(p, N, level):
    q = kl_ucb_index(p, N, level, KL_UCB_TOL)
    q_ref = brentq_kl_index(p, N, level)
    assert p <= q <= 1.0
    assert abs(q - q_ref) <= 1e-9


def test_kl_bernoulli_against_scipy():
    for p, q in [(0.0, 0.3), (1.0, 0.4), (0.2, 0.7), (0.5, 0.5), (0.9, 0.999)]:
        expected = special.rel_entr(p, q) + special.rel_entr(1 - p, 1 - q)
        assert kl_bernoulli(p, q) == pytest.approx(expected, rel=1e-13, abs=1e-300)


# --- invariants, recording, seeding -----------------------------------------------------

@given(bandits(nA=st.integers(1, 6)), st.integers(1, 300), st.integers(1, 9))
def test_regret_curve_invariants(bandit, T, record_every):
    record_every = min(record_every, T)
    for result in (ucb1(bandit, T, n_runs=2, record_every=record_every, seed=1),
                   kl_ucb(bandit, T, n_runs=2, record_every=record_every, seed=1)):
        n_rec = T // record_every
        assert result.pseudo_regret.shape == result.realised_regret.shape == (2, n_rec)
        np.testing.assert_array_equal(result.rounds, record_every * np.arange(1, n_rec + 1))
        assert np.all(result.pseudo_regret >= 0)
        assert np.all(np.diff(result.pseudo_regret, axis=1) >= 0)
        np.testing.assert_array_equal(result.counts.sum(axis=1), T)
        if T % record_every == 0:  # the last record is round T: pseudo-regret = sum_a N[a] gap[a]
            np.testing.assert_allclose(result.pseudo_regret[:, -1], result.counts @ bandit.gaps, rtol=1e-12, atol=1e-12)


def test_record_every_subsamples_the_full_curve():
    bandit = BernoulliBandit([0.2, 0.5, 0.55])
    full = ucb1(bandit, 1000, n_runs=2, seed=5)
    thin = ucb1(bandit, 1000, n_runs=2, record_every=300, seed=5)
    np.testing.assert_array_equal(thin.pseudo_regret, full.pseudo_regret[:, 299::300])
    np.testing.assert_array_equal(thin.realised_regret, full.realised_regret[:, 299::300])
    np.testing.assert_array_equal(thin.counts, full.counts)  # rounds 901..1000 are still played


def test_runs_are_reproducible_and_independent_of_n_runs():
    bandit = BernoulliBandit([0.3, 0.5])
    three = kl_ucb(bandit, 400, n_runs=3, seed=8)
    np.testing.assert_array_equal(three.realised_regret[:1], kl_ucb(bandit, 400, n_runs=1, seed=8).realised_regret)
    assert not np.array_equal(three.realised_regret[0], three.realised_regret[1])


def test_realised_regret_can_be_negative():
    # One arm: pseudo-regret is 0, realised regret t/2 - (successes) is a centred random walk.
    result = ucb1(BernoulliBandit([0.5]), 200, n_runs=20, seed=0)
    assert np.all(result.pseudo_regret == 0)
    assert result.realised_regret.min() < 0 < result.realised_regret.max()


# --- Auer et al. (2002), Theorem 1 -------------------------------------------------------

T_AUER, RUNS_AUER, LEVEL = 50_000, 400, 1e-3
MEANS_AUER = np.array([0.6, 0.4])


def auer_bound(means, T):
    """8 sum_{gap > 0} log T / gap + (1 + pi^2 / 3) sum gap (Auer et al. 2002, Theorem 1)."""
    gaps = means.max() - means
    return 8 * sum(math.log(T) / g for g in gaps if g > 0) + (1 + math.pi**2 / 3) * gaps.sum()


def hoeffding_lower_bound(final_regret, T, gap_max, level):
    """One-sided lower confidence bound on E[regret] at ``level``; each run's regret is in [0, T gap_max]."""
    n = final_regret.shape[0]
    return final_regret.mean() - T * gap_max * math.sqrt(math.log(1 / level) / (2 * n))


def regret_exceeds_auer(explore):
    """True when the data show E[pseudo-regret(T)] > the bound at level 1e-3."""
    final = np.empty(RUNS_AUER)
    for i, child in enumerate(spawn(31, RUNS_AUER)):
        pseudo, _, _ = ucb_run(MEANS_AUER, 0.0, False, T_AUER, T_AUER, explore, np.random.default_rng(child))
        final[i] = pseudo[-1]
    lower = hoeffding_lower_bound(final, T_AUER, 0.2, LEVEL)
    return lower > auer_bound(MEANS_AUER, T_AUER)


def test_ucb1_within_auer_bound():
    assert not regret_exceeds_auer(explore=2.0)  # UCB1's constant


def test_auer_check_catches_greedy():
    # Planted error: no exploration bonus. With probability >= 0.4 * 0.4 the first pulls give
    # (0, 1), after which greedy never returns to the best arm: linear regret.
    assert regret_exceeds_auer(explore=0.0)


# --- bad input ------------------------------------------------------------------------

@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: ucb1(BernoulliBandit([0.5]), 0), ValueError, "T must be >= 1"),
        (lambda: ucb1(BernoulliBandit([0.5]), 10, n_runs=0), ValueError, "n_runs must be >= 1"),
        (lambda: ucb1(BernoulliBandit([0.5]), 10, record_every=11), ValueError, "record_every = 11 exceeds T = 10"),
        (lambda: ucb1(BernoulliBandit([0.5]), 10.0), TypeError, "T must be an int"),
        (lambda: ucb1([0.5, 0.4], 10), TypeError, "bandit must be"),
        (lambda: kl_ucb(GaussianBandit([0.5]), 10), TypeError, "kl_ucb needs a BernoulliBandit"),
        (lambda: kl_ucb(BernoulliBandit([0.5]), 10, c=-1.0), ValueError, "c must be a finite number >= 0"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


# --- regressions: huge horizons, message formatting -----------------------------------

@pytest.mark.parametrize("T", [2**63, np.uint64(2**63), 2**62 + 1])
def test_horizon_above_the_limit_raises_naming_it(T):
    with pytest.raises(ValueError, match=f"T = {int(T)} exceeds the limit"):
        ucb1(BernoulliBandit([0.5]), T)


def test_messages_print_plain_numbers():
    with pytest.raises(ValueError, match=r"got -1.0$") as info:
        kl_ucb(BernoulliBandit([0.5]), 10, c=np.float64(-1.0))
    assert "np." not in str(info.value)
