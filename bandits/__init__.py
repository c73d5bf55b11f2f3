"""Bandits: stochastic bandit instances, offline data and LCB, online UCB1 and KL-UCB.

Hypothesis strategies live in :mod:`bandits.strategies` (not imported here, so that the
library does not need Hypothesis at import time).
"""
from bandits.environments import (
    BernoulliBandit,
    C_star,
    GaussianBandit,
    dataset_statistics,
    offline_dataset,
    sample_statistics,
)
from bandits.offline import (
    Choice,
    greedy,
    lcb,
    lcb_bonus,
    lcb_event_holds,
    most_played_arm,
    suboptimality,
)
from bandits.stochastic import KL_UCB_TOL, OnlineResult, kl_ucb, ucb1

__all__ = [
    "BernoulliBandit",
    "GaussianBandit",
    "offline_dataset",
    "dataset_statistics",
    "sample_statistics",
    "C_star",
    "Choice",
    "lcb_bonus",
    "lcb",
    "greedy",
    "most_played_arm",
    "suboptimality",
    "lcb_event_holds",
    "OnlineResult",
    "ucb1",
    "kl_ucb",
    "KL_UCB_TOL",
]
