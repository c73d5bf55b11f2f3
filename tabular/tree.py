"""Tree MDPs of prompts and token sequences (the deterministic tree MDP of He et al. 2025, ROVER, Theorem 3.1): exact answer distributions, values and softmax policy gradients, level by level."""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
from numba import njit

from proofs_check.messages import plain
from proofs_check.seeding import as_generator
from tabular.mdp import _as_numeric_array, _check_finite, _index, _read_int, _readonly
from tabular.rlvr._checks import read_prompt_weights, read_scalar

__all__ = [
    "TreeMDP", "TreeValues", "PolicyGradient", "TreePolicy",
    "validate_tree_policy", "softmax_policy", "uniform_policy",
    "leaf_probs", "leaf_log_probs", "reach_probs", "expected_reward",
    "evaluate", "uniform_q", "optimal_q",
    "logit_gradient", "objective_gradient", "expected_reward_gradient", "score_gradient",
    "path_nodes", "token_log_probs", "answer_lengths", "sample_leaves",
]

MAX_LOG2_LEAVES = 24
MAX_LEAVES = 1 << MAX_LOG2_LEAVES  # 16.7 M leaves: one float64 leaf table per prompt is 128 MiB
PI_ATOL = 1e-9  # tolerance on the sum of a policy row


def _read_eos(eos, V: int) -> int | None:
    if eos is None:
        return None
    if isinstance(eos, (bool, np.bool_)) or not isinstance(eos, numbers.Integral):
        raise TypeError(f"eos must be an int (a token index) or None, got {type(eos).__name__}")
    if not 0 <= eos < V:
        raise ValueError(f"eos = {eos} is not a token (n_vocab = {V})")
    return int(eos)


def _levels(V: int, D: int, eos: int | None):
    """Offsets of the levels and the EOS masks: ``done`` per internal node, answers per leaf.

    A node is done when its prefix contains EOS; a leaf is an answer unless a token other
    than EOS follows an EOS (the padded form of a shorter answer is the only one kept).
    """
    offsets = np.zeros(D + 1, dtype=np.int64)
    for t in range(D):
        offsets[t + 1] = offsets[t] + V**t
    done_levels = []
    done = np.zeros(1, dtype=bool)
    invalid = np.zeros(1, dtype=bool)
    token = np.arange(V)
    for _ in range(D):
        done_levels.append(done)
        is_eos = np.zeros(V, dtype=bool) if eos is None else token == eos
        invalid = (invalid[:, None] | (done[:, None] & ~is_eos[None, :])).ravel()
        done = (done[:, None] | is_eos[None, :]).ravel()
    return offsets, np.concatenate(done_levels), ~invalid


class TreeMDP:
    """Prompts, each with a complete ``n_vocab``-ary tree of token sequences and leaf rewards.

    The state after ``t`` tokens is the prefix ``s_t = (x, a_1..a_t)``; the transition is
    deterministic, ``s_{t+1} = s_t . a_{t+1}``; after ``depth`` tokens the episode ends with
    reward ``R[x, y]`` at the leaf ``y`` (gamma = 1, no intermediate reward). Source: the
    tree-structured, deterministic MDP of He et al. (2025), ROVER, Theorem 3.1.

    Indexing. Leaf ``y = sum_t a_t * V**(D-1-t)`` (first token most significant). Internal
    nodes (levels ``t = 0..D-1``, ``V**t`` nodes each) are stored level by level: node ``j``
    of level ``t`` has global id ``offsets[t] + j`` and children ``j * V + a`` at level
    ``t + 1``; :meth:`level` gives the slice of a level. Root = node 0.

    End of sequence. With ``eos = e``, the token ``e`` ends the answer: every later token is
    forced to ``e`` (policies are one-hot ``e`` at done nodes, whose prefix contains ``e``).
    An answer is therefore stored as its EOS-padded leaf; :attr:`answer_mask` marks these
    canonical leaves, and ``R`` must be 0 on the others (which have probability 0).

    Parameters
    ----------
    R : array_like, shape (n_prompts, V**depth) or (V**depth,)
        Leaf rewards, finite floats, or bools (read as 0/1, the binary verifiable reward).
        A 1-d array is one prompt.
    n_vocab : int
        Number of tokens (actions) V >= 2.
    depth : int
        Number of tokens per answer D >= 1 (maximal length with EOS), with
        ``V**D <= 2**24`` leaves.
    eos : int or None
        The end-of-sequence token, or None (fixed-length answers).

    Raises
    ------
    ValueError
        Shapes that do not match ``(n_prompts, V**D)``, ``n_vocab < 2``, ``depth < 1``, more
        than 2**24 leaves, a non-finite ``R[x, y]``, a non-zero reward on a leaf that is not an
        answer, ``eos`` out of range.
    TypeError
        Non-numeric ``R``, non-integer ``n_vocab``, ``depth`` or ``eos``.
    """

    __slots__ = ("_R", "_V", "_D", "_eos", "_offsets", "_done", "_answer_mask", "_slices")

    def __init__(self, R, *, n_vocab, depth, eos=None):
        V = _read_int(n_vocab, "n_vocab", minimum=2)
        D = _read_int(depth, "depth")
        log2_leaves = D * math.log2(V)  # checked before V**D is formed (it may be huge)
        if log2_leaves > MAX_LOG2_LEAVES:
            raise ValueError(f"n_vocab**depth = {V}**{D} = 2**{log2_leaves:.4g} leaves exceeds "
                             f"the limit 2**{MAX_LOG2_LEAVES} = {MAX_LEAVES}")
        eos = _read_eos(eos, V)
        R_in = _as_numeric_array(R, "R")
        R_ = np.array(R_in, dtype=np.float64, order="C")
        if R_.ndim == 1:
            R_ = R_[None, :]
        L = V**D
        if R_.ndim != 2 or R_.shape[1] != L or R_.shape[0] < 1:
            raise ValueError(f"R has shape {R_in.shape}, expected (n_prompts, {L}) or ({L},) "
                             f"for n_vocab = {V}, depth = {D} (n_prompts >= 1)")
        _check_finite(R_, "R")
        offsets, done, answer_mask = _levels(V, D, eos)
        bad = (R_ != 0) & ~answer_mask[None, :]
        if bad.any():
            x, y = (int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"R[{x}, {y}] = {plain(R_[x, y])} but leaf {y} (tokens "
                             f"{_tokens(y, V, D).tolist()}) is not an answer: a token follows "
                             f"EOS = {eos}; rewards must be 0 there")
        setattr_ = object.__setattr__
        setattr_(self, "_R", _readonly(R_))
        setattr_(self, "_V", V)
        setattr_(self, "_D", D)
        setattr_(self, "_eos", eos)
        setattr_(self, "_offsets", _readonly(offsets))
        setattr_(self, "_done", _readonly(done))
        setattr_(self, "_answer_mask", _readonly(answer_mask))
        setattr_(self, "_slices", tuple(slice(int(offsets[t]), int(offsets[t + 1]))
                                        for t in range(D)))

    def __setattr__(self, name, value):
        raise AttributeError(f"TreeMDP is immutable; use tree.replace({name}=...) instead")

    def __reduce__(self):
        return (_rebuild, (self._R, self._V, self._D, self._eos))

    @property
    def R(self) -> np.ndarray:
        """Leaf rewards, read-only float64, shape (n_prompts, n_leaves)."""
        return self._R

    @property
    def n_vocab(self) -> int:
        """Number of tokens V."""
        return self._V

    @property
    def depth(self) -> int:
        """Tokens per leaf D."""
        return self._D

    @property
    def eos(self) -> int | None:
        """The end-of-sequence token, or None."""
        return self._eos

    @property
    def n_prompts(self) -> int:
        """Number of prompts (rows of R)."""
        return self._R.shape[0]

    @property
    def n_leaves(self) -> int:
        """``V**D``."""
        return self._R.shape[1]

    @property
    def n_nodes(self) -> int:
        """Number of internal nodes ``sum_{t<D} V**t``."""
        return int(self._offsets[-1])

    @property
    def offsets(self) -> np.ndarray:
        """int64 (D + 1,): level t occupies global ids ``offsets[t]:offsets[t + 1]``."""
        return self._offsets

    @property
    def done(self) -> np.ndarray:
        """bool (n_nodes,): the prefix contains EOS (the next token is forced to EOS)."""
        return self._done

    @property
    def answer_mask(self) -> np.ndarray:
        """bool (n_leaves,): canonical (EOS-padded) leaves; all True without EOS."""
        return self._answer_mask

    @property
    def binary(self) -> bool:
        """Whether every reward is 0 or 1."""
        return bool(np.all((self._R == 0) | (self._R == 1)))

    @property
    def correct(self) -> np.ndarray:
        """bool (n_prompts, n_leaves): ``R > 0`` (the correct set C(x) for binary rewards)."""
        return self._R > 0

    def level(self, t: int) -> slice:
        """Global ids of the internal nodes of level ``t`` (0 <= t < D), as a slice."""
        t = _read_int(t, "t", minimum=0)
        if t >= self._D:
            raise ValueError(f"level t = {t} is not an internal level (depth = {self._D})")
        return self._slices[t]

    def leaf_tokens(self, y) -> np.ndarray:
        """Tokens of leaves ``y`` (int array of any shape), int64 (..., D)."""
        y = np.asarray(y)
        if y.dtype.kind not in "iu":
            raise TypeError(f"leaf indices must be integers, got dtype {y.dtype}")
        bad = (y < 0) | (y >= self.n_leaves)
        if bad.any():
            idx = tuple(np.argwhere(bad)[0]) if y.ndim else ()
            raise ValueError(f"leaf index y[{_index(idx)}] = {int(y[idx])} is not a leaf "
                             f"(n_leaves = {self.n_leaves})")
        return _tokens(y, self._V, self._D)

    def leaf_index(self, tokens) -> np.ndarray:
        """Leaf indices of token sequences ``tokens`` (..., D), int64 (...)."""
        tokens = np.asarray(tokens)
        if tokens.dtype.kind not in "iu":
            raise TypeError(f"tokens must be integers, got dtype {tokens.dtype}")
        if tokens.ndim < 1 or tokens.shape[-1] != self._D:
            raise ValueError(f"tokens must have shape (..., {self._D}), got {tokens.shape}")
        if ((tokens < 0) | (tokens >= self._V)).any():
            raise ValueError(f"tokens must lie in [0, {self._V})")
        powers = self._V ** np.arange(self._D - 1, -1, -1, dtype=np.int64)
        return tokens.astype(np.int64) @ powers

    def replace(self, **changes) -> TreeMDP:
        """A new, validated tree with some of ``R, n_vocab, depth, eos`` changed."""
        fields = ("R", "n_vocab", "depth", "eos")
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"replace() got unknown fields {sorted(unknown)}; allowed: {fields}")
        args = {"R": self._R, "n_vocab": self._V, "depth": self._D, "eos": self._eos}
        args.update(changes)
        return TreeMDP(args.pop("R"), **args)

    def __repr__(self) -> str:
        eos = "" if self._eos is None else f", eos={self._eos}"
        return (f"TreeMDP(n_prompts={self.n_prompts}, n_vocab={self._V}, depth={self._D}"
                f"{eos}, binary={self.binary})")


def _rebuild(R, V, D, eos) -> TreeMDP:
    return TreeMDP(R, n_vocab=V, depth=D, eos=eos)


def _tokens(y, V: int, D: int) -> np.ndarray:
    powers = V ** np.arange(D - 1, -1, -1, dtype=np.int64)
    return (np.asarray(y, dtype=np.int64)[..., None] // powers) % V


def _row_max(a: np.ndarray, keepdims: bool = False) -> np.ndarray:
    """``a.max(axis=-1)``, one column at a time: numpy's reduction over a short last axis is
    several times slower than V elementwise maxima. NaN propagates."""
    m = a[..., 0].copy()
    for k in range(1, a.shape[-1]):
        np.maximum(m, a[..., k], out=m)
    return m[..., None] if keepdims else m


def _row_sum(a: np.ndarray, keepdims: bool = False) -> np.ndarray:
    """``a.sum(axis=-1)`` as a matrix-vector product (faster over a short last axis)."""
    s = a @ np.ones(a.shape[-1])
    return s[..., None] if keepdims else s


def _require_tree(tree) -> None:
    if not isinstance(tree, TreeMDP):
        raise TypeError(f"tree must be a TreeMDP, got {type(tree).__name__}")


def _force_done(tree: TreeMDP, pi: np.ndarray) -> np.ndarray:
    """Overwrite the rows of done nodes (in place) with the one-hot EOS row."""
    if tree.eos is not None and tree.done.any():
        pi[:, tree.done, :] = 0.0
        pi[:, tree.done, tree.eos] = 1.0
    return pi


def _node_table(tree: TreeMDP, arr, name: str) -> np.ndarray:
    """``arr`` as float64 (n_prompts, n_nodes, V), broadcasting a (n_nodes, V) table."""
    arr = np.asarray(_as_numeric_array(arr, name), dtype=np.float64)
    shape = (tree.n_nodes, tree.n_vocab)
    if arr.shape == shape:
        return np.broadcast_to(arr, (tree.n_prompts,) + shape)
    if arr.shape != (tree.n_prompts,) + shape:
        raise ValueError(f"{name} has shape {arr.shape}, expected (n_prompts, n_nodes, n_vocab) "
                         f"= {(tree.n_prompts,) + shape} or (n_nodes, n_vocab) = {shape}")
    return arr


def validate_tree_policy(tree: TreeMDP, pi) -> np.ndarray:
    """Check a tree policy and return it as a fresh float64 (n_prompts, n_nodes, V) array.

    Parameters
    ----------
    tree : TreeMDP
    pi : array_like, shape (n_prompts, n_nodes, V) or (n_nodes, V)
        ``pi[x, s, a] = pi(a | s)`` at the internal node with global id ``s`` (see
        :class:`TreeMDP`); a 2-d table is used for every prompt. Rows of done nodes (EOS
        trees) are not checked: they are replaced by the one-hot EOS row.

    Raises
    ------
    ValueError
        Wrong shape; a negative or non-finite entry or a row whose sum is not 1 within
        1e-9, naming the index ``pi[x, s, :]``.
    """
    _require_tree(tree)
    out = np.array(_node_table(tree, pi, "pi"), dtype=np.float64)
    _force_done(tree, out)  # done rows are not checked: they are overwritten
    sums = _row_sum(out)
    if not (out.min() >= 0 and np.abs(sums - 1.0).max() <= PI_ATOL):  # fast path: 3 passes
        bad = ~np.isfinite(out) | (out < 0)
        if bad.any():
            x, s, a = np.argwhere(bad)[0]
            raise ValueError(f"pi[{x}, {s}, {a}] = {plain(out[x, s, a])} is negative or not "
                             "finite")
        x, s = np.argwhere(np.abs(sums - 1.0) > PI_ATOL)[0]
        raise ValueError(f"row pi[{x}, {s}, :] sums to {plain(sums[x, s])}, not 1 "
                         f"(atol {PI_ATOL:.2g})")
    return out


def softmax_policy(tree: TreeMDP, z) -> np.ndarray:
    """Row-wise softmax ``pi(a|s) = exp(z[s, a]) / sum_b exp(z[s, b])`` of tree logits.

    Parameters
    ----------
    tree : TreeMDP
    z : array_like, shape (n_prompts, n_nodes, V) or (n_nodes, V)
        Logits; ``-inf`` gives probability exactly 0 (a masked token).

    Returns
    -------
    numpy.ndarray, float64, (n_prompts, n_nodes, V)
        Done rows (EOS trees) are one-hot EOS.

    Raises
    ------
    ValueError
        A logit that is NaN or ``+inf``, or a live row whose logits are all ``-inf``.
    """
    _require_tree(tree)
    z = _node_table(tree, z, "z")
    m = _row_max(z, keepdims=True)  # NaN and +inf propagate into the row maxima
    if not np.all(m < np.inf):
        bad = np.isnan(z) | (z == np.inf)
        idx = tuple(np.argwhere(bad)[0])
        raise ValueError(f"logit z[{_index(idx)}] = {plain(z[idx])}: logits must be finite or -inf")
    empty = (m[..., 0] == -np.inf) & ~tree.done[None, :]
    if empty.any():
        x, s = np.argwhere(empty)[0]
        raise ValueError(f"row z[{x}, {s}, :] is all -inf: every token is masked")
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(z - m)
    return _force_done(tree, e / _row_sum(e, keepdims=True))


def uniform_policy(tree: TreeMDP) -> np.ndarray:
    """``pi(a|s) = 1/V`` at every live node, (n_prompts, n_nodes, V) float64."""
    _require_tree(tree)
    pi = np.full((tree.n_prompts, tree.n_nodes, tree.n_vocab), 1.0 / tree.n_vocab)
    return _force_done(tree, pi)


# --- exact distributions and values -------------------------------------------------------


def _leaf_probs(tree: TreeMDP, pi: np.ndarray, reach: np.ndarray | None = None) -> np.ndarray:
    """Level-wise outer products; writes the internal reach probabilities into ``reach``."""
    n = pi.shape[0]
    level = np.ones((n, 1))
    for t in range(tree.depth):
        sl = tree._slices[t]
        if reach is not None:
            reach[:, sl] = level
        level = (level[:, :, None] * pi[:, sl]).reshape(n, -1)
    return level


def leaf_probs(tree: TreeMDP, pi) -> np.ndarray:
    """Exact answer distribution ``pi(y|x) = prod_t pi(a_t | s_{t-1})``.

    Computed level by level: the probabilities of the ``V**(t+1)`` prefixes of length t + 1
    are the outer product of those of length t with the rows of level t (``O(n_nodes * V)``
    per prompt).

    Parameters
    ----------
    tree : TreeMDP
    pi : array_like, (n_prompts, n_nodes, V) or (n_nodes, V)
        See :func:`validate_tree_policy`.

    Returns
    -------
    numpy.ndarray, float64, (n_prompts, n_leaves)
        Each row sums to 1 up to rounding; 0 on leaves that are not answers.
    """
    return _leaf_probs(tree, validate_tree_policy(tree, pi))


def leaf_log_probs(tree: TreeMDP, pi) -> np.ndarray:
    """``log pi(y|x)`` as a sum of token log-probabilities (no underflow), (n_prompts,
    n_leaves) float64, ``-inf`` where a token on the path has probability 0."""
    return _leaf_log_probs(tree, validate_tree_policy(tree, pi))


def _leaf_log_probs(tree: TreeMDP, pi: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        log_pi = np.log(pi)
    n = pi.shape[0]
    level = np.zeros((n, 1))
    for t in range(tree.depth):
        level = (level[:, :, None] + log_pi[:, tree._slices[t]]).reshape(n, -1)
    return level


def reach_probs(tree: TreeMDP, pi) -> np.ndarray:
    """Reach probabilities ``d_pi(s)`` of the internal nodes (the probability that the
    prefix s is generated), (n_prompts, n_nodes) float64; 1 at the root."""
    pi = validate_tree_policy(tree, pi)
    reach = np.empty(pi.shape[:2])
    _leaf_probs(tree, pi, reach)
    return reach


def expected_reward(tree: TreeMDP, pi) -> np.ndarray:
    """``E_{y ~ pi(.|x)} R[x, y]`` per prompt, (n_prompts,) float64 (= V^pi(root))."""
    return np.einsum("xy,xy->x", leaf_probs(tree, pi), tree.R)


@dataclass(frozen=True, eq=False)
class TreeValues:
    """Values on a tree (gamma = 1, reward at the leaf).

    Attributes
    ----------
    V : numpy.ndarray, float64, (n_prompts, n_nodes)
        Value of each internal node.
    Q : numpy.ndarray, float64, (n_prompts, n_nodes, V)
        ``Q[x, s, a]`` = value of the child ``s . a`` (the leaf reward at the last level).
        At done nodes (EOS trees) only the EOS action is available; the others read 0.
    """

    V: np.ndarray
    Q: np.ndarray

    @property
    def root(self) -> np.ndarray:
        """``V[:, 0]``, (n_prompts,)."""
        return self.V[:, 0]


def _backward(tree: TreeMDP, pi: np.ndarray | None) -> TreeValues:
    """``Q(s, a) = V(s . a)``, ``V(s) = sum_a pi(a|s) Q(s, a)`` (``max_a`` when pi is None,
    restricted to EOS at done nodes)."""
    n, V = tree.n_prompts, tree.n_vocab
    values = np.empty((n, tree.n_nodes))
    Q = np.empty((n, tree.n_nodes, V))
    below = tree.R
    for t in reversed(range(tree.depth)):
        sl = tree._slices[t]
        Q_t = below.reshape(n, -1, V)
        if pi is None:
            V_t = _row_max(Q_t)
            done = tree.done[sl]
            if done.any():
                V_t[:, done] = Q_t[:, done, tree.eos]
        else:
            V_t = _row_sum(pi[:, sl] * Q_t)
        Q[:, sl] = Q_t
        values[:, sl] = V_t
        below = V_t
    if tree.eos is not None:
        other = np.arange(V) != tree.eos
        Q[:, tree.done[:, None] & other[None, :]] = 0.0
    return TreeValues(V=values, Q=Q)


def evaluate(tree: TreeMDP, pi) -> TreeValues:
    """Exact ``V^pi`` and ``Q^pi`` by backward recursion (Puterman 1994, sec. 4.2 on a tree).

    ``Q(s, a) = R(s . a)`` at the last level, else ``V(s . a)``; ``V(s) = sum_a pi(a|s) Q(s, a)``.

    Parameters
    ----------
    tree : TreeMDP
    pi : array_like, (n_prompts, n_nodes, V) or (n_nodes, V)

    Returns
    -------
    TreeValues
        ``V (n_prompts, n_nodes)``, ``Q (n_prompts, n_nodes, V)``, ``root (n_prompts,)``.
    """
    return _backward(tree, validate_tree_policy(tree, pi))


def uniform_q(tree: TreeMDP) -> TreeValues:
    """Values of the uniform policy ``pi_u(a|s) = 1/V``, ROVER's Q_u (He et al. 2025, Theorem 3.1;
    recursion as restated in the spec sheet, equation numbers not verified).

    ``Q_u(s, a) = R(s . a)`` at the last level, else ``(1/V) sum_a' Q_u(s . a, a')``; without
    EOS this equals the mean reward of the leaves under ``s . a``.

    Returns
    -------
    TreeValues
        ``V`` (n_prompts, n_nodes), ``Q`` (n_prompts, n_nodes, V).
    """
    _require_tree(tree)
    return _backward(tree, uniform_policy(tree))


def optimal_q(tree: TreeMDP) -> TreeValues:
    """Optimal values by the max-recursion ``V*(s) = max_a Q*(s, a)``, ``Q*(s, a) = V*(s . a)``
    (Bellman 1957; Puterman 1994, sec. 4.5); for a binary reward ``Q*(s, a) = 1`` iff the
    subtree under ``s . a`` holds a correct leaf. Returns :class:`TreeValues`."""
    _require_tree(tree)
    return _backward(tree, None)


# --- gradients ----------------------------------------------------------------------------


def _leaf_weights(tree: TreeMDP, pi: np.ndarray, dF_dpi, dF_dlogpi) -> np.ndarray:
    """``W = dF/dlog pi(y|x) = pi(y|x) dF/dpi(y|x)``, zero wherever pi(y|x) = 0."""
    if (dF_dpi is None) == (dF_dlogpi is None):
        raise ValueError("give exactly one of dF_dpi and dF_dlogpi")
    name = "dF_dpi" if dF_dlogpi is None else "dF_dlogpi"
    G = np.asarray(_as_numeric_array(dF_dpi if dF_dlogpi is None else dF_dlogpi, name),
                   dtype=np.float64)
    shape = (tree.n_prompts, tree.n_leaves)
    if G.shape != shape:
        raise ValueError(f"{name} has shape {G.shape}, expected (n_prompts, n_leaves) = {shape}")
    p = _leaf_probs(tree, pi)
    live = p > 0
    bad = live & ~np.isfinite(G)
    if bad.any():
        x, y = np.argwhere(bad)[0]
        raise ValueError(f"{name}[{x}, {y}] = {plain(G[x, y])} is not finite where pi(y|x) > 0")
    G = np.where(live, G, 0.0)
    return p * G if dF_dlogpi is None else G


def _logit_gradient(tree: TreeMDP, pi: np.ndarray, W: np.ndarray) -> np.ndarray:
    """``dF/dz[x, s, b] = Wsum(s . b) - pi(b|s) Wsum(s)``, Wsum summed level by level."""
    n, V = tree.n_prompts, tree.n_vocab
    g = np.empty((n, tree.n_nodes, V))
    below = W
    for t in reversed(range(tree.depth)):
        sl = tree._slices[t]
        W_children = below.reshape(n, -1, V)
        W_node = _row_sum(W_children)
        g[:, sl] = W_children - pi[:, sl] * W_node[..., None]
        below = W_node
    return g


def logit_gradient(tree: TreeMDP, pi, dF_dpi=None, *, dF_dlogpi=None) -> np.ndarray:
    """Exact gradient of an answer-level objective with respect to the softmax logits.

    The generic backward pass through the softmax tree. Let ``F`` be any differentiable
    function of the answer probabilities ``pi(y|x)`` (expected reward, pass@k, a divergence
    to a reference, a weighted REINFORCE objective, ...), with ``G[x, y] = dF/dpi(y|x)``.
    With ``pi(a|s) = softmax(z[x, s])`` and ``pi(y|x) = prod_t pi(a_t|s_{t-1})``, the chain
    rule gives ``dpi(y|x)/dz[x, s, b] = pi(y|x) (1[y passes s . b] - pi(b|s))`` for s on the
    path of y, hence

        dF/dz[x, s, b] = Wsum(s . b) - pi(b|s) Wsum(s),   W[x, y] = pi(y|x) G[x, y],

    where ``Wsum(node)`` sums W over the leaves under the node. Equivalently
    ``d_pi(s) pi(b|s) (U(s . b) - U(s))`` with ``U`` the value of ``pi`` for the leaf
    reward G (the policy-gradient theorem, Sutton et al. 2000, with reward G). Cost
    ``O(n_nodes * V)`` per prompt.

    Parameters
    ----------
    tree : TreeMDP
    pi : array_like, (n_prompts, n_nodes, V) or (n_nodes, V)
        The softmax policy at which to differentiate.
    dF_dpi : array_like, (n_prompts, n_leaves), optional
        ``G``. Entries where ``pi(y|x) = 0`` are ignored (may be inf or nan). Prompt
        weights (a mean over prompts) are part of G. Adding a constant to a row of G
        changes nothing.
    dF_dlogpi : array_like, (n_prompts, n_leaves), optional
        ``W = pi * G`` directly (use it when G is ill-defined at small probabilities, e.g.
        ``log pi`` terms). Give exactly one of the two.

    Returns
    -------
    numpy.ndarray, float64, (n_prompts, n_nodes, V)
        ``dF/dz[x, s, b]`` for the effective logits of prompt x; 0 at done nodes and on
        masked tokens (probability 0). Map it to parameters with :meth:`TreePolicy.gradient`.

    Raises
    ------
    ValueError
        Neither or both of dF_dpi, dF_dlogpi; wrong shapes; a non-finite entry where
        ``pi(y|x) > 0``.
    """
    pi = validate_tree_policy(tree, pi)
    return _logit_gradient(tree, pi, _leaf_weights(tree, pi, dF_dpi, dF_dlogpi))


@dataclass(frozen=True, eq=False)
class PolicyGradient:
    """Gradient with respect to the two parameter parts of a :class:`TreePolicy`.

    Attributes
    ----------
    z_shared : numpy.ndarray, float64, (n_nodes, V)
    z_prompt : numpy.ndarray, float64, (n_prompts, n_nodes, V)
    """

    z_shared: np.ndarray
    z_prompt: np.ndarray


def _read_logits(z, name: str, ndim: int, *, copy: bool = False) -> np.ndarray:
    arr = np.array(_as_numeric_array(z, name), dtype=np.float64, copy=copy or None)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} axes, got shape {arr.shape}")
    bad = np.isnan(arr) | (arr == np.inf)
    if bad.any():
        idx = tuple(np.argwhere(bad)[0])
        raise ValueError(f"{name}[{_index(idx)}] = {plain(arr[idx])}: logits must be finite or -inf")
    return arr


PARTS = ("z_shared", "z_prompt")


def _read_parts(parts, name: str = "parts") -> tuple[str, ...]:
    if isinstance(parts, str) or not isinstance(parts, (tuple, list)):
        raise TypeError(f"{name} must be a tuple of parameter names from {PARTS}, got {parts!r}")
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise ValueError(f"{name} {unknown} are not parameters; use some of {PARTS}")
    if not parts:
        raise ValueError(f"{name} is empty: name at least one of {PARTS}")
    return tuple(p for p in PARTS if p in parts)


@dataclass(eq=False)
class TreePolicy:
    """Softmax policy with logits shared across prompts: ``z[x][s] = z_shared[s] + c z_prompt[x][s]``.

    Per-prompt tables are the case ``c = 1, z_shared = 0`` (:meth:`tabular`). Sharing makes
    cross-prompt effects possible (Yue et al. 2025; Wu et al. 2025, "The Invisible Leash":
    a pass@k crossing needs coupled prompts). The arrays are kept as given (float64), so a
    training loop may update them in place; :meth:`step` returns a new policy, and the
    classmethods copy the arrays they are given.

    Parameters
    ----------
    z_shared : array_like, (n_nodes, V)
        Logits shared by every prompt; ``-inf`` masks a token for every prompt.
    z_prompt : array_like, (n_prompts, n_nodes, V)
        Per-prompt logits; with ``c > 0``, ``-inf`` masks the token for that prompt. With
        ``c = 0`` the prompt part, masks included, is ignored. A masked token keeps
        probability exactly 0 under :meth:`step` with any finite gradient (support
        preservation), since ``-inf + finite = -inf``.
    c : float, default 1.0
        Weight of the per-prompt part, ``c >= 0``.
    parts : tuple of str, default ("z_shared", "z_prompt")
        The trainable parameters, those :meth:`step` updates by default. :meth:`tabular`
        and :meth:`uniform` train ``("z_prompt",)`` only (z_shared stays 0).

    Raises
    ------
    ValueError
        Shapes that disagree, NaN or ``+inf`` logits, ``c`` negative or not finite, unknown
        or no ``parts``.
    TypeError
        Non-numeric logits or ``c``; ``parts`` not a tuple of names.
    """

    z_shared: np.ndarray
    z_prompt: np.ndarray
    c: float = 1.0
    parts: tuple = PARTS

    def __post_init__(self):
        self.z_shared = _read_logits(self.z_shared, "z_shared", 2)
        self.z_prompt = _read_logits(self.z_prompt, "z_prompt", 3)
        if self.z_prompt.shape[1:] != self.z_shared.shape:
            raise ValueError(f"z_prompt has shape {self.z_prompt.shape}, expected (n_prompts,) "
                             f"+ z_shared's shape {self.z_shared.shape}")
        self.c = read_scalar(self.c, "c", low=0.0)
        self.parts = _read_parts(self.parts)

    @property
    def n_prompts(self) -> int:
        """Number of prompts (leading axis of z_prompt)."""
        return self.z_prompt.shape[0]

    def logits(self) -> np.ndarray:
        """Effective logits ``z_shared + c z_prompt``, (n_prompts, n_nodes, V) float64."""
        if self.c == 0.0:
            return np.broadcast_to(self.z_shared, self.z_prompt.shape).copy()
        return self.z_shared[None] + self.c * self.z_prompt

    def check(self, tree: TreeMDP) -> None:
        """Raise ValueError unless the parameter shapes fit ``tree``."""
        _require_tree(tree)
        expected = (tree.n_prompts, tree.n_nodes, tree.n_vocab)
        if self.z_prompt.shape != expected:
            raise ValueError(f"policy has z_prompt shape {self.z_prompt.shape}, the tree needs "
                             f"(n_prompts, n_nodes, n_vocab) = {expected}")

    def pi(self, tree: TreeMDP) -> np.ndarray:
        """The policy's probabilities on ``tree``, (n_prompts, n_nodes, V) (done rows forced)."""
        self.check(tree)
        return softmax_policy(tree, self.logits())

    def gradient(self, dz) -> PolicyGradient:
        """Chain rule from the effective logits' gradient ``dz`` (n_prompts, n_nodes, V):
        ``dF/dz_shared = sum_x dz[x]``, ``dF/dz_prompt = c dz``.

        Raises
        ------
        TypeError
            ``dz`` is already a :class:`PolicyGradient`, or not numeric.
        ValueError
            ``dz`` of the wrong shape or not finite.
        """
        if isinstance(dz, PolicyGradient):
            raise TypeError("dz is already a PolicyGradient (a parameter gradient); gradient() "
                            "maps a gradient of the effective logits, an array of shape "
                            f"{self.z_prompt.shape}, to the parameters")
        dz = np.asarray(_as_numeric_array(dz, "dz"), dtype=np.float64)
        if dz.shape != self.z_prompt.shape:
            raise ValueError(f"dz has shape {dz.shape}, expected (n_prompts, n_nodes, V) = "
                             f"{self.z_prompt.shape}")
        _check_finite(dz, "dz")
        return PolicyGradient(z_shared=dz.sum(axis=0), z_prompt=self.c * dz)

    def step(self, grad: PolicyGradient, lr: float, parts=None) -> TreePolicy:
        """A new policy with ``z += lr * grad`` on the trained parameters (gradient ascent for
        ``lr > 0``, descent for ``lr < 0``).

        Parameters
        ----------
        grad : PolicyGradient
            Shapes equal to the policy's (``z_shared`` (n_nodes, V), ``z_prompt``
            (n_prompts, n_nodes, V)), finite.
        lr : float
            Step size (finite).
        parts : tuple of str, optional
            The parameters to update; default the policy's own :attr:`parts` (per-prompt
            tables: ``("z_prompt",)`` only). The new policy keeps ``self.parts``.

        Raises
        ------
        TypeError
            ``grad`` not a PolicyGradient, ``lr`` not a real number.
        ValueError
            A gradient of the wrong shape or not finite, unknown ``parts``.
        """
        if not isinstance(grad, PolicyGradient):
            raise TypeError(f"grad must be a PolicyGradient (see TreePolicy.gradient), got "
                            f"{type(grad).__name__}")
        lr = read_scalar(lr, "lr")
        parts = self.parts if parts is None else _read_parts(parts)
        new = {}
        for part in PARTS:
            z = getattr(self, part)
            if part not in parts:
                new[part] = z.copy()
                continue
            g = np.asarray(_as_numeric_array(getattr(grad, part), f"grad.{part}"),
                           dtype=np.float64)
            if g.shape != z.shape:
                raise ValueError(f"grad.{part} has shape {g.shape}, the policy's {part} has "
                                 f"shape {z.shape}")
            _check_finite(g, f"grad.{part}")
            new[part] = z + lr * g
        return TreePolicy(new["z_shared"], new["z_prompt"], self.c, self.parts)

    def copy(self) -> TreePolicy:
        """A deep copy (new arrays)."""
        return TreePolicy(self.z_shared.copy(), self.z_prompt.copy(), self.c, self.parts)

    @classmethod
    def tabular(cls, z) -> TreePolicy:
        """Independent per-prompt tables: ``z_prompt = z`` (copied; (n_prompts, n_nodes, V)),
        ``c = 1``, ``z_shared = 0``, trained part ``("z_prompt",)``."""
        z = _read_logits(z, "z", 3, copy=True)
        return cls(np.zeros(z.shape[1:]), z, 1.0, ("z_prompt",))

    @classmethod
    def shared(cls, z_shared, n_prompts: int, z_prompt=None, c: float = 0.0) -> TreePolicy:
        """One table for all prompts: ``z_shared`` (n_nodes, V) (copied), ``z_prompt = 0``
        unless given ((n_prompts, n_nodes, V), copied). Both parts are trainable; with the
        default ``c = 0`` the prompt part's gradient is 0, so only z_shared moves."""
        z_shared = _read_logits(z_shared, "z_shared", 2, copy=True)
        n_prompts = _read_int(n_prompts, "n_prompts")
        if z_prompt is None:
            z_prompt = np.zeros((n_prompts,) + z_shared.shape)
        else:
            z_prompt = _read_logits(z_prompt, "z_prompt", 3, copy=True)
            if z_prompt.shape[0] != n_prompts:
                raise ValueError(f"z_prompt has {z_prompt.shape[0]} prompts, "
                                 f"n_prompts = {n_prompts}")
        return cls(z_shared, z_prompt, c, PARTS)

    @classmethod
    def uniform(cls, tree: TreeMDP) -> TreePolicy:
        """All logits 0 (the uniform policy), per-prompt tables (c = 1, trains z_prompt)."""
        _require_tree(tree)
        return cls.tabular(np.zeros((tree.n_prompts, tree.n_nodes, tree.n_vocab)))

    @classmethod
    def random(cls, tree: TreeMDP, *, shared_scale: float = 0.0, prompt_scale: float = 1.5,
               c: float = 1.0, seed=None, parts=None) -> TreePolicy:
        """I.i.d. normal logits: ``z_shared ~ N(0, shared_scale^2)`` (drawn first), then
        ``z_prompt ~ N(0, prompt_scale^2)``. The default, per-prompt N(0, 1.5^2) tables, is the
        base policy of the spec sheets.

        ``parts`` (the trainable parameters) defaults to ``("z_prompt",)`` when
        ``shared_scale == 0`` (per-prompt tables) and to both parts otherwise.
        """
        _require_tree(tree)
        shared_scale = read_scalar(shared_scale, "shared_scale", low=0.0)
        prompt_scale = read_scalar(prompt_scale, "prompt_scale", low=0.0)
        if parts is None:
            parts = ("z_prompt",) if shared_scale == 0.0 else PARTS
        rng = as_generator(seed)
        shape = (tree.n_nodes, tree.n_vocab)
        z_shared = shared_scale * rng.standard_normal(shape)
        z_prompt = prompt_scale * rng.standard_normal((tree.n_prompts,) + shape)
        return cls(z_shared, z_prompt, c, parts)


def _require_policy(tree: TreeMDP, policy) -> None:
    if not isinstance(policy, TreePolicy):
        raise TypeError(f"policy must be a TreePolicy, got {type(policy).__name__}")
    policy.check(tree)


def objective_gradient(tree: TreeMDP, policy: TreePolicy, dF_dpi=None, *,
                       dF_dlogpi=None) -> PolicyGradient:
    """Gradient of an answer-level objective for both parameter parts of ``policy``.

    ``policy.gradient(logit_gradient(tree, policy.pi(tree), dF_dpi, dF_dlogpi=...))``; see
    :func:`logit_gradient` for ``dF_dpi`` / ``dF_dlogpi``.
    """
    _require_policy(tree, policy)
    pi = policy.pi(tree)
    return policy.gradient(_logit_gradient(tree, pi, _leaf_weights(tree, pi, dF_dpi, dF_dlogpi)))


def expected_reward_gradient(tree: TreeMDP, policy: TreePolicy, weights=None) -> PolicyGradient:
    """Exact gradient of ``J = sum_x weights[x] E_{y ~ pi(.|x)} R[x, y]``.

    The policy-gradient theorem on the tree (Sutton et al. 2000): ``dJ/dz[x, s, b] =
    weights[x] d_pi(s) pi(b|s) A(s, b)`` with ``A = Q^pi - V^pi``.

    Parameters
    ----------
    tree : TreeMDP
    policy : TreePolicy
    weights : array_like (n_prompts,), optional
        Prompt weights; default ``1 / n_prompts`` (the mean over prompts).

    Returns
    -------
    PolicyGradient
    """
    _require_policy(tree, policy)
    w = read_prompt_weights(weights, tree.n_prompts)
    return objective_gradient(tree, policy, w[:, None] * tree.R)


def path_nodes(tree: TreeMDP, leaves) -> tuple[np.ndarray, np.ndarray]:
    """Global ids of the internal nodes on the path to each leaf, and its tokens.

    Parameters
    ----------
    tree : TreeMDP
    leaves : array_like of int, any shape

    Returns
    -------
    nodes, tokens : numpy.ndarray, int64, (..., D)
        ``nodes[..., t]`` is the node ``s_t`` (prefix of length t) and ``tokens[..., t]`` the
        token taken there.
    """
    _require_tree(tree)
    tokens = tree.leaf_tokens(leaves)
    D, V = tree.depth, tree.n_vocab
    y = np.asarray(leaves, dtype=np.int64)[..., None]
    prefix = y // V ** np.arange(D, 0, -1, dtype=np.int64)
    return tree.offsets[:-1] + prefix, tokens


def _read_answers(tree: TreeMDP, leaves) -> np.ndarray:
    """``leaves`` as an int64 (n_prompts, n) array of answers (no token after EOS)."""
    leaves = np.asarray(leaves)
    if leaves.dtype.kind not in "iu":
        raise TypeError(f"leaves must be integer leaf indices, got dtype {leaves.dtype}")
    if leaves.ndim != 2 or leaves.shape[0] != tree.n_prompts:
        raise ValueError(f"leaves must have shape (n_prompts, n) with n_prompts = "
                         f"{tree.n_prompts}, got {leaves.shape}")
    tree.leaf_tokens(leaves)  # range check, naming the first bad index
    not_answer = ~tree.answer_mask[leaves]
    if not_answer.any():
        x, i = np.argwhere(not_answer)[0]
        raise ValueError(f"leaves[{x}, {i}] = {int(leaves[x, i])} is not an answer "
                         "(token after EOS)")
    return leaves.astype(np.int64)


def token_log_probs(tree: TreeMDP, pi, leaves) -> np.ndarray:
    """Per-token log-probabilities ``log pi(a_t | s_{t-1})`` along sampled answers.

    Their sum over t is ``log pi(y|x)`` (:func:`leaf_log_probs`). After an EOS the forced
    tokens have probability 1 (log 0). The per-token quantities of part-2 losses (PPO
    ratios, token-level KL estimators) are built from these.

    Parameters
    ----------
    tree : TreeMDP
    pi : array_like, (n_prompts, n_nodes, V) or (n_nodes, V)
    leaves : array_like of int, (n_prompts, n)
        Answers (e.g. from :func:`sample_leaves`).

    Returns
    -------
    numpy.ndarray, float64, (n_prompts, n, D)
        ``-inf`` where a token has probability 0.

    Raises
    ------
    ValueError
        Invalid policy, wrong shape, a leaf out of range or not an answer.
    """
    pi = validate_tree_policy(tree, pi)
    leaves = _read_answers(tree, leaves)
    nodes, tokens = path_nodes(tree, leaves)
    x = np.arange(tree.n_prompts)[:, None, None]
    with np.errstate(divide="ignore"):
        return np.log(pi[x, nodes, tokens])


def answer_lengths(tree: TreeMDP, leaves) -> np.ndarray:
    """Number of generated tokens of each answer: the position of its first EOS plus one
    (EOS counts as a token), or ``depth`` when it has no EOS (always, for a tree without EOS).

    ``np.arange(D) < lengths[..., None]`` masks the generated tokens, e.g. for the
    length-normalised per-token weights of GRPO.

    Parameters
    ----------
    tree : TreeMDP
    leaves : array_like of int, (n_prompts, n)
        Answers.

    Returns
    -------
    numpy.ndarray, int64, (n_prompts, n), values in ``1..D``.
    """
    _require_tree(tree)
    leaves = _read_answers(tree, leaves)
    if tree.eos is None:
        return np.full(leaves.shape, tree.depth, dtype=np.int64)
    is_eos = tree.leaf_tokens(leaves) == tree.eos
    return np.where(is_eos.any(axis=-1), is_eos.argmax(axis=-1) + 1, tree.depth).astype(np.int64)


def score_gradient(tree: TreeMDP, pi, leaves, weights) -> np.ndarray:
    """Weighted score functions of sampled answers, per sample or per token.

    Per sample, ``weights`` (n_prompts, n): ``sum_i weights[x, i] grad_z log pi(leaves[x, i] | x)``.
    Per token, ``weights`` (n_prompts, n, D): ``sum_i sum_t weights[x, i, t] grad_z log
    pi(a_t | s_{t-1})`` along the path of ``leaves[x, i]`` (per-sample weights are the case
    of weights constant over t). ``d log pi(a_t|s) / dz[x, s, b] = 1[b = a_t] - pi(b | s)``
    (Williams 1992); forced tokens after EOS contribute 0. Dividing per-sample weights by the
    number of samples gives the REINFORCE estimator; its expectation under ``pi`` is
    :func:`logit_gradient` with ``dF_dlogpi = pi * w``.

    Parameters
    ----------
    tree : TreeMDP
    pi : array_like, (n_prompts, n_nodes, V) or (n_nodes, V)
    leaves : array_like of int, (n_prompts, n)
        Leaf indices (e.g. from :func:`sample_leaves`); each must be an answer.
    weights : array_like, (n_prompts, n) or (n_prompts, n, D)
        Per-sample weights (advantages, rewards) or per-token weights (e.g. advantages over
        the answer length, 0 after the answer's end: see :func:`answer_lengths`).

    Returns
    -------
    numpy.ndarray, float64, (n_prompts, n_nodes, V)

    Raises
    ------
    ValueError
        Shapes that disagree, non-finite weights, leaves that are not answers.
    """
    pi = validate_tree_policy(tree, pi)
    leaves = _read_answers(tree, leaves)
    w = np.asarray(_as_numeric_array(weights, "weights"), dtype=np.float64)
    if w.shape == leaves.shape:
        w = w[..., None]
    elif w.shape != leaves.shape + (tree.depth,):
        raise ValueError(f"weights has shape {w.shape}, expected per-sample {leaves.shape} or "
                         f"per-token {leaves.shape + (tree.depth,)} (n_prompts, n, D)")
    _check_finite(w, "weights")
    nodes, tokens = path_nodes(tree, leaves)
    n_prompts, V = tree.n_prompts, tree.n_vocab
    rows = (np.arange(n_prompts)[:, None, None] * tree.n_nodes + nodes).ravel()
    w_rows = np.broadcast_to(w, nodes.shape).ravel()
    g = np.zeros((n_prompts * tree.n_nodes, V))
    flat_pi = pi.reshape(-1, V)
    np.add.at(g, rows, -w_rows[:, None] * flat_pi[rows])
    np.add.at(g, (rows, tokens.ravel()), w_rows)
    return g.reshape(n_prompts, tree.n_nodes, V)


# --- sampling -----------------------------------------------------------------------------


@njit(cache=True)
def _sample_leaves_kernel(pi, offsets, n, rng):
    """``n`` rollouts per prompt: one uniform draw ``u`` per token, the token is the first
    ``b`` with ``u < pi(0|s) + ... + pi(b|s)`` (inverse CDF; if rounding leaves u above the
    total, the last token of positive probability). Draw order: prompt, sample, level."""
    n_prompts, _, V = pi.shape
    D = offsets.shape[0] - 1
    out = np.empty((n_prompts, n), dtype=np.int64)
    for x in range(n_prompts):
        for i in range(n):
            j = 0
            for t in range(D):
                row = offsets[t] + j
                u = rng.random()
                a = -1
                acc = 0.0
                for b in range(V):
                    acc += pi[x, row, b]
                    if u < acc:
                        a = b
                        break
                if a < 0:
                    a = V - 1
                    while pi[x, row, a] <= 0.0:
                        a -= 1
                j = j * V + a
            out[x, i] = j
    return out


def _sample_leaves_reference(pi: np.ndarray, offsets: np.ndarray, n: int,
                             rng: np.random.Generator) -> np.ndarray:
    """Numpy reference of :func:`_sample_leaves_kernel`, vectorised over samples; it consumes
    the same uniform draws in the same order, so it returns the same leaves bit for bit."""
    n_prompts, _, V = pi.shape
    D = offsets.shape[0] - 1
    u = rng.random((n_prompts, n, D))
    j = np.zeros((n_prompts, n), dtype=np.int64)
    x = np.arange(n_prompts)[:, None]
    for t in range(D):
        cdf = np.cumsum(pi[x, offsets[t] + j], axis=-1)  # sequential, like the kernel's sum
        a = (u[..., t, None] >= cdf).sum(axis=-1)
        over = a == V
        if over.any():
            positive = pi[x, offsets[t] + j][over] > 0
            a[over] = V - 1 - np.argmax(positive[:, ::-1], axis=-1)
        j = j * V + a
    return j


def sample_leaves(tree: TreeMDP, pi, n: int, *, seed=None) -> np.ndarray:
    """Sample ``n`` i.i.d. answers per prompt from ``pi`` (Numba kernel, inverse CDF per token).

    Parameters
    ----------
    tree : TreeMDP
    pi : array_like, (n_prompts, n_nodes, V) or (n_nodes, V)
    n : int
        Rollouts per prompt (>= 0), e.g. the group size of GRPO.
    seed : int, SeedSequence, Generator or None
        See :func:`proofs_check.seeding.as_generator`; the same seed gives the same leaves.

    Returns
    -------
    numpy.ndarray, int64, (n_prompts, n)
        Leaf indices (EOS-padded answers); ``tree.leaf_tokens`` gives the tokens and
        ``tree.R[x, leaves[x]]`` the rewards.

    Raises
    ------
    ValueError
        An invalid policy (see :func:`validate_tree_policy`) or ``n < 0``.
    """
    n = _read_int(n, "n", minimum=0)
    pi = validate_tree_policy(tree, pi)
    return _sample_leaves_kernel(pi, tree.offsets, n, as_generator(seed))
