"""Generic Hypothesis strategies: probability vectors on the simplex and row-stochastic arrays."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# Positive entries are drawn from [_MIN_WEIGHT, 1] before normalisation.
_MIN_WEIGHT = 1e-3


def _weights(shape, positive: bool):
    positive_weights = st.floats(_MIN_WEIGHT, 1.0, allow_nan=False, allow_infinity=False)
    elements = positive_weights if positive else st.one_of(st.just(0.0), positive_weights)
    return hnp.arrays(np.float64, shape, elements=elements)


def _normalise_rows(w: np.ndarray) -> np.ndarray:
    w = w.copy()
    empty = w.sum(axis=-1) == 0
    w[empty, 0] = 1.0  # an all-zero row becomes a point mass on its first entry
    return w / w.sum(axis=-1, keepdims=True)


@st.composite
def probability_vectors(draw, n, *, positive=False):
    """Strategy for probability vectors ``p (n,)``, float64, ``p >= 0``, ``|sum p - 1| <= 4 n eps``.

    Parameters
    ----------
    n : int or strategy of int
        Length, ``n >= 1``.
    positive : bool, default False
        If True every entry is at least ``1e-3 / n``; otherwise exact zeros (and point
        masses) are drawn too.
    """
    n = draw(n) if isinstance(n, st.SearchStrategy) else n
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return _normalise_rows(draw(_weights((1, n), positive)))[0]


@st.composite
def stochastic_arrays(draw, shape, *, positive=False):
    """Strategy for arrays whose last axis holds probability vectors (e.g. ``P (S, A, S)``).

    Parameters
    ----------
    shape : tuple of int or strategy of tuples
        Full shape; the last axis is the simplex axis (length >= 1).
    positive : bool, default False
        If True every entry is at least ``1e-3 / shape[-1]``.

    Returns
    -------
    strategy of float64 arrays of ``shape``, non-negative, each row summing to 1 within
    ``4 * shape[-1] * eps``.
    """
    shape = tuple(draw(shape) if isinstance(shape, st.SearchStrategy) else shape)
    if len(shape) < 1 or shape[-1] < 1:
        raise ValueError(f"shape must have a last axis of length >= 1, got {shape}")
    w = draw(_weights(shape, positive))
    return _normalise_rows(w.reshape(-1, shape[-1])).reshape(shape)
