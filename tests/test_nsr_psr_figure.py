"""The nsr-psr figure: smoke check, a planted wrong NSR advantage, and the empirical rule saying "not reproduced"."""
from figures.cli import EMPIRICAL_NOTE, main

SHORT = ["--set", "steps=10", "--set", "checkpoints=[0, 10]", "--set", "n_seeds=1"]


def test_check_smoke_exits_0(tmp_path, capsys):
    code = main(["check", "nsr-psr", "--config", "smoke", "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out.removeprefix(EMPIRICAL_NOTE + "\n")
    assert code == 0, out
    assert out.startswith(("reproduced:", "not reproduced in this toy:",
                           "not reproduced in this toy (difference within noise):"))
    assert "[plain] psr pass@1" in out
    assert "lr_prompt = lr P = 4 on z_prompt" in out  # smoke: lr 0.5, P = 8


def test_planted_nsr_with_positive_reward_is_caught(tmp_path, capsys):
    """'NSR' that also rewards correct samples (W with lambda = 1) breaks E g_NSR = E g_PSR."""
    code = main(["check", "nsr-psr", "--config", "smoke", "--set", "nsr_lambda=1.0", *SHORT,
                 "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out.removeprefix(EMPIRICAL_NOTE + "\n")
    assert code == 1, out
    assert out.startswith("NOT SUPPORTED (asserted identity failed")


def test_rule_says_not_reproduced_without_learning(tmp_path, capsys):
    """lr = 1e-6 cannot put PSR's pass@k_max 0.01 below NSR's: rule (b) fails, exit 0; the
    difference is significantly below the margin, so not "within noise"."""
    code = main(["check", "nsr-psr", "--config", "smoke", "--set", "lr=1e-6", *SHORT,
                 "--set", "n_seeds=2", "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out.removeprefix(EMPIRICAL_NOTE + "\n")
    assert code == 0, out
    assert out.startswith("not reproduced in this toy:")
    assert "PSR's + 0.01: False (p = 1)" in out


def test_subset_variant_runs(tmp_path, capsys):
    """The subset presets (token mean over kept samples) run through the figure."""
    code = main(["check", "nsr-psr", "--config", "smoke", *SHORT, "--set",
                 'variants=["plain", "subset"]', "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out.removeprefix(EMPIRICAL_NOTE + "\n")
    assert code == 0, out
    assert "[subset] psr pass@1" in out and "Asserted, exact" in out


def test_rare_third_and_common_rest():
    """Exactly round(P/3) prompts have only rare correct leaves (q < 1e-3), the others none."""
    import numpy as np

    from figures import nsr_psr
    from tabular.tree import leaf_probs
    config = nsr_psr.CONFIGS["smoke"]
    tree, policy = nsr_psr.build_instance(config)
    q = leaf_probs(tree, policy.pi(tree))[0]
    rare = (tree.correct & (q < 1e-3)).sum(axis=1)
    n_c = tree.correct.sum(axis=1)
    assert np.all(n_c == round(0.05 * 4**config["D"]))
    assert sorted(rare.tolist()) == [0] * (8 - 3) + [n_c[0]] * 3
