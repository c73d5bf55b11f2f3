"""The brorl-mass-balance figure end to end: verdict, exit codes, planted error."""
import numpy as np
import pytest

from figures import brorl_mass_balance as fig
from figures.cli import main
from figures.runner import resolve_config


def test_check_smoke_supported(tmp_path, capsys):
    assert main(["check", "brorl-mass-balance", "--config", "smoke", "--out", str(tmp_path),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("SUPPORTED") and "EMPIRICAL" in out


def test_rewards_one_zero_in_the_formula_is_caught(tmp_path, capsys):
    """Planted error: the mass-balance formula evaluated with rewards 1/0 while the update used
    +1/-1 contradicts the identity: exit 1."""
    code = main(["check", "brorl-mass-balance", "--config", "smoke", "--set", "planted=rewards_1_0",
                 "--set", "n_draws=50", "--set", "Ns=[2, 64]", "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert out.startswith("NOT SUPPORTED ([0 head] mass-balance identity, [10 head] "
                          "mass-balance identity failed).")


def test_count_update_without_baseline_is_caught(tmp_path, capsys):
    """Planted error: the count update without its - (sum_n r_n) p part has another expected
    mass change; exactly that sub-claim fails, for both instances."""
    code = main(["check", "brorl-mass-balance", "--config", "smoke", "--set",
                 "planted=count_no_baseline", "--set", "n_draws=50", "--set", "Ns=[2, 64]",
                 "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert out.startswith("NOT SUPPORTED ([0 head] count-model expectation, [10 head] "
                          "count-model expectation failed).")


def test_instance_and_update_are_what_the_docstring_says():
    config = resolve_config(fig, "smoke")
    for h in config["heads"]:
        p, correct = fig.instance(config, h)
        assert p.shape == (1000,) and correct.sum() == 50
        median = np.median(np.log(p))
        assert np.sum(correct & (np.log(p) > median)) == h



def test_set_update_counts_a_repeated_token_once():
    """On a draw where some token is sampled twice or more, the set model's change is
    1_C^T J dz with dz = (eta/N) J (r * 1[sampled]) (written out here), and the count model's
    uses dz = (eta/N) sum_n r_n (e_{a_n} - p), one term per rollout: the two differ."""
    config = {**resolve_config(fig, "smoke"), "n_head": 10, "N": 16, "n_draws": 20}
    eta, N = config["eta"], config["N"]
    p, correct = fig.instance(config, 10)
    counts = fig.draw_counts(config, 3)
    run = fig.run_one(config, 3)
    J = np.diag(p) - np.outer(p, p)
    r = np.where(correct, 1.0, -1.0)
    repeated = np.flatnonzero((counts >= 2).any(axis=1))
    assert repeated.size > 0
    for i in repeated:
        sampled = (counts[i] > 0).astype(float)
        set_change = (J @ (eta / N * J @ (r * sampled)))[correct].sum()
        rollouts = np.repeat(np.arange(p.size), counts[i])
        dz_count = eta / N * sum(r[a] * (np.eye(p.size)[a] - p) for a in rollouts)
        count_change = (J @ dz_count)[correct].sum()
        assert run["direct"][i] == pytest.approx(set_change, rel=1e-12, abs=1e-18)
        assert run["count_change"][i] == pytest.approx(count_change, rel=1e-12, abs=1e-18)
        assert abs(set_change - count_change) > 1e-6 * abs(count_change)


def test_bad_config():
    with pytest.raises(ValueError, match="R_c >= 0 >= R_w"):
        fig.validate_config({**resolve_config(fig, "smoke"), "R_w": 0.5})
    with pytest.raises(ValueError, match="planted"):
        fig.validate_config({**resolve_config(fig, "smoke"), "planted": "other"})
