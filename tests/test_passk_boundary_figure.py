"""The passk-boundary figure: smoke check, a planted leak of masked leaves, and the empirical rule saying "not reproduced"."""
from figures.cli import EMPIRICAL_NOTE, main

SHORT = ["--set", "steps=20", "--set", "checkpoints=[0, 20]"]


def test_check_smoke_exits_0(tmp_path, capsys):
    code = main(["check", "passk-boundary", "--config", "smoke", "--out", str(tmp_path),
                 "--no-progress"])
    out = capsys.readouterr().out.removeprefix(EMPIRICAL_NOTE + "\n")
    assert code == 0, out
    assert out.startswith(("reproduced: crossing", "not reproduced in this toy: crossing"))
    assert "base-zero leaves stay at 0: largest trained probability on leaves with q = 0: 0;" in out


def test_planted_mask_leak_is_caught(tmp_path, capsys):
    """A logit floor applied inside the training loop (after each step) leaks mass: exit 1."""
    code = main(["check", "passk-boundary", "--config", "smoke", "--set", "train_logit_floor=-20",
                 *SHORT, "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out.removeprefix(EMPIRICAL_NOTE + "\n")
    assert code == 1, out
    assert out.startswith("NOT SUPPORTED") and "base-zero leaves stay at 0" in out.split(".")[0]


def test_rule_says_not_reproduced_without_learning(tmp_path, capsys):
    """lr = 1e-6 cannot raise pass@1 by the rule's margin 0.01: "not reproduced", exit 0."""
    code = main(["check", "passk-boundary", "--config", "smoke", "--set", "lr=1e-6", *SHORT,
                 "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out.removeprefix(EMPIRICAL_NOTE + "\n")
    assert code == 0, out
    assert out.startswith("not reproduced in this toy: crossing not reproduced")


def test_floor_leaks_only_after_a_training_step():
    """The planted floor acts in the loop: at step 0 masked leaves are still exactly 0."""
    import numpy as np

    from figures import passk_boundary
    config = {**passk_boundary.CONFIGS["smoke"], "steps": 1, "checkpoints": [0, 1],
              "record_every": 1, "train_logit_floor": -20.0}
    out = passk_boundary.run_one(config, np.random.default_rng(0))
    assert out["zero_max"][0] == 0.0 and out["zero_max"][1] > 0.0


def test_bad_config_is_rejected(tmp_path, capsys):
    code = main(["check", "passk-boundary", "--config", "smoke", "--set", "checkpoints=[0, 7, 60]",
                 "--out", str(tmp_path), "--no-progress"])
    assert code == 2
    assert "checkpoints" in capsys.readouterr().err
