"""Online stochastic bandits: UCB1 (Auer, Cesa-Bianchi, Fischer 2002) and KL-UCB (Garivier and Cappe 2011).

The Python layer validates and seeds; each run is one call of a Numba kernel in
:mod:`bandits._kernels`, with its own Generator from ``spawn(seed, n_runs)[i]``, so run i is
the same whatever ``n_runs``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bandits import _kernels
from bandits.environments import BernoulliBandit, GaussianBandit, _validate_count
from proofs_check.messages import plain
from proofs_check.seeding import spawn

__all__ = ["OnlineResult", "ucb1", "kl_ucb", "KL_UCB_TOL"]

KL_UCB_TOL = 1e-10
"""Newton step size at which the KL-UCB index computation stops (the index is then
accurate to far better than this, see :func:`bandits._kernels.kl_ucb_index`)."""


@dataclass(frozen=True, eq=False)
class OnlineResult:
    """Regret curves of ``n_runs`` independent runs, recorded every ``record_every`` rounds.

    Attributes
    ----------
    rounds : ndarray, shape (T // record_every,), int64
        The recorded rounds ``record_every, 2 record_every, ...`` (1-based).
    pseudo_regret : ndarray, shape (n_runs, T // record_every), float64
        Cumulative ``sum_{s <= t} gap[a_s]`` at those rounds: non-negative, non-decreasing.
    realised_regret : ndarray, shape (n_runs, T // record_every), float64
        Cumulative ``t * max(means) - sum_{s <= t} r_s`` (observed rewards); can be negative.
    counts : ndarray, shape (n_runs, nA), int64
        Plays of each arm over all ``T`` rounds (including rounds after the last record).
    """

    rounds: np.ndarray
    pseudo_regret: np.ndarray
    realised_regret: np.ndarray
    counts: np.ndarray


def _run_all(kernel, args, T, n_runs, record_every, nA, seed) -> OnlineResult:
    n_rec = T // record_every
    pseudo = np.empty((n_runs, n_rec))
    realised = np.empty((n_runs, n_rec))
    counts = np.empty((n_runs, nA), dtype=np.int64)
    for i, child in enumerate(spawn(seed, n_runs)):
        rng = np.random.default_rng(child)
        pseudo[i], realised[i], counts[i] = kernel(*args, rng)
    rounds = record_every * np.arange(1, n_rec + 1, dtype=np.int64)
    return OnlineResult(rounds, pseudo, realised, counts)


def _validate_run(T, n_runs, record_every) -> tuple[int, int, int]:
    T = _validate_count(T, "T", 1, capped=True)
    n_runs = _validate_count(n_runs, "n_runs", 1, capped=True)
    record_every = _validate_count(record_every, "record_every", 1, capped=True)
    if record_every > T:
        raise ValueError(f"record_every = {record_every} exceeds T = {T}: nothing would be recorded")
    return T, n_runs, record_every


def ucb1(bandit, T: int, *, n_runs: int = 1, record_every: int = 1, seed=None) -> OnlineResult:
    """Run UCB1 ``n_runs`` times for ``T`` rounds.

    Source: Auer, Cesa-Bianchi, Fischer (2002), "Finite-time analysis of the multiarmed
    bandit problem", Fig. 1 (UCB1): play each arm once, then at round ``t`` play
    ``argmax_a rhat[a] + sqrt(2 log n / N[a])`` with ``n = t - 1`` plays so far (ties to the
    lowest index). Their Theorem 1 (rewards in [0, 1]) bounds the expected pseudo-regret by
    ``8 sum_{gap > 0} log T / gap + (1 + pi^2 / 3) sum_a gap[a]``.
    For a :class:`GaussianBandit` the width is scaled by ``sigma``
    (``sigma sqrt(2 log n / N[a])``, the sub-Gaussian UCB of Lattimore and Szepesvari 2020,
    Ch. 7, with delta = 1/n); Theorem 1 does not cover that case.

    Parameters
    ----------
    bandit : BernoulliBandit or GaussianBandit
    T : int
        Horizon (rounds per run), in ``[1, MAX_COUNT]`` (``2**62``; memory binds far earlier).
    n_runs : int, default 1
        Independent runs; run i uses ``spawn(seed, n_runs)[i]``.
    record_every : int, default 1
        Record the curves at rounds ``record_every, 2 record_every, ...`` only, so the
        output has ``T // record_every`` columns (rounds after the last multiple are played
        but not recorded). Must be in ``[1, T]``.
    seed : int, SeedSequence, Generator or None

    Returns
    -------
    OnlineResult

    Raises
    ------
    TypeError
        If ``bandit`` is not a bandit instance or an integer argument is not an int.
    ValueError
        If ``T < 1``, ``n_runs < 1``, ``T`` or ``n_runs`` exceeds ``MAX_COUNT``, or
        ``record_every`` is outside ``[1, T]``.
    """
    T, n_runs, record_every = _validate_run(T, n_runs, record_every)
    if isinstance(bandit, BernoulliBandit):
        sigma, gaussian, explore = 0.0, False, 2.0
    elif isinstance(bandit, GaussianBandit):
        sigma, gaussian, explore = bandit.sigma, True, 2.0 * bandit.sigma**2
    else:
        raise TypeError(f"bandit must be a BernoulliBandit or GaussianBandit, got {type(bandit).__name__}")
    args = (np.array(bandit.means), sigma, gaussian, T, record_every, explore)
    return _run_all(_kernels.ucb_run, args, T, n_runs, record_every, bandit.nA, seed)


def kl_ucb(bandit, T: int, *, n_runs: int = 1, c: float = 0.0, record_every: int = 1, seed=None) -> OnlineResult:
    """Run KL-UCB for Bernoulli arms ``n_runs`` times for ``T`` rounds.

    Source: Garivier and Cappe (2011), "The KL-UCB algorithm for bounded stochastic bandits
    and beyond", Algorithm 1: play each arm once, then at round ``t`` play
    ``argmax_a max{q in [rhat[a], 1] : N[a] kl(rhat[a], q) <= log n + c log log n}`` with
    ``n = t - 1`` and ``kl`` the Bernoulli relative entropy. Their finite-time bound uses ``c = 3``;
    they recommend ``c = 0`` in practice. The ``log log n`` term is counted only when
    ``log n > 1`` (it is negative for ``n = 2``). The index is computed by Newton's method to
    step tolerance :data:`KL_UCB_TOL` (see :func:`bandits._kernels.kl_ucb_index`).

    Parameters
    ----------
    bandit : BernoulliBandit
    T, n_runs, record_every, seed
        As :func:`ucb1`.
    c : float, default 0.0
        Weight of the ``log log n`` term, finite and >= 0.

    Returns
    -------
    OnlineResult

    Raises
    ------
    TypeError
        If ``bandit`` is not a BernoulliBandit or an integer argument is not an int.
    ValueError
        As :func:`ucb1`, and if ``c`` is negative or not finite.
    """
    T, n_runs, record_every = _validate_run(T, n_runs, record_every)
    if not isinstance(bandit, BernoulliBandit):
        raise TypeError(f"kl_ucb needs a BernoulliBandit, got {type(bandit).__name__}")
    if (isinstance(c, (bool, np.bool_))
            or not (isinstance(c, (int, float, np.integer, np.floating)) and 0 <= c < np.inf)):
        raise ValueError(f"c must be a finite number >= 0, got {plain(c)}")
    args = (np.array(bandit.means), T, record_every, float(c), KL_UCB_TOL)
    return _run_all(_kernels.kl_ucb_run, args, T, n_runs, record_every, bandit.nA, seed)
