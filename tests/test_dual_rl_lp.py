"""The dual-rl-lp figure end to end: verdict, exit codes and the planted errors."""
import numpy as np
import pytest

from figures import dual_rl_lp
from figures.cli import main


def test_check_smoke_supported(tmp_path, capsys):
    assert main(["check", "dual-rl-lp", "--config", "smoke", "--out", str(tmp_path),
                 "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith("SUPPORTED")


def test_wrong_discount_in_the_flow_constraint_is_caught(tmp_path, capsys):
    code = main(["check", "dual-rl-lp", "--config", "smoke", "--set", "flow_gamma_scale=0.98",
                 "--set", "n_mdps=3", "--set", "divergences=[\"chi2\"]", "--out", str(tmp_path),
                 "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert out.startswith("NOT SUPPORTED") and "LP over d: value and gap" in out.split("failed")[0]


def test_reward_offset_in_the_lp_keeps_the_policy_but_fails_the_value(tmp_path, capsys):
    code = main(["check", "dual-rl-lp", "--config", "smoke", "--set", "lp_reward_offset=1e-6",
                 "--set", "n_mdps=3", "--set", "divergences=[\"chi2\"]", "--set", "n_a=3",
                 "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1, out
    failed = out.split("failed")[0]
    assert "LP over d: value and gap" in failed and "LP over V: value and gap" in failed
    assert "optimal policy" not in failed


def fake_runs(n_failed):
    """Real runs of 3 MDPs and a short chi2 path, with the first n_failed MDPs' solves
    marked as failed (as a solver error would leave them)."""
    config = {**dual_rl_lp.CONFIGS["smoke"], "n_mdps": 3, "n_a": 3, "divergences": ["chi2"]}
    out = [dual_rl_lp.run_one({**config, **run}, seed)
           for seed, run in enumerate(dual_rl_lp.runs(config))]
    for run in out[:n_failed]:
        for over in ("d", "V"):
            run[f"ok_{over}"], run[f"status_{over}"] = False, "solver_error"
            for key in dual_rl_lp._LP_KEYS:
                run[f"{key}_{over}"] = np.nan
    return out, config


@pytest.mark.parametrize("n_failed", [1, 3])
def test_solver_failures_make_the_verdict_undecidable(n_failed):
    out, config = fake_runs(n_failed)
    ok, text = dual_rl_lp.verdict(dual_rl_lp.aggregate(out, config))
    assert ok is None, text
    assert f"on {n_failed} of 3 MDPs (status solver_error)" in text
    if n_failed == 3:
        assert "LP over d: optimal policy" not in text


def test_reward_sign_error_breaks_monotonicity(tmp_path, capsys):
    code = main(["check", "dual-rl-lp", "--config", "smoke", "--set", "reward_sign=-1",
                 "--set", "n_mdps=1", "--set", "divergences=[\"kl\"]", "--out", str(tmp_path),
                 "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "kl: monotone in a_reg" in out.split("failed")[0]


def test_plot_draws_the_three_panels():
    import matplotlib.pyplot as plt

    from figures.runner import reproduce

    rep = reproduce("dual-rl-lp", "smoke", overrides={"n_mdps": 2, "n_a": 4}, progress=False)
    assert rep.ok
    fig = dual_rl_lp.plot(rep.results)
    assert len(fig.axes) == 3
    plt.close(fig)


def test_grid_world_and_behaviour_occupancy():
    config = dual_rl_lp.CONFIGS["smoke"]
    mdp = dual_rl_lp.grid_world(config)
    assert (mdp.S, mdp.A, mdp.gamma) == (64, 4, 0.95)
    assert mdp.mu0[0] == 1.0 and mdp.terminal[-1] and mdp.terminal.sum() == 1
    # Entering the goal pays 1: from the cell above it, "down" succeeds w.p. 1 - slip.
    assert mdp.R[55, 2] == pytest.approx(1 - config["slip"])
    np.testing.assert_allclose(dual_rl_lp.a_grid(config)[[0, -1]], [1e-3, 100.0])


def test_bad_config_is_rejected():
    for key, value in (("n_a", 1), ("gamma", 1.0), ("divergences", ["js"]), ("reward_sign", 2.0)):
        with pytest.raises(ValueError, match=key):
            dual_rl_lp.validate_config({**dual_rl_lp.CONFIGS["smoke"], key: value})
