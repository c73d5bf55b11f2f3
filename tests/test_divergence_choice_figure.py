"""The divergence-choice figure: smoke check, a planted closed-form error, and both outcomes of the empirical rule."""
import numpy as np

from figures import divergence_choice as dc
from figures.cli import EMPIRICAL_NOTE, main


def test_check_smoke_exits_0(tmp_path, capsys):
    assert main(["check", "divergence-choice", "--config", "smoke", "--out", str(tmp_path),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out.removeprefix(EMPIRICAL_NOTE + "\n")
    assert out.startswith("indicative only (3 seeds; at least 6")  # smoke: too few seeds
    assert "max relative error" in out


def test_planted_reach_error_exits_1(tmp_path, capsys):
    """Closed form with the current policy's reach instead of pi0's: the identity fails."""
    code = main(["check", "divergence-choice", "--config", "smoke", "--set",
                 "closed_form_reach=pi_theta", "--set", "n_runs=1", "--set", "n_steps=4",
                 "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out.removeprefix(EMPIRICAL_NOTE + "\n")
    assert code == 1, out
    assert out.startswith("NOT SUPPORTED") and "rehearsal-gradient identity" in out


def _fake_run(pef_final, P=6, steps=3):
    """A run whose D_pef (prompts 0, 1) ends at ``pef_final[method]``; D_exp 2..4, held 5."""
    pef = np.zeros(P, bool); pef[:2] = True
    exp = np.zeros(P, bool); exp[2:5] = True
    run = {"pef": pef, "exp": exp, "held": ~(pef | exp), "near_design": pef.copy(),
           "base_acc": np.full(P, 0.9), "base_passk": np.full((P, 2), 0.95),
           "err_forward": np.zeros(2), "err_js_at_pi0": 0.0}
    for m in dc.METHODS:
        acc = np.full((steps + 1, P), 0.5)
        acc[-1, :2] = pef_final.get(m, 0.5)
        run[f"acc_{m}"] = acc
        run[f"passk_{m}"] = np.full((P, 2), 0.9)
    return run


def test_sign_test_against_binomial_sums():
    """p = sum_{j >= w} C(n, j) / 2^n; all-wins reaches 0.025 from 6 seeds on."""
    from math import comb
    for n, w in ((8, 8), (8, 7), (8, 6), (3, 3), (6, 0)):
        assert abs(dc.sign_test_p(w, n) - sum(comb(n, j) for j in range(w, n + 1)) / 2 ** n) < 1e-15
    assert dc.min_seeds(0.025) == 6 and 2.0 ** -6 <= 0.025 < 2.0 ** -5


def test_empirical_rule_says_both_ways():
    config = {**dc.CONFIGS["smoke"], "ks": [1, 2], "n_steps": 3}
    wins = [_fake_run({"forward_kl": 0.6}) for _ in range(8)]
    ok, text = dc.verdict(dc.aggregate(wins, config))
    assert ok is True and text.startswith("reproduced:"), text  # 8/8: p = 1/256
    # 7/8 wins for forward KL (p = 9/256 > 0.025) and JS tied everywhere: not reproduced
    seven = wins[:7] + [_fake_run({"forward_kl": 0.4})]
    ok, text = dc.verdict(dc.aggregate(seven, config))
    assert ok is True and text.startswith("not reproduced in this toy"), text
    ok, text = dc.verdict(dc.aggregate(wins[:5], config))
    assert ok is True and text.startswith("indicative only (5 seeds")  # 2^-5 > 0.025
