"""AsyncCacheClient: basic operations, fail-open, single-flight across coroutines."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import redis

from cachekit_web import DEFERRED, AsyncCacheClient, CacheClient
from cachekit_web.core.resilience.breaker import State
from cachekit_web.embedded import EmbeddedRedis

from .conftest import KEY_A


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_async_basic_operations(redis_url: str, namespace: str, raw: redis.Redis) -> None:
    async def main() -> None:
        c = AsyncCacheClient.from_url(redis_url, NAMESPACE=namespace, MASTER_KEY=KEY_A)
        assert await c.get("k") is None and await c.get("k", 1) == 1
        assert await c.set("k", {"v": (1, 2)}) is True
        assert await c.get("k") == {"v": (1, 2)}
        assert await c.add("k", 2) is False and await c.add("new", None) is True
        assert await c.get_many(["k", "new", "nope"]) == {"k": {"v": (1, 2)}, "new": None}
        assert await c.set_many({"a": 1, "b": 2}, 60) == []
        assert await c.delete_many(["a", "b", "x"]) == 2
        assert await c.delete("k") is True and await c.delete("k") is False
        assert await c.incr("n") is None
        assert await c.incr("n", default=1) == 2 and await c.decr("n", 5) == -3
        assert await c.touch("n", None) is True and await c.ttl("n") is None
        await c.set("short", 1, 0.2)
        assert 0 < (await c.ttl("short") or 0) <= 0.2
        await asyncio.sleep(0.25)
        assert await c.has_key("short") is False
        assert await c.set("gone", 1) and await c.set("gone", 1, 0) and not await c.has_key("gone")
        raw.set("outside-" + namespace, b"1")
        assert await c.clear() >= 2
        assert raw.get("outside-" + namespace) == b"1"
        report = await c.health()
        assert report.status == "ok" and report.as_dict()["server"]["redis_version"]
        assert c.metrics.totals["hits"] >= 3
        await c.close()
        raw.delete("outside-" + namespace)

    run(main())


def test_async_incr_concurrent(redis_url: str, namespace: str) -> None:
    async def main() -> int | None:
        c = AsyncCacheClient.from_url(redis_url, NAMESPACE=namespace)
        await c.set("n", 0)

        async def bump() -> None:
            for _ in range(20):
                assert await c.incr("n") is not None  # None = lost to contention (E050)

        await asyncio.gather(*(bump() for _ in range(20)))
        value = await c.get("n")
        assert c.metrics.errors["E050"] == 0
        await c.close()
        return value  # type: ignore[no-any-return]

    assert run(main()) == 400


def test_async_single_flight(redis_url: str, namespace: str) -> None:
    calls = []

    async def compute() -> str:
        calls.append(1)
        await asyncio.sleep(0.3)
        return "value"

    async def main() -> list[Any]:
        c = AsyncCacheClient.from_url(redis_url, NAMESPACE=namespace)
        results = await asyncio.gather(*(c.fetch("k", compute, 60) for _ in range(20)))
        sync_compute = await c.get_or_set("k2", lambda: "sync-ok", 60)
        assert sync_compute == "sync-ok" and await c.get("k2") == "sync-ok"
        await c.close()
        return results

    results = run(main())
    assert len(calls) == 1
    assert {r.value for r in results} == {"value"}
    assert [r.status for r in results].count("miss") == 1


def test_async_two_clients_share_redis_lock(redis_url: str, namespace: str) -> None:
    calls = []

    async def compute() -> int:
        calls.append(1)
        await asyncio.sleep(0.3)
        return 3

    async def main() -> list[int]:
        clients = [AsyncCacheClient.from_url(redis_url, NAMESPACE=namespace) for _ in range(4)]
        values = await asyncio.gather(*(clients[i % 4].get_or_set("k", compute, 60)
                                        for i in range(12)))
        for c in clients:
            await c.close()
        return list(values)

    assert run(main()) == [3] * 12
    assert len(calls) == 1


def test_async_fail_open_when_killed(own_redis: EmbeddedRedis) -> None:
    async def main() -> None:
        c = AsyncCacheClient.from_url(
            own_redis.url, SOCKET_TIMEOUT=0.2, SOCKET_CONNECT_TIMEOUT=0.2,
            CIRCUIT_BREAKER_RECOVERY_TIMEOUT=0.5)
        await c.set("k", 1, 60)
        await c.set("stale", "old", 60)
        own_redis.kill()
        start = time.perf_counter()
        for _ in range(20):
            assert await c.get("k") is None
            assert await c.set("stale", "new") is False
            assert await c.get_many(["k"]) == {}
            assert await c.incr("k") is None
            assert await c.delete("k") is DEFERRED
            assert (await c.fetch("x", lambda: 9)).status == "bypass"
        assert time.perf_counter() - start < 3.0
        assert c.breaker.state is State.OPEN
        assert (await c.health()).status == "down"
        own_redis.start()
        await asyncio.sleep(0.55)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not await c.set("probe", 1):
            await asyncio.sleep(0.05)
        assert await c.get("probe") == 1  # the second success in a row closes it
        assert c.breaker.state is State.CLOSED
        await c.close()

    run(main())


def test_async_sharing_with_sync_client(redis_url: str, namespace: str) -> None:
    sync = CacheClient.from_url(redis_url, NAMESPACE=namespace, SIGNING_KEY="test-signing-secret")

    async def main() -> None:
        shared = AsyncCacheClient.sharing(sync)
        assert shared.breaker is sync.breaker and shared.metrics is sync.metrics
        assert shared.codec is sync.codec and shared.pending is sync.pending
        sync.set("k", "from-sync")
        assert await shared.get("k") == "from-sync"
        await shared.set("k2", "from-async")
        await shared.close()

    run(main())
    assert sync.get("k2") == "from-async"
    assert sync.metrics.totals["sets"] == 2 and sync.metrics.totals["hits"] == 2
    sync.close()


def test_async_memory_backend() -> None:
    async def main() -> None:
        c = AsyncCacheClient.from_url("memory://async-test")
        await c.set("k", [1])
        assert await c.get("k") == [1]
        calls = []

        async def compute() -> int:
            calls.append(1)
            await asyncio.sleep(0.1)
            return 1

        await asyncio.gather(*(c.get_or_set("g", compute) for _ in range(10)))
        assert len(calls) == 1
        assert await c.clear() == 2
        await c.close()

    run(main())


def test_sharing_does_not_duplicate_breaker_logs(caplog: Any) -> None:
    import logging

    from cachekit_web.embedded import free_port

    sync = CacheClient.from_url(f"redis://127.0.0.1:{free_port()}/0",
                                CIRCUIT_BREAKER_FAILURE_THRESHOLD=1)
    shared = AsyncCacheClient.sharing(sync)
    caplog.set_level(logging.INFO, logger="cachekit_web")
    sync.get("k")
    opened = [r for r in caplog.records if "closed -> open" in r.getMessage()]
    assert len(opened) == 1
    assert shared.breaker.state is State.OPEN
    sync.close()


def test_async_waiting_callers_report_bypass_when_unavailable() -> None:
    from cachekit_web.embedded import free_port

    async def compute() -> int:
        await asyncio.sleep(0.1)
        return 1

    async def main() -> list[str]:
        c = AsyncCacheClient.from_url(f"redis://127.0.0.1:{free_port()}/0",
                                      CIRCUIT_BREAKER_ENABLED=False, RETRIES=0)
        results = await asyncio.gather(*(c.fetch("k", compute) for _ in range(5)))
        await c.close()
        return [r.status for r in results]

    assert set(run(main())) == {"bypass"}


def test_cancelled_probe_does_not_wedge_the_breaker(own_redis: EmbeddedRedis) -> None:
    async def main() -> None:
        c = AsyncCacheClient.from_url(
            own_redis.url, SOCKET_TIMEOUT=0.3, SOCKET_CONNECT_TIMEOUT=0.3,
            CIRCUIT_BREAKER_FAILURE_THRESHOLD=1, CIRCUIT_BREAKER_RECOVERY_TIMEOUT=0.2)
        await c.set("k", 1)
        own_redis.pause()
        await c.get("k")  # times out: the breaker opens
        assert c.breaker.state is State.OPEN
        await asyncio.sleep(0.25)
        probe = asyncio.ensure_future(c.get("k"))  # the half-open probe, hanging
        await asyncio.sleep(0.05)
        probe.cancel()  # e.g. the HTTP client went away
        with contextlib.suppress(asyncio.CancelledError):
            await probe
        own_redis.resume()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not await c.set("k", 2):
            await asyncio.sleep(0.05)
        assert await c.get("k") == 2  # the second success in a row closes it
        assert c.breaker.state is State.CLOSED, "breaker wedged half-open after a cancel"
        await c.close()

    run(main())


def test_cancelled_replay_keeps_remembered_deletes(own_redis: EmbeddedRedis) -> None:
    async def main() -> None:
        c = AsyncCacheClient.from_url(
            own_redis.url, SOCKET_TIMEOUT=0.3, SOCKET_CONNECT_TIMEOUT=0.3,
            CIRCUIT_BREAKER_FAILURE_THRESHOLD=1, CIRCUIT_BREAKER_RECOVERY_TIMEOUT=0.2)
        await c.set("k", 1)
        own_redis.pause()
        await c.get("x")  # opens the breaker
        assert await c.delete("k") is DEFERRED and len(c.pending) == 1
        await asyncio.sleep(0.25)
        call = asyncio.ensure_future(c.get("x"))  # replays the delete first: hangs
        await asyncio.sleep(0.05)
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await call
        assert len(c.pending) == 1, "a cancelled replay forgot the remembered delete"
        own_redis.resume()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not await c.set("probe", 1):
            await asyncio.sleep(0.05)
        assert len(c.pending) == 0 and await c.get("k") is None
        await c.close()

    run(main())


def test_client_used_from_several_event_loops(redis_url: str, namespace: str) -> None:
    # asyncio.run per call, or asgiref's async_to_sync (Flask async views, Django under WSGI),
    # gives every call a new event loop; redis.asyncio pools belong to the loop that made them
    client = AsyncCacheClient.from_url(redis_url, NAMESPACE=namespace)

    async def one(i: int) -> Any:
        assert await client.set("k", i) is True
        return await client.get("k")

    for i in range(4):
        assert run(one(i)) == i
    assert client.metrics.errors.total() == 0
    run(client.close())


def test_short_lived_event_loops_do_not_leak_connections(redis_url: str, namespace: str) -> None:
    import gc
    import warnings

    import redis as redis_sync

    raw = redis_sync.Redis.from_url(redis_url)
    before = int(raw.info("clients")["connected_clients"])
    c = AsyncCacheClient.from_url(redis_url, NAMESPACE=namespace)
    gc.collect()  # earlier tests' garbage is not this test's
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # each loop closes its pool as asyncio.run ends
        for i in range(30):  # one loop per call, as async_to_sync does under WSGI
            asyncio.run(c.set(f"k{i}", i))
            assert asyncio.run(c.get(f"k{i}")) == i
        gc.collect()
    after = int(raw.info("clients")["connected_clients"])
    raw.close()
    unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not unclosed, unclosed[:3]
    assert after - before <= 3, (before, after)
