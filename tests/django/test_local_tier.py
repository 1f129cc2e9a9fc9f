"""cache_page(local=True) reads through the in-process tier."""

from __future__ import annotations

import threading
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
    view = shared_page_view(local=True)
    factory = RequestFactory()
    view(factory.get("/mutable/"))
    client = cache.client
    _wait_live(client)
    view(factory.get("/mutable/"))  # read from Redis into the tier
    first = view(factory.get("/mutable/"))
    before = client.metrics.totals["local_hits"]
    spoil(first)
    second = view(factory.get("/mutable/"))
    assert client.metrics.totals["local_hits"] == before + 1  # both were tier hits
    assert_pristine(second)
    assert first.content == b"shared? appended"


def shared_page_view(local: bool) -> Any:
    """A cache_page view of the b"shared?" page with X-Page: 1."""
    @cache_page(60, local=local)
    def view(request: Any) -> HttpResponse:
        response = HttpResponse(b"shared?")
        response["X-Page"] = "1"
        return response

    return view


def spoil(response: Any) -> None:
    """What middleware may do to a hit's response: headers, a cookie, more body, close."""
    response["X-Page"] = "changed"
    response["X-Added"] = "yes"
    response.set_cookie("sessionid", "alice")
    response.write(b" appended")
    response.close()


def assert_pristine(response: Any) -> None:
    """A hit of the b"shared?" page with X-Page: 1, untouched by what spoil did to another."""
    assert response.content == b"shared?" and response["X-Page"] == "1"
    assert "X-Added" not in response and not response.cookies and not response.closed
    assert response["Cache-Status"].startswith("cachekit; hit") and int(response["Age"]) >= 0


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


def _variant_view(calls: list[int]) -> Any:
    from django.utils import timezone, translation

    @cache_page(60, local=True)
    def view(request: Any) -> HttpResponse:
        calls.append(1)
        return HttpResponse(f"{translation.get_language()} "
                            f"{timezone.get_current_timezone_name()} #{len(calls)}")

    return view


def _tier_page(client: Any, serve: Any) -> bytes:
    """What ``serve()`` answers once the in-process tier holds its page (a tier hit)."""
    for _ in range(3):  # a miss, a read from Redis into the tier, then the tier
        before = client.metrics.totals["local_hits"]
        response = serve()
        if client.metrics.totals["local_hits"] == before + 1:
            assert response["Cache-Status"].startswith("cachekit; hit")
            return bytes(response.content)
    raise AssertionError("no tier hit")


def test_tier_hits_follow_the_active_language_and_time_zone(cache: Any) -> None:
    from django.utils import timezone, translation

    calls: list[int] = []
    view = _variant_view(calls)
    factory = RequestFactory()
    client = cache.client
    view(factory.get("/variant/"))
    _wait_live(client)

    def page() -> bytes:
        return _tier_page(client, lambda: view(factory.get("/variant/")))

    base = page()
    with translation.override("fr"):
        french = page()
        with timezone.override("Europe/Paris"):
            paris = page()
    with translation.override("de"):
        german = page()
    with translation.override(None):
        none = page()
    assert french.startswith(b"fr UTC #") and paris.startswith(b"fr Europe/Paris #")
    assert german.startswith(b"de UTC #") and none.startswith(b"None UTC #")
    assert len({base, french, paris, german, none}) == 5
    rendered = len(calls)
    assert page() == base  # each variant is served again from the tier, not rendered
    with translation.override("fr"), timezone.override("Europe/Paris"):
        assert page() == paris
    with translation.override("de"):
        assert page() == german

    # A thread reads its own language, whatever the thread that started it has active.
    answers: dict[str, bytes] = {}

    def in_thread(lang: str | None) -> None:
        if lang is None:  # nothing activated in this thread
            answers["None"] = page()
            return
        with translation.override(lang):
            answers[lang] = page()

    with translation.override("de"), timezone.override("Europe/Paris"):
        for lang in ("fr", None):  # one after the other: _tier_page counts the tier's hits
            worker = threading.Thread(target=in_thread, args=(lang,))
            worker.start()
            worker.join()
    assert answers == {"fr": french, "None": base}
    assert len(calls) == rendered


def test_async_tier_hits_follow_the_active_language_and_time_zone(cache: Any) -> None:
    import asyncio

    from asgiref.sync import sync_to_async
    from django.utils import timezone, translation

    calls: list[int] = []
    sync_view = _variant_view(calls)
    async_calls: list[int] = []

    @cache_page(60, local=True)
    async def async_view(request: Any) -> HttpResponse:
        async_calls.append(1)
        return HttpResponse(f"{translation.get_language()} "
                            f"{timezone.get_current_timezone_name()} #{len(async_calls)}")

    factory = RequestFactory()
    client = cache.client
    sync_view(factory.get("/variant-sync/"))
    _wait_live(client)

    async def one(lang: str, tz: str, view: Any, path: str) -> Any:
        with translation.override(lang), timezone.override(tz):
            await asyncio.sleep(0)  # the other tasks run and activate theirs
            return await view(factory.get(path))

    variants = (("fr", "Europe/Paris"), ("de", "Europe/Berlin"), ("es", "UTC"))

    async def main(view: Any, path: str) -> tuple[list[bytes], int]:
        for lang, tz in variants:  # one at a time: a miss, a read into the tier, a tier hit
            for _ in range(3):
                await one(lang, tz, view, path)
        before = client.metrics.totals["local_hits"]
        responses = await asyncio.gather(*(one(lang, tz, view, path) for lang, tz in variants))
        assert all(r["Cache-Status"].startswith("cachekit; hit") for r in responses)
        return [bytes(r.content) for r in responses], client.metrics.totals["local_hits"] - before

    # A sync view served the ASGI way: in a thread, under the request's context.
    thread_served = asyncio.run(main(sync_to_async(sync_view), "/variant-sync/"))
    native = asyncio.run(main(async_view, "/variant-async/"))
    for pages, tier_hits in (thread_served, native):
        assert tier_hits == 3  # all at once, each its own variant, from the tier
        for (lang, tz), page in zip(variants, pages, strict=True):
            assert page.startswith(f"{lang} {tz} #".encode())
