"""Shared test configuration: Hypothesis profiles and the matplotlib backend.

Profiles: ``ci`` (default; derandomized, no deadline since the first call of a Numba kernel
compiles it, modest example counts) and ``slow`` (more examples; ``HYPOTHESIS_PROFILE=slow``).
"""
import os

import matplotlib

matplotlib.use("Agg")

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "slow",
    derandomize=False,
    deadline=None,
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
