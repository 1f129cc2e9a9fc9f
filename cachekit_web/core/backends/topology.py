"""What the Cluster and Sentinel backends share about their nodes, in both flavours.

The node guard, deletes deferred for a lost node, and the shape of one node's
health entry (URLs and options are in ``options``, slot routing in ``routing``,
recent invalidations in ``recent``). The I/O lives once, in
``core/_async/{cluster,sentinel,nodes}.py``, except for two background threads on
plain sync connections (so they serve both flavours): the Sentinel watch and the
replay of deferred cluster deletes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..errors import NodeUnreachableError
from ..keys import escape_glob
from ..resilience.worker import ProcessThread
from ..settings import Settings
from .common import SCAN_BATCH
from .errors import REDIS_ERRORS, ConnectRefused
from .routing import group_by_node

log = logging.getLogger("cachekit_web")

def cmd(name: str, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
    """A call of command ``name`` on whichever client it is given."""
    return lambda client: getattr(client, name)(*args, **kwargs)


def swap(script: Any, key: str, old: bytes, new: bytes) -> Callable[[Any], Any]:
    """Run the compare-and-set script: ``key`` becomes ``new`` if it still holds ``old``."""
    return lambda _client: script(keys=[key], args=[old, new])


def guard_interval(settings: Settings) -> float:
    """The longest a lost node is left alone before one probe may try it again."""
    return min(settings.CIRCUIT_BREAKER_RECOVERY_TIMEOUT, 5.0)


# -- per-node availability --------------------------------------------------
class NodeGuard:
    """Remembers unreachable nodes and lets one probe (a real call) through to each.

    As the client's breaker probes Redis (issue 21): 250 ms after a node was lost, then
    every tenth of the time it has been down, at most every ``retry_after`` seconds; one
    probe in flight per node, so a node that answers again rejoins within ~a tenth of
    its outage and a hung node costs at most four blocked calls a second.
    """

    FIRST = 0.25  # seconds before the first probe of a lost node
    SHARE = 0.1  # later probes: this share of the time the node has been down

    def __init__(self, retry_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.retry_after = max(0.05, retry_after)
        self._clock = clock
        self._down: dict[str, float] = {}  # node -> when its next probe is due
        self._since: dict[str, float] = {}  # node -> when it was lost
        self._probing: dict[str, float] = {}  # node -> when its probe in flight began
        self._lock = threading.Lock()

    def _delay(self, name: str, now: float) -> float:
        down_for = now - self._since.get(name, now)
        return min(self.retry_after, max(self.FIRST, self.SHARE * down_for))

    def admit(self, name: str) -> bool:
        """Whether a request may go to node ``name`` now (a due probe counts)."""
        with self._lock:
            until = self._down.get(name)
            if until is None:
                return True
            now = self._clock()
            if now < until:
                return False
            began = self._probing.get(name)
            if began is not None and now - began < self.retry_after:
                return False  # its probe has no verdict yet
            self._probing[name] = now  # this caller is the probe
            self._down[name] = now + self._delay(name, now)
            return True

    def failed(self, name: str) -> None:
        """Mark ``name`` unreachable."""
        with self._lock:
            now = self._clock()
            self._since.setdefault(name, now)
            self._probing.pop(name, None)
            self._down[name] = now + self._delay(name, now)

    def ok(self, name: str) -> bool:
        """Mark ``name`` reachable; True if it was marked down before."""
        with self._lock:
            self._since.pop(name, None)
            self._probing.pop(name, None)
            return self._down.pop(name, None) is not None

    def is_down(self, name: str) -> bool:
        """Whether ``name`` is currently marked unreachable."""
        with self._lock:
            return name in self._down

    def down(self) -> list[str]:
        """Names of the nodes marked unreachable."""
        with self._lock:
            return list(self._down)


class DeferredDeletes:
    """Deletes that could not reach their node, kept (bounded) until they land.

    A key kept here reads as a miss: after a failover another node may serve
    the value the delete was meant to remove.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.keys: OrderedDict[str, None] = OrderedDict()
        self.prefixes: set[str] = set()
        self._lock = threading.Lock()
        # Writes of owed keys by this process, for the background replay (see unwritten).
        self._seq = 0
        self._touched: dict[str, int] = {}  # key -> _seq when a write of it began or ended
        self._writing: Counter[str] = Counter()  # key -> writes in flight

    def __bool__(self) -> bool:
        return bool(self.keys) or bool(self.prefixes)

    def add(self, keys: Iterable[str]) -> None:
        """Remember ``keys``; past the limit, remember to clear their namespace instead."""
        with self._lock:
            for k in keys:
                self.keys[k] = None
            if len(self.keys) > self.limit:
                # Never drop an invalidation silently: clear the namespace ("ns:") that all
                # these keys share when the node is back, as the client does past its limit.
                shared = os.path.commonprefix(list(self.keys))  # noqa: RUF071 (chars wanted)
                namespace, sep, _ = shared.partition(":")
                if not sep or not namespace:
                    raise NodeUnreachableError(
                        "too many deletes waiting for an unreachable cluster node")
                self.prefixes.add(namespace + ":")
                self.keys.clear()

    def add_prefix(self, prefix: str) -> None:
        """Remember to clear everything under ``prefix``."""
        with self._lock:
            self.prefixes.add(prefix)

    def discard(self, keys: Iterable[str]) -> None:
        """Forget deletes that a newer successful write has superseded."""
        with self._lock:
            for k in keys:
                self.keys.pop(k, None)

    def covers(self, key: str) -> bool:
        """Whether a delete of ``key`` (or of a prefix of it) has not landed yet."""
        if not self.keys and not self.prefixes:  # the common case, without the lock
            return False
        with self._lock:
            return key in self.keys or any(key.startswith(p) for p in self.prefixes)

    def pending(self) -> tuple[list[str], set[str]]:
        """A copy of what waits, left in place (reads keep missing while it is replayed)."""
        with self._lock:
            return list(self.keys), set(self.prefixes)

    def landed(self, keys: Iterable[str] = (), prefixes: Iterable[str] = ()) -> None:
        """Forget deletes that have reached their node."""
        with self._lock:
            for k in keys:
                self.keys.pop(k, None)
            for p in prefixes:
                self.prefixes.discard(p)

    @contextlib.contextmanager
    def writing(self, keys: Iterable[str]) -> Iterator[None]:
        """Around a write of ``keys``: the background replay leaves an owed key alone while
        it is written, and after (its delete may have reached the node after the write)."""
        if not self.keys:  # the common case, without the lock
            yield
            return
        with self._lock:
            marked = [k for k in keys if k in self.keys]
            self._mark(marked, 1)
        try:
            yield
        finally:
            if marked:
                with self._lock:
                    self._mark(marked, -1)

    def _mark(self, keys: list[str], delta: int) -> None:
        self._seq += 1
        for k in keys:
            self._writing[k] += delta
            if self._writing[k] > 0:
                self._touched[k] = self._seq
            else:
                del self._writing[k]
                if k in self.keys:
                    self._touched[k] = self._seq
                else:
                    self._touched.pop(k, None)

    def marker(self) -> int:
        """A point in this process's writes, taken before the replay reads the node."""
        with self._lock:
            return self._seq

    def unwritten(self, keys: Iterable[str], since: int) -> list[str]:
        """Those of ``keys`` still owed and not written by this process since ``since``
        (nor being written): a delete the replay sends now cannot erase such a write."""
        with self._lock:
            return [k for k in keys if k in self.keys and k not in self._writing
                    and self._touched.get(k, -1) <= since]

    def take(self) -> tuple[list[str], set[str]]:
        """Remove and return everything that waits."""
        with self._lock:
            keys, prefixes = list(self.keys), set(self.prefixes)
            self.keys.clear()
            self.prefixes.clear()
            return keys, prefixes


class DeferredReplay(ProcessThread):
    """Lands deferred deletes as soon as their node answers again, without waiting for a call.

    A daemon thread, one at a time, started when deletes are deferred and ended when
    none is left (or the backend is gone); a coded error (no slot map now) waits for
    the next turn. Every ``interval`` seconds it groups the owed keys by owner in the
    slot map and, per node, PINGs and then DELs them on a plain sync connection (so one
    thread serves both flavours); a slot that node no longer owns answers MOVED and
    stays owed for the call path. Owed prefixes are cleared once every primary answers.
    A node marked down that answers is reported to ``on_answer`` (the backend marks it
    reachable).
    """

    thread_name = "cachekit-cluster-replay"

    def __init__(self, deferred: DeferredDeletes, guard: NodeGuard, options: dict[str, Any],
                 interval: float, cluster: Callable[[], Any],
                 on_answer: Callable[[str], object]) -> None:
        self.deferred = deferred
        self.guard = guard
        # A probe, not a request: one try, no backoff (a silent node costs one timeout).
        self.options = {**{k: v for k, v in options.items() if k != "retry"},
                        "retry": Retry(NoBackoff(), 0)}
        super().__init__(None, max(0.01, interval))
        self._cluster = cluster  # the backend's RedisCluster (None once the backend is gone)
        self._on_answer = on_answer

    def tick(self) -> bool:
        """One turn of the thread (see ``turn``)."""
        return self.turn()

    def has_more(self) -> bool:
        """Deletes deferred since the last turn, while the backend is there."""
        return bool(self.deferred) and self._cluster() is not None

    def turn(self) -> bool:
        """One pass over what is owed; False once nothing is (or the backend is gone)."""
        rc = self._cluster()
        if rc is None:
            return False
        since = self.deferred.marker()
        keys, prefixes = self.deferred.pending()
        groups, _ = group_by_node(rc, keys)
        for name, (node, slots) in groups.items():
            batch = [keys[i] for positions in slots.values() for i in positions]
            landed = self._delete_on(node, batch, since)
            if landed is not None:
                self.deferred.landed(landed)
                self._answered(name)
        if prefixes:
            primaries = rc.get_primaries()
            # Every primary must answer first: no SCAN of the others each turn while one is out.
            if (primaries and all(self._answers(node) for node in primaries)
                    and all(self._clear_on(node, prefixes) for node in primaries)):
                self.deferred.landed(prefixes=prefixes)
                for node in primaries:
                    self._answered(node.name)
        return bool(self.deferred)

    def _answered(self, name: str) -> None:
        if self.guard.is_down(name):
            self._on_answer(name)  # the backend lets calls through the guard again

    def _delete_on(self, node: Any, keys: list[str], since: int) -> list[str] | None:
        """Delete ``keys`` on ``node``: those that landed, or None if it does not answer.

        Only what the node holds now goes, compared byte for byte (DUMP): a value written
        after that (by anyone) stays, and so does one this process wrote since ``since``.
        """
        try:
            with redis.Redis(host=node.host, port=node.port, **self.options) as conn:
                # PING first: once it answers, whatever reached the node while it was
                # silent has run, so these deletes come after it.
                conn.ping()
                return _drop(conn, keys, lambda found: self.deferred.unwritten(found, since))
        except REDIS_ERRORS:
            return None

    def _answers(self, node: Any) -> bool:
        """Whether ``node`` answers a PING now."""
        try:
            with redis.Redis(host=node.host, port=node.port, **self.options) as conn:
                return bool(conn.ping())
        except REDIS_ERRORS:
            return False

    def _clear_on(self, node: Any, prefixes: Iterable[str]) -> bool:
        """Delete every key under ``prefixes`` on ``node``; whether it answered throughout."""
        try:
            with redis.Redis(host=node.host, port=node.port, **self.options) as conn:
                for prefix in prefixes:
                    batch: list[bytes] = []
                    for k in conn.scan_iter(match=escape_glob(prefix) + "*", count=1000):
                        batch.append(k)
                        if len(batch) >= SCAN_BATCH:
                            _drop(conn, batch, list)
                            batch = []
                    _drop(conn, batch, list)
        except REDIS_ERRORS:
            return False
        return True


# Delete KEYS[1] only if it still holds what DUMP returned (any type, not only strings).
DROP_SCRIPT = """
if redis.call('DUMP', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _drop(conn: Any, keys: Sequence[Any], keep: Callable[[list[Any]], list[Any]]) -> list[Any]:
    """Delete those of ``keys`` that ``keep`` passes, each only if it still holds what it
    held a moment ago (one key per command: a cluster node refuses cross-slot ones);
    returns the keys settled (deleted, absent, or written anew since)."""
    if not keys:
        return []
    pipe = conn.pipeline(transaction=False)
    for k in keys:
        pipe.dump(k)
    held = dict(zip(keys, pipe.execute(raise_on_error=False), strict=True))
    kept = keep([k for k, v in held.items() if not isinstance(v, BaseException)])  # MOVED
    settled = [k for k in kept if held[k] is None]  # nothing there: nothing stale to remove
    present = [k for k in kept if held[k] is not None]
    if present:
        pipe = conn.pipeline(transaction=False)
        for k in present:
            pipe.eval(DROP_SCRIPT, 1, k, held[k])
        replies = pipe.execute(raise_on_error=False)
        settled += [k for k, r in zip(present, replies, strict=True)
                    if not isinstance(r, BaseException)]
    return settled


# -- node reports ---------------------------------------------------------------
def node_entry(name: str, role: str, down: bool = False) -> dict[str, Any]:
    """A HealthReport.nodes entry for a node not (yet) heard from."""
    return {"node": name, "role": role, "reachable": False, "latency_ms": None,
            "used_memory": None, "used_memory_human": None,
            "error": "E013" if down else None}


def answered(entry: dict[str, Any], seconds: float, raw: dict[str, Any]) -> None:
    """Fill ``entry`` from a node's PING latency and INFO reply."""
    entry.update(reachable=True, error=None, latency_ms=round(seconds * 1000, 3),
                 used_memory=raw.get("used_memory"),
                 used_memory_human=raw.get("used_memory_human"),
                 maxmemory=raw.get("maxmemory"), server_role=raw.get("role"))


class NoSentinelAnswered(ConnectRefused):
    """No sentinel could be reached: an outage (E010, trips the breaker), not a failover."""


# -- watching Sentinel for a new primary -------------------------------------------
class SentinelWatch:
    """Polls the sentinels in a short-lived thread until one names a new primary.

    Started when the client's breaker opens; calls ``on_change(reason)`` once the
    primary differs from the last one the pool connected to, then ends (or after
    ``limit`` seconds: the breaker probes by itself then). Plain sync connections,
    so the same watcher serves both flavours.
    """

    def __init__(self, hosts: Sequence[tuple[str, int]], service: str,
                 options: dict[str, Any], interval: float = 0.1) -> None:
        self.hosts = list(hosts)
        self.service = service
        self.options = options
        self.interval = interval
        self.known: tuple[str, int] | None = None  # the primary the pool last connected to
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self, on_change: Callable[[str], object], limit: float) -> None:
        """Watch (once at a time) for up to ``limit`` seconds."""
        with self._lock:
            if self.known is None or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(target=self._run, args=(on_change, limit),
                                            name="cachekit-sentinel-watch", daemon=True)
            self._thread.start()

    def named(self) -> tuple[str, int] | None:
        """The primary the first answering sentinel names, or None."""
        for host, port in self.hosts:
            try:
                with redis.Redis(host=host, port=port, **self.options) as s:
                    found = s.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME",
                                              self.service)
            except (redis.RedisError, OSError):
                continue
            if found:
                h, p = found
                return (h.decode() if isinstance(h, bytes) else str(h)), int(p)
        return None

    def _run(self, on_change: Callable[[str], object], limit: float) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            now = self.named()
            if now is not None and self.known is not None and now != self.known:
                on_change(f"sentinel names a new primary {now[0]}:{now[1]}")
                return
            time.sleep(self.interval)
