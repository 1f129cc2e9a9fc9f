"""Clients for the concurrency tests: several clients of one namespace on the suite's
redis-server, as separate processes would have."""

from __future__ import annotations

import pytest

from ..core.conftest import FakeClock as Clock
from ..core.conftest import MakeClient, clock, make_client, raw

# The core tests' fixtures: several clients of the test's namespace, a shared fake clock,
# and a raw redis-py client.
__all__ = ["Clock", "MakeClient", "clock", "make_client", "raw"]


@pytest.fixture(params=["redis", "memory"])
def store(request: pytest.FixtureRequest, redis_url: str, namespace: str) -> str:
    """The URL of each store the client's read-then-write paths must hold on."""
    return redis_url if request.param == "redis" else f"memory://{namespace}"
