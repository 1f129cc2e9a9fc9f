"""Django view hits through the WSGI entry point, run in a child process.

``python -m benchmarks.django_wsgi URL REPEATS N [--no-hiredis]`` prints one JSON object:
``{"hiredis": bool, "tier_requests": int, "tier_hits": int, "samples": {contender:
[seconds per request, ...]}}`` (the tier row's requests and how many the tier answered).

A child process so that ``--no-hiredis`` is a default install (``pip install
cachekit-web[django]`` does not bring hiredis): ``sys.modules["hiredis"] = None`` is set
before anything imports redis, so redis-py (and the in-process tier) take their pure-Python
parser path, for every contender alike, Django's RedisCache included. Nothing else differs
from the parent's run.

Each request is ``WSGIHandler()(environ, start_response)`` with a prebuilt environ
(copied per request, as a server builds a fresh one), the body joined and the response
closed, as a WSGI server does. No middleware (Django's default ``MIDDLEWARE = []``), so
the floor is Django's own request handling: URL resolving, the request and response
objects, the signals.
"""

from __future__ import annotations

import json
import sys
from typing import Any

if __name__ == "__main__" and "--no-hiredis" in sys.argv:
    sys.modules["hiredis"] = None  # type: ignore[assignment]  # import hiredis -> ImportError

UNCACHED = "the view uncached (Django's request handling)"
THEIRS = "Django cache_page (RedisCache)"
OURS = "cachekit Django cache_page (signed), network path"
TIER = "cachekit Django cache_page (signed), in-process tier"
CONTENDERS = (UNCACHED, THEIRS, OURS, TIER)
PATHS = {UNCACHED: "/bare/", THEIRS: "/theirs/", OURS: "/ours/", TIER: "/tier/"}

urlpatterns: list[Any] = []  # ROOT_URLCONF of the child, filled by _routes


def _routes() -> None:
    from django.http import HttpResponse
    from django.urls import path
    from django.views.decorators.cache import cache_page as django_cache_page

    from cachekit_web.django import cache_page

    from .contenders import TTL
    from .hotpath import _PAGE

    def page(request: Any) -> HttpResponse:
        return HttpResponse(_PAGE)

    urlpatterns[:] = [
        path("bare/", page),
        path("theirs/", django_cache_page(TTL, cache="redis")(page)),
        path("ours/", cache_page(TTL, cache="cachekit-signed")(page)),
        path("tier/", cache_page(TTL, cache="cachekit-local")(page)),
    ]


def run(url: str, repeats: int, n: int) -> dict[str, Any]:
    """Time the contenders interleaved; seconds per request of each repeat."""
    from django.conf import settings

    from .contenders import configure_django

    configure_django(url)
    settings.ROOT_URLCONF = __name__
    _routes()
    from django.core.cache import caches
    from django.core.handlers.wsgi import WSGIHandler
    from redis.utils import HIREDIS_AVAILABLE

    from .harness import measure
    from .hotpath import _tier_live, _wsgi_hit

    app = WSGIHandler()
    batches = {name: _wsgi_hit(app, PATHS[name]) for name in CONTENDERS}
    for batch in batches.values():
        batch(2)  # fill
    tiered = caches["cachekit-local"].client
    _tier_live(tiered)
    batches[TIER](2)  # now kept in memory
    sent = [0]
    tier_batch = batches[TIER]

    def counted(k: int) -> None:
        sent[0] += k
        tier_batch(k)

    batches[TIER] = counted
    before = tiered.metrics.totals["local_hits"]
    got = measure(batches, n, repeats)
    return {"hiredis": bool(HIREDIS_AVAILABLE), "tier_requests": sent[0],
            "tier_hits": tiered.metrics.totals["local_hits"] - before,
            "samples": {name: list(stat.samples) for name, stat in got.items()}}


if __name__ == "__main__":
    url_arg, repeats_arg, n_arg = sys.argv[1:4]
    print(json.dumps(run(url_arg, int(repeats_arg), int(n_arg))))
