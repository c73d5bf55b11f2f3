"""Episode rollouts and offline datasets in tabular MDPs, drawn with Walker's alias method (Walker 1977; Vose 1991) inside Numba kernels; i.i.d. transition datasets ``(s, a) ~ mu`` as in Rashidinejad, Zhu, Ma, Jiao, Russell (2021)."""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from numba import njit

from proofs_check.messages import plain
from proofs_check.seeding import as_generator
from tabular import _kernels
from tabular.mdp import TabularMDP, _index, _read_int, _require_mdp, validate_policy

__all__ = [
    "Episodes",
    "TransitionStatistics",
    "Transitions",
    "episodes_to_transitions",
    "mixture_behaviour",
    "sample_episodes",
    "sample_transitions",
    "transition_statistics",
]


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


def _read_episodes(episodes, S: int | None = None, A: int | None = None, *,
                   min_episodes: int = 1) -> Episodes:
    """``episodes`` checked field by field, returned with int64 / float64 arrays.

    The one validating reader of :class:`Episodes` (every consumer of trajectory data calls
    it). Checks, each error naming the field and the entry: the type; integer ``states``,
    ``actions``, ``lengths`` and real ``rewards``; shapes ``states (n, H + 1)``,
    ``rewards (n, H)``, ``lengths (n,)`` for ``actions (n, H)`` with ``H >= 1``; at least
    ``min_episodes`` episodes; states in ``[0, S)`` and actions in ``[-1, A)`` (when ``S``,
    ``A`` are given; ``-1`` marks steps after termination); ``lengths`` in ``[0, H]`` with
    ``actions[i, h] >= 0`` exactly for ``h < lengths[i]``; finite rewards, 0 after
    termination (the layout :func:`sample_episodes` produces).

    Raises
    ------
    TypeError
        ``episodes`` not an :class:`Episodes`, or a field of the wrong dtype.
    ValueError
        Any other violation (named).
    """
    if not isinstance(episodes, Episodes):
        raise TypeError(f"episodes must be tabular.sampling.Episodes, got {type(episodes).__name__}")
    S = None if S is None else _read_int(S, "S")
    A = None if A is None else _read_int(A, "A")
    fields = {}
    for name, kinds, what in (("states", "iu", "integers"), ("actions", "iu", "integers"),
                              ("rewards", "iuf", "real numbers"), ("lengths", "iu", "integers")):
        arr = np.asarray(getattr(episodes, name))
        if arr.dtype.kind not in kinds:
            raise TypeError(f"episodes.{name} must hold {what}, got dtype {arr.dtype}")
        fields[name] = arr.astype(np.float64 if name == "rewards" else np.int64, copy=False)
    states, actions, rewards, lengths = (fields[k] for k in ("states", "actions", "rewards", "lengths"))
    if actions.ndim != 2 or actions.shape[1] < 1:
        raise ValueError(f"episodes.actions must have shape (n, H) with H >= 1, got {actions.shape}")
    n, H = actions.shape
    for name, expected in (("states", (n, H + 1)), ("rewards", (n, H)), ("lengths", (n,))):
        if fields[name].shape != expected:
            raise ValueError(f"episodes.{name} has shape {fields[name].shape}, expected {expected} "
                             f"for episodes.actions of shape (n, H) = {actions.shape}")
    if n < min_episodes:
        need = "one episode" if min_episodes == 1 else f"{min_episodes} episodes"
        raise ValueError(f"episodes holds {n} episodes: the dataset is empty (at least {need} "
                         "needed)")
    if S is not None:
        bad = (states < 0) | (states >= S)
        if bad.any():
            i, h = (int(x) for x in np.argwhere(bad)[0])
            raise ValueError(f"episodes visit state {int(states[i, h])} outside the MDP: "
                             f"episodes.states[{i}, {h}] = {int(states[i, h])} is not a state "
                             f"(S = {S})")
    bad = (actions < -1) if A is None else (actions < -1) | (actions >= A)
    if bad.any():
        i, h = (int(x) for x in np.argwhere(bad)[0])
        limit = "" if A is None else f" (A = {A})"
        raise ValueError(f"episodes take action {int(actions[i, h])} outside the MDP: "
                         f"episodes.actions[{i}, {h}] = {int(actions[i, h])} is not an action"
                         f"{limit}; -1 marks steps after termination")
    bad = (lengths < 0) | (lengths > H)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"episodes.lengths[{i}] = {int(lengths[i])} is not in [0, H = {H}]")
    taken = actions >= 0
    bad = taken != (np.arange(H) < lengths[:, None])
    if bad.any():
        i, h = (int(x) for x in np.argwhere(bad)[0])
        raise ValueError(f"episodes.actions[{i}, {h}] = {int(actions[i, h])} does not match "
                         f"episodes.lengths[{i}] = {int(lengths[i])} (actions >= 0 exactly "
                         f"before the episode's length, -1 after)")
    bad = ~np.isfinite(rewards) | (~taken & (rewards != 0))
    if bad.any():
        i, h = (int(x) for x in np.argwhere(bad)[0])
        why = "not finite" if not np.isfinite(rewards[i, h]) else "not 0 after termination"
        raise ValueError(f"episodes.rewards[{i}, {h}] = {float(rewards[i, h])!r} is {why}")
    return Episodes(states=states, actions=actions, rewards=rewards, lengths=lengths)


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


# --- offline datasets -------------------------------------------------------------------


def _as_index_array(x, name: str, upper: int, what: str) -> np.ndarray:
    """A 1-d int64 copy of ``x`` with every entry in ``[0, upper)`` (ValueError naming it)."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must have shape (N,), got {arr.shape}")
    bad = np.flatnonzero((arr < 0) | (arr >= upper))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{name}[{i}] = {int(arr[i])} is not {what} (must lie in [0, {upper}))")
    return np.ascontiguousarray(arr, dtype=np.int64)


@dataclass(frozen=True)
class Transitions:
    """An offline dataset of ``N`` transitions ``(s_i, a_i, r_i, s'_i)``, optionally with steps.

    Construction validates and stores int64 / float64 copies.

    Attributes
    ----------
    s, a, s_next : numpy.ndarray, int64, (N,)
        State, action and next state of each transition (``s_next`` is ``s_{h+1}``).
    r : numpy.ndarray, float64, (N,)
        Observed reward of each transition (finite).
    S, A : int
        Numbers of states and actions (every index must lie in range).
    h : numpy.ndarray, int64, (N,), or None
        Step of each transition for finite-horizon data, in ``[0, H)``; None for data
        without steps (discounted MDPs).
    H : int or None
        Horizon; given exactly when ``h`` is.

    Raises
    ------
    ValueError
        Arrays of different lengths or not 1-d, an index out of range (naming the array and
        the entry), a non-finite reward, ``h`` without ``H`` or the reverse.
    TypeError
        Non-integer index arrays or non-int ``S, A, H``.
    """

    s: np.ndarray
    a: np.ndarray
    r: np.ndarray
    s_next: np.ndarray
    S: int
    A: int
    h: np.ndarray | None = None
    H: int | None = None

    def __post_init__(self):
        set_ = object.__setattr__
        S, A = _read_int(self.S, "S"), _read_int(self.A, "A")
        set_(self, "S", S)
        set_(self, "A", A)
        set_(self, "s", _as_index_array(self.s, "s", S, "a state"))
        set_(self, "a", _as_index_array(self.a, "a", A, "an action"))
        set_(self, "s_next", _as_index_array(self.s_next, "s_next", S, "a state"))
        r = np.asarray(self.r)
        if r.dtype.kind not in "biuf":
            raise TypeError(f"r must hold real numbers, got dtype {r.dtype}")
        r = np.ascontiguousarray(r, dtype=np.float64)
        if r.ndim != 1:
            raise ValueError(f"r must have shape (N,), got {r.shape}")
        bad = np.flatnonzero(~np.isfinite(r))
        if bad.size:
            raise ValueError(f"r[{int(bad[0])}] = {float(r[bad[0]])!r} is not finite")
        set_(self, "r", r)
        if (self.h is None) != (self.H is None):
            raise ValueError("give both h (the step of each transition) and H, or neither")
        if self.H is not None:
            H = _read_int(self.H, "H")
            set_(self, "H", H)
            set_(self, "h", _as_index_array(self.h, "h", H, "a step"))
        lengths = {name: getattr(self, name).shape[0] for name in ("s", "a", "r", "s_next")}
        if self.h is not None:
            lengths["h"] = self.h.shape[0]
        if len(set(lengths.values())) > 1:
            raise ValueError(f"arrays must have equal lengths N, got {lengths}")

    @property
    def N(self) -> int:
        """Number of transitions."""
        return int(self.s.shape[0])

    def subset(self, index) -> Transitions:
        """The transitions at ``index`` (an int array or a boolean mask), as a new dataset."""
        h = None if self.h is None else self.h[index]
        return Transitions(self.s[index], self.a[index], self.r[index], self.s_next[index],
                           self.S, self.A, h, self.H)


def _read_counts(counts, name: str = "counts", shapes: str = "(S, A) or (H, S, A)",
                 ndims=(2, 3)) -> np.ndarray:
    """Non-negative integer-valued counts as int64, with ``ndim`` in ``ndims`` and no empty
    axis (``shapes`` describes the expected shape in the message).

    Raises TypeError for a non-numeric dtype, ValueError otherwise (naming the entry).
    """
    arr = np.asarray(counts)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    if arr.ndim not in ndims or 0 in arr.shape:
        raise ValueError(f"{name} has shape {arr.shape}, expected {shapes} with no empty axis")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr) | (arr < 0) | (arr != np.round(arr)) | (arr > 2.0**62)
    else:
        bad = arr < 0
    if bad.any():
        idx = tuple(np.argwhere(bad)[0])
        raise ValueError(f"{name}[{_index(idx)}] = {plain(arr[idx])} is not a non-negative integer")
    return arr.astype(np.int64)


@dataclass(frozen=True)
class TransitionStatistics:
    """Sufficient statistics of a transition dataset, pooled or per step.

    Construction validates and stores int64 / float64 copies.

    Attributes
    ----------
    counts : numpy.ndarray, int64, (S, A) or (H, S, A)
        ``n(s, a)`` (``n_h(s, a)``): number of transitions from (s, a) (at step h).
    reward_sums : numpy.ndarray, float64, same shape
        Sum of the observed rewards of those transitions (0 where the count is 0).
    transition_counts : numpy.ndarray, int64, (S, A, S) or (H, S, A, S)
        ``n(s, a, s')``: number of those transitions that moved to ``s'``.

    Raises
    ------
    ValueError
        Negative or non-integer counts, shapes that do not match, transition counts not
        summing to the counts, a non-finite reward sum or a non-zero one on a pair with
        count 0 (each naming the entry).
    TypeError
        Non-numeric arrays.
    """

    counts: np.ndarray
    reward_sums: np.ndarray
    transition_counts: np.ndarray

    def __post_init__(self):
        counts = _read_counts(self.counts)
        expected = counts.shape + counts.shape[-2:-1]
        trans = _read_counts(self.transition_counts, "transition_counts",
                             "(S, A, S) or (H, S, A, S)", ndims=(3, 4))
        if trans.shape != expected:
            raise ValueError(f"transition_counts has shape {trans.shape}, expected {expected} "
                             f"to match counts {counts.shape}")
        mismatch = trans.sum(axis=-1) != counts
        if mismatch.any():
            idx = tuple(np.argwhere(mismatch)[0])
            raise ValueError(f"transition_counts[{_index(idx)}, :] sums to "
                             f"{int(trans[idx].sum())}, not counts[{_index(idx)}] = "
                             f"{int(counts[idx])}")
        sums = np.asarray(self.reward_sums)
        if sums.dtype.kind not in "biuf":
            raise TypeError(f"reward_sums must hold real numbers, got dtype {sums.dtype}")
        sums = sums.astype(np.float64)
        if sums.shape != counts.shape:
            raise ValueError(f"reward_sums has shape {sums.shape}, expected {counts.shape}")
        bad = ~np.isfinite(sums) | ((counts == 0) & (sums != 0))
        if bad.any():
            idx = tuple(np.argwhere(bad)[0])
            raise ValueError(f"reward_sums[{_index(idx)}] = {plain(sums[idx])} is not finite "
                             "or is non-zero for a pair with count 0")
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "reward_sums", sums)
        object.__setattr__(self, "transition_counts", trans)

    @property
    def per_step(self) -> bool:
        """True for per-step statistics (leading axis H)."""
        return self.counts.ndim == 3

    @property
    def N(self) -> int:
        """Total number of transitions."""
        return int(self.counts.sum())


@njit(cache=True)
def _transitions_kernel(pair_tab, P_tab, R_flat, bernoulli, A, N, rng):
    """``N`` i.i.d. transitions: pair ``k = s * A + a`` from the alias table ``pair_tab``
    (1, S*A, 2), then ``s'`` from row k of ``P_tab`` (S*A, S, 2), then (``bernoulli`` only)
    ``r = 1[u < R_flat[k]]``; one uniform each, in that order. Returns ``s, a, r, s_next``
    with ``r = R_flat[k]`` when ``bernoulli`` is False."""
    s = np.empty(N, dtype=np.int64)
    a = np.empty(N, dtype=np.int64)
    r = np.empty(N)
    s_next = np.empty(N, dtype=np.int64)
    for i in range(N):
        k = _kernels.alias_draw(pair_tab, 0, rng)
        s[i] = k // A
        a[i] = k % A
        s_next[i] = _kernels.alias_draw(P_tab, k, rng)
        if bernoulli:
            r[i] = 1.0 if rng.random() < R_flat[k] else 0.0
        else:
            r[i] = R_flat[k]
    return s, a, r, s_next


def _alias_draw_numpy(table, rows, u):
    """Vectorised :func:`tabular._kernels.alias_draw`: one draw per uniform ``u[i]`` from row
    ``rows[i]`` of ``table`` (M, K, 2)."""
    K = table.shape[1]
    x = u * K
    col = np.minimum(x.astype(np.int64), K - 1)
    keep = (x - col) < table[rows, col, 0]
    return np.where(keep, col, table[rows, col, 1].astype(np.int64))


def _transitions_numpy(pair_tab, P_tab, R_flat, bernoulli, A, N, rng):
    """Plain-numpy reference of :func:`_transitions_kernel` (the same uniforms, the same
    draws)."""
    width = 3 if bernoulli else 2
    u = rng.random(width * N).reshape(N, width)
    k = _alias_draw_numpy(pair_tab, np.zeros(N, dtype=np.int64), u[:, 0])
    r = np.where(u[:, 2] < R_flat[k], 1.0, 0.0) if bernoulli else R_flat[k]
    return k // A, k % A, r, _alias_draw_numpy(P_tab, k, u[:, 1])


def _read_mu(mdp: TabularMDP, mu) -> np.ndarray:
    """``mu`` checked as a distribution of shape (S, A), or (H, S, A) for finite horizon."""
    from tabular.planning import _read_distribution

    S, A = mdp.S, mdp.A
    shapes = ((S, A), (mdp.H, S, A)) if mdp.kind == "finite" else ((S, A),)
    return _read_distribution(mu, shapes, "mu")


def sample_transitions(mdp: TabularMDP, mu, N: int, *, rewards: str = "deterministic",
                       seed=None) -> Transitions:
    """Sample an i.i.d. offline dataset of ``N`` transitions (per step, for an (H, S, A) ``mu``).

    Each transition draws ``(s, a) ~ mu`` jointly, ``s' ~ P(. | s, a)`` and records a
    reward ``r``, by ``rewards``:

    * ``"deterministic"``: ``r = R(s, a)``, the MDP's expected reward (the reward function
      is then known on every seen pair, as in Li, Shi, Chen, Chi, Wei 2022);
    * ``"bernoulli"``: ``r ~ Bernoulli(R(s, a))``, independent of ``s'``: random rewards in
      {0, 1} with mean ``R(s, a)`` (the random rewards in [0, 1] of Rashidinejad et al. 2021);
      needs every ``R(s, a)`` in [0, 1].

    Source: the data model of Rashidinejad et al. (2021) and of Li et al. (2022), eq. (17).

    Parameters
    ----------
    mdp : TabularMDP
        Discounted or finite-horizon with stationary P for an (S, A) ``mu``; finite-horizon
        (stationary or not) for an (H, S, A) ``mu``.
    mu : array_like, shape (S, A) or (H, S, A)
        Data distribution over state-action pairs (per step): non-negative, finite, each
        distribution summing to 1 (atol 1e-9).
    N : int
        Number of transitions (per step for an (H, S, A) ``mu``), >= 0.
    rewards : {"deterministic", "bernoulli"}, default "deterministic"
    seed : int, SeedSequence, Generator or None

    Returns
    -------
    Transitions
        ``N`` transitions without steps for (S, A) ``mu``; ``H * N`` transitions with
        ``h`` (N at each step, in step order) for (H, S, A) ``mu``. The same seed gives the
        same arrays. Bernoulli rewards take a third uniform per transition, so for the
        same seed the pairs differ from those drawn with deterministic rewards (same law).

    Raises
    ------
    ValueError
        ``mu`` of the wrong shape (the message names the expected shape), negative, not
        finite or not summing to 1 (named); ``N < 0``; an (S, A) ``mu`` for a
        time-inhomogeneous MDP (give one distribution per step); an unknown ``rewards``;
        Bernoulli rewards with some ``R`` outside [0, 1] (named).
    TypeError
        ``mdp`` not a TabularMDP, ``N`` not an int.
    """
    _require_mdp(mdp)
    N = _read_int(N, "N", minimum=0)
    mu = _read_mu(mdp, mu)
    if rewards not in ("deterministic", "bernoulli"):
        raise ValueError(f"rewards must be 'deterministic' or 'bernoulli', got {rewards!r}")
    bernoulli = rewards == "bernoulli"
    if bernoulli:
        bad = (mdp.R < 0) | (mdp.R > 1)
        if bad.any():
            idx = tuple(np.argwhere(bad)[0])
            raise ValueError(f"Bernoulli rewards need R in [0, 1]: R[{_index(idx)}] = "
                             f"{plain(float(mdp.R[idx]))}")
    rng = as_generator(seed)
    S, A = mdp.S, mdp.A
    if mu.ndim == 2:
        if mdp.P.ndim == 4 or mdp.R.ndim == 3:
            raise ValueError("mu has shape (S, A) but the MDP is time-inhomogeneous: give mu "
                             "of shape (H, S, A), one distribution per step")
        P_tab = _alias_tables(mdp.P.reshape(S * A, S))
        pair_tab = _alias_tables(mu.reshape(1, S * A))
        s, a, r, s_next = _transitions_kernel(pair_tab, P_tab, mdp.R.reshape(-1), bernoulli,
                                              A, N, rng)
        return Transitions(s, a, r, s_next, S, A)
    parts = []
    for h in range(mdp.H):
        P_tab = _alias_tables(mdp.P_h(h).reshape(S * A, S))
        pair_tab = _alias_tables(mu[h].reshape(1, S * A))
        R_flat = np.ascontiguousarray(mdp.R_h(h).reshape(-1))
        parts.append(_transitions_kernel(pair_tab, P_tab, R_flat, bernoulli, A, N, rng))
    s, a, r, s_next = (np.concatenate(x) for x in zip(*parts))
    h = np.repeat(np.arange(mdp.H, dtype=np.int64), N)
    return Transitions(s, a, r, s_next, S, A, h, mdp.H)


def episodes_to_transitions(episodes: Episodes, S: int, A: int, *,
                            per_step: bool = True) -> Transitions:
    """The transitions ``(s_h, a_h, r_h, s_{h+1})`` of sampled episodes, as one dataset.

    Steps after termination (action -1) are dropped. Transitions of one episode are
    dependent (trajectory data, unlike :func:`sample_transitions`).

    Parameters
    ----------
    episodes : Episodes
        From :func:`sample_episodes` (n episodes of H steps).
    S, A : int
        Numbers of states and actions.
    per_step : bool, default True
        Keep the step index ``h`` (finite-horizon data, ``H`` = the episodes' length);
        False pools all steps (data for a discounted MDP).

    Returns
    -------
    Transitions
        Ordered episode by episode, step by step.

    Raises
    ------
    ValueError
        If a state or action is out of range for ``S, A``, or the fields of ``episodes``
        disagree in shape or layout (named; see :func:`_read_episodes`).
    TypeError
        If ``episodes`` is not an :class:`Episodes` or a field has the wrong dtype.
    """
    episodes = _read_episodes(episodes, S, A, min_episodes=0)
    n, H = episodes.actions.shape
    taken = episodes.actions >= 0
    steps = np.broadcast_to(np.arange(H, dtype=np.int64), (n, H))
    h = steps[taken] if per_step else None
    return Transitions(episodes.states[:, :-1][taken], episodes.actions[taken],
                       episodes.rewards[taken], episodes.states[:, 1:][taken], S, A,
                       h, H if per_step else None)


@njit(cache=True)
def _statistics_kernel(g, s, a, r, s_next, G, S, A):
    """Counts (G, S, A), reward sums (G, S, A) and transition counts (G, S, A, S) of the
    transitions grouped by ``g`` (a step or a fold index in ``[0, G)``), in data order."""
    counts = np.zeros((G, S, A), dtype=np.int64)
    reward_sums = np.zeros((G, S, A))
    transition_counts = np.zeros((G, S, A, S), dtype=np.int64)
    for i in range(s.shape[0]):
        counts[g[i], s[i], a[i]] += 1
        reward_sums[g[i], s[i], a[i]] += r[i]
        transition_counts[g[i], s[i], a[i], s_next[i]] += 1
    return counts, reward_sums, transition_counts


def _statistics_numpy(g, s, a, r, s_next, G, S, A):
    """Plain-numpy reference of :func:`_statistics_kernel` (``np.add.at``, data order)."""
    counts = np.zeros((G, S, A), dtype=np.int64)
    reward_sums = np.zeros((G, S, A))
    transition_counts = np.zeros((G, S, A, S), dtype=np.int64)
    np.add.at(counts, (g, s, a), 1)
    np.add.at(reward_sums, (g, s, a), r)
    np.add.at(transition_counts, (g, s, a, s_next), 1)
    return counts, reward_sums, transition_counts


def _grouped_statistics(data: Transitions, g, G: int):
    return _statistics_kernel(np.ascontiguousarray(g, dtype=np.int64), data.s, data.a, data.r,
                              data.s_next, G, data.S, data.A)


def transition_statistics(data: Transitions) -> TransitionStatistics:
    """Counts, reward sums and transition counts of a dataset (Numba kernel).

    Parameters
    ----------
    data : Transitions

    Returns
    -------
    TransitionStatistics
        Per step, shapes (H, S, A) and (H, S, A, S), when ``data`` has steps; pooled,
        (S, A) and (S, A, S), otherwise. An empty dataset gives zeros.

    Raises
    ------
    TypeError
        If ``data`` is not a :class:`Transitions`.
    """
    if not isinstance(data, Transitions):
        raise TypeError(f"data must be a Transitions, got {type(data).__name__}")
    if data.h is None:
        g = np.zeros(data.N, dtype=np.int64)
        counts, sums, trans = _grouped_statistics(data, g, 1)
        return TransitionStatistics(counts[0], sums[0], trans[0])
    return TransitionStatistics(*_grouped_statistics(data, data.h, data.H))


def mixture_behaviour(mdp: TabularMDP, pi_star, lam: float) -> np.ndarray:
    """Data distribution ``mu = lam * d^{pi_star} + (1 - lam) * uniform``.

    Interpolates between expert data (``lam = 1``: ``C* = 1``) and uniform coverage
    (``lam = 0``); the spectrum of data compositions of Rashidinejad et al. (2021), P4 of the
    spec sheet.

    Parameters
    ----------
    mdp : TabularMDP
        Discounted (``d`` the normalised discounted occupancy, (S, A)) or finite-horizon
        (``d_h`` the per-step occupancy, (H, S, A); uniform ``1/(S A)`` at every step).
    pi_star : array_like
        The comparator policy (usually optimal), as accepted by
        :func:`tabular.planning.occupancy`.
    lam : float in [0, 1]

    Returns
    -------
    numpy.ndarray, float64, (S, A) or (H, S, A)
        Each distribution sums to 1.

    Raises
    ------
    ValueError
        ``lam`` outside [0, 1] or not finite; an episodic MDP; an invalid policy.
    TypeError
        ``lam`` not a real number.
    """
    from tabular.planning import occupancy

    _require_mdp(mdp)
    if isinstance(lam, (bool, np.bool_)) or not isinstance(lam, numbers.Real):
        raise TypeError(f"lam must be a real number, got {type(lam).__name__}")
    lam = float(lam)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam = {lam!r} must lie in [0, 1]")
    if mdp.kind == "episodic":
        raise ValueError("mixture_behaviour needs a discounted or finite-horizon MDP "
                         "(an episodic occupancy counts visits, it is not a distribution)")
    d = np.maximum(occupancy(mdp, pi_star), 0.0)  # a linear solve can leave -1e-17 entries
    return lam * d + (1.0 - lam) / (mdp.S * mdp.A)
