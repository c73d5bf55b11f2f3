"""Theorem statements as data (sympy), statistical checkers and generic Hypothesis strategies."""
from proofs_check.bounds import Bound, Source
from proofs_check.seeding import as_generator, as_seed_sequence, spawn
from proofs_check.stats import (
    HighProbabilityCheck,
    RateFit,
    band_verdict,
    check_high_probability,
    clopper_pearson,
    fit_rate,
    fit_rates,
    g_test,
    lower_bound_verdict,
    upper_bound_verdict,
)

__all__ = [
    "Bound",
    "Source",
    "as_generator",
    "as_seed_sequence",
    "spawn",
    "HighProbabilityCheck",
    "RateFit",
    "band_verdict",
    "check_high_probability",
    "clopper_pearson",
    "fit_rate",
    "fit_rates",
    "g_test",
    "lower_bound_verdict",
    "upper_bound_verdict",
]
