"""Shared test configuration: a fixed hypothesis profile for CI and one thread per worker."""

import os
import sys

import torch
from hypothesis import HealthCheck, settings

# Under pytest-xdist each worker takes one core: torch's own intra-op threads on top of that
# oversubscribe the machine and make small-tensor tests tens of times slower.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

# Shared test helpers (``tests/_contract.py``) import by name under --import-mode=importlib.
sys.path.insert(0, os.path.dirname(__file__))

settings.register_profile(
    "ci",
    max_examples=15,
    derandomize=True,
    deadline=None,
    # The contract suite's autouse fixture only sets a global switch: safe to share per test.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=True,
)
settings.register_profile(
    "dev",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
