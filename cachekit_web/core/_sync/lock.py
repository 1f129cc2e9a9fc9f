# GENERATED from cachekit_web/core/_async/lock.py by scripts/generate_sync.py.
# Do not edit: change the async source, then run `make generate`.
"""The distributed lock a client hands out (``client.lock()``): redis-py's Lock, guarded.

This is the async source; ``core/_sync/lock.py`` is generated from it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import LockTimeoutError

# The client's guarded call: (op name, function, *args) -> its result, or UNAVAILABLE.
GuardedCall = Callable[..., Any]


class CacheLock:
    """A distributed lock from ``client.lock()``: redis-py's Lock, guarded by the breaker."""

    def __init__(self, call: GuardedCall, inner: Any, blocking: bool,
                 blocking_timeout: float | None) -> None:
        self._call, self._inner = call, inner
        self._blocking, self._blocking_timeout = blocking, blocking_timeout

    def acquire(self, blocking: bool | None = None,
                      blocking_timeout: float | None = None) -> bool:
        """Take the lock; False if not acquired in time, or if Redis cannot be reached."""
        wait = self._blocking if blocking is None else blocking
        limit = self._blocking_timeout if blocking_timeout is None else blocking_timeout
        got = self._call("lock", self._inner.acquire, wait, limit)
        return got is True

    def release(self) -> None:
        """Give the lock back; E050 if it was no longer held (it expired, as redis-py's
        LockNotOwnedError). Unreachable Redis: nothing to do, the lock expires by itself."""
        got = self._call("unlock", self._inner.release)
        if got is False:
            raise LockTimeoutError("lock released but no longer held (it expired?)",
                                   code="E050")

    def extend(self, additional_time: float, replace_ttl: bool = False) -> bool:
        """Add time to the held lock; False if not held or unreachable."""
        got = self._call("lock_extend", self._inner.extend, additional_time,
                               replace_ttl)
        return got is True

    def reacquire(self) -> bool:
        """Reset the held lock's TTL to its timeout; False if not held or unreachable."""
        return self._call("lock_extend", self._inner.reacquire) is True

    def locked(self) -> bool:
        """Whether anyone holds the lock. Fail-open answer: False."""
        return self._call("lock_state", self._inner.locked) is True

    def owned(self) -> bool:
        """Whether this lock object holds it. Fail-open answer: False."""
        return self._call("lock_state", self._inner.owned) is True

    def __enter__(self) -> CacheLock:
        if self.acquire():
            return self
        raise LockTimeoutError("could not acquire the lock", code="E050")

    def __exit__(self, *exc: object) -> None:
        self.release()
