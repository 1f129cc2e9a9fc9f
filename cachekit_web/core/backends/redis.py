"""Redis backend on redis-py: URL, TLS, unix socket; sync and asyncio.

This module is the one boundary where redis-py's exceptions become ours,
through ``_ERROR_MAP`` (matched on exception type, most specific first).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, cast

import redis
import redis.asyncio as aredis
import redis.asyncio.connection as aconn
import redis.asyncio.sentinel as asentinel
import redis.connection as sconn
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError, SlaveNotFoundError

from ..errors import (
    BackendAuthError,
    BackendConnectionError,
    BackendError,
    BackendTimeoutError,
    CachekitError,
    ConfigurationError,
    LockTimeoutError,
)
from ..settings import Settings
from . import redact_url, scheme_of

_UPDATE_ATTEMPTS = 100
_SCAN_BATCH = 500


def _contention_pause(attempt: int) -> float:
    """Seconds to wait before retrying a WATCH update: jittered, so contenders fall out of step."""
    return random.random() * min(0.01, 0.0005 * (attempt + 1))


class ConnectRefused(redis.ConnectionError):
    """A connection could not be established (as opposed to one lost mid-request)."""


class ConnectTimeout(redis.TimeoutError):
    """Establishing a connection timed out (as opposed to a slow reply)."""


class PoolExhausted(redis.ConnectionError):
    """No pooled connection became free within POOL_TIMEOUT."""


_PASSTHROUGH = (
    redis.exceptions.AuthenticationError,
    redis.exceptions.AuthorizationError,
    redis.exceptions.BusyLoadingError,
)

# redis-py exception type -> (our exception class, code). Looked up along the MRO.
_ERROR_MAP: dict[type[BaseException], tuple[type[CachekitError], str]] = {
    redis.exceptions.AuthenticationError: (BackendAuthError, "E060"),
    redis.exceptions.AuthorizationError: (BackendAuthError, "E060"),
    redis.exceptions.NoPermissionError: (BackendAuthError, "E060"),
    redis.exceptions.AuthenticationWrongNumberOfArgsError: (BackendAuthError, "E060"),
    PoolExhausted: (BackendConnectionError, "E012"),
    redis.exceptions.MaxConnectionsError: (BackendConnectionError, "E012"),
    ConnectRefused: (BackendConnectionError, "E010"),
    ConnectTimeout: (BackendTimeoutError, "E011"),
    redis.TimeoutError: (BackendTimeoutError, "E064"),
    redis.exceptions.BusyLoadingError: (BackendError, "E061"),
    redis.ConnectionError: (BackendConnectionError, "E065"),
    redis.exceptions.OutOfMemoryError: (BackendError, "E066"),
    redis.exceptions.ReadOnlyError: (BackendError, "E062"),
    # Topology: redirections and failovers are not failures of the server (E013/E014
    # do not trip the breaker); a cluster that refuses every slot is (E062).
    redis.exceptions.ClusterDownError: (BackendError, "E062"),
    redis.exceptions.TryAgainError: (BackendConnectionError, "E014"),
    redis.exceptions.AskError: (BackendConnectionError, "E014"),  # MovedError is a subclass
    redis.exceptions.SlotNotCoveredError: (BackendConnectionError, "E013"),
    MasterNotFoundError: (BackendConnectionError, "E014"),
    SlaveNotFoundError: (BackendConnectionError, "E014"),
    asentinel.MasterNotFoundError: (BackendConnectionError, "E014"),
    asentinel.SlaveNotFoundError: (BackendConnectionError, "E014"),
    redis.exceptions.RedisClusterException: (BackendConnectionError, "E010"),
    redis.exceptions.InvalidResponse: (BackendError, "E067"),
    redis.exceptions.ResponseError: (BackendError, "E063"),
    redis.exceptions.DataError: (BackendError, "E063"),
    redis.RedisError: (BackendError, "E062"),
    TimeoutError: (BackendTimeoutError, "E064"),
    ConnectionError: (BackendConnectionError, "E065"),
    OSError: (BackendConnectionError, "E065"),
}


def translate(exc: BaseException) -> CachekitError:
    """Map a redis-py (or socket) exception to a coded cachekit-web error."""
    if isinstance(exc, CachekitError):
        return exc
    for klass in type(exc).__mro__:
        hit = _ERROR_MAP.get(klass)
        if hit is not None:
            cls, code = hit
            return cls(f"{type(exc).__name__} from Redis", code=code)
    return BackendError(f"unexpected {type(exc).__name__} from Redis", code="E062")


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Re-raise redis-py and socket errors as cachekit-web errors."""
    try:
        yield
    except CachekitError:
        raise
    except (redis.RedisError, redis.exceptions.RedisClusterException, OSError) as exc:
        raise translate(exc) from None


class _ConnectPhaseMixin:
    """Marks errors raised while connecting, so the map can tell E010/E011 from E065/E064."""

    passthrough: tuple[type[BaseException], ...] = _PASSTHROUGH  # keep their own codes

    def connect_check_health(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().connect_check_health(*args, **kwargs)  # type: ignore[misc]
        except self.passthrough:
            raise
        except redis.TimeoutError as exc:
            raise ConnectTimeout(*exc.args) from None
        except redis.ConnectionError as exc:
            raise ConnectRefused(*exc.args) from None


class _TcpConnection(_ConnectPhaseMixin, sconn.Connection):
    pass


class _SslConnection(_ConnectPhaseMixin, sconn.SSLConnection):
    pass


class _UnixConnection(_ConnectPhaseMixin, sconn.UnixDomainSocketConnection):
    pass


class _Pool(redis.BlockingConnectionPool):
    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except (ConnectRefused, ConnectTimeout, *_PASSTHROUGH):
            raise
        except redis.ConnectionError as exc:
            raise PoolExhausted(*exc.args) from None


class _AsyncConnectPhaseMixin:
    passthrough: tuple[type[BaseException], ...] = _PASSTHROUGH

    async def connect_check_health(self, *args: Any, **kwargs: Any) -> None:
        try:
            await super().connect_check_health(*args, **kwargs)  # type: ignore[misc]
        except self.passthrough:
            raise
        except redis.TimeoutError as exc:
            raise ConnectTimeout(*exc.args) from None
        except redis.ConnectionError as exc:
            raise ConnectRefused(*exc.args) from None


class _AsyncTcpConnection(_AsyncConnectPhaseMixin, aconn.Connection):
    pass


class _AsyncSslConnection(_AsyncConnectPhaseMixin, aconn.SSLConnection):
    pass


class _AsyncUnixConnection(_AsyncConnectPhaseMixin, aconn.UnixDomainSocketConnection):
    pass


class _AsyncPool(aredis.BlockingConnectionPool):
    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except (ConnectRefused, ConnectTimeout, *_PASSTHROUGH):
            raise
        except redis.ConnectionError as exc:
            raise PoolExhausted(*exc.args) from None


_SYNC_CLASSES = {"redis": _TcpConnection, "rediss": _SslConnection, "unix": _UnixConnection}
_ASYNC_CLASSES = {
    "redis": _AsyncTcpConnection, "rediss": _AsyncSslConnection, "unix": _AsyncUnixConnection,
}


def pool_options(url: str, settings: Settings) -> dict[str, Any]:
    """Keyword arguments for a redis-py pool built from ``url`` and settings."""
    scheme = scheme_of(url)
    if scheme not in _SYNC_CLASSES:
        raise ConfigurationError(
            f"unsupported URL scheme {scheme!r} in {redact_url(url)}", code="E042"
        )
    options: dict[str, Any] = {
        "max_connections": settings.CONNECTION_POOL_SIZE,
        "timeout": settings.POOL_TIMEOUT,
        "socket_timeout": settings.SOCKET_TIMEOUT,
        "socket_connect_timeout": settings.SOCKET_CONNECT_TIMEOUT,
        "health_check_interval": settings.HEALTH_CHECK_INTERVAL,
        # Retry only lost connections, at once: a timeout already spent the budget, and a
        # backoff sleep would cost every call ~20 ms while Redis refuses connections.
        "retry": Retry(
            NoBackoff(),
            settings.RETRIES,
            supported_errors=(redis.ConnectionError,),
        ),
        "retry_on_timeout": False,
    }
    if scheme == "rediss":
        options["ssl_cert_reqs"] = settings.SSL_CERT_REQS
        if settings.SSL_CA_CERTS:
            options["ssl_ca_certs"] = settings.SSL_CA_CERTS
    return options


def pool_from_url(pool_class: Any, url: str, classes: Mapping[str, Any],
                  options: dict[str, Any]) -> Any:
    """Build a redis-py pool for ``url``; a URL redis-py cannot parse is E042, shown redacted."""
    try:
        return pool_class.from_url(url, connection_class=classes[scheme_of(url)], **options)
    except (ValueError, TypeError) as exc:  # e.g. an unquoted '/' in the password
        failure = type(exc).__name__
    # Raised after the except block: redis-py's message quotes the password, and an error
    # raised inside the block would keep it as __context__ even with `from None`.
    raise ConfigurationError(
        f"invalid Redis URL {redact_url(url)} ({failure}); percent-encode "
        "special characters in the password", code="E042"
    )


def _ms(ttl: float | None) -> int | None:
    return None if ttl is None else max(1, round(ttl * 1000))


def _escape_glob(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _info_subset(raw: Mapping[str, Any]) -> dict[str, Any]:
    wanted = (
        "redis_version", "role", "uptime_in_seconds", "connected_clients", "used_memory",
        "used_memory_human", "maxmemory", "maxmemory_policy", "evicted_keys",
        "expired_keys", "keyspace_hits", "keyspace_misses",
    )
    return {k: raw[k] for k in wanted if k in raw}


class RedisBackend:
    """A synchronous Redis store with a bounded, blocking connection pool."""

    def __init__(self, url: str, settings: Settings) -> None:
        self._url = redact_url(url)
        options = pool_options(url, settings)
        self.pool = pool_from_url(_Pool, url, _SYNC_CLASSES, options)
        self.client: Any = redis.Redis(connection_pool=self.pool)  # redis-py typing is loose

    def __repr__(self) -> str:
        return f"<RedisBackend {self._url}>"

    def describe(self) -> str:
        """Where the data lives, password redacted."""
        return self._url

    def get(self, key: str) -> bytes | None:
        with translated():
            return cast("bytes | None", self.client.get(key))

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        with translated():
            return cast("list[bytes | None]", self.client.mget(keys))

    def set(self, key: str, value: bytes, ttl: float | None, *, nx: bool = False) -> bool:
        with translated():
            return bool(self.client.set(key, value, px=_ms(ttl), nx=nx))

    def set_many(self, items: Mapping[str, bytes], ttl: float | None) -> bool:
        if not items:
            return True
        with translated():
            pipe = self.client.pipeline(transaction=False)
            px = _ms(ttl)
            for k, v in items.items():
                pipe.set(k, v, px=px)
            pipe.execute()
        return True

    def delete(self, key: str) -> bool:
        with translated():
            return bool(self.client.delete(key))

    def delete_many(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        with translated():
            return int(self.client.delete(*keys))

    def touch(self, key: str, ttl: float | None) -> bool:
        with translated():
            if ttl is None:
                pipe = self.client.pipeline(transaction=False)
                pipe.exists(key)
                pipe.persist(key)
                return bool(pipe.execute()[0])
            return bool(self.client.pexpire(key, _ms(ttl) or 1))

    def ttl(self, key: str) -> float | None:
        with translated():
            ms = int(self.client.pttl(key))
        if ms == -1:
            return None
        return 0.0 if ms < 0 else ms / 1000.0

    def exists(self, key: str) -> bool:
        with translated():
            return bool(self.client.exists(key))

    def update(self, key: str, fn: Callable[[bytes], bytes]) -> bytes | None:
        with translated(), self.client.pipeline(transaction=True) as pipe:
            for attempt in range(_UPDATE_ATTEMPTS):
                try:
                    pipe.watch(key)
                    old = pipe.get(key)
                    if old is None:
                        pipe.unwatch()
                        return None
                    new = fn(old)
                    pipe.multi()
                    pipe.set(key, new, keepttl=True)
                    pipe.execute()
                    return new
                except redis.WatchError:
                    time.sleep(_contention_pause(attempt))
        raise LockTimeoutError("too much contention on one key", code="E050")

    def delete_prefix(self, prefix: str) -> int:
        removed = 0
        with translated():
            batch: list[bytes] = []
            for k in self.client.scan_iter(match=_escape_glob(prefix) + "*", count=1000):
                batch.append(k)
                if len(batch) >= _SCAN_BATCH:
                    removed += int(self.client.unlink(*batch))
                    batch.clear()
            if batch:
                removed += int(self.client.unlink(*batch))
        return removed

    def lock(self, name: str, timeout: float) -> Any:
        return _TranslatedLock(self.client.lock(name, timeout=timeout, sleep=0.01,
                                                thread_local=False))

    def ping(self) -> float:
        start = time.perf_counter()
        with translated():
            self.client.ping()
        return time.perf_counter() - start

    def info(self) -> dict[str, Any]:
        with translated():
            return _info_subset(self.client.info())

    def close(self) -> None:
        self.pool.disconnect()


class _TranslatedLock:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def acquire(self, blocking: bool = True, blocking_timeout: float | None = None) -> bool:
        with translated():
            return bool(self._inner.acquire(blocking=blocking, blocking_timeout=blocking_timeout))

    def release(self) -> None:
        with translated(), contextlib.suppress(redis.exceptions.LockError):
            self._inner.release()


class _AsyncTranslatedLock:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def acquire(self, blocking: bool = True, blocking_timeout: float | None = None) -> bool:
        with translated():
            return bool(
                await self._inner.acquire(blocking=blocking, blocking_timeout=blocking_timeout)
            )

    async def release(self) -> None:
        with translated(), contextlib.suppress(redis.exceptions.LockError):
            await self._inner.release()


class AsyncRedisBackend:
    """The asyncio twin of RedisBackend, on redis.asyncio."""

    def __init__(self, url: str, settings: Settings) -> None:
        self._url = redact_url(url)
        options = pool_options(url, settings)
        self.pool = pool_from_url(_AsyncPool, url, _ASYNC_CLASSES, options)
        self.client: Any = aredis.Redis(connection_pool=self.pool)

    def __repr__(self) -> str:
        return f"<AsyncRedisBackend {self._url}>"

    def describe(self) -> str:
        """Where the data lives, password redacted."""
        return self._url

    async def get(self, key: str) -> bytes | None:
        with translated():
            return cast("bytes | None", await self.client.get(key))

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        with translated():
            return cast("list[bytes | None]", await self.client.mget(keys))

    async def set(self, key: str, value: bytes, ttl: float | None, *, nx: bool = False) -> bool:
        with translated():
            return bool(await self.client.set(key, value, px=_ms(ttl), nx=nx))

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None) -> bool:
        if not items:
            return True
        with translated():
            pipe = self.client.pipeline(transaction=False)
            px = _ms(ttl)
            for k, v in items.items():
                pipe.set(k, v, px=px)
            await pipe.execute()
        return True

    async def delete(self, key: str) -> bool:
        with translated():
            return bool(await self.client.delete(key))

    async def delete_many(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        with translated():
            return int(await self.client.delete(*keys))

    async def touch(self, key: str, ttl: float | None) -> bool:
        with translated():
            if ttl is None:
                pipe = self.client.pipeline(transaction=False)
                pipe.exists(key)
                pipe.persist(key)
                return bool((await pipe.execute())[0])
            return bool(await self.client.pexpire(key, _ms(ttl) or 1))

    async def ttl(self, key: str) -> float | None:
        with translated():
            ms = int(await self.client.pttl(key))
        if ms == -1:
            return None
        return 0.0 if ms < 0 else ms / 1000.0

    async def exists(self, key: str) -> bool:
        with translated():
            return bool(await self.client.exists(key))

    async def update(self, key: str, fn: Callable[[bytes], bytes]) -> bytes | None:
        with translated():
            async with self.client.pipeline(transaction=True) as pipe:
                for attempt in range(_UPDATE_ATTEMPTS):
                    try:
                        await pipe.watch(key)
                        old = await pipe.get(key)
                        if old is None:
                            await pipe.unwatch()
                            return None
                        new = fn(old)
                        pipe.multi()
                        pipe.set(key, new, keepttl=True)
                        await pipe.execute()
                        return new
                    except redis.WatchError:
                        await asyncio.sleep(_contention_pause(attempt))
        raise LockTimeoutError("too much contention on one key", code="E050")

    async def delete_prefix(self, prefix: str) -> int:
        removed = 0
        with translated():
            batch: list[bytes] = []
            async for k in self.client.scan_iter(match=_escape_glob(prefix) + "*", count=1000):
                batch.append(k)
                if len(batch) >= _SCAN_BATCH:
                    removed += int(await self.client.unlink(*batch))
                    batch.clear()
            if batch:
                removed += int(await self.client.unlink(*batch))
        return removed

    def lock(self, name: str, timeout: float) -> Any:
        return _AsyncTranslatedLock(self.client.lock(name, timeout=timeout, sleep=0.01,
                                                     thread_local=False))

    async def ping(self) -> float:
        start = time.perf_counter()
        with translated():
            await self.client.ping()
        return time.perf_counter() - start

    async def info(self) -> dict[str, Any]:
        with translated():
            return _info_subset(await self.client.info())

    async def close(self) -> None:
        await self.pool.disconnect()
