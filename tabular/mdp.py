"""Tabular MDPs (Puterman 1994, ch. 2-4; SSP assumptions: Bertsekas and Tsitsiklis 1991) as validated, immutable arrays."""
from __future__ import annotations

import math
import numbers

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

__all__ = ["TabularMDP", "normalize_rows", "proper_policy", "validate_policy"]

_NUMERIC_KINDS = "biuf"


def _index(idx) -> str:
    return ", ".join(str(int(i)) for i in idx)


def _as_numeric_array(x, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x)
    except ValueError as err:  # ragged nested lists
        raise ValueError(f"{name} could not be read as an array: {err}") from None
    if arr.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(np.argwhere(bad)[0])
        raise ValueError(f"{name}[{_index(idx)}] = {float(arr[idx])!r} is not finite")


def _check_nonnegative(arr: np.ndarray, name: str) -> None:
    bad = arr < 0
    if bad.any():
        idx = tuple(np.argwhere(bad)[0])
        raise ValueError(f"{name}[{_index(idx)}] = {float(arr[idx])!r} is negative")


def _check_rows_sum_to_one(arr: np.ndarray, name: str, atol: float) -> None:
    """Every last-axis row of ``arr`` sums to 1 within ``atol`` (a 1-d ``arr`` is one row)."""
    sums = np.atleast_1d(arr.sum(axis=-1))
    bad = np.abs(sums - 1.0) > atol
    if bad.any():
        idx = tuple(np.argwhere(bad)[0])
        row = f"row {name}[{_index(idx)}, :]" if arr.ndim > 1 else name
        raise ValueError(f"{row} sums to {float(sums[idx])!r}, not 1 (atol {atol:.2g})")


def normalize_rows(P) -> np.ndarray:
    """Return a float64 copy of ``P`` with every last-axis row divided by its sum.

    Never called by :class:`TabularMDP` itself: normalising is the caller's explicit choice.

    Parameters
    ----------
    P : array_like, shape (..., S)
        Non-negative, finite weights; any number of leading axes.

    Returns
    -------
    numpy.ndarray, float64, same shape as ``P``
        Rows that sum to 1 up to rounding.

    Raises
    ------
    ValueError
        Naming the first entry that is negative or not finite, or the first row summing to 0.
    TypeError
        If ``P`` does not hold real numbers.
    """
    P = np.array(_as_numeric_array(P, "P"), dtype=np.float64)
    if P.ndim == 0:
        raise ValueError("P must have at least one axis, got a scalar")
    _check_finite(P, "P")
    _check_nonnegative(P, "P")
    sums = P.sum(axis=-1, keepdims=True)
    zero = np.atleast_1d(sums[..., 0] == 0)
    if zero.any():
        idx = tuple(np.argwhere(zero)[0])
        row = f"row P[{_index(idx)}, :]" if P.ndim > 1 else "P"
        raise ValueError(f"{row} sums to 0 and cannot be normalised")
    return P / sums


def _read_gamma(gamma, allow_one: bool = True) -> float:
    """``gamma`` as a float in [0, 1] ([0, 1) when ``allow_one`` is False).

    Raises TypeError for a non-real (bools included), ValueError out of range.
    """
    if isinstance(gamma, (bool, np.bool_)) or not isinstance(gamma, numbers.Real):
        raise TypeError(f"gamma must be a real number, got {type(gamma).__name__}")
    gamma = float(gamma)
    upper_ok = gamma <= 1.0 if allow_one else gamma < 1.0  # False for NaN
    if not (gamma >= 0.0 and upper_ok):
        raise ValueError(f"gamma = {gamma!r} must lie in [0, 1{']' if allow_one else ')'}")
    return gamma


def _is_int(x) -> bool:
    """Whether ``x`` is an integer (Python or numpy), bools excluded."""
    return isinstance(x, numbers.Integral) and not isinstance(x, (bool, np.bool_))


def _read_int(x, name: str, minimum: int = 1) -> int:
    """``x`` as an int, checked to be an integer (not a bool) and at least ``minimum``.

    Raises TypeError for a non-integer, ValueError below ``minimum``; messages name ``name``.
    """
    if not _is_int(x):
        raise TypeError(f"{name} must be an int, got {type(x).__name__}")
    if x < minimum:
        raise ValueError(f"{name} = {x} must be at least {minimum}")
    return int(x)


def _read_positive(x, name: str, *, allow_zero: bool = False, allow_inf: bool = False) -> float:
    """``x`` as a float, checked to be a real number (not a bool), ``> 0`` (``>= 0`` with
    ``allow_zero``) and finite (``inf`` also accepted with ``allow_inf``).

    Raises TypeError for a non-real, ValueError otherwise (NaN included); messages name ``name``.
    """
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(x).__name__}")
    x = float(x)
    sign_ok = x >= 0 if allow_zero else x > 0  # False for NaN
    size_ok = math.isfinite(x) or (allow_inf and x == math.inf)
    if not (sign_ok and size_ok):
        sign = "non-negative" if allow_zero else "positive"
        size = " (inf allowed)" if allow_inf else " and finite"
        raise ValueError(f"{name} = {x!r} must be {sign}{size}")
    return x


def _read_H(H) -> int | None:
    if H is None:
        return None
    if not _is_int(H):
        raise TypeError(f"H must be an int or None, got {type(H).__name__}")
    return _read_int(H, "H")


def _read_terminal(terminal, S: int) -> np.ndarray:
    mask = np.zeros(S, dtype=bool)
    if terminal is None:
        return mask
    arr = np.asarray(terminal if not isinstance(terminal, (set, frozenset)) else sorted(terminal))
    if arr.dtype == bool:
        if arr.shape != (S,):
            raise ValueError(f"terminal mask has shape {arr.shape}, expected ({S},)")
        return arr.copy()
    if arr.size == 0:
        return mask
    if arr.dtype.kind not in "iu" or arr.ndim != 1:
        raise TypeError("terminal must be a boolean mask of shape (S,) or a 1-d list of state indices")
    for s in arr:
        if not 0 <= s < S:
            raise ValueError(f"terminal state {int(s)} is not a state (S = {S})")
    mask[arr] = True
    return mask


def _reach_graph(P: np.ndarray) -> sparse.csr_array:
    """Directed graph on states: s -> s' when P[s, a, s'] > 0 for some a."""
    return sparse.csr_array((P > 0).any(axis=1))


def _distance_to_terminal(P: np.ndarray, terminal: np.ndarray) -> np.ndarray:
    """BFS distance (in steps) from each state to the terminal set; inf if unreachable."""
    S = terminal.shape[0]
    reverse = _reach_graph(P).T.tocsr()
    # Add a sink node S with an edge to every terminal state (in the reversed graph).
    sink_edges = np.zeros((1, S + 1), dtype=bool)
    sink_edges[0, :S] = terminal
    graph = sparse.vstack([sparse.hstack([reverse, np.zeros((S, 1), bool)]), sink_edges]).tocsr()
    dist = csgraph.shortest_path(graph, directed=True, unweighted=True, indices=S)
    return dist[:S] - 1.0


def _maximal_end_components(P: np.ndarray, terminal: np.ndarray):
    """Maximal end components among non-terminal states (standard SCC pruning iteration).

    Returns ``(allowed, labels)``: ``allowed[s, a]`` is True iff the pair (s, a) lies in a
    maximal end component avoiding the terminal states; ``labels`` are the strongly
    connected component labels of the final allowed graph.
    """
    S, A, _ = P.shape
    support = P > 0
    allowed = np.repeat(~terminal[:, None], A, axis=1)
    while True:
        graph = sparse.csr_array((support & allowed[:, :, None]).any(axis=1))
        _, labels = csgraph.connected_components(graph, directed=True, connection="strong")
        leaves = (support & (labels[None, None, :] != labels[:, None, None])).any(axis=2)
        leaves |= (support & terminal[None, None, :]).any(axis=2)
        new_allowed = allowed & ~leaves
        if np.array_equal(new_allowed, allowed):
            return allowed, labels
        allowed = new_allowed


def _check_ssp(P: np.ndarray, R: np.ndarray, terminal: np.ndarray) -> None:
    dist = _distance_to_terminal(P, terminal)
    unreachable = np.flatnonzero(~np.isfinite(dist))
    if unreachable.size:
        s = int(unreachable[0])
        raise ValueError(
            f"state {s} cannot reach any terminal state under any action sequence: "
            "the SSP assumption (a proper policy exists) fails"
        )
    allowed, labels = _maximal_end_components(P, terminal)
    bad = allowed & (R >= 0)
    if bad.any():
        s, a = (int(i) for i in np.argwhere(bad)[0])
        states = np.flatnonzero((labels == labels[s]) & allowed.any(axis=1)).tolist()
        raise ValueError(
            f"end component {states} avoids the terminal states and action {a} at state {s} "
            f"has reward {float(R[s, a])} >= 0: the stochastic-shortest-path check requires "
            "R < 0 for every action of such a component (a sufficient condition for every "
            "improper policy to collect -infinity)"
        )


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


class TabularMDP:
    """An immutable, validated tabular MDP (Puterman 1994, sec. 2.1).

    Parameters
    ----------
    P : array_like, shape (S, A, S) or (H, S, A, S)
        Transition probabilities ``P[s, a, s'] = Pr(s' | s, a)`` (time-inhomogeneous:
        ``P[h, s, a, s']``). Non-negative, finite, rows summing to 1 within ``atol``.
    R : array_like, shape (S, A) or (H, S, A)
        Expected reward of taking action ``a`` in state ``s`` (at step ``h``); any finite value.
    mu0 : array_like, shape (S,)
        Initial-state distribution.
    gamma : float, default 1.0
        Discount factor in [0, 1].
    H : int or None, default None
        Horizon (number of decisions per episode). Required by 4-d ``P`` or 3-d ``R``,
        whose leading axis must equal ``H``.
    terminal : iterable of int or bool array (S,), optional
        Terminal states: absorbing (``P[..., s, a, s] == 1`` within ``atol``) with zero reward.
    atol : float, optional
        Tolerance on row sums; default ``16 * S * eps`` with ``eps`` the machine epsilon of
        the dtype of ``P`` (float64 for integer input).

    Kinds
    -----
    ``"discounted"``: ``H is None`` and ``gamma < 1``. ``"finite"``: ``H`` given,
    ``0 <= gamma <= 1``. ``"episodic"``: ``gamma == 1``, ``H is None`` and terminal states:
    an undiscounted stochastic shortest path problem, checked at construction against the
    SSP assumptions (Bertsekas and Tsitsiklis 1991): every state can reach the terminal set,
    and every end component avoiding the terminal states uses only actions with ``R < 0``.

    Raises
    ------
    ValueError
        Naming the offending index: wrong shapes, non-finite or negative entries, a row of
        ``P`` or ``mu0`` not summing to 1, a terminal state that is not absorbing or has a
        non-zero reward, ``gamma = 1`` with neither ``H`` nor terminal states, a failed SSP check.
    TypeError
        Non-numeric arrays, a non-integer ``H`` or a non-real ``gamma``.

    Notes
    -----
    Arrays are stored as read-only float64 copies (``P, R, mu0``); the object cannot be
    modified, use :meth:`replace` to derive a new one.
    """

    __slots__ = ("_P", "_R", "_mu0", "_gamma", "_H", "_terminal", "_atol")

    def __init__(self, P, R, mu0, *, gamma=1.0, H=None, terminal=None, atol=None):
        P_in = _as_numeric_array(P, "P")
        R_in = _as_numeric_array(R, "R")
        mu0_in = _as_numeric_array(mu0, "mu0")
        gamma = _read_gamma(gamma)
        H = _read_H(H)
        S, A = self._check_shapes(P_in.shape, R_in.shape, mu0_in.shape, H)
        if atol is None:
            eps = np.finfo(P_in.dtype).eps if P_in.dtype.kind == "f" else np.finfo(np.float64).eps
            atol = 16 * S * float(eps)
        atol = float(atol)
        if not (np.isfinite(atol) and atol >= 0):
            raise ValueError(f"atol = {atol!r} must be finite and non-negative")
        P_ = np.array(P_in, dtype=np.float64, order="C")
        R_ = np.array(R_in, dtype=np.float64, order="C")
        mu0_ = np.array(mu0_in, dtype=np.float64, order="C")
        for arr, name in ((P_, "P"), (R_, "R"), (mu0_, "mu0")):
            _check_finite(arr, name)
        _check_nonnegative(P_, "P")
        _check_nonnegative(mu0_, "mu0")
        _check_rows_sum_to_one(P_, "P", atol)
        _check_rows_sum_to_one(mu0_, "mu0", atol)
        terminal = _read_terminal(terminal, S)
        self._check_terminal(P_, R_, terminal, atol)
        if gamma == 1.0 and H is None:
            if not terminal.any():
                raise ValueError(
                    "gamma = 1 with neither a horizon H nor terminal states: the return is "
                    "undefined; give H, terminal states, or gamma < 1"
                )
            _check_ssp(P_, R_, terminal)
        setattr_ = object.__setattr__
        setattr_(self, "_P", _readonly(P_))
        setattr_(self, "_R", _readonly(R_))
        setattr_(self, "_mu0", _readonly(mu0_))
        setattr_(self, "_gamma", gamma)
        setattr_(self, "_H", H)
        setattr_(self, "_terminal", _readonly(terminal))
        setattr_(self, "_atol", atol)

    @staticmethod
    def _check_shapes(P_shape, R_shape, mu0_shape, H):
        if len(P_shape) not in (3, 4):
            raise ValueError(f"P must have shape (S, A, S) or (H, S, A, S), got {P_shape}")
        if len(R_shape) not in (2, 3):
            raise ValueError(f"R must have shape (S, A) or (H, S, A), got {R_shape}")
        if len(mu0_shape) != 1:
            raise ValueError(f"mu0 must have shape (S,), got {mu0_shape}")
        S, A = P_shape[-3], P_shape[-2]
        if S < 1 or A < 1:
            raise ValueError(f"P has shape {P_shape}: need S >= 1 states and A >= 1 actions")
        if P_shape[-1] != S:
            raise ValueError(f"P has shape {P_shape}: its last axis must have length S = {S}")
        if R_shape[-2:] != (S, A):
            raise ValueError(f"R has shape {R_shape}, expected (..., {S}, {A}) to match P")
        if mu0_shape != (S,):
            raise ValueError(f"mu0 has shape {mu0_shape}, expected ({S},) to match P")
        for name, shape, ndim in (("P", P_shape, 4), ("R", R_shape, 3)):
            if len(shape) == ndim:
                if H is None:
                    raise ValueError(f"{name} has shape {shape} (time-inhomogeneous): H is required")
                if shape[0] != H:
                    raise ValueError(f"{name} has shape {shape}: leading axis must equal H = {H}")
        return S, A

    @staticmethod
    def _check_terminal(P, R, terminal, atol):
        for s in np.flatnonzero(terminal):
            stay = P[..., s, :, s]  # (A,) or (H, A)
            bad = np.abs(stay - 1.0) > atol
            if bad.any():
                idx = tuple(np.argwhere(bad)[0])
                where = f"P[{_index(idx[:-1] + (s,) + idx[-1:] + (s,))}]"
                raise ValueError(
                    f"terminal state {s} is not absorbing: {where} = {float(stay[idx])!r}, not 1 "
                    f"(action {idx[-1]})"
                )
            rew = R[..., s, :]
            bad = rew != 0
            if bad.any():
                idx = tuple(np.argwhere(bad)[0])
                where = f"R[{_index(idx[:-1] + (s,) + idx[-1:])}]"
                raise ValueError(
                    f"terminal state {s} must have zero reward: {where} = {float(rew[idx])!r} "
                    f"(action {idx[-1]})"
                )

    def __setattr__(self, name, value):
        raise AttributeError(f"TabularMDP is immutable; use mdp.replace({name}=...) instead")

    def __delattr__(self, name):
        raise AttributeError("TabularMDP is immutable")

    def __reduce__(self):
        kwargs = dict(gamma=self._gamma, H=self._H, terminal=self._terminal, atol=self._atol)
        return (_rebuild, (self._P, self._R, self._mu0, kwargs))

    # --- attributes -------------------------------------------------------------------
    @property
    def P(self) -> np.ndarray:
        """Transitions, read-only float64, shape (S, A, S) or (H, S, A, S)."""
        return self._P

    @property
    def R(self) -> np.ndarray:
        """Expected rewards, read-only float64, shape (S, A) or (H, S, A)."""
        return self._R

    @property
    def mu0(self) -> np.ndarray:
        """Initial-state distribution, read-only float64, shape (S,)."""
        return self._mu0

    @property
    def gamma(self) -> float:
        """Discount factor in [0, 1]."""
        return self._gamma

    @property
    def H(self) -> int | None:
        """Horizon (decisions per episode), or None."""
        return self._H

    @property
    def terminal(self) -> np.ndarray:
        """Boolean mask of terminal states, read-only, shape (S,)."""
        return self._terminal

    @property
    def atol(self) -> float:
        """Tolerance used for row sums (also by :func:`validate_policy`)."""
        return self._atol

    @property
    def S(self) -> int:
        """Number of states."""
        return self._P.shape[-1]

    @property
    def A(self) -> int:
        """Number of actions."""
        return self._P.shape[-2]

    @property
    def kind(self) -> str:
        """``"finite"`` (H given), ``"discounted"`` (gamma < 1) or ``"episodic"`` (SSP)."""
        if self._H is not None:
            return "finite"
        return "discounted" if self._gamma < 1.0 else "episodic"

    @property
    def time_inhomogeneous(self) -> bool:
        """True when P is (H, S, A, S) or R is (H, S, A)."""
        return self._P.ndim == 4 or self._R.ndim == 3

    def _check_step(self, h) -> int:
        if not _is_int(h):
            raise TypeError(f"h must be an int, got {type(h).__name__}")
        if h < 0 or (self._H is not None and h >= self._H):
            bound = f"< H = {self._H}" if self._H is not None else ">= 0"
            raise ValueError(f"step h = {h} out of range (need 0 <= h {bound})")
        return int(h)

    def P_h(self, h: int) -> np.ndarray:
        """Transitions at step ``h`` (0-based), shape (S, A, S); the same array for every h
        when P is stationary. Raises ValueError unless ``0 <= h < H`` (``h >= 0`` if H is None)."""
        h = self._check_step(h)
        return self._P[h] if self._P.ndim == 4 else self._P

    def R_h(self, h: int) -> np.ndarray:
        """Rewards at step ``h`` (0-based), shape (S, A); see :meth:`P_h`."""
        h = self._check_step(h)
        return self._R[h] if self._R.ndim == 3 else self._R

    def replace(self, **changes) -> "TabularMDP":
        """A new, validated MDP with some of ``P, R, mu0, gamma, H, terminal, atol`` changed.

        ``atol`` is carried over unless ``atol`` or ``P`` is replaced (then the default for
        the new ``P`` applies unless ``atol`` is given).
        """
        fields = ("P", "R", "mu0", "gamma", "H", "terminal", "atol")
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"replace() got unknown fields {sorted(unknown)}; allowed: {fields}")
        args = {f: getattr(self, f) for f in fields}
        if "P" in changes:
            args["atol"] = None
        args.update(changes)
        return TabularMDP(args.pop("P"), args.pop("R"), args.pop("mu0"), **args)

    def __repr__(self) -> str:
        parts = [f"kind={self.kind!r}", f"S={self.S}", f"A={self.A}"]
        if self._H is not None:
            parts.append(f"H={self._H}")
        parts.append(f"gamma={self._gamma}")
        if self.time_inhomogeneous:
            parts.append("time_inhomogeneous=True")
        n_terminal = int(self._terminal.sum())
        if n_terminal:
            parts.append(f"n_terminal={n_terminal}")
        return f"TabularMDP({', '.join(parts)})"


def _rebuild(P, R, mu0, kwargs) -> TabularMDP:
    return TabularMDP(P, R, mu0, **kwargs)


def _require_mdp(mdp) -> None:
    """Raise TypeError unless ``mdp`` is a :class:`TabularMDP` (shared by every tabular module)."""
    if not isinstance(mdp, TabularMDP):
        raise TypeError(f"mdp must be a TabularMDP, got {type(mdp).__name__}")


def proper_policy(mdp: TabularMDP) -> np.ndarray:
    """A deterministic proper policy of an episodic (SSP) MDP.

    Every non-terminal state takes the lowest-index action with positive probability of
    moving one step closer (in BFS distance over the graph ``s -> s'`` iff ``P[s, a, s'] > 0``
    for some ``a``) to the terminal set; terminal states take action 0. From every state
    the terminal set is then reached with probability 1 (Bertsekas and Tsitsiklis 1991,
    the existence of a proper policy).

    Parameters
    ----------
    mdp : TabularMDP
        Of kind ``"episodic"``.

    Returns
    -------
    numpy.ndarray, int64, shape (S,)

    Raises
    ------
    ValueError
        If ``mdp.kind != "episodic"``.
    """
    _require_mdp(mdp)
    if mdp.kind != "episodic":
        raise ValueError(f"proper_policy needs an episodic MDP, got kind {mdp.kind!r}")
    P = mdp.P
    dist = _distance_to_terminal(P, mdp.terminal)
    pi = np.zeros(mdp.S, dtype=np.int64)
    for s in np.flatnonzero(~mdp.terminal):
        closer = (P[s] > 0) & (dist[None, :] == dist[s] - 1)  # (A, S)
        pi[s] = np.flatnonzero(closer.any(axis=1))[0]
    return pi


def validate_policy(mdp: TabularMDP, pi) -> np.ndarray:
    """Check a policy against ``mdp`` and return it as action probabilities.

    Parameters
    ----------
    mdp : TabularMDP
    pi : array_like
        Integer dtype: deterministic, shape (S,) or (H, S), entries in ``[0, A)``.
        Float dtype: stochastic, shape (S, A) or (H, S, A), non-negative, finite, rows
        summing to 1 within ``mdp.atol``. Time-indexed shapes need ``mdp.H`` as leading axis.

    Returns
    -------
    numpy.ndarray, float64
        Shape (S, A) for a stationary policy, (H, S, A) for a time-indexed one (a stationary
        policy stays (S, A) under a finite-horizon MDP; callers broadcast).

    Raises
    ------
    ValueError
        Wrong shape, an entry that is not an action, a negative or non-finite probability,
        a row not summing to 1; the message names the index.
    TypeError
        If ``pi`` is neither of integer nor of float dtype.
    """
    _require_mdp(mdp)
    arr = np.asarray(pi)
    S, A, H = mdp.S, mdp.A, mdp.H
    if arr.dtype.kind in "iu":
        stationary_ndim, axes = 1, "S"
    elif arr.dtype.kind == "f":
        stationary_ndim, axes = 2, "S, A"
    else:
        raise TypeError(
            f"pi must have an integer dtype (deterministic) or a float dtype (stochastic), "
            f"got {arr.dtype}"
        )
    core = (S,) if stationary_ndim == 1 else (S, A)
    if arr.ndim == stationary_ndim + 1:
        if H is None:
            raise ValueError(
                f"pi has shape {arr.shape} (time-indexed) but the MDP has no horizon H"
            )
        if arr.shape != (H,) + core:
            raise ValueError(f"pi has shape {arr.shape}, expected {(H,) + core} (H, {axes})")
    elif arr.shape != core:
        raise ValueError(
            f"pi has shape {arr.shape}, expected ({axes}) = {core} or (H, {axes}) "
            f"with S = {S}, A = {A}, H = {H}"
        )

    if stationary_ndim == 1:
        bad = (arr < 0) | (arr >= A)
        if bad.any():
            idx = tuple(np.argwhere(bad)[0])
            raise ValueError(f"pi[{_index(idx)}] = {int(arr[idx])} is not an action (A = {A})")
        return np.eye(A, dtype=np.float64)[arr]

    out = np.array(arr, dtype=np.float64)
    _check_finite(out, "pi")
    _check_nonnegative(out, "pi")
    # The tolerance follows pi's own dtype, as the constructor's does for P.
    atol = max(mdp.atol, 16 * A * float(np.finfo(arr.dtype).eps))
    _check_rows_sum_to_one(out, "pi", atol)
    return out
