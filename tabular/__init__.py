"""Tabular MDPs: the validated model, standard generators, planning and sampling.

The families built on them are submodules, imported explicitly: offline RL
(``tabular.offline``, ``tabular.mixed_data``), linear programs and dual RL
(``tabular.lp``, ``tabular.fdvl``, ``tabular.recoil``, ``tabular.odice``), robust
regularised MDPs (``tabular.robust``), tree MDPs (``tabular.tree``) and RL with verifiable
rewards on them (``tabular.rlvr``). ``tabular.lp`` imports cvxpy only when it solves.

The Hypothesis strategies (``mdps``, ``policies``) and the Gymnasium environment
(``TabularEnv``, optional extra ``gym``) are loaded on first access, so ``import tabular``
imports neither hypothesis nor gymnasium.
"""
from tabular.generators import chain, garnet, gridworld, gridworld_cells, river_swim
from tabular.mdp import TabularMDP, normalize_rows, proper_policy, validate_policy
from tabular.planning import (
    C_star,
    PlanningResult,
    PolicyValue,
    backward_induction,
    evaluate_policy,
    expected_return,
    occupancy,
    policy_iteration,
    value_iteration,
)
from tabular.sampling import Episodes, sample_episodes

_LAZY = {"mdps": "tabular.strategies", "policies": "tabular.strategies",
         "tree_mdps": "tabular.strategies", "tree_policies": "tabular.strategies",
         "TabularEnv": "tabular.gym"}

__all__ = [
    "TabularMDP", "normalize_rows", "proper_policy", "validate_policy",
    "chain", "garnet", "gridworld", "gridworld_cells", "river_swim",
    "PlanningResult", "PolicyValue", "value_iteration", "backward_induction",
    "policy_iteration", "evaluate_policy", "occupancy", "expected_return", "C_star",
    "Episodes", "sample_episodes", "mdps", "policies", "tree_mdps", "tree_policies",
]  # TabularEnv is left out so that `from tabular import *` works without gymnasium.


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tabular' has no attribute {name!r}")
