"""The health dashboard blueprint: HTML and JSON, disabled unless the app authorizes it."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from flask import Blueprint, abort, jsonify, render_template, request, url_for
from flask.wrappers import Response
from markupsafe import Markup

from ..core.errors import REGISTRY
from ..core.observe.health import http_status
from ..core.observe.render import PAGE_STYLE, render_dashboard

if TYPE_CHECKING:
    from .extension import Cache


def _guard(cache: Cache) -> Response | None:
    """404 when no protection is configured; 401/403 for a missing or wrong credential."""
    token = cache.options.HEALTH_TOKEN
    authorize = cache.health_authorizer()
    if authorize is None and not token:
        abort(404)
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                              token.encode()):
            return None
        if authorize is None:
            if not scheme:
                resp = Response("authorization required\n", status=401, mimetype="text/plain")
                resp.headers["WWW-Authenticate"] = 'Bearer realm="cachekit"'
                return resp
            abort(403)
    if authorize is not None and authorize():
        return None
    abort(403)


def make_blueprint(cache: Cache, name: str = "cachekit_health") -> Blueprint:
    """A blueprint serving the dashboard at '/' and its JSON at '/health.json'."""
    bp = Blueprint(name, __name__, template_folder="templates")

    @bp.before_request
    def protect() -> Response | None:
        return _guard(cache)

    @bp.after_request
    def no_store(resp: Response) -> Response:
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @bp.get("/")
    def dashboard() -> str:
        report = cache.health()
        body = render_dashboard(report, json_url=url_for(f"{name}.health_json"),
                                error_url=lambda code: url_for(f"{name}.explain", code=code))
        return render_template("cachekit/health.html", title="cachekit health",
                               dashboard=Markup(body), page_style=Markup(PAGE_STYLE))

    @bp.get("/health.json")
    def health_json() -> Any:
        report = cache.health()
        data = report.as_dict()
        data["errors_explained"] = report.errors_explained()
        status = http_status(report, cache.settings.HEALTH_DOWN_STATUS,
                             request.args.get("strict"))
        return jsonify(data), status

    @bp.get("/errors/<code>")
    def explain(code: str) -> Response:
        spec = REGISTRY.get(code.upper())
        if spec is None:
            abort(404)
        return Response(spec.explain() + "\n", mimetype="text/plain")

    return bp
