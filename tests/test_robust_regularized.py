"""The robust-regularized figure end to end: the instance, the verdict, planted errors."""
import math

import numpy as np
import pytest

from figures import robust_regularized as fig
from figures.cli import main
from tabular import backward_induction
from tabular.robust import robust_value_iteration
from figures.cli import EMPIRICAL_NOTE

SMOKE = fig.CONFIGS["smoke"]


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    """One output folder: the planted-error checks reuse the smoke runs (aggregate-only keys)."""
    return str(tmp_path_factory.mktemp("robust_regularized"))


def test_shift_family():
    p = SMOKE["p_trap"]
    for eps in (0.0, 0.1, 0.3):
        P = fig.trap_kernel(SMOKE, eps)
        assert np.allclose(P.sum(axis=-1), 1.0, rtol=0, atol=1e-15)
        assert P[0, 1, 1] == pytest.approx(p + eps * (1 - p), abs=1e-15)  # risky row moved
        assert P[0, 0, 0] == 1.0 and P[1, 0, 1] == P[1, 1, 1] == 1.0  # the others not


def test_instance_has_its_point():
    # The nominal optimum is risky at every step; the KL and chi2 robust optima play safe at
    # the first step, so robust learners have something to find.
    mdp = fig.trap_mdp(SMOKE)
    assert np.all(backward_induction(mdp).pi[:, 0] == fig.RISKY)
    for div in ("kl", "chi2"):
        assert robust_value_iteration(mdp, SMOKE["lam"], div).pi[0, 0] == fig.SAFE
    # The verdict's explanation for TV: its adversary can push the safe action into the trap
    # too, and its robust optimum is risky at every step.
    assert np.all(robust_value_iteration(mdp, SMOKE["lam"], "tv").pi[:, 0] == fig.RISKY)


def test_direct_minimisation_against_hand_values():
    V = np.array([3.0, 0.0])
    # TV from the deterministic safe row (1, 0): move everything to state 1 when V0 > lam,
    # at cost lam * 0.5 * (1 + 1) = lam per unit: min(3, 0 + lam).
    assert fig._direct_min(np.array([1.0, 0.0]), V, 1.0, "tv") == pytest.approx(1.0, abs=1e-10)
    # KL and chi2 cannot leave the support of (1, 0).
    for div in ("kl", "chi2"):
        assert fig._direct_min(np.array([1.0, 0.0]), V, 1.0, div) == 3.0
    # KL closed form -lam log E exp(-V/lam) on a full-support row
    p = np.array([0.5, 0.5])
    expected = -math.log(0.5 * math.exp(-3.0) + 0.5)
    assert fig._direct_min(p, V, 1.0, "kl") == pytest.approx(expected, abs=1e-9)


def test_check_smoke(out, capsys):
    assert main(["check", fig.NAME, "--config", "smoke", "--out", out, "--no-progress"]) == 0
    text = capsys.readouterr().out.removeprefix(EMPIRICAL_NOTE + "\n")
    assert "NOT SUPPORTED" not in text and "one-sided sign test p = " in text
    assert "Plain pessimistic VI is taken at its best beta = " in text
    assert "so the worst case is the largest shift eps = 0.3" in text


def test_pevi_beta_grid_reaches_the_always_safe_policy():
    """With beta = 16 the penalty dwarfs the values (<= H = 10), so plain pessimistic VI
    plays safe at every step: return H * r_safe = 6 under every shift (the safe row is not
    moved). R2PVI must beat this grid point, not only beta = 0.5."""
    config = {**SMOKE, "pevi_betas": [0.5, 16.0]}
    run = fig.run_one(config, np.random.SeedSequence(3))
    assert np.all(run["pi_pevi_b1"][:, 0] == fig.SAFE)
    assert np.allclose(run["return_pevi_b1"], SMOKE["H"] * SMOKE["r_safe"], rtol=0, atol=1e-12)
    # the small-beta learner is risky somewhere, so the shift lowers its return
    assert run["return_pevi_b0"][-1] < run["return_pevi_b0"][0] - 0.1


def test_best_beta_and_monotonicity_reach_the_verdict():
    from figures.runner import reproduce

    rep = reproduce(fig.NAME, "smoke", overrides={"n_runs": 2, "pevi_betas": [0.0, 16.0]},
                    progress=False)
    res = dict(rep.results)
    means = [float(np.mean(res[f"worst_pevi_b{i}"])) for i in range(2)]
    assert res["pevi_best_beta"] == [0.0, 16.0][int(np.argmax(means))]
    assert np.array_equal(res["worst_pevi"], res[f"worst_pevi_b{int(np.argmax(means))}"])
    # planted: a return that rises with eps is named in the verdict
    res["largest_increase_in_eps"] = 0.5
    assert "returns are NOT monotone in eps (largest increase 0.5)" in fig.verdict(res)[1]


@pytest.mark.parametrize("planted, failing", [
    ("tv_without_half", "tv closed form = direct minimisation"),
    ("tv_support_min", "tv closed form = direct minimisation"),
    ("kl_sign", "kl backup <= nominal expectation"),
])
def test_planted_closed_form_errors_are_caught(out, capsys, planted, failing):
    code = main(["check", fig.NAME, "--config", "smoke", "--set", f"planted_error={planted}",
                 "--out", out, "--no-progress"])
    text = capsys.readouterr().out.removeprefix(EMPIRICAL_NOTE + "\n")
    assert code == 1, text
    head = text.split(" failed).")[0]  # "NOT SUPPORTED (<failed claims>"
    assert head.startswith("NOT SUPPORTED (") and failing in head


@pytest.mark.parametrize("key, value, message", [
    ("eps_grid", "[0.1, 0.2]", "starting at 0"),
    ('divergences', '["kl", "hellinger"]', "divergences must be distinct names"),
    ("planted_error", "bogus", "planted_error must be one of"),
    ("lam", "0", "lam must be positive"),
])
def test_bad_configs_exit_2(key, value, message, tmp_path, capsys):
    assert main(["check", fig.NAME, "--config", "smoke", "--set", f"{key}={value}",
                 "--out", str(tmp_path), "--no-progress"]) == 2
    assert message in capsys.readouterr().err


def test_plot_draws_every_method():
    import matplotlib.pyplot as plt

    from figures.runner import reproduce

    rep = reproduce(fig.NAME, "smoke", overrides={"n_runs": 2}, progress=False)
    figure = fig.plot(rep.results)
    left, right = figure.axes
    assert len(right.get_xticklabels()) == len(rep.results["methods"]) == 6
    assert len(left.get_lines()) >= 6
    plt.close(figure)
