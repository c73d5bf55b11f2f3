"""The command line and the registry: list without heavy imports, exit codes, overrides."""
import importlib
import subprocess
import sys

import pytest

from figures.cli import _overrides, main
from figures.registry import FIGURES

HEAVY = ("numba", "scipy", "sympy", "matplotlib", "figures.lcb_bandit", "figures.runner")


def test_list_imports_nothing_heavy():
    code = (
        "import sys; from figures.cli import main; main(['list']); "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m in {HEAVY!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "lcb-bandit" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_registry_mirrors_module_claim(name):
    entry = FIGURES[name]
    module = importlib.import_module(entry["module"])
    assert module.CLAIM.metadata() == {"name": name, "claim": entry["claim"],
                                       "source": entry["source"]}
    assert set(module.CONFIGS) == {"smoke", "quick", "paper"}
    for attr in ("run_one", "aggregate", "plot", "verdict"):
        assert callable(getattr(module, attr))


def test_overrides_parse_types():
    assert _overrides(["bonus_scale=0.5", "R=10", "flag=true", "name=x", "Ns=[100, 1000]"]) == {
        "bonus_scale": 0.5, "R": 10, "flag": True, "name": "x", "Ns": [100, 1000]}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        _overrides(["bonus_scale"])


def test_errors_exit_2(capsys, tmp_path):
    assert main(["check", "no-such-figure", "--out", str(tmp_path)]) == 2
    assert "unknown figure" in capsys.readouterr().err
    assert main(["check", "lcb-bandit", "--set", "nonsense=1", "--out", str(tmp_path)]) == 2
    assert "has no key 'nonsense'" in capsys.readouterr().err
    assert main(["check", "lcb-bandit", "--seed", "-3", "--out", str(tmp_path)]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["check", "lcb-bandit", "--config", "huge"])
    assert exc.value.code == 2  # argparse's own exit code for bad arguments


@pytest.mark.parametrize("args, message", [
    (["check", "numpy"], "unknown figure 'numpy'"),
    (["check", "figures.cli"], "unknown figure 'figures.cli'"),
    (["check", "lcb-bandit", "--set", "R=abc"], "--set R expects type int"),
    (["check", "lcb-bandit", "--set", "Ns=100"], "--set Ns expects type list"),
    (["check", "lcb-bandit", "--set", "gap_min=0.5"], "0 < gap_min < gap_max <= 0.5"),
    (["check", "lcb-bandit", "--set", "n_gaps=1"], "n_gaps must be at least 2"),
    (["check", "lcb-bandit", "--set", "C_stars=[1.0]"], "C_stars must be numbers > 1"),
    (["check", "lcb-bandit", "--set", "bonus_scale=-1"], "bonus_scale must be positive"),
    (["check", "lcb-bandit", "--set", "Ns=[100, 100]"], "at least 2 distinct positive ints"),
])
def test_bad_figure_names_and_overrides_exit_2(args, message, capsys, tmp_path):
    assert main(args + ["--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_empirical_claims_say_what_the_exit_code_covers(tmp_path, capsys):
    from figures.cli import EMPIRICAL_NOTE

    assert main(["check", "stitching", "--config", "smoke", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == EMPIRICAL_NOTE and "reproduced" in out[1]
    assert main(["check", "rover-tree", "--config", "smoke", "--out", str(tmp_path / "t")]) == 0
    assert EMPIRICAL_NOTE not in capsys.readouterr().out   # an identity: no note
