"""Regularised robust backups and R2PVI: closed forms against cvxpy, limits, orderings,
the d-rectangular reduction, planning, the offline algorithm against a numpy reference,
and bad input. Each check is shown to catch a planted error."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tabular import (
    TabularMDP,
    backward_induction,
    evaluate_policy,
    sample_episodes,
    value_iteration,
)
from tabular.lp import CLARABEL_OPTIONS, f_divergence
from tabular.robust import (
    DIVERGENCES,
    linear_robust_backup,
    one_hot_features,
    r2pvi,
    robust_backup,
    robust_evaluate_policy,
    robust_expectation,
    robust_value_iteration,
    worst_case_kernel,
)
from tabular.sampling import Episodes
from tabular.strategies import mdps

# --- an independent reference: the inner minimisation solved by cvxpy ----------------------

def cvxpy_inner_min(p, V, lam, div):
    """``min_{q in simplex} q.V + lam D(q || p)`` with D written in cvxpy (Clarabel)."""
    import cvxpy as cp

    q = cp.Variable(p.size, nonneg=True)
    on = p > 0
    constraints = [cp.sum(q) == 1]
    if div != "tv" and (~on).any():
        constraints.append(q[~on] == 0)  # f'(inf) = inf for KL and chi-square
    if div == "tv":
        D = 0.5 * cp.norm1(q - p)
    elif div == "kl":
        D = cp.sum(cp.rel_entr(q[on], p[on]))
    else:
        D = cp.sum(cp.square(q[on] - p[on]) / p[on])
    problem = cp.Problem(cp.Minimize(q @ V + lam * D), constraints)
    problem.solve(solver="CLARABEL", **CLARABEL_OPTIONS)  # tolerances 1e-8
    assert problem.status == "optimal", problem.status
    return problem.value


def tv_without_half(p, V, lam, div):
    """Planted: the closed form of D = ||q - p||_1 (threshold 2 lam) used for D = 0.5 ||.||_1."""
    return p @ np.minimum(V, V.min() + 2 * lam)


def tv_support_min(p, V, lam, div):
    """Planted: TV clipped at the minimum over supp p instead of over all states."""
    return p @ np.minimum(V, V[p > 0].min() + lam)


def chi2_unclipped(p, V, lam, div):
    """Planted (the sheet's pitfall): f* = y + y^2/4 instead of f*_p, i.e. q may go negative.
    sup_eta {eta - lam E_p[f*((eta - V)/lam)]} = E_p V - Var_p(V) / (4 lam) in closed form."""
    mean = p @ V
    return mean - p @ (V - mean) ** 2 / (4 * lam)


def kl_without_lam(p, V, lam, div):
    """Planted: -log E_p exp(-V/lam), the factor lam in front of the log missing."""
    return -np.log(p @ np.exp(-V / lam))


def library(p, V, lam, div):
    return float(robust_expectation(p, V, lam, div))


def matches_cvxpy(closed, p, V, lam, div, tol=1e-6):
    gap = abs(closed(p, V, lam, div) - cvxpy_inner_min(p, V, lam, div))
    return gap <= tol * max(1.0, np.abs(V).max())


# The argmin over all states (state 0) lies outside supp p, so TV and the support-only
# minimum differ; V spans more than 2 lam so both TV thresholds bind.
P_OFF = np.array([0.0, 0.5, 0.3, 0.2])
V_OFF = np.array([-2.0, 3.0, 0.5, 1.0])


@pytest.mark.parametrize("div", DIVERGENCES)
def test_closed_forms_equal_cvxpy(div):
    rng = np.random.default_rng(7)
    cases = [(P_OFF, V_OFF)]
    for _ in range(2):
        p = rng.dirichlet(np.ones(5))
        p[rng.integers(5)] = 0.0
        cases.append((p / p.sum(), 3 * rng.standard_normal(5)))
    for p, V in cases:
        for lam in (0.2, 1.0, 5.0):
            assert matches_cvxpy(library, p, V, lam, div), (p, V, lam)


@pytest.mark.parametrize("planted, div, lam", [
    (tv_without_half, "tv", 1.0), (tv_support_min, "tv", 1.0),
    # lam = 0.3 < (max V - E V) / 2 on supp p: the clip q >= 0 binds for chi2, and the
    # missing factor lam changes KL (at lam = 1 neither planted error would show).
    (chi2_unclipped, "chi2", 0.3), (kl_without_lam, "kl", 0.3)])
def test_cvxpy_check_catches_planted_closed_forms(planted, div, lam):
    assert matches_cvxpy(library, P_OFF, V_OFF, lam, div)
    assert not matches_cvxpy(planted, P_OFF, V_OFF, lam, div)


@pytest.mark.parametrize("div", DIVERGENCES)
def test_worst_case_kernel_attains_the_value(div):
    # E_q*[V] + lam D(q* || p) with the divergence of tabular.lp equals the closed form.
    rng = np.random.default_rng(3)
    P = rng.dirichlet(np.ones(4), size=(3, 2))
    P[0, 0] = P_OFF
    V = V_OFF
    for lam in (0.3, 2.0):
        q = worst_case_kernel(P, V, lam, div)
        assert np.allclose(q.sum(axis=-1), 1.0, atol=1e-14) and (q >= 0).all()
        primal = np.array([[q[s, a] @ V + lam * f_divergence(q[s, a], P[s, a], div)
                            for a in range(2)] for s in range(3)])
        assert np.allclose(primal, robust_expectation(P, V, lam, div), rtol=0, atol=1e-10)
        # a wrong kernel (the nominal one) is not optimal unless nothing moves
        nominal = P @ V
        assert np.all(nominal >= primal - 1e-12)
        assert np.any(nominal > primal + 1e-3)


def test_limits_in_lam():
    p, V = P_OFF, V_OFF
    mean = p @ V
    for div in DIVERGENCES:
        assert robust_expectation(p, V, math.inf, div) == mean
        assert robust_expectation(p, V, 1e7, div) == pytest.approx(mean, abs=1e-5)
    # lam -> 0: TV tends to min over ALL states, KL and chi2 to min over supp p.
    assert robust_expectation(p, V, 1e-9, "tv") == pytest.approx(V.min(), abs=1e-8)
    for div in ("kl", "chi2"):
        assert robust_expectation(p, V, 1e-9, div) == pytest.approx(V[p > 0].min(), abs=1e-8)
    # the limit check catches the support-only TV minimum
    assert tv_support_min(p, V, 1e-9, "tv") == pytest.approx(V[p > 0].min(), abs=1e-8)
    assert abs(tv_support_min(p, V, 1e-9, "tv") - V.min()) > 1.0


def test_kl_is_stable_at_extreme_lam():
    V = np.array([0.0, 1000.0, 5000.0])
    p = np.array([0.2, 0.3, 0.5])
    # lam -> 0: min V - lam log p(argmin), the other terms underflow
    assert robust_expectation(p, V, 1e-3, "kl") == pytest.approx(-1e-3 * math.log(0.2), abs=1e-12)
    # second-order expansion E V - Var V / (2 lam) at large lam
    lam = 1e9
    expected = p @ V - (p @ V**2 - (p @ V) ** 2) / (2 * lam)
    assert robust_expectation(p, V, lam, "kl") == pytest.approx(expected, abs=1e-6)


rows = st.integers(2, 6).flatmap(lambda S: st.tuples(
    hnp.arrays(np.float64, S, elements=st.one_of(st.just(0.0), st.floats(0.01, 1.0))),
    hnp.arrays(np.float64, S, elements=st.floats(-10, 10)),
    st.floats(0.01, 100.0)))


@given(rows)
def test_robust_at_most_nominal_and_monotone_in_lam(case):
    w, V, lam = case
    if w.sum() == 0:
        w[0] = 1.0
    p = w / w.sum()
    scale = 1e-12 * max(1.0, np.abs(V).max())
    for div in DIVERGENCES:
        low, high = robust_expectation(p, V, lam, div), robust_expectation(p, V, 2 * lam, div)
        assert V.min() - scale <= low <= p @ V + scale
        assert low <= high + scale


def test_ordering_check_catches_an_optimistic_backup():
    # a sign error (+lam log E exp(V/lam), the sup over q) exceeds the nominal value
    p, V, lam = P_OFF, V_OFF, 1.0
    optimistic = lam * math.log(p @ np.exp(V / lam))
    assert optimistic > p @ V + 0.1
    assert robust_expectation(p, V, lam, "kl") <= p @ V


# --- d-rectangular backups --------------------------------------------------------------------


@given(mdps(S=st.integers(1, 4), A=st.integers(1, 3), reward_range=(0.0, 1.0)),
       st.sampled_from(DIVERGENCES), st.floats(0.05, 10.0))
def test_one_hot_linear_backup_equals_tabular_bit_for_bit(mdp, div, lam):
    S, A = mdp.S, mdp.A
    V = np.linspace(0.0, 2.0, S) ** 2
    tab = robust_backup(mdp.P, mdp.R, V, lam, div, gamma=mdp.gamma)
    lin = linear_robust_backup(one_hot_features(S, A), mdp.P.reshape(S * A, S), mdp.R, V, lam,
                               div, gamma=mdp.gamma)
    assert np.array_equal(tab, lin)


def test_one_hot_check_catches_a_wrong_flattening():
    # mu must be P.reshape(S * A, S) (index s * A + a); an (a, s) order is a planted error.
    rng = np.random.default_rng(2)
    P, R, V = rng.dirichlet(np.ones(3), size=(3, 2)), np.zeros((3, 2)), np.array([0.0, 1.0, 3.0])
    tab = robust_backup(P, R, V, 0.5, "kl")
    wrong = linear_robust_backup(one_hot_features(3, 2), P.transpose(1, 0, 2).reshape(6, 3), R, V,
                                 0.5, "kl")
    assert not np.allclose(tab, wrong)


def test_aggregated_one_hot_features_equal_the_tabular_backup():
    # Each (s, a) loads one factor k(s, a) of d = 2: P(.|s, a) = mu[k(s, a)].
    rng = np.random.default_rng(11)
    mu = rng.dirichlet(np.ones(3), size=2)
    k = np.array([[0, 1], [1, 1], [0, 0]])
    phi = np.eye(2)[k]
    R, V = rng.random((3, 2)), np.array([0.0, 2.0, 5.0])
    for div in DIVERGENCES:
        expected = robust_backup(mu[k], R, V, 0.7, div, gamma=0.9)
        assert np.allclose(linear_robust_backup(phi, mu, R, V, 0.7, div, gamma=0.9), expected,
                           rtol=0, atol=1e-13)


def test_d_rectangular_is_less_conservative_than_the_mixture():
    # Joint convexity: D(sum phi_i q_i || sum phi_i mu_i) <= sum phi_i D(q_i || mu_i), so the
    # d-rectangular adversary (one q_i per factor) is weaker than one acting on the mixture.
    mu = np.array([[0.9, 0.1, 0.0], [0.0, 0.2, 0.8]])
    phi = np.full((3, 1, 2), 0.5)
    P = phi @ mu  # (3, 1, 3)
    R, V = np.zeros((3, 1)), np.array([4.0, 1.0, 0.0])
    for div in DIVERGENCES:
        lin = linear_robust_backup(phi, mu, R, V, 1.0, div)
        tab = robust_backup(P, R, V, 1.0, div)
        assert np.all(lin >= tab - 1e-12)
        if div != "tv":
            assert np.all(lin > tab + 1e-3)


# --- planning ---------------------------------------------------------------------------------


@given(mdps(S=st.integers(1, 4), A=st.integers(1, 3), kind="finite"), st.sampled_from(DIVERGENCES))
def test_robust_planning_finite(mdp, div):
    nominal = backward_induction(mdp)
    assert np.allclose(robust_value_iteration(mdp, math.inf, div).V, nominal.V, rtol=0, atol=1e-12)
    res = robust_value_iteration(mdp, 0.5, div)
    assert np.all(res.V <= nominal.V + 1e-9)
    # the robust value of the robust-greedy policy is the optimal robust value,
    # and no other policy (here the nominal optimum) does better
    assert np.allclose(robust_evaluate_policy(mdp, res.pi, 0.5, div).V, res.V, rtol=0, atol=1e-9)
    V_nominal_pi = robust_evaluate_policy(mdp, nominal.pi, 0.5, div).V
    assert np.all(V_nominal_pi <= res.V + 1e-9)
    assert np.all(V_nominal_pi <= evaluate_policy(mdp, nominal.pi).V + 1e-9)


def test_robust_planning_discounted():
    rng = np.random.default_rng(5)
    P = rng.dirichlet(np.ones(4), size=(4, 2))
    mdp = TabularMDP(P, rng.random((4, 2)), np.full(4, 0.25), gamma=0.8)
    assert np.allclose(robust_value_iteration(mdp, math.inf, "kl").V, value_iteration(mdp).V,
                       rtol=0, atol=1e-9)
    for div in DIVERGENCES:
        res = robust_value_iteration(mdp, 0.5, div, epsilon=1e-11)
        assert res.converged
        fixed = (mdp.R + 0.8 * robust_expectation(mdp.P, res.V, 0.5, div)).max(axis=1)
        assert np.max(np.abs(fixed - res.V)) <= 1e-10
        assert np.allclose(robust_evaluate_policy(mdp, res.pi, 0.5, div, epsilon=1e-11).V, res.V,
                           rtol=0, atol=1e-9)


# --- R2PVI --------------------------------------------------------------------------------------


def _data(seed=0, n=300, H=4):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(3) * 0.5, size=(3, 2))
    mdp = TabularMDP(P, rng.random((3, 2)), np.array([0.6, 0.4, 0.0]), H=H)
    return mdp, sample_episodes(mdp, np.full((3, 2), 0.5), n, seed=seed)


def pessimistic_vi_reference(episodes, S, A, beta, ridge, backup):
    """Plain loops: per-step counts, r_hat = sum r / (n + ridge), P_hat = counts / n,
    Gamma = beta / sqrt(n + ridge), Q = clip(r_hat + backup(P_hat, V) - Gamma, 0, H - h)."""
    n_ep, H = episodes.actions.shape
    V = np.zeros(S)
    Qs = []
    for h in range(H - 1, -1, -1):
        n, r_sum, counts = np.zeros((S, A)), np.zeros((S, A)), np.zeros((S, A, S))
        for i in range(n_ep):
            s, a = episodes.states[i, h], episodes.actions[i, h]
            if a >= 0:
                n[s, a] += 1
                r_sum[s, a] += episodes.rewards[i, h]
                counts[s, a, episodes.states[i, h + 1]] += 1
        Q = np.zeros((S, A))
        for s in range(S):
            for a in range(A):
                nu = backup(counts[s, a] / n[s, a], V) if n[s, a] > 0 else 0.0
                Q[s, a] = min(max(r_sum[s, a] / (n[s, a] + ridge) + nu
                                  - beta / math.sqrt(n[s, a] + ridge), 0.0), H - h)
        choose = np.where(n > 0, Q, -np.inf)
        choose[~(n > 0).any(axis=1)] = Q[~(n > 0).any(axis=1)]
        V = Q[np.arange(S), np.argmax(choose, axis=1)]
        Qs.append(Q)
    return np.array(Qs[::-1])


@pytest.mark.parametrize("lam, div", [(math.inf, "kl"), (0.7, "kl"), (0.7, "chi2"), (0.7, "tv")])
def test_r2pvi_equals_reference(lam, div):
    _, episodes = _data()
    res = r2pvi(episodes, 3, 2, lam=lam, divergence=div, beta=0.3, ridge=1.0)
    ref = pessimistic_vi_reference(episodes, 3, 2, 0.3, 1.0,
                                   lambda p, V: p @ V if math.isinf(lam) else
                                   float(robust_expectation(p, V, lam, div)))
    assert np.allclose(res.Q, ref, rtol=0, atol=1e-12)
    assert np.array_equal(res.V, np.take_along_axis(res.Q, res.pi[..., None], axis=2)[..., 0])


def test_reference_catches_a_halved_penalty():
    _, episodes = _data()
    res = r2pvi(episodes, 3, 2, lam=math.inf, divergence="kl", beta=0.3)
    wrong = pessimistic_vi_reference(episodes, 3, 2, 0.15, 1.0, lambda p, V: p @ V)
    assert not np.allclose(res.Q, wrong, rtol=0, atol=1e-6)


def test_r2pvi_tv_with_large_lam_is_plain_pessimistic_vi():
    # V in [0, H]: lam >= H makes min(V, min V + lam) = V exactly.
    _, episodes = _data(seed=2)
    plain = r2pvi(episodes, 3, 2, lam=math.inf, divergence="tv", beta=0.2)
    tv = r2pvi(episodes, 3, 2, lam=4.0, divergence="tv", beta=0.2)
    assert np.array_equal(plain.Q, tv.Q) and np.array_equal(plain.pi, tv.pi)
    assert not np.array_equal(plain.Q, r2pvi(episodes, 3, 2, lam=0.05, divergence="tv", beta=0.2).Q)


def test_r2pvi_on_deterministic_dynamics_recovers_robust_planning():
    # Deterministic P: every seen pair's empirical kernel is exact; beta = 0 and a tiny ridge
    # leave the robust backward induction of the true model. Each action permutes the states,
    # so the uniform start stays uniform and every pair is seen at every step.
    rng = np.random.default_rng(4)
    S, A, H = 4, 2, 5
    P = np.stack([np.eye(S)[rng.permutation(S)] for _ in range(A)], axis=1)
    mdp = TabularMDP(P, rng.random((S, A)), np.full(S, 0.25), H=H)
    episodes = sample_episodes(mdp, np.full((S, A), 0.5), 400, seed=1)
    for div in DIVERGENCES:
        res = r2pvi(episodes, S, A, lam=0.4, divergence=div, beta=0.0, ridge=1e-12)
        assert res.covered.all()
        plan = robust_value_iteration(mdp, 0.4, div)
        assert np.allclose(res.Q, plan.Q, rtol=0, atol=1e-9)


def test_r2pvi_general_features_respect_the_value_range():
    mdp, episodes = _data(seed=3)
    rng = np.random.default_rng(0)
    phi = rng.dirichlet(np.ones(2), size=(3, 2))
    for div in DIVERGENCES:
        res = r2pvi(episodes, 3, 2, lam=1.0, divergence=div, beta=0.1, phi=phi)
        H = mdp.H
        assert np.all(res.Q >= 0) and np.all(res.Q <= (H - np.arange(H))[:, None, None])
        assert res.factor_counts.shape == (H, 2)


def _episodes(states, actions, rewards):
    states, actions = np.asarray(states), np.asarray(actions)
    return Episodes(states=states, actions=actions, rewards=np.asarray(rewards, dtype=float),
                    lengths=np.full(states.shape[0], actions.shape[1]))


def test_unseen_actions_are_never_preferred():
    # State 0: only action 1 seen, with reward 0, so both Q(0, .) are clipped to 0; the tie
    # must go to the seen action, not to the lower index.
    episodes = _episodes([[0, 1]] * 3, [[1]] * 3, [[0.0]] * 3)
    res = r2pvi(episodes, 2, 2, lam=1.0, divergence="kl", beta=0.5)
    assert res.Q[0, 0, 0] == res.Q[0, 0, 1] == 0.0
    assert res.pi[0, 0] == 1 and not res.covered[0, 0, 0]
    # a state with no data at all: action 0 by convention
    assert res.pi[0, 1] == 0


@pytest.mark.parametrize("call, error, match", [
    (lambda: robust_expectation([0.5, 0.6], [0, 1], 1.0, "kl"), ValueError, "sums to"),
    (lambda: robust_expectation([0.5, 0.5], [0, 1, 2], 1.0, "kl"), ValueError, "shape"),
    (lambda: robust_expectation([0.5, 0.5], [0, np.nan], 1.0, "kl"), ValueError, "not finite"),
    (lambda: robust_expectation([1.2, -0.2], [0, 1], 1.0, "tv"), ValueError, "negative"),
    (lambda: robust_expectation([0.5, 0.5], [0, 1], 0.0, "kl"), ValueError, "lam"),
    (lambda: robust_expectation([0.5, 0.5], [0, 1], math.nan, "kl"), ValueError, "lam"),
    (lambda: robust_expectation([0.5, 0.5], [0, 1], True, "kl"), TypeError, "lam"),
    (lambda: robust_expectation([0.5, 0.5], [0, 1], 1.0, "hellinger"), ValueError, "divergence"),
    (lambda: robust_expectation([0.5, 0.5], [0, 1], 1.0, 2), TypeError, "divergence"),
    (lambda: robust_backup(np.full((2, 2, 2), 0.5), np.zeros((2, 3)), [0, 1], 1.0, "kl"),
     ValueError, "R has shape"),
    (lambda: linear_robust_backup(np.full((2, 2, 2), 0.5), np.full((3, 2), 0.5), np.zeros((2, 2)),
                                  [0, 1], 1.0, "kl"), ValueError, "mu has shape"),
    (lambda: linear_robust_backup(np.full((2, 2, 2), 0.6), np.full((2, 2), 0.5), np.zeros((2, 2)),
                                  [0, 1], 1.0, "kl"), ValueError, "phi"),
])
def test_bad_backup_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("kwargs, error, match", [
    ({"beta": -1.0}, ValueError, "beta"),
    ({"ridge": 0.0}, ValueError, "ridge"),
    ({"phi": np.full((3, 3, 2), 0.5)}, ValueError, "phi has shape"),
    ({"lam": -1.0}, ValueError, "lam"),
])
def test_bad_r2pvi_input(kwargs, error, match):
    _, episodes = _data(n=5)
    args = {"lam": 1.0, "divergence": "kl", "beta": 0.1, **kwargs}
    with pytest.raises(error, match=match):
        r2pvi(episodes, 3, 2, **args)


def test_bad_r2pvi_data():
    with pytest.raises(ValueError, match=r"rewards\[0, 0\] = 2.0"):
        r2pvi(_episodes([[0, 1]], [[1]], [[2.0]]), 2, 2, lam=1.0, divergence="kl", beta=0.1)
    with pytest.raises(ValueError, match=r"states\[0, 1\] = 5"):
        r2pvi(_episodes([[0, 5]], [[1]], [[0.0]]), 2, 2, lam=1.0, divergence="kl", beta=0.1)
    with pytest.raises(ValueError, match="at least one episode"):
        r2pvi(_episodes(np.zeros((0, 2), int), np.zeros((0, 1), int), np.zeros((0, 1))), 2, 2,
              lam=1.0, divergence="kl", beta=0.1)
    with pytest.raises(TypeError, match="Episodes"):
        r2pvi({"states": []}, 2, 2, lam=1.0, divergence="kl", beta=0.1)


def test_episodic_mdp_is_refused():
    P = np.array([[[0.5, 0.5]], [[0.0, 1.0]]])
    mdp = TabularMDP(P, [[-1.0], [0.0]], [1.0, 0.0], gamma=1.0, terminal=[1])
    with pytest.raises(ValueError, match="episodic"):
        robust_value_iteration(mdp, 1.0, "kl")
    with pytest.raises(ValueError, match="episodic"):
        robust_evaluate_policy(mdp, np.array([0, 0]), 1.0, "kl")
