"""tabular.odice: V-DICE gradients, the orthogonal projection and the three update rules."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabular import odice


def _central(f, x, h=1e-6):
    return np.array([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(x.size)])


def _chain_batch(seed=0, N=60, S=8):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, S, size=N)
    s_next = np.clip(s + rng.choice([-1, 1], size=N), 0, S - 1)
    r = (s_next == S - 1).astype(float)
    return odice.rbf_features(S, 4), s, r, s_next, rng.dirichlet(np.ones(N))


def _fstar(div, y):  # written out here, independently of tabular.lp.conjugate
    return (np.maximum(y, -2.0) + 2.0) ** 2 / 4.0 - 1.0 if div == "chi2" else np.exp(y - 1.0)


@pytest.mark.parametrize("div", ["chi2", "kl"])
def test_odice_gradients_match_central_differences(div):
    Phi, s, r, s_next, w = _chain_batch()
    gamma, lam, eta = 0.9, 0.8, 0.7
    theta0 = np.array([0.4, -1.2, 0.9, 0.3])
    g = odice.odice_gradients(theta0, Phi, s, r, s_next, w, gamma=gamma, lam=lam, eta=eta,
                             divergence=div)

    def forward(th):  # V(s') frozen at theta0
        return lam * w @ _fstar(div, r + gamma * Phi[s_next] @ theta0 - Phi[s] @ th)

    def backward(th):  # V(s) frozen at theta0
        return eta * lam * w @ _fstar(div, r + gamma * Phi[s_next] @ th - Phi[s] @ theta0)

    def loss(th):
        y = r + gamma * Phi[s_next] @ th - Phi[s] @ th
        return (1 - lam) * w @ (Phi[s] @ th) + lam * w @ _fstar(div, y)

    assert np.allclose(g.g_f, _central(forward, theta0), rtol=1e-6, atol=1e-8)
    assert np.allclose(g.g_b, _central(backward, theta0), rtol=1e-6, atol=1e-8)
    full = odice.odice_gradients(theta0, Phi, s, r, s_next, w, gamma=gamma, lam=lam,
                                divergence=div)
    assert np.allclose(full.g0 + full.g_f + full.g_b, _central(loss, theta0), rtol=1e-6,
                       atol=1e-8)
    assert odice.odice_loss(theta0, Phi, s, r, s_next, w, gamma=gamma, lam=lam,
                           divergence=div) == pytest.approx(loss(theta0), rel=1e-13)
    # planted: the backward gradient without its factor gamma is caught
    assert not np.allclose(g.g_b / gamma, _central(backward, theta0), rtol=1e-6, atol=1e-8)


def _cos(u, v):
    return abs(float(u @ v)) / (np.linalg.norm(u) * np.linalg.norm(v))


@given(seed=st.integers(0, 2**32 - 1), dim=st.integers(2, 8))
def test_projection_orthogonal_and_idempotent(seed, dim):
    rng = np.random.default_rng(seed)
    g_b, g_f = rng.normal(size=dim) * 10 ** rng.uniform(-3, 3), rng.normal(size=dim)
    g_perp = odice.orthogonal_projection(g_b, g_f)
    assert abs(g_perp @ g_f) <= 1e-9 * np.linalg.norm(g_f) * np.linalg.norm(g_b)
    again = odice.orthogonal_projection(g_perp, g_f)
    assert np.allclose(again, g_perp, rtol=0, atol=1e-12 * np.linalg.norm(g_b))
    # planted: half the parallel component removed is far from orthogonal
    half = g_b - 0.5 * (g_f @ g_b) / (g_f @ g_f) * g_f
    if _cos(g_b, g_f) > 1e-3:
        assert abs(half @ g_f) > 1e-9 * np.linalg.norm(g_f) * np.linalg.norm(g_b)


def test_orthogonality_along_a_run_and_planted_coefficient():
    Phi, s, r, s_next, w = _chain_batch(2)
    run = odice.odice_train(Phi, s, r, s_next, w, gamma=0.9, mode="orthogonal", n_steps=300)
    assert np.isfinite(run.theta).all()

    def worst(projection):
        out = 0.0
        for theta in run.theta[::10]:
            g = odice.odice_gradients(theta, Phi, s, r, s_next, w, gamma=0.9)
            g_perp = projection(g.g_b, g.g_f)
            out = max(out, _cos(g_perp, g.g_f) * np.linalg.norm(g_perp) / np.linalg.norm(g.g_b))
        return out

    assert worst(odice.orthogonal_projection) <= 1e-9
    # planted: half the parallel component removed
    assert worst(lambda g_b, g_f: g_b - 0.5 * (g_f @ g_b) / (g_f @ g_f) * g_f) > 1e-3
    # the run's steps are those of odice_direction, and its norms are recorded
    g = odice.odice_gradients(run.theta[5], Phi, s, r, s_next, w, gamma=0.9)
    step = odice.odice_direction(g, "orthogonal")
    assert np.allclose(run.theta[6], run.theta[5] - 0.1 * step, rtol=0, atol=1e-15)
    assert run.direction_norm[5] == pytest.approx(np.linalg.norm(step), rel=1e-14)


def test_eta_zero_is_the_semi_gradient_exactly():
    Phi, s, r, s_next, w = _chain_batch(3)
    theta = np.array([0.1, 2.0, -0.5, 1.0])
    g = odice.odice_gradients(theta, Phi, s, r, s_next, w, gamma=0.9, eta=0.0)
    assert np.array_equal(odice.odice_direction(g, "orthogonal"), odice.odice_direction(g, "semi"))
    runs = [odice.odice_train(Phi, s, r, s_next, w, gamma=0.9, mode=m, eta=0.0, n_steps=200).theta
            for m in ("orthogonal", "semi")]
    assert np.array_equal(*runs)
    # with eta = 1 the orthogonal iterates differ (the check is not vacuous)
    one = odice.odice_train(Phi, s, r, s_next, w, gamma=0.9, mode="orthogonal", n_steps=200).theta
    assert not np.array_equal(one, runs[1])


def test_true_mode_descends_the_loss():
    Phi, s, r, s_next, w = _chain_batch(4)
    run = odice.odice_train(Phi, s, r, s_next, w, gamma=0.9, mode="true", lr=0.05, n_steps=400)
    assert np.all(np.diff(run.loss) <= 1e-12)


def test_per_sample_tabular_projection_is_vacuous():
    """One-hot features: g_f,i ~ e_{s_i} and g_b,i ~ e_{s'_i}. Without self-loops the
    per-sample projection leaves g_b,i unchanged (orthogonal = true gradient); a self-loop's
    g_b,i is parallel to g_f,i and removed (its sample contributes the semi-gradient)."""
    S, gamma, lam = 6, 0.9, 0.8
    Phi = np.eye(S)
    s = np.array([0, 1, 2, 3, 4, 5, 5])
    s_next = np.array([1, 2, 3, 4, 5, 4, 5])  # the last transition is a self-loop
    r = np.array([0, 0, 0, 0, 1, 0, 1.0])
    w = np.full(7, 1 / 7)
    theta = np.linspace(-1, 1, S)
    true = odice.odice_direction(
        odice.odice_gradients(theta, Phi, s, r, s_next, w, gamma=gamma, lam=lam), "true")
    per_sample = odice.odice_per_sample_direction(theta, Phi, s, r, s_next, w, gamma=gamma,
                                                 lam=lam)
    delta = r[-1] + gamma * theta[5] - theta[5]
    loop_backward = w[-1] * lam * gamma * max(1 + delta / 2, 0) * np.eye(S)[5]
    assert np.allclose(per_sample, true - loop_backward, rtol=0, atol=1e-15)
    no_loop = slice(0, 6)
    g = odice.odice_gradients(theta, Phi, s[no_loop], r[no_loop], s_next[no_loop],
                             gamma=gamma, lam=lam)
    assert np.allclose(odice.odice_per_sample_direction(theta, Phi, s[no_loop], r[no_loop],
                                                       s_next[no_loop], gamma=gamma, lam=lam),
                       odice.odice_direction(g, "true"), rtol=0, atol=1e-15)
    # the whole-batch projection is not vacuous even for tabular features
    assert not np.allclose(odice.odice_direction(g, "orthogonal"), odice.odice_direction(g, "true"))


def test_odice_bad_input():
    Phi, s, r, s_next, w = _chain_batch()
    theta = np.zeros(4)
    with pytest.raises(ValueError, match=r"s_next\[0\] = 9 is not a row of Phi"):
        odice.odice_gradients(theta, Phi, s, r, np.full_like(s, 9), gamma=0.9)
    with pytest.raises(ValueError, match="weights sums to"):
        odice.odice_gradients(theta, Phi, s, r, s_next, 2 * w, gamma=0.9)
    with pytest.raises(ValueError, match="theta has shape"):
        odice.odice_gradients(np.zeros(3), Phi, s, r, s_next, gamma=0.9)
    with pytest.raises(ValueError, match=r"lam = 1.0 must lie in \(0, 1\)"):
        odice.odice_gradients(theta, Phi, s, r, s_next, gamma=0.9, lam=1.0)
    with pytest.raises(ValueError, match="mode = 'sideways'"):
        odice.odice_train(Phi, s, r, s_next, gamma=0.9, mode="sideways")
    with pytest.raises(TypeError, match="integer array"):
        odice.odice_gradients(theta, Phi, s.astype(float), r, s_next, gamma=0.9)
    with pytest.raises(ValueError, match="same 1-d or 2-d shape"):
        odice.orthogonal_projection(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="dim = 1 must be at least 2"):
        odice.rbf_features(10, 1)


@pytest.mark.parametrize("div", ["chi2", "kl"])
def test_train_kernel_matches_numpy_reference(div):
    Phi, s, r, s_next, w = _chain_batch(5)
    theta0 = np.array([0.2, -0.1, 0.3, 0.0])
    for mode_id, mode in enumerate(odice.ODICE_MODES):
        args = (Phi, s, r, s_next, w, 0.9, 0.8, 0.7, 0.05, 150)
        kernel = odice._train_kernel(*args, mode_id, div == "kl", theta0)
        reference = odice._train_numpy(*args, mode, div, theta0)
        for k, ref in zip(kernel, reference):
            assert np.allclose(k, ref, rtol=1e-12, atol=1e-13), (mode, div)
        # planted: a kernel step with another rule is caught
        other = odice._train_kernel(*args, (mode_id + 1) % 3, div == "kl", theta0)
        assert not np.allclose(other[0], reference[0], rtol=1e-12, atol=1e-13)


def test_train_stops_at_non_finite_gradients():
    Phi, s, r, s_next, w = _chain_batch(6)
    run = odice.odice_train(Phi, s, r * 1e3, s_next, w, gamma=0.9, mode="true", lr=50.0,
                            n_steps=50, divergence="kl")
    bad = ~np.isfinite(run.loss)
    assert bad.any() and np.isnan(run.theta[bad]).all()
    first = int(np.flatnonzero(bad)[0])
    assert np.isfinite(run.theta[:first]).all() and bad[first:].all()
