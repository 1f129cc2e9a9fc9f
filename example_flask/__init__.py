"""A small Flask app showing cachekit-web: a slow cached view, a memoized function,
a cached template fragment and the health dashboard."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, render_template, request

from cachekit_web.flask import Cache

cache = Cache()

SLOW_SECONDS = 1.0


@cache.memoize(timeout=60)
def fibonacci(n: int) -> int:
    """Deliberately naive; memoize makes the repeated calls cheap."""
    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the example app; ``config`` overrides app.config (e.g. CACHEKIT_REDIS_URL)."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=os.environ.get("FLASK_SECRET_KEY", "example-only-secret-change-me"),
        CACHEKIT_NAMESPACE="example-flask",
        CACHEKIT_HEALTH_ENABLED=True,
    )
    app.config.update(config or {})
    cache.init_app(app)

    @cache.health_authorization
    def local_only() -> bool:
        # The demo shows the dashboard to local visitors only; production apps check a role.
        return request.remote_addr in ("127.0.0.1", "::1")

    @app.get("/")
    def index() -> str:
        return render_template("index.html", now=time.strftime("%H:%M:%S"),
                               redis_stop=app.config.get("EXAMPLE_REDIS_STOP", ""))

    @app.get("/slow")
    @cache.cached(timeout=30, stale_ttl=60)
    def slow() -> str:
        seconds = float(app.config.get("SLOW_SECONDS", SLOW_SECONDS))
        time.sleep(seconds)
        return f"computed at {time.strftime('%H:%M:%S')} (took {seconds:g}s; reload me)\n"

    @app.get("/fib/<int:n>")
    def fib(n: int) -> dict[str, int]:
        return {"n": n, "fibonacci": fibonacci(min(n, 80))}

    return app
