"""Standard tabular MDP families: Garnet (Archibald et al. 1995), chains, RiverSwim (Strehl and Littman 2008, as in Osband et al. 2013), grid worlds (Sutton and Barto 2018, Ex. 4.1)."""
from __future__ import annotations

import numpy as np

from proofs_check.seeding import as_generator
from tabular.mdp import TabularMDP, _read_int

__all__ = ["chain", "garnet", "gridworld", "gridworld_cells", "river_swim"]


def _probability(x, name: str) -> float:
    x = float(x)
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"{name} = {x!r} must lie in [0, 1]")
    return x


def garnet(S: int, A: int, branching: int, *, gamma: float = 0.9, H: int | None = None,
           seed=None) -> TabularMDP:
    """A random Garnet MDP (Archibald, McKinnon and Thomas 1995; Bhatnagar et al. 2009).

    For each pair (s, a), ``branching`` distinct successor states are drawn uniformly
    without replacement; their probabilities are the gaps of ``branching - 1`` sorted
    Uniform(0, 1) draws (a uniform split of [0, 1]). Rewards ``R[s, a] ~ Uniform(0, 1)``;
    ``mu0`` is uniform over the S states.

    Parameters
    ----------
    S, A : int
        Numbers of states and actions (>= 1).
    branching : int
        Successors per (s, a), ``1 <= branching <= S``; every row of ``P`` has exactly
        ``branching`` non-zero entries (up to a probability-zero tie of uniforms).
    gamma : float, default 0.9
    H : int or None
        Horizon; a finite-horizon (stationary) MDP when given.
    seed : int, SeedSequence, Generator or None

    Returns
    -------
    TabularMDP
        ``P`` (S, A, S), ``R`` (S, A) in [0, 1).

    Raises
    ------
    ValueError
        If ``branching`` is outside ``[1, S]`` or S, A < 1.
    """
    S = _read_int(S, "S")
    A = _read_int(A, "A")
    branching = _read_int(branching, "branching")
    if branching > S:
        raise ValueError(f"branching = {branching} exceeds the number of states S = {S}")
    rng = as_generator(seed)
    P = np.zeros((S, A, S))
    for s in range(S):
        for a in range(A):
            successors = rng.choice(S, size=branching, replace=False)
            cuts = np.sort(rng.uniform(size=branching - 1))
            P[s, a, successors] = np.diff(np.concatenate(([0.0], cuts, [1.0])))
    R = rng.uniform(size=(S, A))
    mu0 = np.full(S, 1.0 / S)
    return TabularMDP(P, R, mu0, gamma=gamma, H=H)


def chain(S: int, *, p_success: float = 1.0, gamma: float = 0.9, H: int | None = None,
          reward_right: float = 1.0, reward_left: float = 0.0) -> TabularMDP:
    """A chain of S states, 0 (left end) to S - 1 (right end), starting at state 0.

    Dynamics: action 0 (left) moves from s to ``max(s - 1, 0)`` and action 1 (right) to
    ``min(s + 1, S - 1)``, each with probability ``p_success``; with probability
    ``1 - p_success`` the agent moves the opposite way instead (also clipped at the ends).
    Rewards are deterministic: ``R[S - 1, 1] = reward_right`` (pushing right at the right
    end), ``R[0, 0] = reward_left`` (pushing left at the left end), 0 elsewhere (with S = 1
    both apply to the single state). ``mu0`` is the point mass on state 0.

    Parameters
    ----------
    S : int
        Number of states (>= 1); A = 2.
    p_success : float in [0, 1], default 1.0
    gamma : float, default 0.9
    H : int or None
    reward_right, reward_left : float

    Returns
    -------
    TabularMDP

    Raises
    ------
    ValueError
        If S < 1 or ``p_success`` is outside [0, 1].
    """
    S = _read_int(S, "S")
    p_success = _probability(p_success, "p_success")
    P = np.zeros((S, 2, S))
    for s in range(S):
        left, right = max(s - 1, 0), min(s + 1, S - 1)
        P[s, 0, left] += p_success
        P[s, 0, right] += 1.0 - p_success
        P[s, 1, right] += p_success
        P[s, 1, left] += 1.0 - p_success
    R = np.zeros((S, 2))
    R[0, 0] = reward_left
    R[S - 1, 1] = reward_right
    mu0 = np.zeros(S)
    mu0[0] = 1.0
    return TabularMDP(P, R, mu0, gamma=gamma, H=H)


def river_swim(S: int = 6, *, gamma: float = 0.95, H: int | None = None) -> TabularMDP:
    """RiverSwim (Strehl and Littman 2008, JCSS 74(8)) in the commonly used variant of
    Osband, Russo and Van Roy (2013, "(More) efficient reinforcement learning via posterior
    sampling", NeurIPS), with rewards normalised to [0, 1].

    The transition probabilities below are those of Osband et al. (2013), which later regret
    papers reuse; they are not necessarily Strehl and Littman's original numbers.

    States 0 (left bank) to S - 1 (right end, upstream). Action 0 (left, swim downstream)
    moves deterministically to ``max(s - 1, 0)``. Action 1 (right, swim upstream):

    * interior states ``0 < s < S - 1``: right w.p. 0.35, stay w.p. 0.6, left w.p. 0.05;
    * left end ``s = 0``: right w.p. 0.4, stay w.p. 0.6;
    * right end ``s = S - 1``: stay w.p. 0.6, left w.p. 0.4.

    Rewards (the variant with rewards scaled to [0, 1] used in later regret papers, in place
    of the original 5 and 10000, as recalled, not re-checked): ``R[0, 0] = 5/1000`` (swimming left at the left bank),
    ``R[S - 1, 1] = 1`` (swimming right at the right end), 0 elsewhere. ``mu0`` is the point
    mass on state 0.

    Parameters
    ----------
    S : int, default 6
        Number of states, at least 2; A = 2.
    gamma : float, default 0.95
    H : int or None

    Returns
    -------
    TabularMDP

    Raises
    ------
    ValueError
        If S < 2.
    """
    S = _read_int(S, "S", minimum=2)
    P = np.zeros((S, 2, S))
    for s in range(S):
        P[s, 0, max(s - 1, 0)] = 1.0
    P[0, 1, 0], P[0, 1, 1] = 0.6, 0.4
    for s in range(1, S - 1):
        P[s, 1, s - 1], P[s, 1, s], P[s, 1, s + 1] = 0.05, 0.6, 0.35
    P[S - 1, 1, S - 2], P[S - 1, 1, S - 1] = 0.4, 0.6
    R = np.zeros((S, 2))
    R[0, 0] = 5.0 / 1000.0
    R[S - 1, 1] = 1.0
    mu0 = np.zeros(S)
    mu0[0] = 1.0
    return TabularMDP(P, R, mu0, gamma=gamma, H=H)


_GRID_CHARS = set(".#TSG")
# Actions 0 up, 1 right, 2 down, 3 left, as (row, column) offsets.
_MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))


def _parse_layout(layout: str) -> list[str]:
    if not isinstance(layout, str):
        raise TypeError(f"layout must be a str, got {type(layout).__name__}")
    rows = [line.strip() for line in layout.splitlines()]
    while rows and not rows[0]:
        rows.pop(0)
    while rows and not rows[-1]:
        rows.pop()
    if not rows:
        raise ValueError("layout is empty")
    width = len(rows[0])
    for i, row in enumerate(rows):
        if len(row) != width:
            raise ValueError(f"layout row {i} {row!r} has {len(row)} cells, expected {width} (row 0)")
        for j, ch in enumerate(row):
            if ch not in _GRID_CHARS:
                raise ValueError(
                    f"layout row {i}, column {j}: unknown cell {ch!r} (use one of '.#TSG')"
                )
    return rows


def _cells(rows: list[str]) -> list[tuple[int, int]]:
    """(row, column) of each non-wall cell of parsed layout rows, in row-major order."""
    return [(i, j) for i, row in enumerate(rows) for j, ch in enumerate(row) if ch != "#"]


def gridworld_cells(layout: str) -> list[tuple[int, int]]:
    """The (row, column) cell of each state of :func:`gridworld` ``(layout)``.

    States are the non-wall cells in row-major order.

    Raises
    ------
    ValueError
        For ragged rows, unknown characters or an empty layout (see :func:`gridworld`).
    """
    return _cells(_parse_layout(layout))


def gridworld(layout: str, *, gamma: float = 1.0, H: int | None = None,
              step_reward: float = -1.0, goal_reward: float = 0.0,
              slip: float = 0.0) -> TabularMDP:
    """A grid world described by text (Sutton and Barto 2018, Example 4.1 and sec. 3.5).

    Layout characters: ``.`` free cell, ``#`` wall, ``T`` terminal cell, ``S`` start cell,
    ``G`` goal (a terminal cell whose entry pays ``goal_reward``). Rows are separated by
    newlines; leading/trailing blank lines and each row's surrounding whitespace are
    stripped. States are the non-wall cells in row-major order (:func:`gridworld_cells`).

    Actions: 0 up, 1 right, 2 down, 3 left. The intended direction is taken with probability
    ``1 - slip``, each of the three other directions with probability ``slip / 3``; a move off
    the grid or into a wall leaves the agent in place. Terminal cells (``T``, ``G``) are
    absorbing with zero reward. In a non-terminal state, ``R[s, a] = step_reward +
    goal_reward * Pr(next cell is G | s, a)``. ``mu0`` is uniform over the ``S`` cells, or
    over all non-wall, non-terminal cells when there is none.

    With ``gamma = 1`` (default), ``H = None`` and terminal cells, the result is an episodic
    (stochastic shortest path) MDP. Sutton and Barto's Example 4.1 is
    ``gridworld("T...\\n....\\n....\\n...T")``.

    Parameters
    ----------
    layout : str
    gamma : float, default 1.0
    H : int or None
    step_reward, goal_reward : float
    slip : float in [0, 1]

    Returns
    -------
    TabularMDP
        A = 4.

    Raises
    ------
    ValueError
        Ragged rows (naming the row), unknown characters, a layout without non-wall cells or
        without a possible start cell, ``slip`` outside [0, 1], and every check of
        :class:`TabularMDP` (e.g. a cell that cannot reach a terminal cell when episodic).
    """
    slip = _probability(slip, "slip")
    rows = _parse_layout(layout)
    cells = _cells(rows)
    if not cells:
        raise ValueError("layout has no non-wall cell")
    index = {cell: s for s, cell in enumerate(cells)}
    kinds = [rows[i][j] for i, j in cells]
    S = len(cells)
    terminal = np.array([k in "TG" for k in kinds])
    goal = np.array([k == "G" for k in kinds], dtype=np.float64)
    P = np.zeros((S, 4, S))
    for s, (i, j) in enumerate(cells):
        if terminal[s]:
            P[s, :, s] = 1.0
            continue
        for a in range(4):
            for d, (di, dj) in enumerate(_MOVES):
                prob = 1.0 - slip if d == a else slip / 3.0
                P[s, a, index.get((i + di, j + dj), s)] += prob
    R = step_reward + goal_reward * (P @ goal)
    R[terminal] = 0.0
    start = np.array([k == "S" for k in kinds])
    if not start.any():
        start = ~terminal
    if not start.any():
        raise ValueError("layout has no start cell: every non-wall cell is terminal")
    mu0 = start / start.sum()
    return TabularMDP(P, R, mu0, gamma=gamma, H=H, terminal=terminal)
