"""The passk-exact figure end to end: verdict, exit codes, planted error, the instance."""
import numpy as np
import pytest

from figures import passk_exact as fig
from figures.cli import main
from figures.runner import resolve_config
from tabular.tree import leaf_probs


def test_check_smoke_supported(tmp_path, capsys):
    assert main(["check", "passk-exact", "--config", "smoke", "--out", str(tmp_path),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("SUPPORTED") and "EMPIRICAL" in out


def test_plug_in_estimator_is_caught(tmp_path, capsys):
    """Planted error: the biased estimator 1 - (1 - c/n)^k fails the unbiasedness identity."""
    code = main(["check", "passk-exact", "--config", "smoke", "--set", "estimator=plug_in",
                 "--set", "steps=2", "--set", "checkpoints=[0, 2]", "--out", str(tmp_path),
                 "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert out.startswith("NOT SUPPORTED (estimator exactly unbiased failed).")


def test_optima_solved_at_the_wrong_coefficient_are_caught(tmp_path, capsys):
    """Planted error: optima solved at coef/2 but checked at coef: stationarity fails for all
    three divergences, and nothing else does."""
    code = main(["check", "passk-exact", "--config", "smoke", "--set", "optimum_solve_scale=0.5",
                 "--set", "steps=2", "--set", "checkpoints=[0, 2]", "--out", str(tmp_path),
                 "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1, out
    failed = ", ".join(f"{kind} optima: stationarity, support, dominance" for kind in fig.OPTIMA)
    assert out.startswith(f"NOT SUPPORTED ({failed} failed).")


def test_instance_matches_the_sheet():
    config = resolve_config(fig, "smoke")
    tree, policy, masked = fig.build_instance(config)
    q = leaf_probs(tree, policy.pi(tree))
    V, D, t = config["V"], config["D"], config["family_depth"]
    family = np.all(tree.correct.reshape(tree.n_prompts, V**t, V ** (D - t)), axis=2)
    with_family = family.any(axis=1)
    assert with_family.sum() == round(config["family_share"] * config["P"])
    assert np.all(q[np.arange(tree.n_prompts), masked] == 0.0)  # the leash: behind -inf
    assert np.all(tree.correct[np.arange(tree.n_prompts), masked])
    private = tree.correct.copy()
    private[:, np.repeat(family.any(axis=0), V ** (D - t))] = False
    private[np.arange(tree.n_prompts), masked] = False
    counts = private.sum(axis=1)
    assert np.all((counts >= 1) & (counts <= config["private_max"]))
    assert np.all((q[private] > config["private_lo"]) & (q[private] < config["private_hi"]))


def test_bad_config():
    config = resolve_config(fig, "smoke")
    with pytest.raises(ValueError, match="estimator"):
        fig.validate_config({**config, "estimator": "biased"})
    with pytest.raises(ValueError, match="checkpoints"):
        fig.validate_config({**config, "checkpoints": [0, 10]})
    with pytest.raises(ValueError, match="k_max must be a power of 2"):
        fig.validate_config({**config, "k_max": 1000})
