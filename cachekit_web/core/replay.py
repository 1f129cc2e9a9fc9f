"""Replays remembered invalidations as soon as Redis answers, without waiting for a call.

A dead-letter queue for deletes: while a client holds invalidations that could
not reach Redis (its own, or spool files left by processes that exited), one
background thread per client pings Redis every PENDING_REPLAY_INTERVAL and
applies them the moment it answers. The thread ends when nothing is left.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._sync.pending import apply_invalidations
from .errors import CachekitError

if TYPE_CHECKING:
    from .backends import Backend
    from .clientbase import PendingDeletes

log = logging.getLogger("cachekit_web")


class Replayer:
    """The background half of PendingDeletes: probe, replay, stop when empty."""

    def __init__(self, pending: PendingDeletes, prefix: str,
                 backend_factory: Callable[[], Backend], interval: float) -> None:
        self.pending = pending
        self.prefix = prefix
        self._factory = backend_factory
        self._backend: Backend | None = None
        self.interval = interval
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._stop = threading.Event()

    def _get_backend(self) -> Backend:
        if self._backend is None or self._pid != os.getpid():
            self._backend = self._factory()
        return self._backend

    def wake(self) -> None:
        """Make sure a replay thread runs in this process."""
        with self._lock:
            alive = self._thread is not None and self._thread.is_alive()
            if alive and self._pid == os.getpid():
                return
            self._stop.clear()
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._loop, name="cachekit-replay",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """End the thread (the spool keeps whatever is left)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            if not self.pending.has_work():
                return
            try:
                self.run_once()
            except CachekitError:
                continue  # still unreachable: try again next interval
            except Exception:  # never let the thread die silently with work left
                log.exception("replaying remembered deletes failed")

    def run_once(self) -> int:
        """Ping, then apply this process's and dead processes' invalidations; how many landed."""
        backend = self._get_backend()
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
