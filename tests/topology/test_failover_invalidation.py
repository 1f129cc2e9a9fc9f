"""A delete or set that failed while a cluster primary was down never lets its old value back.

After the replica is promoted, another node owns the slots and reads go straight
to it: a key whose invalidation has not landed there yet must read as a miss,
and the invalidation must land as soon as the client reloads the slot map.
"""

from __future__ import annotations

import asyncio
import time

import redis

from cachekit_web import DEFERRED, AsyncCacheClient, CacheClient

from .servers import LocalCluster

FAST = {"SOCKET_TIMEOUT": 0.5, "SOCKET_CONNECT_TIMEOUT": 0.5,
        "CIRCUIT_BREAKER_RECOVERY_TIMEOUT": 1.0}


def _failover(cluster: LocalCluster, *, allowed: bool) -> None:
    """Let the replicas take over a lost primary, or not (cluster-replica-no-failover)."""
    for node in cluster.replicas:
        with cluster.client(node) as r:
            r.config_set("cluster-replica-no-failover", "no" if allowed else "yes")


def test_invalidations_survive_a_promotion(namespace: str) -> None:
    with LocalCluster(3, replicas=3) as cluster:
        c = CacheClient.from_url(cluster.url, NAMESPACE=namespace, **FAST)
        loop = asyncio.new_event_loop()
        ac = AsyncCacheClient.from_url(cluster.url, NAMESPACE=namespace, **FAST)
        lost_port = cluster.nodes[0].port
        keys = [f"k{i}" for i in range(60)]
        with cluster.client(cluster.nodes[0]) as p:
            mine = [k for k in keys if _owner_port(p, c.full_key(k)) == lost_port]
        assert len(mine) >= 6
        c.set_many(dict.fromkeys(keys, "old"))
        _wait_replicated(cluster)
        assert loop.run_until_complete(ac.get(mine[0])) == "old"  # connected before the loss

        # No promotion until the invalidations below have returned (however slow this
        # machine is): the replicas may fail over only once they are all made.
        _failover(cluster, allowed=False)
        cluster.nodes[0].kill()
        # Invalidations while the primary is down: each call has returned before reads start.
        # Each client knows its own invalidations (another process's are not in scope here).
        deleted, rewritten, many = mine[0], mine[1], mine[2:4]
        assert c.delete(deleted) is DEFERRED
        assert c.set(rewritten, "new") is False
        assert c.delete_many(many) == 0
        mine_sync = [deleted, rewritten, *many]
        mine_async = mine[4:6]
        assert loop.run_until_complete(ac.delete(mine_async[0])) is DEFERRED
        assert loop.run_until_complete(ac.set(mine_async[1], "new")) is False
        invalidated = mine_sync + mine_async
        _failover(cluster, allowed=True)

        replica = cluster.replicas[0].port
        raw = redis.Redis(host="127.0.0.1", port=replica, socket_timeout=1)
        stale: list[tuple[str, str]] = []
        landed_after = None
        start = time.monotonic()
        rounds = 0
        while time.monotonic() - start < 20 and rounds < 2000:
            rounds += 1
            stale += [("get", k) for k in mine_sync if c.get(k) is not None]
            stale += [("async get", k) for k in mine_async
                      if loop.run_until_complete(ac.get(k)) is not None]
            stale += [("get_many", k) for k in c.get_many(mine_sync)]
            stale += [("async get_many", k)
                      for k in loop.run_until_complete(ac.get_many(mine_async))]
            try:
                promoted = raw.info("replication")["role"] == "master"
                left = sum(raw.exists(c.full_key(k)) for k in invalidated)  # one slot each
            except redis.RedisError:
                promoted, left = False, -1
            if promoted and left == 0:
                landed_after = time.monotonic() - start
                break
            time.sleep(0.02)
        assert stale == []
        assert landed_after is not None, "the invalidations never landed on the promoted node"
        print(f"\ninvalidations landed on the promoted replica {landed_after:.2f}s after "
              f"the outage began ({rounds} read rounds, none stale)")
        # Not stuck as misses: new writes are served again.
        assert c.set(deleted, "fresh") and c.get(deleted) == "fresh"
        assert loop.run_until_complete(ac.set(mine_async[0], "fresh"))
        assert loop.run_until_complete(ac.get(mine_async[0])) == "fresh"
        others = [k for k in keys if k not in mine]
        assert c.get_many(others) == dict.fromkeys(others, "old")
        raw.close()
        loop.run_until_complete(ac.close())
        loop.close()
        c.close()


def _owner_port(conn: redis.Redis, full_key: str) -> int:
    slot = int(conn.cluster("keyslot", full_key))
    for start, end, primary, *_ in conn.execute_command("CLUSTER", "SLOTS"):
        if start <= slot <= end:
            return int(primary[1])
    raise AssertionError("slot not served")


def _wait_replicated(cluster: LocalCluster) -> None:
    deadline = time.monotonic() + 5
    for primary, replica in zip(cluster.nodes, cluster.replicas, strict=True):
        with cluster.client(primary) as p, cluster.client(replica) as r:
            offset = p.info("replication")["master_repl_offset"]
            while r.info("replication").get("slave_repl_offset", -1) < offset:
                assert time.monotonic() < deadline, "replica did not catch up"
                time.sleep(0.02)
