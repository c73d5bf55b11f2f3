"""TabularMDP: validation paths, kinds, immutability, the SSP check, proper policies, policy validation."""
import pickle

import numpy as np
import pytest
from hypothesis import given

from tabular.mdp import TabularMDP, normalize_rows, proper_policy, validate_policy
from tabular.strategies import mdps

EPS64 = np.finfo(np.float64).eps
EPS32 = np.finfo(np.float32).eps


def uniform_mdp(S=3, A=2, **kwargs):
    P = np.full((S, A, S), 1.0 / S)
    R = np.arange(S * A, dtype=float).reshape(S, A) - 2.0
    mu0 = np.full(S, 1.0 / S)
    kwargs.setdefault("gamma", 0.9)
    return TabularMDP(P, R, mu0, **kwargs)


def line_to_terminal(S=4):
    """States 0 -> 1 -> ... -> S-1 (terminal), one action, reward -1 per step."""
    P = np.zeros((S, 1, S))
    for s in range(S - 1):
        P[s, 0, s + 1] = 1.0
    P[S - 1, 0, S - 1] = 1.0
    R = -np.ones((S, 1))
    R[S - 1] = 0.0
    return P, R, np.eye(S)[0]


def ssp(P, R, terminal):
    S = P.shape[0]
    return TabularMDP(P, R, np.full(S, 1.0 / S), gamma=1.0, terminal=terminal)


# --- construction and attributes ---------------------------------------------------------

def test_attributes_and_kinds():
    m = uniform_mdp()
    assert (m.S, m.A, m.kind, m.H, m.gamma) == (3, 2, "discounted", None, 0.9)
    assert m.P.dtype == m.R.dtype == m.mu0.dtype == np.float64
    assert not m.terminal.any() and m.terminal.shape == (3,)
    assert not m.time_inhomogeneous
    assert m.atol == 16 * 3 * EPS64
    f = uniform_mdp(H=5, gamma=1.0)
    assert f.kind == "finite" and f.H == 5
    P, R, mu0 = line_to_terminal()
    e = TabularMDP(P, R, mu0, terminal=[3])
    assert e.kind == "episodic" and e.terminal.tolist() == [False, False, False, True]
    assert repr(e) == "TabularMDP(kind='episodic', S=4, A=1, gamma=1.0, n_terminal=1)"
    assert repr(f) == "TabularMDP(kind='finite', S=3, A=2, H=5, gamma=1.0)"


def test_terminal_mask_and_list_agree():
    P, R, mu0 = line_to_terminal()
    a = TabularMDP(P, R, mu0, terminal=[3])
    b = TabularMDP(P, R, mu0, terminal=np.array([False, False, False, True]))
    assert np.array_equal(a.terminal, b.terminal)
    with pytest.raises(ValueError, match="terminal state 7 is not a state"):
        TabularMDP(P, R, mu0, terminal=[7])
    with pytest.raises(ValueError, match=r"terminal mask has shape \(2,\)"):
        TabularMDP(P, R, mu0, terminal=np.array([True, False]))


def test_time_inhomogeneous_and_step_accessors():
    H, S, A = 3, 2, 2
    P = np.zeros((H, S, A, S))
    P[:, :, :, 0] = 1.0
    P[1, :, :, :] = 0.5
    R = np.arange(H * S * A, dtype=float).reshape(H, S, A)
    m = TabularMDP(P, R, [1.0, 0.0], H=H)
    assert m.time_inhomogeneous and m.kind == "finite"
    assert np.array_equal(m.P_h(1), np.full((S, A, S), 0.5))
    assert np.array_equal(m.R_h(2), R[2])
    stationary = uniform_mdp(H=4)
    assert stationary.P_h(0) is stationary.P_h(3) is stationary.P
    assert stationary.R_h(2) is stationary.R
    with pytest.raises(ValueError, match="h = 3"):
        m.P_h(3)
    with pytest.raises(ValueError, match="h = -1"):
        m.R_h(-1)
    # A stationary P with a time-indexed R is time-inhomogeneous too.
    mixed = TabularMDP(P[0], R, [1.0, 0.0], H=H)
    assert mixed.time_inhomogeneous and mixed.P_h(2) is mixed.P


def test_inputs_are_copied_and_immutable():
    P = np.full((2, 1, 2), 0.5)
    m = TabularMDP(P, np.zeros((2, 1)), [0.5, 0.5], gamma=0.5)
    P[0, 0, 0] = 0.9
    assert m.P[0, 0, 0] == 0.5
    for arr in (m.P, m.R, m.mu0, m.terminal):
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 1
    with pytest.raises(AttributeError, match="immutable"):
        m.gamma = 0.1
    with pytest.raises(AttributeError):
        m.P = P


def test_pickle_and_replace():
    m = uniform_mdp()
    m2 = pickle.loads(pickle.dumps(m))
    assert np.array_equal(m2.P, m.P) and m2.gamma == m.gamma and m2.atol == m.atol
    r = m.replace(gamma=0.5)
    assert r.gamma == 0.5 and m.gamma == 0.9 and np.array_equal(r.R, m.R)
    with pytest.raises(ValueError, match="gamma = 1 with neither"):
        m.replace(gamma=1.0)
    with pytest.raises(TypeError, match="unknown fields"):
        m.replace(discount=0.5)


# --- validation errors -------------------------------------------------------------------

@pytest.mark.parametrize(
    "P_shape, R_shape, mu0_shape, H, match",
    [
        ((3, 3), (3, 2), (3,), None, r"P must have shape"),
        ((3, 2, 4), (3, 2), (3,), None, r"last axis must have length S = 3"),
        ((3, 0, 3), (3, 0), (3,), None, r"A >= 1"),
        ((3, 2, 3), (3, 3), (3,), None, r"R has shape \(3, 3\)"),
        ((3, 2, 3), (3,), (3,), None, r"R must have shape"),
        ((3, 2, 3), (3, 2), (4,), None, r"mu0 has shape \(4,\)"),
        ((2, 3, 2, 3), (3, 2), (3,), None, r"H is required"),
        ((2, 3, 2, 3), (3, 2), (3,), 4, r"leading axis must equal H = 4"),
        ((3, 2, 3), (5, 3, 2), (3,), 4, r"R has shape \(5, 3, 2\): leading axis"),
    ],
)
def test_shape_errors(P_shape, R_shape, mu0_shape, H, match):
    P = np.full(P_shape, 1.0 / P_shape[-1])
    mu0 = np.full(mu0_shape, 1.0 / mu0_shape[0])
    with pytest.raises(ValueError, match=match):
        TabularMDP(P, np.zeros(R_shape), mu0, gamma=0.9, H=H)


def test_non_finite_entries_are_named():
    P = np.full((3, 2, 3), 1.0 / 3)
    R = np.zeros((3, 2))
    R[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"R\[1, 0\] = nan is not finite"):
        TabularMDP(P, R, np.full(3, 1 / 3), gamma=0.9)
    P[2, 1, 0] = np.inf
    with pytest.raises(ValueError, match=r"P\[2, 1, 0\] = inf is not finite"):
        TabularMDP(P, np.zeros((3, 2)), np.full(3, 1 / 3), gamma=0.9)
    with pytest.raises(ValueError, match=r"mu0\[1\] = nan"):
        TabularMDP(np.full((3, 2, 3), 1 / 3), np.zeros((3, 2)), [0.5, np.nan, 0.5], gamma=0.9)


def test_negative_entries_are_named():
    P = np.full((3, 2, 3), 1.0 / 3)
    P[1, 1] = [-0.5, 1.0, 0.5]
    with pytest.raises(ValueError, match=r"P\[1, 1, 0\] = -0.5 is negative"):
        TabularMDP(P, np.zeros((3, 2)), np.full(3, 1 / 3), gamma=0.9)
    with pytest.raises(ValueError, match=r"mu0\[2\] = -0.25 is negative"):
        TabularMDP(np.full((3, 2, 3), 1 / 3), np.zeros((3, 2)), [0.75, 0.5, -0.25], gamma=0.9)


def test_row_sums_are_checked_with_index_and_sum():
    P = np.full((3, 2, 3), 1.0 / 3)
    P[2, 1] = [0.5, 0.4, 0.03]
    with pytest.raises(ValueError, match=r"row P\[2, 1, :\] sums to 0.93, not 1 \(atol 1.1e-14\)"):
        TabularMDP(P, np.zeros((3, 2)), np.full(3, 1 / 3), gamma=0.9)
    with pytest.raises(ValueError, match=r"mu0 sums to 0.75, not 1"):
        TabularMDP(np.full((3, 2, 3), 1 / 3), np.zeros((3, 2)), [0.25, 0.25, 0.25], gamma=0.9)
    Ph = np.full((2, 3, 2, 3), 1.0 / 3)
    Ph[1, 0, 1, 2] = 0.5
    with pytest.raises(ValueError, match=r"row P\[1, 0, 1, :\]"):
        TabularMDP(Ph, np.zeros((3, 2)), np.full(3, 1 / 3), H=2)


def test_default_atol_depends_on_input_dtype():
    """A row off by 1e-10 passes at float32 precision and fails at float64 precision."""
    P = np.full((3, 2, 3), 1.0 / 3)
    P[0, 0, 0] += 1e-10
    R, mu0 = np.zeros((3, 2)), np.full(3, 1 / 3)
    m32 = TabularMDP(P.astype(np.float32), R, mu0, gamma=0.9)
    assert m32.atol == pytest.approx(16 * 3 * float(EPS32)) and m32.P.dtype == np.float64
    with pytest.raises(ValueError, match=r"row P\[0, 0, :\]"):
        TabularMDP(P, R, mu0, gamma=0.9)
    assert TabularMDP(P, R, mu0, gamma=0.9, atol=1e-9).atol == 1e-9
    # Integer input uses float64's eps.
    Pint = np.zeros((3, 1, 3), dtype=np.int64)
    Pint[:, 0, 0] = 1
    assert TabularMDP(Pint, np.zeros((3, 1)), [1, 0, 0], gamma=0.5).atol == 16 * 3 * EPS64


def test_gamma_and_H_checks():
    with pytest.raises(ValueError, match=r"gamma = 1 with neither a horizon H nor terminal states.*gamma < 1"):
        uniform_mdp(gamma=1.0)
    with pytest.raises(ValueError, match=r"gamma = 1.5 must lie in \[0, 1\]"):
        uniform_mdp(gamma=1.5)
    with pytest.raises(ValueError, match="H = 0 must be at least 1"):
        uniform_mdp(H=0)
    with pytest.raises(TypeError, match="H must be an int"):
        uniform_mdp(H=5.0)
    with pytest.raises(TypeError, match="must hold real numbers"):
        TabularMDP(np.full((1, 1, 1), 1 + 0j), np.zeros((1, 1)), [1.0], gamma=0.5)


def test_terminal_states_must_be_absorbing_with_zero_reward():
    P, R, mu0 = line_to_terminal()
    with pytest.raises(ValueError, match=r"terminal state 2 is not absorbing: P\[2, 0, 2\] = 0.0"):
        TabularMDP(P, R, mu0, terminal=[2, 3])
    R2 = R.copy()
    R2[3, 0] = 0.5
    with pytest.raises(ValueError, match=r"terminal state 3 must have zero reward: R\[3, 0\] = 0.5"):
        TabularMDP(P, R2, mu0, terminal=[3])
    # Also checked at every step of a time-inhomogeneous MDP.
    Ph = np.stack([P, P])
    Ph[1, 3, 0] = [0.5, 0, 0, 0.5]
    with pytest.raises(ValueError, match=r"P\[1, 3, 0, 3\] = 0.5"):
        TabularMDP(Ph, R, mu0, H=2, terminal=[3])


def test_normalize_rows():
    W = np.array([[[1.0, 3.0], [2.0, 2.0]], [[0.0, 5.0], [7.0, 1.0]]])
    out = normalize_rows(W)
    expected = np.array([[[0.25, 0.75], [0.5, 0.5]], [[0.0, 1.0], [0.875, 0.125]]])
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-16)
    assert out.dtype == np.float64 and out is not W and W[0, 0, 0] == 1.0
    assert normalize_rows(np.array([2, 6], dtype=np.int32)).tolist() == [0.25, 0.75]
    W[1, 0] = 0.0
    with pytest.raises(ValueError, match=r"row P\[1, 0, :\] sums to 0"):
        normalize_rows(W)
    with pytest.raises(ValueError, match=r"P\[1, 1\] = -1.0 is negative"):
        normalize_rows([[1.0, 1.0], [1.0, -1.0]])
    with pytest.raises(ValueError, match=r"P\[1\] = nan is not finite"):
        normalize_rows([1.0, np.nan])


# --- stochastic shortest path checks -----------------------------------------------------

def test_ssp_chain_to_terminal_is_accepted():
    P, R, mu0 = line_to_terminal(5)
    assert TabularMDP(P, R, mu0, terminal=[4]).kind == "episodic"


def test_ssp_unreachable_state_is_named():
    P, R, mu0 = line_to_terminal(4)
    # State 1 now loops forever on itself: it (and state 0, which leads to it) cannot reach 3.
    P[1, 0] = [0.0, 1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="state 0 cannot reach any terminal state"):
        TabularMDP(P, R, mu0, terminal=[3])


def _two_action_line(S=4):
    """Action 0 moves right towards the terminal state S-1 (reward -1); action 1 added by callers."""
    P1, R1, _ = line_to_terminal(S)
    P = np.concatenate([P1, P1], axis=1)
    R = np.concatenate([R1, R1], axis=1)
    return P, R


def test_ssp_zero_reward_self_loop_is_named():
    P, R = _two_action_line()
    P[1, 1] = np.eye(4)[1]
    R[1, 1] = 0.0
    with pytest.raises(ValueError, match=r"end component \[1\] avoids the terminal states and "
                       r"action 1 at state 1 has reward 0.0 >= 0"):
        ssp(P, R, [3])


def test_ssp_cycle_with_escape_is_still_an_end_component():
    """States 1 and 2 swap under action 1 (reward 0) but can leave through action 0.

    The cycle {1, 2} under action 1 is an end component by itself (the policy that always
    takes action 1 never reaches the terminal state and earns 0 forever), so the SSP
    assumption fails even though an escape exists; the check must flag it.
    """
    P, R = _two_action_line(5)
    P[1, 1], P[2, 1] = np.eye(5)[2], np.eye(5)[1]
    R[1, 1] = R[2, 1] = 0.0
    with pytest.raises(ValueError, match=r"end component \[1, 2\] .* action 1 at state 1"):
        ssp(P, R, [4])
    # The same cycle with negative rewards is fine: every improper policy costs infinity.
    R[1, 1] = R[2, 1] = -0.5
    assert ssp(P, R, [4]).kind == "episodic"


def test_ssp_transient_zero_reward_actions_are_accepted():
    """Zero-reward actions that leave every cycle (or reach the terminal) are not in an end component."""
    P, R = _two_action_line(4)
    P[0, 1] = [0.0, 0.0, 1.0, 0.0]          # jumps ahead: leaves {0} for good
    P[2, 1] = [0.0, 0.0, 0.5, 0.5]          # may stay, but reaches the terminal w.p. 1
    R[0, 1] = R[2, 1] = 0.0
    assert ssp(P, R, [3]).kind == "episodic"
    # A positive-reward action leading back into a cycle of negative actions is in the end component.
    P[2, 1] = [1.0, 0.0, 0.0, 0.0]
    P[1, 1] = [0.0, 0.0, 1.0, 0.0]
    R[2, 1], R[1, 1], R[0, 1] = 2.0, -1.0, -1.0
    with pytest.raises(ValueError, match=r"end component \[0, 1, 2\] .* action 1 at state 2 has reward 2.0"):
        ssp(P, R, [3])


def _reaches_terminal_surely(mdp, pi):
    """Independent check: under pi every state puts positive mass on the terminal set within S steps."""
    P_pi = mdp.P[np.arange(mdp.S), pi]                       # (S, S)
    mass = np.linalg.matrix_power(P_pi, mdp.S)[:, mdp.terminal].sum(axis=1)
    return bool(np.all(mass > 0))


def test_proper_policy_picks_an_escaping_action():
    # State 0: action 0 loops (reward -1, improper), action 1 goes to the terminal state 1.
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[0, 1, 1] = P[1, :, 1] = 1.0
    R = np.array([[-1.0, -1.0], [0.0, 0.0]])
    m = ssp(P, R, [1])
    assert proper_policy(m).tolist() == [1, 0]
    assert proper_policy(m).dtype == np.int64
    with pytest.raises(ValueError, match="episodic"):
        proper_policy(uniform_mdp())


@given(mdps(kind="episodic"))
def test_proper_policy_reaches_terminal_set(mdp):
    pi = proper_policy(mdp)
    assert pi.shape == (mdp.S,) and np.all((0 <= pi) & (pi < mdp.A))
    assert _reaches_terminal_surely(mdp, pi)


def test_planted_improper_policy_is_caught_by_the_reachability_check():
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[0, 1, 1] = P[1, :, 1] = 1.0
    m = ssp(P, np.array([[-1.0, -1.0], [0.0, 0.0]]), [1])
    assert not _reaches_terminal_surely(m, np.array([0, 0]))


# --- policies ----------------------------------------------------------------------------

def test_validate_deterministic_policies():
    m = uniform_mdp(S=3, A=2)
    np.testing.assert_array_equal(validate_policy(m, np.array([0, 1, 1])),
                                  [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match=r"pi\[2\] = 5 is not an action \(A = 2\)"):
        validate_policy(m, np.array([0, 1, 5]))
    with pytest.raises(ValueError, match=r"pi\[0\] = -1 is not an action"):
        validate_policy(m, [-1, 0, 0])
    f = uniform_mdp(S=3, A=4, H=2)
    out = validate_policy(f, np.array([[0, 1, 2], [3, 3, 3]]))
    assert out.shape == (2, 3, 4) and out[1, :, 3].tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match=r"pi\[1, 2\] = 4 is not an action \(A = 4\)"):
        validate_policy(f, np.array([[0, 1, 2], [3, 3, 4]]))
    with pytest.raises(ValueError, match="no horizon H"):
        validate_policy(m, np.zeros((2, 3), dtype=int))
    with pytest.raises(ValueError, match=r"expected \(2, 3\)"):
        validate_policy(f, np.zeros((5, 3), dtype=int))
    with pytest.raises(ValueError, match="pi has shape"):
        validate_policy(m, np.zeros(4, dtype=int))
    with pytest.raises(TypeError, match="integer dtype"):
        validate_policy(m, np.array([True, False, True]))


def test_validate_stochastic_policies():
    m = uniform_mdp(S=3, A=2)
    pi = np.array([[0.5, 0.5], [0.25, 0.75], [1.0, 0.0]])
    out = validate_policy(m, pi)
    assert out.dtype == np.float64 and np.array_equal(out, pi) and out is not pi
    with pytest.raises(ValueError, match=r"row pi\[1, :\] sums to 0.7"):
        validate_policy(m, np.array([[0.5, 0.5], [0.3, 0.4], [1.0, 0.0]]))
    with pytest.raises(ValueError, match=r"pi\[2, 1\] = -0.5 is negative"):
        validate_policy(m, np.array([[0.5, 0.5], [0.5, 0.5], [1.5, -0.5]]))
    with pytest.raises(ValueError, match=r"pi\[0, 0\] = nan"):
        validate_policy(m, np.array([[np.nan, 0.5], [0.5, 0.5], [1.0, 0.0]]))
    f = uniform_mdp(S=3, A=2, H=4)
    assert validate_policy(f, pi).shape == (3, 2)            # stationary stays (S, A)
    assert validate_policy(f, np.stack([pi] * 4)).shape == (4, 3, 2)
    bad = np.stack([pi] * 4)
    bad[3, 0] = [0.9, 0.0]
    with pytest.raises(ValueError, match=r"row pi\[3, 0, :\] sums to 0.9"):
        validate_policy(f, bad)


def test_float32_stochastic_policy_is_accepted_at_its_own_precision():
    mdp = TabularMDP(np.full((3, 3, 3), 1 / 3), np.zeros((3, 3)), np.full(3, 1 / 3), gamma=0.9)
    pi32 = np.full((3, 3), 1 / 3, dtype=np.float32)  # rows sum to 1 + 3e-8 in float64
    np.testing.assert_allclose(validate_policy(mdp, pi32), 1 / 3, rtol=1e-7)
    with pytest.raises(ValueError, match=r"row pi\[0, :\] sums to"):
        validate_policy(mdp, np.array([[0.5, 0.5, 1e-3]] * 3, dtype=np.float32))
