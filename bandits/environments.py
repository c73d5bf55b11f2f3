"""Stochastic multi-armed bandit instances and offline bandit data (Rashidinejad et al. 2021, the MAB setting).

A bandit instance is an immutable, validated container of its arms' reward laws. Offline
data follow the sheet's model: ``N`` i.i.d. pairs ``(a_i, r_i)`` with ``a_i ~ mu`` and
``r_i`` drawn from arm ``a_i``'s law. :func:`sample_statistics` draws the sufficient
statistics (counts and reward sums) of ``R`` such datasets directly, which is what the
vectorised offline algorithms in :mod:`bandits.offline` consume.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from proofs_check.messages import plain
from proofs_check.seeding import as_generator

__all__ = [
    "BernoulliBandit",
    "GaussianBandit",
    "offline_dataset",
    "dataset_statistics",
    "sample_statistics",
    "C_star",
    "MAX_COUNT",
]

MAX_COUNT = 2**62
"""Largest sample count (``N``, a per-arm count ``N[a]``) accepted anywhere in :mod:`bandits`.

Counts are stored as int64 (largest ``2**63 - 1``); the limit leaves room for ``2 * N``."""


def _index(i) -> str:
    """``(1, 0)`` -> ``"[1, 0]"`` for error messages."""
    return "[" + ", ".join(str(int(k)) for k in i) + "]"


def _validate_means(means, low: float, high: float, owner: str) -> np.ndarray:
    """Return ``means`` as a read-only float64 ``(nA,)`` array, or raise naming the bad index."""
    arr = np.asarray(means)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{owner}: means must be real numbers, got dtype {arr.dtype}")
    arr = np.array(arr, dtype=np.float64)
    if arr.ndim != 1 or arr.shape[0] < 1:
        raise ValueError(f"{owner}: means must have shape (nA,) with nA >= 1, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr) | (arr < low) | (arr > high))
    if bad.size:
        a = bad[0]
        why = "is not finite" if not np.isfinite(arr[a]) else f"is outside [{low}, {high}]"
        raise ValueError(f"{owner}: means[{a}] = {plain(arr[a])} {why}")
    arr.setflags(write=False)
    return arr


def _validate_arms(arms, nA: int) -> np.ndarray:
    """Return ``arms`` as an int64 array, each entry in ``{0, ..., nA - 1}``."""
    arr = np.asarray(arms)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"arms must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    bad = np.flatnonzero((arr < 0) | (arr >= nA))
    if bad.size:
        i = np.unravel_index(bad[0], arr.shape)
        raise ValueError(f"arms{_index(i)} = {plain(arr[i])} is not an arm index in [0, {nA - 1}]")
    return arr


def _as_array(values, name: str) -> np.ndarray:
    """``np.asarray(values)``, with a message naming ``name`` when ``values`` is ragged
    (nested sequences of different lengths) instead of numpy's "inhomogeneous shape"."""
    try:
        return np.asarray(values)
    except ValueError as error:
        if "inhomogeneous" not in str(error):
            raise
        raise ValueError(f"{name} is ragged (nested sequences of different lengths); it must be "
                         "a rectangular array") from None


def _real_array(values, name: str) -> np.ndarray:
    """``values`` as a numpy array of real numbers (bool, int or float).

    Raises
    ------
    TypeError
        If the dtype is not bool, integer or float.
    ValueError
        If ``values`` is ragged (see :func:`_as_array`).
    """
    arr = _as_array(values, name)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be real numbers, got dtype {arr.dtype}")
    return arr


def _validate_distribution(values, name: str, shape: tuple, what: str) -> np.ndarray:
    """``values`` as a float64 probability array of ``shape``, or raise naming the entry.

    Entries must be finite and non-negative and sum to 1 within ``16 * size * eps``, with
    ``eps`` the machine epsilon of the input's dtype (float64's for integers), as
    :class:`tabular.TabularMDP` treats ``P``. A lower-precision input (e.g. float32) that
    passes is divided by its float64 sum, so that numpy's samplers accept it. ``what``
    completes the shape message (e.g. "to match the bandit's nA").
    """
    arr = _real_array(values, name)
    eps64 = float(np.finfo(np.float64).eps)
    # The sum is taken in float64, so no dtype gets a tolerance below float64's.
    eps = max(float(np.finfo(arr.dtype).eps), eps64) if arr.dtype.kind == "f" else eps64
    arr = arr.astype(np.float64)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape} {what}, got {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr) | (arr < 0))
    if bad.size:
        i = np.unravel_index(bad[0], arr.shape)
        why = "not finite" if not np.isfinite(arr[i]) else "negative"
        raise ValueError(f"{name}{_index(i)} = {plain(arr[i])} is {why}")
    atol = 16 * arr.size * eps
    total = arr.sum()
    if abs(total - 1.0) > atol:
        raise ValueError(f"{name} sums to {float(total)!r}, not 1 (atol {atol:.2g})")
    if abs(total - 1.0) > 16 * arr.size * eps64:
        arr = arr / total
    return arr


def _validate_mu(mu, nA: int) -> np.ndarray:
    """Return the behaviour distribution ``mu`` as a float64 ``(nA,)`` array summing to 1
    (the checks of :func:`_validate_distribution`)."""
    return _validate_distribution(mu, "mu", (nA,), "to match the bandit's nA")


def _validate_count(value, name: str, minimum: int, capped: bool = False) -> int:
    """``value`` as an int ``>= minimum`` (and ``<= MAX_COUNT`` if ``capped``), or raise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if capped and value > MAX_COUNT:
        raise ValueError(f"{name} = {value} exceeds the limit MAX_COUNT = 2**62 = {MAX_COUNT}")
    return value


class _Arms:
    """Properties shared by the bandit classes, derived from ``self.means``."""

    @property
    def nA(self) -> int:
        """Number of arms."""
        return int(self.means.shape[0])

    @property
    def optimal_arm(self) -> int:
        """``a* = argmax_a means[a]``, the lowest index among the maxima."""
        return int(np.argmax(self.means))

    @property
    def gaps(self) -> np.ndarray:
        """``(nA,)`` float64 sub-optimality gaps ``max_b means[b] - means[a]`` (>= 0)."""
        return self.means.max() - self.means


@dataclass(frozen=True, eq=False)
class BernoulliBandit(_Arms):
    """Bernoulli arms: pulling arm ``a`` returns 1 with probability ``means[a]``, else 0.

    Parameters
    ----------
    means : array_like, shape (nA,)
        Success probabilities, finite, in [0, 1]. Stored as a read-only float64 array.

    Attributes
    ----------
    nA : int
        Number of arms.
    optimal_arm : int
        ``a*``, the lowest index among the arms of largest mean.
    gaps : ndarray, shape (nA,), float64
        ``max means - means``.

    Raises
    ------
    TypeError
        If ``means`` is not numeric.
    ValueError
        If ``means`` is not 1-d and non-empty, or an entry is not finite or outside [0, 1]
        (the message names the index).
    """

    means: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "means", _validate_means(self.means, 0.0, 1.0, "BernoulliBandit"))

    def sample(self, arms, seed=None) -> np.ndarray:
        """Draw one reward per entry of ``arms``.

        Parameters
        ----------
        arms : array_like of int
            Arm indices, any shape.
        seed : int, SeedSequence, Generator or None
            Source of randomness (see :func:`proofs_check.seeding.as_generator`).

        Returns
        -------
        rewards : ndarray, float64, same shape as ``arms``
            Entries in {0.0, 1.0}.
        """
        arms = _validate_arms(arms, self.nA)
        rng = as_generator(seed)
        return (rng.random(arms.shape) < self.means[arms]).astype(np.float64)


@dataclass(frozen=True, eq=False)
class GaussianBandit(_Arms):
    """Gaussian arms: pulling arm ``a`` returns a draw of ``Normal(means[a], sigma^2)``.

    Parameters
    ----------
    means : array_like, shape (nA,)
        Finite reward means. Stored as a read-only float64 array.
    sigma : float, default 1.0
        Common standard deviation, finite and > 0.

    Raises
    ------
    TypeError
        If ``means`` or ``sigma`` is not numeric.
    ValueError
        If ``means`` is not 1-d and non-empty, an entry is not finite (the message names
        the index), or ``sigma`` is not finite and positive.

    Notes
    -----
    Rewards are unbounded, so the Hoeffding bonuses of :mod:`bandits.offline` (stated for
    rewards in [0, 1]) are not valid confidence widths for this class.
    """

    means: np.ndarray
    sigma: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "means", _validate_means(self.means, -np.inf, np.inf, "GaussianBandit"))
        if isinstance(self.sigma, (bool, np.bool_)) or not isinstance(self.sigma, (int, float, np.integer, np.floating)):
            raise TypeError(f"GaussianBandit: sigma must be a real number, got {type(self.sigma).__name__}")
        if not (np.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError(f"GaussianBandit: sigma = {plain(self.sigma)} must be finite and > 0")
        object.__setattr__(self, "sigma", float(self.sigma))

    def sample(self, arms, seed=None) -> np.ndarray:
        """Draw one reward per entry of ``arms`` (float64, same shape as ``arms``).

        See :meth:`BernoulliBandit.sample` for the parameters.
        """
        arms = _validate_arms(arms, self.nA)
        rng = as_generator(seed)
        return rng.normal(self.means[arms], self.sigma)


def _check_bandit(bandit) -> None:
    if not isinstance(bandit, (BernoulliBandit, GaussianBandit)):
        raise TypeError(f"bandit must be a BernoulliBandit or GaussianBandit, got {type(bandit).__name__}")


def offline_dataset(bandit, mu, N: int, *, seed=None) -> tuple[np.ndarray, np.ndarray]:
    """Draw an offline dataset of ``N`` i.i.d. pairs ``(a_i, r_i)``, ``a_i ~ mu``.

    Source: the MAB data model of Rashidinejad et al. (2021) (spec sheet "Setting").

    Parameters
    ----------
    bandit : BernoulliBandit or GaussianBandit
    mu : array_like, shape (nA,)
        Behaviour distribution over arms: finite, non-negative, summing to 1 within
        ``16 * nA * eps`` with ``eps`` the machine epsilon of its dtype (float64's for
        integers). A float32 (or float16) ``mu`` is used divided by its float64 sum.
    N : int
        Number of samples, in ``[0, MAX_COUNT]`` (:data:`MAX_COUNT` is ``2**62``).
    seed : int, SeedSequence, Generator or None

    Returns
    -------
    arms : ndarray, shape (N,), int64
    rewards : ndarray, shape (N,), float64
        ``rewards[i]`` is drawn from arm ``arms[i]``'s law.

    Raises
    ------
    TypeError
        If ``bandit`` is not a bandit instance or ``N`` is not an int.
    ValueError
        If ``mu`` is invalid (the message names the entry or the sum) or ``N`` is outside
        ``[0, MAX_COUNT]``.
    """
    _check_bandit(bandit)
    mu = _validate_mu(mu, bandit.nA)
    N = _validate_count(N, "N", 0, capped=True)
    rng = as_generator(seed)
    arms = rng.choice(bandit.nA, size=N, p=mu).astype(np.int64)
    return arms, bandit.sample(arms, rng)


def dataset_statistics(arms, rewards, nA: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-arm counts ``N[a]`` and reward sums of one dataset or of a batch of datasets.

    Parameters
    ----------
    arms : array_like of int, shape (N,) or (R, N)
        Arm indices in ``[0, nA)``; a 2-d input holds ``R`` datasets, one per row. Empty
        datasets (``N = 0``) and an empty batch (``R = 0``) are valid: their counts and sums
        are 0.
    rewards : array_like of float, same shape as ``arms``
        Finite rewards.
    nA : int
        Number of arms.

    Returns
    -------
    counts : ndarray, int64, shape (nA,) or (R, nA)
        ``counts[..., a] = #{i : arms[..., i] = a}``.
    reward_sums : ndarray, float64, shape (nA,) or (R, nA)
        ``reward_sums[..., a] = sum of rewards[..., i] over i with arms[..., i] = a``.

    Raises
    ------
    TypeError
        If ``arms`` is not integer or ``rewards`` not numeric.
    ValueError
        If the shapes differ or are not 1-d/2-d, an arm is out of range, or a reward is
        not finite.
    """
    nA = _validate_count(nA, "nA", 1)
    arms = _validate_arms(arms, nA)
    rewards = np.asarray(rewards)
    if rewards.dtype.kind not in "biuf":
        raise TypeError(f"rewards must be real numbers, got dtype {rewards.dtype}")
    rewards = rewards.astype(np.float64)
    if arms.shape != rewards.shape or arms.ndim not in (1, 2):
        raise ValueError(f"arms {arms.shape} and rewards {rewards.shape} must share one shape, (N,) or (R, N)")
    bad = np.flatnonzero(~np.isfinite(rewards))
    if bad.size:
        i = np.unravel_index(bad[0], rewards.shape)
        raise ValueError(f"rewards{_index(i)} = {plain(rewards[i])} is not finite")
    batch = arms if arms.ndim == 2 else arms[None, :]
    R = batch.shape[0]
    # One bincount over (row, arm) cells: cell index row * nA + arm. Ravelling (not
    # reshaping with -1) keeps empty datasets and empty batches valid.
    cells = (batch + nA * np.arange(R)[:, None]).ravel()
    counts = np.bincount(cells, minlength=R * nA).reshape(R, nA).astype(np.int64)
    sums = np.bincount(cells, weights=rewards.ravel(), minlength=R * nA).reshape(R, nA).astype(np.float64)
    if arms.ndim == 1:
        return counts[0], sums[0]
    return counts, sums


def sample_statistics(bandit, mu, N: int, R: int, *, seed=None) -> tuple[np.ndarray, np.ndarray]:
    """Draw the counts and reward sums of ``R`` independent offline datasets of size ``N``.

    Same law as ``dataset_statistics(*offline_dataset(bandit, mu, N))`` repeated ``R``
    times, drawn without materialising the datasets:

    - ``counts ~ Multinomial(N, mu)`` per repetition;
    - Bernoulli: ``reward_sums[r, a] ~ Binomial(counts[r, a], means[a])``;
    - Gaussian: ``reward_sums[r, a] ~ Normal(counts[r, a] * means[a], counts[r, a] * sigma^2)``.

    Parameters
    ----------
    bandit : BernoulliBandit or GaussianBandit
    mu : array_like, shape (nA,)
        Behaviour distribution (validated as in :func:`offline_dataset`).
    N : int
        Dataset size, in ``[0, MAX_COUNT]``.
    R : int
        Number of repetitions, >= 1.
    seed : int, SeedSequence, Generator or None

    Returns
    -------
    counts : ndarray, shape (R, nA), int64
    reward_sums : ndarray, shape (R, nA), float64

    Raises
    ------
    TypeError, ValueError
        As :func:`offline_dataset`; also if ``R < 1``.
    """
    _check_bandit(bandit)
    mu = _validate_mu(mu, bandit.nA)
    N = _validate_count(N, "N", 0, capped=True)
    R = _validate_count(R, "R", 1)
    rng = as_generator(seed)
    counts = rng.multinomial(N, mu, size=R).astype(np.int64)
    if isinstance(bandit, BernoulliBandit):
        sums = rng.binomial(counts, bandit.means).astype(np.float64)
    else:
        sums = rng.normal(counts * bandit.means, np.sqrt(counts) * bandit.sigma)
    return counts, sums


def C_star(mu, bandit_or_optimal_arm) -> float:
    """Single-policy concentrability of the behaviour distribution, ``C* = 1 / mu[a*]``.

    Source: Rashidinejad et al. (2021), MAB setting (spec sheet "Setting"); ``C*`` lies in
    ``[1, inf]``.

    Parameters
    ----------
    mu : array_like, shape (nA,)
        Behaviour distribution (validated as in :func:`offline_dataset`).
    bandit_or_optimal_arm : BernoulliBandit, GaussianBandit or int
        The instance (its ``optimal_arm``, the lowest-index maximiser, is used) or the index
        ``a*`` itself.

    Returns
    -------
    float
        ``1 / mu[a*]``; ``inf`` when ``mu[a*] = 0``.

    Raises
    ------
    TypeError, ValueError
        If ``mu`` is invalid or the arm index is not an int in range.
    """
    if isinstance(bandit_or_optimal_arm, (BernoulliBandit, GaussianBandit)):
        nA, a_star = bandit_or_optimal_arm.nA, bandit_or_optimal_arm.optimal_arm
    else:
        a_star = _validate_count(bandit_or_optimal_arm, "optimal_arm", 0)
        nA = np.shape(mu)[0] if np.ndim(mu) == 1 else -1
        if a_star >= nA:
            raise ValueError(f"optimal_arm = {a_star} is not an index of mu with shape {np.shape(mu)}")
    mu = _validate_mu(mu, nA)
    return float(np.inf) if mu[a_star] == 0 else float(1.0 / mu[a_star])
