"""Pages shared between visitors: one visitor's variant is never served to another.

Query strings with repeated names, cookies read by the view, and fragment vary-on
values that only differ in where an underscore sits.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.template import Context, Template
from django.test import Client
from flask import render_template_string, request

from cachekit_web.core import web
from tests.flask.conftest import AppFactory

# -- item 14: the order of repeated query names is part of the page ------------------------

EVIL_FIRST = "/go?next=https://evil.example&next=/home"
HOME_FIRST = "/go?next=/home&next=https://evil.example"


def test_normalized_query_keeps_the_order_of_repeated_names() -> None:
    assert web.normalized_query("next=a&next=b") != web.normalized_query("next=b&next=a")
    assert web.normalized_query("b=2&a=1&b=3") == web.normalized_query("a=1&b=2&b=3")


def test_flask_repeated_query_names_in_another_order_are_another_page(
        make_app: AppFactory) -> None:
    app, cache_ = make_app()

    @app.route("/go")
    @cache_.cached(timeout=60)
    def go() -> str:
        return f"next={request.args.get('next')}"

    client = app.test_client()
    assert client.get(EVIL_FIRST).data == b"next=https://evil.example"
    answer = client.get(HOME_FIRST)
    assert answer.data == b"next=/home"
    assert "hit" not in answer.headers["Cache-Status"]
    # Names in another order still share one entry.
    client.get("/go?a=1&next=/x")
    assert "hit" in client.get("/go?next=/x&a=1").headers["Cache-Status"]


def test_django_repeated_query_names_in_another_order_are_another_page(cache: Any) -> None:
    first = Client().get("/t/next/?next=https://evil.example&next=/home")
    assert first.content == b"next=/home"  # Django's QueryDict.get returns the last value
    answer = Client().get("/t/next/?next=/home&next=https://evil.example")
    assert answer.content == b"next=https://evil.example"
    assert "hit" not in answer["Cache-Status"]


# -- item 15: cookies read by the view ------------------------------------------------------

def test_flask_view_reading_a_cookie_is_not_shared(make_app: AppFactory) -> None:
    app, cache_ = make_app()

    @app.route("/me")
    @cache_.cached(timeout=60)
    def me() -> str:
        return f"token={request.cookies.get('token', '')}"

    alice, bob = app.test_client(), app.test_client()
    alice.set_cookie("token", "ALICE")
    first = alice.get("/me")
    assert first.data == b"token=ALICE"
    assert "detail=cookie" in first.headers["Cache-Status"]
    assert bob.get("/me").data == b"token="


def test_flask_cookie_read_in_a_before_request_hook_is_not_shared(make_app: AppFactory) -> None:
    app, cache_ = make_app()

    @app.before_request
    def who() -> None:
        request.environ["who"] = request.cookies.get("who", "nobody")

    @app.route("/hi")
    @cache_.cached(timeout=60)
    def hi() -> str:
        return f"hi {request.environ['who']}"

    alice, bob = app.test_client(), app.test_client()
    alice.set_cookie("who", "alice")
    assert alice.get("/hi").data == b"hi alice"
    assert bob.get("/hi").data == b"hi nobody"


def test_flask_declared_cookies_are_part_of_the_key(make_app: AppFactory) -> None:
    app, cache_ = make_app()
    renders: list[str] = []

    @app.route("/themed")
    @cache_.cached(timeout=60, vary_on_cookies=("theme",))
    def themed() -> str:
        theme = request.cookies.get("theme", "light")
        renders.append(theme)
        return f"theme={theme}"

    dark, dark2, light = app.test_client(), app.test_client(), app.test_client()
    dark.set_cookie("theme", "dark")
    dark2.set_cookie("theme", "dark")
    dark2.set_cookie("token", "other-cookies-do-not-matter")
    light.set_cookie("theme", "light")
    assert dark.get("/themed").data == b"theme=dark"
    again = dark2.get("/themed")
    assert again.data == b"theme=dark" and "hit" in again.headers["Cache-Status"]
    assert light.get("/themed").data == b"theme=light"
    assert renders == ["dark", "light"]


def test_django_view_reading_a_cookie_is_not_shared(cache: Any) -> None:
    alice = Client()
    alice.cookies["token"] = "ALICE"
    first = alice.get("/t/me/")
    assert first.content == b"token=ALICE"
    assert "detail=cookie" in first["Cache-Status"]
    assert Client().get("/t/me/").content == b"token="


def test_django_declared_cookies_are_part_of_the_key(cache: Any) -> None:
    from tests.django.urls import CALLS

    before = CALLS.get("themed", 0)
    dark, light = Client(), Client()
    dark.cookies["theme"] = "dark"
    light.cookies["theme"] = "light"
    assert dark.get("/t/themed/").content == b"theme=dark"
    again = dark.get("/t/themed/")
    assert again.content == b"theme=dark" and "hit" in again["Cache-Status"]
    assert light.get("/t/themed/").content == b"theme=light"
    assert CALLS["themed"] == before + 2


# -- item 16: fragment vary-on values are encoded unambiguously ---------------------------

COLLIDING = [(("ann_lee", "x"), ("ann", "lee_x")), (("a\x00", "b"), ("a", "\x00b")),
             (("1",), (1,))]


@pytest.mark.parametrize(("first", "second"), COLLIDING[:2])
def test_fragment_keys_tell_vary_values_apart(first: tuple[Any, ...],
                                              second: tuple[Any, ...]) -> None:
    from cachekit_web.flask import make_template_fragment_key

    assert web.fragment_cache_key("card", first) != web.fragment_cache_key("card", second)
    assert make_template_fragment_key("card", first) != make_template_fragment_key("card", second)


@pytest.mark.parametrize(("first", "second"), COLLIDING[:2])
def test_flask_fragments_with_shifted_underscores_are_not_shared(
        make_app: AppFactory, first: tuple[str, str], second: tuple[str, str]) -> None:
    app, _ = make_app()
    source = "{% cache 60, 'card', a, b %}{{ a }}|{{ b }}{% endcache %}"
    with app.test_request_context("/"):
        assert render_template_string(source, a=first[0], b=first[1]) == "|".join(first)
        assert render_template_string(source, a=second[0], b=second[1]) == "|".join(second)


@pytest.mark.parametrize(("first", "second"), COLLIDING[:2])
def test_django_fragments_with_shifted_separators_are_not_shared(
        cache: Any, first: tuple[str, str], second: tuple[str, str]) -> None:
    template = Template("{% load cachekit %}{% cache 60 card a b %}{{ a }}|{{ b }}{% endcache %}")
    assert template.render(Context({"a": first[0], "b": first[1]})) == "|".join(first)
    assert template.render(Context({"a": second[0], "b": second[1]})) == "|".join(second)
