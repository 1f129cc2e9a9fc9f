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
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import redis

from ..backends import redact_url
from ..backends.common import (
    _SCAN_BATCH,
    _UPDATE_ATTEMPTS,
    _escape_glob,
    _info_subset,
    _ms,
    retry_policy,
    translate,
    translated,
)
from ..backends.redispy import Retry, node_client, open_cluster
from ..backends.topology import (
    CAS_SCRIPT,
    NODE_DOWN,
    REDIS_ERRORS,
    REROUTE,
    UNREACHABLE,
    DeferredDeletes,
    NodeGuard,
    cluster_spec,
    cmd,
    group_by_node,
    guard_interval,
    map_version,
    node_options,
    opted_in,
    slot_owner,
    swap,
)
from ..errors import (
    BackendConnectionError,
    CachekitError,
    LockTimeoutError,
    NodeUnreachableError,
)
from ..settings import Settings
from .nodes import node_report


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
        # RETRIES means lost connections only, never a timeout, as on every backend.
        self._node_options["retry"] = retry_policy(settings, Retry)
        self._options = {
            **self._node_options,
            "require_full_coverage": False,
            "load_balancing_strategy": (
                redis.cluster.LoadBalancingStrategy.ROUND_ROBIN
                if settings.REPLICA_READS and opted_in(spec.query, "replica_reads") else None),
        }
        self.guard = NodeGuard(guard_interval(settings))
        self.deferred = DeferredDeletes(settings.PENDING_DELETES_MAX)
        self._replay_at = 0.0
        self._map_seen = 0
        self._lock = threading.Lock()
        self._rc: Any = None
        self._cas: Any = None
        self._node_clients: dict[str, Any] = {}

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
                self._cas = rc.register_script(CAS_SCRIPT)
                return rc
        rc.close()
        return self._rc

    def _node_client(self, rc: Any, node: Any) -> Any:
        return node_client(rc, node, self._node_clients, self._node_options)

    def _unreachable(self, name: str, exc: BaseException) -> CachekitError:
        """E013 while other primaries answer; the plain error (trips the breaker) if none do."""
        self.guard.failed(name)
        primaries = [n.name for n in (self.cluster()).get_primaries()]
        if primaries and all(self.guard.is_down(n) for n in primaries):
            return translate(exc)
        what = "reports the cluster down" if isinstance(exc, NODE_DOWN) else "unreachable"
        return NodeUnreachableError(f"cluster node {name} {what} ({type(exc).__name__})")

    def _on_key(self, key: str, call: Callable[[Any], Any]) -> Any:
        """Run ``call(cluster)`` for a command on ``key``: the one boundary for a key's node."""
        rc = self.cluster()
        node = slot_owner(rc, key)
        self._maybe_replay()
        if not self.guard.admit(node.name):
            raise NodeUnreachableError(f"cluster node {node.name} is marked unreachable")
        try:
            result = call(rc)
        except (*UNREACHABLE, NODE_DOWN) as exc:
            raise self._unreachable(node.name, exc) from None
        except REDIS_ERRORS as exc:
            raise translate(exc) from None
        self._node_ok(node.name)
        return result

    def _node_ok(self, name: str) -> None:
        if self.guard.ok(name) and self.deferred:
            self._replay_at = 0.0  # a node came back: replay remembered deletes now

    def _lost(self, name: str) -> None:
        """Mark a node unreachable and reload the slot map (a replica may own its slots now)."""
        self.guard.failed(name)
        with contextlib.suppress(*REDIS_ERRORS):
            (self.cluster()).nodes_manager.initialize()

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
            raise NodeUnreachableError("no reachable cluster node owns these keys")
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

    def set(self, key: str, value: bytes, ttl: float | None, *, nx: bool = False) -> bool:
        stored = bool(self._on_key(key, cmd("set", key, value, px=_ms(ttl), nx=nx)))
        if stored:
            self.deferred.discard((key,))  # a delete replayed later would erase this value
        return stored

    def set_many(self, items: Mapping[str, bytes], ttl: float | None) -> bool:
        if not items:
            return True
        self._maybe_replay()
        keys = list(items)
        px = _ms(ttl)

        def queue(pipe: Any, ks: list[str]) -> int:
            for k in ks:
                pipe.set(k, items[k], px=px)
            return len(ks)

        def again(positions: list[int]) -> None:
            for i in positions:
                self._routed(cmd("set", keys[i], items[keys[i]], px=px))

        # One SET per key, but still one pipeline (one round trip) per node.
        missed = self._fan_out(keys, queue, lambda positions, replies: None, again)
        lost = set(missed)
        self.deferred.discard(k for i, k in enumerate(keys) if i not in lost)
        if missed:
            # Whatever those nodes hold now may be stale: delete it when they answer.
            self.deferred.add(keys[i] for i in missed)
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
        return removed[0], missed

    def delete_many(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        self._maybe_replay()
        removed, _ = self._delete_keys(list(keys))
        return removed

    def touch(self, key: str, ttl: float | None) -> bool:
        if self.deferred.covers(key):
            return False
        if ttl is None:
            if not self._on_key(key, cmd("exists", key)):
                return False
            self._on_key(key, cmd("persist", key))
            return True
        return bool(self._on_key(key, cmd("pexpire", key, _ms(ttl) or 1)))

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

    def update(self, key: str, fn: Callable[[bytes], bytes]) -> bytes | None:
        for _ in range(_UPDATE_ATTEMPTS):
            old = self.get(key)
            if old is None:
                return None
            new = fn(old)
            if self._on_key(key, swap(self._cas, key, old, new)):
                return new
        raise LockTimeoutError("too much contention on one key", code="E050")

    def scan_prefix(self, prefix: str, count: int = 1000) -> Any:
        """Yield the keys under ``prefix`` in batches, SCANning every primary.

        A primary that cannot be reached is skipped (E013) while others answer;
        if none does, the error is raised.
        """
        rc = self.cluster()
        pattern = _escape_glob(prefix) + "*"
        primaries = rc.get_primaries()
        last: tuple[str, BaseException] | None = None
        reached = 0
        for node in primaries:
            if not self.guard.admit(node.name):
                continue
            batch: list[bytes] = []
            try:
                for k in self._node_client(rc, node).scan_iter(match=pattern,
                                                                     count=count):
                    batch.append(k)
                    if len(batch) >= _SCAN_BATCH:
                        yield batch
                        batch = []
            except UNREACHABLE as exc:
                self._lost(node.name)
                last = (node.name, exc)
                continue
            except REDIS_ERRORS as exc:
                raise translate(exc) from None
            if batch:
                yield batch
            reached += 1
            self._node_ok(node.name)
        if primaries and not reached and last is not None:
            raise self._unreachable(*last)

    def count_prefix(self, prefix: str, limit: int) -> int:
        """How many keys lie under ``prefix`` on every primary, counting at most ``limit``."""
        n = 0
        for batch in self.scan_prefix(prefix):
            n += len(batch)
            if n >= limit:
                return limit
        return n

    def _clear(self, prefix: str) -> tuple[int, bool]:
        """Unlink every key under ``prefix``; also says whether every primary was reached."""
        rc = self.cluster()
        pattern = _escape_glob(prefix) + "*"
        removed = reached = 0
        primaries = rc.get_primaries()
        last: tuple[str, BaseException] | None = None
        for node in primaries:
            if not self.guard.admit(node.name):
                continue
            conn = self._node_client(rc, node)
            try:
                batch: list[bytes] = []
                for k in conn.scan_iter(match=pattern, count=1000):
                    batch.append(k)
                    if len(batch) >= _SCAN_BATCH:
                        removed += self._unlink_on(rc, conn, batch)
                        batch = []
                if batch:
                    removed += self._unlink_on(rc, conn, batch)
            except UNREACHABLE as exc:
                self._lost(node.name)
                last = (node.name, exc)
                continue
            except REDIS_ERRORS as exc:
                raise translate(exc) from None
            reached += 1
            self._node_ok(node.name)
        if primaries and not reached and last is not None:
            raise self._unreachable(*last)
        return removed, reached == len(primaries)

    def delete_prefix(self, prefix: str) -> int:
        """SCAN every primary for ``prefix`` and unlink per slot; lost nodes are done later."""
        removed, complete = self._clear(prefix)
        if not complete:
            self.deferred.add_prefix(prefix)
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

    def lock(self, name: str, timeout: float) -> _ClusterLock:
        """A lock; the client names it (core.backends.lock_key) in its value's slot."""
        return _ClusterLock(self, name, timeout)

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
                out.update(_info_subset(self._node_client(rc, node).info()))
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
        for client in self._node_clients.values():
            client.close()
        if self._rc is not None:
            self._rc.close()


class _ClusterLock:
    """redis-py's Lock, run through the backend's node guard and error boundary."""

    def __init__(self, backend: ClusterBackend, name: str, timeout: float) -> None:
        self._backend = backend
        self._name = name
        self._timeout = timeout
        self._inner: Any = None

    def acquire(self, blocking: bool = True, blocking_timeout: float | None = None) -> bool:
        def take(rc: Any) -> bool:
            self._inner = rc.lock(self._name, timeout=self._timeout, sleep=0.01,
                                  thread_local=False)
            return bool(self._inner.acquire(blocking=blocking,
                                                  blocking_timeout=blocking_timeout))

        return bool(self._backend._on_key(self._name, take))

    def release(self) -> None:
        if self._inner is None:
            return
        inner = self._inner

        def give(rc: Any) -> None:
            with contextlib.suppress(redis.exceptions.LockError):
                inner.release()  # expired or taken over: nothing of ours to release

        self._backend._on_key(self._name, give)
