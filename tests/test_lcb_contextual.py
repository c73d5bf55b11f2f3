"""The lcb-contextual figure end to end: verdict, exit codes, planted errors, outputs."""
import io
import math
from contextlib import redirect_stdout

import matplotlib.pyplot as plt
import numpy as np
import pytest

from bandits.contextual import missing_mass_suboptimality
from figures import lcb_contextual
from figures.cli import main
from figures.runner import resolve_config, run_figure
from proofs_check.theorems.lcb_pessimism import CB_MISSING_MASS


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One smoke check through the command line; its runs are kept for the other tests."""
    out = tmp_path_factory.mktemp("lcb_contextual")
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        code = main(["check", "lcb-contextual", "--config", "smoke", "--out", str(out), "--no-progress"])
    return code, buffer.getvalue(), out


def test_check_smoke_supported(smoke):
    code, text, _ = smoke
    assert code == 0, text
    assert text.startswith("SUPPORTED")
    assert "Overall level 0.001, split (Bonferroni) over 6 tests" in text  # 2 |p2_S| + |p3_S|
    for claim in ("P2 S=5 level", "P2 S=20 slope band", "P3 S=2 slope band", "P3 S=10 lcb vs upper bound"):
        assert claim in text


def _smoke_runs(out):
    """The smoke fixture's runs, loaded from its output folder (nothing is recomputed)."""
    config = {**resolve_config(lcb_contextual, "smoke"), "seed": 0}
    runs, n_loaded = run_figure(lcb_contextual, config, 0, cache_dir=out / "runs", progress=False)
    assert n_loaded == len(runs) == len(lcb_contextual.runs(config))
    return runs, config


def test_results_plot_and_run_order(smoke):
    runs, config = _smoke_runs(smoke[2])
    cheap = {**config, "n_boot": 600, "level": 0.05}  # aggregate keys only: 6 tests at 0.0083
    res = lcb_contextual.aggregate(runs, cheap)
    # The P2 level is the exact formula, computed here independently of the library.
    exact = [[(S - 1) / N * (1 - 1 / N) ** N for N in res["Ns"]] for S in res["p2_S"]]
    np.testing.assert_allclose(res["p2_exact"], exact, rtol=1e-9)  # the pow loses ~N ulp
    # Runs carry their cell: reversed order, same results; a missing cell is an error.
    rev = lcb_contextual.aggregate(runs[::-1], cheap)
    for key in ("p2_mean", "p3_stat_lcb", "p3_stat_mpa", "p2_slope", "p3_slope"):
        np.testing.assert_array_equal(rev[key], res[key])
    with pytest.raises(ValueError, match=r"missing \[\('p3', 10, 100000\)\]"):
        lcb_contextual.aggregate(runs[:-1], cheap)
    fig = lcb_contextual.plot(res)
    fig.savefig(io.BytesIO(), format="png", dpi=40)
    assert len(fig.axes) == 2
    plt.close(fig)


def test_wrong_p3_rate_is_caught(smoke, capsys):
    """Planted error: a stated P3 rate of -1 (instead of -1/2) must fail its bands: exit 1.

    Only aggregate keys change, so the smoke runs are reused; the same aggregate and verdict
    code runs, with fewer resamples at level 0.01 (6 tests at 1.7e-3) to keep the test cheap."""
    code = main(["check", "lcb-contextual", "--config", "smoke", "--set", "p3_slope=-1.0",
                 "--set", "n_boot=2000", "--set", "level=0.01", "--out", str(smoke[2]), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1, out
    failed = out.split(" failed)")[0]
    assert out.startswith("NOT SUPPORTED") and "reused 16 finished run(s)" in out
    assert "P3 S=2 slope band" in failed and "P3 S=10 slope band" in failed
    assert "P2" not in failed and "upper bound" not in failed


def test_audit_pitfall_is_caught(tmp_path, capsys):
    """Planted error: pi*(s) = 0 on rare contexts (the audit's pitfall) must fail: exit 1."""
    code = main(["check", "lcb-contextual", "--config", "smoke", "--set", "rare_action=0",
                 "--set", "p3_S=[]", "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert out.startswith("NOT SUPPORTED") and "P2 S=5 level" in out and "P2 S=20 slope band" in out


@pytest.mark.parametrize(
    "gap_min, gap_max, edge",
    [(0.3, 0.45, "smallest gap: lower gap_min"), (0.001, 0.002, "largest gap: raise gap_max")],
)
def test_worst_case_on_a_grid_end_is_undecidable(tmp_path, capsys, gap_min, gap_max, edge):
    """A worst case on either end of the gap grid cannot be located: ok None, exit 2."""
    code = main(["check", "lcb-contextual", "--config", "smoke", "--set", "p2_S=[]",
                 "--set", "R=50", "--set", "n_gaps=2", "--set", f"gap_min={gap_min}",
                 "--set", f"gap_max={gap_max}", "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 2, out
    assert out.startswith("grid too narrow") and edge in out


@pytest.mark.slow
def test_over_pessimistic_bonus_is_caught(tmp_path, capsys):
    """Planted error: bonus_scale = 4 steepens P3 at S = 10 out of its band (exit 1).

    From N = 1000: at N = 100 its worst case sits on the largest gap (undecidable)."""
    code = main(["check", "lcb-contextual", "--config", "smoke", "--set", "bonus_scale=4.0",
                 "--set", "p2_S=[]", "--set", "Ns=[1000, 10000, 100000]", "--out", str(tmp_path),
                 "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1 and "P3 S=10 slope band" in out.split(" failed)")[0], out


def test_missing_mass_bound_matches_the_library_formula():
    for S, N in [(5, 100), (20, 100000)]:
        value = float(CB_MISSING_MASS.evaluate(S=S, N=N))
        assert value == pytest.approx(missing_mass_suboptimality(S, N), rel=1e-12)
        assert value == pytest.approx((S - 1) / (math.e * N), rel=1 / N)  # (1-1/N)^N = e^-1 (1 + O(1/N))


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("Ns", [100], "Ns must be at least 2 distinct"),
        ("p2_S", [1], "p2_S must be distinct ints >= 2"),
        ("Ns", [10, 100], "needs N >= S"),
        ("C_star", 1.0, "C_star must be > 1"),
        ("gap_min", 0.5, "gap grid needs"),
        ("rare_action", 2, "rare_action must be 0 or 1"),
        ("R", 1, "R must be an int >= 2"),
        ("n_boot", 11999, r"n_boot = 11999 leaves no resample in a tail .* use n_boot >= 12000"),
        ("p3_slope", float("nan"), "p3_slope must be a finite number"),
    ],
)
def test_validate_config(key, value, match):
    config = {**lcb_contextual.CONFIGS["smoke"], key: value}
    with pytest.raises(ValueError, match=match):
        lcb_contextual.validate_config(config)
