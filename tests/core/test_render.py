"""The dashboard's charts: outages as merged shaded spans, the unfinished minute."""

from __future__ import annotations

import re
from typing import Any

from cachekit_web.core.observe.health import merge_outages, outages
from cachekit_web.core.observe.render import charts, svg_chart

NOW = 1_800_000_000.0 + 45  # 45 s into a minute
MINUTE = NOW - NOW % 60


def flapping(start: float, openings: int, every: float = 10.0) -> list[dict[str, Any]]:
    """A breaker that re-opens ``openings`` times, ``every`` seconds apart, then closes."""
    out = [{"at": start, "from": "closed", "to": "open", "reason": "failures"}]
    t = start
    for _ in range(openings - 1):
        out.append({"at": t + 2, "from": "open", "to": "half_open", "reason": "probe"})
        t += every
        out.append({"at": t, "from": "half_open", "to": "open", "reason": "probe failed"})
    out.append({"at": t + 2, "from": "open", "to": "half_open", "reason": "probe"})
    out.append({"at": t + 3, "from": "half_open", "to": "closed", "reason": "recovered"})
    return out


def series(minutes: int = 60, per_minute: int = 60,
           current: int | None = None) -> list[dict[str, Any]]:
    rows = [{"minute": MINUTE - (minutes - 1 - i) * 60, "hits": per_minute, "misses": 0,
             "stale": 0, "errors": 0, "ops": per_minute, "p50_ms": 1.0, "p95_ms": 2.0}
            for i in range(minutes)]
    if current is not None:
        rows[-1].update(hits=current, ops=current)
    return rows


def test_sixty_one_openings_in_ten_minutes_are_one_outage() -> None:
    start = NOW - 1200
    spans = outages(flapping(start, 61))
    assert len(spans) == 1
    assert spans[0]["start"] == start and spans[0]["openings"] == 61
    assert spans[0]["end"] == start + 600 + 3


def test_an_outage_still_going_ends_now_and_a_cut_history_still_counts() -> None:
    history = flapping(NOW - 300, 10)[:-2]  # no recovery yet
    assert outages(history) == [
        {"start": NOW - 300, "end": None, "openings": 10}]
    cut = history[5:]  # the breaker keeps its last transitions only: starts half-open
    assert cut[0]["from"] != "closed"
    spans = outages(cut)
    assert len(spans) == 1 and spans[0]["start"] == cut[0]["at"] and spans[0]["end"] is None


def test_overlapping_and_adjacent_spans_merge_across_processes() -> None:
    a = outages(flapping(NOW - 1200, 5))  # 1200 .. ~1157 s ago
    b = outages(flapping(NOW - 1180, 20))  # overlaps a
    c = outages(flapping(NOW - 600, 3))  # long after: its own outage
    d = outages(flapping(NOW - 550, 2))  # starts within a minute of c's end
    merged = merge_outages([*a, *b, *c, *d])
    assert [(s["start"], s["openings"]) for s in merged] == [(NOW - 1200, 25), (NOW - 600, 5)]


def _labels(svg: str) -> list[str]:
    return re.findall(r'<text class="ck-outage-label"[^>]*>([^<]*)</text>', svg)


def test_each_outage_is_one_shaded_span_with_one_label() -> None:
    spans = merge_outages(outages(flapping(NOW - 1800, 61))
                          + outages(flapping(NOW - 900, 4)))
    svg = svg_chart(series(), outages=spans)
    assert svg.count('class="ck-outage"') == 2
    assert _labels(svg) == ["breaker open (61 openings)", "breaker open (4 openings)"]
    assert "breaker opened" not in svg  # no mark per opening any more
    page = charts({"series": series(), "now": NOW}, spans)
    assert len(_labels(page)) == 2 * 3  # one per span on each of the three charts


def _y_of(svg: str, name: str, index: int) -> float:
    path = re.search(rf'ck-series-{name}"[^>]*d="([^"]*)"', svg)
    assert path
    return float(path.group(1).split()[index].split(",")[1])


def test_the_unfinished_minute_is_scaled_not_a_drop_to_zero() -> None:
    # 45 s into the minute, 45 hits so far: the same rate as every full minute (60/min).
    svg = svg_chart(series(current=45), now=NOW)
    assert _y_of(svg, "hits", -1) == _y_of(svg, "hits", -2)


def _points(svg: str, name: str) -> int:
    path = re.search(rf'ck-series-{name}"[^>]*d="([^"]*)"', svg)
    assert path
    return len(path.group(1).split())


def test_the_first_seconds_of_a_minute_are_left_out() -> None:
    now = MINUTE + 3  # three seconds seen: too few to tell a rate
    assert _points(svg_chart(series(current=1), now=now), "hits") == 59
    assert _points(svg_chart(series(current=1), now=MINUTE + 30), "hits") == 60
    # A process younger than a minute has nothing else to show: its minute is plotted.
    young = svg_chart(series(current=5), now=now, started=MINUTE + 1)
    assert _points(young, "hits") == 1


def test_cache_status_values_follow_rfc_9211() -> None:
    from cachekit_web.core.web import cache_status, describe_cache

    assert cache_status("hit", ttl=30.7) == "cachekit; hit; ttl=30"
    assert cache_status("miss", stored=True) == "cachekit; fwd=miss; stored"
    assert cache_status("bypass") == "cachekit; fwd=bypass; detail=unavailable"
    # A detail that is no RFC 8941 token (it must start with a letter) goes quoted.
    assert cache_status("uncacheable", detail="304") == 'cachekit; fwd=miss; detail="304"'
    assert describe_cache("cachekit; fwd=bypass; detail=unavailable") == \
        "cache: bypass, Redis is down (computed without the cache)"
    assert describe_cache("cachekit; hit; ttl=3") == "cache: hit, served from Redis"
    assert describe_cache(None, "open") == "cache: bypass, Redis is down (circuit breaker open)"
    assert describe_cache(None) == "cache: on, circuit breaker closed"


def test_an_outage_still_going_is_shaded_up_to_now_not_the_minute_end() -> None:
    spans = outages(flapping(NOW - 120, 5)[:-2])  # not recovered
    svg = svg_chart(series(minutes=15), outages=spans, now=NOW)  # 652 px for 15 min
    rect = re.search(r'class="ck-outage" x="([0-9.]+)" y="[0-9.]+" width="([0-9.]+)"', svg)
    assert rect
    right = float(rect.group(1)) + float(rect.group(2))
    plot_right = 720 - 14  # _CHART_W - _PAD_R: the end of the current minute
    assert plot_right - 12 < right < plot_right - 9  # 15 s (11 px) short of the minute's end
