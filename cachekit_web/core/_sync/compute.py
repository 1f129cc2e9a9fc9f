# GENERATED from cachekit_web/core/_async/compute.py by scripts/generate_sync.py.
# Do not edit: change the async source, then run `make generate`.
"""Compute-once: get_or_set and fetch, one computation across callers and processes.

Callers of one key in this process share a flight; across processes a recompute lock
in Redis elects one computer, and the value is stored only over what it read. A mixin
of the cache client. This is the async source; ``core/_sync/compute.py`` is generated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..data.codec import SLOW, Entry
from ..engine import MISSING
from ..errors import ValueTooLargeError
from ..flavours import compute_value
from ..results import DEFAULT, UNAVAILABLE, Expiring, Result, Unavailable
from .calls import GuardedClient

T = TypeVar("T")
# A computed value get_or_set cannot store because of its size: served uncached. (E020, a
# type that cannot be stored, still raises: it fails on the first call, as in Django.)
_UNSTORABLE = (ValueTooLargeError,)


def _unwrap(value: Any) -> tuple[Any, Expiring[Any] | None]:
    """(value, its own timeout if a compute function gave one)."""
    return (value.value, value) if isinstance(value, Expiring) else (value, None)


def _follower_result(shared: Result[T]) -> Result[T]:
    """What a caller that waited for another's computation got: a hit, unless the cache was
    bypassed (unavailable) or the leader could only serve a stale value."""
    return Result(shared.value, "hit" if shared.status in ("hit", "miss") else shared.status)


class ComputeOnce(GuardedClient):
    """get_or_set and fetch: stampede protection, stale-while-revalidate, bypass."""

    if TYPE_CHECKING:  # the cache API this stores through (core/_async/client.py)
        def set(self, key: str, value: Any, timeout: Any = DEFAULT, *,
                      stale_ttl: float | None = None, nx: bool = False,
                      xx: bool = False) -> bool: ...

    def get_or_set(self, key: str, compute: Callable[[], Any], timeout: Any = DEFAULT,
                         stale_ttl: float | None = None,
                         should_cache: Callable[[Any], bool] | None = None) -> Any:
        """The cached value, or ``compute()`` run once across callers and processes."""
        return (self.fetch(key, compute, timeout, stale_ttl, should_cache)).value

    def fetch(self, key: str, compute: Callable[[], Any], timeout: Any = DEFAULT,
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
            return (self._compute(key, compute, timeout, stale_ttl, should_cache))[0]
        tier = self._local_tier(local)
        elapsed: float | None = None
        entry: Entry | None = None
        if tier is not None:
            entry = self._accepted(self._local_entry(tier, fk), accept)
        else:
            raw, elapsed = self._timed_call("get", self.backend.get, fk)
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
                return (self._compute(key, compute, timeout, stale_ttl, should_cache))[0]
            return Result(entry.value, "hit")
        stale = entry
        flight, leader = self._flights.join(fk)
        if not leader:
            if stale is not None:
                self.metrics.count("stale")
                return Result(stale.value, "stale")
            if flight.wait(self.settings.LOCK_WAIT):
                return _follower_result(flight.value)
            value, _ = _unwrap(compute_value(compute))
            return Result(value, "miss", computed=True)
        try:
            result, shareable = self._lead(key, fk, compute, timeout, stale_ttl,
                                                 should_cache, stale, accept)
            if shareable:
                flight.resolve(result)
            return result
        finally:
            self._flights.leave(fk, flight)

    def _lead(self, key: str, fk: str, compute: Callable[[], Any], timeout: Any,
                    stale_ttl: float | None, should_cache: Callable[[Any], bool] | None,
                    stale: Entry | None,
                    accept: Callable[[Any], bool] | None) -> tuple[Result[Any], bool]:
        """The leader's result, and whether the callers waiting for it may have it."""
        if not self.available:
            return self._bypass(compute, should_cache)
        lock = self.backend.lock(self._lock_name(fk), self.settings.LOCK_TIMEOUT)
        wait = 0.0 if stale is not None else self.settings.LOCK_WAIT
        got: bool | Unavailable = self._call("lock", lock.acquire, True, wait)
        if got is UNAVAILABLE:
            return self._bypass(compute, should_cache)
        try:
            if not got:
                if stale is not None:
                    self.metrics.count("stale")
                    return Result(stale.value, "stale"), True
                self._lock_unavailable(fk)
            # Someone may have filled it while we waited for the lock (ask Redis itself).
            raw: bytes | Unavailable | None = self._call("get", self.backend.get, fk)
            seen = None if raw is UNAVAILABLE or self._owed(fk) else raw
            again = self._accepted(self._decode(fk, seen, drop=False), accept)
            if again is not None and self._fresh(again, self.clock()):
                return Result(again.value, "hit"), True
            # Stored only over what was just read: a value set, or a delete, landing while
            # this computes stands. A key owed a delete holds a retracted value: replaced.
            return self._compute(key, compute, timeout, stale_ttl, should_cache,
                                       over=MISSING if self._owed(fk) else seen)
        finally:
            if got is True:
                self._call("unlock", lock.release)

    def _bypass(self, compute: Callable[[], Any],
                      should_cache: Callable[[Any], bool] | None) -> tuple[Result[Any], bool]:
        """Compute without the cache (unavailable); shareable only if cacheable."""
        value, _ = _unwrap(compute_value(compute))
        return (Result(value, "bypass", computed=True),
                should_cache is None or should_cache(value))

    def _compute(self, key: str, compute: Callable[[], Any], timeout: Any,
                       stale_ttl: float | None,
                       should_cache: Callable[[Any], bool] | None,
                       over: bytes | object | None = MISSING) -> tuple[Result[Any], bool]:
        """Compute, and store the value if cacheable; (result, cacheable).

        ``over``: store only if the key still holds these bytes (None: only if absent);
        by default store whatever is there.
        """
        value, own_timeout = _unwrap(compute_value(compute))
        cacheable = should_cache is None or should_cache(value)
        if cacheable:
            wanted = timeout if own_timeout is None else own_timeout.timeout
            try:
                if over is MISSING:
                    self.set(key, value, wanted, stale_ttl=stale_ttl)
                else:
                    self._set_over(key, over, value, wanted, stale_ttl)
            except _UNSTORABLE as exc:
                self._not_stored(exc)
        return Result(value, "miss", computed=True), cacheable

    def _set_over(self, key: str, expected: Any, value: Any, timeout: Any,
                        stale_ttl: float | None) -> bool:
        """set(), only if ``key`` still holds ``expected`` (bytes; None: only if absent),
        checked by the server in the same step as the write."""
        fk = self.full_key(key)
        ttl = self._ttl(timeout)
        if ttl is not None and ttl <= 0:
            return self.set(key, value, timeout)  # deletes: as set() does
        fresh_until = None
        if stale_ttl and ttl is not None:
            fresh_until, ttl = self.clock() + ttl, ttl + stale_ttl
        data = self._encode(fk, value, fresh_until, ttl)

        def write() -> bool:
            if expected is None:
                return self.backend.set(fk, data, ttl, nx=True)
            swapped, _ = self._compare_and_set(fk, expected, data, ttl, False)
            return swapped

        ok: bool | Unavailable = self._call("set", write)
        return self._written(fk, ok)
