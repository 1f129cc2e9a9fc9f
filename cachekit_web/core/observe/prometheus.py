"""Prometheus export (the ``prometheus`` extra): the metrics with Prometheus names.

Turned on by the PROMETHEUS setting. Every counter a client records is mirrored
into prometheus_client objects as it happens:

- ``cachekit_operations_total{namespace,op,outcome}``: get hit/miss/stale, set ok,
  delete ok/deferred;
- ``cachekit_errors_total{namespace,code}``;
- ``cachekit_operation_duration_seconds{namespace,op}``: a histogram;
- ``cachekit_breaker_state{namespace}``: 0 closed, 1 half-open, 2 open;
- ``cachekit_pending_invalidations{namespace}`` and ``cachekit_spooled_invalidations``.

Under several processes (gunicorn) set PROMETHEUS_MULTIPROC_DIR before the
workers start: prometheus_client then writes each process's values to files in
that directory and ``exposition()`` adds them up (its multiprocess mode). This
module is imported only when the setting is on, so the core never needs the extra.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, install_line
from ..resilience.breaker import Transition
from .metrics import LATENCY_BUCKETS

if TYPE_CHECKING:
    from ..parts import Parts
    from .fleet import FleetPublisher

_OUTCOMES = {"hits": ("get", "hit"), "misses": ("get", "miss"), "stale": ("get", "stale"),
             "sets": ("set", "ok"), "deletes": ("delete", "ok"),
             "deferred": ("delete", "deferred")}
_STATES = {"closed": 0, "half_open": 1, "open": 2}
_lock = threading.Lock()
_families: dict[str, Any] = {}
_publishers: weakref.WeakSet[FleetPublisher] = weakref.WeakSet()


def _client_module() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise ConfigurationError(
            "PROMETHEUS is on but prometheus_client is not installed: "
            f"{install_line('prometheus')} (in the cachekit-web checkout)", code="E042") from None
    return prometheus_client


def _get_families() -> dict[str, Any]:
    """The process's metric objects, created once (prometheus_client forbids duplicates)."""
    with _lock:
        if not _families:
            pc = _client_module()
            _families.update(
                ops=pc.Counter("cachekit_operations", "Cache operations by outcome.",
                               ["namespace", "op", "outcome"]),
                errors=pc.Counter("cachekit_errors", "Cache failures by error code "
                                  "(see docs/errors.md).", ["namespace", "code"]),
                latency=pc.Histogram("cachekit_operation_duration_seconds",
                                     "Time of one backend call.", ["namespace", "op"],
                                     buckets=LATENCY_BUCKETS),
                breaker=pc.Gauge("cachekit_breaker_state",
                                 "Circuit breaker: 0 closed, 1 half-open, 2 open.",
                                 ["namespace"], multiprocess_mode="liveall"),
                pending=pc.Gauge("cachekit_pending_invalidations",
                                 "Invalidations waiting for Redis to answer.", ["namespace"],
                                 multiprocess_mode="livesum"),
                spooled=pc.Gauge("cachekit_spooled_invalidations",
                                 "Invalidations in the local spool files.", ["namespace"],
                                 multiprocess_mode="livemax"),
            )
        return _families


class PrometheusSink:
    """Mirrors one client's counters into prometheus_client (a metrics sink)."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.families = _get_families()

    def count(self, what: str, n: int) -> None:
        """Counters with an operation and an outcome; the others stay internal."""
        pair = _OUTCOMES.get(what)
        if pair is not None:
            self.families["ops"].labels(self.namespace, *pair).inc(n)

    def error(self, code: str) -> None:
        """One failure with its code."""
        self.families["errors"].labels(self.namespace, code).inc()

    def observe(self, op: str, seconds: float) -> None:
        """One backend call's time."""
        self.families["latency"].labels(self.namespace, op).observe(seconds)


def attach(parts: Parts, fleet: FleetPublisher) -> None:
    """Mirror a client's metrics, breaker and pending invalidations into Prometheus."""
    sink = PrometheusSink(parts.namespace)
    parts.metrics.sinks.append(sink)
    breaker = sink.families["breaker"].labels(parts.namespace)
    breaker.set(_STATES.get(parts.breaker.state.value, 0))

    def on_transition(t: Transition) -> None:
        breaker.set(_STATES.get(t.new.value, 0))

    parts.breaker.add_listener(on_transition)

    def gauges() -> None:
        pending = parts.pending
        sink.families["pending"].labels(parts.namespace).set(len(pending))
        sink.families["spooled"].labels(parts.namespace).set(
            pending.spool.depth() if pending.spool is not None else 0)

    fleet.listeners.append(gauges)  # refreshed every publish interval, and at each scrape
    gauges()
    _publishers.add(fleet)


def exposition() -> tuple[bytes, str]:
    """The text exposition for a scrape, and its content type (all processes in multiprocess
    mode, i.e. when PROMETHEUS_MULTIPROC_DIR is set)."""
    pc = _client_module()
    for fleet in list(_publishers):
        for listener in fleet.listeners:
            listener()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = pc.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = pc.REGISTRY
    return pc.generate_latest(registry), str(pc.CONTENT_TYPE_LATEST)
