"""Replays remembered invalidations as soon as Redis answers, without waiting for a call.

A dead-letter queue for deletes: while a client holds invalidations that could
not reach Redis (its own, or spool files left by processes that exited), one
background thread per client pings Redis every PENDING_REPLAY_INTERVAL and
applies them the moment it answers. The thread ends when nothing is left.

The same thread is the client's active recovery: while the circuit breaker is open it
probes Redis on the breaker's schedule (its ping, on its own connection with the socket
timeouts), replays what is owed when Redis answers, and only then half-opens the breaker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._sync.pending import apply_invalidations
from .worker import ProcessThread

if TYPE_CHECKING:
    from ..backends import Backend
    from .breaker import CircuitBreaker, ProbeGate
    from .pending import PendingDeletes

log = logging.getLogger("cachekit_web")


class Replayer(ProcessThread):
    """The background half of PendingDeletes: probe, replay, stop when empty."""

    thread_name = "cachekit-replay"

    def __init__(self, pending: PendingDeletes, prefix: str,
                 backend_factory: Callable[[], Backend], interval: float) -> None:
        super().__init__(backend_factory, interval)
        self.pending = pending
        self.prefix = prefix
        self.breaker: CircuitBreaker | None = None  # probed while open (set by the client)
        self.gate: ProbeGate | None = None  # shared with other breakers of the same Redis

    def wake(self) -> None:
        """Make sure a replay thread runs in this process."""
        self.start()

    def tick(self) -> bool:
        breaker = self.breaker
        if breaker is not None and breaker.probe_in() is not None:
            return self._probe(breaker)
        if not self.pending.has_work():
            return False
        self.run_once()
        return True

    def _probe(self, breaker: CircuitBreaker) -> bool:
        """One recovery probe if due: owed invalidations land before the breaker half-opens."""
        if not breaker.start_probe():
            return True  # not due yet
        gate = self.gate
        verdict = "send" if gate is None else gate.enter()
        if verdict == "wait":  # another client's probe of this Redis is on its way
            breaker.probe_postponed(gate.spacing if gate is not None else 0.0)
            return True
        if verdict == "answered":  # it answered that one a moment ago: no second PING
            breaker.probe_answered(sent=False)
            return True
        try:
            self.run_once()
        except BaseException:  # unreachable (a coded error) or anything else: no answer
            if gate is not None:
                gate.leave(False)
            breaker.probe_failed()
            raise
        if gate is not None:
            gate.leave(True)
        breaker.probe_answered()
        return True

    def pause(self) -> float:
        due = None if self.breaker is None else self.breaker.probe_in()
        return self.interval if due is None else max(due, 0.005)

    def has_more(self) -> bool:
        return bool(self.pending) or (self.breaker is not None
                                      and self.breaker.probe_in() is not None)

    def run_once(self) -> int:
        """Ping, then apply this process's and dead processes' invalidations; how many landed."""
        backend = self.backend()
        backend.ping()
        landed = 0
        keys, clear = self.pending.take()
        if keys or clear:
            try:
                apply_invalidations(backend, self.prefix, keys, clear)
            except BaseException:
                self.pending.restore(keys, clear)
                raise
            self.pending.landed(keys, clear)
            landed += len(keys) + clear
        landed += self.pending.replay_orphans(
            lambda ks, c: apply_invalidations(backend, self.prefix, ks, c))
        if landed:
            log.info("replayed %d remembered invalidations", landed)
        return landed
