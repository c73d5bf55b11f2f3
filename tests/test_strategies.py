"""Hypothesis strategies: every drawn MDP is valid, of the requested kind and within the requested ranges."""
import numpy as np
import pytest
from hypothesis import find, given
from hypothesis import strategies as st

from tabular.mdp import TabularMDP, validate_policy
from tabular.strategies import mdps, policies


def check_common(m, S_range=(1, 6), A_range=(1, 4), reward_range=(-1.0, 1.0)):
    assert isinstance(m, TabularMDP)
    assert S_range[0] <= m.S <= S_range[1] and A_range[0] <= m.A <= A_range[1]
    np.testing.assert_allclose(m.P.sum(axis=-1), 1.0, atol=1e-14)
    np.testing.assert_allclose(m.mu0.sum(), 1.0, atol=1e-14)
    assert np.all(m.P >= 0) and np.all(m.mu0 >= 0)
    assert np.all((reward_range[0] <= m.R) & (m.R <= reward_range[1]))
    for s in np.flatnonzero(m.terminal):
        assert np.all(m.P[..., s, :, s] == 1.0) and np.all(m.R[..., s, :] == 0.0)


@given(mdps())
def test_discounted(m):
    check_common(m)
    assert m.kind == "discounted" and 0.5 <= m.gamma <= 0.99 and m.H is None
    assert not m.terminal.any()


@given(mdps(kind="finite", gamma=st.floats(0.0, 1.0), time_inhomogeneous=st.booleans()))
def test_finite(m):
    check_common(m)
    assert m.kind == "finite" and 1 <= m.H <= 6 and 0.0 <= m.gamma <= 1.0
    if m.time_inhomogeneous:
        assert m.P.shape == (m.H, m.S, m.A, m.S) and m.R.shape == (m.H, m.S, m.A)


@given(mdps(kind="episodic", reward_range=(-2.0, 0.5)))
def test_episodic(m):
    check_common(m, reward_range=(-2.0, 0.5))
    assert m.kind == "episodic" and m.gamma == 1.0 and m.terminal.any()
    R_live = m.R[~m.terminal]
    assert np.all((-2.0 <= R_live) & (R_live <= -0.01))


@given(mdps(S=3, A=2, kind="finite", H=4, time_inhomogeneous=True, sparse=False,
            reward_range=(0.0, 1.0)))
def test_plain_values_are_used_as_is(m):
    assert (m.S, m.A, m.H) == (3, 2, 4) and m.P.ndim == 4
    assert np.all(m.P > 0) and np.all(m.mu0 > 0)           # dense when sparse=False
    assert np.all((0.0 <= m.R) & (m.R <= 1.0))


@given(mdps(kind=st.sampled_from(["discounted", "finite"]), n_terminal=1, S=st.integers(2, 5)))
def test_terminal_states_in_other_kinds(m):
    check_common(m)
    assert m.terminal.sum() == 1


def test_sparse_rows_occur():
    m = find(mdps(S=4, sparse=True), lambda m: (m.P == 0).any())
    assert (m.P == 0).any()
    m = find(mdps(S=4, kind="episodic", sparse=True), lambda m: (m.P[~m.terminal] == 0).any())
    assert (m.P[~m.terminal] == 0).any()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kind="average"), "kind = 'average'"),
        (dict(time_inhomogeneous=True), "need kind='finite'"),
        (dict(kind="episodic", reward_range=(0.0, 1.0)), "lo <= -0.01"),
        (dict(kind="episodic", n_terminal=0), "n_terminal >= 1"),
        (dict(S=2, n_terminal=3), r"n_terminal = 3 must lie in \[0, S = 2\]"),
    ],
)
def test_bad_arguments_raise_when_drawn(kwargs, match):
    @given(st.data())
    def draw(data):
        with pytest.raises(ValueError, match=match):
            data.draw(mdps(**kwargs))

    draw()


@given(st.data())
def test_policies_are_valid(data):
    m = data.draw(mdps(kind=st.sampled_from(["discounted", "finite", "episodic"])))
    pi = data.draw(policies(m))
    out = validate_policy(m, pi)
    if pi.dtype.kind == "i":
        assert pi.shape in ((m.S,), (m.H, m.S)) and np.all((0 <= pi) & (pi < m.A))
    else:
        assert pi.shape in ((m.S, m.A), (m.H, m.S, m.A))
        np.testing.assert_allclose(pi.sum(axis=-1), 1.0, atol=1e-14)
    assert out.shape[-2:] == (m.S, m.A)


def test_policies_cover_every_shape():
    m = TabularMDP(np.full((3, 2, 3), 1 / 3), np.zeros((3, 2)), np.full(3, 1 / 3), H=4)
    shapes = {(3,): np.int64, (4, 3): np.int64, (3, 2): np.float64, (4, 3, 2): np.float64}
    for shape, dtype in shapes.items():
        pi = find(policies(m), lambda p, shape=shape: p.shape == shape)
        assert pi.dtype == dtype
    only_det = find(policies(m, stochastic=False), lambda p: True)
    assert only_det.dtype == np.int64
    with pytest.raises(TypeError, match="TabularMDP"):
        policies("not an mdp")
