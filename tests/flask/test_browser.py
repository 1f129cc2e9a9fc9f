"""The dashboard in a real headless Chromium: it renders, with its chart."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

from .conftest import AppFactory

CHROMIUM = "/usr/bin/chromium"
TOKEN = "browser-Tok3n-8f2c"

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason=f"{CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)",
)


@pytest.fixture()
def served(make_app: AppFactory) -> Iterator[str]:
    app, cache = make_app(CACHEKIT_HEALTH_ENABLED=True, CACHEKIT_HEALTH_TOKEN=TOKEN)
    with app.app_context():
        for i in range(5):
            cache.set(f"k{i}", i)
            cache.get(f"k{i}")
        cache.get("missing")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


def test_dashboard_renders_with_chart_in_chromium(served: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        try:
            page = browser.new_page()
            denied = page.goto(served + "/_cachekit/health/")
            assert denied is not None and denied.status == 401
            page.set_extra_http_headers({"Authorization": f"Bearer {TOKEN}"})
            response = page.goto(served + "/_cachekit/health/")
            assert response is not None and response.status == 200
            assert page.title() == "cachekit health"
            assert page.locator("#ck-status").inner_text() in ("ok", "degraded")
            chart = page.locator("svg.ck-chart")
            box = chart.bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 100
            assert page.locator("svg.ck-chart polyline").count() == 4
            hits = page.locator("polyline.ck-series-hits").get_attribute("points") or ""
            assert len(hits.split()) == 60  # one point per minute of the last hour
            assert "83.3%" in page.locator("#cachekit-dashboard").inner_text()  # 5 of 6
        finally:
            browser.close()
