"""The odice-orthogonal figure end to end: verdict, exit codes, planted error, metric."""
import numpy as np

from figures import odice_orthogonal
from figures.cli import main
from figures.cli import EMPIRICAL_NOTE


def test_check_smoke_exits_0_and_catches_a_halved_projection(tmp_path, capsys):
    assert main(["check", "odice-orthogonal", "--config", "smoke", "--out", str(tmp_path),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out.removeprefix(EMPIRICAL_NOTE + "\n")
    assert out.startswith(("Reproduced", "Not reproduced in this toy"))
    assert "(tol 1e-09): holds" in out and "bit for bit: holds" in out
    assert "one-sided sign test p = " in out and "Convergence: final update norm" in out
    # A planted error (half the parallel component removed by the projection under check)
    # breaks orthogonality: exit 1. It acts in aggregate, so the runs are reused.
    code = main(["check", "odice-orthogonal", "--config", "smoke", "--set",
                 "planted_error=half_projection", "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out.removeprefix(EMPIRICAL_NOTE + "\n")
    assert code == 1, out
    assert out.startswith("NOT SUPPORTED") and "FAILS" in out and "reused 12" in out


def test_metric_is_zero_for_full_coverage_data_and_names_nonconvergence():
    """With data equal to full coverage the OOD error against the rule's own full-coverage
    run is exactly 0 (the metric compares like with like); runs stopped far from a fixed
    point are named in the verdict."""
    config = {**odice_orthogonal.CONFIGS["smoke"], "n_steps": 100, "record_every": 50,
              "n_check": 10}
    inst = odice_orthogonal.instance(config)
    pairs = np.arange(inst["s"].size)
    weights = np.full(pairs.size, 1.0 / pairs.size)
    run = {"pairs": pairs, "weights": weights, "eta0_matches_semi": np.array(True)}
    for mode in odice_orthogonal.MODES:
        r = odice_orthogonal._train(config, inst, pairs, weights, mode)
        run[f"theta_{mode}"] = r.theta[odice_orthogonal._recorded_steps(config)]
        run[f"direction_norm_{mode}"] = np.float64(r.direction_norm[-1])
    res = odice_orthogonal.aggregate([run, run], config)
    for mode in odice_orthogonal.MODES:
        assert np.all(res[f"err_ood_{mode}"] == 0) and np.all(res[f"err_in_{mode}"] == 0)
    assert res["not_converged"] == list(odice_orthogonal.MODES)  # 100 steps are too few
    ok, text = odice_orthogonal.verdict(res)
    assert ok and "NOT converged within the step budget" in text
    assert "0 wins, 0 losses, 2 ties" in text


def test_bad_config_exits_2(tmp_path, capsys):
    assert main(["check", "odice-orthogonal", "--config", "smoke", "--set", "ood_first=0",
                 "--out", str(tmp_path), "--no-progress"]) == 2
    assert "held-out block" in capsys.readouterr().err
