"""The rover-tree figure end to end: verdict, exit codes, one planted error per asserted
identity, the empirical rule failing under a planted error, the instance."""
import numpy as np
import pytest

from figures import rover_tree
from figures.cli import main


def test_instance_has_strategies_of_16_4_and_1_leaves():
    tree, label = rover_tree.strategy_tree(5, seed=3)
    for x in range(5):
        assert [int((label[x] == k).sum()) for k in (1, 2, 3)] == [16, 4, 1]
        prefixes = {int(y) // 64 for y in np.flatnonzero(label[x])}
        assert len(prefixes) == 3  # three distinct depth-3 strategy nodes
    assert np.array_equal(tree.correct, label > 0)


def test_reproduce_smoke_supported_and_writes_figure(tmp_path, capsys):
    assert main(["reproduce", "rover-tree", "--config", "smoke", "--out", str(tmp_path),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("SUPPORTED") and "trade-off reproduced" in out
    assert "audit 0.993/1.2%" in out and "audit 0.71/11%" in out
    for name in ("rover-tree.png", "rover-tree.pdf", "results.json", "verdict.txt"):
        assert (tmp_path / name).stat().st_size > 0


def test_missing_one_over_V_is_caught(tmp_path, capsys):
    """Planted: Q_u by the sum recursion (no 1/V) fails the closed-form identity (exit 1),
    and the audit's trade-off rule is then not met either."""
    code = main(["check", "rover-tree", "--config", "smoke", "--set", "plant=no_1_over_V",
                 "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert out.startswith("NOT SUPPORTED (Q_u closed form failed)")
    assert "trade-off not reproduced in this toy" in out


@pytest.mark.parametrize("plant, claim", [("q_star_by_mean", "sign lemma"),
                                          ("tie_tol", "greedy optimal"),
                                          ("greedy_over_q_star", "graded counterexample")])
def test_each_identity_catches_its_planted_error(plant, claim):
    config = {**rover_tree.CONFIGS["smoke"], "n_prompts": 2, "plant": plant}
    ok, text = rover_tree.verdict(rover_tree.aggregate([rover_tree.run_one(config, 0)], config))
    assert ok is False and text.startswith(f"NOT SUPPORTED ({claim} failed)"), text


def test_rule_needs_its_temperatures():
    with pytest.raises(ValueError, match=r"missing \[0.01\]"):
        rover_tree.validate_config({**rover_tree.CONFIGS["smoke"],
                                    "rhos": [0.001, 0.003, 0.1, 1.0]})
