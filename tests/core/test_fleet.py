"""Fleet-wide health: real processes publish sealed snapshots, reports add them up."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import redis

from cachekit_web import CacheClient
from cachekit_web.core.observe.fleet import roster_key, snapshot_prefix
from cachekit_web.embedded import EmbeddedRedis

from .conftest import KEY_A, MakeClient

# One worker: its own client, its own traffic, one snapshot, then it exits.
WORKER = r"""
import json, sys
from cachekit_web import CacheClient
url, ns, key, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
c = CacheClient.from_url(url, NAMESPACE=ns, MASTER_KEY=key, FLEET_PUBLISH_INTERVAL=60)
for i in range(n):
    c.set(f"k{i}", i)
    c.get(f"k{i}")
for i in range(n // 2):
    c.get(f"absent{i}")
c.fleet.publish_once()
print(json.dumps({"pid": c.fleet.local()["pid"], "totals": dict(c.metrics.totals)}))
c.close()
"""


def _run_workers(url: str, namespace: str, sizes: list[int]) -> list[dict[str, Any]]:
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, url, namespace, KEY_A, str(n)],
                              stdout=subprocess.PIPE, text=True) for n in sizes]
    out = []
    for p in procs:
        stdout, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        out.append(json.loads(stdout))
    return out


def test_report_adds_up_every_process(make_client: MakeClient, redis_url: str,
                                      namespace: str, raw: redis.Redis) -> None:
    workers = _run_workers(redis_url, namespace, [4, 10, 6])
    me = make_client(MASTER_KEY=KEY_A, FLEET_PUBLISH_INTERVAL=60)
    me.set("mine", 1)
    me.get("mine")
    report = me.health()
    fleet = report.fleet
    assert fleet["scope"] == "fleet" and fleet["reason"] is None
    rows = fleet["processes"]
    assert len(rows) == 4 and sum(r["this"] for r in rows) == 1
    assert {r["pid"] for r in rows if not r["this"]} == {w["pid"] for w in workers}
    for field in ("hits", "misses", "sets"):
        expected = sum(w["totals"].get(field, 0) for w in workers) + me.metrics.totals[field]
        assert report.metrics["totals"][field] == expected
    assert report.metrics["totals"]["hits"] == 4 + 10 + 6 + 1
    assert report.metrics["totals"]["misses"] == 2 + 5 + 3
    assert report.metrics["latency"]["get"]["count"] == 4 + 2 + 10 + 5 + 6 + 3 + 1
    assert sum(r["hits"] for r in report.metrics["series"]) == 21  # the series is summed too
    # The snapshots are internal keys: sealed, expiring, outside the user's namespace.
    keys = list(raw.scan_iter(match=snapshot_prefix(namespace) + "*"))
    assert len(keys) == 3 and raw.exists(roster_key(namespace))
    assert me.count() == 1 + 10  # k0..k9 and "mine"
    for k in keys:
        assert 0 < raw.pttl(k) <= 180_000
        assert b"hits" not in raw.get(k)  # encrypted, like values
    # The JSON twin carries the same (JSON-serializable) view.
    json.dumps(report.as_dict())


def test_forged_snapshot_is_not_counted(make_client: MakeClient, namespace: str,
                                        raw: redis.Redis) -> None:
    me = make_client(MASTER_KEY=KEY_A, FLEET_PUBLISH_INTERVAL=60)
    other = make_client(MASTER_KEY=KEY_A, FLEET_PUBLISH_INTERVAL=60)
    other.set("a", 1)
    other.fleet.publish_once()
    forged, moved = snapshot_prefix(namespace) + "evil:1:x", snapshot_prefix(namespace) + "m:2:y"
    raw.set(forged, b"\x00not a frame")
    raw.set(moved, raw.get(other.fleet.key))  # a genuine snapshot replayed under another key
    for key in (forged, moved):  # even on the roster, neither is counted
        other.fleet.enrol(other.backend, key, 60)
    report = me.health()
    assert len(report.fleet["processes"]) == 2
    assert report.metrics["totals"]["sets"] == 1


def test_redis_down_reports_this_process_only(own_redis: EmbeddedRedis,
                                               make_client: MakeClient) -> None:
    c = make_client(own_redis.url, FLEET_PUBLISH_INTERVAL=60, MASTER_KEY=KEY_A)
    c.set("a", 1)
    c.get("a")
    c.fleet.publish_once()
    peer = make_client(own_redis.url, FLEET_PUBLISH_INTERVAL=60, MASTER_KEY=KEY_A)
    peer.set("b", 2)
    peer.fleet.publish_once()
    assert c.health().fleet["scope"] == "fleet"
    assert c.health().metrics["totals"]["sets"] == 2
    own_redis.stop()
    c.get("a")  # a miss: Redis is gone
    report = c.health()
    assert report.status == "down"
    assert report.fleet["scope"] == "local"
    assert "unreachable" in report.fleet["reason"] and "[E0" in report.fleet["reason"]
    assert [r["this"] for r in report.fleet["processes"]] == [True]
    assert report.metrics["totals"]["sets"] == 1 and report.metrics["totals"]["hits"] == 1


def test_thread_publishes_at_a_bounded_interval(make_client: MakeClient,
                                                raw: redis.Redis) -> None:
    interval = 0.2
    c = make_client(FLEET_PUBLISH_INTERVAL=interval)
    assert c.fleet.published == 0
    started = time.monotonic()
    c.get("x")  # the first call starts the publisher in this process
    deadline = started + 10
    while c.fleet.published < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    assert c.fleet.published >= 3
    assert c.fleet.published <= elapsed / interval + 1  # never more than once an interval
    assert raw.exists(c.fleet.key)
    c.close()  # the thread ends with the client
    count = c.fleet.published
    time.sleep(interval * 2)
    assert c.fleet.published == count


def test_off_when_interval_is_zero(make_client: MakeClient) -> None:
    c = make_client(FLEET_PUBLISH_INTERVAL=0, MASTER_KEY=KEY_A)
    c.get("x")
    assert c.fleet._thread is None
    assert c.health().fleet["scope"] == "fleet"  # still reads the others


def test_publisher_skips_while_breaker_is_open(own_redis: EmbeddedRedis,
                                                make_client: MakeClient) -> None:
    c = make_client(own_redis.url, FLEET_PUBLISH_INTERVAL=0.05,
                    CIRCUIT_BREAKER_RECOVERY_TIMEOUT=60)
    c.breaker.probe_interval = 60  # Redis is up: a recovery probe would end this outage
    for _ in range(c.settings.CIRCUIT_BREAKER_FAILURE_THRESHOLD):
        c.breaker.record_failure()
    assert c.breaker.state.value == "open"
    done = threading.Event()
    c.fleet.listeners.append(done.set)  # runs at every turn, before the breaker check
    c.get("x")
    assert done.wait(5)
    time.sleep(0.2)
    assert c.fleet.published == 0


def test_sharing_clients_publish_once(make_client: MakeClient, namespace: str,
                                      raw: redis.Redis) -> None:
    from cachekit_web import AsyncCacheClient

    c = make_client(FLEET_PUBLISH_INTERVAL=60)
    twin = AsyncCacheClient.sharing(c)
    assert twin.fleet is c.fleet
    c.fleet.publish_once()
    assert len(list(raw.scan_iter(match=snapshot_prefix(namespace) + "*"))) == 1
    assert isinstance(c, CacheClient)


_C_FORK = textwrap.dedent("""
    import ctypes, os, sys, time
    from cachekit_web import CacheClient
    client = CacheClient.from_url(sys.argv[1], NAMESPACE=sys.argv[2], FLEET_PUBLISH_INTERVAL=5)
    client.get("warm")  # the master's publisher starts, then sleeps for its interval
    assert client.fleet.running()
    pid = ctypes.CDLL(None).fork()  # as uWSGI forks its workers: no Python hook runs
    if pid == 0:
        time.sleep(1.1)  # past the once-a-second check of the call path
        client.get("k")
        os._exit(0 if client.fleet.running() else 3)
    _, status = os.waitpid(pid, 0)
    print("child", os.waitstatus_to_exitcode(status))
""")


def test_a_child_forked_in_c_publishes_its_own_snapshot(redis_url: str, namespace: str) -> None:
    """uWSGI forks its workers in C: a worker whose master already used the cache must
    still start its own publisher (threads are not inherited). Run in a process of its
    own, whose only other thread sleeps at the fork (as a quiet uWSGI master's would)."""
    proc = subprocess.run([sys.executable, "-c", _C_FORK, redis_url, namespace],
                          capture_output=True, text=True, timeout=60)
    assert "child 0" in proc.stdout, (proc.stdout, proc.stderr)
