"""A client dropped without close() takes its threads and connections with it."""

from __future__ import annotations

import redis

from cachekit_web import AsyncCacheClient, CacheClient
from tests.leaks import cachekit_threads, connections, settle

N = 50


def test_dropped_clients_end_their_threads_and_connections(redis_url: str, namespace: str,
                                                           raw: redis.Redis) -> None:
    settle(lambda: False, 0.2)
    threads, conns = len(cachekit_threads()), connections(raw)
    for i in range(N):
        client = CacheClient.from_url(redis_url, NAMESPACE=namespace,
                                      FLEET_PUBLISH_INTERVAL=0.05)
        client.set("k", i)
        assert client.get("k") == i  # the fleet publisher now runs
        client.pending.add([client.full_key("gone")])  # and the replayer
    assert len(cachekit_threads()) > threads
    del client
    assert settle(lambda: len(cachekit_threads()) <= threads and connections(raw) <= conns), (
        f"{len(cachekit_threads()) - threads} threads and {connections(raw) - conns} "
        f"connections left by {N} dropped clients: {cachekit_threads()}")


def test_dropped_async_clients_end_their_threads(redis_url: str, namespace: str,
                                                 raw: redis.Redis) -> None:
    import asyncio

    settle(lambda: False, 0.2)
    threads, conns = len(cachekit_threads()), connections(raw)

    async def use() -> None:
        client = AsyncCacheClient.from_url(redis_url, NAMESPACE=namespace,
                                           FLEET_PUBLISH_INTERVAL=0.05)
        await client.set("k", 1)
        assert await client.get("k") == 1
        await client.backend.close()  # the loop ends: its connections are closed

    for _ in range(10):
        asyncio.run(use())
    assert settle(lambda: len(cachekit_threads()) <= threads and connections(raw) <= conns), (
        f"{len(cachekit_threads()) - threads} threads and {connections(raw) - conns} "
        f"connections left: {cachekit_threads()}")


def test_dropped_clients_of_the_in_process_tier_end_it(redis_url: str, namespace: str,
                                                       raw: redis.Redis) -> None:
    """A tier (tracking thread and connection) lives as long as a client uses it."""
    settle(lambda: False, 0.2)
    threads, conns = len(cachekit_threads()), connections(raw)
    for i in range(20):  # a namespace each: a tier each
        client = CacheClient.from_url(redis_url, NAMESPACE=f"{namespace}-{i}", LOCAL_CACHE=True)
        client.set("k", i)
        assert client.get("k") == i
        assert client._local is not None
    assert "cachekit-local-tier" in cachekit_threads()
    del client
    assert settle(lambda: len(cachekit_threads()) <= threads and connections(raw) <= conns), (
        f"{len(cachekit_threads()) - threads} threads and {connections(raw) - conns} "
        f"connections left: {cachekit_threads()}")


def test_closed_clients_of_the_in_process_tier_end_it(redis_url: str, namespace: str,
                                                      raw: redis.Redis) -> None:
    settle(lambda: False, 0.2)
    threads, conns = len(cachekit_threads()), connections(raw)
    kept = CacheClient.from_url(redis_url, NAMESPACE=namespace, LOCAL_CACHE=True)
    other = CacheClient.from_url(redis_url, NAMESPACE=namespace, LOCAL_CACHE=True)
    for c in (kept, other):
        c.set("k", 1)
        assert c.get("k") == 1
    assert kept._local is other._local  # one tier per process and namespace
    other.close()
    assert kept._local.disabled is None and kept.get("k") == 1  # still in use by ``kept``
    kept.close()
    assert settle(lambda: len(cachekit_threads()) <= threads and connections(raw) <= conns), (
        f"{len(cachekit_threads()) - threads} threads and {connections(raw) - conns} "
        f"connections left: {cachekit_threads()}")
