"""One seed convention for the whole library (an int, a SeedSequence or a Generator).

Every public entry point that draws random numbers takes ``seed`` and passes it through
:func:`as_generator`; repetitions get child streams from :func:`spawn`. No global RNG.
"""
from __future__ import annotations

import numpy as np

def as_generator(seed) -> np.random.Generator:
    """Return a ``numpy.random.Generator`` for ``seed``.

    Parameters
    ----------
    seed : int, numpy.random.SeedSequence, numpy.random.Generator or None
        A Generator is returned as is (its stream is shared with the caller); an int or
        SeedSequence seeds a fresh PCG64; None draws fresh OS entropy (not reproducible).

    Raises
    ------
    TypeError
        If ``seed`` is of another type (a float, a string, numpy's legacy RandomState).
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, (int, np.integer, np.random.SeedSequence)):
        if isinstance(seed, (int, np.integer)) and seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        return np.random.default_rng(seed)
    raise TypeError(
        f"seed must be an int, a numpy SeedSequence or a numpy Generator, got {type(seed).__name__}"
    )


def as_seed_sequence(seed) -> np.random.SeedSequence:
    """Return a ``SeedSequence`` for ``seed`` (a Generator contributes its own spawned child).

    A SeedSequence is copied, so that spawning from the result never advances the caller's
    own object: the same SeedSequence always gives the same children.
    """
    if isinstance(seed, np.random.SeedSequence):
        return np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key,
                                      pool_size=seed.pool_size)
    if isinstance(seed, np.random.Generator):
        return seed.bit_generator.seed_seq.spawn(1)[0]
    if seed is None or isinstance(seed, (int, np.integer)):
        if isinstance(seed, (int, np.integer)) and seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        return np.random.SeedSequence(seed)
    raise TypeError(
        f"seed must be an int, a numpy SeedSequence or a numpy Generator, got {type(seed).__name__}"
    )


def spawn(seed, n: int) -> list[np.random.SeedSequence]:
    """Child seed sequences ``SeedSequence(seed).spawn(n)``: run i gets element i.

    The children depend only on ``seed`` and ``i``, not on how runs are distributed over
    workers, which is what makes results bit-identical for any number of jobs.
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    return as_seed_sequence(seed).spawn(n)
