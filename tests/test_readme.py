"""The README's promise: .ci/run runs exactly the README's set-up commands."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands(path):
    return [line.strip() for line in path.read_text().splitlines()
            if line.startswith("python3 -m venv")]


def test_ci_runs_the_readme_commands():
    readme = _commands(ROOT / "README.md")
    ci = _commands(ROOT / ".ci" / "run")
    assert len(ci) == 2
    assert ci == readme[:2]
    assert "boundlab reproduce lcb-bandit --config quick" in ci[0]
    assert "--durations=20" in ci[1] and '".[test]"' in ci[1]
