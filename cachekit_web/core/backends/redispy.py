"""redis-py's classes under one name per flavour.

The async sources in ``core/_async`` import the ``Async*`` names; the generated
sync modules import the same names without the prefix. This table is the only
place that knows which redis-py module each flavour comes from, and how each
flavour opens a cluster and a node's connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio as aredis
import redis.asyncio.cluster as acluster
import redis.asyncio.connection as aconn
import redis.asyncio.lock as alock
import redis.asyncio.retry as aretry
import redis.asyncio.sentinel as asentinel
import redis.cluster as scluster
import redis.connection as sconn
import redis.lock as slock
import redis.retry as sretry
import redis.sentinel as ssentinel

Redis = redis.Redis
AsyncRedis = aredis.Redis
Connection = sconn.Connection
AsyncConnection = aconn.Connection
SSLConnection = sconn.SSLConnection
AsyncSSLConnection = aconn.SSLConnection
UnixDomainSocketConnection = sconn.UnixDomainSocketConnection
AsyncUnixDomainSocketConnection = aconn.UnixDomainSocketConnection
BlockingConnectionPool = redis.BlockingConnectionPool
AsyncBlockingConnectionPool = aredis.BlockingConnectionPool
Lock = slock.Lock
AsyncLock = alock.Lock
Retry = sretry.Retry
AsyncRetry = aretry.Retry
RedisCluster = scluster.RedisCluster
AsyncRedisCluster = acluster.RedisCluster
ClusterNode = scluster.ClusterNode
AsyncClusterNode = acluster.ClusterNode
Sentinel = ssentinel.Sentinel
AsyncSentinel = asentinel.Sentinel
SentinelConnectionPool = ssentinel.SentinelConnectionPool
AsyncSentinelConnectionPool = asentinel.SentinelConnectionPool
SentinelManagedConnection = ssentinel.SentinelManagedConnection
AsyncSentinelManagedConnection = asentinel.SentinelManagedConnection
SentinelManagedSSLConnection = ssentinel.SentinelManagedSSLConnection
AsyncSentinelManagedSSLConnection = asentinel.SentinelManagedSSLConnection
MasterNotFoundError = ssentinel.MasterNotFoundError
AsyncMasterNotFoundError = asentinel.MasterNotFoundError
SlaveNotFoundError = ssentinel.SlaveNotFoundError
AsyncSlaveNotFoundError = asentinel.SlaveNotFoundError


# -- how a cluster and its node connections are made, per flavour ---------------
def _no_timeouts(errors: tuple[type[Exception], ...]) -> tuple[type[Exception], ...]:
    return tuple(e for e in errors if not issubclass(e, redis.TimeoutError))


class _RetryingCluster(scluster.RedisCluster):
    """RedisCluster whose retries (RETRIES) re-route lost connections, never a timeout.

    redis-py retries the error types listed here whatever the Retry object says.
    """

    ERRORS_ALLOW_RETRY = _no_timeouts(  # type: ignore[assignment]
        scluster.RedisCluster.ERRORS_ALLOW_RETRY)


class _AsyncRetryingCluster(acluster.RedisCluster):
    """The asyncio RedisCluster, retrying lost connections but never a timeout."""

    ERRORS_ALLOW_RETRY = _no_timeouts(  # type: ignore[assignment]
        acluster.RedisCluster.ERRORS_ALLOW_RETRY)


def open_cluster(seeds: Sequence[tuple[str, int]], options: dict[str, Any]) -> Any:
    """A RedisCluster on ``seeds``; it reads the slot map now (raises if no seed answers)."""
    return _RetryingCluster(startup_nodes=[ClusterNode(h, p)  # type: ignore[no-untyped-call]
                                           for h, p in seeds], **options)


async def async_open_cluster(seeds: Sequence[tuple[str, int]], options: dict[str, Any]) -> Any:
    """An asyncio RedisCluster on ``seeds``, its slot map read (raises if no seed answers)."""
    rc = _AsyncRetryingCluster(startup_nodes=[AsyncClusterNode(h, p) for h, p in seeds],
                               **options)
    try:
        await rc.initialize()
    except BaseException:
        await rc.aclose()
        raise
    return rc


def node_client(rc: Any, node: Any, cache: dict[str, Any], options: dict[str, Any]) -> Any:
    """A plain client for one node's pipelines: redis-py's own, on the cluster's pool."""
    return rc.get_redis_connection(node)


def async_node_client(rc: Any, node: Any, cache: dict[str, Any],
                      options: dict[str, Any]) -> Any:
    """A plain asyncio client for one node's pipelines (redis-py has none), kept in ``cache``."""
    client = cache.get(node.name)
    if client is None:
        client = cache[node.name] = AsyncRedis(host=node.host, port=node.port, **options)
    return client


def unopened_cluster(seeds: Sequence[tuple[str, int]], options: dict[str, Any]) -> Any:
    """A RedisCluster for get_client(): the sync one reads its slot map now."""
    return open_cluster(seeds, options)


def async_unopened_cluster(seeds: Sequence[tuple[str, int]], options: dict[str, Any]) -> Any:
    """An asyncio RedisCluster for get_client(): it reads its slot map on first use."""
    return _AsyncRetryingCluster(startup_nodes=[AsyncClusterNode(h, p) for h, p in seeds],
                                 **options)
