"""@cache.cached / @cache.memoize with local=True read through the in-process tier."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cachekit_web.core.local import tier as local_mod

from .conftest import AppFactory


@pytest.fixture(autouse=True)
def _fresh_tiers() -> Iterator[None]:
    yield
    local_mod.close_all()


def _until_live(client: object) -> None:
    end = time.monotonic() + 3
    while time.monotonic() < end:
        tier = vars(client).get("_local")
        if tier is not None and tier.live:
            return
        time.sleep(0.005)


def test_cached_view_and_memoize_hit_from_memory(make_app: AppFactory) -> None:
    app, cache = make_app()
    calls: list[int] = []

    @app.get("/p")
    @cache.cached(timeout=60, local=True)
    def page() -> str:
        calls.append(1)
        return f"page #{len(calls)}"

    @cache.memoize(timeout=60, local=True)
    def square(n: int) -> int:
        calls.append(n)
        return n * n

    web = app.test_client()
    first = web.get("/p").get_data(as_text=True)
    with app.app_context():
        client = cache._state().client
    _until_live(client)
    for _ in range(3):
        assert web.get("/p").get_data(as_text=True) == first
    with app.app_context():
        assert square(4) == 16
        _until_live(client)
        assert square(4) == 16 and square(4) == 16
    assert calls == [1, 4]
    assert client.metrics.totals["local_hits"] >= 3


def test_local_false_opts_out_when_the_cache_opts_in(make_app: AppFactory) -> None:
    app, cache = make_app(CACHEKIT_LOCAL_CACHE=True)

    @app.get("/p")
    @cache.cached(timeout=60, local=False)
    def page() -> str:
        return "x"

    web = app.test_client()
    web.get("/p")
    web.get("/p")
    with app.app_context():
        client = cache._state().client
    assert client.metrics.totals["local_hits"] == client.metrics.totals["local_misses"] == 0


def _warm(client: object, get: Callable[[], object]) -> None:
    """Fill, wait for the tier's lease, fill again: later hits come from memory."""
    get()
    _until_live(client)
    get()


def test_tier_hits_keep_hooks_bypass_unless_and_custom_keys(make_app: AppFactory) -> None:
    """A hit served from the tier before the call is planned still runs the app's hooks,
    honours Authorization and methods, asks ``unless`` once per request, and keys by a
    make_cache_key set on the view after decorating it."""
    from flask import request

    app, cache = make_app(CACHEKIT_LOCAL_CACHE=True)
    asked: list[str] = []

    @app.before_request
    def gate() -> tuple[str, int] | None:
        return ("denied", 403) if request.headers.get("X-Deny") else None

    @app.route("/p", methods=["GET", "POST"])
    @cache.cached(60)
    def page() -> str:
        return "page"

    @app.route("/u")
    @cache.cached(60, unless=lambda: bool(asked.append(request.path)))
    def unless_page() -> str:
        return "u"

    @app.route("/k")
    @cache.cached(60)
    def keyed() -> str:
        return "variant " + request.headers.get("X-Variant", "-")

    http = app.test_client()
    with app.app_context():
        core = cache.client
    _warm(core, lambda: http.get("/p"))
    for path in ("/u", "/k", "/u", "/k"):  # /k's page by URL is in the tier: not served
        http.get(path)                      # once the view keys by header instead
    keyed.make_cache_key = lambda *a, **k: "k:" + request.headers.get("X-Variant", "-")
    for variant in ("b", "b", "-", "-"):
        http.get("/k", headers={"X-Variant": variant})
    before = core.metrics.totals["local_hits"]

    hit = http.get("/p")
    assert re.fullmatch(r"cachekit; hit; ttl=\d+", hit.headers["Cache-Status"])
    assert hit.headers["Age"].isdigit() and hit.data == b"page"
    assert http.get("/p", headers={"X-Deny": "1"}).status_code == 403
    auth = http.get("/p", headers={"Authorization": "Bearer x"})
    assert "authorization" in auth.headers["Cache-Status"]
    assert "fwd=method" in http.post("/p").headers["Cache-Status"]
    asked.clear()
    assert http.get("/u").headers["Cache-Status"].startswith("cachekit; hit")
    assert asked == ["/u"]
    assert http.get("/k", headers={"X-Variant": "b"}).data == b"variant b"
    assert http.get("/k", headers={"X-Variant": "-"}).data == b"variant -"
    assert core.metrics.totals["local_hits"] - before == 4  # /p, /u, /k twice


def test_a_stored_page_is_served_as_it_was_captured(make_app: AppFactory) -> None:
    """The served headers of a page are worked out once and shared by its hits: each hit
    still gets its own response, headers and Age (a hook changing one changes no other)."""
    from flask import request

    app, cache = make_app(CACHEKIT_LOCAL_CACHE=True)

    @app.route("/p")
    @cache.cached(60)
    def page() -> tuple[str, int, dict[str, str]]:
        return "page", 200, {"X-Kept": "1", "Content-Type": "text/plain; charset=utf-8"}

    @app.after_request
    def mark(response: Any) -> Any:
        if request.args.get("mark"):
            response.headers["X-Marked"] = "1"
            response.headers["X-Kept"] = "changed"
        return response

    http = app.test_client()
    with app.app_context():
        core = cache.client
    _warm(core, lambda: http.get("/p"))
    marked = http.get("/p?mark=1")  # a miss: another key, then
    marked = http.get("/p?mark=1")
    plain = http.get("/p")
    assert marked.headers["X-Marked"] == "1" and marked.headers["X-Kept"] == "changed"
    assert "X-Marked" not in plain.headers and plain.headers["X-Kept"] == "1"
    assert plain.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert plain.headers.getlist("Content-Length") == ["4"]
    assert plain.headers["Cache-Status"].startswith("cachekit; hit")
