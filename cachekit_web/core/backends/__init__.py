"""Bytes-in, bytes-out stores behind one small protocol, its optional capabilities, the factory.

Optional capabilities are small ``runtime_checkable`` protocols: test a backend with
``isinstance(backend, ReportsNodes)``, not ``hasattr``.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..urls import scheme_of

if TYPE_CHECKING:
    from ..settings import Settings


class LockLike(Protocol):
    """The part of a lock the client uses."""

    def acquire(self, blocking: bool = True, blocking_timeout: float | None = None) -> bool:
        """Take the lock; False if not acquired in time."""

    def release(self) -> bool | None:
        """Give the lock back; False if it was no longer held."""


class AsyncLockLike(Protocol):
    """The part of an async lock the client uses."""

    async def acquire(self, blocking: bool = True, blocking_timeout: float | None = None) -> bool:
        """Take the lock; False if not acquired in time."""

    async def release(self) -> bool | None:
        """Give the lock back; False if it was no longer held."""


class Backend(Protocol):
    """A synchronous store of bytes under string keys; TTLs in seconds, None = no expiry."""

    def get(self, key: str) -> bytes | None: ...
    def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...
    def set(self, key: str, value: bytes, ttl: float | None, *, nx: bool = False,
            xx: bool = False) -> bool: ...
    def set_many(self, items: Mapping[str, bytes], ttl: float | None) -> bool: ...
    def delete(self, key: str) -> bool: ...
    def delete_many(self, keys: Sequence[str]) -> int: ...
    def delete_if_equal(self, key: str, expected: bytes) -> bool: ...
    def touch(self, key: str, ttl: float | None) -> bool: ...
    def ttl(self, key: str) -> float | None: ...
    def exists(self, key: str) -> bool: ...
    def update(self, key: str, fn: Callable[[bytes], bytes]) -> bytes | None: ...
    def compare_and_set_many(self, items: Sequence[tuple[str, bytes, bytes]]) -> list[bool]: ...
    def incr(self, key: str, delta: int, default: int | None,
             ttl: float | None) -> int | bytes | None: ...
    def compare_and_set(self, key: str, expected: bytes, value: bytes, *,
                        ttl: float | None = None,
                        keep_ttl: bool = True) -> tuple[bool, bytes | None]: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def scan_prefix(self, prefix: str, count: int = 1000) -> Iterator[list[bytes]]: ...
    def count_prefix(self, prefix: str, limit: int) -> int: ...
    def scan_match(self, match: str, count: int = 1000) -> Iterator[list[bytes]]: ...
    def lock(self, name: str, timeout: float | None, *, sleep: float = 0.01,
             thread_local: bool = False) -> LockLike: ...
    def ping(self) -> float: ...
    def info(self) -> dict[str, Any]: ...
    def describe(self) -> str: ...
    def close(self) -> None: ...


class AsyncBackend(Protocol):
    """The asynchronous twin of Backend."""

    async def get(self, key: str) -> bytes | None: ...
    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...
    async def set(
        self, key: str, value: bytes, ttl: float | None, *, nx: bool = False, xx: bool = False
    ) -> bool: ...
    async def set_many(self, items: Mapping[str, bytes], ttl: float | None) -> bool: ...
    async def delete(self, key: str) -> bool: ...
    async def delete_many(self, keys: Sequence[str]) -> int: ...
    async def delete_if_equal(self, key: str, expected: bytes) -> bool: ...
    async def touch(self, key: str, ttl: float | None) -> bool: ...
    async def ttl(self, key: str) -> float | None: ...
    async def exists(self, key: str) -> bool: ...
    async def update(self, key: str, fn: Callable[[bytes], bytes]) -> bytes | None: ...
    async def compare_and_set_many(
        self, items: Sequence[tuple[str, bytes, bytes]]
    ) -> list[bool]: ...
    async def incr(self, key: str, delta: int, default: int | None,
                   ttl: float | None) -> int | bytes | None: ...
    async def compare_and_set(self, key: str, expected: bytes, value: bytes, *,
                              ttl: float | None = None,
                              keep_ttl: bool = True) -> tuple[bool, bytes | None]: ...
    async def delete_prefix(self, prefix: str) -> int: ...
    def scan_prefix(self, prefix: str, count: int = 1000) -> AsyncIterator[list[bytes]]: ...
    async def count_prefix(self, prefix: str, limit: int) -> int: ...
    def scan_match(self, match: str, count: int = 1000) -> AsyncIterator[list[bytes]]: ...
    def lock(self, name: str, timeout: float | None, *, sleep: float = 0.01,
             thread_local: bool = False) -> AsyncLockLike: ...
    async def ping(self) -> float: ...
    async def info(self) -> dict[str, Any]: ...
    def describe(self) -> str: ...
    async def close(self) -> None: ...


# -- optional capabilities -------------------------------------------------------
@runtime_checkable
class SwapsMany(Protocol):
    """Compares and sets many keys in one call (every built-in store; a foreign one may not)."""

    def compare_and_set_many(self, items: Sequence[tuple[str, bytes, bytes]]) -> list[bool]: ...


@runtime_checkable
class RunsCommands(Protocol):
    """Sends any redis-py command method (sets, hashes, sorted sets): Redis-backed stores."""

    def command(self, name: str, *args: Any, **kwargs: Any) -> Any: ...


@runtime_checkable
class AsyncRunsCommands(Protocol):
    """The asynchronous twin of RunsCommands."""

    async def command(self, name: str, *args: Any, **kwargs: Any) -> Any: ...


@runtime_checkable
class ReportsNodes(Protocol):
    """One health entry per node: Cluster, Sentinel and replicas."""

    def nodes(self) -> list[dict[str, Any]]: ...


@runtime_checkable
class AsyncReportsNodes(Protocol):
    """The asynchronous twin of ReportsNodes."""

    async def nodes(self) -> list[dict[str, Any]]: ...


@runtime_checkable
class WatchesTopology(Protocol):
    """Tells the client when a new primary takes over (Cluster, Sentinel)."""

    def watch_topology(self, on_change: Callable[[str], object]) -> None: ...


@runtime_checkable
class HasRedisClient(Protocol):
    """Exposes its redis-py client (``CacheClient.get_client``)."""

    @property
    def client(self) -> Any: ...


# -- the factory registry ------------------------------------------------------
# kind -> (module, sync class, async class). Topology modules load only when named.
_FACTORIES: dict[str, tuple[str, str, str]] = {
    "redis": ("cachekit_web.core.backends.redis", "RedisBackend", "AsyncRedisBackend"),
    "cluster": ("cachekit_web.core.backends.cluster", "ClusterBackend", "AsyncClusterBackend"),
    "sentinel": ("cachekit_web.core.backends.sentinel", "SentinelBackend",
                 "AsyncSentinelBackend"),
    "replicas": ("cachekit_web.core.backends.sentinel", "ReplicatedRedisBackend",
                 "AsyncReplicatedRedisBackend"),
}
_MEMORY_STORES: dict[str, Any] = {}
_MEMORY_LOCK = threading.Lock()


def backend_kind(url: str, settings: Settings) -> str:
    """Which backend serves ``url``: memory, redis, cluster, sentinel or replicas."""
    scheme = scheme_of(url)
    if scheme == "memory":
        return "memory"
    if scheme.endswith("+cluster"):
        return "cluster"
    if scheme.endswith("+sentinel"):
        return "sentinel"
    if settings.REPLICA_URLS:
        return "replicas"
    return "redis"  # redis-py rejects unknown schemes with E042 at construction


def memory_store(url: str, settings: Settings) -> Any:
    """The process-wide memory store for ``url``: memory://name is shared by name, like locmem."""
    from .memory import MemoryBackend

    with _MEMORY_LOCK:
        store = _MEMORY_STORES.get(url)
        if store is None:
            store = _MEMORY_STORES[url] = MemoryBackend(settings.MEMORY_MAX_ENTRIES)
        return store


def make_backend(url: str, settings: Settings) -> Backend:
    """Build the synchronous backend ``url`` names."""
    kind = backend_kind(url, settings)
    if kind == "memory":
        return memory_store(url, settings)  # type: ignore[no-any-return]
    module, name, _ = _FACTORIES[kind]
    return getattr(importlib.import_module(module), name)(url, settings)  # type: ignore[no-any-return]


def make_async_backend(url: str, settings: Settings) -> AsyncBackend:
    """Build the asyncio backend ``url`` names."""
    kind = backend_kind(url, settings)
    if kind == "memory":
        from .memory import AsyncMemoryBackend

        return AsyncMemoryBackend(memory_store(url, settings))
    module, _, name = _FACTORIES[kind]
    return getattr(importlib.import_module(module), name)(url, settings)  # type: ignore[no-any-return]
