"""The noisy-verifier figure: smoke check, a planted identity error, and both outcomes of the empirical rule."""
import numpy as np

from figures import noisy_verifier as nv
from figures.cli import EMPIRICAL_NOTE, main


def test_check_smoke_exits_0(tmp_path, capsys):
    assert main(["check", "noisy-verifier", "--config", "smoke", "--out", str(tmp_path),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out.removeprefix(EMPIRICAL_NOTE + "\n")
    assert out.startswith("indicative only (3 seeds; at least 6")  # smoke: too few seeds
    assert "Asserted at every step" in out and "E[g_forward] = E[g_uncorrected]" in out


def test_planted_identity_exits_1(tmp_path, capsys):
    """Claiming the forward update equals the unbiased backward one fails by 1 - rho0 - rho1."""
    code = main(["check", "noisy-verifier", "--config", "smoke", "--set",
                 "identity_against=backward", "--set", "n_runs=1", "--set", "n_steps=2",
                 "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out.removeprefix(EMPIRICAL_NOTE + "\n")
    assert code == 1, out
    assert out.startswith("NOT SUPPORTED") and "E[g_forward] = E[g_backward]" in out


def test_identity_errors_at_base_policy_and_planted_gap():
    config = {**nv.CONFIGS["smoke"], "P": 2, "depth": 2}
    tree, base = nv.build_instance(config, np.random.default_rng(3))
    methods = nv._methods(config)
    assert np.all(nv.identity_errors(tree, base, methods, 4, config) <= nv.RTOL)
    planted = nv.identity_errors(tree, base, methods, 4, {**config, "identity_against": "backward"})
    # E[g_F] - E[g_B] = (1 - rho0 - rho1 - 1) E[g_clean]: relative error rho0 + rho1 = 0.6
    assert abs(planted[0] - (config["rho0"] + config["rho1"])) < 1e-12


def test_chunked_checks_cover_every_kth_and_last_step():
    config = {**nv.CONFIGS["smoke"], "P": 2, "depth": 2, "n_steps": 7, "check_every": 3}
    out = nv.run_one(config, 5)
    assert out["checked_steps"].tolist() == [0, 3, 6, 7]
    assert out["acc_forward"].shape == (8, 2) and out["identity_err"].shape == (4, 3)
    assert np.all(out["identity_err"] <= nv.RTOL)


def _fake_run(final, steps=4, P=3):
    run = {"identity_err": np.zeros((steps + 1, 3)), "checked_steps": np.arange(steps + 1)}
    for m in nv.METHODS:
        acc = np.full((steps + 1, P), 0.1)
        acc[-1] = final.get(m, 0.2)
        run[f"acc_{m}"] = acc
    return run


def test_empirical_rule_says_both_ways():
    config = {**nv.CONFIGS["smoke"], "n_steps": 4}
    better = [_fake_run({"backward": 0.3, "forward": 0.25}) for _ in range(8)]
    ok, text = nv.verdict(nv.aggregate(better, config))
    assert ok is True and text.startswith("reproduced:"), text  # 8/8 each: p = 1/256
    # forward ties uncorrected in one seed: 7/8, p = 9/256 > 0.025, a tie is no win
    mixed = better[:7] + [_fake_run({"backward": 0.3, "forward": 0.2})]
    ok, text = nv.verdict(nv.aggregate(mixed, config))
    assert ok is True and text.startswith("not reproduced in this toy"), text
    ok, text = nv.verdict(nv.aggregate(better[:5], config))
    assert ok is True and text.startswith("indicative only (5 seeds")
