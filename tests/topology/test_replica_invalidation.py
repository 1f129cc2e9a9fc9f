"""Issue 9 item 9b, Sentinel half: a write that failed during an outage never lets the
old value back, also from a replica that has not applied the invalidation yet.

The replica is made to lag on purpose (CLIENT PAUSE WRITE holds back its replication
stream while it still answers reads), so the race is deterministic.
"""

from __future__ import annotations

import time

import redis

from cachekit_web import CacheClient

from .servers import LocalSentinel
from .test_sentinel import wait_replicated

FAST = {"SOCKET_TIMEOUT": 0.3, "SOCKET_CONNECT_TIMEOUT": 0.3,
        "CIRCUIT_BREAKER_RECOVERY_TIMEOUT": 0.2}


def test_failed_write_never_reads_old_value_from_a_lagging_replica(namespace: str) -> None:
    # A long down-after: the primary is paused, not failed over.
    with LocalSentinel(replicas=1, sentinels=1, down_after_ms=60000) as group:
        p, r = group.primary, group.replicas[0]
        c = CacheClient.from_url(group.url + "?replica_reads=1", NAMESPACE=namespace, **FAST)
        keys = ["a", "b", "c"]
        assert c.set_many(dict.fromkeys(keys, "old")) == []
        wait_replicated(p.port, r.port)
        assert c.get("a") == "old"
        replica = redis.Redis(host="127.0.0.1", port=r.port, socket_timeout=2)
        p.pause()
        try:
            assert c.set("a", "new") is False  # the outage: owed an invalidation
            assert c.delete("b")  # deferred
            assert c.set_many({"c": "new"}) == ["c"]
        finally:
            replica.execute_command("CLIENT", "PAUSE", "1500", "WRITE")  # the replica lags
            p.resume()
        assert replica.get(c.full_key("a"))  # the race is set up: it still holds "old"
        c.breaker.reset()
        seen: list[tuple[str, object]] = []
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            seen += [(k, v) for k in keys if (v := c.get(k)) is not None]
            seen += [(k, v) for k, v in c.get_many(keys).items()]
            time.sleep(0.02)
        assert seen == []
        assert replica.exists(*(c.full_key(k) for k in keys)) == 0  # landed on the replica too
        assert c.set("a", "fresh") and c.get("a") == "fresh"
        replica.close()
        c.close()
