"""The Django adapter's sync and async paths share one plan, so they answer alike, including
where the hand-kept twins had drifted: cache_page (how the request's headers were read) and
CachekitCache's expire (the default timeout)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from django.utils.cache import has_vary_header

from cachekit_web.django import cache_page

factory = RequestFactory()


def _page(is_async: bool, calls: list[str]) -> Callable[..., Any]:
    # The view's answer depends on the credentials, as an API view's does.
    if is_async:
        @cache_page(30, key_prefix="agree-async")
        async def aview(request: HttpRequest) -> HttpResponse:
            calls.append(request.META.get("HTTP_AUTHORIZATION", ""))
            return HttpResponse("for " + request.META.get("HTTP_AUTHORIZATION", "anyone"))
        return aview

    @cache_page(30, key_prefix="agree-sync")
    def view(request: HttpRequest) -> HttpResponse:
        calls.append(request.META.get("HTTP_AUTHORIZATION", ""))
        return HttpResponse("for " + request.META.get("HTTP_AUTHORIZATION", "anyone"))
    return view


def _serve(view: Callable[..., Any], request: HttpRequest) -> Any:
    result = view(request)
    return asyncio.run(result) if asyncio.iscoroutine(result) else result


def _answer(response: Any) -> tuple[int, str, bytes, bool]:
    status = re.sub(r";\s*ttl=\d+", "", response["Cache-Status"])
    return (response.status_code, status, response.content,
            has_vary_header(response, "Authorization"))


def _credentials_added_after_headers_were_read() -> HttpRequest:
    # A middleware that read request.headers (CORS, logging) runs before one that turns
    # a token cookie into an Authorization header in request.META, as auth proxies do.
    request = factory.get("/agree/")
    assert request.headers.get("Authorization") is None  # Django caches request.headers
    request.META["HTTP_AUTHORIZATION"] = "Bearer alice"
    return request


def _credentials_removed_after_headers_were_read() -> HttpRequest:
    request = factory.get("/agree/", headers={"Authorization": "Bearer bob"})
    assert request.headers.get("Authorization") == "Bearer bob"
    del request.META["HTTP_AUTHORIZATION"]  # consumed by a middleware
    return request


@pytest.mark.parametrize("make_request", [
    _credentials_added_after_headers_were_read,
    _credentials_removed_after_headers_were_read,
    lambda: factory.get("/agree/", headers={"Authorization": "Bearer carol"}),
    lambda: factory.get("/agree/"),
    lambda: factory.head("/agree/"),
    lambda: factory.post("/agree/"),
], ids=["auth-added-late", "auth-removed-late", "auth", "get", "head", "post"])
def test_sync_and_async_pages_answer_alike(cache: Any, make_request: Callable[[], Any]) -> None:
    answers = []
    for is_async in (False, True):
        calls: list[str] = []
        view = _page(is_async, calls)
        first = _answer(_serve(view, make_request()))
        second = _answer(_serve(view, make_request()))
        answers.append((first, second, calls))
    assert answers[0] == answers[1]


def test_credentials_in_meta_are_never_stored_or_served(cache: Any) -> None:
    # request.META is what the view, the key and Vary read: the request bears credentials,
    # so the page is not stored, and a later anonymous request is not served Alice's page.
    for is_async in (False, True):
        calls: list[str] = []
        view = _page(is_async, calls)
        response = _serve(view, _credentials_added_after_headers_were_read())
        assert response["Cache-Status"].endswith("fwd=request; detail=authorization"), is_async
        assert has_vary_header(response, "Authorization")
        anonymous = _serve(view, factory.get("/agree/"))
        assert anonymous.content == b"for anyone", is_async


def test_expire_and_aexpire_agree_on_the_default_timeout(cache: Any) -> None:
    # The async twin forwarded its arguments as they came: aexpire(key) had no timeout
    # to give the core (TypeError), while expire(key) gives the cache's TIMEOUT.
    cache.set("sync", 1, None)
    cache.set("async", 1, None)
    assert cache.expire("sync") is True
    assert asyncio.run(cache.aexpire("async")) is True
    assert 0 < cache.ttl("sync") <= cache.default_timeout
    assert cache.ttl("async") == cache.ttl("sync")
