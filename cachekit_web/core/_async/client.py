"""The cache client: where keys, codec, breaker, backend and metrics meet.

Failure semantics (fail open): when Redis is down, hung or the breaker is
open, reads miss, writes are dropped (and their keys remembered for deletion
on recovery, so a stale value is never served after an outage), deletes are
remembered and replayed. Strict mode raises the typed error instead.

This is the async source; ``core/_sync/client.py`` is generated from it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from ..backends import AsyncBackend, make_async_backend
from ..backends.memory import MemoryBackend
from ..breaker import CircuitBreaker, State
from ..clientbase import (
    _DATA_ERRORS,
    _MISSING,
    _UNSTORABLE,
    DEFAULT,
    DEFERRED,
    UNAVAILABLE,
    Deferred,
    Result,
    Unavailable,
    _ClientBase,
    _follower_result,
    _remaining,
    _resolve_settings,
    _unwrap,
    log,
)
from ..codec import Codec, Entry
from ..errors import CachekitError, DeserializationError, IntegrityError
from ..flavours import AsyncFlights, AsyncSlot, async_compute_value, async_share_backend
from ..health import HealthReport
from ..metrics import Metrics
from ..settings import Settings
from .pending import async_apply_invalidations

T = TypeVar("T")


class AsyncCacheClient(_ClientBase):
    """The cache client. Build it with ``from_url``."""

    def __init__(
        self,
        settings: Settings,
        *,
        backend: AsyncBackend | None = None,
        breaker: CircuitBreaker | None = None,
        metrics: Metrics | None = None,
        codec: Codec | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(settings, breaker=breaker, metrics=metrics, codec=codec, clock=clock)
        self._backends: AsyncSlot[AsyncBackend] = AsyncSlot(
            lambda: make_async_backend(self.url, settings), backend)
        self._flights = AsyncFlights()

    @property
    def backend(self) -> AsyncBackend:
        """The backend (an async client has one per running event loop)."""
        return self._backends.get()

    @backend.setter
    def backend(self, value: AsyncBackend) -> None:
        self._backends = AsyncSlot(lambda: value, value)

    @classmethod
    def from_url(
        cls, url: str | None = None, *, settings: Settings | None = None,
        clock: Callable[[], float] | None = None, **overrides: Any
    ) -> AsyncCacheClient:
        """Build a client for ``url`` (redis://, rediss://, unix://, memory://) and settings."""
        return cls(_resolve_settings(url, settings, overrides), clock=clock)

    @classmethod
    def sharing(cls, other: _ClientBase, *, same_pool: bool = False) -> AsyncCacheClient:
        """A client sharing ``other``'s settings, codec, breaker, metrics and pending deletes.

        It keeps a connection pool per running event loop, unless ``same_pool``: then it
        uses ``other``'s own backend, so callers whose event loops live for one request
        (Flask's async views) open no connection per request. A memory store is always
        the same store, not a copy.
        """
        client = cls(other.settings, breaker=other.breaker, metrics=other.metrics,
                     codec=other.codec, clock=other.clock)
        client.pending = other.pending
        store = other._backend_any
        if same_pool or isinstance(store, MemoryBackend):
            client.backend = async_share_backend(store)
        return client

    @classmethod
    def twin(cls, other: _ClientBase, *, same_pool: bool = False) -> AsyncCacheClient:
        """The one client sharing ``other`` (see ``sharing``), made on first use; adapters
        call this rather than keeping clients per event loop themselves."""
        found: AsyncCacheClient = other._twin(
            (cls, same_pool), lambda: cls.sharing(other, same_pool=same_pool))
        return found

    @property
    def _backend_any(self) -> Any:
        return self.backend

    async def _call(self, op: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Run one backend call under the breaker; UNAVAILABLE when it cannot."""
        if not self._admit(op):
            return UNAVAILABLE
        call = self._begin(op)
        start = time.perf_counter()
        try:
            if self.pending:
                await self._flush_pending()
            result = await fn(*args)
        except _DATA_ERRORS:
            self.breaker.record_success(call)  # the backend answered; the data was bad
            raise
        except CachekitError as exc:
            self._failed(op, exc, call)
            return UNAVAILABLE
        except BaseException:
            # Cancelled or interrupted: no verdict, but a half-open probe slot must be freed
            # or the breaker stays half-open (rejecting every call) forever.
            self.breaker.release_probe(call)
            raise
        finally:
            self.metrics.observe(op, time.perf_counter() - start)
        self.breaker.record_success(call)
        return result

    async def _flush_pending(self) -> None:
        keys, clear = self.pending.take()
        try:
            await async_apply_invalidations(self.backend, self._prefix, keys, clear)
        except BaseException:  # also when cancelled: the deletes must not be forgotten
            self.pending.restore(keys, clear)
            raise
        self.pending.landed(keys, clear)
        log.debug("replayed %d remembered deletes%s", len(keys), " and a clear" if clear else "")

    @property
    def available(self) -> bool:
        """Whether the breaker currently lets calls through."""
        return self.breaker.state is not State.OPEN

    # -- reads -------------------------------------------------------------
    async def get_entry(self, key: str) -> Entry | None:
        """The raw entry (value and freshness) or None; counts nothing."""
        fk = self.full_key(key)
        raw: bytes | Unavailable | None = await self._call("get", self.backend.get, fk)
        return None if raw is UNAVAILABLE else self._decode(fk, raw)

    async def get(self, key: str, default: Any = None) -> Any:
        """The cached value, or ``default`` on a miss or when the cache is unavailable."""
        entry = await self.get_entry(key)
        now = self.clock()
        self._count_lookups((entry,), now)
        return entry.value if entry is not None and self._fresh(entry, now) else default

    async def _read_many(self, fks: list[str]) -> list[Entry | None] | None:
        """The entries under full keys (None where missing or owed a delete); None if
        the cache is unavailable."""
        raws: list[bytes | None] | Unavailable = await self._call(
            "get_many", self.backend.get_many, fks)
        if raws is UNAVAILABLE:
            return None
        owed = self.pending.owed
        return [None if owed and fk in self.pending else self._decode(fk, raw)
                for fk, raw in zip(fks, raws, strict=True)]

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The found keys and their values (stored None included)."""
        keys = list(keys)
        entries = await self._read_many([self.full_key(k) for k in keys])
        if entries is None:
            self.metrics.count("misses", len(keys))
            return {}
        now = self.clock()
        self._count_lookups(entries, now)
        return {
            key: entry.value
            for key, entry in zip(keys, entries, strict=True)
            if entry is not None and self._fresh(entry, now)
        }

    async def has_key(self, key: str) -> bool:
        """Whether ``key`` holds a fresh value."""
        return await self.get(key, _MISSING) is not _MISSING

    async def ttl(self, key: str) -> float | None:
        """Seconds left; None for no expiry; 0 for missing (or unavailable)."""
        result: float | Unavailable | None = await self._call(
            "ttl", self.backend.ttl, self.full_key(key))
        return 0.0 if result is UNAVAILABLE else result

    # -- writes ------------------------------------------------------------
    async def set(self, key: str, value: Any, timeout: Any = DEFAULT, *,
                  stale_ttl: float | None = None) -> bool:
        """Store ``value``; timeout None = forever, <= 0 deletes. False if dropped."""
        fk = self.full_key(key)
        ttl = self._ttl(timeout)
        if ttl is not None and ttl <= 0:
            await self.delete(key)
            return True
        fresh_until = None
        if stale_ttl and ttl is not None:
            fresh_until, ttl = self.clock() + ttl, ttl + stale_ttl
        data = self._encode(fk, value, fresh_until, ttl)
        ok: bool | Unavailable = await self._call("set", self.backend.set, fk, data, ttl)
        if ok is UNAVAILABLE:
            self.pending.add([fk])  # whatever is there now may be stale
            self._deferred("set", 1)
            return False
        self.metrics.count("sets")
        return bool(ok)

    async def add(self, key: str, value: Any, timeout: Any = DEFAULT) -> bool:
        """Store ``value`` only if ``key`` is absent; True if stored.

        A timeout <= 0 stores nothing, but a value that could never be stored still
        raises (E020), as set() would.
        """
        return await self._add(self.full_key(key), value, timeout)

    async def _add(self, fk: str, value: Any, timeout: Any) -> bool:
        ttl = self._ttl(timeout)
        data = self._encode(fk, value, None, ttl)
        if ttl is not None and ttl <= 0:
            return False

        async def add_once(fk: str, data: bytes, ttl: float | None) -> bool:
            if await self.backend.set(fk, data, ttl, nx=True):
                return True
            # An unreadable entry (bad frame) blocks nothing: replace it.
            # An entry past its fresh time (stale window) is absent too, as get() says.
            if not self._fresh(self._decode(fk, await self.backend.get(fk)), self.clock()):
                self.pending.discard(fk)  # overwritten now: a later delete would lose the value
                return await self.backend.set(fk, data, ttl)
            return False

        ok: bool | Unavailable = await self._call("add", add_once, fk, data, ttl)
        if ok is UNAVAILABLE:
            return False
        if ok:
            self.metrics.count("sets")
        return bool(ok)

    async def set_many(self, mapping: Mapping[str, Any], timeout: Any = DEFAULT) -> list[str]:
        """Store several values in one round trip; returns the keys that were not stored."""
        ttl = self._ttl(timeout)
        if ttl is not None and ttl <= 0:
            await self.delete_many(mapping)
            return []
        encoded = {}
        for key, value in mapping.items():
            fk = self.full_key(key)
            encoded[fk] = self._encode(fk, value, None, ttl)
        ok: bool | Unavailable = await self._call("set_many", self.backend.set_many, encoded, ttl)
        if ok is UNAVAILABLE:
            self.pending.add(encoded)
            self._deferred("set_many", len(encoded))
            return list(mapping)
        self.metrics.count("sets", len(encoded))
        return []

    async def delete(self, key: str) -> bool | Deferred:
        """Delete ``key``: True if it existed, False if not, DEFERRED if Redis is unreachable.

        A deferred delete is remembered, spooled and replayed as soon as Redis answers.
        """
        return await self._delete(self.full_key(key))

    async def _delete(self, fk: str) -> bool | Deferred:
        ok: bool | Unavailable = await self._call("delete", self.backend.delete, fk)
        if ok is UNAVAILABLE:
            self.pending.add([fk])
            self._deferred("delete", 1)
            return DEFERRED
        self.metrics.count("deletes")
        return bool(ok)

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Delete several keys in one round trip; returns how many existed."""
        fks = [self.full_key(k) for k in keys]
        n: int | Unavailable = await self._call("delete_many", self.backend.delete_many, fks)
        if n is UNAVAILABLE:
            self.pending.add(fks)
            self._deferred("delete_many", len(fks))
            return 0
        self.metrics.count("deletes", len(fks))
        return int(n)

    async def touch(self, key: str, timeout: Any = DEFAULT) -> bool:
        """Set a new timeout on ``key``; False if it is missing."""
        ttl = self._ttl(timeout)
        if ttl is not None and ttl <= 0:
            return bool(await self.delete(key))
        ok: bool | Unavailable = await self._call("touch", self._touch, self.full_key(key), ttl)
        return False if ok is UNAVAILABLE else bool(ok)

    async def _touch(self, fk: str, ttl: float | None) -> bool:
        raw = await self.backend.get(fk)
        if raw is None:
            return False
        if not Codec.has_times(raw) and ttl is None:
            return await self.backend.touch(fk, ttl)
        remaining = await self.backend.ttl(fk)
        physical: list[float | None] = []
        try:
            stored = await self.backend.update(
                fk, lambda cur: self._retimed(fk, cur, ttl, remaining, physical)
            )
        except _DATA_ERRORS:
            return False
        return stored is not None and await self.backend.touch(fk, physical[0])

    async def incr(self, key: str, delta: int = 1, *, default: int | None = None) -> int | None:
        """Atomically add ``delta``; None if the key is missing (and no default) or unavailable."""
        fk = self.full_key(key)
        seen: list[int] = []
        unreadable: list[bool] = []

        def bump(raw: bytes) -> bytes:
            entry = self._decode(fk, raw)  # a bad or expired entry is a miss (counted, dropped)
            if entry is None:
                unreadable[:] = [True]
                return raw  # left as it was; replaced below when there is a default
            if not isinstance(entry.value, int) or isinstance(entry.value, bool):
                raise DeserializationError("value is not an integer", code="E021")
            seen[:] = [entry.value + delta]
            return self.codec.encode(fk.encode(), seen[0], entry.fresh_until, entry.expires_at)

        async def run() -> int | None:
            if await self.backend.update(fk, bump) is not None and not unreadable:
                return seen[0]
            if default is None:
                return None
            value, ttl = default + delta, self._ttl(DEFAULT)
            if await self.backend.set(fk, self._encode(fk, value, None, ttl), ttl,
                                      nx=not unreadable):
                self.pending.discard(fk)  # replaced: the remembered delete would lose it
                return value
            return seen[0] if await self.backend.update(fk, bump) is not None and seen else None

        try:
            result: int | Unavailable | None = await self._call("incr", run)
        except (IntegrityError, DeserializationError) as exc:
            raise ValueError(f"cannot increment {key!r}: {exc.message}") from exc
        return None if result is UNAVAILABLE else result

    async def decr(self, key: str, delta: int = 1, *, default: int | None = None) -> int | None:
        """Atomically subtract ``delta``; see incr."""
        return await self.incr(key, -delta, default=default)

    async def clear(self) -> int:
        """Delete every key in this namespace (SCAN, never FLUSHDB); replayed if unavailable."""
        n: int | Unavailable = await self._call("clear", self.backend.delete_prefix, self._prefix)
        if n is UNAVAILABLE:
            self.pending.clear_all()
            self._deferred("clear", 1)
            return 0
        return int(n)

    async def count(self, limit: int = 10_000_000) -> int:
        """How many keys this namespace holds (SCAN, never KEYS), counting at most ``limit``."""
        n: int | Unavailable = await self._call(
            "count", self.backend.count_prefix, self._prefix, limit)
        return 0 if n is UNAVAILABLE else int(n)

    async def move(self, key: str, new_key: str) -> bool:
        """Move ``key``'s fresh value to ``new_key``, keeping its remaining lifetime and
        stale window; False (nothing moved) if ``key`` holds no fresh value."""
        entry = await self.get_entry(key)
        now = self.clock()
        if entry is None or not self._fresh(entry, now):
            return False
        timeout, stale = _remaining(entry.fresh_until, await self.ttl(key), now)
        await self.set(new_key, entry.value, timeout, stale_ttl=stale)
        await self.delete(key)
        return True

    # -- version tokens ------------------------------------------------------
    async def versions(self, names: Sequence[str]) -> list[str] | None:
        """The current version token of each name (made on first use), or None when the
        cache is unavailable. Build keys from them; ``bump_version`` orphans those keys.

        Tokens live under internal keys that no user key can equal.
        """
        fks = [self._version_key(name) for name in names]
        entries = await self._read_many(fks)
        if entries is None:
            return None
        tokens = []
        for fk, entry in zip(fks, entries, strict=True):
            token = None if entry is None else entry.value
            if not isinstance(token, str):
                made = secrets.token_hex(4)
                if await self._add(fk, made, None):
                    token = made
                else:  # another caller made it first, or the cache went away
                    again = await self._read_many([fk])
                    token = again[0].value if again and again[0] is not None else None
                    if not isinstance(token, str):
                        return None
            tokens.append(token)
        return tokens

    async def bump_version(self, name: str) -> bool | Deferred:
        """Retire ``name``'s version token, so no key built from it is read again."""
        return await self._delete(self._version_key(name))

    # -- compute-once ------------------------------------------------------
    async def get_or_set(self, key: str, compute: Callable[[], Any], timeout: Any = DEFAULT,
                         stale_ttl: float | None = None,
                         should_cache: Callable[[Any], bool] | None = None) -> Any:
        """The cached value, or ``compute()`` run once across callers and processes."""
        return (await self.fetch(key, compute, timeout, stale_ttl, should_cache)).value

    async def fetch(self, key: str, compute: Callable[[], Any], timeout: Any = DEFAULT,
                    stale_ttl: float | None = None,
                    should_cache: Callable[[Any], bool] | None = None, *,
                    force: bool = False,
                    accept: Callable[[Any], bool] | None = None) -> Result[Any]:
        """Like get_or_set, also saying whether it was a hit, miss, stale or bypass.

        Concurrent callers compute once and share the result, but a value
        ``should_cache`` refuses is neither stored nor shared: each caller that waited
        computes its own. A stored value ``accept`` refuses counts as absent (and is
        replaced). ``force`` recomputes and stores without reading. ``compute`` may
        return ``Expiring(value, timeout)`` to give its value a timeout of its own.
        """
        fk = self.full_key(key)
        if force:
            return (await self._compute(key, compute, timeout, stale_ttl, should_cache))[0]
        entry = self._accepted(await self.get_entry(key), accept)
        now = self.clock()
        self._count_lookups((entry,), now)
        if entry is not None and self._fresh(entry, now):
            return Result(entry.value, "hit")
        stale = entry
        flight, leader = self._flights.join(fk)
        if not leader:
            if stale is not None:
                self.metrics.count("stale")
                return Result(stale.value, "stale")
            if await flight.wait(self.settings.LOCK_WAIT):
                return _follower_result(flight.value)
            value, _ = _unwrap(await async_compute_value(compute))
            return Result(value, "miss", computed=True)
        try:
            result, shareable = await self._lead(key, fk, compute, timeout, stale_ttl,
                                                 should_cache, stale, accept)
            if shareable:
                flight.resolve(result)
            return result
        finally:
            self._flights.leave(fk, flight)

    async def _lead(self, key: str, fk: str, compute: Callable[[], Any], timeout: Any,
                    stale_ttl: float | None, should_cache: Callable[[Any], bool] | None,
                    stale: Entry | None,
                    accept: Callable[[Any], bool] | None) -> tuple[Result[Any], bool]:
        """The leader's result, and whether the callers waiting for it may have it."""
        if not self.available:
            return await self._bypass(compute, should_cache)
        lock = self.backend.lock(self._lock_name(fk), self.settings.LOCK_TIMEOUT)
        wait = 0.0 if stale is not None else self.settings.LOCK_WAIT
        got: bool | Unavailable = await self._call("lock", lock.acquire, True, wait)
        if got is UNAVAILABLE:
            return await self._bypass(compute, should_cache)
        try:
            if not got:
                if stale is not None:
                    self.metrics.count("stale")
                    return Result(stale.value, "stale"), True
                self._lock_unavailable(fk)
            # Someone may have filled it while we waited for the lock.
            again = self._accepted(await self.get_entry(key), accept)
            if again is not None and self._fresh(again, self.clock()):
                return Result(again.value, "hit"), True
            return await self._compute(key, compute, timeout, stale_ttl, should_cache)
        finally:
            if got is True:
                await self._call("unlock", lock.release)

    async def _bypass(self, compute: Callable[[], Any],
                      should_cache: Callable[[Any], bool] | None) -> tuple[Result[Any], bool]:
        """Compute without the cache (unavailable); shareable only if cacheable."""
        value, _ = _unwrap(await async_compute_value(compute))
        return (Result(value, "bypass", computed=True),
                should_cache is None or should_cache(value))

    async def _compute(self, key: str, compute: Callable[[], Any], timeout: Any,
                       stale_ttl: float | None,
                       should_cache: Callable[[Any], bool] | None) -> tuple[Result[Any], bool]:
        """Compute, and store the value if cacheable; (result, cacheable)."""
        value, own_timeout = _unwrap(await async_compute_value(compute))
        cacheable = should_cache is None or should_cache(value)
        if cacheable:
            try:
                await self.set(key, value, timeout if own_timeout is None else own_timeout.timeout,
                               stale_ttl=stale_ttl)
            except _UNSTORABLE as exc:
                self._not_stored(exc)
        return Result(value, "miss", computed=True), cacheable

    # -- operations ----------------------------------------------------------
    async def health(self) -> HealthReport:
        """A JSON-serializable report of backend, breaker and metrics."""
        self._check_open()
        ping: float | None = None
        error: CachekitError | None = None
        info: dict[str, Any] = {}
        try:
            ping = await self.backend.ping()
            info = await self.backend.info()
        except CachekitError as exc:
            error = exc
        nodes: list[dict[str, Any]] = []
        if hasattr(self.backend, "nodes"):  # cluster, sentinel, replicas: one entry per node
            try:
                nodes = await self.backend.nodes()
            except CachekitError as exc:
                error = error or exc
        rows: list[tuple[str, bytes | None]] | None = None
        fleet_error: CachekitError | None = None
        if ping is not None:  # the other processes' snapshots, unless Redis is unreachable
            try:
                rows = await self._read_fleet()
            except CachekitError as exc:
                fleet_error = exc
        return self._report(ping, error, info, nodes, rows, fleet_error)

    async def _read_fleet(self) -> list[tuple[str, bytes | None]]:
        """Every published process snapshot of this namespace (key, sealed bytes)."""
        keys = self._fleet_keys(await self.backend.get(self.fleet.roster))
        if not keys:
            return []
        return list(zip(keys, await self.backend.get_many(keys), strict=True))

    async def close(self) -> None:
        """Release connections; further calls raise E068."""
        if not self._closed:
            self._closed = True
            self.replayer.stop()
            if self._owns_fleet:  # a client sharing these metrics leaves it to their owner
                self.fleet.stop()
            await self.backend.close()
            self._backends.forget_others()
            self._close_twins()

    async def __aenter__(self) -> AsyncCacheClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
