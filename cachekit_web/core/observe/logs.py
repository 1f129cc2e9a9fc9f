"""Rate-limited logging: each error code is logged at most once per LOG_INTERVAL."""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("cachekit_web")


class LogLimiter:
    """Logs each error code at most once per interval, counting what it held back."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def emit(self, level: int, code: str, message: str) -> None:
        """Log ``message`` under ``code`` unless that code was logged within the interval."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(code)
            if last is not None and now - last < self.interval:
                self._held[code] = self._held.get(code, 0) + 1
                return
            self._last[code] = now
            held = self._held.pop(code, 0)
        suffix = f" ({held} similar suppressed)" if held else ""
        log.log(level, "[%s] %s%s", code, message, suffix, extra={"cachekit_code": code})
