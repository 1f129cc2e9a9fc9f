"""The guarded backend call every client operation goes through, and the backend it calls.

Under the breaker, with owed invalidations and unreadable entries flushed first and the
latency timed; also a raw redis-py command under the breaker, and the compare-and-set
that read-then-write paths share. This is the async source; ``core/_sync/calls.py`` is
generated from it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..backends import AsyncBackend, make_async_backend
from ..data.codec import Entry
from ..engine import DATA_ERRORS, ClientEngine
from ..errors import CachekitError, UnsupportedOperationError
from ..flavours import AsyncCounters, AsyncFlights, AsyncSlot
from ..local.tier import Tier
from ..observe.logs import log
from ..resilience.breaker import State
from ..results import UNAVAILABLE, Unavailable
from .pending import async_apply_invalidations

T = TypeVar("T")


class AsyncGuardedClient(ClientEngine[AsyncBackend]):
    """The I/O every part of the client shares: its backend and the guarded call."""

    def _open_io(self, backend: AsyncBackend | None) -> None:
        url, settings = self.url, self.settings
        self._backends: AsyncSlot[AsyncBackend] = AsyncSlot(
            lambda: make_async_backend(url, settings), backend)
        # Callers of one key that share their work: compute-once flights, counter batches.
        self._flights = AsyncFlights()
        self._counters = AsyncCounters()

    @property
    def backend(self) -> AsyncBackend:
        """The backend (an async client has one per running event loop)."""
        return self._backends.get()

    @backend.setter
    def backend(self, value: AsyncBackend) -> None:
        self._backends = AsyncSlot(lambda: value, value)

    @property
    def _backend_any(self) -> Any:
        return self.backend

    async def _call(self, op: str, fn: Callable[..., Awaitable[T]], *args: Any,
                    timed: bool = True) -> T | Unavailable:
        """Run one backend call under the breaker; UNAVAILABLE when it cannot.

        ``timed=False``: the caller records the latency itself (with its lookup counts,
        one metrics update per read).
        """
        if not self._admit(op):
            return UNAVAILABLE
        call = self._begin(op)
        start = time.perf_counter()
        try:
            if self.pending:
                await self._flush_pending()
            if self._drops:
                await self._flush_drops()
            result = await fn(*args)
        except DATA_ERRORS:
            self.breaker.record_success(call)  # the backend answered; the data was bad
            raise
        except CachekitError as exc:
            self._failed(op, exc, call)  # raises in strict mode
            if not timed:  # the caller only times answers: a failed call is timed here
                self.metrics.observe(op, time.perf_counter() - start)
            return UNAVAILABLE
        except BaseException:
            # Cancelled or interrupted: no verdict, but a half-open probe slot must be freed
            # or the breaker stays half-open (rejecting every call) forever.
            self.breaker.release_probe(call)
            raise
        finally:
            if timed:
                self.metrics.observe(op, time.perf_counter() - start)
        self.breaker.record_success(call)
        return result

    async def _timed_call(self, op: str, fn: Callable[..., Awaitable[T]],
                          *args: Any) -> tuple[T | Unavailable, float | None]:
        """_call for a read that records its latency with its lookup (one metrics update):
        the result and the seconds it took (None when it did not run)."""
        start = time.perf_counter()
        try:
            result = await self._call(op, fn, *args, timed=False)
        except BaseException:
            self.metrics.observe(op, time.perf_counter() - start)
            raise
        return result, (None if result is UNAVAILABLE else time.perf_counter() - start)

    async def _flush_pending(self) -> None:
        keys, clear = self.pending.take()
        try:
            await async_apply_invalidations(self.backend, self._prefix, keys, clear)
        except BaseException:  # also when cancelled: the deletes must not be forgotten
            self.pending.restore(keys, clear)
            raise
        self.pending.landed(keys, clear)
        log.debug("replayed %d remembered deletes%s", len(keys), " and a clear" if clear else "")

    async def _flush_drops(self) -> None:
        """Delete the unreadable entries read since the last call, each only if it still
        holds the bytes read (a value written since then stands)."""
        while self._drops:
            try:
                fk, raw = self._drops.popitem()
            except KeyError:  # another thread took the last one
                return
            await self.backend.delete_if_equal(fk, raw)

    @property
    def available(self) -> bool:
        """Whether the breaker currently lets calls through."""
        return self.breaker.state is not State.OPEN

    async def _local_entry(self, tier: Tier, fk: str) -> Entry | None:
        """From process memory if there, else from Redis (kept in memory if still valid)."""
        if self._owed(fk):  # a write or delete of it could not reach Redis: not this value
            tier.forget(fk)
            return None
        entry = tier.lookup(fk)
        if entry is not None:
            self.metrics.count("local_hits")
            return entry
        self.metrics.count("local_misses")
        token = tier.begin(fk)
        raw: bytes | None = None
        pttl = -2
        node: str | None = None
        try:
            # The Redis, Sentinel and Cluster backends have it (the tier exists for those).
            got: tuple[bytes | None, int, str | None] | Unavailable = await self._call(
                "get", self.backend.get_with_ttl, fk)  # type: ignore[attr-defined]
            if got is UNAVAILABLE:
                return None
            raw, pttl, node = got
            entry = self._decode(fk, raw)
        finally:
            tier.finish(fk, token, entry, len(raw or b""), pttl, node)
        return entry

    async def _compare_and_set(self, fk: str, expected: bytes, new: bytes, ttl: float | None,
                               keep: bool) -> tuple[bool, bytes | None]:
        cas = getattr(self.backend, "compare_and_set", None)
        if cas is not None:
            return await cas(fk, expected, new, ttl=ttl, keep_ttl=keep)  # type: ignore[no-any-return]
        # A backend without a server-side compare-and-set: its optimistic update.
        stored = await self.backend.update(fk, lambda cur: new if cur == expected else cur)
        return (True, None) if stored is not None and stored is new else (False, stored)

    def _require(self, method: str, op: str) -> Any:
        fn = getattr(self.backend, method, None)
        if fn is None:
            raise UnsupportedOperationError(
                f"{op} is not supported by {self.describe()}", code="E069")
        return fn

    async def _guarded(self, op: str, fks: tuple[str, ...], fallback: Any, method: str,
                       *args: Any, write: bool = False, **kwargs: Any) -> Any:
        """One redis-py command under the breaker; ``fallback`` when it cannot run.

        A write that could not run leaves the collection possibly stale: it is deleted
        once Redis answers (as set() does)."""
        command = self._require("command", op)
        got = await self._call(op, lambda: command(method, *args, **kwargs))
        if write:
            self._local_forget(*fks)
        if got is UNAVAILABLE:
            if write:
                self.pending.add(list(fks))
                self._deferred(op, len(fks))
            return fallback
        return got

    async def _read(self, key: str, fallback: Any, method: str, *args: Any,
                    **kwargs: Any) -> Any:
        fk = self.full_key(key)
        return await self._guarded(method, (fk,), fallback, method, fk, *args, **kwargs)

    async def _write(self, key: str, fallback: Any, method: str, *args: Any,
                     **kwargs: Any) -> Any:
        fk = self.full_key(key)
        return await self._guarded(method, (fk,), fallback, method, fk, *args, write=True,
                                   **kwargs)
