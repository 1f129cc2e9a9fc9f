"""The invalidations a client owes Redis while it cannot reach it, and their spool file."""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

from ..backends import backend_kind
from ..settings import Settings
from ..urls import redact_url
from .spool import Spool, default_directory, scope_name


class PendingDeletes:
    """Invalidations that must be applied when Redis is reachable again (bounded).

    A key stays "owed" from add() until the batch that carries it has landed, also
    while another thread is replaying it, so reads of it can be misses until then.
    With a spool, every addition is also written to this process's spool file, so it
    survives the process; ``landed()`` trims the file to what is still owed.
    """

    def __init__(self, limit: int, spool: Spool | None = None) -> None:
        self._limit = limit
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._clear = False
        self._inflight: Counter[str] = Counter()
        self._inflight_clears = 0
        self.owed = False  # anything added and not landed: read on every get, so a plain bool
        self._lock = threading.Lock()
        self.spool = spool
        self.on_add: Callable[[], None] | None = None  # wakes the replayer

    def __bool__(self) -> bool:
        return bool(self._keys) or self._clear

    def __len__(self) -> int:
        return len(self._keys) + (1 if self._clear else 0)

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is owed an invalidation that has not landed yet."""
        if not self.owed:
            return False
        with self._lock:
            return (self._clear or self._inflight_clears > 0 or key in self._keys
                    or key in self._inflight)

    def _update_owed(self) -> None:
        self.owed = bool(self._keys or self._clear or self._inflight or self._inflight_clears)

    def add(self, keys: Iterable[str]) -> None:
        """Remember ``keys`` (and spool them)."""
        self._add(list(keys), already_spooled=False)
        if self.on_add is not None:
            self.on_add()

    def _add(self, keys: list[str], already_spooled: bool) -> None:
        with self._lock:
            for k in keys:
                self._keys[k] = None
            overflow = len(self._keys) > self._limit
            if overflow:
                # Too many to remember one by one: clear the namespace on recovery instead.
                self._keys.clear()
                self._clear = True
            if self.spool is not None and not already_spooled:
                self.spool.append([] if overflow else keys, clear=overflow)
            self._update_owed()

    def clear_all(self) -> None:
        """Remember that the whole namespace must be cleared."""
        with self._lock:
            self._keys.clear()
            self._clear = True
            if self.spool is not None:
                self.spool.append([], clear=True)
            self._update_owed()
        if self.on_add is not None:
            self.on_add()

    def take(self) -> tuple[list[str], bool]:
        """Hand over what is pending; then landed() or restore() with exactly that batch."""
        with self._lock:
            keys, clear = list(self._keys), self._clear
            self._keys.clear()
            self._clear = False
            self._inflight.update(keys)
            self._inflight_clears += clear
            return keys, clear

    def _settle(self, keys: list[str], clear: bool) -> None:
        self._inflight.subtract(keys)
        self._inflight = +self._inflight  # drop the zeros
        self._inflight_clears -= clear

    def landed(self, keys: list[str], clear: bool) -> None:
        """A taken batch reached Redis; the spool keeps only what is still owed."""
        with self._lock:
            self._settle(keys, clear)
            self._update_owed()
            if self.spool is not None and (keys or clear):
                self.spool.rewrite([*self._keys, *self._inflight],
                                   self._clear or self._inflight_clears > 0)

    def restore(self, keys: list[str], clear: bool) -> None:
        """Give back a taken batch that did not land (it is still in the spool file)."""
        with self._lock:
            self._settle(keys, clear)
            if clear:
                self._keys.clear()
                self._clear = True
        self._add(keys, already_spooled=True)

    def discard(self, key: str) -> None:
        """Forget ``key`` (it was overwritten, so a later delete would lose the new value)."""
        with self._lock:
            self._keys.pop(key, None)
            self._update_owed()

    def has_work(self) -> bool:
        """Whether anything is pending here or in spool files other processes left."""
        return bool(self) or (self.spool is not None and bool(self.spool.orphans()))

    def replay_orphans(self, apply: Callable[[list[str], bool], object]) -> int:
        """Apply and remove the spool files of processes that exited; how many landed."""
        if self.spool is None:
            return 0
        landed = 0
        for path in self.spool.orphans():
            with self.spool.adopt(path) as batch:
                if batch is not None:
                    apply(batch.keys, batch.clear)
                    landed += len(batch)
        return landed


def spool_for(settings: Settings, url: str) -> Spool | None:
    """The spool for this Redis location and namespace, unless off or in-process."""
    if not settings.PENDING_SPOOL or backend_kind(url, settings) == "memory":
        return None
    root = settings.SPOOL_DIR or default_directory()
    return Spool(Path(root) / scope_name(redact_url(url), settings.NAMESPACE),
                 settings.NAMESPACE + ":")
