"""redis-py's failures as the backends tell them apart: our connect-phase errors and error groups.

The connect-phase classes are raised by our connections (``redispy``) and mapped to
coded errors at the one boundary (``common.translate``); both import them from here.
"""

from __future__ import annotations

import redis


class ConnectRefused(redis.ConnectionError):
    """A connection could not be established (as opposed to one lost mid-request)."""


class ConnectTimeout(redis.TimeoutError):
    """Establishing a connection timed out (as opposed to a slow reply)."""


class PoolExhausted(redis.ConnectionError):
    """No pooled connection became free within POOL_TIMEOUT."""


# Errors that mean "this node cannot be reached", as opposed to "it answered no".
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, OSError)
# Replies inside a node pipeline that mean "ask redis-py to route this again".
REROUTE = (redis.exceptions.AskError, redis.exceptions.TryAgainError)
# A node that answers CLUSTERDOWN (restarting, or cut off from the majority) serves nothing.
NODE_DOWN = redis.exceptions.ClusterDownError
# Everything redis-py raises on a cluster call (the error boundary's catch list).
REDIS_ERRORS = (redis.RedisError, redis.exceptions.RedisClusterException, OSError)
# redis-py 8.2+ (absent before): a slot-map refresh reached no node at all, so the whole
# cluster is unreachable, not the one node a command was for.
CLUSTER_UNREACHABLE: tuple[type[Exception], ...] = tuple(
    t for t in (getattr(redis.exceptions, "RedisClusterUnreachableError", None),)
    if t is not None)
