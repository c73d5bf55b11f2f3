"""The difficulty-filtering figure: smoke verdict, the planted leaky filter, a "not reproduced" case, the filter helpers."""
import numpy as np

from figures import difficulty_filtering as fig
from figures.cli import EMPIRICAL_NOTE, main
from tabular.rlvr.difficulty import difficulty_filter


def _verdict(out: str) -> str:
    """The verdict text, after the CLI's note on empirical claims."""
    assert out.startswith(EMPIRICAL_NOTE + "\n"), out[:200]
    return out[len(EMPIRICAL_NOTE) + 1:]


def test_filters_follow_their_definitions():
    p_hat = np.arange(9) / 8
    band = (0.25, 0.75)
    assert difficulty_filter("none", p_hat, band).all()
    assert difficulty_filter("dapo", p_hat, band).tolist() == [False] + [True] * 7 + [False]
    assert difficulty_filter("balanced", p_hat, band).tolist() == [False] * 2 + [True] * 5 + [False] * 2
    assert difficulty_filter("easy", p_hat, band).tolist() == [False] * 6 + [True] * 3
    assert difficulty_filter("hard", p_hat, band).tolist() == [True] * 3 + [False] * 6


def test_select_walks_the_order_until_the_batch_is_full():
    ok = np.array([True, False, True, True, False, True])
    kept, visited = fig.select(np.array([5, 4, 1, 0, 2, 3]), ok, 3)
    assert np.flatnonzero(kept).tolist() == [0, 2, 5] and visited == 5
    kept, visited = fig.select(np.array([1, 4, 0]), ok, 3)  # pass ends before the batch is full
    assert np.flatnonzero(kept).tolist() == [0] and visited == 3
    kept, _ = fig.select(np.array([5, 4, 1, 0, 2, 3]), ok, 3, leaky=True)  # planted error
    assert np.flatnonzero(kept).tolist() == [0, 4, 5]


def test_instance_accuracies_are_the_correct_set_sizes():
    """The start is uniform over the 256 answers, so prompt x's accuracy is k_x / 256."""
    from tabular.rlvr.training import exact_metrics

    tree, policy = fig.instance(fig.CONFIGS["smoke"])
    p0 = exact_metrics(tree, policy, [1])[0]
    assert np.allclose(p0, tree.correct.sum(axis=1) / 4 ** 4, rtol=0, atol=1e-12)
    assert p0.min() < 0.05 and p0.max() > 0.95  # spread over (0, 1): logit range [-6, 6]


def test_check_smoke_exits_0(tmp_path, capsys):
    code = main(["check", fig.NAME, "--config", "smoke", "--out", str(tmp_path), "--no-progress"])
    out = _verdict(capsys.readouterr().out)
    assert code == 0, out
    assert out.startswith(("reproduced:", "not reproduced in this toy:"))


def test_leaky_filter_is_caught(tmp_path, capsys):
    code = main(["check", fig.NAME, "--config", "smoke", "--set", "planted=leaky_filter",
                 "--set", "n_steps=3", "--out", str(tmp_path), "--no-progress"])
    out = _verdict(capsys.readouterr().out)
    assert code == 1, out
    assert out.startswith("NOT SUPPORTED") and "kept groups pass the filter" in out


def test_unmasked_batch_is_caught(tmp_path, capsys):
    code = main(["check", fig.NAME, "--config", "smoke", "--set", "planted=unmasked_batch",
                 "--set", "n_steps=2", "--out", str(tmp_path), "--no-progress"])
    out = _verdict(capsys.readouterr().out)
    assert code == 1, out
    assert out.startswith("NOT SUPPORTED") and "left-out prompts get no gradient" in out


def test_nan_variance_check_fails(tmp_path, capsys, monkeypatch):
    """A failing exact variance computation must not pass as '= nan'."""
    from tabular.rlvr import difficulty

    def broken(*args, **kwargs):
        raise ValueError("planted")

    monkeypatch.setattr(difficulty, "filtered_variance", broken)
    code = main(["check", fig.NAME, "--config", "smoke", "--set", "n_steps=2",
                 "--out", str(tmp_path), "--no-progress"])
    out = _verdict(capsys.readouterr().out)
    assert code == 1, out
    assert "filtering raises the success variance" in out


def test_band_keeping_nothing_is_rejected():
    import pytest

    with pytest.raises(ValueError, match="keeps no observed accuracy"):
        fig.validate_config({**fig.CONFIGS["smoke"], "n": 1})


def test_one_seed_is_not_reproduced(tmp_path, capsys):
    """One seed gives no Welch test (no variance over seeds): the rule cannot say reproduced."""
    code = main(["check", fig.NAME, "--config", "smoke", "--set", "n_seeds=1", "--set", "n_steps=3",
                 "--out", str(tmp_path), "--no-progress"])
    out = _verdict(capsys.readouterr().out)
    assert code == 0, out
    assert out.startswith("not reproduced in this toy: (indicative only")
