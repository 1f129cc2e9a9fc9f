"""The non-I/O half of both clients: keys, encoding, guarding, reporting, counter folding.

The I/O itself is written once, in ``core/_async`` (client.py and its mixins);
``core/_sync`` is generated from it.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from . import web  # noqa: F401  (registers stored pages with the codec and the tier)
from .backends import backend_kind, make_backend
from .data.codec import SLOW, Codec, Entry
from .data.crypto import KeyRing
from .errors import (
    BackendTimeoutError,
    CachekitError,
    CircuitOpenError,
    ClientClosedError,
    DeserializationError,
    IntegrityError,
    InvalidKeyError,
    LockTimeoutError,
    PoolExhaustedError,
    SerializationError,
    UnsupportedOperationError,
)
from .keys import escape_glob, lock_key
from .local.tier import Tier, release, tier_for
from .observe.fleet import MAX_PROCESSES, FleetPublisher, aggregate, decode_snapshots, open_roster
from .observe.health import HealthReport, build_report
from .observe.logs import LogLimiter, log
from .observe.metrics import Metrics
from .parts import Parts
from .resilience.breaker import CircuitBreaker, State, Transition, probe_gate
from .resilience.pending import PendingDeletes, spool_for
from .resilience.replay import Replayer
from .resilience.worker import ProcessThread
from .results import DEFAULT, UNAVAILABLE, Unavailable
from .settings import Settings
from .singleflight import CounterOp
from .urls import redact_url

B = TypeVar("B")  # the backend type of a flavour: Backend or AsyncBackend

MISSING: Any = object()  # no value (not even None): absent, unreadable, nothing to write
# Raised by codec work inside a backend call: about the data, not the backend's health;
# and E069 (e.g. a multi-key command across Cluster slots): a usage error, raised as is.
DATA_ERRORS = (IntegrityError, DeserializationError, SerializationError,
               UnsupportedOperationError)
EXPIRED: Any = object()  # _value_of: found, but past its fresh-until time
# Operations that may wait on purpose (a lock held by another process, an optimistic
# WATCH loop backing off under contention): never "slow calls".
_UNTIMED = frozenset({"lock", "incr"})
_HOUSEKEEPING_INTERVAL = 1.0  # seconds between the call path's checks of background work
# Globs with many '*' cost Redis exponential matching time: a key pattern may have this many.
_MAX_STARS = 8
_CHECKED_MAX = 4096  # keys a client remembers as checked for get_many (then it starts afresh)
_DROPS_MAX = 1024  # unreadable entries awaiting their delete (more: left to expire)


def resolve_settings(url: str | None, settings: Settings | None, overrides: Any) -> Settings:
    """The settings of ``from_url``: ``settings`` (else the environment's), with ``url``
    and ``overrides`` applied."""
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


def plain_keys_pattern(prefix: str, patterns: Sequence[str],
                       form: tuple[str, str] = ("", "")) -> re.Pattern[bytes] | None:
    """The full keys (bytes) that PLAIN_COUNTERS ``patterns`` name, or None for none.

    A pattern is matched against the caller's key, whole: ``*`` is any run of
    characters, ``?`` any one, the rest literal. ``form`` is the regex an adapter puts
    before and after the caller's key in the key it passes on (Django: KEY_PREFIX and
    VERSION).
    """
    if not patterns:
        return None
    alternatives = "|".join(
        "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in p)
        for p in patterns)
    regex = f"{re.escape(prefix)}{form[0]}(?:{alternatives}){form[1]}"
    return re.compile(regex.encode(), re.DOTALL)


def _utf8_encodable(text: str) -> bool:
    # Tested outside an except block in the caller, so E023 carries no chained error.
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


class ClientEngine(Generic[B]):
    """Everything the sync and async clients share: no I/O here.

    ``backend``: the store to use (None: made from the URL), kept by the I/O half
    (``_open_io``); ``breaker``, ``metrics`` and ``codec``: shared with another client.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        backend: B | None = None,
        breaker: CircuitBreaker | None = None,
        metrics: Metrics | None = None,
        codec: Codec | None = None,
        clock: Callable[[], float] | None = None,
        plain_key_form: tuple[str, str] = ("", ""),
    ) -> None:
        self.settings = settings
        self.clock = clock or time.time  # wall clock (freshness, expiry); tests inject their own
        self.url = settings.require_url()
        self.namespace = settings.NAMESPACE
        self._prefix = settings.NAMESPACE + ":"
        self._checked: dict[str, str] = {}  # _full_keys: key -> full key, for keys that passed
        if codec is not None:
            self.codec = codec
        else:
            ring = KeyRing(
                namespace=settings.NAMESPACE,
                master_key=settings.MASTER_KEY,
                previous_keys=settings.PREVIOUS_MASTER_KEYS,
                signing_key=settings.SIGNING_KEY,
            )
            self.codec = Codec(
                ring,
                compress_min_size=settings.COMPRESS_MIN_SIZE,
                max_value_size=settings.MAX_VALUE_SIZE,
                pickle_fallback=settings.PICKLE_FALLBACK,
                clock=self.clock,
                # Without a key nothing is sealed: every int is a Redis integer (one INCRBY).
                raw_ints=not ring.authenticated,
                plain_keys=plain_keys_pattern(self._prefix, settings.PLAIN_COUNTERS,
                                              plain_key_form),
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
            self.breaker.add_listener(_weak_listener(self._on_transition))
        # Every client of a breaker cuts its own calls short (a shared one too).
        self.breaker.add_listener(_weak_listener(self._cut_if_hung))
        self.metrics = metrics or Metrics(clock=self.clock)
        self.pending = PendingDeletes(settings.PENDING_DELETES_MAX, spool_for(settings,
                                                                               self.url))
        # The threads' objects never hold the client (a turn in progress would keep a dropped
        # client alive): factories take the URL, the breaker calls back through a weak method.
        url = self.url
        self.replayer = Replayer(self.pending, self._prefix, lambda: make_backend(url, settings),
                                 settings.PENDING_REPLAY_INTERVAL)
        self.pending.on_add = self.replayer.wake
        if breaker is None:  # the owner's replayer probes its breaker back (one prober each)
            self.replayer.breaker = self.breaker
            self.replayer.gate = probe_gate(redact_url(self.url))  # one probe per Redis
        if self.pending.spool is not None and self.pending.spool.orphans():
            self.replayer.wake()  # a process of this namespace exited with deletes owed
        self.strict = settings.STRICT
        # Unreadable entries read (full key -> bytes), deleted on the next call only if
        # they still hold those bytes: a blind delete could hit a value written since.
        self._drops: dict[str, bytes] = {}
        self._logger = LogLimiter(settings.LOG_INTERVAL)
        self._closed = False
        self._housekeeping_at = 0.0  # the first call starts this process's threads
        self._orphan_scan_at = 0.0
        self._twins: dict[Any, ClientEngine[Any]] = {}
        self._twins_lock = threading.Lock()
        # One publisher per Metrics: clients sharing their metrics publish them once.
        fleet = self.metrics.publisher
        self._owns_fleet = fleet is None
        if fleet is None:
            parts = Parts(settings, self.codec, self.breaker, self.metrics, self.pending,
                          self.clock)
            fleet = self.metrics.publisher = FleetPublisher(
                parts, lambda: make_backend(url, settings))
            if settings.PROMETHEUS:
                from .observe.prometheus import attach

                attach(parts, fleet)
        self.fleet = fleet
        # Dropped without close(): its threads end after their turn in progress.
        weakref.finalize(self, _stop_threads, self.replayer,
                         fleet if self._owns_fleet else None).atexit = False
        self._open_io(backend)

    def _open_io(self, backend: B | None) -> None:
        """The I/O half's own state: its backend (None: made from the URL) and the like."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.describe()} namespace={self.namespace!r} "
            f"encrypted={self.codec.keyring.encrypted} breaker={self.breaker.state.value}>"
        )

    # Private names django-redis's own tests probe on ``cache.client`` (docs/django.md).
    @property
    def _serializer(self) -> Codec:
        """The codec: not django-redis's JSON or msgpack serializer (datetimes stay datetimes)."""
        return self.codec

    def _has_compression_enabled(self) -> bool:
        """False: sscan(match=...) works with compression here (members match decoded)."""
        return False

    def describe(self) -> str:
        """The backend's location, safe to show."""
        return str(getattr(self._backend_any, "describe", lambda: "?")())

    @property
    def _backend_any(self) -> Any:
        raise NotImplementedError

    @property
    def authenticated(self) -> bool:
        """Whether values are encrypted or signed under a key (so pickle may be read)."""
        return self.codec.keyring.authenticated

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
        if not key.isascii() and not _utf8_encodable(key):
            raise InvalidKeyError("key contains a lone surrogate and cannot be encoded as UTF-8",
                                  code="E023")
        return self._prefix + key

    def _ttl(self, timeout: Any) -> float | None:
        if timeout is DEFAULT:
            timeout = self.settings.DEFAULT_TIMEOUT
        return None if timeout is None else float(timeout)

    def _encode(self, fk: str, value: Any, fresh_until: float | None = None,
                ttl: float | None = None) -> bytes:
        """Encode ``value``; a ``ttl`` (seconds) is sealed into the frame as its expiry."""
        expires_at = None if ttl is None else self.clock() + ttl
        return self.codec.encode(fk.encode(), value, fresh_until, expires_at)

    def _decode(self, fk: str, raw: bytes | None, *, drop: bool = True) -> Entry | None:
        """Decode, or count and log a bad entry and return None (a miss).

        A bad entry is deleted on the next call if it still holds these bytes;
        ``drop=False``: left in place (the caller replaces it by a compare-and-set).
        """
        if raw is None:
            return None
        try:
            return self.codec.decode(fk.encode(), raw)
        except (IntegrityError, DeserializationError) as exc:
            self.metrics.error(exc.code)
            self._logger.emit(logging.WARNING, exc.code, f"unreadable entry dropped: {exc.message}")
            if drop and len(self._drops) < _DROPS_MAX:
                self._drops[fk] = raw  # removed on the next call that reaches the backend
            if self.strict:
                raise
            return None

    def _value_of(self, fk: str, raw: bytes | None) -> tuple[Any, Any]:
        """(True, value) for a fresh entry; (False, None) missing or unreadable (counted,
        dropped as ``_decode`` does); (EXPIRED, None) past its fresh-until time."""
        if raw is None:
            return False, None
        codec = self.codec
        try:
            value = codec.value_of(fk.encode(), raw, codec.clock())
        except (IntegrityError, DeserializationError):
            return False, self._decode(fk, raw)  # counts, logs, drops (or raises if strict)
        if value is not SLOW:
            return True, value
        entry = self._decode(fk, raw)
        if entry is None:
            return False, None
        if entry.fresh_until is not None and entry.fresh_until <= self.clock():
            return EXPIRED, None
        return True, entry.value

    def _hit_value(self, fk: str, raw: bytes, accept: Callable[[Any], bool] | None) -> Any:
        """The value of a common, accepted frame; SLOW for everything else (stale-capable,
        unreadable, refused), which the general decode then handles and counts."""
        codec = self.codec
        try:
            value = codec.value_of(fk.encode(), raw, codec.clock())
        except (IntegrityError, DeserializationError):
            return SLOW
        if value is SLOW or (accept is not None and not accept(value)):
            return SLOW
        return value

    def _owed(self, fk: str) -> bool:
        """Whether ``fk`` is owed an invalidation that has not landed: it reads as a miss."""
        return self.pending.owed and fk in self.pending

    def _full_keys(self, keys: list[str]) -> list[str]:
        """``full_key`` of each key (E023 for the first invalid one). Keys that passed are
        remembered (the rules depend only on settings), up to _CHECKED_MAX, then afresh."""
        memo = self._checked
        if len(memo) >= _CHECKED_MAX:
            memo = self._checked = {}
        get, full_key = memo.get, self.full_key
        fks = []
        for k in keys:
            fk = get(k) if type(k) is str else None
            if fk is None:
                fk = full_key(k)  # raises E023 (so remembers nothing) if invalid
                if len(memo) < _CHECKED_MAX:
                    memo[k] = fk
            fks.append(fk)
        return fks

    def _values_many(self, names: list[Any], fks: list[str],
                     raws: list[bytes | None]) -> tuple[dict[Any, Any], int]:
        """Decode a multi-key read in one pass: (found name -> value, expired count).

        Keys owed a delete read as missing; bad entries are counted and dropped.
        """
        now = self.clock()
        pending = self.pending
        if pending.owed:
            raws = [None if fk in pending else raw for fk, raw in zip(fks, raws, strict=True)]
        found: dict[Any, Any] = {}
        expired = 0

        def general(name: Any, fk: str, raw: bytes) -> None:
            nonlocal expired
            entry = self._decode(fk, raw)  # counts, logs, drops (or raises if strict)
            if entry is None:
                return
            if entry.fresh_until is not None and entry.fresh_until <= now:
                expired += 1
                return
            found[name] = entry.value

        self.codec.values_into(found, names, fks, raws, self.codec.clock(), general)
        return found, expired

    @staticmethod
    def _accepted(entry: Entry | None, accept: Callable[[Any], bool] | None) -> Entry | None:
        """``entry``, unless the caller does not accept its value (then it is absent)."""
        if entry is None or accept is None or accept(entry.value):
            return entry
        return None

    def _version_key(self, name: str) -> str:
        # Starts with '!', which no namespace (so no user key) does; E023 rules still apply.
        return "!ver:" + self.full_key(name)

    def _twin(self, kind: Any, make: Callable[[], ClientEngine[Any]]) -> Any:
        """The client made by ``make`` for ``kind``, made once per client."""
        with self._twins_lock:
            found = self._twins.get(kind)
            if found is None:
                found = self._twins[kind] = make()
            return found

    def _close_twins(self) -> None:
        """Closing a client closes the clients sharing it (their pools are dropped); none
        of them uses the in-process tier any more."""
        with self._twins_lock:
            twins = list(self._twins.values())
            self._twins.clear()
        for twin in twins:
            twin._closed = True
            twin.replayer.stop()
            twin._release_tier()
        self._release_tier()

    def _release_tier(self) -> None:
        """A closed client stops using the in-process tier (the last one ends it)."""
        tier = self._local
        if tier is not MISSING and tier is not None:
            release(tier, self)

    # -- the in-process tier (core/local/tier.py) --------------------------------
    _local: Any = MISSING  # this client's LocalTier, None where it cannot work; made lazily

    def wants_tier(self, local: bool | None = None) -> bool:
        """Whether ``local`` (None: the LOCAL_CACHE setting) asks for the in-process tier."""
        return bool(self.settings.LOCAL_CACHE if local is None else local)

    def _local_tier(self, local: bool | None) -> Tier | None:
        """The in-process tier if ``local`` (default: LOCAL_CACHE) asks for it and it works."""
        if not self.wants_tier(local):
            return None
        tier = self._local
        if tier is MISSING:
            tier = self._local = tier_for(self.url, self.settings,
                                          backend_kind(self.url, self.settings), self.metrics,
                                          user=self)
        return None if tier is None or tier.disabled else tier

    def local_hit(self, key: str, accept: Callable[[Any], bool] | None = None, *,
                  local: bool | None = None) -> Entry | None:
        """The entry of a fresh, accepted value the in-process tier holds for ``key`` (a hit,
        counted as fetch counts it), else None having counted nothing: the caller then asks
        ``fetch``. Never touches Redis."""
        tier = self._local_tier(local)
        if tier is None:
            return None
        return self._from_memory(tier, self.full_key(key), accept)

    def _from_memory(self, tier: Tier, fk: str,
                     accept: Callable[[Any], bool] | None = None) -> Entry | None:
        """The entry of the fresh (and accepted) value ``tier`` holds for ``fk``, counted as
        a hit; None, counting nothing, otherwise (owed an invalidation, absent, stale)."""
        if self._owed(fk):  # the read that follows drops it from the tier
            return None
        entry = tier.lookup(fk)
        if entry is None or (entry.fresh_until is not None and entry.fresh_until <= self.clock()):
            return None
        if accept is not None and not accept(entry.value):
            return None
        self.metrics.local_hit()
        return entry

    def _local_forget(self, *fks: str) -> None:
        """This process wrote ``fks``: drop them from the tier before the server says so."""
        tier = self._local
        if tier is not MISSING and tier is not None:
            for fk in fks:
                tier.forget(fk)

    def _local_flush(self) -> None:
        """This process cleared keys it does not list: drop the whole tier."""
        tier = self._local
        if tier is not MISSING and tier is not None:
            tier.flush()

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
        entry = self._decode(fk, raw)  # a bad or expired entry is counted and dropped
        if entry is None:
            raise DeserializationError("entry unreadable or expired", code="E021")
        if ttl is None or entry.fresh_until is None:
            physical[:] = [None if ttl is None else ttl]
            return self._encode(fk, entry.value, None, ttl)
        now = self.clock()
        window = 0.0 if remaining is None else max(0.0, remaining + now - entry.fresh_until)
        physical[:] = [ttl + window]
        return self._encode(fk, entry.value, now + ttl, ttl + window)

    # -- guarding ----------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("this client was closed", code="E068")

    def _admit(self, op: str) -> bool:
        """Whether ``op`` may touch the backend; counts and (strict) raises when not."""
        self._check_open()
        if time.monotonic() >= self._housekeeping_at:
            self._housekeep()
        if self.breaker.allow():
            return True
        self.metrics.count("ops")
        self.metrics.error("E030")
        if self.strict:
            raise CircuitOpenError(f"{op} skipped: circuit breaker open", code="E030")
        return False

    def _housekeep(self) -> None:
        """At most once a second, from the call path: this process's background threads
        run (a fork done in C keeps none), and spool files that processes of this namespace
        left when they exited are picked up for replay."""
        now = time.monotonic()
        self._housekeeping_at = now + _HOUSEKEEPING_INTERVAL
        self.fleet.ensure_running()
        if self.replayer.breaker is not None and self.replayer.breaker.probe_in() is not None:
            self.replayer.wake()  # open, and no prober here (e.g. a fork done in C)
        spool = self.pending.spool
        if spool is not None and now >= self._orphan_scan_at:
            self._orphan_scan_at = now + max(1.0, 10 * self.settings.PENDING_REPLAY_INTERVAL)
            if spool.orphans():
                self.replayer.wake()

    def _begin(self, op: str) -> int | None:
        """Tell the breaker an admitted call is in flight (a blocking lock wait is not timed)."""
        return None if op in _UNTIMED else self.breaker.begin()

    def _failed(self, op: str, exc: CachekitError, call: int | None = None) -> None:
        self.metrics.error(exc.code)
        if exc.trips_breaker:
            self.breaker.record_failure(call, timeout=isinstance(exc, BackendTimeoutError))
        elif isinstance(exc, PoolExhaustedError):  # busy, not down: no verdict
            self.breaker.release_probe(call)
        else:
            self.breaker.record_success(call)  # the server answered, so it is up
        self._logger.emit(logging.WARNING, exc.code, f"{op} failed on {self.describe()}: "
                          f"{exc.message}")
        if self.strict:
            raise exc

    def _cut_if_hung(self, t: Transition) -> None:
        """Redis hung: calls still blocked in a read fail open now, not a timeout later."""
        if t.new is State.OPEN and t.hung:
            cut = getattr(self._backend_any, "cut_in_flight", None)
            if cut is not None:
                cut()

    def _on_transition(self, t: Transition) -> None:
        if t.new is State.CLOSED and self.pending.spool is not None:
            self.replayer.wake()  # Redis answers again: replay what this and dead processes owe
        if t.new is State.OPEN and not self._closed:
            self.replayer.wake()  # probes Redis until it answers (active recovery)
            # Sentinel/Cluster watch for a new primary and let the breaker probe it at once,
            # rather than after the whole recovery timeout (the backend never imports us).
            watch = getattr(self._backend_any, "watch_topology", None)
            if watch is not None:
                watch(self.breaker.probe_now)
        level = logging.WARNING if t.new is State.OPEN else logging.INFO
        message = f"circuit breaker {t.old.value} -> {t.new.value} ({t.reason})"
        if t.old is State.CLOSED or t.new is State.CLOSED:
            log.log(level, "[E030] %s", message, extra={"cachekit_code": "E030"})
        else:  # open <-> half_open: probes answered, calls failing while down; rate-limited
            self._logger.emit(logging.DEBUG, "E030", message)

    def _deferred(self, op: str, n: int) -> None:
        """Invalidations that could not reach Redis: counted and logged (rate-limited)."""
        self.metrics.count("deferred", n)
        self._logger.emit(logging.WARNING, "deferred", f"{op}: {n} invalidation(s) deferred "
                          "until Redis answers (spooled, replayed in the background)")

    def _written(self, fk: str, ok: bool | Unavailable) -> bool:
        """A write's answer: counted, and remembered as owed when its outcome is unknown."""
        self._local_forget(fk)  # whatever the outcome, the value in memory is not current
        if ok is UNAVAILABLE:
            self.pending.add([fk])  # whatever is there now may be stale
            self._deferred("set", 1)
            return False
        if ok:
            self.metrics.count("sets")
        return bool(ok)

    # -- namespaced patterns and collection members -------------------------------
    def _match(self, pattern: str) -> str:
        """The SCAN MATCH for ``pattern`` inside this namespace: the prefix is literal."""
        if not isinstance(pattern, str) or not pattern:
            raise InvalidKeyError("a key pattern must be a non-empty string", code="E023")
        if len(pattern) > self.settings.MAX_KEY_LENGTH or pattern.count("*") > _MAX_STARS:
            raise InvalidKeyError(f"key pattern is too long or has more than {_MAX_STARS} '*'",
                                  code="E023")
        return escape_glob(self._prefix) + pattern

    def _members_in(self, members: Iterable[Any]) -> list[bytes]:
        return [self.codec.pack_member(m) for m in members]

    def _member_out(self, raw: bytes) -> Any:
        """A stored member's value, or MISSING (counted, logged) if it is not authentic."""
        try:
            return self.codec.unpack_member(raw)
        except (IntegrityError, DeserializationError) as exc:
            self._bad_member(exc)
            return MISSING

    def _members_out(self, raws: Iterable[bytes]) -> list[Any]:
        return [m for m in map(self._member_out, raws) if m is not MISSING]

    def _bad_member(self, exc: CachekitError) -> None:
        self.metrics.error(exc.code)
        self._logger.emit(logging.WARNING, exc.code, f"unreadable member skipped: {exc.message}")
        if self.strict:
            raise exc

    def _popped(self, got: Any, count: int | None, kind: Callable[[list[Any]], Any]) -> Any:
        if count is None:
            return None if got is None else next(iter(self._members_out([got])), None)
        return kind(self._members_out(got or []))

    def _ranked(self, got: list[Any], withscores: bool) -> list[Any]:
        if not withscores:
            return self._members_out(got)
        pairs = ((self._member_out(m), float(score)) for m, score in got)
        return [(m, score) for m, score in pairs if m is not MISSING]

    def _pops(self, got: list[Any], count: int | None) -> Any:
        pairs = self._ranked(got or [], True)
        return (pairs[0] if pairs else None) if count is None else pairs

    def _seal_field(self, fk: str, field: bytes, value: Any) -> bytes:
        """A hash value: a frame bound to the hash's key and the field (never a raw int)."""
        return self.codec.encode(fk.encode() + b"\0" + field, value, raw_int=False)

    def _open_field(self, fk: str, field: bytes, raw: bytes, default: Any) -> Any:
        try:
            return self.codec.decode(fk.encode() + b"\0" + field, raw, raw_int=False).value
        except (IntegrityError, DeserializationError) as exc:
            self._bad_member(exc)
            return default

    def _lock_name(self, fk: str) -> str:
        return lock_key(fk)

    def _not_stored(self, exc: CachekitError) -> None:
        """A computed value was too large to cache (E022): count, log, and still serve it."""
        self.metrics.error(exc.code)
        self._logger.emit(logging.WARNING, exc.code, f"computed value not cached: {exc.message}")
        if self.strict:
            raise exc

    def unkeyable(self, exc: CachekitError, *, strict: bool = False) -> None:
        """A call's arguments cannot be keyed (E023): count, log (rate-limited) and let the
        caller compute uncached; raise in strict mode or when the caller asks (``strict``)."""
        self.metrics.count("ops")  # a call that could not run, as when the breaker refuses it
        self.metrics.error(exc.code)
        if self.strict or strict:
            raise exc
        self._logger.emit(logging.WARNING, exc.code, f"computed uncached: {exc.message}")

    def _lock_unavailable(self, fk: str) -> None:
        self.metrics.error("E050")
        self._logger.emit(logging.WARNING, "E050", "recompute lock not acquired in time; "
                          "computing without it")
        if self.strict:
            raise LockTimeoutError("recompute lock not acquired within LOCK_WAIT", code="E050")

    def _fleet_keys(self, roster: bytes | None) -> list[str]:
        """The snapshot keys on the roster (at most MAX_PROCESSES)."""
        return list(open_roster(self.codec, self.fleet.roster, roster))[:MAX_PROCESSES]

    def _report(self, ping: float | None, ping_error: CachekitError | None,
                info: dict[str, Any],
                nodes: list[dict[str, Any]] | None = None,
                fleet_rows: list[tuple[str, bytes | None]] | None = None,
                fleet_error: CachekitError | None = None) -> HealthReport:
        others = None
        reason = None
        skipped = 0
        if not self.codec.keyring.authenticated:
            # Anyone who can write to Redis could plant a snapshot: nothing is summed.
            reason = ("without a key (MASTER_KEY, SIGNING_KEY or the framework's secret) "
                      "other processes' snapshots cannot be authenticated")
        elif fleet_rows is not None:
            others, skipped = decode_snapshots(self.codec, [(k, r) for k, r in fleet_rows
                                                            if r is not None], self.clock())
        else:
            failure = fleet_error or ping_error
            reason = (f"Redis unreachable ([{failure.code}] {failure.message})"
                      if failure is not None else "snapshots not read")
        metrics, fleet = aggregate(self.fleet.local(self.metrics), self.fleet.key, others, reason,
                                   skipped)
        report = build_report(
            backend=self.describe(),
            namespace=self.namespace,
            ping=ping,
            ping_error=ping_error,
            info=info,
            breaker=self.breaker.snapshot(),
            metrics=metrics,
            encrypted=self.codec.keyring.encrypted,
            signed=self.codec.keyring.authenticated,
            key_fingerprint=self.codec.keyring.fingerprint,
            pending_deletes=len(self.pending),
            spooled=self.pending.spool.depth() if self.pending.spool is not None else 0,
            nodes=nodes,
        )
        report.fleet = fleet
        if self.pending.spool is not None:
            report.spool_errors = dict(self.pending.spool.failures)
        return report


COUNTER_ROUNDS = 1000  # compare-and-set rounds of one counter update before E050


def _weak_listener(method: Callable[[Transition], None]) -> Callable[[Transition], None]:
    """A breaker listener calling ``method`` while its object lives (it holds it weakly)."""
    ref = weakref.WeakMethod(method)

    def listener(t: Transition) -> None:
        bound = ref()
        if bound is not None:
            bound(t)
    return listener


def _stop_threads(*threads: ProcessThread | None) -> None:
    """Tell a collected client's background threads to end (without waiting for them)."""
    for thread in threads:
        if thread is not None:
            thread._stop.set()


def cas_pause(attempt: int) -> float:
    """Seconds before a sealed counter's next compare-and-set: jittered and growing (to
    50 ms), so many writers on one key spread out instead of colliding round after round."""
    return random.random() * min(0.05, 0.001 * 2.0 ** min(attempt, 6))


def fold_counter(entry: Entry | None, ops: Sequence[CounterOp]) -> Any:
    """Apply ``ops`` in order to ``entry`` (None: missing), setting each one's answer; the
    value to store, or MISSING when nothing changes (missing without a default, not an int)."""
    if entry is not None and type(entry.value) is not int:
        error = DeserializationError("value is not an integer", code="E021")
        for op in ops:
            op.error = error
        return MISSING
    value: int | None = None if entry is None else entry.value
    changed = False
    for op in ops:
        op.error = None
        if value is None:
            if op.default is None:
                op.result = None
                continue
            value = op.default
        value += op.delta
        op.result, changed = value, True
    return value if changed else MISSING
