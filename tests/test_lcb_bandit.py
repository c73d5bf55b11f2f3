"""The lcb-bandit figure end to end: verdict, exit codes, planted error, exact imitation error."""
import math

import numpy as np
import pytest
from scipy import stats

from figures import lcb_bandit
from figures.cli import main


def test_exact_imitation_error_matches_binomial_cdf():
    # Wrong iff the optimal arm's count is below N/2 (a tie goes to arm 0, the optimal one).
    for N, p in [(100, 2 / 3), (101, 2 / 3), (10, 0.25), (1000, 0.6)]:
        direct = stats.binom.cdf(math.ceil(N / 2) - 1, N, p)
        assert lcb_bandit.log_mpa_error_probability(N, p) == pytest.approx(math.log(direct), rel=1e-10)
    # N = 1e5 underflows the cdf but not the log-sum-exp; Chernoff bounds it from above
    log_p = lcb_bandit.log_mpa_error_probability(100_000, 2 / 3)
    assert np.isfinite(log_p) and log_p <= -100_000 * lcb_bandit.kl_bernoulli(0.5, 2 / 3)


def test_kl_bernoulli_closed_form():
    assert lcb_bandit.kl_bernoulli(0.5, 2 / 3) == pytest.approx(0.5 * math.log(9 / 8), rel=1e-14)


def test_check_smoke_supported(tmp_path, capsys):
    assert main(["check", "lcb-bandit", "--config", "smoke", "--out", str(tmp_path),
                 "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith("SUPPORTED")


def test_halved_bonus_is_caught(tmp_path, capsys):
    """A planted error (LCB bonus scale 0.5) must fail the P1 verdict: exit 1."""
    code = main(["check", "lcb-bandit", "--config", "smoke", "--set", "bonus_scale=0.5",
                 "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert out.startswith("NOT SUPPORTED") and "lcb slope band" in out


def test_grid_too_narrow_exits_2(tmp_path, capsys):
    # R and n_boot reduced: this tests the exit path, not the claim.
    code = main(["check", "lcb-bandit", "--config", "smoke", "--set", "gap_min=0.02",
                 "--set", "R=2000", "--set", "n_boot=8000", "--out", str(tmp_path),
                 "--no-progress"])
    assert code == 2
    assert "grid too narrow" in capsys.readouterr().out


def test_reproduce_writes_figure_and_reuses_runs(tmp_path, capsys):
    args = ["reproduce", "lcb-bandit", "--config", "smoke", "--set", "R=2000", "--set",
            "n_boot=8000", "--set", "Ns=[100, 1000]", "--out", str(tmp_path), "--no-progress"]
    main(args)
    for name in ("lcb-bandit.png", "lcb-bandit.pdf", "results.json", "results.npz", "verdict.txt"):
        assert (tmp_path / name).stat().st_size > 0
    main(args)
    assert "reused 4 finished run(s)" in capsys.readouterr().out
