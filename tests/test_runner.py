"""The runner: seed spawning, bit-identity across jobs, resumption, outputs, configs."""
import json

import numpy as np
import pytest

import fixture_figures
from figures.runner import reproduce, resolve_config, run_figure


def _run(jobs, tmp_path=None, seed=7):
    return reproduce(fixture_figures, "smoke", seed=seed, jobs=jobs, out=tmp_path,
                     progress=False, draw=False)


def test_bit_identical_across_jobs():
    one = _run(jobs=1)
    two = _run(jobs=2)
    assert np.array_equal(one.results["x"], two.results["x"])
    assert one.results["total"].tobytes() == two.results["total"].tobytes()


def test_runs_get_spawned_child_seeds():
    """Run i is seeded by SeedSequence(seed).spawn(n)[i], computed here independently."""
    out = _run(jobs=1, seed=11)
    child = np.random.SeedSequence(11).spawn(6)[3]
    rng = np.random.default_rng(child)
    M = rng.standard_normal((200, 200)) + 200 * np.eye(200)
    b = rng.standard_normal(200)
    np.testing.assert_allclose(out.results["x"][3], np.linalg.solve(M, b), rtol=1e-12)
    assert not np.array_equal(out.results["x"][0], out.results["x"][1])
    assert not np.array_equal(_run(jobs=1, seed=12).results["x"], out.results["x"])


def test_interrupted_run_resumes_without_recomputing(tmp_path, monkeypatch):
    monkeypatch.setattr(fixture_figures, "FAIL_AT", 4)
    fixture_figures.CALLS.clear()
    with pytest.raises(RuntimeError, match="planted failure"):
        _run(jobs=1, tmp_path=tmp_path)
    assert fixture_figures.CALLS == [0, 1, 2, 3, 4]
    saved = sorted(p.name for p in (tmp_path / "runs").rglob("run_*.npz"))
    assert saved == [f"run_{i:04d}.npz" for i in range(4)]

    monkeypatch.setattr(fixture_figures, "FAIL_AT", None)
    fixture_figures.CALLS.clear()
    resumed = _run(jobs=1, tmp_path=tmp_path)
    assert fixture_figures.CALLS == [4, 5]  # only the unfinished runs
    assert resumed.n_loaded == 4
    fresh = _run(jobs=1)
    assert np.array_equal(resumed.results["x"], fresh.results["x"])


def test_other_seed_or_config_does_not_reuse_runs(tmp_path):
    _run(jobs=1, tmp_path=tmp_path, seed=1)
    assert _run(jobs=1, tmp_path=tmp_path, seed=2).n_loaded == 0
    assert _run(jobs=1, tmp_path=tmp_path, seed=1).n_loaded == 6


def test_edited_code_does_not_reuse_runs(tmp_path, monkeypatch):
    import figures.runner as runner

    _run(jobs=1, tmp_path=tmp_path)
    assert runner._code_digest() == runner._code_digest.__wrapped__()  # cached = fresh
    monkeypatch.setattr(runner, "_code_digest", lambda: "edited-source")
    assert _run(jobs=1, tmp_path=tmp_path).n_loaded == 0


def test_outputs_written(tmp_path):
    reproduce(fixture_figures, "smoke", seed=3, out=tmp_path, progress=False)
    for name in ("fixture.png", "fixture.pdf", "results.npz", "results.json", "verdict.txt"):
        assert (tmp_path / name).stat().st_size > 0
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["seed"] == 3 and record["config"]["n"] == 200
    assert record["verdict"] == {"ok": True, "text": "6 runs"}
    assert {"numpy", "scipy", "numba", "boundlab"} <= set(record["versions"])


def test_bad_configuration_and_seed():
    with pytest.raises(ValueError, match="unknown configuration 'huge'"):
        resolve_config(fixture_figures, "huge")
    with pytest.raises(ValueError, match="has no key 'bonus'"):
        resolve_config(fixture_figures, "smoke", {"bonus": 1})
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        reproduce(fixture_figures, "smoke", seed=-1, progress=False)
    with pytest.raises(ValueError, match="jobs must be at least 1"):
        run_figure(fixture_figures, resolve_config(fixture_figures, "smoke"), 0, jobs=0,
                   progress=False)
    with pytest.raises(ValueError, match="unknown figure 'nope'"):
        reproduce("nope", "smoke", progress=False)
