"""The health dashboard as HTML (with an inline-SVG per-minute chart), framework-agnostic.

Both the Django admin page and the Flask blueprint serve this; everything
interpolated is escaped, and the report itself never carries secrets.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

from .health import HealthReport, merge_outages, outages

CHART_SERIES = (("hits", "#2e7d32"), ("misses", "#f9a825"), ("stale", "#6a1b9a"),
                ("errors", "#c62828"))
_STATUS_COLOURS = {"ok": "#2e7d32", "degraded": "#f9a825", "down": "#c62828"}

_STYLE = """
.ck-dash{font-family:system-ui,sans-serif;color:#222;max-width:1100px}
.ck-dash svg.ck-chart{display:block;width:100%;max-width:1100px;height:auto}
.ck-dash h2{font-size:1.1em;margin:1.2em 0 .4em}
.ck-dash table{border-collapse:collapse;margin:.3em 0}
.ck-dash td,.ck-dash th{border:1px solid #ddd;padding:3px 8px;text-align:left;font-size:.9em}
.ck-status{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:bold}
.ck-legend span{margin-right:1em;font-size:.85em}
.ck-legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
.ck-legend{margin:0 0 .6em 54px}
.ck-scope{padding:6px 10px;border-radius:4px;margin:.5em 0;background:#e8f5e9}
.ck-scope.ck-local{background:#fff3e0;border:1px solid #ef6c00}
.ck-glance td{font-size:1.05em}
.ck-num{text-align:right}
"""


# The standalone pages' own style: the title in the dashboard's font.
PAGE_STYLE = ("body{font-family:system-ui,sans-serif;color:#222;max-width:1100px;"
              "margin:1em auto;padding:0 2em}h1{font-size:1.5em}")

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


_CHART_W, _CHART_H = 720, 190
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 54, 14, 14, 26
# A young process gets a short window, so its first minutes are not a stroke at "now".
SHORT_WINDOW_MINUTES = 15
# Seconds of the unfinished minute needed before its counts are plotted (scaled to a minute).
MIN_SEEN_SECONDS = 10.0


def _clock(ts: float, seconds: bool = False) -> str:
    fmt = "%H:%M:%S" if seconds else "%H:%M"
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime(fmt)


def _nice_ceiling(peak: float) -> tuple[float, float]:
    """A round top for the y axis and its gridline step (1, 2 or 5 times a power of ten)."""
    if peak <= 0:
        return 1.0, 0.25
    magnitude = 10 ** math.floor(math.log10(peak / 4))
    for mult in (1, 2, 2.5, 5, 10):
        step = mult * magnitude
        if peak / step <= 4:
            return step * math.ceil(peak / step - 1e-9), step
    return peak, peak / 4


def chart_window(series: Sequence[Mapping[str, Any]], started: float | None = None) -> int:
    """How many trailing minutes to chart: 15 while everything happened in them, else 60."""
    recent = series[-SHORT_WINDOW_MINUTES:]
    older = series[:-SHORT_WINDOW_MINUTES]
    busy_before = any(row.get("ops") or any(row.get(f) for f, _ in CHART_SERIES)
                      for row in older)
    young = started is not None and recent and started >= recent[0]["minute"]
    return SHORT_WINDOW_MINUTES if (young or not busy_before) else len(series)


def _fmt_tick(v: float, unit: str) -> str:
    text = f"{v:.2f}".rstrip("0").rstrip(".") if v % 1 else f"{int(v)}"
    return text + unit


def svg_timeline(
    rows: Sequence[Mapping[str, Any]],
    lines: Sequence[tuple[str, str, Sequence[float | None]]],
    *,
    name: str,
    title: str,
    unit: str = "",
    top: float | None = None,
    outages: Sequence[Mapping[str, Any]] = (),
    now: float | None = None,
) -> str:
    """An inline SVG time chart: one line per (name, colour, values), per minute.

    Clock labels (UTC) and gridlines on both axes; ``outages`` (see core.health.outages)
    are shaded spans with one label each, however often the breaker re-opened; one
    still going ends at ``now``.
    """
    w, h = _CHART_W, _CHART_H
    plot_w, plot_h = w - _PAD_L - _PAD_R, h - _PAD_T - _PAD_B
    t0 = float(rows[0]["minute"]) if rows else 0.0
    t1 = float(rows[-1]["minute"]) + 60 if rows else 60.0
    values = [v for _, _, vs in lines for v in vs if v is not None]
    if top is None:
        top, step = _nice_ceiling(max(values, default=0.0))
    else:
        step = top / 4

    def x(t: float) -> float:
        return _PAD_L + plot_w * (t - t0) / (t1 - t0)

    def y(v: float) -> float:
        return _PAD_T + plot_h * (1 - min(v, top) / top)

    out = [f'<svg class="ck-chart ck-chart-{name}" role="img" xmlns="http://www.w3.org/2000/svg" '
           f'width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="system-ui,sans-serif">',
           f"<title>{escape(title)}</title>",
           f'<rect x="{_PAD_L}" y="{_PAD_T}" width="{plot_w}" height="{plot_h}" fill="#fcfcfc" '
           f'stroke="#bbb"/>']
    tick = 0.0
    while tick <= top + 1e-9:  # horizontal gridlines with their values
        ty = y(tick)
        out.append(f'<line class="ck-grid" x1="{_PAD_L}" x2="{_PAD_L + plot_w}" y1="{ty:.1f}" '
                   f'y2="{ty:.1f}" stroke="#e4e4e4"/>')
        out.append(f'<text class="ck-ylabel" x="{_PAD_L - 5}" y="{ty + 4:.1f}" font-size="11" '
                   f'text-anchor="end" fill="#444">{escape(_fmt_tick(tick, unit))}</text>')
        tick += step
    minutes = max(1, round((t1 - t0) / 60))
    every = 5 if minutes <= 20 else 10
    first = math.ceil(t0 / (every * 60)) * every * 60
    t = float(first)
    while t <= t1:  # vertical gridlines at round clock times
        tx = x(t)
        out.append(f'<line class="ck-grid" x1="{tx:.1f}" x2="{tx:.1f}" y1="{_PAD_T}" '
                   f'y2="{_PAD_T + plot_h}" stroke="#e4e4e4"/>')
        out.append(f'<text class="ck-xlabel" x="{tx:.1f}" y="{h - 8}" font-size="11" '
                   f'text-anchor="middle" fill="#444">{_clock(t)}</text>')
        t += every * 60
    out.append(f'<text x="{w - _PAD_R}" y="{_PAD_T - 3}" font-size="10" text-anchor="end" '
               f'fill="#777">UTC, per minute</text>')
    out.extend(_outage_spans(outages, t0, min(t1, now) if now else t1, x))
    for label, colour, vs in lines:
        path: list[str] = []
        dots: list[str] = []
        pen_down = False
        for row, v in zip(rows, vs, strict=False):
            if v is None:
                pen_down = False
                continue
            px, py = x(float(row["minute"]) + 30), y(v)  # the middle of its minute
            path.append(f"{'L' if pen_down else 'M'}{px:.1f},{py:.1f}")
            dots.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.2" fill="{colour}"/>')
            pen_down = True
        out.append(f'<path class="ck-series ck-series-{label}" fill="none" stroke="{colour}" '
                   f'stroke-width="1.8" d="{" ".join(path)}"/>')
        if len(rows) <= SHORT_WINDOW_MINUTES:
            out.extend(dots)
    out.append("</svg>")
    legend = "".join(f'<span><i style="background:{c}"></i>{escape(n)}</span>'
                     for n, c, _ in lines)
    return "".join(out) + f'<div class="ck-legend">{legend}</div>'


def _outage_spans(spans: Sequence[Mapping[str, Any]], t0: float, t1: float,
                  x: Callable[[float], float]) -> list[str]:
    """Each outage as a shaded span with one label; labels that would overlap step down."""
    out: list[str] = []
    right_edges: list[float] = []  # per label row: where its last label ends
    plot_h = _CHART_H - _PAD_T - _PAD_B
    for span in spans:
        start, end = float(span["start"]), span.get("end")
        stop = t1 if end is None else float(end)
        if stop < t0 or start > t1:
            continue
        x0, x1 = x(max(start, t0)), x(min(stop, t1))
        x1 = max(x1, x0 + 2)  # a short outage stays visible
        n = int(span.get("openings") or 0)
        label = "breaker open" + (f" ({n} openings)" if n > 1 else "")
        until = "now" if end is None else f"{_clock(float(end), True)} UTC"
        tip = f"breaker open {_clock(start, True)} UTC to {until}, opened {n} time" \
              f"{'s' if n != 1 else ''}"
        out.append(f'<rect class="ck-outage" x="{x0:.1f}" y="{_PAD_T}" '
                   f'width="{x1 - x0:.1f}" height="{plot_h}" fill="#c62828" '
                   f'fill-opacity="0.13" stroke="#c62828" stroke-opacity="0.35">'
                   f"<title>{escape(tip)}</title></rect>")
        width = 5.6 * len(label)  # font-size 10: about 5.6 px a character
        right = x0 + 3 + width > _CHART_W - _PAD_R  # near "now": end the label at the span's end
        lx = x1 - 3 if right else x0 + 3
        left_end = lx - width if right else lx
        row = next((i for i, edge in enumerate(right_edges) if edge < left_end),
                   len(right_edges))
        if row == len(right_edges):
            right_edges.append(0.0)
        right_edges[row] = left_end + width + 6
        out.append(f'<text class="ck-outage-label" x="{lx:.1f}" y="{_PAD_T + 11 + 12 * row}" '
                   f'font-size="10" fill="#b71c1c" text-anchor="{"end" if right else "start"}"'
                   f'>{escape(label)}</text>')
    return out


def _alive(row: Mapping[str, Any], started: float | None) -> bool:
    # Minutes before the first process started have no data, not zeros: no flat line there.
    return started is None or float(row["minute"]) + 60 > started


def _last_minute_scale(rows: Sequence[Mapping[str, Any]], now: float | None,
                       started: float | None) -> float | None:
    """What the last row's counts are multiplied by to read per minute: 1 for a finished
    minute, 60 / seconds seen for the current one, None to leave it out (too few seconds
    seen to tell a rate, and earlier minutes to show instead)."""
    if not rows or now is None:
        return 1.0
    last = float(rows[-1]["minute"])
    if now >= last + 60:
        return 1.0
    seen = now - max(last, started or last)
    if seen >= MIN_SEEN_SECONDS:
        return 60.0 / seen
    if any(_alive(r, started) for r in rows[:-1]):
        return None
    return 60.0 / MIN_SEEN_SECONDS  # a process younger than that: its only data


def svg_chart(series: Sequence[Mapping[str, Any]], *,
              outages: Sequence[Mapping[str, Any]] = (), started: float | None = None,
              now: float | None = None) -> str:
    """The request-rate chart: hits, misses, stale and errors per minute.

    The current minute is unfinished: its counts are scaled to a minute (or left out in
    its first seconds), so the lines do not drop toward zero at the right edge.
    """
    rows = list(series)[-chart_window(series, started):]
    scale = _last_minute_scale(rows, now, started)

    def value(i: int, row: Mapping[str, Any], name: str) -> float | None:
        if not _alive(row, started):
            return None
        if i == len(rows) - 1:
            return None if scale is None else float(row.get(name, 0)) * scale
        return float(row.get(name, 0))

    return svg_timeline(rows, [(n, c, [value(i, r, n) for i, r in enumerate(rows)])
                               for n, c in CHART_SERIES],
                        name="requests", title="Requests per minute by outcome",
                        outages=outages, now=now)


def _hit_rates(rows: Sequence[Mapping[str, Any]]) -> list[float | None]:
    out: list[float | None] = []
    for r in rows:
        hits = r.get("hits", 0) + r.get("stale", 0)
        lookups = hits + r.get("misses", 0)
        out.append(hits / lookups * 100 if lookups else None)
    return out


def charts(metrics: Mapping[str, Any], outages: Sequence[Mapping[str, Any]] = ()) -> str:
    """The three charts: request rate by outcome, hit rate, p50/p95 latency; ``outages``
    shaded on each."""
    series = metrics.get("series", [])
    if not series:
        return "<p>No data yet.</p>"
    minutes = chart_window(series, metrics.get("started"))
    rows = list(series)[-minutes:]
    return "".join([
        f"<h2>Requests per minute, last {minutes} minutes</h2>",
        svg_chart(series, outages=outages, started=metrics.get("started"),
                  now=metrics.get("now")),
        "<h2>Hit rate</h2>",
        svg_timeline(rows, [("hit-rate", "#1565c0", _hit_rates(rows))], name="hit-rate",
                     title="Hit rate per minute (percent)", unit="%", top=100.0,
                     outages=outages, now=metrics.get("now")),
        "<h2>Latency of backend calls</h2>",
        svg_timeline(rows, [("p50", "#2e7d32", [r.get("p50_ms") for r in rows]),
                            ("p95", "#ef6c00", [r.get("p95_ms") for r in rows])],
                     name="latency", title="p50 and p95 latency per minute (ms)",
                     unit=" ms", outages=outages, now=metrics.get("now")),
    ])


def _ago(now: float, ts: float | None) -> str:
    if not ts:
        return "-"
    return f"{max(0.0, now - ts):.0f} s ago"


def _scope(report: HealthReport) -> str:
    fleet = report.fleet or {}
    procs = fleet.get("processes", [])
    if fleet.get("scope") == "fleet":
        return (f'<p class="ck-scope" id="ck-scope">Fleet: {len(procs)} live process'
                f'{"es" if len(procs) != 1 else ""} (each publishes every '
                f'{_fmt(fleet.get("interval"))} s); figures are their sum.'
                + (f' {_fmt(fleet["skipped"])} invalid snapshot(s) skipped.'
                   if fleet.get("skipped") else "") + "</p>")
    reason = fleet.get("reason") or "the other processes' snapshots could not be read"
    return ('<p class="ck-scope ck-local" id="ck-scope"><strong>Local view: this process '
            f"only.</strong> {escape(reason)}; other processes are not counted.</p>")


def _glance(report: HealthReport, metrics: Mapping[str, Any]) -> str:
    rates = metrics.get("rates_per_s", {})
    hit_rate = metrics.get("hit_rate")
    get = metrics.get("latency", {}).get("get", {})
    fleet = report.fleet or {}
    rows = [
        ("requests/s (5 min)", f"{rates.get('ops', 0.0):.2f}"),
        ("hit rate", "-" if hit_rate is None else f"{hit_rate * 100:.1f}%"),
        ("errors/s (5 min)", f"{rates.get('errors', 0.0):.2f}"),
        ("calls / errors (since start)", f"{metrics.get('totals', {}).get('calls', 0)} / "
         f"{metrics.get('totals', {}).get('errors', 0)}"),
        ("get p50 / p95", f"{get.get('p50_ms', 0):.2f} / {get.get('p95_ms', 0):.2f} ms"
         if get else "-"),
        ("processes", len(fleet.get("processes", [])) or 1),
        ("breakers open", fleet.get("breakers_open", 0)),
    ]
    totals = metrics.get("totals", {})
    if any(totals.get(f) for f in ("local_hits", "local_misses", "local_invalidations")):
        rows.append(("in-process hits / misses / invalidations",
                     f"{totals.get('local_hits', 0)} / {totals.get('local_misses', 0)} / "
                     f"{totals.get('local_invalidations', 0)}"))
    cells = "".join(f"<tr><th>{escape(k)}</th><td class=\"ck-num\">{escape(_fmt(v))}</td></tr>"
                    for k, v in rows)
    return f'<table class="ck-glance">{cells}</table>'


def _processes(report: HealthReport) -> str:
    procs = (report.fleet or {}).get("processes", [])
    if not procs:
        return ""
    now = report.checked_at
    rows = "".join(
        f'<tr class="ck-process{" ck-this" if p.get("this") else ""}">'
        f"<td>{escape(str(p['host']))}</td><td>{escape(str(p['pid']))}"
        f"{' (this page)' if p.get('this') else ''}</td>"
        f"<td>{escape(_time(p.get('started')))}</td>"
        f"<td>{escape(str(p.get('breaker')))}</td>"
        f"<td>{escape(_ago(now, p.get('last_seen')) if not p.get('this') else 'now')}</td>"
        + "".join(f'<td class="ck-num">{escape(_fmt(p.get(k)))}</td>'
                  for k in ("ops", "hits", "misses", "errors", "pending_deletes"))
        + "</tr>"
        for p in procs)
    head = "".join(f"<th>{h}</th>" for h in ("host", "pid", "started", "breaker", "last seen",
                                             "calls", "hits", "misses", "errors",
                                             "pending deletes"))
    return f'<h2>Processes</h2><table id="ck-processes"><tr>{head}</tr>{rows}</table>'


def _errors(report: HealthReport, metrics: Mapping[str, Any],
            error_url: Callable[[str], str] | None) -> str:
    explained = report.errors_explained()[:10]
    if not explained:
        return "<h2>Top errors</h2><p>No errors recorded.</p>"
    code_rates = metrics.get("error_code_rates_per_s", {})
    rows = []
    for e in explained:
        code = escape(e["code"])
        link = (f'<a class="ck-code" href="{escape(error_url(e["code"]))}">{code}</a>'
                if error_url is not None else code)
        rows.append(f'<tr class="ck-error-row"><td>{link}</td>'
                    f'<td class="ck-num">{escape(_fmt(e["count"]))}</td>'
                    f'<td class="ck-num">{code_rates.get(e["code"], 0.0) * 60:.1f}</td>'
                    f"<td>{escape(e['title'])}</td><td>{escape(e['fix'])}</td></tr>")
    rates = ", ".join(f"{k} {v * 100:.1f}%" for k, v in metrics.get("error_rates", {}).items())
    return ("<h2>Top errors</h2><table id=\"ck-errors\"><tr><th>code</th><th>count</th>"
            "<th>per min (5 min)</th><th>what</th><th>fix</th></tr>" + "".join(rows)
            + f"</table><p>Share of calls failing: {escape(rates)}</p>")


def render_dashboard(report: HealthReport, *, json_url: str | None = None,
                     error_url: Callable[[str], str] | None = None) -> str:
    """The dashboard body (a <div>, with its own <style>) for one HealthReport.

    ``error_url(code)``, when given, links each error code to its explanation.
    """
    d = report.as_dict()
    metrics, breaker = d["metrics"], d["breaker"]
    colour = _STATUS_COLOURS.get(report.status, "#555")
    fleet = report.fleet or {}
    spans = fleet["outages"] if "outages" in fleet else merge_outages(
        breaker["outages"] if "outages" in breaker
        else outages(breaker.get("transitions") or []))
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
    out.append(_scope(report))
    out.append(_glance(report, metrics))
    out.append(charts(metrics, spans))
    out.append(_errors(report, metrics, error_url))
    out.append(_processes(report))
    enc = d["encryption"]
    mode = "AES-256-GCM" if enc.get("encrypted") else "HMAC-signed" if enc.get("signed") \
        else UNAUTHENTICATED_TEXT
    out.append("<h2>Cache</h2>")
    out.append(_table([
        ("backend", report.backend), ("namespace", report.namespace),
        ("ping (ms)", report.ping_ms),
        ("values", mode), ("key fingerprint", enc.get("key_fingerprint")),
        ("pending deletes", fleet.get("pending_deletes", report.pending_deletes)),
    ]))
    out.append("<h2>Totals</h2>")
    out.append(_table(sorted(metrics.get("totals", {}).items())))
    latency = metrics.get("latency", {})
    if latency:
        out.append("<h2>Latency by operation</h2>")
        out.append(_table(
            [(op, s["count"], s["mean_ms"], s["p50_ms"], s["p95_ms"], s["max_ms"])
             for op, s in sorted(latency.items())],
            ("operation", "count", "mean ms", "p50 ms", "p95 ms", "max ms"),
        ))
    out.append("<h2>Circuit breaker (this process)</h2>")
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
        f"<title>{escape(title)}</title><style>{PAGE_STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>{render_dashboard(report, json_url=json_url)}</body></html>"
    )
