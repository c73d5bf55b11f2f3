"""Generators: Garnet, chain, RiverSwim and grid worlds against hand-written rows and textbook values."""
import numpy as np
import pytest
from scipy import stats

from tabular.generators import chain, garnet, gridworld, gridworld_cells, river_swim

LEVEL = 1e-3


def policy_value(mdp, pi):
    """V^pi by a direct linear solve of V = R_pi + gamma P_pi V (terminal states pinned to 0)."""
    S = mdp.S
    states = np.arange(S)
    P_pi = np.einsum("sa,sat->st", pi, mdp.P) if pi.ndim == 2 else mdp.P[states, pi]
    R_pi = (pi * mdp.R).sum(axis=1) if pi.ndim == 2 else mdp.R[states, pi]
    keep = ~mdp.terminal
    M = np.eye(keep.sum()) - mdp.gamma * P_pi[np.ix_(keep, keep)]
    V = np.zeros(S)
    V[keep] = np.linalg.solve(M, R_pi[keep])
    return V


# --- Garnet ------------------------------------------------------------------------------

@pytest.mark.parametrize("branching", [1, 3, 7])
def test_garnet_branching_is_exact(branching):
    m = garnet(7, 3, branching, seed=1)
    assert np.all((m.P > 0).sum(axis=-1) == branching)
    np.testing.assert_allclose(m.P.sum(axis=-1), 1.0, atol=1e-15)
    assert np.all((0 <= m.R) & (m.R < 1))
    assert np.array_equal(m.mu0, np.full(7, 1 / 7)) and m.kind == "discounted" and m.gamma == 0.9


def test_garnet_seeding_and_arguments():
    a, b = garnet(5, 2, 2, seed=3), garnet(5, 2, 2, seed=np.random.SeedSequence(3))
    assert np.array_equal(a.P, b.P) and np.array_equal(a.R, b.R)
    assert not np.array_equal(a.P, garnet(5, 2, 2, seed=4).P)
    assert garnet(4, 2, 2, H=3, gamma=1.0, seed=0).kind == "finite"
    with pytest.raises(ValueError, match="branching = 6 exceeds the number of states S = 5"):
        garnet(5, 2, 6)
    with pytest.raises(ValueError, match="branching = 0 must be at least 1"):
        garnet(5, 2, 0)
    with pytest.raises(TypeError, match="S must be an int"):
        garnet(5.0, 2, 1)


def successor_uniformity_pvalue(P):
    """Chi-square test that successor states are chosen uniformly (each state equally often)."""
    counts = (P > 0).sum(axis=(0, 1))
    return stats.chisquare(counts).pvalue


def split_uniformity_pvalue(P):
    """For branching 2, the mass on the lower-indexed successor is Uniform(0, 1): KS test."""
    rows = P.reshape(-1, P.shape[-1])
    first = np.array([row[np.flatnonzero(row)[0]] for row in rows])
    return stats.kstest(first, "uniform").pvalue


def test_garnet_successors_and_splits_are_uniform():
    m = garnet(10, 150, 2, seed=2024)
    assert successor_uniformity_pvalue(m.P) > LEVEL
    assert split_uniformity_pvalue(m.P) > LEVEL


def test_garnet_uniformity_checks_catch_planted_errors():
    rng = np.random.default_rng(0)
    S, A = 10, 150
    # Planted error 1: successors biased towards low indices.
    biased = np.zeros((S, A, S))
    weights = np.linspace(2.0, 1.0, S)
    for s in range(S):
        for a in range(A):
            succ = rng.choice(S, size=2, replace=False, p=weights / weights.sum())
            biased[s, a, succ] = 0.5
    assert successor_uniformity_pvalue(biased) < LEVEL
    # Planted error 2: a Beta(2, 2) split instead of a uniform one.
    wrong_split = np.zeros((S, A, S))
    for s in range(S):
        for a in range(A):
            succ = np.sort(rng.choice(S, size=2, replace=False))
            u = rng.beta(2.0, 2.0)
            wrong_split[s, a, succ] = [u, 1.0 - u]
    assert split_uniformity_pvalue(wrong_split) < LEVEL


# --- chain -------------------------------------------------------------------------------

def test_chain_rows_with_slip():
    m = chain(4, p_success=0.8, reward_right=2.0, reward_left=0.5)
    np.testing.assert_allclose(m.P[0, 0], [0.8, 0.2, 0.0, 0.0])  # left clipped at the end
    np.testing.assert_allclose(m.P[0, 1], [0.2, 0.8, 0.0, 0.0])
    np.testing.assert_allclose(m.P[2, 0], [0.0, 0.8, 0.0, 0.2])
    np.testing.assert_allclose(m.P[2, 1], [0.0, 0.2, 0.0, 0.8])
    np.testing.assert_allclose(m.P[3, 1], [0.0, 0.0, 0.2, 0.8])
    expected_R = np.zeros((4, 2))
    expected_R[0, 0], expected_R[3, 1] = 0.5, 2.0
    assert np.array_equal(m.R, expected_R) and np.array_equal(m.mu0, [1.0, 0, 0, 0])
    with pytest.raises(ValueError, match=r"p_success = 1.5 must lie in \[0, 1\]"):
        chain(3, p_success=1.5)


def test_chain_value_matches_closed_form():
    """Always right, deterministic: V(s) = gamma^(S-1-s) / (1 - gamma)."""
    S, gamma = 5, 0.9
    m = chain(S, gamma=gamma)
    V = policy_value(m, np.ones(S, dtype=int))
    np.testing.assert_allclose(V, gamma ** (S - 1 - np.arange(S)) / (1 - gamma), rtol=1e-12)


# --- RiverSwim ---------------------------------------------------------------------------

def test_river_swim_rows():
    m = river_swim()
    assert (m.S, m.A, m.gamma) == (6, 2, 0.95)
    left = np.zeros((6, 6))
    for s in range(6):
        left[s, max(s - 1, 0)] = 1.0
    assert np.array_equal(m.P[:, 0], left)
    right = np.array([
        [0.6, 0.4, 0, 0, 0, 0],
        [0.05, 0.6, 0.35, 0, 0, 0],
        [0, 0.05, 0.6, 0.35, 0, 0],
        [0, 0, 0.05, 0.6, 0.35, 0],
        [0, 0, 0, 0.05, 0.6, 0.35],
        [0, 0, 0, 0, 0.4, 0.6],
    ])
    assert np.array_equal(m.P[:, 1], right)
    R = np.zeros((6, 2))
    R[0, 0], R[5, 1] = 0.005, 1.0
    assert np.array_equal(m.R, R) and np.array_equal(m.mu0, np.eye(6)[0])
    two = river_swim(2)
    assert np.array_equal(two.P[:, 1], [[0.6, 0.4], [0.4, 0.6]])
    with pytest.raises(ValueError, match="S = 1 must be at least 2"):
        river_swim(1)


# --- grid worlds -------------------------------------------------------------------------

SUTTON_BARTO_4_1 = "T...\n....\n....\n...T"


def test_sutton_barto_example_4_1_layout():
    m = gridworld(SUTTON_BARTO_4_1)
    assert (m.S, m.A, m.kind, m.gamma) == (16, 4, "episodic", 1.0)
    assert np.flatnonzero(m.terminal).tolist() == [0, 15]
    expected_R = -np.ones((16, 4))
    expected_R[[0, 15]] = 0.0
    assert np.array_equal(m.R, expected_R)
    np.testing.assert_allclose(m.mu0, np.where(m.terminal, 0.0, 1 / 14))
    assert gridworld_cells(SUTTON_BARTO_4_1) == [(i, j) for i in range(4) for j in range(4)]


def test_sutton_barto_example_4_1_random_policy_values():
    """The converged values of the equiprobable random policy (Sutton and Barto 2018, Figure 4.1)."""
    m = gridworld(SUTTON_BARTO_4_1)
    V = policy_value(m, np.full((16, 4), 0.25)).reshape(4, 4)
    printed = np.array([[0, -14, -20, -22], [-14, -18, -20, -20],
                        [-20, -20, -18, -14], [-22, -20, -14, 0]], dtype=float)
    np.testing.assert_allclose(V, printed, atol=1e-9)


def test_gridworld_walls_goal_and_start():
    layout = """
        S.#
        ..G
    """
    m = gridworld(layout, step_reward=-1.0, goal_reward=10.0)
    assert gridworld_cells(layout) == [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)]
    assert m.S == 5 and m.terminal.tolist() == [False, False, False, False, True]
    assert np.array_equal(m.mu0, [1.0, 0, 0, 0, 0])
    # State 1 = cell (0, 1): right is a wall (stay), up is off-grid (stay), down to (1, 1).
    assert np.array_equal(m.P[1, 1], np.eye(5)[1]) and np.array_equal(m.P[1, 0], np.eye(5)[1])
    assert np.array_equal(m.P[1, 2], np.eye(5)[3])
    # State 3 = cell (1, 1): moving right enters G.
    assert m.R[3, 1] == 9.0 and m.R[3, 3] == -1.0 and np.all(m.R[4] == 0)


def test_gridworld_slip_rows():
    m = gridworld("...\n...\n..T", slip=0.3, gamma=0.9)
    # Centre cell (1, 1) = state 4; action 1 (right): right 0.7, up/down/left 0.1 each.
    expected = np.zeros(9)
    expected[[5, 1, 7, 3]] = [0.7, 0.1, 0.1, 0.1]
    np.testing.assert_allclose(m.P[4, 1], expected, atol=1e-15)
    # Corner (0, 0) = state 0, action 0 (up): up and left stay (0.7 + 0.1), right 0.1, down 0.1.
    expected = np.zeros(9)
    expected[[0, 1, 3]] = [0.8, 0.1, 0.1]
    np.testing.assert_allclose(m.P[0, 0], expected, atol=1e-15)
    assert m.kind == "discounted"


def test_gridworld_layout_errors():
    with pytest.raises(ValueError, match=r"layout row 1 '\.\.\.' has 3 cells, expected 2"):
        gridworld("..\n...\n..")
    with pytest.raises(ValueError, match=r"row 0, column 1: unknown cell 'x'"):
        gridworld(".x\n.T")
    with pytest.raises(ValueError, match="every non-wall cell is terminal"):
        gridworld("T#\n#G")
    with pytest.raises(ValueError, match="layout is empty"):
        gridworld("\n  \n")
    # An enclosed cell cannot reach the terminal cell: the SSP check names its state.
    with pytest.raises(ValueError, match="state 0 cannot reach any terminal state"):
        gridworld(".#T\n#..")
    # A zero step cost with gamma = 1 breaks the SSP assumption.
    with pytest.raises(ValueError, match="requires R < 0 for every action"):
        gridworld(SUTTON_BARTO_4_1, step_reward=0.0)
    assert gridworld(SUTTON_BARTO_4_1, step_reward=0.0, gamma=0.9).kind == "discounted"
