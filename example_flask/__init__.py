"""A small Flask app showing cachekit-web: a slow cached view, a memoized function,
a cached template fragment and the health dashboard."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from flask import Flask, render_template, request
from flask.wrappers import Response

from cachekit_web.core.web import CACHE_STATUS_HEADER, describe_cache
from cachekit_web.flask import Cache

cache = Cache()

SLOW_SECONDS = 1.0


def cache_state(cache_status: str | None = None) -> str:
    """What the cache did ("cache: bypass, Redis is down"), for the pages and /fib."""
    return describe_cache(cache_status, cache.client.breaker.state.value)


def fibonacci_loop(n: int) -> int:
    """fibonacci(n) in n steps, no cache needed."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


@cache.memoize(timeout=60)
def fibonacci(n: int) -> int:
    """Deliberately naive: memoize remembers every fibonacci(k), so fibonacci(60) takes
    60 steps, not 10**12. Without the cache (Redis down: the breaker not closed) that
    recursion would never end, so the demo falls back to a loop and stays fast."""
    if n < 2:
        return n
    if cache.client.breaker.state.value != "closed":
        return fibonacci_loop(n)
    return fibonacci(n - 1) + fibonacci(n - 2)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the example app; ``config`` overrides app.config (e.g. CACHEKIT_REDIS_URL)."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=os.environ.get("FLASK_SECRET_KEY", "example-only-secret-change-me"),
        CACHEKIT_NAMESPACE="example-flask",
        CACHEKIT_HEALTH_ENABLED=True,
        # A dead or hung Redis costs a page at most a quarter second before the breaker
        # opens; it is probed again within 5 s.
        CACHEKIT_SOCKET_TIMEOUT=0.25,
        CACHEKIT_SOCKET_CONNECT_TIMEOUT=0.25,
        CACHEKIT_CIRCUIT_BREAKER_RECOVERY_TIMEOUT=5,
    )
    app.config.update(config or {})
    cache.init_app(app)

    @cache.health_authorization
    def local_only() -> bool:
        # The demo shows the dashboard to local visitors only; production apps check a role.
        return request.remote_addr in ("127.0.0.1", "::1")

    @app.after_request
    def show_cache_state(resp: Response) -> Response:
        # Added to what is sent, after @cached stored the page: the line is never cached.
        if request.path.startswith("/_cachekit/") or resp.direct_passthrough:
            return resp
        line = cache_state(resp.headers.get(CACHE_STATUS_HEADER))
        if resp.mimetype not in ("text/plain", "text/html"):
            return resp
        body = resp.get_data(as_text=True)
        if "</body>" in body:
            resp.set_data(body.replace("</body>", f'<p id="cache-state">{line}</p>\n</body>'))
        else:
            resp.set_data(f"{body}{line}\n")
        return resp

    @app.get("/")
    def index() -> str:
        return render_template("index.html", now=time.strftime("%H:%M:%S"),
                               redis_stop=app.config.get("EXAMPLE_REDIS_STOP", ""),
                               redis_start=app.config.get("EXAMPLE_REDIS_START", ""))

    @app.get("/slow")
    @cache.cached(timeout=30, stale_ttl=60)
    def slow() -> str:
        seconds = float(app.config.get("SLOW_SECONDS", SLOW_SECONDS))
        time.sleep(seconds)
        return f"computed at {time.strftime('%H:%M:%S')} (took {seconds:g}s; reload me)\n"

    @app.get("/fib/<int:n>")
    def fib(n: int) -> dict[str, Any]:
        start = time.perf_counter()
        value = fibonacci(min(n, 80))
        took = (time.perf_counter() - start) * 1000
        return {"n": n, "fibonacci": value, "took_ms": round(took, 2), "cache": cache_state()}

    return app
