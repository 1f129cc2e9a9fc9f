"""A line at the foot of each demo page saying what the cache did, e.g. "cache: bypass,
Redis is down" (read from the Cache-Status header, else from the circuit breaker)."""

from __future__ import annotations

from collections.abc import Callable

from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.utils.html import escape

from cachekit_web.core.web import CACHE_STATUS_HEADER, describe_cache
from cachekit_web.django import CachekitCache


class CacheStateMiddleware:
    """Add the cache state line to the demo's HTML pages (outside cache_page: never stored)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Serve the page, then add the line before </body>."""
        response = self.get_response(request)
        if (request.path.startswith("/admin/") or getattr(response, "streaming", False)
                or not response.get("Content-Type", "").startswith("text/html")):
            return response
        backend = caches["default"]
        state = (backend.client.breaker.state.value if isinstance(backend, CachekitCache)
                 else "closed")
        line = escape(describe_cache(response.get(CACHE_STATUS_HEADER), state))
        response.content = response.content.replace(
            b"</body>", f'<p id="cache-state">{line}</p>\n</body>'.encode(), 1)
        return response
