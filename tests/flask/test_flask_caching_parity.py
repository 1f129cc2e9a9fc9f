"""Flask-Caching 2.x calls a migrated app relies on: delete_cached, is_stale, generators,
make_cache_key outside a request, memoize misuse, E023 without taking the app down."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, request

from cachekit_web import InvalidKeyError
from cachekit_web.flask import Cache

from .conftest import AppFactory


def _routes(app: Flask, cache: Cache) -> tuple[Any, Any]:
    counter = itertools.count()

    @app.route("/works")
    @cache.cached(query_string=True)
    def works() -> str:
        return f"works{next(counter)}"

    @app.route("/user/<name>")
    @cache.cached()
    def user(name: str) -> str:
        return f"{name}{next(counter)}"

    return works, user


def test_delete_cached_by_path_query_and_url_for(make_app: AppFactory) -> None:
    app, cache = make_app(SERVER_NAME="localhost")
    works, user = _routes(app, cache)
    tc = app.test_client()
    a, b = tc.get("/works?limit=15&mock=1").text, tc.get("/works?limit=20").text
    bob = tc.get("/user/bob").text
    assert tc.get("/works?mock=1&limit=15").text == a and tc.get("/user/bob").text == bob
    with app.app_context():
        assert cache.delete_cached(works, "/works", {"mock": 1, "limit": 15})
        assert not cache.delete_cached(works, "/works", "limit=99")  # nothing there
        assert cache.delete_cached(user, name="bob")  # path from url_for
    assert tc.get("/works?limit=15&mock=1").text != a
    assert tc.get("/works?limit=20").text == b  # other arguments untouched
    assert tc.get("/user/bob").text != bob
    with app.app_context():
        assert cache.delete_cached(works, "/works", [("limit", "20")])
    assert tc.get("/works?limit=20").text != b


def test_make_cache_key_outside_a_request(make_app: AppFactory) -> None:
    app, cache = make_app(SERVER_NAME="localhost")
    works, user = _routes(app, cache)
    with app.test_request_context("/works?mock=true&limit=15"):
        in_request = works.make_cache_key()
    with app.test_request_context("/user/bob"):
        in_request_user = user.make_cache_key(name="bob")
    with app.app_context():
        assert works.make_cache_key(path="/works", query_args="limit=15&mock=true") \
            == in_request
        assert works.make_cache_key(path="/works", query_args={"limit": 16}) != in_request
        assert user.make_cache_key(name="bob") == in_request_user


def test_is_stale_recomputes_on_hits_only(app_cache: tuple[Flask, Cache]) -> None:
    app, cache = app_cache
    seen: list[tuple[Any, ...]] = []
    stale = {"on": False}

    def is_stale(value: Any, x: int) -> bool:
        seen.append((value, x))
        return stale["on"]

    calls = itertools.count()

    @cache.cached(60, key_prefix="stale-fn", is_stale=is_stale)
    def fn(x: int) -> int:
        return next(calls)

    @cache.memoize(60, is_stale=lambda value: stale["on"])
    def memo(x: int) -> int:
        return next(calls)

    @cache.cached(60, key_prefix="forced", forced_update=lambda: True,
                  is_stale=lambda value: seen.append(("forced",)) or True)
    def forced() -> int:
        return 1

    with app.test_request_context():
        assert fn(7) == 0 and seen == []  # a miss does not ask
        assert fn(7) == 0 and seen == [(0, 7)]
        m = memo(1)
        assert memo(1) == m
        stale["on"] = True
        assert fn(7) == 2 and memo(1) == 3
        stale["on"] = False
        assert fn(7) == 2 and memo(1) == 3
        forced(), forced()
        assert ("forced",) not in seen


def test_is_stale_on_a_view_gets_the_response(make_app: AppFactory) -> None:
    app, cache = make_app()
    counter = itertools.count()
    stale = {"on": False}
    seen: list[Any] = []

    @app.route("/a")
    @cache.cached(60, is_stale=lambda response: seen.append(response) or stale["on"])
    def view() -> str:
        return str(next(counter))

    tc = app.test_client()
    assert tc.get("/a").text == "0" and tc.get("/a").text == "0"
    stale["on"] = True
    assert tc.get("/a").text == "1"
    stale["on"] = False
    assert tc.get("/a").text == "1"
    assert [r.get_data(as_text=True) for r in seen] == ["0", "0", "1"]


def test_generators_are_joined_before_caching(make_app: AppFactory) -> None:
    app, cache = make_app()
    runs = itertools.count()

    @cache.cached(key_prefix="gen-str")
    def text() -> Iterator[str]:
        yield "<p>"
        yield str(next(runs))
        yield "</p>"

    @cache.memoize()
    def raw(prefix: bytes) -> Iterator[bytes]:
        yield prefix
        yield b"!"

    @cache.cached(key_prefix="gen-int")
    def ints() -> Iterator[int]:
        yield from (1, 2)

    @app.route("/page")
    @cache.cached()
    def page() -> Iterator[str]:
        yield "hello "
        yield str(next(runs))

    with app.test_request_context():
        assert text() == "<p>0</p>" and text() == "<p>0</p>"
        assert raw(b"x") == b"x!" and raw(b"x") == b"x!"
        assert ints() == [1, 2] and ints() == [1, 2]
    tc = app.test_client()
    first = tc.get("/page")
    assert first.text == "hello 1" and tc.get("/page").text == "hello 1"
    assert "hit" in tc.get("/page").headers["Cache-Status"]


def test_memoize_keys_ignore_spelling_including_var_keyword(
        app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    calls = itertools.count()

    @cache.memoize()
    def f(a: int, b: int, c: int = 1, **kwargs: int) -> int:
        return next(calls)

    assert f(1, 2) == f(1, 2, c=1) == f(1, 2, 1) == f(a=1, b=2)
    assert f(1, 2, d=5, e=8) == f(1, 2, e=8, d=5) == f(b=2, a=1, c=1, e=8, d=5)
    assert f(1, 2, 3) != f(1, 2)
    with pytest.raises(TypeError):
        f(1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        f(1, 2, b=2)  # type: ignore[misc]  # Python refuses this call; so do we


def test_delete_memoized_classmethod_needs_the_class(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    calls = itertools.count()

    class Mock:
        @classmethod
        @cache.memoize(5)
        def big(cls, a: int, b: int) -> int:
            return next(calls)

    r, r2 = Mock.big(5, 2), Mock.big(5, 3)
    with pytest.raises(ValueError, match="class"):
        cache.delete_memoized(Mock.big, 5, 2)
    assert Mock.big(5, 2) == r
    cache.delete_memoized(Mock.big, Mock, 5, 2)
    assert Mock.big(5, 2) != r and Mock.big(5, 3) == r2


class _Anon:
    def __init__(self, value: int) -> None:
        self.value = value


def test_address_bearing_argument_runs_uncached_in_production(
        make_app: AppFactory, caplog: pytest.LogCaptureFixture) -> None:
    app, cache = make_app()
    calls = itertools.count()

    @cache.memoize()
    def describe(thing: _Anon) -> int:
        return next(calls)

    with app.app_context(), caplog.at_level(logging.WARNING, "cachekit_web"):
        assert [describe(_Anon(1)) for _ in range(3)] == [0, 1, 2]  # computed, not stored
        assert cache.client.metrics.errors["E023"] == 3
    logged = [r for r in caplog.records if "E023" in r.getMessage()]
    assert len(logged) == 1  # rate-limited
    for mode in ({"TESTING": True}, {"DEBUG": True}, {"CACHEKIT_STRICT": True}):
        app2, cache2 = make_app(**mode)

        @cache2.memoize()
        def again(thing: _Anon) -> int:
            return 1

        with app2.app_context(), pytest.raises(InvalidKeyError) as info:
            again(_Anon(1))
        assert info.value.code == "E023"


def test_memoize_with_request_argument_free_function(make_app: AppFactory) -> None:
    """A memoized function called in a request still keys by its arguments only."""
    app, cache = make_app()

    @cache.memoize()
    def echo(x: int) -> str:
        return f"{x}{request.path}"

    with app.test_request_context("/one"):
        assert echo(1) == "1/one"
    with app.test_request_context("/two"):
        assert echo(1) == "1/one"
