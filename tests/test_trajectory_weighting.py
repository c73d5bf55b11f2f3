"""The trajectory-weighting figure: instance values, the sub-claims' tests, smoke verdict, planted errors, config errors."""
import math

import numpy as np
import pytest

from figures import trajectory_weighting as tw
from figures.cli import main
from figures.cli import EMPIRICAL_NOTE


@pytest.mark.parametrize("K, L, B, q", [(10, 10, 5.0, 0.3), (3, 4, 0.0, 0.5)])
def test_reference_returns_match_closed_forms(K, L, B, q):
    # J* = mean start bonus B/2 + L (action 1 on every chain step); the low behaviour earns q L.
    mdp = tw.start_bonus_chain(K, L, B)
    assert mdp.H == L + 1 and mdp.S == K + L + 1
    J_star, J_low = tw.reference_returns({"K": K, "L": L, "start_bonus": B, "q_low": q})
    assert J_star == pytest.approx(B / 2 + L, rel=1e-14)
    assert J_low == pytest.approx(B / 2 + q * L, rel=1e-14)


def test_sign_test_closed_form():
    assert tw.sign_test_p(np.ones(10)) == pytest.approx(2.0 ** -10, rel=1e-12)
    assert tw.sign_test_p(np.zeros(4)) == 1.0
    # 9 positive of 10 (zeros dropped): P(X >= 9) = 11 / 1024.
    assert tw.sign_test_p(np.r_[np.ones(9), -1.0, 0.0]) == pytest.approx(11 / 1024, rel=1e-12)


def test_sweep_tests_detect_a_rise_and_a_fall():
    # Scores falling in alpha on 10 seeds: the rise has p = 2^-10, no fall (p = 1).
    falling = np.tile([0.9, 0.5, 0.1], (10, 1))
    p_rise, p_fall = tw._sweep_tests(falling)
    assert p_rise == pytest.approx(2.0 ** -10, rel=1e-12) and p_fall.tolist() == [1.0, 1.0]
    # Planted error: scores rising in alpha; every neighbouring pair is a fall as alpha -> 0.
    p_rise, p_fall = tw._sweep_tests(falling[:, ::-1])
    assert p_rise == 1.0 and np.allclose(p_fall, 2.0 ** -10, rtol=1e-12)


def test_rpsv_within_shares_closed_form_and_planted_sign():
    rng = np.random.default_rng(0)
    rpsv = rng.permutation(10)[:, None] + 100.0 * np.arange(3)  # (10 seeds, 3 shares)
    # Gain a monotone function of RPSV within each share: every rho = 1, Z = sqrt(9 * 3).
    Z, p, K = tw.rpsv_within_shares(rpsv, np.sqrt(rpsv))
    assert K == 3 and Z == pytest.approx(math.sqrt(27), rel=1e-12)
    assert p == pytest.approx(0.5 * math.erfc(math.sqrt(27) / math.sqrt(2)), rel=1e-9)
    # Planted error: the gain decreasing in RPSV must not count as support.
    Z, p, _ = tw.rpsv_within_shares(rpsv, -rpsv)
    assert Z == pytest.approx(-math.sqrt(27), rel=1e-12) and p > 0.999
    # A share where the gain is constant is left out; all constant: not testable.
    gain = np.sqrt(rpsv)
    gain[:, 0] = 1.0
    assert tw.rpsv_within_shares(rpsv, gain)[2] == 2
    assert tw.rpsv_within_shares(rpsv, np.ones_like(rpsv))[2] == 0


def test_reproduce_smoke(tmp_path, capsys):
    assert main(["reproduce", "trajectory-weighting", "--config", "smoke", "--out",
                 str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out.removeprefix(EMPIRICAL_NOTE + "\n")
    assert out.startswith("reproduced: ") and "520 of 520 checks hold" in out
    assert "Sheet's alpha sweep" in out and "Paper's RPSV claim, tested within shares" in out
    for name in ("trajectory-weighting.png", "results.json", "verdict.txt"):
        assert (tmp_path / name).stat().st_size > 0


def test_reversed_weights_are_caught(tmp_path, capsys):
    """Planted error: weights decreasing in the return must break the asserted E_w[G] >= mean G."""
    code = main(["check", "trajectory-weighting", "--config", "smoke", "--set", "weight_sign=-1.0",
                 "--set", "n_runs=3", "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out.removeprefix(EMPIRICAL_NOTE + "\n")
    assert code == 1, out
    assert out.startswith("NOT SUPPORTED") and "0 of 78 checks hold" in out


@pytest.mark.parametrize("alpha, head", [("0.1", "reproduced: "),
                                         ("1e6", "not reproduced in this toy: ")])
def test_nearly_uniform_weights_are_not_reproduced(tmp_path, capsys, alpha, head):
    """alpha = 1e6 makes the weights nearly uniform: the sign test, which rejects at the
    paper's alpha = 0.1 on the same seeds, must answer "not reproduced in this toy" with exit
    0 (the asserted inequality still holds). 20 seeds: enough for p = 2^-20 < 1e-3 / 4."""
    code = main(["check", "trajectory-weighting", "--config", "smoke", "--set", f"alpha={alpha}",
                 "--set", "shares=[0.05, 0.5]", "--set", "sweep_alphas=[1.0, 10.0]",
                 "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out.removeprefix(EMPIRICAL_NOTE + "\n")
    assert code == 0, out
    assert out.startswith(head)


@pytest.mark.parametrize("setting, message", [
    ("sweep_alphas=[1.0]", "sweep_alphas must hold at least two increasing values"),
    ("shares=[0.001]", "round(share * N) >= 1"),
    ("weight_sign=2.0", "weight_sign must be 1.0 or -1.0"),
    ("q_low=1.0", "q_low must lie in [0, 1)"),
])
def test_bad_config_exits_2(tmp_path, capsys, setting, message):
    assert main(["check", "trajectory-weighting", "--config", "smoke", "--set", setting,
                 "--out", str(tmp_path), "--no-progress"]) == 2
    assert message in capsys.readouterr().err
