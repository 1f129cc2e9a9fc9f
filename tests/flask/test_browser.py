"""The health pages in a real headless Chromium: charts, labels, fleet scope; screenshots kept.

The screenshots land in ``test-artifacts/`` (gitignored) for a person to look at.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from cachekit_web.embedded import EmbeddedRedis

from .conftest import AppFactory

CHROMIUM = "/usr/bin/chromium"
TOKEN = "browser-Tok3n-8f2c"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason=f"{CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)",
)


def traffic(cache: Any) -> None:
    """Hits, misses and one error, so every series has something to show."""
    for i in range(5):
        cache.set(f"k{i}", i)
        cache.get(f"k{i}")
    cache.get("missing")


@pytest.fixture()
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        try:
            yield b
        finally:
            b.close()


def serve(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


def check_dashboard(page: Any, shot: str) -> str:
    """The chart elements and labels every health page must show; returns the page text."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
    for name in ("requests", "hit-rate", "latency"):
        chart = page.locator(f"svg.ck-chart-{name}")
        box = chart.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100, name
        labels = chart.locator("text.ck-xlabel").all_text_contents()
        assert len(labels) >= 3 and all(re.fullmatch(r"\d\d:\d\d", t) for t in labels), labels
        assert chart.locator("line.ck-grid").count() >= 6
    for series in ("hits", "misses", "stale", "errors"):
        assert page.locator(f"svg.ck-chart-requests path.ck-series-{series}").count() == 1
    assert page.locator("svg.ck-chart-latency path.ck-series-p95").count() == 1
    hits = page.locator("svg.ck-chart-requests path.ck-series-hits").get_attribute("d") or ""
    # A young process: a 15-minute window, drawn only over the minute(s) it has lived.
    assert 1 <= hits.count("M") + hits.count("L") <= 2
    assert page.locator("svg.ck-chart-hit-rate text.ck-ylabel").all_text_contents()[-1] == "100%"
    text = str(page.locator("#cachekit-dashboard").inner_text())
    assert "Requests per minute, last 15 minutes" in text
    return text


def test_flask_dashboard_with_traffic(browser: Any, make_app: AppFactory) -> None:
    app, cache = make_app(CACHEKIT_HEALTH_ENABLED=True, CACHEKIT_HEALTH_TOKEN=TOKEN)
    with app.app_context():
        traffic(cache)
        cache.client.metrics.error("E061")  # an error the page must list and link
    for url in serve(app):
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        denied = page.goto(url + "/_cachekit/health/")
        assert denied is not None and denied.status == 401
        page.set_extra_http_headers({"Authorization": f"Bearer {TOKEN}"})
        response = page.goto(url + "/_cachekit/health/")
        assert response is not None and response.status == 200
        assert page.title() == "cachekit health"
        h1_font = page.eval_on_selector("h1", "e => getComputedStyle(e).fontFamily")
        body_font = page.eval_on_selector(".ck-dash", "e => getComputedStyle(e).fontFamily")
        assert h1_font == body_font  # the title uses the page's font
        assert page.locator("#ck-status").inner_text() in ("ok", "degraded")
        text = check_dashboard(page, "flask-health-traffic.png")
        assert "Fleet: 1 live process" in text
        assert "83.3%" in text  # 5 hits of 6 lookups
        link = page.locator("#ck-errors a.ck-code", has_text="E061")
        assert link.count() == 1
        assert link.get_attribute("href") == "/_cachekit/health/errors/E061"
        assert page.locator("#ck-processes tr.ck-process").count() == 1


def test_flask_dashboard_with_redis_down(browser: Any, make_app: AppFactory,
                                         own_redis: EmbeddedRedis) -> None:
    app, cache = make_app(CACHEKIT_HEALTH_ENABLED=True, CACHEKIT_HEALTH_TOKEN=TOKEN,
                          CACHEKIT_REDIS_URL=own_redis.url)
    with app.app_context():
        traffic(cache)
        own_redis.stop()
        for i in range(8):  # failures open the breaker
            cache.get(f"k{i}")
        assert cache.client.breaker.opened_count >= 1
    for url in serve(app):
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.set_extra_http_headers({"Authorization": f"Bearer {TOKEN}"})
        response = page.goto(url + "/_cachekit/health/")
        assert response is not None and response.status == 200
        assert page.locator("#ck-status").inner_text() == "down"
        text = check_dashboard(page, "flask-health-redis-down.png")
        assert "Local view: this process only." in text
        assert page.locator("p.ck-scope.ck-local").count() == 1
        assert page.locator("svg.ck-chart-requests rect.ck-outage").count() >= 1
        assert page.locator("#ck-errors tr.ck-error-row").count() >= 1


def plant_outages(breaker: Any) -> list[dict[str, Any]]:
    """An outage history (the breaker's own record): 61 openings in eight minutes, then two
    short outages 40 s apart, which read as one. Returns the spans a chart must draw."""
    from cachekit_web.core.observe.health import merge_outages

    now = time.time()
    planted = [
        {"start": now - 840, "end": now - 360, "openings": 61},
        {"start": now - 240, "end": now - 210, "openings": 3},
        {"start": now - 170, "end": now - 140, "openings": 2},
    ]
    breaker.outages.extend(dict(o) for o in planted)
    spans = merge_outages(planted)
    assert [s["openings"] for s in spans] == [61, 5]
    return spans


def check_outages(page: Any, spans: list[dict[str, Any]], shot: str) -> None:
    """One shaded span and one label per outage on every chart, the labels apart."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
    for name in ("requests", "hit-rate", "latency"):
        chart = page.locator(f"svg.ck-chart-{name}")
        assert chart.locator("rect.ck-outage").count() == len(spans), name
        labels = chart.locator("text.ck-outage-label")
        assert labels.count() == len(spans), name
        assert labels.all_text_contents() == [
            f"breaker open ({s['openings']} openings)" for s in spans]
        boxes = [labels.nth(i).bounding_box() for i in range(labels.count())]
        for a, b in itertools.combinations(boxes, 2):
            assert a is not None and b is not None
            apart = (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                     or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])
            assert apart, (name, a, b)


def test_flask_dashboard_with_a_flapping_outage(browser: Any, make_app: AppFactory) -> None:
    app, cache = make_app(CACHEKIT_HEALTH_ENABLED=True, CACHEKIT_HEALTH_TOKEN=TOKEN)
    with app.app_context():
        traffic(cache)
        spans = plant_outages(cache.client.breaker)
    for url in serve(app):
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_extra_http_headers({"Authorization": f"Bearer {TOKEN}"})
        response = page.goto(url + "/_cachekit/health/")
        assert response is not None and response.status == 200
        check_outages(page, spans, "flask-health-outages.png")
        # The page is centred and its charts use the width (it was 720 px, left-aligned).
        dash = page.locator(".ck-dash").bounding_box()
        chart = page.locator("svg.ck-chart-requests").bounding_box()
        assert dash is not None and chart is not None
        assert chart["width"] >= 900
        right_margin = 1400 - (dash["x"] + dash["width"])
        assert abs(dash["x"] - right_margin) < 40, (dash, right_margin)
