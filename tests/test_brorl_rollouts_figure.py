"""The brorl-rollouts figure: matched steps, the second-order bound, smoke verdict, planted error, a "not reproduced" case."""
import numpy as np

from figures import brorl_rollouts as fig
from figures.cli import EMPIRICAL_NOTE, main


def _verdict(out: str) -> str:
    """The verdict text, after the CLI's note on empirical claims."""
    assert out.startswith(EMPIRICAL_NOTE + "\n"), out[:200]
    return out[len(EMPIRICAL_NOTE) + 1:]


def _small_case(seed):
    rng = np.random.default_rng(seed)
    z = 2.0 * rng.standard_normal(12)
    p = np.exp(z - z.max())
    p /= p.sum()
    correct = np.zeros(12, dtype=bool)
    correct[rng.choice(12, 4, replace=False)] = True
    return rng, p, correct


def test_both_models_tend_to_the_full_batch_step():
    """Set model with every token sampled, and the count model's expectation (its update is
    linear in the counts), both equal eta0 J r with J = diag(p) - p p^T built explicitly."""
    _, p, correct = _small_case(0)
    config = {"R_c": 1.0, "R_w": -1.0, "planted": "none"}
    r = np.where(correct, 1.0, -1.0)
    full = 0.7 * (np.diag(p) - np.outer(p, p)) @ r
    every = fig.update({**config, "model": "set"}, p, correct, np.full(12, 3), 0.7)
    assert np.allclose(every, full, rtol=0, atol=1e-14)
    N = 5
    expected = sum(p[k] * fig.update({**config, "model": "count"}, p, correct,
                                     N * np.eye(12, dtype=np.int64)[k], 0.7) for k in range(12))
    assert np.allclose(expected, full, rtol=0, atol=1e-14)


def test_step_scale_bounds_every_initial_set_step():
    config = {**fig.CONFIGS["smoke"], "model": "set"}
    p, correct, eta0 = fig.start(config, 0)
    rng = np.random.default_rng(1)
    for N in (1, 2, 16, 4096):
        counts = rng.multinomial(N, p)
        assert np.abs(fig.update(config, p, correct, counts, eta0)).max() <= 0.5 + 1e-12


def test_second_order_remainder_bound():
    """|Q(z + dz) - Q(z) - 1_C^T J dz| <= range(dz)^2 / 8, for random steps of every size."""
    for seed in range(200):
        rng, p, correct = _small_case(seed)
        dz = rng.standard_normal(12) * 10.0 ** rng.uniform(-3, 1)
        new = np.exp(np.log(p) + dz)
        new /= new.sum()
        exact = new[correct].sum() - p[correct].sum()
        first = (p * (dz - p @ dz))[correct].sum()
        assert abs(exact - first) <= np.ptp(dz) ** 2 / 8 + 1e-15


def test_check_smoke_exits_0(tmp_path, capsys):
    code = main(["check", fig.NAME, "--config", "smoke", "--out", str(tmp_path), "--no-progress"])
    out = _verdict(capsys.readouterr().out)
    assert code == 0, out
    assert out.startswith(("reproduced:", "not reproduced in this toy:"))


def test_set_update_without_baseline_is_caught(tmp_path, capsys):
    code = main(["check", fig.NAME, "--config", "smoke", "--set", "planted=set_no_baseline",
                 "--set", "n_steps=5", "--set", "n_seeds=1", "--out", str(tmp_path),
                 "--no-progress"])
    out = _verdict(capsys.readouterr().out)
    assert code == 1, out
    assert out.startswith("NOT SUPPORTED (mass-balance identity at every step failed)")


def test_rewards_one_zero_is_not_reproduced(tmp_path, capsys):
    """The audit's point: with R_w = 0 and no correct token sampled the update is 0, so at
    N = 2 the correct mass rarely falls; rule (a) needs a positive loss rate there."""
    code = main(["check", fig.NAME, "--config", "smoke", "--set", "R_w=0.0", "--set", "heads=[0]",
                 "--set", "n_steps=10", "--out", str(tmp_path), "--no-progress"])
    out = _verdict(capsys.readouterr().out)
    assert code == 0, out
    assert out.startswith("not reproduced in this toy:") and "(a) False" in out


def _fake_cell(rates, T=50):
    """A cell whose seeds lose correct mass on the first ``round(rate T)`` steps."""
    S = len(rates)
    exact = np.where(np.arange(T)[None, :] < np.round(np.array(rates) * T)[:, None], -1.0, 1.0)
    return {"exact": exact, "first": exact, "down": exact < 0, "Q_pos": np.ones((S, T + 1)),
            "min_correct": np.ones((S, T + 1)), "gained_all": np.ones(S, dtype=bool)}


def test_rule_b_uses_seed_standard_errors_with_bonferroni():
    """(b) flags an increase far beyond the seeds' spread, not one within it (rates by hand)."""
    config = {"n_seeds": 4, "n_steps": 50}
    low = [0.5, 0.52, 0.48, 0.5]
    for second, want in (([0.9, 0.92, 0.88, 0.9], False), ([0.5, 0.56, 0.46, 0.52], True)):
        cells = {m: [_fake_cell(low), _fake_cell(second), _fake_cell([0.0] * 4)] for m in fig.MODELS}
        res = {}
        fig._instance_result(cells, config, 0, res)
        assert bool(res["rule_0"][1]) == want, (second, res["loss_se_set_0"])


def test_sheet_bandit_places_the_correct_tokens():
    from tabular.rlvr.brorl import sheet_bandit

    p, correct = sheet_bandit(1000, 50, 10, 2.0, 0)
    above = p > np.median(p)
    assert abs(p.sum() - 1) < 1e-12 and correct.sum() == 50
    assert (correct & above).sum() == 10
    import pytest

    with pytest.raises(ValueError, match="n_head"):
        sheet_bandit(10, 8, 1, 2.0, 0)
