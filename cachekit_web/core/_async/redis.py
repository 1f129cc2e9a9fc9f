"""A Redis store on redis-py: URL, TLS, unix socket.

The async source of the Redis backend; ``core/_sync/redis.py`` is generated from it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import redis

from ..backends.common import (
    CAS_SCRIPT,
    DELETE_IF_SCRIPT,
    INCR_SCRIPT,
    PASSTHROUGH,
    SWAP_SCRIPT,
    UPDATE_ATTEMPTS,
    cas_args,
    cas_result,
    contention_pause,
    incr_args,
    incr_result,
    info_subset,
    milliseconds,
    pool_from_url,
    pool_options,
    sent_once_command,
    translate,
    translated,
)
from ..backends.errors import ConnectRefused, ConnectTimeout, PoolExhausted
from ..backends.redispy import (
    AsyncBlockingConnectionPool,
    AsyncConnection,
    AsyncLane,
    AsyncPooledLane,
    AsyncRedis,
    AsyncRetry,
    AsyncSSLConnection,
    AsyncUnixDomainSocketConnection,
    sent_once,
)
from ..errors import CachekitError, LockTimeoutError
from ..flavours import async_sleep
from ..keys import escape_glob
from ..settings import Settings
from ..urls import redact_url
from .pending import async_batches, async_count_batches


class AsyncConnectPhaseMixin:
    """Marks errors raised while connecting, so the map can tell E010/E011 from E065/E064."""

    passthrough: tuple[type[BaseException], ...] = PASSTHROUGH  # keep their own codes

    async def connect(self, *args: Any, **kwargs: Any) -> None:
        # connect() runs connect_check_health below, which marks the errors (redis-py
        # 6.0 to 8.x). It health-checks the handshake's own commands: a PING before the
        # first one on a server without AUTH (on 5.x a refused PING recursed). A new
        # connection needs no check; its first reply schedules the next one.
        if getattr(self, "_sock", None) is None and getattr(self, "_reader", None) is None:
            conn: Any = self
            conn.next_health_check = float("inf")
        await super().connect(*args, **kwargs)  # type: ignore[misc]

    async def connect_check_health(self, *args: Any, **kwargs: Any) -> None:
        try:
            await super().connect_check_health(*args, **kwargs)  # type: ignore[misc]
        except self.passthrough:
            raise
        except redis.TimeoutError as exc:
            raise ConnectTimeout(*exc.args) from None
        except redis.ConnectionError as exc:
            raise ConnectRefused(*exc.args) from None


class _AsyncTcpConnection(AsyncConnectPhaseMixin, AsyncConnection):
    pass


class _AsyncSslConnection(AsyncConnectPhaseMixin, AsyncSSLConnection):
    pass


class _AsyncUnixConnection(AsyncConnectPhaseMixin, AsyncUnixDomainSocketConnection):
    pass


class AsyncPool(AsyncBlockingConnectionPool):
    """A blocking pool whose exhaustion is E012, not a connection error."""

    lane: Any = None  # the backend's data path, which may keep idle connections lent by us

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        lane = self.lane
        if lane is not None:
            idle = lane.lend()  # one back first: connections idling in the lane are ours
            if idle is not None:
                await self.release(idle)  # type: ignore[no-untyped-call,unused-ignore]
        try:
            return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except (ConnectRefused, ConnectTimeout, *PASSTHROUGH):
            raise
        except redis.ConnectionError as exc:
            raise PoolExhausted(*exc.args) from None


CONNECTION_CLASSES: dict[str, Any] = {
    "redis": _AsyncTcpConnection, "rediss": _AsyncSslConnection, "unix": _AsyncUnixConnection,
}


def async_pool_for(url: str, settings: Settings) -> Any:
    """A pool for ``url`` with this module's connection classes and the shared options."""
    return pool_from_url(AsyncPool, url, CONNECTION_CLASSES,
                         pool_options(url, settings, AsyncRetry))




# What the data path translates at the error boundary (plain try/except: no context
# manager on the hot path).
_REDIS_ERRORS = (redis.RedisError, redis.exceptions.RedisClusterException, OSError)


class _AsyncLaneSlot:
    """A backend built without ``__init__`` (Sentinel's pools) gets redis-py's own path."""

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        lane = obj.__dict__["_lane"] = AsyncPooledLane(obj.client)
        return lane


class AsyncRedisBackend:
    """A Redis store with a bounded, blocking connection pool."""

    _lane: Any = _AsyncLaneSlot()

    def __init__(self, url: str, settings: Settings) -> None:
        self._url = redact_url(url)
        self.pool = async_pool_for(url, settings)
        self.client: Any = AsyncRedis(connection_pool=self.pool)  # redis-py typing is loose
        # Single-key commands and the small idempotent batches: the lean path (sync: one
        # kept connection per thread, see backends.redispy.Lane).
        self._lane = AsyncLane(self.client, settings.RETRIES)
        self.pool.lane = self._lane
        self._incr = self.client.register_script(INCR_SCRIPT)
        self._cas = self.client.register_script(CAS_SCRIPT)
        self._delete_if = self.client.register_script(DELETE_IF_SCRIPT)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._url}>"

    def describe(self) -> str:
        """Where the data lives, password redacted."""
        return self._url

    def cut_in_flight(self) -> int:
        """Fail the commands waiting on a hung server now (the sync data path's; the event
        loop is never blocked by one); how many."""
        return int(self._lane.cut_in_flight())

    async def _run(self, *args: Any) -> Any:
        """One command on the lean data path, errors translated (plain try/except)."""
        try:
            return await self._lane.call(*args)
        except CachekitError:
            raise
        except _REDIS_ERRORS as exc:
            raise translate(exc) from None

    async def _run_strs(self, *args: str) -> Any:
        """``_run`` for a command whose arguments are all str (its keys)."""
        try:
            return await self._lane.call_strs(*args)
        except CachekitError:
            raise
        except _REDIS_ERRORS as exc:
            raise translate(exc) from None

    async def _run_many(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Idempotent commands in one round trip on the lean data path, errors translated."""
        try:
            return cast("list[Any]", await self._lane.call_many(commands))
        except CachekitError:
            raise
        except _REDIS_ERRORS as exc:
            raise translate(exc) from None

    async def get(self, key: str) -> bytes | None:
        return cast("bytes | None", await self._run("GET", key))

    async def get_with_ttl(self, key: str) -> tuple[bytes | None, int, str | None]:
        """GET and PTTL in one round trip: (value, ms left; -1 = no expiry, -2 = missing,
        the node that answered: None here, one server is the only one)."""
        raw, ms = await self._run_many((("GET", key), ("PTTL", key)))
        return raw, int(ms), None

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        return cast("list[bytes | None]", await self._run_strs("MGET", *keys))

    async def set(self, key: str, value: bytes, ttl: float | None, *, nx: bool = False,
                  xx: bool = False) -> bool:
        args: list[Any] = ["SET", key, value]
        px = milliseconds(ttl)
        if px is not None:
            args += ("PX", px)
        if nx:
            args.append("NX")
        if xx:
            args.append("XX")
        if nx:  # SET NX run twice answers False while our value sits there: never re-sent
            with sent_once():
                return bool(await self._run(*args))
        return bool(await self._run(*args))

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None) -> bool:
        if not items:
            return True
        px = milliseconds(ttl)
        tail: tuple[Any, ...] = () if px is None else ("PX", px)
        await self._run_many([("SET", k, v, *tail) for k, v in items.items()])
        return True

    async def delete(self, key: str) -> bool:
        return bool(await self._run("DEL", key))

    async def delete_many(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        return int(await self._run("DEL", *keys))

    async def delete_if_equal(self, key: str, expected: bytes) -> bool:
        """Delete ``key`` only if it still holds ``expected`` (one server-side step)."""
        with translated():
            return bool(await self._delete_if(keys=[key], args=[expected]))

    async def touch(self, key: str, ttl: float | None) -> bool:
        if ttl is None:
            found, _ = await self._run_many((("EXISTS", key), ("PERSIST", key)))
            return bool(found)
        return bool(await self._run("PEXPIRE", key, milliseconds(ttl) or 1))

    async def ttl(self, key: str) -> float | None:
        ms = int(await self._run("PTTL", key))
        if ms == -1:
            return None
        return 0.0 if ms < 0 else ms / 1000.0

    async def exists(self, key: str) -> bool:
        return bool(await self._run("EXISTS", key))

    async def incr(self, key: str, delta: int, default: int | None,
                   ttl: float | None) -> int | bytes | None:
        """INCRBY in one server-side step: the new value; None if missing (and no default);
        the stored bytes when they are not a Redis integer (or would overflow)."""
        with translated(), sent_once():  # run twice, it would add twice
            return incr_result(await self._incr(keys=[key],
                                                args=incr_args(delta, default, ttl)))

    async def compare_and_set(self, key: str, expected: bytes, value: bytes, *,
                              ttl: float | None = None,
                              keep_ttl: bool = True) -> tuple[bool, bytes | None]:
        """Store ``value`` only if ``key`` still holds ``expected``; (swapped, current bytes)."""
        with translated(), sent_once():  # run twice, the second finds our bytes: "lost"
            return cas_result(await self._cas(keys=[key],
                                              args=cas_args(expected, value, ttl, keep_ttl)))

    async def update(self, key: str, fn: Callable[[bytes], bytes]) -> bytes | None:
        with translated():
            async with self.client.pipeline(transaction=True) as pipe:
                for attempt in range(UPDATE_ATTEMPTS):
                    try:
                        await pipe.watch(key)
                        old = await pipe.get(key)
                        if old is None:
                            await pipe.unwatch()
                            return None
                        new = fn(old)
                        pipe.multi()
                        pipe.set(key, new, keepttl=True)
                        await pipe.execute()
                        return new
                    except redis.WatchError:
                        await async_sleep(contention_pause(attempt))
        raise LockTimeoutError("too much contention on one key", code="E050")

    async def compare_and_set_many(self, items: Sequence[tuple[str, bytes, bytes]]) -> list[bool]:
        """For each (key, old, new): write ``new``, TTL kept, only if ``key`` still holds ``old``.

        One round trip for the batch; an entry that changed (or errs) is False, untouched.
        """
        if not items:
            return []
        cas = self.client.register_script(SWAP_SCRIPT)  # here, not in __init__: Sentinel skips that
        with translated():
            pipe = self.client.pipeline(transaction=False)
            for key, old, new in items:
                await cas(keys=[key], args=[old, new], client=pipe)
            replies = await pipe.execute(raise_on_error=False)
        return [r == 1 for r in replies]

    def scan_prefix(self, prefix: str, count: int = 1000) -> Any:
        """Yield the keys under ``prefix`` in batches (SCAN, never KEYS)."""
        return self.scan_match(escape_glob(prefix) + "*", count)

    async def scan_match(self, match: str, count: int = 1000) -> Any:
        """Yield the keys matching the SCAN pattern ``match`` in batches (never KEYS)."""
        with translated():
            async for batch in async_batches(self.client.scan_iter(match=match, count=count)):
                yield batch

    async def command(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Run one redis-py command method (sets, hashes, sorted sets, expiry) as is."""
        with translated(), (sent_once() if sent_once_command(name, kwargs)
                            else contextlib.nullcontext()):
            return await getattr(self.client, name)(*args, **kwargs)

    async def count_prefix(self, prefix: str, limit: int) -> int:
        """How many keys lie under ``prefix``, counting at most ``limit``."""
        return await async_count_batches(self.scan_prefix(prefix), limit)

    async def delete_prefix(self, prefix: str) -> int:
        removed = 0
        async for batch in self.scan_prefix(prefix):
            with translated():
                removed += int(await self.client.unlink(*batch))
        return removed

    def lock(self, name: str, timeout: float | None, *, sleep: float = 0.01,
             thread_local: bool = False) -> AsyncTranslatedLock:
        return AsyncTranslatedLock(self.client.lock(name, timeout=timeout, sleep=sleep,
                                                    thread_local=thread_local))

    async def ping(self) -> float:
        start = time.perf_counter()
        with translated():
            await self.client.ping()
        return time.perf_counter() - start

    async def info(self) -> dict[str, Any]:
        with translated():
            return info_subset(await self.client.info())

    async def close(self) -> None:
        self._lane.clear()
        await self.pool.disconnect()


class AsyncTranslatedLock:
    """redis-py's lock with our error boundary; releasing a lost lock is not an error."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def acquire(self, blocking: bool = True, blocking_timeout: float | None = None) -> bool:
        with translated():
            return bool(
                await self._inner.acquire(blocking=blocking, blocking_timeout=blocking_timeout)
            )

    async def release(self) -> bool:
        """Give the lock back; False if it was no longer held (expired or released)."""
        with translated():
            try:
                await self._inner.release()
            except redis.exceptions.LockError:
                return False
        return True

    async def extend(self, additional_time: float, replace_ttl: bool = False) -> bool:
        """Add time to a held lock (or set it, with replace_ttl); False if not held."""
        with translated():
            try:
                return bool(await self._inner.extend(additional_time, replace_ttl))
            except redis.exceptions.LockError:
                return False

    async def reacquire(self) -> bool:
        """Reset a held lock's TTL to its timeout; False if not held."""
        with translated():
            try:
                return bool(await self._inner.reacquire())
            except redis.exceptions.LockError:
                return False

    async def locked(self) -> bool:
        """Whether anyone holds the lock."""
        with translated():
            return bool(await self._inner.locked())

    async def owned(self) -> bool:
        """Whether this lock object holds it."""
        with translated():
            return bool(await self._inner.owned())
