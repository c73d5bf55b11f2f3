"""Plain-numpy reference implementations of the tabular kernels (Puterman 1994, ch. 4 and 6), for tests only: slow, simple, and by a different route where one exists."""
from __future__ import annotations

import math

import numpy as np

from tabular.mdp import TabularMDP

__all__ = [
    "value_iteration_ref",
    "backward_induction_ref",
    "evaluate_policy_ref",
    "occupancy_ref",
    "sample_episodes_ref",
]


def _pi_at(pi_prob: np.ndarray, h: int) -> np.ndarray:
    """The (S, A) policy at step h of a stationary (S, A) or time-indexed (H, S, A) policy."""
    return pi_prob[h] if pi_prob.ndim == 3 else pi_prob


def _sweeps(gamma: float, tol: float = 1e-17) -> int:
    """Number of steps after which gamma^t < tol (the tail of a geometric series)."""
    return 1 if gamma == 0.0 else math.ceil(math.log(tol) / math.log(gamma)) + 1


def value_iteration_ref(mdp: TabularMDP, epsilon: float, max_iter: int = 10**6, V0=None):
    """Value iteration with numpy's tensordot and the stopping rule
    ``gamma ||V_k - V_{k-1}|| / (1 - gamma) <= epsilon``. Returns ``(V (S,), Q (S, A), k)``."""
    V = np.zeros(mdp.S) if V0 is None else np.array(V0, dtype=float)
    for k in range(1, max_iter + 1):
        Q = mdp.R + mdp.gamma * np.tensordot(mdp.P, V, axes=([2], [0]))
        V_new = Q.max(axis=1)
        done = mdp.gamma * np.max(np.abs(V_new - V)) / (1.0 - mdp.gamma) <= epsilon
        V = V_new
        if done:
            break
    return V, Q, k


def backward_induction_ref(mdp: TabularMDP):
    """Finite-horizon optimal values by explicit loops. Returns ``(V (H, S), Q (H, S, A))``."""
    H, S, A = mdp.H, mdp.S, mdp.A
    V = np.zeros((H + 1, S))
    Q = np.zeros((H, S, A))
    for h in reversed(range(H)):
        P, R = mdp.P_h(h), mdp.R_h(h)
        for s in range(S):
            for a in range(A):
                Q[h, s, a] = R[s, a] + mdp.gamma * sum(P[s, a, t] * V[h + 1, t] for t in range(S))
            V[h, s] = max(Q[h, s])
    return V[:H], Q


def evaluate_policy_ref(mdp: TabularMDP, pi_prob: np.ndarray) -> np.ndarray:
    """``V^pi``: discounted, iterating ``T^pi`` until ``gamma^t < 1e-17``; episodic, one
    least-squares solve of the full S-state system with rows ``V(t) = 0`` for terminal t;
    finite horizon, explicit loops. ``pi_prob`` is (S, A) or (H, S, A) action probabilities.
    Returns V (S,) or (H, S)."""
    S, A = mdp.S, mdp.A
    if mdp.kind == "finite":
        V = np.zeros((mdp.H + 1, S))
        for h in reversed(range(mdp.H)):
            P, R, pi = mdp.P_h(h), mdp.R_h(h), _pi_at(pi_prob, h)
            for s in range(S):
                V[h, s] = sum(
                    pi[s, a] * (R[s, a] + mdp.gamma * P[s, a] @ V[h + 1]) for a in range(A)
                )
        return V[: mdp.H]
    P_pi = np.einsum("sa,sat->st", pi_prob, mdp.P)
    R_pi = (pi_prob * mdp.R).sum(axis=1)
    if mdp.kind == "discounted":
        V = np.zeros(S)
        for _ in range(_sweeps(mdp.gamma)):
            V = R_pi + mdp.gamma * P_pi @ V
        return V
    M = np.eye(S) - P_pi
    b = R_pi.copy()
    M[mdp.terminal] = np.eye(S)[mdp.terminal]
    b[mdp.terminal] = 0.0
    return np.linalg.lstsq(M, b, rcond=None)[0]


def occupancy_ref(mdp: TabularMDP, pi_prob: np.ndarray, max_steps: int = 10**6) -> np.ndarray:
    """Occupancy by propagating the state distribution ``mu_t`` forward: discounted
    ``(1 - gamma) sum_t gamma^t mu_t pi`` until ``gamma^t < 1e-17``; episodic ``sum_t mu_t pi``
    over non-terminal states until the remaining mass is below 1e-17 (at most ``max_steps``);
    finite horizon, per-step ``mu_h pi_h`` by explicit loops."""
    S, A = mdp.S, mdp.A
    if mdp.kind == "finite":
        d = np.zeros((mdp.H, S, A))
        mu = np.array(mdp.mu0)
        for h in range(mdp.H):
            pi, P = _pi_at(pi_prob, h), mdp.P_h(h)
            nxt = np.zeros(S)
            for s in range(S):
                for a in range(A):
                    d[h, s, a] = mu[s] * pi[s, a]
                    nxt += d[h, s, a] * P[s, a]
            mu = nxt
        return d
    P_pi = np.einsum("sa,sat->st", pi_prob, mdp.P)
    mu = np.array(mdp.mu0)
    d_S = np.zeros(S)
    if mdp.kind == "discounted":
        weight = 1.0 - mdp.gamma
        for _ in range(_sweeps(mdp.gamma)):
            d_S += weight * mu
            mu = mu @ P_pi
            weight *= mdp.gamma
        return d_S[:, None] * pi_prob
    live = ~mdp.terminal
    mu = np.where(live, mu, 0.0)
    for _ in range(max_steps):
        d_S += mu
        mu = np.where(live, mu @ P_pi, 0.0)
        if mu.sum() < 1e-17:
            break
    return d_S[:, None] * pi_prob


def sample_episodes_ref(mdp: TabularMDP, pi_prob: np.ndarray, n: int, H: int, rng):
    """Episodes by a Python loop drawing with ``rng.choice``; same output convention as
    :func:`tabular.sampling.sample_episodes`. Returns ``(states, actions, rewards, lengths)``."""
    S, A = mdp.S, mdp.A
    states = np.empty((n, H + 1), dtype=np.int64)
    actions = np.full((n, H), -1, dtype=np.int64)
    rewards = np.zeros((n, H))
    lengths = np.zeros(n, dtype=np.int64)
    for e in range(n):
        s = int(rng.choice(S, p=mdp.mu0))
        states[e, 0] = s
        for h in range(H):
            if mdp.terminal[s]:
                states[e, h + 1] = s
                continue
            a = int(rng.choice(A, p=_pi_at(pi_prob, h)[s]))
            P = mdp.P[h] if mdp.P.ndim == 4 else mdp.P
            R = mdp.R[h] if mdp.R.ndim == 3 else mdp.R
            actions[e, h] = a
            rewards[e, h] = R[s, a]
            s = int(rng.choice(S, p=P[s, a]))
            states[e, h + 1] = s
            lengths[e] = h + 1
    return states, actions, rewards, lengths
