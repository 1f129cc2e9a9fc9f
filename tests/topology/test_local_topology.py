"""The in-process tier on Redis Cluster and Sentinel (issue 20, goal 2).

Cluster: one tracking connection per primary, entries served only while the link of
the key's node holds its lease. Sentinel: one tracking connection to the primary
Sentinel names, re-resolved on every reconnect.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from cachekit_web import AsyncCacheClient, CacheClient
from cachekit_web.core.data.codec import Entry

from .servers import LocalCluster, LocalSentinel

FAST: dict[str, Any] = {"SOCKET_TIMEOUT": 0.5, "SOCKET_CONNECT_TIMEOUT": 0.5,
        "CIRCUIT_BREAKER_RECOVERY_TIMEOUT": 1.0, "LOCAL_CACHE": True,
        "LOCAL_CACHE_LEASE": 1.0}


def wait_for(what: str, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` (bounded) until it holds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def _filled_key_on_first_primary(cluster: LocalCluster, c: CacheClient) -> str:
    """Thirty keys written and kept in the tier; one whose slot the first primary owns."""
    keys = [f"k{i}" for i in range(30)]
    for k in keys:
        c.set(k, f"v-{k}")
    _filled(c, keys)
    return next(k for k, port in _owner_ports(cluster, c, keys).items()
                if port == cluster.nodes[0].port)


def _owner_ports(cluster: LocalCluster, c: CacheClient, keys: list[str]) -> dict[str, int]:
    with cluster.client(cluster.nodes[0]) as p:
        out = {}
        for k in keys:
            slot = p.cluster("keyslot", c.full_key(k))
            for start, end, *nodes in p.cluster("slots"):
                if start <= slot <= end:
                    out[k] = int(nodes[0][1])
        return out


@pytest.fixture(scope="module")
def sentinel() -> Iterator[LocalSentinel]:
    with LocalSentinel(replicas=1) as s:
        yield s


def _repeat_reads(c: CacheClient, keys: list[str], rounds: int) -> int:
    """Tier hits over ``rounds`` reads of every key, once a whole round hits (bounded)."""
    for k in keys:
        c.set(k, f"v-{k}")
    end = time.monotonic() + 10
    while time.monotonic() < end:  # fill: the first read of a key while its link is live
        before = c.metrics.totals["local_hits"]
        for k in keys:
            assert c.get(k) == f"v-{k}"
        if c.metrics.totals["local_hits"] - before == len(keys):
            break
        time.sleep(0.02)
    before = c.metrics.totals["local_hits"]
    for _ in range(rounds):
        for k in keys:
            assert c.get(k) == f"v-{k}"
    return int(c.metrics.totals["local_hits"] - before)


def test_cluster_tier_hits_on_every_primary(cluster: LocalCluster, namespace: str) -> None:
    c = CacheClient.from_url(cluster.url, NAMESPACE=namespace, **FAST)
    try:
        keys = [f"k{i}" for i in range(30)]
        owners = _owner_ports(cluster, c, keys)
        assert len(set(owners.values())) == 3  # spread over every primary
        hits = _repeat_reads(c, keys, 3)
        assert hits == 90, f"{hits} tier hits of 90 repeat reads"
        # Another client's write is seen (invalidated on the key's node).
        other = CacheClient.from_url(cluster.url, NAMESPACE=namespace, **FAST)
        for k in keys:
            other.set(k, "new")
        wait_for("invalidations", lambda: all(c.get(k) == "new" for k in keys), 5)
        other.close()
    finally:
        c.close()


@pytest.mark.parametrize("topology", ["cluster", "sentinel"])
def test_tier_hits_async(cluster: LocalCluster, sentinel: LocalSentinel, namespace: str,
                         topology: str) -> None:
    url = cluster.url if topology == "cluster" else sentinel.url

    async def main() -> int:
        ac = AsyncCacheClient.from_url(url, NAMESPACE=namespace, **FAST)
        try:
            keys = [f"a{i}" for i in range(12)]
            for k in keys:
                await ac.set(k, k)
            end = time.monotonic() + 10
            while time.monotonic() < end and ac.metrics.totals["local_hits"] < 12:
                for k in keys:
                    assert await ac.get(k) == k
                await asyncio.sleep(0.01)
            return int(ac.metrics.totals["local_hits"])
        finally:
            await ac.close()

    assert asyncio.run(main()) >= 12


def test_sentinel_tier_hits(sentinel: LocalSentinel, namespace: str) -> None:
    c = CacheClient.from_url(sentinel.url, NAMESPACE=namespace, **FAST)
    try:
        keys = [f"k{i}" for i in range(30)]
        hits = _repeat_reads(c, keys, 3)
        assert hits == 90, f"{hits} tier hits of 90 repeat reads"
        host, port = sentinel.master_address()
        with redis.Redis(host=host, port=port) as raw:  # a foreign writer
            raw.delete(c.full_key("k0"))
        wait_for("the invalidation", lambda: c.get("k0") is None, 5)
    finally:
        c.close()


def _filled(c: CacheClient, keys: list[str]) -> None:
    """Every key is served from the tier (bounded)."""
    def all_hit() -> bool:
        before = c.metrics.totals["local_hits"]
        for k in keys:
            assert c.get(k) == f"v-{k}"
        return bool(c.metrics.totals["local_hits"] - before == len(keys))
    wait_for("every key served from the tier", all_hit)


def _by_node(cluster: LocalCluster, c: CacheClient, keys: list[str]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for k, port in _owner_ports(cluster, c, keys).items():
        out.setdefault(port, []).append(k)
    return out


@pytest.mark.parametrize("attack", ["publish", "client kill"])
def test_cluster_link_attacked_flushes_only_its_node(cluster: LocalCluster, namespace: str,
                                                     attack: str) -> None:
    c = CacheClient.from_url(cluster.url, NAMESPACE=namespace, **FAST)
    try:
        keys = [f"k{i}" for i in range(30)]
        for k in keys:
            c.set(k, f"v-{k}")
        _filled(c, keys)
        tier = c._local
        groups = _by_node(cluster, c, keys)
        node = cluster.nodes[0]
        hit_link = tier.links[f"127.0.0.1:{node.port}"]
        others = [k for port, ks in groups.items() if port != node.port for k in ks]
        flushes = hit_link.flushes
        with cluster.client(node) as raw:
            if attack == "publish":
                raw.publish("__redis__:invalidate", b"garbage")
                raw.publish("__redis__:invalidate", b"*3\r\n$1")
            else:
                assert raw.client_kill_filter(_id=hit_link.client_id) == 1
        wait_for("the attacked link to flush", lambda: hit_link.flushes > flushes, 5)
        before = c.metrics.totals["local_hits"]
        for k in others:
            assert c.get(k) == f"v-{k}"  # no error reaches the caller
        if attack == "publish":
            # A cluster sends a PUBLISH to every node: every link saw the garbage.
            wait_for("every link to count it", lambda: all(
                link.bad_messages >= 1 for link in tier.links.values()), 5)
        else:  # only that node's keys leave memory: the others are still served
            assert c.metrics.totals["local_hits"] - before == len(others)
        for k in groups[node.port]:
            assert c.get(k) == f"v-{k}"  # read from Redis meanwhile
        _filled(c, keys)  # and back: every key served from memory again
    finally:
        c.close()


_NO_HIREDIS = textwrap.dedent("""
    import sys, time
    sys.modules["hiredis"] = None  # as on a default install: redis-py's own parsers
    from cachekit_web import CacheClient
    c = CacheClient.from_url(sys.argv[1], LOCAL_CACHE=True, NAMESPACE=sys.argv[2])
    keys = [f"k{i}" for i in range(30)]
    for k in keys:
        c.set(k, [k])
    end = time.monotonic() + 10
    while time.monotonic() < end:
        before = c.metrics.totals["local_hits"]
        assert all(c.get(k) == [k] for k in keys)
        if c.metrics.totals["local_hits"] - before == len(keys):
            break
        time.sleep(0.02)
    before = c.metrics.totals["local_hits"]
    for _ in range(3):
        assert all(c.get(k) == [k] for k in keys)
    print("hits", c.metrics.totals["local_hits"] - before)
    c.close()
""")


@pytest.mark.parametrize("topology", ["cluster", "sentinel"])
def test_the_tier_works_without_hiredis(cluster: LocalCluster, sentinel: LocalSentinel,
                                        namespace: str, topology: str) -> None:
    url = cluster.url if topology == "cluster" else sentinel.url
    out = subprocess.run([sys.executable, "-c", _NO_HIREDIS, url, namespace],
                         capture_output=True, text=True, timeout=60, check=False,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "hits 90" in out.stdout, out.stdout + out.stderr[-2000:]


def _move_slot(cluster: LocalCluster, slot: int, source: int, target: int) -> None:
    """Move ``slot`` with its keys from nodes[source] to nodes[target] (MIGRATE deletes
    them on the source), the way redis-cli --cluster reshard does."""
    src, dst = cluster.nodes[source], cluster.nodes[target]
    with cluster.client(src) as s, cluster.client(dst) as d:
        src_id, dst_id = s.cluster("myid"), d.cluster("myid")
        src_id = src_id.decode() if isinstance(src_id, bytes) else src_id
        dst_id = dst_id.decode() if isinstance(dst_id, bytes) else dst_id
        d.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        s.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        keys = s.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000)
        if keys:
            s.execute_command("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, "KEYS", *keys)
        for node in cluster.nodes:
            with cluster.client(node) as c:
                c.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)


def test_cluster_slot_move_is_followed(namespace: str) -> None:
    with LocalCluster(3) as cluster:
        c = CacheClient.from_url(cluster.url, NAMESPACE=namespace, **FAST)
        writer = CacheClient.from_url(cluster.url, NAMESPACE=namespace, **FAST)
        try:
            ports = [n.port for n in cluster.nodes]
            k = _filled_key_on_first_primary(cluster, c)
            with cluster.client(cluster.nodes[0]) as raw:
                slot = int(raw.cluster("keyslot", c.full_key(k)))
            reloads = c._local.reloads
            _move_slot(cluster, slot, 0, 1)
            moved_at = time.monotonic()
            writer.set(k, "after the move")  # the writer's call has returned
            written = time.monotonic()
            # Any read that starts a lease after the write returned sees it.
            while time.monotonic() < written + FAST["LOCAL_CACHE_LEASE"] + 0.05:
                c.get(k)
                time.sleep(0.005)
            assert c.get(k) == "after the move"
            # The tier reloads its map and serves the key from the new owner's link.
            wait_for("the map reload", lambda: c._local.reloads > reloads, 5)
            link = c._local.link_for(c.full_key(k))
            assert link is not None and link.address == f"127.0.0.1:{ports[1]}"
            wait_for("the key served from the new owner's link", lambda: (
                c.get(k) == "after the move" and c.full_key(k) in link._entries), 5)
            before = c.metrics.totals["local_hits"]
            assert c.get(k) == "after the move"
            assert c.metrics.totals["local_hits"] == before + 1
            writer.set(k, "again")
            wait_for("the new owner's invalidation", lambda: c.get(k) == "again", 2)
            assert time.monotonic() - moved_at < 15
        finally:
            c.close()
            writer.close()


def test_cluster_fill_from_an_untracked_owner_is_not_kept(namespace: str) -> None:
    """The data path learned a slot move (MOVED) before the tier's map did: a value read
    from the new owner must not be kept under the old owner's link, which never sees
    the new owner's writes."""
    with LocalCluster(3) as cluster:
        c = CacheClient.from_url(cluster.url, NAMESPACE=namespace, **FAST)
        writer = CacheClient.from_url(cluster.url, NAMESPACE=namespace, **FAST)
        try:
            ports = [n.port for n in cluster.nodes]
            k = _filled_key_on_first_primary(cluster, c)
            tier = c._local
            old_link = tier.link_for(c.full_key(k))
            assert old_link is not None and old_link.address == f"127.0.0.1:{ports[0]}"
            tier.lease = 60.0  # the tier's map is not reloaded during the race below
            time.sleep(FAST["LOCAL_CACHE_LEASE"] + 0.2)
            reloads = tier.reloads
            with cluster.client(cluster.nodes[0]) as raw:
                slot = int(raw.cluster("keyslot", c.full_key(k)))
            _move_slot(cluster, slot, 0, 1)
            for _ in range(5):  # the first read meets MOVED; the next ones read the new owner
                assert c.get(k) == f"v-{k}"
            assert tier.reloads == reloads and tier.link_for(c.full_key(k)) is old_link
            assert c.full_key(k) not in old_link._entries
            writer.set(k, "new")
            assert c.get(k) == "new"
        finally:
            c.close()
            writer.close()
            c._local.close()  # its map thread waits out the 60 s lease before it looks at users


def test_cluster_map_that_disagrees_with_the_slots_reply_is_loaded_again(
        cluster: LocalCluster, namespace: str) -> None:
    """redis-py loads its map from a node of its own choosing; one whose gossip lags names
    the old owners while the node asked named the new ones. The tier must not take that
    reply as loaded, or it keeps the old map until the reply changes again (after a
    CLUSTER FAILOVER: no hits from the new primary, test below, 3 runs in 8)."""
    c = CacheClient.from_url(cluster.url, NAMESPACE=namespace, **FAST)
    try:
        _filled_key_on_first_primary(cluster, c)
        tier = c._local
        tier.lease = 60.0  # only the reloads below
        time.sleep(FAST["LOCAL_CACHE_LEASE"] + 0.2)
        owners = list(tier._owners)
        ahead = [list(row) for row in tier._slots_reply(tier._rc)]
        ahead[0][2], ahead[1][2] = ahead[1][2], ahead[0][2]  # a change redis-py has not seen
        tier._slots_reply = lambda rc: ahead
        before = tier.reloads
        tier.reload()  # the reply changed: redis-py reloads, and finds the old owners
        tier.reload()  # the same reply: the map still disagrees with it, so load again
        assert tier.reloads == before + 2
        assert tier._owners == owners  # the map is redis-py's, never the reply's guess
        del tier._slots_reply  # the node's true reply: it agrees, and is taken as loaded
        tier.reload()
        tier.reload()
        assert tier.reloads == before + 3 and tier._owners == owners
    finally:
        c.close()
        c._local.close()  # its map thread waits out the 60 s lease before it looks at users


def test_slots_reply_hosts_are_named_as_redis_py_names_them() -> None:
    """A reply names a node by an empty host (the answering node's own), a null one
    (unknown-endpoint), bytes, or ``localhost``, which redis-py names by its address: each
    agrees with a map that names the same node, so the map is not loaded again every lease."""
    import socket

    from cachekit_web.core.local.topology import _names_owners

    def name_of(host: str, port: int) -> str:
        return f"{socket.gethostbyname(host) if host == 'localhost' else host}:{port}"

    local = socket.gethostbyname("localhost")
    owners: list[str | None] = [f"{local}:7000"] * 100 + ["10.0.0.2:7001"] * 100
    for first in ("", None, b"", "localhost", b"localhost", local):
        reply = [[0, 99, [first, 7000, b"id0"]], [100, 199, [b"10.0.0.2", 7001, b"id1"]]]
        assert _names_owners(reply, owners, name_of), first
    moved = [[0, 99, [b"10.0.0.3", 7000, b"id2"]], [100, 199, [b"10.0.0.2", 7001, b"id1"]]]
    assert not _names_owners(moved, owners, name_of)  # same port, another host
    assert not _names_owners([[0, 99, [b"", 7002, b"id0"]]], owners, name_of)
    assert not _names_owners([[0, 199, [b"10.0.0.2", 7001, b"id1"]]], owners, name_of)
    assert not _names_owners(None, owners, name_of)  # not asked
    assert not _names_owners([[0, 99, [None, 7000, b"id0"]]], [None] * 200, name_of)


def _client_ids(cluster: LocalCluster) -> set[tuple[int, int]]:
    """(port, client id) of every connection to every primary."""
    out = set()
    for node in cluster.nodes:
        with cluster.client(node) as raw:
            out |= {(node.port, int(c["id"])) for c in raw.client_list()}
    return out


def test_cluster_tier_ends_with_its_last_client(cluster: LocalCluster, namespace: str) -> None:
    """Dropped clients are collected; then the map thread, every link's thread and every
    tracking connection end."""
    import gc
    import weakref

    c = CacheClient.from_url(cluster.url, NAMESPACE=namespace, **FAST)
    keys = [f"k{i}" for i in range(30)]
    for k in keys:
        c.set(k, f"v-{k}")
    _filled(c, keys)
    tier = c._local
    threads = [tier._thread, *(link._thread for link in tier.links.values())]
    assert len(threads) == 4 and all(t is not None and t.is_alive() for t in threads)
    mine = {(int(name.rsplit(":", 1)[1]), link.client_id)
            for name, link in tier.links.items()}
    assert len(mine) == 3 and mine <= _client_ids(cluster)
    ref = weakref.ref(c)
    c.close()
    del c, tier
    gc.collect()
    wait_for("the client to be collected", lambda: ref() is None, 5)
    wait_for("the tier's threads to end",
             lambda: not any(t is not None and t.is_alive() for t in threads), 10)
    wait_for("the tracking connections to close",
             lambda: not (mine & _client_ids(cluster)), 5)


def test_cluster_manual_failover_keeps_the_bound(namespace: str) -> None:
    """CLUSTER FAILOVER: the old primary stays up as a replica (its tracking connection is
    not dropped); a write to the new primary is seen a lease after it returned."""
    with LocalCluster(3, replicas=1) as cluster:
        c = CacheClient.from_url(cluster.url, NAMESPACE=namespace, **FAST)
        writer = CacheClient.from_url(cluster.url, NAMESPACE=namespace, **FAST)
        try:
            keys = [f"k{i}" for i in range(30)]
            for k in keys:
                c.set(k, f"v-{k}")
            _filled(c, keys)
            mine = [k for k, port in _owner_ports(cluster, c, keys).items()
                    if port == cluster.nodes[0].port]
            with cluster.client(cluster.replicas[0]) as r:
                r.execute_command("CLUSTER", "FAILOVER")
                wait_for("the promotion", lambda: r.info("replication")["role"] == "master",
                         10)
            for k in mine:
                assert writer.set(k, "new") is True
            written = time.monotonic()
            stale = []
            while time.monotonic() < written + 1.5:
                late = time.monotonic() - written > FAST["LOCAL_CACHE_LEASE"] + 0.05
                stale += [k for k in mine if c.get(k) != "new" and late]
                time.sleep(0.005)
            assert not stale, stale[:5]
            # The tier's map follows within a reload (a lease); then hits come from the new
            # primary's link (counted from here: the fill above made hits already).
            hits = c.metrics.totals["local_hits"]
            want = f"127.0.0.1:{cluster.replicas[0].port}"

            def new_link_serves() -> bool:
                values = [c.get(k) for k in mine]
                link = c._local.link_for(c.full_key(mine[0]))
                return (values == ["new"] * len(mine) and link is not None
                        and link.address == want and c.metrics.totals["local_hits"] > hits)

            wait_for("tier hits from the new primary's link", new_link_serves, 5)
        finally:
            c.close()
            writer.close()


def test_sentinel_tier_keeps_only_what_its_tracked_primary_answered(
        sentinel: LocalSentinel, namespace: str) -> None:
    """A value is kept only if the data path read it from the node the tracking
    connection tracks (the pool and the tracking connection may, during a failover,
    each name another primary)."""
    c = CacheClient.from_url(sentinel.url, NAMESPACE=namespace, **FAST)
    try:
        keys = [f"k{i}" for i in range(3)]
        for k in keys:
            c.set(k, k)
        c.get(keys[0])
        tier = c._local
        wait_for("the tier to go live", lambda: tier.live, 10)
        host, port = sentinel.master_address()
        assert tier.address == f"{host}:{port}"
        fk = c.full_key(keys[1])
        token = tier.begin(fk)
        assert not tier.finish(fk, token, Entry(1), 1, -1, "127.0.0.1:1")  # another node
        token = tier.begin(fk)
        assert not tier.finish(fk, token, Entry(1), 1, -1, None)  # unknown node
        token = tier.begin(fk)
        assert tier.finish(fk, token, Entry(1), 1, -1, tier.address)
    finally:
        c.close()
