"""Times the peers' value iteration (pymdptoolbox 4.0b3, rlberry 0.6.0) for benchmarks/run.py.

Run by the peers' interpreter (``benchmarks/.peers/bin/python peer_vi.py SPEC.json``), never
imported by boundlab. SPEC names ``P`` (S, A, S) and ``R`` (S, A) saved as .npy files and the
task; the script prints one JSON object on stdout: per-call times in seconds, and for a
whole solve the returned ``V`` and iteration count, so that the caller can check the error.
"""
import importlib.metadata
import json
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import mdptoolbox.mdp
from rlberry.agents.dynprog.utils import bellman_operator, value_iteration


def _time_calls(fn, reps):
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def _pymdp_vi(P, R, gamma):
    """pymdptoolbox's ValueIteration on P (S, A, S) -> its (A, S, S) layout (a transposed copy)."""
    P_ASS = np.ascontiguousarray(P.transpose(1, 0, 2))
    return mdptoolbox.mdp.ValueIteration(P_ASS, R, gamma, epsilon=1.0)


def _pymdp_fixed_iterations(vi, k):
    """Run exactly k sweeps from vi's current V: the constructor overwrites max_iter with its
    own bound (_boundIter), so the cap is set on the object, and the span rule is disabled."""
    vi.max_iter = k
    vi.thresh = -np.inf
    vi.iter = 0
    vi.V = np.asarray(vi.V, dtype=np.float64)
    vi.run()


def sweep(P, R, gamma, reps, threads):
    """Per-sweep times: pymdptoolbox (ValueIteration.run with one iteration) under each BLAS
    thread count, and rlberry's bellman_operator (the body of its value_iteration loop)."""
    S, A = R.shape
    out = {}
    vi = _pymdp_vi(P, R, gamma)
    for n in threads:
        with threadpool_limits(limits=n, user_api="blas"):
            _pymdp_fixed_iterations(vi, 1)
            out[f"pymdptoolbox_{n}t"] = _time_calls(lambda: _pymdp_fixed_iterations(vi, 1), reps)
    Q = np.zeros((S, A))
    bellman_operator(Q, R, P, gamma)  # compile
    out["rlberry"] = _time_calls(lambda: bellman_operator(Q, R, P, gamma), reps)
    return out


def solve(P, R, gamma, reps, epsilon, k_apriori):
    """Whole solves, each library set to certify ||V - V*||_inf <= epsilon (see README):
    rlberry stops when ||Q_k - Q_{k-1}||_inf <= epsilon (1 - gamma) / gamma; pymdptoolbox's
    span rule certifies no value error, so it runs the a priori count k_apriori."""
    out = {}
    eps_rlberry = epsilon * (1.0 - gamma) / gamma
    value_iteration(R[:2, :], P[:2, :, :2] / P[:2, :, :2].sum(-1, keepdims=True), gamma, 1.0)
    result = {}

    def run_rlberry():
        result["rlberry"] = value_iteration(R, P, gamma, eps_rlberry)

    out["rlberry"] = {"times": _time_calls(run_rlberry, reps)}
    _, V, n_it = result["rlberry"]
    out["rlberry"].update(V=V.tolist(), n_iter=int(n_it), parameter=f"epsilon={eps_rlberry:.3g}")

    t0 = time.perf_counter()
    vi = _pymdp_vi(P, R, gamma)
    construct = time.perf_counter() - t0

    def run_pymdp():
        vi.V = np.zeros(P.shape[0])
        _pymdp_fixed_iterations(vi, k_apriori)

    out["pymdptoolbox"] = {"times": _time_calls(run_pymdp, reps)}
    out["pymdptoolbox"].update(V=list(vi.V), n_iter=int(vi.iter), construct_s=construct,
                               parameter=f"max_iter={k_apriori}, span rule off")
    return out


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    P = np.load(spec["P"])
    R = np.load(spec["R"])
    with threadpool_limits(limits=1, user_api="blas"):
        if spec["task"] == "sweep":
            out = sweep(P, R, spec["gamma"], spec["reps"], spec["threads"])
        else:
            out = solve(P, R, spec["gamma"], spec["reps"], spec["epsilon"], spec["k_apriori"])
    out["versions"] = {name: importlib.metadata.version(name)
                       for name in ("rlberry", "pymdptoolbox", "gymnasium", "numpy", "scipy", "numba")}
    out["blas"] = [{k: d.get(k) for k in ("internal_api", "version", "architecture")}
                   for d in threadpool_info()]
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
