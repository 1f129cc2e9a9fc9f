# GENERATED from cachekit_web/core/_async/keyspace.py by scripts/generate_sync.py.
# Do not edit: change the async source, then run `make generate`.
"""The django-redis extras: expiry in its several spellings, and keys of this namespace.

A mixin of the cache client. This is the async source; ``core/_sync/keyspace.py`` is
generated from it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..results import DEFAULT, UNAVAILABLE, Deferred, Unavailable
from .calls import GuardedClient

_COLLECTIONS = (b"set", b"hash", b"zset", "set", "hash", "zset")  # TYPE replies


class Keyspace(GuardedClient):
    """Expiry (pttl, expire, persist...) and namespace listing (iter_keys, delete_pattern)."""

    if TYPE_CHECKING:  # the cache API these build on (core/_async/client.py)
        def ttl(self, key: str) -> float | None: ...

        def touch(self, key: str, timeout: Any = DEFAULT) -> bool: ...

        def delete(self, key: str) -> bool | Deferred: ...

    # -- expiry (django-redis names) ------------------------------------------
    def pttl(self, key: str) -> int | None:
        """Milliseconds left; None for no expiry; 0 for missing. Fail-open answer: 0."""
        left = self.ttl(key)
        return None if left is None else round(left * 1000)

    def expire(self, key: str, timeout: float) -> bool:
        """Give ``key`` ``timeout`` seconds to live (<= 0 deletes it); False if missing.

        The value is re-sealed with its new expiry when it carries one. Fail-open answer:
        False.
        """
        if timeout <= 0:
            return self.delete(key) is True
        return self._expire(key, timeout)

    def _expire(self, key: str, ttl: float | None) -> bool:
        """touch() for values; a plain PEXPIRE/PERSIST for sets, hashes and sorted sets
        (a collection carries no sealed expiry, and GET of one is a wrong-type error)."""
        if getattr(self.backend, "command", None) is not None:
            kind = self._read(key, b"none", "type")
            if kind in _COLLECTIONS:
                if ttl is None:
                    return bool(self._read(key, False, "persist"))
                return bool(self._read(key, False, "pexpire", max(1, round(ttl * 1000))))
        return self.touch(key, ttl)

    def pexpire(self, key: str, timeout_ms: int) -> bool:
        """expire() in milliseconds. Fail-open answer: False."""
        return self.expire(key, timeout_ms / 1000)

    def expire_at(self, key: str, when: datetime | float) -> bool:
        """Expire ``key`` at ``when`` (a datetime or Unix seconds). Fail-open answer: False."""
        at = when.timestamp() if isinstance(when, datetime) else float(when)
        return self.expire(key, at - self.clock())

    def pexpire_at(self, key: str, when: datetime | int) -> bool:
        """expire_at() with Unix milliseconds (or a datetime). Fail-open answer: False."""
        return self.expire_at(key, when if isinstance(when, datetime) else when / 1000)

    def persist(self, key: str) -> bool:
        """Remove ``key``'s expiry; False if missing. Fail-open answer: False."""
        return self._expire(key, None)

    # -- keys in this namespace ----------------------------------------------
    def iter_keys(self, pattern: str = "*", itersize: int | None = None
                        ) -> Iterator[str]:
        """Yield this namespace's keys matching the Redis glob ``pattern`` (SCAN, lazily).

        The pattern only matches after the namespace prefix, so no other namespace's key
        (nor an internal lock key) is ever listed. Fail-open answer: nothing.
        """
        scan = self._require("scan_match", "iter_keys")
        batches = scan(self._match(pattern), itersize or 1000)
        cut = len(self._prefix)
        while True:
            try:
                batch: list[bytes] | Unavailable = self._call("keys", batches.__next__)
            except StopIteration:
                return
            if batch is UNAVAILABLE:
                return
            for k in batch:
                yield k.decode("utf-8", "surrogateescape")[cut:]

    def keys(self, pattern: str = "*") -> list[str]:
        """This namespace's keys matching ``pattern`` (see iter_keys). Fail-open: []."""
        return [k for k in self.iter_keys(pattern)]

    def delete_pattern(self, pattern: str, itersize: int | None = None) -> int:
        """Delete this namespace's keys matching ``pattern``; how many were deleted.

        Fail-open answer: 0, and the whole namespace is cleared once Redis answers (a
        pattern cannot be replayed key by key, and a lost invalidation would serve
        stale values).
        """
        scan = self._require("scan_match", "delete_pattern")
        match = self._match(pattern)

        def run() -> int:
            removed = 0
            for batch in scan(match, itersize or 1000):
                removed += self.backend.delete_many([k.decode("utf-8", "surrogateescape")
                                                           for k in batch])
            return removed

        n: int | Unavailable = self._call("delete_pattern", run)
        self._local_flush()  # which keys matched is not kept: drop them all
        if n is UNAVAILABLE:
            self.pending.clear_all()
            self._deferred("delete_pattern", 1)
            return 0
        self.metrics.count("deletes", int(n))
        return int(n)
