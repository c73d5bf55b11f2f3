"""Solve time and peak memory of the MDP as a linear program (tabular.lp, HiGHS through cvxpy) against value iteration.

Usage: ``.venv/bin/python benchmarks/lp_vs_vi.py [--sizes 50,200,1000] [--reps 3]``; prints a
Markdown table. Instances: Garnet MDPs (``tabular.generators.garnet``) with A = 4, 5
successors per pair, gamma = 0.95, seed 0. Contenders:

* ``lp-d``: :func:`tabular.lp.solve_lp` (``over="d"``), the LP over occupancies; ``lp-V``: the
  LP over values. Wall time of the whole call (cvxpy's compilation included) and, in
  brackets, HiGHS's own time (``LPResult.solver_time``: cvxpy's ``solver_stats.solve_time``
  of the same calls).
* ``vi``: :func:`tabular.planning.value_iteration` with its default certified epsilon
  (1e-10 here), after a call that compiles its Numba kernel.
* ``kl``: :func:`tabular.lp.solve_regularized` with KL at ``a_reg = 0.1`` and dO the
  occupancy of the uniform policy (Clarabel, then the Newton polish); its solver time is
  Clarabel's.

Each (contender, S) runs in a fresh interpreter: after the imports, the instance and one
warm-up call on a 5-state instance, it records ``ru_maxrss``; the first timed call then
gives the peak-RSS growth (everything the process touched: numpy, cvxpy, HiGHS's C++
buffers), and ``tracemalloc`` the peak of Python and numpy allocations during that call.
Times are the median (minimum) over ``reps`` calls.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

A, BRANCHING, GAMMA, A_REG = 4, 5, 0.95, 0.1
CONTENDERS = ("lp-d", "lp-V", "vi", "kl")


def _child(name: str, S: int, reps: int) -> dict:
    """Run in the child interpreter: measure one contender on one size."""
    import resource
    import time
    import tracemalloc

    import numpy as np

    from tabular import lp
    from tabular.generators import garnet
    from tabular.planning import occupancy, value_iteration

    def instance(n):
        mdp = garnet(n, A, min(BRANCHING, n), gamma=GAMMA, seed=0)
        return mdp, occupancy(mdp, np.full((n, A), 1.0 / A))

    def call(mdp, dO):
        if name == "vi":
            return value_iteration(mdp), None
        if name == "kl":
            res = lp.solve_regularized(mdp, dO, A_REG, f="kl")
        else:
            res = lp.solve_lp(mdp, over=name[-1])
        if not res.ok:
            raise RuntimeError(f"{name} at S = {mdp.S}: status {res.status} {res.message}")
        return res, res.solver_time

    call(*instance(5))  # compile Numba kernels, import cvxpy's solver interfaces
    mdp, dO = instance(S)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    out, _ = call(mdp, dO)
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    walls, solver = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        _, solver_seconds = call(mdp, dO)
        walls.append(time.perf_counter() - t0)
        if solver_seconds is not None:
            solver.append(solver_seconds)
    extra = {}
    if name == "vi":
        extra = {"sweeps": out.n_iter, "error_bound": out.error_bound}
    return {"name": name, "S": S, "wall_median": float(np.median(walls)),
            "wall_min": float(np.min(walls)),
            "solver_median": float(np.median(solver)) if solver else None,
            "rss_growth_mib": (rss1 - rss0) / 1024.0, "traced_peak_mib": traced_peak / 2**20,
            **extra}


def _measure(name: str, S: int, reps: int) -> dict:
    code = (f"import json, sys; sys.path.insert(0, {str(__file__.rsplit('/', 1)[0])!r}); "
            f"import lp_vs_vi; print(json.dumps(lp_vs_vi._child({name!r}, {S}, {reps})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _fmt_time(seconds) -> str:
    return "n/a" if seconds is None else (f"{seconds * 1e3:.1f} ms" if seconds < 1
                                          else f"{seconds:.2f} s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,200,1000")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = [_measure(name, S, args.reps) for S in sizes for name in CONTENDERS]
    print(f"Garnet MDPs, A = {A}, {BRANCHING} successors per pair, gamma = {GAMMA}; "
          f"median (min) of {args.reps} calls; memory: growth of peak RSS in the first call "
          "and tracemalloc's peak (Python and numpy allocations).\n")
    print("| S | contender | wall time | solver time | peak RSS growth | tracemalloc peak |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        label = {"lp-d": "LP over d (HiGHS)", "lp-V": "LP over V (HiGHS)",
                 "vi": f"value iteration ({row.get('sweeps', '?')} sweeps)",
                 "kl": f"KL-regularised, a_reg = {A_REG} (Clarabel + polish)"}[row["name"]]
        print(f"| {row['S']} | {label} | {_fmt_time(row['wall_median'])} "
              f"({_fmt_time(row['wall_min'])}) | {_fmt_time(row['solver_median'])} | "
              f"{row['rss_growth_mib']:.1f} MiB | {row['traced_peak_mib']:.1f} MiB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
