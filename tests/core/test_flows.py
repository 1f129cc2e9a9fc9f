"""The caching flows the adapters rely on, in the core client (issue 8, item 2)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import redis

from cachekit_web import AsyncCacheClient, CacheClient
from cachekit_web.core.backends.threaded import AsyncThreadedBackend
from cachekit_web.core.client import Expiring

from .conftest import MakeClient


def _stampede(client: CacheClient, should_cache: Any, n: int = 5) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = []
    lock = threading.Lock()

    def compute() -> str:
        time.sleep(0.2)  # long enough for the others to join the flight
        return f"computed by {threading.get_ident()}"

    def run() -> None:
        barrier.wait(5)
        result = client.fetch("page", compute, 60, should_cache=should_cache)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return results


def test_an_uncacheable_value_is_not_shared_with_waiting_callers(client: CacheClient) -> None:
    results = _stampede(client, should_cache=lambda value: False)
    assert len(results) == 5 and all(r.computed and r.status == "miss" for r in results)
    assert len({r.value for r in results}) == 5  # each caller computed its own
    assert client.get("page") is None


def test_a_cacheable_value_is_computed_once_and_shared(client: CacheClient) -> None:
    results = _stampede(client, should_cache=None)
    assert len({r.value for r in results}) == 1
    assert sum(r.computed for r in results) == 1


def test_async_uncacheable_value_is_not_shared(redis_url: str, namespace: str) -> None:
    async def main() -> list[Any]:
        async with AsyncCacheClient.from_url(redis_url, NAMESPACE=namespace) as client:
            count = 0

            async def compute() -> int:
                nonlocal count
                count += 1
                mine = count
                await asyncio.sleep(0.05)
                return mine

            return list(await asyncio.gather(*(
                client.fetch("page", compute, 60, should_cache=lambda v: False)
                for _ in range(4))))

    results = asyncio.run(main())
    assert sorted(r.value for r in results) == [1, 2, 3, 4]
    assert all(r.computed for r in results)


def test_force_recomputes_and_stores(client: CacheClient) -> None:
    client.set("k", "old", 60)
    result = client.fetch("k", lambda: "new", 60, force=True)
    assert (result.value, result.status, result.computed) == ("new", "miss", True)
    assert client.get("k") == "new"
    client.fetch("k", lambda: "refused", 60, should_cache=lambda v: False, force=True)
    assert client.get("k") == "new"


def test_a_stored_value_the_caller_does_not_accept_is_a_miss(client: CacheClient) -> None:
    client.set("k", {"not": "a page"}, 60)
    result = client.fetch("k", lambda: "page", 60, accept=lambda v: isinstance(v, str))
    assert (result.value, result.status) == ("page", "miss")
    assert client.get("k") == "page"  # replaced
    assert client.fetch("k", lambda: "again", 60, accept=lambda v: True).status == "hit"


def test_a_computed_value_can_carry_its_own_timeout(client: CacheClient) -> None:
    result = client.fetch("k", lambda: Expiring("short", 5), 600)
    assert result.value == "short"
    assert 0 < (client.ttl("k") or 0) <= 5


def test_version_tokens(client: CacheClient, raw: redis.Redis) -> None:
    first = client.versions(["f", "f:instance"])
    assert first is not None and len(first) == 2
    assert client.versions(["f", "f:instance"]) == first  # stable until bumped
    client.set("f", "a user key of the same name")  # never the token's key
    assert client.versions(["f"]) == first[:1]
    assert client.bump_version("f")
    again = client.versions(["f", "f:instance"])
    assert again is not None and again[0] != first[0] and again[1] == first[1]
    assert raw.exists(f"!ver:{client.namespace}:f")
    assert client.get("f") == "a user key of the same name"


def test_move_keeps_lifetime_and_stale_window(client: CacheClient) -> None:
    client.set("old", {"v": 1}, 10, stale_ttl=20)
    assert client.move("old", "new")
    assert client.get("old") is None
    entry = client.get_entry("new")
    assert entry is not None and entry.value == {"v": 1}
    assert entry.fresh_until is not None and 9 < entry.fresh_until - time.time() <= 10
    assert 28 < (client.ttl("new") or 0) <= 30
    assert not client.move("missing", "elsewhere")


def test_one_twin_per_client_and_same_pool(make_client: MakeClient, redis_url: str) -> None:
    sync = make_client()
    twin = AsyncCacheClient.twin(sync, same_pool=True)
    assert AsyncCacheClient.twin(sync, same_pool=True) is twin
    assert AsyncCacheClient.twin(sync) is not twin  # the per-loop flavour is its own
    assert isinstance(twin.backend, AsyncThreadedBackend)
    assert twin.breaker is sync.breaker and twin.pending is sync.pending
    sync.set("k", "v", 60)
    probe = redis.Redis.from_url(redis_url)
    try:
        before = int(probe.info("stats")["total_connections_received"])
        for _ in range(20):  # a fresh event loop each time
            assert asyncio.run(twin.get("k")) == "v"
        assert int(probe.info("stats")["total_connections_received"]) - before <= 1
    finally:
        probe.close()
