"""Two tiny figure modules for the runner's tests (not part of the library).

``linalg_figure`` calls BLAS (``dot``) and LAPACK (``solve``) inside its runs, so that the
bit-identity test across ``--jobs`` would notice multi-threaded reductions.
``failing_figure`` raises at run ``FAIL_AT`` (module global) to test resumption.
"""
import numpy as np

from proofs_check.claims import Claim
from proofs_check.seeding import as_generator

CALLS = []  # indices of runs computed in this process (failing_figure)
FAIL_AT = None

CLAIM = Claim(name="fixture", statement="a fixture", source="the tests", kind="identity")
CONFIGS = {"smoke": {"n_runs": 6, "n": 200}, "quick": {"n_runs": 6, "n": 200},
           "paper": {"n_runs": 6, "n": 400}}


def runs(config):
    return [{"index": i} for i in range(config["n_runs"])]


def run_one(config, seed):
    rng = as_generator(seed)
    n = config["n"]
    M = rng.standard_normal((n, n)) + n * np.eye(n)
    b = rng.standard_normal(n)
    x = np.linalg.solve(M, b)
    CALLS.append(config["index"])
    if FAIL_AT is not None and config["index"] == FAIL_AT:
        raise RuntimeError(f"planted failure at run {FAIL_AT}")
    return {"x": x, "gram": M @ M.T @ x, "dot": np.array(np.dot(x, b))}


def aggregate(runs_out, config):
    return {"total": np.array([run["dot"] for run in runs_out]),
            "x": np.stack([run["x"] for run in runs_out])}


def plot(results):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot(results["total"])
    return fig


def verdict(results):
    return True, f"{results['total'].size} runs"
