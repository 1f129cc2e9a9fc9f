# GENERATED from cachekit_web/core/_async/cluster.py by scripts/generate_sync.py.
# Do not edit: change the async source, then run `make generate`.
"""Redis Cluster backend on redis-py's RedisCluster.

redis-py owns the slot map, MOVED/ASK redirections and topology refresh. This
adds what a cache needs on top: multi-key operations sent as one pipeline per
node, a node that is down costing only its own keys (E013, the client's breaker
stays closed), and deletes aimed at a lost node remembered, read as misses, and
replayed when the node answers again or the slot map is reloaded (a promoted
replica may serve the old value meanwhile).

The async source; ``core/_sync/cluster.py`` is generated from it.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections.abc import Iterator, Callable, Mapping, Sequence
from typing import Any, cast

import redis

from ..backends.common import (
    CAS_SCRIPT,
    DELETE_IF_SCRIPT,
    INCR_SCRIPT,
    SWAP_SCRIPT,
    UPDATE_ATTEMPTS,
    cas_args,
    cas_result,
    incr_args,
    incr_result,
    info_subset,
    milliseconds,
    retry_policy,
    sent_once_command,
    translate,
    translated,
)
from ..backends.errors import CLUSTER_UNREACHABLE, NODE_DOWN, REDIS_ERRORS, REROUTE, UNREACHABLE
from ..backends.options import cluster_spec, node_options, opted_in
from ..backends.redispy import (
    Retry,
    close_client,
    node_client,
    open_cluster,
    unopened_cluster,
    sent_once,
)
from ..backends.routing import group_by_node, map_version, slot_owner
from ..backends.topology import (
    DeferredDeletes,
    DeferredReplay,
    NodeGuard,
    cmd,
    guard_interval,
    swap,
)
from ..errors import (
    BackendConnectionError,
    CachekitError,
    LockTimeoutError,
    NodeUnreachableError,
    UnsupportedOperationError,
)
from ..keys import escape_glob
from ..settings import Settings
from ..urls import redact_url
from .nodes import node_report
from .pending import batches, count_batches

# Seconds between slot-map reloads while a node is marked down (watching for a promotion).
_REFRESH = 0.1
# Multi-key commands of the collection family: how many leading arguments are keys (None: all).
_MULTI_KEY: dict[str, int | None] = {
    "sinter": None, "sunion": None, "sdiff": None, "sinterstore": None,
    "sunionstore": None, "sdiffstore": None, "smove": 2,
}


class ClusterBackend:
    """A Redis Cluster store: redis-py routes keys; multi-key calls are one pipeline per node."""

    def __init__(self, url: str, settings: Settings) -> None:
        self._url = redact_url(url)
        spec = cluster_spec(url)
        self._seeds = list(spec.hosts)
        self._node_options = node_options(settings, spec.tls)
        if spec.username:
            self._node_options["username"] = spec.username
        if spec.password:
            self._node_options["password"] = spec.password
        self.guard = NodeGuard(guard_interval(settings))
        self.deferred = DeferredDeletes(settings.PENDING_DELETES_MAX)
        # Lands deferred deletes the moment their node answers, calls or not; it holds
        # the backend weakly, so a backend dropped without close() ends it.
        ref = weakref.ref(self)
        self._replayer = DeferredReplay(
            self.deferred, self.guard, self._node_options, settings.PENDING_REPLAY_INTERVAL,
            cluster=lambda: getattr(ref(), "_rc", None),
            on_answer=lambda name: getattr(ref(), "_node_ok", _ignore)(name))
        # RETRIES means lost connections only, never a timeout, as on every backend.
        self._node_options["retry"] = retry_policy(settings, Retry)
        self._options: dict[str, Any] = {**self._node_options, "require_full_coverage": False}
        if settings.REPLICA_READS and opted_in(spec.query, "replica_reads"):
            self._options["load_balancing_strategy"] = (
                redis.cluster.LoadBalancingStrategy.ROUND_ROBIN)
        self._replay_at = 0.0
        self._map_seen = 0
        self._lock = threading.Lock()
        self._rc: Any = None
        self._raw: Any = None  # get_client() before the first call: a cluster client of its own
        self._cas: Any = None
        self._cas_ttl: Any = None
        self._incr: Any = None
        self._delete_if: Any = None
        self._node_clients: dict[str, Any] = {}
        # Set by the client: told when the slot map names a new owner (its breaker probes now).
        self.on_topology_change: Callable[[str], object] | None = None
        self._map_known = 0
        self._refresh_at = 0.0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._url}>"

    def describe(self) -> str:
        """Where the data lives, password redacted."""
        return self._url

    # -- plumbing ------------------------------------------------------------
    def cluster(self) -> Any:
        """The RedisCluster, built on first use so a cluster down at start-up fails open."""
        if self._rc is not None:
            return self._rc
        try:
            rc = open_cluster(self._seeds, self._options)
        except REDIS_ERRORS as exc:
            raise translate(exc) from None
        with self._lock:
            if self._rc is None:  # another caller may have won the race
                self._rc = rc
                self._cas = rc.register_script(SWAP_SCRIPT)
                self._cas_ttl = rc.register_script(CAS_SCRIPT)
                self._incr = rc.register_script(INCR_SCRIPT)
                self._delete_if = rc.register_script(DELETE_IF_SCRIPT)
                self._map_known = map_version(rc)
                return rc
        close_client(rc)
        return self._rc

    def _node_client(self, rc: Any, node: Any) -> Any:
        return node_client(rc, node, self._node_clients, self._node_options)

    def _unreachable(self, name: str, exc: BaseException) -> CachekitError:
        """E013 while other primaries answer; the plain error (trips the breaker) if none do."""
        self.guard.failed(name)
        if self._all_down(self.cluster()):
            return translate(exc)
        what = "reports the cluster down" if isinstance(exc, NODE_DOWN) else "unreachable"
        return NodeUnreachableError(f"cluster node {name} {what} ({type(exc).__name__})")

    def _all_down(self, rc: Any) -> bool:
        """Whether the guard marks every primary of the slot map unreachable."""
        primaries = [n.name for n in rc.get_primaries()]
        return bool(primaries) and all(self.guard.is_down(n) for n in primaries)

    def _held_back(self, rc: Any, what: str) -> CachekitError:
        """The error for a call the guard keeps from a node marked down: E013 while
        other primaries answer, E010 (trips the breaker) when none does."""
        if self._all_down(rc):
            return BackendConnectionError("every cluster primary is unreachable", code="E010")
        return NodeUnreachableError(what)

    def _cluster_lost(self, rc: Any, exc: BaseException) -> CachekitError:
        """redis-py reached no node at all (8.2+): every primary is down for the guard too,
        so the calls it holds back keep tripping the breaker instead of reading as E013."""
        for node in rc.get_primaries():
            self.guard.failed(node.name)
        return translate(exc)

    def _on_key(self, key: str, call: Callable[[Any], Any]) -> Any:
        """Run ``call(cluster)`` for a command on ``key``: the one boundary for a key's node."""
        rc = self.cluster()
        node = slot_owner(rc, key)
        self._maybe_replay()
        if self.guard.is_down(node.name) and self._refresh_map(rc):
            node = slot_owner(rc, key)  # a replica was promoted: its slots have a new owner
        if not self.guard.admit(node.name):
            raise self._held_back(rc, f"cluster node {node.name} is marked unreachable")
        try:
            result = call(rc)
        except (*UNREACHABLE, NODE_DOWN) as exc:
            raise self._unreachable(node.name, exc) from None
        except CLUSTER_UNREACHABLE as exc:
            raise self._cluster_lost(rc, exc) from None
        except REDIS_ERRORS as exc:
            raise translate(exc) from None
        self._node_ok(node.name)
        return result

    def watch_topology(self, on_change: Callable[[str], object]) -> None:
        """Call ``on_change`` whenever the slot map is reloaded (a promotion, a reshard):
        the client's breaker then probes at once."""
        self.on_topology_change = on_change

    def _refresh_map(self, rc: Any) -> bool:
        """While a node is down, reload the slot map (at most every REFRESH seconds) to see a
        promotion as soon as the cluster makes it; True if the map changed."""
        now = time.monotonic()
        if now >= self._refresh_at:
            self._refresh_at = now + _REFRESH
            with contextlib.suppress(*REDIS_ERRORS):
                rc.nodes_manager.initialize()
        return self._map_changed(rc)

    def _map_changed(self, rc: Any) -> bool:
        """Whether redis-py reloaded the slot map since last seen; tells the client if so."""
        version = map_version(rc)
        if version == self._map_known:
            return False
        self._map_known = version
        self._replay_at = 0.0  # deferred deletes may land on the new owners now
        if self.on_topology_change is not None:
            self.on_topology_change("cluster slot map reloaded")
        return True

    def _node_ok(self, name: str) -> None:
        if self.guard.ok(name) and self.deferred:
            self._replay_at = 0.0  # a node came back: replay remembered deletes now

    def _lost(self, name: str) -> None:
        """Mark a node unreachable and reload the slot map (a replica may own its slots now)."""
        self.guard.failed(name)
        rc = self.cluster()
        with contextlib.suppress(*REDIS_ERRORS):
            rc.nodes_manager.initialize()
        self._refresh_at = time.monotonic() + _REFRESH
        self._map_changed(rc)

    def _fan_out(
        self,
        keys: Sequence[str],
        queue: Callable[[Any, list[str]], int],
        accept: Callable[[list[int], list[Any]], None],
        again: Callable[[list[int]], Any],
        *,
        partial_ok: bool = False,
    ) -> list[int]:
        """Send one pipeline per node; returns the positions whose node could not be reached.

        ``queue(pipe, slot_keys)`` queues a slot's commands and says how many,
        ``accept(positions, replies)`` takes their replies, ``again(positions)``
        re-sends through redis-py's routing when the slot moved. Raises if no
        node could be reached, unless ``partial_ok`` (deletes: the caller defers them).
        """
        rc = self.cluster()
        groups, missed = group_by_node(rc, keys)
        if any(self.guard.is_down(n) for n in groups) and self._refresh_map(rc):
            groups, missed = group_by_node(rc, keys)  # a promotion moved the lost slots
        last: tuple[str, BaseException] | None = None
        reached = 0
        for name, (node, slots) in groups.items():
            positions = [i for p in slots.values() for i in p]
            if not self.guard.admit(name):
                missed.extend(positions)
                continue
            try:
                pipe = self._node_client(rc, node).pipeline(transaction=False)
                counts = [queue(pipe, [keys[i] for i in p]) for p in slots.values()]
                replies = pipe.execute(raise_on_error=False)
            except UNREACHABLE as exc:
                self._lost(name)
                missed.extend(positions)
                last = (name, exc)
                continue
            except REDIS_ERRORS as exc:
                raise translate(exc) from None
            down = next((r for r in replies if isinstance(r, NODE_DOWN)), None)
            if down is not None:
                self._lost(name)
                missed.extend(positions)
                last = (name, down)
                continue
            reached += 1
            self._node_ok(name)
            at = 0
            for slot_positions, n in zip(slots.values(), counts, strict=True):
                chunk = replies[at:at + n]
                at += n
                if any(isinstance(r, REROUTE) for r in chunk):
                    self._replay_at = 0.0  # the slot map changed: deferred deletes may land
                    again(slot_positions)
                    continue
                for r in chunk:
                    if isinstance(r, BaseException):
                        raise translate(r)
                accept(slot_positions, chunk)
        if not reached and last is not None:
            error = self._unreachable(*last)
            if not partial_ok or not isinstance(error, NodeUnreachableError):
                raise error
        if not reached and missed and not partial_ok:
            raise self._held_back(rc, "no reachable cluster node owns these keys")
        return missed

    def _routed(self, call: Callable[[Any], Any]) -> Any:
        rc = self.cluster()
        with translated():
            return call(rc)

    def _maybe_replay(self) -> None:
        """Re-send deletes that missed a lost node: once per guard interval, at once when
        a node answers again or the slot map was reloaded."""
        if not self.deferred:
            return
        version = map_version(self.cluster())
        now = time.monotonic()
        if now < self._replay_at and version == self._map_seen:
            return
        self._map_seen = version
        self._replay_at = now + self.guard.retry_after
        keys, prefixes = self.deferred.pending()
        for prefix in prefixes:
            with contextlib.suppress(CachekitError):
                _, complete = self._clear(prefix)
                if complete:
                    self.deferred.landed(prefixes=(prefix,))
        if keys:
            with contextlib.suppress(CachekitError):
                _, missed = self._delete_keys(keys, defer=False)
                lost = set(missed)
                self.deferred.landed(k for i, k in enumerate(keys) if i not in lost)

    # -- Backend protocol ------------------------------------------------------
    def get(self, key: str) -> bytes | None:
        self._maybe_replay()
        if self.deferred.covers(key):
            return None  # its delete has not landed: whatever a node holds may be stale
        return cast("bytes | None", self._on_key(key, cmd("get", key)))

    def get_with_ttl(self, key: str) -> tuple[bytes | None, int, str | None]:
        """GET and PTTL from the primary the slot map names for ``key``, redirections not
        followed, and that node's name: the in-process tier keeps the value only under
        that node's tracking link. A redirected key is read through the cluster (-2: keep
        nothing), which also reloads the slot map."""
        self._maybe_replay()
        if self.deferred.covers(key):
            return None, -2, None  # its delete has not landed: whatever a node holds may be stale
        rc = self.cluster()
        node = slot_owner(rc, key)

        def direct(_rc: Any) -> list[Any]:
            pipe = self._node_client(rc, node).pipeline(transaction=False)
            pipe.get(key)
            pipe.pttl(key)
            return cast("list[Any]", pipe.execute(raise_on_error=False))

        raw, ms = self._on_key(key, direct)
        if isinstance(raw, BaseException) or isinstance(ms, BaseException):  # MOVED, ASK
            return self.get(key), -2, None
        return raw, int(ms), str(node.name)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        self._maybe_replay()
        out: list[bytes | None] = [None] * len(keys)
        wanted = [i for i, k in enumerate(keys) if not self.deferred.covers(k)]
        asked = [keys[i] for i in wanted]

        def queue(pipe: Any, ks: list[str]) -> int:
            pipe.mget(ks)
            return 1

        def accept(positions: list[int], replies: list[Any]) -> None:
            for i, v in zip(positions, replies[0], strict=True):
                out[wanted[i]] = v

        def again(positions: list[int]) -> None:
            for i in positions:
                out[wanted[i]] = self._routed(cmd("get", asked[i]))

        if asked:
            self._fan_out(asked, queue, accept, again)
        return out

    def set(self, key: str, value: bytes, ttl: float | None, *, nx: bool = False,
                  xx: bool = False) -> bool:
        with self.deferred.writing((key,)):
            if nx or xx:
                self._settle(key)  # "absent" and "present" must not count a stale value
            with sent_once() if nx else contextlib.nullcontext():  # never re-sent: see redis
                stored = bool(self._on_key(key, cmd("set", key, value, px=milliseconds(ttl),
                                                          nx=nx, xx=xx)))
            if stored:
                self.deferred.discard((key,))  # a delete replayed later would erase this value
        return stored

    def set_many(self, items: Mapping[str, bytes], ttl: float | None) -> bool:
        if not items:
            return True
        self._maybe_replay()
        keys = list(items)
        px = milliseconds(ttl)

        def queue(pipe: Any, ks: list[str]) -> int:
            for k in ks:
                pipe.set(k, items[k], px=px)
            return len(ks)

        def again(positions: list[int]) -> None:
            for i in positions:
                self._routed(cmd("set", keys[i], items[keys[i]], px=px))

        # One SET per key, but still one pipeline (one round trip) per node.
        with self.deferred.writing(keys):
            missed = self._fan_out(keys, queue, lambda positions, replies: None, again)
            lost = set(missed)
            self.deferred.discard(k for i, k in enumerate(keys) if i not in lost)
        if missed:
            # Whatever those nodes hold now may be stale: delete it when they answer.
            self.deferred.add(keys[i] for i in missed)
            self._replayer.start()
            return False
        return True

    def delete(self, key: str) -> bool:
        return bool(self._on_key(key, cmd("delete", key)))

    def _delete_keys(self, keys: Sequence[str], *,
                           defer: bool = True) -> tuple[int, list[int]]:
        """Delete ``keys`` per node: how many existed, and the positions not reached
        (remembered for later if ``defer``)."""
        removed = [0]

        def queue(pipe: Any, ks: list[str]) -> int:
            pipe.delete(*ks)
            return 1

        def accept(positions: list[int], replies: list[Any]) -> None:
            removed[0] += int(replies[0])

        def again(positions: list[int]) -> None:
            for i in positions:
                removed[0] += int(self._routed(cmd("delete", keys[i])))

        missed = self._fan_out(keys, queue, accept, again, partial_ok=True)
        if missed and defer:
            self.deferred.add(keys[i] for i in missed)
            self._replayer.start()
        return removed[0], missed

    def delete_many(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        self._maybe_replay()
        removed, _ = self._delete_keys(list(keys))
        return removed

    def delete_if_equal(self, key: str, expected: bytes) -> bool:
        """Delete ``key`` on its node only if it still holds ``expected``."""
        if self.deferred.covers(key):
            return False  # its delete is owed already
        return bool(self._on_key(key, lambda _rc: self._delete_if(
            keys=[key], args=[expected])))

    def touch(self, key: str, ttl: float | None) -> bool:
        if self.deferred.covers(key):
            return False
        if ttl is None:
            if not self._on_key(key, cmd("exists", key)):
                return False
            self._on_key(key, cmd("persist", key))
            return True
        return bool(self._on_key(key, cmd("pexpire", key, milliseconds(ttl) or 1)))

    def ttl(self, key: str) -> float | None:
        if self.deferred.covers(key):
            return 0.0
        ms = int(self._on_key(key, cmd("pttl", key)))
        if ms == -1:
            return None
        return 0.0 if ms < 0 else ms / 1000.0

    def exists(self, key: str) -> bool:
        if self.deferred.covers(key):
            return False
        return bool(self._on_key(key, cmd("exists", key)))

    def _settle(self, key: str) -> None:
        """Land ``key``'s deferred delete now, before an operation that reads its old value."""
        if self.deferred.covers(key):
            self._on_key(key, cmd("delete", key))
            self.deferred.landed((key,))

    def incr(self, key: str, delta: int, default: int | None,
                   ttl: float | None) -> int | bytes | None:
        """INCRBY in one server-side step on the key's node (see AsyncRedisBackend.incr)."""
        with self.deferred.writing((key,)):
            self._settle(key)
            with sent_once():  # run twice, it would add twice
                reply = self._on_key(key, lambda _rc: self._incr(
                    keys=[key], args=incr_args(delta, default, ttl)))
        return incr_result(reply)

    def compare_and_set(self, key: str, expected: bytes, value: bytes, *,
                              ttl: float | None = None,
                              keep_ttl: bool = True) -> tuple[bool, bytes | None]:
        """Store ``value`` only if ``key`` still holds ``expected``; (swapped, current bytes)."""
        if self.deferred.covers(key):
            return False, None  # its delete has not landed: it holds nothing we may build on
        with sent_once():  # run twice, the second finds our bytes: "lost"
            reply = self._on_key(key, lambda _rc: self._cas_ttl(
                keys=[key], args=cas_args(expected, value, ttl, keep_ttl)))
        return cas_result(reply)

    def compare_and_set_many(self, items: Sequence[tuple[str, bytes, bytes]]) -> list[bool]:
        """For each (key, old, new): write ``new``, TTL kept, only if ``key`` still holds
        ``old``. One pipeline per node; an entry that changed, is owed a delete or whose
        node is unreachable is False, untouched."""
        if not items:
            return []
        self._maybe_replay()
        out = [False] * len(items)
        wanted = [i for i, (k, _, _) in enumerate(items) if not self.deferred.covers(k)]
        keys = [items[i][0] for i in wanted]
        rows = {k: items[i] for i, k in zip(wanted, keys, strict=True)}

        def queue(pipe: Any, ks: list[str]) -> int:
            for k in ks:
                _, old, new = rows[k]
                pipe.eval(SWAP_SCRIPT, 1, k, old, new)
            return len(ks)

        def accept(positions: list[int], replies: list[Any]) -> None:
            for i, r in zip(positions, replies, strict=True):
                out[wanted[i]] = r == 1

        def again(positions: list[int]) -> None:
            for i in positions:
                _, old, new = rows[keys[i]]
                out[wanted[i]] = bool(self._routed(swap(self._cas, keys[i], old, new)))

        if keys:
            self._fan_out(keys, queue, accept, again, partial_ok=True)
        return out

    def command(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Run one redis-py command method (sets, hashes, sorted sets) on its key's node.

        A multi-key command needs its keys in one slot (one {hash tag}): E069 otherwise.
        """
        if not args or not isinstance(args[0], str):
            raise UnsupportedOperationError(f"{name} without a key cannot run on a cluster")
        if name in _MULTI_KEY:
            n = _MULTI_KEY[name]
            keys = [a for a in (args if n is None else args[:n]) if isinstance(a, str)]
            rc = self.cluster()
            if len({rc.keyslot(k) for k in keys}) > 1:
                raise UnsupportedOperationError(
                    f"{name} on a Redis Cluster needs its keys in one hash slot: give them "
                    "a common {tag}, e.g. 'user:{42}:friends' and 'user:{42}:follows'",
                    code="E069")
        else:
            keys = [args[0]]
        with self.deferred.writing(keys):
            for k in keys:
                self._settle(k)
            with (sent_once() if sent_once_command(name, kwargs)
                  else contextlib.nullcontext()):
                return self._on_key(args[0], cmd(name, *args, **kwargs))

    @property
    def client(self) -> Any:
        """The redis-py cluster client, for commands this API lacks (raw: see get_client)."""
        if self._rc is not None:
            return self._rc
        if self._raw is None:
            with translated():
                self._raw = unopened_cluster(self._seeds, self._options)
        return self._raw

    def update(self, key: str, fn: Callable[[bytes], bytes]) -> bytes | None:
        for _ in range(UPDATE_ATTEMPTS):
            old = self.get(key)
            if old is None:
                return None
            new = fn(old)
            if self._on_key(key, swap(self._cas, key, old, new)):
                return new
        raise LockTimeoutError("too much contention on one key", code="E050")

    def scan_prefix(self, prefix: str, count: int = 1000) -> Any:
        """Yield the keys under ``prefix`` in batches, SCANning every primary."""
        return self.scan_match(escape_glob(prefix) + "*", count)

    def scan_match(self, match: str, count: int = 1000) -> Any:
        """Yield the keys matching the SCAN pattern ``match`` in batches, from every primary.

        A primary that cannot be reached is skipped (E013) while others answer;
        if none does, the error is raised.
        """
        return self._sweep(match, count)

    def count_prefix(self, prefix: str, limit: int) -> int:
        """How many keys lie under ``prefix`` on every primary, counting at most ``limit``."""
        return count_batches(self.scan_prefix(prefix), limit)

    def _clear(self, prefix: str) -> tuple[int, bool]:
        """Unlink every key under ``prefix``; also says whether every primary was reached."""
        rc = self.cluster()
        removed = 0

        def unlink(conn: Any, batch: list[bytes]) -> None:
            nonlocal removed
            removed += self._unlink_on(rc, conn, batch)

        tally = [0, 0]
        for _ in self._sweep(escape_glob(prefix) + "*", 1000, unlink, tally):
            pass
        return removed, tally[0] == tally[1]

    def _sweep(
            self, pattern: str, count: int,
            act: Callable[[Any, list[bytes]], None] | None = None,
            tally: list[int] | None = None) -> Iterator[list[bytes]]:
        """SCAN ``pattern`` on every primary the guard admits, in batches: yielded, or
        given to ``act(node client, batch)`` (its node errors count as that node's loss).

        A lost primary is skipped and recorded; if none answers, its error is raised.
        ``tally`` becomes [primaries reached, primaries].
        """
        rc = self.cluster()
        primaries = rc.get_primaries()
        last: tuple[str, BaseException] | None = None
        reached = 0
        for node in primaries:
            if not self.guard.admit(node.name):
                continue
            try:
                conn = self._node_client(rc, node)
                for batch in batches(conn.scan_iter(match=pattern, count=count)):
                    if act is None:
                        yield batch
                    else:
                        act(conn, batch)
            except UNREACHABLE as exc:
                self._lost(node.name)
                last = (node.name, exc)
                continue
            except REDIS_ERRORS as exc:
                raise translate(exc) from None
            reached += 1
            self._node_ok(node.name)
        if tally is not None:
            tally[:] = [reached, len(primaries)]
        if primaries and not reached and last is not None:
            raise self._unreachable(*last)

    def delete_prefix(self, prefix: str) -> int:
        """SCAN every primary for ``prefix`` and unlink per slot; lost nodes are done later."""
        removed, complete = self._clear(prefix)
        if not complete:
            self.deferred.add_prefix(prefix)
            self._replayer.start()
        return removed

    def _unlink_on(self, rc: Any, conn: Any, keys: list[bytes]) -> int:
        by_slot: dict[int, list[bytes]] = {}
        for k in keys:
            by_slot.setdefault(rc.keyslot(k), []).append(k)
        pipe = conn.pipeline(transaction=False)
        for ks in by_slot.values():
            pipe.unlink(*ks)
        return sum(int(n) for n in pipe.execute(raise_on_error=False)
                   if not isinstance(n, BaseException))

    def lock(self, name: str, timeout: float | None, *, sleep: float = 0.01,
             thread_local: bool = False) -> _ClusterLock:
        """A lock on the key's node; the client names it (core.backends.lock_key) in its
        value's slot."""
        return _ClusterLock(self, name, timeout, sleep, thread_local)

    def ping(self) -> float:
        """Latency of the slowest reachable primary; raises only if none answers."""
        rc = self.cluster()
        worst: float | None = None
        error: BaseException | None = None
        for node in rc.get_primaries():
            start = time.perf_counter()
            try:
                self._node_client(rc, node).ping()
            except REDIS_ERRORS as exc:
                error = exc
                continue
            took = time.perf_counter() - start
            worst = took if worst is None else max(worst, took)
        if worst is None:
            raise translate(error) if error else BackendConnectionError(
                "no cluster primary known", code="E010")
        return worst

    def info(self) -> dict[str, Any]:
        """INFO of the first reachable primary, plus the node count."""
        rc = self.cluster()
        out: dict[str, Any] = {"topology": "cluster"}
        for node in rc.get_primaries():
            with contextlib.suppress(*REDIS_ERRORS):
                out.update(info_subset(self._node_client(rc, node).info()))
                break
        out["cluster_nodes"] = len(rc.get_nodes())
        return out

    def nodes(self) -> list[dict[str, Any]]:
        """Every known node with its role, latency, memory and reachability."""
        rc = self.cluster()
        out = []
        for node in sorted(rc.get_nodes(), key=lambda n: (n.server_type != "primary", n.name)):
            out.append(node_report(node.name, node.server_type or "?",
                                               self._node_client(rc, node),
                                               down=self.guard.is_down(node.name)))
        return out

    def close(self) -> None:
        self._replayer.stop()
        for client in self._node_clients.values():
            close_client(client)
        if self._rc is not None:
            close_client(self._rc)
        if self._raw is not None:
            close_client(self._raw)


def _ignore(name: str) -> None:
    """on_answer once the backend is gone."""


class _ClusterLock:
    """redis-py's Lock on the cluster, run through the backend's node guard and error
    boundary, with AsyncTranslatedLock's answers (False when no longer held)."""

    def __init__(self, backend: ClusterBackend, name: str, timeout: float | None,
                 sleep: float, thread_local: bool) -> None:
        self._backend = backend
        self._name = name
        self._args = (timeout, sleep, thread_local)
        self._inner: Any = None

    def _run(self, op: Callable[[Any], Any]) -> bool:
        def call(rc: Any) -> bool:
            if self._inner is None:
                timeout, sleep, thread_local = self._args
                self._inner = rc.lock(self._name, timeout=timeout, sleep=sleep,
                                      thread_local=thread_local)
            try:
                return bool(op(self._inner))
            except redis.exceptions.LockError:
                return False  # expired or taken over: not ours any more

        return bool(self._backend._on_key(self._name, call))

    def acquire(self, blocking: bool = True, blocking_timeout: float | None = None) -> bool:
        """Take the lock; False if not acquired in time."""
        return self._run(lambda lk: lk.acquire(blocking=blocking,
                                                     blocking_timeout=blocking_timeout))

    def release(self) -> bool:
        """Give the lock back; False if it was no longer held."""
        if self._inner is None:
            return False

        def give(lk: Any) -> bool:
            lk.release()
            return True

        return self._run(give)

    def extend(self, additional_time: float, replace_ttl: bool = False) -> bool:
        """Add time to a held lock (or set it, with replace_ttl); False if not held."""
        return self._run(lambda lk: lk.extend(additional_time, replace_ttl))

    def reacquire(self) -> bool:
        """Reset a held lock's TTL to its timeout; False if not held."""
        return self._run(lambda lk: lk.reacquire())

    def locked(self) -> bool:
        """Whether anyone holds the lock."""
        return self._run(lambda lk: lk.locked())

    def owned(self) -> bool:
        """Whether this lock object holds it."""
        return self._run(lambda lk: lk.owned())
