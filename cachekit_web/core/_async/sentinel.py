"""Sentinel-managed primaries and read replicas, on redis-py's own Sentinel support.

Writes, locks, read-modify-write and clear always go to the primary. Plain
reads (get, get_many, ttl, exists) go to a replica when the configuration
names replicas (REPLICA_URLS, or ``?replica_reads=1`` on a Sentinel URL) and
REPLICA_READS is on; they fall back to the primary when no replica answers.

The async source; ``core/_sync/sentinel.py`` is generated from it.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Sequence
from typing import Any, cast

from redis.backoff import NoBackoff

from ..backends.common import (
    CAS_SCRIPT,
    DELETE_IF_SCRIPT,
    INCR_SCRIPT,
    PASSTHROUGH,
    retry_policy,
    translate,
    translated,
)
from ..backends.errors import REDIS_ERRORS, UNREACHABLE
from ..backends.options import node_options, opted_in
from ..backends.recent import RecentInvalidations, recent_invalidations
from ..backends.redispy import (
    AsyncMasterNotFoundError,
    AsyncRedis,
    AsyncRetry,
    AsyncSentinel,
    AsyncSentinelManagedConnection,
    AsyncSentinelManagedSSLConnection,
    AsyncSlaveNotFoundError,
)
from ..backends.topology import (
    NodeGuard,
    NoSentinelAnswered,
    SentinelWatch,
    guard_interval,
    node_entry,
)
from ..errors import CachekitError, ConfigurationError
from ..settings import Settings
from ..urls import parse_hosts_url, redact_url
from .nodes import async_node_report
from .redis import AsyncConnectPhaseMixin, AsyncRedisBackend, async_pool_for


class _AsyncSentinelPhase(AsyncConnectPhaseMixin):
    """Tells connect-time failures (E010/E011) from mid-request ones, keeping failover errors."""

    passthrough = (*PASSTHROUGH, AsyncMasterNotFoundError, AsyncSlaveNotFoundError)

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        # redis-py's sync Sentinel connection keeps a connection whose read timed out, so
        # the late reply would answer the next command (seen: DEL read SET's "OK"): drop it.
        kwargs.setdefault("disconnect_on_error", True)
        base: Any = super()
        return await base.read_response(*args, **kwargs)


class _AsyncSentinelConnection(_AsyncSentinelPhase, AsyncSentinelManagedConnection):
    pass


class _AsyncSentinelSslConnection(_AsyncSentinelPhase, AsyncSentinelManagedSSLConnection):
    pass


class _AsyncSentinel(AsyncSentinel):
    """redis-py's Sentinel, telling "no sentinel answered" from "failover in progress"."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        base: Any = super()
        base.__init__(*args, **kwargs)
        self._answered = threading.local()
        self.watch: SentinelWatch | None = None  # told which primary the pool connects to

    def check_master_state(self, state: Any, service_name: str) -> bool:
        self._answered.flag = True  # only called with a sentinel's reply
        base: Any = super()
        return bool(base.check_master_state(state, service_name))

    async def discover_master(self, service_name: str) -> Any:
        self._answered.flag = False
        base: Any = super()
        try:
            found = await base.discover_master(service_name)
        except AsyncMasterNotFoundError:
            if not getattr(self._answered, "flag", False):
                raise NoSentinelAnswered(f"no sentinel answered for {service_name!r}") from None
            raise
        if self.watch is not None:
            self.watch.known = (str(found[0]), int(found[1]))
        return found


class _AsyncReplicaReads:
    """Reads through a replica in ``self.readers``, falling back to ``self.client`` (primary)."""

    client: Any
    readers: list[tuple[str, Any]]
    reader_guard: NodeGuard
    _rr: Any
    recent: RecentInvalidations

    async def _read(self, call: Callable[[Any], Any], keys: Sequence[str]) -> Any:
        if self.recent.covers(keys):
            # Just invalidated on the primary: a replica may not have applied it yet.
            with translated():
                return await call(self.client)
        for _ in range(len(self.readers)):
            name, reader = self.readers[next(self._rr) % len(self.readers)]
            if not self.reader_guard.admit(name):
                continue
            try:
                result = await call(reader)
            except UNREACHABLE:
                self.reader_guard.failed(name)
                continue  # a lost replica costs nothing: the primary answers instead
            except REDIS_ERRORS as exc:
                raise translate(exc) from None
            self.reader_guard.ok(name)
            return result
        with translated():
            return await call(self.client)

    async def get(self, key: str) -> bytes | None:
        return cast("bytes | None", await self._read(lambda c: c.get(key), (key,)))

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        return cast("list[bytes | None]", await self._read(lambda c: c.mget(keys), keys))

    async def ttl(self, key: str) -> float | None:
        ms = int(await self._read(lambda c: c.pttl(key), (key,)))
        if ms == -1:
            return None
        return 0.0 if ms < 0 else ms / 1000.0

    async def exists(self, key: str) -> bool:
        return bool(await self._read(lambda c: c.exists(key), (key,)))

    async def delete(self, key: str) -> bool:
        base: Any = super()
        try:
            return bool(await base.delete(key))
        finally:  # also when the reply was lost: the delete may have landed
            self.recent.add((key,))

    async def delete_many(self, keys: Sequence[str]) -> int:
        base: Any = super()
        try:
            return int(await base.delete_many(keys))
        finally:
            self.recent.add(keys)

    async def delete_if_equal(self, key: str, expected: bytes) -> bool:
        base: Any = super()
        try:
            return bool(await base.delete_if_equal(key, expected))
        finally:
            self.recent.add((key,))

    async def delete_prefix(self, prefix: str) -> int:
        base: Any = super()
        try:
            return int(await base.delete_prefix(prefix))
        finally:
            self.recent.everything()


class AsyncReplicatedRedisBackend(_AsyncReplicaReads, AsyncRedisBackend):
    """A plain primary (REDIS_URL) with read replicas (REPLICA_URLS)."""

    def __init__(self, url: str, settings: Settings) -> None:
        super().__init__(url, settings)
        self.readers = []
        if settings.REPLICA_READS:
            for rurl in (u.strip() for u in settings.REPLICA_URLS if u.strip()):
                self.readers.append((redact_url(rurl), AsyncRedis(
                    connection_pool=async_pool_for(rurl, settings))))
        self._rr = itertools.count()
        self.reader_guard = NodeGuard(guard_interval(settings))
        self._all_urls = [redact_url(url), *(redact_url(u) for u in settings.REPLICA_URLS)]
        self.recent = recent_invalidations(self.describe())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._url} +{len(self.readers)} replicas>"

    def describe(self) -> str:
        """Primary and replicas, passwords redacted."""
        return ", ".join(self._all_urls)

    async def nodes(self) -> list[dict[str, Any]]:
        """The primary and each replica with role, latency, memory and reachability."""
        out = [await async_node_report(self._url, "primary", self.client)]
        for name, reader in self.readers:
            out.append(await async_node_report(name, "replica", reader,
                                               down=self.reader_guard.is_down(name)))
        return out

    async def close(self) -> None:
        await super().close()
        for _, reader in self.readers:
            await reader.connection_pool.disconnect()


class AsyncSentinelBackend(_AsyncReplicaReads, AsyncRedisBackend):
    """A primary found through Sentinel; follows failovers without a restart."""

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
        data.pop("ssl", None)  # the connection class says TLS
        data["db"] = db
        if spec.username:
            data["username"] = spec.username
        if spec.password:
            data["password"] = spec.password
        # RETRIES means lost connections only, never a timeout, as on every backend.
        data["retry"] = retry_policy(settings, AsyncRetry)
        data["retry_on_timeout"] = False
        sentinel_kwargs: dict[str, Any] = {
            "socket_timeout": settings.SOCKET_TIMEOUT,
            "socket_connect_timeout": settings.SOCKET_CONNECT_TIMEOUT,
            "retry": AsyncRetry(NoBackoff(), 0),  # a dead sentinel: ask the next one, now
        }
        if spec.query.get("sentinel_password"):
            sentinel_kwargs["password"] = spec.query["sentinel_password"]
        conn_class = _AsyncSentinelSslConnection if spec.tls else _AsyncSentinelConnection
        self.sentinel: Any = cast(Any, _AsyncSentinel(
            list(spec.hosts), sentinel_kwargs=sentinel_kwargs, min_other_sentinels=0, **data))
        self.client: Any = self.sentinel.master_for(self.service, connection_class=conn_class)
        self.pool = self.client.connection_pool
        self._cas = self.client.register_script(CAS_SCRIPT)  # add(), touch(), get_or_set
        self._delete_if = self.client.register_script(DELETE_IF_SCRIPT)
        self._incr = self.client.register_script(INCR_SCRIPT)  # incr() of plain counters
        self.readers: list[tuple[str, Any]] = []
        # Opt-in per URL: a replica can lag behind a write made a moment ago.
        if settings.REPLICA_READS and opted_in(spec.query, "replica_reads"):
            self.readers.append(("replicas", self.sentinel.slave_for(
                self.service, connection_class=conn_class)))
        self._rr = itertools.count()
        self.reader_guard = NodeGuard(guard_interval(settings))
        self.recent = recent_invalidations(self._url)
        watch_options: dict[str, Any] = {
            "socket_timeout": min(settings.SOCKET_TIMEOUT, 1.0),
            "socket_connect_timeout": min(settings.SOCKET_CONNECT_TIMEOUT, 1.0)}
        if spec.query.get("sentinel_password"):
            watch_options["password"] = spec.query["sentinel_password"]
        self.sentinel.watch = SentinelWatch(spec.hosts, self.service, watch_options)
        self._watch_limit = settings.CIRCUIT_BREAKER_RECOVERY_TIMEOUT

    def watch_topology(self, on_change: Callable[[str], object]) -> None:
        """The primary failed (the breaker opened): call ``on_change`` as soon as Sentinel
        names another one, so the breaker probes it then, not a recovery timeout later."""
        self.sentinel.watch.start(on_change, self._watch_limit)

    async def get_with_ttl(self, key: str) -> tuple[bytes | None, int, str | None]:
        """GET and PTTL from the primary, and the primary the pool connects to ("host:port",
        None if it changed during the call: the reply may come from either): the
        in-process tier keeps the value only if it tracks that node."""
        before = getattr(self.pool, "master_address", None)
        raw, ms, _ = await super().get_with_ttl(key)
        address = getattr(self.pool, "master_address", None)
        if not address or address != before:
            return raw, ms, None
        return raw, ms, f"{address[0]}:{address[1]}"

    async def primary_address(self) -> tuple[str, int]:
        """The (host, port) Sentinel currently names as primary; raises E014 if none."""
        with translated():
            host, port = await self.sentinel.discover_master(self.service)
        return str(host), int(port)

    async def nodes(self) -> list[dict[str, Any]]:
        """Sentinels, the primary and its replicas, with role, latency, memory, reachability."""
        out: list[dict[str, Any]] = []
        for s in self.sentinel.sentinels:
            kw = s.connection_pool.connection_kwargs
            out.append(await async_node_report(f"{kw['host']}:{kw['port']}", "sentinel", s,
                                               with_info=False))
        try:
            host, port = await self.primary_address()
        except CachekitError as exc:
            entry = node_entry("?", "primary")
            entry["error"] = exc.code
            out.append(entry)
            return out
        kwargs = self.client.connection_pool.connection_kwargs
        shared = {k: kwargs[k] for k in ("username", "password", "socket_timeout",
                                         "socket_connect_timeout") if kwargs.get(k)}
        addresses = [("primary", host, port)]
        with contextlib.suppress(*REDIS_ERRORS):
            addresses += [("replica", h, p) for h, p in
                          await self.sentinel.discover_slaves(self.service)]
        for role, h, p in addresses:
            async with AsyncRedis(host=h, port=p, retry=AsyncRetry(NoBackoff(), 0),
                                  **shared) as conn:
                out.append(await async_node_report(f"{h}:{p}", role, conn))
        return out

    async def close(self) -> None:
        for _, reader in self.readers:
            await reader.connection_pool.disconnect()
        await self.client.connection_pool.disconnect()
        for s in self.sentinel.sentinels:
            await s.connection_pool.disconnect()
