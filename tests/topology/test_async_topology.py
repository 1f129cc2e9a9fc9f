"""AsyncCacheClient on a Cluster, a Sentinel group and a primary with replicas."""

from __future__ import annotations

import asyncio
import time

import redis

from cachekit_web import AsyncCacheClient, CacheClient
from cachekit_web.core.backends.cluster import AsyncClusterBackend
from cachekit_web.core.keys import lock_key

from .servers import LocalCluster, LocalSentinel


def test_async_client_on_cluster(cluster: LocalCluster, namespace: str) -> None:
    async def main() -> None:
        c = AsyncCacheClient.from_url(cluster.url, NAMESPACE=namespace)
        assert isinstance(c.backend, AsyncClusterBackend)
        many = {f"m{i}": i for i in range(90)}
        assert await c.set_many(many) == []
        assert await c.get_many([*many, "absent"]) == many
        assert await c.set("a", "x") and await c.get("a") == "x"
        assert await c.add("a", "y") is False and await c.add("b", "y") is True
        assert await c.incr("n", default=0) == 1 and await c.decr("n", 3) == -2
        assert await c.touch("a", 50) and 49 < (await c.ttl("a") or 0) <= 50
        assert await c.touch("a", None) and await c.ttl("a") is None
        assert await c.has_key("a") and await c.delete("a") and not await c.has_key("a")
        assert await c.delete_many(list(many)[:10]) == 10

        computed = []

        async def compute() -> str:
            computed.append(1)
            await asyncio.sleep(0.2)
            return "v"

        results = await asyncio.gather(*(c.get_or_set("hot", compute, timeout=60)
                                          for _ in range(5)))
        assert results == ["v"] * 5 and computed == [1]
        report = await c.health()
        assert report.status == "ok" and len(report.nodes) == 3
        assert all(n["reachable"] and n["role"] == "primary" for n in report.nodes)
        assert await c.clear() == 80 + 3  # the rest of many, b, n, hot
        assert await c.get_many(many) == {}
        assert c.metrics.snapshot()["errors_by_code"] == {}
        fk = c.full_key("locked")
        lock = c.backend.lock(lock_key(fk), 5)
        assert await lock.acquire(True, 0)
        raw = redis.cluster.RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port)
        assert raw.exists(lock_key(fk)) == 1
        await lock.release()
        assert raw.exists(lock_key(fk)) == 0
        raw.close()
        await c.close()

    asyncio.run(main())


def test_async_sentinel_follows_failover(namespace: str) -> None:
    with LocalSentinel(replicas=1, sentinels=1) as group:
        replica = group.replicas[0]

        async def main() -> float:
            sync = CacheClient.from_url(group.url, NAMESPACE=namespace,
                                        SOCKET_TIMEOUT=0.5, SOCKET_CONNECT_TIMEOUT=0.5,
                                        CIRCUIT_BREAKER_RECOVERY_TIMEOUT=0.5)
            c = AsyncCacheClient.sharing(sync)
            assert await c.set("k", 1) and await c.get("k") == 1
            group.primary.kill()
            start = time.monotonic()
            resumed = None
            errors: list[BaseException] = []
            while time.monotonic() - start < 15:
                try:
                    if await c.set("after", "yes"):
                        resumed = time.monotonic() - start
                        break
                    await c.get("k")
                except Exception as exc:
                    errors.append(exc)
                await asyncio.sleep(0.01)
            assert errors == []
            assert resumed is not None
            assert await c.get("after") == "yes"
            assert group.master_address()[1] == replica.port
            report = await c.health()
            assert [n["node"] for n in report.nodes if n["role"] == "primary"] == [
                f"127.0.0.1:{replica.port}"]
            await c.close()
            sync.close()
            return resumed

        resumed = asyncio.run(main())
        print(f"\nasync client resumed writing {resumed:.2f}s after the primary was killed")
