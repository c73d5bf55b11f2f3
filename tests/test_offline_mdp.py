"""Offline tabular RL: behaviour cloning, the empirical model, plain model-based VI and
finite-horizon pessimistic VI (Hoeffding; Bernstein as in Li, Shi, Chen, Chi, Wei 2022)."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from proofs_check.stats import check_high_probability
from tabular.generators import garnet
from tabular.mdp import TabularMDP
from tabular.offline import (
    _masked_vi_kernel,
    _masked_vi_numpy,
    bc_greedy,
    behaviour_cloning,
    bernstein_penalty,
    empirical_model,
    hoeffding_penalty,
    model_based_vi,
    pessimistic_value_iteration,
)
from tabular.planning import backward_induction, evaluate_policy, value_iteration
from tabular.sampling import (
    Transitions,
    TransitionStatistics,
    sample_transitions,
    transition_statistics,
)

LEVEL = 1e-3


# --- behaviour cloning ------------------------------------------------------------------


def test_behaviour_cloning_closed_form_and_unseen_states():
    counts = np.array([[3, 1, 0], [0, 0, 0], [2, 2, 4]])
    np.testing.assert_allclose(behaviour_cloning(counts),
                               [[3 / 4, 1 / 4, 0], [1 / 3] * 3, [1 / 4, 1 / 4, 1 / 2]])
    np.testing.assert_allclose(behaviour_cloning(counts, smoothing=1.0),
                               [[4 / 7, 2 / 7, 1 / 7], [1 / 3] * 3, [3 / 11, 3 / 11, 5 / 11]])
    per_step = behaviour_cloning(np.stack([counts, counts[::-1]]), smoothing=0.5)
    assert per_step.shape == (2, 3, 3)
    np.testing.assert_allclose(per_step.sum(axis=-1), 1.0)
    assert not np.isnan(behaviour_cloning(np.zeros((2, 2), int))).any()


def test_bc_greedy_ties_and_unseen_states():
    counts = np.array([[1, 5, 5], [0, 0, 0], [7, 0, 6]])
    np.testing.assert_array_equal(bc_greedy(counts), [1, 0, 0])
    np.testing.assert_array_equal(bc_greedy(np.stack([counts, counts[::-1]])), [[1, 0, 0], [0, 0, 1]])


@pytest.mark.parametrize("counts, smoothing, match", [
    ([[1, -1]], 0.0, r"counts\[0, 1\] = -1"),
    ([[1.5, 1.0]], 0.0, r"counts\[0, 0\] = 1.5"),
    ([1, 2], 0.0, "expected .S, A. or .H, S, A."),
    ([[1, 2]], -1.0, "smoothing"),
    ([[1, 2]], math.inf, "smoothing"),
])
def test_behaviour_cloning_bad_input(counts, smoothing, match):
    with pytest.raises(ValueError, match=match):
        behaviour_cloning(counts, smoothing)
    with pytest.raises(TypeError):
        bc_greedy(np.array([["a", "b"]]))


# --- the empirical model and plain model-based VI ---------------------------------------


def exact_statistics(mdp: TabularMDP, K: int, seed: int = 0):
    """A model whose transition rows are multiples of 1/K, and statistics with K samples per
    pair reproducing it exactly (Phat = P, rhat = R)."""
    rng = np.random.default_rng(seed)
    lead = mdp.P.shape[:-1]
    trans = np.stack([rng.multinomial(K, p) for p in mdp.P.reshape(-1, mdp.S)]).reshape(mdp.P.shape)
    exact = mdp.replace(P=trans / K)
    counts = np.full(lead, K, dtype=np.int64)
    return exact, TransitionStatistics(counts, exact.R * K, trans)


def test_empirical_model_by_hand_with_uniform_unseen_rows():
    data = Transitions(s=[0, 0, 0, 1], a=[1, 1, 1, 0], r=[1.0, 0.0, 0.5, 0.25],
                       s_next=[1, 1, 0, 1], S=2, A=2)
    model = empirical_model(data)
    np.testing.assert_allclose(model.rhat, [[0.0, 0.5], [0.25, 0.0]])
    np.testing.assert_allclose(model.Phat[0, 1], [1 / 3, 2 / 3])
    np.testing.assert_allclose(model.Phat[0, 0], [0.5, 0.5])  # unseen: 1/S (Li et al. eq. 25)
    np.testing.assert_array_equal(model.seen, [[False, True], [True, False]])


def test_transition_statistics_construction_validates():
    counts, trans = np.array([[2, 0]]), np.array([[[2], [0]]])
    stats = TransitionStatistics(counts.astype(float), [[1, 0]], trans)
    assert stats.counts.dtype == np.int64 and stats.reward_sums.dtype == np.float64
    with pytest.raises(ValueError, match=r"transition_counts\[0, 0, :\] sums to 1"):
        TransitionStatistics(counts, np.zeros((1, 2)), np.array([[[1], [0]]]))
    with pytest.raises(ValueError, match=r"reward_sums\[0, 1\]"):
        TransitionStatistics(counts, np.array([[1.0, 1.0]]), trans)
    with pytest.raises(ValueError, match=r"reward_sums\[0, 0\] = nan"):
        TransitionStatistics(counts, np.array([[np.nan, 0.0]]), trans)
    with pytest.raises(ValueError, match=r"counts\[0, 1\] = -1"):
        TransitionStatistics(np.array([[2, -1]]), np.zeros((1, 2)), trans)
    with pytest.raises(ValueError, match=r"transition_counts has shape \(1, 2, 2\), expected \(1, 2, 1\)"):
        TransitionStatistics(counts, np.zeros((1, 2)), np.zeros((1, 2, 2), int))
    with pytest.raises(ValueError, match=r"reward_sums has shape \(2,\)"):
        TransitionStatistics(counts, np.zeros(2), trans)
    with pytest.raises(TypeError, match="reward_sums must hold real numbers"):
        TransitionStatistics(counts, np.array([["a", "b"]]), trans)
    with pytest.raises(TypeError, match="Transitions or a TransitionStatistics"):
        empirical_model(counts)


@given(st.integers(0, 10**6))
def test_plain_vi_on_an_exact_model_is_value_iteration(seed):
    mdp, stats = exact_statistics(garnet(4, 3, 3, gamma=0.8, seed=seed), K=64, seed=seed)
    got = model_based_vi(stats, 0.8, epsilon=1e-12)
    ref = value_iteration(mdp, epsilon=1e-12)
    assert got.converged
    np.testing.assert_allclose(got.V, ref.V, atol=1e-10)
    np.testing.assert_array_equal(got.pi, ref.pi)
    finite, fstats = exact_statistics(garnet(3, 2, 3, H=4, seed=seed).replace(gamma=1.0), K=16)
    fstats = TransitionStatistics(np.broadcast_to(fstats.counts, (4, 3, 2)).copy(),
                                  np.broadcast_to(fstats.reward_sums, (4, 3, 2)).copy(),
                                  np.broadcast_to(fstats.transition_counts, (4, 3, 2, 3)).copy())
    got = model_based_vi(fstats)
    ref = backward_induction(finite)
    np.testing.assert_allclose(got.V, ref.V, atol=1e-12)
    np.testing.assert_array_equal(got.pi, ref.pi)


@given(st.integers(1, 5), st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_masked_vi_kernel_matches_numpy(S, A, seed):
    rng = np.random.default_rng(seed)
    Phat = rng.dirichlet(np.ones(S), size=(S, A))
    seen = rng.random((S, A)) < 0.7
    rhat = np.where(seen, rng.normal(size=(S, A)), 0.0)
    for max_iter in (3, 10_000):
        V, Q, done = _masked_vi_kernel(rhat, Phat, seen, 0.9, 1e-10, max_iter)
        V_ref, Q_ref, done_ref = _masked_vi_numpy(rhat, Phat, seen, 0.9, 1e-10, max_iter)
        np.testing.assert_allclose(V, V_ref, rtol=0, atol=1e-12)
        np.testing.assert_allclose(Q, Q_ref, rtol=0, atol=1e-12)
        assert done == done_ref


def test_plain_vi_never_prefers_unseen_pairs():
    # State 0: action 0 seen (reward 0.1, stays), action 1 unseen. State 2: nothing seen.
    data = Transitions(s=[0, 1, 1], a=[0, 0, 1], r=[0.1, 0.0, 1.0], s_next=[0, 1, 1], S=3, A=2)
    result = model_based_vi(data, 0.5)
    assert result.pi[0] == 0 and result.Q[0, 1] == -np.inf
    assert result.V[0] == pytest.approx(0.1 / (1 - 0.5), abs=1e-9)
    assert result.pi[1] == 1 and result.V[1] == pytest.approx(2.0, abs=1e-9)
    assert result.V[2] == 0.0 and result.pi[2] == 0 and not np.isnan(result.V).any()


def test_plain_vi_bad_input():
    data = Transitions(s=[0], a=[0], r=[0.0], s_next=[0], S=1, A=1)
    with pytest.raises(ValueError, match="gamma is required"):
        model_based_vi(data)
    with pytest.raises(ValueError, match=r"gamma = 1.0 must lie in \[0, 1\)"):
        model_based_vi(data, 1.0)
    with pytest.raises(ValueError, match="empty"):
        model_based_vi(data.subset(np.zeros(0, dtype=int)), 0.5)
    with pytest.raises(TypeError, match="max_iter must be an int"):
        model_based_vi(data, 0.5, max_iter=10.0)
    with pytest.raises(ValueError, match="max_iter = 0"):
        model_based_vi(data, 0.5, max_iter=0)
    with pytest.raises(ValueError, match="epsilon"):
        model_based_vi(data, 0.5, epsilon=0.0)


# --- penalties ---------------------------------------------------------------------------


def hoeffding_ref(counts, delta, c):
    H, S, A = counts.shape
    b = np.empty((H, S, A))
    for h in range(H):
        for s in range(S):
            for a in range(A):
                n = int(counts[h, s, a])
                b[h, s, a] = (H - h) * (math.sqrt(c * math.log(4 * S * A * H / delta) / n)
                                        if n else 1.0)
    return b


def bernstein_ref(counts, var, N, H, delta, c):
    S, A = counts.shape
    b = np.empty((S, A))
    L = math.log(N * H / delta)
    for s in range(S):
        for a in range(A):
            n = int(counts[s, a])
            b[s, a] = H if n == 0 else min(math.sqrt(c * L * var[s, a] / n) + c * H * L / n, H)
    return b


@given(st.integers(0, 10**6))
def test_penalties_match_plain_loops(seed):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 50, size=(3, 2, 4))
    np.testing.assert_allclose(hoeffding_penalty(counts, 0.05, 0.7), hoeffding_ref(counts, 0.05, 0.7),
                               rtol=1e-14)
    var = rng.uniform(0, 2, size=(2, 4))
    np.testing.assert_allclose(bernstein_penalty(counts[1], var, 1000, 3, 0.05, 16.0),
                               bernstein_ref(counts[1], var, 1000, 3, 0.05, 16.0), rtol=1e-14)


def test_bernstein_versus_hoeffding_exact_relations():
    """What is exactly true: (1) by Popoviciu, Var(V) <= (H - h - 1)^2 / 4 for V in
    [0, H - h - 1], so the Bernstein term is at most a Hoeffding-shaped term with the same
    constant and log; (2) with zero variance (deterministic next values) the Bernstein penalty
    c H L / n falls below the Hoeffding one exactly from n0 = (c_b H L_B)^2 / ((H - h)^2 c L_H)
    on. Li et al. (2022) do not claim Bernstein <= Hoeffding at their constants, and it is false
    at small n: with c_b = 16 the Bernstein penalty is the larger one."""
    H, S, A, N, delta, c_b, c_h = 4, 3, 2, 10_000, 0.1, 16.0, 0.5
    L_B, L_H = math.log(N * H / delta), math.log(4 * S * A * H / delta)
    counts = np.arange(1, 7).reshape(S, A) * 37
    h = 1
    worst = np.full((S, A), (H - h - 1) ** 2 / 4)
    b = bernstein_penalty(counts, worst, N, H, delta, c_b)
    popoviciu = np.minimum((H - h - 1) / 2 * np.sqrt(c_b * L_B / counts) + c_b * H * L_B / counts, H)
    np.testing.assert_allclose(b, popoviciu, rtol=1e-14)
    n0 = (c_b * H * L_B) ** 2 / ((H - h) ** 2 * c_h * L_H)
    n_hi, n_lo = math.ceil(n0), math.floor(n0)
    for n, below in ((n_hi, True), (n_lo, False)):
        b_B = bernstein_penalty(np.array([[n]]), np.zeros((1, 1)), N, H, delta, c_b)[0, 0]
        # one pair per step, with delta scaled so that the log is log(4 S A H / delta)
        b_H = hoeffding_penalty(np.full((H, 1, 1), n), delta / (S * A), c_h)[h, 0, 0]
        assert b_H == pytest.approx((H - h) * math.sqrt(c_h * L_H / n), rel=1e-14)
        assert (b_B <= b_H) == below, (n, b_B, b_H)
    small = bernstein_penalty(np.array([[10]]), np.array([[0.25]]), N, H, delta, c_b)[0, 0]
    assert small > (H - h) * math.sqrt(c_h * L_H / 10)


def test_penalty_bad_input():
    with pytest.raises(ValueError, match=r"variance_h\[0, 1\]"):
        bernstein_penalty([[1, 1]], [[0.1, -0.1]], 10, 2, 0.1)
    with pytest.raises(ValueError, match="delta"):
        hoeffding_penalty(np.ones((1, 1, 1), int), 1.5)
    with pytest.raises(ValueError, match=r"N = 0"):
        bernstein_penalty([[1]], [[0.0]], 0, 2, 0.1)


# --- pessimistic value iteration --------------------------------------------------------


def pvi_ref(stats, penalty, c, delta):
    """Algorithm 2 of Li et al. (2022) by explicit loops, on the empirical model (51)."""
    H, S, A = stats.counts.shape
    N = int(stats.counts.sum())
    V = np.zeros((H + 1, S))
    Q = np.zeros((H, S, A))
    for h in reversed(range(H)):
        for s in range(S):
            for a in range(A):
                n = int(stats.counts[h, s, a])
                p = stats.transition_counts[h, s, a] / n if n else np.full(S, 1 / S)
                r = stats.reward_sums[h, s, a] / n if n else 0.0
                mean = float(p @ V[h + 1])
                if penalty == "hoeffding":
                    L = math.log(4 * S * A * H / delta)
                    b = (H - h) * math.sqrt(c * L / n) if n else H - h
                else:
                    var = float(p @ (V[h + 1] - mean) ** 2)
                    L = math.log(N * H / delta)
                    b = H if n == 0 else min(math.sqrt(c * L * var / n) + c * H * L / n, H)
                Q[h, s, a] = min(max(r + mean - b, 0.0), H - h)
            V[h, s] = Q[h, s].max()
    return V[:H], Q


@pytest.mark.parametrize("penalty, c", [("hoeffding", 0.5), ("bernstein", 16.0), ("bernstein", 0.1)])
def test_pessimistic_vi_matches_plain_loops(penalty, c):
    mdp = garnet(3, 2, 3, H=3, seed=4).replace(gamma=1.0)
    data = sample_transitions(mdp, np.full((3, 3, 2), 1 / 6), 20_000, seed=5)
    got = pessimistic_value_iteration(data, penalty=penalty, c=c, delta=0.2)
    V, Q = pvi_ref(transition_statistics(data), penalty, c, 0.2)
    np.testing.assert_allclose(got.V, V, atol=1e-12)
    np.testing.assert_allclose(got.Q, Q, atol=1e-12)
    assert got.penalty.shape == (3, 3, 2) and (got.V > 0).any()


def test_pessimistic_vi_unseen_pairs_and_states():
    # Step 0: state 0 sees only action 1 (a low reward); state 1 sees nothing. Step 1: all unseen.
    data = Transitions(s=[0] * 400, a=[1] * 400, r=[0.5] * 400, s_next=[0] * 400, S=2, A=2,
                       h=[0] * 400, H=2)
    result = pessimistic_value_iteration(data, penalty="hoeffding")
    assert result.pi[0, 0] == 1 and result.Q[0, 0, 0] == 0.0  # the unseen pair never wins
    assert result.V[0, 1] == 0.0 and result.pi[0, 1] == 0
    np.testing.assert_array_equal(result.V[1], 0.0)
    assert not np.isnan(result.V).any()


def test_hoeffding_unseen_state_gets_zero_value_at_small_c():
    """A state with no data has Vhat = 0 whatever c. Step 1: state 0 pays 1 (400 samples),
    so Vhat_1(0) is about 1; step 0: state 1 is unseen, Phat = 1/2 there. With c = 0.01 the
    old penalty H sqrt(c L) at max(n, 1) = 1 fell below Phat Vhat_1 = Vhat_1(0) / 2, which
    gave the unseen state a positive value; the penalty must be H - h = 2 instead."""
    n = 400
    data = Transitions(s=[0] * (2 * n), a=[0] * (2 * n), r=[0.0] * n + [1.0] * n,
                       s_next=[0] * (2 * n), S=2, A=1, h=[0] * n + [1] * n, H=2)
    c, delta = 0.01, 0.1
    result = pessimistic_value_iteration(data, penalty="hoeffding", c=c, delta=delta)
    L = math.log(4 * 2 * 1 * 2 / delta)
    V1 = 1.0 - math.sqrt(c * L / n)  # by hand: r = 1, Vhat_2 = 0
    assert result.V[1, 0] == pytest.approx(V1, abs=1e-12)
    assert 2 * math.sqrt(c * L) < V1 / 2  # the old code gave Vhat_0(1) = V1/2 - 2 sqrt(cL) > 0
    assert result.penalty[0, 1, 0] == 2.0 and result.penalty[1, 1, 0] == 1.0
    assert result.Q[0, 1, 0] == 0.0 and result.V[0, 1] == 0.0
    assert result.V[0, 0] == pytest.approx(max(0.0, V1 - 2 * math.sqrt(c * L / n)), abs=1e-12)


def test_pessimistic_vi_bad_input():
    data = Transitions(s=[0], a=[0], r=[0.5], s_next=[0], S=1, A=1, h=[0], H=1)
    with pytest.raises(ValueError, match="per-step data"):
        pessimistic_value_iteration(Transitions(s=[0], a=[0], r=[0.5], s_next=[0], S=1, A=1))
    with pytest.raises(ValueError, match="penalty must be"):
        pessimistic_value_iteration(data, penalty="optimism")
    with pytest.raises(ValueError, match="empty"):
        pessimistic_value_iteration(data.subset(np.zeros(0, dtype=int)))
    with pytest.raises(ValueError, match=r"rewards in \[0, 1\]"):
        pessimistic_value_iteration(Transitions(s=[0], a=[0], r=[2.0], s_next=[0], S=1, A=1,
                                                h=[0], H=1))


# --- pessimism with probability at least 1 - delta ---------------------------------------

MDP_H = garnet(3, 2, 3, H=3, seed=1).replace(gamma=1.0)  # rewards in [0, 1)
MU_H = np.full((3, 3, 2), 1 / 6)
RUNS, DELTA = 100, 0.1


def pessimism_gaps(penalty, c, runs=RUNS):
    """Per run: max over (h, s) of Vhat_h(s) - V^{pihat}_h(s), and Vhat_0(s_0)."""
    gaps, values = np.empty(runs), np.empty(runs)
    for i in range(runs):
        data = sample_transitions(MDP_H, MU_H, 20_000, seed=i)
        result = pessimistic_value_iteration(data, penalty=penalty, c=c, delta=DELTA)
        gaps[i] = np.max(result.V - evaluate_policy(MDP_H, result.pi).V)
        values[i] = result.V[0] @ MDP_H.mu0
    return gaps, values


@pytest.mark.parametrize("penalty, c", [("hoeffding", 0.5), ("bernstein", 16.0)])
def test_pessimism_holds_with_probability_one_minus_delta(penalty, c):
    """Li et al. (2022), Theorem 6 step 1 (Bernstein, c_b >= 16) and the sheet's audit
    (Hoeffding, c >= 1/2): Vhat_h <= V^{pihat}_h for all h, s w.p. >= 1 - delta; the values
    are not vacuous (Vhat_0 > 0 in every run). Planted error c = 0 must be rejected."""
    gaps, values = pessimism_gaps(penalty, c)
    check = check_high_probability(gaps, 1e-9, DELTA, alpha=LEVEL / 4)
    assert check.certified, check.text
    assert np.all(values > 0.5), values.min()
    planted, _ = pessimism_gaps(penalty, 0.0, runs=50)
    bad = check_high_probability(planted, 1e-9, DELTA, alpha=LEVEL / 4)
    assert not bad.consistent, bad.text
