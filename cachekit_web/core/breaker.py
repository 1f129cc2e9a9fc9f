"""Circuit breaker: CLOSED -> OPEN -> HALF_OPEN -> CLOSED, with listeners."""

from __future__ import annotations

import enum
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


class State(str, enum.Enum):
    """Breaker states."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class Transition:
    """One state change, with wall-clock time for display."""

    at: float
    old: State
    new: State
    reason: str

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly form."""
        return {"at": self.at, "from": self.old.value, "to": self.new.value, "reason": self.reason}


Listener = Callable[[Transition], None]


class CircuitBreaker:
    """Opens after FAILURE_THRESHOLD failures within WINDOW seconds with no success between."""

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        window: float = 30.0,
        recovery_timeout: float = 10.0,
        half_open_max_calls: int = 1,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.window = window
        self.recovery_timeout = recovery_timeout
        self.half_open_max_calls = half_open_max_calls
        self.enabled = enabled
        self._clock = clock
        self._lock = threading.Lock()
        self._state = State.CLOSED
        self._failures: deque[float] = deque()
        self._opened_at = 0.0
        self._probes = 0
        self._listeners: list[Listener] = []
        self.transitions: deque[Transition] = deque(maxlen=50)
        self.opened_count = 0

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.state.value}>"

    @property
    def state(self) -> State:
        """Current state; an OPEN breaker past its recovery timeout reads as HALF_OPEN."""
        with self._lock:
            if self._state is State.OPEN and self._recovery_due():
                return State.HALF_OPEN
            return self._state

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` with every transition."""
        self._listeners.append(listener)

    def allow(self) -> bool:
        """Whether a call may go to the backend now."""
        if not self.enabled or self._state_now() is State.CLOSED:
            return True  # hot path without the lock: reading one attribute is atomic
        fired: Transition | None = None
        with self._lock:
            if self._state is State.CLOSED:  # another thread may have closed it meanwhile
                return True
            if self._state is State.OPEN:
                if not self._recovery_due():
                    return False
                fired = self._move(State.HALF_OPEN, "recovery timeout elapsed")
                self._probes = 0
            if self._probes >= self.half_open_max_calls:
                allowed = False
            else:
                self._probes += 1
                allowed = True
        self._notify(fired)
        return allowed

    def record_success(self) -> None:
        """A call reached the backend and it answered."""
        if self._state is State.CLOSED and not self._failures:
            return  # hot path: nothing to do
        fired = None
        with self._lock:
            # A success ends a run of failures: sporadic blips on a busy site never add up.
            self._failures.clear()
            if self._state is State.HALF_OPEN:
                fired = self._move(State.CLOSED, "probe succeeded")
        self._notify(fired)

    def record_failure(self) -> None:
        """A call failed for an infrastructure reason."""
        if not self.enabled:
            return
        fired = None
        now = self._clock()
        with self._lock:
            if self._state is State.HALF_OPEN:
                self._opened_at = now
                self.opened_count += 1
                fired = self._move(State.OPEN, "probe failed")
            elif self._state is State.CLOSED:
                self._failures.append(now)
                while self._failures and self._failures[0] < now - self.window:
                    self._failures.popleft()
                if len(self._failures) >= self.failure_threshold:
                    self._opened_at = now
                    self.opened_count += 1
                    fired = self._move(
                        State.OPEN, f"{len(self._failures)} failures in {self.window:g}s"
                    )
        self._notify(fired)

    def release_probe(self) -> None:
        """A half-open probe ended without a verdict (e.g. it was not an infra call)."""
        with self._lock:
            if self._state is State.HALF_OPEN and self._probes > 0:
                self._probes -= 1

    def reset(self) -> None:
        """Force the breaker closed."""
        with self._lock:
            self._failures.clear()
            fired = self._move(State.CLOSED, "reset") if self._state is not State.CLOSED else None
        self._notify(fired)

    def snapshot(self) -> dict[str, object]:
        """State, counts and recent transitions, JSON-friendly."""
        with self._lock:
            recent = len(self._failures)
            transitions = [t.as_dict() for t in self.transitions]
        return {
            "state": self.state.value,
            "enabled": self.enabled,
            "recent_failures": recent,
            "failure_threshold": self.failure_threshold,
            "window": self.window,
            "recovery_timeout": self.recovery_timeout,
            "opened_count": self.opened_count,
            "transitions": transitions,
        }

    def _state_now(self) -> State:
        return self._state

    def _recovery_due(self) -> bool:
        return self._clock() - self._opened_at >= self.recovery_timeout

    def _move(self, new: State, reason: str) -> Transition:
        t = Transition(time.time(), self._state, new, reason)
        self._state = new
        self.transitions.append(t)
        return t

    def _notify(self, transition: Transition | None) -> None:
        if transition is None:
            return
        for listener in list(self._listeners):
            listener(transition)
