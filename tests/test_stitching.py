"""The stitching figure: smoke verdict, planted error, exact final-state helper, config errors."""
import numpy as np
import pytest

from figures import stitching
from figures.cli import main
from tabular import backward_induction
from tabular.mixed_data import STITCH_STATES, stitching_mdp
from figures.cli import EMPIRICAL_NOTE


def test_final_state_of_the_optimal_policy_is_E():
    mdp = stitching_mdp()
    pi = backward_induction(mdp).pi
    np.testing.assert_array_equal(stitching._final_state(mdp, pi), np.eye(mdp.S)[STITCH_STATES["E"]])
    # Uniform policy: A -> B w.p. 1/2 (else T), then E w.p. 1/2.
    d = stitching._final_state(mdp, np.full((mdp.S, mdp.A), 0.5))
    assert d[STITCH_STATES["E"]] == 0.25 and d[STITCH_STATES["T"]] == 0.5


def test_reproduce_smoke(tmp_path, capsys):
    assert main(["reproduce", "stitching", "--config", "smoke", "--out", str(tmp_path),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out.removeprefix(EMPIRICAL_NOTE + "\n")
    assert out.startswith("reproduced: ") and "RCSL (clipped target) 0/100" in out
    # The finding: without clipping, RCSL stitches on this graph.
    assert "RCSL (unclipped, nearest return) 100/100" in out and "Finding: unclipped RCSL" in out
    assert (tmp_path / "stitching.png").stat().st_size > 0


def test_raised_threshold_is_caught(tmp_path, capsys):
    """Planted error: a threshold no rollout beats leaves MBRCSL as plain RCSL: exit 1."""
    code = main(["check", "stitching", "--config", "smoke", "--set", "threshold_offset=1.0",
                 "--set", "n_runs=5", "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out.removeprefix(EMPIRICAL_NOTE + "\n")
    assert code == 1, out
    assert out.startswith("NOT SUPPORTED") and "MBRCSL reaches E w.p. 1" in out


@pytest.mark.parametrize("setting, message", [
    ("share_from_A=1.0", "share_from_A must lie in (0, 1)"),
    ("n_rollouts=0", "n_rollouts must be a positive int"),
])
def test_bad_config_exits_2(tmp_path, capsys, setting, message):
    assert main(["check", "stitching", "--config", "smoke", "--set", setting, "--out",
                 str(tmp_path), "--no-progress"]) == 2
    assert message in capsys.readouterr().err
