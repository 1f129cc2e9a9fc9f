"""The view-hit fast path: keys from the environ equal the URL-object keys; one response."""

from __future__ import annotations

import re
from typing import Any

import pytest

from cachekit_web.flask.request import base_url


@pytest.mark.parametrize("path", ["/page", "/a/b.c~d-e_f/", "/caf%C3%A9", "/sp%20ace", "/"])
@pytest.mark.parametrize("root", ["", "/app", "/app/"])
def test_base_url_matches_werkzeug(make_app: Any, path: str, root: str) -> None:
    app, _ = make_app()
    for host in ("example.org", "EXAMPLE.org:8080", "xn--caf-dma.example"):
        with app.test_request_context(path, base_url=f"https://{host}{root}"):
            from flask import request

            assert base_url() == request.base_url


def test_hit_is_one_response_with_age_and_status(make_app: Any) -> None:
    app, cache = make_app()
    calls: list[int] = []

    @app.route("/p")
    @cache.cached(60)
    def page() -> Any:
        calls.append(1)
        return "body", 200, {"X-Custom": "1"}

    client = app.test_client()
    first = client.get("/p")
    assert first.headers["Cache-Status"].startswith("cachekit; fwd=miss")
    for query in ("", "?b=2&a=1"):
        client.get("/p" + query)
        hit = client.get("/p" + query)
        assert hit.data == b"body" and hit.headers["X-Custom"] == "1"
        assert hit.headers["Cache-Status"].startswith("cachekit; hit")
        assert hit.headers["Age"].isdigit()
        assert hit.headers.getlist("Age") == [hit.headers["Age"]]
    assert len(calls) == 2  # once per distinct query string
    assert client.get("/p?a=1&b=2").headers["Cache-Status"].startswith("cachekit; hit")
    auth = client.get("/p", headers={"Authorization": "Bearer x"})
    assert "bypass" in auth.headers["Cache-Status"] or "authorization" in \
        auth.headers["Cache-Status"]


def test_cookie_read_without_a_cookie_header_is_still_recorded(make_app: Any) -> None:
    app, cache = make_app()

    @app.route("/me")
    @cache.cached(60)
    def me() -> str:
        from flask import request

        return f"token={request.cookies.get('token', '')}"

    bob, alice = app.test_client(), app.test_client()
    first = bob.get("/me")  # no Cookie header at all
    assert first.data == b"token=" and "detail=cookie" in first.headers["Cache-Status"]
    alice.set_cookie("token", "ALICE")
    assert alice.get("/me").data == b"token=ALICE"


def test_remembered_keys_keep_every_request_apart(make_app: Any) -> None:
    """Keys are remembered per request facts: host, root, path, query, method and the
    declared cookies each still select their own page."""
    app, cache = make_app()
    renders: list[str] = []

    @app.route("/v/<name>")
    @cache.cached(60, vary_on_cookies=("theme",))
    def view(name: str) -> str:
        from flask import request

        seen = (f"{request.host}|{request.root_path}|{name}|"
                f"{request.query_string.decode()}|{request.cookies.get('theme', '')}")
        renders.append(seen)
        return seen

    cases = [(f"http://{host}{root}", path, theme)
             for host in ("a.example", "b.example:8080")
             for root in ("", "/app")
             for path in ("/v/x", "/v/y", "/v/x?q=1", "/v/x?q=2")
             for theme in ("", "dark")]
    for round_ in range(2):
        for base, path, theme in cases:
            client = app.test_client()
            name, _, query = path[len("/v/"):].partition("?")
            host = base.split("://")[1].split("/")[0]
            root = base.split(host)[1]
            if theme:
                client.set_cookie("theme", theme, domain=host.split(":")[0])
            got = client.get(path, base_url=base)
            assert got.data.decode() == f"{host}|{root}|{name}|{query}|{theme}"
            assert got.headers["Cache-Status"].startswith(
                "cachekit; hit" if round_ else "cachekit; fwd=miss")
            if round_:  # HEAD shares the GET entry
                head = client.head(path, base_url=base)
                assert head.headers["Cache-Status"].startswith("cachekit; hit")
                assert head.data == b""
    assert len(renders) == len(cases)


def test_hit_response_is_a_normal_response_for_after_request_hooks(make_app: Any) -> None:
    app, cache = make_app()

    @app.route("/p")
    @cache.cached(60)
    def page() -> str:
        return "body"

    @app.after_request
    def stamp(response: Any) -> Any:
        response.set_data(response.get_data() + b"+hook")
        response.headers["X-Hooked"] = "1"
        return response

    client = app.test_client()
    client.get("/p")
    hit = client.get("/p")
    assert hit.headers["Cache-Status"].startswith("cachekit; hit")
    assert hit.data == b"body+hook" and hit.headers["X-Hooked"] == "1"
    assert hit.headers.getlist("Content-Length") == [str(len(b"body+hook"))]


def test_tier_hits_are_counted_and_never_outlive_a_delete(make_app: Any) -> None:
    import time

    from cachekit_web.core.local import tier as local_mod

    app, cache = make_app(CACHEKIT_LOCAL_CACHE=True)
    renders: list[int] = []
    asked: list[int] = []

    @app.route("/p")
    @cache.cached(60)
    def page() -> str:
        renders.append(1)
        return f"page {len(renders)}"

    @app.route("/s")
    @cache.cached(60, is_stale=lambda value: bool(asked.append(1)))
    def stale_checked() -> str:
        return "s"

    try:
        client = app.test_client()
        client.get("/p"), client.get("/s")
        with app.app_context():
            core = cache.client
        end = time.monotonic() + 3
        while not (core._local and core._local.live) and time.monotonic() < end:
            time.sleep(0.005)
        client.get("/p"), client.get("/s")  # now kept in memory
        before = dict(core.metrics.totals)
        for _ in range(5):
            hit = client.get("/p")
            assert hit.data == b"page 1" and re.fullmatch(
                r"cachekit; hit; ttl=\d+", hit.headers["Cache-Status"])
        assert core.metrics.totals["local_hits"] - before.get("local_hits", 0) == 5
        assert core.metrics.totals["hits"] - before.get("hits", 0) == 5
        assert core.metrics.totals["misses"] == before.get("misses", 0)
        asked.clear()
        client.get("/s")
        assert asked == [1]  # is_stale is still asked on a hit from memory
        with app.test_request_context("/p"):
            assert cache.delete_cached(page)
        after = client.get("/p")
        assert after.data == b"page 2" and "fwd=miss" in after.headers["Cache-Status"]
    finally:
        local_mod.close_all()


def test_served_headers_never_keep_a_large_page_alive() -> None:
    """A page over 32 KiB read from Redis can be a new object on every read (the codec
    reuses a page only while frame and payload fit in 64 KiB): remembering its headers
    would keep each one alive, up to the table's size, for nothing. Smaller pages are
    remembered and served alike."""
    from cachekit_web.core import web
    from cachekit_web.core.data import codec
    from cachekit_web.core.web import StoredPage
    from cachekit_web.flask import responses

    responses._prepared.clear()
    small = StoredPage(200, (("Content-Type", "text/plain"),), b"x", 0.0)
    assert responses._served_headers(small) == responses._served_headers(small)
    assert id(small) in responses._prepared
    size = web.MEMO_BODY_MAX + 1
    big = StoredPage(200, (("Content-Type", "text/plain"),), b"x" * size, 0.0)
    headers = responses._served_headers(big)
    assert ("Content-Length", str(size)) in headers
    assert headers == responses._served_headers(big)
    assert id(big) not in responses._prepared
    assert 2 * web.MEMO_BODY_MAX <= codec.REUSE_MAX_BYTES  # kept ones are reused
    assert responses._PREPARED_MAX * web.MEMO_BODY_MAX <= 2 * 1024 * 1024
