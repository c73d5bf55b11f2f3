"""Formatting of values inside error messages, shared by every package."""
import numpy as np


def plain(x) -> str:
    """A value for an error message: numbers as plain text (``30.0``, not ``np.float64(30.0)``)."""
    if isinstance(x, (bool, np.bool_)):
        return repr(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        return repr(float(x))
    if isinstance(x, str):
        return repr(str(x))
    return repr(x)
