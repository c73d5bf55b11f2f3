"""BroRL's mass balance: the identity, the signs of its terms, the U = empty limit, the count model."""
import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabular.rlvr import brorl


def _jacobian(p):
    return np.diag(p) - np.outer(p, p)


def _case(seed, V=None):
    rng = np.random.default_rng(seed)
    V = V or int(rng.integers(2, 30))
    z = rng.normal(0, 2, V)
    p = np.exp(z - z.max())
    p /= p.sum()
    correct = rng.random(V) < rng.uniform(0.05, 0.6)
    correct[rng.integers(V)] = True
    if correct.all():
        correct[0] = False
    sampled = rng.random(V) < rng.uniform(0.0, 1.0)
    return p, correct, sampled, rng


def _reference_terms(p, correct, sampled, R_c, R_w, eta, N):
    """The sheet's formula, written out independently of the module."""
    Q_pos = p[correct].sum()
    Q_neg = 1 - Q_pos
    S_R = sum(p[k] * (R_c if correct[k] else R_w) for k in range(p.size) if sampled[k])
    A2 = sum(p[k] ** 2 for k in range(p.size) if sampled[k] and correct[k])
    B2 = sum(p[k] ** 2 for k in range(p.size) if sampled[k] and not correct[k])
    Up = sum(p[k] ** 2 for k in range(p.size) if not sampled[k] and correct[k])
    Un = sum(p[k] ** 2 for k in range(p.size) if not sampled[k] and not correct[k])
    return eta / N * np.array([(R_c - S_R) * Q_neg * A2, (S_R - R_w) * Q_pos * B2,
                               S_R * (Q_pos * Un - Q_neg * Up)])


def test_mass_balance_identity_on_1000_random_cases():
    for seed in range(1000):
        p, correct, sampled, rng = _case(seed)
        R_c, R_w = rng.uniform(0, 2), -rng.uniform(0, 2)
        eta, N = rng.uniform(0.1, 3), int(rng.integers(1, 100))
        terms = brorl.mass_balance_terms(p, correct, sampled, R_c, R_w, eta, N)
        assert np.allclose(terms, _reference_terms(p, correct, sampled, R_c, R_w, eta, N),
                           rtol=0, atol=1e-13)
        # dz is the stated gradient: (eta/N) grad_z sum_{sampled} r_k p_k = (eta/N) J (r * 1_sampled)
        r = np.where(correct, R_c, R_w)
        dz = brorl.set_update(p, correct, sampled, R_c, R_w, eta, N)
        assert np.allclose(dz, eta / N * _jacobian(p) @ (r * sampled), rtol=0, atol=1e-13)
        # the identity: the three terms sum to 1_C^T J dz
        first_order = (_jacobian(p) @ dz)[correct].sum()
        assert terms.sum() == pytest.approx(first_order, rel=0, abs=1e-12)
        assert brorl.first_order_mass_change(p, correct, dz) == pytest.approx(first_order, rel=0, abs=1e-13)
        # signs: the first two terms are never negative
        assert terms[0] >= -1e-16 and terms[1] >= -1e-16


def test_unsampled_term_can_win_with_plus_minus_one_but_not_found_with_one_zero():
    """A draw with dQ_pos < 0 exists under rewards +1/-1; the same draws under 1/0 give none
    (the audit: rewards 1/0 hide the effect), so using 1/0 is a detectable planted error."""
    found_pm, found_10 = 0, 0
    rng = np.random.default_rng(7)
    V, n_correct = 200, 10
    for _ in range(300):
        z = rng.normal(0, 2, V)
        p = np.exp(z - z.max())
        p /= p.sum()
        correct = np.zeros(V, bool)
        correct[np.argsort(p)[: V // 2][rng.choice(V // 2, n_correct, replace=False)]] = True
        counts = rng.multinomial(2, p)
        sampled = counts > 0
        pm = brorl.mass_balance_terms(p, correct, sampled, 1.0, -1.0, 1.0, 2)
        zo = brorl.mass_balance_terms(p, correct, sampled, 1.0, 0.0, 1.0, 2)
        found_pm += pm.sum() < 0
        found_10 += zo.sum() < 0
        if pm.sum() < 0:
            assert pm[2] < 0 and abs(pm[2]) > pm[0] + pm[1]  # the third term dominates
    assert found_pm > 0 and found_10 == 0


def test_no_unsampled_tokens_limit():
    for seed in range(200):
        p, correct, _, _ = _case(seed)
        sampled = np.ones(p.size, bool)
        R_c, R_w, eta, N = 1.0, -1.0, 0.5, 7
        Q_pos = p[correct].sum()
        closed = eta / N * (R_c - R_w) * ((1 - Q_pos) ** 2 * np.sum(p[correct] ** 2)
                                          + Q_pos ** 2 * np.sum(p[~correct] ** 2))
        assert brorl.mass_balance_terms(p, correct, sampled, R_c, R_w, eta, N).sum() == pytest.approx(closed, rel=0, abs=1e-14)
        assert closed > 0


@pytest.mark.parametrize("seed", range(5))
def test_count_model_expectation_by_enumerating_all_multisets(seed):
    V, N, eta, R_c, R_w = 4, 3, 0.7, 1.0, -1.0
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(V))
    correct = np.array([True, False, True, False])
    expected = 0.0
    for draw in itertools.product(range(V), repeat=N):  # ordered draws: each has prob prod p
        counts = np.bincount(draw, minlength=V)
        prob = np.prod(p[list(draw)])
        dz = brorl.count_update(p, counts, correct, R_c, R_w, eta)
        expected += prob * (_jacobian(p) @ dz)[correct].sum()
    assert brorl.expected_count_mass_change(p, correct, R_c, R_w, eta) == pytest.approx(expected, rel=0, abs=1e-12)


def test_count_model_enumeration_catches_a_missing_square():
    """Planted error: Q_neg instead of Q_neg^2 in the expectation formula."""
    V, N, eta = 4, 3, 1.0
    p = np.array([0.1, 0.2, 0.3, 0.4])
    correct = np.array([True, False, True, False])
    expected = sum(np.prod(p[list(d)]) * (_jacobian(p) @ brorl.count_update(
        p, np.bincount(d, minlength=V), correct, 1.0, -1.0, eta))[correct].sum()
        for d in itertools.product(range(V), repeat=N))
    Q = p[correct].sum()
    wrong = eta * 2 * ((1 - Q) * np.sum(p[correct] ** 2) + Q ** 2 * np.sum(p[~correct] ** 2))
    assert abs(wrong - expected) > 1e-3


@given(st.integers(0, 2**32 - 1))
def test_second_order_error_scales_as_eta_squared(seed):
    p, correct, sampled, _ = _case(seed, V=12)
    sampled[np.argmax(p)] = True
    dz1 = brorl.set_update(p, correct, sampled, 1.0, -1.0, 1.0, 1)
    errors = []
    for eta in (1e-2, 5e-3):
        dz = eta * dz1
        errors.append(brorl.exact_mass_change(p, correct, dz) - brorl.first_order_mass_change(p, correct, dz))
    if abs(errors[0]) < 1e-13:  # second-order term vanishes on this instance
        return
    assert errors[0] / errors[1] == pytest.approx(4.0, rel=0.1)


def test_bad_input():
    p = np.array([0.5, 0.5])
    with pytest.raises(ValueError, match="R_w"):
        brorl.mass_balance_terms(p, [True, False], [True, True], 1.0, 0.5, 1.0, 2)
    with pytest.raises(ValueError, match="sums to"):
        brorl.set_update([0.5, 0.6], [True, False], [True, True], 1.0, -1.0, 1.0, 2)
    with pytest.raises(ValueError, match="correct has shape"):
        brorl.set_update(p, [True], [True, True], 1.0, -1.0, 1.0, 2)
    assert math.isclose(brorl.token_rewards([True, False], 1.0, -1.0)[1], -1.0)
    assert brorl.token_rewards([1, 0], 1.0, -1.0).tolist() == [1.0, -1.0]
    with pytest.raises(ValueError, match=r"correct\[2\] = 2 is not a mask value"):
        brorl.token_rewards([1, 0, 2], 1.0, -1.0)
    with pytest.raises(TypeError, match="correct must be a bool mask"):
        brorl.token_rewards([0.5, 1.0], 1.0, -1.0)


def test_batched_draws_equal_one_draw_at_a_time():
    rng = np.random.default_rng(3)
    V = 9
    p = rng.dirichlet(np.ones(V))
    correct = np.arange(V) < 3
    counts = rng.multinomial(5, p, size=20)
    sampled = counts > 0
    terms = brorl.mass_balance_terms(p, correct, sampled, 1.0, -1.0, 0.5, 5)
    dz_set = brorl.set_update(p, correct, sampled, 1.0, -1.0, 0.5, 5)
    dz_count = brorl.count_update(p, counts, correct, 1.0, -1.0, 0.5)
    change = brorl.first_order_mass_change(p, correct, dz_set)
    for i in range(20):
        assert np.array_equal(terms[i], brorl.mass_balance_terms(p, correct, sampled[i], 1.0, -1.0, 0.5, 5))
        assert np.allclose(dz_set[i], brorl.set_update(p, correct, sampled[i], 1.0, -1.0, 0.5, 5), rtol=0, atol=1e-16)
        assert np.allclose(dz_count[i], brorl.count_update(p, counts[i], correct, 1.0, -1.0, 0.5), rtol=0, atol=1e-16)
        assert change[i] == pytest.approx(brorl.first_order_mass_change(p, correct, dz_set[i]), rel=0, abs=1e-16)
