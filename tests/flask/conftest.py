"""Fixtures for the Flask adapter: apps wired to the session's real redis-server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from cachekit_web.flask import Cache

AppFactory = Callable[..., tuple[Flask, Cache]]


@pytest.fixture()
def make_app(redis_url: str, namespace: str) -> AppFactory:
    """Build a Flask app with a Cache on the shared test server, in the test's namespace."""

    def build(**config: Any) -> tuple[Flask, Cache]:
        app = Flask(f"app-{namespace}")
        app.config.update(SECRET_KEY="s3cr3t-flask-key", CACHEKIT_REDIS_URL=redis_url,
                          CACHEKIT_NAMESPACE=namespace)
        app.config.update(config)
        cache = Cache()
        cache.init_app(app)
        return app, cache

    return build


@pytest.fixture()
def app_cache(make_app: AppFactory) -> tuple[Flask, Cache]:
    """One app and its Cache, with an app context pushed."""
    app, cache = make_app()
    with app.app_context():
        yield app, cache
