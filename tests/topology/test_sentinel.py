"""Sentinel failover and read replicas, on real redis-server and redis-sentinel processes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from cachekit_web import CacheClient
from cachekit_web.embedded import EmbeddedRedis

from ..core.conftest import SIGNING
from .servers import LocalSentinel

FAST = {
    "SOCKET_TIMEOUT": 0.5,
    "SOCKET_CONNECT_TIMEOUT": 0.5,
    "CIRCUIT_BREAKER_RECOVERY_TIMEOUT": 0.5,
}


def calls(port: int, command: str) -> int:
    """How many times ``command`` ran on the server at ``port``."""
    with redis.Redis(host="127.0.0.1", port=port, socket_timeout=2) as c:
        stats: dict[str, Any] = c.info("commandstats")
        return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


def wait_replicated(primary: int, replica: int, timeout: float = 5.0) -> None:
    """Until the replica's offset caught up with the primary's."""
    deadline = time.monotonic() + timeout
    with redis.Redis(host="127.0.0.1", port=primary) as p, \
            redis.Redis(host="127.0.0.1", port=replica) as r:
        while time.monotonic() < deadline:
            target = p.info("replication")["master_repl_offset"]
            if r.info("replication").get("slave_repl_offset", -1) >= target:
                return
            time.sleep(0.02)
    raise TimeoutError("replica did not catch up")


def test_sentinel_failover_under_load(namespace: str) -> None:
    with LocalSentinel(replicas=1, sentinels=1) as group:
        old_primary, replica = group.primary, group.replicas[0]
        c = CacheClient.from_url(group.url, NAMESPACE=namespace, **FAST)
        assert c.set("before", "x") and c.get("before") == "x"

        errors: list[BaseException] = []
        written_at: dict[int, float] = {}
        killed_at = promoted_at = resumed_at = None
        i = 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and i < 20000:
            i += 1
            now = time.monotonic()
            try:
                if c.set(f"k{i}", i, timeout=60):
                    written_at[i] = now
                    if killed_at is not None and resumed_at is None:
                        resumed_at = now
                c.get(f"k{i - 1}")
                c.get_many([f"k{i - 2}", f"k{i - 3}"])
            except Exception as exc:
                errors.append(exc)
            if killed_at is None and i == 200:
                old_primary.kill()
                killed_at = time.monotonic()
            if (killed_at is not None and promoted_at is None and i % 10 == 0
                    and group.master_address()[1] == replica.port):
                promoted_at = time.monotonic()
            if resumed_at is not None and promoted_at is not None and \
                    time.monotonic() > resumed_at + 0.5:
                break
            time.sleep(0.002)

        assert errors == []
        assert killed_at is not None and promoted_at is not None, "no failover happened"
        assert resumed_at is not None, "writes never resumed"
        failover = promoted_at - killed_at
        resume = resumed_at - killed_at
        print(f"\nfailover (kill -> sentinel names new primary): {failover:.2f}s; "
              f"client writes resumed after {resume:.2f}s; {i} iterations")
        # Resumes within the failover time, plus the breaker's half-open probe delay.
        assert resume <= failover + FAST["CIRCUIT_BREAKER_RECOVERY_TIMEOUT"] + 1.0

        # New writes live on the promoted replica, and reads see them.
        after = [k for k, at in written_at.items() if at >= resumed_at]
        assert len(after) > 10
        with redis.Redis(host="127.0.0.1", port=replica.port) as r:
            assert r.exists(*(c.full_key(f"k{k}") for k in after[-10:])) == 10
        assert c.get_many([f"k{k}" for k in after[-10:]]) == {f"k{k}": k for k in after[-10:]}
        assert c.set("after", "y") and c.get("after") == "y"
        report = c.health()
        primaries = [n for n in report.nodes if n["role"] == "primary"]
        assert [p["node"] for p in primaries] == [f"127.0.0.1:{replica.port}"]
        assert primaries[0]["reachable"]
        c.close()


def test_sentinel_reads_go_to_the_replica(namespace: str) -> None:
    with LocalSentinel(replicas=1, sentinels=1) as group:
        p, r = group.primary.port, group.replicas[0].port
        c = CacheClient.from_url(group.url + "?replica_reads=1", NAMESPACE=namespace)
        assert c.set("k", "v")
        wait_replicated(p, r)
        before = calls(p, "get"), calls(r, "get")
        assert all(c.get("k") == "v" for _ in range(20))
        assert calls(p, "get") == before[0] and calls(r, "get") - before[1] >= 20
        c.close()

        off = CacheClient.from_url(group.url + "?replica_reads=1", NAMESPACE=namespace,
                                   REPLICA_READS=False)
        before = calls(p, "get"), calls(r, "get")
        assert all(off.get("k") == "v" for _ in range(20))
        assert calls(p, "get") - before[0] >= 20 and calls(r, "get") == before[1]
        off.close()


def test_sentinel_compare_and_set_writes(namespace: str) -> None:
    # add() over a stale entry and touch() write with the compare-and-set script.
    now = [1_800_000_000.0]
    with LocalSentinel(replicas=1, sentinels=1) as group:
        c = CacheClient.from_url(group.url, NAMESPACE=namespace, clock=lambda: now[0])
        try:
            assert c.set("k", "old", 10, stale_ttl=60)
            now[0] += 20
            assert c.add("k", "new", 30)
            assert c.get("k") == "new"
            assert c.touch("k", 100)
            assert 90 < (c.ttl("k") or 0) <= 100
        finally:
            c.close()


@pytest.mark.parametrize("extra", [{}, {"PLAIN_COUNTERS": ["n*"], "SIGNING_KEY": SIGNING},
                                   {"SIGNING_KEY": SIGNING}], ids=["keyless", "plain", "sealed"])
def test_sentinel_counters(namespace: str, extra: dict[str, object]) -> None:
    # incr/decr go through the increment script (plain) or the compare-and-set (sealed).
    with LocalSentinel(replicas=0, sentinels=1) as group:
        c = CacheClient.from_url(group.url, NAMESPACE=namespace, **extra)
        try:
            assert c.incr("n1", 5, default=0) == 5
            assert c.decr("n1", 2) == 3
            assert c.get("n1") == 3
        finally:
            c.close()


@pytest.fixture()
def primary_and_replica() -> Iterator[tuple[EmbeddedRedis, EmbeddedRedis]]:
    primary = EmbeddedRedis(args=("--repl-diskless-sync-delay", "0")).start()
    replica = EmbeddedRedis(args=("--replicaof", "127.0.0.1", str(primary.port))).start()
    try:
        deadline = time.monotonic() + 10
        with redis.Redis(host="127.0.0.1", port=replica.port) as rc:
            while rc.info("replication").get("master_link_status") != "up":
                assert time.monotonic() < deadline, "replica never synced"
                time.sleep(0.05)
        yield primary, replica
    finally:
        replica.stop()
        primary.stop()


def test_replica_urls_split_reads_and_writes(
    primary_and_replica: tuple[EmbeddedRedis, EmbeddedRedis], namespace: str
) -> None:
    primary, replica = primary_and_replica
    c = CacheClient.from_url(primary.url, NAMESPACE=namespace, REPLICA_URLS=(replica.url,),
                             **FAST)
    assert c.set("k", "v") and c.incr("n", default=0) == 1
    wait_replicated(primary.port, replica.port)
    before = calls(primary.port, "get"), calls(replica.port, "get")
    assert [c.get("k") for _ in range(10)] == ["v"] * 10
    assert c.get_many(["k", "absent"]) == {"k": "v"}
    assert calls(primary.port, "get") == before[0]
    assert calls(replica.port, "get") - before[1] >= 10
    assert calls(primary.port, "set") >= 1  # a replica would have refused it (READONLY)
    # Locks live on the primary (a replica would refuse the SET NX).
    assert c.get_or_set("computed", lambda: 42, timeout=60) == 42
    assert c.metrics.snapshot()["errors_by_code"] == {}

    report = c.health()
    assert [(n["role"], n["reachable"]) for n in report.nodes] == [
        ("primary", True), ("replica", True)]

    # A lost replica costs nothing: reads fall back to the primary, no error, breaker closed.
    replica.kill()
    assert [c.get("k") for _ in range(10)] == ["v"] * 10
    assert c.breaker.state.value == "closed"
    assert c.health().status == "degraded"
    c.close()


def test_no_sentinel_answering_trips_the_breaker(namespace: str) -> None:
    """Sentinels all down is an outage (E010, breaker opens), not a failover (E014)."""
    from cachekit_web.embedded import free_port

    url = f"redis+sentinel://127.0.0.1:{free_port()},127.0.0.1:{free_port()}/svc/0"
    c = CacheClient.from_url(url, NAMESPACE=namespace, **FAST)
    start = time.monotonic()
    for _ in range(10):
        assert c.get("k") is None and c.set("k", 1) is False
    assert time.monotonic() - start < 5
    errors = c.metrics.snapshot()["errors_by_code"]
    assert errors.get("E010", 0) >= 5 and "E014" not in errors
    assert c.breaker.state.value == "open"
    c.close()
