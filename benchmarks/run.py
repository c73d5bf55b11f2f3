"""Speed of boundlab's hot loops (VI sweep and solve, episode sampling, UCB1) against numpy, pymdptoolbox, rlberry and the memory-bandwidth bound.

Usage: ``bash benchmarks/peers.sh && .venv/bin/python benchmarks/run.py`` (method and results
in benchmarks/README.md). Writes benchmarks/results.json and prints a Markdown table.
Peers run in their own interpreter (benchmarks/.peers) through benchmarks/peer_vi.py.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
import scipy
from numba import njit, prange
from threadpoolctl import threadpool_info, threadpool_limits

from bandits import BernoulliBandit, ucb1
from tabular import _kernels, sampling
from tabular.generators import garnet
from tabular.mdp import TabularMDP, normalize_rows
from tabular.planning import value_iteration

HERE = Path(__file__).resolve().parent
PEER_PYTHON = HERE / ".peers" / "bin" / "python"
# The peers' OpenBLAS 0.3.23 does not recognise this CPU and falls back to its generic
# "Prescott" kernels; give it the kernels boundlab's numpy (OpenBLAS 0.3.31) picks here.
PEER_ENV = {"OPENBLAS_CORETYPE": "SkylakeX"}

A = 8
GAMMA_SWEEP = 0.9
SWEEP_S = (100, 500, 2000)
SOLVE_EPSILON = 1e-6
SOLVE_CASES = ((500, 0.9, 20), (500, 0.99, 5), (2000, 0.9, 3))  # (S, gamma, repetitions)
# Probes of the time to read P once; the bound is the fastest of them.
BOUND_PROBES = ("gemv_1t", "gemv_2t", "read_flat_1t", "read_rows8_1t", "read_rows8_2t")
SAMPLE_S, SAMPLE_N, SAMPLE_H = 2000, 10_000, 1000
SMALL_S = 50  # the same sampling with alias tables that fit in L2, to separate memory latency
UCB_K, UCB_T, UCB_RECORD_EVERY = 10, 10**7, 10**4


# --- timing -----------------------------------------------------------------------------


def time_calls(fn, reps: int) -> list[float]:
    """Wall-clock seconds of ``reps`` separate calls of ``fn()``."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def time_interleaved(fns: dict, reps: int) -> dict[str, list[float]]:
    """Like :func:`time_calls` for several functions, round-robin, so that load from other
    processes falls on all of them alike."""
    times = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def summary(times: list[float]) -> dict:
    return {"median": float(np.median(times)), "min": float(np.min(times)), "n": len(times),
            "times": [float(t) for t in times]}


# --- the hardware bound -------------------------------------------------------------------


@njit(cache=True, fastmath=True)
def read_flat(x):
    """Sum of a 1-d array with four accumulators (vectorised under fastmath): one stream."""
    n = x.shape[0]
    n4 = n - n % 4
    a0 = a1 = a2 = a3 = 0.0
    for i in range(0, n4, 4):
        a0 += x[i]
        a1 += x[i + 1]
        a2 += x[i + 2]
        a3 += x[i + 3]
    for i in range(n4, n):
        a0 += x[i]
    return (a0 + a1) + (a2 + a3)


@njit(cache=True, fastmath=True)
def read_rows8(X):
    """Sum of a 2-d array (M, n), M a multiple of 8, eight rows at a time with one
    accumulator each: eight concurrent memory streams (more than one stream reads faster
    on this machine, as the sweep kernel's four-row blocks do)."""
    M, n = X.shape
    total = 0.0
    for i in range(0, M, 8):
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
        for j in range(n):
            a0 += X[i, j]
            a1 += X[i + 1, j]
            a2 += X[i + 2, j]
            a3 += X[i + 3, j]
            a4 += X[i + 4, j]
            a5 += X[i + 5, j]
            a6 += X[i + 6, j]
            a7 += X[i + 7, j]
        total += ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
    return total


@njit(cache=True, parallel=True)
def read_rows8_threads(X, n_chunks):
    """:func:`read_rows8` over ``n_chunks`` blocks of rows in parallel."""
    M = X.shape[0]
    chunk = 8 * ((M // 8 + n_chunks - 1) // n_chunks)
    partial = np.zeros(n_chunks)
    for c in prange(n_chunks):
        partial[c] = read_rows8(X[c * chunk:min(M, (c + 1) * chunk)])
    return partial.sum()


# --- instances ----------------------------------------------------------------------------


def dense_mdp(S: int, seed: int) -> TabularMDP:
    """Dense random MDP: P[s, a, :] ~ Uniform(0, 1)^S renormalised, R ~ Uniform(0, 1)."""
    rng = np.random.default_rng(seed)
    P = normalize_rows(rng.random((S, A, S)))
    return TabularMDP(P, rng.random((S, A)), np.full(S, 1.0 / S), gamma=GAMMA_SWEEP)


def run_peer(spec: dict, P: np.ndarray, R: np.ndarray) -> dict:
    """Run peer_vi.py in the peers' interpreter on (P, R); its JSON output, or an error."""
    if not PEER_PYTHON.exists():
        return {"error": "peers not installed: run bash benchmarks/peers.sh"}
    with tempfile.TemporaryDirectory() as tmp:
        np.save(f"{tmp}/P.npy", P)
        np.save(f"{tmp}/R.npy", R)
        spec = dict(spec, P=f"{tmp}/P.npy", R=f"{tmp}/R.npy")
        with open(f"{tmp}/spec.json", "w") as f:
            json.dump(spec, f)
        proc = subprocess.run([str(PEER_PYTHON), str(HERE / "peer_vi.py"), f"{tmp}/spec.json"],
                              capture_output=True, text=True, env={**os.environ, **PEER_ENV})
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout)


# --- 1. one value-iteration sweep ---------------------------------------------------------


def numpy_sweep(P2, R2, V, gamma, S):
    Q = R2 + gamma * (P2 @ V)
    return Q.reshape(S, A).max(axis=1)


def bench_sweep(reps: int) -> dict:
    out = {}
    for S in SWEEP_S:
        mdp = dense_mdp(S, seed=S)
        P2, R2 = mdp.P.reshape(S * A, S), mdp.R.reshape(S * A)
        V = np.random.default_rng(0).random(S)
        flat = mdp.P.reshape(-1)

        def boundlab_sweep(threaded):
            _kernels.value_iteration_kernel(P2, R2, GAMMA_SWEEP, V, 0.0, 1, threaded)

        # Thread limits are set around the timed loops, not inside them (setting them costs
        # more than a sweep at S = 100). Two-thread BLAS and two-thread Numba are timed in
        # separate groups: idle OpenBLAS and OpenMP threads spin for a while after a call,
        # and interleaved they would steal each other's cores.
        one = {"boundlab_1t": lambda: boundlab_sweep(False),
               "numpy_1t": lambda: numpy_sweep(P2, R2, V, GAMMA_SWEEP, S),
               "gemv_1t": lambda: P2 @ V,
               "read_flat_1t": lambda: read_flat(flat),
               "read_rows8_1t": lambda: read_rows8(P2)}
        blas_two = {"numpy_2t": lambda: numpy_sweep(P2, R2, V, GAMMA_SWEEP, S),
                    "gemv_2t": lambda: P2 @ V}
        numba_two = {"boundlab_2t": lambda: boundlab_sweep(True),
                     "read_rows8_2t": lambda: read_rows8_threads(P2, 2)}
        res = {}
        for n_blas, n_numba, fns in ((1, 1, one), (2, 1, blas_two), (1, 2, numba_two)):
            numba.set_num_threads(n_numba)
            with threadpool_limits(n_blas, user_api="blas"):
                for fn in fns.values():  # compile, warm caches
                    fn()
                res.update({k: summary(v) for k, v in time_interleaved(fns, reps).items()})
        api_reps, k = 5, 20
        for n_numba in (1, 2):
            numba.set_num_threads(n_numba)
            api = time_calls(lambda: value_iteration(mdp, epsilon=1e-300, max_iter=k), api_reps)
            res[f"boundlab_api_{n_numba}t"] = summary([t / k for t in api])
        numba.set_num_threads(1)
        peers = run_peer({"task": "sweep", "gamma": GAMMA_SWEEP, "reps": reps, "threads": [1, 2]},
                         mdp.P, mdp.R)
        for name, times in peers.items():
            if isinstance(times, list) and name != "blas":
                res[name] = summary(times)
        res["peers_meta"] = {k: peers.get(k) for k in ("versions", "blas", "error")}
        bytes_P = mdp.P.nbytes
        probe = min(BOUND_PROBES, key=lambda k: res[k]["median"])
        t_bound = res[probe]["median"]
        res["bound"] = {"bytes_P": bytes_P, "median": t_bound, "probe": probe,
                        "GB_per_s": bytes_P / t_bound / 1e9}
        out[str(S)] = res
        del mdp, P2, R2, flat
    return out


# --- 2. whole solve -------------------------------------------------------------------------


def reference_V_star(mdp: TabularMDP) -> tuple[np.ndarray, float]:
    """V* by a linear solve for the greedy policy of a long VI, with its certified error
    ``||T V - V||_inf / (1 - gamma)`` (numpy only, independent of the code under test)."""
    S, gamma = mdp.S, mdp.gamma
    P2, R2 = mdp.P.reshape(S * A, S), mdp.R.reshape(S * A)
    V = np.zeros(S)
    for _ in range(int(math.log(1e-14) / math.log(gamma)) + 1):
        V = numpy_sweep(P2, R2, V, gamma, S)
    pi = (R2 + gamma * (P2 @ V)).reshape(S, A).argmax(axis=1)
    P_pi = mdp.P[np.arange(S), pi]
    V = np.linalg.solve(np.eye(S) - gamma * P_pi, mdp.R[np.arange(S), pi])
    return V, float(np.abs(numpy_sweep(P2, R2, V, gamma, S) - V).max() / (1 - gamma))


def numpy_solve(mdp: TabularMDP, epsilon: float):
    """Plain numpy VI with boundlab's stopping rule gamma ||V_k - V_{k-1}|| / (1 - gamma) <= epsilon."""
    S, gamma = mdp.S, mdp.gamma
    P2, R2 = mdp.P.reshape(S * A, S), mdp.R.reshape(S * A)
    V, k = np.zeros(S), 0
    while True:
        V_new = numpy_sweep(P2, R2, V, gamma, S)
        residual = np.abs(V_new - V).max()
        V, k = V_new, k + 1
        if gamma * residual / (1 - gamma) <= epsilon:
            return V, k


def k_apriori(mdp: TabularMDP, epsilon: float) -> int:
    """Sweeps from V0 = 0 that certify ||V_k - V*|| <= gamma^k ||R|| / (1 - gamma) <= epsilon."""
    R_max = float(np.abs(mdp.R).max())
    return math.ceil(math.log(epsilon * (1 - mdp.gamma) / R_max) / math.log(mdp.gamma))


def bench_solve(rep_scale: float) -> dict:
    numba.set_num_threads(1)  # every solver on one thread, like the BLAS of numpy_1t
    out = {}
    for S, gamma, reps in SOLVE_CASES:
        reps = max(1, round(reps * rep_scale))
        mdp = garnet(S, A, 10, gamma=gamma, seed=S)
        V_star, ref_err = reference_V_star(mdp)
        kk = k_apriori(mdp, SOLVE_EPSILON)
        res = {"reference_error": ref_err, "k_apriori": kk, "reps": reps}
        runs = {}

        def boundlab():
            runs["boundlab"] = value_iteration(mdp, epsilon=SOLVE_EPSILON)

        def numpy_1t():
            with threadpool_limits(1, user_api="blas"):
                runs["numpy_1t"] = numpy_solve(mdp, SOLVE_EPSILON)

        value_iteration(garnet(20, A, 10, gamma=gamma, seed=0), epsilon=SOLVE_EPSILON)  # compile
        times = time_interleaved({"boundlab": boundlab, "numpy_1t": numpy_1t}, reps)
        r = runs["boundlab"]
        res["boundlab"] = {**summary(times["boundlab"]), "n_iter": r.n_iter,
                           "error": float(np.abs(r.V - V_star).max()),
                           "parameter": f"epsilon={SOLVE_EPSILON:g}"}
        V, k = runs["numpy_1t"]
        res["numpy_1t"] = {**summary(times["numpy_1t"]), "n_iter": k,
                           "error": float(np.abs(V - V_star).max()), "parameter": "same rule"}
        peers = run_peer({"task": "solve", "gamma": gamma, "reps": reps,
                          "epsilon": SOLVE_EPSILON, "k_apriori": kk}, mdp.P, mdp.R)
        for name in ("rlberry", "pymdptoolbox"):
            if name in peers:
                p = peers[name]
                res[name] = {**summary(p["times"]), "n_iter": p["n_iter"],
                             "error": float(np.abs(np.array(p["V"]) - V_star).max()),
                             "parameter": p["parameter"], "construct_s": p.get("construct_s")}
        res["peers_meta"] = {k: peers.get(k) for k in ("versions", "error")}
        out[f"S={S},gamma={gamma}"] = res
    return out


# --- 3. sampling ----------------------------------------------------------------------------


def _policy_rows_args(mdp: TabularMDP, pi: np.ndarray) -> tuple:
    """Kernel arguments for a deterministic stationary policy: the MDP restricted to the rows
    (s, pi(s)) of P, as one action (what sample_episodes runs for such a policy)."""
    S = mdp.S
    rows = np.arange(S)
    R_pi = np.ascontiguousarray(mdp.R[rows, pi].reshape(1, S, 1))
    R_pi.setflags(write=False)  # the argument types of sample_episodes: no recompilation
    return (sampling._alias_tables(mdp.P[rows, pi]), R_pi,
            sampling._alias_tables(mdp.mu0.reshape(1, S)), pi.reshape(1, S).astype(np.int64),
            np.zeros((1, 1, 2)), False, mdp.terminal)


def bench_sampling(reps: int) -> dict:
    """The public call, then its parts: the alias tables and the kernel alone, and the kernel
    on a small MDP whose tables stay in L2 (the gap between the two is memory latency)."""
    numba.set_num_threads(1)
    mdp = dense_mdp(SAMPLE_S, seed=7)
    pi = np.random.default_rng(1).integers(A, size=SAMPLE_S)
    sampling.sample_episodes(dense_mdp(20, seed=0), pi[:20], 16, H=10, seed=0)  # compile
    steps = SAMPLE_N * SAMPLE_H
    call = time_calls(lambda: sampling.sample_episodes(mdp, pi, SAMPLE_N, H=SAMPLE_H, seed=3), reps)
    build = time_calls(lambda: _policy_rows_args(mdp, pi), 3)
    out = {"steps": steps, "call": summary(call), "policy_rows_tables": summary(build),
           "call_steps_per_s": steps / float(np.median(call))}
    for name, instance in (("kernel", mdp), ("kernel_small_S", dense_mdp(SMALL_S, seed=8))):
        args = _policy_rows_args(instance, pi[:instance.S])
        t = time_calls(lambda: _kernels.sample_episodes_kernel(
            *args, SAMPLE_N, SAMPLE_H, np.random.default_rng(3)), reps)
        out[name] = summary(t)
        out[f"{name}_steps_per_s"] = steps / float(np.median(t))
    return out


# --- 4. UCB1 --------------------------------------------------------------------------------


def bench_ucb1(reps: int) -> dict:
    bandit = BernoulliBandit(np.linspace(0.1, 0.9, UCB_K))
    ucb1(bandit, 1000, record_every=100, seed=0)  # compile
    times = time_calls(lambda: ucb1(bandit, UCB_T, record_every=UCB_RECORD_EVERY, seed=1), reps)
    return {"T": UCB_T, "K": UCB_K, **summary(times), "rounds_per_s": UCB_T / float(np.median(times))}


# --- report ---------------------------------------------------------------------------------


def machine() -> dict:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines()
                  if ln.startswith("Model name")), platform.processor())
    return {"cpu": model, "cores": os.cpu_count(), "load_average": os.getloadavg(),
            "python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
            "scipy": scipy.__version__, "boundlab": "git " + _git_head(),
            "blas": [{k: d.get(k) for k in ("internal_api", "version", "architecture")}
                     for d in threadpool_info()]}


def _git_head() -> str:
    proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                          text=True)
    return proc.stdout.strip() or "unknown"


def ms(x: float) -> str:
    return f"{1e3 * x:.3g}"


def met(ok: bool) -> str:
    return "yes" if ok else "**no**"


SWEEP_COLUMNS = (("boundlab_1t", "boundlab kernel 1t"), ("boundlab_2t", "boundlab kernel 2t"),
                 ("boundlab_api_1t", "boundlab value_iteration 1t"),
                 ("boundlab_api_2t", "boundlab value_iteration 2t"),
                 ("numpy_1t", "numpy 1t"), ("numpy_2t", "numpy 2t"),
                 ("pymdptoolbox_1t", "pymdptoolbox 1t"), ("pymdptoolbox_2t", "pymdptoolbox 2t"),
                 ("rlberry", "rlberry"))


def sweep_table(sweep: dict) -> list[str]:
    rows = ["| S (A = 8) | " + " | ".join(label for _, label in SWEEP_COLUMNS)
            + " | bandwidth bound |", "|---" * (len(SWEEP_COLUMNS) + 2) + "|"]
    for S, r in sweep.items():
        cells = [f"{ms(r[k]['median'])} ({ms(r[k]['min'])})" if k in r else "n/a"
                 for k, _ in SWEEP_COLUMNS]
        bound = r["bound"]
        cells.append(f"{ms(bound['median'])} ({bound['GB_per_s']:.1f} GB/s, {bound['probe']})")
        rows.append(f"| {S} | " + " | ".join(cells) + " |")
    return rows


def solve_table(solve: dict) -> list[str]:
    rows = ["| Garnet case | library | stopping parameter | sweeps | median s (min) | "
            "max abs error vs V* | <= epsilon? |", "|---|---|---|---|---|---|---|"]
    for case, r in solve.items():
        for name in ("boundlab", "numpy_1t", "pymdptoolbox", "rlberry"):
            if name in r:
                p = r[name]
                rows.append(f"| {case}, {r['reps']} reps | {name} | {p['parameter']} | {p['n_iter']} "
                            f"| {p['median']:.3g} ({p['min']:.3g}) | {p['error']:.2e} "
                            f"| {met(p['error'] <= SOLVE_EPSILON)} |")
    return rows


def target_rows(results: dict) -> list[str]:
    rows = ["| target | measured (medians) | met? |", "|---|---|---|"]
    for S, r in results.get("sweep", {}).items():
        limit = 1.05 if S == "2000" else 1.0
        # boundlab on n Numba threads against the peer on n BLAS threads.
        for peer, lim in (("numpy", limit), ("pymdptoolbox", 1.0)):
            for t in ("1t", "2t"):
                if f"{peer}_{t}" in r:
                    ratio = r[f"boundlab_{t}"]["median"] / r[f"{peer}_{t}"]["median"]
                    rows.append(f"| sweep S={S}, {t}: boundlab <= {lim} x {peer} | {ratio:.3f} x "
                                f"| {met(ratio <= lim)} |")
        if S == "2000":
            b = r["boundlab_2t"]["median"]
            ratio = b / r["bound"]["median"]
            rows.append(f"| sweep S=2000: boundlab 2t <= 1.2 x bandwidth bound | {ratio:.3f} x "
                        f"({r['bound']['probe']}; boundlab 1t: "
                        f"{r['boundlab_1t']['median'] / r['bound']['median']:.3f} x) "
                        f"| {met(ratio <= 1.2)} |")
    if "sampling" in results:
        s = results["sampling"]
        rows.append(f"| sample_episodes S={SAMPLE_S}, n={SAMPLE_N}, H={SAMPLE_H}: >= 10 M steps/s "
                    f"| {s['call_steps_per_s'] / 1e6:.2f} M/s ({ms(s['call']['median'])} ms per call: "
                    f"kernel {ms(s['kernel']['median'])} ms = {s['kernel_steps_per_s'] / 1e6:.2f} M/s, "
                    f"alias tables {ms(s['policy_rows_tables']['median'])} ms; the kernel with "
                    f"S={SMALL_S}: {s['kernel_small_S_steps_per_s'] / 1e6:.2f} M/s) "
                    f"| {met(s['call_steps_per_s'] >= 1e7)} |")
    if "ucb1" in results:
        u = results["ucb1"]
        rows.append(f"| ucb1 K={UCB_K}, T=1e7: >= 20 M rounds/s | {u['rounds_per_s'] / 1e6:.2f} M/s "
                    f"({ms(u['median'])} ms per run) | {met(u['rounds_per_s'] >= 2e7)} |")
    return rows


def report(results: dict) -> str:
    parts = []
    if "sweep" in results:
        parts += ["One value-iteration sweep, ms: median (min)", ""] + sweep_table(results["sweep"])
    if "solve" in results:
        parts += ["", f"Whole solve to a certified ||V - V*||_inf <= {SOLVE_EPSILON:g}", ""]
        parts += solve_table(results["solve"])
    parts += ["", "Targets", ""] + target_rows(results)
    return "\n".join(parts)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", default="sweep,solve,sampling,ucb1",
                        help="comma-separated subset of sweep,solve,sampling,ucb1")
    parser.add_argument("--reps", type=int, default=20, help="repetitions (default 20)")
    parser.add_argument("--out", default=str(HERE / "results.json"))
    args = parser.parse_args(argv)
    sections = args.sections.split(",")
    results = {"machine": machine()}
    t0 = time.perf_counter()
    if "sweep" in sections:
        results["sweep"] = bench_sweep(args.reps)
    if "solve" in sections:
        results["solve"] = bench_solve(args.reps / 20)
    if "sampling" in sections:
        results["sampling"] = bench_sampling(max(1, args.reps // 2))
    if "ucb1" in sections:
        results["ucb1"] = bench_ucb1(args.reps)
    results["machine"]["load_average_end"] = os.getloadavg()
    results["wall_s"] = time.perf_counter() - t0
    Path(args.out).write_text(json.dumps(results, indent=1))
    m = results["machine"]
    print(f"{m['cpu']}, {m['cores']} cores; load average {m['load_average']} -> "
          f"{m['load_average_end']}; total {results['wall_s']:.0f} s")
    print(report(results))


if __name__ == "__main__":
    sys.exit(main())
