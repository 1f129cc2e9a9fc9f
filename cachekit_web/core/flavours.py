"""The deliberate differences between the sync and async flavours, side by side.

Everything else is written once, in ``core/_async``, and generated for sync
(``scripts/unasync.py``). Each pair here has the same interface: the async
name ``AsyncFoo`` / ``async_foo`` and the sync name ``Foo`` / ``foo``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Generic, TypeVar

from .backends import AsyncBackend, Backend
from .backends.memory import AsyncMemoryBackend, MemoryBackend
from .backends.threaded import AsyncThreadedBackend
from .singleflight import AsyncCounters, AsyncFlights, Counters, Flights

T = TypeVar("T")

__all__ = [
    "AsyncCounters",
    "AsyncFlights",
    "AsyncSlot",
    "Counters",
    "Flights",
    "Slot",
    "async_compute_value",
    "async_share_backend",
    "async_shielded",
    "async_sleep",
    "compute_value",
    "share_backend",
    "shielded",
    "sleep",
]

sleep = time.sleep


async def async_sleep(seconds: float) -> None:
    """Pause the running task."""
    await asyncio.sleep(seconds)


def shielded(result: T) -> T:
    """The result of a sync call (it already ran to the end)."""
    return result


async def async_shielded(work: Awaitable[T]) -> T:
    """Await ``work`` so that cancelling the caller does not cancel it."""
    return await asyncio.shield(work)


def compute_value(compute: Callable[[], T]) -> T:
    """Call a sync compute function."""
    return compute()


async def async_compute_value(compute: Callable[[], Any]) -> Any:
    """Call a compute function that may be sync or async."""
    value = compute()
    if inspect.isawaitable(value):
        value = await value
    return value


def share_backend(backend: Backend) -> Backend:
    """The backend itself: a sync client uses it directly."""
    return backend


def async_share_backend(backend: Backend) -> AsyncBackend:
    """The same backend (memory store or connection pool) behind the async interface.

    A memory store has no I/O, so it is called inline; any other backend's calls run
    on worker threads, so every event loop shares its one pool.
    """
    if isinstance(backend, MemoryBackend):
        return AsyncMemoryBackend(backend)
    return AsyncThreadedBackend(backend)


class Slot(Generic[T]):
    """Holds one shared instance (a sync backend is usable from any thread)."""

    def __init__(self, factory: Callable[[], T], instance: T | None = None) -> None:
        self._instance = instance if instance is not None else factory()

    def get(self) -> T:
        """The instance."""
        return self._instance

    def forget_others(self) -> None:
        """Nothing to forget: there is only one."""


class AsyncSlot(Generic[T]):
    """One instance per running event loop (redis.asyncio pools belong to one loop).

    A given ``instance`` is used as is, everywhere. Otherwise the first loop that
    asks gets the first instance; a loop that has closed (``asyncio.run`` per call)
    loses its instance, and every other live loop gets one of its own. An instance
    made for a loop is closed by that loop as it shuts down (``asyncio.run`` and
    asgiref's ``async_to_sync`` do): its connections never outlive their loop.
    """

    def __init__(self, factory: Callable[[], T], instance: T | None = None) -> None:
        self._factory = factory
        self._fixed = instance is not None
        self._base: T = instance if instance is not None else factory()
        self._base_loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self._others: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = (
            weakref.WeakKeyDictionary())
        self._closers: list[tuple[asyncio.AbstractEventLoop, AsyncGenerator[None, None]]] = []
        self._closers_lock = threading.Lock()

    def get(self) -> T:
        """The instance for the running event loop."""
        if self._fixed:
            return self._base
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self._base
        base_loop = self._base_loop() if self._base_loop is not None else None
        if base_loop is None or base_loop.is_closed():
            if self._base_loop is not None:  # its loop is gone: that pool is unusable
                self._base = self._factory()
            self._base_loop = weakref.ref(loop)
            self._close_with_loop(self._base)
            return self._base
        if base_loop is loop:
            return self._base
        # An instance references its loop, so a weak key alone never frees a closed
        # loop's entry (and its sockets): drop those explicitly.
        for closed in [other for other in self._others if other.is_closed()]:
            del self._others[closed]
        found = self._others.get(loop)
        if found is None:
            found = self._others[loop] = self._factory()
            self._close_with_loop(found)
        return found

    def forget_others(self) -> None:
        """Drop other loops' instances (they cannot be closed from this loop)."""
        self._others.clear()

    def _close_with_loop(self, instance: T) -> None:
        """Have the running loop close ``instance`` when it shuts down: a suspended async
        generator, which ``loop.shutdown_asyncgens()`` finishes in that very loop."""
        # A loop closed without shutting its async generators down (no asyncio.run) leaves
        # its instance to the garbage collector: finish its closer here, doing nothing.
        closer = _closer(instance)
        with self._closers_lock:  # loops in other threads: none may be lost (see below)
            for _, done in [c for c in self._closers if c[0].is_closed()]:
                with contextlib.suppress(StopIteration, RuntimeError):
                    done.aclose().send(None)
            # The loop holds its async generators weakly (one collected early would close
            # its instance in use): this list keeps them.
            self._closers = [c for c in self._closers if not c[0].is_closed()]
            self._closers.append((asyncio.get_running_loop(), closer))
        step = closer.asend(None)  # the loop's first-iteration hook registers it now
        with contextlib.suppress(StopIteration):
            step.send(None)  # runs to its yield without suspending


async def _closer(instance: Any) -> AsyncGenerator[None, None]:
    """Closes ``instance`` when its loop finishes this generator (see _close_with_loop)."""
    loop = asyncio.get_running_loop()
    try:
        yield
    finally:
        if not loop.is_closed():
            with contextlib.suppress(Exception):  # closing: nothing a caller waits for
                await instance.close()
