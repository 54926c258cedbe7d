"""Test configuration: hypothesis profiles and the seed of seeded-random tests.

Numba compiles a kernel on its first call (hundreds of ms to seconds), so no deadline.
CI (CI=true) runs derandomized so its results are reproducible; elsewhere hypothesis
explores and prints the failing example and a reproduce blob on failure.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci",
    deadline=None,
    max_examples=60,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough", deadline=None, max_examples=1000, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
)

SEED = int(os.environ.get("DQT_SEED", "20261124"))


def pytest_configure(config):
    config.addinivalue_line("markers", "heavy: a long run with its own make target (named in "
                            "the test), left out of make test")


@pytest.fixture
def rng(request):
    """A seeded generator; the seed is printed with a failing test's output."""
    seed = SEED + sum(map(ord, request.node.name)) % 100000
    print(f"seed {seed} (rerun with DQT_SEED={SEED} pytest '{request.node.nodeid}')")
    return np.random.default_rng(seed)
