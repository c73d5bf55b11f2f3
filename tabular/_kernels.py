"""Numba kernels for tabular planning (Bellman backups; Puterman 1994, ch. 4 and 6) and episode sampling (Walker 1977 / Vose 1991 alias method)."""
from __future__ import annotations

import numpy as np
from numba import njit

# Array conventions (shared by every kernel): float64 and int64 throughout, C-contiguous;
# P is read as rows indexed by s * A + a: P2 (S*A, S), or P3 (HP, S*A, S) with HP = 1 for a
# stationary P (time step h reads P3[h if HP > 1 else 0]); likewise R2 (HR, S*A).


@njit(cache=True, fastmath={"reassoc", "contract"})
def q_backup_into(P2, R2, V, gamma, Q):
    """Write ``Q[i] = R2[i] + gamma * sum_j P2[i, j] * V[j]`` for every row ``i = s * A + a``.

    Four rows at a time share each load of V (four independent accumulators, four memory
    streams); inside a row the compiler may reassociate the sum into vector lanes
    (``fastmath={"reassoc", "contract"}``). The order is fixed at compile time, so results are
    deterministic and independent of any thread count; they agree with numpy to rounding.
    """
    SA, S = P2.shape
    SA4 = SA - SA % 4
    for i in range(0, SA4, 4):
        r0 = P2[i]
        r1 = P2[i + 1]
        r2 = P2[i + 2]
        r3 = P2[i + 3]
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        a3 = 0.0
        for j in range(S):
            v = V[j]
            a0 += r0[j] * v
            a1 += r1[j] * v
            a2 += r2[j] * v
            a3 += r3[j] * v
        Q[i] = R2[i] + gamma * a0
        Q[i + 1] = R2[i + 1] + gamma * a1
        Q[i + 2] = R2[i + 2] + gamma * a2
        Q[i + 3] = R2[i + 3] + gamma * a3
    for i in range(SA4, SA):
        row = P2[i]
        acc = 0.0
        for j in range(S):
            acc += row[j] * V[j]
        Q[i] = R2[i] + gamma * acc


@njit(cache=True)
def q_backup(P2, R2, V, gamma):
    """``Q = R + gamma * P V`` as a new (S*A,) array (see :func:`q_backup_into`)."""
    Q = np.empty(P2.shape[0])
    q_backup_into(P2, R2, V, gamma, Q)
    return Q


@njit(cache=True)
def _max_over_actions(Q, A, V):
    """``V[s] = max_a Q[s * A + a]``."""
    for s in range(V.shape[0]):
        m = Q[s * A]
        for a in range(1, A):
            q = Q[s * A + a]
            if q > m:
                m = q
        V[s] = m


@njit(cache=True)
def value_iteration_kernel(P2, R2, gamma, V0, epsilon, max_iter):
    """Value iteration ``V_k = max_a (R + gamma P V_{k-1})`` until
    ``gamma * ||V_k - V_{k-1}||_inf / (1 - gamma) <= epsilon`` or ``k == max_iter``.

    Returns ``(V_k (S,), Q_k (S*A,), k, ||V_k - V_{k-1}||_inf)`` with ``Q_k = R + gamma P V_{k-1}``
    (so ``V_k = max_a Q_k``). Requires ``gamma < 1`` and ``max_iter >= 1``.
    """
    S = V0.shape[0]
    A = P2.shape[0] // S
    V = V0.copy()
    V_new = np.empty(S)
    Q = np.empty(P2.shape[0])
    k = 0
    residual = np.inf
    one_minus_gamma = 1.0 - gamma
    while k < max_iter:
        q_backup_into(P2, R2, V, gamma, Q)
        _max_over_actions(Q, A, V_new)
        residual = 0.0
        for s in range(S):
            d = abs(V_new[s] - V[s])
            if d > residual:
                residual = d
        V, V_new = V_new, V
        k += 1
        if gamma * residual / one_minus_gamma <= epsilon:
            break
    return V, Q, k, residual


@njit(cache=True)
def backward_induction_kernel(P3, R2, gamma, H):
    """Finite-horizon optimality recursion ``Q_h = R_h + gamma P_h V_{h+1}``, ``V_h = max_a Q_h``,
    ``V_H = 0`` (Puterman 1994, sec. 4.5). Returns ``V (H, S)`` and ``Q (H, S*A)``."""
    S = P3.shape[2]
    A = P3.shape[1] // S
    V = np.zeros((H + 1, S))
    Q = np.empty((H, P3.shape[1]))
    for h in range(H - 1, -1, -1):
        hp = h if P3.shape[0] > 1 else 0
        hr = h if R2.shape[0] > 1 else 0
        q_backup_into(P3[hp], R2[hr], V[h + 1], gamma, Q[h])
        _max_over_actions(Q[h], A, V[h])
    return V[:H].copy(), Q


@njit(cache=True)
def evaluate_finite_kernel(P3, R2, pi3, gamma, H):
    """Finite-horizon policy evaluation ``Q_h = R_h + gamma P_h V_{h+1}``,
    ``V_h(s) = sum_a pi_h(s, a) Q_h(s, a)``, ``V_H = 0``. ``pi3`` is (HPI, S, A) with HPI in
    {1, H}. Returns ``V (H, S)`` and ``Q (H, S*A)``."""
    S = P3.shape[2]
    A = P3.shape[1] // S
    V = np.zeros((H + 1, S))
    Q = np.empty((H, P3.shape[1]))
    for h in range(H - 1, -1, -1):
        hp = h if P3.shape[0] > 1 else 0
        hr = h if R2.shape[0] > 1 else 0
        hpi = h if pi3.shape[0] > 1 else 0
        q_backup_into(P3[hp], R2[hr], V[h + 1], gamma, Q[h])
        for s in range(S):
            v = 0.0
            for a in range(A):
                v += pi3[hpi, s, a] * Q[h, s * A + a]
            V[h, s] = v
    return V[:H].copy(), Q


# --- sampling ---------------------------------------------------------------------------
# An alias table for a distribution p over K outcomes is a (K, 2) float64 array: column 0
# the threshold q_k in [0, 1], column 1 the alias index (stored as a float, exact below
# 2**53). A draw picks a column k uniformly and returns k w.p. q_k, its alias otherwise:
# Pr(k) = (q_k + sum_{j: alias_j = k} (1 - q_j)) / K (Vose 1991). Threshold and alias sit
# side by side so that one draw touches one cache line.


@njit(cache=True)
def build_alias_tables(p):
    """Alias tables (M, K, 2) for the M rows of ``p`` (M, K), each row non-negative with a
    positive sum (rows are normalised by their sum). Vose's O(K) construction per row."""
    M, K = p.shape
    table = np.empty((M, K, 2))
    q = np.empty(K)
    small = np.empty(K, dtype=np.int64)
    large = np.empty(K, dtype=np.int64)
    for m in range(M):
        total = 0.0
        for k in range(K):
            total += p[m, k]
        scale = K / total
        n_small = 0
        n_large = 0
        for k in range(K):
            q[k] = p[m, k] * scale
            if q[k] < 1.0:
                small[n_small] = k
                n_small += 1
            else:
                large[n_large] = k
                n_large += 1
        while n_small > 0 and n_large > 0:
            n_small -= 1
            lo = small[n_small]
            n_large -= 1
            hi = large[n_large]
            table[m, lo, 0] = q[lo]
            table[m, lo, 1] = hi
            q[hi] = (q[hi] + q[lo]) - 1.0
            if q[hi] < 1.0:
                small[n_small] = hi
                n_small += 1
            else:
                large[n_large] = hi
                n_large += 1
        # Leftovers have q = 1 up to rounding: they keep their own column.
        for i in range(n_large):
            table[m, large[i], 0] = 1.0
            table[m, large[i], 1] = large[i]
        for i in range(n_small):
            table[m, small[i], 0] = 1.0
            table[m, small[i], 1] = small[i]
    return table


@njit(cache=True)
def alias_draw(table, row, rng):
    """One draw from row ``row`` of an alias table (M, K, 2), from one uniform of ``rng``."""
    K = table.shape[1]
    u = rng.random() * K
    k = int(u)
    if k >= K:  # u * K can round up to K
        k = K - 1
    if u - k < table[row, k, 0]:
        return k
    return int(table[row, k, 1])


_BLOCK = 16  # episodes advanced together: their independent table lookups overlap in memory


@njit(cache=True)
def sample_episodes_kernel(P_tab, R3, mu0_tab, pi_det, pi_tab, stochastic, terminal, n, H, rng):
    """Roll out ``n`` episodes of ``H`` steps.

    ``P_tab (HP * S * A, S, 2)``: alias tables of the rows ``(h, s, a)`` (HP in {1, H});
    ``R3 (HR, S, A)``; ``mu0_tab (1, S, 2)``; ``pi_det (HPI, S)`` int64 actions, used when
    ``stochastic`` is False, else ``pi_tab (HPI * S, A, 2)``; ``terminal (S,)`` bool.
    After a terminal state the episode is padded with (that state, action -1, reward 0).
    Returns ``states (n, H+1)``, ``actions (n, H)``, ``rewards (n, H)``, ``lengths (n,)``.
    """
    S = terminal.shape[0]
    A = R3.shape[2]
    HP = P_tab.shape[0] // (S * A)
    HR = R3.shape[0]
    HPI = pi_det.shape[0] if not stochastic else pi_tab.shape[0] // S
    states = np.empty((n, H + 1), dtype=np.int64)
    actions = np.full((n, H), -1, dtype=np.int64)
    rewards = np.zeros((n, H))
    lengths = np.zeros(n, dtype=np.int64)
    for e0 in range(0, n, _BLOCK):
        e1 = min(n, e0 + _BLOCK)
        for e in range(e0, e1):
            states[e, 0] = alias_draw(mu0_tab, 0, rng)
        for h in range(H):
            hp = h if HP > 1 else 0
            hr = h if HR > 1 else 0
            hpi = h if HPI > 1 else 0
            for e in range(e0, e1):
                s = states[e, h]
                if terminal[s]:
                    states[e, h + 1] = s
                    continue
                if stochastic:
                    a = alias_draw(pi_tab, hpi * S + s, rng)
                else:
                    a = pi_det[hpi, s]
                actions[e, h] = a
                rewards[e, h] = R3[hr, s, a]
                states[e, h + 1] = alias_draw(P_tab, (hp * S + s) * A + a, rng)
                lengths[e] = h + 1
    return states, actions, rewards, lengths
