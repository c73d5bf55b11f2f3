"""Planning: value iteration, backward induction, policy iteration, evaluation, occupancy, C*."""
import itertools
import math

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tabular import _kernels
from tabular._reference import (
    backward_induction_ref,
    evaluate_policy_ref,
    occupancy_ref,
    value_iteration_ref,
)
from tabular.generators import garnet
from tabular.mdp import TabularMDP, validate_policy
from tabular.planning import (
    C_star,
    PlanningResult,
    backward_induction,
    evaluate_policy,
    expected_return,
    occupancy,
    policy_iteration,
    value_iteration,
)
from tabular.strategies import mdps, policies

FINITE = mdps(kind="finite", time_inhomogeneous=st.booleans())


def scale(V):
    return max(1.0, float(np.max(np.abs(V))))


def bellman_optimality(mdp, V):
    """T V computed here with numpy (discounted / episodic)."""
    return (mdp.R + mdp.gamma * np.einsum("sat,t->sa", mdp.P, V)).max(axis=1)


def proper_by_closure(mdp, pi_prob):
    """Properness by boolean transitive closure (Warshall), independent of the csgraph check."""
    reach = np.einsum("sa,sat->st", pi_prob, mdp.P) > 0
    reach |= np.eye(mdp.S, dtype=bool)
    for k in range(mdp.S):
        reach |= reach[:, [k]] & reach[[k], :]
    return bool(reach[:, mdp.terminal].any(axis=1).all())


def tight_vi(mdp):
    """V*: the numpy reference's greedy policy, evaluated exactly by a linear solve.

    (The reference's own values carry its stopping error, about 1e-12 ||R|| / (1 - gamma)^2,
    which is above the 1e-11 slack of the comparisons below.)"""
    eps = 1e-12 * max(1.0, float(np.max(np.abs(mdp.R)))) / (1.0 - mdp.gamma)
    Q = value_iteration_ref(mdp, eps)[1]
    pi = Q.argmax(axis=1)
    states = np.arange(mdp.S)
    A_pi = np.eye(mdp.S) - mdp.gamma * mdp.P[states, pi]
    return np.linalg.solve(A_pi, mdp.R[states, pi])


# --- value iteration --------------------------------------------------------------------


@given(mdps())
def test_value_iteration_bellman_optimal_and_matches_reference(mdp):
    eps = 1e-11 * max(1.0, float(np.max(np.abs(mdp.R)))) / (1.0 - mdp.gamma)
    res = value_iteration(mdp, epsilon=eps)
    tol = 1e-10 * scale(res.V)
    assert res.converged and res.method == "value_iteration" and res.epsilon_refers_to == "value"
    assert np.max(np.abs(bellman_optimality(mdp, res.V) - res.V)) <= tol
    # The certified bound includes float64 rounding (Higham's gamma_{S+2} per backup), so it
    # is held to the requested eps, on the ||R|| / (1 - gamma) scale, not to tol.
    assert res.error_bound <= eps
    u = np.finfo(float).eps / 2
    n = mdp.S + 2
    R_max = float(np.max(np.abs(mdp.R)))
    floor = n * u / (1 - n * u) * (R_max + mdp.gamma * R_max / (1 - mdp.gamma)) / (1 - mdp.gamma)
    assert res.error_bound == pytest.approx(
        mdp.gamma * res.residual / (1 - mdp.gamma) + floor, rel=1e-12)
    V_ref, Q_ref, _ = value_iteration_ref(mdp, eps)
    np.testing.assert_allclose(res.V, V_ref, rtol=0, atol=tol)
    np.testing.assert_allclose(res.Q, Q_ref, rtol=0, atol=tol)
    np.testing.assert_array_equal(res.V, res.Q.max(axis=1))
    assert res.pi.dtype == np.int64 and res.pi.shape == (mdp.S,)
    np.testing.assert_array_equal(res.Q[np.arange(mdp.S), res.pi], res.Q.max(axis=1))


@given(mdps(), st.floats(1e-6, 1.0))
def test_value_iteration_error_bound_is_certified(mdp, epsilon):
    res = value_iteration(mdp, epsilon=epsilon)
    V_star = tight_vi(mdp)
    assert res.error_bound <= epsilon
    assert np.max(np.abs(res.V - V_star)) <= res.error_bound + 1e-11 * scale(V_star)


def test_error_bound_stays_honest_near_gamma_one():
    """At gamma = 0.99999 the residual rounds to 0 long before V is exact: the certified
    bound must still cover the true error (exact V* by a linear solve of the optimal policy)."""
    mdp = garnet(10, 3, 3, gamma=0.99999, seed=0)
    res = value_iteration(mdp)
    assert res.converged and res.error_bound > 0
    pi = policy_iteration(mdp).pi
    P_pi = mdp.P[np.arange(mdp.S), pi]
    V_star = np.linalg.solve(np.eye(mdp.S) - mdp.gamma * P_pi, mdp.R[np.arange(mdp.S), pi])
    assert np.max(np.abs(res.V - V_star)) <= res.error_bound
    with pytest.raises(ValueError, match="at or below what float64 value iteration can certify"):
        value_iteration(mdp, epsilon=1e-10)
    assert not value_iteration(mdp, epsilon=1e-10, max_iter=50).converged  # cap honoured
    with pytest.raises(ValueError, match="use policy_iteration"):
        value_iteration(garnet(10, 3, 3, gamma=1 - 1e-9, seed=0))


def test_value_iteration_closed_form_one_state():
    # V_k = 2 (1 - 0.5^k); residual_k = 0.5^(k-1); bound 0.5^(k-1) <= 1e-3 first at k = 11.
    mdp = TabularMDP(np.ones((1, 1, 1)), np.ones((1, 1)), np.ones(1), gamma=0.5)
    res = value_iteration(mdp, epsilon=1e-3)
    assert res.n_iter == 11 and res.converged
    assert res.V[0] == 2 * (1 - 0.5**11)
    u = np.finfo(float).eps / 2
    floor = 3 * u / (1 - 3 * u) * (1 + 0.5 * 2) / 0.5  # rounding: n = S + 2, ||V|| <= 2
    assert res.residual == 0.5**10 and res.error_bound == pytest.approx(0.5**10 + floor, rel=1e-15)


def test_value_iteration_default_cap_reaches_epsilon():
    # One state, R = 1, gamma = 0.5, V0 = 1e6: D = 1 + 1.5e6 bounds ||T V0 - V0||, and the
    # documented cap k* + ceil(k*/10) + 10 must leave room to meet the stopping rule.
    mdp = TabularMDP(np.ones((1, 1, 1)), np.ones((1, 1)), np.ones(1), gamma=0.5)
    res = value_iteration(mdp, epsilon=1e-3, V0=np.array([1e6]))
    k_star = math.ceil(math.log(1e-3 * 0.5 / (1 + 1.5e6)) / math.log(0.5))
    assert res.converged and res.n_iter <= k_star + math.ceil(k_star / 10) + 10
    # Closed form: V_k - 2 = (1e6 - 2) 0.5^k; the bound is (1e6 - 2) 0.5^k <= 1e-3 first at k = 30.
    assert res.n_iter == 30


@given(mdps(), st.integers(1, 5))
def test_value_iteration_honours_max_iter(mdp, k):
    res = value_iteration(mdp, epsilon=1e-300, max_iter=k)
    V_ref, _, k_ref = value_iteration_ref(mdp, 1e-300, max_iter=k)
    if res.residual > 0:
        assert not res.converged
    assert res.n_iter == k_ref
    np.testing.assert_allclose(res.V, V_ref, rtol=0, atol=1e-12 * scale(V_ref))


def test_value_iteration_max_iter_reported_not_converged():
    mdp = TabularMDP(np.ones((1, 1, 1)), np.ones((1, 1)), np.ones(1), gamma=0.9)
    res = value_iteration(mdp, epsilon=1e-10, max_iter=7)
    assert res.n_iter == 7 and not res.converged
    assert res.V[0] == pytest.approx((1 - 0.9**7) / 0.1, rel=1e-14)


def test_value_iteration_gamma_one_points_to_policy_iteration():
    P = np.zeros((2, 1, 2))
    P[:, 0, 1] = 1.0
    mdp = TabularMDP(P, [[-1.0], [0.0]], [1.0, 0.0], gamma=1.0, terminal=[1])
    with pytest.raises(ValueError, match="policy_iteration"):
        value_iteration(mdp)


def test_value_iteration_finite_horizon_is_backward_induction():
    mdp = TabularMDP(np.ones((1, 1, 1)), np.ones((1, 1)), np.ones(1), H=3)
    res = value_iteration(mdp)
    assert res.method == "backward_induction"
    np.testing.assert_array_equal(res.V[:, 0], [3.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="backward_induction"):
        value_iteration(mdp, max_iter=5)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(epsilon=0.0), ValueError),
        (dict(epsilon=float("nan")), ValueError),
        (dict(epsilon="1e-3"), TypeError),
        (dict(max_iter=0), ValueError),
        (dict(max_iter=2.5), TypeError),
        (dict(V0=np.zeros(3)), ValueError),
        (dict(V0=[np.inf, 0.0]), ValueError),
    ],
)
def test_value_iteration_bad_input(kwargs, error):
    mdp = TabularMDP(np.full((2, 1, 2), 0.5), np.zeros((2, 1)), [0.5, 0.5], gamma=0.9)
    with pytest.raises(error):
        value_iteration(mdp, **kwargs)


def test_not_an_mdp():
    for f in (value_iteration, backward_induction, policy_iteration):
        with pytest.raises(TypeError, match="TabularMDP"):
            f({"P": 1})


# --- backward induction -----------------------------------------------------------------


@given(FINITE)
def test_backward_induction_matches_reference(mdp):
    res = backward_induction(mdp)
    V_ref, Q_ref = backward_induction_ref(mdp)
    assert res.V.shape == (mdp.H, mdp.S) and res.Q.shape == (mdp.H, mdp.S, mdp.A)
    assert res.pi.shape == (mdp.H, mdp.S) and res.pi.dtype == np.int64
    assert (res.n_iter, res.converged, res.residual, res.error_bound) == (mdp.H, True, 0.0, 0.0)
    np.testing.assert_allclose(res.V, V_ref, rtol=0, atol=1e-12 * scale(V_ref))
    np.testing.assert_allclose(res.Q, Q_ref, rtol=0, atol=1e-12 * scale(V_ref))


@settings(max_examples=15)
@given(mdps(kind="finite", S=st.integers(1, 3), A=st.integers(1, 2), H=st.integers(1, 2),
            time_inhomogeneous=st.booleans()))
def test_backward_induction_beats_every_deterministic_policy(mdp):
    res = backward_induction(mdp)
    eye = np.eye(mdp.A)
    best = np.full((mdp.H, mdp.S), -np.inf)
    for actions in itertools.product(range(mdp.A), repeat=mdp.H * mdp.S):
        pi = np.array(actions, dtype=np.int64).reshape(mdp.H, mdp.S)
        best = np.maximum(best, evaluate_policy_ref(mdp, eye[pi]))
    np.testing.assert_allclose(res.V, best, rtol=0, atol=1e-12 * scale(best))


def test_backward_induction_rejects_other_kinds():
    mdp = TabularMDP(np.ones((1, 1, 1)), np.ones((1, 1)), np.ones(1), gamma=0.9)
    with pytest.raises(ValueError, match="finite-horizon"):
        backward_induction(mdp)


# --- policy iteration -------------------------------------------------------------------


@given(mdps())
def test_policy_iteration_matches_value_iteration(mdp):
    res = policy_iteration(mdp)
    V_star = tight_vi(mdp)
    assert res.converged and res.epsilon_refers_to == "policy"
    np.testing.assert_allclose(res.V, V_star, rtol=0, atol=1e-10 * scale(V_star))
    assert res.error_bound == pytest.approx(res.residual / (1 - mdp.gamma))
    assert np.max(np.abs(res.V - V_star)) <= res.error_bound + 1e-11 * scale(V_star)
    np.testing.assert_allclose(res.V, res.Q[np.arange(mdp.S), res.pi], rtol=0,
                               atol=1e-10 * scale(V_star))


@settings(max_examples=20)
@given(mdps(kind="episodic", S=st.integers(2, 4), A=st.integers(1, 2)))
def test_policy_iteration_episodic_matches_brute_force(mdp):
    res = policy_iteration(mdp)
    assert res.converged
    eye = np.eye(mdp.A)
    best = np.full(mdp.S, -np.inf)
    for actions in itertools.product(range(mdp.A), repeat=mdp.S):
        pi_prob = eye[list(actions)]
        if proper_by_closure(mdp, pi_prob):
            best = np.maximum(best, evaluate_policy_ref(mdp, pi_prob))
    np.testing.assert_allclose(res.V, best, rtol=0, atol=1e-9 * scale(best))
    np.testing.assert_allclose(res.V, evaluate_policy_ref(mdp, eye[res.pi]), rtol=0,
                               atol=1e-9 * scale(best))
    assert res.error_bound <= 1e-9 * scale(best)


def test_policy_iteration_honours_max_iter():
    # Two states; from state 0, action 1 (reward 1, stay) beats the start action 0 (reward 0).
    P = np.zeros((2, 2, 2))
    P[0, 0, 1] = P[0, 1, 0] = P[1, :, 1] = 1.0
    R = np.array([[0.0, 1.0], [0.0, 0.0]])
    mdp = TabularMDP(P, R, [1.0, 0.0], gamma=0.5)
    res = policy_iteration(mdp, pi0=np.array([0, 0]), max_iter=1)
    assert res.n_iter == 1 and not res.converged
    np.testing.assert_array_equal(res.pi, [0, 0])
    # V*(0) = 1 / (1 - 0.5) = 2 while V^pi0(0) = 0: the bound must cover the gap of 2.
    assert res.error_bound >= 2.0
    full = policy_iteration(mdp, pi0=np.array([0, 0]))
    assert full.converged and full.n_iter == 2
    np.testing.assert_allclose(full.V, [2.0, 0.0], atol=1e-15)


def test_policy_iteration_bad_input():
    mdp = TabularMDP(np.full((2, 1, 2), 0.5), np.zeros((2, 1)), [0.5, 0.5], gamma=0.9)
    with pytest.raises(TypeError, match="deterministic"):
        policy_iteration(mdp, pi0=np.full((2, 1), 1.0))
    with pytest.raises(ValueError, match="shape"):
        policy_iteration(mdp, pi0=np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match=r"invalid pi0: pi has shape \(2, 2\)"):
        policy_iteration(mdp, pi0=np.zeros((2, 2), dtype=int))
    with pytest.raises(ValueError, match=r"invalid pi0: pi\[1\] = 1 is not an action \(A = 1\)"):
        policy_iteration(mdp, pi0=np.array([0, 1]))
    with pytest.raises(ValueError, match="max_iter"):
        policy_iteration(mdp, max_iter=0)
    with pytest.raises(ValueError, match="backward_induction"):
        policy_iteration(mdp.replace(H=2))


# --- improper policies ------------------------------------------------------------------


def corridor():
    """States 0..4, 0 terminal; action 0 moves one step left, action 1 swaps 3 <-> 4 (and
    stays elsewhere); reward -1 off the terminal state."""
    S = 5
    P = np.zeros((S, 2, S))
    P[0, :, 0] = 1.0
    for s in range(1, S):
        P[s, 0, s - 1] = 1.0
        P[s, 1, {3: 4, 4: 3}.get(s, s)] = 1.0
    R = np.full((S, 2), -1.0)
    R[0] = 0.0
    return TabularMDP(P, R, np.full(S, 0.2), terminal=[0])


@pytest.mark.parametrize("f", [evaluate_policy, occupancy, expected_return])
def test_improper_policy_names_a_state_on_its_cycle(f):
    mdp = corridor()
    with pytest.raises(ValueError, match=r"improper: from state 3 .*\(cycle 3 -> 4 -> 3\)"):
        f(mdp, np.array([0, 0, 0, 1, 1]))
    with pytest.raises(ValueError, match=r"improper: from state 2 .*\(cycle 2 -> 2\)"):
        f(mdp, np.array([0, 0, 1, 0, 0]))


def test_improper_start_policy_raises():
    with pytest.raises(ValueError, match="improper"):
        policy_iteration(corridor(), pi0=np.array([0, 1, 0, 0, 0]))


def test_corridor_values():
    mdp = corridor()
    res = policy_iteration(mdp)
    np.testing.assert_allclose(res.V, [0, -1, -2, -3, -4], atol=1e-14)
    pi = np.array([[1.0, 0.0]] * 3 + [[0.5, 0.5]] * 2)
    # V3 = -1 + 0.5 V2 + 0.5 V4 and V4 = -1 + V3 with V2 = -2 give V3 = -5, V4 = -6.
    np.testing.assert_allclose(evaluate_policy(mdp, pi).V, [0, -1, -2, -5, -6], atol=1e-13)


# --- evaluation -------------------------------------------------------------------------


@st.composite
def mdp_and_policy(draw, **kwargs):
    mdp = draw(mdps(**kwargs))
    return mdp, draw(policies(mdp))


@given(mdp_and_policy())
def test_evaluate_policy_is_fixed_point_discounted(mp):
    mdp, pi = mp
    pv = evaluate_policy(mdp, pi)
    pi_prob = validate_policy(mdp, pi)
    Q = mdp.R + mdp.gamma * np.einsum("sat,t->sa", mdp.P, pv.V)
    tol = 1e-10 * scale(pv.V)
    np.testing.assert_allclose(pv.V, (pi_prob * Q).sum(axis=1), rtol=0, atol=tol)
    np.testing.assert_allclose(pv.Q, Q, rtol=0, atol=tol)
    np.testing.assert_allclose(pv.V, evaluate_policy_ref(mdp, pi_prob), rtol=0, atol=tol)
    assert pv.residual <= tol
    V_star = tight_vi(mdp)
    assert np.all(pv.V <= V_star + 1e-10 * scale(V_star))


@given(mdp_and_policy(kind="finite", time_inhomogeneous=st.booleans()))
def test_evaluate_policy_finite(mp):
    mdp, pi = mp
    pv = evaluate_policy(mdp, pi)
    pi_prob = validate_policy(mdp, pi)
    tol = 1e-12 * scale(pv.V)
    assert pv.V.shape == (mdp.H, mdp.S) and pv.Q.shape == (mdp.H, mdp.S, mdp.A)
    np.testing.assert_allclose(pv.V, evaluate_policy_ref(mdp, pi_prob), rtol=0, atol=tol)
    V_next = np.vstack([pv.V[1:], np.zeros((1, mdp.S))])
    for h in range(mdp.H):
        Q_h = mdp.R_h(h) + mdp.gamma * mdp.P_h(h) @ V_next[h]
        np.testing.assert_allclose(pv.Q[h], Q_h, rtol=0, atol=tol)
    assert np.all(pv.V <= backward_induction(mdp).V + tol)


@given(mdp_and_policy(kind="episodic"))
def test_evaluate_policy_episodic(mp):
    mdp, pi = mp
    pi_prob = validate_policy(mdp, pi)
    if not proper_by_closure(mdp, pi_prob):
        with pytest.raises(ValueError, match="improper"):
            evaluate_policy(mdp, pi)
        return
    pv = evaluate_policy(mdp, pi)
    V_ref = evaluate_policy_ref(mdp, pi_prob)
    tol = 1e-9 * scale(V_ref)
    np.testing.assert_allclose(pv.V, V_ref, rtol=0, atol=tol)
    Q = mdp.R + np.einsum("sat,t->sa", mdp.P, pv.V)
    live = ~mdp.terminal
    np.testing.assert_allclose(pv.V[live], (pi_prob * Q).sum(axis=1)[live], rtol=0, atol=tol)
    assert np.all(pv.V[mdp.terminal] == 0.0)
    V_star = policy_iteration(mdp).V
    assert np.all(pv.V <= V_star + tol)


def test_q_backup_kernel_matches_numpy_with_remainders():
    # S * A = 111 rows (not a multiple of 8) and S = 37 columns exercise every loop tail.
    rng = np.random.default_rng(0)
    P = rng.random((37, 3, 37))
    mdp = TabularMDP(P / P.sum(-1, keepdims=True), rng.normal(size=(37, 3)), np.full(37, 1 / 37),
                     gamma=0.7)
    V = rng.normal(size=37)
    P2, R2 = mdp.P.reshape(111, 37), mdp.R.reshape(111)
    Q = _kernels.q_backup(P2, R2, V, 0.7, False)
    np.testing.assert_allclose(Q, R2 + 0.7 * P2 @ V, rtol=0, atol=1e-14)


def dense_parallel_mdp():
    """903 rows (7 past a multiple of 8; 135 past a multiple of the 256-row task) of 301
    columns: a P large enough for the threaded backup."""
    rng = np.random.default_rng(5)
    S, A = 301, 3
    P = rng.random((S, A, S))
    mdp = TabularMDP(P / P.sum(-1, keepdims=True), rng.normal(size=(S, A)), np.full(S, 1 / S),
                     gamma=0.5)  # few sweeps: a busy second core delays each threaded one
    assert mdp.P.size >= _kernels._PARALLEL_MIN_ENTRIES  # the threaded path is the one tested
    return mdp


def under_threads(n, f):
    """``f()`` with ``numba.set_num_threads(n)``, restoring the previous count."""
    before = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        return f()
    finally:
        numba.set_num_threads(before)


TWO_THREADS = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2,
                                 reason="Numba has a single thread here")


@TWO_THREADS
def test_threaded_backup_is_the_serial_kernel_bit_for_bit():
    mdp = dense_parallel_mdp()
    P2, R2 = mdp.P.reshape(903, 301), mdp.R.reshape(903)
    V = np.random.default_rng(6).normal(size=301)
    serial = np.empty(903)
    _kernels.q_backup_into(P2, R2, V, 0.5, serial)
    for n in (1, 2):  # the threaded kernel itself, on one thread and on two
        Q = under_threads(n, lambda: _kernels.q_backup(P2, R2, V, 0.5, True))
        np.testing.assert_array_equal(Q, serial)
    np.testing.assert_allclose(serial, R2 + 0.5 * P2 @ V, rtol=0, atol=1e-13)


@TWO_THREADS
def test_value_iteration_is_bit_identical_on_one_and_two_threads():
    mdp = dense_parallel_mdp()
    one, two = (under_threads(n, lambda: value_iteration(mdp, epsilon=1e-9)) for n in (1, 2))
    assert one.converged and one.n_iter == two.n_iter
    np.testing.assert_array_equal(one.V, two.V)
    np.testing.assert_array_equal(one.Q, two.Q)
    assert one.residual == two.residual
    np.testing.assert_allclose(one.V, value_iteration_ref(mdp, 1e-9)[0], rtol=0, atol=1e-8)


# --- occupancy, expected return, C* -----------------------------------------------------


@given(mdp_and_policy())
def test_occupancy_discounted(mp):
    mdp, pi = mp
    d = occupancy(mdp, pi)
    pi_prob = validate_policy(mdp, pi)
    assert d.shape == (mdp.S, mdp.A) and np.all(d >= -1e-15)
    assert d.sum() == pytest.approx(1.0, abs=1e-10)
    flow = (1 - mdp.gamma) * mdp.mu0 + mdp.gamma * np.einsum("sa,sat->t", d, mdp.P)
    np.testing.assert_allclose(d.sum(axis=1), flow, rtol=0, atol=1e-10)
    np.testing.assert_allclose(d, occupancy_ref(mdp, pi_prob), rtol=0, atol=1e-10)
    J = expected_return(mdp, pi)
    assert (d * mdp.R).sum() / (1 - mdp.gamma) == pytest.approx(J, abs=1e-10 * max(1.0, abs(J)))


@given(mdp_and_policy(kind="finite", gamma=1.0, time_inhomogeneous=st.booleans()))
def test_occupancy_finite(mp):
    mdp, pi = mp
    d = occupancy(mdp, pi)
    assert d.shape == (mdp.H, mdp.S, mdp.A)
    np.testing.assert_allclose(d.sum(axis=(1, 2)), 1.0, rtol=0, atol=1e-10)
    np.testing.assert_allclose(d, occupancy_ref(mdp, validate_policy(mdp, pi)), rtol=0, atol=1e-12)
    R = np.broadcast_to(mdp.R, (mdp.H, mdp.S, mdp.A))
    J = expected_return(mdp, pi)
    assert (d * R).sum() == pytest.approx(J, abs=1e-10 * max(1.0, abs(J)))


@given(mdp_and_policy(kind="episodic"))
def test_occupancy_episodic(mp):
    mdp, pi = mp
    pi_prob = validate_policy(mdp, pi)
    if not proper_by_closure(mdp, pi_prob):
        return
    d = occupancy(mdp, pi)
    live = ~mdp.terminal
    assert np.all(d[mdp.terminal] == 0.0)
    flow = mdp.mu0 + np.einsum("sa,sat->t", d, mdp.P)
    visits = d.sum(axis=1)
    scale_d = max(1.0, float(visits.max()))
    np.testing.assert_allclose(visits[live], flow[live], rtol=0, atol=1e-10 * scale_d)
    np.testing.assert_allclose(d, occupancy_ref(mdp, pi_prob), rtol=0, atol=1e-9 * scale_d)
    J = expected_return(mdp, pi)
    assert (d * mdp.R).sum() == pytest.approx(J, abs=1e-9 * max(1.0, abs(J)))


@st.composite
def mdp_and_mu(draw, **kwargs):
    mdp = draw(mdps(**kwargs))
    n = mdp.S * mdp.A
    w = np.array(draw(st.lists(st.floats(0.01, 1.0), min_size=n, max_size=n)))
    return mdp, (w / w.sum()).reshape(mdp.S, mdp.A)


@given(mdp_and_mu(kind=st.sampled_from(["discounted", "finite", "episodic"])))
def test_C_star_at_least_one_and_one_at_its_own_occupancy(mm):
    mdp, mu = mm
    solver = {"discounted": value_iteration, "finite": backward_induction,
              "episodic": policy_iteration}[mdp.kind]
    pi_star = solver(mdp).pi
    d = occupancy(mdp, pi_star)
    if mdp.kind == "episodic":
        if d.sum() == 0:  # mu0 on terminal states only
            with pytest.raises(ValueError, match="terminal"):
                C_star(mdp, mu)
            return
        d = d / d.sum()
    assert C_star(mdp, mu) >= 1.0
    assert C_star(mdp, d, pi_star) == pytest.approx(1.0, abs=1e-12)
    # Uniform data: C* = S A max d (definition with mu = 1 / (S A)).
    uniform = np.full((mdp.S, mdp.A), 1.0 / (mdp.S * mdp.A))
    assert C_star(mdp, uniform, pi_star) == pytest.approx(mdp.S * mdp.A * d.max(), rel=1e-12)


def test_C_star_infinite_and_bad_mu():
    P = np.zeros((2, 2, 2))
    P[:, 0, 0] = P[:, 1, 1] = 1.0
    mdp = TabularMDP(P, [[1.0, 0.0], [0.0, 0.0]], [1.0, 0.0], gamma=0.9)
    # The optimal policy stays in state 0 with action 0: d = e_(0,0).
    assert C_star(mdp, [[0.0, 0.5], [0.25, 0.25]]) == math.inf
    assert C_star(mdp, [[0.25, 0.25], [0.25, 0.25]]) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="sums to"):
        C_star(mdp, [[0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(ValueError, match=r"mu\[0, 1\]"):
        C_star(mdp, [[1.5, -0.5], [0.0, 0.0]])
    with pytest.raises(ValueError, match="shape"):
        C_star(mdp, np.full((3, 2), 1 / 6))


def test_C_star_ignores_rounding_at_unreachable_states():
    # States 0, 1, 2 and terminal 3; reward -1 off the terminal state. Action 0: 0 -> 2;
    # 1 -> 1 w.p. 0.8, -> 2 w.p. 0.2; 2 -> 0 w.p. 0.2, -> 3 w.p. 0.8. Action 1: -> 3.
    # Under pi = action 0 from mu0 = e_0, state 1 is never visited, yet the linear solve
    # for the visits leaves ~3e-16 there (not 0).
    P = np.zeros((4, 2, 4))
    P[0, 0, 2] = 1.0
    P[1, 0, 1], P[1, 0, 2] = 0.8, 0.2
    P[2, 0, 0], P[2, 0, 3] = 0.2, 0.8
    P[:, 1, 3] = 1.0
    P[3, :, 3] = 1.0
    R = np.full((4, 2), -1.0)
    R[3] = 0.0
    mdp = TabularMDP(P, R, [1.0, 0.0, 0.0, 0.0], terminal=[3])
    pi = np.zeros(4, dtype=np.int64)
    # Visits x0 = 1 + 0.2 x2, x2 = x0: x0 = x2 = 1.25, normalised d(0, 0) = d(2, 0) = 1/2.
    mu = np.array([[0.2, 0.0], [0.0, 0.1], [0.5, 0.2], [0.0, 0.0]])
    assert C_star(mdp, mu, pi) == pytest.approx(max(0.5 / 0.2, 0.5 / 0.5), rel=1e-12)
    # The same graph, discounted: d(0, 0) = (1 - g) / (1 - g^2 / 5) x 1 and
    # d(2, 0) = g d(0, 0) (g = 0.9), d = 0 at state 1 and at the absorbing state 3, whose
    # entry needs mu > 0 here (it is reached).
    g = 0.9
    disc = mdp.replace(gamma=g, terminal=None)
    d0 = (1 - g) / (1 - 0.2 * g**2)
    d2 = g * d0
    mu_disc = np.array([[0.3, 0.0], [0.0, 0.1], [0.3, 0.0], [0.3, 0.0]])
    d3 = 1.0 - d0 - d2
    expected = max(d0 / 0.3, d2 / 0.3, d3 / 0.3)
    assert C_star(disc, mu_disc, pi) == pytest.approx(expected, rel=1e-12)


def test_C_star_per_step_data_finite_horizon():
    P = np.zeros((2, 2, 2))
    P[:, 0, 0] = P[:, 1, 1] = 1.0
    mdp = TabularMDP(P, [[1.0, 0.0], [0.0, 0.0]], [0.5, 0.5], H=2)
    # Optimal: action 0 everywhere. d_0 = (0.5, 0; 0.5, 0), d_1 = (1, 0; 0, 0).
    mu = np.array([[[0.5, 0.0], [0.5, 0.0]], [[0.25, 0.25], [0.25, 0.25]]])
    assert C_star(mdp, mu) == pytest.approx(4.0)
    assert isinstance(backward_induction(mdp), PlanningResult)
