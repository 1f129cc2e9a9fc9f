"""The site ``benchmarks.outage`` serves under gunicorn: a cached page and a get/set view.

``OUTAGE_APP=django|flask`` picks the framework; cachekit reads CACHEKIT_* from the
environment (the benchmark sets CACHEKIT_REDIS_URL to its private redis-server).
"""

from __future__ import annotations

import hashlib
import os
import random
from typing import Any

HIT_HEADER = "X-Cache"  # "hit" when the cache answered the request, "miss" when computed


def _page_body() -> str:
    """Some work a cached page saves: a few hundred hash rounds and a 4 KB body."""
    digest = b"seed"
    for _ in range(300):
        digest = hashlib.sha256(digest).digest()
    rows = "".join(f"<li>row {i} {digest.hex()[:16]}</li>" for i in range(100))
    return f"<html><body><ul>{rows}</ul></body></html>"


def _item(n: int) -> dict[str, Any]:
    return {"id": n, "name": f"item {n}", "tags": ["a", "b", "c"], "price": n * 1.5}


def _django() -> Any:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="outage-benchmark-not-a-secret",
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[f"{__name__}.mark_hits"],
        INSTALLED_APPS=[],
        CACHES={"default": {"BACKEND": "cachekit_web.django.CachekitCache",
                            "OPTIONS": {"NAMESPACE": "outage-django"}}},
        USE_TZ=True,
    )
    django.setup()
    from django.core.cache import cache
    from django.core.handlers.wsgi import WSGIHandler
    from django.http import HttpRequest, HttpResponse, JsonResponse
    from django.views.decorators.cache import cache_page

    @cache_page(60)
    def page(request: HttpRequest) -> HttpResponse:
        request.computed = True  # type: ignore[attr-defined]
        return HttpResponse(_page_body())

    def data(request: HttpRequest) -> JsonResponse:
        n = random.randrange(100)
        value = cache.get(f"item:{n}")
        if value is None:
            request.computed = True  # type: ignore[attr-defined]
            value = _item(n)
            cache.set(f"item:{n}", value, 30)
        return JsonResponse(value)

    from django.urls import path

    globals()["urlpatterns"] = [path("page", page), path("data", data)]
    return WSGIHandler()


def mark_hits(get_response: Any) -> Any:
    """Django middleware: tell the benchmark whether the cache answered (X-Cache)."""
    def middleware(request: Any) -> Any:
        response = get_response(request)
        response[HIT_HEADER] = "miss" if getattr(request, "computed", False) else "hit"
        return response
    return middleware


def _flask() -> Any:
    from flask import Flask, Response, g, jsonify

    from cachekit_web.flask import Cache

    app = Flask("outage")
    app.config.update(SECRET_KEY="outage-benchmark-not-a-secret", CACHEKIT_NAMESPACE="outage-flask")
    cache = Cache(app)

    @app.get("/page")
    @cache.cached(timeout=60)
    def page() -> str:
        g.computed = True
        return _page_body()

    @app.get("/data")
    def data() -> Any:
        n = random.randrange(100)
        value = cache.get(f"item:{n}")
        if value is None:
            g.computed = True
            value = _item(n)
            cache.set(f"item:{n}", value, 30)
        return jsonify(value)

    @app.after_request
    def mark_hits(response: Response) -> Response:
        response.headers[HIT_HEADER] = "miss" if g.get("computed") else "hit"
        return response

    return app


application = _flask() if os.environ.get("OUTAGE_APP") == "flask" else _django()
