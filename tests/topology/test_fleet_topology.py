"""The fleet view on a Redis Cluster and behind Sentinel, with real worker processes."""

from __future__ import annotations

from cachekit_web import CacheClient

from ..core.test_fleet import _run_workers
from .servers import LocalCluster, LocalSentinel


def _check(url: str, namespace: str) -> None:
    workers = _run_workers(url, namespace, [3, 5])
    from ..core.conftest import KEY_A

    me = CacheClient.from_url(url, NAMESPACE=namespace, MASTER_KEY=KEY_A,
                              FLEET_PUBLISH_INTERVAL=60)
    try:
        me.get("k0")
        report = me.health()
        assert report.fleet["scope"] == "fleet"
        assert {r["pid"] for r in report.fleet["processes"] if not r["this"]} == \
            {w["pid"] for w in workers}
        assert report.metrics["totals"]["hits"] == 3 + 5 + 1
        assert report.metrics["totals"]["sets"] == 3 + 5
    finally:
        me.close()


def test_fleet_on_a_cluster(cluster: LocalCluster, namespace: str) -> None:
    _check(cluster.url, namespace)


def test_fleet_behind_sentinel(namespace: str) -> None:
    with LocalSentinel(replicas=0, sentinels=1) as group:
        _check(group.url, namespace)
