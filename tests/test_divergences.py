"""DPH-RL's f-divergences: generator identities, gradient weights, exact regularised optima (closed forms and roots)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabular.rlvr import divergences as dv
from tabular.rlvr.kl import posterior_leaf_probs
from tabular.strategies import tree_mdps, tree_policies
from tabular.tree import leaf_probs, logit_gradient, reach_probs

LOG2 = np.log(2.0)


@st.composite
def distributions(draw, n=None, min_value=1e-3):
    n = n or draw(st.integers(2, 8))
    w = np.array(draw(st.lists(st.floats(min_value, 1.0), min_size=n, max_size=n)))
    return w / w.sum()


@st.composite
def problems(draw, binary=None):
    """(pi0, r): a full-support base and rewards (binary with at least one correct, or graded)."""
    pi0 = draw(distributions())
    n = pi0.size
    if binary if binary is not None else draw(st.booleans()):
        r = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), float)
        r[draw(st.integers(0, n - 1))] = 1.0
    else:
        r = np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    return pi0, r


def _kl(p, q):
    m = p > 0
    return float(np.sum(p[m] * np.log(p[m] / q[m])))


@given(st.data())
def test_generator_identities_by_leaf_sums(data):
    pi0 = data.draw(distributions(n=6))
    pi = data.draw(distributions(n=6))
    u = pi / pi0
    forward = _kl(pi0, pi)
    assert np.sum(pi0 * dv.generator(u, "forward_kl")) == pytest.approx(forward, rel=0, abs=1e-12)
    assert np.sum(pi0 * dv.generator(u, "forward_kl_lowvar")) == pytest.approx(forward, rel=0, abs=1e-12)
    assert np.sum(pi0 * dv.generator(u, "reverse_kl")) == pytest.approx(_kl(pi, pi0), rel=0, abs=1e-12)
    M = (pi + pi0) / 2
    js2 = _kl(pi, M) + _kl(pi0, M)
    assert np.sum(pi0 * dv.generator(u, "js")) == pytest.approx(js2, rel=0, abs=1e-12)
    assert -1e-15 <= js2 <= 2 * LOG2
    assert float(dv.js(pi, pi0)) == pytest.approx(js2 / 2, rel=0, abs=1e-12)
    for kind, target in (("forward_kl", forward), ("js", js2), ("reverse_kl", _kl(pi, pi0))):
        assert float(dv.f_divergence(pi, pi0, kind)) == pytest.approx(target, rel=0, abs=1e-12)


def test_js_generator_with_a_planted_missing_term_breaks_the_identity():
    pi0, pi = np.array([0.2, 0.3, 0.5]), np.array([0.6, 0.3, 0.1])
    u = pi / pi0
    wrong = u * np.log(u) - u * np.log((u + 1) / 2)  # "(u + 1)" written as "u"
    M = (pi + pi0) / 2
    assert abs(np.sum(pi0 * wrong) - (_kl(pi, M) + _kl(pi0, M))) > 1e-3


def test_generators_convex_zero_at_one_and_divergence_zero_iff_equal():
    u = np.linspace(0.01, 20, 4001)
    for kind in dv.KINDS:
        f = dv.generator(u, kind)
        assert np.all(np.diff(f, 2) >= -1e-12)
        assert dv.generator(1.0, kind) == 0.0
    rng = np.random.default_rng(0)
    pi0 = rng.dirichlet(np.ones(7))
    for kind in dv.KINDS:
        assert abs(float(dv.f_divergence(pi0, pi0, kind))) <= 1e-15
        for _ in range(50):
            assert dv.f_divergence(rng.dirichlet(np.ones(7)), pi0, kind) > 0


def test_monte_carlo_estimates_within_four_standard_errors():
    rng = np.random.default_rng(12)
    pi0 = rng.dirichlet(np.ones(10))
    pi = rng.dirichlet(np.ones(10))
    y = rng.choice(10, size=20_000, p=pi0)
    for kind in dv.KINDS:
        vals = dv.generator(pi[y] / pi0[y], kind)
        se = vals.std(ddof=1) / np.sqrt(vals.size)
        assert abs(vals.mean() - float(dv.f_divergence(pi, pi0, kind))) <= 4 * se
    # planted error: forward KL estimated on samples of pi instead of pi0
    y_wrong = rng.choice(10, size=20_000, p=pi)
    vals = dv.generator(pi[y_wrong] / pi0[y_wrong], "forward_kl")
    se = vals.std(ddof=1) / np.sqrt(vals.size)
    assert abs(vals.mean() - float(dv.f_divergence(pi, pi0, "forward_kl"))) > 4 * se


@pytest.mark.parametrize("kind", dv.KINDS)
def test_gradient_weights_against_central_differences(kind):
    rng = np.random.default_rng(1)
    z = rng.normal(size=5)
    pi0 = rng.dirichlet(np.ones(5))

    def softmax(v):
        w = np.exp(v - v.max())
        return w / w.sum()

    pi = softmax(z)
    for y in range(5):
        w = dv.generator_gradient_weight(pi[y] / pi0[y], kind)
        analytic = w * ((np.arange(5) == y) - pi)
        h = 1e-6
        num = np.array([(dv.generator(softmax(z + h * e)[y] / pi0[y], kind)
                         - dv.generator(softmax(z - h * e)[y] / pi0[y], kind)) / (2 * h) for e in np.eye(5)])
        assert np.allclose(analytic, num, rtol=1e-7, atol=1e-9)


@given(tree_mdps(max_leaves=64, eos=False), st.data())
def test_exact_forward_kl_gradient_on_a_tree_is_reach_times_difference(tree, data):
    """d KL(pi0 || pi_theta) / dz[s] = d0(s) (pi_theta(.|s) - pi0(.|s)), d0 = pi0's reach."""
    pi_theta = data.draw(tree_policies(tree)).pi(tree)
    pi0 = data.draw(tree_policies(tree)).pi(tree)
    p, p0 = leaf_probs(tree, pi_theta), leaf_probs(tree, pi0)
    G = dv.divergence_gradient(p, p0, "forward_kl")
    g = logit_gradient(tree, pi_theta, G)
    expected = reach_probs(tree, pi0)[..., None] * (pi_theta - pi0)
    assert np.allclose(g, expected, rtol=0, atol=1e-12)


def _forward_closed_form(pi0, r, eta):
    """lam = ((1 + eta) + sqrt((1 + eta)^2 - 4 eta (1 - p))) / 2; delta = lam - 1 solves
    delta^2 + (1 - eta) delta - eta p = 0, taken in cancellation-free form."""
    p = pi0[r == 1].sum()
    delta = 2 * eta * p / ((1 - eta) + np.sqrt((1 - eta) ** 2 + 4 * eta * p))
    lam = 1 + delta
    assert lam == pytest.approx(((1 + eta) + np.sqrt((1 + eta) ** 2 - 4 * eta * (1 - p))) / 2, rel=1e-12)
    return eta * pi0 / np.where(r == 1, delta, lam), lam


def _js_closed_form(pi0, r, eta):
    p = pi0[r == 1].sum()
    a = np.exp(-1 / eta)
    b = 1 + p + a * (2 - p)
    t1 = 4 / (b + np.sqrt(b * b - 8 * a))  # the root with t < 2 (u finite), cancellation-free
    t = np.where(r == 1, t1, a * t1)
    return pi0 * t / (2 - t)


@given(problems(binary=True), st.sampled_from([0.01, 0.03, 0.1, 0.5, 2.0]))
def test_binary_optima_match_closed_forms(problem, eta):
    pi0, r = problem
    fwd = dv.forward_kl_optimum(pi0, r, eta)
    closed, lam = _forward_closed_form(pi0, r, eta)
    assert np.allclose(fwd.pi, closed, rtol=1e-12, atol=1e-15)
    if r.min() == 0:
        assert float(fwd.lam) == pytest.approx(lam, rel=1e-12)
        ratio = fwd.pi / pi0
        assert np.ptp(ratio[r == 1]) <= 1e-12 and np.ptp(ratio[r == 0]) <= 1e-12
        assert ratio[r == 1][0] / ratio[r == 0][0] == pytest.approx(lam / (lam - 1), rel=1e-10)
    assert np.allclose(dv.js_optimum(pi0, r, eta).pi, _js_closed_form(pi0, r, eta), rtol=1e-10, atol=1e-15)


def test_closed_form_check_catches_the_wrong_root():
    pi0, r = np.array([0.1, 0.2, 0.7]), np.array([1.0, 0.0, 0.0])
    eta = 0.1
    p = 0.1
    lam_small = ((1 + eta) - np.sqrt((1 + eta) ** 2 - 4 * eta * (1 - p))) / 2
    assert not np.allclose(dv.forward_kl_optimum(pi0, r, eta).pi, eta * pi0 / (lam_small - r), rtol=0, atol=1e-3)


def _random_policies(rng, pi0, opt, n=200):
    out = [rng.dirichlet(np.ones(pi0.size)) for _ in range(n // 2)]
    for _ in range(n - n // 2):  # small perturbations of the optimum, on the simplex
        z = np.log(opt) + rng.normal(0, rng.choice([1e-4, 1e-2, 0.3]), pi0.size)
        w = np.exp(z - z.max())
        out.append(w / w.sum())
    return out


@given(problems(), st.sampled_from([0.05, 0.3, 1.0]), st.sampled_from(["forward_kl", "js", "reverse_kl"]))
def test_optima_beat_random_and_perturbed_policies(problem, eta, kind):
    pi0, r = problem
    solve = {"forward_kl": dv.forward_kl_optimum, "js": dv.js_optimum,
             "reverse_kl": dv.reverse_kl_optimum}[kind]
    opt = solve(pi0, r, eta)
    assert float(opt.residual) <= 1e-12
    best = float(dv.regularized_objective(opt.pi, pi0, r, eta, kind))
    rng = np.random.default_rng(0)
    for pi in _random_policies(rng, pi0, opt.pi):
        assert float(dv.regularized_objective(pi, pi0, r, eta, kind)) <= best + 1e-12
    # stationarity: r - eta f'(u) is the same constant (the multiplier) on the whole support
    grad = dv.divergence_gradient(opt.pi, pi0, kind)
    assert np.ptp(r - eta * grad) <= 1e-9 * max(1.0, abs(float(opt.lam)))
    # within each reward level, pi / pi0 is constant
    for level in np.unique(r):
        assert np.ptp((opt.pi / pi0)[r == level]) <= 1e-12 * (opt.pi / pi0).max()


def test_optimality_check_catches_a_mis_tilted_policy():
    """Planted error: the forward-KL 'optimum' with eta halved is beaten by the true one."""
    pi0, r = np.array([0.05, 0.15, 0.3, 0.5]), np.array([1.0, 0.0, 1.0, 0.0])
    eta = 0.3
    true = float(dv.regularized_objective(dv.forward_kl_optimum(pi0, r, eta).pi, pi0, r, eta, "forward_kl"))
    planted = dv.forward_kl_optimum(pi0, r, eta / 2).pi
    assert float(dv.regularized_objective(planted, pi0, r, eta, "forward_kl")) < true - 1e-6


def test_support_kept_and_forward_kl_infinite_at_zero():
    pi0 = np.array([0.4, 0.0, 0.3, 0.2, 0.1])  # answer 1 masked in the base
    r = np.array([0.0, 1.0, 1.0, 0.0, 0.0])
    for solve in (dv.forward_kl_optimum, dv.js_optimum, dv.reverse_kl_optimum):
        pi = solve(pi0, r, 0.05).pi
        assert pi[1] == 0.0 and np.all(pi[pi0 > 0] > 0)
    assert dv.generator(0.0, "forward_kl") == np.inf
    assert float(dv.f_divergence(np.array([0.0, 1.0]), np.array([0.5, 0.5]), "forward_kl")) == np.inf
    # mass outside supp(pi0): free for forward KL, log 2 per unit for JS, infinite for reverse
    pi = np.array([0.2, 0.2, 0.3, 0.2, 0.1])
    inside = _kl(pi0[pi0 > 0], pi[pi0 > 0])
    assert float(dv.f_divergence(pi, pi0, "forward_kl")) == pytest.approx(inside, rel=0, abs=1e-15)
    assert float(dv.f_divergence(pi, pi0, "reverse_kl")) == np.inf
    u = pi[pi0 > 0] / pi0[pi0 > 0]
    js_in = np.sum(pi0[pi0 > 0] * dv.generator(u, "js"))
    assert float(dv.f_divergence(pi, pi0, "js")) == pytest.approx(js_in + 0.2 * LOG2, rel=0, abs=1e-15)
    M = (pi + pi0) / 2
    assert float(dv.f_divergence(pi, pi0, "js")) == pytest.approx(_kl(pi, M) + _kl(pi0, M), rel=0, abs=1e-12)


@given(tree_mdps(max_leaves=64, eos=False), st.data(), st.sampled_from([0.1, 0.5, 2.0]))
def test_reverse_kl_optimum_equals_the_tree_posterior(tree, data, beta):
    pi0 = data.draw(tree_policies(tree)).pi(tree)
    p0 = leaf_probs(tree, pi0)
    post, _ = posterior_leaf_probs(tree, pi0, beta)
    assert np.allclose(dv.reverse_kl_optimum(p0, tree.R, beta).pi, post, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind,f_prime_inf", [("forward_kl", 0.0), ("forward_kl_lowvar", 1.0),
                                               ("js", LOG2), ("reverse_kl", np.inf)])
def test_gradient_outside_the_base_support_is_f_prime_at_infinity(kind, f_prime_inf):
    """Moving mass h from answer 0 (in supp pi0) to answer 1 (pi0 = 0) changes D_f at rate
    dD/dpi(1) - dD/dpi(0): checked against a central difference of f_divergence itself."""
    pi0 = np.array([0.5, 0.0, 0.3, 0.2])
    pi = np.array([0.4, 0.1, 0.3, 0.2])
    grad = dv.divergence_gradient(pi, pi0, kind)
    assert grad[1] == f_prime_inf
    if np.isfinite(f_prime_inf):
        h = 1e-6
        move = np.array([-1.0, 1.0, 0.0, 0.0])
        num = (float(dv.f_divergence(pi + h * move, pi0, kind))
               - float(dv.f_divergence(pi - h * move, pi0, kind))) / (2 * h)
        assert grad @ move == pytest.approx(num, rel=1e-7, abs=1e-9)


def test_outside_support_check_catches_a_zero_gradient():
    """Planted error: returning 0 where pi0 = 0 (the old convention) misses JS's log 2."""
    pi0, pi = np.array([0.5, 0.0, 0.5]), np.array([0.4, 0.1, 0.5])
    move, h = np.array([-1.0, 1.0, 0.0]), 1e-6
    num = (float(dv.f_divergence(pi + h * move, pi0, "js"))
           - float(dv.f_divergence(pi - h * move, pi0, "js"))) / (2 * h)
    zeroed = np.where(pi0 > 0, dv.divergence_gradient(pi, pi0, "js"), 0.0)
    assert abs(zeroed @ move - num) > 0.1


def test_stated_underflow_limit_of_the_optima():
    """The documented float64 limit: with gap / eta = 1000 > 745, JS and reverse-KL optima
    give the wrong answer probability exactly 0 (inside supp pi0); forward KL stays > 0; at
    gap / eta = 500 all three are > 0."""
    pi0, r = np.array([0.5, 0.5]), np.array([1.0, 0.0])
    for eta, js_zero in ((1e-3, True), (2e-3, False)):
        assert (dv.js_optimum(pi0, r, eta).pi[1] == 0.0) == js_zero
        assert (dv.reverse_kl_optimum(pi0, r, eta).pi[1] == 0.0) == js_zero
        assert dv.forward_kl_optimum(pi0, r, eta).pi[1] > 0


def test_bad_input():
    with pytest.raises(ValueError, match="kind"):
        dv.generator(1.0, "hellinger")
    with pytest.raises(ValueError, match="eta"):
        dv.forward_kl_optimum([0.5, 0.5], [1, 0], 0.0)
    with pytest.raises(ValueError, match="sums to"):
        dv.js_optimum([0.5, 0.6], [1, 0], 1.0)
    with pytest.raises(ValueError, match="forward KL is infinite"):
        dv.divergence_gradient([0.0, 1.0], [0.5, 0.5], "forward_kl")
