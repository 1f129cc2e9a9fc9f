"""Test harness: a throwaway redis-server per session, never any other Redis."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

from cachekit_web.embedded import EmbeddedRedis

# The suite must not read the developer's CACHEKIT_* or REDIS_URL environment.
for _name in list(os.environ):
    if _name.startswith("CACHEKIT_") or _name == "REDIS_URL":
        del os.environ[_name]
# Deferred invalidations are spooled to files: keep this run's apart from any other's.
os.environ["CACHEKIT_SPOOL_DIR"] = tempfile.mkdtemp(prefix="cachekit-test-spool-")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    """A redis-server shared by the session's tests; each test uses its own namespace."""
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture()
def redis_url(redis_server: EmbeddedRedis) -> str:
    """URL of the shared test server."""
    return redis_server.url


@pytest.fixture()
def namespace(request: pytest.FixtureRequest) -> str:
    """A namespace unique to the test, so tests never see each other's keys."""
    return "t-" + "".join(c if c.isalnum() else "-" for c in request.node.name)[:80]


@pytest.fixture()
def own_redis() -> Iterator[EmbeddedRedis]:
    """A private redis-server for a fault test to kill, pause or restart."""
    server = EmbeddedRedis().start()
    try:
        yield server
    finally:
        server.stop()
