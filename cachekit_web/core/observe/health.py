"""HealthReport: what the health pages, `doctor` and monitoring read."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import REGISTRY, CachekitError

# Error rate over the last minute above which the cache is reported degraded.
DEGRADED_ERROR_RATE = 0.05


@dataclass
class HealthReport:
    """Status of one cache client; JSON-serializable through as_dict()."""

    status: str
    backend: str
    namespace: str
    checked_at: float
    ping_ms: float | None
    error: dict[str, str] | None
    server: dict[str, Any]
    breaker: dict[str, Any]
    metrics: dict[str, Any]
    encryption: dict[str, Any]
    pending_deletes: int
    spooled: int = 0
    nodes: list[dict[str, Any]] = field(default_factory=list)
    # Spool failures by code (E080 folder refused, E081 not writable, E082 file set aside).
    spool_errors: dict[str, int] = field(default_factory=dict)
    # Which processes the metrics cover: scope "fleet" (every live process that published
    # a snapshot, plus this one) or "local" (Redis unreachable: this process only).
    fleet: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for json.dumps."""
        return asdict(self)

    @property
    def ok(self) -> bool:
        """Whether the status is 'ok'."""
        return self.status == "ok"

    def errors_explained(self) -> list[dict[str, Any]]:
        """Errors by code with their registry titles and fixes, most frequent first."""
        counts = self.metrics.get("errors_by_code", {})
        out = []
        for code, n in sorted(counts.items(), key=lambda kv: -kv[1]):
            spec = REGISTRY.get(code)
            out.append({
                "code": code, "count": n,
                "title": spec.title if spec else "", "fix": spec.fix if spec else "",
            })
        return out


# Outages closer than this (seconds) are one on the per-minute charts: merged.
OUTAGE_GAP = 60.0


def outages(transitions: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One breaker's outages, oldest first: from the opening that left "closed" to the close
    that ends it, however often it re-opened in between.

    Each is ``{"start", "end" (None while it lasts), "openings"}``. A history cut short
    (the breaker keeps its last transitions) starts at its first transition; the breaker's
    own record (``CircuitBreaker.outages``) has no such cut.
    """
    spans: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for t in sorted(transitions, key=lambda t: float(t["at"])):
        to = t.get("to")
        if current is None:
            if to in ("open", "half_open"):
                current = {"start": float(t["at"]), "end": None,
                           "openings": 1 if to == "open" else 0}
        elif to == "open":
            current["openings"] += 1
        elif to == "closed":
            current["end"] = float(t["at"])
            spans.append(current)
            current = None
    if current is not None:
        spans.append(current)
    return spans


def merge_outages(spans: Iterable[Mapping[str, Any]],
                  gap: float = OUTAGE_GAP) -> list[dict[str, Any]]:
    """Overlapping outages (several processes) and ones less than ``gap`` seconds apart, as
    one each; their openings summed."""
    merged: list[dict[str, Any]] = []
    for span in sorted(spans, key=lambda s: float(s["start"])):
        last = merged[-1] if merged else None
        if last is not None and (last["end"] is None or span["start"] <= last["end"] + gap):
            end = span["end"]
            last["end"] = None if end is None or last["end"] is None else max(last["end"], end)
            last["openings"] += span["openings"]
        else:
            merged.append({"start": float(span["start"]), "end": span["end"],
                           "openings": int(span["openings"])})
    return merged


STRICT_VALUES = ("1", "true", "yes", "on")


def http_status(report: HealthReport, down_status: int = 200, strict: str | None = None) -> int:
    """The HTTP status of a health JSON answer: 200, or ``down_status`` (HEALTH_DOWN_STATUS)
    while the cache is down; ``?strict=1`` (``strict``) asks for 503 then.

    A site serves without its cache (it fails open), so by default a cache outage must not
    take it out of a load balancer's rotation; the JSON's ``status`` still says "down".
    """
    if report.status != "down":
        return 200
    if strict is not None and strict.strip().lower() in STRICT_VALUES:
        return 503
    return down_status


def build_report(
    *,
    backend: str,
    namespace: str,
    ping: float | None,
    ping_error: CachekitError | None,
    info: dict[str, Any],
    breaker: dict[str, Any],
    metrics: dict[str, Any],
    encrypted: bool,
    signed: bool,
    key_fingerprint: str | None,
    pending_deletes: int,
    spooled: int = 0,
    nodes: list[dict[str, Any]] | None = None,
) -> HealthReport:
    """Assemble a report and decide its status (ok / degraded / down)."""
    nodes = nodes or []
    if ping_error is not None or breaker["state"] == "open":
        status = "down"
    elif (
        breaker["state"] == "half_open"
        or metrics["error_rates"]["1m"] > DEGRADED_ERROR_RATE
        or pending_deletes
        or spooled
        or any(not n.get("reachable") for n in nodes)  # one lost node of a topology
    ):
        status = "degraded"
    else:
        status = "ok"
    return HealthReport(
        status=status,
        backend=backend,
        namespace=namespace,
        checked_at=time.time(),
        ping_ms=None if ping is None else round(ping * 1000, 3),
        error=None if ping_error is None else {"code": ping_error.code,
                                               "message": ping_error.message},
        server=info,
        breaker=breaker,
        metrics=metrics,
        encryption={
            # "unauthenticated": no key, so values are plain frames anyone with write
            # access to Redis can forge; pages and fragments are then never cached.
            "mode": "encrypted" if encrypted else "signed" if signed else "unauthenticated",
            "authenticated": signed or encrypted,
            "encrypted": encrypted,
            "signed": signed and not encrypted,
            "key_fingerprint": key_fingerprint,
        },
        pending_deletes=pending_deletes,
        spooled=spooled,
        nodes=nodes,
    )
