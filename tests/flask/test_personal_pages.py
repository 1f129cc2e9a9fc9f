"""Pages that depend on the visitor are never served to another visitor."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask, g, render_template_string, request, session

from cachekit_web.flask import make_template_fragment_key

from .conftest import AppFactory


def test_session_read_in_a_before_request_hook_is_not_shared(make_app: AppFactory) -> None:
    app, cache = make_app()

    @app.before_request
    def load_user() -> None:  # the flaskr-tutorial pattern
        g.user = session.get("user")

    @app.route("/")
    @cache.cached(timeout=60)
    def index() -> str:
        return f"hello {g.user or 'anonymous'}"

    alice, anonymous = app.test_client(), app.test_client()
    with alice.session_transaction() as s:
        s["user"] = "alice"
    assert alice.get("/").data == b"hello alice"
    answer = anonymous.get("/")
    assert answer.data == b"hello anonymous"
    assert "hit" not in answer.headers["Cache-Status"]


@pytest.mark.parametrize("greet", [
    lambda: "welcome back" if "user" in session else "hello",
    lambda: "welcome back" if session else "hello",
    lambda: "welcome back" if dict(session) else "hello",
    lambda: "welcome back" if list(session.items()) else "hello",
], ids=["in", "bool", "dict", "items"])
def test_any_read_of_the_session_keeps_the_page_personal(
        make_app: AppFactory, greet: Any) -> None:
    # Flask before 3.1 marks the session accessed only on get/[]/setdefault.
    app, cache = make_app()

    @app.route("/")
    @cache.cached(timeout=60)
    def index() -> str:
        return str(greet())

    alice, anonymous = app.test_client(), app.test_client()
    with alice.session_transaction() as s:
        s["user"] = "alice"
    assert alice.get("/").data == b"welcome back"
    answer = anonymous.get("/")
    assert answer.data == b"hello"
    assert "hit" not in answer.headers["Cache-Status"]


def test_the_session_is_saved_as_its_own_class(make_app: AppFactory) -> None:
    from flask.sessions import SecureCookieSessionInterface

    saved: list[type] = []

    class Recording(SecureCookieSessionInterface):
        def save_session(self, app: Flask, session: Any, response: Any) -> None:
            saved.append(type(session))  # what a server-side store would pickle
            super().save_session(app, session, response)

    app, cache = make_app()
    app.session_interface = Recording()

    @app.route("/")
    @cache.cached(timeout=60)
    def index() -> str:
        return "welcome back" if "user" in session else "hello"

    client = app.test_client()
    with client.session_transaction() as s:
        s["user"] = "alice"
    assert client.get("/").data == b"welcome back"
    assert saved[-1] is app.session_interface.session_class


def test_authorized_requests_are_neither_served_nor_stored(make_app: AppFactory) -> None:
    app, cache = make_app()

    @app.route("/api")
    @cache.cached(timeout=60)
    def api() -> str:
        return f"data for {request.headers.get('Authorization', 'nobody')}"

    client = app.test_client()
    first = client.get("/api", headers={"Authorization": "Bearer alice-token"})
    assert first.data == b"data for Bearer alice-token"
    assert "fwd=request" in first.headers["Cache-Status"]
    assert client.get("/api").data == b"data for nobody"
    again = client.get("/api")
    assert again.data == b"data for nobody" and "hit" in again.headers["Cache-Status"]
    # The anonymous copy is not served to an authorized request either.
    other = client.get("/api", headers={"Authorization": "Bearer bob-token"})
    assert other.data == b"data for Bearer bob-token"


def test_plain_pages_are_still_cached(make_app: AppFactory) -> None:
    app, cache = make_app()
    app_: Flask = app

    @app_.route("/plain")
    @cache.cached(timeout=60)
    def plain() -> str:
        return "same for everyone"

    client = app_.test_client()
    client.get("/plain")
    assert "hit" in client.get("/plain").headers["Cache-Status"]


@pytest.mark.parametrize(("secret_key", "renders_expected"), [("k3y", 1), (None, 2)])
def test_fragments_are_cached_only_when_values_are_authenticated(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture, secret_key: str | None,
    renders_expected: int,
) -> None:
    # Cached fragments are replayed as safe HTML, so unauthenticated frames are never trusted.
    with caplog.at_level(logging.WARNING, logger="cachekit_web"):
        app, cache = make_app(SECRET_KEY=secret_key)
    warned = any("neither signed nor encrypted" in r.getMessage() for r in caplog.records)
    assert warned is (secret_key is None)
    renders: list[int] = []

    @app.route("/frag")
    def frag() -> str:
        return render_template_string(
            "{% cache 60, 'box' %}{{ bump() }}{% endcache %}", bump=lambda: renders.append(1))

    client = app.test_client()
    client.get("/frag")
    client.get("/frag")
    assert len(renders) == renders_expected
    with app.app_context():
        stored = cache.get(make_template_fragment_key("box"))
    assert (stored is None) is (secret_key is None)


def test_a_cookie_read_in_a_url_value_preprocessor_is_recorded(make_app: Any) -> None:
    """The app's URL value preprocessors run before its before_request hooks; a cookie
    read there makes the page personal as one read in a hook does."""
    app, cache = make_app()

    @app.url_value_preprocessor
    def theme(endpoint: str | None, values: dict[str, Any] | None) -> None:
        g.theme = request.cookies.get("theme", "light")

    @app.route("/p")
    @cache.cached(60)
    def page() -> str:
        return "theme " + g.theme

    dark, light = app.test_client(), app.test_client()
    dark.set_cookie("theme", "dark")
    first = dark.get("/p")
    assert first.data == b"theme dark" and "detail=cookie" in first.headers["Cache-Status"]
    assert light.get("/p").data == b"theme light"
