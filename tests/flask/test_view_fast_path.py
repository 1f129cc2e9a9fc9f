"""The view-hit fast path: keys from the environ equal the URL-object keys; one response."""

from __future__ import annotations

from typing import Any

import pytest

from cachekit_web.flask.extension import _base_url


@pytest.mark.parametrize("path", ["/page", "/a/b.c~d-e_f/", "/caf%C3%A9", "/sp%20ace", "/"])
@pytest.mark.parametrize("root", ["", "/app", "/app/"])
def test_base_url_matches_werkzeug(make_app: Any, path: str, root: str) -> None:
    app, _ = make_app()
    for host in ("example.org", "EXAMPLE.org:8080", "xn--caf-dma.example"):
        with app.test_request_context(path, base_url=f"https://{host}{root}"):
            from flask import request

            assert _base_url() == request.base_url


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
