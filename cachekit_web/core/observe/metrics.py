"""Counters, latency histograms and a per-minute series for the last hour.

Everything a process counts can be exported as a plain, mergeable dict
(``Metrics.export``); ``summarize`` turns one export, or the ``merge`` of
several processes' exports, into what the health pages show. Latencies are
kept as fixed-bucket histograms so that quantiles of a whole fleet can be
computed from the sum of its processes' buckets.
"""

from __future__ import annotations

import itertools
import threading
import time
from bisect import bisect_left
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .fleet import FleetPublisher

SERIES_MINUTES = 60
_SERIES_MINUTES = SERIES_MINUTES
_FIELDS = ("hits", "misses", "stale", "errors", "sets", "deletes")
# The in-process tier's own counts (a local hit is also a hit).
LOCAL_FIELDS = ("local_hits", "local_misses", "local_invalidations")
_TOTALS = (*_FIELDS, "expired", "deferred", *LOCAL_FIELDS)
# Upper bounds (seconds) of the latency buckets; one more bucket holds everything slower.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                   0.1, 0.25, 0.5, 1.0, 2.5)


class MetricsSink(Protocol):
    """Something that mirrors the counters as they happen (the Prometheus exporter)."""

    def count(self, what: str, n: int) -> None:
        """``n`` more of counter ``what``."""

    def error(self, code: str) -> None:
        """One more failure with ``code``."""

    def observe(self, op: str, seconds: float) -> None:
        """One operation's latency."""


def _bucket_index(seconds: float) -> int:
    return bisect_left(LATENCY_BUCKETS, seconds)  # the first bound >= seconds


def quantile(buckets: Sequence[int], q: float, worst: float | None = None) -> float:
    """The ``q`` quantile (seconds) of a latency histogram, interpolated inside its bucket."""
    total = sum(buckets)
    if not total:
        return 0.0
    rank = q * total
    seen = 0
    for i, n in enumerate(buckets):
        if n and seen + n >= rank:
            lo = LATENCY_BUCKETS[i - 1] if i else 0.0
            hi = LATENCY_BUCKETS[i] if i < len(LATENCY_BUCKETS) else (worst or lo * 2)
            if worst is not None:
                hi = min(hi, max(worst, lo))
            return lo + (hi - lo) * (rank - seen) / n
        seen += n
    return LATENCY_BUCKETS[-1]


@dataclass
class _Minute:
    minute: int
    counts: Counter[str] = field(default_factory=Counter)
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))


class _Latency:
    __slots__ = ("buckets", "count", "total", "worst")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.worst = 0.0
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)

    def add(self, seconds: float, index: int) -> None:
        self.count += 1
        self.total += seconds
        self.worst = max(self.worst, seconds)
        self.buckets[index] += 1

    def export(self) -> dict[str, Any]:
        return {"count": self.count, "total": self.total, "worst": self.worst,
                "buckets": list(self.buckets)}


def _latency_summary(raw: Mapping[str, Any]) -> dict[str, float]:
    count, worst = int(raw["count"]), float(raw["worst"])
    return {
        "count": count,
        "mean_ms": (raw["total"] / count * 1000) if count else 0.0,
        "p50_ms": quantile(raw["buckets"], 0.50, worst) * 1000,
        "p95_ms": quantile(raw["buckets"], 0.95, worst) * 1000,
        "max_ms": worst * 1000,
    }


class _LiveTotals(Mapping[str, int]):
    """A read-only view of a Metrics' totals that is current at every read (it folds the
    tier hits counted without the lock first)."""

    __slots__ = ("_metrics",)

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def __getitem__(self, what: str) -> int:
        return self._metrics._current_totals()[what]  # a Counter: 0 when missing

    def get(self, what: str, default: Any = None) -> Any:
        """The counter ``what``, or ``default`` if it was never counted."""
        return self._metrics._current_totals().get(what, default)

    def __contains__(self, what: object) -> bool:
        return what in self._metrics._current_totals()

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._metrics._current_totals()))

    def __len__(self) -> int:
        return len(self._metrics._current_totals())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self._metrics._current_totals())!r})"


class Metrics:
    """Thread-safe counters by outcome and error code, with a one-hour minute series."""

    def __init__(self, clock: Any = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._totals: Counter[str] = Counter()
        # In-process tier hits are the hottest path: counted without the lock (next() on
        # an itertools.count is atomic) and folded into the counters by the next locked
        # update or read, so they land in the minute of that update (a few seconds late at
        # worst while the fleet publisher runs).
        self._local_ticks = itertools.count()
        self._local_folds = 0  # next() calls made by folding, not by hits
        self._local_folded = 0  # hits already in the counters
        self._live = _LiveTotals(self)
        self.errors: Counter[str] = Counter()
        self._latency: dict[str, _Latency] = {}
        self._series: deque[_Minute] = deque(maxlen=_SERIES_MINUTES)
        self._current = _Minute(-1)  # the newest minute of the series (none yet)
        self._minute_start = float("inf")  # the clock reading self._current starts at
        self.started = float(clock())
        self.sinks: list[MetricsSink] = []
        # The one publisher of these metrics (clients sharing them publish once), set by
        # the first client built with them.
        self.publisher: FleetPublisher | None = None

    @property
    def totals(self) -> Mapping[str, int]:
        """Every counter since start (hits, misses, sets, errors, local_hits...), current
        at each read; a missing counter reads as 0."""
        return self._live

    def _current_totals(self) -> Counter[str]:
        with self._lock:
            self._bucket()  # folds the unlocked tier hits
            return self._totals

    def _bucket(self) -> _Minute:
        """The current minute's counters (with the lock held); folds the tier's hits."""
        now = self._clock()
        current = self._current
        if not self._minute_start <= now < self._minute_start + 60.0:  # rare: a new minute
            minute = int(now // 60)
            if not self._series or self._series[-1].minute != minute:
                self._series.append(_Minute(minute))
            current = self._current = self._series[-1]
            self._minute_start = current.minute * 60.0
        hits = next(self._local_ticks) - self._local_folds - self._local_folded
        self._local_folds += 1
        if hits:
            self._local_folded += hits
            for counts in (self._totals, current.counts):
                counts["hits"] += hits
                counts["local_hits"] += hits
        return current

    def count(self, what: str, n: int = 1) -> None:
        """Add ``n`` to counter ``what`` (hits, misses, stale, sets, deletes, expired...)."""
        if n <= 0:
            return
        with self._lock:
            self._bucket().counts[what] += n
            self._totals[what] += n
        for sink in self.sinks:
            sink.count(what, n)

    def local_hit(self) -> None:
        """One read answered from the in-process tier: a hit and a local hit, no lock."""
        next(self._local_ticks)
        for sink in self.sinks:
            sink.count("local_hits", 1)
            sink.count("hits", 1)

    def count_many(self, **counts: int) -> None:
        """Add several counters at once (one lock round for a whole get_many)."""
        with self._lock:
            bucket = self._bucket().counts
            for what, n in counts.items():
                if n > 0:
                    self._totals[what] += n
                    bucket[what] += n
        for sink in self.sinks:
            for what, n in counts.items():
                if n > 0:
                    sink.count(what, n)

    def error(self, code: str) -> None:
        """Count one failure with its code."""
        with self._lock:
            self.errors[code] += 1
            self._totals["errors"] += 1
            minute = self._bucket()
            minute.counts["errors"] += 1
            minute.counts["error:" + code] += 1
        for sink in self.sinks:
            sink.error(code)

    def observe(self, op: str, seconds: float) -> None:
        """Record the latency of one operation."""
        index = _bucket_index(seconds)
        with self._lock:
            lat = self._latency.get(op)
            if lat is None:
                lat = self._latency[op] = _Latency()
            lat.add(seconds, index)
            minute = self._bucket()
            minute.counts["ops"] += 1
            minute.latency[index] += 1
        for sink in self.sinks:
            sink.observe(op, seconds)

    def lookup(self, op: str, seconds: float | None, hits: int = 0, misses: int = 0,
               expired: int = 0) -> None:
        """One read: its latency (None: not timed) and its hits/misses, under one lock."""
        with self._lock:
            minute = self._bucket()
            counts = minute.counts
            if seconds is not None:
                index = _bucket_index(seconds)
                lat = self._latency.get(op)
                if lat is None:
                    lat = self._latency[op] = _Latency()
                lat.add(seconds, index)
                counts["ops"] += 1
                minute.latency[index] += 1
            totals = self._totals
            if hits:
                totals["hits"] += hits
                counts["hits"] += hits
            if misses:
                totals["misses"] += misses
                counts["misses"] += misses
            if expired:
                totals["expired"] += expired
                counts["expired"] += expired
        if not self.sinks:
            return
        for sink in self.sinks:
            if seconds is not None:
                sink.observe(op, seconds)
            for what, n in (("hits", hits), ("misses", misses), ("expired", expired)):
                if n:
                    sink.count(what, n)

    def hit_rate(self) -> float | None:
        """Hits (fresh or stale) over lookups, or None before the first lookup."""
        return _hit_rate(self.totals)

    def series(self) -> list[dict[str, Any]]:
        """Per-minute counts for the last hour, oldest first, gaps filled with zeros."""
        return _series(self.export()["series"], int(self._clock() // 60))

    def error_rates(self) -> dict[str, float]:
        """Errors per operation over the last 1, 5 and 15 minutes."""
        return _error_rates(self.export()["series"], int(self._clock() // 60))

    def export(self) -> dict[str, Any]:
        """The raw, mergeable counters (what a process publishes for the fleet view)."""
        with self._lock:
            self._bucket()  # folds the unlocked tier hits
            return {
                "now": float(self._clock()),
                "started": self.started,
                "totals": dict(self._totals),
                "errors_by_code": dict(self.errors),
                "latency": {op: lat.export() for op, lat in self._latency.items()},
                "series": [{"minute": m.minute, "counts": dict(m.counts),
                            "latency": list(m.latency)} for m in self._series],
            }

    def snapshot(self) -> dict[str, Any]:
        """Everything, JSON-friendly."""
        return summarize(self.export())


def calls(raw: Mapping[str, Any]) -> int:
    """Every cache call of an export, counted once: each call that reached the backend (one
    latency each) plus each one that could not run (breaker open, arguments not keyable)."""
    timed = sum(int(lat.get("count", 0)) for lat in raw.get("latency", {}).values())
    return timed + int(raw.get("totals", {}).get("ops", 0))


def _hit_rate(totals: Mapping[str, int]) -> float | None:
    hits = totals.get("hits", 0) + totals.get("stale", 0)
    total = hits + totals.get("misses", 0)
    return hits / total if total else None


def _series(raw: Iterable[Mapping[str, Any]], now_minute: int) -> list[dict[str, Any]]:
    by_minute = {int(m["minute"]): m for m in raw}
    out: list[dict[str, Any]] = []
    for minute in range(now_minute - _SERIES_MINUTES + 1, now_minute + 1):
        m = by_minute.get(minute)
        counts: Mapping[str, int] = m["counts"] if m else {}
        latency: Sequence[int] = m["latency"] if m else ()
        row: dict[str, Any] = {"minute": minute * 60}
        row.update({f: counts.get(f, 0) for f in _FIELDS})
        row["ops"] = counts.get("ops", 0)
        row["p50_ms"] = quantile(latency, 0.50) * 1000 if latency else None
        row["p95_ms"] = quantile(latency, 0.95) * 1000 if latency else None
        row["errors_by_code"] = {k[6:]: v for k, v in counts.items() if k.startswith("error:")}
        out.append(row)
    return out


def _error_rates(raw: Iterable[Mapping[str, Any]], now_minute: int) -> dict[str, float]:
    rows = [(int(m["minute"]), m["counts"].get("errors", 0), m["counts"].get("ops", 0))
            for m in raw]
    rates = {}
    for span in (1, 5, 15):
        errors = sum(e for m, e, _ in rows if m > now_minute - span)
        ops = sum(o for m, _, o in rows if m > now_minute - span)
        rates[f"{span}m"] = errors / ops if ops else 0.0
    return rates


def merge(exports: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The sum of several processes' exports, in the same raw shape."""
    totals: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    latency: dict[str, dict[str, Any]] = {}
    minutes: dict[int, dict[str, Any]] = {}
    for ex in exports:
        totals.update(ex.get("totals", {}))
        errors.update(ex.get("errors_by_code", {}))
        for op, lat in ex.get("latency", {}).items():
            into = latency.setdefault(op, {"count": 0, "total": 0.0, "worst": 0.0,
                                           "buckets": [0] * (len(LATENCY_BUCKETS) + 1)})
            into["count"] += lat["count"]
            into["total"] += lat["total"]
            into["worst"] = max(into["worst"], lat["worst"])
            into["buckets"] = [a + b for a, b in zip(into["buckets"], lat["buckets"],
                                                     strict=False)]
        for m in ex.get("series", []):
            into = minutes.setdefault(int(m["minute"]), {
                "minute": int(m["minute"]), "counts": Counter(),
                "latency": [0] * (len(LATENCY_BUCKETS) + 1)})
            into["counts"].update(m["counts"])
            into["latency"] = [a + b for a, b in zip(into["latency"], m["latency"],
                                                     strict=False)]
    return {
        "now": max((float(ex.get("now", 0)) for ex in exports), default=time.time()),
        "started": min((float(ex.get("started", 0)) for ex in exports), default=time.time()),
        "totals": dict(totals), "errors_by_code": dict(errors), "latency": latency,
        "series": [dict(m, counts=dict(m["counts"])) for _, m in sorted(minutes.items())],
    }


def summarize(raw: Mapping[str, Any]) -> dict[str, Any]:
    """What the pages show for one export (or a merge of several)."""
    now_minute = int(raw["now"] // 60)
    totals = raw["totals"]
    series = _series(raw["series"], now_minute)
    recent = series[-5:]
    seconds = 5 * 60
    return {
        "totals": {"calls": calls(raw), **{f: totals.get(f, 0) for f in _TOTALS}},
        "hit_rate": _hit_rate(totals),
        "errors_by_code": dict(raw["errors_by_code"]),
        "error_rates": _error_rates(raw["series"], now_minute),
        "rates_per_s": {  # over the last five minutes
            f: sum(r[f] for r in recent) / seconds for f in (*_FIELDS, "ops")
        },
        "error_code_rates_per_s": {
            code: sum(r["errors_by_code"].get(code, 0) for r in recent) / seconds
            for code in raw["errors_by_code"]
        },
        "latency": {op: _latency_summary(lat) for op, lat in raw["latency"].items()},
        "started": raw.get("started"),
        "now": raw["now"],  # the last minute of the series is unfinished until now + 60
        "series": series,
    }
