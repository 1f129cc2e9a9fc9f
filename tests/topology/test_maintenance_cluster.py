"""Operator tasks (count, clear, `flask cachekit clear`) on a Redis Cluster."""

from __future__ import annotations

import asyncio

from flask import Flask

from cachekit_web import AsyncCacheClient, CacheClient
from cachekit_web.core.maintenance import clear_in_batches, count_keys
from cachekit_web.flask import Cache

from .servers import LocalCluster


def test_count_and_clear_see_every_primary(cluster: LocalCluster, namespace: str) -> None:
    c = CacheClient.from_url(cluster.url, NAMESPACE=namespace)
    other = CacheClient.from_url(cluster.url, NAMESPACE=namespace + "-other")
    try:
        c.set_many({f"k{i}": i for i in range(20)})
        other.set("keep", 1)
        assert count_keys(c) == 20
        assert count_keys(c, limit=5) == 5
        assert c.count() == 20

        async def async_count() -> int:
            async with AsyncCacheClient.from_url(cluster.url, NAMESPACE=namespace) as ac:
                return await ac.count()

        assert asyncio.run(async_count()) == 20
        assert sum(clear_in_batches(c, batch=7)) == 20
        assert count_keys(c) == 0 and c.get_many([f"k{i}" for i in range(20)]) == {}
        assert other.get("keep") == 1
    finally:
        other.clear()
        c.close()
        other.close()


def test_flask_cli_clear_on_a_cluster(cluster: LocalCluster, namespace: str) -> None:
    app = Flask(f"app-{namespace}")
    app.config.update(SECRET_KEY="s3cr3t-flask-key", CACHEKIT_REDIS_URL=cluster.url,
                      CACHEKIT_NAMESPACE=namespace)
    cache = Cache()
    cache.init_app(app)
    with app.app_context():
        cache.set_many({f"k{i}": i for i in range(20)})
    out = app.test_cli_runner().invoke(args=["cachekit", "clear", "--yes"])
    assert out.exit_code == 0, out.output
    assert "removed 20 keys" in out.output
    with app.app_context():
        assert cache.get("k3") is None
