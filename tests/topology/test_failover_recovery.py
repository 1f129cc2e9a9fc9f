"""Issue 9 item 12b: writes come back within 3 s of a primary's kill, at default settings.

The breaker (Sentinel) and the node guard (Cluster) used to wait out their recovery
interval (10 s / 5 s) although the new primary answered after 1-2 s: the topology
naming a new primary now lets them probe at once. Still 0 exceptions, 0 wrong values.
"""

from __future__ import annotations

import threading
import time

import redis

from cachekit_web import CacheClient

from .servers import LocalCluster, LocalSentinel

LIMIT = 3.0  # seconds from the kill to the first successful write
# On a loaded machine the promotion itself may take longer: then within this of it.
AFTER_PROMOTION = 0.75


class Promotion:
    """Notes when the server at ``port`` becomes a primary (polled in a thread)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.at: float | None = None
        self.seen = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1) as r:
            while not self._stop.wait(0.02):
                try:
                    if r.info("replication")["role"] == "master":
                        self.at = time.monotonic()
                        self.seen.set()
                        return
                except redis.RedisError:
                    continue

    def stop(self) -> None:
        """End the polling."""
        self._stop.set()
        self._thread.join(5)


def _check(what: str, resumed: float, killed_at: float, promotion: Promotion) -> None:
    # A write can land on the promoted node before the 20 ms poller has looked again (CI
    # failed on that race on a loaded machine): give the poller time to see it first.
    promotion.seen.wait(5)
    promotion.stop()
    assert promotion.at is not None, "no promotion happened"
    promoted = promotion.at - killed_at
    print(f"\n{what}: kill -> promoted {promoted:.2f}s, -> first successful write "
          f"{resumed:.2f}s")
    assert resumed <= LIMIT or resumed <= promoted + AFTER_PROMOTION


def _drive(c: CacheClient, keys: list[str],
           kill: object) -> tuple[float, float, list[str]]:
    """Write and read ``keys`` in a loop, kill after a warm-up; (resume time, kill time,
    problems)."""
    problems: list[str] = []
    written: dict[str, int] = {}
    killed_at = resumed = None
    i = 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and i < 20000:
        i += 1
        key = keys[i % len(keys)]
        try:
            ok = c.set(key, i, timeout=60)
            if ok:
                written[key] = i
                if killed_at is not None:
                    resumed = time.monotonic() - killed_at
                    break
            else:
                written.pop(key, None)  # unknown now: it must read as a miss or a later value
            for k in keys[:4]:
                got = c.get(k)
                if got is not None and k in written and got != written[k]:
                    problems.append(f"{k}: read {got}, wrote {written[k]}")
        except Exception as exc:  # any exception is a finding
            problems.append(repr(exc))
        if killed_at is None and i == 100:
            kill()  # type: ignore[operator]
            killed_at = time.monotonic()
        time.sleep(0.005)
    assert resumed is not None and killed_at is not None, "writes never resumed"
    return resumed, killed_at, problems


def test_sentinel_failover_writes_back_within_3s(namespace: str) -> None:
    with LocalSentinel(replicas=1, sentinels=1) as group:
        c = CacheClient.from_url(group.url, NAMESPACE=namespace)  # default settings
        assert c.set("warm", 1)
        promotion = Promotion(group.replicas[0].port)
        resumed, killed_at, problems = _drive(c, ["k"], group.primary.kill)
        assert problems == []
        _check("sentinel", resumed, killed_at, promotion)
        c.close()


def test_cluster_failover_writes_back_within_3s(namespace: str) -> None:
    with LocalCluster(3, replicas=1) as cluster:
        c = CacheClient.from_url(cluster.url, NAMESPACE=namespace)  # default settings
        with cluster.client(cluster.nodes[0]) as p:
            keys = [f"k{i}" for i in range(200)]
            lost = [k for k in keys if _owner(p, c.full_key(k)) == cluster.nodes[0].port][:4]
        assert c.set_many(dict.fromkeys(lost, 0)) == []
        promotion = Promotion(cluster.replicas[0].port)
        resumed, killed_at, problems = _drive(c, lost, cluster.nodes[0].kill)
        assert problems == []
        _check("cluster (writes to the lost slots)", resumed, killed_at, promotion)
        c.close()


def _owner(conn: object, full_key: str) -> int:
    slot = int(conn.cluster("keyslot", full_key))  # type: ignore[attr-defined]
    for start, end, primary, *_ in conn.execute_command("CLUSTER", "SLOTS"):  # type: ignore[attr-defined]
        if start <= slot <= end:
            return int(primary[1])
    raise AssertionError("slot not served")
