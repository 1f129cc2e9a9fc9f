"""Clients for the concurrency tests: several clients of one namespace on the suite's
redis-server, as separate processes would have."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from cachekit_web import CacheClient

MakeClient = Callable[..., CacheClient]


class Clock:
    """A shared wall clock that moves only when the test says so (freshness windows)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock() -> Clock:
    """One fake clock for every client of a test."""
    return Clock()


@pytest.fixture()
def make_client(redis_url: str, namespace: str) -> Iterator[MakeClient]:
    """CacheClients of the test's namespace on the shared server; closed afterwards."""
    made: list[CacheClient] = []

    def make(url: str | None = None, **overrides: Any) -> CacheClient:
        overrides.setdefault("NAMESPACE", namespace)
        client = CacheClient.from_url(url or redis_url, **overrides)
        made.append(client)
        return client

    yield make
    for c in made:
        c.close()


@pytest.fixture(params=["redis", "memory"])
def store(request: pytest.FixtureRequest, redis_url: str, namespace: str) -> str:
    """The URL of each store the client's read-then-write paths must hold on."""
    return redis_url if request.param == "redis" else f"memory://{namespace}"


@pytest.fixture()
def raw(redis_url: str) -> Iterator[redis.Redis]:
    """A plain redis-py client, to plant and look at stored bytes."""
    r = redis.Redis.from_url(redis_url)
    yield r
    r.close()
