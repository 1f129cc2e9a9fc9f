"""The cache client: where keys, codec, breaker, backend and metrics meet.

Failure semantics (fail open): when Redis is down, hung or the breaker is
open, reads miss, writes are dropped (and their keys remembered for deletion
on recovery, so a stale value is never served after an outage), deletes are
remembered and replayed. Strict mode raises the typed error instead.

This is the async source; ``core/_sync/client.py`` is generated from it.
"""

from __future__ import annotations

import builtins
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from ..backends import AsyncBackend, make_async_backend
from ..backends.memory import MemoryBackend
from ..clientbase import (
    _COUNTER_ROUNDS,
    _DATA_ERRORS,
    _EXPIRED,
    _MISSING,
    _UNSTORABLE,
    DEFAULT,
    DEFERRED,
    UNAVAILABLE,
    Deferred,
    Result,
    Unavailable,
    _cas_pause,
    _ClientBase,
    _fold_counter,
    _follower_result,
    _remaining,
    _resolve_settings,
    _unwrap,
    log,
)
from ..data.codec import MAGIC, SLOW, Codec, Entry
from ..data.ints import is_int64
from ..errors import (
    BackendConnectionError,
    CachekitError,
    DeserializationError,
    IntegrityError,
    LockTimeoutError,
    UnsupportedOperationError,
)
from ..flavours import (
    AsyncCounters,
    AsyncFlights,
    AsyncSlot,
    async_compute_value,
    async_share_backend,
    async_shielded,
    async_sleep,
)
from ..keys import redis_glob, user_lock_key
from ..local.tier import LocalTier
from ..observe.health import HealthReport
from ..observe.metrics import Metrics
from ..resilience.breaker import CircuitBreaker, State
from ..settings import Settings
from ..singleflight import CounterOp
from .pending import async_apply_invalidations

T = TypeVar("T")
# Rounds of a read-then-compare-and-set write: each lost round means another writer's
# change landed (progress), so a bounded loop; then the other writer's value stands.
_WRITE_ROUNDS = 16
# A write failing with these may have run on the server (a reply lost or late; such
# writes are never re-sent): its outcome is unknown.
_OUTCOME_UNKNOWN = ("E064", "E065")
_COLLECTIONS = (b"set", b"hash", b"zset", "set", "hash", "zset")  # TYPE replies


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
        plain_key_form: tuple[str, str] = ("", ""),
    ) -> None:
        super().__init__(settings, breaker=breaker, metrics=metrics, codec=codec, clock=clock,
                         plain_key_form=plain_key_form)
        self._backends: AsyncSlot[AsyncBackend] = AsyncSlot(
            lambda: make_async_backend(self.url, settings), backend)
        self._flights = AsyncFlights()
        self._counters = AsyncCounters()

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
        except _DATA_ERRORS:
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

    # -- reads -------------------------------------------------------------
    async def get_entry(self, key: str, *, local: bool | None = None) -> Entry | None:
        """The raw entry (value and freshness) or None; counts nothing but the in-process
        tier's hits and misses (``local``: use it; None = the LOCAL_CACHE setting)."""
        fk = self.full_key(key)
        tier = self._local_tier(local)
        if tier is not None:
            return await self._local_entry(tier, fk)
        raw: bytes | Unavailable | None = await self._call("get", self.backend.get, fk)
        if raw is UNAVAILABLE or self._owed(fk):
            return None  # unavailable, or an invalidation of this key has not landed yet
        return self._decode(fk, raw)

    async def _local_entry(self, tier: LocalTier, fk: str) -> Entry | None:
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
        try:
            # Only the plain Redis backend has it, and the tier exists only for that backend.
            got: tuple[bytes | None, int] | Unavailable = await self._call(
                "get", self.backend.get_with_ttl, fk)  # type: ignore[attr-defined]
            if got is UNAVAILABLE:
                return None
            raw, pttl = got
            entry = self._decode(fk, raw)
        finally:
            tier.finish(fk, token, entry, len(raw or b""), pttl)
        return entry

    async def get(self, key: str, default: Any = None, *, local: bool | None = None) -> Any:
        """The cached value, or ``default`` on a miss or when the cache is unavailable."""
        tier = self._local_tier(local)
        if tier is not None:
            fk = self.full_key(key)
            found = self._from_memory(tier, fk)  # the common case: one lookup, no lock
            if found is not None:
                return found.value
            entry = await self._local_entry(tier, fk)
            now = self.clock()
            self._count_lookups((entry,), now)
            return entry.value if entry is not None and self._fresh(entry, now) else default
        fk = self.full_key(key)
        raw, elapsed = await self._timed_call("get", self.backend.get, fk)
        if raw is UNAVAILABLE:
            self.metrics.lookup("get", None, misses=1)  # not admitted: nothing timed
            return default
        found, value = self._value_of(fk, None if self._owed(fk) else raw)
        if found is True:
            self.metrics.lookup("get", elapsed, hits=1)
            return value
        self.metrics.lookup("get", elapsed, misses=1, expired=int(found is _EXPIRED))
        return default

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
        return await self._get_many(keys, self._full_keys(keys))

    async def get_many_as(self, names: Mapping[str, Any]) -> dict[Any, Any]:
        """get_many of the keys of ``names``, each found value under the key's name (an
        adapter's caller's key: no second dict to translate the answer)."""
        return await self._get_many(list(names.values()), self._full_keys(list(names)))

    async def _get_many(self, names: list[Any], fks: list[str]) -> dict[Any, Any]:
        if not fks:
            return {}
        raws, elapsed = await self._timed_call("get_many", self.backend.get_many, fks)
        if raws is UNAVAILABLE:
            self.metrics.lookup("get_many", None, misses=len(fks))
            return {}
        found, expired = self._values_many(names, fks, raws)
        self.metrics.lookup("get_many", elapsed, hits=len(found),
                            misses=len(fks) - len(found), expired=expired)
        return found

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
                  stale_ttl: float | None = None, nx: bool = False, xx: bool = False) -> bool:
        """Store ``value``; timeout None = forever, <= 0 deletes. False if not stored.

        ``nx=True``: only if absent (as add); ``xx=True``: only if present.
        Fail-open answer: False (the key is then deleted once Redis answers, since
        what it holds may be stale).
        """
        if nx and xx:
            raise ValueError("set() takes nx or xx, not both")
        if nx:
            return await self.add(key, value, timeout)
        fk = self.full_key(key)
        ttl = self._ttl(timeout)
        if ttl is not None and ttl <= 0:
            await self.delete(key)
            return True
        fresh_until = None
        if stale_ttl and ttl is not None:
            fresh_until, ttl = self.clock() + ttl, ttl + stale_ttl
        data = self._encode(fk, value, fresh_until, ttl)
        if xx:
            ok: bool | Unavailable = await self._call(
                "set", lambda: self.backend.set(fk, data, ttl, xx=True))
        else:
            ok = await self._call("set", self.backend.set, fk, data, ttl)
        return self._written(fk, ok)

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

    async def add(self, key: str, value: Any, timeout: Any = DEFAULT) -> bool:
        """Store ``value`` only if ``key`` is absent; True if stored.

        A timeout <= 0 stores nothing, but a value that could never be stored still
        raises (E020), as set() would. Fail-open answer: False, nothing of ours left
        stored (a write whose reply was lost is undone, unless its encrypted frame is
        found stored: then it is ours, True).
        """
        return await self._add(self.full_key(key), value, timeout)

    async def _add(self, fk: str, value: Any, timeout: Any) -> bool:
        ttl = self._ttl(timeout)
        data = self._encode(fk, value, None, ttl)
        if ttl is not None and ttl <= 0:
            return False
        ok: bool | Unavailable = await self._call("add", self._add_once, fk, data, ttl)
        self._local_forget(fk)  # it may have replaced a stale entry
        if ok is UNAVAILABLE:
            return False
        if ok:
            self.metrics.count("sets")
        return bool(ok)

    async def _add_once(self, fk: str, data: bytes, ttl: float | None) -> bool:
        """SET NX; exactly one caller ever wins a key's lifetime.

        A key gone by the time it is read (its holder released it) means SET NX again.
        An entry in the way that is past its fresh time (kept for stale-while-revalidate)
        or unreadable counts as absent, as get() says, but is replaced only by a
        server-side compare-and-set on the exact bytes read: of several callers that read
        it, one replaces it and the others then find the winner's fresh value.
        """
        current: bytes | None = None
        for _ in range(_WRITE_ROUNDS):
            if current is None:
                try:
                    if await self.backend.set(fk, data, ttl, nx=True):
                        return True
                except CachekitError as exc:
                    return await self._add_unknown(fk, data, exc)
                current = await self.backend.get(fk)
                if current is None:
                    continue  # released between the two steps
            if self._fresh(self._decode(fk, current, drop=False), self.clock()):
                return False
            try:
                swapped, current = await self._compare_and_set(fk, current, data, ttl, False)
            except CachekitError as exc:
                return await self._add_unknown(fk, data, exc)
            if swapped:
                self.pending.discard(fk)  # overwritten now: a later delete would lose the value
                return True
        return False  # every round lost to another writer's change: the key is theirs

    async def _add_unknown(self, fk: str, data: bytes, exc: CachekitError) -> bool:
        """add()'s write failed and may have landed (``exc``): True only if the key holds
        ``data`` and no other caller could have written those bytes (an encrypted frame:
        its nonce is unique); else ``data`` is deleted where it lies, so that add()'s
        fail-open False holds (equal bytes of another caller go as an eviction would)."""
        if exc.code not in _OUTCOME_UNKNOWN:
            raise exc
        self._drops[fk] = data  # deleted at the next call if not here
        if exc.code == "E064":
            raise exc  # a server that slow gets no more round trips now: the next call
        if await self.backend.get(fk) == data and data[:2] == MAGIC \
                and self.codec.keyring.encrypted:
            self._drops.pop(fk, None)
            return True
        await self.backend.delete_if_equal(fk, data)
        self._drops.pop(fk, None)
        raise exc

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
        self._local_forget(*encoded)
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
        self._local_forget(fk)
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
        self._local_forget(*fks)
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
        self._local_forget(self.full_key(key))  # a new expiry: the held deadline is not it
        return False if ok is UNAVAILABLE else bool(ok)

    async def _touch(self, fk: str, ttl: float | None) -> bool:
        """Re-seal the value read with its new expiry and set both in one compare-and-set
        on the bytes read: a value written meanwhile is never given an expiry that its
        sealed frame does not carry."""
        raw = await self.backend.get(fk)
        for _ in range(_WRITE_ROUNDS):
            if raw is None:
                return False
            if not Codec.has_times(raw) and ttl is None:
                new = raw  # nothing sealed to change: only the Redis TTL goes
                physical: list[float | None] = [None]
            else:
                remaining = await self.backend.ttl(fk)
                physical = []
                try:
                    new = self._retimed(fk, raw, ttl, remaining, physical)
                except _DATA_ERRORS:
                    return False
            swapped, raw = await self._compare_and_set(fk, raw, new, physical[0], False)
            if swapped:
                return True
        return False  # rewritten by others on every round: their values' expiries stand

    async def incr(self, key: str, delta: int = 1, *, default: int | None = None,
                   ignore_key_check: bool = False) -> int | None:
        """Add ``delta`` atomically and return the new value.

        A missing key is created at ``default + delta`` (``ignore_key_check=True`` means a
        default of 0, as in django-redis) with DEFAULT_TIMEOUT; without a default it stays
        missing and the answer is None. ValueError if the value is not an integer.
        Fail-open answer (breaker open, Redis down): None, nothing written; also None when
        the connection was lost after the increment was sent (it is never re-sent, so it
        landed once or not at all: unknown).

        With a key, the counter is sealed like any value and updated by a server-side
        compare-and-set, retried (with jittered pauses) until it lands: contention slows a
        caller down, it does not fail it; threads of a process on one key share rounds.
        Digits under the key are not ours: a miss (replaced when there is a default).
        Keys matching PLAIN_COUNTERS (all keys in the unauthenticated mode) are Redis
        integers updated by one INCRBY (not sealed, see docs/security.md).
        """
        if ignore_key_check and default is None:
            default = 0
        fk = self.full_key(key)
        try:
            result: int | Unavailable | None = await self._call(
                "incr", self._incr, fk, delta, default, self._ttl(DEFAULT))
        except (IntegrityError, DeserializationError) as exc:
            raise ValueError(f"cannot increment {key!r}: {exc.message}") from None
        finally:
            self._local_forget(fk)  # our own write: read back at once, not at its invalidation
        return None if result is UNAVAILABLE else result

    async def _incr(self, fk: str, delta: int, default: int | None,
                    ttl: float | None) -> int | None:
        if is_int64(delta) and (default is None or is_int64(default)) \
                and self.codec.plain(fk.encode()) and hasattr(self.backend, "incr"):
            got = await self.backend.incr(fk, delta, default, ttl)
            if not isinstance(got, bytes):
                return got  # the new value, or None: missing and no default
            # A sealed frame, or an integer INCRBY would overflow: compare-and-set.
            op = CounterOp(delta, default)
            await self._apply_counter(fk, [op], ttl, got)
            return op.answer()
        op = CounterOp(delta, default)
        # Sealed: a leader applies the increments of every caller queued on this key;
        # shielded, so a cancelled leader's batch still lands (its waiters get answers).
        batch = await self._counters.join(fk, op)
        if batch is not None:
            await async_shielded(self._lead_counter(fk, batch, ttl))
        return op.answer()

    async def _lead_counter(self, fk: str, batch: list[CounterOp], ttl: float | None) -> int:
        """Apply ``batch``, then hand the lead on; each op gets its answer or error. Returns
        how many increments it carried."""
        try:
            await self._apply_counter(fk, batch, ttl, _MISSING)
        except BaseException as exc:
            # Interrupted mid-request: whether it landed is unknown, as for a lost connection.
            error = exc if isinstance(exc, Exception) else BackendConnectionError(
                "interrupted while applying this increment", code="E065")
            for other in batch:
                if not other.finished:
                    other.error = error
                    other.finish()
            if not isinstance(exc, Exception):
                raise
        finally:
            self._counters.leave(fk)
        return len(batch)

    async def _apply_counter(self, fk: str, ops: list[CounterOp], ttl: float | None,
                             current: Any) -> None:
        """Apply ``ops`` in order with one compare-and-set on the bytes read (``current``;
        _MISSING: read them), retried with jittered pauses while other writers land."""
        if current is _MISSING:
            current = await self.backend.get(fk)
        for attempt in range(_COUNTER_ROUNDS):  # each lost round: another writer landed
            # Not ours (forged digits, a bad frame): a miss, counted, and replaced below.
            entry = None if current is None else self._decode(fk, current)
            value = _fold_counter(entry, ops)
            if value is _MISSING:
                break  # nothing to write
            if current is None:
                if await self.backend.set(fk, self._encode(fk, value, None, ttl), ttl,
                                          nx=True):
                    self.pending.discard(fk)  # replaced: the remembered delete would lose it
                    break
                current = await self.backend.get(fk)
                continue
            if entry is None:
                new, keep = self._encode(fk, value, None, ttl), False
            else:
                new, keep = self.codec.encode(fk.encode(), value, entry.fresh_until,
                                              entry.expires_at), True
            swapped, current = await self._compare_and_set(fk, current, new, ttl, keep)
            if swapped:
                if entry is None:
                    self.pending.discard(fk)
                break
            await async_sleep(_cas_pause(attempt))
        else:
            raise LockTimeoutError("too much contention on one counter", code="E050")
        for op in ops:
            op.finish()

    async def _compare_and_set(self, fk: str, expected: bytes, new: bytes, ttl: float | None,
                               keep: bool) -> tuple[bool, bytes | None]:
        cas = getattr(self.backend, "compare_and_set", None)
        if cas is not None:
            return await cas(fk, expected, new, ttl=ttl, keep_ttl=keep)  # type: ignore[no-any-return]
        # A backend without a server-side compare-and-set: its optimistic update.
        stored = await self.backend.update(fk, lambda cur: new if cur == expected else cur)
        return (True, None) if stored is not None and stored is new else (False, stored)

    async def decr(self, key: str, delta: int = 1, *, default: int | None = None,
                   ignore_key_check: bool = False) -> int | None:
        """Subtract ``delta`` atomically; see incr (same fail-open answer: None)."""
        return await self.incr(key, -delta, default=default, ignore_key_check=ignore_key_check)

    async def clear(self) -> int:
        """Delete every key in this namespace (SCAN, never FLUSHDB); replayed if unavailable."""
        n: int | Unavailable = await self._call("clear", self.backend.delete_prefix, self._prefix)
        self._local_flush()
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

    # -- expiry (django-redis names) ------------------------------------------
    async def pttl(self, key: str) -> int | None:
        """Milliseconds left; None for no expiry; 0 for missing. Fail-open answer: 0."""
        left = await self.ttl(key)
        return None if left is None else round(left * 1000)

    async def expire(self, key: str, timeout: float) -> bool:
        """Give ``key`` ``timeout`` seconds to live (<= 0 deletes it); False if missing.

        The value is re-sealed with its new expiry when it carries one. Fail-open answer:
        False.
        """
        if timeout <= 0:
            return await self.delete(key) is True
        return await self._expire(key, timeout)

    async def _expire(self, key: str, ttl: float | None) -> bool:
        """touch() for values; a plain PEXPIRE/PERSIST for sets, hashes and sorted sets
        (a collection carries no sealed expiry, and GET of one is a wrong-type error)."""
        if getattr(self.backend, "command", None) is not None:
            kind = await self._read(key, b"none", "type")
            if kind in _COLLECTIONS:
                if ttl is None:
                    return bool(await self._read(key, False, "persist"))
                return bool(await self._read(key, False, "pexpire", max(1, round(ttl * 1000))))
        return await self.touch(key, ttl)

    async def pexpire(self, key: str, timeout_ms: int) -> bool:
        """expire() in milliseconds. Fail-open answer: False."""
        return await self.expire(key, timeout_ms / 1000)

    async def expire_at(self, key: str, when: datetime | float) -> bool:
        """Expire ``key`` at ``when`` (a datetime or Unix seconds). Fail-open answer: False."""
        at = when.timestamp() if isinstance(when, datetime) else float(when)
        return await self.expire(key, at - self.clock())

    async def pexpire_at(self, key: str, when: datetime | int) -> bool:
        """expire_at() with Unix milliseconds (or a datetime). Fail-open answer: False."""
        return await self.expire_at(key, when if isinstance(when, datetime) else when / 1000)

    async def persist(self, key: str) -> bool:
        """Remove ``key``'s expiry; False if missing. Fail-open answer: False."""
        return await self._expire(key, None)

    # -- keys in this namespace ----------------------------------------------
    async def iter_keys(self, pattern: str = "*", itersize: int | None = None
                        ) -> AsyncIterator[str]:
        """Yield this namespace's keys matching the Redis glob ``pattern`` (SCAN, lazily).

        The pattern only matches after the namespace prefix, so no other namespace's key
        (nor an internal lock key) is ever listed. Fail-open answer: nothing.
        """
        scan = self._require("scan_match", "iter_keys")
        batches = scan(self._match(pattern), itersize or 1000)
        cut = len(self._prefix)
        while True:
            try:
                batch: list[bytes] | Unavailable = await self._call("keys", batches.__anext__)
            except StopAsyncIteration:
                return
            if batch is UNAVAILABLE:
                return
            for k in batch:
                yield k.decode("utf-8", "surrogateescape")[cut:]

    async def keys(self, pattern: str = "*") -> list[str]:
        """This namespace's keys matching ``pattern`` (see iter_keys). Fail-open: []."""
        return [k async for k in self.iter_keys(pattern)]

    async def delete_pattern(self, pattern: str, itersize: int | None = None) -> int:
        """Delete this namespace's keys matching ``pattern``; how many were deleted.

        Fail-open answer: 0, and the whole namespace is cleared once Redis answers (a
        pattern cannot be replayed key by key, and a lost invalidation would serve
        stale values).
        """
        scan = self._require("scan_match", "delete_pattern")
        match = self._match(pattern)

        async def run() -> int:
            removed = 0
            async for batch in scan(match, itersize or 1000):
                removed += await self.backend.delete_many([k.decode("utf-8", "surrogateescape")
                                                           for k in batch])
            return removed

        n: int | Unavailable = await self._call("delete_pattern", run)
        self._local_flush()  # which keys matched is not kept: drop them all
        if n is UNAVAILABLE:
            self.pending.clear_all()
            self._deferred("delete_pattern", 1)
            return 0
        self.metrics.count("deletes", int(n))
        return int(n)

    # -- locks -----------------------------------------------------------------
    def lock(self, name: str, timeout: float | None = None, sleep: float = 0.1,
             blocking: bool = True, blocking_timeout: float | None = None,
             thread_local: bool = True) -> AsyncCacheLock:
        """A distributed lock with redis-py's Lock semantics, usable with ``with``.

        Its Redis key is derived from ``name`` in this namespace and can equal neither a
        cache key nor a recompute lock. Fail-open answer: acquire() is False (a lock
        that cannot be held is never granted), and ``with`` raises E050.
        """
        lock = self.backend.lock(user_lock_key(self.full_key(name)), timeout, sleep=sleep,
                                 thread_local=thread_local)
        return AsyncCacheLock(self, lock, blocking, blocking_timeout)

    # -- sets ----------------------------------------------------------------
    async def sadd(self, key: str, *members: Any) -> int:
        """Add members to a set; how many were new. Fail-open answer: 0."""
        return int(await self._write(key, 0, "sadd", *self._members_in(members)))

    async def srem(self, key: str, *members: Any) -> int:
        """Remove members from a set; how many were there. Fail-open answer: 0."""
        return int(await self._write(key, 0, "srem", *self._members_in(members)))

    async def smembers(self, key: str) -> builtins.set[Any]:
        """Every member of a set. Fail-open answer: an empty set."""
        return builtins.set(self._members_out(await self._read(key, [], "smembers")))

    async def sismember(self, key: str, member: Any) -> bool:
        """Whether ``member`` is in the set. Fail-open answer: False."""
        return bool(await self._read(key, False, "sismember", self.codec.pack_member(member)))

    async def smismember(self, key: str, *members: Any) -> list[bool]:
        """For each member, whether it is in the set. Fail-open answer: all False."""
        got = await self._read(key, [0] * len(members), "smismember",
                               self._members_in(members))
        return [bool(x) for x in got]

    async def scard(self, key: str) -> int:
        """How many members the set has. Fail-open answer: 0."""
        return int(await self._read(key, 0, "scard"))

    async def sinter(self, *keys: str) -> builtins.set[Any]:
        """The members every set has. Fail-open answer: an empty set."""
        return builtins.set(self._members_out(await self._multi(keys, [], "sinter")))

    async def sunion(self, *keys: str) -> builtins.set[Any]:
        """The members any set has. Fail-open answer: an empty set."""
        return builtins.set(self._members_out(await self._multi(keys, [], "sunion")))

    async def sdiff(self, *keys: str) -> builtins.set[Any]:
        """The first set's members that no other set has. Fail-open answer: an empty set."""
        return builtins.set(self._members_out(await self._multi(keys, [], "sdiff")))

    async def sinterstore(self, dest: str, *keys: str) -> int:
        """Store sinter(*keys) in ``dest``; its size. Fail-open answer: 0."""
        return await self._multi_store(dest, keys, "sinterstore")

    async def sunionstore(self, dest: str, *keys: str) -> int:
        """Store sunion(*keys) in ``dest``; its size. Fail-open answer: 0."""
        return await self._multi_store(dest, keys, "sunionstore")

    async def sdiffstore(self, dest: str, *keys: str) -> int:
        """Store sdiff(*keys) in ``dest``; its size. Fail-open answer: 0."""
        return await self._multi_store(dest, keys, "sdiffstore")

    async def smove(self, source: str, destination: str, member: Any) -> bool:
        """Move ``member`` from one set to another; False if it was not in ``source``.

        Fail-open answer: False."""
        src, dst = self.full_key(source), self.full_key(destination)
        got = await self._guarded("smove", (src, dst), False, "smove", src, dst,
                                  self.codec.pack_member(member))
        return bool(got)

    async def spop(self, key: str, count: int | None = None) -> Any:
        """Remove and return a random member (None if empty), or a set of ``count``.

        Fail-open answer: None (an empty set with ``count``)."""
        got = await self._write(key, None, "spop", count)
        return self._popped(got, count, builtins.set)

    async def srandmember(self, key: str, count: int | None = None) -> Any:
        """A random member (None if empty), or a list of ``count`` (negative: may repeat).

        Fail-open answer: None (an empty list with ``count``)."""
        got = await self._read(key, None, "srandmember", count)
        return self._popped(got, count, list)

    async def sscan(self, key: str, match: str | None = None, count: int = 10) -> builtins.set[Any]:
        """The set's members, read with SSCAN. Fail-open answer: an empty set.

        ``match`` filters the decoded members with a Redis glob (members are sealed, so
        Redis cannot match them itself).
        """
        return {m async for m in self.sscan_iter(key, match, count)}

    async def sscan_iter(self, key: str, match: str | None = None, count: int = 10
                         ) -> AsyncIterator[Any]:
        """Yield the set's members with SSCAN (see sscan). Fail-open answer: nothing."""
        fk = self.full_key(key)
        keep = None if match is None else re.compile(redis_glob(match), re.DOTALL)
        cursor = 0
        while True:
            got = await self._guarded("sscan", (fk,), None, "sscan", fk, cursor, None, count)
            if got is None:
                return
            cursor, raws = got
            for m in self._members_out(raws):
                if keep is None or (isinstance(m, str) and keep.match(m)):
                    yield m
            if not cursor:
                return

    # -- hashes --------------------------------------------------------------
    async def hset(self, key: str, field: Any, value: Any = None, *,
                   mapping: Mapping[Any, Any] | None = None) -> int:
        """Set hash fields (``field``/``value`` and/or ``mapping``); how many were new.

        Values are sealed frames bound to their key and field. Fail-open answer: 0."""
        fk = self.full_key(key)
        items = dict(mapping or {})
        if field is not None:
            items[field] = value
        encoded: dict[bytes, bytes] = {}
        for f, v in items.items():
            fb = self.codec.pack_member(f)
            encoded[fb] = self._seal_field(fk, fb, v)
        return int(await self._write(key, 0, "hset", mapping=encoded))

    async def hget(self, key: str, field: Any, default: Any = None) -> Any:
        """A hash field's value, or ``default``. Fail-open answer: ``default``."""
        fk = self.full_key(key)
        fb = self.codec.pack_member(field)
        raw = await self._read(key, None, "hget", fb)
        return default if raw is None else self._open_field(fk, fb, raw, default)

    async def hmget(self, key: str, *fields: Any) -> list[Any]:
        """Several fields' values (None where absent). Fail-open answer: all None."""
        fk = self.full_key(key)
        fbs = self._members_in(fields)
        raws = await self._read(key, [None] * len(fbs), "hmget", fbs)
        return [None if r is None else self._open_field(fk, fb, r, None)
                for fb, r in zip(fbs, raws, strict=True)]

    async def hgetall(self, key: str) -> dict[Any, Any]:
        """The whole hash. Fail-open answer: {}."""
        fk = self.full_key(key)
        raw = await self._read(key, {}, "hgetall")
        out: dict[Any, Any] = {}
        for fb, r in raw.items():
            f = self._member_out(fb)
            v = self._open_field(fk, fb, r, _MISSING)
            if f is not _MISSING and v is not _MISSING:
                out[f] = v
        return out

    async def hdel(self, key: str, *fields: Any) -> int:
        """Delete hash fields; how many existed. Fail-open answer: 0."""
        return int(await self._write(key, 0, "hdel", *self._members_in(fields)))

    async def hlen(self, key: str) -> int:
        """How many fields the hash has. Fail-open answer: 0."""
        return int(await self._read(key, 0, "hlen"))

    async def hkeys(self, key: str) -> list[Any]:
        """The hash's fields. Fail-open answer: []."""
        return self._members_out(await self._read(key, [], "hkeys"))

    async def hexists(self, key: str, field: Any) -> bool:
        """Whether the hash has ``field``. Fail-open answer: False."""
        return bool(await self._read(key, False, "hexists", self.codec.pack_member(field)))

    # -- sorted sets ---------------------------------------------------------
    async def zadd(self, key: str, mapping: Mapping[Any, float], nx: bool = False,
                   xx: bool = False, ch: bool = False, incr: bool = False, gt: bool = False,
                   lt: bool = False) -> Any:
        """Add members with scores (scores stay numbers); how many were added (or changed,
        with ``ch``; the new score with ``incr``). Fail-open answer: 0 (None with incr)."""
        encoded = {self.codec.pack_member(m): float(s) for m, s in mapping.items()}
        got = await self._write(key, None if incr else 0, "zadd", encoded, nx=nx, xx=xx, ch=ch,
                                incr=incr, gt=gt, lt=lt)
        return got if incr else int(got)

    async def zrem(self, key: str, *members: Any) -> int:
        """Remove members; how many were there. Fail-open answer: 0."""
        return int(await self._write(key, 0, "zrem", *self._members_in(members)))

    async def zincrby(self, key: str, amount: float, member: Any) -> float | None:
        """Add ``amount`` to ``member``'s score; the new score. Fail-open answer: None."""
        got = await self._write(key, None, "zincrby", amount, self.codec.pack_member(member))
        return None if got is None else float(got)

    async def zscore(self, key: str, member: Any) -> float | None:
        """``member``'s score, None if absent. Fail-open answer: None."""
        got = await self._read(key, None, "zscore", self.codec.pack_member(member))
        return None if got is None else float(got)

    async def zmscore(self, key: str, *members: Any) -> list[float | None]:
        """Scores of several members (None where absent). Fail-open answer: all None."""
        got = await self._read(key, [None] * len(members), "zmscore", self._members_in(members))
        return [None if g is None else float(g) for g in got]

    async def zrank(self, key: str, member: Any) -> int | None:
        """``member``'s rank by ascending score, None if absent. Fail-open answer: None."""
        return await self._read(key, None, "zrank", self.codec.pack_member(member))  # type: ignore[no-any-return]

    async def zrevrank(self, key: str, member: Any) -> int | None:
        """``member``'s rank by descending score, None if absent. Fail-open answer: None."""
        return await self._read(key, None, "zrevrank", self.codec.pack_member(member))  # type: ignore[no-any-return]

    async def zcard(self, key: str) -> int:
        """How many members the sorted set has. Fail-open answer: 0."""
        return int(await self._read(key, 0, "zcard"))

    async def zcount(self, key: str, min: float | str, max: float | str) -> int:
        """How many members score within [min, max]. Fail-open answer: 0."""
        return int(await self._read(key, 0, "zcount", min, max))

    async def zrange(self, key: str, start: int, end: int, desc: bool = False,
                     withscores: bool = False) -> list[Any]:
        """Members by rank (with their scores as (member, score) pairs). Fail-open: []."""
        got = await self._read(key, [], "zrange", start, end, desc=desc, withscores=withscores)
        return self._ranked(got, withscores)

    async def zrevrange(self, key: str, start: int, end: int,
                        withscores: bool = False) -> list[Any]:
        """zrange by descending score. Fail-open answer: []."""
        return await self.zrange(key, start, end, desc=True, withscores=withscores)

    async def zrangebyscore(self, key: str, min: float | str, max: float | str,
                            start: int | None = None, num: int | None = None,
                            withscores: bool = False) -> list[Any]:
        """Members scoring within [min, max], ascending. Fail-open answer: []."""
        got = await self._read(key, [], "zrangebyscore", min, max, start=start, num=num,
                               withscores=withscores)
        return self._ranked(got, withscores)

    async def zrevrangebyscore(self, key: str, max: float | str, min: float | str,
                               start: int | None = None, num: int | None = None,
                               withscores: bool = False) -> list[Any]:
        """Members scoring within [min, max], descending. Fail-open answer: []."""
        got = await self._read(key, [], "zrevrangebyscore", max, min, start=start, num=num,
                               withscores=withscores)
        return self._ranked(got, withscores)

    async def zremrangebyscore(self, key: str, min: float | str, max: float | str) -> int:
        """Remove members scoring within [min, max]; how many. Fail-open answer: 0."""
        return int(await self._write(key, 0, "zremrangebyscore", min, max))

    async def zremrangebyrank(self, key: str, start: int, end: int) -> int:
        """Remove members ranked within [start, end]; how many. Fail-open answer: 0."""
        return int(await self._write(key, 0, "zremrangebyrank", start, end))

    async def zpopmin(self, key: str, count: int | None = None) -> Any:
        """Remove and return the lowest-scored (member, score), None if empty; a list of
        ``count`` pairs when given. Fail-open answer: None ([] with ``count``)."""
        return self._pops(await self._write(key, [], "zpopmin", count), count)

    async def zpopmax(self, key: str, count: int | None = None) -> Any:
        """zpopmin for the highest scores. Fail-open answer: None ([] with ``count``)."""
        return self._pops(await self._write(key, [], "zpopmax", count), count)

    # -- the redis-py client -------------------------------------------------
    def get_client(self, key: Any = None, write: bool = True) -> Any:
        """The underlying redis-py client, for commands this API does not offer.

        What goes through it is raw: not namespaced, not sealed, not guarded by the
        breaker, and not readable by get() unless written by this client. ``key`` and
        ``write`` are django-redis's arguments: one client serves reads and writes.
        """
        client = getattr(self.backend, "client", None)
        if client is None:
            raise UnsupportedOperationError(
                f"{self.describe()} has no redis-py client", code="E069")
        return client

    raw = get_client

    # -- collection plumbing ---------------------------------------------------
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

    async def _multi(self, keys: tuple[str, ...], fallback: Any, method: str) -> Any:
        fks = tuple(self.full_key(k) for k in keys)
        return await self._guarded(method, fks, fallback, method, *fks)

    async def _multi_store(self, dest: str, keys: tuple[str, ...], method: str) -> int:
        fks = (self.full_key(dest), *(self.full_key(k) for k in keys))
        return int(await self._guarded(method, fks[:1], 0, method, *fks, write=True))

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
                    accept: Callable[[Any], bool] | None = None,
                    refresh: Callable[[Any], bool] | None = None,
                    local: bool | None = None) -> Result[Any]:
        """Like get_or_set, also saying whether it was a hit, miss, stale or bypass.

        Concurrent callers compute once and share the result, but a value
        ``should_cache`` refuses is neither stored nor shared: each caller that waited
        computes its own. A stored value ``accept`` refuses counts as absent (and is
        replaced). ``force`` recomputes and stores without reading; so does a fresh hit
        for which ``refresh(value)`` is true (asked once, on hits only). ``compute`` may
        return ``Expiring(value, timeout)`` to give its value a timeout of its own.
        ``local``: read through the in-process tier (None = the LOCAL_CACHE setting).
        """
        fk = self.full_key(key)
        if force:
            return (await self._compute(key, compute, timeout, stale_ttl, should_cache))[0]
        tier = self._local_tier(local)
        elapsed: float | None = None
        entry: Entry | None = None
        if tier is not None:
            entry = self._accepted(await self._local_entry(tier, fk), accept)
        else:
            raw, elapsed = await self._timed_call("get", self.backend.get, fk)
            if raw is not UNAVAILABLE and raw is not None and not self._owed(fk):
                hit = SLOW if refresh is not None else self._hit_value(fk, raw, accept)
                if hit is not SLOW:  # the common hit: one metrics update, no Entry
                    self.metrics.lookup("get", elapsed, hits=1)
                    return Result(hit, "hit")
                entry = self._accepted(self._decode(fk, raw), accept)
        now = self.clock()
        if elapsed is not None:
            self.metrics.observe("get", elapsed)
        self._count_lookups((entry,), now)
        if entry is not None and self._fresh(entry, now):
            if refresh is not None and refresh(entry.value):
                return (await self._compute(key, compute, timeout, stale_ttl, should_cache))[0]
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
            # Someone may have filled it while we waited for the lock (ask Redis itself).
            raw: bytes | Unavailable | None = await self._call("get", self.backend.get, fk)
            seen = None if raw is UNAVAILABLE or self._owed(fk) else raw
            again = self._accepted(self._decode(fk, seen, drop=False), accept)
            if again is not None and self._fresh(again, self.clock()):
                return Result(again.value, "hit"), True
            # Stored only over what was just read: a value set, or a delete, landing while
            # this computes stands. A key owed a delete holds a retracted value: replaced.
            return await self._compute(key, compute, timeout, stale_ttl, should_cache,
                                       over=_MISSING if self._owed(fk) else seen)
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
                       should_cache: Callable[[Any], bool] | None,
                       over: bytes | object | None = _MISSING) -> tuple[Result[Any], bool]:
        """Compute, and store the value if cacheable; (result, cacheable).

        ``over``: store only if the key still holds these bytes (None: only if absent);
        by default store whatever is there.
        """
        value, own_timeout = _unwrap(await async_compute_value(compute))
        cacheable = should_cache is None or should_cache(value)
        if cacheable:
            wanted = timeout if own_timeout is None else own_timeout.timeout
            try:
                if over is _MISSING:
                    await self.set(key, value, wanted, stale_ttl=stale_ttl)
                else:
                    await self._set_over(key, over, value, wanted, stale_ttl)
            except _UNSTORABLE as exc:
                self._not_stored(exc)
        return Result(value, "miss", computed=True), cacheable

    async def _set_over(self, key: str, expected: Any, value: Any, timeout: Any,
                        stale_ttl: float | None) -> bool:
        """set(), only if ``key`` still holds ``expected`` (bytes; None: only if absent),
        checked by the server in the same step as the write."""
        fk = self.full_key(key)
        ttl = self._ttl(timeout)
        if ttl is not None and ttl <= 0:
            return await self.set(key, value, timeout)  # deletes: as set() does
        fresh_until = None
        if stale_ttl and ttl is not None:
            fresh_until, ttl = self.clock() + ttl, ttl + stale_ttl
        data = self._encode(fk, value, fresh_until, ttl)

        async def write() -> bool:
            if expected is None:
                return await self.backend.set(fk, data, ttl, nx=True)
            swapped, _ = await self._compare_and_set(fk, expected, data, ttl, False)
            return swapped

        ok: bool | Unavailable = await self._call("set", write)
        return self._written(fk, ok)

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
        """Every published process snapshot of this namespace (key, sealed bytes); none
        without a key (nothing read there could be authenticated, so nothing is read)."""
        if not self.codec.keyring.authenticated:
            return []
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


class AsyncCacheLock:
    """A distributed lock from ``client.lock()``: redis-py's Lock, guarded by the breaker."""

    def __init__(self, client: AsyncCacheClient, inner: Any, blocking: bool,
                 blocking_timeout: float | None) -> None:
        self._client, self._inner = client, inner
        self._blocking, self._blocking_timeout = blocking, blocking_timeout

    async def acquire(self, blocking: bool | None = None,
                      blocking_timeout: float | None = None) -> bool:
        """Take the lock; False if not acquired in time, or if Redis cannot be reached."""
        wait = self._blocking if blocking is None else blocking
        limit = self._blocking_timeout if blocking_timeout is None else blocking_timeout
        got = await self._client._call("lock", self._inner.acquire, wait, limit)
        return got is True

    async def release(self) -> None:
        """Give the lock back; E050 if it was no longer held (it expired, as redis-py's
        LockNotOwnedError). Unreachable Redis: nothing to do, the lock expires by itself."""
        got = await self._client._call("unlock", self._inner.release)
        if got is False:
            raise LockTimeoutError("lock released but no longer held (it expired?)",
                                   code="E050")

    async def extend(self, additional_time: float, replace_ttl: bool = False) -> bool:
        """Add time to the held lock; False if not held or unreachable."""
        got = await self._client._call("lock_extend", self._inner.extend, additional_time,
                                       replace_ttl)
        return got is True

    async def reacquire(self) -> bool:
        """Reset the held lock's TTL to its timeout; False if not held or unreachable."""
        return await self._client._call("lock_extend", self._inner.reacquire) is True

    async def locked(self) -> bool:
        """Whether anyone holds the lock. Fail-open answer: False."""
        return await self._client._call("lock_state", self._inner.locked) is True

    async def owned(self) -> bool:
        """Whether this lock object holds it. Fail-open answer: False."""
        return await self._client._call("lock_state", self._inner.owned) is True

    async def __aenter__(self) -> AsyncCacheLock:
        if await self.acquire():
            return self
        raise LockTimeoutError("could not acquire the lock", code="E050")

    async def __aexit__(self, *exc: object) -> None:
        await self.release()
