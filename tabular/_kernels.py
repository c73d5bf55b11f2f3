"""Numba kernels for tabular planning (Bellman backups; Puterman 1994, ch. 4 and 6) and episode sampling (Walker 1977 / Vose 1991 alias method)."""
from __future__ import annotations

import numpy as np
from numba import njit, prange

# Array conventions (shared by every kernel): float64 and int64 throughout, C-contiguous;
# P is read as rows indexed by s * A + a: P2 (S*A, S), or P3 (HP, S*A, S) with HP = 1 for a
# stationary P (time step h reads P3[h if HP > 1 else 0]); likewise R2 (HR, S*A).


@njit(cache=True, fastmath={"reassoc", "contract"})
def q_backup_into(P2, R2, V, gamma, Q):
    """Write ``Q[i] = R2[i] + gamma * sum_j P2[i, j] * V[j]`` for every row ``i = s * A + a``.

    Eight rows at a time share each load of V (eight independent accumulators, eight memory
    streams: a core reads P faster along several streams than along one); inside a row the
    compiler may reassociate the sum into vector lanes (``fastmath={"reassoc", "contract"}``).
    The order is fixed at compile time, so results are deterministic and independent of any
    thread count; they agree with numpy to rounding.
    """
    SA, S = P2.shape
    SA8 = SA - SA % 8
    for i in range(0, SA8, 8):
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
        for j in range(S):
            v = V[j]
            a0 += P2[i, j] * v
            a1 += P2[i + 1, j] * v
            a2 += P2[i + 2, j] * v
            a3 += P2[i + 3, j] * v
            a4 += P2[i + 4, j] * v
            a5 += P2[i + 5, j] * v
            a6 += P2[i + 6, j] * v
            a7 += P2[i + 7, j] * v
        Q[i] = R2[i] + gamma * a0
        Q[i + 1] = R2[i + 1] + gamma * a1
        Q[i + 2] = R2[i + 2] + gamma * a2
        Q[i + 3] = R2[i + 3] + gamma * a3
        Q[i + 4] = R2[i + 4] + gamma * a4
        Q[i + 5] = R2[i + 5] + gamma * a5
        Q[i + 6] = R2[i + 6] + gamma * a6
        Q[i + 7] = R2[i + 7] + gamma * a7
    for i in range(SA8, SA):
        acc = 0.0
        for j in range(S):
            acc += P2[i, j] * V[j]
        Q[i] = R2[i] + gamma * acc


# Large backups run on Numba's threads (numba.set_num_threads), in tasks of _TASK_ROWS rows of
# P2. A task starts at a multiple of 8 rows, where an eight-row group of the serial kernel starts,
# so every Q[i] is summed by one thread with the serial kernel's code and order: Q is bit-identical
# to q_backup_into whatever the thread count. Below _PARALLEL_MIN_ENTRIES entries of P2 (2 MiB) a
# backup takes tens of microseconds, comparable to waking the threads, and stays serial. The
# callers pass threaded = (numba.get_num_threads() > 1), read in Python (reading it here would
# keep the kernels out of the cache): on one thread no backup enters OpenMP, which GNU OpenMP
# forbids in a forked child whose parent used it.
_TASK_ROWS = 256
_PARALLEL_MIN_ENTRIES = 1 << 18


@njit(cache=True, parallel=True)
def _q_backup_tasks(P2, R2, V, gamma, Q):
    """:func:`q_backup_into` over tasks of ``_TASK_ROWS`` rows, in parallel (no reduction)."""
    SA = P2.shape[0]
    for t in prange((SA + _TASK_ROWS - 1) // _TASK_ROWS):
        lo = t * _TASK_ROWS
        hi = min(SA, lo + _TASK_ROWS)
        q_backup_into(P2[lo:hi], R2[lo:hi], V, gamma, Q[lo:hi])


@njit(cache=True)
def backup_into(P2, R2, V, gamma, Q, threaded):
    """:func:`q_backup_into`, on Numba's threads when ``threaded`` and P2 has at least 2**18
    entries; the same bits either way."""
    if threaded and P2.size >= _PARALLEL_MIN_ENTRIES:
        _q_backup_tasks(P2, R2, V, gamma, Q)
    else:
        q_backup_into(P2, R2, V, gamma, Q)


@njit(cache=True)
def q_backup(P2, R2, V, gamma, threaded):
    """``Q = R + gamma * P V`` as a new (S*A,) array (see :func:`backup_into`)."""
    Q = np.empty(P2.shape[0])
    backup_into(P2, R2, V, gamma, Q, threaded)
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
def value_iteration_kernel(P2, R2, gamma, V0, epsilon, max_iter, threaded):
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
        backup_into(P2, R2, V, gamma, Q, threaded)
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
def backward_induction_kernel(P3, R2, gamma, H, threaded):
    """Finite-horizon optimality recursion ``Q_h = R_h + gamma P_h V_{h+1}``, ``V_h = max_a Q_h``,
    ``V_H = 0`` (Puterman 1994, sec. 4.5). Returns ``V (H, S)`` and ``Q (H, S*A)``."""
    S = P3.shape[2]
    A = P3.shape[1] // S
    V = np.zeros((H + 1, S))
    Q = np.empty((H, P3.shape[1]))
    for h in range(H - 1, -1, -1):
        hp = h if P3.shape[0] > 1 else 0
        hr = h if R2.shape[0] > 1 else 0
        backup_into(P3[hp], R2[hr], V[h + 1], gamma, Q[h], threaded)
        _max_over_actions(Q[h], A, V[h])
    return V[:H].copy(), Q


@njit(cache=True)
def evaluate_finite_kernel(P3, R2, pi3, gamma, H, threaded):
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
        backup_into(P3[hp], R2[hr], V[h + 1], gamma, Q[h], threaded)
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


_BLOCK = 16  # episodes advanced together, so that their table lookups overlap in memory


@njit(cache=True)
def sample_episodes_kernel(P_tab, R3, mu0_tab, pi_det, pi_tab, stochastic, terminal, n, H, rng):
    """Roll out ``n`` episodes of ``H`` steps.

    ``P_tab (HP * S * AT, S, 2)``: alias tables of the rows ``(h, s, a)`` (HP in {1, H}) with
    ``AT = A``, or, for a deterministic policy, of the rows ``(h, s, pi_h(s))`` alone with
    ``AT = 1``; ``R3 (HR, S, AT)`` likewise; ``mu0_tab (1, S, 2)``; ``pi_det (HPI, S)`` int64
    actions, used when ``stochastic`` is False, else ``pi_tab (HPI * S, A, 2)``;
    ``terminal (S,)`` bool. After a terminal state the episode is padded with (that state,
    action -1, reward 0). Returns ``states (n, H+1)``, ``actions (n, H)``, ``rewards (n, H)``,
    ``lengths (n,)``.

    Draws: per block of ``_BLOCK`` episodes, s_0 for each, then for h = 0..H-1 and each
    episode of the block in turn, a_h (stochastic policy) and s_{h+1}: one uniform each.
    """
    S = terminal.shape[0]
    AT = R3.shape[2]
    HP = P_tab.shape[0] // (S * AT)
    HR = R3.shape[0]
    HPI = pi_det.shape[0] if not stochastic else pi_tab.shape[0] // S
    states = np.empty((n, H + 1), dtype=np.int64)
    actions = np.empty((n, H), dtype=np.int64)
    rewards = np.empty((n, H))
    lengths = np.zeros(n, dtype=np.int64)
    # One step of a block in three passes: (1) the policy, rewards and uniforms of every
    # episode; (2) the table loads alone, a short loop whose cache misses (the tables of a
    # large MDP do not fit in L2) all overlap; (3) column or alias, on data already in L1.
    row = np.empty(_BLOCK, dtype=np.int64)  # alias-table row, -1 once terminal
    column = np.empty(_BLOCK, dtype=np.int64)
    fraction = np.empty(_BLOCK)
    threshold = np.empty(_BLOCK)
    alias = np.empty(_BLOCK)
    for e0 in range(0, n, _BLOCK):
        e1 = min(n, e0 + _BLOCK)
        for e in range(e0, e1):
            states[e, 0] = alias_draw(mu0_tab, 0, rng)
        for h in range(H):
            hp = h if HP > 1 else 0
            hr = h if HR > 1 else 0
            hpi = h if HPI > 1 else 0
            for e in range(e0, e1):
                i = e - e0
                s = states[e, h]
                if terminal[s]:
                    row[i] = -1
                    states[e, h + 1] = s
                    actions[e, h] = -1
                    rewards[e, h] = 0.0
                    continue
                if stochastic:
                    a = alias_draw(pi_tab, hpi * S + s, rng)
                else:
                    a = pi_det[hpi, s]
                at = a if AT > 1 else 0
                actions[e, h] = a
                rewards[e, h] = R3[hr, s, at]
                lengths[e] = h + 1
                row[i] = (hp * S + s) * AT + at
                u = rng.random() * S
                column[i] = min(int(u), S - 1)  # u * S can round up to S
                fraction[i] = u - column[i]
            for i in range(e1 - e0):
                if row[i] >= 0:
                    threshold[i] = P_tab[row[i], column[i], 0]
                    alias[i] = P_tab[row[i], column[i], 1]
            for i in range(e1 - e0):
                if row[i] >= 0:
                    k = column[i] if fraction[i] < threshold[i] else int(alias[i])
                    states[e0 + i, h + 1] = k
    return states, actions, rewards, lengths
