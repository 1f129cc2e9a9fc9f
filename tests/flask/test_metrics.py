"""The Prometheus route in a Flask app, with real traffic."""

from __future__ import annotations

import pytest

from .conftest import AppFactory

pytest.importorskip("prometheus_client")


def test_metrics_route(make_app: AppFactory, namespace: str) -> None:
    from cachekit_web.flask.metrics import metrics_blueprint

    from ..core.test_prometheus import samples

    app, cache = make_app(CACHEKIT_PROMETHEUS=True)
    app.register_blueprint(metrics_blueprint())
    with app.app_context():
        cache.set("a", 1)
        cache.get("a")
        cache.get("a")
    r = app.test_client().get("/metrics")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    got = samples(r.get_data(as_text=True), namespace)
    assert got[("cachekit_operations_total", (("op", "get"), ("outcome", "hit")))] == 2
    assert got[("cachekit_operations_total", (("op", "set"), ("outcome", "ok")))] == 1
