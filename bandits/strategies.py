"""Hypothesis strategies for bandit instances and behaviour distributions (for property tests of bandit algorithms).

Example
-------
>>> from hypothesis import given
>>> from bandits.strategies import bandits
>>> @given(bandits(nA=3, min_gap=0.1))
... def test_gap(bandit):
...     assert sorted(bandit.gaps)[1] >= 0.1
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from bandits.environments import BernoulliBandit, GaussianBandit

__all__ = ["bandits", "behaviour_distributions", "contextual_bandits"]

_KINDS = ("bernoulli", "gaussian")


def _as_strategy(value):
    return value if isinstance(value, st.SearchStrategy) else st.just(value)


def _enforce_gap(means: np.ndarray, min_gap: float, low: float) -> np.ndarray:
    """Lift the best arm to at least ``low + min_gap`` and cap the others at ``best - min_gap``."""
    a_star = int(np.argmax(means))
    best = max(means[a_star], low + min_gap)
    cap = best - min_gap
    while best - cap < min_gap:  # rounding in best - min_gap
        cap = np.nextafter(cap, -np.inf)
    out = np.minimum(means, cap)
    out[a_star] = best
    return out


@st.composite
def bandits(draw, *, nA=st.integers(2, 8), kind="bernoulli", means=None, min_gap=None, sigma=None):
    """Draw a :class:`BernoulliBandit` or :class:`GaussianBandit`.

    Parameters
    ----------
    nA : int or strategy of int, default ``integers(2, 8)``
        Number of arms (>= 1).
    kind : {"bernoulli", "gaussian"}
    means : strategy of float or None
        Strategy for one arm's mean, drawn independently per arm. Default: ``floats(0, 1)``
        for Bernoulli, ``floats(-1, 1)`` for Gaussian. Bernoulli draws must lie in [0, 1].
    min_gap : float or None
        If given, the best arm is unique and beats every other arm by at least ``min_gap``
        (the best arm is raised to at least ``min_gap`` above the range's low end for
        Bernoulli, and the others are capped at ``best - min_gap``).
    sigma : strategy of float or None
        Gaussian standard deviation; default ``floats(0.1, 2)``.

    Returns
    -------
    hypothesis strategy of BernoulliBandit or GaussianBandit

    Raises
    ------
    ValueError
        On an unknown ``kind``, or ``min_gap`` negative (or above 1 for Bernoulli).
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    bernoulli = kind == "bernoulli"
    if min_gap is not None and not (0 <= min_gap <= (1 if bernoulli else np.inf)):
        raise ValueError(f"min_gap = {min_gap} must be in [0, 1] for Bernoulli, >= 0 for Gaussian")
    n = draw(_as_strategy(nA))
    if means is None:
        means = st.floats(0.0, 1.0) if bernoulli else st.floats(-1.0, 1.0)
    values = np.array(draw(st.lists(means, min_size=n, max_size=n)), dtype=np.float64)
    if min_gap is not None:
        values = _enforce_gap(values, float(min_gap), 0.0 if bernoulli else -np.inf)
    if bernoulli:
        return BernoulliBandit(values)
    return GaussianBandit(values, draw(sigma if sigma is not None else st.floats(0.1, 2.0)))


@st.composite
def behaviour_distributions(draw, nA):
    """Draw a behaviour distribution ``mu`` over ``nA`` arms (``(nA,)`` float64, sums to 1).

    Weights are drawn in [0, 1] (zeros included, so some arms can be unseen) and
    normalised; if all are 0, the mass goes to one drawn arm (a point mass).

    Parameters
    ----------
    nA : int or strategy of int
        Number of arms, >= 1.
    """
    n = draw(_as_strategy(nA))
    w = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n)), dtype=np.float64)
    if w.sum() == 0:
        w[draw(st.integers(0, n - 1))] = 1.0
    return w / w.sum()


@st.composite
def contextual_bandits(draw, *, S=st.integers(1, 5), nA=st.integers(2, 4), min_gap=None, full_support=False):
    """Draw a :class:`bandits.contextual.ContextualBandit` (Bernoulli rewards).

    Parameters
    ----------
    S, nA : int or strategy of int
        Numbers of contexts (>= 1) and actions (>= 1); defaults ``integers(1, 5)`` and
        ``integers(2, 4)``.
    min_gap : float or None
        If given, in every context the best action is unique and beats the others by at
        least ``min_gap`` (as :func:`bandits`).
    full_support : bool, default False
        If True, every context has ``rho(s) > 0``; otherwise some may have mass 0.

    Returns
    -------
    hypothesis strategy of ContextualBandit
    """
    from bandits.contextual import ContextualBandit

    n_contexts, n_actions = draw(_as_strategy(S)), draw(_as_strategy(nA))
    low = 0.05 if full_support else 0.0
    rho = np.array(draw(st.lists(st.floats(low, 1.0), min_size=n_contexts, max_size=n_contexts)))
    if rho.sum() == 0:
        rho[draw(st.integers(0, n_contexts - 1))] = 1.0
    rows = [draw(bandits(nA=n_actions, min_gap=min_gap)).means for _ in range(n_contexts)]
    return ContextualBandit(rho / rho.sum(), np.stack(rows))
