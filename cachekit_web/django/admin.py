"""The health page: staff-only HTML (in the admin when it is installed) and a JSON twin.

Anonymous visitors are sent to the login page; signed-in users who are not
staff get 403. The page shows the core HealthReport, rendered by
``cachekit_web.core.render``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.cache import caches
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils.safestring import mark_safe

from ..core.errors import REGISTRY
from ..core.render import render_dashboard
from .backend import CachekitCache
from .checks import cachekit_aliases

URL_NAMES = ("cachekit_health", "cachekit_health_json", "cachekit_error")


def _admin_installed() -> bool:
    return bool(apps.is_installed("django.contrib.admin"))


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anonymous -> redirect to login; signed in but not active staff -> 403."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            login_url: str = settings.LOGIN_URL
            if _admin_installed():
                with contextlib.suppress(NoReverseMatch):
                    login_url = reverse("admin:login")
            return redirect_to_login(request.get_full_path(), login_url)
        if not (user.is_active and user.is_staff):
            raise PermissionDenied("staff only")
        return view(request, *args, **kwargs)

    return wrapped


def _url(request: HttpRequest, name: str, *args: Any) -> str:
    match = getattr(request, "resolver_match", None)
    namespace = match.namespace if match is not None and match.namespace else ""
    return str(reverse(f"{namespace}:{name}" if namespace else name, args=args))


def _selected(request: HttpRequest) -> tuple[str, CachekitCache]:
    aliases = cachekit_aliases()
    alias = request.GET.get("cache") or (aliases[0] if aliases else "")
    if alias not in aliases:
        raise Http404("no CachekitCache with that alias")
    backend = caches[alias]
    assert isinstance(backend, CachekitCache)
    return alias, backend


def _admin_context(request: HttpRequest) -> dict[str, Any]:
    if not _admin_installed():
        return {}
    from django.contrib import admin

    return dict(admin.site.each_context(request))


@staff_required
def health_view(request: HttpRequest) -> HttpResponse:
    """The HTML health page for one cache (``?cache=alias``, default: the first)."""
    alias, backend = _selected(request)
    report = backend.health()
    json_url = _url(request, "cachekit_health_json") + f"?cache={alias}"
    dashboard = render_dashboard(report, json_url=json_url,
                                 error_url=lambda code: _url(request, "cachekit_error", code))
    context = {
        **_admin_context(request),
        "title": f"Cache health: {alias}",
        "alias": alias,
        "aliases": cachekit_aliases(),
        "report": report,
        "dashboard": mark_safe(dashboard),  # every value in it is escaped by render_dashboard
        "use_admin": _admin_installed(),
    }
    response = render(request, "cachekit_web/health.html", context)
    response["Cache-Control"] = "no-store"
    return response


@staff_required
def health_json_view(request: HttpRequest) -> JsonResponse:
    """The same report as JSON; HTTP 503 when the cache is down (for monitors)."""
    alias, backend = _selected(request)
    report = backend.health()
    data = {"alias": alias, **report.as_dict()}
    response = JsonResponse(data, status=503 if report.status == "down" else 200)
    response["Cache-Control"] = "no-store"
    return response


@staff_required
def error_view(request: HttpRequest, code: str) -> HttpResponse:
    """One error code's explanation from the registry."""
    spec = REGISTRY.get(code.upper())
    if spec is None:
        raise Http404("unknown error code")
    context = {**_admin_context(request), "title": f"{spec.code}: {spec.title}", "spec": spec,
               "health_url": _url(request, "cachekit_health"), "use_admin": _admin_installed()}
    return render(request, "cachekit_web/error.html", context)


def urlpatterns_for_site() -> list[URLPattern]:
    """The health URLs, as mounted under the admin (``admin:cachekit_health`` ...)."""
    return [
        path("cachekit/health/", health_view, name="cachekit_health"),
        path("cachekit/health.json", health_json_view, name="cachekit_health_json"),
        path("cachekit/errors/<str:code>/", error_view, name="cachekit_error"),
    ]


def install_admin_views(site: Any = None) -> bool:
    """Mount the health page in an admin site and list it on the admin index (idempotent)."""
    if not _admin_installed():
        return False
    from django.contrib import admin

    site = site or admin.site
    if getattr(site, "_cachekit_installed", False):
        return True
    original_urls = site.get_urls
    original_app_list = site.get_app_list

    def get_urls() -> list[Any]:
        return urlpatterns_for_site() + list(original_urls())

    def get_app_list(request: HttpRequest, app_label: str | None = None) -> list[Any]:
        app_list = list(original_app_list(request, app_label) if app_label
                        else original_app_list(request))
        if app_label is None and cachekit_aliases():
            url = reverse(f"{site.name}:cachekit_health")
            app_list.append({
                "name": "Cache (cachekit-web)", "app_label": "cachekit_web", "app_url": url,
                "has_module_perms": True,
                "models": [{
                    "name": "Health", "object_name": "CacheHealth", "admin_url": url,
                    "add_url": None, "view_only": True,
                    "perms": {"add": False, "change": False, "delete": False, "view": True},
                }],
            })
        return app_list

    site.get_urls = get_urls
    site.get_app_list = get_app_list
    site._cachekit_installed = True
    return True
