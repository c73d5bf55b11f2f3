"""ROVER on tree MDPs (He et al. 2025): Q_u closed form, sign lemma, greedy optimality, the
temperature limits, the counterexamples, invariance; each check catches a planted error."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tabular.rlvr.rover import (
    graded_reward_counterexample, greedy_policy, rover_policy, sign_lemma_violations,
    stochastic_transition_counterexample, uniform_q_closed_form,
)
from tabular.strategies import tree_mdps
from tabular.tree import TreeMDP, evaluate, optimal_q, uniform_q


def count_closed_form(tree):
    """Q_u(s, a) = #correct leaves under s.a / V^(D-t-1), counting leaf by leaf."""
    V, D = tree.n_vocab, tree.depth
    Q = np.zeros((tree.n_prompts, tree.n_nodes, V))
    tokens = tree.leaf_tokens(np.arange(tree.n_leaves))
    for t in range(D):
        prefix = tokens[:, : t + 1] @ (V ** np.arange(t, -1, -1))  # index of s.a at level t+1
        for x in range(tree.n_prompts):
            sums = np.bincount(prefix, weights=tree.R[x], minlength=V ** (t + 1))
            Q[x, tree.level(t)] = (sums / V ** (D - t - 1)).reshape(-1, V)
    return Q


@settings(max_examples=50)
@given(tree_mdps(eos=False, rewards=st.sampled_from(["binary", "float"])))
def test_closed_form_equals_recursion(tree):
    """Sheet test 1: |closed form - recursion| < 1e-12."""
    Q = uniform_q(tree).Q
    assert np.abs(Q - count_closed_form(tree)).max() < 1e-12
    assert np.abs(Q - uniform_q_closed_form(tree)).max() < 1e-12


def test_closed_form_catches_missing_one_over_V():
    """Planted: the recursion Q(s,a) = sum_a' Q(s.a, a') (no 1/V) breaks the closed form."""
    tree = TreeMDP(np.arange(27) % 5 == 0, n_vocab=3, depth=3)
    Q = uniform_q(tree).Q.copy()
    for t in range(tree.depth):
        Q[:, tree.level(t)] *= tree.n_vocab ** (tree.depth - 1 - t)  # what the sum recursion gives
    assert np.abs(Q - count_closed_form(tree)).max() > 0.1
    with pytest.raises(ValueError, match="without EOS"):
        uniform_q_closed_form(TreeMDP(np.zeros(8), n_vocab=2, depth=3, eos=0))


@given(tree_mdps())
def test_sign_lemma(tree):
    """Sheet test 2: (Q_u > 0) == (Q* == 1) for every (s, a), exact boolean equality."""
    Q_u, Q_star = uniform_q(tree).Q, optimal_q(tree).Q
    assert np.array_equal(Q_u > 0, Q_star == 1)
    assert not sign_lemma_violations(tree).any()


def test_sign_lemma_catches_planted_optimal_q():
    """Planted: an 'optimal' Q computed with the mean recursion (i.e. Q_u itself) violates it."""
    R = np.zeros(16)
    R[[0, 5]] = 1.0
    tree = TreeMDP(R, n_vocab=2, depth=4)
    assert sign_lemma_violations(tree, Q_star=uniform_q(tree).Q).any()
    with pytest.raises(ValueError, match="binary reward"):
        sign_lemma_violations(graded_reward_counterexample())


@settings(max_examples=100)
@given(tree_mdps(n_prompts=1), st.integers(0, 2**32 - 1))
def test_greedy_over_uniform_q_is_optimal(tree, seed):
    """Sheet test 3 (Theorem 3.1): V^{pi_g}(root) == V*(root) to 1e-12, with uniform and
    random tie-breaking; the strategy draws sparse (one correct leaf) and dense patterns."""
    V_star = optimal_q(tree).root
    assert np.allclose(V_star, tree.R.max(axis=1), atol=0, rtol=0)
    for pi_g in (greedy_policy(tree), greedy_policy(tree, seed=seed)):
        assert np.abs(evaluate(tree, pi_g).root - V_star).max() < 1e-12


def test_greedy_optimality_catches_planted_tie_tolerance():
    """Planted: a tie tolerance above the Q_u gaps (every action 'ties') is not optimal."""
    R = np.zeros(64)
    R[37] = 1.0
    tree = TreeMDP(R, n_vocab=4, depth=3)
    assert evaluate(tree, greedy_policy(tree)).root[0] == 1.0
    assert evaluate(tree, greedy_policy(tree, tol=1.0)).root[0] < 0.1


def test_temperature_limits():
    """Sheet test 4: rho = 1e-4 equals greedy (1e-9) where the argmax is unique with gap >
    0.01; rho = 1e6 is uniform within 1e-6."""
    rng = np.random.default_rng(5)
    tree = TreeMDP(rng.random((4, 256)) < 0.2, n_vocab=4, depth=4)
    Q = uniform_q(tree).Q
    top2 = np.sort(Q, axis=-1)[..., -2:]
    clear = top2[..., 1] - top2[..., 0] > 0.01
    assert clear.sum() > 50
    cold, greedy = rover_policy(tree, 1e-4), greedy_policy(tree)
    assert np.abs(cold - greedy)[clear].max() < 1e-9
    assert np.abs(rover_policy(tree, 1e6) - 0.25).max() < 1e-6
    # planted: the inverse temperature convention exp(rho Q) is not greedy at rho -> 0
    planted = np.exp(1e-4 * Q) / np.exp(1e-4 * Q).sum(axis=-1, keepdims=True)
    assert np.abs(planted - greedy)[clear].max() > 0.1
    with pytest.raises(ValueError, match="rho"):
        rover_policy(tree, 0.0)


def test_graded_reward_counterexample():
    """Sheet test 5i: greedy picks the all-0.5 subtree: V^{pi_g} = 0.5 < 1 = V*."""
    tree = graded_reward_counterexample()
    Q_u = uniform_q(tree).Q[0, 0]
    assert np.allclose(Q_u, [1 / 16, 0.5], atol=0, rtol=0)
    pi_g = greedy_policy(tree)
    assert pi_g[0, 0, 1] == 1.0
    assert evaluate(tree, pi_g).root[0] == 0.5 and optimal_q(tree).root[0] == 1.0


def test_stochastic_transition_counterexample():
    """Sheet test 5ii: Q_u = (0.5, 0.25), Q* = (0.5, 1) at the root: greedy takes a, earns 0.5."""
    ce = stochastic_transition_counterexample()
    assert np.allclose(ce.Q_u[0, 0, :2], [0.5, 0.25], atol=1e-15, rtol=0)
    assert np.allclose(ce.Q_star[0, 0, :2], [0.5, 1.0], atol=1e-15, rtol=0)
    assert ce.greedy_action == 0
    assert ce.V_greedy == pytest.approx(0.5, abs=1e-15) and ce.V_star == 1.0


@given(tree_mdps(eos=False, rewards=st.sampled_from(["binary", "float"])),
       st.floats(-3, 3))
def test_constant_reward_shift(tree, shift):
    """Sheet test 6: R + c shifts Q_u by c and keeps the greedy policy."""
    shifted = tree.replace(R=tree.R + shift)
    assert np.abs(uniform_q(shifted).Q - uniform_q(tree).Q - shift).max() < 1e-9
    assert np.array_equal(greedy_policy(shifted, tol=1e-9), greedy_policy(tree, tol=1e-9))


def test_input_checks():
    tree = TreeMDP(np.arange(16) % 5 == 0, n_vocab=2, depth=4)
    with pytest.raises(TypeError, match="tol must be a real number"):
        greedy_policy(tree, tol="a")
    with pytest.raises(ValueError, match="tol = -1.0"):
        greedy_policy(tree, tol=-1.0)
    with pytest.raises(TypeError, match="rho must be a real number"):
        rover_policy(tree, "1")
    Q_u = uniform_q(tree).Q.copy()
    Q_u[0, 3, 1] = np.nan
    with pytest.raises(ValueError, match=r"Q_u\[0, 3, 1\] = nan is not finite"):
        sign_lemma_violations(tree, Q_u=Q_u)
    with pytest.raises(ValueError, match=r"Q_star\[0, 3, 1\] = nan"):
        sign_lemma_violations(tree, Q_star=Q_u)


def test_tiny_temperature_is_greedy_without_nan():
    """rho = 1e-300: (Q - max Q)/rho underflows to -inf off the argmax; no NaN, greedy where
    the argmax is unique."""
    R = np.zeros(64)
    R[[5, 6, 40]] = 1.0
    tree = TreeMDP(R, n_vocab=4, depth=3)
    pi = rover_policy(tree, 1e-300)
    assert np.isfinite(pi).all()
    Q = uniform_q(tree).Q[0]
    unique = (Q == Q.max(axis=-1, keepdims=True)).sum(axis=-1) == 1
    assert np.array_equal(pi[0][unique], greedy_policy(tree)[0][unique])
