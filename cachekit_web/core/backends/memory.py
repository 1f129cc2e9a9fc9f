"""In-process TTL + LRU store: the embedded default, tests and an L1 tier."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any

from ..data.ints import INT64_MAX, INT64_MIN, redis_int
from ..keys import redis_glob


class _MemoryLock:
    """A named lock with expiry, like a Redis lock but inside one process."""

    def __init__(self, store: MemoryBackend, name: str, timeout: float | None,
                 sleep: float = 0.005) -> None:
        self._store, self._name, self._timeout = store, name, timeout
        self._token = uuid.uuid4().hex
        self._sleep = sleep

    def acquire(self, blocking: bool = True, blocking_timeout: float | None = None) -> bool:
        deadline = None if blocking_timeout is None else time.monotonic() + blocking_timeout
        while True:
            if self._store.set(self._name, self._token.encode(), self._timeout, nx=True):
                return True
            if not blocking or (deadline is not None and time.monotonic() >= deadline):
                return False
            time.sleep(self._sleep)

    def release(self) -> bool:
        with self._store._lock:
            if self._store.get(self._name) == self._token.encode():
                self._store.delete(self._name)
                return True
            return False

    def extend(self, additional_time: float, replace_ttl: bool = False) -> bool:
        with self._store._lock:
            if not self.owned():
                return False
            left = self._store.ttl(self._name)
            ttl = additional_time if replace_ttl or left is None else left + additional_time
            return self._store.touch(self._name, ttl)

    def reacquire(self) -> bool:
        with self._store._lock:
            return self.owned() and self._store.touch(self._name, self._timeout)

    def locked(self) -> bool:
        return self._store.exists(self._name)

    def owned(self) -> bool:
        return self._store.get(self._name) == self._token.encode()


class MemoryBackend:
    """A dict with per-key expiry and least-recently-used eviction."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()
        self._lock = threading.RLock()
        self.evictions = 0

    def __repr__(self) -> str:
        return f"<MemoryBackend entries={len(self._data)}>"

    def describe(self) -> str:
        """Where the data lives, safe to show."""
        return "memory://"

    def _live(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= time.monotonic():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return value

    @staticmethod
    def _expiry(ttl: float | None) -> float | None:
        return None if ttl is None else time.monotonic() + ttl

    def _store(self, key: str, value: bytes, expires: float | None) -> None:
        self._data[key] = (value, expires)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)
            self.evictions += 1

    def get(self, key: str) -> bytes | None:
        with self._lock:
            return self._live(key)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        with self._lock:
            return [self._live(k) for k in keys]

    def set(self, key: str, value: bytes, ttl: float | None, *, nx: bool = False,
            xx: bool = False) -> bool:
        with self._lock:
            if (nx and self._live(key) is not None) or (xx and self._live(key) is None):
                return False
            self._store(key, value, self._expiry(ttl))
            return True

    def set_many(self, items: Mapping[str, bytes], ttl: float | None) -> bool:
        with self._lock:
            expires = self._expiry(ttl)
            for k, v in items.items():
                self._store(k, v, expires)
            return True

    def delete(self, key: str) -> bool:
        with self._lock:
            present = self._live(key) is not None
            self._data.pop(key, None)
            return present

    def delete_many(self, keys: Sequence[str]) -> int:
        with self._lock:
            return sum(self.delete(k) for k in keys)

    def delete_if_equal(self, key: str, expected: bytes) -> bool:
        """Delete ``key`` only if it still holds ``expected``."""
        with self._lock:
            if self._live(key) != expected:
                return False
            del self._data[key]
            return True

    def touch(self, key: str, ttl: float | None) -> bool:
        with self._lock:
            value = self._live(key)
            if value is None:
                return False
            self._store(key, value, self._expiry(ttl))
            return True

    def ttl(self, key: str) -> float | None:
        with self._lock:
            if self._live(key) is None:
                return 0.0
            expires = self._data[key][1]
            return None if expires is None else max(0.0, expires - time.monotonic())

    def exists(self, key: str) -> bool:
        with self._lock:
            return self._live(key) is not None

    def update(self, key: str, fn: Callable[[bytes], bytes]) -> bytes | None:
        with self._lock:
            value = self._live(key)
            if value is None:
                return None
            new = fn(value)
            self._data[key] = (new, self._data[key][1])
            return new

    def compare_and_set_many(self, items: Sequence[tuple[str, bytes, bytes]]) -> list[bool]:
        """For each (key, old, new): write ``new`` (expiry kept) only if ``key`` holds ``old``."""
        done: list[bool] = []
        with self._lock:
            for key, old, new in items:
                hit = self._live(key) == old
                if hit:
                    self._data[key] = (new, self._data[key][1])
                done.append(hit)
        return done

    def incr(self, key: str, delta: int, default: int | None,
             ttl: float | None) -> int | bytes | None:
        """Like Redis' INCRBY script: new value, None if missing, else the stored bytes."""
        with self._lock:
            value = self._live(key)
            if value is None:
                if default is None:
                    return None
                value = str(default).encode()
                self._store(key, value, self._expiry(ttl))
            n = redis_int(value)
            if n is None or not INT64_MIN <= n + delta <= INT64_MAX:
                return value
            self._data[key] = (str(n + delta).encode(), self._data[key][1])
            return n + delta

    def compare_and_set(self, key: str, expected: bytes, value: bytes, *,
                        ttl: float | None = None,
                        keep_ttl: bool = True) -> tuple[bool, bytes | None]:
        """Store ``value`` only if ``key`` still holds ``expected``; (swapped, current)."""
        with self._lock:
            current = self._live(key)
            if current != expected:
                return False, current
            expires = self._data[key][1] if keep_ttl else self._expiry(ttl)
            self._store(key, value, expires)
            return True, None

    def delete_prefix(self, prefix: str) -> int:
        with self._lock:
            doomed = [k for k in self._data if k.startswith(prefix)]
            for k in doomed:
                del self._data[k]
            return len(doomed)

    def _live_keys(self, prefix: str) -> list[bytes]:
        now = time.monotonic()
        with self._lock:
            return [k.encode() for k, (_, exp) in self._data.items()
                    if k.startswith(prefix) and (exp is None or exp > now)]

    def scan_prefix(self, prefix: str, count: int = 1000) -> Iterator[list[bytes]]:
        """Yield the live keys under ``prefix`` in batches."""
        keys = self._live_keys(prefix)
        for i in range(0, len(keys), count):
            yield keys[i:i + count]

    def count_prefix(self, prefix: str, limit: int) -> int:
        """How many live keys lie under ``prefix``, counting at most ``limit``."""
        return min(limit, len(self._live_keys(prefix)))

    def scan_match(self, match: str, count: int = 1000) -> Iterator[list[bytes]]:
        """Yield the live keys matching the Redis glob ``match`` in batches."""
        pattern = re.compile(redis_glob(match), re.DOTALL)
        keys = [k for k in self._live_keys("") if pattern.match(k.decode())]
        for i in range(0, len(keys), count):
            yield keys[i:i + count]

    def lock(self, name: str, timeout: float | None, *, sleep: float = 0.005,
             thread_local: bool = False) -> _MemoryLock:
        return _MemoryLock(self, name, timeout, sleep)

    def ping(self) -> float:
        return 0.0

    def info(self) -> dict[str, Any]:
        with self._lock:
            return {
                "server": "memory",
                "keys": len(self._data),
                "max_entries": self.max_entries,
                "evicted_keys": self.evictions,
            }

    def close(self) -> None:
        return None


class _AsyncMemoryLock:
    def __init__(self, inner: _MemoryLock) -> None:
        self._inner = inner

    async def acquire(self, blocking: bool = True, blocking_timeout: float | None = None) -> bool:
        import asyncio

        deadline = None if blocking_timeout is None else time.monotonic() + blocking_timeout
        while True:
            if self._inner.acquire(blocking=False):
                return True
            if not blocking or (deadline is not None and time.monotonic() >= deadline):
                return False
            await asyncio.sleep(self._inner._sleep)

    async def release(self) -> bool:
        return self._inner.release()

    async def extend(self, additional_time: float, replace_ttl: bool = False) -> bool:
        return self._inner.extend(additional_time, replace_ttl)

    async def reacquire(self) -> bool:
        return self._inner.reacquire()

    async def locked(self) -> bool:
        return self._inner.locked()

    async def owned(self) -> bool:
        return self._inner.owned()


class AsyncMemoryBackend:
    """The memory store with an async face (no I/O, so no awaiting inside)."""

    def __init__(self, store: MemoryBackend) -> None:
        self.store = store

    def describe(self) -> str:
        """Where the data lives, safe to show."""
        return self.store.describe()

    async def get(self, key: str) -> bytes | None:
        return self.store.get(key)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return self.store.get_many(keys)

    async def set(self, key: str, value: bytes, ttl: float | None, *, nx: bool = False,
                  xx: bool = False) -> bool:
        return self.store.set(key, value, ttl, nx=nx, xx=xx)

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None) -> bool:
        return self.store.set_many(items, ttl)

    async def delete(self, key: str) -> bool:
        return self.store.delete(key)

    async def delete_many(self, keys: Sequence[str]) -> int:
        return self.store.delete_many(keys)

    async def delete_if_equal(self, key: str, expected: bytes) -> bool:
        """Delete ``key`` only if it still holds ``expected``."""
        return self.store.delete_if_equal(key, expected)

    async def touch(self, key: str, ttl: float | None) -> bool:
        return self.store.touch(key, ttl)

    async def ttl(self, key: str) -> float | None:
        return self.store.ttl(key)

    async def exists(self, key: str) -> bool:
        return self.store.exists(key)

    async def update(self, key: str, fn: Callable[[bytes], bytes]) -> bytes | None:
        return self.store.update(key, fn)

    async def compare_and_set_many(self, items: Sequence[tuple[str, bytes, bytes]]) -> list[bool]:
        """For each (key, old, new): write ``new`` only if ``key`` still holds ``old``."""
        return self.store.compare_and_set_many(items)
    async def incr(self, key: str, delta: int, default: int | None,
                   ttl: float | None) -> int | bytes | None:
        return self.store.incr(key, delta, default, ttl)

    async def compare_and_set(self, key: str, expected: bytes, value: bytes, *,
                              ttl: float | None = None,
                              keep_ttl: bool = True) -> tuple[bool, bytes | None]:
        return self.store.compare_and_set(key, expected, value, ttl=ttl, keep_ttl=keep_ttl)

    async def delete_prefix(self, prefix: str) -> int:
        return self.store.delete_prefix(prefix)

    async def scan_prefix(self, prefix: str, count: int = 1000) -> AsyncIterator[list[bytes]]:
        """Yield the live keys under ``prefix`` in batches."""
        for batch in self.store.scan_prefix(prefix, count):
            yield batch

    async def count_prefix(self, prefix: str, limit: int) -> int:
        """How many live keys lie under ``prefix``, counting at most ``limit``."""
        return self.store.count_prefix(prefix, limit)

    async def scan_match(self, match: str, count: int = 1000) -> AsyncIterator[list[bytes]]:
        """Yield the live keys matching the Redis glob ``match`` in batches."""
        for batch in self.store.scan_match(match, count):
            yield batch

    def lock(self, name: str, timeout: float | None, *, sleep: float = 0.005,
             thread_local: bool = False) -> _AsyncMemoryLock:
        return _AsyncMemoryLock(self.store.lock(name, timeout, sleep=sleep))

    async def ping(self) -> float:
        return 0.0

    async def info(self) -> dict[str, Any]:
        return self.store.info()

    async def close(self) -> None:
        return None
