"""Async views and memoized coroutines share the app's connection pool (issue 8, item 4).

Flask runs every async view in an event loop of its own, so a pool per loop would be a
pool (and a new Redis connection) per request. The server's own count of accepted
connections says whether cache hits opened any.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
import redis

from cachekit_web.embedded import EmbeddedRedis

from .conftest import AppFactory

HITS = 50


@pytest.fixture()
def connections_opened(redis_server: EmbeddedRedis) -> Iterator[Callable[[], int]]:
    """How many connections the test server has accepted so far (one probe connection)."""
    probe = redis.Redis.from_url(redis_server.url)
    try:
        yield lambda: int(probe.info("stats")["total_connections_received"])
    finally:
        probe.close()


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_view_hits_open_no_connection(make_app: AppFactory, kind: str,
                                      connections_opened: Callable[[], int]) -> None:
    app, cache = make_app()

    if kind == "async":
        @app.get("/page")
        @cache.cached(timeout=60)
        async def page() -> str:
            return "async page"
    else:
        @app.get("/page")
        @cache.cached(timeout=60)
        def page() -> str:
            return "sync page"

    client = app.test_client()
    assert client.get("/page").headers["Cache-Status"].startswith("cachekit; fwd=miss")
    before = connections_opened()
    for _ in range(HITS):
        assert client.get("/page").headers["Cache-Status"].startswith("cachekit; hit")
    opened = connections_opened() - before
    assert opened <= 1, f"{opened} connections opened for {HITS} {kind} hits"


def test_memoized_coroutine_in_fresh_loops_opens_no_connection(
        app_cache: object, connections_opened: Callable[[], int]) -> None:
    _, cache = app_cache  # type: ignore[misc]
    calls: list[int] = []

    @cache.memoize(timeout=60)
    async def lookup(n: int) -> int:
        calls.append(n)
        return n * 2

    assert asyncio.run(lookup(3)) == 6
    before = connections_opened()
    for _ in range(HITS):
        assert asyncio.run(lookup(3)) == 6  # a new event loop each time, as Flask does
    opened = connections_opened() - before
    assert calls == [3]
    assert opened <= 1, f"{opened} connections opened for {HITS} memoized hits"
