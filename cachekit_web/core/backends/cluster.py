"""Redis Cluster backend on redis-py's RedisCluster, plus helpers shared by topologies.

redis-py owns the slot map, MOVED/ASK redirections and topology refresh. This
module adds what a cache needs on top: multi-key operations sent as one
pipeline per node, a node that is down costing only its own keys (E013, the
client's breaker stays closed), and deletes aimed at a lost node remembered and
replayed when it answers again.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, unquote

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, LoadBalancingStrategy, RedisCluster
from redis.retry import Retry

from ..errors import BackendConnectionError, CachekitError, ConfigurationError, LockTimeoutError
from ..settings import Settings
from . import redact_url
from .common import _SCAN_BATCH, _UPDATE_ATTEMPTS, _escape_glob, _info_subset, _ms, translate

T = TypeVar("T")

# Errors that mean "this node cannot be reached", as opposed to "it answered no".
_UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, OSError)
# Replies inside a node pipeline that mean "ask redis-py to route this again".
_REROUTE = (redis.exceptions.AskError, redis.exceptions.TryAgainError)
# A node that answers CLUSTERDOWN (restarting, or cut off from the majority) serves nothing.
_NODE_DOWN = redis.exceptions.ClusterDownError

# Compare-and-set: the read-modify-write behind incr, in one slot, without WATCH.
_CAS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0
"""


def _cmd(name: str, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
    """A call of command ``name`` on whichever client it is given."""
    return lambda client: getattr(client, name)(*args, **kwargs)


def _swap(script: Any, key: str, old: bytes, new: bytes) -> Callable[[Any], Any]:
    """Run the compare-and-set script: ``key`` becomes ``new`` if it still holds ``old``."""
    return lambda _client: script(keys=[key], args=[old, new])


# -- URLs -------------------------------------------------------------------
@dataclass(frozen=True)
class HostsURL:
    """A URL naming several host:port pairs (cluster seeds or sentinels)."""

    scheme: str
    hosts: tuple[tuple[str, int], ...]
    username: str | None
    password: str | None = field(repr=False)
    path: tuple[str, ...]
    query: dict[str, str] = field(repr=False)

    @property
    def tls(self) -> bool:
        """Whether the scheme asks for TLS (rediss+...)."""
        return self.scheme.startswith("rediss")


def parse_hosts_url(url: str, default_port: int) -> HostsURL:
    """Split ``scheme://[user:pass@]h1:p1,h2:p2/path?query``; raises E042 if malformed."""
    shown = redact_url(url)
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigurationError(f"not a URL: {shown}", code="E042")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    creds, at, hostlist = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, pw = creds.partition(":")
        username = unquote(user) or None
        password = unquote(pw) if colon else None
    hosts: list[tuple[str, int]] = []
    for item in hostlist.split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("["):  # [ipv6]:port
            host, _, tail = item[1:].partition("]")
            port_text = tail.lstrip(":")
        else:
            host, _, port_text = item.rpartition(":") if ":" in item else (item, "", "")
        # Checked, not int()-and-catch, and never echoed: with an unquoted '/' in the
        # password, the "port" is a piece of the password.
        if port_text and not (port_text.isascii() and port_text.isdigit()):
            raise ConfigurationError(f"bad port in {shown}; percent-encode special characters "
                                     "in the password", code="E042")
        port = int(port_text) if port_text else default_port
        hosts.append((host, port))
    if not hosts:
        raise ConfigurationError(f"no host:port in {shown}", code="E042")
    return HostsURL(
        scheme=scheme.lower(),
        hosts=tuple(hosts),
        username=username,
        password=password,
        path=tuple(unquote(p) for p in path.split("/") if p),
        query=dict(parse_qsl(query)),
    )


def node_options(settings: Settings, tls: bool) -> dict[str, Any]:
    """Connection keyword arguments for one data node, from settings."""
    options: dict[str, Any] = {
        "socket_timeout": settings.SOCKET_TIMEOUT,
        "socket_connect_timeout": settings.SOCKET_CONNECT_TIMEOUT,
        "health_check_interval": settings.HEALTH_CHECK_INTERVAL,
        "max_connections": settings.CONNECTION_POOL_SIZE,
    }
    if tls:
        options["ssl"] = True
        options["ssl_cert_reqs"] = settings.SSL_CERT_REQS
        if settings.SSL_CA_CERTS:
            options["ssl_ca_certs"] = settings.SSL_CA_CERTS
    return options


# -- per-node availability --------------------------------------------------
class NodeGuard:
    """Remembers unreachable nodes and lets one probe through every ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(0.05, retry_after)
        self._down: dict[str, float] = {}
        self._lock = threading.Lock()

    def admit(self, name: str) -> bool:
        """Whether a request may go to node ``name`` now (a due probe counts)."""
        with self._lock:
            until = self._down.get(name)
            if until is None:
                return True
            now = time.monotonic()
            if now < until:
                return False
            self._down[name] = now + self.retry_after  # this caller is the probe
            return True

    def failed(self, name: str) -> None:
        """Mark ``name`` unreachable."""
        with self._lock:
            self._down[name] = time.monotonic() + self.retry_after

    def ok(self, name: str) -> bool:
        """Mark ``name`` reachable; True if it was marked down before."""
        with self._lock:
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
    """Deletes that could not reach their node, kept (bounded) until it answers."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.keys: OrderedDict[str, None] = OrderedDict()
        self.prefixes: set[str] = set()
        self._lock = threading.Lock()

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
                    raise BackendConnectionError(
                        "too many deletes waiting for an unreachable cluster node", code="E013"
                    )
                self.prefixes.add(namespace + ":")
                self.keys.clear()

    def discard(self, keys: Iterable[str]) -> None:
        """Forget deletes that a newer successful write has superseded."""
        with self._lock:
            for k in keys:
                self.keys.pop(k, None)

    def take(self) -> tuple[list[str], set[str]]:
        with self._lock:
            keys, prefixes = list(self.keys), set(self.prefixes)
            self.keys.clear()
            self.prefixes.clear()
            return keys, prefixes


def node_report(name: str, role: str, ping: Callable[[], Any], info: Callable[[], Any],
                down: bool = False) -> dict[str, Any]:
    """One entry of HealthReport.nodes: address, role, reachability, latency, memory."""
    entry: dict[str, Any] = {"node": name, "role": role, "reachable": False,
                             "latency_ms": None, "used_memory": None,
                             "used_memory_human": None, "error": None}
    if down:
        entry["error"] = "E013"
    try:
        start = time.perf_counter()
        ping()
        entry["latency_ms"] = round((time.perf_counter() - start) * 1000, 3)
        raw = info()
        entry["reachable"] = True
        entry["error"] = None
        entry["used_memory"] = raw.get("used_memory")
        entry["used_memory_human"] = raw.get("used_memory_human")
        entry["maxmemory"] = raw.get("maxmemory")
        entry["server_role"] = raw.get("role")
    except (redis.RedisError, OSError) as exc:
        entry["error"] = translate(exc).code
    return entry


# -- the backend ------------------------------------------------------------
class ClusterBackend:
    """A Redis Cluster store: redis-py routes keys; multi-key calls are one pipeline per node."""

    def __init__(self, url: str, settings: Settings) -> None:
        self._url = redact_url(url)
        spec = parse_hosts_url(url, 6379)
        if spec.scheme not in ("redis+cluster", "rediss+cluster"):
            raise ConfigurationError(f"not a cluster URL: {self._url}", code="E042")
        if spec.path and spec.path != ("0",):
            raise ConfigurationError(
                f"Redis Cluster has only database 0, not {'/'.join(spec.path)!r} in "
                f"{self._url}", code="E042")
        self._seeds = [ClusterNode(h, p) for h, p in spec.hosts]  # type: ignore[no-untyped-call]
        self._options = node_options(settings, spec.tls)
        if spec.username:
            self._options["username"] = spec.username
        if spec.password:
            self._options["password"] = spec.password
        self._retries = settings.RETRIES
        self._read_from_replicas = settings.REPLICA_READS and spec.query.get(
            "replica_reads", "").lower() in ("1", "true", "yes")
        self.guard = NodeGuard(min(settings.CIRCUIT_BREAKER_RECOVERY_TIMEOUT, 5.0))
        self.deferred = DeferredDeletes(settings.PENDING_DELETES_MAX)
        self._replay_at = 0.0
        self._lock = threading.Lock()
        self._rc: Any = None
        self._cas: Any = None

    def __repr__(self) -> str:
        return f"<ClusterBackend {self._url}>"

    def describe(self) -> str:
        """Where the data lives, password redacted."""
        return self._url

    # -- plumbing ------------------------------------------------------------
    @property
    def cluster(self) -> Any:
        """The RedisCluster, built on first use so a cluster down at start-up fails open."""
        rc = self._rc
        if rc is not None:
            return rc
        with self._lock:
            if self._rc is None:
                try:
                    self._rc = RedisCluster(
                        startup_nodes=list(self._seeds),
                        require_full_coverage=False,
                        load_balancing_strategy=(LoadBalancingStrategy.ROUND_ROBIN
                                                 if self._read_from_replicas else None),
                        retry=Retry(NoBackoff(), self._retries),
                        **self._options,
                    )
                except (redis.RedisError, redis.exceptions.RedisClusterException,
                        OSError) as exc:
                    raise translate(exc) from None
                self._cas = self._rc.register_script(_CAS)
            return self._rc

    def _primary(self, key: str) -> Any:
        rc = self.cluster
        try:
            return rc.nodes_manager.get_node_from_slot(rc.keyslot(key))
        except redis.exceptions.RedisClusterException as exc:
            raise translate(exc) from None

    def _unreachable(self, name: str, exc: BaseException) -> CachekitError:
        """E013 while other primaries answer; the plain error (trips the breaker) if none do."""
        self.guard.failed(name)
        primaries = [n.name for n in self.cluster.get_primaries()]
        if primaries and all(self.guard.is_down(n) for n in primaries):
            return translate(exc)
        what = "reports the cluster down" if isinstance(exc, _NODE_DOWN) else "unreachable"
        return BackendConnectionError(f"cluster node {name} {what} ({type(exc).__name__})",
                                      code="E013")

    def _on_key(self, key: str, call: Callable[[Any], T]) -> T:
        """Run ``call(cluster)`` for a command on ``key``, guarding the key's node."""
        node = self._primary(key)
        self._maybe_replay()
        if not self.guard.admit(node.name):
            raise BackendConnectionError(f"cluster node {node.name} is marked unreachable",
                                         code="E013")
        try:
            result = call(self.cluster)
        except (*_UNREACHABLE, _NODE_DOWN) as exc:
            raise self._unreachable(node.name, exc) from None
        except (redis.RedisError, redis.exceptions.RedisClusterException) as exc:
            raise translate(exc) from None
        self._node_ok(node.name)
        return result

    def _node_ok(self, name: str) -> None:
        if self.guard.ok(name) and self.deferred:
            self._replay_at = 0.0  # a node came back: replay remembered deletes now

    def _lost(self, name: str) -> None:
        """Mark a node unreachable and reload the slot map (a replica may own its slots now)."""
        self.guard.failed(name)
        with contextlib.suppress(redis.RedisError, redis.exceptions.RedisClusterException,
                                 OSError):
            self.cluster.nodes_manager.initialize()

    def _by_node(self, keys: Sequence[str]) -> dict[str, tuple[Any, dict[int, list[int]]]]:
        """Group key positions by primary node, then by slot."""
        rc = self.cluster
        groups: dict[str, tuple[Any, dict[int, list[int]]]] = {}
        for i, key in enumerate(keys):
            slot = rc.keyslot(key)
            try:
                node = rc.nodes_manager.get_node_from_slot(slot)
            except redis.exceptions.SlotNotCoveredError:
                continue  # treated like an unreachable node: nothing to send
            groups.setdefault(node.name, (node, {}))[1].setdefault(slot, []).append(i)
        return groups

    def _fan_out(
        self,
        keys: Sequence[str],
        queue: Callable[[Any, list[str]], int],
        accept: Callable[[list[int], list[Any]], None],
        again: Callable[[list[int]], None],
        *,
        partial_ok: bool = False,
    ) -> list[int]:
        """Send one pipeline per node; returns the positions whose node could not be reached.

        ``queue(pipe, slot_keys)`` queues a slot's commands and says how many,
        ``accept(positions, replies)`` takes their replies, ``again(positions)``
        re-sends through redis-py's routing when the slot moved. Raises if no
        node could be reached, unless ``partial_ok`` (deletes: the caller defers them).
        """
        groups = self._by_node(keys)
        placed = {i for _, slots in groups.values() for p in slots.values() for i in p}
        missed = [i for i in range(len(keys)) if i not in placed]
        last: tuple[str, BaseException] | None = None
        reached = 0
        for name, (node, slots) in groups.items():
            positions = [i for p in slots.values() for i in p]
            if not self.guard.admit(name):
                missed.extend(positions)
                continue
            try:
                pipe = self.cluster.get_redis_connection(node).pipeline(transaction=False)
                counts = [queue(pipe, [keys[i] for i in p]) for p in slots.values()]
                replies = pipe.execute(raise_on_error=False)
            except _UNREACHABLE as exc:
                self._lost(name)
                missed.extend(positions)
                last = (name, exc)
                continue
            except redis.RedisError as exc:
                raise translate(exc) from None
            if any(isinstance(r, _NODE_DOWN) for r in replies):
                self._lost(name)
                missed.extend(positions)
                last = (name, next(r for r in replies if isinstance(r, _NODE_DOWN)))
                continue
            reached += 1
            self._node_ok(name)
            at = 0
            for slot_positions, n in zip(slots.values(), counts, strict=True):
                chunk = replies[at:at + n]
                at += n
                if any(isinstance(r, _REROUTE) for r in chunk):
                    again(slot_positions)
                    continue
                for r in chunk:
                    if isinstance(r, BaseException):
                        raise translate(r)
                accept(slot_positions, chunk)
        if not reached and last is not None:
            error = self._unreachable(*last)
            if not partial_ok or error.code != "E013":
                raise error
        if not reached and missed and not partial_ok:
            raise BackendConnectionError("no reachable cluster node owns these keys",
                                         code="E013")
        return missed

    def _routed(self, call: Callable[[Any], T]) -> T:
        try:
            return call(self.cluster)
        except (redis.RedisError, redis.exceptions.RedisClusterException, OSError) as exc:
            raise translate(exc) from None

    def _maybe_replay(self) -> None:
        """Re-send deletes that missed a lost node, at most once per guard interval."""
        if not self.deferred or time.monotonic() < self._replay_at:
            return
        self._replay_at = time.monotonic() + self.guard.retry_after
        keys, prefixes = self.deferred.take()
        for prefix in prefixes:
            try:
                self.delete_prefix(prefix)
            except CachekitError:
                self.deferred.prefixes.add(prefix)
        if keys:
            try:
                self._delete_keys(keys)
            except CachekitError:
                self.deferred.add(keys)

    # -- Backend protocol ------------------------------------------------------
    def get(self, key: str) -> bytes | None:
        return cast("bytes | None", self._on_key(key, lambda rc: rc.get(key)))

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        self._maybe_replay()
        out: list[bytes | None] = [None] * len(keys)

        def accept(positions: list[int], replies: list[Any]) -> None:
            for i, v in zip(positions, replies[0], strict=True):
                out[i] = v

        def queue(pipe: Any, ks: list[str]) -> int:
            pipe.mget(ks)
            return 1

        def again(positions: list[int]) -> None:
            for i in positions:
                out[i] = self._routed(_cmd("get", keys[i]))

        self._fan_out(keys, queue, accept, again)
        return out

    def set(self, key: str, value: bytes, ttl: float | None, *, nx: bool = False) -> bool:
        stored = bool(self._on_key(key, lambda rc: rc.set(key, value, px=_ms(ttl), nx=nx)))
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
                self._routed(_cmd("set", keys[i], items[keys[i]], px=px))

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
        return bool(self._on_key(key, lambda rc: rc.delete(key)))

    def _delete_keys(self, keys: Sequence[str]) -> int:
        removed = [0]

        def accept(positions: list[int], replies: list[Any]) -> None:
            removed[0] += int(replies[0])

        def queue(pipe: Any, ks: list[str]) -> int:
            pipe.delete(*ks)
            return 1

        def again(positions: list[int]) -> None:
            for i in positions:
                removed[0] += int(self._routed(_cmd("delete", keys[i])))

        missed = self._fan_out(keys, queue, accept, again, partial_ok=True)
        if missed:
            self.deferred.add(keys[i] for i in missed)
        return removed[0]

    def delete_many(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        self._maybe_replay()
        return self._delete_keys(list(keys))

    def touch(self, key: str, ttl: float | None) -> bool:
        if ttl is None:
            if not self._on_key(key, _cmd("exists", key)):
                return False
            self._on_key(key, _cmd("persist", key))
            return True
        ms = _ms(ttl) or 1
        return bool(self._on_key(key, lambda rc: rc.pexpire(key, ms)))

    def ttl(self, key: str) -> float | None:
        ms = int(self._on_key(key, lambda rc: rc.pttl(key)))
        if ms == -1:
            return None
        return 0.0 if ms < 0 else ms / 1000.0

    def exists(self, key: str) -> bool:
        return bool(self._on_key(key, lambda rc: rc.exists(key)))

    def update(self, key: str, fn: Callable[[bytes], bytes]) -> bytes | None:
        for _ in range(_UPDATE_ATTEMPTS):
            old = self.get(key)
            if old is None:
                return None
            new = fn(old)
            if self._on_key(key, _swap(self._cas, key, old, new)):
                return new
        raise LockTimeoutError("too much contention on one key", code="E050")

    def delete_prefix(self, prefix: str) -> int:
        """SCAN every primary for ``prefix`` and unlink per slot; lost nodes are done later."""
        rc = self.cluster
        pattern = _escape_glob(prefix) + "*"
        removed = 0
        reached = 0
        primaries = rc.get_primaries()
        last_exc: BaseException | None = None
        for node in primaries:
            if not self.guard.admit(node.name):
                self.deferred.prefixes.add(prefix)
                continue
            try:
                conn = rc.get_redis_connection(node)
                batch: list[bytes] = []
                for k in conn.scan_iter(match=pattern, count=1000):
                    batch.append(k)
                    if len(batch) >= _SCAN_BATCH:
                        removed += self._unlink_on(conn, batch)
                        batch = []
                if batch:
                    removed += self._unlink_on(conn, batch)
            except _UNREACHABLE as exc:
                self._lost(node.name)
                self.deferred.prefixes.add(prefix)
                last_exc = exc
                continue
            except redis.RedisError as exc:
                raise translate(exc) from None
            reached += 1
            self._node_ok(node.name)
        if primaries and not reached and last_exc is not None:
            raise self._unreachable(primaries[0].name, last_exc)
        return removed

    def _unlink_on(self, conn: Any, keys: list[bytes]) -> int:
        by_slot: dict[int, list[bytes]] = {}
        for k in keys:
            by_slot.setdefault(self.cluster.keyslot(k), []).append(k)
        pipe = conn.pipeline(transaction=False)
        for ks in by_slot.values():
            pipe.unlink(*ks)
        return sum(int(n) for n in pipe.execute(raise_on_error=False)
                   if not isinstance(n, BaseException))

    def lock(self, name: str, timeout: float) -> Any:
        """A lock; the client names it (core.backends.lock_key) in its value's slot."""
        return _ClusterLock(self, name, timeout)

    def ping(self) -> float:
        """Latency of the slowest reachable primary; raises only if none answers."""
        worst: float | None = None
        error: BaseException | None = None
        for node in self.cluster.get_primaries():
            start = time.perf_counter()
            try:
                self.cluster.get_redis_connection(node).ping()
            except (redis.RedisError, OSError) as exc:
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
        rc = self.cluster
        out: dict[str, Any] = {"topology": "cluster"}
        for node in rc.get_primaries():
            try:
                out.update(_info_subset(rc.get_redis_connection(node).info()))
                break
            except (redis.RedisError, OSError):
                continue
        out["cluster_nodes"] = len(rc.get_nodes())
        return out

    def nodes(self) -> list[dict[str, Any]]:
        """Every known node with its role, latency, memory and reachability."""
        rc = self.cluster
        out = []
        for node in sorted(rc.get_nodes(), key=lambda n: (n.server_type != "primary", n.name)):
            conn = rc.get_redis_connection(node)
            out.append(node_report(node.name, node.server_type or "?", conn.ping, conn.info,
                                   down=self.guard.is_down(node.name)))
        return out

    def close(self) -> None:
        if self._rc is not None:
            self._rc.close()


class _ClusterLock:
    """redis-py's Lock, run through the backend's node guard and error map."""

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

        return self._backend._on_key(self._name, take)

    def release(self) -> None:
        if self._inner is None:
            return
        inner = self._inner

        def give(rc: Any) -> None:
            with contextlib.suppress(redis.exceptions.LockError):
                inner.release()  # expired or taken over: nothing of ours to release

        self._backend._on_key(self._name, give)


# -- asyncio ------------------------------------------------------------------
class AsyncClusterBackend:
    """The asyncio twin of ClusterBackend, on redis.asyncio.RedisCluster."""

    def __init__(self, url: str, settings: Settings) -> None:
        self._url = redact_url(url)
        spec = parse_hosts_url(url, 6379)
        if spec.scheme not in ("redis+cluster", "rediss+cluster"):
            raise ConfigurationError(f"not a cluster URL: {self._url}", code="E042")
        if spec.path and spec.path != ("0",):
            raise ConfigurationError(
                f"Redis Cluster has only database 0, not {'/'.join(spec.path)!r} in "
                f"{self._url}", code="E042")
        self._seeds = list(spec.hosts)
        self._options = node_options(settings, spec.tls)
        if spec.username:
            self._options["username"] = spec.username
        if spec.password:
            self._options["password"] = spec.password
        self._retries = settings.RETRIES
        self._read_from_replicas = settings.REPLICA_READS and spec.query.get(
            "replica_reads", "").lower() in ("1", "true", "yes")
        self.guard = NodeGuard(min(settings.CIRCUIT_BREAKER_RECOVERY_TIMEOUT, 5.0))
        self.deferred = DeferredDeletes(settings.PENDING_DELETES_MAX)
        self._replay_at = 0.0
        self._rc: Any = None
        self._cas: Any = None
        self._node_clients: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<AsyncClusterBackend {self._url}>"

    def describe(self) -> str:
        """Where the data lives, password redacted."""
        return self._url

    async def cluster(self) -> Any:
        """The RedisCluster, initialized on first use so a cluster down at start-up fails open."""
        if self._rc is not None:
            return self._rc
        from redis.asyncio.cluster import ClusterNode as AsyncNode
        from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
        from redis.asyncio.retry import Retry as AsyncRetry

        options = {k: v for k, v in self._options.items() if k != "ssl"}
        rc = AsyncRedisCluster(
            startup_nodes=[AsyncNode(h, p) for h, p in self._seeds],
            require_full_coverage=False,
            load_balancing_strategy=(LoadBalancingStrategy.ROUND_ROBIN
                                     if self._read_from_replicas else None),
            retry=AsyncRetry(NoBackoff(), self._retries),
            ssl=bool(self._options.get("ssl")),
            **options,
        )
        try:
            await rc.initialize()
        except (redis.RedisError, redis.exceptions.RedisClusterException, OSError) as exc:
            await rc.aclose()
            raise translate(exc) from None
        if self._rc is None:  # another task may have won the race
            self._rc = rc
            self._cas = rc.register_script(_CAS)
        else:
            await rc.aclose()
        return self._rc

    def _node_client(self, node: Any) -> Any:
        """A plain asyncio Redis for one node, for its pipelines (cached by node name)."""
        client = self._node_clients.get(node.name)
        if client is None:
            from redis.asyncio import Redis as AsyncRedis
            from redis.asyncio.retry import Retry as AsyncRetry

            client = AsyncRedis(host=node.host, port=node.port,
                                retry=AsyncRetry(NoBackoff(), 0), **self._options)
            self._node_clients[node.name] = client
        return client

    async def _unreachable(self, name: str, exc: BaseException) -> CachekitError:
        self.guard.failed(name)
        rc = await self.cluster()
        primaries = [n.name for n in rc.get_primaries()]
        if primaries and all(self.guard.is_down(n) for n in primaries):
            return translate(exc)
        what = "reports the cluster down" if isinstance(exc, _NODE_DOWN) else "unreachable"
        return BackendConnectionError(f"cluster node {name} {what} ({type(exc).__name__})",
                                      code="E013")

    async def _on_key(self, key: str, call: Callable[[Any], Any]) -> Any:
        rc = await self.cluster()
        try:
            node = rc.nodes_manager.get_node_from_slot(rc.keyslot(key))
        except (redis.RedisError, redis.exceptions.RedisClusterException, KeyError,
                IndexError) as exc:
            raise BackendConnectionError(f"no node owns this key ({type(exc).__name__})",
                                         code="E013") from None
        await self._maybe_replay()
        if not self.guard.admit(node.name):
            raise BackendConnectionError(f"cluster node {node.name} is marked unreachable",
                                         code="E013")
        try:
            result = await call(rc)
        except (*_UNREACHABLE, _NODE_DOWN) as exc:
            raise await self._unreachable(node.name, exc) from None
        except (redis.RedisError, redis.exceptions.RedisClusterException) as exc:
            raise translate(exc) from None
        self._node_ok(node.name)
        return result

    def _node_ok(self, name: str) -> None:
        if self.guard.ok(name) and self.deferred:
            self._replay_at = 0.0

    async def _lost(self, name: str) -> None:
        """Mark a node unreachable and reload the slot map (a replica may own its slots now)."""
        self.guard.failed(name)
        with contextlib.suppress(redis.RedisError, redis.exceptions.RedisClusterException,
                                 OSError):
            await (await self.cluster()).nodes_manager.initialize()

    async def _fan_out(
        self,
        keys: Sequence[str],
        queue: Callable[[Any, list[str]], int],
        accept: Callable[[list[int], list[Any]], None],
        again: Callable[[list[int]], Any],
        *,
        partial_ok: bool = False,
    ) -> list[int]:
        """Asyncio version of ClusterBackend._fan_out (one pipeline per node)."""
        rc = await self.cluster()
        groups: dict[str, tuple[Any, dict[int, list[int]]]] = {}
        missed: list[int] = []
        for i, key in enumerate(keys):
            slot = rc.keyslot(key)
            try:
                node = rc.nodes_manager.get_node_from_slot(slot)
            except (redis.exceptions.RedisClusterException, KeyError, IndexError):
                missed.append(i)
                continue
            groups.setdefault(node.name, (node, {}))[1].setdefault(slot, []).append(i)
        last: tuple[str, BaseException] | None = None
        reached = 0
        for name, (node, slots) in groups.items():
            positions = [i for p in slots.values() for i in p]
            if not self.guard.admit(name):
                missed.extend(positions)
                continue
            try:
                pipe = self._node_client(node).pipeline(transaction=False)
                counts = [queue(pipe, [keys[i] for i in p]) for p in slots.values()]
                replies = await pipe.execute(raise_on_error=False)
            except _UNREACHABLE as exc:
                await self._lost(name)
                missed.extend(positions)
                last = (name, exc)
                continue
            except redis.RedisError as exc:
                raise translate(exc) from None
            if any(isinstance(r, _NODE_DOWN) for r in replies):
                await self._lost(name)
                missed.extend(positions)
                last = (name, next(r for r in replies if isinstance(r, _NODE_DOWN)))
                continue
            reached += 1
            self._node_ok(name)
            at = 0
            for slot_positions, n in zip(slots.values(), counts, strict=True):
                chunk = replies[at:at + n]
                at += n
                if any(isinstance(r, _REROUTE) for r in chunk):
                    await again(slot_positions)
                    continue
                for r in chunk:
                    if isinstance(r, BaseException):
                        raise translate(r)
                accept(slot_positions, chunk)
        if not reached and last is not None:
            error = await self._unreachable(*last)
            if not partial_ok or error.code != "E013":
                raise error
        if not reached and missed and not partial_ok:
            raise BackendConnectionError("no reachable cluster node owns these keys",
                                         code="E013")
        return missed

    async def _routed(self, call: Callable[[Any], Any]) -> Any:
        try:
            return await call(await self.cluster())
        except (redis.RedisError, redis.exceptions.RedisClusterException, OSError) as exc:
            raise translate(exc) from None

    async def _maybe_replay(self) -> None:
        if not self.deferred or time.monotonic() < self._replay_at:
            return
        self._replay_at = time.monotonic() + self.guard.retry_after
        keys, prefixes = self.deferred.take()
        for prefix in prefixes:
            try:
                await self.delete_prefix(prefix)
            except CachekitError:
                self.deferred.prefixes.add(prefix)
        if keys:
            try:
                await self._delete_keys(keys)
            except CachekitError:
                self.deferred.add(keys)

    async def get(self, key: str) -> bytes | None:
        return cast("bytes | None", await self._on_key(key, lambda rc: rc.get(key)))

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        await self._maybe_replay()
        out: list[bytes | None] = [None] * len(keys)

        def queue(pipe: Any, ks: list[str]) -> int:
            pipe.mget(ks)
            return 1

        def accept(positions: list[int], replies: list[Any]) -> None:
            for i, v in zip(positions, replies[0], strict=True):
                out[i] = v

        async def again(positions: list[int]) -> None:
            for i in positions:
                out[i] = await self._routed(_cmd("get", keys[i]))

        await self._fan_out(keys, queue, accept, again)
        return out

    async def set(self, key: str, value: bytes, ttl: float | None, *, nx: bool = False) -> bool:
        stored = bool(
            await self._on_key(key, lambda rc: rc.set(key, value, px=_ms(ttl), nx=nx))
        )
        if stored:
            self.deferred.discard((key,))  # a delete replayed later would erase this value
        return stored

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None) -> bool:
        if not items:
            return True
        await self._maybe_replay()
        keys = list(items)
        px = _ms(ttl)

        def queue(pipe: Any, ks: list[str]) -> int:
            for k in ks:
                pipe.set(k, items[k], px=px)
            return len(ks)

        async def again(positions: list[int]) -> None:
            for i in positions:
                await self._routed(_cmd("set", keys[i], items[keys[i]], px=px))

        missed = await self._fan_out(keys, queue, lambda positions, replies: None, again)
        lost = set(missed)
        self.deferred.discard(k for i, k in enumerate(keys) if i not in lost)
        if missed:
            # Whatever those nodes hold now may be stale: delete it when they answer.
            self.deferred.add(keys[i] for i in missed)
            return False
        return True

    async def delete(self, key: str) -> bool:
        return bool(await self._on_key(key, lambda rc: rc.delete(key)))

    async def _delete_keys(self, keys: Sequence[str]) -> int:
        removed = [0]

        def queue(pipe: Any, ks: list[str]) -> int:
            pipe.delete(*ks)
            return 1

        def accept(positions: list[int], replies: list[Any]) -> None:
            removed[0] += int(replies[0])

        async def again(positions: list[int]) -> None:
            for i in positions:
                removed[0] += int(await self._routed(_cmd("delete", keys[i])))

        missed = await self._fan_out(keys, queue, accept, again, partial_ok=True)
        if missed:
            self.deferred.add(keys[i] for i in missed)
        return removed[0]

    async def delete_many(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        await self._maybe_replay()
        return await self._delete_keys(list(keys))

    async def touch(self, key: str, ttl: float | None) -> bool:
        if ttl is None:
            if not await self._on_key(key, lambda rc: rc.exists(key)):
                return False
            await self._on_key(key, lambda rc: rc.persist(key))
            return True
        ms = _ms(ttl) or 1
        return bool(await self._on_key(key, lambda rc: rc.pexpire(key, ms)))

    async def ttl(self, key: str) -> float | None:
        ms = int(await self._on_key(key, lambda rc: rc.pttl(key)))
        if ms == -1:
            return None
        return 0.0 if ms < 0 else ms / 1000.0

    async def exists(self, key: str) -> bool:
        return bool(await self._on_key(key, lambda rc: rc.exists(key)))

    async def update(self, key: str, fn: Callable[[bytes], bytes]) -> bytes | None:
        for _ in range(_UPDATE_ATTEMPTS):
            old = await self.get(key)
            if old is None:
                return None
            new = fn(old)
            if await self._on_key(key, _swap(self._cas, key, old, new)):
                return new
        raise LockTimeoutError("too much contention on one key", code="E050")

    async def delete_prefix(self, prefix: str) -> int:
        """SCAN every primary for ``prefix`` and unlink per slot; lost nodes are done later."""
        rc = await self.cluster()
        pattern = _escape_glob(prefix) + "*"
        removed = reached = 0
        primaries = rc.get_primaries()
        last_exc: BaseException | None = None
        for node in primaries:
            if not self.guard.admit(node.name):
                self.deferred.prefixes.add(prefix)
                continue
            conn = self._node_client(node)
            try:
                batch: list[bytes] = []
                async for k in conn.scan_iter(match=pattern, count=1000):
                    batch.append(k)
                    if len(batch) >= _SCAN_BATCH:
                        removed += await self._unlink_on(rc, conn, batch)
                        batch = []
                if batch:
                    removed += await self._unlink_on(rc, conn, batch)
            except _UNREACHABLE as exc:
                await self._lost(node.name)
                self.deferred.prefixes.add(prefix)
                last_exc = exc
                continue
            except redis.RedisError as exc:
                raise translate(exc) from None
            reached += 1
            self._node_ok(node.name)
        if primaries and not reached and last_exc is not None:
            raise await self._unreachable(primaries[0].name, last_exc)
        return removed

    async def _unlink_on(self, rc: Any, conn: Any, keys: list[bytes]) -> int:
        by_slot: dict[int, list[bytes]] = {}
        for k in keys:
            by_slot.setdefault(rc.keyslot(k), []).append(k)
        pipe = conn.pipeline(transaction=False)
        for ks in by_slot.values():
            pipe.unlink(*ks)
        return sum(int(n) for n in await pipe.execute(raise_on_error=False)
                   if not isinstance(n, BaseException))

    def lock(self, name: str, timeout: float) -> Any:
        """A lock; the client names it (core.backends.lock_key) in its value's slot."""
        return _AsyncClusterLock(self, name, timeout)

    async def ping(self) -> float:
        """Latency of the slowest reachable primary; raises only if none answers."""
        rc = await self.cluster()
        worst: float | None = None
        error: BaseException | None = None
        for node in rc.get_primaries():
            start = time.perf_counter()
            try:
                await self._node_client(node).ping()
            except (redis.RedisError, OSError) as exc:
                error = exc
                continue
            took = time.perf_counter() - start
            worst = took if worst is None else max(worst, took)
        if worst is None:
            raise translate(error) if error else BackendConnectionError(
                "no cluster primary known", code="E010")
        return worst

    async def info(self) -> dict[str, Any]:
        """INFO of the first reachable primary, plus the node count."""
        rc = await self.cluster()
        out: dict[str, Any] = {"topology": "cluster"}
        for node in rc.get_primaries():
            try:
                out.update(_info_subset(await self._node_client(node).info()))
                break
            except (redis.RedisError, OSError):
                continue
        out["cluster_nodes"] = len(rc.get_nodes())
        return out

    async def nodes(self) -> list[dict[str, Any]]:
        """Every known node with its role, latency, memory and reachability."""
        rc = await self.cluster()
        out = []
        for node in sorted(rc.get_nodes(), key=lambda n: (n.server_type != "primary", n.name)):
            conn = self._node_client(node)
            entry: dict[str, Any] = {"node": node.name, "role": node.server_type or "?",
                                     "reachable": False, "latency_ms": None,
                                     "used_memory": None, "used_memory_human": None,
                                     "error": "E013" if self.guard.is_down(node.name) else None}
            try:
                start = time.perf_counter()
                await conn.ping()
                entry["latency_ms"] = round((time.perf_counter() - start) * 1000, 3)
                raw = await conn.info()
                entry.update(reachable=True, error=None, used_memory=raw.get("used_memory"),
                             used_memory_human=raw.get("used_memory_human"),
                             maxmemory=raw.get("maxmemory"), server_role=raw.get("role"))
            except (redis.RedisError, OSError) as exc:
                entry["error"] = translate(exc).code
            out.append(entry)
        return out

    async def close(self) -> None:
        for client in self._node_clients.values():
            await client.aclose()
        if self._rc is not None:
            await self._rc.aclose()


class _AsyncClusterLock:
    """redis-py's asyncio Lock, run through the backend's node guard and error map."""

    def __init__(self, backend: AsyncClusterBackend, name: str, timeout: float) -> None:
        self._backend = backend
        self._name = name
        self._timeout = timeout
        self._inner: Any = None

    async def acquire(self, blocking: bool = True, blocking_timeout: float | None = None) -> bool:
        async def take(rc: Any) -> bool:
            self._inner = rc.lock(self._name, timeout=self._timeout, sleep=0.01,
                                  thread_local=False)
            return bool(await self._inner.acquire(blocking=blocking,
                                                  blocking_timeout=blocking_timeout))

        return bool(await self._backend._on_key(self._name, take))

    async def release(self) -> None:
        if self._inner is None:
            return
        inner = self._inner

        async def give(rc: Any) -> None:
            with contextlib.suppress(redis.exceptions.LockError):
                await inner.release()  # expired or taken over: nothing of ours to release

        await self._backend._on_key(self._name, give)
