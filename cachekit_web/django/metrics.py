"""The Prometheus scrape view: ``path("metrics", metrics_view)`` (needs the prometheus extra).

It shows counters only, never keys or values; serve it where only the scraper
reaches it (an internal address, or your own authentication around it).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from ..core.observe.prometheus import exposition


def metrics_view(request: HttpRequest) -> HttpResponse:
    """The cachekit metrics in Prometheus text format (every gunicorn worker's, in
    multiprocess mode)."""
    body, content_type = exposition()
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response
