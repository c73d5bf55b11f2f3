"""Input validation shared by the answer-level RLVR modules (distributions, masks, rewards, rates)."""
from __future__ import annotations

import numbers

import numpy as np

from tabular.mdp import _as_numeric_array, _check_rows_sum_to_one, _index

ATOL = 1e-9  # tolerance on a distribution's sum


def _entry(name: str, arr: np.ndarray, idx: tuple) -> str:
    """``name[i, j]`` for an entry of an array, plain ``name`` for a scalar."""
    return f"{name}[{_index(idx)}]" if arr.ndim else name


def _check_finite(arr: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(np.argwhere(bad)[0]) if arr.ndim else ()
        raise ValueError(f"{_entry(name, arr, idx)} = {float(arr[idx])!r} is not finite")


def _check_nonnegative(arr: np.ndarray, name: str) -> None:
    bad = arr < 0
    if bad.any():
        idx = tuple(np.argwhere(bad)[0]) if arr.ndim else ()
        raise ValueError(f"{_entry(name, arr, idx)} = {float(arr[idx])!r} is negative")


def read_distribution(p, name: str, *, atol: float = ATOL) -> np.ndarray:
    """``p`` as a float64 array whose last-axis rows are probability vectors.

    Raises ``TypeError`` for non-numeric input and ``ValueError`` naming the first entry that
    is negative or not finite, or the first row whose sum is not 1 within ``atol``.
    """
    arr = np.array(_as_numeric_array(p, name), dtype=np.float64)
    if arr.ndim == 0 or arr.shape[-1] == 0:
        raise ValueError(f"{name} must have a non-empty last axis, got shape {arr.shape}")
    _check_finite(arr, name)
    _check_nonnegative(arr, name)
    _check_rows_sum_to_one(arr, name, atol)
    return arr


def read_probability(p, name: str) -> np.ndarray:
    """``p`` as a float64 array with every entry in [0, 1] (accuracies, rates)."""
    arr = np.array(_as_numeric_array(p, name), dtype=np.float64)
    _check_finite(arr, name)
    bad = (arr < 0) | (arr > 1)
    if bad.any():
        idx = tuple(np.argwhere(bad)[0]) if arr.ndim else ()
        raise ValueError(f"{_entry(name, arr, idx)} = {float(arr[idx])!r} is not in [0, 1]")
    return arr


def read_values(x, name: str, shape=None) -> np.ndarray:
    """``x`` as a finite float64 array, of ``shape`` when given (rewards, logits, weights)."""
    arr = np.array(_as_numeric_array(x, name), dtype=np.float64)
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(f"{name} has shape {arr.shape}, expected {tuple(shape)}")
    _check_finite(arr, name)
    return arr


def read_mask(mask, name: str, shape) -> np.ndarray:
    """``mask`` as a bool array of ``shape`` (bool or 0/1 integer input).

    Raises ``TypeError`` for another dtype, ``ValueError`` for an integer other than 0 or 1
    (naming the entry) or the wrong shape.
    """
    arr = np.asarray(mask)
    if arr.dtype != bool:
        if arr.dtype.kind not in "iu":
            raise TypeError(f"{name} must be a bool mask (or 0/1 integers), got dtype {arr.dtype}")
        bad = (arr != 0) & (arr != 1)
        if bad.any():
            idx = tuple(np.argwhere(bad)[0]) if arr.ndim else ()
            raise ValueError(f"{_entry(name, arr, idx)} = {int(arr[idx])} is not a mask value "
                             "(bool, or the integers 0 and 1)")
        arr = arr.astype(bool)
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} has shape {arr.shape}, expected {tuple(shape)}")
    return arr


def read_scalar(x, name: str, *, low=None, high=None, low_open=False, high_open=False) -> float:
    """``x`` as a finite float in the stated interval (open or closed at each end)."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(x).__name__}")
    x = float(x)
    if not np.isfinite(x):
        raise ValueError(f"{name} = {x!r} is not finite")
    if low is not None and (x < low or (low_open and x == low)):
        raise ValueError(f"{name} = {x!r} must be {'>' if low_open else '>='} {low!r}")
    if high is not None and (x > high or (high_open and x == high)):
        raise ValueError(f"{name} = {x!r} must be {'<' if high_open else '<='} {high!r}")
    return x


def read_rates(rho0, rho1) -> tuple[np.ndarray, np.ndarray]:
    """Verifier rates (false-positive ``rho0``, false-negative ``rho1``), each in [0, 1),
    broadcast together, with ``rho0 + rho1 < 1`` (otherwise the channel is uninformative)."""
    rho0 = read_probability(rho0, "rho0")
    rho1 = read_probability(rho1, "rho1")
    rho0, rho1 = np.broadcast_arrays(rho0, rho1)
    bad = rho0 + rho1 >= 1
    if bad.any():
        idx = tuple(np.argwhere(bad)[0]) if bad.ndim else ()
        where = f" at [{_index(idx)}]" if idx else ""
        raise ValueError(f"rho0 + rho1 = {float((rho0 + rho1)[idx])!r}{where} must be < 1 "
                         "(the verifier channel is uninformative at 1)")
    return rho0.astype(np.float64), rho1.astype(np.float64)


def read_prompt_weights(weights, n_prompts: int) -> np.ndarray:
    """Prompt weights of a mean over prompts: ``1/n_prompts`` each by default, else finite
    floats of shape (n_prompts,)."""
    if weights is None:
        return np.full(n_prompts, 1.0 / n_prompts)
    return read_values(weights, "weights", shape=(n_prompts,))
