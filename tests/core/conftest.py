"""Helpers for the core client tests: client factories and a raw redis-py client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from cachekit_web import AsyncCacheClient, CacheClient

KEY_A = bytes(range(0xa1, 0xa1 + 32)).hex()  # a valid 32-byte master key (32 distinct bytes)
KEY_B = bytes(range(0x12, 0x12 + 32)).hex()
SIGNING = "test-signing-secret"

MakeClient = Callable[..., CacheClient]


class FakeClock:
    """A wall clock that moves only when a test says so (freshness, sealed expiry, metrics)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@pytest.fixture()
def clock() -> FakeClock:
    """A fake wall clock for a client: pass ``clock=clock`` to make_client."""
    return FakeClock()


@pytest.fixture()
def make_client(redis_url: str, namespace: str) -> Iterator[MakeClient]:
    """Build CacheClients on the shared server (namespace of the test); closed afterwards."""
    made: list[CacheClient] = []

    def make(url: str | None = None, **overrides: Any) -> CacheClient:
        overrides.setdefault("NAMESPACE", namespace)
        client = CacheClient.from_url(url or redis_url, **overrides)
        made.append(client)
        return client

    yield make
    for c in made:
        c.close()


@pytest.fixture()
def client(make_client: MakeClient) -> CacheClient:
    """A plain (unsealed) client on the shared server."""
    return make_client()


@pytest.fixture()
def raw(redis_url: str) -> Iterator[redis.Redis]:
    """A plain redis-py client on the shared test server, to look at stored bytes."""
    r = redis.Redis.from_url(redis_url)
    yield r
    r.close()


def raw_for(url: str) -> redis.Redis:
    """A plain redis-py client for ``url`` (caller closes it)."""
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def make_async(url: str, **overrides: Any) -> AsyncCacheClient:
    """An AsyncCacheClient for ``url``."""
    return AsyncCacheClient.from_url(url, **overrides)
