"""A background thread of one process, with a backend of its own.

The replay of deferred invalidations, the fleet snapshot publisher and the Cluster
backend's replay of deferred deletes are all this: a daemon thread that wakes every
``interval`` seconds, uses its own connections (never a request's, never the
parent's after a fork), and must never die silently. The thread holds its owner
weakly: a client dropped without close() ends its threads and closes their
connections when it is garbage-collected.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import CachekitError

if TYPE_CHECKING:
    from ..backends import Backend

log = logging.getLogger("cachekit_web")


class _Held:
    """What a thread keeps of its owner: its backend, closed when the owner is gone."""

    __slots__ = ("backend", "pid")

    def __init__(self) -> None:
        self.backend: Backend | None = None
        self.pid = 0

    def close(self) -> None:
        """Close the backend if this process made it."""
        backend, self.backend = self.backend, None
        if backend is not None and self.pid == os.getpid():
            backend.close()


def _loop(ref: weakref.ref[ProcessThread], stop: threading.Event, interval: float,
          held: _Held) -> None:
    """The thread's body: a turn after each of the owner's pauses, while it is alive."""
    while True:
        owner = ref()
        pause = interval if owner is None else owner.pause()
        del owner  # no strong reference while waiting
        if stop.wait(pause):
            break
        owner = ref()
        if owner is None:
            break
        try:
            if not owner._turn():
                return
        finally:
            del owner
    if ref() is None:  # dropped without stop(): its connection goes with it
        held.close()


class ProcessThread:
    """Calls ``tick()`` every ``interval`` seconds in a daemon thread of this process.

    ``tick()`` returns False to end the thread (``start()`` brings it back); a coded
    error (Redis unreachable) just waits for the next turn. ``backend_factory`` is None
    for a thread that opens its own connections (it never calls ``backend()``).
    """

    thread_name = "cachekit-worker"

    def __init__(self, backend_factory: Callable[[], Backend] | None, interval: float) -> None:
        self._factory = backend_factory
        self.interval = interval
        self._held = _Held()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        weakref.finalize(self, self._stop.set).atexit = False  # wakes the thread to end
        self._thread: threading.Thread | None = None
        self._thread_pid = 0
        self._ending = False  # the thread decided to stop: start() must not count on it

    def backend(self) -> Backend:
        """This thread's own backend, made anew in a forked child."""
        held = self._held
        if held.backend is None or held.pid != os.getpid():
            if self._factory is None:
                raise TypeError(f"{self.thread_name} was made without a backend")
            held.backend, held.pid = self._factory(), os.getpid()
        return held.backend

    def running(self) -> bool:
        """Whether the thread runs in this process (a fork does not inherit threads)."""
        thread = self._thread
        return (self._thread_pid == os.getpid() and thread is not None and not self._ending
                and thread.is_alive())

    def start(self) -> None:
        """Make sure the thread runs in this process."""
        with self._lock:
            if self.running():
                return
            self._stop.clear()
            self._ending = False
            self._thread_pid = os.getpid()
            self._thread = threading.Thread(
                target=_loop, args=(weakref.ref(self), self._stop, self.interval, self._held),
                name=self.thread_name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """End the thread and close its backend."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self._thread = None
        self._held.close()

    def tick(self) -> bool:
        """One turn of work; False ends the thread."""
        raise NotImplementedError

    def pause(self) -> float:
        """Seconds to wait before the next turn."""
        return self.interval

    def has_more(self) -> bool:
        """Asked under the start lock before the thread ends: work that came meanwhile."""
        return False

    def _turn(self) -> bool:
        """One turn of the thread; False when it ends."""
        try:
            if not self.tick():
                with self._lock:  # a start() now either sees us ending or we see its work
                    if self.has_more():
                        return True
                    self._ending = True
                    return False
        except CachekitError:
            pass  # unreachable now: the next turn tries again
        except Exception:  # a bug must not kill the thread silently
            log.exception("%s: a turn failed", self.thread_name)
        return True
