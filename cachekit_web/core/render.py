"""The health dashboard as HTML (with an inline-SVG per-minute chart), framework-agnostic.

Both the Django admin page and the Flask blueprint serve this; everything
interpolated is escaped, and the report itself never carries secrets.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

from .health import HealthReport

CHART_SERIES = (("hits", "#2e7d32"), ("misses", "#f9a825"), ("stale", "#6a1b9a"),
                ("errors", "#c62828"))
_STATUS_COLOURS = {"ok": "#2e7d32", "degraded": "#f9a825", "down": "#c62828"}

_STYLE = """
.ck-dash{font-family:system-ui,sans-serif;color:#222;max-width:1000px}
.ck-dash h2{font-size:1.1em;margin:1.2em 0 .4em}
.ck-dash table{border-collapse:collapse;margin:.3em 0}
.ck-dash td,.ck-dash th{border:1px solid #ddd;padding:3px 8px;text-align:left;font-size:.9em}
.ck-status{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:bold}
.ck-legend span{margin-right:1em;font-size:.85em}
.ck-legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
"""


UNAUTHENTICATED_TEXT = ("plain msgpack, NOT authenticated (no MASTER_KEY or SIGNING_KEY): "
                        "anyone who can write to Redis can forge values; pages and "
                        "fragments are not cached")


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value else "0"
    return str(value)


def _time(ts: float | None) -> str:
    if not ts:
        return "-"
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str] = ()) -> str:
    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{escape(_fmt(c))}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "".join(out)


def svg_chart(series: Sequence[Mapping[str, Any]], *, width: int = 720, height: int = 180) -> str:
    """An inline SVG line chart of hits, misses, stale and errors per minute."""
    pad_left, pad_bottom, pad_top = 40, 20, 10
    plot_w, plot_h = width - pad_left - 10, height - pad_bottom - pad_top
    n = max(len(series), 2)
    peak = max([1, *(int(row.get(name, 0)) for row in series for name, _ in CHART_SERIES)])

    def x(i: int) -> float:
        return pad_left + plot_w * i / (n - 1)

    def y(v: float) -> float:
        return pad_top + plot_h * (1 - v / peak)

    parts = [
        f'<svg class="ck-chart" role="img" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        "<title>Cache operations per minute, last hour</title>",
        f'<rect x="{pad_left}" y="{pad_top}" width="{plot_w}" height="{plot_h}" '
        f'fill="#fafafa" stroke="#ccc"/>',
        f'<text x="{pad_left - 4}" y="{pad_top + 10}" font-size="10" text-anchor="end">'
        f"{peak}</text>",
        f'<text x="{pad_left - 4}" y="{pad_top + plot_h}" font-size="10" '
        f'text-anchor="end">0</text>',
        f'<text x="{pad_left}" y="{height - 5}" font-size="10">-60 min</text>',
        f'<text x="{width - 10}" y="{height - 5}" font-size="10" text-anchor="end">now</text>',
    ]
    for name, colour in CHART_SERIES:
        points = " ".join(f"{x(i):.1f},{y(float(row.get(name, 0))):.1f}"
                          for i, row in enumerate(series))
        if points:
            parts.append(f'<polyline class="ck-series-{name}" fill="none" stroke="{colour}" '
                         f'stroke-width="1.5" points="{points}"/>')
    parts.append("</svg>")
    legend = "".join(f'<span><i style="background:{c}"></i>{n}</span>' for n, c in CHART_SERIES)
    return "".join(parts) + f'<div class="ck-legend">{legend}</div>'


def render_dashboard(report: HealthReport, *, json_url: str | None = None,
                     error_url: Callable[[str], str] | None = None) -> str:
    """The dashboard body (a <div>, with its own <style>) for one HealthReport.

    ``error_url(code)``, when given, links each error code to its explanation.
    """
    d = report.as_dict()
    metrics, breaker = d["metrics"], d["breaker"]
    colour = _STATUS_COLOURS.get(report.status, "#555")
    hit_rate = metrics.get("hit_rate")
    out = [
        f"<style>{_STYLE}</style>",
        '<div class="ck-dash" id="cachekit-dashboard">',
        f'<p>Status: <span class="ck-status" id="ck-status" style="background:{colour}">'
        f"{escape(report.status)}</span> &nbsp; checked {escape(_time(report.checked_at))}",
    ]
    if json_url:
        out.append(f' &nbsp; <a href="{escape(json_url)}">JSON</a>')
    out.append("</p>")
    if report.error:
        out.append(f'<p class="ck-error">[{escape(report.error.get("code", ""))}] '
                   f'{escape(report.error.get("message", ""))}</p>')
    enc = d["encryption"]
    mode = "AES-256-GCM" if enc.get("encrypted") else "HMAC-signed" if enc.get("signed") \
        else UNAUTHENTICATED_TEXT
    out.append(_table([
        ("backend", report.backend), ("namespace", report.namespace),
        ("ping (ms)", report.ping_ms),
        ("hit rate", None if hit_rate is None else f"{hit_rate * 100:.1f}%"),
        ("values", mode), ("key fingerprint", enc.get("key_fingerprint")),
        ("pending deletes", report.pending_deletes),
    ]))
    out.append("<h2>Last hour, per minute</h2>")
    out.append(svg_chart(metrics.get("series", [])))
    out.append("<h2>Totals</h2>")
    out.append(_table(sorted(metrics.get("totals", {}).items())))
    latency = metrics.get("latency", {})
    if latency:
        out.append("<h2>Latency</h2>")
        out.append(_table(
            [(op, s["count"], s["mean_ms"], s["p50_ms"], s["p95_ms"], s["max_ms"])
             for op, s in sorted(latency.items())],
            ("operation", "count", "mean ms", "p50 ms", "p95 ms", "max ms"),
        ))
    out.append("<h2>Circuit breaker</h2>")
    out.append(_table([
        ("state", breaker.get("state")), ("recent failures", breaker.get("recent_failures")),
        ("failure threshold", breaker.get("failure_threshold")),
        ("window (s)", breaker.get("window")),
        ("recovery timeout (s)", breaker.get("recovery_timeout")),
        ("times opened", breaker.get("opened_count")),
    ]))
    transitions = breaker.get("transitions") or []
    if transitions:
        out.append(_table(
            [(_time(t.get("at")), t.get("from"), t.get("to"), t.get("reason"))
             for t in transitions[-20:]],
            ("at", "from", "to", "reason"),
        ))
    out.append("<h2>Errors by code</h2>")
    explained = report.errors_explained()
    if explained:
        if error_url is None:
            out.append(_table([(e["code"], e["count"], e["title"], e["fix"]) for e in explained],
                              ("code", "count", "what", "fix")))
        else:
            rows = "".join(
                f'<tr><td><a class="ck-code" href="{escape(error_url(e["code"]))}">'
                f'{escape(e["code"])}</a></td><td>{escape(_fmt(e["count"]))}</td>'
                f'<td>{escape(e["title"])}</td><td>{escape(e["fix"])}</td></tr>'
                for e in explained)
            out.append("<table><tr><th>code</th><th>count</th><th>what</th><th>fix</th></tr>"
                       f"{rows}</table>")
    else:
        out.append("<p>No errors recorded.</p>")
    rates = ", ".join(f"{k} {v * 100:.1f}%" for k, v in metrics.get("error_rates", {}).items())
    out.append(f"<p>Error rate: {escape(rates)}</p>")
    if report.nodes:  # cluster / sentinel / replicas: one row per node
        out.append("<h2>Nodes</h2>")
        out.append(_table(
            [(n.get("node"), n.get("role"), "yes" if n.get("reachable") else "NO",
              n.get("latency_ms"), n.get("used_memory_human"), n.get("error") or "")
             for n in report.nodes],
            ("node", "role", "reachable", "latency (ms)", "memory", "error"),
        ))
    if report.server:
        out.append("<h2>Server</h2>")
        out.append(_table(sorted(report.server.items())))
    out.append("</div>")
    return "".join(out)


def render_page(report: HealthReport, *, title: str = "cachekit health",
                json_url: str | None = None) -> str:
    """A complete standalone HTML page for the dashboard."""
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)}</title></head><body>"
        f"<h1>{escape(title)}</h1>{render_dashboard(report, json_url=json_url)}</body></html>"
    )
