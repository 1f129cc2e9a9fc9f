"""The Prometheus scrape route: ``app.register_blueprint(metrics_blueprint())``.

Needs the prometheus extra. It shows counters only, never keys or values; serve
it where only the scraper reaches it.
"""

from __future__ import annotations

from flask import Blueprint
from flask.wrappers import Response

from ..core.observe.prometheus import exposition


def metrics_blueprint(url: str = "/metrics", name: str = "cachekit_metrics") -> Blueprint:
    """A blueprint serving the cachekit metrics in Prometheus text format at ``url``."""
    bp = Blueprint(name, __name__)

    @bp.get(url)
    def metrics() -> Response:
        body, content_type = exposition()
        return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})

    return bp
