"""Hostile Redis contents never become pages: planted entries, replayed headers, look-alike dicts.

Entries are planted with a raw redis-py client on the suite's own redis-server, framed
by the cache's own codec (what an attacker with write access to Redis can produce when
values are not authenticated, or what an older release may have stored).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.test import Client, RequestFactory

from cachekit_web.core.client import CacheClient
from cachekit_web.core.web import StoredPage
from tests.django.conftest import cache_conf
from tests.flask.conftest import AppFactory

HOSTILE_BODY = b"<script>steal(document.cookie)</script>"
HOSTILE_HEADERS = (("Set-Cookie", "session=ATTACKER; Path=/"),
                   ("Content-Type", "text/html; charset=utf-8"), ("X-Kept", "1"))


def legacy_page_dict() -> dict[str, Any]:
    """The shape pages had before they became their own type: a plain dict."""
    return {"__cachekit_page__": {
        "v": 1, "status": 200, "headers": [list(h) for h in HOSTILE_HEADERS],
        "body": HOSTILE_BODY, "stored_at": time.time(), "charset": "utf-8"}}


def page_object() -> StoredPage:
    """A stored page of the page type itself, carrying headers that must never be replayed."""
    return StoredPage(200, HOSTILE_HEADERS, HOSTILE_BODY, time.time(), "utf-8")


@pytest.fixture()
def raw_redis(redis_url: str) -> Iterator[redis.Redis]:
    """A plain redis-py client on the suite's server: the attacker's pen."""
    r = redis.Redis.from_url(redis_url)
    yield r
    r.close()


def plant(raw: redis.Redis, client: CacheClient, key: str, value: Any) -> None:
    """Write ``value`` framed by ``client``'s codec straight into Redis under ``key``."""
    fk = client.full_key(key)
    raw.set(fk, client.codec.encode(fk.encode(), value), ex=60)


# -- Flask -------------------------------------------------------------------------------

def _flask_view_app(make_app: AppFactory, secret_key: str | None) -> tuple[Any, Any, list[int]]:
    app, cache = make_app(SECRET_KEY=secret_key)
    renders: list[int] = []

    @app.route("/")
    @cache.cached(timeout=60)
    def index() -> str:
        renders.append(1)
        return "the real page"

    return app, cache, renders


def _flask_view_key(app: Any) -> str:
    with app.test_request_context("/"):
        return str(app.view_functions["index"].make_cache_key())


@pytest.mark.parametrize("shape", [legacy_page_dict, lambda: "<script>evil()</script>"],
                         ids=["page-dict", "html-string"])
def test_flask_views_never_serve_unauthenticated_entries(
        make_app: AppFactory, raw_redis: redis.Redis, caplog: pytest.LogCaptureFixture,
        shape: Callable[[], Any]) -> None:
    with caplog.at_level(logging.WARNING, logger="cachekit_web"):
        app, cache, renders = _flask_view_app(make_app, None)
    assert any("cached views" in r.getMessage() for r in caplog.records)
    with app.app_context():
        assert not cache.client.codec.keyring.authenticated
        plant(raw_redis, cache.client, _flask_view_key(app), shape())
    client = app.test_client()
    for _ in range(2):
        answer = client.get("/")
        assert answer.data == b"the real page"
        assert "Set-Cookie" not in answer.headers
        assert "hit" not in answer.headers["Cache-Status"]
    assert len(renders) == 2  # run uncached, never stored either
    assert "detail=unauthenticated" in answer.headers["Cache-Status"]


def test_flask_replay_filters_stored_headers_in_authenticated_mode(
        make_app: AppFactory, raw_redis: redis.Redis) -> None:
    app, cache, renders = _flask_view_app(make_app, "k3y-for-the-test")
    with app.app_context():
        plant(raw_redis, cache.client, _flask_view_key(app), page_object())
    answer = app.test_client().get("/")
    assert "hit" in answer.headers["Cache-Status"]
    assert answer.headers.get("X-Kept") == "1"
    assert "Set-Cookie" not in answer.headers
    assert not renders


def test_flask_memoized_page_shaped_dict_stays_a_dict(make_app: AppFactory) -> None:
    app, cache = make_app()
    shaped = legacy_page_dict()

    @cache.memoize(timeout=60)
    def profile(user: str) -> dict[str, Any]:
        return shaped

    with app.test_request_context("/"):
        first = profile("ann")
        second = profile("ann")
    assert first == shaped
    assert second == shaped  # a hit: still the dict, never a Response with its headers
    assert isinstance(second, dict)


def test_flask_cached_function_page_shaped_dict_stays_a_dict(make_app: AppFactory) -> None:
    app, cache = make_app()
    shaped = legacy_page_dict()

    @cache.cached(timeout=60, key_prefix="shaped")
    def settings_blob() -> dict[str, Any]:
        return shaped

    with app.app_context():
        assert settings_blob() == shaped
        assert settings_blob() == shaped


# -- Django ------------------------------------------------------------------------------

@pytest.fixture()
def django_cache(use_caches: Callable[..., Any], redis_url: str,
                 namespace: str) -> Callable[..., Any]:
    """Apply a CachekitCache on the suite's server, with extra settings (e.g. SECRET_KEY)."""

    def apply(**more: Any) -> Any:
        backend = use_caches({"default": cache_conf(redis_url, namespace)}, **more)
        backend.clear()
        return backend

    return apply


def _django_page_key(path: str) -> str:
    from cachekit_web.django.views import page_cache_key

    return page_cache_key(RequestFactory().get(path))


def test_django_cache_page_never_serves_unauthenticated_entries(
        django_cache: Callable[..., Any], raw_redis: redis.Redis) -> None:
    from tests.django.urls import CALLS, plain

    # No SECRET_KEY and no cachekit key: the only way a Django cache is unauthenticated.
    # Django's own middleware needs SECRET_KEY, so the view is called without it.
    backend = django_cache(SECRET_KEY="")
    assert not backend.client.codec.keyring.authenticated
    key = backend.make_and_validate_key(_django_page_key("/t/plain/"))
    plant(raw_redis, backend.client, key, legacy_page_dict())
    before = CALLS.get("plain", 0)
    for _ in range(2):
        answer = plain(RequestFactory().get("/t/plain/"))
        assert answer.content.startswith(b"plain ")
        assert not answer.has_header("Set-Cookie")
        assert "hit" not in answer["Cache-Status"]
    assert CALLS["plain"] == before + 2
    assert "detail=unauthenticated" in answer["Cache-Status"]


def test_django_replay_filters_stored_headers_in_authenticated_mode(
        django_cache: Callable[..., Any], raw_redis: redis.Redis) -> None:
    backend = django_cache()
    assert backend.client.codec.keyring.authenticated
    key = backend.make_and_validate_key(_django_page_key("/t/plain/"))
    plant(raw_redis, backend.client, key, page_object())
    answer = Client().get("/t/plain/")
    assert "hit" in answer["Cache-Status"]
    assert answer.content == HOSTILE_BODY
    assert answer["X-Kept"] == "1"
    assert "Set-Cookie" not in answer.headers and not answer.cookies


def test_flask_view_entry_that_is_not_a_page_is_never_served(
        make_app: AppFactory, raw_redis: redis.Redis) -> None:
    # A view's entry is always a page: anything else (a dict stored by an older release,
    # a string) is recomputed, never handed to make_response.
    app, cache, renders = _flask_view_app(make_app, "k3y-for-the-test")
    with app.app_context():
        plant(raw_redis, cache.client, _flask_view_key(app), legacy_page_dict())
    answer = app.test_client().get("/")
    assert answer.data == b"the real page"
    assert "Set-Cookie" not in answer.headers
    assert renders == [1]
