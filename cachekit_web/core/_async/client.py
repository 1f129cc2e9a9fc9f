"""The cache client: where keys, codec, breaker, backend and metrics meet.

Failure semantics (fail open): when Redis is down, hung or the breaker is
open, reads miss, writes are dropped (and their keys remembered for deletion
on recovery, so a stale value is never served after an outage), deletes are
remembered and replayed. Strict mode raises the typed error instead.

This module holds the cache API (reads, writes, counters, versions, operations); the
client's other parts are mixins beside it: collections.py (sets, hashes, sorted sets),
keyspace.py (expiry, namespace keys), compute.py (get_or_set, fetch), and calls.py
(the guarded backend call they all use). This is the async source;
``core/_sync/client.py`` is generated from it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..backends.memory import MemoryBackend
from ..data.codec import MAGIC, Codec, Entry
from ..data.ints import is_int64
from ..engine import (
    COUNTER_ROUNDS,
    DATA_ERRORS,
    EXPIRED,
    MISSING,
    ClientEngine,
    cas_pause,
    fold_counter,
    resolve_settings,
)
from ..errors import (
    BackendConnectionError,
    CachekitError,
    DeserializationError,
    IntegrityError,
    LockTimeoutError,
    UnsupportedOperationError,
)
from ..flavours import async_compute_value, async_share_backend, async_shielded, async_sleep
from ..keys import user_lock_key
from ..observe.health import HealthReport
from ..results import DEFAULT, DEFERRED, UNAVAILABLE, Deferred, Unavailable
from ..settings import Settings
from ..singleflight import CounterOp
from .collections import AsyncCollections
from .compute import AsyncComputeOnce
from .keyspace import AsyncKeyspace
from .lock import AsyncCacheLock

# Rounds of a read-then-compare-and-set write: each lost round means another writer's
# change landed (progress), so a bounded loop; then the other writer's value stands.
_WRITE_ROUNDS = 16
# A write failing with these may have run on the server (a reply lost or late; such
# writes are never re-sent): its outcome is unknown.
_OUTCOME_UNKNOWN = ("E064", "E065")


def _remaining(fresh_until: float | None, ttl: float | None,
               now: float) -> tuple[float | None, float | None]:
    """(timeout, stale window) that reproduce an entry's remaining lifetime."""
    if ttl is None:
        return None, None
    if fresh_until is None:
        return max(ttl, 0.001), None
    fresh = max(fresh_until - now, 0.001)
    return fresh, max(ttl - fresh, 0.0) or None


class AsyncCacheClient(AsyncComputeOnce, AsyncKeyspace, AsyncCollections):
    """The cache client. Build it with ``from_url``."""

    @classmethod
    def from_url(
        cls, url: str | None = None, *, settings: Settings | None = None,
        clock: Callable[[], float] | None = None, **overrides: Any
    ) -> AsyncCacheClient:
        """Build a client for ``url`` (redis://, rediss://, unix://, memory://) and settings."""
        return cls(resolve_settings(url, settings, overrides), clock=clock)

    @classmethod
    def sharing(cls, other: ClientEngine[Any], *, same_pool: bool = False) -> AsyncCacheClient:
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
    def twin(cls, other: ClientEngine[Any], *, same_pool: bool = False) -> AsyncCacheClient:
        """The one client sharing ``other`` (see ``sharing``), made on first use; adapters
        call this rather than keeping clients per event loop themselves."""
        found: AsyncCacheClient = other._twin(
            (cls, same_pool), lambda: cls.sharing(other, same_pool=same_pool))
        return found

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
        self.metrics.lookup("get", elapsed, misses=1, expired=int(found is EXPIRED))
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

    async def get_many_full(self, names: Mapping[str, Any]) -> dict[Any, Any]:
        """get_many_as for keys already made by ``full_key`` (an adapter remembers them):
        each found value under the full key's name."""
        return await self._get_many(list(names.values()), list(names))

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
        return await self.get(key, MISSING) is not MISSING

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
                except DATA_ERRORS:
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
            await self._apply_counter(fk, batch, ttl, MISSING)
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
        MISSING: read them), retried with jittered pauses while other writers land."""
        if current is MISSING:
            current = await self.backend.get(fk)
        for attempt in range(COUNTER_ROUNDS):  # each lost round: another writer landed
            # Not ours (forged digits, a bad frame): a miss, counted, and replaced below.
            entry = None if current is None else self._decode(fk, current)
            value = fold_counter(entry, ops)
            if value is MISSING:
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
            await async_sleep(cas_pause(attempt))
        else:
            raise LockTimeoutError("too much contention on one counter", code="E050")
        for op in ops:
            op.finish()

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
        return AsyncCacheLock(self._call, lock, blocking, blocking_timeout)

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

    async def release_connections(self) -> None:
        """Disconnect the connection pool (it reconnects on next use); memory:// has none."""
        raw = getattr(self.backend, "client", None)
        pool = getattr(raw, "connection_pool", None)
        if pool is not None:
            await async_compute_value(pool.disconnect)
        elif raw is not None and hasattr(raw, "disconnect_connection_pools"):
            await async_compute_value(raw.disconnect_connection_pools)

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
