"""The runner: seeds, parallel runs through joblib, resumption, outputs of a figure.

A figure module defines ``CLAIM``,
``CONFIGS``, ``run_one(config, seed)``, ``aggregate(runs, config)``, ``plot(results)`` and
``verdict(results)``, and optionally ``runs(config) -> list[dict]``: the per-run parameters
merged into ``config`` for run i (default: ``config["n_runs"]`` identical runs, or one).

Run i gets ``SeedSequence(seed).spawn(n_runs)[i]`` and runs under
``threadpool_limits(1)`` and ``numba.set_num_threads(1)``, so results are bit-identical for
any number of jobs. Each finished run is written at once to ``OUT/runs/<key>/run_XXXX.npz``
(``key`` hashes the figure, the boundlab version, the seed and the configuration less the
module's ``AGGREGATE_KEYS``); a later call with the same key loads it instead of
recomputing, so an interrupted or failed sweep keeps what it finished.
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from proofs_check.seeding import spawn

__all__ = ["Reproduction", "load_figure", "resolve_config", "run_figure", "reproduce"]

_VERSIONED = ("boundlab", "numpy", "scipy", "numba", "sympy", "matplotlib", "joblib")


@dataclass(frozen=True)
class Reproduction:
    """What ``reproduce`` produced.

    Attributes
    ----------
    name : str
        The figure's name.
    config : dict
        The configuration used (after overrides), with the root ``seed``.
    results : dict
        The output of the module's ``aggregate``.
    ok : bool or None
        The verdict: True supported, False not supported, None undecidable (an error of
        the experiment's design, e.g. a grid too narrow).
    text : str
        The one-line quantitative verdict.
    out : pathlib.Path or None
        The output folder (None when nothing was written).
    n_loaded : int
        How many runs were loaded from earlier work rather than computed.
    kind : str
        The claim's kind: "theorem", "identity" or "empirical". For an empirical claim
        ``ok`` covers only its asserted sub-claims; whether the paper's effect showed in the
        toy ("reproduced" or "not reproduced in this toy") is stated in ``text``.
    """

    name: str
    config: dict
    results: dict
    ok: bool | None
    text: str
    out: Path | None
    n_loaded: int
    kind: str = "theorem"


CONTRACT = ("CLAIM", "CONFIGS", "run_one", "aggregate", "plot", "verdict")


def load_figure(name_or_module):
    """A figure module from its public name (``"lcb-bandit"``), module path or the module.

    Raises
    ------
    ValueError
        If the name is neither in ``figures.registry.FIGURES`` nor an importable module
        that defines the figure contract (``CLAIM, CONFIGS, run_one, aggregate, plot,
        verdict``).
    """
    from figures.registry import FIGURES

    module = name_or_module
    if isinstance(name_or_module, str):
        path = FIGURES.get(name_or_module, {}).get("module", name_or_module)
        try:
            module = importlib.import_module(path)
        except ModuleNotFoundError as error:  # only "no such module", not a broken figure
            if error.name is None or not path.startswith(error.name):
                raise
            module = None
    missing = [attr for attr in CONTRACT if not hasattr(module, attr)]
    if module is None or missing:
        known = ", ".join(sorted(FIGURES))
        raise ValueError(f"unknown figure {name_or_module!r}; known figures: {known}")
    return module


def _check_type(key, value, default):
    """An override must have the type of the configuration's default (an int passes as float)."""
    if isinstance(default, bool) or isinstance(value, bool):
        ok = isinstance(value, bool) and isinstance(default, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float))
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ValueError(f"--set {key} expects type {type(default).__name__}, like the "
                         f"configuration's {default!r}, got {value!r}")
    return float(value) if isinstance(default, float) else value


def resolve_config(module, config_name: str = "quick", overrides: dict | None = None) -> dict:
    """The module's named configuration with ``overrides`` applied.

    Raises
    ------
    ValueError
        If ``config_name`` is not one of the module's configurations, or an override names
        a key the configuration does not have or has another type than the default.
    """
    if config_name not in module.CONFIGS:
        raise ValueError(
            f"unknown configuration {config_name!r}; choose one of {sorted(module.CONFIGS)}"
        )
    config = dict(module.CONFIGS[config_name])
    for key, value in (overrides or {}).items():
        if key not in config:
            raise ValueError(
                f"configuration {config_name!r} has no key {key!r}; keys: {sorted(config)}"
            )
        config[key] = _check_type(key, value, config[key])
    config["config_name"] = config_name
    return config


def _run_params(module, config) -> list[dict]:
    if hasattr(module, "runs"):
        return list(module.runs(config))
    return [{} for _ in range(int(config.get("n_runs", 1)))]


@functools.lru_cache(maxsize=1)
def _code_digest() -> str:
    """Hash of boundlab's own source files, so that edited code never reuses stale runs."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for package in ("tabular", "bandits", "proofs_check", "figures"):
        for path in sorted((root / package).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _run_key(module, config, seed) -> str:
    """Hash of what determines the runs: module, code, seed and the keys runs read.

    Keys the module lists in ``AGGREGATE_KEYS`` (e.g. bootstrap resamples) only affect the
    aggregation, so changing them reuses the runs. Any edit of boundlab's source changes
    the key.
    """
    skip = set(getattr(module, "AGGREGATE_KEYS", ())) | {"config_name", "seed"}
    blob = json.dumps(
        {"module": module.__name__, "version": _versions()["boundlab"], "code": _code_digest(),
         "seed": seed,
         "config": {k: v for k, v in config.items() if k not in skip}},
        sort_keys=True, default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _single_threaded_run(module_name, config, seed_seq, index):
    """Run ``index``, in whichever process joblib chose, with BLAS and Numba on one thread."""
    from threadpoolctl import threadpool_limits

    import numba

    module = importlib.import_module(module_name)
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            out = module.run_one(config, seed_seq)
    finally:
        numba.set_num_threads(previous)
    return index, {key: np.asarray(value) for key, value in out.items()}


def _save_run(path: Path, run: dict) -> None:
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **run)
    os.replace(tmp, path)  # atomic: a run file is either complete or absent


def _load_run(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def run_figure(module, config: dict, seed: int = 0, *, jobs: int = 1, cache_dir=None,
               progress: bool = True) -> tuple[list[dict], int]:
    """Run every run of a figure, in parallel, reusing finished runs.

    Parameters
    ----------
    module : module
        A figure module.
    config : dict
        A resolved configuration (see :func:`resolve_config`).
    seed : int
        The root seed; run i gets ``SeedSequence(seed).spawn(n_runs)[i]``.
    jobs : int
        joblib workers (processes); results do not depend on it.
    cache_dir : path or None
        Where finished runs are kept; None keeps nothing (no resumption).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    runs : list of dict
        ``runs[i]`` is the output of ``run_one`` for run i, as numpy arrays.
    n_loaded : int
        How many runs were loaded from ``cache_dir``.
    """
    from joblib import Parallel, delayed
    from tqdm import tqdm

    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    params = _run_params(module, config)
    seeds = spawn(seed, len(params))
    configs = [{**config, **p} for p in params]
    runs: list = [None] * len(params)
    paths = [None] * len(params)
    if cache_dir is not None:
        cache = Path(cache_dir) / _run_key(module, config, seed)
        cache.mkdir(parents=True, exist_ok=True)
        paths = [cache / f"run_{i:04d}.npz" for i in range(len(params))]
        for i, path in enumerate(paths):
            if path.exists():
                runs[i] = _load_run(path)
    todo = [i for i, run in enumerate(runs) if run is None]
    n_loaded = len(params) - len(todo)
    bar = tqdm(total=len(params), initial=n_loaded, desc=module.__name__.split(".")[-1],
               disable=not progress, leave=False)
    tasks = (delayed(_single_threaded_run)(module.__name__, configs[i], seeds[i], i)
             for i in todo)
    # Unordered: each run is saved the moment it finishes, whatever its index.
    results = Parallel(n_jobs=jobs, return_as="generator_unordered")(tasks)
    try:
        for i, run in results:
            runs[i] = run
            if paths[i] is not None:
                _save_run(paths[i], run)
            bar.update(1)
    finally:
        bar.close()
    return runs, n_loaded


def _versions() -> dict:
    versions = {"python": platform.python_version()}
    for package in _VERSIONED:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _write_outputs(out: Path, name: str, config: dict, results: dict, fig, ok, text, elapsed,
                   kind):
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / f"{name}.png", dpi=150)
    fig.savefig(out / f"{name}.pdf")
    arrays = {k: np.asarray(v) for k, v in results.items() if isinstance(v, np.ndarray)}
    np.savez(out / "results.npz", **arrays)
    scalars = {k: v for k, v in results.items() if not isinstance(v, np.ndarray)}
    record = {
        "figure": name,
        "seed": config["seed"],
        "config": config,
        "claim_kind": kind,
        "verdict": {"ok": ok, "text": text},
        "results": scalars,
        "versions": _versions(),
        "elapsed_s": round(elapsed, 2),
    }
    (out / "results.json").write_text(json.dumps(record, indent=2, default=_jsonable) + "\n")
    (out / "verdict.txt").write_text(text + "\n")


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def reproduce(name, config_name: str = "quick", *, seed: int = 0, jobs: int = 1, out=None,
              overrides: dict | None = None, progress: bool = True, draw: bool = True
              ) -> Reproduction:
    """Run a figure end to end: runs, aggregate, verdict and (optionally) the outputs.

    Parameters
    ----------
    name : str or module
        The figure's public name (``"lcb-bandit"``) or its module.
    config_name : {"smoke", "quick", "paper"}
        Which configuration of the module to run.
    seed : int
        The root seed (a non-negative int).
    jobs : int
        joblib workers; the results are bit-identical for any value.
    out : path or None
        Output folder for ``NAME.png``, ``NAME.pdf``, ``results.npz``, ``results.json``
        (seed, configuration, package versions, verdict) and ``verdict.txt``; finished runs
        are kept under ``out/runs`` and reused. None writes nothing.
    overrides : dict or None
        Configuration keys to replace (e.g. ``{"bonus_scale": 0.5}``).
    progress : bool
        Show a progress bar.
    draw : bool
        Draw and save the figure (requires ``out``).

    Raises
    ------
    ValueError
        For an unknown figure, configuration or configuration key, or a negative seed.
    """
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    module = load_figure(name)
    config = resolve_config(module, config_name, overrides)
    config["seed"] = int(seed)
    start = time.perf_counter()
    cache_dir = None if out is None else Path(out) / "runs"
    runs, n_loaded = run_figure(module, config, seed, jobs=jobs, cache_dir=cache_dir,
                                progress=progress)
    if progress:
        print(f"{len(runs)} runs done ({n_loaded} reused); aggregating (statistics and "
              "bootstrap)...", file=sys.stderr, flush=True)
    results = module.aggregate(runs, config)
    ok, text = module.verdict(results)
    fig_name = module.CLAIM.name
    if out is not None and draw:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig = module.plot(results)
        _write_outputs(Path(out), fig_name, config, results, fig, ok, text,
                       time.perf_counter() - start, module.CLAIM.kind)
        plt.close(fig)
    return Reproduction(fig_name, config, results, ok, text,
                        None if out is None else Path(out), n_loaded, module.CLAIM.kind)
