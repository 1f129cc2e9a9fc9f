"""Test URLs: the example site plus views exercising cache_page options."""

from __future__ import annotations

import asyncio
import threading

from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from cachekit_web.django import cache_page, metrics_view

CALLS: dict[str, int] = {}
_LOCK = threading.Lock()


def _count(name: str) -> int:
    with _LOCK:
        CALLS[name] = CALLS.get(name, 0) + 1
        return CALLS[name]


@cache_page(60)
def plain(request: HttpRequest) -> HttpResponse:
    n = _count("plain")
    return HttpResponse(f"plain {n} {request.GET.urlencode()}")


@cache_page(60)
def slow(request: HttpRequest) -> HttpResponse:
    import time

    n = _count("slow")
    time.sleep(0.3)
    return HttpResponse(f"slow {n}")


@cache_page(60)
def status(request: HttpRequest, code: int) -> HttpResponse:
    n = _count("status")
    return HttpResponse(f"status {n}", status=code)


@cache_page(60)
def cookie(request: HttpRequest) -> HttpResponse:
    n = _count("cookie")
    response = HttpResponse(f"cookie {n}")
    response.set_cookie("who", f"visitor-{n}")
    return response


@cache_page(60)
def private(request: HttpRequest) -> HttpResponse:
    n = _count("private")
    response = HttpResponse(f"private {n}")
    response["Cache-Control"] = "private"
    return response


@cache_page(60, vary_on_headers=("Accept-Language",))
def varying(request: HttpRequest) -> HttpResponse:
    n = _count("varying")
    return HttpResponse(f"{request.headers.get('Accept-Language', '-')} {n}")


@cache_page(60)
def undeclared_vary(request: HttpRequest) -> HttpResponse:
    n = _count("undeclared_vary")
    response = HttpResponse(f"undeclared {n}")
    response["Vary"] = "Accept-Language"
    return response


@cache_page(1, stale_ttl=30)
def stale(request: HttpRequest) -> HttpResponse:
    n = _count("stale")
    return HttpResponse(f"stale {n}")


@cache_page(60)
async def async_view(request: HttpRequest) -> HttpResponse:
    n = _count("async")
    await asyncio.sleep(0)
    return HttpResponse(f"async {n}")


@cache_page(60)
def greeting(request: HttpRequest) -> HttpResponse:
    from django.contrib import messages

    if request.COOKIES.get("who") == "alice":  # stands in for a login that just happened
        messages.info(request, "Welcome back, alice")
    shown = " ".join(str(m) for m in messages.get_messages(request))
    return HttpResponse(f"home {shown}".strip())


@cache_page(60)
def api(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"data for {request.headers.get('Authorization', 'nobody')}")


@cache_page(60)
def next_page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"next={request.GET.get('next')}")


@cache_page(60)
def me(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"token={request.COOKIES.get('token', '')}")


@cache_page(60, vary_on_cookies=("theme",))
def themed(request: HttpRequest) -> HttpResponse:
    _count("themed")
    return HttpResponse(f"theme={request.COOKIES.get('theme', 'light')}")


urlpatterns = [
    path("t/next/", next_page),
    path("t/me/", me),
    path("t/themed/", themed),
    path("t/greeting/", greeting),
    path("t/api/", api),
    path("t/plain/", plain),
    path("t/slow/", slow),
    path("t/status/<int:code>/", status),
    path("t/cookie/", cookie),
    path("t/private/", private),
    path("t/varying/", varying),
    path("t/undeclared-vary/", undeclared_vary),
    path("t/stale/", stale),
    path("t/async/", async_view),
    path("cache/", include("cachekit_web.django.urls")),
    path("t/metrics", metrics_view),
    path("", include("example_django.urls")),
]
