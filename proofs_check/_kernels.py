"""Numba kernel of the bootstrap: multinomial resampling counts (Efron 1979)."""
import numba
import numpy as np


@numba.njit(cache=True)
def resample_counts(rng, n_rows, n_units):
    """Counts ``W (n_rows, n_units)``: row b counts how often each unit is drawn in resample b.

    Each resample draws ``n_units`` indices uniformly with replacement as
    ``floor(u * n_units)`` from ``u = rng.random()`` (53-bit uniforms: the index law departs
    from uniform by at most ``n_units / 2**53`` relative). Numba's Generator follows the
    same stream as numpy's, so :func:`resample_counts_ref` gives the same counts.
    """
    W = np.zeros((n_rows, n_units))
    for b in range(n_rows):
        for _ in range(n_units):
            # min(): u * n_units can round up to n_units itself for u just below 1
            W[b, min(int(rng.random() * n_units), n_units - 1)] += 1.0
    return W


def resample_counts_ref(rng, n_rows, n_units):
    """Plain-numpy reference of :func:`resample_counts` (same draws, same counts)."""
    W = np.zeros((n_rows, n_units))
    for b in range(n_rows):
        idx = np.minimum((rng.random(n_units) * n_units).astype(np.intp), n_units - 1)
        W[b] = np.bincount(idx, minlength=n_units)
    return W
