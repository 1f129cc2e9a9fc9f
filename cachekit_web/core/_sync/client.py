# GENERATED from cachekit_web/core/_async/client.py by scripts/generate_sync.py.
# Do not edit: change the async source, then run `make generate`.
"""The cache client: where keys, codec, breaker, backend and metrics meet.

Failure semantics (fail open): when Redis is down, hung or the breaker is
open, reads miss, writes are dropped (and their keys remembered for deletion
on recovery, so a stale value is never served after an outage), deletes are
remembered and replayed. Strict mode raises the typed error instead.

This is the async source; ``core/_sync/client.py`` is generated from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from ..backends import Backend, is_int64, make_backend
from ..backends.common import _contention_pause
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
    _resolve_settings,
    log,
)
from ..codec import Codec, Entry
from ..errors import CachekitError, DeserializationError, IntegrityError
from ..flavours import (
    Flights,
    Slot,
    compute_value,
    share_store,
    sleep,
)
from ..health import HealthReport
from ..metrics import Metrics
from ..settings import Settings
from .pending import apply_invalidations

T = TypeVar("T")


class CacheClient(_ClientBase):
    """The cache client. Build it with ``from_url``."""

    def __init__(
        self,
        settings: Settings,
        *,
        backend: Backend | None = None,
        breaker: CircuitBreaker | None = None,
        metrics: Metrics | None = None,
        codec: Codec | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(settings, breaker=breaker, metrics=metrics, codec=codec, clock=clock)
        self._backends: Slot[Backend] = Slot(
            lambda: make_backend(self.url, settings), backend)
        self._flights = Flights()

    @property
    def backend(self) -> Backend:
        """The backend (an async client has one per running event loop)."""
        return self._backends.get()

    @backend.setter
    def backend(self, value: Backend) -> None:
        self._backends = Slot(lambda: value, value)

    @classmethod
    def from_url(
        cls, url: str | None = None, *, settings: Settings | None = None,
        clock: Callable[[], float] | None = None, **overrides: Any
    ) -> CacheClient:
        """Build a client for ``url`` (redis://, rediss://, unix://, memory://) and settings."""
        return cls(_resolve_settings(url, settings, overrides), clock=clock)

    @classmethod
    def sharing(cls, other: _ClientBase) -> CacheClient:
        """A client sharing ``other``'s settings, codec, breaker, metrics and pending deletes."""
        client = cls(other.settings, breaker=other.breaker, metrics=other.metrics,
                     codec=other.codec, clock=other.clock)
        client.pending = other.pending
        store = getattr(other, "backend", None)
        if isinstance(store, MemoryBackend):  # the same in-process store, not a copy
            client.backend = share_store(store)
        return client

    @property
    def _backend_any(self) -> Any:
        return self.backend

    def _call(self, op: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Run one backend call under the breaker; UNAVAILABLE when it cannot."""
        if not self._admit(op):
            return UNAVAILABLE
        call = self._begin(op)
        start = time.perf_counter()
        try:
            if self.pending:
                self._flush_pending()
            result = fn(*args)
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

    def _flush_pending(self) -> None:
        keys, clear = self.pending.take()
        try:
            apply_invalidations(self.backend, self._prefix, keys, clear)
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
    def get_entry(self, key: str) -> Entry | None:
        """The raw entry (value and freshness) or None; counts nothing."""
        fk = self.full_key(key)
        raw: bytes | Unavailable | None = self._call("get", self.backend.get, fk)
        return None if raw is UNAVAILABLE else self._decode(fk, raw)

    def get(self, key: str, default: Any = None) -> Any:
        """The cached value, or ``default`` on a miss or when the cache is unavailable."""
        entry = self.get_entry(key)
        now = self.clock()
        self._count_lookups((entry,), now)
        return entry.value if entry is not None and self._fresh(entry, now) else default

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The found keys and their values (stored None included)."""
        keys = list(keys)
        fks = [self.full_key(k) for k in keys]
        raws: list[bytes | None] | Unavailable = self._call(
            "get_many", self.backend.get_many, fks)
        if raws is UNAVAILABLE:
            self.metrics.count("misses", len(keys))
            return {}
        now = self.clock()
        owed = self.pending.owed
        entries = [None if owed and fk in self.pending else self._decode(fk, raw)
                   for fk, raw in zip(fks, raws, strict=True)]
        self._count_lookups(entries, now)
        return {
            key: entry.value
            for key, entry in zip(keys, entries, strict=True)
            if entry is not None and self._fresh(entry, now)
        }

    def has_key(self, key: str) -> bool:
        """Whether ``key`` holds a fresh value."""
        return self.get(key, _MISSING) is not _MISSING

    def ttl(self, key: str) -> float | None:
        """Seconds left; None for no expiry; 0 for missing (or unavailable)."""
        result: float | Unavailable | None = self._call(
            "ttl", self.backend.ttl, self.full_key(key))
        return 0.0 if result is UNAVAILABLE else result

    # -- writes ------------------------------------------------------------
    def set(self, key: str, value: Any, timeout: Any = DEFAULT, *,
                  stale_ttl: float | None = None) -> bool:
        """Store ``value``; timeout None = forever, <= 0 deletes. False if dropped."""
        fk = self.full_key(key)
        ttl = self._ttl(timeout)
        if ttl is not None and ttl <= 0:
            self.delete(key)
            return True
        fresh_until = None
        if stale_ttl and ttl is not None:
            fresh_until, ttl = self.clock() + ttl, ttl + stale_ttl
        data = self._encode(fk, value, fresh_until, ttl)
        ok: bool | Unavailable = self._call("set", self.backend.set, fk, data, ttl)
        if ok is UNAVAILABLE:
            self.pending.add([fk])  # whatever is there now may be stale
            self._deferred("set", 1)
            return False
        self.metrics.count("sets")
        return bool(ok)

    def add(self, key: str, value: Any, timeout: Any = DEFAULT) -> bool:
        """Store ``value`` only if ``key`` is absent; True if stored."""
        fk = self.full_key(key)
        ttl = self._ttl(timeout)
        if ttl is not None and ttl <= 0:
            return False
        data = self._encode(fk, value, None, ttl)

        def add_once(fk: str, data: bytes, ttl: float | None) -> bool:
            if self.backend.set(fk, data, ttl, nx=True):
                return True
            # An unreadable entry (bad frame) blocks nothing: replace it.
            # An entry past its fresh time (stale window) is absent too, as get() says.
            if not self._fresh(self._decode(fk, self.backend.get(fk)), self.clock()):
                self.pending.discard(fk)  # overwritten now: a later delete would lose the value
                return self.backend.set(fk, data, ttl)
            return False

        ok: bool | Unavailable = self._call("add", add_once, fk, data, ttl)
        if ok is UNAVAILABLE:
            return False
        if ok:
            self.metrics.count("sets")
        return bool(ok)

    def set_many(self, mapping: Mapping[str, Any], timeout: Any = DEFAULT) -> list[str]:
        """Store several values in one round trip; returns the keys that were not stored."""
        ttl = self._ttl(timeout)
        if ttl is not None and ttl <= 0:
            self.delete_many(mapping)
            return []
        encoded = {}
        for key, value in mapping.items():
            fk = self.full_key(key)
            encoded[fk] = self._encode(fk, value, None, ttl)
        ok: bool | Unavailable = self._call("set_many", self.backend.set_many, encoded, ttl)
        if ok is UNAVAILABLE:
            self.pending.add(encoded)
            self._deferred("set_many", len(encoded))
            return list(mapping)
        self.metrics.count("sets", len(encoded))
        return []

    def delete(self, key: str) -> bool | Deferred:
        """Delete ``key``: True if it existed, False if not, DEFERRED if Redis is unreachable.

        A deferred delete is remembered, spooled and replayed as soon as Redis answers.
        """
        fk = self.full_key(key)
        ok: bool | Unavailable = self._call("delete", self.backend.delete, fk)
        if ok is UNAVAILABLE:
            self.pending.add([fk])
            self._deferred("delete", 1)
            return DEFERRED
        self.metrics.count("deletes")
        return bool(ok)

    def delete_many(self, keys: Iterable[str]) -> int:
        """Delete several keys in one round trip; returns how many existed."""
        fks = [self.full_key(k) for k in keys]
        n: int | Unavailable = self._call("delete_many", self.backend.delete_many, fks)
        if n is UNAVAILABLE:
            self.pending.add(fks)
            self._deferred("delete_many", len(fks))
            return 0
        self.metrics.count("deletes", len(fks))
        return int(n)

    def touch(self, key: str, timeout: Any = DEFAULT) -> bool:
        """Set a new timeout on ``key``; False if it is missing."""
        ttl = self._ttl(timeout)
        if ttl is not None and ttl <= 0:
            return bool(self.delete(key))
        ok: bool | Unavailable = self._call("touch", self._touch, self.full_key(key), ttl)
        return False if ok is UNAVAILABLE else bool(ok)

    def _touch(self, fk: str, ttl: float | None) -> bool:
        raw = self.backend.get(fk)
        if raw is None:
            return False
        if not Codec.has_times(raw) and ttl is None:
            return self.backend.touch(fk, ttl)
        remaining = self.backend.ttl(fk)
        physical: list[float | None] = []
        try:
            stored = self.backend.update(
                fk, lambda cur: self._retimed(fk, cur, ttl, remaining, physical)
            )
        except _DATA_ERRORS:
            return False
        return stored is not None and self.backend.touch(fk, physical[0])

    def incr(self, key: str, delta: int = 1, *, default: int | None = None,
                   ignore_key_check: bool = False) -> int | None:
        """Add ``delta`` atomically and return the new value.

        A missing key is created at ``default + delta`` (``ignore_key_check=True`` means a
        default of 0, as in django-redis) with DEFAULT_TIMEOUT; without a default it stays
        missing and the answer is None. ValueError if the value is not an integer.
        Fail-open answer (breaker open, Redis down): None, nothing written.

        By default this is one server-side INCRBY on a Redis integer (not sealed, see
        docs/security.md). With ENCRYPTION=required the counter stays sealed and is
        updated by a server-side compare-and-set, retried (with jittered pauses) until it
        lands: contention slows a caller down, it never fails it.
        """
        if ignore_key_check and default is None:
            default = 0
        fk = self.full_key(key)
        try:
            result: int | Unavailable | None = self._call(
                "incr", self._incr, fk, delta, default, self._ttl(DEFAULT))
        except (IntegrityError, DeserializationError) as exc:
            raise ValueError(f"cannot increment {key!r}: {exc.message}") from None
        return None if result is UNAVAILABLE else result

    def _incr(self, fk: str, delta: int, default: int | None,
                    ttl: float | None) -> int | None:
        current: bytes | None
        if self.codec.raw_ints and is_int64(delta) and (default is None or is_int64(default)):
            got = self.backend.incr(fk, delta, default, ttl)
            if not isinstance(got, bytes):
                return got  # the new value, or None: missing and no default
            current = got  # a sealed frame, or an integer INCRBY would overflow
        else:
            current = self.backend.get(fk)
        attempt = 0
        while True:  # each lost round means another writer's update landed: progress
            if current is None:
                if default is None:
                    return None
                value = default + delta
                if self.backend.set(fk, self._encode(fk, value, None, ttl), ttl,
                                          nx=True):
                    self.pending.discard(fk)  # replaced: the remembered delete would lose it
                    return value
                current = self.backend.get(fk)
                continue
            entry = self._decode(fk, current)  # a bad or expired entry is a miss (counted)
            if entry is None:
                if default is None:
                    return None
                value, keep = default + delta, False
                new = self._encode(fk, value, None, ttl)
            else:
                if type(entry.value) is not int:
                    raise DeserializationError("value is not an integer", code="E021")
                value, keep = entry.value + delta, True
                new = self.codec.encode(fk.encode(), value, entry.fresh_until, entry.expires_at)
            swapped, current = self.backend.compare_and_set(fk, current, new, ttl=ttl,
                                                                  keep_ttl=keep)
            if swapped:
                if entry is None:
                    self.pending.discard(fk)
                return value
            sleep(_contention_pause(attempt))
            attempt += 1

    def decr(self, key: str, delta: int = 1, *, default: int | None = None,
                   ignore_key_check: bool = False) -> int | None:
        """Subtract ``delta`` atomically; see incr (same fail-open answer: None)."""
        return self.incr(key, -delta, default=default, ignore_key_check=ignore_key_check)

    def clear(self) -> int:
        """Delete every key in this namespace (SCAN, never FLUSHDB); replayed if unavailable."""
        n: int | Unavailable = self._call("clear", self.backend.delete_prefix, self._prefix)
        if n is UNAVAILABLE:
            self.pending.clear_all()
            self._deferred("clear", 1)
            return 0
        return int(n)

    def count(self, limit: int = 10_000_000) -> int:
        """How many keys this namespace holds (SCAN, never KEYS), counting at most ``limit``."""
        n: int | Unavailable = self._call(
            "count", self.backend.count_prefix, self._prefix, limit)
        return 0 if n is UNAVAILABLE else int(n)

    # -- compute-once ------------------------------------------------------
    def get_or_set(self, key: str, compute: Callable[[], Any], timeout: Any = DEFAULT,
                         stale_ttl: float | None = None,
                         should_cache: Callable[[Any], bool] | None = None) -> Any:
        """The cached value, or ``compute()`` run once across callers and processes."""
        return (self.fetch(key, compute, timeout, stale_ttl, should_cache)).value

    def fetch(self, key: str, compute: Callable[[], Any], timeout: Any = DEFAULT,
                    stale_ttl: float | None = None,
                    should_cache: Callable[[Any], bool] | None = None) -> Result[Any]:
        """Like get_or_set, also saying whether it was a hit, miss, stale or bypass."""
        fk = self.full_key(key)
        entry = self.get_entry(key)
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
            if flight.wait(self.settings.LOCK_WAIT):
                return _follower_result(flight.value)
            return Result(compute_value(compute), "miss")
        try:
            result = self._lead(key, fk, compute, timeout, stale_ttl, should_cache, stale)
            flight.resolve(result)
            return result
        finally:
            self._flights.leave(fk, flight)

    def _lead(self, key: str, fk: str, compute: Callable[[], Any], timeout: Any,
                    stale_ttl: float | None, should_cache: Callable[[Any], bool] | None,
                    stale: Entry | None) -> Result[Any]:
        if not self.available:
            return Result(compute_value(compute), "bypass")
        lock = self.backend.lock(self._lock_name(fk), self.settings.LOCK_TIMEOUT)
        wait = 0.0 if stale is not None else self.settings.LOCK_WAIT
        got: bool | Unavailable = self._call("lock", lock.acquire, True, wait)
        if got is UNAVAILABLE:
            return Result(compute_value(compute), "bypass")
        try:
            if not got:
                if stale is not None:
                    self.metrics.count("stale")
                    return Result(stale.value, "stale")
                self._lock_unavailable(fk)
            # Someone may have filled it while we waited for the lock.
            again = self.get_entry(key)
            if again is not None and self._fresh(again, self.clock()):
                return Result(again.value, "hit")
            value = compute_value(compute)
            if should_cache is None or should_cache(value):
                try:
                    self.set(key, value, timeout, stale_ttl=stale_ttl)
                except _UNSTORABLE as exc:
                    self._not_stored(exc)
            return Result(value, "miss")
        finally:
            if got is True:
                self._call("unlock", lock.release)

    # -- operations ----------------------------------------------------------
    def health(self) -> HealthReport:
        """A JSON-serializable report of backend, breaker and metrics."""
        self._check_open()
        ping: float | None = None
        error: CachekitError | None = None
        info: dict[str, Any] = {}
        try:
            ping = self.backend.ping()
            info = self.backend.info()
        except CachekitError as exc:
            error = exc
        nodes: list[dict[str, Any]] = []
        if hasattr(self.backend, "nodes"):  # cluster, sentinel, replicas: one entry per node
            try:
                nodes = self.backend.nodes()
            except CachekitError as exc:
                error = error or exc
        return self._report(ping, error, info, nodes)

    def close(self) -> None:
        """Release connections; further calls raise E068."""
        if not self._closed:
            self._closed = True
            self.replayer.stop()
            self.backend.close()
            self._backends.forget_others()

    def __enter__(self) -> CacheClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
