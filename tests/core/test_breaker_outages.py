"""The breaker against real outages: partial timeouts, a refused password, a hung server."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from cachekit_web import CacheClient
from cachekit_web.core.resilience.breaker import CircuitBreaker, State
from cachekit_web.embedded import EmbeddedRedis

from .conftest import raw_for


@pytest.fixture()
def admin(own_redis: EmbeddedRedis) -> Iterator[redis.Redis]:
    r = raw_for(own_redis.url)
    yield r
    r.close()


def test_partial_timeouts_open_the_breaker_on_the_failure_rate(
        own_redis: EmbeddedRedis, admin: redis.Redis) -> None:
    """Every set times out (writes paused), every get answers: a success never hides it."""
    client = CacheClient.from_url(own_redis.url, NAMESPACE="partial", SOCKET_TIMEOUT=0.1,
                                  SOCKET_CONNECT_TIMEOUT=0.5)
    try:
        assert client.set("k", 1) and client.get("k") == 1
        calls = 0
        for _ in range(40):  # bounded: the default MIN_CALLS is 20
            admin.client_pause(10_000, all=False)  # WRITE mode: reads and CLIENT UNPAUSE pass
            try:
                assert client.set("k", 2) is False  # times out
            finally:
                admin.execute_command("CLIENT", "UNPAUSE")
            calls += 1
            if client.breaker.state is State.OPEN:
                break
            client.get("k")  # answers (a miss: the failed set's key was deleted first)
            calls += 1
            assert client.metrics.errors.total() == calls // 2  # only the sets failed
            if client.breaker.state is State.OPEN:
                break
        assert client.breaker.state is State.OPEN, client.breaker.snapshot()
        assert calls <= client.settings.CIRCUIT_BREAKER_MIN_CALLS + 1
        assert "calls failed" in client.breaker.transitions[-1].reason
        assert client.metrics.errors["E064"] >= 5  # more than the old threshold, in vain
    finally:
        client.close()


def test_refused_password_opens_the_breaker_and_stops_reconnecting(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="cachekit_web")
    with EmbeddedRedis(password="right-password") as server:
        admin = raw_for(server.url)
        client = CacheClient.from_url(server.url.replace("right-password", "wrong-password"),
                                      NAMESPACE="auth")
        try:
            before = int(admin.info("stats")["total_connections_received"])
            for i in range(200):
                assert client.get(f"k{i}") is None
                client.set(f"k{i}", i)
            after = int(admin.info("stats")["total_connections_received"])
            threshold = client.settings.CIRCUIT_BREAKER_FAILURE_THRESHOLD
            # at most one connection per failing call (and its one retry) until it opened
            assert after - before <= 2 * threshold, (before, after)
            assert client.breaker.state is State.OPEN
            assert client.metrics.errors["E060"] == threshold
            assert client.metrics.errors["E030"] == 400 - threshold
            e060 = [r for r in caplog.records if getattr(r, "cachekit_code", "") == "E060"]
            assert len(e060) == 1, [r.getMessage() for r in e060]  # LOG_INTERVAL is 30 s
            assert "wrong-password" not in caplog.text
        finally:
            admin.close()
            client.close()


def _on_a_stepped_breaker(server: EmbeddedRedis, namespace: str, timeout: float,
                          now: list[float]) -> tuple[CacheClient, CircuitBreaker, CacheClient]:
    """(a client for its settings, a breaker on the clock ``now``, a client using it)."""
    probe = CacheClient.from_url(server.url, NAMESPACE=namespace, SOCKET_TIMEOUT=timeout,
                                 SOCKET_CONNECT_TIMEOUT=timeout)
    breaker = CircuitBreaker(failure_threshold=5, slow_call_duration=0.25, slow_in_flight=3,
                             clock=lambda: now[0])
    return probe, breaker, CacheClient(probe.settings, breaker=breaker)


def test_calls_piling_up_on_a_hung_server_open_the_breaker_for_the_next_caller(
        own_redis: EmbeddedRedis) -> None:
    now = [0.0]
    probe, breaker, client = _on_a_stepped_breaker(own_redis, "hung", 2.0, now)
    try:
        for _ in range(4):  # warm four pooled connections
            client.set("k", 1)
        own_redis.pause()
        threads = [threading.Thread(target=client.get, args=("k",)) for _ in range(3)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 5
        while breaker.snapshot()["in_flight"] < 3 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert breaker.snapshot()["in_flight"] == 3
        now[0] += 0.3  # three calls now hang for longer than SLOW_CALL_DURATION
        start = time.perf_counter()
        assert client.get("k", "miss") == "miss"
        assert time.perf_counter() - start < 0.2  # did not wait for the 2 s socket timeout
        assert breaker.state is State.OPEN
    finally:
        own_redis.resume()
        for t in threads:
            t.join(5)
        client.close()
        probe.close()


def test_calls_stuck_on_a_hung_server_are_cut_short_without_a_new_caller(
        own_redis: EmbeddedRedis) -> None:
    """Every thread is blocked in a read (no caller left to notice): the watchdog opens
    the breaker and the blocked calls fail open at once, not after SOCKET_TIMEOUT."""
    now = [0.0]
    probe, breaker, client = _on_a_stepped_breaker(own_redis, "hung-cut", 5.0, now)
    results: list[object] = []
    try:
        client.set("k", 1)
        # Four connected connections in the pool: each thread's read, not its connect, hangs.
        pool = client._backend_any.pool
        conns = [pool.get_connection() for _ in range(4)]
        for conn in conns:
            pool.release(conn)
        own_redis.pause()
        threads = [threading.Thread(target=lambda: results.append(client.get("k", "miss")))
                   for _ in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 5
        while breaker.snapshot()["in_flight"] < 4 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert breaker.snapshot()["in_flight"] == 4
        now[0] += 0.3  # they now hang for longer than SLOW_CALL_DURATION
        cut_by = time.monotonic() + 2.0  # the old code waits out the 5 s socket timeout
        for t in threads:
            t.join(max(0.0, cut_by - time.monotonic()))
        assert not any(t.is_alive() for t in threads)
        assert results == ["miss"] * 4
        assert breaker.state is State.OPEN
        assert breaker.transitions[-1].hung
        own_redis.resume()  # the four GETs' late replies (1) are on the wire now
        now[0] += 60  # past the recovery timeout: calls go through again
        for i in range(20):  # a cut connection reused half read would answer with 1
            assert client.set(f"k{i}", i + 10)
            assert client.get(f"k{i}") == i + 10
        assert breaker.state is State.CLOSED
    finally:
        own_redis.resume()
        for t in threads:
            t.join(6)
        client.close()
        probe.close()
