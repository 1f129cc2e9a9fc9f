"""What a test may leave behind: cachekit's background threads and Redis connections."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable

import redis


def cachekit_threads() -> list[str]:
    """Names of this process's live threads that cachekit started."""
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("cachekit-"))


def connections(raw: redis.Redis) -> int:
    """Client connections the server holds, ``raw``'s own included."""
    return len(raw.client_list())


def settle(done: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Collect garbage until ``done()`` holds or ``timeout`` seconds pass; the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        gc.collect()
        if done():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
