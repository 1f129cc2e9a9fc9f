"""On a Redis Cluster too, an increment whose reply is lost is never re-sent (RedisCluster's
own retry loop spares it): applied once, answered with the new value or None."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cachekit_web import AsyncCacheClient, CacheClient
from cachekit_web.core.backends.common import CAS_SCRIPT, INCR_SCRIPT

from ..core.conftest import KEY_A, SIGNING
from ..core.lost_reply import LostReply
from .servers import LocalCluster

MODES: dict[str, dict[str, Any]] = {
    "signed": {"SIGNING_KEY": SIGNING},
    "encrypted": {"MASTER_KEY": KEY_A},
    "plain-counters": {"SIGNING_KEY": SIGNING, "PLAIN_COUNTERS": ["n"]},
}


def _trap(node: Any, fk: str) -> LostReply:
    trap = LostReply(f"redis://127.0.0.1:{node.port}", fk)
    for script in (CAS_SCRIPT, INCR_SCRIPT):  # loaded: an EVALSHA runs (never NOSCRIPT)
        trap.raw.script_load(script)
    return trap


@pytest.mark.parametrize("mode", list(MODES))
def test_a_cluster_incr_whose_reply_is_lost_is_applied_once(
        mode: str, cluster: LocalCluster, namespace: str) -> None:
    c = CacheClient.from_url(cluster.url, NAMESPACE=namespace, **MODES[mode])
    try:
        assert c.set("n", 1, None)
        fk = c.full_key("n")
        node = c.backend.cluster().get_node_from_key(fk)
        trap = _trap(node, fk)
        pool = node.redis_connection.connection_pool
        trap.install(pool)
        pool.disconnect()
        pool.reset()  # every connection from now on is the trap's class
        trap.arm("EVALSHA", "EVAL")
        answer = c.incr("n", 5)
        assert trap.fired == 1, trap.seen
        assert answer in (None, 6), (answer, trap.seen)
        trap.close()
        # Read by another client: this one's node guard marked the node down (E013).
        check = CacheClient.from_url(cluster.url, NAMESPACE=namespace, **MODES[mode])
        assert check.get("n") == 6, trap.seen
        check.close()
    finally:
        c.close()


@pytest.mark.parametrize("mode", list(MODES))
def test_an_async_cluster_incr_whose_reply_is_lost_is_applied_once(
        mode: str, cluster: LocalCluster, namespace: str) -> None:
    async def main() -> tuple[Any, LostReply]:
        c = AsyncCacheClient.from_url(cluster.url, NAMESPACE=namespace, **MODES[mode])
        try:
            assert await c.set("n", 1, None)
            fk = c.full_key("n")
            node = (await c.backend.cluster()).get_node_from_key(fk)
            trap = _trap(node, fk)
            trap.install(node)
            await node.disconnect()
            node._free.clear()  # every connection from now on is the trap's class
            node._connections.clear()
            trap.arm("EVALSHA", "EVAL")
            return await c.incr("n", 5), trap
        finally:
            await c.close()

    answer, trap = asyncio.run(main())
    trap.close()
    check = CacheClient.from_url(cluster.url, NAMESPACE=namespace, **MODES[mode])
    stored = check.get("n")  # another client: this one's node guard marked the node down
    check.close()
    assert trap.fired == 1, trap.seen
    assert answer in (None, 6), (answer, trap.seen)
    assert stored == 6, trap.seen
