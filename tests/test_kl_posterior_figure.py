"""The kl-posterior figure end to end: verdict, exit codes, and a planted error for each
kind of asserted claim (the exp(beta r) convention in the recursion, in the frontier's log Z,
and gradient steps of the wrong sign)."""
import numpy as np
import pytest

from figures import kl_posterior
from figures.cli import main


def test_instance_has_five_percent_correct_leaves():
    config = {**kl_posterior.CONFIGS["smoke"], "n_prompts": 3}
    tree, base = kl_posterior.instance(config, seed=1)
    assert np.array_equal(tree.correct.sum(axis=1), [51, 51, 51])  # round(0.05 * 1024)
    assert base.c == 1.0 and np.all(base.z_shared == 0) and base.parts == ("z_prompt",)


def test_reproduce_smoke_supported_and_writes_figure(tmp_path, capsys):
    assert main(["reproduce", "kl-posterior", "--config", "smoke", "--set", "ascent_steps=30",
                 "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("SUPPORTED (all 8 claims hold)")
    assert "ascent_monotone: exact gradient ascent" in out
    for name in ("kl-posterior.png", "kl-posterior.pdf", "results.json", "verdict.txt"):
        assert (tmp_path / name).stat().st_size > 0


def test_exp_beta_r_convention_is_caught(tmp_path, capsys):
    """Planted: recursion and soft policy iteration with exp(beta r): exit 1."""
    code = main(["check", "kl-posterior", "--config", "smoke", "--set", "plant=exp_beta_r",
                 "--set", "ascent_steps=2", "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert out.startswith("NOT SUPPORTED (factor_error, spi_kl")


@pytest.mark.parametrize("plant, claim", [("frontier_exp_beta_r", "frontier"),
                                          ("ascent_descent", "ascent_monotone")])
def test_ascent_claims_catch_their_planted_errors(plant, claim):
    config = {**kl_posterior.CONFIGS["smoke"], "n_prompts": 2, "ascent_steps": 3,
              "plant": plant}
    results = kl_posterior.aggregate([kl_posterior.run_one(config, 0)], config)
    ok, text = kl_posterior.verdict(results)
    assert ok is False and text.startswith(f"NOT SUPPORTED ({claim} failed)"), text
