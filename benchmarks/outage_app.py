"""The site ``benchmarks.outage`` serves under gunicorn: a cached page and a get/set view.

``OUTAGE_APP=django|flask`` picks the framework; cachekit reads CACHEKIT_* from the
environment (the benchmark sets CACHEKIT_REDIS_URL to its private redis-server).
"""

from __future__ import annotations

import hashlib
import os
import random
from typing import Any


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
        MIDDLEWARE=[],
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
        return HttpResponse(_page_body())

    def data(request: HttpRequest) -> JsonResponse:
        n = random.randrange(100)
        value = cache.get(f"item:{n}")
        if value is None:
            value = _item(n)
            cache.set(f"item:{n}", value, 30)
        return JsonResponse(value)

    from django.urls import path

    globals()["urlpatterns"] = [path("page", page), path("data", data)]
    return WSGIHandler()


def _flask() -> Any:
    from flask import Flask, jsonify

    from cachekit_web.flask import Cache

    app = Flask("outage")
    app.config.update(SECRET_KEY="outage-benchmark-not-a-secret", CACHEKIT_NAMESPACE="outage-flask")
    cache = Cache(app)

    @app.get("/page")
    @cache.cached(timeout=60)
    def page() -> str:
        return _page_body()

    @app.get("/data")
    def data() -> Any:
        n = random.randrange(100)
        value = cache.get(f"item:{n}")
        if value is None:
            value = _item(n)
            cache.set(f"item:{n}", value, 30)
        return jsonify(value)

    return app


application = _flask() if os.environ.get("OUTAGE_APP") == "flask" else _django()
