"""Replays remembered invalidations as soon as Redis answers, without waiting for a call.

A dead-letter queue for deletes: while a client holds invalidations that could
not reach Redis (its own, or spool files left by processes that exited), one
background thread per client pings Redis every PENDING_REPLAY_INTERVAL and
applies them the moment it answers. The thread ends when nothing is left.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._sync.pending import apply_invalidations
from .worker import ProcessThread

if TYPE_CHECKING:
    from .backends import Backend
    from .clientbase import PendingDeletes

log = logging.getLogger("cachekit_web")


class Replayer(ProcessThread):
    """The background half of PendingDeletes: probe, replay, stop when empty."""

    thread_name = "cachekit-replay"

    def __init__(self, pending: PendingDeletes, prefix: str,
                 backend_factory: Callable[[], Backend], interval: float) -> None:
        super().__init__(backend_factory, interval)
        self.pending = pending
        self.prefix = prefix

    def wake(self) -> None:
        """Make sure a replay thread runs in this process."""
        self.start()

    def tick(self) -> bool:
        if not self.pending.has_work():
            return False
        self.run_once()
        return True

    def has_more(self) -> bool:
        return bool(self.pending)

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
