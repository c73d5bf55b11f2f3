"""tabular.mixed_data: trajectory weighting, KL-regularised soft VI, RCSL and MBRCSL."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from proofs_check.stats import g_test
from tabular import backward_induction, evaluate_policy, expected_return, occupancy
from tabular.mdp import TabularMDP
from tabular.mixed_data import (
    STITCH_STATES,
    advantage_weights,
    demonstration_regularized_policy,
    evaluate_rcsl,
    fit_rcsl,
    kl_regularized_vi,
    mbrcsl,
    normalize_returns,
    rcsl_action_probabilities,
    regularized_value,
    resample_trajectories,
    resampled_behaviour_cloning,
    return_weights,
    rpsv,
    state_action_counts,
    stitching_dataset,
    stitching_mdp,
    trajectory_returns,
)
from tabular.offline import behaviour_cloning
from tabular.sampling import Episodes, sample_episodes
from tabular.strategies import mdps

A_, D, B, C, E, T = (STITCH_STATES[k] for k in ("A", "D", "B", "C", "E", "T"))

returns = hnp.arrays(np.float64, st.integers(1, 30), elements=st.floats(-10, 10))
alphas = st.floats(1e-3, 1e3)


def _episodes(states, actions, rewards):
    states, actions = np.array(states, dtype=np.int64), np.array(actions, dtype=np.int64)
    return Episodes(states, actions, np.array(rewards, dtype=float),
                    (actions >= 0).sum(axis=1).astype(np.int64))


# --- trajectory weighting -------------------------------------------------------------------


def test_normalize_and_weights_closed_forms():
    np.testing.assert_allclose(normalize_returns([2.0, 4.0, 3.0]), [0.0, 1.0, 0.5], rtol=0, atol=0)
    np.testing.assert_array_equal(normalize_returns([3.0, 3.0]), [0.0, 0.0])
    # Two returns: w = (1, e^{1/alpha}) / (1 + e^{1/alpha}), whatever their scale.
    for alpha in (0.1, 1.0, 7.0):
        e = math.exp(1.0 / alpha)
        np.testing.assert_allclose(return_weights([-5.0, 100.0], alpha), [1 / (1 + e), e / (1 + e)],
                                   rtol=1e-13)
    np.testing.assert_array_equal(return_weights([1.0, 2.0, 9.0], np.inf), np.full(3, 1 / 3))
    assert rpsv([0.0, 0.0, 0.0, 4.0]) == 2.25  # mean 1: only (4 - 1)^2 / 4 counts


@given(G=returns, alpha=alphas)
def test_return_weights_are_comonotone_and_raise_the_mean(G, alpha):
    """Property [1]: w is a distribution, non-decreasing in G, and E_w[G] >= mean G."""
    w = return_weights(G, alpha)
    assert np.all(w >= 0) and abs(w.sum() - 1.0) < 1e-12
    order = np.argsort(G, kind="stable")
    assert np.all(np.diff(w[order]) >= -1e-15 * w.max())
    assert w @ G >= G.mean() - 1e-12 * (1 + np.abs(G).max())


@given(G=returns, alpha=st.floats(10.0, 1e6))
def test_large_alpha_recovers_uniform(G, alpha):
    # Normalised returns lie in [0, 1], so n w_i lies in [e^{-1/alpha}, e^{1/alpha}].
    nw = G.size * return_weights(G, alpha)
    assert np.all(nw >= math.exp(-1 / alpha) * (1 - 1e-12))
    assert np.all(nw <= math.exp(1 / alpha) * (1 + 1e-12))


@given(G=returns, alpha=alphas, data=st.data())
def test_advantage_weights_within_a_start_are_comonotone(G, alpha, data):
    s0 = data.draw(hnp.arrays(np.int64, G.size, elements=st.integers(0, 2)))
    w = advantage_weights(G, s0, alpha)
    assert abs(w.sum() - 1.0) < 1e-12
    for s in np.unique(s0):
        m = s0 == s
        wm = w[m] / w[m].sum()
        assert wm @ G[m] >= G[m].mean() - 1e-12 * (1 + np.abs(G).max())


def test_advantage_weights_closed_form():
    # Per-start means 1 and 10: advantages (-1, 1, -2, 2) -> normalised (0.25, 0.75, 0, 1).
    G = np.array([0.0, 2.0, 8.0, 12.0])
    expected = np.exp(np.array([0.25, 0.75, 0.0, 1.0]) / 0.5)
    np.testing.assert_allclose(advantage_weights(G, [0, 0, 1, 1], 0.5), expected / expected.sum(),
                               rtol=1e-13)
    # One trajectory per start: every advantage is 0, so the weights are uniform.
    np.testing.assert_allclose(advantage_weights(G, [0, 1, 2, 3], 0.01), np.full(4, 0.25), rtol=1e-14)


def test_resampling_matches_weights_and_catches_a_uniform_sampler():
    w = np.array([0.5, 0.3, 0.15, 0.05])
    n = 20000
    idx = resample_trajectories(w, n, seed=3)
    np.testing.assert_array_equal(idx, resample_trajectories(w, n, seed=3))
    counts = np.bincount(idx, minlength=4)
    assert g_test(counts, n * w)[2] > 1e-3
    # Planted error: a sampler ignoring the weights is rejected at the same level.
    planted = np.bincount(np.random.default_rng(3).integers(0, 4, n), minlength=4)
    assert g_test(planted, n * w)[2] < 1e-3


def test_state_action_counts_and_resampled_bc():
    ep = _episodes([[0, 1, 2], [0, 2, 2], [1, 2, 2]], [[0, 1], [1, -1], [1, 0]],
                   [[0, 1], [1, 0], [0, 0]])
    expected = np.zeros((3, 2), dtype=np.int64)
    for i in range(3):
        for h in range(2):
            if ep.actions[i, h] >= 0:
                expected[ep.states[i, h], ep.actions[i, h]] += 1
    np.testing.assert_array_equal(state_action_counts(ep, 3, 2), expected)
    np.testing.assert_array_equal(state_action_counts(ep, 3, 2, [2, 2]), [[0, 0], [0, 2], [2, 0]])
    # All weight on trajectory 0: BC copies its actions, unseen state 2 gets uniform.
    pi = resampled_behaviour_cloning(ep, 3, 2, [1.0, 0.0, 0.0], seed=0)
    np.testing.assert_array_equal(pi, [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    G = trajectory_returns(ep)
    np.testing.assert_array_equal(G, [1.0, 1.0, 0.0])


@pytest.mark.parametrize("call, match", [
    (lambda: return_weights([1.0, 2.0], 0.0), "alpha = 0.0 must be positive"),
    (lambda: return_weights([1.0, np.nan], 1.0), r"G\[1\] = nan is not finite"),
    (lambda: return_weights([], 1.0), "n >= 1"),
    (lambda: advantage_weights([1.0, 2.0], [0], 1.0), "s0 has shape"),
    (lambda: resample_trajectories([0.5, 0.6], 3), "sum to 1.1"),
    (lambda: resample_trajectories([1.5, -0.5], 3), r"weights\[1\] = -0.5 is negative"),
    (lambda: state_action_counts(_episodes(np.zeros((0, 2)), np.zeros((0, 1)), np.zeros((0, 1))),
                                 2, 2), "empty"),
    (lambda: state_action_counts(_episodes([[0, 3]], [[0]], [[0.0]]), 2, 2),
     r"states\[0, 1\] = 3 is not a state"),
    (lambda: state_action_counts(_episodes([[0, 1]], [[2]], [[0.0]]), 2, 2),
     r"actions\[0, 0\] = 2 is not an action"),
])
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_wrong_types():
    with pytest.raises(TypeError, match="Episodes"):
        trajectory_returns(np.zeros((2, 2)))
    with pytest.raises(TypeError, match="alpha must be a real number"):
        return_weights([1.0], "1")
    with pytest.raises(TypeError, match="s0 must hold integer states"):
        advantage_weights([1.0, 2.0], [0.0, np.nan], 1.0)
    ep = _episodes([[0, 1], [1, 0]], [[1], [0]], [[1.0], [0.0]])
    with pytest.raises(TypeError, match="index must hold integer"):
        state_action_counts(ep, 2, 2, [0.0])
    with pytest.raises(ValueError, match=r"index must have shape \(m,\), got \(1, 1\)"):
        state_action_counts(ep, 2, 2, np.array([[0]]))


def _consumers():
    """Readers of Episodes in three modules (all through tabular.sampling._read_episodes),
    called on a 2-state, 2-action task."""
    from tabular.robust import r2pvi
    from tabular.sampling import episodes_to_transitions

    return {
        "trajectory_returns": trajectory_returns,
        "fit_rcsl": lambda ep: fit_rcsl(ep, 2, 2),
        "episodes_to_transitions": lambda ep: episodes_to_transitions(ep, 2, 2),
        "r2pvi": lambda ep: r2pvi(ep, 2, 2, lam=1.0, divergence="kl", beta=0.1),
    }


_BAD_EPISODES = [
    # The reviewer's case: trajectory_returns used to return [0.] for it.
    (lambda: Episodes(np.zeros((2, 3), np.int64), np.zeros((3, 2), np.int64), np.zeros((1, 2)),
                      np.full(3, 2)), ValueError, r"episodes.states has shape \(2, 3\), expected \(3, 3\)"),
    (lambda: Episodes(np.zeros((3, 3), np.int64), np.zeros((3, 2), np.int64), np.zeros((1, 2)),
                      np.full(3, 2)), ValueError, r"episodes.rewards has shape \(1, 2\)"),
    (lambda: Episodes(np.zeros((1, 3), np.int64), np.zeros((1, 2), np.int64), np.zeros((1, 2)),
                      np.array([1])), ValueError, r"episodes.actions\[0, 1\] = 0 does not match "
                                                  r"episodes.lengths\[0\] = 1"),
    (lambda: Episodes(np.zeros((1, 3)), np.zeros((1, 2), np.int64), np.zeros((1, 2)),
                      np.array([2])), TypeError, "episodes.states must hold integers"),
    (lambda: Episodes(np.zeros((1, 3), np.int64), np.zeros((1, 2), np.int64),
                      np.array([[0.0, np.nan]]), np.array([2])), ValueError,
     r"episodes.rewards\[0, 1\] = nan is not finite"),
]


@pytest.mark.parametrize("make, error, match", _BAD_EPISODES)
@pytest.mark.parametrize("consumer", ["trajectory_returns", "fit_rcsl", "episodes_to_transitions",
                                      "r2pvi"])
def test_one_episode_reader_names_the_field_everywhere(make, error, match, consumer):
    with pytest.raises(error, match=match):
        _consumers()[consumer](make())


# --- demonstration-regularised RL -----------------------------------------------------------


def _prior(mdp, data, full_support):
    counts = data.draw(hnp.arrays(np.int64, (mdp.S, mdp.A), elements=st.integers(0, 5)))
    return behaviour_cloning(counts, 1.0 if full_support else 0.0)


@given(mdp=mdps(kind="finite", S=st.integers(1, 4), A=st.integers(1, 3), H=st.integers(1, 4)),
       lam=st.floats(0.01, 10.0), data=st.data())
def test_soft_vi_optimality_and_sandwich(mdp, lam, data):
    """Property [2]: V^{pi_lam} >= V_lam(pi_lam) = V_reg >= V_lam(pi) for all pi, and V_reg >= V^{pi_BC}."""
    prior = _prior(mdp, data, full_support=data.draw(st.booleans()))
    res = kl_regularized_vi(mdp, prior, lam)
    tol = 1e-9 * (1 + np.abs(res.V).max())
    np.testing.assert_allclose(res.pi.sum(axis=2), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(regularized_value(mdp, res.pi, prior, lam), res.V, rtol=0, atol=tol)
    assert np.all(evaluate_policy(mdp, res.pi).V >= res.V - tol)
    assert np.all(res.V >= evaluate_policy(mdp, prior).V - tol)
    np.testing.assert_allclose(regularized_value(mdp, prior, prior, lam), evaluate_policy(mdp, prior).V,
                               rtol=0, atol=tol)
    # Any policy within the prior's support does no better on the regularised objective.
    other = data.draw(hnp.arrays(np.float64, (mdp.S, mdp.A), elements=st.floats(0.0, 1.0)))
    other = np.where(prior > 0, other + 1e-3, 0.0)
    other /= other.sum(axis=1, keepdims=True)
    assert np.all(regularized_value(mdp, other, prior, lam) <= res.V + tol)


def test_soft_vi_one_step_closed_form():
    # H = 1: V(s) = lam log sum_a prior(a|s) exp(R(s, a) / lam), pi ∝ prior exp(R / lam).
    R = np.array([[1.0, 0.0, 2.0], [0.5, 0.5, -1.0]])
    P = np.zeros((2, 3, 2))
    P[:, :, 0] = 1.0
    mdp = TabularMDP(P, R, [0.5, 0.5], H=1)
    prior = np.array([[0.2, 0.3, 0.5], [0.6, 0.0, 0.4]])
    lam = 0.7
    res = kl_regularized_vi(mdp, prior, lam)
    weights = prior * np.exp(R / lam)
    np.testing.assert_allclose(res.V[0], lam * np.log(weights.sum(axis=1)), rtol=1e-14)
    np.testing.assert_allclose(res.pi[0], weights / weights.sum(axis=1, keepdims=True), rtol=1e-14)
    assert res.pi[0, 1, 1] == 0.0  # outside the prior's support


@given(mdp=mdps(kind="finite", S=st.integers(1, 4), A=st.integers(1, 3), H=st.integers(1, 4)),
       data=st.data())
def test_small_lam_gives_the_optimum(mdp, data):
    """lam -> 0 with a full-support prior: V* - (H-h) lam log(1/min prior) <= V_reg <= V^{pi_lam} <= V*."""
    prior = _prior(mdp, data, full_support=True)
    lam = 1e-6
    V_star = backward_induction(mdp).V
    res = kl_regularized_vi(mdp, prior, lam)
    V_pi = evaluate_policy(mdp, res.pi).V
    steps_to_go = mdp.H - np.arange(mdp.H)[:, None]
    slack = steps_to_go * lam * np.log(1.0 / prior.min())
    tol = 1e-9 * (1 + np.abs(V_star).max())
    assert np.all(res.V >= V_star - slack - tol)
    assert np.all(res.V <= V_pi + tol) and np.all(V_pi <= V_star + tol)


@given(mdp=mdps(kind="finite", S=st.integers(1, 4), A=st.integers(1, 3), H=st.integers(1, 4)),
       lam=st.floats(1e3, 1e8), data=st.data())
def test_large_lam_gives_the_prior(mdp, lam, data):
    """lam -> inf: |log pi_lam - log prior| <= span_a Q_h(s, .) / lam on the prior's support."""
    prior = _prior(mdp, data, full_support=data.draw(st.booleans()))
    res = kl_regularized_vi(mdp, prior, lam)
    span = (res.Q.max(axis=2) - res.Q.min(axis=2))[:, :, None] / lam
    support = np.broadcast_to(prior > 0, res.pi.shape)
    gap = np.abs(np.log(res.pi[support]) - np.log(np.broadcast_to(prior, res.pi.shape)[support]))
    assert np.all(gap <= np.broadcast_to(span, res.pi.shape)[support] + 1e-9)
    assert np.all(res.pi[~support] == 0.0)


def test_demonstration_regularized_policy_uses_smoothed_bc():
    mdp = stitching_mdp()
    counts = state_action_counts(stitching_dataset(10, seed=0), mdp.S, mdp.A)
    res = demonstration_regularized_policy(mdp, counts, 0.3, smoothing=0.5)
    ref = kl_regularized_vi(mdp, (counts + 0.5) / (counts.sum(axis=1, keepdims=True) + 1.0), 0.3)
    np.testing.assert_allclose(res.V, ref.V, rtol=1e-14)
    # The data at A only take action 0 (A -> B), yet the smoothed prior lets small lam find
    # A -> B -> E (1.5): the optimum is reached as lam -> 0.
    small = demonstration_regularized_policy(mdp, counts, 1e-4, smoothing=0.5)
    assert expected_return(mdp, small.pi) == pytest.approx(1.5, abs=1e-3)


def test_soft_vi_bad_input():
    mdp = stitching_mdp()
    prior = np.full((mdp.S, mdp.A), 0.5)
    with pytest.raises(ValueError, match="lam = 0.0 must be positive"):
        kl_regularized_vi(mdp, prior, 0.0)
    # Q / lam overflows float64 (max Q = 1.5): an error, not a silent NaN.
    with pytest.raises(ValueError, match="lam = 1e-310 is too small"):
        kl_regularized_vi(mdp, prior, 1e-310)
    # Just above the overflow the soft values are the optimal ones (V* from backward induction).
    tiny = kl_regularized_vi(mdp, prior, 1e-300)
    np.testing.assert_allclose(tiny.V, backward_induction(mdp).V, atol=1e-12)
    assert np.all(np.isfinite(tiny.pi)) and expected_return(mdp, tiny.pi) == 1.5
    with pytest.raises(ValueError, match="finite-horizon"):
        kl_regularized_vi(mdp.replace(H=None, gamma=0.9), prior, 1.0)
    with pytest.raises(TypeError, match="stochastic"):
        kl_regularized_vi(mdp, np.zeros(mdp.S, dtype=np.int64), 1.0)
    with pytest.raises(ValueError, match=r"row pi\[0, :\] sums to"):
        kl_regularized_vi(mdp, np.full((mdp.S, mdp.A), 0.4), 1.0)
    with pytest.raises(ValueError, match="KL"):
        regularized_value(mdp, prior, np.tile([1.0, 0.0], (mdp.S, 1)), 1.0)


# --- RCSL and MBRCSL ------------------------------------------------------------------------


def test_stitching_dataset_never_contains_the_stitched_path():
    ep = stitching_dataset(200, seed=1)
    from_A = ep.states[:, 0] == A_
    assert 0 < from_A.sum() < 200
    assert np.all(ep.states[from_A, 2] == C) and np.all(ep.states[~from_A, 2] == E)
    np.testing.assert_array_equal(np.unique(trajectory_returns(ep)), [0.5, 1.0])
    assert backward_induction(stitching_mdp()).V[0, A_] == 1.5


def test_rcsl_fit_and_in_support_conditioning():
    ep = stitching_dataset(30, seed=2)
    policy = fit_rcsl(ep, 6, 2)
    np.testing.assert_allclose(policy.returns, [0.0, 0.5, 1.0], atol=1e-12)
    n_A = int((ep.states[:, 0] == A_).sum())
    # At B: return-to-go 0 (towards C, from A) and 1 (towards E, from D).
    assert policy.counts[B, 0, 0] == n_A and policy.counts[B, 2, 1] == 30 - n_A
    probs, R_used = rcsl_action_probabilities(policy, A_, np.inf)
    assert R_used == 0.5 and probs.tolist() == [1.0, 0.0]
    probs, R_used = rcsl_action_probabilities(policy, B, 0.8)  # nearest seen: 1.0
    assert R_used == 0.8 and probs.tolist() == [0.0, 1.0]
    probs, _ = rcsl_action_probabilities(policy, T, 3.0)  # never seen: uniform
    assert probs.tolist() == [0.5, 0.5]
    # From A, RCSL imitates the best trajectory through A: A -> B -> C, return 0.5.
    out = evaluate_rcsl(stitching_mdp(), policy, R_target=1.5)
    np.testing.assert_array_equal(out.final_state, np.eye(6)[C])
    assert out.expected_return == 0.5


def test_evaluate_rcsl_matches_occupancy_when_returns_carry_no_information():
    # Zero rewards in the data: one return bucket, so RCSL is behaviour cloning; its exact
    # evaluation in a rewarded MDP must match planning.occupancy and expected_return.
    rng = np.random.default_rng(5)
    S, A, H = 4, 3, 3
    P = rng.dirichlet(np.ones(S), size=(S, A))
    mdp = TabularMDP(P, rng.uniform(-1, 1, (S, A)), np.full(S, 0.25), H=H)
    mu = rng.dirichlet(np.ones(A), size=S)
    ep = sample_episodes(mdp.replace(R=np.zeros((S, A))), mu, 50, seed=rng)
    policy = fit_rcsl(ep, S, A)
    pi = behaviour_cloning(state_action_counts(ep, S, A))
    out = evaluate_rcsl(mdp, policy)
    d_last = occupancy(mdp, pi)[H - 1]
    np.testing.assert_allclose(out.final_state, np.einsum("sa,sat->t", d_last, P), atol=1e-12)
    assert out.expected_return == pytest.approx(expected_return(mdp, pi), abs=1e-12)


def test_mbrcsl_stitches_and_falls_back():
    mdp = stitching_mdp()
    ep = stitching_dataset(20, seed=4)
    res = mbrcsl(ep, 6, 2, 200, seed=5)
    assert res.threshold == 1.0
    kept = res.rollouts.states[res.kept]
    assert kept.shape[0] > 0
    np.testing.assert_array_equal(kept, np.tile([A_, B, E], (kept.shape[0], 1)))
    np.testing.assert_array_equal(evaluate_rcsl(mdp, res.policy).final_state, np.eye(6)[E])
    # A threshold no rollout beats: RCSL on the dataset itself.
    none = mbrcsl(ep, 6, 2, 50, threshold=10.0, seed=5)
    assert not none.kept.any()
    np.testing.assert_array_equal(none.policy.counts, fit_rcsl(ep, 6, 2).counts)


def test_rcsl_acting_rules_on_the_stitching_graph():
    """Clipped RCSL cannot stitch; unclipped nearest-return RCSL does (worked by hand below)."""
    mdp = stitching_mdp()
    ep = stitching_dataset(30, seed=2)
    assert 0 < int((ep.states[:, 0] == A_).sum()) < 30  # both A->B->C and D->B->E present
    policy = fit_rcsl(ep, 6, 2)
    # Clipped: A's only return-to-go is 0.5, so the target at B is 0.5 - 0.5 = 0 -> C, for
    # every start target at or above 0.5.
    for R_target in (np.inf, 1.0, 1.5):
        out = evaluate_rcsl(mdp, policy, R_target, rule="clip")
        np.testing.assert_array_equal(out.final_state, np.eye(6)[C])
        assert out.expected_return == 0.5
    # Unclipped, target inf: A -> B (reward 0.5, target stays inf), at B the largest seen
    # return-to-go (1) picks action 1 -> E: return 1.5, the optimum.
    out = evaluate_rcsl(mdp, policy, np.inf, rule="nearest")
    np.testing.assert_array_equal(out.final_state, np.eye(6)[E])
    assert out.expected_return == 1.5
    # Target 1.0 (the dataset's best return): at B the target 0.5 is equidistant from the
    # seen 0 and 1; ties go to the larger, so E again.
    np.testing.assert_array_equal(
        evaluate_rcsl(mdp, policy, 1.0, rule="nearest").final_state, np.eye(6)[E])
    # An in-support target (0.5, A's own return) is reproduced faithfully: A -> B -> C.
    np.testing.assert_array_equal(
        evaluate_rcsl(mdp, policy, 0.5, rule="nearest").final_state, np.eye(6)[C])
    probs, R_used = rcsl_action_probabilities(policy, B, np.inf, rule="nearest")
    assert probs.tolist() == [0.0, 1.0] and R_used == np.inf
    probs, R_used = rcsl_action_probabilities(policy, B, np.inf, rule="clip")
    assert probs.tolist() == [0.0, 1.0] and R_used == 1.0


def test_rcsl_bad_input():
    ep = stitching_dataset(5, seed=0)
    mdp, policy = stitching_mdp(), fit_rcsl(ep, 6, 2)
    with pytest.raises(ValueError, match="R_target = nan must be a real number or inf"):
        evaluate_rcsl(mdp, policy, np.nan)
    with pytest.raises(ValueError, match="R = -inf"):
        rcsl_action_probabilities(policy, A_, -np.inf)
    with pytest.raises(TypeError, match="R_target must be a real number"):
        evaluate_rcsl(mdp, policy, "1")
    with pytest.raises(ValueError, match="rule = 'greedy' is not one of"):
        evaluate_rcsl(mdp, policy, rule="greedy")
    with pytest.raises(TypeError, match="rule must be a string"):
        rcsl_action_probabilities(policy, A_, 1.0, rule=None)
    with pytest.raises(ValueError, match="threshold = nan must be finite"):
        mbrcsl(ep, 6, 2, 5, threshold=np.nan)
    with pytest.raises(TypeError, match="threshold must be a real number or None"):
        mbrcsl(ep, 6, 2, 5, threshold="1")
    with pytest.raises(ValueError, match="bin_width"):
        fit_rcsl(ep, 6, 2, bin_width=0.0)
    with pytest.raises(ValueError, match="n_rollouts = 0"):
        mbrcsl(ep, 6, 2, 0)
    with pytest.raises(ValueError, match="counts of shape"):
        evaluate_rcsl(stitching_mdp(), fit_rcsl(ep, 7, 2))
    with pytest.raises(ValueError, match="share_from_A"):
        stitching_dataset(5, share_from_A=1.5)
    with pytest.raises(ValueError, match="s = 6 is not a state"):
        rcsl_action_probabilities(fit_rcsl(ep, 6, 2), 6, 1.0)
    # All trajectories from D: valid, and RCSL at the unseen start A acts uniformly.
    only_D = stitching_dataset(4, share_from_A=0.0, seed=0)
    assert np.all(only_D.states[:, 0] == D)
    assert rcsl_action_probabilities(fit_rcsl(only_D, 6, 2), A_, 1.0)[0].tolist() == [0.5, 0.5]
