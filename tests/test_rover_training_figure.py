"""The rover-training figure: smoke check, a planted stale pi_old, and the empirical rule saying "not reproduced"."""
import numpy as np

from figures import rover_training
from figures.cli import EMPIRICAL_NOTE, main

SHORT = ["--set", "steps=4", "--set", "checkpoints=[0, 2, 4]", "--set", "record_every=2",
         "--set", "n_seeds=1"]


def test_strategies_have_unequal_densities():
    config = rover_training.CONFIGS["paper"]
    C = rover_training.correct_leaves(config)
    V, D = config["V"], config["D"]
    per_node = C.reshape(config["P"], V ** (D - 3), V**3).sum(axis=2)
    for row in per_node:  # one node with V^2, one with V, one with 1 correct leaf, others 0
        assert sorted(row[row > 0].tolist()) == [1, V, V**2]


def test_check_smoke_then_rule_says_not_reproduced(tmp_path, capsys):
    code = main(["check", "rover-training", "--config", "smoke", "--out", str(tmp_path),
                 "--no-progress"])
    out = capsys.readouterr().out.removeprefix(EMPIRICAL_NOTE + "\n")
    assert code == 0, out
    assert out.startswith(("reproduced:", "not reproduced in this toy:",
                           "not reproduced in this toy (difference within noise):"))
    assert "Asserted, exact: first-step identity" in out
    # pass1_tol = 0 (an aggregate key: the runs are reused) demands equal pass@1: rule fails
    code = main(["check", "rover-training", "--config", "smoke", "--set", "pass1_tol=0",
                 "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out.removeprefix(EMPIRICAL_NOTE + "\n")
    assert code == 0, out
    assert "reused" in out
    assert out.startswith("not reproduced in this toy")
    assert "|pass@1 gap| <= 0: False" in out


def test_planted_stale_pi_old_is_caught(tmp_path, capsys):
    """Training batches from the base policy (pi_old not refreshed): the identity fails on the
    first inner step of iteration 2, inside the training loop."""
    code = main(["check", "rover-training", "--config", "smoke", "--set", "stale_pi_old=true",
                 *SHORT, "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out.removeprefix(EMPIRICAL_NOTE + "\n")
    assert code == 1, out
    assert out.startswith("NOT SUPPORTED (asserted: first-step identity")


def test_identity_is_checked_in_the_training_loop_without_changing_it():
    """The identity gaps come from the training batches (one per checkpoint iteration before
    the last) and the check draws nothing: other checkpoints give the same trajectory."""
    config = {**rover_training.CONFIGS["smoke"], "method": "rover", "steps": 4,
              "record_every": 2, "checkpoints": [0, 2, 4]}
    out = rover_training.run_one(config, np.random.default_rng(0))
    assert out["identity_gap"].shape == (2,) and out["identity_gap"].max() <= rover_training.TOL
    other = rover_training.run_one({**config, "checkpoints": [0, 4], "record_every": 2},
                                   np.random.default_rng(0))
    assert other["identity_gap"].shape == (1,)
    np.testing.assert_array_equal(other["p"], out["p"])


def test_welch_rule_levels():
    """Welch one-sided: clearly separated samples are significant, overlapping ones are not."""
    hi, lo = [1.0, 1.1, 0.9, 1.05], [0.0, 0.1, -0.1, 0.05]
    assert rover_training.welch_one_sided(hi, lo, 0.025)[:2] == (True, False)
    assert rover_training.welch_one_sided(lo, hi, 0.025)[:2] == (False, True)
    assert rover_training.welch_one_sided([0.0, 1.0], [0.1, 0.9], 0.025)[:2] == (False, False)
    assert rover_training.welch_one_sided([1.0], [0.0], 0.025)[:2] == (False, False)
