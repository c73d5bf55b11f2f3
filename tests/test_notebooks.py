"""The teaching notebooks run top to bottom (smoke configuration) and compute what they teach.

Each ``notebooks/*.ipynb`` is executed with nbclient in a ``python3`` kernel, which
jupyter_client starts with this interpreter (``sys.executable``), so the kernel sees the
installed ``bandits``, ``figures`` and ``proofs_check``. ``BOUNDLAB_NOTEBOOK_CONFIG=smoke`` is
set in the environment before the kernel starts, so the kernel inherits it. After the last
cell, a probe cell runs in the same kernel and prints the notebook's key numbers as JSON;
they are checked against the thresholds of the LCB spec sheet (Rashidinejad et al. 2021).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT_S = 120

# Per notebook: code printing a JSON dict of its key numbers, and a check of that dict.
PROBE_01 = """
import json, sys
print(json.dumps({
    "executable": sys.executable,
    "config": CONFIG,
    "verdict_ok": rep.ok,
    "test6_lcb": float(test6["lcb"]),
    "test6_greedy": float(test6["greedy"]),
    "mpa_c4": [float(v) for v in rep.results["stat_mpa"][list(rep.results["C_stars"]).index(4.0)]],
}))
"""


def check_01(values):
    assert Path(values["executable"]).resolve() == Path(sys.executable).resolve()
    assert values["config"] == "smoke"
    assert values["verdict_ok"] is True
    # Spec sheet, property test 6: LCB error <= 0.005, greedy >= 0.05.
    assert values["test6_lcb"] <= 0.005
    assert values["test6_greedy"] >= 0.05
    # C* = 4 >= 2: imitation picks the worse arm unless Bin(N, 1/4) >= N/2, which has
    # probability below 1e-7 at N >= 100, so the worst case (gap 0.45) is ~0.45 at every N.
    assert min(values["mpa_c4"]) >= 0.449


PROBES = {"01_pessimism_lcb.ipynb": (PROBE_01, check_01)}

GOOD_01 = {"executable": sys.executable, "config": "smoke", "verdict_ok": True,
           "test6_lcb": 0.0, "test6_greedy": 0.1, "mpa_c4": [0.45] * 4}


@pytest.mark.parametrize("planted", [
    {"config": "quick"},          # the environment variable did not reach the kernel
    {"verdict_ok": None},         # the figure's verdict undecidable
    {"test6_lcb": 0.02},          # LCB fooled by the poorly covered arms
    {"test6_greedy": 0.01},       # greedy not fooled: the instance lost its point
    {"mpa_c4": [0.45, 0.3, 0.45, 0.45]},
    {"executable": "/usr/bin/python-elsewhere"},
])
def test_check_01_catches_planted_errors(planted):
    check_01(GOOD_01)
    with pytest.raises(AssertionError):
        check_01({**GOOD_01, **planted})


def test_notebooks_exist_and_have_probes():
    assert NOTEBOOKS, "no notebooks found"
    assert {nb.name for nb in NOTEBOOKS} >= set(PROBES)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"cell {i} has outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, monkeypatch):
    monkeypatch.setenv("BOUNDLAB_NOTEBOOK_CONFIG", "smoke")
    nb = nbformat.read(path, as_version=4)
    probe, check = PROBES.get(path.name, (None, None))
    if probe is not None:
        nb.cells.append(nbformat.v4.new_code_cell(probe))
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    if probe is not None:
        text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
        check(json.loads(text.strip().splitlines()[-1]))
