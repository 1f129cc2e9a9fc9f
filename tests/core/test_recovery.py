"""Active recovery (issue 21): the cache is back within a second of Redis answering."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from cachekit_web import AsyncCacheClient, CacheClient
from cachekit_web.core.resilience.breaker import State
from cachekit_web.embedded import EmbeddedRedis

from .conftest import raw_for

_FAST = dict(SOCKET_TIMEOUT=0.3, SOCKET_CONNECT_TIMEOUT=0.3)


def _until(check: Callable[[], bool], limit: float) -> float | None:
    """Seconds until ``check()`` held (polled every 10 ms), None if it did not in ``limit``."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if check():
            return time.monotonic() - start
        time.sleep(0.01)
    return None


def _open_it(client: CacheClient) -> int:
    """Calls against the unreachable server until the breaker opens (bounded); how many."""
    for i in range(40):
        client.get(f"k{i}")
        if client.breaker.state is State.OPEN:
            return i + 1
    raise AssertionError(client.breaker.snapshot())


def _reads_back(client: CacheClient) -> Callable[[], bool]:
    n = [0]

    def check() -> bool:
        n[0] += 1
        return bool(client.set("own", n[0])) and client.get("own") == n[0]

    return check


def test_a_hung_server_is_cached_again_within_a_second_of_sigcont(
        own_redis: EmbeddedRedis) -> None:
    client = CacheClient.from_url(own_redis.url, NAMESPACE="hang", **_FAST)
    try:
        assert client.set("own", 0) and client.get("own") == 0
        own_redis.pause()
        try:
            _open_it(client)
            time.sleep(2.0)  # an outage of a few seconds
        finally:
            own_redis.resume()
        took = _until(_reads_back(client), 5.0)
        assert took is not None and took < 1.0, (took, client.breaker.snapshot())
        assert client.breaker.state is State.CLOSED
    finally:
        client.close()


def test_a_restarted_server_is_cached_again_within_a_second(own_redis: EmbeddedRedis) -> None:
    client = CacheClient.from_url(own_redis.url, NAMESPACE="restart", **_FAST)
    try:
        assert client.set("own", 0)
        own_redis.kill()
        _open_it(client)
        time.sleep(2.0)
        own_redis.start()
        took = _until(_reads_back(client), 5.0)
        assert took is not None and took < 1.0, (took, client.breaker.snapshot())
    finally:
        client.close()


def test_an_async_client_is_cached_again_within_a_second(own_redis: EmbeddedRedis) -> None:
    async def scenario() -> float | None:
        client = AsyncCacheClient.from_url(own_redis.url, NAMESPACE="async", **_FAST)
        try:
            assert await client.set("own", 0)
            own_redis.kill()
            for i in range(40):
                await client.get(f"k{i}")
                if client.breaker.state is State.OPEN:
                    break
            assert client.breaker.state is State.OPEN
            await asyncio.sleep(2.0)
            own_redis.start()
            start = time.monotonic()
            for n in range(500):  # bounded: 10 ms apart
                if await client.set("own", n) and await client.get("own") == n:
                    return time.monotonic() - start
                await asyncio.sleep(0.01)
            return None
        finally:
            await client.close()

    took = asyncio.run(scenario())
    assert took is not None and took < 1.0, took


def test_a_reply_pending_across_a_hang_never_answers_another_command(
        own_redis: EmbeddedRedis) -> None:
    """SIGSTOP with commands sent and unanswered, SIGCONT: each call gets its own key's value."""
    client = CacheClient.from_url(own_redis.url, NAMESPACE="late", SOCKET_TIMEOUT=0.3,
                                  SOCKET_CONNECT_TIMEOUT=0.3, CIRCUIT_BREAKER_ENABLED=False)
    keys = [f"key{i}" for i in range(8)]
    try:
        for k in keys:
            assert client.set(k, k)
        wrong: list[tuple[str, object]] = []
        stop = threading.Event()

        def reader(offset: int) -> None:
            i = offset
            while not stop.is_set():
                i += 1
                k = keys[i % len(keys)]
                got = client.get(k)
                if got is not None and got != k:
                    wrong.append((k, got))

        threads = [threading.Thread(target=reader, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for _ in range(3):  # bounded: three hangs, each with replies pending on the sockets
            time.sleep(0.2)
            own_redis.pause()
            time.sleep(0.45)  # longer than the socket timeout: replies come after it
            own_redis.resume()
            time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join(5)
        assert not wrong, wrong[:5]
        assert all(client.get(k) == k for k in keys)
    finally:
        own_redis.resume()
        client.close()


def test_probes_while_down_are_few_and_not_logged(
        own_redis: EmbeddedRedis, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger="cachekit_web")
    client = CacheClient.from_url(own_redis.url, NAMESPACE="rate", **_FAST)
    try:
        own_redis.kill()
        _open_it(client)
        time.sleep(3.0)
        for i in range(50):  # calls while open cost nothing and log nothing
            client.get(f"x{i}")
        sent = client.breaker.probes_sent
        # 250 ms apart for the first seconds, then further: at most 4 per second.
        assert 4 <= sent <= 13, sent
        own_redis.start()
        admin = raw_for(own_redis.url)
        try:
            assert _until(_reads_back(client), 5.0) is not None
            time.sleep(0.5)  # owed invalidations of the failed sets replayed meanwhile
            admin.config_resetstat()
            time.sleep(1.0)
            stats = admin.info("commandstats")
            assert "cmdstat_ping" not in stats, stats  # closed again: no probing at all
        finally:
            admin.close()
        lines = [r.getMessage() for r in caplog.records if "circuit breaker" in r.getMessage()
                 and r.levelname != "DEBUG"]
        assert len(lines) == 2, lines  # one when it opened, one when it closed
        assert "closed -> open" in lines[0] and "-> closed" in lines[1]
    finally:
        client.close()


def test_probes_reach_a_hung_server_no_more_than_four_times_a_second(
        own_redis: EmbeddedRedis) -> None:
    """Counted by the server: PINGs sent into a hang are executed after SIGCONT."""
    client = CacheClient.from_url(own_redis.url, NAMESPACE="hungrate", SOCKET_TIMEOUT=0.1,
                                  SOCKET_CONNECT_TIMEOUT=0.1)
    admin = raw_for(own_redis.url)
    try:
        assert client.get("k") is None
        admin.config_resetstat()
        conns_before = int(admin.info("stats")["total_connections_received"])
        own_redis.pause()
        try:
            calls = _open_it(client)
            opened = time.monotonic()
            time.sleep(3.0)
            sent = client.breaker.probes_sent
            down = time.monotonic() - opened
        finally:
            own_redis.resume()
        assert 3 <= sent <= 4 * down, (sent, down)

        def closed() -> bool:
            client.get("k")  # real calls confirm the recovery a probe found
            return client.breaker.state is State.CLOSED

        assert _until(closed, 3.0) is not None
        pings = int(admin.info("commandstats").get("cmdstat_ping", {}).get("calls", 0))
        # A probe reaches the hung server as a PING, or as a new connection whose handshake
        # timed out before its PING was sent; nothing else reaches it.
        conns = int(admin.info("stats")["total_connections_received"]) - conns_before
        assert pings <= sent + 2 and conns <= sent + calls + 2, (sent, calls, pings, conns)
        assert sent <= pings + conns, (sent, pings, conns)
    finally:
        admin.close()
        client.close()


def test_an_async_client_never_reads_a_late_reply_either(own_redis: EmbeddedRedis) -> None:
    keys = [f"key{i}" for i in range(8)]

    async def scenario() -> list[tuple[str, object]]:
        client = AsyncCacheClient.from_url(own_redis.url, NAMESPACE="alate",
                                           SOCKET_TIMEOUT=0.3, SOCKET_CONNECT_TIMEOUT=0.3,
                                           CIRCUIT_BREAKER_ENABLED=False)
        wrong: list[tuple[str, object]] = []
        stop = asyncio.Event()
        try:
            for k in keys:
                assert await client.set(k, k)

            async def reader(offset: int) -> None:
                i = offset
                while not stop.is_set():
                    i += 1
                    k = keys[i % len(keys)]
                    got = await client.get(k)
                    if got is not None and got != k:
                        wrong.append((k, got))
                    await asyncio.sleep(0)

            tasks = [asyncio.create_task(reader(n)) for n in range(4)]
            for _ in range(3):  # bounded: three hangs longer than the socket timeout
                await asyncio.sleep(0.2)
                own_redis.pause()
                await asyncio.sleep(0.45)
                own_redis.resume()
                await asyncio.sleep(0.3)
            stop.set()
            await asyncio.gather(*tasks)
            assert [await client.get(k) for k in keys] == keys
        finally:
            own_redis.resume()
            await client.close()
        return wrong

    wrong = asyncio.run(scenario())
    assert not wrong, wrong[:5]


def test_clients_of_the_same_redis_share_its_probes(own_redis: EmbeddedRedis) -> None:
    """Two caches on one Redis (Django's default and sessions): four probes a second, not 8."""
    clients = [CacheClient.from_url(own_redis.url, NAMESPACE=f"twin{i}", **_FAST)
               for i in range(2)]
    try:
        own_redis.kill()
        for c in clients:
            _open_it(c)
        opened = time.monotonic()
        time.sleep(2.0)
        sent = sum(c.breaker.probes_sent for c in clients)
        assert sent <= 4 * (time.monotonic() - opened) + 1, sent
        own_redis.start()
        for c in clients:
            took = _until(_reads_back(c), 5.0)
            assert took is not None and took < 1.0, took
    finally:
        for c in clients:
            c.close()


def test_async_clients_sharing_a_breaker_add_no_prober_thread(own_redis: EmbeddedRedis) -> None:
    """Per-event-loop twins (Flask async views, Django under ASGI) share the owner's prober."""
    client = CacheClient.from_url(own_redis.url, NAMESPACE="shared", **_FAST)

    def probers() -> int:
        return sum(1 for t in threading.enumerate()
                   if t.name == "cachekit-replay" and t.is_alive())

    try:
        before = probers()
        twins = [AsyncCacheClient.twin(client), AsyncCacheClient.sharing(client)]
        own_redis.kill()

        async def calls() -> None:
            for twin in twins:
                for i in range(10):
                    await twin.get(f"k{i}")

        asyncio.run(calls())
        assert client.breaker.state is State.OPEN
        time.sleep(0.6)  # a couple of probes went out meanwhile
        assert probers() - before == 1
        own_redis.start()
        took = _until(_reads_back(client), 5.0)
        assert took is not None and took < 1.0, took
    finally:
        client.close()
