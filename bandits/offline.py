"""Offline MAB: LCB (Rashidinejad, Zhu, Ma, Jiao, Russell 2021, Algorithm LCB for MAB), greedy and most-played arm.

Every function is vectorised over repetitions: it takes the sufficient statistics
``counts (R, nA)`` and ``reward_sums (R, nA)`` of ``R`` datasets (a 1-d ``(nA,)`` input is
one dataset and gives scalar outputs).

Unseen-arm convention (the sheet's pitfall): an arm with ``N[a] = 0`` scores ``-inf`` in LCB
and greedy, so it is never chosen over a seen arm (the paper's ``rhat = 0, b = 1`` would
score -1 and beat a seen arm with one zero reward whenever ``log(2 nA / delta) > 2``).
When no arm was seen, every method returns arm 0 and sets ``nothing_seen``.
Counts may not exceed :data:`bandits.environments.MAX_COUNT` (``2**62``).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from bandits.environments import MAX_COUNT, _as_array, _index, _real_array
from proofs_check.messages import plain

__all__ = [
    "Choice",
    "lcb_bonus",
    "lcb",
    "greedy",
    "most_played_arm",
    "suboptimality",
    "lcb_event_holds",
]


class Choice(NamedTuple):
    """The arm an offline method returns, per repetition.

    Attributes
    ----------
    arms : ndarray, shape (R,), int64 (int for a 1-d input)
        The chosen arm.
    nothing_seen : ndarray, shape (R,), bool (bool for a 1-d input)
        True where the dataset was empty (all counts 0); the arm is then 0 by convention.
    """

    arms: np.ndarray
    nothing_seen: np.ndarray


_SHAPES = "(nA,) or (R, nA) with nA >= 1"


def _validate_counts(counts, ndims=(1, 2), shapes=_SHAPES) -> np.ndarray:
    """``counts`` as int64, or raise naming the bad entry.

    ``ndims`` are the accepted numbers of dimensions, the last ``min(ndims)`` of which must
    be non-empty; ``shapes`` describes them in the message (:mod:`bandits.contextual` passes
    ``(2, 3)`` for ``(S, nA)`` and ``(R, S, nA)``).
    """
    arr = _as_array(counts, "counts")
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"counts must be integers, got dtype {arr.dtype}")
    if arr.ndim not in ndims or min(arr.shape[-min(ndims):]) < 1:
        raise ValueError(f"counts must have shape {shapes}, got {arr.shape}")
    # Checked before the int64 conversion, which would wrap 2**63 or 1e300 to garbage.
    limits = np.iinfo(arr.dtype) if arr.dtype.kind in "iu" else np.finfo(arr.dtype)
    # float16 cannot hold MAX_COUNT (comparing would overflow), nor any count above it.
    too_big = (arr > MAX_COUNT) if float(limits.max) > MAX_COUNT else np.zeros(arr.shape, bool)
    if arr.dtype.kind in "iu":
        bad = np.flatnonzero((arr < 0) | too_big)
    else:
        bad = np.flatnonzero(~np.isfinite(arr) | (arr < 0) | (arr != np.round(arr)) | too_big)
    if bad.size:
        i = np.unravel_index(bad[0], arr.shape)
        value = arr[i]
        if too_big[i] and np.isfinite(value):  # floats above 2**53 are all integers
            why = f"exceeds the limit MAX_COUNT = 2**62 = {MAX_COUNT}"
        else:
            why = "is not a non-negative integer"
        raise ValueError(f"counts{_index(i)} = {plain(value)} {why}")
    return arr.astype(np.int64)


def _validate_statistics(counts, reward_sums, ndims=(1, 2), shapes=_SHAPES,
                         unit="an arm") -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(counts int64, reward_sums float64)``; ``unit`` names a cell in messages."""
    counts = _validate_counts(counts, ndims, shapes)
    sums = _real_array(reward_sums, "reward_sums").astype(np.float64)
    if sums.shape != counts.shape:
        raise ValueError(f"reward_sums has shape {sums.shape}, counts has {counts.shape}: they must match")
    bad = np.flatnonzero(~np.isfinite(sums) | ((counts == 0) & (sums != 0)))
    if bad.size:
        i = np.unravel_index(bad[0], sums.shape)
        why = "is not finite" if not np.isfinite(sums[i]) else f"is non-zero for {unit} with count 0"
        raise ValueError(f"reward_sums{_index(i)} = {plain(sums[i])} {why}")
    return counts, sums


def _validate_delta(delta, bonus_scale) -> None:
    """``delta`` in (0, 1) (a bool is not a number here) and ``bonus_scale`` finite and > 0."""
    number = isinstance(delta, (int, float, np.integer, np.floating)) and not isinstance(delta, (bool, np.bool_))
    if not (number and 0 < delta < 1):
        raise ValueError(f"delta must be a number in (0, 1), got {plain(delta)}")
    if not (isinstance(bonus_scale, (int, float, np.integer, np.floating)) and 0 < bonus_scale < np.inf):
        raise ValueError(f"bonus_scale must be a finite number > 0, got {plain(bonus_scale)}")


def _empirical_means(counts: np.ndarray, sums: np.ndarray) -> np.ndarray:
    """``rhat = sums / counts`` on seen arms, nan on unseen ones."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def _choose(scores: np.ndarray, counts: np.ndarray) -> Choice:
    """Argmax of ``scores`` (lowest index on ties), flagging empty datasets."""
    arms = np.argmax(scores, axis=-1).astype(np.int64)
    nothing_seen = (counts == 0).all(axis=-1)  # not sum() == 0, which could overflow
    if scores.ndim == 1:
        return Choice(int(arms), bool(nothing_seen))
    return Choice(arms, nothing_seen)


def lcb_bonus(counts, nA: int, delta: float, bonus_scale: float = 1.0) -> np.ndarray:
    """Hoeffding confidence widths with a union bound over arms.

    ``b[a] = bonus_scale * sqrt(log(2 nA / delta) / (2 N[a]))`` for ``N[a] >= 1``
    (Rashidinejad et al. 2021, LCB for MAB, step 1). For rewards in [0, 1], Hoeffding's
    inequality ``P(|rhat[a] - r[a]| > eps | N[a]) <= 2 exp(-2 N[a] eps^2)`` at level
    ``delta / nA`` per arm gives, with ``bonus_scale = 1``,
    ``P(|rhat[a] - r[a]| <= b[a] for all seen a) >= 1 - delta``.
    Unseen arms (``N[a] = 0``) get ``b[a] = inf`` (no information).

    Parameters
    ----------
    counts : array_like of int, shape (nA,) or (R, nA)
        Per-arm sample counts ``N[a]``: integer-valued (an integer or float dtype), in
        ``[0, MAX_COUNT]`` (``2**62``).
    nA : int
        Number of arms in the union bound (normally ``counts.shape[-1]``), >= 1.
    delta : float
        Failure probability, in (0, 1). The paper's theory uses ``delta = 1 / N``.
    bonus_scale : float, default 1.0
        Multiplier of the width, finite and > 0 (1 is the paper's).

    Returns
    -------
    b : ndarray, float64, same shape as ``counts``
        Widths in reward units; ``inf`` where ``N[a] = 0``.

    Raises
    ------
    TypeError
        If ``counts`` is not numeric.
    ValueError
        If a count is negative, not an integer or above ``MAX_COUNT``, ``nA < 1``, or
        ``delta`` or ``bonus_scale`` is out of range.
    """
    counts = _validate_counts(counts)
    _validate_delta(delta, bonus_scale)
    if isinstance(nA, (bool, np.bool_)) or not isinstance(nA, (int, np.integer)) or nA < 1:
        raise ValueError(f"nA must be an int >= 1, got {plain(nA)}")
    with np.errstate(divide="ignore"):
        return bonus_scale * np.sqrt(np.log(2 * nA / delta) / (2.0 * counts))


def lcb(counts, reward_sums, delta: float, *, bonus_scale: float = 1.0) -> Choice:
    """LCB for offline MAB: ``a_hat = argmax_a rhat[a] - b[a]``.

    Source: Rashidinejad et al. (2021), Algorithm LCB for MAB, with the widths of
    :func:`lcb_bonus` (``nA = counts.shape[-1]``). Ties go to the lowest index; unseen arms
    score ``-inf`` (see the module docstring).

    Parameters
    ----------
    counts : array_like of int, shape (nA,) or (R, nA)
        Per-arm sample counts, integers in ``[0, MAX_COUNT]``.
    reward_sums : array_like of float, same shape
        Per-arm sums of observed rewards (0 where the count is 0).
    delta : float
        Failure probability in (0, 1); the paper uses ``1 / N``.
    bonus_scale : float, default 1.0
        Multiplier of the width, > 0.

    Returns
    -------
    Choice
        ``(arms, nothing_seen)``, arrays of shape (R,) or scalars for a 1-d input.

    Raises
    ------
    TypeError, ValueError
        On non-numeric input, negative, non-integer or too large (> ``MAX_COUNT``) counts,
        mismatched shapes, non-finite reward sums, a non-zero sum for an unseen arm, or
        ``delta``/``bonus_scale`` out of range.
    """
    counts, sums = _validate_statistics(counts, reward_sums)
    b = lcb_bonus(counts, counts.shape[-1], delta, bonus_scale)
    scores = np.where(counts > 0, _empirical_means(counts, sums) - b, -np.inf)
    return _choose(scores, counts)


def greedy(counts, reward_sums) -> Choice:
    """Greedy (empirical best arm): ``a_hat = argmax_a rhat[a]`` over seen arms.

    Baseline of Rashidinejad et al. (2021). Ties go to the lowest index; unseen arms score
    ``-inf``. Shapes, returns and errors as :func:`lcb`.
    """
    counts, sums = _validate_statistics(counts, reward_sums)
    scores = np.where(counts > 0, _empirical_means(counts, sums), -np.inf)
    return _choose(scores, counts)


def most_played_arm(counts) -> Choice:
    """Most-played arm (behaviour cloning for MAB): ``a_hat = argmax_a N[a]``.

    Baseline of Rashidinejad et al. (2021). Ties go to the lowest index, so an empty dataset
    gives arm 0 with ``nothing_seen`` set.

    Parameters
    ----------
    counts : array_like of int, shape (nA,) or (R, nA)

    Returns
    -------
    Choice
        As :func:`lcb`.

    Raises
    ------
    TypeError, ValueError
        If ``counts`` is not numeric, not 1-d/2-d, or has a negative, non-integer or too
        large (> ``MAX_COUNT``) entry.
    """
    counts = _validate_counts(counts)
    return _choose(counts, counts)


def _means_of(bandit_or_means) -> np.ndarray:
    means = getattr(bandit_or_means, "means", bandit_or_means)
    arr = np.asarray(means)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"means must be real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.ndim != 1 or arr.shape[0] < 1 or not np.all(np.isfinite(arr)):
        raise ValueError(f"means must be a finite (nA,) array, got shape {arr.shape}")
    return arr


def suboptimality(bandit, arms) -> np.ndarray:
    """Sub-optimality of the chosen arms: ``max_a r[a] - r[arms]``.

    Source: the metric of Rashidinejad et al. (2021) (its expectation over datasets is the
    expected sub-optimality ``E[J(pi*) - J(pi_hat)]``).

    Parameters
    ----------
    bandit : BernoulliBandit, GaussianBandit or array_like of shape (nA,)
        The instance or its means.
    arms : int or array_like of int, shape (R,)
        Chosen arms, e.g. ``lcb(...).arms``.

    Returns
    -------
    ndarray, shape (R,), float64 (float for a scalar ``arms``)
        Non-negative, in reward units.

    Raises
    ------
    TypeError, ValueError
        If an arm is not an integer in ``[0, nA)`` or the means are invalid.
    """
    means = _means_of(bandit)
    arr = np.asarray(arms)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"arms must be integers, got dtype {arr.dtype}")
    bad = np.flatnonzero((arr < 0) | (arr >= means.shape[0]))
    if bad.size:
        raise ValueError(f"arms[{bad[0]}] = {plain(arr.ravel()[bad[0]])} is not an arm index in [0, {means.shape[0] - 1}]")
    gap = means.max() - means[arr]
    return float(gap) if arr.ndim == 0 else gap


def lcb_event_holds(counts, reward_sums, means, delta: float, bonus_scale: float = 1.0) -> np.ndarray:
    """The high-probability event of LCB: ``|rhat[a] - r[a]| <= b[a]`` for every seen arm.

    Source: Rashidinejad et al. (2021), the concentration event of the LCB analysis; by
    :func:`lcb_bonus` it holds with probability at least ``1 - delta`` for rewards in [0, 1].
    On it, ``r[a*] - r[a_hat] <= 2 b[a*]`` for LCB's choice ``a_hat``.

    Parameters
    ----------
    counts, reward_sums : array_like, shape (nA,) or (R, nA)
        As :func:`lcb`.
    means : array_like, shape (nA,), or a bandit instance
        True means ``r``.
    delta, bonus_scale : float
        As :func:`lcb_bonus` (``nA = counts.shape[-1]``).

    Returns
    -------
    ndarray, shape (R,), bool (bool for a 1-d input)
        True where the event holds (vacuously when no arm was seen).

    Raises
    ------
    TypeError, ValueError
        As :func:`lcb`, and if ``means`` does not have shape ``(nA,)``.
    """
    counts, sums = _validate_statistics(counts, reward_sums)
    r = _means_of(means)
    if r.shape != counts.shape[-1:]:
        raise ValueError(f"means has shape {r.shape}, expected ({counts.shape[-1]},) to match counts")
    b = lcb_bonus(counts, counts.shape[-1], delta, bonus_scale)
    inside = (counts == 0) | (np.abs(_empirical_means(counts, sums) - r) <= b)
    holds = inside.all(axis=-1)
    return bool(holds) if holds.ndim == 0 else holds
