"""Episode rollouts in tabular MDPs, drawn with Walker's alias method (Walker 1977; Vose 1991) inside a Numba kernel."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from proofs_check.seeding import as_generator
from tabular import _kernels
from tabular.mdp import TabularMDP, _read_int, _require_mdp, validate_policy

__all__ = ["Episodes", "sample_episodes"]


@dataclass(frozen=True)
class Episodes:
    """``n`` sampled episodes of ``H`` steps.

    Attributes
    ----------
    states : numpy.ndarray, int64, (n, H + 1)
        ``states[i, h]`` is s_h of episode i (s_0 drawn from mu0).
    actions : numpy.ndarray, int64, (n, H)
        a_h, or -1 after the episode reached a terminal state.
    rewards : numpy.ndarray, float64, (n, H)
        ``R_h(s_h, a_h)`` (undiscounted), 0 after termination.
    lengths : numpy.ndarray, int64, (n,)
        Number of actions taken (H unless a terminal state was reached earlier).
    """

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    lengths: np.ndarray


def _alias_tables(p: np.ndarray) -> np.ndarray:
    """Alias tables of the rows of ``p`` (M, K); the input is passed read-only so that the
    kernel compiles once whether it comes from the (read-only) MDP or from a fresh array."""
    view = np.ascontiguousarray(p, dtype=np.float64).view()
    view.setflags(write=False)
    return _kernels.build_alias_tables(view)


def _at(X: np.ndarray, h: int) -> np.ndarray:
    """Step h of an array with a leading step axis of length 1 (stationary) or H."""
    return X[h if len(X) > 1 else 0]


def _sample_deterministic(mdp, pi_det, P4, R3, mu0_tab, n, H, rng) -> Episodes:
    """Deterministic policy: only the rows (h, s, pi_h(s)) of P are ever read, so the kernel
    runs on tables of those rows alone (A times smaller) and records the actions of
    ``pi_det``. The draws are those of the full-table path, bit for bit."""
    S = mdp.S
    states_ = np.arange(S)
    T = max(len(pi_det), len(P4))
    P_rows = np.stack([_at(P4, h)[states_, _at(pi_det, h)] for h in range(T)])
    TR = max(len(pi_det), len(R3))
    R_rows = np.stack([_at(R3, h)[states_, _at(pi_det, h)] for h in range(TR)])[:, :, None]
    R_rows.setflags(write=False)  # the argument types of the general path: no recompilation
    states, actions, rewards, lengths = _kernels.sample_episodes_kernel(
        _alias_tables(P_rows.reshape(-1, S)), R_rows, mu0_tab, pi_det, np.zeros((1, 1, 2)),
        False, mdp.terminal, n, H, rng,
    )
    return Episodes(states=states, actions=actions, rewards=rewards, lengths=lengths)


def sample_episodes(mdp: TabularMDP, pi, n: int, *, H: int | None = None, seed=None) -> Episodes:
    """Sample ``n`` independent episodes of ``pi`` in ``mdp``.

    Each episode starts from ``s_0 ~ mu0`` and, for ``h = 0..H-1``, draws
    ``a_h ~ pi_h(. | s_h)``, receives ``R_h(s_h, a_h)`` and moves to
    ``s_{h+1} ~ P_h(. | s_h, a_h)``.
    Once a terminal state is reached the episode is padded with (that state, action -1,
    reward 0). Draws use alias tables built once per call: O(HP S^2 A) time and
    ``16 HP S^2 A`` bytes, with HP = H for time-inhomogeneous P and 1 otherwise; for a
    deterministic policy only the rows (h, s, pi_h(s)) are tabled (A times less when the
    policy is stationary or P time-inhomogeneous).

    Parameters
    ----------
    mdp : TabularMDP
        Any kind; time-inhomogeneous P and R are read at step h.
    pi : array_like
        Deterministic (S,) / (H, S) int or stochastic (S, A) / (H, S, A) float, as accepted by
        :func:`~tabular.mdp.validate_policy` (time-indexed shapes need ``mdp.H``). A float
        policy whose rows are all one-hot is sampled as the deterministic one.
    n : int
        Number of episodes (>= 0).
    H : int, optional
        Steps per episode. Defaults to ``mdp.H``; required for discounted and episodic MDPs
        (a truncation length: the discount plays no role in sampling). For a finite-horizon
        MDP, at most ``mdp.H`` (the first H steps).
    seed : int, SeedSequence, Generator or None
        See :func:`proofs_check.seeding.as_generator`. The same seed gives identical arrays.

    Returns
    -------
    Episodes
        ``states (n, H+1)``, ``actions (n, H)``, ``rewards (n, H)``, ``lengths (n,)``.

    Raises
    ------
    ValueError
        ``H`` missing (discounted or episodic MDP), ``H < 1`` or ``H > mdp.H``, ``n < 0``, or an
        invalid policy (naming the index).
    TypeError
        If ``mdp`` is not a TabularMDP, or ``n``, ``H`` are not ints.
    """
    _require_mdp(mdp)
    n = _read_int(n, "n", minimum=0)
    if H is None:
        if mdp.H is None:
            raise ValueError(
                f"H is required for a {mdp.kind} MDP without a horizon (episodes are truncated "
                "after H steps)"
            )
        H = mdp.H
    H = _read_int(H, "H")
    if mdp.H is not None and H > mdp.H:
        raise ValueError(f"H = {H} exceeds the MDP's horizon H = {mdp.H}")
    rng = as_generator(seed)
    pi_prob = validate_policy(mdp, pi)
    S, A = mdp.S, mdp.A
    pi3 = pi_prob.reshape((-1, S, A))
    mu0_tab = _alias_tables(mdp.mu0.reshape(1, S))
    P4, R3 = mdp.P.reshape((-1, S, A, S)), mdp.R.reshape((-1, S, A))
    if np.all(pi3.max(axis=-1) == 1.0):
        pi_det = np.argmax(pi3, axis=-1)
        T = max(len(pi_det), len(P4))
        if T * S <= len(P4) * S * A:
            return _sample_deterministic(mdp, pi_det, P4, R3, mu0_tab, n, H, rng)
        states, actions, rewards, lengths = _kernels.sample_episodes_kernel(
            _alias_tables(P4.reshape(-1, S)), R3, mu0_tab, pi_det, np.zeros((1, A, 2)), False,
            mdp.terminal, n, H, rng,
        )
    else:
        states, actions, rewards, lengths = _kernels.sample_episodes_kernel(
            _alias_tables(P4.reshape(-1, S)), R3, mu0_tab, np.zeros((1, S), dtype=np.int64),
            _alias_tables(pi3.reshape(-1, A)), True, mdp.terminal, n, H, rng,
        )
    return Episodes(states=states, actions=actions, rewards=rewards, lengths=lengths)
