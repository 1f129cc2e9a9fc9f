"""The core client on a real 3-primary Redis Cluster: operations, round trips, node loss."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from cachekit_web import DEFERRED, AsyncCacheClient, CacheClient
from cachekit_web.core.backends.cluster import (
    ClusterBackend,
)
from cachekit_web.core.keys import hash_tag, lock_key
from cachekit_web.core.observe.render import render_page

from .conftest import raw_cluster
from .servers import LocalCluster

KEY_A = bytes(range(0xa1, 0xa1 + 32)).hex()  # 32 distinct bytes: not a weak key (E002)


@pytest.fixture()
def cc(cluster: LocalCluster, namespace: str) -> Iterator[CacheClient]:
    """An encrypted client on the shared cluster."""
    client = CacheClient.from_url(cluster.url, NAMESPACE=namespace, MASTER_KEY=KEY_A)
    yield client
    client.close()


@pytest.fixture()
def short(cluster: LocalCluster, request: pytest.FixtureRequest) -> Iterator[CacheClient]:
    """A plain client with a short namespace (small pipelines)."""
    client = CacheClient.from_url(cluster.url, NAMESPACE=f"rt{len(request.node.name)}")
    client.clear()
    yield client
    client.clear()
    client.close()


def node_of(cluster: LocalCluster, client: CacheClient, key: str) -> int:
    """Index in cluster.nodes of the primary holding ``key``."""
    backend = client.backend
    assert isinstance(backend, ClusterBackend)
    node = backend.cluster().nodes_manager.get_node_from_slot(
        backend.cluster().keyslot(client.full_key(key)))
    return next(i for i, n in enumerate(cluster.nodes) if n.port == node.port)


class Counters:
    """Per node: read events processed and command counts, over long-lived connections."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.conns = [cluster.client(n) for n in cluster.nodes]
        before = self.snapshot()
        # What one snapshot itself adds (its own INFO calls), measured, not assumed.
        self.own_reads = [a["reads"] - b["reads"] for a, b in
                          zip(self.snapshot(), before, strict=True)]

    def snapshot(self) -> list[dict[str, Any]]:
        out = []
        for c in self.conns:
            cmds = c.info("commandstats")
            info = c.info("stats")
            out.append({"reads": info["total_reads_processed"],
                        **{k: v["calls"] for k, v in cmds.items()}})
        return out

    def round_trips(self, before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[int]:
        """Read events per node between two snapshots, minus the snapshot's own."""
        return [a["reads"] - b["reads"] - own
                for a, b, own in zip(after, before, self.own_reads, strict=True)]

    def close(self) -> None:
        for c in self.conns:
            c.close()


def keys_on_every_node(cluster: LocalCluster, client: CacheClient, n: int) -> list[str]:
    keys = [f"s{i}" for i in range(n)]
    assert {node_of(cluster, client, k) for k in keys} == {0, 1, 2}
    return keys


# -- every operation -------------------------------------------------------
def test_every_core_operation_on_cluster(cc: CacheClient) -> None:
    assert cc.set("a", {"x": 1}) and cc.get("a") == {"x": 1}
    assert cc.add("a", 2) is False and cc.add("b", 2) is True and cc.get("b") == 2
    assert cc.has_key("a") and not cc.has_key("nope")
    assert cc.delete("a") is True and cc.get("a") is None and cc.delete("a") is False

    many = {f"m{i}": i for i in range(60)}
    assert cc.set_many(many, timeout=60) == []
    got = cc.get_many([*many, "absent"])
    assert got == many
    assert cc.delete_many(list(many)[:30]) == 30
    assert len(cc.get_many(many)) == 30

    assert cc.incr("n", default=0) == 1 and cc.incr("n", 5) == 6 and cc.decr("n", 2) == 4
    assert cc.incr("missing") is None
    cc.set("text", "abc")
    with pytest.raises(ValueError):
        cc.incr("text")

    cc.set("t", 1, timeout=100)
    ttl = cc.ttl("t")
    assert ttl is not None and 99 < ttl <= 100
    assert cc.touch("t", 5) is True
    ttl = cc.ttl("t")
    assert ttl is not None and 4 < ttl <= 5
    assert cc.touch("t", None) is True and cc.ttl("t") is None
    assert cc.touch("absent", 5) is False and cc.ttl("absent") == 0.0
    cc.set("short", 1, timeout=0.15)
    time.sleep(0.25)
    assert cc.get("short") is None

    calls: list[int] = []
    assert cc.get_or_set("g", lambda: calls.append(1) or 7, timeout=60) == 7
    assert cc.get_or_set("g", lambda: calls.append(1) or 8, timeout=60) == 7
    assert calls == [1]
    assert cc.breaker.state.value == "closed"
    assert cc.metrics.snapshot()["errors_by_code"] == {}

    assert cc.clear() >= 35
    assert cc.get_many(["b", "n", "g", *many]) == {}


def test_stale_while_revalidate_and_lock_on_cluster(cc: CacheClient) -> None:
    cc.set("s", "old", timeout=0.2, stale_ttl=30)
    time.sleep(0.3)
    assert cc.get("s") is None  # past its fresh time
    fk = cc.full_key("s")
    held = cc.backend.lock(lock_key(fk), 5)
    assert held.acquire(True, 0)  # another process is recomputing
    try:
        result = cc.fetch("s", lambda: "new", timeout=60, stale_ttl=30)
        assert (result.value, result.status) == ("old", "stale")
    finally:
        held.release()
    result = cc.fetch("s", lambda: "new", timeout=60, stale_ttl=30)
    assert (result.value, result.status) == ("new", "miss")
    assert cc.fetch("s", lambda: "newer").status == "hit"


def test_lock_shares_the_value_slot(cluster: LocalCluster, cc: CacheClient) -> None:
    r = raw_cluster(cluster)
    try:
        for key in ("plain", "with{tag}inside", "odd}brace", "{}empty", "x:lock"):
            fk = cc.full_key(key)
            assert lock_key(fk) != cc.full_key(key + ":lock")  # never a user's key
            if "}" not in fk or hash_tag(fk) is not None:
                assert r.keyslot(lock_key(fk)) == r.keyslot(fk), key
        fk = cc.full_key("guarded")
        lock = cc.backend.lock(lock_key(fk), 5)
        assert lock.acquire(True, 0)
        assert r.exists(lock_key(fk)) == 1
        assert r.keyslot(lock_key(fk)) == r.keyslot(fk)
        lock.release()
        assert r.exists(lock_key(fk)) == 0
    finally:
        r.close()


def test_stampede_protection_across_clients(cluster: LocalCluster, namespace: str) -> None:
    clients = [CacheClient.from_url(cluster.url, NAMESPACE=namespace) for _ in range(2)]
    computed: list[int] = []
    lock = threading.Lock()

    def compute() -> str:
        with lock:
            computed.append(1)
        time.sleep(0.3)
        return "v"

    results: list[str] = []

    def worker(c: CacheClient) -> None:
        results.append(c.get_or_set("hot", compute, timeout=60))

    threads = [threading.Thread(target=worker, args=(c,)) for c in clients for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    for c in clients:
        c.close()
    assert results == ["v"] * 8
    assert computed == [1]  # one computation across two "processes" and eight callers


def test_clear_scans_every_primary(cluster: LocalCluster, cc: CacheClient,
                                   namespace: str) -> None:
    keys = keys_on_every_node(cluster, cc, 90)
    cc.set_many(dict.fromkeys(keys, 1))
    other = CacheClient.from_url(cluster.url, NAMESPACE=namespace + "-other")
    other.set_many(dict.fromkeys(keys, 2))
    r = raw_cluster(cluster)
    try:
        r.set(namespace + "-no-colon", b"x")
        assert cc.clear() == 90
        assert cc.get_many(keys) == {}
        assert len(other.get_many(keys)) == 90
        assert r.get(namespace + "-no-colon") == b"x"
        assert other.clear() == 90
        r.delete(namespace + "-no-colon")
    finally:
        r.close()
        other.close()


# -- round trips -----------------------------------------------------------
def test_get_many_is_one_round_trip_per_node(cluster: LocalCluster, short: CacheClient) -> None:
    # The server's read-event counter (INFO total_reads_processed) counts requests that
    # arrived separately: one per node means one round trip per node.
    cc = short
    keys = keys_on_every_node(cluster, cc, 300)
    cc.set_many(dict.fromkeys(keys, "v"))
    per_node = [sum(1 for k in keys if node_of(cluster, cc, k) == i) for i in range(3)]
    slots = [len({cc.backend.cluster().keyslot(cc.full_key(k)) for k in keys  # type: ignore[attr-defined]
                  if node_of(cluster, cc, k) == i}) for i in range(3)]
    assert min(per_node) > 60

    counters = Counters(cluster)
    before = counters.snapshot()
    assert len(cc.get_many(keys)) == 300
    after = counters.snapshot()
    assert counters.round_trips(before, after) == [1, 1, 1]
    for i in range(3):
        assert after[i].get("cmdstat_mget", 0) - before[i].get("cmdstat_mget", 0) == slots[i]
        assert after[i].get("cmdstat_get", 0) == before[i].get("cmdstat_get", 0)

    before = counters.snapshot()
    assert cc.delete_many(keys) == 300
    after = counters.snapshot()
    assert counters.round_trips(before, after) == [1, 1, 1]
    counters.close()
    for i in range(3):
        assert after[i].get("cmdstat_del", 0) - before[i].get("cmdstat_del", 0) == slots[i]


def test_set_many_is_one_pipeline_per_node(cluster: LocalCluster, short: CacheClient) -> None:
    cc = short
    keys = keys_on_every_node(cluster, cc, 60)
    per_node = [sum(1 for k in keys if node_of(cluster, cc, k) == i) for i in range(3)]
    counters = Counters(cluster)
    before = counters.snapshot()
    assert cc.set_many(dict.fromkeys(keys, "small")) == []
    after = counters.snapshot()
    assert counters.round_trips(before, after) == [1, 1, 1]
    counters.close()
    for i in range(3):
        assert after[i].get("cmdstat_set", 0) - before[i].get("cmdstat_set", 0) == per_node[i]


def test_moved_slot_is_followed(cluster: LocalCluster, cc: CacheClient) -> None:
    """A slot moved to another node (MOVED) is followed; no error, breaker closed."""
    cc.set("moving", "before")
    src_index = node_of(cluster, cc, "moving")
    dst_index = (src_index + 1) % 3
    src, dst = cluster.nodes[src_index], cluster.nodes[dst_index]
    fk = cc.full_key("moving")
    with cluster.client(src) as s, cluster.client(dst) as d:
        slot = s.cluster("keyslot", fk)
        src_id, dst_id = s.cluster("myid"), d.cluster("myid")
        d.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        s.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        for k in s.cluster("getkeysinslot", slot, 100):
            s.migrate("127.0.0.1", dst.port, k, 0, 5000)
        for c in (d, s):
            c.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
    try:
        assert cc.get("moving") == "before"  # MOVED, followed by redis-py
        assert cc.set("moving", "after") and cc.get("moving") == "after"
        assert cc.get_many(["moving", "x"]) == {"moving": "after"}  # node pipeline re-routed
        assert cc.delete_many(["moving"]) == 1
        assert node_of(cluster, cc, "moving") == dst_index
        assert cc.breaker.state.value == "closed"
        assert cc.metrics.snapshot()["errors_by_code"] == {}
    finally:
        with cluster.client(src) as s, cluster.client(dst) as d:
            for k in d.cluster("getkeysinslot", slot, 100):
                d.migrate("127.0.0.1", src.port, k, 0, 5000)
            for c in (s, d):
                c.execute_command("CLUSTER", "SETSLOT", slot, "NODE", src_id)


def test_health_lists_every_node(cc: CacheClient, cluster: LocalCluster) -> None:
    report = cc.health()
    assert report.status == "ok"
    assert sorted(n["node"] for n in report.nodes) == sorted(
        f"127.0.0.1:{n.port}" for n in cluster.nodes)
    for n in report.nodes:
        assert n["role"] == "primary" and n["reachable"] is True
        assert n["latency_ms"] is not None and n["used_memory"] > 0
    assert report.as_dict()["nodes"] == report.nodes


# -- node loss ---------------------------------------------------------------
FAST = {
    "SOCKET_TIMEOUT": 0.5,
    "SOCKET_CONNECT_TIMEOUT": 0.5,
    "CIRCUIT_BREAKER_RECOVERY_TIMEOUT": 1.0,
}


def test_cluster_read_then_write_gaps(cluster: LocalCluster, namespace: str) -> None:
    # add() and touch() with their read-then-write gap forced open (see tests/concurrency).
    from ..concurrency.interleave import Interleaved, failed_nx

    now = [1_800_000_000.0]
    a, b, c = (CacheClient.from_url(cluster.url, NAMESPACE=namespace, MASTER_KEY=KEY_A,
                                    clock=lambda: now[0]) for _ in range(3))
    try:
        gap = Interleaved(b.backend)
        b.backend = gap  # type: ignore[assignment]
        assert a.add("job", "A", 30)
        gap.after("set", lambda: a.delete("job"), when=failed_nx)  # A releases, then
        won: list[bool] = []
        gap.after("get", lambda: won.append(c.add("job", "C", 30)))  # C takes it
        won.append(b.add("job", "B", 30))
        assert won == [True, False] and a.get("job") == "C"

        a.set("old", "A", 10, stale_ttl=60)
        now[0] += 20
        gap.after("get", lambda: won.append(c.add("old", "C", 30)))
        assert not b.add("old", "B", 30) and won[-1] is True and a.get("old") == "C"

        def replace() -> None:
            a.delete("old")
            assert c.add("old", "C2", 5)

        gap.after("compare_and_set", replace)
        assert b.touch("old", 100)
        assert a.get("old") == "C2" and (a.ttl("old") or 0) <= 5

        a.backend.set(a.full_key("bad"), b"\x00not a frame", 60)
        assert b.get("bad") is None  # dropped on B's next call, if still these bytes
        assert c.add("bad", "C", 30)
        b.get("other")
        assert a.get("bad") == "C"
    finally:
        for client in (a, b, c):
            client.close()


def test_killed_node_costs_only_its_keys(namespace: str) -> None:
    with LocalCluster(3) as cluster:
        c = CacheClient.from_url(cluster.url, NAMESPACE=namespace, **FAST)
        keys = keys_on_every_node(cluster, c, 150)
        c.set_many({k: k for k in keys})
        lost = 1
        on_lost = [k for k in keys if node_of(cluster, c, k) == lost]
        alive = [k for k in keys if node_of(cluster, c, k) != lost]
        cluster.nodes[lost].kill()

        errors: list[BaseException] = []
        deadline = time.monotonic() + 2.0  # past cluster-node-timeout (1 s): state settles
        rounds = 0
        while time.monotonic() < deadline and rounds < 200:
            rounds += 1
            try:
                assert c.get(alive[rounds % len(alive)]) is not None
                assert c.get(on_lost[rounds % len(on_lost)]) is None
                got = c.get_many(keys)
                assert set(got) == set(alive)
                c.set(alive[0], alive[0])
                assert c.set(on_lost[0], "x") is False
                c.delete(on_lost[1])
                c.delete_many([on_lost[2], alive[1]])
                c.set(alive[1], alive[1])
                c.get_or_set(on_lost[3], lambda: "computed", timeout=5)
            except Exception as exc:
                errors.append(exc)
            time.sleep(0.01)
        assert errors == []
        assert rounds > 20
        assert c.breaker.state.value == "closed"  # one lost node does not open the breaker
        assert c.metrics.snapshot()["errors_by_code"].get("E013", 0) > 0
        report = c.health()
        assert report.status == "degraded"
        down = [n for n in report.nodes if not n["reachable"]]
        assert [n["node"] for n in down] == [f"127.0.0.1:{cluster.nodes[lost].port}"]
        page = render_page(report)
        assert "<h2>Nodes</h2>" in page and page.count("<td>primary</td>") == 3
        assert page.count("<td>NO</td>") == 1

        async def async_round() -> None:
            ac = AsyncCacheClient.from_url(cluster.url, NAMESPACE=namespace, **FAST)
            for _ in range(3):
                assert await ac.get(alive[0]) == alive[0]
                assert await ac.get(on_lost[0]) is None
                assert set(await ac.get_many(keys)) == set(alive)
                assert await ac.set(on_lost[0], "x") is False
                assert await ac.set(alive[0], alive[0]) is True
                assert await ac.delete_many([on_lost[2], alive[3]]) == 1
                assert await ac.set(alive[3], alive[3])
                assert await ac.get_or_set(on_lost[3], lambda: "computed", timeout=5) == "computed"
            assert ac.breaker.state.value == "closed"
            assert ac.metrics.snapshot()["errors_by_code"].get("E013", 0) > 0
            assert (await ac.health()).status == "degraded"
            await ac.close()

        asyncio.run(async_round())  # the asyncio backend degrades the same way

        # The node comes back (its nodes.conf keeps its slots): followed without a restart.
        cluster.nodes[lost].start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not c.set(on_lost[0], "back"):
            time.sleep(0.1)
        assert c.get(on_lost[0]) == "back"
        assert c.breaker.state.value == "closed"

        # A partition (SIGSTOP) keeps the node's data: deletes sent meanwhile are replayed.
        c.set(on_lost[1], "will be deleted")
        cluster.nodes[lost].pause()
        try:
            assert c.delete(on_lost[1]) is DEFERRED  # remembered, not lost
            assert c.delete_many([on_lost[1], alive[2]]) == 1
        finally:
            cluster.nodes[lost].resume()
        raw = redis.Redis(host="127.0.0.1", port=cluster.nodes[lost].port, socket_timeout=2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and raw.exists(c.full_key(on_lost[1])):
            c.get(alive[0])  # any call lets the client replay what it remembered
            time.sleep(0.1)
        assert raw.exists(c.full_key(on_lost[1])) == 0
        raw.close()
        c.close()


def test_cluster_failover_to_replica_is_followed(namespace: str) -> None:
    """A primary with a replica dies: the cluster promotes it and the client follows."""
    with LocalCluster(3, replicas=1) as cluster:
        c = CacheClient.from_url(cluster.url, NAMESPACE=namespace, **FAST)
        keys = keys_on_every_node(cluster, c, 60)
        on_first = [k for k in keys if node_of(cluster, c, k) == 0]
        others = [k for k in keys if node_of(cluster, c, k) != 0]
        c.set_many({k: k for k in keys})
        wait_start = time.monotonic()
        with cluster.client(cluster.nodes[0]) as p:
            offset = p.info("replication")["master_repl_offset"]
        with cluster.client(cluster.replicas[0]) as r:
            while r.info("replication").get("slave_repl_offset", -1) < offset:
                assert time.monotonic() - wait_start < 5, "replica did not catch up"
                time.sleep(0.02)

        cluster.nodes[0].kill()
        killed = time.monotonic()
        errors: list[BaseException] = []
        resumed = None
        while time.monotonic() - killed < 15:
            try:
                assert c.get(others[0]) == others[0]  # other primaries never stop serving
                if c.set(on_first[0], "after failover"):
                    resumed = time.monotonic() - killed
                    break
                c.get_many(keys)
            except Exception as exc:
                errors.append(exc)
            time.sleep(0.02)
        assert errors == []
        assert resumed is not None, "writes to the lost primary's slots never resumed"
        print(f"\ncluster failover: writes to the lost primary's slots resumed after "
              f"{resumed:.2f}s (cluster-node-timeout 1 s)")
        # The promoted replica serves the old data and the new write; get_many follows too.
        assert c.get(on_first[0]) == "after failover"
        assert c.get_many(on_first[1:]) == {k: k for k in on_first[1:]}
        assert node_of_port(c, on_first[0]) == cluster.replicas[0].port
        roles = {n["node"]: n["role"] for n in c.health().nodes if n["reachable"]}
        assert roles[f"127.0.0.1:{cluster.replicas[0].port}"] == "primary"
        c.close()


def node_of_port(client: CacheClient, key: str) -> int:
    """Port of the primary that owns ``key`` according to the client's slot map."""
    backend = client.backend
    assert isinstance(backend, ClusterBackend)
    rc = backend.cluster()
    return int(rc.nodes_manager.get_node_from_slot(rc.keyslot(client.full_key(key))).port)
