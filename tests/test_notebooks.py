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

import numpy as np
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

PROBE_02 = """
import json, sys
print(json.dumps({"executable": sys.executable, "config": CONFIG,
    "figures_ok": [rep_cb.ok, rep_mdp.ok, rep_tw.ok, rep_st.ok],
    "C_grid": C_grid.tolist(), "bc": sweep["mpa"].tolist(), "lcb": sweep["lcb"].tolist(),
    "mm_ratio": (res_cb["p2_mean"] / mm_exact).ravel().tolist(),
    "valid_V_max": float(res_mdp["valid_V_max"].max()),
    "rcsl_successes": int(res_st["successes_rcsl"])}))
"""


def check_02(values):
    assert Path(values["executable"]).resolve() == Path(sys.executable).resolve()
    assert values["config"] == "smoke"
    assert values["figures_ok"] == [True, True, True, True]
    C, bc, lcb = (np.array(values[k]) for k in ("C_grid", "bc", "lcb"))
    # Cloning (most-played action) is right when mu(a*|s) = 1/C* > 1/2 with overwhelming
    # probability at N = 2000 and wrong (losing the whole gap 0.25) when 1/C* < 1/2.
    assert np.all(bc[C <= 1.5] <= 1e-3) and np.all(bc[C >= 2.5] >= 0.24)
    assert np.all(lcb[C >= 2] < bc[C >= 2])
    # Missing mass: simulated means within 10% of (S-1)(1/N)(1-1/N)^N.
    assert all(0.9 <= r <= 1.1 for r in values["mm_ratio"])
    # Fold size m <= Vmax^2 L_c at c = 1/2 makes every penalty >= 1: VI-LCB never updates.
    assert values["valid_V_max"] == 0.0
    assert values["rcsl_successes"] == 0


# Notebooks 06 and 08 end with a dict PROBE of their key numbers.
PROBE_DICT = """
import json, sys
print(json.dumps({**PROBE, "executable": sys.executable}))
"""


def check_06(values):
    assert Path(values["executable"]).resolve() == Path(sys.executable).resolve()
    assert values["config"] == "smoke"
    assert values["lp_vs_vi_max_abs"] <= 1e-9          # LP optimum = value iteration
    assert values["J_path_monotone"] is True            # J(pi_a) non-increasing in a_reg
    assert values["tv_robust_lam0_error"] <= 1e-6      # TV backup -> min over all states


def check_08(values):
    assert Path(values["executable"]).resolve() == Path(sys.executable).resolve()
    assert values["config"] == "smoke"
    assert values["passk_exact_ok"] is True and values["brorl_mass_balance_ok"] is True
    assert values["mass_balance_identity_error"] <= 1e-12
    pk = values["pass_at_k"]
    # pass@k of a prompt with accuracy p is 1 - (1 - p)^k, computed here independently.
    assert abs(pk["exact"] - (1 - (1 - pk["p"]) ** pk["k"])) <= 1e-12


def check_08b(values):
    assert Path(values["executable"]).resolve() == Path(sys.executable).resolve()
    assert values["config"] == "smoke"
    assert values["gradient_max_z"] <= 5            # sampled GRPO gradient vs exact expectation
    assert values["masked_leaf_prob"] == 0.0        # a masked answer never gains mass
    assert values["frozen_prompt_change"] == 0.0    # an all-wrong prompt's own logits stay put
    kept, everyone = values["filtered_variance"]
    assert kept >= everyone                          # filtering keeps higher p(1 - p)
    assert values["difficulty_filtering_ok"] is True and values["brorl_rollouts_ok"] is True


PROBES = {"01_pessimism_lcb.ipynb": (PROBE_01, check_01),
          "02_offline_rl_pessimism.ipynb": (PROBE_02, check_02),
          "06_dual_rl.ipynb": (PROBE_DICT, check_06),
          "08_rlvr_exact.ipynb": (PROBE_DICT, check_08),
          "08b_rlvr_training.ipynb": (PROBE_DICT, check_08b)}

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


GOOD_02 = {"executable": sys.executable, "config": "smoke", "figures_ok": [True] * 4,
           "C_grid": [1.0, 1.5, 2.5, 4.0], "bc": [0.0, 0.0, 0.25, 0.25],
           "lcb": [0.0, 0.0, 0.05, 0.08], "mm_ratio": [1.0, 0.98], "valid_V_max": 0.0,
           "rcsl_successes": 0}


@pytest.mark.parametrize("planted", [
    {"config": "quick"},
    {"figures_ok": [True, False, True, True]},
    {"bc": [0.0, 0.01, 0.25, 0.25]},        # cloning wrong although mu(a*|s) > 1/2
    {"lcb": [0.0, 0.0, 0.3, 0.08]},          # LCB no better than cloning at C* >= 2
    {"mm_ratio": [1.0, 1.3]},                # missing-mass level off
    {"valid_V_max": 0.1},                    # VI-LCB updated at c = 1/2
    {"rcsl_successes": 3},
])
def test_check_02_catches_planted_errors(planted):
    check_02(GOOD_02)
    with pytest.raises(AssertionError):
        check_02({**GOOD_02, **planted})


GOOD_06 = {"executable": sys.executable, "config": "smoke", "lp_vs_vi_max_abs": 1e-11,
           "J_path_monotone": True, "tv_robust_lam0_error": 1e-9}
GOOD_08 = {"executable": sys.executable, "config": "smoke", "passk_exact_ok": True,
           "brorl_mass_balance_ok": True, "mass_balance_identity_error": 0.0,
           "pass_at_k": {"p": 0.3, "k": 8, "exact": 1 - 0.7 ** 8}}
GOOD_08B = {"executable": sys.executable, "config": "smoke", "gradient_max_z": 2.1,
            "masked_leaf_prob": 0.0, "frozen_prompt_change": 0.0, "pass1": [0.1, 0.6],
            "filtered_variance": [0.19, 0.08], "difficulty_filtering_ok": True,
            "brorl_rollouts_ok": True}


@pytest.mark.parametrize("check, good, planted", [
    (check_06, GOOD_06, {"lp_vs_vi_max_abs": 1e-6}),
    (check_06, GOOD_06, {"J_path_monotone": False}),
    (check_06, GOOD_06, {"tv_robust_lam0_error": 1e-3}),
    (check_06, GOOD_06, {"config": "quick"}),
    (check_08, GOOD_08, {"passk_exact_ok": None}),
    (check_08, GOOD_08, {"mass_balance_identity_error": 1e-6}),
    (check_08, GOOD_08, {"pass_at_k": {"p": 0.3, "k": 8, "exact": 1 - 0.3 ** 8}}),
    (check_08b, GOOD_08B, {"gradient_max_z": 7.0}),
    (check_08b, GOOD_08B, {"masked_leaf_prob": 1e-9}),
    (check_08b, GOOD_08B, {"frozen_prompt_change": 1e-3}),
    (check_08b, GOOD_08B, {"filtered_variance": [0.05, 0.08]}),
])
def test_dict_probes_catch_planted_errors(check, good, planted):
    check(good)
    with pytest.raises(AssertionError):
        check({**good, **planted})


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
