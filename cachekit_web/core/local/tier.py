"""The coherent in-process tier: decoded entries kept in process memory, kept honest by
Redis server-assisted invalidation (CLIENT TRACKING, broadcast mode).

One tracking connection per process and per cache (Redis node + namespace) subscribes
to ``__redis__:invalidate`` with ``CLIENT TRACKING ON REDIRECT <own id> BCAST PREFIX
<namespace>:``. Every write to a key under the prefix, from any client, sends its name
here, and the entry is dropped. Entries are only served while a lease is valid: the
lease is renewed by a PING whose PONG comes back on the tracking connection (so every
invalidation the server sent before the PING has been applied), and lasts
LOCAL_CACHE_LEASE seconds from when that PING was sent. A lost connection flushes the
whole tier. Each lookup first drains the tracking socket (non-blocking), so a busy
process applies invalidations at its next read, not when its reader thread gets the GIL.

A GET that races an invalidation is guarded by a per-key token: the reply is kept only
if no invalidation for that key (and no flush) arrived after the GET was sent. Each
entry's deadline comes from a PTTL read in the same round trip as its GET, since the
server's own expiry notice may come late. Values are returned as copies unless they are
immutable (str, bytes, numbers, ...), so a caller mutating a result changes nothing.

On Sentinel the one tracking connection goes to the primary Sentinel names at each
(re)connect: a failover drops it (Sentinel kills the demoted primary's clients, or the
primary is gone), which flushes the tier until it tracks the new primary; a value is
kept only if the backend read it from the node this connection tracks (``verify_node``).
On a Cluster, ``topology.ClusterTier`` holds one such LocalTier per primary.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import select
import ssl
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeAlias

from ..data.codec import Entry
from ..registry import reset_in_forked_child
from ..settings import Settings
from .copying import Copier, TooDeep, copier, plan_weight, weight
from .resp import Incomplete, TrackingError, command, parse, server_version
from .topology import ClusterTier

log = logging.getLogger("cachekit_web.local")

CHANNEL = b"__redis__:invalidate"
MIN_VERSION = (6, 0)
_RECV = 65536
_NOT_YET = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
# Keys of a pool's options that would switch on redis-py 8's maintenance notifications,
# which need hiredis or RESP3: the tracking connection speaks RESP2 with any parser.
_NOT_FOR_TRACKING = ("maint_notifications_config", "maint_notifications_pool_handler",
                     "oss_cluster_maint_notifications_handler")


class LocalTier:
    """Verified, decoded entries of one namespace, coherent through CLIENT TRACKING."""

    def __init__(self, connect: Callable[[], Any], prefix: str, *, max_entries: int,
                 max_bytes: int, lease: float,
                 clock: Callable[[], float] = time.monotonic, start: bool = True,
                 address: str | None = None, verify_node: bool = False) -> None:
        self._connect_fn = connect
        # Where the tracking connection goes ("host:port"): fixed for a cluster node's link,
        # learned at each connect through Sentinel. With verify_node, a value is kept only
        # when the reader says it came from exactly that node (see finish).
        self.address = address
        self.verify_node = verify_node
        self.prefix = prefix
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.lease = lease
        self.clock = clock
        self.disabled: str | None = None  # why the tier turned itself off for good
        # Metrics objects that count invalidations, held weakly: they lead to their clients
        self.sinks: weakref.WeakSet[Any] = weakref.WeakSet()
        # The clients using a tier made by tier_for (None: made directly, never retires);
        # when none is left, the reader thread retires the tier (thread and connection).
        self.users: weakref.WeakSet[Any] | None = None
        # Set by tier_for: takes this tier out of its table once no client uses it.
        self.retire: Callable[[Any], bool] | None = None
        self.invalidations = 0
        self.flushes = 0
        self.bad_messages = 0  # what came on the channel that was not a list of keys
        self._off_since: str | None = None  # why tracking is down, once warned (E070)
        self._reset_state()
        self._start = start
        _ALL.add(self)
        if start:
            self._ensure_thread()

    def _reset_state(self) -> None:
        self._lock = threading.RLock()
        # fk -> (entry, deadline, stored bytes, how to copy its value for a caller)
        self._entries: OrderedDict[str, tuple[Entry, float, int, Copier | None]] = OrderedDict()
        self._bytes = 0
        self._seq = 0  # invalidation messages seen
        self._generation = 0  # bumped by every flush (disconnect, FLUSHDB, fork)
        self._inflight: dict[str, int] = {}
        self._touched: dict[str, int] = {}
        self._lease_until = 0.0
        self._pings: dict[bytes, float] = {}
        self._ping_n = 0
        self._sock: Any = None
        self._poller: Any = None  # poll object on the socket: a cheap "anything to read?"
        self._conn: Any = None
        self._buf = bytearray()
        self._reading = False  # a drain took bytes off the socket and has not applied them
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self.client_id: int | None = None

    def __repr__(self) -> str:
        return (f"<LocalTier prefix={self.prefix!r} entries={len(self._entries)} "
                f"live={self.live}>")

    # -- state -------------------------------------------------------------
    @property
    def live(self) -> bool:
        """Whether entries may be served now (lease valid)."""
        return self.clock() < self._lease_until

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """Decoded bytes held (the memory cap's measure, see ``weight``)."""
        return self._bytes

    # -- the read path -----------------------------------------------------
    def lookup(self, fk: str) -> Entry | None:
        """The entry for ``fk`` if served from memory now (a copy), else None."""
        if self._pid != os.getpid():  # forked in C (uWSGI): the entries and socket are the parent's
            _after_fork_in_child(self)
            return None
        poller = self._poller
        # Also wait for a drain under way (on the reader thread): the invalidation it
        # took off the socket may be this key's. Socket first, then the flag (see drain).
        if poller is not None:  # no lock when idle
            try:
                pending = poller.poll(0)
            except RuntimeError:  # another thread is polling: look under the lock
                pending = [True]
            if pending or self._reading:
                self.drain()
        found = self._entries.get(fk)
        if found is None:
            return None
        now = self.clock()
        entry, deadline, _, copy_fn = found
        if now >= self._lease_until or now >= deadline:
            if now >= deadline:
                self.forget(fk)
            return None
        if copy_fn is not None:
            try:
                return Entry(copy_fn(entry.value), entry.fresh_until, entry.expires_at)
            except RecursionError:  # the caller's stack is deeper than the filler's was
                self.forget(fk)
                return None
        return entry

    def begin(self, fk: str) -> tuple[int, int, float]:
        """A token taken before the GET is sent: (generation, invalidations seen, time)."""
        if self._pid != os.getpid():
            _after_fork_in_child(self)
        self._ensure_thread()
        with self._lock:
            self._inflight[fk] = self._inflight.get(fk, 0) + 1
            return self._generation, self._seq, self.clock()

    def finish(self, fk: str, token: tuple[int, int, float], entry: Entry | None = None,
               size: int = 0, pttl_ms: int = -2, node: str | None = None) -> bool:
        """Keep ``entry`` (read under ``token`` from ``node``) unless an invalidation of
        ``fk`` or a flush came since, or (verify_node) ``node`` is not the tracked one;
        always ends the token. True if stored."""
        generation, seq, sent = token
        if self.verify_node and (node is None or node != self.address):
            entry = None  # read from a node whose writes this connection may not see
        if self._pid != os.getpid():
            _after_fork_in_child(self)
            return False
        poller = self._poller
        if poller is not None and _ready(poller):
            self.drain()  # apply what arrived before the reply did
        with self._lock:
            stored = False
            if (entry is not None and pttl_ms != -2 and generation == self._generation
                    and self._touched.get(fk, 0) <= seq and self.clock() < self._lease_until
                    and size <= self.max_bytes):
                stored = self._keep_locked(fk, entry, sent, size, pttl_ms)
            left = self._inflight.get(fk, 1) - 1
            if left <= 0:
                self._inflight.pop(fk, None)
                self._touched.pop(fk, None)
            else:
                self._inflight[fk] = left
            return stored

    def _keep_locked(self, fk: str, entry: Entry, sent: float, size: int,
                     pttl_ms: int) -> bool:
        """Store a copy of ``entry`` (the caller keeps the original); False when it is too
        big or cannot be copied (too deep, self-referring): then it is read from Redis."""
        size = max(size, weight(entry.value))  # decoded, not sealed: a frame compresses
        if size > self.max_bytes:
            self._drop_locked(fk)  # whatever it held is older than this read
            return False
        try:
            copy_fn = copier(entry.value)
            if copy_fn is not None:
                size += plan_weight(copy_fn)  # held as long as the entry: under the cap too
                if size > self.max_bytes:
                    self._drop_locked(fk)
                    return False
                entry = Entry(copy_fn(entry.value), entry.fresh_until, entry.expires_at)
        except (TooDeep, RecursionError):
            self._drop_locked(fk)
            return False
        deadline = float("inf") if pttl_ms < 0 else sent + pttl_ms / 1000.0
        self._drop_locked(fk)
        self._entries[fk] = (entry, deadline, size, copy_fn)
        self._bytes += size
        self._evict_locked()
        return True

    def forget(self, fk: str) -> None:
        """Drop ``fk`` as if the server had invalidated it (this process wrote it)."""
        with self._lock:
            self._seq += 1
            self._drop_locked(fk)
            if fk in self._inflight:
                self._touched[fk] = self._seq

    def flush(self) -> None:
        """Drop every entry; reads in flight are not stored."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        self._generation += 1
        self._entries.clear()
        self._bytes = 0
        self.flushes += 1

    def _drop_locked(self, fk: str) -> bool:
        old = self._entries.pop(fk, None)
        if old is None:
            return False
        self._bytes -= old[2]
        return True

    def _evict_locked(self) -> None:
        while self._entries and (len(self._entries) > self.max_entries
                                 or self._bytes > self.max_bytes):
            _, (_, _, size, _) = self._entries.popitem(last=False)
            self._bytes -= size

    # -- the tracking connection ---------------------------------------------
    def drain(self) -> None:
        """Read and apply whatever the tracking socket holds, without blocking."""
        if self._pid != os.getpid():  # never read the parent's tracking socket
            _after_fork_in_child(self)
            return
        with self._lock:
            sock = self._sock
            if sock is None:
                return
            # Set before the bytes leave the socket, cleared once applied: a lookup that
            # finds the socket empty then waits for this lock (see lookup).
            self._reading = True
            try:
                try:
                    while True:
                        data = sock.recv(_RECV)
                        if not data:
                            self._lost("closed by the server")
                            return
                        self._buf += data
                        if len(data) < _RECV and not getattr(sock, "pending", int)():
                            break
                except _NOT_YET:
                    pass
                except OSError:
                    self._lost("read failed")
                    return
                except Exception:  # never a caller's problem: the tier turns off, reconnects
                    self._lost("read failed unexpectedly")
                    return
                self._apply_buffer()
            finally:
                self._reading = False

    def _apply_buffer(self) -> None:
        buf, pos = self._buf, 0
        try:
            while pos < len(buf):
                try:
                    msg, pos = parse(buf, pos)
                except Incomplete:
                    break
                self._on_message(msg)
        except Exception:  # TrackingError, a malformed length...: reconnect, never raise
            self._lost("unexpected reply")
            return
        del buf[:pos]

    def _on_message(self, msg: Any) -> None:
        if not isinstance(msg, list) or not msg:
            raise TrackingError("unexpected message")
        kind = msg[0].lower() if isinstance(msg[0], bytes) else b""
        if kind == b"message" and len(msg) == 3:
            # Anyone may PUBLISH here: only the server's list of keys (or its null, a
            # flush) is taken as such; anything else flushes the tier and is counted.
            self._invalidate(msg[2] if msg[1] == CHANNEL else b"")
        elif kind == b"invalidate" and len(msg) == 2:  # RESP3 push
            self._invalidate(msg[1])
        elif kind == b"pong":
            sent = self._pings.pop(msg[1] if len(msg) > 1 else b"", None)
            if sent is not None:
                self._lease_until = max(self._lease_until, sent + self.lease)
                for older in [k for k, t in self._pings.items() if t <= sent]:
                    del self._pings[older]
        elif kind in (b"subscribe", b"unsubscribe"):
            pass
        else:
            raise TrackingError("unexpected message")

    def _invalidate(self, keys: Any) -> None:
        self._seq += 1
        if keys is None:  # FLUSHDB / FLUSHALL
            self._flush_locked()
            return
        if type(keys) is not list or not all(type(k) is bytes for k in keys):
            self.bad_messages += 1
            self._flush_locked()
            for sink in self.sinks:
                sink.count("local_bad_messages", 1)
            return
        dropped = 0
        seq = self._seq
        for raw in keys:
            fk = raw.decode("utf-8", "surrogateescape")
            if self._drop_locked(fk):
                dropped += 1
            if fk in self._inflight:
                self._touched[fk] = seq
        if dropped:
            self.invalidations += dropped
            for sink in list(self.sinks):
                sink.count("local_invalidations", dropped)

    def _lost(self, why: str) -> None:
        """The tracking connection is gone: no lease, nothing kept."""
        self._lease_until = 0.0
        self._pings.clear()
        self._flush_locked()
        sock, self._sock, self._poller = self._sock, None, None
        self._buf.clear()
        if sock is not None:
            if why != "closed":
                self._off(f"tracking connection {why}")
            with contextlib.suppress(OSError):
                sock.close()

    def _off(self, why: str) -> None:
        """Tracking is down: reads go to Redis until it is back. Warned once per outage."""
        if self._off_since is None:
            self._off_since = why
            log.warning("E070 in-process tier for %s off until tracking is back (reads go "
                        "to Redis): %s", self.prefix, why)
        else:
            log.debug("in-process tier for %s still off: %s", self.prefix, why)

    def _back(self) -> None:
        if self._off_since is not None:
            self._off_since = None
            log.info("in-process tier for %s back on: tracking connection open", self.prefix)

    def _ensure_thread(self) -> None:
        if self.disabled or (self._thread is not None and self._thread.is_alive()):
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, name="cachekit-local-tier",
                                            daemon=True)
            self._thread.start()

    def _handshake(self) -> None:
        conn = self._connect_fn()
        conn.connect()
        try:
            conn.send_command("INFO", "server")
            version = server_version(conn.read_response())
            if version < MIN_VERSION:
                shown, least = ".".join(map(str, version)), ".".join(map(str, MIN_VERSION))
                why = f"Redis {shown} is older than {least} (no CLIENT TRACKING)"
                log.warning("E070 in-process tier turned off: %s", why)
                self.disabled = why
                conn.disconnect()
                return
            if self.verify_node:
                self.address = f"{conn.host}:{conn.port}"
            conn.send_command("CLIENT", "ID")
            client_id = int(conn.read_response())
            conn.send_command("CLIENT", "TRACKING", "ON", "REDIRECT", client_id, "BCAST",
                              "PREFIX", self.prefix)
            conn.read_response()
            sock = conn._sock
            # The reply to SUBSCRIBE is left to our own parser: nothing may sit in redis-py's.
            sock.sendall(command("SUBSCRIBE", CHANNEL))
        except BaseException:
            conn.disconnect()
            raise
        sock.setblocking(False)
        with self._lock:
            self._flush_locked()
            self._conn, self._sock, self.client_id = conn, sock, client_id
            poller = select.poll()
            poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
            self._poller = poller
            self._buf.clear()
            self._back()

    def _unused(self) -> bool:
        """Whether no client uses this tier any more: then it is retired (taken out of
        tier_for's table, its connection closed) and its thread ends."""
        users = self.users
        if users is None or len(users) or self.retire is None or not self.retire(self):
            return False
        with self._lock:
            self._lost("closed")  # retired, not an outage: no E070
        return True

    def _ping(self) -> None:
        with self._lock:
            if self._sock is None:
                return
            self._ping_n += 1
            token = b"%d" % self._ping_n
            self._pings[token] = self.clock()
            try:
                self._sock.sendall(command("PING", token))
            except (OSError, *_NOT_YET):
                self._lost("write failed")

    def _run(self) -> None:
        pause = 0.05
        try:
            while not self._stop.is_set() and self._pid == os.getpid() and not self._unused():
                try:
                    self._handshake()
                except Exception as exc:  # OSError, RedisError, a redis-py that refuses...
                    self._off(f"cannot open the tracking connection ({type(exc).__name__}: "
                              f"{_first_line(exc)})")
                    self._stop.wait(pause)
                    pause = min(pause * 2, 2.0)
                    continue
                if self.disabled:
                    return
                try:
                    self._serve()
                except Exception as exc:  # never half-alive: drop it, reconnect after a pause
                    with self._lock:
                        self._lost(f"reader failed ({type(exc).__name__})")
                    self._stop.wait(pause)
                    pause = min(pause * 2, 2.0)
                    continue
                pause = 0.05
                self._stop.wait(pause)
        finally:
            if self._pid == os.getpid():
                with self._lock:  # a reader that is gone serves nothing (begin() restarts it)
                    ended = self._stop.is_set() or self.disabled == "no client uses it"
                    self._lost("closed" if ended else "reader thread ended")

    def _serve(self) -> None:
        """Ping every lease/4 and apply what arrives, until the connection drops."""
        interval = self.lease / 4
        next_ping = 0.0
        while not self._stop.is_set() and not self._unused():
            sock = self._sock
            if sock is None:
                return
            now = time.monotonic()
            if now >= next_ping:
                oldest = min(self._pings.values(), default=None)
                if oldest is not None and self.clock() - oldest > 2 * self.lease:
                    with self._lock:
                        self._lost("unanswered heartbeat")
                    return
                self._ping()
                next_ping = now + interval
            try:
                ready, _, _ = select.select([sock], [], [], max(0.0, next_ping - now))
            except (OSError, ValueError):
                ready = [sock]
            if ready or getattr(sock, "pending", lambda: 0)():
                self.drain()

    def close(self) -> None:
        """Stop the reader thread and drop the connection and entries."""
        self._stop.set()
        with self._lock:
            self._lost("closed")
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)


def _ready(poller: Any) -> bool:
    """Whether the tracking socket may hold bytes (a poll object is not thread-safe: when
    another thread is polling it, look under the lock)."""
    try:
        return bool(poller.poll(0))
    except RuntimeError:  # concurrent poll() invocation
        return True


def _first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, shortened (no secrets: redis-py's own text)."""
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else ""


def tracking_kwargs(pool: Any) -> dict[str, Any]:
    """Options for the tracking connection: the pool's, in RESP2 (invalidations and PONGs
    both come as pub/sub arrays), without what would ask hiredis or RESP3 of redis-py."""
    kwargs = {k: v for k, v in pool.connection_kwargs.items() if k not in _NOT_FOR_TRACKING}
    kwargs["protocol"] = 2
    return kwargs


# -- one tier per process and per (node, namespace) ------------------------
_TIERS: dict[tuple[str, str, str], Tier] = {}
_TIERS_LOCK = threading.Lock()
_WARNED: set[str] = set()


def _retire(tier: Tier) -> bool:
    """Take ``tier`` out of tier_for's table if no client uses it (then True)."""
    users = tier.users
    with _TIERS_LOCK:  # tier_for adds users under this lock
        if users is None or len(users):
            return False
        for key in [k for k, t in _TIERS.items() if t is tier]:
            del _TIERS[key]
        tier.disabled = "no client uses it"
    return True


def _after_fork_in_child(tier: LocalTier) -> None:
    """A forked child shares nothing with its parent's tier: fresh state, own thread later."""
    if tier._pid == os.getpid():
        return
    tier._reset_state()  # new locks: the parent's could be held by a thread that is gone


def _new_lock_after_fork() -> None:
    global _TIERS_LOCK
    _TIERS_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_after_fork)
_ALL: weakref.WeakSet[LocalTier] = reset_in_forked_child(_after_fork_in_child)


def tier_for(url: str, settings: Settings, kind: str, metrics: Any = None,
             user: Any = None) -> Tier | None:
    """This process's tier for ``url`` and the namespace, or None where it cannot work.

    One Redis: one tracking connection. Sentinel: one, to the primary Sentinel names at
    each (re)connect. Cluster: one per primary (see topology.ClusterTier).
    ``user`` (a client, held weakly) keeps the tier alive until it is collected or
    calls ``release``; a tier without users ends its threads and connections."""
    if kind not in ("redis", "sentinel", "cluster"):
        if kind not in _WARNED:
            _WARNED.add(kind)
            why = ("memory:// already lives in this process" if kind == "memory" else
                   f"not implemented for {kind} (REPLICA_URLS: use Sentinel or Cluster)")
            log.warning("E070 in-process tier turned off: %s", why)
        return None
    # Decoded entries are only as trustworthy as the keys that opened them: clients that
    # read differently (other keys, pickle or encryption rules, caps) get a tier each.
    how = hashlib.sha256(repr((
        settings.MASTER_KEY, settings.PREVIOUS_MASTER_KEYS, settings.SIGNING_KEY,
        settings.ENCRYPTION, settings.PICKLE_FALLBACK, settings.PLAIN_COUNTERS,
        settings.MAX_VALUE_SIZE,
        settings.LOCAL_CACHE_MAX_ENTRIES, settings.LOCAL_CACHE_MAX_BYTES,
        settings.LOCAL_CACHE_LEASE)).encode()).hexdigest()
    key = (url, settings.NAMESPACE, how)
    with _TIERS_LOCK:
        tier = _TIERS.get(key)
        if tier is None:
            tier = _TIERS[key] = _make_tier(url, settings, kind)
            tier.retire = _retire
        if metrics is not None:
            tier.sinks.add(metrics)
        if user is not None and not tier.disabled:
            if tier.users is None:
                tier.users = weakref.WeakSet()
            tier.users.add(user)
    return None if tier.disabled else tier


def _make_tier(url: str, settings: Settings, kind: str) -> Tier:
    prefix = settings.NAMESPACE + ":"
    caps: dict[str, Any] = {"max_entries": settings.LOCAL_CACHE_MAX_ENTRIES,
                            "max_bytes": settings.LOCAL_CACHE_MAX_BYTES,
                            "lease": settings.LOCAL_CACHE_LEASE}
    if kind == "cluster":
        from .._sync.cluster import ClusterBackend

        # Its own cluster client: the slot map this tier routes by (never the data path).
        backend = ClusterBackend(url, settings)

        def link(node: Any) -> LocalTier:
            pool = node.redis_connection.connection_pool
            return LocalTier(lambda: pool.connection_class(**tracking_kwargs(pool)), prefix,
                             address=str(node.name), verify_node=True, **caps)

        return ClusterTier(backend.cluster, link, prefix, lease=settings.LOCAL_CACHE_LEASE)
    if kind == "sentinel":
        import redis

        from .._sync.sentinel import SentinelBackend

        sentinel = SentinelBackend(url, settings)  # its own: asked at every reconnect
        pool = sentinel.pool
        tls = issubclass(pool.connection_class, redis.SSLConnection)

        def connect() -> Any:
            host, port = sentinel.sentinel.discover_master(sentinel.service)
            kwargs = tracking_kwargs(pool)
            kwargs.pop("connection_pool", None)
            kwargs.update(host=host, port=port)
            return (redis.SSLConnection if tls else redis.Connection)(**kwargs)

        return LocalTier(connect, prefix, verify_node=True, **caps)
    from .._sync.redis import pool_for

    pool = pool_for(url, settings)
    return LocalTier(lambda: pool.connection_class(**tracking_kwargs(pool)), prefix, **caps)


def release(tier: Tier, user: Any) -> None:
    """``user`` (a closed client) no longer uses ``tier``."""
    if tier.users is not None:
        tier.users.discard(user)


def close_all() -> None:
    """Close every tier of this process (tests)."""
    with _TIERS_LOCK:
        tiers = list(_TIERS.values())
        _TIERS.clear()
    for tier in tiers:
        tier.close()


# What a client holds: one Redis or Sentinel's LocalTier, or a Cluster's per-primary links.
Tier: TypeAlias = "LocalTier | ClusterTier"

__all__ = ["LocalTier", "Tier", "close_all", "tier_for", "tracking_kwargs"]
