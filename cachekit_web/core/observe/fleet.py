"""The fleet view: every process publishes a sealed snapshot, health pages add them up.

A web site runs several processes (gunicorn workers, several hosts); each one
counts only its own traffic. Every FLEET_PUBLISH_INTERVAL seconds a daemon
thread writes this process's metrics and breaker state to one key per process,
``{<namespace>}!fleet:<host>:<pid>:<token>``, sealed by the client's codec and
expiring after a few intervals, so a process that is gone drops out. The key
starts with '{', which a namespace never does, so it can never be a user key;
its hash tag puts every snapshot of a namespace in one Cluster slot.

Which processes exist is kept in a roster, ``{<namespace>}!fleet``: a sealed
map of snapshot key -> last publication, updated by compare-and-swap at every
publication (entries older than the snapshot TTL are pruned) and expiring with
the last publisher. Health reports read the roster, then every snapshot in one
GET of many keys (one slot: works on a Cluster, no SCAN over the keyspace), and
merge them with the in-memory snapshot of the process that serves the page.
When Redis cannot be read, the report says it covers this process only.
"""

from __future__ import annotations

import copy
import math
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import DeserializationError, IntegrityError
from ..resilience.breaker import OUTAGES_KEPT, State
from ..resilience.worker import ProcessThread
from .health import merge_outages, outages
from .metrics import LATENCY_BUCKETS, SERIES_MINUTES, calls, merge, summarize

if TYPE_CHECKING:
    from ..backends import Backend
    from ..parts import Parts
    from .metrics import Metrics


FORMAT = 1
# Bounds on what a health report reads (anyone who can write to Redis can plant records):
# stored bytes checked before anything is decompressed, then at most MAX_DECODED inflated.
MAX_STORED = 256 * 1024
MAX_DECODED = 1024 * 1024
_MAX_TEXT = 512  # host names, op names, counter names, snapshot keys
_MAX_NAMES = 512  # entries of one counter map
_MAX_COUNT = 2**63 - 1
_MAX_SKEW = 3600.0  # seconds a live process's clock may differ from this one's
_STATES = ("closed", "open", "half_open")
_FIELDS = frozenset({"host", "pid", "started", "published", "interval", "breaker",
                     "pending_deletes", "spooled", "metrics"})
# A snapshot lives this many intervals: a process missing two publications is gone.
TTL_INTERVALS = 3
# At most this many processes are read for one report (bounded work per page view).
MAX_PROCESSES = 500
_TRANSITIONS_KEPT = 20


def snapshot_prefix(namespace: str) -> str:
    """The key prefix of a namespace's process snapshots (never a user key: see module doc)."""
    return "{" + namespace + "}!fleet:"


def roster_key(namespace: str) -> str:
    """The key of a namespace's roster of snapshot keys."""
    return "{" + namespace + "}!fleet"


def bounded(codec: Any) -> Any:
    """``codec`` for reading fleet records: it inflates at most MAX_DECODED bytes."""
    if getattr(codec, "max_value_size", 0) <= MAX_DECODED:
        return codec
    small = copy.copy(codec)
    small.max_value_size = MAX_DECODED
    return small


def _open(codec: Any, key: str, raw: bytes) -> Any:
    """The value of a fleet record, or None: too large (checked before decompression),
    inflating beyond MAX_DECODED, forged or unreadable."""
    if len(raw) > MAX_STORED:
        return None
    try:
        entry = bounded(codec).decode(key.encode(), raw)
    except (IntegrityError, DeserializationError):
        return None
    return None if entry is None else entry.value


def open_roster(codec: Any, key: str, raw: bytes | None) -> dict[str, float]:
    """The roster's members (snapshot key -> last publication); empty if absent or forged."""
    if not raw:
        return {}
    value = _open(codec, key, raw)
    if not isinstance(value, dict):
        return {}
    return {k: float(v) for k, v in value.items()
            if isinstance(k, str) and k.startswith(key + ":") and len(k) <= _MAX_TEXT
            and _number(v)}


class FleetPublisher(ProcessThread):
    """Publishes one process's snapshot at a bounded interval, from a daemon thread.

    One per Metrics object, so clients sharing their metrics (sync + async twins)
    publish once. Started lazily by the first admitted cache call in each process
    (so a fork gets its own thread and identity); the first snapshot is written one
    interval later. Skips its turn while the breaker is open and never touches a
    request's connection: it has its own backend, bounded by the socket timeouts.
    """

    thread_name = "cachekit-fleet"

    def __init__(self, parts: Parts, backend_factory: Callable[[], Backend]) -> None:
        super().__init__(backend_factory, float(parts.settings.FLEET_PUBLISH_INTERVAL))
        self.settings = parts.settings
        self.namespace = parts.namespace
        self.prefix = snapshot_prefix(parts.namespace)
        self.roster = roster_key(parts.namespace)
        self.codec = parts.codec
        self.breaker = parts.breaker
        self.metrics = parts.metrics
        self.pending = parts.pending
        self.clock = parts.clock
        self._pid = 0
        self._token = ""
        self.started = 0.0
        self.host = socket.gethostname()
        self.published = 0  # how many snapshots this process wrote (tests, stats)
        self.listeners: list[Callable[[], None]] = []  # run every interval (gauges)
        self._identity()

    def _identity(self) -> None:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._token = secrets.token_hex(4)
            self.started = float(self.clock())

    @property
    def key(self) -> str:
        """This process's snapshot key."""
        self._identity()
        return f"{self.prefix}{self.host}:{self._pid}:{self._token}"

    def ensure_running(self) -> None:
        """Start the publishing thread in this process if it does not run (also after a
        fork done in C, which Python's fork hooks never see)."""
        if self.interval <= 0 or self.running():
            return
        self._identity()
        self.start()

    def tick(self) -> bool:
        for listener in self.listeners:
            listener()
        if self.breaker.state is not State.OPEN:  # known down: do not add to its load
            self.publish_once()
        return True

    def local(self, metrics: Metrics | None = None) -> dict[str, Any]:
        """This process's snapshot (what publish_once writes), as a plain dict."""
        breaker = self.breaker.snapshot()
        transitions: list[dict[str, Any]] = list(breaker["transitions"])  # type: ignore[call-overload]
        return {
            "format": FORMAT,
            "host": self.host,
            "pid": os.getpid(),
            "started": self.started,
            "published": float(self.clock()),
            "interval": self.interval,
            "breaker": {"state": breaker["state"], "opened_count": breaker["opened_count"],
                        "transitions": transitions[-_TRANSITIONS_KEPT:],
                        "outages": list(breaker.get("outages") or [])},  # type: ignore[call-overload]
            "pending_deletes": len(self.pending),
            "spooled": self.pending.spool.depth() if self.pending.spool is not None else 0,
            "metrics": (metrics or self.metrics).export(),
        }

    def sealed(self) -> tuple[str, bytes, float]:
        """This process's key, its sealed snapshot and its TTL."""
        key = self.key
        ttl = max(self.interval, 1.0) * TTL_INTERVALS
        return key, self.codec.encode(key.encode(), self.local(), None,
                                      float(self.clock()) + ttl), ttl

    def publish_once(self) -> None:
        """Write this process's snapshot now (raises the backend's CachekitError)."""
        key, data, ttl = self.sealed()
        backend = self.backend()
        backend.set(key, data, ttl)
        self.enrol(backend, key, ttl)
        self.published += 1

    def enrol(self, backend: Backend, key: str, ttl: float) -> None:
        """Put ``key`` on the roster (compare-and-swap), pruning members not seen for ``ttl``."""

        def add(raw: bytes) -> bytes:
            now = float(self.clock())
            members = {k: seen for k, seen in open_roster(self.codec, self.roster, raw).items()
                       if now - seen <= ttl}
            members[key] = now
            if len(members) > MAX_PROCESSES:  # keep the most recent
                members = dict(sorted(members.items(), key=lambda kv: -kv[1])[:MAX_PROCESSES])
            return bytes(self.codec.encode(self.roster.encode(), members, None, None))

        if backend.update(self.roster, add) is None \
                and not backend.set(self.roster, add(b""), ttl, nx=True):
            backend.update(self.roster, add)  # another process created it meanwhile
        backend.touch(self.roster, ttl)  # the roster outlives its last publisher by one TTL


def _number(v: Any, low: float = 0.0, high: float = 1e12) -> bool:
    """A finite int or float (never a bool) in [low, high]."""
    return (type(v) in (int, float)) and math.isfinite(v) and low <= v <= high


def _count(v: Any) -> bool:
    return type(v) is int and 0 <= v <= _MAX_COUNT


def _text(v: Any) -> bool:
    return isinstance(v, str) and len(v) <= _MAX_TEXT


def _counts(v: Any) -> bool:
    """A map of counter names to counts."""
    return (isinstance(v, dict) and len(v) <= _MAX_NAMES
            and all(_text(k) and _count(n) for k, n in v.items()))


def _buckets(v: Any) -> bool:
    return (isinstance(v, list) and len(v) == len(LATENCY_BUCKETS) + 1
            and all(_count(n) for n in v))


def _latency(v: Any) -> bool:
    return (isinstance(v, dict) and set(v) == {"count", "total", "worst", "buckets"}
            and _count(v["count"]) and _number(v["total"]) and _number(v["worst"], 0, 1e6)
            and _buckets(v["buckets"]))


def _metrics_ok(m: Any, now: float) -> bool:
    """A metrics export as Metrics.export writes it, with plausible times."""
    if not (isinstance(m, dict) and {"now", "started", "totals", "errors_by_code",
                                     "latency", "series"} <= set(m)):
        return False
    if not (_number(m["now"], now - _MAX_SKEW, now + _MAX_SKEW)
            and _number(m["started"], 0, now + _MAX_SKEW)):
        return False
    if not (_counts(m["totals"]) and _counts(m["errors_by_code"])):
        return False
    lat, series = m["latency"], m["series"]
    if not (isinstance(lat, dict) and len(lat) <= _MAX_NAMES
            and all(_text(op) and _latency(x) for op, x in lat.items())):
        return False
    newest = m["now"] // 60
    return isinstance(series, list) and len(series) <= SERIES_MINUTES and all(
        isinstance(x, dict) and set(x) == {"minute", "counts", "latency"}
        and type(x["minute"]) is int and newest - SERIES_MINUTES <= x["minute"] <= newest + 1
        and _counts(x["counts"]) and _buckets(x["latency"]) for x in series)


def _transition_ok(t: Any) -> bool:
    return (isinstance(t, dict) and len(t) <= 8 and all(_text(k) for k in t)
            and _number(t.get("at"), 0, 1e12) and _text(t.get("to"))
            and all(_text(v) or _number(v, -1e12, 1e12) or v is None
                    for k, v in t.items() if k not in ("at", "to")))


def _outages_ok(spans: Any) -> bool:
    return isinstance(spans, list) and len(spans) <= OUTAGES_KEPT and all(
        isinstance(o, dict) and set(o) == {"start", "end", "openings"}
        and _number(o["start"], 0, 1e12) and (o["end"] is None or _number(o["end"], 0, 1e12))
        and _count(o["openings"]) for o in spans)


def valid_snapshot(snap: Any, now: float) -> bool:
    """Whether ``snap`` has every field of a snapshot, of the right type, finite and bounded
    (a forged or corrupt one must never reach the sums or the pages)."""
    if not (isinstance(snap, dict) and snap.get("format") == FORMAT and set(snap) >= _FIELDS):
        return False
    breaker = snap["breaker"]
    return bool(
        _text(snap["host"]) and type(snap["pid"]) is int and 0 <= snap["pid"] < 2**32
        and _number(snap["started"], 0, now + _MAX_SKEW)
        and _number(snap["published"], now - _MAX_SKEW, now + _MAX_SKEW)
        and _number(snap["interval"], 0, 1e6)
        and isinstance(breaker, dict) and breaker.get("state") in _STATES
        and _count(breaker.get("opened_count"))
        and isinstance(breaker.get("transitions"), list)
        and len(breaker["transitions"]) <= _TRANSITIONS_KEPT
        and all(_transition_ok(t) for t in breaker["transitions"])
        and _outages_ok(breaker.get("outages", []))
        and _count(snap["pending_deletes"]) and _count(snap["spooled"])
        and _metrics_ok(snap["metrics"], now))


def decode_snapshots(codec: Any, rows: Iterable[tuple[str, bytes]],
                     now: float | None = None) -> tuple[list[dict[str, Any]], int]:
    """Open the sealed snapshots read from Redis: (the valid ones, how many were skipped).

    Foreign, tampered, oversized or malformed ones are skipped; each is opened and checked
    alone, so at most one MAX_DECODED payload is inflated at a time."""
    now = time.time() if now is None else now
    out = []
    skipped = 0
    for key, raw in rows:
        value = _open(codec, key, raw)
        if valid_snapshot(value, now):
            out.append(dict(value, key=key))
        else:
            skipped += 1  # another key, another format, a forgery or a corrupt record
    return out, skipped


def _process_row(snap: Mapping[str, Any], this: bool) -> dict[str, Any]:
    totals = snap["metrics"].get("totals", {})
    ops = calls(snap["metrics"])  # refused calls too: a call's error is never uncounted
    return {
        "host": snap["host"], "pid": snap["pid"], "started": snap["started"],
        "last_seen": snap["published"], "breaker": snap["breaker"]["state"],
        "breaker_opened": snap["breaker"]["opened_count"],
        "ops": ops, "hits": totals.get("hits", 0) + totals.get("stale", 0),
        "misses": totals.get("misses", 0), "errors": totals.get("errors", 0),
        "pending_deletes": snap.get("pending_deletes", 0), "spooled": snap.get("spooled", 0),
        "this": this,
    }


def aggregate(local: dict[str, Any], local_key: str, others: list[dict[str, Any]] | None,
              reason: str | None = None,
              skipped: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metrics, fleet) for a report: the sum of every live process, or this one alone.

    ``others`` is None when the snapshots could not be read (``reason`` says why);
    the snapshot of this very process read back from Redis is replaced by ``local``.
    """
    if others is None:
        snaps = [local]
        scope = "local"
    else:
        snaps = [local] + [s for s in others if s["key"] != local_key]
        scope = "fleet"
    openings = sorted(
        ({"at": t["at"], "host": s["host"], "pid": s["pid"], "reason": t.get("reason", "")}
         for s in snaps for t in s["breaker"]["transitions"] if t.get("to") == "open"),
        key=lambda o: o["at"])
    # Each breaker's own outage record; a snapshot without one (an older release) from its
    # transitions.
    spans = merge_outages(span for s in snaps for span in (
        s["breaker"]["outages"] if "outages" in s["breaker"]
        else outages(s["breaker"]["transitions"])))
    metrics = summarize(merge([s["metrics"] for s in snaps]))
    fleet = {
        "scope": scope,
        "reason": reason,
        "interval": local["interval"],
        "processes": [_process_row(s, s is local) for s in snaps],
        "breakers_open": sum(1 for s in snaps if s["breaker"]["state"] == "open"),
        "openings": openings,
        "outages": spans,  # one per outage however often it re-opened, processes merged
        "pending_deletes": sum(int(s.get("pending_deletes", 0)) for s in snaps),
        "skipped": skipped,  # snapshots read but not counted (invalid, forged, too large)
    }
    return metrics, fleet
