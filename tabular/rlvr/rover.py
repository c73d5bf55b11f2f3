"""ROVER's exact policies over the uniform-policy Q on tree MDPs (He et al. 2025, "Random Policy Valuation is Enough for LLM Reasoning with Verifiable Rewards", Theorem 3.1) and the counterexamples outside its assumptions."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from proofs_check.seeding import as_generator
from tabular.mdp import TabularMDP, _check_finite
from tabular.rlvr._checks import read_scalar
from tabular.tree import (
    TreeMDP, _force_done, _node_table, _require_tree, optimal_q, softmax_policy, uniform_q,
)

__all__ = [
    "uniform_q_closed_form", "greedy_policy", "rover_policy", "sign_lemma_violations",
    "graded_reward_counterexample", "StochasticCounterexample",
    "stochastic_transition_counterexample",
]


def uniform_q_closed_form(tree: TreeMDP) -> np.ndarray:
    """``Q_u(s, a) = (sum of R over the leaves under s . a) / V**(D - t - 1)``, t = depth of s.

    The mean leaf reward of the subtree: under the uniform policy every leaf below ``s . a``
    is reached with probability ``V**-(D-t-1)`` (spec sheet's restatement of He et al. 2025;
    for a binary reward, the fraction of correct leaves). Computed by direct sums over the reshaped
    reward table, not by the recursion of :func:`tabular.tree.uniform_q`.

    Returns
    -------
    numpy.ndarray, float64, (n_prompts, n_nodes, V)

    Raises
    ------
    ValueError
        For a tree with EOS (forced tokens make leaves unequally likely).
    """
    _require_tree(tree)
    if tree.eos is not None:
        raise ValueError("the closed form of Q_u holds for trees without EOS (forced tokens "
                         "after EOS weight the leaves unequally); use tabular.tree.uniform_q")
    n, V, D = tree.n_prompts, tree.n_vocab, tree.depth
    Q = np.empty((n, tree.n_nodes, V))
    for t in range(D):
        below = V ** (D - t - 1)
        sums = tree.R.reshape(n, V ** (t + 1), below).sum(axis=-1)
        Q[:, tree.level(t)] = (sums / below).reshape(n, V**t, V)
    return Q


def greedy_policy(tree: TreeMDP, Q=None, *, tol: float = 1e-12, seed=None) -> np.ndarray:
    """The greedy policy ``pi_g(s) = argmax_a Q(s, a)`` (He et al. 2025, Theorem 3.1: with
    ``Q = Q_u`` it is optimal for binary rewards on deterministic trees).

    Parameters
    ----------
    tree : TreeMDP
    Q : array_like, (n_prompts, n_nodes, V) or (n_nodes, V), optional
        Default: the uniform-policy Q of ``tree`` (:func:`tabular.tree.uniform_q`).
    tol : float
        Actions with ``Q >= max_a Q - tol`` tie, ``tol >= 0`` (the default 1e-12 is far below
        the smallest non-zero gap of a binary Q_u, ``V**-D >= 2**-24``).
    seed : int, SeedSequence, Generator or None
        None: ties share the mass uniformly. Otherwise one tied action per node, drawn at
        random (a deterministic policy).

    Returns
    -------
    numpy.ndarray, float64, (n_prompts, n_nodes, V)
        Done rows (EOS trees) are one-hot EOS.

    Raises
    ------
    TypeError
        ``tol`` not a real number.
    ValueError
        ``Q`` of the wrong shape or not finite, ``tol`` negative or not finite.
    """
    _require_tree(tree)
    tol = read_scalar(tol, "tol", low=0.0)
    Q = uniform_q(tree).Q if Q is None else np.array(_node_table(tree, Q, "Q"))
    _check_finite(Q, "Q")
    ties = Q >= Q.max(axis=-1, keepdims=True) - tol
    if seed is not None:
        scores = np.where(ties, as_generator(seed).random(ties.shape), -1.0)
        ties = scores == scores.max(axis=-1, keepdims=True)
    pi = ties / ties.sum(axis=-1, keepdims=True)
    return _force_done(tree, pi)


def rover_policy(tree: TreeMDP, rho: float, Q=None) -> np.ndarray:
    """ROVER's softmax policy ``pi_rho(a|s) = exp(Q_u(s, a)/rho) / sum_b exp(Q_u(s, b)/rho)``.

    rho -> 0 gives the greedy policy (ties uniform), rho -> inf the uniform one. The paper's
    formal statement about this policy was not verified (spec sheet); only its definition
    is used here.

    Parameters
    ----------
    tree : TreeMDP
    rho : float
        Temperature, > 0.
    Q : array_like, optional
        Default Q_u of ``tree``.

    Returns
    -------
    numpy.ndarray, float64, (n_prompts, n_nodes, V)
        Done rows (EOS trees) are one-hot EOS.

    Raises
    ------
    TypeError
        ``rho`` not a real number.
    ValueError
        ``rho <= 0`` or not finite; ``Q`` of the wrong shape or not finite.
    """
    _require_tree(tree)
    rho = read_scalar(rho, "rho", low=0.0, low_open=True)
    Q = uniform_q(tree).Q if Q is None else np.asarray(_node_table(tree, Q, "Q"))
    _check_finite(Q, "Q")
    # shifted before dividing, so a tiny rho gives -inf logits (probability 0), never +inf
    with np.errstate(over="ignore"):
        return softmax_policy(tree, (Q - Q.max(axis=-1, keepdims=True)) / rho)


def sign_lemma_violations(tree: TreeMDP, Q_u=None, Q_star=None) -> np.ndarray:
    """Pairs where the sign lemma fails: ``(Q_u(s, a) > 0) != (Q*(s, a) == R_max)``.

    For a binary reward in ``{0, R_max}`` the lemma (the mechanism of He et al. 2025,
    Theorem 3.1, our restatement) says Q_u is positive exactly where the subtree holds a
    correct leaf, i.e. where ``Q* = R_max``; hence every argmax of Q_u is optimal. The
    result is an exact boolean comparison.

    Parameters
    ----------
    tree : TreeMDP
        Rewards in ``{0, R_max}`` per prompt (``R_max = max R[x]``; a prompt with no correct
        leaf has R_max = 0 and no violation is possible there unless Q_u > 0).
    Q_u, Q_star : array_like (n_prompts, n_nodes, V) or (n_nodes, V), optional
        Defaults: :func:`tabular.tree.uniform_q` and :func:`tabular.tree.optimal_q`. Must be
        finite (a NaN would otherwise count as a violation).

    Returns
    -------
    numpy.ndarray, bool, (n_prompts, n_nodes, V)

    Raises
    ------
    ValueError
        If some prompt has two distinct positive reward values or a negative reward; ``Q_u``
        or ``Q_star`` of the wrong shape or not finite.
    """
    _require_tree(tree)
    R_max = tree.R.max(axis=1)
    for x in range(tree.n_prompts):
        values = np.unique(tree.R[x])
        if values.min() < 0 or values.size > 2 or (values.size == 2 and values[0] != 0):
            raise ValueError(f"prompt {x} has rewards {values.tolist()[:5]}: the sign lemma "
                             "needs a binary reward in {0, R_max}")
    Q_u = uniform_q(tree).Q if Q_u is None else np.asarray(_node_table(tree, Q_u, "Q_u"))
    Q_star = optimal_q(tree).Q if Q_star is None else np.asarray(_node_table(tree, Q_star, "Q_star"))
    _check_finite(Q_u, "Q_u")
    _check_finite(Q_star, "Q_star")
    optimal = (Q_star == R_max[:, None, None]) & (R_max[:, None, None] > 0)
    return (Q_u > 0) != optimal


def graded_reward_counterexample() -> TreeMDP:
    """A graded reward where greedy over Q_u is sub-optimal (spec sheet, test 5i).

    V = 2, D = 5, one prompt: under the first token 0 one leaf of 16 has reward 1 (the
    others 0); under token 1 all 16 leaves have reward 0.5. So Q_u(root, 0) = 1/16 <
    Q_u(root, 1) = 0.5: greedy takes token 1 and earns 0.5, while V* = 1.
    """
    R = np.zeros(2**5)
    R[0] = 1.0
    R[16:] = 0.5
    return TreeMDP(R, n_vocab=2, depth=5)


@dataclass(frozen=True, eq=False)
class StochasticCounterexample:
    """A two-step MDP with a stochastic transition where greedy over Q_u is sub-optimal.

    States: 0 root; 1 all-correct node; 2 all-wrong node; 3 node with one correct child of
    4; 4 absorbing end. At the root action 0 (``a``) goes to 1 or 2 with probability 1/2
    each, action 1 (``b``) to 3, actions 2 and 3 to 2. At node 1 every action earns 1; at
    node 3 only action 0 earns 1. H = 2, gamma = 1.

    Attributes
    ----------
    mdp : TabularMDP
    Q_u : numpy.ndarray, (H, S, A)
        Q of the uniform policy (``Q_u[0, 0] = (0.5, 0.25, 0, 0)``).
    Q_star : numpy.ndarray, (H, S, A)
        ``Q_star[0, 0] = (0.5, 1, 0, 0)``.
    greedy_action : int
        ``argmax_a Q_u[0, 0, a]`` (0, action a).
    V_greedy, V_star : float
        Root values of the greedy-over-Q_u policy (0.5) and of an optimal policy (1).
    """

    mdp: TabularMDP
    Q_u: np.ndarray
    Q_star: np.ndarray
    greedy_action: int
    V_greedy: float
    V_star: float


def stochastic_transition_counterexample() -> StochasticCounterexample:
    """Greedy over Q_u fails once transitions are stochastic (spec sheet, test 5ii): action
    a (Q_u = 0.5, Q* = 0.5) beats b (Q_u = 0.25, Q* = 1). Values by
    :func:`tabular.planning.evaluate_policy` and :func:`tabular.planning.backward_induction`."""
    from tabular.planning import backward_induction, evaluate_policy

    S, A = 5, 4
    P = np.zeros((S, A, S))
    P[0, 0, 1] = P[0, 0, 2] = 0.5
    P[0, 1, 3] = 1.0
    P[0, 2:, 2] = 1.0
    P[1:, :, 4] = 1.0
    R = np.zeros((S, A))
    R[1, :] = 1.0
    R[3, 0] = 1.0
    mu0 = np.eye(S)[0]
    mdp = TabularMDP(P, R, mu0, H=2, gamma=1.0)
    Q_u = evaluate_policy(mdp, np.full((S, A), 1.0 / A)).Q
    star = backward_induction(mdp)
    greedy = int(np.argmax(Q_u[0, 0]))
    pi = np.argmax(Q_u, axis=-1)  # (H, S): greedy over Q_u at every step
    V_greedy = float(evaluate_policy(mdp, pi).V[0, 0])
    return StochasticCounterexample(mdp=mdp, Q_u=Q_u, Q_star=star.Q, greedy_action=greedy,
                                    V_greedy=V_greedy, V_star=float(star.V[0, 0]))
