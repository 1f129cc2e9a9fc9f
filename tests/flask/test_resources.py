"""An app dropped by its owner takes its cache client (threads, connections) with it."""

from __future__ import annotations

import weakref
from typing import Any

from flask import Flask

from tests.leaks import settle

from .conftest import AppFactory


def _create_app(make_app: AppFactory) -> Flask:
    """An app factory as people write them: the view's closure holds its app."""
    app, cache = make_app(CACHEKIT_FLEET_PUBLISH_INTERVAL=0.05)

    @app.get("/v")
    @cache.cached(timeout=30)
    def view() -> str:
        return str(app.config["CACHEKIT_NAMESPACE"])

    return app


def test_a_dropped_app_takes_its_client_with_it(make_app: AppFactory) -> None:
    app = _create_app(make_app)
    state: Any = next(iter(app.extensions["cachekit"].values()))
    client = weakref.ref(state.client)
    web = app.test_client()
    assert web.get("/v").status_code == 200 and web.get("/v").status_code == 200
    del app, state, web
    assert settle(lambda: client() is None), "the app's client is still alive"
