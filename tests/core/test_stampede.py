"""get_or_set / fetch: compute once across threads and processes, stale-while-revalidate, E050."""

from __future__ import annotations

import multiprocessing
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis

from cachekit_web import CacheClient, LockTimeoutError, ValueTooLargeError
from cachekit_web.embedded import free_port

from .conftest import KEY_A, FakeClock, MakeClient

COUNTER = "stampede-counter"  # outside any namespace


def _worker(url: str, namespace: str, counter: str, barrier: Any, out: Any,
            inherited: CacheClient | None = None) -> None:
    # inherited: a client built and used in the parent before fork (gunicorn --preload)
    client = inherited or CacheClient.from_url(url, NAMESPACE=namespace)
    r = redis.Redis.from_url(url)

    def compute() -> dict[str, int]:
        n = int(r.incr(counter))
        time.sleep(0.3)
        return {"computed_by": n}

    barrier.wait(10)
    result = client.fetch("shared", compute, 60)
    out.put((result.value, result.status))
    client.close()
    r.close()


@pytest.mark.parametrize("inherit", [False, True], ids=["own-client", "inherited-client"])
def test_twenty_processes_compute_once(redis_url: str, namespace: str, raw: redis.Redis,
                                       inherit: bool) -> None:
    counter = f"{COUNTER}:{namespace}"
    raw.delete(counter)
    parent = None
    if inherit:
        parent = CacheClient.from_url(redis_url, NAMESPACE=namespace, MASTER_KEY=KEY_A)
        parent.set("warm", 1)  # pooled connection and crypto in use before fork
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(20), ctx.Queue()
    procs = [ctx.Process(target=_worker,
                         args=(redis_url, namespace, counter, barrier, out, parent))
             for _ in range(20)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    try:
        results = [out.get(timeout=20) for _ in procs]
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join(5)
    print(f"\n20 processes: {time.perf_counter() - start:.2f}s")
    assert all(p.exitcode == 0 for p in procs)
    assert raw.get(counter) == b"1"
    assert {str(v) for v, _ in results} == {str({"computed_by": 1})}
    statuses = [s for _, s in results]
    assert statuses.count("miss") == 1 and statuses.count("hit") == 19, statuses
    raw.delete(counter)
    if parent is not None:
        assert parent.get("shared") == {"computed_by": 1}  # parent still works after fork
        parent.close()


def test_twenty_threads_compute_once(make_client: MakeClient) -> None:
    client = make_client()
    calls = []
    lock = threading.Lock()
    barrier = threading.Barrier(20)

    def compute() -> str:
        with lock:
            calls.append(1)
        time.sleep(0.3)
        return "value"

    def run() -> tuple[str, str]:
        barrier.wait(5)
        result = client.fetch("k", compute, 60)
        return result.value, result.status

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: run(), range(20)))
    assert len(calls) == 1
    assert {v for v, _ in results} == {"value"}
    assert [s for _, s in results].count("miss") == 1
    assert client.get("k") == "value"


def test_two_clients_in_threads_compute_once(make_client: MakeClient) -> None:
    # separate clients = separate in-process flights: only the Redis lock protects them
    clients = [make_client() for _ in range(5)]
    calls = []
    barrier = threading.Barrier(10)

    def compute() -> int:
        calls.append(1)
        time.sleep(0.3)
        return 7

    def run(i: int) -> int:
        barrier.wait(5)
        return clients[i % 5].get_or_set("k", compute, 60)

    with ThreadPoolExecutor(10) as pool:
        assert list(pool.map(run, range(10))) == [7] * 10
    assert len(calls) == 1


def test_statuses_hit_miss_stale(make_client: MakeClient, clock: FakeClock) -> None:
    client = make_client(clock=clock)
    other = make_client(clock=clock)  # another "process": own flights, shares the Redis lock
    assert client.fetch("k", lambda: "v1", 0.3, stale_ttl=30).status == "miss"
    assert client.fetch("k", lambda: "unused", 0.3, stale_ttl=30).status == "hit"
    assert client.get("k") == "v1" and client.has_key("k")
    clock.advance(0.4)
    assert client.get("k") is None  # past its fresh time: get() does not serve stale
    assert client.metrics.totals["expired"] >= 1

    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        assert release.wait(10)  # the recompute runs until the other callers have answered
        return "v2"

    with ThreadPoolExecutor(1) as pool:
        leader = pool.submit(client.fetch, "k", slow, 0.3, 30)
        assert started.wait(5)
        try:
            same_process = client.fetch("k", lambda: "never", 0.3, stale_ttl=30)
            other_process = other.fetch("k", lambda: "never", 0.3, stale_ttl=30)
            # Both answered while the recompute was still blocked: stale, without waiting.
            assert not leader.done()
        finally:
            release.set()
        lead = leader.result(10)
    assert (same_process.value, same_process.status) == ("v1", "stale")
    assert (other_process.value, other_process.status) == ("v1", "stale")
    assert (lead.value, lead.status) == ("v2", "miss")
    assert client.fetch("k", lambda: "never", 0.3, stale_ttl=30).status == "hit"
    assert client.metrics.totals["stale"] >= 1 and other.metrics.totals["stale"] == 1


def test_status_bypass_when_unavailable() -> None:
    client = CacheClient.from_url(f"redis://127.0.0.1:{free_port()}/0")
    calls = []
    for _ in range(10):
        result = client.fetch("k", lambda: calls.append(1) or "x")
        assert (result.value, result.status) == ("x", "bypass")
    assert len(calls) == 10
    client.close()


def test_should_cache_false_is_not_stored(make_client: MakeClient) -> None:
    client = make_client()
    calls = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert client.get_or_set("k", compute, 60, should_cache=lambda v: False) == 1
    assert client.get_or_set("k", compute, 60, should_cache=lambda v: False) == 2
    assert client.get_or_set("k", compute, 60) == 3
    assert client.get_or_set("k", compute, 60) == 3
    assert client.get_or_set("none", lambda: None, 60) is None
    assert client.fetch("none", lambda: 1, 60).status == "hit"  # a stored None is a hit


def test_failed_compute_releases_lock(make_client: MakeClient, raw: redis.Redis) -> None:
    client = make_client(LOCK_WAIT=0.5)

    def boom() -> int:
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        client.get_or_set("k", boom)
    assert raw.exists(client._lock_name(client.full_key("k"))) == 0
    t0 = time.perf_counter()
    assert client.get_or_set("k", lambda: 5) == 5
    assert time.perf_counter() - t0 < 0.3
    assert client.metrics.errors["E050"] == 0


def test_e050_lock_held_elsewhere(make_client: MakeClient, raw: redis.Redis) -> None:
    client = make_client(LOCK_WAIT=0.3)
    lock_key = client._lock_name(client.full_key("k"))
    raw.set(lock_key, b"someone-else", px=10_000)
    t0 = time.perf_counter()
    result = client.fetch("k", lambda: "computed", 60)
    waited = time.perf_counter() - t0
    assert (result.value, result.status) == ("computed", "miss")
    assert 0.25 < waited < 2.0
    assert client.metrics.errors["E050"] == 1
    assert raw.get(lock_key) == b"someone-else"  # another holder's lock is not released

    strict = make_client(LOCK_WAIT=0.3, STRICT=True)
    assert strict.get_or_set("free", lambda: 1) == 1  # no lock held: no error
    raw.set(strict._lock_name(strict.full_key("k3")), b"other", px=10_000)
    with pytest.raises(LockTimeoutError) as info:
        strict.get_or_set("k3", lambda: 1)
    assert info.value.code == "E050" and isinstance(info.value, TimeoutError)
    assert strict.metrics.errors["E050"] == 1


def test_waiting_callers_report_bypass_when_cache_unavailable() -> None:
    client = CacheClient.from_url(f"redis://127.0.0.1:{free_port()}/0",
                                  CIRCUIT_BREAKER_ENABLED=False, RETRIES=0)
    barrier = threading.Barrier(5)
    calls = []

    def compute() -> int:
        calls.append(1)
        time.sleep(0.2)
        return 1

    def run() -> str:
        barrier.wait(5)
        return client.fetch("k", compute).status

    with ThreadPoolExecutor(5) as pool:
        statuses = list(pool.map(lambda _: run(), range(5)))
    # the cache was never used: no caller may report a hit (Cache-Status would lie)
    assert set(statuses) == {"bypass"}, statuses
    assert len(calls) < 5
    client.close()


def test_a_lock_that_expired_during_compute_is_not_a_server_error(
    make_client: MakeClient,
) -> None:
    c = make_client(LOCK_TIMEOUT=0.1)

    def slow() -> str:
        time.sleep(0.25)  # outlives the lock
        return "v"

    for i in range(6):
        assert c.get_or_set(f"k{i}", slow) == "v"
    assert c.metrics.snapshot()["errors_by_code"] == {}
    assert c.breaker.state.value == "closed"


def test_a_computed_value_too_large_to_cache_is_still_returned(make_client: MakeClient) -> None:
    import os

    c = make_client(MAX_VALUE_SIZE=2000)
    big = os.urandom(5000)  # random bytes do not compress below the limit
    result = c.fetch("big", lambda: big)
    assert (result.value, result.status) == (big, "miss")
    assert c.get("big") is None
    assert c.metrics.snapshot()["errors_by_code"] == {"E022": 1}
    strict = make_client(MAX_VALUE_SIZE=2000, STRICT=True)
    with pytest.raises(ValueTooLargeError):
        strict.get_or_set("big2", lambda: big)


def test_async_computed_value_too_large_is_still_returned(redis_url: str, namespace: str) -> None:
    import asyncio
    import os

    from cachekit_web import AsyncCacheClient

    async def run() -> None:
        c = AsyncCacheClient.from_url(redis_url, NAMESPACE=namespace, MAX_VALUE_SIZE=2000)
        try:
            big = os.urandom(5000)
            assert await c.get_or_set("big", lambda: big) == big
        finally:
            await c.close()

    asyncio.run(run())


def test_add_replaces_an_entry_in_its_stale_window(make_client: MakeClient,
                                                   clock: FakeClock) -> None:
    c = make_client(clock=clock)
    c.set("k", "old", 0.1, stale_ttl=30)
    clock.advance(0.2)
    assert c.get("k") is None  # stale: absent to get()
    assert c.add("k", "new") is True
    assert c.get("k") == "new"
