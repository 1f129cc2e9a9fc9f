"""Keys just deleted on the primary, so reads of them skip a lagging replica for a while."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable

from ..registry import Registry

PRIMARY_WINDOW = 5.0  # seconds a just-deleted key is read from the primary, not a replica


class RecentInvalidations:
    """Keys deleted on the primary a moment ago: a lagging replica may still hold them.

    Shared by every backend of one location (the client's and its replayer's), so a
    delete replayed in the background also steers the client's reads to the primary.
    """

    def __init__(self, window: float = PRIMARY_WINDOW, limit: int = 10000) -> None:
        self.window = window
        self.limit = limit
        self._keys: OrderedDict[str, float] = OrderedDict()
        self._all_until = 0.0
        self._lock = threading.Lock()

    def add(self, keys: Iterable[str]) -> None:
        """``keys`` were just deleted on the primary."""
        until = time.monotonic() + self.window
        with self._lock:
            for k in keys:
                self._keys.pop(k, None)
                self._keys[k] = until
            if len(self._keys) > self.limit:  # too many to track: every read, for a while
                self._all_until = until
                self._keys.clear()

    def everything(self) -> None:
        """A whole namespace was cleared: every read goes to the primary for a while."""
        with self._lock:
            self._all_until = time.monotonic() + self.window

    def covers(self, keys: Iterable[str]) -> bool:
        """Whether any of ``keys`` must be read from the primary now."""
        if not self._keys and not self._all_until:  # the common case, without the lock
            return False
        now = time.monotonic()
        with self._lock:
            if self._all_until and now >= self._all_until:
                self._all_until = 0.0
            while self._keys and next(iter(self._keys.values())) <= now:
                self._keys.popitem(last=False)
            return now < self._all_until or any(k in self._keys for k in keys)


_RECENT: Registry[RecentInvalidations] = Registry(RecentInvalidations)


def recent_invalidations(location: str) -> RecentInvalidations:
    """The process-wide RecentInvalidations for one (redacted) location."""
    return _RECENT.get(location)
