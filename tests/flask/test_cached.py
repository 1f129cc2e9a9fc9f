"""@cache.cached on views and functions: keys, deliberate differences, Flask-Caching options."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from flask import Flask, make_response, request, session
from flask.views import MethodView

from cachekit_web.flask import Cache, CachedResponse

from .conftest import AppFactory


@pytest.fixture()
def site(make_app: AppFactory) -> Iterator[tuple[Flask, Cache, list[str]]]:
    app, cache = make_app()
    calls: list[str] = []

    @app.route("/page", methods=["GET", "POST"])
    @cache.cached(timeout=60)
    def page() -> str:
        calls.append(request.method)
        return f"{request.method} #{len(calls)} q={sorted(request.args.items())}"

    @app.get("/cookie")
    @cache.cached(timeout=60)
    def cookie() -> object:
        calls.append("cookie")
        resp = make_response(f"cookie #{len(calls)}")
        resp.set_cookie("who", "alice")
        return resp

    @app.get("/private")
    @cache.cached(timeout=60)
    def private() -> object:
        calls.append("private")
        resp = make_response(f"private #{len(calls)}")
        resp.headers["Cache-Control"] = "private, max-age=60"
        return resp

    @app.get("/session")
    @cache.cached(timeout=60)
    def from_session() -> str:
        calls.append("session")
        return f"hello {session.get('user', 'anonymous')} #{len(calls)}"

    @app.get("/error")
    @cache.cached(timeout=60, response_filter=lambda rv: not isinstance(rv, tuple))
    def error() -> tuple[str, int]:
        calls.append("error")
        return f"boom #{len(calls)}", 200

    @app.get("/short")
    @cache.cached(timeout=60)
    def short() -> CachedResponse:
        calls.append("short")
        return CachedResponse(make_response(f"short #{len(calls)}"), timeout=5)

    @app.get("/noquery")
    @cache.cached(timeout=60, query_string=False)
    def noquery() -> str:
        calls.append("noquery")
        return f"noquery #{len(calls)}"

    @app.get("/async")
    @cache.cached(timeout=60)
    async def async_view() -> str:
        await asyncio.sleep(0.001)
        calls.append("async")
        return f"async #{len(calls)}"

    with app.app_context():
        yield app, cache, calls


def test_view_hit_and_cache_status(site: tuple[Flask, Cache, list[str]]) -> None:
    app, _, calls = site
    c = app.test_client()
    first, second = c.get("/page"), c.get("/page")
    # RFC 9211, worded as Django's cache_page words it (tests/django/test_views.py)
    assert first.headers["Cache-Status"] == "cachekit; fwd=miss; stored"
    assert second.headers["Cache-Status"] in ("cachekit; hit; ttl=60", "cachekit; hit; ttl=59")
    assert first.data == second.data and calls == ["GET"]
    assert second.headers["Content-Type"].startswith("text/html")


def test_query_string_is_part_of_the_key_in_any_order(site: tuple[Flask, Cache, list[str]]) -> None:
    app, _, calls = site
    c = app.test_client()
    a = c.get("/page?x=1&y=2")
    b = c.get("/page?y=2&x=1")
    other = c.get("/page?x=9")
    assert a.data == b.data and b"x', '9" in other.data
    assert len(calls) == 2


def test_query_string_false_ignores_it(site: tuple[Flask, Cache, list[str]]) -> None:
    app, _, calls = site
    c = app.test_client()
    assert c.get("/noquery?a=1").data == c.get("/noquery?a=2").data
    assert calls == ["noquery"]


def test_post_is_never_cached_nor_served_from_get(site: tuple[Flask, Cache, list[str]]) -> None:
    app, _, calls = site
    c = app.test_client()
    c.get("/page")
    p1, p2 = c.post("/page"), c.post("/page")
    assert p1.data.startswith(b"POST #2") and p2.data.startswith(b"POST #3")
    assert p1.headers["Cache-Status"] == "cachekit; fwd=method"
    assert c.get("/page").data.startswith(b"GET #1")
    assert calls == ["GET", "POST", "POST"]


def test_post_first_does_not_poison_get(site: tuple[Flask, Cache, list[str]]) -> None:
    app, _, calls = site
    c = app.test_client()
    c.post("/page")
    assert c.get("/page").data.startswith(b"GET")
    assert calls == ["POST", "GET"]


def test_head_is_served_from_the_get_entry(site: tuple[Flask, Cache, list[str]]) -> None:
    app, _, calls = site
    c = app.test_client()
    got = c.get("/page")
    head = c.head("/page")
    assert head.headers["Cache-Status"].startswith("cachekit; hit")
    assert head.headers["Content-Length"] == str(len(got.data)) and head.data == b""
    assert calls == ["GET"]


def test_set_cookie_responses_are_not_cached(site: tuple[Flask, Cache, list[str]]) -> None:
    app, _, calls = site
    c = app.test_client()
    r1, r2 = c.get("/cookie"), c.get("/cookie")
    assert r1.data != r2.data and calls == ["cookie", "cookie"]
    assert "set-cookie" in r2.headers["Cache-Status"] and "who=alice" in r2.headers["Set-Cookie"]


def test_private_responses_are_not_cached(site: tuple[Flask, Cache, list[str]]) -> None:
    app, _, calls = site
    c = app.test_client()
    assert c.get("/private").data != c.get("/private").data
    assert calls == ["private", "private"]


def test_views_reading_the_session_are_not_cached(site: tuple[Flask, Cache, list[str]]) -> None:
    app, _, calls = site
    alice, bob = app.test_client(), app.test_client()
    with alice.session_transaction() as s:
        s["user"] = "alice"
    assert b"hello alice" in alice.get("/session").data
    assert b"hello anonymous" in bob.get("/session").data
    assert calls == ["session", "session"]


def test_response_filter_and_cached_response_timeout(site: tuple[Flask, Cache, list[str]]) -> None:
    app, cache, _calls = site
    c = app.test_client()
    assert c.get("/error").data != c.get("/error").data
    first = c.get("/short")
    assert c.get("/short").data == first.data
    keys = [k for k in cache.client.backend.client.scan_iter(match=cache.client.namespace + ":*")]
    ttls = [cache.client.backend.client.pttl(k) for k in keys]
    assert any(0 < t <= 5000 for t in ttls), ttls


def test_async_view_is_cached(site: tuple[Flask, Cache, list[str]]) -> None:
    app, _, _calls = site
    c = app.test_client()
    first, second = c.get("/async"), c.get("/async")
    assert first.data == second.data == b"async #1"
    assert second.headers["Cache-Status"].startswith("cachekit; hit")


def test_method_view_is_cached_with_headers(make_app: AppFactory) -> None:
    app, cache = make_app()
    calls: list[int] = []

    class Thing(MethodView):
        @cache.cached(timeout=30)
        def get(self) -> str:
            calls.append(1)
            return f"thing #{len(calls)}"

    app.add_url_rule("/thing", view_func=Thing.as_view("thing"))
    c = app.test_client()
    assert c.get("/thing").data == c.get("/thing").data == b"thing #1"
    assert c.get("/thing").headers["Cache-Status"].startswith("cachekit; hit")


def test_function_with_literal_key_prefix(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    calls: list[int] = []

    @cache.cached(timeout=30, key_prefix="my-list")
    def get_list() -> list[int]:
        calls.append(1)
        return [1, 2, 3]

    assert get_list() == get_list() == [1, 2, 3]
    assert calls == [1]
    assert cache.get("my-list") == [1, 2, 3]
    cache.delete("my-list")
    get_list()
    assert calls == [1, 1]


def test_unless_forced_update_cache_none(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    calls: list[str] = []
    skip = {"on": False}
    force = {"on": False}

    @cache.cached(key_prefix="u", unless=lambda: skip["on"],
                  forced_update=lambda: force["on"])
    def value() -> int:
        calls.append("v")
        return len(calls)

    @cache.cached(key_prefix="n")
    def nothing() -> None:
        calls.append("n")

    @cache.cached(key_prefix="n2", cache_none=True)
    def nothing_cached() -> None:
        calls.append("n2")

    assert value() == 1 and value() == 1
    skip["on"] = True
    assert value() == 2
    skip["on"] = False
    assert value() == 1
    force["on"] = True
    assert value() == 3
    force["on"] = False
    assert value() == 3
    nothing(), nothing()
    nothing_cached(), nothing_cached()
    assert calls.count("n") == 2 and calls.count("n2") == 1


def test_make_cache_key_source_check_and_hit_indication(make_app: AppFactory) -> None:
    app, cache = make_app()

    @app.get("/custom/<int:n>")
    @cache.cached(make_cache_key=lambda n: f"custom-{n % 2}", response_hit_indication=True)
    def custom(n: int) -> str:
        return f"n={n}"

    @cache.cached(key_prefix="src", source_check=True)
    def sourced() -> int:
        return 1

    c = app.test_client()
    assert c.get("/custom/1").data == b"n=1"
    hit = c.get("/custom/3")
    assert hit.data == b"n=1" and hit.headers["hit_cache"] == "True"
    with app.app_context():
        assert cache.get("custom-1") is not None
        sourced()
        key = sourced.make_cache_key()
        assert key.startswith("src:src") and cache.get(key) == 1


def test_stale_while_revalidate(make_app: AppFactory) -> None:
    """An expired entry is served (fwd=stale) while one request recomputes it."""
    app, cache = make_app()
    calls: list[int] = []

    @app.get("/swr")
    @cache.cached(timeout=0.3, stale_ttl=30)
    def swr() -> str:
        calls.append(1)
        if len(calls) > 1:
            time.sleep(0.6)
        return f"v{len(calls)}"

    c = app.test_client()
    assert c.get("/swr").data == b"v1"
    time.sleep(0.4)
    refresher = threading.Thread(target=lambda: app.test_client().get("/swr"))
    refresher.start()
    time.sleep(0.1)
    start = time.monotonic()
    stale = c.get("/swr")
    assert time.monotonic() - start < 0.3
    assert stale.data == b"v1" and stale.headers["Cache-Status"] == "cachekit; fwd=stale"
    refresher.join(5)
    fresh = c.get("/swr")
    assert fresh.data == b"v2" and fresh.headers["Cache-Status"].startswith("cachekit; hit")
    assert len(calls) == 2


def test_stampede_cold_view_runs_once(make_app: AppFactory) -> None:
    """20 concurrent requests for a cold view compute it once."""
    app, cache = make_app()
    calls: list[int] = []
    lock = threading.Lock()

    @app.get("/cold")
    @cache.cached(timeout=60)
    def cold() -> str:
        with lock:
            calls.append(1)
        time.sleep(0.3)
        return "expensive"

    results: list[tuple[int, bytes, str]] = []
    barrier = threading.Barrier(20)

    def hit() -> None:
        client = app.test_client()
        barrier.wait(5)
        r = client.get("/cold")
        results.append((r.status_code, r.data, r.headers["Cache-Status"]))

    threads = [threading.Thread(target=hit) for _ in range(20)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    elapsed = time.monotonic() - start
    assert len(results) == 20 and all(r[:2] == (200, b"expensive") for r in results)
    assert len(calls) == 1, calls
    assert elapsed < 3.0
    assert sum(r[2].startswith("cachekit; fwd=miss") for r in results) == 1


def test_stampede_cold_async_view_runs_once(make_app: AppFactory) -> None:
    """Concurrent async requests (each in its own event loop) share one computation."""
    app, cache = make_app()
    calls: list[int] = []

    @app.get("/acold")
    @cache.cached(timeout=60)
    async def acold() -> str:
        calls.append(1)
        await asyncio.sleep(0.3)
        return "async expensive"

    results: list[bytes] = []
    barrier = threading.Barrier(10)

    def hit() -> None:
        client = app.test_client()
        barrier.wait(5)
        results.append(client.get("/acold").data)

    threads = [threading.Thread(target=hit) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert results == [b"async expensive"] * 10
    assert len(calls) == 1, calls
