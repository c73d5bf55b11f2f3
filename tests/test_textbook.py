"""Oracle tests from Sutton and Barto, Reinforcement Learning: An Introduction (2nd ed., 2018),
Example 4.1 and Figure 4.1: the 4x4 grid world under the equiprobable random policy."""
from fractions import Fraction

import numpy as np
import pytest

from tabular.generators import gridworld
from tabular.planning import evaluate_policy, policy_iteration

LAYOUT = "T...\n....\n....\n...T"

# Figure 4.1, left column: v_k for the random policy, printed to one decimal.
PRINTED = {
    1: [[0.0, -1.0, -1.0, -1.0], [-1.0, -1.0, -1.0, -1.0], [-1.0, -1.0, -1.0, -1.0], [-1.0, -1.0, -1.0, 0.0]],
    2: [[0.0, -1.7, -2.0, -2.0], [-1.7, -2.0, -2.0, -2.0], [-2.0, -2.0, -2.0, -1.7], [-2.0, -2.0, -1.7, 0.0]],
    3: [[0.0, -2.4, -2.9, -3.0], [-2.4, -2.9, -3.0, -2.9], [-2.9, -3.0, -2.9, -2.4], [-3.0, -2.9, -2.4, 0.0]],
    10: [[0.0, -6.1, -8.4, -9.0], [-6.1, -7.7, -8.4, -8.4], [-8.4, -8.4, -7.7, -6.1], [-9.0, -8.4, -6.1, 0.0]],
}
V_PI_RANDOM = [[0, -14, -20, -22], [-14, -18, -20, -20], [-20, -20, -18, -14], [-22, -20, -14, 0]]


def book_sweeps(k_max):
    """Synchronous iterative policy evaluation written from the book's update rule
    v_{k+1}(s) = sum_a pi(a|s) sum_{s', r} p(s', r | s, a) [r + v_k(s')] (eq. 4.5), with
    its own grid dynamics: actions up, right, down, left; a move off the grid leaves the
    state unchanged; reward -1 on every transition; terminal corners keep value 0."""
    v = np.zeros((4, 4))
    out = {}
    for k in range(1, k_max + 1):
        new = np.zeros((4, 4))
        for i in range(4):
            for j in range(4):
                if (i, j) in ((0, 0), (3, 3)):
                    continue
                for di, dj in ((-1, 0), (0, 1), (1, 0), (0, -1)):
                    ni, nj = i + di, j + dj
                    if not (0 <= ni < 4 and 0 <= nj < 4):
                        ni, nj = i, j
                    new[i, j] += 0.25 * (-1.0 + v[ni, nj])
        v = new
        out[k] = v
    return out


def test_random_policy_value_matches_figure_4_1():
    mdp = gridworld(LAYOUT)
    assert mdp.kind == "episodic" and mdp.S == 16
    V = evaluate_policy(mdp, np.full((16, 4), 0.25)).V
    np.testing.assert_allclose(V.reshape(4, 4), V_PI_RANDOM, rtol=0, atol=1e-9)


@pytest.mark.parametrize("k", sorted(PRINTED))
def test_printed_sweeps_match_the_update_rule(k):
    # The printed numbers are rounded to one decimal, so each lies within 0.05 of the exact
    # iterate; the comparison is made in exact rational arithmetic (the k = 2 entries -1.7
    # print the exact -1.75, a distance of exactly 0.05).
    v = book_sweeps(10)[k]
    for i in range(4):
        for j in range(4):
            gap = abs(Fraction(float(v[i, j])) - Fraction(str(PRINTED[k][i][j])))
            assert gap <= Fraction(1, 20), (k, i, j, float(v[i, j]), PRINTED[k][i][j])


def test_sweeps_converge_to_the_evaluated_value():
    # The book's sweep (not the library) approaches the k = infinity values of Figure 4.1.
    v = book_sweeps(1000)[1000]
    np.testing.assert_allclose(v, V_PI_RANDOM, rtol=0, atol=1e-9)


def test_policy_iteration_finds_steps_to_the_nearest_corner():
    mdp = gridworld(LAYOUT)
    res = policy_iteration(mdp)
    rows, cols = np.divmod(np.arange(16), 4)
    steps = np.minimum(rows + cols, (3 - rows) + (3 - cols))
    assert res.converged
    np.testing.assert_array_equal(res.V, -steps.astype(float))
