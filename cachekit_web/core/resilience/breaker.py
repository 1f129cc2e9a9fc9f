"""Circuit breaker: CLOSED -> OPEN -> HALF_OPEN -> CLOSED, with listeners.

No I/O and no sleeping: time comes from an injectable ``clock``. The breaker opens
on any of five signals, whichever comes first:

- ``failure_threshold`` failures in a row (within ``window`` seconds): a dead server;
- a failure rate of at least ``failure_rate`` over the calls of the last ``window``
  seconds, once there were ``min_calls`` of them: a server where some calls fail and
  others succeed (a success does not reset the rate the way it ends a run);
- a slow-call rate of at least ``slow_call_rate`` (calls that took ``slow_call_duration``
  or longer, whatever their outcome) over the same window;
- ``slow_in_flight`` calls concurrently in flight for ``slow_call_duration`` or longer
  while no call got an answer for as long: a hung server, detected while the calls still
  wait, not one socket timeout later (a per-process watchdog thread asks too, since the
  threads of a process may all be waiting, with no caller left to ask; the transition
  says ``hung`` and the clients cut the waiting calls short);
- one call that timed out after ``slow_call_duration`` or longer while no call got an
  answer since it began: a hung server met by fewer threads than ``slow_in_flight``, so
  it costs one socket timeout, not ``failure_threshold`` of them.

Half-open admits ``half_open_max_calls`` calls at a time (one by default), so a hung
server costs one blocked call, not one per thread; ``close_after`` successes in a row
close it, one failure opens it again.

Active recovery: while open, a background prober asks ``probe_in()`` when to send its
next cheap probe (a PING), claims it with ``start_probe()`` (one in flight at most) and
reports ``probe_answered()`` (at once HALF_OPEN: real calls confirm) or ``probe_failed()``.
Probes come every ``probe_interval`` seconds at first, then every ``probe_backoff`` of the
time the outage has lasted, never further apart than ``recovery_timeout``. A call failing
while half-open, or an outage that resumes sooner after the breaker closed than the next
probe would have been due (a flapping server), continues the old backoff rather than
starting afresh. Without a prober, an open breaker still turns
HALF_OPEN by itself after ``recovery_timeout``.
"""

from __future__ import annotations

import enum
import itertools
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..registry import Registry

OUTAGES_KEPT = 20  # the last outages a breaker remembers (the health charts' spans)
_BUCKETS = 10  # the rate window is kept as this many time buckets: memory is O(1)


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
    hung: bool = False  # opened on a hung server: calls still waiting on it may be cut short

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly form."""
        return {"at": self.at, "from": self.old.value, "to": self.new.value, "reason": self.reason}


Listener = Callable[[Transition], None]


class _Bucket:
    __slots__ = ("calls", "failures", "slow", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self.calls = 0
        self.failures = 0
        self.slow = 0


class _Window:
    """Calls, failures and slow calls over the last ``span`` seconds, in time buckets."""

    def __init__(self, span: float) -> None:
        self.span = span
        self.width = span / _BUCKETS
        self.buckets: deque[_Bucket] = deque()
        self.calls = self.failures = self.slow = 0

    def add(self, now: float, failed: bool, slow: bool) -> None:
        self._expire(now)
        if not self.buckets or now >= self.buckets[-1].start + self.width:
            self.buckets.append(_Bucket(now))
        b = self.buckets[-1]
        b.calls += 1
        b.failures += failed
        b.slow += slow
        self.calls += 1
        self.failures += failed
        self.slow += slow

    def _expire(self, now: float) -> None:
        while self.buckets and self.buckets[0].start + self.width <= now - self.span:
            b = self.buckets.popleft()
            self.calls -= b.calls
            self.failures -= b.failures
            self.slow -= b.slow

    def clear(self) -> None:
        self.buckets.clear()
        self.calls = self.failures = self.slow = 0


class CircuitBreaker:
    """Opens on a run of failures, a failure or slow-call rate, or slow calls piling up."""

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        window: float = 30.0,
        recovery_timeout: float = 10.0,
        half_open_max_calls: int = 1,
        failure_rate: float = 0.25,
        min_calls: int = 20,
        slow_call_duration: float = 0.25,
        slow_call_rate: float = 0.5,
        slow_in_flight: int = 3,
        close_after: int = 2,
        probe_interval: float = 0.25,
        probe_backoff: float = 0.1,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.window = window
        self.recovery_timeout = recovery_timeout
        self.half_open_max_calls = half_open_max_calls
        self.failure_rate = failure_rate
        self.min_calls = min_calls
        self.slow_call_duration = slow_call_duration  # 0: slow calls are not tracked
        self.slow_call_rate = slow_call_rate
        self.slow_in_flight = slow_in_flight  # 0: in-flight calls are not watched
        self.close_after = max(1, close_after)
        self.probe_interval = probe_interval
        self.probe_backoff = probe_backoff
        self.enabled = enabled
        self._clock = clock
        self._lock = threading.Lock()
        self._state = State.CLOSED
        self._failures: deque[float] = deque()  # the current run of failures
        self._window = _Window(window)
        self._in_flight: dict[int, float] = {}
        self._tokens = itertools.count(1)
        self._last_answer = float("-inf")  # when a call last succeeded
        self._opened_at = 0.0
        self._probes = 0
        self._successes = 0  # in a row while half-open
        self._down_since = 0.0  # when this outage began (a flap continues it)
        self._closed_at = float("-inf")  # when the breaker last closed after being open
        self._closed_delay = 0.0  # the probe delay the backoff had reached then
        self._next_probe = 0.0
        self._probing = 0  # pid of the process whose background probe is in flight, or 0
        self._watched = 0  # pid of the process whose hang watchdog looks at this breaker
        self.probes_sent = 0
        self._listeners: list[Listener] = []
        self.transitions: deque[Transition] = deque(maxlen=50)
        # Outages, however often the breaker re-opened in each: {"start", "end" (None while
        # it lasts), "openings"}; kept apart from transitions so a flapping outage's start
        # and count survive the transitions' cut.
        self.outages: deque[dict[str, Any]] = deque(maxlen=OUTAGES_KEPT)
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
        if not self.enabled:
            return True
        if self._state_now() is State.CLOSED and not self._maybe_stuck():
            return True  # hot path without the lock: reading attributes is atomic
        fired: Transition | None = None
        with self._lock:
            if self._state is State.CLOSED:
                # Calls are piling up on a hung server: this caller opens it and waits no more.
                fired = self._check_in_flight(self._clock())
                allowed = fired is None
            else:
                if self._state is State.OPEN:
                    if not self._recovery_due():
                        return False
                    fired = self._half_open("recovery timeout elapsed")
                allowed = self._probes < self.half_open_max_calls
                if allowed:
                    self._probes += 1
        self._notify(fired)
        return allowed

    def begin(self) -> int:
        """Register an admitted call as in flight; pass the token to its record_* call."""
        token = next(self._tokens)
        if not self.enabled:
            return token
        fired = None
        watch = False
        with self._lock:
            now = self._clock()
            self._in_flight[token] = now
            if self._state is State.CLOSED:
                fired = self._check_in_flight(now)
                # Enough calls at once that all of a process's threads could block on a hung
                # server, leaving no caller to notice: the watchdog looks for them.
                n = self.slow_in_flight
                watch = 0 < n <= len(self._in_flight) and self.slow_call_duration > 0
        self._notify(fired)
        if watch and self._watched != os.getpid():
            self._watched = os.getpid()
            hang_watch(self)
        return token

    def check_stuck(self) -> bool:
        """Open now if calls in flight show a hung server (the watchdog's check); whether
        it opened."""
        if not self.enabled or self._state is not State.CLOSED or not self._maybe_stuck():
            return False
        if self._last_answer == float("-inf"):
            return False  # never answered yet: a slow start (connecting, a slot map), not a hang
        with self._lock:
            if self._state is not State.CLOSED:
                return False
            fired = self._check_in_flight(self._clock())
        self._notify(fired)
        return fired is not None

    def unwatched(self) -> bool:
        """Called by the watchdog: stop watching when no call is in flight (True)."""
        watched, self._watched = self._watched, 0  # the next crowd of calls registers again
        if self._in_flight:  # looked at after the reset: a begin() meanwhile sees one or other
            self._watched = watched
            return False
        return True

    def record_success(self, token: int | None = None) -> None:
        """A call reached the backend and it answered."""
        self._record(token, lambda now, slow, _started: self._succeeded(now, slow))

    def record_failure(self, token: int | None = None, timeout: bool = False) -> None:
        """A call failed for an infrastructure reason (``timeout``: Redis did not answer it
        in time)."""
        self._record(token, lambda now, slow, started: self._failed(
            now, slow, started if timeout else None))

    def _record(self, token: int | None,
                outcome: Callable[[float, bool, float | None], Transition | None]) -> None:
        """End call ``token`` and apply ``outcome(now, slow, started)`` under the lock; its
        transition, if any, is told to the listeners after the lock is released."""
        if not self.enabled:
            return
        with self._lock:
            now = self._clock()
            started = self._in_flight.get(token) if token is not None else None
            fired = outcome(now, self._end(token, now), started)
        self._notify(fired)

    def _succeeded(self, now: float, slow: bool) -> Transition | None:
        self._last_answer = now
        if self._state is State.HALF_OPEN:
            self._successes += 1
            if self._successes >= self.close_after:
                fired = self._move(State.CLOSED, f"{self._successes} calls succeeded")
                self._closed_at, self._closed_delay = now, self._probe_delay(now)
                self._failures.clear()
                return fired
            self._probes = max(0, self._probes - 1)  # the next caller confirms too
            return None
        if self._state is State.CLOSED:
            # A success ends a run of failures; the rate window still remembers them.
            self._failures.clear()
            self._window.add(now, False, slow)
            return self._check_rates(now)
        return None

    def _failed(self, now: float, slow: bool, timed_out_since: float | None) -> Transition | None:
        """``timed_out_since``: when a call that timed out began (None for other failures)."""
        if self._state is State.HALF_OPEN:
            return self._open(now, "a call failed while half-open")
        if self._state is not State.CLOSED:
            return None
        self._failures.append(now)
        while self._failures and self._failures[0] < now - self.window:
            self._failures.popleft()
        self._window.add(now, True, slow)
        if slow and timed_out_since is not None and self._last_answer <= timed_out_since:
            # Redis answered nothing while this call waited out its timeout: hung.
            return self._open(now, f"a call timed out after {now - timed_out_since:.2g}s "
                                   "and Redis answered nothing meanwhile", hung=True)
        if len(self._failures) >= self.failure_threshold:
            return self._open(
                now, f"{len(self._failures)} failures in a row within {self.window:g}s")
        # The failed call itself was stuck too, if it took that long.
        return self._check_rates(now) or self._check_in_flight(now, int(slow))

    def probe_now(self, reason: str) -> bool:
        """OPEN -> HALF_OPEN at once (the topology named a new primary); False if not open."""
        if not self.enabled:
            return False
        with self._lock:
            if self._state is not State.OPEN:
                return False
            fired = self._half_open(reason)
        self._notify(fired)
        return True

    def probe_in(self) -> float | None:
        """Seconds until the next background probe is due (0: now); None when none is wanted
        (not open, disabled, or a probe is in flight)."""
        if not self.enabled:
            return None
        with self._lock:
            if self._state is not State.OPEN or self._probe_in_flight():
                return None
            return max(0.0, self._next_probe - self._clock())

    def start_probe(self) -> bool:
        """Claim the one background probe if it is due; then probe_answered() or probe_failed()."""
        if not self.enabled:
            return False
        with self._lock:
            if (self._state is not State.OPEN or self._probe_in_flight()
                    or self._clock() < self._next_probe):
                return False
            self._probing = os.getpid()
            return True

    def probe_answered(self, sent: bool = True) -> None:
        """The background probe got an answer (``sent=False``: another breaker's probe of the
        same Redis did, a moment ago): HALF_OPEN now, real calls confirm."""
        fired = None
        with self._lock:
            self._probing = 0
            self.probes_sent += sent
            if self._state is State.OPEN:
                fired = self._half_open("Redis answered a probe")
        self._notify(fired)

    def probe_failed(self) -> None:
        """The background probe got no answer: the next one waits longer (the backoff)."""
        with self._lock:
            self._probing = 0
            self.probes_sent += 1
            now = self._clock()
            self._next_probe = now + self._probe_delay(now)

    def probe_postponed(self, delay: float) -> None:
        """The claimed probe was not sent (another one of the same Redis is in flight)."""
        with self._lock:
            self._probing = 0
            self._next_probe = self._clock() + delay

    def release_probe(self, token: int | None = None) -> None:
        """A call ended without a verdict (e.g. cancelled, or pool exhausted): forget it."""
        with self._lock:
            self._end(token, self._clock())
            if self._state is State.HALF_OPEN and self._probes > 0:
                self._probes -= 1

    def reset(self) -> None:
        """Force the breaker closed."""
        with self._lock:
            self._failures.clear()
            self._window.clear()
            fired = self._move(State.CLOSED, "reset") if self._state is not State.CLOSED else None
        self._notify(fired)

    def snapshot(self) -> dict[str, object]:
        """State, counts and recent transitions, JSON-friendly."""
        with self._lock:
            recent = len(self._failures)
            calls, failures, slow = self._window.calls, self._window.failures, self._window.slow
            in_flight = len(self._in_flight)
            transitions = [t.as_dict() for t in self.transitions]
            outages = [dict(o) for o in self.outages]
        return {
            "state": self.state.value,
            "enabled": self.enabled,
            "recent_failures": recent,
            "failure_threshold": self.failure_threshold,
            "window": self.window,
            "window_calls": calls,
            "window_failures": failures,
            "window_slow_calls": slow,
            "failure_rate": self.failure_rate,
            "min_calls": self.min_calls,
            "slow_call_duration": self.slow_call_duration,
            "slow_call_rate": self.slow_call_rate,
            "slow_in_flight": self.slow_in_flight,
            "in_flight": in_flight,
            "recovery_timeout": self.recovery_timeout,
            "probes_sent": self.probes_sent,
            "opened_count": self.opened_count,
            "transitions": transitions,
            "outages": outages,
        }

    # -- internals (called with the lock held) -------------------------------------------
    def _state_now(self) -> State:
        return self._state

    def _maybe_stuck(self) -> bool:
        n = self.slow_in_flight
        return n > 0 and len(self._in_flight) >= n

    def _recovery_due(self) -> bool:
        return self._clock() - self._opened_at >= self.recovery_timeout

    def _end(self, token: int | None, now: float) -> bool:
        """Drop a call from the in-flight set; whether it was slow."""
        started = self._in_flight.pop(token, None) if token is not None else None
        return (started is not None and self.slow_call_duration > 0
                and now - started >= self.slow_call_duration)

    def _check_rates(self, now: float) -> Transition | None:
        w = self._window
        if w.calls < self.min_calls:
            return None
        if w.failures >= self.failure_rate * w.calls:
            return self._open(now, f"{w.failures} of the last {w.calls} calls failed")
        if self.slow_call_duration > 0 and w.slow >= self.slow_call_rate * w.calls:
            return self._open(now, f"{w.slow} of the last {w.calls} calls took "
                                   f"{self.slow_call_duration:g}s or longer")
        return None

    def _check_in_flight(self, now: float, ended: int = 0) -> Transition | None:
        n = self.slow_in_flight
        if n <= 0 or self.slow_call_duration <= 0 or len(self._in_flight) + ended < n:
            return None
        cutoff = now - self.slow_call_duration
        if self._last_answer > cutoff:
            return None  # other calls still get answers: contention or load, not a hung server
        stuck = ended + sum(1 for started in self._in_flight.values() if started <= cutoff)
        if stuck < n:
            return None
        return self._open(now, f"{stuck} calls in flight for {self.slow_call_duration:g}s "
                               "or longer", hung=True)

    def _probe_in_flight(self) -> bool:
        """Whether this process has a probe in flight (a forked child never sees its
        parent's, which would never report to it)."""
        return self._probing != 0 and self._probing == os.getpid()

    def _probe_delay(self, now: float) -> float:
        """The backoff: probe_interval at first, then a share of the outage so far, capped."""
        return min(self.recovery_timeout,
                   max(self.probe_interval, self.probe_backoff * (now - self._down_since)))

    def _half_open(self, reason: str) -> Transition:
        self._probes = 0
        self._successes = 0
        return self._move(State.HALF_OPEN, reason)

    def _open(self, now: float, reason: str, hung: bool = False) -> Transition:
        if self._state is State.CLOSED and now - self._closed_at >= self._closed_delay:
            self._down_since = now  # a new outage; one soon after closing continues the last
            self._next_probe = now + self.probe_interval
        else:
            self._next_probe = now + self._probe_delay(now)
        self._opened_at = now
        self.opened_count += 1
        self._failures.clear()
        self._window.clear()
        return self._move(State.OPEN, reason, hung)

    def _move(self, new: State, reason: str, hung: bool = False) -> Transition:
        t = Transition(time.time(), self._state, new, reason, hung)
        self._state = new
        self.transitions.append(t)
        self._record_outage(t)
        return t

    def _record_outage(self, t: Transition) -> None:
        last = self.outages[-1] if self.outages else None
        if t.old is State.CLOSED and t.new is not State.CLOSED:
            self.outages.append({"start": t.at, "end": None,
                                 "openings": 1 if t.new is State.OPEN else 0})
        elif last is not None and last["end"] is None:
            if t.new is State.OPEN:
                last["openings"] += 1
            elif t.new is State.CLOSED:
                last["end"] = t.at

    def _notify(self, transition: Transition | None) -> None:
        if transition is None:
            return
        for listener in list(self._listeners):
            listener(transition)


class ProbeGate:
    """The recovery probes of one Redis location, shared by every breaker of this process
    that probes it: one in flight and one per ``spacing`` seconds at most, and an answer
    one of them got a moment ago counts for all (no second PING)."""

    SEND, WAIT, ANSWERED = "send", "wait", "answered"

    def __init__(self, spacing: float = 0.25, clock: Callable[[], float] = time.monotonic,
                 stuck_after: float = 30.0) -> None:
        self.spacing = spacing
        self.stuck_after = stuck_after  # a probe without a verdict by then is forgotten
        self._clock = clock
        self._lock = threading.Lock()
        self._sent = self._answered = float("-inf")
        self._busy = False
        self._pid = os.getpid()

    def enter(self) -> str:
        """SEND (then ``leave()``), WAIT (another probe is in flight or just went out) or
        ANSWERED (Redis answered a probe within ``spacing``: nothing to send)."""
        with self._lock:
            now = self._clock()
            if self._pid != os.getpid():  # a fork: the parent's probe is not ours
                self._pid, self._busy = os.getpid(), False
            if now - self._answered < self.spacing:
                return self.ANSWERED
            if (self._busy and now - self._sent < self.stuck_after) or (
                    now - self._sent < self.spacing):
                return self.WAIT
            self._busy, self._sent = True, now
            return self.SEND

    def leave(self, answered: bool) -> None:
        """The probe that entered has its verdict."""
        with self._lock:
            self._busy = False
            if answered:
                self._answered = self._clock()


_GATES: Registry[ProbeGate] = Registry(ProbeGate)


def probe_gate(location: str) -> ProbeGate:
    """The process-wide ProbeGate of one (redacted) Redis location."""
    return _GATES.get(location)


class _HangWatch:
    """One daemon thread per process that asks the breakers with a crowd of calls in
    flight whether Redis hung (``check_stuck``): when every thread of a process is blocked
    in a read, no caller is left to notice, and each would wait out its socket timeout.
    It runs only while some breaker has calls in flight, and wakes every fifth of the
    shortest SLOW_CALL_DURATION among them (a hang is cut within 1.2x that)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Nothing watched, no thread (also in a forked child: the parent's are not ours)."""
        self._lock = threading.Lock()
        self._breakers: weakref.WeakSet[CircuitBreaker] = weakref.WeakSet()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def add(self, breaker: CircuitBreaker) -> None:
        """Watch ``breaker`` until its calls in flight are over."""
        with self._lock:
            self._breakers.add(breaker)
            thread = self._thread
            if thread is not None and thread.is_alive() and self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="cachekit-hang-watch",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                breakers = [b for b in self._breakers if not b.unwatched()]
                for b in self._breakers - set(breakers):
                    self._breakers.discard(b)
                if not breakers or self._pid != os.getpid():
                    self._thread = None
                    return
                pause = min(b.slow_call_duration for b in breakers) / 5
            del breakers[:]  # never hold a breaker (and its client) while waiting
            time.sleep(max(pause, 0.01))
            with self._lock:
                breakers = list(self._breakers)
            for breaker in breakers:
                try:
                    breaker.check_stuck()  # its listeners cut the calls short
                except Exception:  # a listener's bug must not end the watch silently
                    logging.getLogger("cachekit_web").exception("hang watchdog check failed")
            del breakers[:]


_WATCH = _HangWatch()
# A fork copies the lock as some thread of the parent held it, and none of its threads.
os.register_at_fork(after_in_child=_WATCH.reset)


def hang_watch(breaker: CircuitBreaker) -> None:
    """Have this process's hang watchdog look at ``breaker`` while it has calls in flight."""
    _WATCH.add(breaker)
