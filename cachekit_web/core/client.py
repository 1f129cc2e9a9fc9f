"""CacheClient and AsyncCacheClient: where keys, codec, breaker, backend and metrics meet.

Failure semantics (fail open): when Redis is down, hung or the breaker is
open, reads miss, writes are dropped (and their keys remembered for deletion
on recovery, so a stale value is never served after an outage), deletes are
remembered and replayed. Strict mode raises the typed error instead.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .backends import AsyncBackend, Backend, lock_key, scheme_of
from .backends.memory import AsyncMemoryBackend, MemoryBackend
from .breaker import CircuitBreaker, State, Transition
from .codec import Codec, Entry
from .crypto import KeyRing
from .errors import (
    CachekitError,
    CircuitOpenError,
    ClientClosedError,
    DeserializationError,
    IntegrityError,
    InvalidKeyError,
    LockTimeoutError,
    SerializationError,
    ValueTooLargeError,
)
from .health import HealthReport, build_report
from .locks import AsyncFlights, Flights
from .metrics import Metrics
from .settings import Settings

log = logging.getLogger("cachekit_web")

T = TypeVar("T")


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()
"""Timeout sentinel: use the DEFAULT_TIMEOUT setting."""

_MISSING: Any = object()
# Raised by codec work inside a backend call: about the data, not the backend's health.
_DATA_ERRORS = (IntegrityError, DeserializationError, SerializationError)
# A computed value get_or_set cannot store because of its size: served uncached. (E020, a
# type that cannot be stored, still raises: it fails on the first call, as in Django.)
_UNSTORABLE = (ValueTooLargeError,)
_UNAVAILABLE: Any = object()
# Operations that may wait on purpose (a lock held by another process, an optimistic
# WATCH loop backing off under contention): never "slow calls".
_UNTIMED = frozenset({"lock", "incr"})
_CHUNK = 1000
_MEMORY_STORES: dict[str, MemoryBackend] = {}
_MEMORY_LOCK = threading.Lock()


@dataclass(frozen=True)
class Result(Generic[T]):
    """A value from get_or_set and how it was obtained: hit, miss, stale or bypass."""

    value: T
    status: str


class _PendingDeletes:
    """Keys whose deletion must be applied when Redis is reachable again (bounded)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._clear = False
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._keys) or self._clear

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, keys: Iterable[str]) -> None:
        with self._lock:
            for k in keys:
                self._keys[k] = None
            if len(self._keys) > self._limit:
                # Too many to remember one by one: clear the namespace on recovery instead.
                self._keys.clear()
                self._clear = True

    def clear_all(self) -> None:
        with self._lock:
            self._keys.clear()
            self._clear = True

    def take(self) -> tuple[list[str], bool]:
        with self._lock:
            keys, clear = list(self._keys), self._clear
            self._keys.clear()
            self._clear = False
            return keys, clear

    def discard(self, key: str) -> None:
        with self._lock:
            self._keys.pop(key, None)

    def restore(self, keys: list[str], clear: bool) -> None:
        if clear:
            self.clear_all()
        self.add(keys)


class _LogLimiter:
    """Logs each error code at most once per interval, counting what it held back."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def emit(self, level: int, code: str, message: str) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(code)
            if last is not None and now - last < self.interval:
                self._held[code] = self._held.get(code, 0) + 1
                return
            self._last[code] = now
            held = self._held.pop(code, 0)
        suffix = f" ({held} similar suppressed)" if held else ""
        log.log(level, "[%s] %s%s", code, message, suffix, extra={"cachekit_code": code})


def _memory_store(url: str, settings: Settings) -> MemoryBackend:
    # memory://name shares one store per name within the process, like locmem.
    with _MEMORY_LOCK:
        store = _MEMORY_STORES.get(url)
        if store is None:
            store = _MEMORY_STORES[url] = MemoryBackend(settings.MEMORY_MAX_ENTRIES)
        return store


def make_backend(url: str, settings: Settings) -> Backend:
    """Build the synchronous backend a URL names."""
    if scheme_of(url) == "memory":
        return _memory_store(url, settings)
    if "+" in scheme_of(url) or settings.REPLICA_URLS:  # cluster, sentinel, replicas
        from .backends.sentinel import make_topology_backend

        return make_topology_backend(url, settings)
    from .backends.redis import RedisBackend

    return RedisBackend(url, settings)


def make_async_backend(url: str, settings: Settings) -> AsyncBackend:
    """Build the asynchronous backend a URL names."""
    if scheme_of(url) == "memory":
        return AsyncMemoryBackend(_memory_store(url, settings))
    if "+" in scheme_of(url) or settings.REPLICA_URLS:  # cluster, sentinel, replicas
        from .backends.sentinel import make_async_topology_backend

        return make_async_topology_backend(url, settings)
    from .backends.redis import AsyncRedisBackend

    return AsyncRedisBackend(url, settings)


def _resolve_settings(url: str | None, settings: Settings | None, overrides: Any) -> Settings:
    if settings is None:
        if url:
            overrides = {**overrides, "REDIS_URL": url}
        settings = Settings.from_env(None, **overrides)
    else:
        changes = dict(overrides)
        if url:
            changes["REDIS_URL"] = url
        if changes:
            settings = settings.replace(**changes)
    return settings


class _ClientBase:
    """Everything the sync and async clients share: no I/O here."""

    def __init__(
        self,
        settings: Settings,
        *,
        breaker: CircuitBreaker | None = None,
        metrics: Metrics | None = None,
        codec: Codec | None = None,
    ) -> None:
        self.settings = settings
        self.url = settings.require_url()
        self.namespace = settings.NAMESPACE
        self._prefix = settings.NAMESPACE + ":"
        self.codec = codec or Codec(
            KeyRing(
                namespace=settings.NAMESPACE,
                master_key=settings.MASTER_KEY,
                previous_keys=settings.PREVIOUS_MASTER_KEYS,
                signing_key=settings.SIGNING_KEY,
            ),
            compress_min_size=settings.COMPRESS_MIN_SIZE,
            max_value_size=settings.MAX_VALUE_SIZE,
            pickle_fallback=settings.PICKLE_FALLBACK,
        )
        self.breaker = breaker or CircuitBreaker(
            failure_threshold=settings.CIRCUIT_BREAKER_FAILURE_THRESHOLD,
            window=settings.CIRCUIT_BREAKER_WINDOW,
            recovery_timeout=settings.CIRCUIT_BREAKER_RECOVERY_TIMEOUT,
            half_open_max_calls=settings.CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS,
            failure_rate=settings.CIRCUIT_BREAKER_FAILURE_RATE,
            min_calls=settings.CIRCUIT_BREAKER_MIN_CALLS,
            slow_call_duration=settings.CIRCUIT_BREAKER_SLOW_CALL_DURATION,
            slow_call_rate=settings.CIRCUIT_BREAKER_SLOW_CALL_RATE,
            slow_in_flight=settings.CIRCUIT_BREAKER_SLOW_IN_FLIGHT,
            enabled=settings.CIRCUIT_BREAKER_ENABLED,
        )
        if breaker is None:  # a shared breaker is already logged by the client that owns it
            self.breaker.add_listener(self._on_transition)
        self.metrics = metrics or Metrics()
        self.pending = _PendingDeletes(settings.PENDING_DELETES_MAX)
        self.strict = settings.STRICT
        self._logger = _LogLimiter(settings.LOG_INTERVAL)
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.describe()} namespace={self.namespace!r} "
            f"encrypted={self.codec.keyring.encrypted} breaker={self.breaker.state.value}>"
        )

    def describe(self) -> str:
        """The backend's location, safe to show."""
        return str(getattr(self._backend_any, "describe", lambda: "?")())

    @property
    def _backend_any(self) -> Any:
        raise NotImplementedError

    # -- keys and values ---------------------------------------------------
    def full_key(self, key: str) -> str:
        """The Redis key for ``key``: namespace, colon, key; raises E023 if invalid."""
        if not isinstance(key, str) or not key:
            raise InvalidKeyError(f"cache keys must be non-empty strings, not {type(key).__name__}",
                                  code="E023")
        if len(key) > self.settings.MAX_KEY_LENGTH:
            raise InvalidKeyError(
                f"key is {len(key)} characters; MAX_KEY_LENGTH is {self.settings.MAX_KEY_LENGTH}",
                code="E023",
            )
        return self._prefix + key

    def _ttl(self, timeout: Any) -> float | None:
        if timeout is DEFAULT:
            timeout = self.settings.DEFAULT_TIMEOUT
        return None if timeout is None else float(timeout)

    def _encode(self, fk: str, value: Any, fresh_until: float | None = None) -> bytes:
        return self.codec.encode(fk.encode(), value, fresh_until)

    def _decode(self, fk: str, raw: bytes | None) -> Entry | None:
        """Decode, or count and log a bad entry and return None (a miss)."""
        if raw is None:
            return None
        try:
            return self.codec.decode(fk.encode(), raw)
        except (IntegrityError, DeserializationError) as exc:
            self.metrics.error(exc.code)
            self._logger.emit(logging.WARNING, exc.code, f"unreadable entry dropped: {exc.message}")
            self.pending.add([fk])  # removed on the next call that reaches the backend
            if self.strict:
                raise
            return None

    def _fresh(self, entry: Entry | None, now: float) -> bool:
        return entry is not None and (entry.fresh_until is None or entry.fresh_until > now)

    def _count_lookups(self, entries: Iterable[Entry | None], now: float) -> None:
        hits = misses = expired = 0
        for entry in entries:
            if entry is None:
                misses += 1
            elif entry.fresh_until is not None and entry.fresh_until <= now:
                expired += 1
                misses += 1
            else:
                hits += 1
        self.metrics.count_many(hits=hits, misses=misses, expired=expired)

    def _retimed(self, fk: str, raw: bytes, ttl: float | None, remaining: float | None,
                 physical: list[float | None]) -> bytes:
        """Re-encode a stale-while-revalidate entry fresh for ``ttl``, keeping its stale window.

        The stale window is what the entry had left beyond its fresh-until time; the
        new physical TTL (ttl + window) is appended to ``physical`` for the caller.
        """
        entry = self.codec.decode(fk.encode(), raw)
        if ttl is None or entry.fresh_until is None:
            physical[:] = [None if ttl is None else ttl]
            return self._encode(fk, entry.value)
        now = time.time()
        window = 0.0 if remaining is None else max(0.0, remaining + now - entry.fresh_until)
        physical[:] = [ttl + window]
        return self._encode(fk, entry.value, now + ttl)

    # -- guarding ----------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("this client was closed", code="E068")

    def _admit(self, op: str) -> bool:
        """Whether ``op`` may touch the backend; counts and (strict) raises when not."""
        self._check_open()
        if self.breaker.allow():
            return True
        self.metrics.count("ops")
        self.metrics.error("E030")
        if self.strict:
            raise CircuitOpenError(f"{op} skipped: circuit breaker open", code="E030")
        return False

    def _begin(self, op: str) -> int | None:
        """Tell the breaker an admitted call is in flight (a blocking lock wait is not timed)."""
        return None if op in _UNTIMED else self.breaker.begin()

    def _failed(self, op: str, exc: CachekitError, call: int | None = None) -> None:
        self.metrics.error(exc.code)
        if exc.trips_breaker:
            self.breaker.record_failure(call)
        elif exc.code == "E012":
            self.breaker.release_probe(call)
        else:
            self.breaker.record_success(call)  # the server answered, so it is up
        self._logger.emit(logging.WARNING, exc.code, f"{op} failed on {self.describe()}: "
                          f"{exc.message}")
        if self.strict:
            raise exc

    def _on_transition(self, t: Transition) -> None:
        level = logging.WARNING if t.new is State.OPEN else logging.INFO
        message = f"circuit breaker {t.old.value} -> {t.new.value} ({t.reason})"
        if t.old is State.CLOSED or t.new is State.CLOSED:
            log.log(level, "[E030] %s", message, extra={"cachekit_code": "E030"})
        else:  # open <-> half_open repeats every recovery timeout while down: rate-limit it
            self._logger.emit(level, "E030", message)

    def _lock_name(self, fk: str) -> str:
        return lock_key(fk)

    def _not_stored(self, exc: CachekitError) -> None:
        """A computed value was too large to cache (E022): count, log, and still serve it."""
        self.metrics.error(exc.code)
        self._logger.emit(logging.WARNING, exc.code, f"computed value not cached: {exc.message}")
        if self.strict:
            raise exc

    def _lock_unavailable(self, fk: str) -> None:
        self.metrics.error("E050")
        self._logger.emit(logging.WARNING, "E050", "recompute lock not acquired in time; "
                          "computing without it")
        if self.strict:
            raise LockTimeoutError("recompute lock not acquired within LOCK_WAIT", code="E050")

    def _report(self, ping: float | None, ping_error: CachekitError | None,
                info: dict[str, Any],
                nodes: list[dict[str, Any]] | None = None) -> HealthReport:
        return build_report(
            backend=self.describe(),
            namespace=self.namespace,
            ping=ping,
            ping_error=ping_error,
            info=info,
            breaker=self.breaker.snapshot(),
            metrics=self.metrics.snapshot(),
            encrypted=self.codec.keyring.encrypted,
            signed=self.codec.keyring.authenticated,
            key_fingerprint=self.codec.keyring.fingerprint,
            pending_deletes=len(self.pending),
            nodes=nodes,
        )


class CacheClient(_ClientBase):
    """The synchronous cache client. Build it with ``CacheClient.from_url``."""

    def __init__(
        self,
        settings: Settings,
        *,
        backend: Backend | None = None,
        breaker: CircuitBreaker | None = None,
        metrics: Metrics | None = None,
        codec: Codec | None = None,
    ) -> None:
        super().__init__(settings, breaker=breaker, metrics=metrics, codec=codec)
        self.backend: Backend = backend or make_backend(self.url, settings)
        self._flights = Flights()

    @classmethod
    def from_url(
        cls, url: str | None = None, *, settings: Settings | None = None, **overrides: Any
    ) -> CacheClient:
        """Build a client for ``url`` (redis://, rediss://, unix://, memory://) and settings."""
        return cls(_resolve_settings(url, settings, overrides))

    @property
    def _backend_any(self) -> Any:
        return self.backend

    def _call(self, op: str, fn: Callable[..., T], *args: Any) -> T:
        """Run one backend call under the breaker; returns _UNAVAILABLE when it cannot."""
        if not self._admit(op):
            return _UNAVAILABLE  # type: ignore[no-any-return]
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
            return _UNAVAILABLE  # type: ignore[no-any-return]
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
            if clear:
                self.backend.delete_prefix(self._prefix)
            for i in range(0, len(keys), _CHUNK):
                self.backend.delete_many(keys[i:i + _CHUNK])
        except BaseException:  # also when cancelled: the deletes must not be forgotten
            self.pending.restore(keys, clear)
            raise
        log.debug("replayed %d remembered deletes%s", len(keys), " and a clear" if clear else "")

    @property
    def available(self) -> bool:
        """Whether the breaker currently lets calls through."""
        return self.breaker.state is not State.OPEN

    # -- reads -------------------------------------------------------------
    def get_entry(self, key: str) -> Entry | None:
        """The raw entry (value and freshness) or None; counts nothing."""
        fk = self.full_key(key)
        raw = self._call("get", self.backend.get, fk)
        return None if raw is _UNAVAILABLE else self._decode(fk, raw)

    def get(self, key: str, default: Any = None) -> Any:
        """The cached value, or ``default`` on a miss or when the cache is unavailable."""
        entry = self.get_entry(key)
        now = time.time()
        self._count_lookups((entry,), now)
        return entry.value if entry is not None and self._fresh(entry, now) else default

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The found keys and their values (stored None included)."""
        keys = list(keys)
        fks = [self.full_key(k) for k in keys]
        raws = self._call("get_many", self.backend.get_many, fks)
        if raws is _UNAVAILABLE:
            self.metrics.count("misses", len(keys))
            return {}
        now = time.time()
        entries = [self._decode(fk, raw) for fk, raw in zip(fks, raws, strict=True)]
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
        result = self._call("ttl", self.backend.ttl, self.full_key(key))
        return 0.0 if result is _UNAVAILABLE else result

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
            fresh_until, ttl = time.time() + ttl, ttl + stale_ttl
        data = self._encode(fk, value, fresh_until)
        ok = self._call("set", self.backend.set, fk, data, ttl)
        if ok is _UNAVAILABLE:
            self.pending.add([fk])  # whatever is there now may be stale
            return False
        self.metrics.count("sets")
        return bool(ok)

    def add(self, key: str, value: Any, timeout: Any = DEFAULT) -> bool:
        """Store ``value`` only if ``key`` is absent; True if stored."""
        fk = self.full_key(key)
        ttl = self._ttl(timeout)
        if ttl is not None and ttl <= 0:
            return False
        data = self._encode(fk, value)

        def add_once(fk: str, data: bytes, ttl: float | None) -> bool:
            if self.backend.set(fk, data, ttl, nx=True):
                return True
            # An unreadable entry (bad frame) blocks nothing: replace it.
            # An entry past its fresh time (stale window) is absent too, as get() says.
            if not self._fresh(self._decode(fk, self.backend.get(fk)), time.time()):
                self.pending.discard(fk)  # overwritten now: a later delete would lose the value
                return self.backend.set(fk, data, ttl)
            return False

        ok = self._call("add", add_once, fk, data, ttl)
        if ok is _UNAVAILABLE:
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
            encoded[fk] = self._encode(fk, value)
        ok = self._call("set_many", self.backend.set_many, encoded, ttl)
        if ok is _UNAVAILABLE:
            self.pending.add(encoded)
            return list(mapping)
        self.metrics.count("sets", len(encoded))
        return []

    def delete(self, key: str) -> bool:
        """Delete ``key``; remembered and replayed later if Redis is unavailable."""
        fk = self.full_key(key)
        ok = self._call("delete", self.backend.delete, fk)
        if ok is _UNAVAILABLE:
            self.pending.add([fk])
            return False
        self.metrics.count("deletes")
        return bool(ok)

    def delete_many(self, keys: Iterable[str]) -> int:
        """Delete several keys in one round trip; returns how many existed."""
        fks = [self.full_key(k) for k in keys]
        n = self._call("delete_many", self.backend.delete_many, fks)
        if n is _UNAVAILABLE:
            self.pending.add(fks)
            return 0
        self.metrics.count("deletes", len(fks))
        return int(n)

    def touch(self, key: str, timeout: Any = DEFAULT) -> bool:
        """Set a new timeout on ``key``; False if it is missing."""
        ttl = self._ttl(timeout)
        if ttl is not None and ttl <= 0:
            return self.delete(key)
        ok = self._call("touch", self._touch, self.full_key(key), ttl)
        return False if ok is _UNAVAILABLE else bool(ok)

    def _touch(self, fk: str, ttl: float | None) -> bool:
        raw = self.backend.get(fk)
        if raw is None:
            return False
        if not Codec.has_fresh_until(raw):
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

    def incr(self, key: str, delta: int = 1, *, default: int | None = None) -> int | None:
        """Atomically add ``delta``; None if the key is missing (and no default) or unavailable."""
        fk = self.full_key(key)
        seen: list[int] = []

        def bump(raw: bytes) -> bytes:
            entry = self.codec.decode(fk.encode(), raw)
            if not isinstance(entry.value, int) or isinstance(entry.value, bool):
                raise DeserializationError("value is not an integer", code="E021")
            seen[:] = [entry.value + delta]
            return self._encode(fk, seen[0], entry.fresh_until)

        def run() -> int | None:
            if self.backend.update(fk, bump) is not None:
                return seen[0]
            if default is None:
                return None
            value = default + delta
            if self.backend.set(fk, self._encode(fk, value), self._ttl(DEFAULT), nx=True):
                return value
            return seen[0] if self.backend.update(fk, bump) is not None else None

        try:
            result = self._call("incr", run)
        except (IntegrityError, DeserializationError) as exc:
            raise ValueError(f"cannot increment {key!r}: {exc.message}") from exc
        return None if result is _UNAVAILABLE else result

    def decr(self, key: str, delta: int = 1, *, default: int | None = None) -> int | None:
        """Atomically subtract ``delta``; see incr."""
        return self.incr(key, -delta, default=default)

    def clear(self) -> int:
        """Delete every key in this namespace (SCAN, never FLUSHDB); replayed if unavailable."""
        n = self._call("clear", self.backend.delete_prefix, self._prefix)
        if n is _UNAVAILABLE:
            self.pending.clear_all()
            return 0
        return int(n)

    # -- compute-once ------------------------------------------------------
    def get_or_set(self, key: str, compute: Callable[[], T], timeout: Any = DEFAULT,
                   stale_ttl: float | None = None,
                   should_cache: Callable[[T], bool] | None = None) -> T:
        """The cached value, or ``compute()`` run once across threads and processes."""
        return self.fetch(key, compute, timeout, stale_ttl, should_cache).value

    def fetch(self, key: str, compute: Callable[[], T], timeout: Any = DEFAULT,
              stale_ttl: float | None = None,
              should_cache: Callable[[T], bool] | None = None) -> Result[T]:
        """Like get_or_set, also saying whether it was a hit, miss, stale or bypass."""
        fk = self.full_key(key)
        entry = self.get_entry(key)
        now = time.time()
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
            return Result(compute(), "miss")
        try:
            result = self._lead(key, fk, compute, timeout, stale_ttl, should_cache, stale)
            flight.resolve(result)
            return result
        finally:
            self._flights.leave(fk, flight)

    def _lead(self, key: str, fk: str, compute: Callable[[], T], timeout: Any,
              stale_ttl: float | None, should_cache: Callable[[T], bool] | None,
              stale: Entry | None) -> Result[T]:
        if not self.available:
            return Result(compute(), "bypass")
        lock = self.backend.lock(self._lock_name(fk), self.settings.LOCK_TIMEOUT)
        wait = 0.0 if stale is not None else self.settings.LOCK_WAIT
        got = self._call("lock", lock.acquire, True, wait)
        if got is _UNAVAILABLE:
            return Result(compute(), "bypass")
        try:
            if not got:
                if stale is not None:
                    self.metrics.count("stale")
                    return Result(stale.value, "stale")
                self._lock_unavailable(fk)
            # Someone may have filled it while we waited for the lock.
            again = self.get_entry(key)
            if again is not None and self._fresh(again, time.time()):
                return Result(again.value, "hit")
            value = compute()
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
            self.backend.close()

    def __enter__(self) -> CacheClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncCacheClient(_ClientBase):
    """The asyncio cache client, sharing codec, breaker and metrics semantics with CacheClient."""

    def __init__(
        self,
        settings: Settings,
        *,
        backend: AsyncBackend | None = None,
        breaker: CircuitBreaker | None = None,
        metrics: Metrics | None = None,
        codec: Codec | None = None,
    ) -> None:
        super().__init__(settings, breaker=breaker, metrics=metrics, codec=codec)
        # redis.asyncio pools belong to one event loop. A client used from another loop
        # (asyncio.run per call, asgiref's async_to_sync) gets a backend of its own there.
        self._base: AsyncBackend = backend or make_async_backend(self.url, settings)
        self._per_loop = backend is None and not isinstance(self._base, AsyncMemoryBackend)
        self._base_loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self._other_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncBackend] = (
            weakref.WeakKeyDictionary())
        self._flights = AsyncFlights()

    @property
    def backend(self) -> AsyncBackend:
        """The backend for the running event loop."""
        if not self._per_loop:
            return self._base
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self._base
        if self._base_loop is None:
            self._base_loop = weakref.ref(loop)
        else:
            base_loop = self._base_loop()
            if base_loop is None or base_loop.is_closed():
                # Its loop is gone (asyncio.run per call): that pool can never be used again.
                self._base = make_async_backend(self.url, self.settings)
                self._base_loop = weakref.ref(loop)
        if self._base_loop() is loop:
            return self._base
        # A pool references its loop, so a weak key alone never lets a closed loop's entry
        # (and its sockets) go: drop those explicitly.
        for closed in [other for other in self._other_loops if other.is_closed()]:
            del self._other_loops[closed]
        found = self._other_loops.get(loop)
        if found is None:
            found = self._other_loops[loop] = make_async_backend(self.url, self.settings)
        return found

    @backend.setter
    def backend(self, value: AsyncBackend) -> None:
        self._base, self._base_loop, self._per_loop = value, None, False

    @classmethod
    def from_url(
        cls, url: str | None = None, *, settings: Settings | None = None, **overrides: Any
    ) -> AsyncCacheClient:
        """Build an async client for ``url`` and settings."""
        return cls(_resolve_settings(url, settings, overrides))

    @classmethod
    def sharing(cls, sync: CacheClient) -> AsyncCacheClient:
        """An async client that shares ``sync``'s settings, codec, breaker and metrics."""
        client = cls(sync.settings, breaker=sync.breaker, metrics=sync.metrics, codec=sync.codec)
        client.pending = sync.pending
        if isinstance(sync.backend, MemoryBackend):
            client.backend = AsyncMemoryBackend(sync.backend)
        return client

    @property
    def _backend_any(self) -> Any:
        return self.backend

    async def _call(self, op: str, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        if not self._admit(op):
            return _UNAVAILABLE  # type: ignore[no-any-return]
        call = self._begin(op)
        start = time.perf_counter()
        try:
            if self.pending:
                await self._flush_pending()
            result = await fn(*args)
        except _DATA_ERRORS:
            self.breaker.record_success(call)
            raise
        except CachekitError as exc:
            self._failed(op, exc, call)
            return _UNAVAILABLE  # type: ignore[no-any-return]
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
            if clear:
                await self.backend.delete_prefix(self._prefix)
            for i in range(0, len(keys), _CHUNK):
                await self.backend.delete_many(keys[i:i + _CHUNK])
        except BaseException:  # also when cancelled: the deletes must not be forgotten
            self.pending.restore(keys, clear)
            raise

    @property
    def available(self) -> bool:
        """Whether the breaker currently lets calls through."""
        return self.breaker.state is not State.OPEN

    async def get_entry(self, key: str) -> Entry | None:
        """The raw entry (value and freshness) or None; counts nothing."""
        fk = self.full_key(key)
        raw = await self._call("get", self.backend.get, fk)
        return None if raw is _UNAVAILABLE else self._decode(fk, raw)

    async def get(self, key: str, default: Any = None) -> Any:
        """The cached value, or ``default`` on a miss or when the cache is unavailable."""
        entry = await self.get_entry(key)
        now = time.time()
        self._count_lookups((entry,), now)
        return entry.value if entry is not None and self._fresh(entry, now) else default

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The found keys and their values (stored None included)."""
        keys = list(keys)
        fks = [self.full_key(k) for k in keys]
        raws = await self._call("get_many", self.backend.get_many, fks)
        if raws is _UNAVAILABLE:
            self.metrics.count("misses", len(keys))
            return {}
        now = time.time()
        entries = [self._decode(fk, raw) for fk, raw in zip(fks, raws, strict=True)]
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
        result = await self._call("ttl", self.backend.ttl, self.full_key(key))
        return 0.0 if result is _UNAVAILABLE else result

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
            fresh_until, ttl = time.time() + ttl, ttl + stale_ttl
        data = self._encode(fk, value, fresh_until)
        ok = await self._call("set", self.backend.set, fk, data, ttl)
        if ok is _UNAVAILABLE:
            self.pending.add([fk])
            return False
        self.metrics.count("sets")
        return bool(ok)

    async def add(self, key: str, value: Any, timeout: Any = DEFAULT) -> bool:
        """Store ``value`` only if ``key`` is absent; True if stored."""
        fk = self.full_key(key)
        ttl = self._ttl(timeout)
        if ttl is not None and ttl <= 0:
            return False
        data = self._encode(fk, value)

        async def add_once(fk: str, data: bytes, ttl: float | None) -> bool:
            if await self.backend.set(fk, data, ttl, nx=True):
                return True
            if not self._fresh(self._decode(fk, await self.backend.get(fk)), time.time()):
                self.pending.discard(fk)
                return await self.backend.set(fk, data, ttl)
            return False

        ok = await self._call("add", add_once, fk, data, ttl)
        if ok is _UNAVAILABLE:
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
            encoded[fk] = self._encode(fk, value)
        ok = await self._call("set_many", self.backend.set_many, encoded, ttl)
        if ok is _UNAVAILABLE:
            self.pending.add(encoded)
            return list(mapping)
        self.metrics.count("sets", len(encoded))
        return []

    async def delete(self, key: str) -> bool:
        """Delete ``key``; remembered and replayed later if Redis is unavailable."""
        fk = self.full_key(key)
        ok = await self._call("delete", self.backend.delete, fk)
        if ok is _UNAVAILABLE:
            self.pending.add([fk])
            return False
        self.metrics.count("deletes")
        return bool(ok)

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Delete several keys in one round trip; returns how many existed."""
        fks = [self.full_key(k) for k in keys]
        n = await self._call("delete_many", self.backend.delete_many, fks)
        if n is _UNAVAILABLE:
            self.pending.add(fks)
            return 0
        self.metrics.count("deletes", len(fks))
        return int(n)

    async def touch(self, key: str, timeout: Any = DEFAULT) -> bool:
        """Set a new timeout on ``key``; False if it is missing."""
        ttl = self._ttl(timeout)
        if ttl is not None and ttl <= 0:
            return await self.delete(key)
        ok = await self._call("touch", self._touch, self.full_key(key), ttl)
        return False if ok is _UNAVAILABLE else bool(ok)

    async def _touch(self, fk: str, ttl: float | None) -> bool:
        raw = await self.backend.get(fk)
        if raw is None:
            return False
        if not Codec.has_fresh_until(raw):
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

        def bump(raw: bytes) -> bytes:
            entry = self.codec.decode(fk.encode(), raw)
            if not isinstance(entry.value, int) or isinstance(entry.value, bool):
                raise DeserializationError("value is not an integer", code="E021")
            seen[:] = [entry.value + delta]
            return self._encode(fk, seen[0], entry.fresh_until)

        async def run() -> int | None:
            if await self.backend.update(fk, bump) is not None:
                return seen[0]
            if default is None:
                return None
            value = default + delta
            if await self.backend.set(fk, self._encode(fk, value), self._ttl(DEFAULT), nx=True):
                return value
            return seen[0] if await self.backend.update(fk, bump) is not None else None

        try:
            result = await self._call("incr", run)
        except (IntegrityError, DeserializationError) as exc:
            raise ValueError(f"cannot increment {key!r}: {exc.message}") from exc
        return None if result is _UNAVAILABLE else result

    async def decr(self, key: str, delta: int = 1, *, default: int | None = None) -> int | None:
        """Atomically subtract ``delta``; see incr."""
        return await self.incr(key, -delta, default=default)

    async def clear(self) -> int:
        """Delete every key in this namespace (SCAN, never FLUSHDB); replayed if unavailable."""
        n = await self._call("clear", self.backend.delete_prefix, self._prefix)
        if n is _UNAVAILABLE:
            self.pending.clear_all()
            return 0
        return int(n)

    async def get_or_set(self, key: str, compute: Callable[[], Awaitable[T]] | Callable[[], T],
                         timeout: Any = DEFAULT, stale_ttl: float | None = None,
                         should_cache: Callable[[T], bool] | None = None) -> T:
        """The cached value, or ``compute()`` (sync or async) run once across callers."""
        return (await self.fetch(key, compute, timeout, stale_ttl, should_cache)).value

    async def fetch(self, key: str, compute: Callable[[], Awaitable[T]] | Callable[[], T],
                    timeout: Any = DEFAULT, stale_ttl: float | None = None,
                    should_cache: Callable[[T], bool] | None = None) -> Result[T]:
        """Like get_or_set, also saying whether it was a hit, miss, stale or bypass."""
        fk = self.full_key(key)
        entry = await self.get_entry(key)
        now = time.time()
        self._count_lookups((entry,), now)
        if entry is not None and self._fresh(entry, now):
            return Result(entry.value, "hit")
        stale = entry
        flight, leader = self._flights.join(fk)
        if not leader:
            if stale is not None:
                self.metrics.count("stale")
                return Result(stale.value, "stale")
            try:
                shared = await asyncio.wait_for(asyncio.shield(flight), self.settings.LOCK_WAIT)
                return _follower_result(shared)
            except (asyncio.TimeoutError, CachekitError, _FlightFailed):
                return Result(await _run_compute(compute), "miss")
        try:
            result: Result[T] = await self._lead(
                key, fk, compute, timeout, stale_ttl, should_cache, stale
            )
            if not flight.done():
                flight.set_result(result)
            return result
        except BaseException:
            if not flight.done():
                flight.set_exception(_FlightFailed())
                flight.exception()  # mark retrieved so asyncio does not warn
            raise
        finally:
            self._flights.leave(fk, flight)

    async def _lead(self, key: str, fk: str, compute: Any, timeout: Any,
                    stale_ttl: float | None, should_cache: Any, stale: Entry | None) -> Result[T]:
        if not self.available:
            return Result(await _run_compute(compute), "bypass")
        lock = self.backend.lock(self._lock_name(fk), self.settings.LOCK_TIMEOUT)
        wait = 0.0 if stale is not None else self.settings.LOCK_WAIT
        got = await self._call("lock", lock.acquire, True, wait)
        if got is _UNAVAILABLE:
            return Result(await _run_compute(compute), "bypass")
        try:
            if not got:
                if stale is not None:
                    self.metrics.count("stale")
                    return Result(stale.value, "stale")
                self._lock_unavailable(fk)
            again = await self.get_entry(key)
            if again is not None and self._fresh(again, time.time()):
                return Result(again.value, "hit")
            value = await _run_compute(compute)
            if should_cache is None or should_cache(value):
                try:
                    await self.set(key, value, timeout, stale_ttl=stale_ttl)
                except _UNSTORABLE as exc:
                    self._not_stored(exc)
            return Result(value, "miss")
        finally:
            if got is True:
                await self._call("unlock", lock.release)

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
        return self._report(ping, error, info, nodes)

    async def close(self) -> None:
        """Release connections; further calls raise E068."""
        if not self._closed:
            self._closed = True
            await self.backend.close()  # other loops' pools cannot be awaited from here
            self._other_loops.clear()

    async def __aenter__(self) -> AsyncCacheClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _follower_result(shared: Result[T]) -> Result[T]:
    """What a caller that waited for another's computation got: a hit, unless the cache was
    bypassed (unavailable) or the leader could only serve a stale value."""
    return Result(shared.value, "hit" if shared.status in ("hit", "miss") else shared.status)


class _FlightFailed(Exception):
    """The leader of a single-flight failed; followers compute for themselves."""


async def _run_compute(compute: Any) -> Any:
    value = compute()
    if asyncio.iscoroutine(value) or isinstance(value, Awaitable):
        value = await value
    return value
