"""Hypothesis strategies drawing valid tabular MDPs and policies, for property tests of planning and learning code."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.strategies import SearchStrategy

from tabular.mdp import TabularMDP, _require_mdp, validate_policy

__all__ = ["mdps", "policies"]

_KINDS = ("discounted", "finite", "episodic")


def _value(draw, x):
    """Draw from ``x`` if it is a strategy, else return it as is."""
    return draw(x) if isinstance(x, SearchStrategy) else x


def _weights(draw, shape, sparse: bool) -> np.ndarray:
    """Row-stochastic float64 array of ``shape``; rows have zero entries when ``sparse``.

    Weights are drawn in [0.01, 1] (or exactly 0 when sparse); a row drawn all-zero gets
    weight 1 on a drawn column, so every row has positive mass.
    """
    positive = st.floats(0.01, 1.0)
    elements = st.one_of(st.just(0.0), positive) if sparse else positive
    w = draw(hnp.arrays(np.float64, shape, elements=elements))
    anchor = draw(hnp.arrays(np.int64, shape[:-1], elements=st.integers(0, shape[-1] - 1)))
    empty = w.sum(axis=-1) == 0
    w[empty, anchor[empty]] = 1.0
    return w / w.sum(axis=-1, keepdims=True)


def mdps(*, S=st.integers(1, 6), A=st.integers(1, 4), kind="discounted",
         gamma=st.floats(0.5, 0.99), H=st.integers(1, 6), reward_range=(-1.0, 1.0),
         time_inhomogeneous=False, sparse=st.booleans(), n_terminal=None) -> SearchStrategy:
    """A strategy drawing valid :class:`~tabular.mdp.TabularMDP` instances.

    Every argument may be a plain value or a Hypothesis strategy drawing one.

    Parameters
    ----------
    S, A : int or strategy
        Numbers of states and actions (>= 1).
    kind : {"discounted", "finite", "episodic"} or strategy
        ``"discounted"``: ``H = None`` and ``gamma`` as drawn (must be < 1).
        ``"finite"``: ``H`` as drawn and ``gamma`` as drawn (any value in [0, 1]).
        ``"episodic"``: ``gamma = 1``, ``H = None``, at least one terminal state (see below).
    gamma : float or strategy
        Unused for ``"episodic"``.
    H : int or strategy
        Used only for ``"finite"``.
    reward_range : (lo, hi) or strategy
        Rewards of non-terminal states are drawn in ``[lo, hi]``; terminal states get 0.
    time_inhomogeneous : bool or strategy
        Draw ``P`` (H, S, A, S) and ``R`` (H, S, A); only with ``kind="finite"``.
    sparse : bool or strategy
        When True, transition rows (and mu0) contain zero entries.
    n_terminal : int, strategy or None
        Number of terminal states (absorbing, zero reward). None: ``integers(1, S)`` for
        ``"episodic"``, 0 otherwise.

    Notes
    -----
    The episodic family satisfies the SSP check by construction: rewards of non-terminal
    states are drawn in ``[lo, min(hi, -0.01)]`` (so every end component avoiding the
    terminal states has negative rewards), and at each non-terminal state one drawn action
    puts probability at least 0.01 / (S + 1) on a drawn terminal state (so every state can
    reach the terminal set). Other actions may cycle among non-terminal states forever, so
    improper policies occur. ``lo`` must be at most -0.01.

    Raises
    ------
    ValueError
        At draw time, for an unknown kind, ``time_inhomogeneous`` without ``"finite"``, or
        an episodic reward range with ``lo > -0.01``.
    """

    @st.composite
    def _draw(draw):
        kind_ = _value(draw, kind)
        if kind_ not in _KINDS:
            raise ValueError(f"kind = {kind_!r} must be one of {_KINDS}")
        S_ = _value(draw, S)
        A_ = _value(draw, A)
        H_ = _value(draw, H) if kind_ == "finite" else None
        gamma_ = 1.0 if kind_ == "episodic" else _value(draw, gamma)
        lo, hi = _value(draw, reward_range)
        inhomogeneous = _value(draw, time_inhomogeneous)
        if inhomogeneous and kind_ != "finite":
            raise ValueError("time_inhomogeneous MDPs need kind='finite' (a horizon H)")
        sparse_ = _value(draw, sparse)
        if n_terminal is None:
            n_term = draw(st.integers(1, S_)) if kind_ == "episodic" else 0
        else:
            n_term = _value(draw, n_terminal)
        if not 0 <= n_term <= S_:
            raise ValueError(f"n_terminal = {n_term} must lie in [0, S = {S_}]")
        if kind_ == "episodic":
            if n_term < 1:
                raise ValueError("episodic MDPs need n_terminal >= 1")
            if lo > -0.01:
                raise ValueError(f"episodic MDPs need reward_range lo <= -0.01, got {lo}")
            hi = min(hi, -0.01)
        lead = (H_,) if inhomogeneous else ()

        P = _weights(draw, lead + (S_, A_, S_), sparse_)
        R = draw(hnp.arrays(np.float64, lead + (S_, A_), elements=st.floats(lo, hi)))
        order = draw(st.permutations(range(S_)))
        terminal = np.zeros(S_, dtype=bool)
        terminal[list(order[:n_term])] = True
        if kind_ == "episodic":
            P = _reach_terminal(draw, P, terminal)
        P[..., terminal, :, :] = 0.0
        for s in np.flatnonzero(terminal):
            P[..., s, :, s] = 1.0
        R[..., terminal, :] = 0.0
        mu0 = _weights(draw, (S_,), sparse_)
        return TabularMDP(P, R, mu0, gamma=gamma_, H=H_, terminal=terminal)

    return _draw()


def _reach_terminal(draw, P: np.ndarray, terminal: np.ndarray) -> np.ndarray:
    """Mix, at each non-terminal state, one drawn action's row with a drawn terminal state."""
    S, A = P.shape[-3], P.shape[-2]
    targets = np.flatnonzero(terminal)
    P = P.copy()
    for s in np.flatnonzero(~terminal):
        a = draw(st.integers(0, A - 1))
        t = int(targets[draw(st.integers(0, len(targets) - 1))])
        # (1 - w) * row + w * e_t stays a distribution and gives t probability >= w.
        w = draw(st.floats(0.01, 1.0)) / (S + 1)
        P[s, a] *= 1.0 - w
        P[s, a, t] += w
        P[s, a] /= P[s, a].sum()
    return P


def policies(mdp: TabularMDP, *, stochastic=st.booleans()) -> SearchStrategy:
    """A strategy drawing a valid policy for ``mdp`` (see :func:`~tabular.mdp.validate_policy`).

    Deterministic policies are int64 arrays of shape (S,) or (H, S); stochastic ones are
    float64 arrays of shape (S, A) or (H, S, A) with some zero entries possible. When
    ``mdp.H`` is set, both stationary and time-indexed shapes are drawn.

    Parameters
    ----------
    mdp : TabularMDP
    stochastic : bool or strategy, default ``booleans()``
    """
    _require_mdp(mdp)

    @st.composite
    def _draw(draw):
        lead = (mdp.H,) if mdp.H is not None and draw(st.booleans()) else ()
        if _value(draw, stochastic):
            pi = _weights(draw, lead + (mdp.S, mdp.A), sparse=draw(st.booleans()))
        else:
            pi = draw(hnp.arrays(np.int64, lead + (mdp.S,), elements=st.integers(0, mdp.A - 1)))
        validate_policy(mdp, pi)
        return pi

    return _draw()


# --- tree MDPs (tabular.tree) ---------------------------------------------------------------

__all__ += ["tree_mdps", "tree_policies"]

_TREE_REWARDS = ("binary", "float")


def tree_mdps(*, n_vocab=st.integers(2, 4), depth=st.integers(1, 4), n_prompts=st.integers(1, 3),
              rewards="binary", eos=st.booleans(), max_leaves=256) -> SearchStrategy:
    """A strategy drawing valid :class:`~tabular.tree.TreeMDP` instances.

    Every argument may be a plain value or a Hypothesis strategy drawing one.

    Parameters
    ----------
    n_vocab, depth, n_prompts : int or strategy
        The depth is lowered until ``n_vocab**depth <= max_leaves``.
    rewards : {"binary", "float"} or strategy
        ``"binary"``: each prompt draws a pattern: no correct leaf, exactly one, all, or each
        leaf correct with a drawn density. ``"float"``: rewards uniform in [0, 1] with a drawn
        share of exact zeros.
    eos : bool or strategy
        Whether to draw an end-of-sequence token (rewards are then 0 on non-answer leaves).
    max_leaves : int

    Raises
    ------
    ValueError
        At draw time, for an unknown reward kind.
    """
    from tabular.tree import TreeMDP, _levels

    @st.composite
    def _draw(draw):
        V = _value(draw, n_vocab)
        D = _value(draw, depth)
        while D > 1 and V**D > max_leaves:
            D -= 1
        n = _value(draw, n_prompts)
        kind = _value(draw, rewards)
        if kind not in _TREE_REWARDS:
            raise ValueError(f"rewards = {kind!r} must be one of {_TREE_REWARDS}")
        e = draw(st.integers(0, V - 1)) if _value(draw, eos) else None
        answers = np.flatnonzero(_levels(V, D, e)[2])
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        R = np.zeros((n, V**D))
        for x in range(n):
            if kind == "float":
                zero_share = draw(st.sampled_from([0.0, 0.5, 0.9]))
                values = rng.random(answers.size)
                R[x, answers] = np.where(rng.random(answers.size) < zero_share, 0.0, values)
                continue
            pattern = draw(st.sampled_from(["density", "none", "one", "all"]))
            if pattern == "one":
                R[x, answers[draw(st.integers(0, answers.size - 1))]] = 1.0
            elif pattern == "all":
                R[x, answers] = 1.0
            elif pattern == "density":
                R[x, answers] = rng.random(answers.size) < draw(st.floats(0.0, 1.0))
        return TreeMDP(R, n_vocab=V, depth=D, eos=e)

    return _draw()


def tree_policies(tree, *, shared=st.booleans(), scale=st.floats(0.0, 3.0),
                  masked=False) -> SearchStrategy:
    """A strategy drawing a :class:`~tabular.tree.TreePolicy` for ``tree``.

    Logits are normal with standard deviation ``scale``; with ``shared`` True, the policy has
    both parts (``z_shared`` and ``z_prompt``, ``c`` drawn in [0.1, 2]), else per-prompt
    tables (``c = 1``, ``z_shared = 0``, trained part ``z_prompt``). With ``masked`` True
    each logit of ``z_prompt`` is ``-inf`` with probability 0.2, except one token per row,
    drawn per row, which stays (every row keeps a token; masks matter only when ``c > 0``,
    which both kinds have).
    """
    from tabular.tree import TreeMDP, TreePolicy

    if not isinstance(tree, TreeMDP):
        raise TypeError(f"tree must be a TreeMDP, got {type(tree).__name__}")

    @st.composite
    def _draw(draw):
        sigma = _value(draw, scale)
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        shape = (tree.n_nodes, tree.n_vocab)
        z_prompt = sigma * rng.standard_normal((tree.n_prompts,) + shape)
        if _value(draw, shared):
            policy = TreePolicy(sigma * rng.standard_normal(shape), z_prompt,
                                draw(st.floats(0.1, 2.0)))
        else:
            policy = TreePolicy.tabular(z_prompt)
        if _value(draw, masked) and tree.n_vocab > 1:
            mask = rng.random(z_prompt.shape) < 0.2
            keep = rng.integers(tree.n_vocab, size=z_prompt.shape[:-1] + (1,))
            np.put_along_axis(mask, keep, False, axis=-1)  # a drawn token stays in each row
            policy.z_prompt[mask] = -np.inf
        return policy

    return _draw()
