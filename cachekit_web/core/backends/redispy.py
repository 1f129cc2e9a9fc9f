"""redis-py's classes under one name per flavour.

The async sources in ``core/_async`` import the ``Async*`` names; the generated
sync modules import the same names without the prefix. This table is the only
place that knows which redis-py module each flavour comes from.
"""

from __future__ import annotations

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
