"""Counters, latencies and a per-minute series for the last hour."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

_SERIES_MINUTES = 60
_LATENCY_SAMPLES = 512
_FIELDS = ("hits", "misses", "stale", "errors", "sets", "deletes")


@dataclass
class _Minute:
    minute: int
    counts: Counter[str] = field(default_factory=Counter)


class _Latency:
    __slots__ = ("count", "samples", "total", "worst")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.worst = 0.0
        self.samples: deque[float] = deque(maxlen=_LATENCY_SAMPLES)

    def add(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        self.worst = max(self.worst, seconds)
        self.samples.append(seconds)

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.samples)

        def pct(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else 0.0

        return {
            "count": self.count,
            "mean_ms": (self.total / self.count * 1000) if self.count else 0.0,
            "p50_ms": pct(0.50),
            "p95_ms": pct(0.95),
            "max_ms": self.worst * 1000,
        }


class Metrics:
    """Thread-safe counters by outcome and error code, with a one-hour minute series."""

    def __init__(self, clock: Any = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.totals: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self._latency: dict[str, _Latency] = {}
        self._series: deque[_Minute] = deque(maxlen=_SERIES_MINUTES)

    def _bucket(self) -> _Minute:
        minute = int(self._clock() // 60)
        if not self._series or self._series[-1].minute != minute:
            self._series.append(_Minute(minute))
        return self._series[-1]

    def count(self, what: str, n: int = 1) -> None:
        """Add ``n`` to counter ``what`` (hits, misses, stale, sets, deletes, expired...)."""
        if n <= 0:
            return
        with self._lock:
            self.totals[what] += n
            self._bucket().counts[what] += n

    def count_many(self, **counts: int) -> None:
        """Add several counters at once (one lock round for a whole get_many)."""
        with self._lock:
            bucket = self._bucket().counts
            for what, n in counts.items():
                if n > 0:
                    self.totals[what] += n
                    bucket[what] += n

    def error(self, code: str) -> None:
        """Count one failure with its code."""
        with self._lock:
            self.errors[code] += 1
            self.totals["errors"] += 1
            self._bucket().counts["errors"] += 1

    def observe(self, op: str, seconds: float) -> None:
        """Record the latency of one operation."""
        with self._lock:
            lat = self._latency.get(op)
            if lat is None:
                lat = self._latency[op] = _Latency()
            lat.add(seconds)
            self._bucket().counts["ops"] += 1

    def hit_rate(self) -> float | None:
        """Hits (fresh or stale) over lookups, or None before the first lookup."""
        hits = self.totals["hits"] + self.totals["stale"]
        total = hits + self.totals["misses"]
        return hits / total if total else None

    def series(self) -> list[dict[str, int]]:
        """Per-minute counts for the last hour, oldest first, gaps filled with zeros."""
        now_minute = int(self._clock() // 60)
        with self._lock:
            by_minute = {m.minute: m.counts for m in self._series}
        out = []
        for minute in range(now_minute - _SERIES_MINUTES + 1, now_minute + 1):
            counts = by_minute.get(minute, Counter())
            row = {"minute": minute * 60}
            row.update({f: counts[f] for f in _FIELDS})
            out.append(row)
        return out

    def error_rates(self) -> dict[str, float]:
        """Errors per operation over the last 1, 5 and 15 minutes."""
        now_minute = int(self._clock() // 60)
        with self._lock:
            rows = [(m.minute, m.counts["errors"], m.counts["ops"]) for m in self._series]
        rates = {}
        for span in (1, 5, 15):
            errors = sum(e for m, e, _ in rows if m > now_minute - span)
            ops = sum(o for m, _, o in rows if m > now_minute - span)
            rates[f"{span}m"] = errors / ops if ops else 0.0
        return rates

    def snapshot(self) -> dict[str, Any]:
        """Everything, JSON-friendly."""
        with self._lock:
            totals = dict(self.totals)
            errors = dict(self.errors)
            latency = {op: lat.summary() for op, lat in self._latency.items()}
        return {
            "totals": {f: totals.get(f, 0) for f in (*_FIELDS, "expired", "deferred")},
            "hit_rate": self.hit_rate(),
            "errors_by_code": errors,
            "error_rates": self.error_rates(),
            "latency": latency,
            "series": self.series(),
        }
