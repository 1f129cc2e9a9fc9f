"""A client dropped without close() takes its threads and connections with it."""

from __future__ import annotations

import weakref
from typing import Any

import redis

from cachekit_web import AsyncCacheClient, CacheClient
from tests.leaks import holder_chain, settle

N = 50


def _ids(raw: redis.Redis) -> set[int]:
    return {int(c["id"]) for c in raw.client_list()}


def _holders(ref: weakref.ref[Any]) -> str:
    """Who still holds the object behind ``ref`` (for the failure message): the chain of
    references from a root (a module, a class, a running thread's frame) to it."""
    obj = ref()
    return "" if obj is None else holder_chain(obj)


def test_dropped_clients_end_their_threads_and_connections(redis_url: str, namespace: str,
                                                           raw: redis.Redis) -> None:
    settle(lambda: False, 0.2)
    before = _ids(raw)
    clients, threads = [], []
    for i in range(N):
        client = CacheClient.from_url(redis_url, NAMESPACE=namespace,
                                      FLEET_PUBLISH_INTERVAL=0.05)
        client.set("k", i)
        assert client.get("k") == i  # the fleet publisher now runs
        client.pending.add([client.full_key("gone")])  # and the replayer
        clients.append(weakref.ref(client))
        threads += [t for t in (client.fleet._thread, client.replayer._thread) if t]
    assert any(t.is_alive() for t in threads)
    del client
    assert settle(lambda: all(c() is None for c in clients)), (
        f"{sum(c() is not None for c in clients)} of {N} dropped clients are alive, held by "
        f"{[_holders(c) for c in clients if c() is not None][:3]}")
    assert settle(lambda: not any(t.is_alive() for t in threads)), (
        f"{sum(t.is_alive() for t in threads)} threads of {N} dropped clients still run")
    assert settle(lambda: not (_ids(raw) - before)), (
        f"{len(_ids(raw) - before)} connections left by {N} dropped clients")


def test_dropped_async_clients_end_their_threads(redis_url: str, namespace: str,
                                                 raw: redis.Redis) -> None:
    import asyncio

    settle(lambda: False, 0.2)
    before = _ids(raw)
    clients: list[weakref.ref[AsyncCacheClient]] = []

    async def use() -> None:
        client = AsyncCacheClient.from_url(redis_url, NAMESPACE=namespace,
                                           FLEET_PUBLISH_INTERVAL=0.05)
        await client.set("k", 1)
        assert await client.get("k") == 1  # its fleet publisher runs
        clients.append(weakref.ref(client))

    for _ in range(10):
        asyncio.run(use())  # the loop closes the client's pool as it ends
    assert settle(lambda: all(c() is None for c in clients)), (
        f"{sum(c() is not None for c in clients)} dropped clients are alive, held by "
        f"{[_holders(c) for c in clients if c() is not None][:3]}")
    assert settle(lambda: not (_ids(raw) - before)), (
        f"{len(_ids(raw) - before)} connections left by 10 dropped clients")


def test_dropped_clients_of_the_in_process_tier_end_it(redis_url: str, namespace: str,
                                                       raw: redis.Redis) -> None:
    """A tier (tracking thread and connection) lives as long as a client uses it."""
    settle(lambda: False, 0.2)
    before = _ids(raw)
    clients, threads = [], []
    for i in range(20):  # a namespace each: a tier each
        client = CacheClient.from_url(redis_url, NAMESPACE=f"{namespace}-{i}", LOCAL_CACHE=True)
        client.set("k", i)
        assert client.get("k") == i
        assert client._local is not None and client._local._thread is not None
        clients.append(weakref.ref(client))
        threads += [client._local._thread, client.fleet._thread]
    del client
    assert settle(lambda: all(c() is None for c in clients)), (
        f"{sum(c() is not None for c in clients)} dropped clients are alive, held by "
        f"{[_holders(c) for c in clients if c() is not None][:3]}")
    assert settle(lambda: not any(t is not None and t.is_alive() for t in threads)), (
        f"still running: {[t.name for t in threads if t is not None and t.is_alive()]}")
    assert settle(lambda: not (_ids(raw) - before)), (
        f"{len(_ids(raw) - before)} connections left by 20 dropped clients")


def test_closed_clients_of_the_in_process_tier_end_it(redis_url: str, namespace: str,
                                                      raw: redis.Redis) -> None:
    settle(lambda: False, 0.2)
    before = _ids(raw)
    kept = CacheClient.from_url(redis_url, NAMESPACE=namespace, LOCAL_CACHE=True)
    other = CacheClient.from_url(redis_url, NAMESPACE=namespace, LOCAL_CACHE=True)
    for c in (kept, other):
        c.set("k", 1)
        assert c.get("k") == 1
    tier = kept._local
    assert tier is other._local and tier._thread is not None  # one per process and namespace
    other.close()
    assert tier.disabled is None and kept.get("k") == 1  # still in use by ``kept``
    assert tier._thread.is_alive()
    kept.close()
    assert settle(lambda: not tier._thread.is_alive()), "the tier's thread still runs"
    assert settle(lambda: not (_ids(raw) - before)), (
        f"{len(_ids(raw) - before)} connections left by two closed clients")


def test_a_client_dropped_while_its_fleet_thread_is_mid_turn_is_collected(
        redis_url: str, namespace: str) -> None:
    """A background turn in progress holds its thread's object, never the client: the
    client is collected at once, and the thread ends after that turn."""
    import threading

    client = CacheClient.from_url(redis_url, NAMESPACE=namespace, FLEET_PUBLISH_INTERVAL=0.05)
    inside, release = threading.Event(), threading.Event()

    def blocking() -> None:  # a gauge refresh that takes its time (the turn is in progress)
        inside.set()
        release.wait(10)

    client.fleet.listeners.append(blocking)
    client.set("k", 1)  # starts the fleet thread
    assert inside.wait(5)
    thread, ref = client.fleet._thread, weakref.ref(client)
    assert thread is not None
    del client
    try:
        assert settle(lambda: ref() is None, 3), (
            f"held by {_holders(ref)}")
    finally:
        release.set()
    assert settle(lambda: not thread.is_alive(), 5), "the dropped client's fleet thread runs"
