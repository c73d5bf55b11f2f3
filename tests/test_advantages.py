"""Group advantages: GRPO closed forms (rlvr_misc property 1), Dr.GRPO, RLOO, PSR/NSR/W weights, with planted errors."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabular.rlvr.advantages import binary_grpo_advantages, group_advantages
from tabular.rlvr.verifiers import group_advantages as verifier_group_advantages


def _binary_group(G, c):
    return np.array([1.0] * c + [0.0] * (G - c))


@pytest.mark.parametrize("G", [2, 3, 5, 8, 16])
def test_grpo_binary_closed_forms(G):
    for c in range(1, G):
        p = c / G
        A = group_advantages(_binary_group(G, c), "grpo")
        assert np.allclose(A[:c], np.sqrt((1 - p) / p), rtol=0, atol=1e-12)
        assert np.allclose(A[c:], -np.sqrt(p / (1 - p)), rtol=0, atol=1e-12)
        assert abs(A.sum()) < 1e-12
        assert abs((A**2).sum() - G) < 1e-12
        A_s = group_advantages(_binary_group(G, c), "grpo", std="sample")
        assert np.allclose(A_s, A * np.sqrt((G - 1) / G), rtol=0, atol=1e-12)
        a_c, a_w = binary_grpo_advantages(p, G)
        assert abs(a_c - np.sqrt((1 - p) / p)) < 1e-12 and abs(a_w + np.sqrt(p / (1 - p))) < 1e-12
        a_c, a_w = binary_grpo_advantages(p, G, std="sample")
        assert abs(a_c - A_s[0]) < 1e-12 and abs(a_w - A_s[-1]) < 1e-12


def test_closed_form_check_catches_a_planted_std():
    """Planted error: the sample std where the population std is meant breaks sum A^2 = G."""
    G, c = 8, 3
    A_wrong = group_advantages(_binary_group(G, c), "grpo", std="sample")
    assert abs((A_wrong**2).sum() - G) > 0.5


@pytest.mark.parametrize("value", [0.0, 1.0, -2.5])
@pytest.mark.parametrize("kind", ["grpo", "mean", "drgrpo", "rloo"])
def test_all_equal_group_gives_zero(kind, value):
    A = group_advantages(np.full(6, value), kind, eps=1e-6 if kind == "grpo" else 0.0)
    assert np.all(A == 0.0)
    assert np.all(binary_grpo_advantages(np.array([0.0, 1.0]), 6)[0] == 0.0)


@given(st.lists(st.floats(-5, 5), min_size=2, max_size=9))
def test_rloo_mean_and_grpo_against_loops(r):
    r = np.array(r)
    G = r.size
    loo = np.array([r[i] - np.delete(r, i).mean() for i in range(G)])
    assert np.allclose(group_advantages(r, "rloo"), loo, atol=1e-12, rtol=0)
    assert np.allclose(group_advantages(r, "mean"), r - r.mean(), atol=1e-12, rtol=0)
    assert np.allclose(group_advantages(r, "drgrpo"), r - r.mean(), atol=1e-12, rtol=0)
    if r.std() > 1e-6:
        ref = (r - r.mean()) / (np.sqrt(((r - r.mean()) ** 2).mean()) + 0.01)
        assert np.allclose(group_advantages(r, "grpo", eps=0.01), ref, atol=1e-12, rtol=0)
        assert np.allclose(group_advantages(r, "grpo"), verifier_group_advantages(r), atol=1e-12, rtol=0)


def test_rounding_spread_counts_as_equal_but_a_real_spread_does_not():
    """[1, 1 + 1e-15] differ by rounding only: advantage 0, not +-1 (an exact-equality test
    would give +-1); a spread of 1e-6 is signal."""
    assert np.all(group_advantages([1.0, 1.0 + 1e-15], "grpo") == 0.0)
    assert np.all(verifier_group_advantages([1.0, 1.0 + 1e-15]) == 0.0)
    assert np.allclose(group_advantages([1.0, 1.0 + 1e-6], "grpo"), [-1.0, 1.0], rtol=0, atol=1e-6)
    assert np.all(group_advantages([0.0, 0.0, 0.0], "grpo") == 0.0)


def test_psr_nsr_w_weights_with_both_reward_conventions():
    for rewards in (np.array([1.0, 0.0, 1.0]), np.array([1.0, -1.0, 1.0])):
        assert np.array_equal(group_advantages(rewards, "psr"), [1.0, 0.0, 1.0])
        assert np.array_equal(group_advantages(rewards, "nsr"), [0.0, -1.0, 0.0])
        assert np.array_equal(group_advantages(rewards, "w", lam=0.1), [0.1, -1.0, 0.1])
        assert np.array_equal(group_advantages(rewards, "rlvr"), [1.0, -1.0, 1.0])
    # no-signal groups (sheet test 6)
    assert np.all(group_advantages(np.ones(4), "nsr") == 0)
    assert np.all(group_advantages(np.zeros(4), "psr") == 0)
    # batched groups along the last axis
    A = group_advantages(np.array([[1.0, 0.0], [0.0, 0.0]]), "grpo")
    assert np.array_equal(A, [[1.0, -1.0], [0.0, 0.0]])


def test_bad_input():
    with pytest.raises(ValueError, match="kind"):
        group_advantages([1.0, 0.0], "ppo")
    with pytest.raises(ValueError, match="std"):
        group_advantages([1.0, 0.0], "grpo", std="unbiased")
    with pytest.raises(ValueError, match="eps"):
        group_advantages([1.0, 0.0], "grpo", eps=-1.0)
    with pytest.raises(ValueError, match="not finite"):
        group_advantages([1.0, np.nan], "grpo")
    with pytest.raises(ValueError, match="at least 2"):
        group_advantages([1.0], "rloo")
    with pytest.raises(ValueError, match="group axis"):
        group_advantages(np.zeros((3, 0)), "grpo")
    with pytest.raises(ValueError):
        binary_grpo_advantages(1.5, 4)
    with pytest.raises(ValueError):
        binary_grpo_advantages(0.5, 1)
