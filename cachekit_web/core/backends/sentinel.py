"""Sentinel-managed primaries and read replicas, on redis-py's own Sentinel support.

Writes, locks, read-modify-write and clear always go to the primary. Plain
reads (get, get_many, ttl, exists) go to a replica when the configuration
names replicas (REPLICA_URLS, or ``?replica_reads=1`` on a Sentinel URL) and
REPLICA_READS is on; they fall back to the primary when no replica answers.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import redis
import redis.asyncio as aredis
import redis.asyncio.sentinel as asentinel
from redis.asyncio.retry import Retry as ARetry
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import (
    MasterNotFoundError,
    Sentinel,
    SentinelConnectionPool,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
    SlaveNotFoundError,
)

from .._async.redis import CONNECTION_CLASSES as _ASYNC_CLASSES
from .._async.redis import AsyncConnectPhaseMixin as _AsyncConnectPhaseMixin
from .._async.redis import AsyncPool as _AsyncPool
from .._async.redis import AsyncRedisBackend
from .._sync.redis import CONNECTION_CLASSES as _SYNC_CLASSES
from .._sync.redis import ConnectPhaseMixin as _ConnectPhaseMixin
from .._sync.redis import Pool as _Pool
from .._sync.redis import RedisBackend
from ..errors import ConfigurationError
from ..settings import Settings
from . import redact_url, scheme_of
from .cluster import NodeGuard, node_options, node_report, parse_hosts_url
from .common import (
    ConnectRefused,
    pool_from_url,
    pool_options,
    translate,
    translated,
)

T = TypeVar("T")

_PASS = (
    MasterNotFoundError,
    SlaveNotFoundError,
    redis.exceptions.AuthenticationError,
    redis.exceptions.AuthorizationError,
    redis.exceptions.BusyLoadingError,
)


class _SentinelPhase(_ConnectPhaseMixin):
    """Tells connect-time failures (E010/E011) from mid-request ones, keeping failover errors."""

    passthrough = _PASS


class _SentinelConnection(_SentinelPhase, SentinelManagedConnection):
    pass


class _SentinelSslConnection(_SentinelPhase, SentinelManagedSSLConnection):
    pass


class NoSentinelAnswered(ConnectRefused):
    """No sentinel could be reached: an outage (E010, trips the breaker), not a failover."""


class _Sentinel(Sentinel):
    """redis-py's Sentinel, telling "no sentinel answered" from "failover in progress"."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self._answered = threading.local()

    def check_master_state(self, state: Any, service_name: str) -> bool:
        self._answered.flag = True  # only called with a sentinel's reply
        return bool(super().check_master_state(state, service_name))  # type: ignore[no-untyped-call]

    def discover_master(self, service_name: str) -> Any:
        self._answered.flag = False
        try:
            return super().discover_master(service_name)  # type: ignore[no-untyped-call]
        except MasterNotFoundError:
            if not getattr(self._answered, "flag", False):
                raise NoSentinelAnswered(f"no sentinel answered for {service_name!r}") from None
            raise


def _is_sentinel(url: str) -> bool:
    return scheme_of(url) in ("redis+sentinel", "rediss+sentinel")


class _ReplicaReads:
    """Reads through ``self.reader`` (a replica), falling back to ``self.client`` (primary)."""

    client: Any
    readers: list[tuple[str, Any]]
    reader_guard: NodeGuard
    _rr: Any

    def _read(self, call: Callable[[Any], T]) -> T:
        for _ in range(len(self.readers)):
            name, reader = self.readers[next(self._rr) % len(self.readers)]
            if not self.reader_guard.admit(name):
                continue
            try:
                result = call(reader)
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                self.reader_guard.failed(name)
                continue  # a lost replica costs nothing: the primary answers instead
            except (redis.RedisError, redis.exceptions.RedisClusterException) as exc:
                raise translate(exc) from None
            self.reader_guard.ok(name)
            return result
        with translated():
            return call(self.client)

    def get(self, key: str) -> bytes | None:
        return cast("bytes | None", self._read(lambda c: c.get(key)))

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        return cast("list[bytes | None]", self._read(lambda c: c.mget(keys)))

    def ttl(self, key: str) -> float | None:
        ms = int(self._read(lambda c: c.pttl(key)))
        if ms == -1:
            return None
        return 0.0 if ms < 0 else ms / 1000.0

    def exists(self, key: str) -> bool:
        return bool(self._read(lambda c: c.exists(key)))


class ReplicatedRedisBackend(_ReplicaReads, RedisBackend):
    """A plain primary (REDIS_URL) with read replicas (REPLICA_URLS)."""

    def __init__(self, url: str, settings: Settings) -> None:
        super().__init__(url, settings)
        self.readers = []
        self._replica_pools: list[Any] = []
        if settings.REPLICA_READS:
            for rurl in (u.strip() for u in settings.REPLICA_URLS if u.strip()):
                pool = pool_from_url(_Pool, rurl, _SYNC_CLASSES,
                                     pool_options(rurl, settings, Retry))
                self._replica_pools.append(pool)
                self.readers.append((redact_url(rurl), redis.Redis(connection_pool=pool)))
        self._rr = itertools.count()
        self.reader_guard = NodeGuard(min(settings.CIRCUIT_BREAKER_RECOVERY_TIMEOUT, 5.0))
        self._all_urls = [redact_url(url), *(redact_url(u) for u in settings.REPLICA_URLS)]

    def __repr__(self) -> str:
        return f"<ReplicatedRedisBackend {self._url} +{len(self.readers)} replicas>"

    def describe(self) -> str:
        """Primary and replicas, passwords redacted."""
        return ", ".join(self._all_urls)

    def nodes(self) -> list[dict[str, Any]]:
        """The primary and each replica with role, latency, memory and reachability."""
        out = [node_report(self._url, "primary", self.client.ping, self.client.info)]
        for name, reader in self.readers:
            out.append(node_report(name, "replica", reader.ping, reader.info,
                                   down=self.reader_guard.is_down(name)))
        return out

    def close(self) -> None:
        super().close()
        for pool in self._replica_pools:
            pool.disconnect()


class SentinelBackend(_ReplicaReads, RedisBackend):
    """A primary found through Sentinel; follows failovers without a restart."""

    def __init__(self, url: str, settings: Settings) -> None:
        # Deliberately not RedisBackend.__init__: the pools come from Sentinel.
        self._url = redact_url(url)
        spec = parse_hosts_url(url, 26379)
        if not spec.path:
            raise ConfigurationError(
                f"a Sentinel URL needs the service name: redis+sentinel://host:port/"
                f"<service>[/db], got {self._url}", code="E042")
        self.service = spec.path[0]
        db_text = spec.path[1] if len(spec.path) > 1 else str(spec.query.get("db", 0))
        if not (db_text.isascii() and db_text.isdigit()):  # not echoed: may be password
            raise ConfigurationError(f"bad database number in {self._url}", code="E042")
        db = int(db_text)
        data = node_options(settings, spec.tls)
        data.pop("ssl", None)
        data["db"] = db
        if spec.username:
            data["username"] = spec.username
        if spec.password:
            data["password"] = spec.password
        retry_opts = pool_options("redis://x", settings, Retry)
        data["retry"] = retry_opts["retry"]
        data["retry_on_timeout"] = False
        sentinel_kwargs: dict[str, Any] = {
            "socket_timeout": settings.SOCKET_TIMEOUT,
            "socket_connect_timeout": settings.SOCKET_CONNECT_TIMEOUT,
            "retry": Retry(NoBackoff(), 0),  # a dead sentinel: ask the next one, now
        }
        if spec.query.get("sentinel_password"):
            sentinel_kwargs["password"] = spec.query["sentinel_password"]
        conn_class = _SentinelSslConnection if spec.tls else _SentinelConnection
        self.sentinel: Any = cast(Any, _Sentinel(
            list(spec.hosts), sentinel_kwargs=sentinel_kwargs, min_other_sentinels=0, **data))
        self.client: Any = self.sentinel.master_for(
            self.service, connection_pool_class=SentinelConnectionPool,
            connection_class=conn_class)
        self.pool = self.client.connection_pool
        self.readers: list[tuple[str, Any]] = []
        # Opt-in per URL: a replica can lag behind a write made a moment ago.
        if settings.REPLICA_READS and spec.query.get("replica_reads", "").lower() in (
                "1", "true", "yes"):
            self.readers.append(("replicas", self.sentinel.slave_for(
                self.service, connection_pool_class=SentinelConnectionPool,
                connection_class=conn_class)))
        self._rr = itertools.count()
        self.reader_guard = NodeGuard(min(settings.CIRCUIT_BREAKER_RECOVERY_TIMEOUT, 5.0))

    def __repr__(self) -> str:
        return f"<SentinelBackend {self._url}>"

    def primary_address(self) -> tuple[str, int]:
        """The (host, port) Sentinel currently names as primary; raises E014 if none."""
        with translated():
            host, port = self.sentinel.discover_master(self.service)
        return str(host), int(port)

    def nodes(self) -> list[dict[str, Any]]:
        """Sentinels, the primary and its replicas, with role, latency, memory, reachability."""
        out: list[dict[str, Any]] = []
        for s in self.sentinel.sentinels:
            kw = s.connection_pool.connection_kwargs
            out.append(node_report(f"{kw['host']}:{kw['port']}", "sentinel", s.ping, dict))
        try:
            host, port = self.primary_address()
        except Exception:
            out.append({"node": "?", "role": "primary", "reachable": False, "latency_ms": None,
                        "used_memory": None, "used_memory_human": None, "error": "E014"})
            return out
        kwargs = self.client.connection_pool.connection_kwargs
        shared = {k: kwargs[k] for k in ("username", "password", "socket_timeout",
                                         "socket_connect_timeout") if kwargs.get(k)}
        shared["retry"] = Retry(NoBackoff(), 0)
        addresses = [("primary", host, port)]
        with contextlib.suppress(redis.RedisError, OSError):
            addresses += [("replica", h, p) for h, p in
                          self.sentinel.discover_slaves(self.service)]
        for role, h, p in addresses:
            with redis.Redis(host=h, port=p, **shared) as conn:
                out.append(node_report(f"{h}:{p}", role, conn.ping, conn.info))
        return out

    def close(self) -> None:
        for _, reader in self.readers:
            reader.connection_pool.disconnect()
        self.client.connection_pool.disconnect()
        for s in self.sentinel.sentinels:
            s.connection_pool.disconnect()


# -- asyncio ------------------------------------------------------------------
_APASS = (*_PASS, asentinel.MasterNotFoundError, asentinel.SlaveNotFoundError)


class _AsyncSentinelPhase(_AsyncConnectPhaseMixin):
    passthrough = _APASS


class _AsyncSentinel(asentinel.Sentinel):
    """Asyncio twin of _Sentinel."""

    _answered = False

    def check_master_state(self, state: Any, service_name: str) -> bool:
        self._answered = True
        return bool(super().check_master_state(state, service_name))

    async def discover_master(self, service_name: str) -> Any:
        self._answered = False
        try:
            return await super().discover_master(service_name)
        except asentinel.MasterNotFoundError:
            if not self._answered:
                raise NoSentinelAnswered(f"no sentinel answered for {service_name!r}") from None
            raise


class _AsyncSentinelConnection(_AsyncSentinelPhase, asentinel.SentinelManagedConnection):
    pass


class _AsyncSentinelSslConnection(_AsyncSentinelPhase, asentinel.SentinelManagedSSLConnection):
    pass


class _AsyncReplicaReads:
    """Asyncio twin of _ReplicaReads."""

    client: Any
    readers: list[tuple[str, Any]]
    reader_guard: NodeGuard
    _rr: Any

    async def _read(self, call: Callable[[Any], Any]) -> Any:
        for _ in range(len(self.readers)):
            name, reader = self.readers[next(self._rr) % len(self.readers)]
            if not self.reader_guard.admit(name):
                continue
            try:
                result = await call(reader)
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                self.reader_guard.failed(name)
                continue
            except redis.RedisError as exc:
                raise translate(exc) from None
            self.reader_guard.ok(name)
            return result
        with translated():
            return await call(self.client)

    async def get(self, key: str) -> bytes | None:
        return cast("bytes | None", await self._read(lambda c: c.get(key)))

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        return cast("list[bytes | None]", await self._read(lambda c: c.mget(keys)))

    async def ttl(self, key: str) -> float | None:
        ms = int(await self._read(lambda c: c.pttl(key)))
        if ms == -1:
            return None
        return 0.0 if ms < 0 else ms / 1000.0

    async def exists(self, key: str) -> bool:
        return bool(await self._read(lambda c: c.exists(key)))


async def _async_node_report(name: str, role: str, conn: Any, down: bool = False,
                             with_info: bool = True) -> dict[str, Any]:
    entry: dict[str, Any] = {"node": name, "role": role, "reachable": False,
                             "latency_ms": None, "used_memory": None,
                             "used_memory_human": None, "error": "E013" if down else None}
    try:
        start = time.perf_counter()
        await conn.ping()
        entry["latency_ms"] = round((time.perf_counter() - start) * 1000, 3)
        raw = await conn.info() if with_info else {}
        entry.update(reachable=True, error=None, used_memory=raw.get("used_memory"),
                     used_memory_human=raw.get("used_memory_human"),
                     maxmemory=raw.get("maxmemory"), server_role=raw.get("role"))
    except (redis.RedisError, OSError) as exc:
        entry["error"] = translate(exc).code
    return entry


class AsyncReplicatedRedisBackend(_AsyncReplicaReads, AsyncRedisBackend):
    """Asyncio twin of ReplicatedRedisBackend."""

    def __init__(self, url: str, settings: Settings) -> None:
        super().__init__(url, settings)
        self.readers = []
        if settings.REPLICA_READS:
            for rurl in (u.strip() for u in settings.REPLICA_URLS if u.strip()):
                pool = pool_from_url(_AsyncPool, rurl, _ASYNC_CLASSES,
                                     pool_options(rurl, settings, ARetry))
                self.readers.append((redact_url(rurl), aredis.Redis(connection_pool=pool)))
        self._rr = itertools.count()
        self.reader_guard = NodeGuard(min(settings.CIRCUIT_BREAKER_RECOVERY_TIMEOUT, 5.0))
        self._all_urls = [redact_url(url), *(redact_url(u) for u in settings.REPLICA_URLS)]

    def describe(self) -> str:
        """Primary and replicas, passwords redacted."""
        return ", ".join(self._all_urls)

    async def nodes(self) -> list[dict[str, Any]]:
        """The primary and each replica with role, latency, memory and reachability."""
        out = [await _async_node_report(self._url, "primary", self.client)]
        for name, reader in self.readers:
            out.append(await _async_node_report(name, "replica", reader,
                                                down=self.reader_guard.is_down(name)))
        return out

    async def close(self) -> None:
        await super().close()
        for _, reader in self.readers:
            await reader.connection_pool.disconnect()


class AsyncSentinelBackend(_AsyncReplicaReads, AsyncRedisBackend):
    """Asyncio twin of SentinelBackend, on redis.asyncio.sentinel."""

    def __init__(self, url: str, settings: Settings) -> None:
        # Deliberately not AsyncRedisBackend.__init__: the pools come from Sentinel.
        self._url = redact_url(url)
        spec = parse_hosts_url(url, 26379)
        if not spec.path:
            raise ConfigurationError(
                f"a Sentinel URL needs the service name: redis+sentinel://host:port/"
                f"<service>[/db], got {self._url}", code="E042")
        self.service = spec.path[0]
        db_text = spec.path[1] if len(spec.path) > 1 else str(spec.query.get("db", 0))
        if not (db_text.isascii() and db_text.isdigit()):  # not echoed: may be password
            raise ConfigurationError(f"bad database number in {self._url}", code="E042")
        db = int(db_text)
        data = node_options(settings, spec.tls)
        data.pop("ssl", None)
        data["db"] = db
        if spec.username:
            data["username"] = spec.username
        if spec.password:
            data["password"] = spec.password
        data["retry"] = ARetry(NoBackoff(), settings.RETRIES)
        sentinel_kwargs: dict[str, Any] = {
            "socket_timeout": settings.SOCKET_TIMEOUT,
            "socket_connect_timeout": settings.SOCKET_CONNECT_TIMEOUT,
            "retry": ARetry(NoBackoff(), 0),
        }
        if spec.query.get("sentinel_password"):
            sentinel_kwargs["password"] = spec.query["sentinel_password"]
        conn_class = _AsyncSentinelSslConnection if spec.tls else _AsyncSentinelConnection
        self.sentinel: Any = cast(Any, _AsyncSentinel(  # type: ignore[no-untyped-call]
            list(spec.hosts), sentinel_kwargs=sentinel_kwargs, min_other_sentinels=0, **data))
        self.client: Any = self.sentinel.master_for(
            self.service, connection_class=conn_class)
        self.pool = self.client.connection_pool
        self.readers: list[tuple[str, Any]] = []
        if settings.REPLICA_READS and spec.query.get("replica_reads", "").lower() in (
                "1", "true", "yes"):
            self.readers.append(("replicas", self.sentinel.slave_for(
                self.service, connection_class=conn_class)))
        self._rr = itertools.count()
        self.reader_guard = NodeGuard(min(settings.CIRCUIT_BREAKER_RECOVERY_TIMEOUT, 5.0))

    def __repr__(self) -> str:
        return f"<AsyncSentinelBackend {self._url}>"

    async def nodes(self) -> list[dict[str, Any]]:
        """Sentinels, the primary and its replicas, with role, latency, memory, reachability."""
        out: list[dict[str, Any]] = []
        for s in self.sentinel.sentinels:
            kw = s.connection_pool.connection_kwargs
            out.append(await _async_node_report(f"{kw['host']}:{kw['port']}", "sentinel", s,
                                                with_info=False))
        try:
            host, port = await self.sentinel.discover_master(self.service)
        except (redis.RedisError, OSError):
            out.append({"node": "?", "role": "primary", "reachable": False, "latency_ms": None,
                        "used_memory": None, "used_memory_human": None, "error": "E014"})
            return out
        kwargs = self.client.connection_pool.connection_kwargs
        shared = {k: kwargs[k] for k in ("username", "password", "socket_timeout",
                                         "socket_connect_timeout") if kwargs.get(k)}
        addresses = [("primary", host, port)]
        with contextlib.suppress(redis.RedisError, OSError):
            addresses += [("replica", h, p) for h, p in
                          await self.sentinel.discover_slaves(self.service)]
        for role, h, p in addresses:
            conn = aredis.Redis(host=h, port=p, retry=ARetry(NoBackoff(), 0), **shared)
            try:
                out.append(await _async_node_report(f"{h}:{p}", role, conn))
            finally:
                await conn.aclose()
        return out

    async def close(self) -> None:
        for _, reader in self.readers:
            await reader.connection_pool.disconnect()
        await self.client.connection_pool.disconnect()
        for s in self.sentinel.sentinels:
            await s.connection_pool.disconnect()
