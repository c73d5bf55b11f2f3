"""Softmax over answers (a depth-1 tree) and its Jacobian ``J = diag(p) - p p^T``, shared by the answer-level modules."""
from __future__ import annotations

import numpy as np


def softmax(z) -> np.ndarray:
    """``softmax(z)`` along the last axis; a logit of ``-inf`` gives probability exactly 0."""
    z = np.asarray(z, dtype=np.float64)
    shifted = z - z.max(axis=-1, keepdims=True)
    w = np.exp(shifted)
    return w / w.sum(axis=-1, keepdims=True)


def jvp(p, dz) -> np.ndarray:
    """``J dz = p * (dz - <p, dz>)`` with ``J = d softmax / dz = diag(p) - p p^T`` (symmetric).

    Also the gradient with respect to the logits of the linear objective ``<p, dz>``.
    Entries with ``p = 0`` (masked logits) get 0 whatever ``dz`` is there.
    """
    p = np.asarray(p, dtype=np.float64)
    dz = np.where(p > 0, np.asarray(dz, dtype=np.float64), 0.0)
    return p * (dz - (p * dz).sum(axis=-1, keepdims=True))
