"""cache_page(local=True) reads through the in-process tier."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from cachekit_web.core.local import tier as local_mod
from cachekit_web.django import cache_page


@pytest.fixture(autouse=True)
def _fresh_tiers() -> Iterator[None]:
    yield
    local_mod.close_all()


def test_cache_page_local_hits_from_memory(cache: Any) -> None:
    calls: list[int] = []

    @cache_page(60, local=True)
    def view(request: Any) -> HttpResponse:
        calls.append(1)
        return HttpResponse(f"page #{len(calls)}")

    factory = RequestFactory()
    first = view(factory.get("/local/"))
    client = cache.client
    end = time.monotonic() + 3
    while not (getattr(client, "_local", None) and client._local.live) and \
            time.monotonic() < end:
        time.sleep(0.005)
    for _ in range(4):  # the first one fills the tier once its lease is live
        again = view(factory.get("/local/"))
        assert again.content == first.content
        assert again["Cache-Status"].startswith("cachekit; hit")
    assert calls == [1]
    assert client.metrics.totals["local_hits"] >= 3


def _wait_live(client: Any) -> None:
    end = time.monotonic() + 3
    while not (getattr(client, "_local", None) and client._local.live) and \
            time.monotonic() < end:
        time.sleep(0.005)


def test_a_tier_hit_counts_one_hit_and_one_local_hit(cache: Any) -> None:
    @cache_page(60, local=True)
    def view(request: Any) -> HttpResponse:
        return HttpResponse("counted")

    factory = RequestFactory()
    view(factory.get("/counted/"))
    client = cache.client
    _wait_live(client)
    view(factory.get("/counted/"))  # read from Redis into the tier
    totals = client.metrics.totals
    before = (totals["hits"], totals["local_hits"], totals["misses"], totals["local_misses"])
    response = view(factory.get("/counted/"))
    assert response.content == b"counted" and response["Cache-Status"].startswith("cachekit; hit")
    after = (totals["hits"], totals["local_hits"], totals["misses"], totals["local_misses"])
    assert after == (before[0] + 1, before[1] + 1, before[2], before[3])


def test_a_page_past_its_fresh_time_is_no_tier_hit(cache: Any) -> None:
    calls: list[int] = []

    @cache_page(1, stale_ttl=30, local=True)
    def view(request: Any) -> HttpResponse:
        calls.append(1)
        return HttpResponse(f"v{len(calls)}")

    factory = RequestFactory()
    view(factory.get("/stale-tier/"))
    _wait_live(cache.client)
    view(factory.get("/stale-tier/"))
    hit = view(factory.get("/stale-tier/"))  # from the tier
    assert hit["Cache-Status"].startswith("cachekit; hit")
    rendered = len(calls)
    time.sleep(1.2)  # past its fresh time: the core's stale logic decides, the view re-runs
    again = view(factory.get("/stale-tier/"))
    assert not again["Cache-Status"].startswith("cachekit; hit")
    assert len(calls) == rendered + 1 and again.content == f"v{len(calls)}".encode()


def test_an_async_view_hits_the_tier(cache: Any) -> None:
    import asyncio

    calls: list[int] = []

    @cache_page(60, local=True)
    async def view(request: Any) -> HttpResponse:
        calls.append(1)
        return HttpResponse("async page")

    factory = RequestFactory()
    asyncio.run(view(factory.get("/async-tier/")))
    client = cache.client
    _wait_live(client)
    asyncio.run(view(factory.get("/async-tier/")))  # into the tier
    before = client.metrics.totals["local_hits"]
    response = asyncio.run(view(factory.get("/async-tier/")))
    assert response.content == b"async page"
    assert response["Cache-Status"].startswith("cachekit; hit")
    assert client.metrics.totals["local_hits"] == before + 1 and calls == [1]


def test_tier_hits_share_no_mutable_state(cache: Any) -> None:
    """Each tier hit is its own response (built from a prepared copy of the page): what
    middleware does to one (headers, cookies, closing) never shows in the next."""
    @cache_page(60, local=True)
    def view(request: Any) -> HttpResponse:
        response = HttpResponse(b"shared?")
        response["X-Page"] = "1"
        return response

    factory = RequestFactory()
    view(factory.get("/mutable/"))
    client = cache.client
    _wait_live(client)
    view(factory.get("/mutable/"))  # read from Redis into the tier
    first = view(factory.get("/mutable/"))
    before = client.metrics.totals["local_hits"]
    first["X-Page"] = "changed"
    first["X-Added"] = "yes"
    first.set_cookie("sessionid", "alice")
    first.write(b" appended")
    first.close()
    second = view(factory.get("/mutable/"))
    assert client.metrics.totals["local_hits"] == before + 1  # both were tier hits
    assert second.content == b"shared?" and second["X-Page"] == "1"
    assert "X-Added" not in second and not second.cookies and not second.closed
    assert second["Cache-Status"].startswith("cachekit; hit") and int(second["Age"]) >= 0
    assert first.content == b"shared? appended"


def test_a_django_with_other_response_fields_uses_the_constructor(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from cachekit_web.core.web import StoredPage
    from cachekit_web.django import views

    page = StoredPage(200, (("Content-Type", "text/plain"), ("X-A", "1")), b"body", 0.0)
    assert views._Prepared.of(page) is not None
    monkeypatch.setattr(views, "_RESPONSE_FIELDS", views._RESPONSE_FIELDS | {"new_field"})
    assert views._Prepared.of(page) is None
    views._PREPARED.clear()
    response: Any = views._from_page(page, "cachekit; hit", tier=True)
    assert response.content == b"body" and response["X-A"] == "1"
    assert response["Content-Type"] == "text/plain" and response["Cache-Status"] == "cachekit; hit"
