"""Fixtures for topology tests: a shared 3-primary Redis Cluster, started by the suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis.cluster import ClusterNode, RedisCluster

from .servers import LocalCluster


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    """A 3-primary cluster shared by the session (tests use their own namespace)."""
    with LocalCluster(3) as c:
        yield c


class RawCluster(RedisCluster):
    """A RedisCluster whose DBSIZE counts every primary, like one server's would."""

    def dbsize(self, target_nodes: object = None) -> int:  # type: ignore[override]
        """Keys in the whole cluster."""
        return int(super().dbsize(target_nodes=RedisCluster.PRIMARIES))


def raw_cluster(cluster: LocalCluster) -> RawCluster:
    """A plain redis-py RedisCluster on ``cluster`` (caller closes it)."""
    return RawCluster(
        startup_nodes=[ClusterNode("127.0.0.1", n.port)  # type: ignore[no-untyped-call]
                       for n in cluster.nodes],
        socket_timeout=2,
    )
