"""The page key's URL from request.META equals build_absolute_uri(); hits built once."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory, override_settings

from cachekit_web.core.web import StoredPage
from cachekit_web.django.views import _absolute_uri, _from_page

from .test_local_tier import assert_pristine, shared_page_view, spoil


@pytest.mark.parametrize("path", ["/page/", "/a/b.c~d-e_f", "//double", "/caf%C3%A9/",
                                  "/sp ace/", "/"])
@pytest.mark.parametrize("query", ["", "b=2&a=1"])
def test_absolute_uri_matches_django(path: str, query: str) -> None:
    with override_settings(ALLOWED_HOSTS=["example.org", "testserver"]):
        for host, secure in (("example.org", True), ("testserver", False)):
            request = RequestFactory().get(path, QUERY_STRING=query, HTTP_HOST=host,
                                           secure=secure)
            assert _absolute_uri(request) == request.build_absolute_uri()


def test_a_disallowed_host_is_still_refused() -> None:
    from django.core.exceptions import DisallowedHost

    with override_settings(ALLOWED_HOSTS=["example.org"]):
        request = RequestFactory().get("/page/", HTTP_HOST="evil.example")
        with pytest.raises(DisallowedHost):
            _absolute_uri(request)


def test_hit_response_carries_stored_headers_age_and_status() -> None:
    page = StoredPage(200, (("Content-Type", "text/html; charset=utf-8"), ("X-A", "1")),
                      b"<p>hi</p>", 0.0, "utf-8")
    response: Any = _from_page(page, "cachekit; hit")
    assert response.content == b"<p>hi</p>" and response["X-A"] == "1"
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert int(response["Age"]) > 0 and response["Cache-Status"] == "cachekit; hit"


def test_page_key_follows_changed_settings() -> None:
    from cachekit_web.django.views import page_cache_key

    request = RequestFactory().get("/page/")
    first = page_cache_key(request)
    with override_settings(CACHE_MIDDLEWARE_KEY_PREFIX="other"):
        # As Django's cache_page: the middleware's prefix is not the decorator's.
        assert page_cache_key(request) == first
    with override_settings(USE_TZ=not __import__("django.conf").conf.settings.USE_TZ):
        assert page_cache_key(request) != first
    with override_settings(USE_I18N=not __import__("django.conf").conf.settings.USE_I18N):
        assert page_cache_key(request) != first
    assert page_cache_key(request) == first


def test_a_remembered_host_is_checked_again_when_allowed_hosts_change() -> None:
    from django.core.exceptions import DisallowedHost

    with override_settings(ALLOWED_HOSTS=["example.org"]):
        request = RequestFactory().get("/page/", HTTP_HOST="example.org")
        assert _absolute_uri(request) == "http://example.org/page/"
        assert _absolute_uri(request) == "http://example.org/page/"  # remembered
        with pytest.raises(DisallowedHost):  # another Host is still checked
            _absolute_uri(RequestFactory().get("/page/", HTTP_HOST="evil.example"))
    with override_settings(ALLOWED_HOSTS=["other.org"]):
        with pytest.raises(DisallowedHost):
            _absolute_uri(RequestFactory().get("/page/", HTTP_HOST="example.org"))
        with pytest.raises(DisallowedHost):  # refused hosts are never remembered
            _absolute_uri(RequestFactory().get("/page/", HTTP_HOST="example.org"))


def test_forwarded_host_and_scheme_enter_the_remembered_origin() -> None:
    with override_settings(ALLOWED_HOSTS=["a.org", "b.org"], USE_X_FORWARDED_HOST=True,
                           SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")):
        for forwarded, proto in (("a.org", "http"), ("b.org", "https"), ("a.org", "https")):
            request = RequestFactory().get("/p/", HTTP_HOST="a.org",
                                           HTTP_X_FORWARDED_HOST=forwarded,
                                           HTTP_X_FORWARDED_PROTO=proto)
            assert _absolute_uri(request) == request.build_absolute_uri()


def test_a_remembered_page_key_follows_language_and_time_zone() -> None:
    from django.utils import timezone, translation

    from cachekit_web.django.views import page_cache_key

    request = RequestFactory().get("/page/")
    first = page_cache_key(request)
    assert page_cache_key(request) == first  # remembered
    with translation.override("fr"):
        french = page_cache_key(request)
    with timezone.override("Europe/Paris"):
        paris = page_cache_key(request)
    assert len({first, french, paris}) == 3
    assert page_cache_key(request, key_prefix="p") != first
    assert page_cache_key(RequestFactory().head("/page/")) == first  # HEAD shares GET
    assert page_cache_key(RequestFactory().get("/page/?a=1")) != first
    assert page_cache_key(request, vary_on_headers=["Accept"]) != first


def test_network_hits_share_no_mutable_state(cache: Any) -> None:
    """Hits read from Redis (no in-process tier) are built from one prepared copy per page
    object: what middleware does to one response never shows in the next."""
    view = shared_page_view(local=False)
    factory = RequestFactory()
    view(factory.get("/net-mutable/"))
    hits = [view(factory.get("/net-mutable/")) for _ in range(3)]  # the later ones prepared
    for first in hits[:2]:
        spoil(first)
    second = view(factory.get("/net-mutable/"))
    assert_pristine(second)
    untouched = [(k, v) for k, v in hits[2].items() if k != "Age"]
    assert [(k, v) for k, v in second.items() if k != "Age"] == untouched
    assert hits[1].content == b"shared? appended"


def test_a_page_read_anew_each_time_is_never_prepared() -> None:
    """A page object served once (e.g. decoded again on every read: stale_ttl entries,
    large frames) is built by the constructor; the same object served again is prepared."""
    from cachekit_web.django import views

    views._PREPARED.clear()
    page = StoredPage(200, (("Content-Type", "text/plain"),), b"x", 0.0)
    first: Any = views._from_page(page, "cachekit; hit")
    assert views._PREPARED[id(page)][1] is views._SEEN_ONCE
    again: Any = views._from_page(page, "cachekit; hit")
    assert isinstance(views._PREPARED[id(page)][1], views._Prepared)
    assert list(first.items()) == list(again.items()) and first.content == again.content
    from cachekit_web.core import web
    from cachekit_web.core.data import codec

    assert 2 * web.MEMO_BODY_MAX <= codec.REUSE_MAX_BYTES  # prepared ones are reused
    big = StoredPage(200, (("Content-Type", "text/plain"),), b"x" * (web.MEMO_BODY_MAX + 1), 0.0)
    views._from_page(big, "cachekit; hit")
    views._from_page(big, "cachekit; hit")
    assert id(big) not in views._PREPARED
