"""tabular.fdvl: f-DVL closed forms against gradient descent and oracles."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from tabular import fdvl


def _random_instance(seed, S, A):
    rng = np.random.default_rng(seed)
    Q = rng.uniform(-3.0, 3.0, size=(S, A))
    mu = rng.dirichlet(np.full(A, 0.7), size=S)
    mu[:, 0] = np.where(rng.uniform(size=S) < 0.3, 0.0, mu[:, 0])  # some zeros
    return Q, mu / mu.sum(axis=1, keepdims=True)


def _agrees(V1, V2, tol=1e-4) -> bool:
    return bool(np.max(np.abs(V1 - V2)) <= tol)


@settings(max_examples=8)
@given(seed=st.integers(0, 2**32 - 1), S=st.integers(1, 3), A=st.integers(2, 6),
       lam=st.floats(0.55, 0.97), beta=st.floats(0.1, 3.0))
def test_closed_forms_equal_gradient_descent(seed, S, A, lam, beta):
    Q, mu = _random_instance(seed, S, A)
    for divergence, kw in (("tv", {"lam": lam}), ("chi2", {"lam": lam}),
                           ("chi2", {"lam": 1.0 - lam}), ("kl", {"beta": beta})):
        closed = fdvl.fdvl_value(Q, mu, divergence, **kw)
        descent = fdvl.fdvl_value_descent(Q, mu, divergence, **kw)
        assert _agrees(closed, descent), (divergence, kw, closed, descent)


def test_agreement_check_catches_planted_closed_forms():
    Q, mu = _random_instance(7, 3, 8)
    lam, beta = 0.8, 0.5
    # TV at the wrong level: the quantile at level lam' = 0.6 instead of (2 lam' - 1) / lam'.
    wrong_tv = fdvl.fdvl_value(Q, mu, "tv", lam=1.0 / (2.0 - 0.6))
    # chi2 with slope (1 + (Q - V)) instead of (1 + (Q - V) / 2).
    wrong_chi2 = np.array([
        brentq(lambda v, q=q, m=m: lam * m @ np.maximum(1.0 + q - v, 0.0) - (1.0 - lam),
               q.min() - 10.0, q.max() + 10.0) for q, m in zip(Q, mu)])
    # KL without the temperature inside the exponential.
    wrong_kl = beta * np.log((mu * np.exp(Q)).sum(axis=1))
    cases = (("tv", {"lam": 0.6}, wrong_tv), ("chi2", {"lam": lam}, wrong_chi2),
             ("kl", {"beta": beta}, wrong_kl))
    for divergence, kw, wrong in cases:
        descent = fdvl.fdvl_value_descent(Q, mu, divergence, **kw)
        assert _agrees(fdvl.fdvl_value(Q, mu, divergence, **kw), descent)
        assert not _agrees(wrong, descent), divergence


def test_closed_form_oracles():
    # KL: beta log E exp(Q / beta) with Q = (0, log 3), uniform mu, beta = 1 is log 2.
    V = fdvl.fdvl_value([[0.0, math.log(3.0)]], [[0.5, 0.5]], "kl", beta=1.0)
    assert V[0] == pytest.approx(math.log(2.0), rel=1e-14)
    # TV at lam = 1 is the max over supp(mu): the action with mu = 0 does not count.
    V = fdvl.fdvl_value([[1.0, 5.0, 2.0]], [[0.5, 0.0, 0.5]], "tv", lam=1.0)
    assert V[0] == 2.0
    # TV at lam = 2/3: level 1/2, Pr(Q > V) <= 1/2 first holds at the atom 2 of (1, 2, 3, 4).
    V = fdvl.fdvl_value([[4.0, 1.0, 3.0, 2.0]], [[0.3, 0.2, 0.3, 0.2]], "tv", lam=2.0 / 3.0)
    assert V[0] == 3.0  # Pr(Q > 3) = 0.3 <= 0.5 < Pr(Q > 2) = 0.6
    # chi2 with every term active: V = E_mu Q + 2 - 2 (1 - lam) / lam.
    Q, mu, lam = np.array([[0.1, 0.3, 0.2]]), np.array([[0.2, 0.5, 0.3]]), 0.3
    V = fdvl.fdvl_value(Q, mu, "chi2", lam=lam)
    assert V[0] == pytest.approx(0.23 + 2.0 - 2.0 * 0.7 / 0.3, rel=1e-12)


def test_chi2_limit_is_max_q_plus_two_audit_note():
    """Sheet audit: chi2 with f*_p tends to max Q + 2 (2.90 for max Q = 0.91, lam = 0.999)."""
    rng = np.random.default_rng(3)
    Q = rng.uniform(0.0, 0.85, size=(1, 8))
    Q[0, 3] = 0.91
    mu = np.full((1, 8), 1.0 / 8.0)
    for lam in (0.999, 0.9999):
        V = fdvl.fdvl_value(Q, mu, "chi2", lam=lam)[0]
        # only a* = 3 is active: lam mu(a*) (1 + (0.91 - V) / 2) = 1 - lam
        assert V == pytest.approx(0.91 + 2.0 - 2.0 * (1.0 - lam) / (lam / 8.0), rel=1e-12)
    assert fdvl.fdvl_value(Q, mu, "chi2", lam=0.999)[0] == pytest.approx(2.90, abs=0.01)
    assert fdvl.fdvl_value(Q, mu, "chi2", lam=0.9999)[0] - 0.91 > 1.99
    # TV and KL do tend to max Q.
    assert fdvl.fdvl_value(Q, mu, "tv", lam=1.0)[0] == 0.91
    assert fdvl.fdvl_value(Q, mu, "kl", beta=1e-3)[0] == pytest.approx(0.91, abs=1e-3 * math.log(8) + 1e-12)


def _central(f, x, h=1e-6):
    return np.array([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(x.size)])


@pytest.mark.parametrize("divergence, kw", [("tv", {"lam": 0.7}), ("chi2", {"lam": 0.7}),
                                            ("kl", {"beta": 0.8})])
def test_fdvl_gradient_matches_central_differences(divergence, kw):
    Q, mu = _random_instance(11, 3, 4)
    V = np.array([0.3, -0.7, 1.1])  # off every atom of Q (TV kinks)
    numeric = _central(lambda v: fdvl.fdvl_loss(v, Q, mu, divergence, **kw).sum(), V)
    grad = fdvl.fdvl_loss_grad(V, Q, mu, divergence, **kw)
    assert np.allclose(grad, numeric, rtol=1e-6, atol=1e-7)
    assert not np.allclose(2.0 * grad, numeric, rtol=1e-6, atol=1e-7)  # planted scale


def test_fdvl_bad_input():
    Q, mu = np.zeros((2, 3)), np.full((2, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"row mu\[1, :\] sums to"):
        fdvl.fdvl_value(Q, [[1 / 3] * 3, [0.5, 0.5, 0.5]], "tv", lam=0.8)
    with pytest.raises(ValueError, match=r"lam = 0.5 must lie in \(1/2, 1\]"):
        fdvl.fdvl_value(Q, mu, "tv", lam=0.5)
    with pytest.raises(ValueError, match="lam = 1.0 must lie in"):
        fdvl.fdvl_value(Q, mu, "chi2", lam=1.0)
    with pytest.raises(ValueError, match="indexed by beta"):
        fdvl.fdvl_value(Q, mu, "kl", lam=0.8, beta=1.0)
    with pytest.raises(ValueError, match="beta = -1.0 must be positive"):
        fdvl.fdvl_value(Q, mu, "kl", beta=-1.0)
    with pytest.raises(ValueError, match="must be one of"):
        fdvl.fdvl_value(Q, mu, "hellinger", lam=0.8)
    with pytest.raises(ValueError, match="mu has shape"):
        fdvl.fdvl_value(Q, mu[:1], "tv", lam=0.8)
    with pytest.raises(ValueError, match=r"Q\[0, 1\] = nan is not finite"):
        fdvl.fdvl_value([[0.0, np.nan, 0.0]], [[1 / 3] * 3], "tv", lam=0.8)
    with pytest.raises(TypeError, match="lam must be a real number"):
        fdvl.fdvl_value(Q, mu, "tv", lam="0.8")
    with pytest.raises(ValueError, match="V has shape"):
        fdvl.fdvl_loss(np.zeros(3), Q, mu, "tv", lam=0.8)
