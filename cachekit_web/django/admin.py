"""The health page: HTML (in the admin when it is installed) and a JSON twin.

Access goes through the admin site's own check (``AdminSite.admin_view``, so its
``has_permission`` decides: superuser-only or two-factor sites stay closed to
ordinary staff). Without the admin, signed-in active staff are admitted; without
``django.contrib.auth`` nobody is, and the pages answer 404. The page shows the
core HealthReport, rendered by ``cachekit_web.core.observe.render``. Importing this module
needs neither the admin nor auth, so API-only projects can install the app.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils.safestring import mark_safe

from ..core.errors import REGISTRY
from ..core.observe.health import http_status
from ..core.observe.render import PAGE_STYLE, render_dashboard
from .backend import CachekitCache
from .checks import cachekit_aliases

URL_NAMES = ("cachekit_health", "cachekit_health_json", "cachekit_error")

View = Callable[..., HttpResponse]


def _admin_installed() -> bool:
    return bool(apps.is_installed("django.contrib.admin"))


def staff_required(view: View) -> View:
    """Without an admin site: anonymous -> login, signed in but not active staff -> 403."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not apps.is_installed("django.contrib.auth"):
            raise Http404("no authentication installed")  # nobody can be admitted
        from django.contrib.auth.views import redirect_to_login

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


def _default_site() -> Any:
    if not _admin_installed():
        return None
    from django.contrib import admin

    return admin.site


def _guarded(view: View, site: Any = None) -> View:
    """``view(request, site=...)`` behind ``site``'s admin_view (default: the default site)."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        chosen = site or _default_site()
        if chosen is None:
            return staff_required(functools.partial(view, site=None))(request, *args, **kwargs)
        try:  # admin_view redirects to the site's login page: it must be routable
            reverse(f"{chosen.name}:login", current_app=chosen.name)
        except NoReverseMatch:
            if not chosen.has_permission(request):  # still the site's own rule
                raise PermissionDenied("not permitted by the admin site") from None
            return view(request, *args, site=None, **kwargs)
        request.current_app = chosen.name  # {% url 'admin:...' %} resolves in this site
        admin_view: View = chosen.admin_view(functools.partial(view, site=chosen))
        return admin_view(request, *args, **kwargs)

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


def _admin_context(request: HttpRequest, site: Any) -> dict[str, Any]:
    return {} if site is None else {**site.each_context(request), "use_admin": True}


def _health(request: HttpRequest, *, site: Any) -> HttpResponse:
    alias, backend = _selected(request)
    report = backend.health()
    json_url = _url(request, "cachekit_health_json") + f"?cache={alias}"
    dashboard = render_dashboard(report, json_url=json_url,
                                 error_url=lambda code: _url(request, "cachekit_error", code))
    context = {
        "use_admin": False,
        **_admin_context(request, site),
        "title": f"Cache health: {alias}",
        "alias": alias,
        "aliases": cachekit_aliases(),
        "report": report,
        "dashboard": mark_safe(dashboard),  # every value in it is escaped by render_dashboard
        "page_style": mark_safe(PAGE_STYLE),  # a constant
    }
    response = render(request, "cachekit_web/health.html", context)
    response["Cache-Control"] = "no-store"
    return response


def _health_json(request: HttpRequest, *, site: Any) -> JsonResponse:
    alias, backend = _selected(request)
    report = backend.health()
    data = {"alias": alias, **report.as_dict()}
    status = http_status(report, backend.client.settings.HEALTH_DOWN_STATUS,
                         request.GET.get("strict"))
    response = JsonResponse(data, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _error(request: HttpRequest, *, site: Any, code: str) -> HttpResponse:
    spec = REGISTRY.get(code.upper())
    if spec is None:
        raise Http404("unknown error code")
    context = {"use_admin": False, **_admin_context(request, site),
               "title": f"{spec.code}: {spec.title}", "spec": spec,
               "health_url": _url(request, "cachekit_health")}
    return render(request, "cachekit_web/error.html", context)


health_view = _guarded(_health)
health_view.__doc__ = "The HTML health page for one cache (``?cache=alias``, default: the first)."
health_json_view = _guarded(_health_json)
health_json_view.__doc__ = ("The same report as JSON; HTTP 200 while the cache is down, "
                            "503 if HEALTH_DOWN_STATUS or ``?strict=1`` asks for it.")
error_view = _guarded(_error)
error_view.__doc__ = "One error code's explanation from the registry."


def urlpatterns_for_site(site: Any = None) -> list[URLPattern]:
    """The health URLs, as mounted under an admin site, behind that site's own check."""
    return [
        path("cachekit/health/", _guarded(_health, site), name="cachekit_health"),
        path("cachekit/health.json", _guarded(_health_json, site), name="cachekit_health_json"),
        path("cachekit/errors/<str:code>/", _guarded(_error, site), name="cachekit_error"),
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
        return urlpatterns_for_site(site) + list(original_urls())

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
