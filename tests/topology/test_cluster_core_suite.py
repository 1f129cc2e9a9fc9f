"""The core client's operation tests (tests/core/test_operations.py), re-run on a Cluster.

The fixtures they use are re-pointed: ``redis_url`` becomes the cluster's
redis+cluster:// URL and ``raw`` a RedisCluster, so every test there runs
unchanged against three primaries.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis.cluster import RedisCluster

from cachekit_web import CacheClient
from cachekit_web.core.errors import ClientClosedError
from tests.core.conftest import client, make_client  # noqa: F401 - fixtures used below
from tests.core.test_operations import *  # noqa: F403 - the shared operation tests

from .conftest import raw_cluster
from .servers import LocalCluster


@pytest.fixture()
def redis_url(cluster: LocalCluster) -> str:
    """The cluster URL, in place of the single server's."""
    return cluster.url


@pytest.fixture()
def raw(cluster: LocalCluster) -> Iterator[RedisCluster]:
    """A RedisCluster in place of the single server's raw client."""
    r = raw_cluster(cluster)
    yield r
    r.close()


def test_context_manager_and_describe(redis_url: str, namespace: str) -> None:
    """Replaces the single-server version, which looks for 'redis://' in the repr."""
    with CacheClient.from_url(redis_url, NAMESPACE=namespace) as c:
        assert c.describe() == redis_url
        assert "redis+cluster://" in repr(c)
    with pytest.raises(ClientClosedError):
        c.get("k")
