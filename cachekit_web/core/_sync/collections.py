# GENERATED from cachekit_web/core/_async/collections.py by scripts/generate_sync.py.
# Do not edit: change the async source, then run `make generate`.
"""Sets, hashes and sorted sets: members sealed deterministically, hash values as frames.

A mixin of the cache client. This is the async source; ``core/_sync/collections.py``
is generated from it.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterator, Mapping
from typing import Any

from ..engine import MISSING
from ..keys import redis_glob
from .calls import GuardedClient


class Collections(GuardedClient):
    """The client's set, hash and sorted-set commands (Redis names, fail-open answers)."""

    # -- sets ----------------------------------------------------------------
    def sadd(self, key: str, *members: Any) -> int:
        """Add members to a set; how many were new. Fail-open answer: 0."""
        return int(self._write(key, 0, "sadd", *self._members_in(members)))

    def srem(self, key: str, *members: Any) -> int:
        """Remove members from a set; how many were there. Fail-open answer: 0."""
        return int(self._write(key, 0, "srem", *self._members_in(members)))

    def smembers(self, key: str) -> builtins.set[Any]:
        """Every member of a set. Fail-open answer: an empty set."""
        return builtins.set(self._members_out(self._read(key, [], "smembers")))

    def sismember(self, key: str, member: Any) -> bool:
        """Whether ``member`` is in the set. Fail-open answer: False."""
        return bool(self._read(key, False, "sismember", self.codec.pack_member(member)))

    def smismember(self, key: str, *members: Any) -> list[bool]:
        """For each member, whether it is in the set. Fail-open answer: all False."""
        got = self._read(key, [0] * len(members), "smismember",
                               self._members_in(members))
        return [bool(x) for x in got]

    def scard(self, key: str) -> int:
        """How many members the set has. Fail-open answer: 0."""
        return int(self._read(key, 0, "scard"))

    def sinter(self, *keys: str) -> builtins.set[Any]:
        """The members every set has. Fail-open answer: an empty set."""
        return builtins.set(self._members_out(self._multi(keys, [], "sinter")))

    def sunion(self, *keys: str) -> builtins.set[Any]:
        """The members any set has. Fail-open answer: an empty set."""
        return builtins.set(self._members_out(self._multi(keys, [], "sunion")))

    def sdiff(self, *keys: str) -> builtins.set[Any]:
        """The first set's members that no other set has. Fail-open answer: an empty set."""
        return builtins.set(self._members_out(self._multi(keys, [], "sdiff")))

    def sinterstore(self, dest: str, *keys: str) -> int:
        """Store sinter(*keys) in ``dest``; its size. Fail-open answer: 0."""
        return self._multi_store(dest, keys, "sinterstore")

    def sunionstore(self, dest: str, *keys: str) -> int:
        """Store sunion(*keys) in ``dest``; its size. Fail-open answer: 0."""
        return self._multi_store(dest, keys, "sunionstore")

    def sdiffstore(self, dest: str, *keys: str) -> int:
        """Store sdiff(*keys) in ``dest``; its size. Fail-open answer: 0."""
        return self._multi_store(dest, keys, "sdiffstore")

    def smove(self, source: str, destination: str, member: Any) -> bool:
        """Move ``member`` from one set to another; False if it was not in ``source``.

        Fail-open answer: False."""
        src, dst = self.full_key(source), self.full_key(destination)
        got = self._guarded("smove", (src, dst), False, "smove", src, dst,
                                  self.codec.pack_member(member))
        return bool(got)

    def spop(self, key: str, count: int | None = None) -> Any:
        """Remove and return a random member (None if empty), or a set of ``count``.

        Fail-open answer: None (an empty set with ``count``)."""
        got = self._write(key, None, "spop", count)
        return self._popped(got, count, builtins.set)

    def srandmember(self, key: str, count: int | None = None) -> Any:
        """A random member (None if empty), or a list of ``count`` (negative: may repeat).

        Fail-open answer: None (an empty list with ``count``)."""
        got = self._read(key, None, "srandmember", count)
        return self._popped(got, count, list)

    def sscan(self, key: str, match: str | None = None, count: int = 10) -> builtins.set[Any]:
        """The set's members, read with SSCAN. Fail-open answer: an empty set.

        ``match`` filters the decoded members with a Redis glob (members are sealed, so
        Redis cannot match them itself).
        """
        return {m for m in self.sscan_iter(key, match, count)}

    def sscan_iter(self, key: str, match: str | None = None, count: int = 10
                         ) -> Iterator[Any]:
        """Yield the set's members with SSCAN (see sscan). Fail-open answer: nothing."""
        fk = self.full_key(key)
        keep = None if match is None else re.compile(redis_glob(match), re.DOTALL)
        cursor = 0
        while True:
            got = self._guarded("sscan", (fk,), None, "sscan", fk, cursor, None, count)
            if got is None:
                return
            cursor, raws = got
            for m in self._members_out(raws):
                if keep is None or (isinstance(m, str) and keep.match(m)):
                    yield m
            if not cursor:
                return

    # -- hashes --------------------------------------------------------------
    def hset(self, key: str, field: Any, value: Any = None, *,
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
        return int(self._write(key, 0, "hset", mapping=encoded))

    def hget(self, key: str, field: Any, default: Any = None) -> Any:
        """A hash field's value, or ``default``. Fail-open answer: ``default``."""
        fk = self.full_key(key)
        fb = self.codec.pack_member(field)
        raw = self._read(key, None, "hget", fb)
        return default if raw is None else self._open_field(fk, fb, raw, default)

    def hmget(self, key: str, *fields: Any) -> list[Any]:
        """Several fields' values (None where absent). Fail-open answer: all None."""
        fk = self.full_key(key)
        fbs = self._members_in(fields)
        raws = self._read(key, [None] * len(fbs), "hmget", fbs)
        return [None if r is None else self._open_field(fk, fb, r, None)
                for fb, r in zip(fbs, raws, strict=True)]

    def hgetall(self, key: str) -> dict[Any, Any]:
        """The whole hash. Fail-open answer: {}."""
        fk = self.full_key(key)
        raw = self._read(key, {}, "hgetall")
        out: dict[Any, Any] = {}
        for fb, r in raw.items():
            f = self._member_out(fb)
            v = self._open_field(fk, fb, r, MISSING)
            if f is not MISSING and v is not MISSING:
                out[f] = v
        return out

    def hdel(self, key: str, *fields: Any) -> int:
        """Delete hash fields; how many existed. Fail-open answer: 0."""
        return int(self._write(key, 0, "hdel", *self._members_in(fields)))

    def hlen(self, key: str) -> int:
        """How many fields the hash has. Fail-open answer: 0."""
        return int(self._read(key, 0, "hlen"))

    def hkeys(self, key: str) -> list[Any]:
        """The hash's fields. Fail-open answer: []."""
        return self._members_out(self._read(key, [], "hkeys"))

    def hexists(self, key: str, field: Any) -> bool:
        """Whether the hash has ``field``. Fail-open answer: False."""
        return bool(self._read(key, False, "hexists", self.codec.pack_member(field)))

    # -- sorted sets ---------------------------------------------------------
    def zadd(self, key: str, mapping: Mapping[Any, float], nx: bool = False,
                   xx: bool = False, ch: bool = False, incr: bool = False, gt: bool = False,
                   lt: bool = False) -> Any:
        """Add members with scores (scores stay numbers); how many were added (or changed,
        with ``ch``; the new score with ``incr``). Fail-open answer: 0 (None with incr)."""
        encoded = {self.codec.pack_member(m): float(s) for m, s in mapping.items()}
        got = self._write(key, None if incr else 0, "zadd", encoded, nx=nx, xx=xx, ch=ch,
                                incr=incr, gt=gt, lt=lt)
        return got if incr else int(got)

    def zrem(self, key: str, *members: Any) -> int:
        """Remove members; how many were there. Fail-open answer: 0."""
        return int(self._write(key, 0, "zrem", *self._members_in(members)))

    def zincrby(self, key: str, amount: float, member: Any) -> float | None:
        """Add ``amount`` to ``member``'s score; the new score. Fail-open answer: None."""
        got = self._write(key, None, "zincrby", amount, self.codec.pack_member(member))
        return None if got is None else float(got)

    def zscore(self, key: str, member: Any) -> float | None:
        """``member``'s score, None if absent. Fail-open answer: None."""
        got = self._read(key, None, "zscore", self.codec.pack_member(member))
        return None if got is None else float(got)

    def zmscore(self, key: str, *members: Any) -> list[float | None]:
        """Scores of several members (None where absent). Fail-open answer: all None."""
        got = self._read(key, [None] * len(members), "zmscore", self._members_in(members))
        return [None if g is None else float(g) for g in got]

    def zrank(self, key: str, member: Any) -> int | None:
        """``member``'s rank by ascending score, None if absent. Fail-open answer: None."""
        return self._read(key, None, "zrank", self.codec.pack_member(member))  # type: ignore[no-any-return]

    def zrevrank(self, key: str, member: Any) -> int | None:
        """``member``'s rank by descending score, None if absent. Fail-open answer: None."""
        return self._read(key, None, "zrevrank", self.codec.pack_member(member))  # type: ignore[no-any-return]

    def zcard(self, key: str) -> int:
        """How many members the sorted set has. Fail-open answer: 0."""
        return int(self._read(key, 0, "zcard"))

    def zcount(self, key: str, min: float | str, max: float | str) -> int:
        """How many members score within [min, max]. Fail-open answer: 0."""
        return int(self._read(key, 0, "zcount", min, max))

    def zrange(self, key: str, start: int, end: int, desc: bool = False,
                     withscores: bool = False) -> list[Any]:
        """Members by rank (with their scores as (member, score) pairs). Fail-open: []."""
        got = self._read(key, [], "zrange", start, end, desc=desc, withscores=withscores)
        return self._ranked(got, withscores)

    def zrevrange(self, key: str, start: int, end: int,
                        withscores: bool = False) -> list[Any]:
        """zrange by descending score. Fail-open answer: []."""
        return self.zrange(key, start, end, desc=True, withscores=withscores)

    def zrangebyscore(self, key: str, min: float | str, max: float | str,
                            start: int | None = None, num: int | None = None,
                            withscores: bool = False) -> list[Any]:
        """Members scoring within [min, max], ascending. Fail-open answer: []."""
        got = self._read(key, [], "zrangebyscore", min, max, start=start, num=num,
                               withscores=withscores)
        return self._ranked(got, withscores)

    def zrevrangebyscore(self, key: str, max: float | str, min: float | str,
                               start: int | None = None, num: int | None = None,
                               withscores: bool = False) -> list[Any]:
        """Members scoring within [min, max], descending. Fail-open answer: []."""
        got = self._read(key, [], "zrevrangebyscore", max, min, start=start, num=num,
                               withscores=withscores)
        return self._ranked(got, withscores)

    def zremrangebyscore(self, key: str, min: float | str, max: float | str) -> int:
        """Remove members scoring within [min, max]; how many. Fail-open answer: 0."""
        return int(self._write(key, 0, "zremrangebyscore", min, max))

    def zremrangebyrank(self, key: str, start: int, end: int) -> int:
        """Remove members ranked within [start, end]; how many. Fail-open answer: 0."""
        return int(self._write(key, 0, "zremrangebyrank", start, end))

    def zpopmin(self, key: str, count: int | None = None) -> Any:
        """Remove and return the lowest-scored (member, score), None if empty; a list of
        ``count`` pairs when given. Fail-open answer: None ([] with ``count``)."""
        return self._pops(self._write(key, [], "zpopmin", count), count)

    def zpopmax(self, key: str, count: int | None = None) -> Any:
        """zpopmin for the highest scores. Fail-open answer: None ([] with ``count``)."""
        return self._pops(self._write(key, [], "zpopmax", count), count)

    # -- collection plumbing ---------------------------------------------------
    def _multi(self, keys: tuple[str, ...], fallback: Any, method: str) -> Any:
        fks = tuple(self.full_key(k) for k in keys)
        return self._guarded(method, fks, fallback, method, *fks)

    def _multi_store(self, dest: str, keys: tuple[str, ...], method: str) -> int:
        fks = (self.full_key(dest), *(self.full_key(k) for k in keys))
        return int(self._guarded(method, fks[:1], 0, method, *fks, write=True))
