"""Online difficulty filtering (Bae et al. 2025): KL(pi_init || pi*) against the success variance p(1-p), exactly for binary rewards.

Source: Bae, Hong, Lee, Kim, Nam, Kwak (2025), "Online Difficulty Filtering for Reasoning
Oriented Reinforcement Learning", arXiv 2504.03380 (the idea that the KL to the
regularised optimum is bounded below through the variance of the success rate; their exact
bound and thresholds are not verified). The closed form and both bounds below are derived
for this project (spec sheet ``difficulty_filtering_and_brorl.md``).

Setting: a prompt with base accuracy ``p``, binary reward, the reverse-KL optimum
``pi* ∝ pi_init exp(r / beta)``, ``t = 1/beta``. Then ``p* = p e^t / (1 - p + p e^t)`` and
``KL(pi_init || pi*) = log(1 - p + p e^t) - p t`` (within-class proportions are kept, so the
KL reduces to the Bernoulli one). With ``A(s) = log(1 - p + p e^s)``, ``KL = int_0^t (t - s)
A''(s) ds`` and ``A'' = p_s (1 - p_s)`` is concave in ``p_s`` between ``p`` and ``p*``, so
``KL >= (t^2/2) min{p(1-p), p*(1-p*)}``; Pinsker gives ``KL >= 2 (p* - p)^2``.
"""
from __future__ import annotations

import numpy as np

from tabular.mdp import _read_int
from tabular.rlvr._checks import read_distribution, read_probability, read_scalar

__all__ = [
    "optimal_accuracy", "kl_to_optimum", "variance_lower_bound", "pinsker_lower_bound",
    "kl_argmax_accuracy", "informative_group_probability", "kept_probability",
    "filtered_variance", "FILTERS", "difficulty_filter",
]

FILTERS = ("none", "dapo", "balanced", "easy", "hard")


def _read_t(beta) -> float:
    """``t = 1/beta`` for a finite ``beta > 0``; ValueError when ``1/beta`` overflows float64."""
    beta = read_scalar(beta, "beta", low=0.0, low_open=True)
    with np.errstate(over="ignore"):
        t = 1.0 / beta
    if not np.isfinite(t):
        raise ValueError(f"beta = {beta!r} is too small: t = 1/beta overflows float64")
    return t


def optimal_accuracy(p, beta: float) -> np.ndarray:
    """``p* = p e^t / (1 - p + p e^t)``, ``t = 1/beta``: accuracy of ``pi* ∝ pi_init e^{r/beta}``.

    Computed as ``expit(logit(p) + t)`` (the logit shifts by exactly ``t``).

    Parameters
    ----------
    p : float or array_like in [0, 1]
    beta : float > 0

    Source: Korbak et al. (2022) posterior with binary reward (spec sheet
    ``kl_bayesian_inference.md``, corollary 4).
    """
    from scipy.special import expit, logit

    p = read_probability(p, "p")
    t = _read_t(beta)
    with np.errstate(divide="ignore"):
        return expit(logit(p) + t)


def kl_to_optimum(p, beta: float) -> np.ndarray:
    """``KL(pi_init || pi*) = log(1 - p + p e^t) - p t`` exactly (``t = 1/beta``), in nats.

    Evaluated as ``log1p(p expm1(t)) - p t`` for ``t <= 1`` and as the equal
    ``t (1 - p) + log(p + (1 - p) e^{-t})`` (a log-sum-exp) for larger ``t``: no overflow, and
    accurate when ``p e^t`` dominates although ``p`` is tiny; exactly 0 at ``p in {0, 1}``,
    positive in between (``inf`` once ``t (1 - p)`` overflows).

    Parameters
    ----------
    p : float or array_like in [0, 1]
    beta : float > 0

    Returns
    -------
    numpy.ndarray of float64, shape of ``p``
    """
    p = read_probability(p, "p")
    t = _read_t(beta)
    with np.errstate(divide="ignore", invalid="ignore"):  # p in {0, 1} is set below
        if t <= 1.0:
            kl = np.log1p(p * np.expm1(t)) - p * t
        else:
            kl = t * (1.0 - p) + np.logaddexp(np.log(p), np.log1p(-p) - t)
    return np.where((p == 0) | (p == 1), 0.0, kl)


def variance_lower_bound(p, beta: float) -> np.ndarray:
    """``(t^2/2) min{p(1-p), p*(1-p*)} <= KL(pi_init || pi*)`` (derived; module docstring).

    Exactly 0 at ``p in {0, 1}`` for every ``beta`` (no ``inf * 0`` when ``t^2`` overflows).
    """
    p = read_probability(p, "p")
    t = _read_t(beta)
    p_star = optimal_accuracy(p, beta)
    var = np.minimum(p * (1 - p), p_star * (1 - p_star))
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(var > 0, 0.5 * t * t * var, 0.0)


def pinsker_lower_bound(p, beta: float) -> np.ndarray:
    """``2 (p* - p)^2 <= KL(pi_init || pi*)`` (Pinsker), ``t = 1/beta``.

    ``p* - p = p(1-p)(e^t - 1)/(1 - p + p e^t)``, evaluated as the equal
    ``p(1-p)(1 - e^{-t})/(p + (1-p) e^{-t})`` (no overflow for small ``beta``; tends to
    ``1 - p`` as ``beta -> 0``); exactly 0 at ``p in {0, 1}``.

    Parameters
    ----------
    p : float or array_like in [0, 1]
    beta : float > 0

    Returns
    -------
    numpy.ndarray of float64, shape of ``p``

    Source: Pinsker's inequality (Cover and Thomas 2006, lemma 11.6.1) with the closed-form
    ``p*`` (module docstring).
    """
    p = read_probability(p, "p")
    t = _read_t(beta)
    inner = (p > 0) & (p < 1)
    denom = np.where(inner, p + (1 - p) * np.exp(-t), 1.0)
    gap = np.where(inner, p * (1 - p) * -np.expm1(-t) / denom, 0.0)
    return 2.0 * gap * gap


def kl_argmax_accuracy(beta: float) -> float:
    """The base accuracy maximising ``KL(pi_init || pi*)``: ``[(e^t - 1)/t - 1] / (e^t - 1)``.

    From ``dKL/dp = (e^t - 1)/(1 - p + p e^t) - t = 0``. Always below 1/2, tending to 1/2 as
    ``beta -> inf`` and to ``beta`` as ``beta -> 0``: the most informative prompts for the KL
    are slightly hard ones.

    Evaluated as ``1/t - 1/(e^t - 1)`` with ``1/t = beta`` (no overflow for tiny ``beta``),
    and for ``t < 0.1`` by its Bernoulli series ``1/2 - t/12 + t^3/720 - t^5/30240 +
    t^7/1209600`` (the difference cancels there; truncation error below ``2e-17``).

    Parameters
    ----------
    beta : float > 0

    Returns
    -------
    float in (0, 1/2)
    """
    beta = read_scalar(beta, "beta", low=0.0, low_open=True)
    with np.errstate(over="ignore"):
        t = 1.0 / beta
        if t < 0.1:
            t2 = t * t
            return float(0.5 - t * (1 / 12 - t2 * (1 / 720 - t2 * (1 / 30240 - t2 / 1209600))))
        return float(beta - 1.0 / np.expm1(t))


def informative_group_probability(p, n: int) -> np.ndarray:
    """``1 - p^n - (1 - p)^n``: probability that a group of ``n`` rollouts is not all equal.

    GRPO's advantage is zero on all-correct or all-wrong groups; this is the chance that a
    prompt of accuracy ``p`` gives a signal. Symmetric about and maximised at ``p = 1/2``.
    """
    p = read_probability(p, "p")
    n = _read_int(n, "n")
    return 1.0 - p ** n - (1.0 - p) ** n


def _read_band(band) -> tuple[float, float]:
    if isinstance(band, (str, bytes)) or not hasattr(band, "__len__") or len(band) != 2:
        raise TypeError(f"band must be a pair (p_lo, p_hi), got {band!r}")
    lo = read_scalar(band[0], "band[0] (p_lo)", low=0.0, high=1.0)
    hi = read_scalar(band[1], "band[1] (p_hi)", low=0.0, high=1.0)
    if lo > hi:
        raise ValueError(f"band = ({lo}, {hi}) must have p_lo <= p_hi")
    return lo, hi


def kept_probability(p, n: int, band: tuple[float, float]) -> np.ndarray:
    """``P(p_lo <= c/n <= p_hi)`` for ``c ~ Binomial(n, p)``: the filter keeps the prompt.

    Parameters
    ----------
    p : float or array_like in [0, 1]
    n : int >= 1
        Rollouts per prompt.
    band : (p_lo, p_hi) with 0 <= p_lo <= p_hi <= 1
        Thresholds on the observed accuracy ``p^ = c/n``, inclusive.

    Raises
    ------
    TypeError
        If ``band`` is not a pair of reals.
    ValueError
        If a threshold is outside [0, 1] or ``p_lo > p_hi``.
    """
    from scipy.stats import binom

    p = read_probability(p, "p")
    n = _read_int(n, "n")
    lo, hi = _read_band(band)
    c = np.arange(n + 1)
    keep = (c >= lo * n - 1e-12) & (c <= hi * n + 1e-12)
    return binom.pmf(c, n, p[..., None]) @ keep.astype(np.float64)


def filtered_variance(p_values, weights, n: int, band) -> tuple[float, float]:
    """``(E[p(1-p) | kept], E[p(1-p)])`` for accuracies ``p`` drawn from a discrete law.

    For a band symmetric about 1/2, ``p(1-p)`` and ``P(kept | p)`` both decrease in
    ``|p - 1/2|``, so filtering cannot lower the mean success variance (spec sheet test 4;
    an asymmetric band can).

    Parameters
    ----------
    p_values : array_like, shape (m,), entries in [0, 1]
    weights : array_like, shape (m,), a probability vector
    n : int
    band : (p_lo, p_hi)
    """
    p_values = read_probability(p_values, "p_values")
    weights = read_distribution(weights, "weights")
    if p_values.shape != weights.shape or p_values.ndim != 1:
        raise ValueError(f"p_values {p_values.shape} and weights {weights.shape} must be equal 1-d shapes")
    var = p_values * (1 - p_values)
    kept = weights * kept_probability(p_values, n, band)
    if kept.sum() == 0:
        raise ValueError("the band keeps no prompt with positive probability")
    return float(kept @ var / kept.sum()), float(weights @ var)


def difficulty_filter(strategy: str, p_hat, band=(0.25, 0.75)) -> np.ndarray:
    """Which prompt groups an online difficulty filter keeps, from their observed accuracy.

    Balanced filtering keeps prompts whose observed accuracy ``c/n`` over the group's rollouts
    lies in ``[p_lo, p_hi]`` (Bae et al. 2025); DAPO's dynamic sampling keeps groups that are
    neither all right nor all wrong (Yu et al. 2025, arXiv 2503.14476); "easy" and "hard"
    keep one side of the band, "none" everything.

    Parameters
    ----------
    strategy : {"none", "dapo", "balanced", "easy", "hard"}
    p_hat : array_like of float in [0, 1]
        Observed accuracies, any shape.
    band : pair (p_lo, p_hi)
        With ``0 <= p_lo <= p_hi <= 1``: balanced keeps ``p_lo <= p_hat <= p_hi``, easy
        ``p_hat >= p_hi``, hard ``p_hat <= p_lo``.

    Returns
    -------
    numpy.ndarray of bool, shape of ``p_hat``

    Raises
    ------
    ValueError
        Unknown strategy, ``p_hat`` outside [0, 1] or not finite, a bad band.
    """
    p_hat = read_probability(p_hat, "p_hat")
    lo, hi = _read_band(band)
    rules = {"none": np.ones(p_hat.shape, dtype=bool), "dapo": (p_hat > 0) & (p_hat < 1),
             "balanced": (p_hat >= lo) & (p_hat <= hi), "easy": p_hat >= hi,
             "hard": p_hat <= lo}
    if strategy not in rules:
        raise ValueError(f"unknown strategy {strategy!r}; one of {FILTERS}")
    return rules[strategy]
