"""The async API under WSGI (async_to_sync: a new event loop per call) leaves nothing open."""

from __future__ import annotations

import warnings
from typing import Any

import redis
from asgiref.sync import async_to_sync

from tests.leaks import connections, settle


def test_async_calls_from_sync_code_close_their_connections(cache: Any, redis_url: str) -> None:
    raw = redis.Redis.from_url(redis_url)
    try:
        cache.set("k", 1)
        assert cache.get("k") == 1  # the sync pool's connection is open
        settle(lambda: False, 0.2)
        before = connections(raw)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(50):
                assert async_to_sync(cache.aget)("k") == 1
            settle(lambda: False, 0.2)
        unclosed = [w for w in caught if issubclass(w.category, ResourceWarning)]
        assert not unclosed, f"{len(unclosed)} ResourceWarnings: {unclosed[0].message}"
        assert settle(lambda: connections(raw) <= before + 1), (before, connections(raw))
    finally:
        raw.close()
