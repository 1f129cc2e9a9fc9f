"""Single-flight: concurrent misses for one key inside a process compute once.

Across processes the client adds a distributed lock from the backend
(redis-py's Lock on Redis); this module is the in-process half. The thread and
asyncio flavours share one interface, so the client is written once.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Any, Protocol

from .registry import reset_in_forked_child


class _Settable(Protocol):
    def set(self) -> None: ...


class _FlightBase:
    """One in-progress computation: its value once resolved, and a way to wake waiters."""

    __slots__ = ("_done", "ok", "value")
    _done: _Settable

    def __init__(self) -> None:
        self.value: Any = None
        self.ok = False

    def resolve(self, value: Any) -> None:
        """Publish the computed value to the waiters."""
        self.value, self.ok = value, True
        self._done.set()

    def abandon(self) -> None:
        """Wake the waiters without a value (the leader failed or was cancelled)."""
        self._done.set()


class Flight(_FlightBase):
    """A computation other threads can wait for."""

    __slots__ = ()
    _done: threading.Event

    def __init__(self) -> None:
        super().__init__()
        self._done = threading.Event()

    def wait(self, timeout: float) -> bool:
        """Wait for the leader; True only if it produced a value in time."""
        return self._done.wait(timeout) and self.ok


class Flights:
    """The flights in progress, by key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[str, Flight] = {}

    def join(self, key: str) -> tuple[Flight, bool]:
        """Return the flight for ``key`` and whether the caller leads it."""
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None:
                return flight, False
            flight = self._flights[key] = Flight()
            return flight, True

    def leave(self, key: str, flight: Flight) -> None:
        """The leader is done: forget the flight and wake anyone still waiting."""
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]
        flight.abandon()


class AsyncFlight(_FlightBase):
    """A computation other tasks of its event loop can wait for."""

    __slots__ = ()
    _done: asyncio.Event

    def __init__(self) -> None:
        super().__init__()
        self._done = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        """Wait for the leader; True only if it produced a value in time."""
        try:
            await asyncio.wait_for(self._done.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return self.ok


class AsyncFlights:
    """Single-flight for coroutines, one table per event loop."""

    def __init__(self) -> None:
        self._flights: dict[tuple[int, str], tuple[asyncio.AbstractEventLoop, AsyncFlight]] = {}

    def join(self, key: str) -> tuple[AsyncFlight, bool]:
        """Return the flight for ``key`` and whether the caller leads it."""
        loop = asyncio.get_running_loop()
        slot = (id(loop), key)
        found = self._flights.get(slot)
        if found is not None and found[0] is loop:
            return found[1], False
        flight = AsyncFlight()
        self._flights[slot] = (loop, flight)
        return flight, True

    def leave(self, key: str, flight: AsyncFlight) -> None:
        """The leader is done: forget the flight and wake anyone still waiting."""
        slot = (id(asyncio.get_running_loop()), key)
        found = self._flights.get(slot)
        if found is not None and found[1] is flight:
            del self._flights[slot]
        flight.abandon()


class CounterOp:
    """One caller's incr: its delta and default, then its answer (or error) once applied."""

    __slots__ = ("_wake", "default", "delta", "error", "finished", "led", "result")

    def __init__(self, delta: int, default: int | None) -> None:
        self.delta, self.default = delta, default
        self.result: int | None = None
        self.error: BaseException | None = None
        self.finished = False  # applied (or failed) by a leader
        self.led = False  # handed the lead
        self._wake: Any = None  # the Event a waiting caller sleeps on (none for a leader)

    def finish(self) -> None:
        """The answer is set: wake the caller."""
        self.finished = True
        if self._wake is not None:
            self._wake.set()

    def answer(self) -> int | None:
        """The new value, or the error the leader met for this call."""
        if self.error is not None:
            raise self.error
        return self.result


class _Queues:
    """The callers waiting on each key; a key is present while someone leads it."""

    def __init__(self) -> None:
        self.queues: dict[Any, list[CounterOp]] = {}

    def enter(self, slot: Any, op: CounterOp, wake: Any) -> bool:
        """True: ``op`` leads at once; else it is queued with ``wake`` to sleep on."""
        queue = self.queues.get(slot)
        if queue is None:
            self.queues[slot] = []
            return True
        op._wake = wake
        queue.append(op)
        return False

    def take(self, slot: Any) -> list[CounterOp]:
        """Everything queued (the new leader first)."""
        batch, self.queues[slot] = self.queues[slot], []
        return batch

    def next_leader(self, slot: Any) -> CounterOp | None:
        """The caller to hand the lead to; None (the key is free) when nobody waits."""
        queue = self.queues.get(slot)
        if not queue:
            self.queues.pop(slot, None)
            return None
        queue[0].led = True
        return queue[0]

    def drop(self, slot: Any, op: CounterOp) -> bool:
        """Forget a waiter that gave up; True if it held the lead (to pass on)."""
        queue = self.queues.get(slot)
        if queue is None or op not in queue:
            return False  # already taken into a batch: its leader answers it
        queue.remove(op)
        return op.led


class Counters:
    """Combining for sealed counters: threads incrementing one key take turns leading.

    A leader applies every increment queued meanwhile with one compare-and-set (each
    caller still gets its own, sequential answer), so N threads on one key cost about
    one round trip per batch instead of N colliding compare-and-sets.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues = _Queues()
        _ALL_COUNTERS.add(self)

    def _forget_all(self) -> None:
        # In a forked child: the leaders were threads of the parent.
        self._lock = threading.Lock()
        self._queues = _Queues()

    def join(self, key: str, op: CounterOp) -> list[CounterOp] | None:
        """The batch to apply if the caller leads; None once another leader applied ``op``."""
        wake = threading.Event()
        with self._lock:
            if self._queues.enter(key, op, wake):
                return [op]
        try:
            wake.wait()
        except BaseException:  # interrupted: never leave the key without a leader
            with self._lock:
                handed = self._queues.drop(key, op)
            if handed:
                self.leave(key)
            raise
        if op.finished:
            return None
        with self._lock:  # handed the lead
            return self._queues.take(key)

    def leave(self, key: str) -> None:
        """The leader is done: hand the lead to the first waiting caller, if any."""
        with self._lock:
            first = self._queues.next_leader(key)
        if first is not None:
            first._wake.set()


_ALL_COUNTERS: weakref.WeakSet[Counters] = reset_in_forked_child(Counters._forget_all)


class AsyncCounters:
    """Combining for sealed counters, for the tasks of each event loop (see Counters)."""

    def __init__(self) -> None:
        self._queues = _Queues()

    @staticmethod
    def _slot(key: str) -> tuple[asyncio.AbstractEventLoop, str]:
        return asyncio.get_running_loop(), key

    async def join(self, key: str, op: CounterOp) -> list[CounterOp] | None:
        """The batch to apply if the caller leads; None once another leader applied ``op``."""
        slot = self._slot(key)
        wake = asyncio.Event()
        if self._queues.enter(slot, op, wake):
            return [op]
        try:
            await wake.wait()
        except BaseException:  # cancelled: never leave the key without a leader
            if self._queues.drop(slot, op):
                self.leave(key)
            raise
        if op.finished:
            return None
        return self._queues.take(slot)

    def leave(self, key: str) -> None:
        """The leader is done: hand the lead to the first waiting task, if any."""
        first = self._queues.next_leader(self._slot(key))
        if first is not None:
            first._wake.set()
