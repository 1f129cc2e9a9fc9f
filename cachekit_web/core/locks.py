"""Single-flight: concurrent misses for one key inside a process compute once.

Across processes the client adds a distributed lock from the backend
(redis-py's Lock on Redis); this module is the in-process half. The thread and
asyncio flavours share one interface, so the client is written once.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Protocol


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
