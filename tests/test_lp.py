"""tabular.lp: the LP and its dual against value iteration and backward induction, the
regularised duals against closed forms and strong duality, each check with a planted error."""
import dataclasses
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp, softmax

from tabular import lp
from tabular.generators import chain, garnet
from tabular.mdp import TabularMDP
from tabular.planning import (backward_induction, expected_return, occupancy,
                              value_iteration)
from tabular.strategies import mdps

# Spec sheet's strategy 9: S in [2, 8], A in [2, 4], gamma in [0.5, 0.95].
small_mdps = mdps(S=st.integers(2, 8), A=st.integers(2, 4), gamma=st.floats(0.5, 0.95))
FEW = settings(max_examples=8)


def v_star(mdp):
    """V* by value iteration, certified to well below the 1e-9 tolerance of the tests."""
    vi = value_iteration(mdp, epsilon=1e-12 * max(1.0, np.abs(mdp.R).max() / (1 - mdp.gamma)))
    assert vi.converged
    return vi.V


# --- checks of an LP solution, each computed without tabular.lp ------------------------


def value_error(mdp, res, V):
    return np.max(np.abs(res.V - V)) / max(1.0, np.max(np.abs(V)))


def flow_residual(mdp, d, d0):
    """``sum_a d(s', a) - gamma sum_{s,a} P(s'|s,a) d(s,a) - (1 - gamma) d0(s')``."""
    inflow = np.einsum("sa,sat->t", d, mdp.P)
    return np.max(np.abs(d.sum(axis=1) - mdp.gamma * inflow - (1 - mdp.gamma) * d0))


def occupancy_error(mdp, res, d0):
    return np.max(np.abs(res.d - occupancy(mdp.replace(mu0=d0), res.pi)))


def greedy_violation(mdp, d, V):
    """Largest ``V*(s) - Q*(s, a)`` over the pairs with ``d(s, a) > 0`` (complementary
    slackness: d lives on greedy actions)."""
    Q = mdp.R + mdp.gamma * mdp.P @ V
    return float(np.max(np.where(d > 1e-12, V[:, None] - Q, 0.0)))


@FEW
@given(small_mdps, st.sampled_from(["d", "V"]))
def test_lp_equals_value_iteration(mdp, over):
    d0 = np.full(mdp.S, 1.0 / mdp.S)  # full support: V is pinned on every state
    V = v_star(mdp)
    res = lp.solve_lp(mdp, over=over, d0=d0)
    assert res.ok and res.solver == "HIGHS" and res.form == f"lp-{over}"
    assert res.solver_time > 0 and not res.certified and res.message == ""
    scale = max(1.0, np.max(np.abs(V)))
    # The polished V is the exact value of the LP's basis policy: this tests the policy.
    assert value_error(mdp, res, V) <= 1e-9
    # The LP's own value (HiGHS', unpolished), in its (1 - gamma)-scaled units.
    assert objective_error(mdp, res, V, d0) <= 1e-9 * (1 - mdp.gamma) * scale
    assert abs(res.gap) <= 1e-9 * (1 - mdp.gamma) * scale  # strong duality, HiGHS' own V
    assert res.d.sum() == pytest.approx(1.0, abs=1e-9)
    assert res.d.min() >= 0.0
    assert flow_residual(mdp, res.d, d0) <= 1e-9
    assert occupancy_error(mdp, res, d0) <= 1e-9
    assert greedy_violation(mdp, res.d, V) <= 1e-9 * scale
    np.testing.assert_allclose(res.pi.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def objective_error(mdp, res, V, d0):
    """``|objective - (1 - gamma) d0 . V*|``: the LP's value against value iteration's."""
    return abs(res.objective - (1 - mdp.gamma) * d0 @ V)


def test_objective_check_catches_a_reward_offset_that_keeps_the_policy():
    """Planted: the LP sees R + c. Its policy stays optimal (the V check, which evaluates
    that policy, cannot see the error); the objective check does."""
    mdp = garnet(10, 3, 3, gamma=0.9, seed=5)
    V = v_star(mdp)
    res = lp.solve_lp(mdp.replace(R=mdp.R + 1e-6))
    assert expected_return(mdp, res.pi) == pytest.approx(mdp.mu0 @ V, rel=0, abs=1e-9 * np.max(V))
    assert objective_error(mdp, res, V, mdp.mu0) > 1e3 * 1e-9 * (1 - mdp.gamma)


def test_polish_leaves_states_that_d0_does_not_reach_to_the_multipliers():
    """d0 on state 0, which stays there; states 1 and 2 are never reached. The LP pins V*
    only on state 0; elsewhere the multipliers satisfy V >= T V, hence V >= V*."""
    gamma = 0.9
    P = np.zeros((3, 2, 3))
    P[0, :, 0] = 1.0
    P[1, 0, 2], P[1, 1, 1], P[2, :, 2] = 1.0, 1.0, 1.0
    R = np.array([[1.0, 0.0], [0.0, 0.5], [1.0, 1.0]])
    mdp = TabularMDP(P, R, [1.0, 0.0, 0.0], gamma=gamma)
    V_star = np.array([1.0, max(gamma, 0.5), 1.0]) / (1 - gamma)  # by hand
    for over in ("d", "V"):
        res = lp.solve_lp(mdp, over=over)
        raw = lp.solve_lp(mdp, over=over, polish=False)
        assert res.V[0] == pytest.approx(V_star[0], rel=1e-15)
        np.testing.assert_array_equal(res.V[1:], raw.V[1:])  # unvisited: not polished
        assert np.all(res.V[1:] >= V_star[1:] - 1e-9)


def test_both_lp_forms_agree_and_recover_an_optimal_policy():
    mdp = garnet(15, 4, 3, gamma=0.9, seed=11)
    primal, dual = lp.solve_lp(mdp, over="V"), lp.solve_lp(mdp, over="d")
    assert primal.objective == pytest.approx(dual.objective, abs=1e-12)
    np.testing.assert_allclose(primal.V, dual.V, rtol=0, atol=1e-10)
    V = v_star(mdp)
    assert expected_return(mdp, dual.pi) == pytest.approx(mdp.mu0 @ V, abs=1e-9)
    raw = lp.solve_lp(mdp, polish=False)  # HiGHS' own multipliers, before the exact evaluation
    assert value_error(mdp, raw, V) <= 1e-8


@pytest.mark.parametrize("planted", ["gamma", "d", "pi", "V"])
def test_lp_checks_catch_planted_errors(planted):
    """Each check above fails on a result with one planted error."""
    mdp = garnet(10, 3, 3, gamma=0.9, seed=5)
    d0 = mdp.mu0
    V = v_star(mdp)
    res = lp.solve_lp(mdp.replace(gamma=0.85) if planted == "gamma" else mdp)
    if planted == "gamma":  # a wrong discount in the flow constraint
        assert value_error(mdp, res, V) > 1e-3
        assert flow_residual(mdp, res.d, d0) > 1e-3
    elif planted == "d":  # d from another policy: off the greedy actions
        worst = np.eye(mdp.A)[np.argmin(mdp.R + mdp.gamma * mdp.P @ V, axis=1)]
        assert greedy_violation(mdp, occupancy(mdp, worst), V) > 1e-3
        assert flow_residual(mdp, 0.9 * res.d, d0) > 1e-3  # mass not normalised
    elif planted == "pi":  # a recovered policy that is not d's
        wrong = dataclasses.replace(res, pi=np.roll(res.pi, 1, axis=1))
        assert occupancy_error(mdp, wrong, d0) > 1e-3
    else:
        wrong = dataclasses.replace(res, V=res.V * (1 + 1e-7))
        assert value_error(mdp, wrong, V) > 1e-9
        wrong = dataclasses.replace(res, objective=res.objective + 1e-8)
        assert objective_error(mdp, wrong, V, d0) > 1e-9 * (1 - mdp.gamma) * np.max(V)


# --- finite horizon ----------------------------------------------------------------------


@FEW
@given(mdps(S=st.integers(2, 5), A=st.integers(2, 3), kind="finite", H=st.integers(1, 4),
            gamma=st.floats(0.5, 1.0), time_inhomogeneous=st.booleans(), sparse=False),
       st.sampled_from(["d", "V"]))
def test_finite_horizon_flow_lp_equals_backward_induction(mdp, over):
    bi = backward_induction(mdp)
    res = lp.solve_lp(mdp, over=over)
    assert res.ok and res.V.shape == (mdp.H, mdp.S) and res.d.shape == (mdp.H, mdp.S, mdp.A)
    scale = max(1.0, np.max(np.abs(bi.V)))
    # sparse=False: every state is reached at every step, so V is pinned everywhere
    np.testing.assert_allclose(res.V, bi.V, rtol=0, atol=1e-9 * scale)
    assert res.objective == pytest.approx(mdp.mu0 @ bi.V[0], abs=1e-9 * scale)
    discount = mdp.gamma ** np.arange(mdp.H)
    np.testing.assert_allclose(res.d, discount[:, None, None] * occupancy(mdp, res.pi),
                               rtol=0, atol=1e-9)
    assert expected_return(mdp, res.pi) == pytest.approx(mdp.mu0 @ bi.V[0], abs=1e-9 * scale)


def test_finite_horizon_flow_lp_catches_a_wrong_discount():
    mdp = garnet(5, 3, 3, gamma=0.9, H=4, seed=2)
    res = lp.solve_lp(mdp.replace(gamma=0.8))
    assert np.max(np.abs(res.V - backward_induction(mdp).V)) > 1e-3


def test_finite_horizon_with_gamma_zero_is_myopic():
    mdp = garnet(4, 3, 2, gamma=0.0, H=3, seed=8)
    res = lp.solve_lp(mdp)
    np.testing.assert_allclose(res.V[0], mdp.R.max(axis=1), rtol=0, atol=1e-12)
    assert np.all(res.d[1:] == 0.0)
    np.testing.assert_allclose(res.pi.sum(axis=-1), 1.0, rtol=0, atol=1e-12)


def test_flow_matrix_holds_for_any_policy_occupancy():
    rng = np.random.default_rng(0)
    mdp = garnet(7, 3, 4, gamma=0.8, seed=1)
    pi = rng.dirichlet(np.ones(3), size=7)
    F, b = lp.flow_matrix(mdp)
    assert F.shape == (7, 21)
    np.testing.assert_allclose(F @ occupancy(mdp, pi).ravel(), b, rtol=0, atol=1e-14)
    wrong = occupancy(mdp.replace(gamma=0.7), pi)  # planted: another discount
    assert np.max(np.abs(F @ wrong.ravel() - b)) > 1e-3
    fin = garnet(4, 2, 2, gamma=0.9, H=3, seed=1)
    F, b = lp.flow_matrix(fin)
    e = (0.9 ** np.arange(3))[:, None, None] * occupancy(fin, np.full((4, 2), 0.5))
    np.testing.assert_allclose(F @ e.ravel(), b, rtol=0, atol=1e-14)


# --- dual-Q: a fixed policy's occupancy (sheet test 5) -----------------------------------


@FEW
@given(small_mdps, st.data())
def test_occupancy_lp_equals_the_linear_solve(mdp, data):
    from tabular.strategies import policies

    pi = data.draw(policies(mdp))
    np.testing.assert_allclose(lp.occupancy_lp(mdp, pi), occupancy(mdp, pi), rtol=0, atol=1e-8)


def test_occupancy_lp_catches_a_wrong_discount():
    mdp = garnet(5, 2, 3, gamma=0.9, seed=4)
    pi = np.full((5, 2), 0.5)
    assert np.max(np.abs(lp.occupancy_lp(mdp.replace(gamma=0.8), pi) - occupancy(mdp, pi))) > 1e-3


# --- conjugates --------------------------------------------------------------------------

_F = {"kl": lambda x: x * np.log(x) if x > 0 else 0.0, "chi2": lambda x: (x - 1.0) ** 2,
      "tv": lambda x: abs(x - 1.0) / 2}


def numeric_conjugate(f, y, lo):
    """``sup_{x >= lo} x y - f(x)`` on x in [lo, 50], by a bounded scalar search."""
    best = minimize_scalar(lambda x: -(x * y - _F[f](x)), bounds=(lo, 50.0), method="bounded",
                           options={"xatol": 1e-12})
    return max(-best.fun, lo * y - _F[f](lo))


@pytest.mark.parametrize("f", ["kl", "chi2", "tv"])
@pytest.mark.parametrize("y", [-3.0, -1.0, -0.4, 0.0, 0.3, 0.5])
def test_nonnegative_conjugate_is_the_sup_over_x_ge_0(f, y):
    assert lp.conjugate(f, y) == pytest.approx(numeric_conjugate(f, y, 0.0), abs=1e-7)
    if f != "kl":  # f* over all x (KL's f is only defined on x >= 0)
        expected = numeric_conjugate(f, y, -50.0) if (f == "chi2" or abs(y) <= 0.5) else np.inf
        assert lp.conjugate(f, y, nonnegative=False) == pytest.approx(expected, abs=1e-6)


def test_conjugate_domains_and_ratio():
    assert lp.conjugate("tv", 0.51) == np.inf
    assert lp.conjugate("tv", -0.51, nonnegative=False) == np.inf
    assert lp.conjugate("tv", -7.0) == -0.5
    for f in ("kl", "chi2"):
        for y in (-3.0, -0.5, 0.7):  # w* maximises x y - f(x) over x >= 0
            w = lp.optimal_ratio(f, y)
            assert w * y - _F[f](w) == pytest.approx(float(lp.conjugate(f, y)), abs=1e-12)
    with pytest.raises(ValueError, match="set-valued"):
        lp.optimal_ratio("tv", 0.0)


def test_f_divergence_values():
    d, q = np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.25, 0.5])
    assert lp.f_divergence(d, q, "kl") == pytest.approx(np.log(2))
    assert lp.f_divergence(d, q, "chi2") == pytest.approx(2 * 0.25**2 / 0.25 + 0.5)
    assert lp.f_divergence(d, q, "tv") == pytest.approx(0.5)
    off = np.array([0.5, 0.0, 0.5]), np.array([0.5, 0.5, 0.0])
    assert lp.f_divergence(*off, "kl") == np.inf and lp.f_divergence(*off, "tv") == 0.5


# --- regularised duals: closed forms on a single state ----------------------------------


def one_state(r, gamma=0.9):
    A = len(r)
    return TabularMDP(np.ones((1, A, 1)), np.asarray(r, float)[None, :], [1.0], gamma=gamma)


def chi2_water_filling(r, q, a):
    """``argmax r.d - a sum (d - q)^2 / q`` over the simplex: ``d = q (1 + (r - lam)/(2a))_+``
    with lam fixing the mass (the active set is a top set of r)."""
    order = np.argsort(-r)
    for k in range(len(r), 0, -1):
        top = order[:k]
        lam = (np.sum(q[top] * (1 + r[top] / (2 * a))) - 1) / np.sum(q[top] / (2 * a))
        d = np.maximum(q * (1 + (r - lam) / (2 * a)), 0.0)
        if np.all(d[top] > 0) or k == 1:
            return d, lam


def closed_form(f, r, q, a):
    """(value, d) of ``max r.d - a D_f(d || q)`` over the simplex."""
    if f == "kl":
        return a * logsumexp(r / a, b=q), softmax(np.log(q) + r / a)
    if f == "chi2":
        d, _ = chi2_water_filling(r, q, a)
        return r @ d - a * np.sum((d - q) ** 2 / q), d
    # TV: moving mass from i to the best action gains r* - r_i and costs a per unit
    best = np.argmax(r)
    d = np.where(r < r[best] - a, 0.0, q)
    d[best] += q[r < r[best] - a].sum()
    return float(q @ np.maximum(r, r[best] - a)), d


CASES = [(np.array([1.0, 0.2, -0.5, 0.6]), np.array([0.1, 0.4, 0.3, 0.2]), 0.3),
         (np.array([0.0, 2.0, 1.0]), np.array([0.5, 0.25, 0.25]), 1.7)]


@pytest.mark.parametrize("f", ["kl", "chi2", "tv"])
@pytest.mark.parametrize("over", ["d", "V"])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_single_state_closed_forms(f, over, case):
    r, q, a = CASES[case]
    gamma = 0.9
    value, d = closed_form(f, r, q, a)
    res = lp.solve_regularized(one_state(r, gamma), q[None, :], a, f=f, over=over)
    assert res.ok
    assert res.objective == pytest.approx(value, rel=1e-6)
    np.testing.assert_allclose(res.d[0], d, rtol=1e-6, atol=1e-7)
    if f == "kl":  # (1 - gamma) V = a log E_q exp(r/a) - a, from the dual over V
        assert res.V[0] == pytest.approx((value - a) / (1 - gamma), rel=1e-6)
    if f == "chi2":  # the water level is the flow multiplier: lam = (1 - gamma) V
        assert res.V[0] == pytest.approx(chi2_water_filling(r, q, a)[1] / (1 - gamma), rel=1e-6)
    assert abs(res.gap) <= 1e-6 * max(1.0, abs(value))


def test_closed_form_check_catches_a_wrong_weight():
    r, q, a = CASES[0]
    for f in ("kl", "chi2", "tv"):
        res = lp.solve_regularized(one_state(r), q[None, :], 1.5 * a, f=f)
        assert abs(res.objective - closed_form(f, r, q, a)[0]) > 1e-3


# --- regularised duals: strong duality, ratio formula, monotonicity ----------------------


def behaviour_occupancy(mdp, seed):
    pi = np.random.default_rng(seed).dirichlet(np.ones(mdp.A), size=mdp.S)
    return occupancy(mdp, pi)


@settings(max_examples=4)
@given(mdps(S=st.integers(2, 6), A=st.integers(2, 3), gamma=st.floats(0.5, 0.9), sparse=False),
       st.sampled_from(["kl", "chi2"]), st.sampled_from([0.3, 1.0]))
def test_regularised_strong_duality_and_ratio(mdp, f, a_reg):
    dO = behaviour_occupancy(mdp, 0)
    # Two independent conic solves (no Newton polish): primal over d = dual over V (sheet
    # test 3: tol 1e-5; Clarabel's objective tolerance gives far better).
    over_d = lp.solve_regularized(mdp, dO, a_reg, f=f, over="d", polish=False)
    over_V = lp.solve_regularized(mdp, dO, a_reg, f=f, over="V", polish=False)
    assert over_d.ok and over_V.ok
    scale = max(1.0, abs(over_d.objective))
    assert over_d.objective == pytest.approx(over_V.objective, abs=1e-7 * scale)
    # The KKT point: the ratio formula w*(y(V) / a) reproduces d / dO (tol 1e-4), d is on the
    # flow constraint, and it is the conic solver's d up to that solver's precision.
    kkt = lp.solve_regularized(mdp, dO, a_reg, f=f)
    F, _ = lp.flow_matrix(mdp)
    y = mdp.R.ravel() - F.T @ kkt.V
    ratio = lp.optimal_ratio(f, y / a_reg).reshape(mdp.S, mdp.A)
    np.testing.assert_allclose(ratio, kkt.d / dO, rtol=0, atol=1e-4)
    assert flow_residual(mdp, kkt.d, mdp.mu0) <= 1e-9
    # The KL point is Newton-polished (gap exact to 1e-9); chi2 is not, so its gap is
    # Clarabel's, within the solver's stated tol_gap_abs.
    gap_tol = 1e-9 if f == "kl" else lp.CLARABEL_OPTIONS["tol_gap_abs"]
    assert abs(kkt.gap) <= gap_tol * scale
    # over_d is an unpolished conic solve whose objective is within Clarabel's gap tolerance
    # delta of the optimum. The objective is a_reg-strongly concave in d (Hessian a_reg / d
    # for KL, 2 a_reg / dO for chi2, with d, dO <= 1), so ||d - d*||_2 <= sqrt(2 delta / a_reg)
    # (2e-5 seen on a generated 2-state MDP, where the bound is 3e-4).
    delta = (lp.CLARABEL_OPTIONS["tol_gap_abs"]
             + lp.CLARABEL_OPTIONS["tol_gap_rel"] * abs(over_d.objective))
    assert np.linalg.norm(kkt.d - over_d.d) <= np.sqrt(2 * delta / a_reg)
    assert kkt.objective == pytest.approx(over_V.objective, abs=1e-7 * scale)


def test_strong_duality_catches_the_plain_conjugate():
    """Planted: chi2's plain conjugate f* in place of f*_p (i.e. dropping d >= 0) raises the
    dual's minimum above the primal's maximum where the sign constraint bites."""
    import cvxpy as cp

    mdp = garnet(5, 3, 3, gamma=0.8, seed=3)
    dO = behaviour_occupancy(mdp, 1)
    a_reg = 0.05  # small: some ratios are 0
    primal = lp.solve_regularized(mdp, dO, a_reg, f="chi2")
    assert np.sum(primal.d < 1e-6) > 0
    F, b = lp.flow_matrix(mdp)
    V = cp.Variable(mdp.S)
    u = (mdp.R.ravel() - F.T @ V) / a_reg
    plain = cp.Problem(cp.Minimize(b @ V + a_reg * dO.ravel() @ (u + cp.square(u) / 4)))
    plain.solve(solver=cp.CLARABEL)
    assert plain.value > primal.objective + 1e-3


def test_tv_domain_constraint_is_active_for_a_small_weight():
    mdp = garnet(6, 3, 3, gamma=0.8, seed=9)
    dO = behaviour_occupancy(mdp, 2)
    F, _ = lp.flow_matrix(mdp)
    small, large = 0.05, 50.0
    for a_reg in (small, large):
        over_d = lp.solve_regularized(mdp, dO, a_reg, f="tv")
        over_V = lp.solve_regularized(mdp, dO, a_reg, f="tv", over="V")
        assert over_d.ok and over_V.ok and over_d.solver == "HIGHS"
        assert over_d.objective == pytest.approx(over_V.objective, abs=1e-9)
        np.testing.assert_allclose(over_V.d, over_d.d, rtol=0, atol=1e-9)
        u = (mdp.R.ravel() - F.T @ over_V.V) / a_reg
        assert u.max() <= 0.5 + 1e-9  # the domain constraint y <= a/2 holds ...
        ratio = (over_V.d / dO).ravel()
        if a_reg == small:  # ... and is active exactly where d exceeds dO
            assert ratio.max() > 1.5
            assert np.all(u[ratio > 1 + 1e-7] >= 0.5 - 1e-9)
            assert np.all(ratio[u < 0.5 - 1e-7] <= 1 + 1e-7)
            # planted: dropping the constraint lowers the dual below the primal
            assert unconstrained_tv_dual(mdp, dO, a_reg) < over_d.objective - 1e-3
        else:  # dO is an occupancy and TV an exact penalty: d = dO
            np.testing.assert_allclose(over_d.d, dO, rtol=0, atol=1e-9)


def test_tv_keeps_d_on_the_support_of_dO():
    """TV's problem is restricted to supp(dO) (documented): d = 0 there, and on that set
    the objective's D_f equals f_divergence's."""
    mdp = garnet(6, 3, 3, gamma=0.8, seed=9)
    dO = behaviour_occupancy(mdp, 2)
    dO[:, 2] = 0.0  # no data on action 2: still an occupancy's support from mu0
    dO /= dO.sum()
    for over in ("d", "V"):
        res = lp.solve_regularized(mdp, dO, 0.05, f="tv", over=over)
        assert res.ok and np.all(res.d[:, 2] == 0.0)
        value = mdp.R.ravel() @ res.d.ravel() - 0.05 * lp.f_divergence(res.d, dO, "tv")
        assert res.objective == pytest.approx(value, rel=0, abs=1e-9)


@pytest.mark.parametrize("a_reg", [1e-6, 1e6])
@pytest.mark.parametrize("f", ["kl", "chi2", "tv"])
def test_extreme_weights_in_the_supported_range(f, a_reg):
    """Both forms agree at the ends of A_REG_RANGE, and tend to their limits: the LP's
    optimum over supp(dO) (here full support) and r . dO (dO an occupancy)."""
    mdp = garnet(6, 3, 3, gamma=0.8, seed=9)
    dO = behaviour_occupancy(mdp, 2)
    over_d = lp.solve_regularized(mdp, dO, a_reg, f=f)
    over_V = lp.solve_regularized(mdp, dO, a_reg, f=f, over="V")
    assert over_d.ok and over_V.ok
    assert over_d.objective == pytest.approx(over_V.objective, rel=1e-6)
    assert abs(over_d.gap) <= 1e-6 * abs(over_d.objective)
    limit = (lp.solve_lp(mdp).objective if a_reg < 1 else mdp.R.ravel() @ dO.ravel())
    assert over_d.objective == pytest.approx(limit, rel=1e-4)


def test_weights_outside_the_supported_range_are_rejected():
    mdp = garnet(3, 2, 2, gamma=0.9, seed=0)
    dO = np.full((3, 2), 1 / 6)
    for a_reg in (1e-8, 1e8):
        for over in ("d", "V"):
            with pytest.raises(ValueError, match="outside the supported range"):
                lp.solve_regularized(mdp, dO, a_reg, over=over)


def test_inaccurate_kl_solve_is_certified_by_the_polish(monkeypatch):
    """Tolerances Clarabel cannot meet make it stop "almost solved" (optimal_inaccurate);
    the polish certifies the point. Planted: with a KKT tolerance of 0 (no residual passes)
    the same solve stays failed."""
    mdp = garnet(6, 3, 3, gamma=0.8, seed=9)
    dO = behaviour_occupancy(mdp, 2)
    tight = {key: 1e-16 for key in ("tol_gap_abs", "tol_gap_rel", "tol_feas", "tol_ktratio")}
    for over in ("d", "V"):
        raw = lp.solve_regularized(mdp, dO, 0.3, over=over, solver_options=tight, polish=False)
        assert raw.status == "optimal_inaccurate" and raw.d is None
        res = lp.solve_regularized(mdp, dO, 0.3, over=over, solver_options=tight)
        assert res.ok and res.certified
        assert flow_residual(mdp, res.d, mdp.mu0) <= 1e-12
    monkeypatch.setattr(lp, "_KKT_TOL", 0.0)
    for over in ("d", "V"):
        res = lp.solve_regularized(mdp, dO, 0.3, over=over, solver_options=tight)
        assert res.status == "optimal_inaccurate" and not res.certified and res.d is None


def test_solver_error_keeps_its_message(monkeypatch):
    import cvxpy

    def fail(self, *args, **kwargs):
        raise cvxpy.error.SolverError("planted failure 42")

    monkeypatch.setattr(cvxpy.Problem, "solve", fail)
    mdp = garnet(3, 2, 2, gamma=0.9, seed=0)
    for res in (lp.solve_lp(mdp), lp.solve_regularized(mdp, np.full((3, 2), 1 / 6), 1.0)):
        assert res.status == "solver_error" and "planted failure 42" in res.message
        assert res.pi is None and np.isnan(res.objective)


def unconstrained_tv_dual(mdp, dO, a_reg):
    """``min_V b.V + a sum dO max(y/a, -1/2)`` without ``y <= a/2`` (the planted error)."""
    import cvxpy as cp

    F, b = lp.flow_matrix(mdp)
    V = cp.Variable(mdp.S)
    y = mdp.R.ravel() - F.T @ V
    problem = cp.Problem(cp.Minimize(b @ V + dO.ravel() @ cp.maximum(y, -a_reg / 2)))
    problem.solve(solver=cp.HIGHS)
    return problem.value if problem.status == "optimal" else -np.inf


def monotone_violation(mdp, dO, f, a_regs, reward_sign=1.0):
    path = lp.regularization_path(mdp.replace(R=reward_sign * mdp.R), dO, a_regs, f=f)
    assert all(res.ok for res in path)
    J = np.array([expected_return(mdp, res.pi) for res in path])
    D = np.array([lp.f_divergence(res.d, dO, f) for res in path])
    return max(np.max(np.diff(J)), np.max(np.diff(D)))


@pytest.mark.parametrize("f", ["kl", "chi2", "tv"])
def test_return_and_divergence_non_increasing_in_a_reg(f):
    mdp = garnet(8, 3, 3, gamma=0.9, seed=21)
    dO = behaviour_occupancy(mdp, 3)
    a_regs = np.logspace(-2, 1, 6)
    assert monotone_violation(mdp, dO, f, a_regs) <= 1e-6  # sheet test 4
    # planted: the reward's sign flipped in the objective
    assert monotone_violation(mdp, dO, f, a_regs, reward_sign=-1.0) > 1e-3


# --- failures are reported, bad input raises ---------------------------------------------


@pytest.mark.parametrize("f", ["kl", "tv"])
def test_infeasible_model_is_reported_not_returned_as_a_policy(f):
    mdp = chain(4, gamma=0.9)  # starts in state 0
    dO = np.zeros((4, 2))
    dO[1:] = 1 / 6  # no data on the start state: no occupancy lives on supp(dO)
    res = lp.solve_regularized(mdp, dO, 1.0, f=f)
    assert res.status.startswith("infeasible")
    assert not res.ok and res.pi is None and res.d is None and np.isnan(res.objective)


def test_missing_solver_is_an_error(monkeypatch):
    import cvxpy

    monkeypatch.setattr(cvxpy, "installed_solvers", lambda: ["SCS"])
    with pytest.raises(ImportError, match="HIGHS is not installed"):
        lp.solve_lp(garnet(3, 2, 2, seed=0))
    with pytest.raises(ImportError, match="CLARABEL is not installed"):
        lp.solve_regularized(garnet(3, 2, 2, seed=0), np.full((3, 2), 1 / 6), 1.0)


def test_bad_input_raises():
    mdp = garnet(3, 2, 2, gamma=0.9, seed=0)
    dO = np.full((3, 2), 1 / 6)
    with pytest.raises(ValueError, match=r"dO has shape \(2, 3\)"):
        lp.solve_regularized(mdp, dO.T, 1.0)
    with pytest.raises(ValueError, match="zero mass everywhere"):
        lp.solve_regularized(mdp, np.zeros((3, 2)), 1.0)
    with pytest.raises(ValueError, match="negative"):
        lp.solve_regularized(mdp, dO - np.eye(3, 2) * 0.3, 1.0)
    with pytest.raises(ValueError, match="a_regs is empty"):
        lp.regularization_path(mdp, dO, [])
    with pytest.raises(ValueError, match="NaN"):
        lp.conjugate("tv", np.nan)
    with pytest.raises(ValueError, match=r"y\[1\] is NaN"):
        lp.optimal_ratio("kl", [0.0, np.nan])
    for bad in (-1.0, 0.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="a_reg"):
            lp.solve_regularized(mdp, dO, bad)
        with pytest.raises(ValueError, match="a_reg"):
            lp.regularization_path(mdp, dO, [1.0, bad])
    with pytest.raises(TypeError, match="a_reg"):
        lp.solve_regularized(mdp, dO, True)
    with pytest.raises(ValueError, match="f = 'js'"):
        lp.solve_regularized(mdp, dO, 1.0, f="js")
    with pytest.raises(ValueError, match="over"):
        lp.solve_lp(mdp, over="Q")
    with pytest.raises(ValueError, match="invalid d0"):
        lp.solve_lp(mdp, d0=[0.5, 0.5])
    episodic = TabularMDP(np.array([[[1.0]]]), [[0.0]], [1.0], gamma=1.0, terminal=[0])
    with pytest.raises(ValueError, match="episodic"):
        lp.solve_lp(episodic)
    with pytest.raises(ValueError, match="discounted"):
        lp.solve_regularized(garnet(3, 2, 2, H=2, seed=0), dO, 1.0)
    with pytest.raises(TypeError, match="TabularMDP"):
        lp.flow_matrix("mdp")


def test_import_is_light_and_highs_banner_is_silenced():
    """No banner on stdout, and fd 1 restored after the first solve: the marker printed
    after it arrives."""
    code = ("import sys, tabular, tabular.lp; assert 'cvxpy' not in sys.modules; "
            "from tabular.generators import garnet; "
            "tabular.lp.solve_lp(garnet(3, 2, 2, seed=0)); print('MARKER', flush=True)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "MARKER\n"


def test_highs_solves_when_fd_1_cannot_be_duplicated(monkeypatch):
    """os.dup(1) raises OSError when fd 1 is closed; the banner guard gives up, the solve
    goes on."""
    import os

    def closed(fd):
        raise OSError(9, "Bad file descriptor")

    monkeypatch.setattr(lp, "_HIGHS_BANNER_SILENCED", False)
    monkeypatch.setattr(os, "dup", closed)
    assert lp.solve_lp(garnet(3, 2, 2, seed=0)).ok
    assert lp._HIGHS_BANNER_SILENCED
