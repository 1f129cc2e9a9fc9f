"""Bytes-in, bytes-out stores behind one small protocol."""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..settings import Settings


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def redis_int(raw: bytes) -> int | None:
    """The integer a Redis string holds as INCRBY would read it (64-bit, canonical), else None."""
    if not 0 < len(raw) <= 20 or not raw.lstrip(b"-").isdigit() or raw.startswith(b"--"):
        return None
    digits = raw.lstrip(b"-")
    if (len(digits) > 1 and digits.startswith(b"0")) or raw == b"-0":
        return None
    n = int(raw)
    return n if INT64_MIN <= n <= INT64_MAX else None


def is_int64(value: object) -> bool:
    """Whether ``value`` is a plain int (not bool) that Redis can hold as an integer."""
    return type(value) is int and INT64_MIN <= value <= INT64_MAX


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
    async def close(self) -> None: ...


# Query parameters whose name contains one of these are shown as '***'.
_SECRET_WORDS = ("pass", "key", "secret", "token", "auth")


def redact_url(url: str) -> str:
    """Return ``url`` with any password (and key-like query values) replaced by '***'."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "<unparseable url>"
    # Not urlsplit: a password may hold '/', '?' or '#', which would end its netloc early.
    # Everything before the last '@' is credentials; over-masking is the safe error.
    creds, at, rest = rest.rpartition("@")
    shown = ""
    if at:
        user, colon, _ = creds.partition(":")
        shown = f"{user}:***@" if colon and user else ":***@" if colon else "***@"
    rest = rest.split("#", 1)[0]
    location, qmark, query = rest.partition("?")
    if qmark:
        query = "&".join(
            f"{k}=***" if any(w in k.lower() for w in _SECRET_WORDS) else f"{k}{eq}{v}"
            for k, eq, v in (p.partition("=") for p in query.split("&") if p)
        )
    return f"{scheme}://{shown}{location}{qmark}{query}"


def scheme_of(url: str) -> str:
    """The URL's scheme, lower-cased."""
    return url.split("://", 1)[0].lower() if "://" in url else ""


def hash_tag(key: str) -> str | None:
    """The part of ``key`` Redis Cluster hashes when it has a {tag}, else None."""
    start = key.find("{")
    if start < 0:
        return None
    end = key.find("}", start + 1)
    if end <= start + 1:
        return None
    return key[start + 1:end]


def lock_key(full_key: str) -> str:
    """The recompute lock's key for ``full_key``: never a full key itself, same cluster slot.

    Full keys start with the namespace, which is never '{' or '!', so neither form
    below can be a user's key; both hash to the value's slot (a key with a stray '}'
    and no tag cannot be wrapped safely, and only loses that colocation).
    """
    if hash_tag(full_key) is not None or "}" in full_key:
        return "!lock:" + full_key  # keeps the key's own {tag}
    return "{" + full_key + "}!lock"


def user_lock_key(full_key: str) -> str:
    """The key of ``lock(name)``: never a user key nor a recompute lock, same slot as the key."""
    if hash_tag(full_key) is not None or "}" in full_key:
        return "!user-lock:" + full_key
    return "{" + full_key + "}!user-lock"


def redis_glob(pattern: str) -> str:
    """A regular expression matching what the Redis glob ``pattern`` matches (memory store)."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[" and "]" in pattern[i + 1:]:
            end = pattern.index("]", i + 2 if pattern[i + 1:i + 2] in ("^", "]") else i + 1)
            body = pattern[i + 1:end]
            neg = body.startswith("^")
            body = body[1:] if neg else body
            out.append("[" + ("^" if neg else "") + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out) + r"\Z"


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
