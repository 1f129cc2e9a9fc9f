"""A synchronous backend behind the async interface, its calls run on worker threads.

redis.asyncio pools belong to one event loop. Where every call comes from a loop of
its own (Flask runs each async view in a fresh loop), a pool per loop is a new Redis
connection per request; this facade lets those loops share the one sync pool instead.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from . import Backend, LockLike

T = TypeVar("T")

# Bounds the threads one facade may use; a call waits for a free one beyond that.
WORKERS = 16


class AsyncThreadedBackend:
    """``backend``'s calls, awaited from any event loop; closing it leaves ``backend`` open."""

    def __init__(self, backend: Backend, workers: int = WORKERS) -> None:
        self.backend = backend
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="cachekit-io")

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def describe(self) -> str:
        """Where the data lives, safe to show."""
        return self.backend.describe()

    def __getattr__(self, name: str) -> Any:
        # Optional backend methods (nodes(), ...) exist here exactly when they exist there.
        fn = getattr(self.backend, name)
        if not callable(fn) or name.startswith("_"):
            raise AttributeError(name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self._run(fn, *args, **kwargs)

        return call

    async def get(self, key: str) -> bytes | None:
        return await self._run(self.backend.get, key)

    async def get_with_ttl(self, key: str) -> tuple[bytes | None, int, str | None]:
        return await self._run(self.backend.get_with_ttl, key)  # type: ignore[attr-defined]

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return await self._run(self.backend.get_many, keys)

    async def set(self, key: str, value: bytes, ttl: float | None, *, nx: bool = False,
                  xx: bool = False) -> bool:
        return await self._run(self.backend.set, key, value, ttl, nx=nx, xx=xx)

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None) -> bool:
        return await self._run(self.backend.set_many, items, ttl)

    async def delete(self, key: str) -> bool:
        return await self._run(self.backend.delete, key)

    async def delete_many(self, keys: Sequence[str]) -> int:
        return await self._run(self.backend.delete_many, keys)

    async def delete_if_equal(self, key: str, expected: bytes) -> bool:
        return await self._run(self.backend.delete_if_equal, key, expected)

    async def touch(self, key: str, ttl: float | None) -> bool:
        return await self._run(self.backend.touch, key, ttl)

    async def ttl(self, key: str) -> float | None:
        return await self._run(self.backend.ttl, key)

    async def exists(self, key: str) -> bool:
        return await self._run(self.backend.exists, key)

    async def update(self, key: str, fn: Callable[[bytes], bytes]) -> bytes | None:
        return await self._run(self.backend.update, key, fn)

    async def delete_prefix(self, prefix: str) -> int:
        return await self._run(self.backend.delete_prefix, prefix)

    def scan_prefix(self, prefix: str, count: int = 1000) -> AsyncIterator[list[bytes]]:
        """Yield the keys under ``prefix`` in batches."""
        return self._iterate(self.backend.scan_prefix(prefix, count))

    async def count_prefix(self, prefix: str, limit: int) -> int:
        """How many keys lie under ``prefix``, counting at most ``limit``."""
        return await self._run(self.backend.count_prefix, prefix, limit)

    def scan_match(self, match: str, count: int = 1000) -> AsyncIterator[list[bytes]]:
        """Yield the keys matching ``match`` in batches."""
        return self._iterate(self.backend.scan_match(match, count))

    async def _iterate(self, batches: Any) -> AsyncIterator[list[bytes]]:
        while (batch := await self._run(next, batches, None)) is not None:
            yield batch

    def lock(self, name: str, timeout: float | None, *, sleep: float = 0.01,
             thread_local: bool = False) -> _AsyncThreadedLock:
        return _AsyncThreadedLock(self, self.backend.lock(name, timeout, sleep=sleep,
                                                          thread_local=thread_local))

    async def ping(self) -> float:
        return await self._run(self.backend.ping)

    async def info(self) -> dict[str, Any]:
        return await self._run(self.backend.info)

    async def close(self) -> None:
        """Stop the worker threads; the shared backend belongs to its sync client."""
        self._executor.shutdown(wait=False)


class _AsyncThreadedLock:
    def __init__(self, facade: AsyncThreadedBackend, lock: LockLike) -> None:
        self._facade = facade
        self._lock = lock

    async def acquire(self, blocking: bool = True, blocking_timeout: float | None = None) -> bool:
        return await self._facade._run(self._lock.acquire, blocking, blocking_timeout)

    async def release(self) -> bool | None:
        return await self._facade._run(self._lock.release)

    def __getattr__(self, name: str) -> Any:
        # The rest of redis-py's lock (extend, reacquire, locked, owned), run on a thread.
        fn = getattr(self._lock, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self._facade._run(fn, *args, **kwargs)

        return call
