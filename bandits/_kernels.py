"""Numba kernels for online stochastic bandits: UCB1 (Auer et al. 2002) and KL-UCB (Garivier and Cappe 2011).

Each kernel simulates one run and draws rewards from the ``numpy.random.Generator`` passed
in, in a fixed order (one draw per round), so a plain Python loop drawing from a Generator
with the same seed reproduces it exactly. Rounds are numbered ``t = 1, ..., T``; rounds
``1..nA`` play arms ``0..nA-1`` once; afterwards the index uses ``n = t - 1``, the number
of plays so far. Ties go to the lowest index.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _draw_reward(mean, sigma, gaussian, rng):
    """Bernoulli(mean) from one uniform, or Normal(mean, sigma^2) from one standard normal."""
    if gaussian:
        return mean + sigma * rng.standard_normal()
    return 1.0 if rng.random() < mean else 0.0


@njit(cache=True)
def ucb_run(means, sigma, gaussian, T, record_every, explore, rng):
    """One run of the index policy ``argmax_a rhat[a] + sqrt(explore * log n) / sqrt(N[a])``.

    ``explore = 2`` is UCB1 (Auer, Cesa-Bianchi, Fischer 2002, Fig. 1); ``explore = 0`` is
    greedy. Per round: one log, one sqrt and O(nA) multiply-adds (``1 / sqrt(N[a])`` is
    updated only for the pulled arm).

    Parameters
    ----------
    means : (nA,) float64; sigma : float64; gaussian : bool (else Bernoulli rewards)
    T : int64 >= 1; record_every : int64 in [1, T]; explore : float64 >= 0
    rng : numpy.random.Generator

    Returns
    -------
    pseudo : (T // record_every,) float64, cumulative ``sum_t gap[a_t]`` after rounds
        ``record_every, 2 record_every, ...``
    realised : same shape, ``t * max(means) - sum of rewards`` at those rounds
    counts : (nA,) int64 plays per arm over all ``T`` rounds
    """
    nA = means.shape[0]
    mu_star = means.max()
    pseudo = np.empty(T // record_every)
    realised = np.empty(T // record_every)
    counts = np.zeros(nA, dtype=np.int64)
    sums = np.zeros(nA)
    rhat = np.zeros(nA)
    inv_sqrt_n = np.zeros(nA)
    cum_gap = 0.0
    cum_reward = 0.0
    next_record = record_every
    j = 0
    for t in range(1, T + 1):
        if t <= nA:
            a = t - 1
        else:
            root = np.sqrt(explore * np.log(t - 1.0))
            a = 0
            best = rhat[0] + root * inv_sqrt_n[0]
            for k in range(1, nA):
                u = rhat[k] + root * inv_sqrt_n[k]
                if u > best:
                    best = u
                    a = k
        r = _draw_reward(means[a], sigma, gaussian, rng)
        counts[a] += 1
        sums[a] += r
        rhat[a] = sums[a] / counts[a]
        inv_sqrt_n[a] = 1.0 / np.sqrt(counts[a])
        cum_gap += mu_star - means[a]
        cum_reward += r
        if t == next_record:
            pseudo[j] = cum_gap
            realised[j] = t * mu_star - cum_reward
            j += 1
            next_record += record_every
    return pseudo, realised, counts


@njit(cache=True)
def kl_bernoulli(p, q):
    """``kl(p, q) = p log(p / q) + (1 - p) log((1 - p) / (1 - q))`` with ``0 log 0 = 0``."""
    out = 0.0
    if p > 0.0:
        out += p * np.log(p / q)
    if p < 1.0:
        out += (1.0 - p) * np.log((1.0 - p) / (1.0 - q))
    return out


@njit(cache=True)
def kl_ucb_index(p, n, level, tol):
    """``max{q in [p, 1] : n kl(p, q) <= level}`` by Newton's method from above.

    ``g(q) = n kl(p, q) - level`` is convex and increasing on ``[p, 1)``, so Newton steps
    started at an upper bound of the root decrease monotonically to it. Start: the smaller
    of Pinsker's bound ``p + sqrt(level / (2 n))`` and
    ``1 - (1 - p) exp(-(level / n - p log p) / (1 - p))`` (from ``kl(p, q) >= p log p +
    (1 - p) log((1 - p) / (1 - q))``), which is below 1. Stops when a step is below ``tol``
    (then the result exceeds the root by about tol^2 / scale, far below tol), or after 100
    steps. Returns 1 when ``p = 1`` and ``p`` when ``level <= 0``.
    """
    if p >= 1.0:
        return 1.0
    x = level / n
    if x <= 0.0:
        return p
    q = p + np.sqrt(0.5 * x)
    plogp = p * np.log(p) if p > 0.0 else 0.0
    q_near_one = 1.0 - (1.0 - p) * np.exp(-(x - plogp) / (1.0 - p))
    if q_near_one < q:
        q = q_near_one
    if q >= 1.0:
        return 1.0
    for _ in range(100):
        if q <= p:
            return p
        g = kl_bernoulli(p, q) - x
        slope = (q - p) / (q * (1.0 - q))
        step = g / slope
        q_new = q - step
        if q_new < p:
            q_new = p
        if q_new >= 1.0:
            q_new = 1.0 - 0.5 * (1.0 - q)
        q = q_new
        if abs(step) <= tol:
            break
    return q


@njit(cache=True)
def kl_ucb_level(n, c):
    """Exploration level ``log n + c log log n``, the log log term counted only when ``log n > 1``."""
    log_n = np.log(n)
    if c != 0.0 and log_n > 1.0:
        return log_n + c * np.log(log_n)
    return log_n


@njit(cache=True)
def kl_ucb_run(means, T, record_every, c, tol, rng):
    """One run of KL-UCB for Bernoulli arms (Garivier and Cappe 2011, Algorithm 1).

    After one play of each arm, round ``t`` plays
    ``argmax_a max{q : N[a] kl(rhat[a], q) <= log n + c log log n}`` with ``n = t - 1``
    (index from :func:`kl_ucb_index` at tolerance ``tol``). Arguments and returns as
    :func:`ucb_run` (Bernoulli rewards, one uniform per round).
    """
    nA = means.shape[0]
    mu_star = means.max()
    pseudo = np.empty(T // record_every)
    realised = np.empty(T // record_every)
    counts = np.zeros(nA, dtype=np.int64)
    sums = np.zeros(nA)
    cum_gap = 0.0
    cum_reward = 0.0
    next_record = record_every
    j = 0
    for t in range(1, T + 1):
        if t <= nA:
            a = t - 1
        else:
            level = kl_ucb_level(t - 1.0, c)
            a = 0
            best = -1.0
            for k in range(nA):
                u = kl_ucb_index(sums[k] / counts[k], counts[k], level, tol)
                if u > best:
                    best = u
                    a = k
        r = _draw_reward(means[a], 0.0, False, rng)
        counts[a] += 1
        sums[a] += r
        cum_gap += mu_star - means[a]
        cum_reward += r
        if t == next_record:
            pseudo[j] = cum_gap
            realised[j] = t * mu_star - cum_reward
            j += 1
            next_record += record_every
    return pseudo, realised, counts
