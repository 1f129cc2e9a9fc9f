"""@cache.cached / @cache.memoize with local=True read through the in-process tier."""

from __future__ import annotations

import time
from collections.abc import Iterator

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
