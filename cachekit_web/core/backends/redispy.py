"""redis-py's classes under one name per flavour.

The async sources in ``core/_async`` import the ``Async*`` names; the generated
sync modules import the same names without the prefix. This table is the only
place that knows which redis-py module each flavour comes from, and how each
flavour opens a cluster and a node's connection.
"""

from __future__ import annotations

import contextlib
import copy
import os
import socket
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any

import redis
import redis.asyncio as aredis
import redis.asyncio.cluster as acluster
import redis.asyncio.connection as aconn
import redis.asyncio.lock as alock
import redis.asyncio.retry as aretry
import redis.asyncio.sentinel as asentinel
import redis.cluster as scluster
import redis.connection as sconn
import redis.lock as slock
import redis.retry as sretry
import redis.sentinel as ssentinel

from .errors import ConnectRefused, ConnectTimeout, PoolExhausted

_hiredis_pack: Callable[[tuple[Any, ...]], bytes] | None
try:  # what redis-py's hiredis packer calls (redis-py uses it only with hiredis >= 3)
    from hiredis import pack_command as _hiredis_pack
except ImportError:
    _hiredis_pack = None
_HIREDIS_PACKER = getattr(sconn, "HiredisRespSerializer", None)

Redis = redis.Redis
AsyncRedis = aredis.Redis
Connection = sconn.Connection
AsyncConnection = aconn.Connection
SSLConnection = sconn.SSLConnection
AsyncSSLConnection = aconn.SSLConnection
UnixDomainSocketConnection = sconn.UnixDomainSocketConnection
AsyncUnixDomainSocketConnection = aconn.UnixDomainSocketConnection
BlockingConnectionPool = redis.BlockingConnectionPool
AsyncBlockingConnectionPool = aredis.BlockingConnectionPool
Lock = slock.Lock
AsyncLock = alock.Lock

# -- commands not safe to repeat -------------------------------------------------------
# Set while a command runs that must not be re-sent after its connection was lost
# mid-command (the server may have run it: an INCRBY, a compare-and-set, a SET NX).
_ONCE: ContextVar[bool] = ContextVar("cachekit_send_once", default=False)


@contextlib.contextmanager
def sent_once() -> Iterator[None]:
    """Commands in this block are never retried once sent (RETRIES spares them): a
    lost reply raises, and the caller answers as for an unknown outcome."""
    token = _ONCE.set(True)
    try:
        yield
    finally:
        _ONCE.reset(token)


def _no_retries(retry: Any) -> Any:
    twin = copy.copy(retry)
    twin._retries = 0
    return twin


class Retry(sretry.Retry):
    """redis-py's Retry, with no retry inside ``sent_once()`` (commands and cluster)."""

    def call_with_retry(self, do: Any, fail: Any, *args: Any, **kwargs: Any) -> Any:
        if _ONCE.get():
            return sretry.Retry.call_with_retry(_no_retries(self), do, fail, *args, **kwargs)
        return super().call_with_retry(do, fail, *args, **kwargs)

    def get_retries(self) -> int:
        """How many retries (the cluster's own loop asks): none inside ``sent_once()``."""
        return 0 if _ONCE.get() else int(self._retries)


class AsyncRetry(aretry.Retry):
    """redis.asyncio's Retry, with no retry inside ``sent_once()``."""

    async def call_with_retry(self, do: Any, fail: Any, *args: Any, **kwargs: Any) -> Any:
        if _ONCE.get():
            return await aretry.Retry.call_with_retry(_no_retries(self), do, fail, *args,
                                                      **kwargs)
        return await super().call_with_retry(do, fail, *args, **kwargs)

    def get_retries(self) -> int:
        """How many retries (the cluster's own loop asks): none inside ``sent_once()``."""
        return 0 if _ONCE.get() else int(self._retries)

RedisCluster = scluster.RedisCluster
AsyncRedisCluster = acluster.RedisCluster
ClusterNode = scluster.ClusterNode
AsyncClusterNode = acluster.ClusterNode
Sentinel = ssentinel.Sentinel
AsyncSentinel = asentinel.Sentinel
SentinelConnectionPool = ssentinel.SentinelConnectionPool
AsyncSentinelConnectionPool = asentinel.SentinelConnectionPool
SentinelManagedConnection = ssentinel.SentinelManagedConnection
AsyncSentinelManagedConnection = asentinel.SentinelManagedConnection
SentinelManagedSSLConnection = ssentinel.SentinelManagedSSLConnection
AsyncSentinelManagedSSLConnection = asentinel.SentinelManagedSSLConnection
MasterNotFoundError = ssentinel.MasterNotFoundError
AsyncMasterNotFoundError = asentinel.MasterNotFoundError
SlaveNotFoundError = ssentinel.SlaveNotFoundError
AsyncSlaveNotFoundError = asentinel.SlaveNotFoundError


# -- how a cluster and its node connections are made, per flavour ---------------
def _no_timeouts(errors: tuple[type[Exception], ...]) -> tuple[type[Exception], ...]:
    return tuple(e for e in errors if not issubclass(e, redis.TimeoutError))


class _RetryingCluster(scluster.RedisCluster):
    """RedisCluster whose retries (RETRIES) re-route lost connections, never a timeout.

    redis-py retries the error types listed here whatever the Retry object says.
    """

    ERRORS_ALLOW_RETRY = _no_timeouts(  # type: ignore[assignment]
        scluster.RedisCluster.ERRORS_ALLOW_RETRY)


class _AsyncRetryingCluster(acluster.RedisCluster):
    """The asyncio RedisCluster, retrying lost connections but never a timeout."""

    ERRORS_ALLOW_RETRY = _no_timeouts(  # type: ignore[assignment]
        acluster.RedisCluster.ERRORS_ALLOW_RETRY)


def open_cluster(seeds: Sequence[tuple[str, int]], options: dict[str, Any]) -> Any:
    """A RedisCluster on ``seeds``; it reads the slot map now (raises if no seed answers)."""
    return _RetryingCluster(startup_nodes=[ClusterNode(h, p)  # type: ignore[no-untyped-call]
                                           for h, p in seeds], **options)


def close_client(client: Any) -> None:
    """Close a redis-py client."""
    client.close()


async def async_close_client(client: Any) -> None:
    """Close an asyncio redis-py client."""
    await client.aclose()


async def async_open_cluster(seeds: Sequence[tuple[str, int]], options: dict[str, Any]) -> Any:
    """An asyncio RedisCluster on ``seeds``, its slot map read (raises if no seed answers)."""
    rc = _AsyncRetryingCluster(startup_nodes=[AsyncClusterNode(h, p) for h, p in seeds],
                               **options)
    try:
        await rc.initialize()
    except BaseException:
        await async_close_client(rc)
        raise
    return rc


def node_client(rc: Any, node: Any, cache: dict[str, Any], options: dict[str, Any]) -> Any:
    """A plain client for one node's pipelines: redis-py's own, on the cluster's pool."""
    return rc.get_redis_connection(node)


def async_node_client(rc: Any, node: Any, cache: dict[str, Any],
                      options: dict[str, Any]) -> Any:
    """A plain asyncio client for one node's pipelines (redis-py has none), kept in ``cache``."""
    client = cache.get(node.name)
    if client is None:
        client = cache[node.name] = AsyncRedis(host=node.host, port=node.port, **options)
    return client


def unopened_cluster(seeds: Sequence[tuple[str, int]], options: dict[str, Any]) -> Any:
    """A RedisCluster for get_client(): the sync one reads its slot map now."""
    return open_cluster(seeds, options)


def async_unopened_cluster(seeds: Sequence[tuple[str, int]], options: dict[str, Any]) -> Any:
    """An asyncio RedisCluster for get_client(): it reads its slot map on first use."""
    return _AsyncRetryingCluster(startup_nodes=[AsyncClusterNode(h, p) for h, p in seeds],
                                 **options)


# -- the data path of the plain Redis backend, per flavour ------------------------------

# A connection idle longer than this is polled before reuse (as redis-py's pool polls every
# checkout), so a server restart between requests costs no error; a thread serving calls
# back to back (under a millisecond apart) never polls.
STALE_AFTER = 0.001


class Lane:
    """Commands through redis-py's connection layer, on connections lent by the pool.

    A connection is taken from ``client``'s pool once and then kept on a LIFO stack of
    idle connections, so a thread reuses the one it just used: no pool lock or poll per
    command. One getpid() per command: a fork done in C (uWSGI's master, which Python's
    fork hooks never see) must not leave a child writing to its parent's socket. The
    pool still counts every connection (CONNECTION_POOL_SIZE and POOL_TIMEOUT hold: with
    none idle, a caller waits on the pool, then E012). The
    connection class keeps timeouts, TLS, AUTH and connect-phase marking. A connection
    lost mid-command is retried on a fresh connection ``retries`` times (RETRIES), but
    not inside ``sent_once()``; timeouts and errors while connecting are not. After
    fork() the stack is dropped. Replies are raw (no redis-py response callbacks).
    """

    def __init__(self, client: Any, retries: int = 0) -> None:
        self._pool = client.connection_pool
        self._retries = retries
        self._idle: list[tuple[Any, float]] = []
        self._busy: set[Any] = set()  # connections a command is on now (cut_in_flight)
        self._cut: weakref.WeakSet[Any] = weakref.WeakSet()  # cut: their error is not retried
        self._pid = os.getpid()

    def _forked(self) -> None:
        """In a forked child the idle connections are the parent's: never use them."""
        self._idle = []
        self._busy = set()
        self._pid = os.getpid()

    def cut_in_flight(self) -> int:
        """Shut down the sockets of commands waiting for a reply (a hung server): each
        fails at once, is not retried, and its connection is dropped. How many were cut."""
        cut = 0
        for conn in list(self._busy):
            sock = getattr(conn, "_sock", None)
            if sock is None:
                continue
            self._cut.add(conn)
            try:
                # socket.socket's own shutdown: an SSLSocket's would drop its state under
                # the thread reading it.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
                cut += 1
            except (OSError, TypeError):
                pass
        return cut

    def lend(self) -> Any:
        """An idle connection for the pool to take back (None if none), so that commands
        on the pool (pipelines, scripts) never wait for connections idling here."""
        if self._pid != os.getpid():
            self._forked()
        try:
            return self._idle.pop()[0]
        except IndexError:
            return None

    def call(self, *args: Any) -> Any:
        """Send one command and read its reply; redis-py errors propagate."""
        return self._on_connection(_one, args)

    def call_strs(self, *args: str) -> Any:
        """``call`` for a command whose arguments are all str (MGET and its keys)."""
        return self._on_connection(_one_strs, args)

    def call_many(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Several idempotent commands in one write, their replies in order (a pipeline
        without MULTI); the first error reply is raised once every reply is read."""
        return self._on_connection(_many, commands)  # type: ignore[no-any-return]

    def _on_connection(self, talk: Callable[[Any, Any], Any], what: Any) -> Any:
        """``talk(connection, what)`` on a kept connection (see the class docstring)."""
        if self._pid != os.getpid():
            self._forked()  # the pool resets itself at its next checkout
        idle = self._idle
        used: float | None = None
        try:
            conn, used = idle.pop()
        except IndexError:
            conn = self._pool.get_connection()
        busy = self._busy
        busy.add(conn)
        try:  # from here on, the connection always goes back on the stack
            # A dropped connection (e.g. its read timed out) is not checked: can_read()
            # would reconnect, and on a hung server time out once before the send does.
            if (used is not None and getattr(conn, "_sock", None) is not None
                    and time.monotonic() - used > STALE_AFTER):
                try:
                    stale = conn.can_read()  # closed by the server, or stray data
                except (redis.ConnectionError, redis.TimeoutError, OSError):
                    stale = True  # e.g. reconnecting to a hung server timed out
                if stale:
                    conn.disconnect()  # the send below reconnects
            attempts = self._retries
            while True:
                try:
                    return talk(conn, what)
                except redis.ConnectionError as exc:
                    # Lost mid-command (redis-py disconnected it): retry on a new socket.
                    # Connect-phase errors are marked subclasses and are never retried;
                    # nor is a command the server may have run already (sent_once).
                    if (attempts <= 0 or _connect_phase(exc) or _ONCE.get()
                            or conn in self._cut):
                        raise
                    attempts -= 1
        except BaseException:
            self._cut.discard(conn)
            conn.disconnect()  # a reply half read must never answer the next command
            raise
        finally:
            busy.discard(conn)
            idle.append((conn, time.monotonic()))

    def clear(self) -> None:
        """Forget idle connections (the pool disconnects them)."""
        self._idle.clear()


def _one(conn: Any, args: tuple[Any, ...]) -> Any:
    conn.send_command(*args)
    return conn.read_response()


def _one_strs(conn: Any, args: tuple[str, ...]) -> Any:
    # Where redis-py packs with hiredis and UTF-8, one hiredis call makes the same bytes
    # without redis-py's Python work per argument (about 0.4 us a key).
    encoder = conn.encoder
    packer = getattr(conn, "_command_packer", None)  # private: absent means redis-py packs
    if (type(packer) is _HIREDIS_PACKER and _hiredis_pack is not None
            and encoder.encoding == "utf-8" and encoder.encoding_errors == "strict"):
        try:
            packed = _hiredis_pack(args)
        except TypeError:  # not str after all: redis-py's own packing says so
            conn.send_command(*args)
        else:
            conn.send_packed_command([packed])
    else:
        conn.send_command(*args)
    return conn.read_response()


def _many(conn: Any, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    conn.send_packed_command(conn.pack_commands(commands))
    replies: list[Any] = []
    error: redis.ResponseError | None = None
    for _ in commands:
        try:
            replies.append(conn.read_response())
        except redis.ResponseError as exc:  # the connection stays in step: keep reading
            error = error or exc
            replies.append(exc)
    if error is not None:
        raise error
    return replies


def _connect_phase(exc: BaseException) -> bool:

    return isinstance(exc, (ConnectRefused, ConnectTimeout, PoolExhausted))


class PooledLane:
    """Commands through the client's pool and ``execute_command`` (redis-py's own path)."""

    def __init__(self, client: Any, retries: int = 0) -> None:
        self._client = client

    def call(self, *args: Any) -> Any:
        """Send one command and read its reply."""
        return self._client.execute_command(*args)

    call_strs = call

    def call_many(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Several commands in one round trip (a pipeline without MULTI)."""
        pipe = self._client.pipeline(transaction=False)
        for args in commands:
            pipe.execute_command(*args)
        return pipe.execute()  # type: ignore[no-any-return]

    def lend(self) -> Any:
        """None: this lane keeps no connection."""
        return None

    def cut_in_flight(self) -> int:
        """0: redis-py's own path waits out its socket timeout."""
        return 0

    def clear(self) -> None:
        """Nothing to forget: the pool owns every connection."""


class AsyncLane:
    """The asyncio data path: redis.asyncio's pool and ``execute_command``.

    An event loop multiplexes its connections already; the thread-keeps-its-connection
    trick of the sync ``Lane`` does not apply.
    """

    def __init__(self, client: Any, retries: int = 0) -> None:
        self._client = client

    async def call(self, *args: Any) -> Any:
        """Send one command and read its reply."""
        return await self._client.execute_command(*args)

    call_strs = call

    async def call_many(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Several commands in one round trip (a pipeline without MULTI)."""
        pipe = self._client.pipeline(transaction=False)
        for args in commands:
            pipe.execute_command(*args)
        return await pipe.execute()  # type: ignore[no-any-return]

    def lend(self) -> Any:
        """None: this lane keeps no connection."""
        return None

    def cut_in_flight(self) -> int:
        """0: redis-py's own path waits out its socket timeout."""
        return 0

    def clear(self) -> None:
        """Nothing to forget: the pool owns every connection."""


AsyncPooledLane = AsyncLane
