"""Shared test configuration: a fixed hypothesis profile and float64 by default in comparisons."""

import os

import torch
from hypothesis import HealthCheck, settings

# Under pytest-xdist each worker takes one core: torch's own intra-op threads on top of that
# oversubscribe the machine and make small-tensor tests tens of times slower.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

settings.register_profile(
    "ci",
    max_examples=15,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("dev", max_examples=40, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
