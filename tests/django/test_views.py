"""cache_page: what is cached, under which key, Cache-Status / Age headers, stampedes, outages."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from django.test import Client

from cachekit_web.django import invalidate_page, page_cache_key
from cachekit_web.embedded import EmbeddedRedis

from .conftest import cache_conf
from .urls import CALLS


def calls(name: str) -> int:
    return CALLS.get(name, 0)


def test_miss_then_hit_with_cache_status_age_and_max_age(cache: Any) -> None:
    client = Client()
    before = calls("plain")
    first = client.get("/t/plain/?a=1")
    assert first.status_code == 200
    assert first["Cache-Status"] == "cachekit; fwd=miss; stored"
    assert first["Cache-Control"] == "max-age=60"
    assert "Expires" in first
    time.sleep(1.1)
    second = client.get("/t/plain/?a=1")
    assert second.content == first.content
    assert calls("plain") == before + 1
    assert second["Cache-Status"].startswith("cachekit; hit; ttl=")
    assert int(second["Age"]) >= 1
    assert second["Cache-Control"] == "max-age=60"


def test_query_string_is_part_of_the_key(cache: Any) -> None:
    client = Client()
    a = client.get("/t/plain/?page=1")
    b = client.get("/t/plain/?page=2")
    assert a.content != b.content
    assert b["Cache-Status"].startswith("cachekit; fwd=miss")
    assert client.get("/t/plain/?page=1").content == a.content


def test_head_is_served_from_the_get_entry_and_never_fills_it(cache: Any) -> None:
    client = Client()
    head = client.head("/t/plain/?h=1")
    assert head["Cache-Status"] == "cachekit; fwd=miss; detail=head"
    assert client.get("/t/plain/?h=1")["Cache-Status"].startswith("cachekit; fwd=miss")
    head = client.head("/t/plain/?h=1")
    assert head["Cache-Status"].startswith("cachekit; hit")


def test_post_is_never_cached(cache: Any) -> None:
    client = Client()
    before = calls("plain")
    for _ in range(2):
        response = client.post("/t/plain/")
        assert response["Cache-Status"] == "cachekit; fwd=method"
    assert calls("plain") == before + 2


def test_non_200_cookies_and_private_responses_are_not_stored(cache: Any) -> None:
    client = Client()
    for url, name, detail in (("/t/status/404/", "status", "status"),
                              ("/t/cookie/", "cookie", "set-cookie"),
                              ("/t/private/", "private", "cache-control"),
                              ("/t/undeclared-vary/", "undeclared_vary", "vary")):
        before = calls(name)
        first = client.get(url)
        second = client.get(url)
        assert calls(name) == before + 2, url
        assert second["Cache-Status"] == f"cachekit; fwd=miss; detail={detail}"
        assert first.content != second.content


def test_vary_on_headers_are_part_of_the_key(cache: Any) -> None:
    client = Client()
    fr = client.get("/t/varying/", HTTP_ACCEPT_LANGUAGE="fr")
    de = client.get("/t/varying/", HTTP_ACCEPT_LANGUAGE="de")
    assert fr.content.startswith(b"fr ") and de.content.startswith(b"de ")
    assert client.get("/t/varying/", HTTP_ACCEPT_LANGUAGE="fr").content == fr.content
    assert "Accept-Language" in fr["Vary"]


def test_concurrent_misses_render_once(cache: Any) -> None:
    before = calls("slow")
    results: list[Any] = []

    def hit() -> None:
        results.append(Client().get("/t/slow/"))

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(results) == 8
    assert all(r.status_code == 200 for r in results)
    assert calls("slow") == before + 1
    assert len({r.content for r in results}) == 1
    statuses = sorted(r["Cache-Status"] for r in results)
    assert statuses.count("cachekit; fwd=miss; stored") == 1


def test_stale_while_revalidate_serves_the_stale_copy(cache: Any) -> None:
    client = Client()
    first = client.get("/t/stale/")
    time.sleep(1.2)  # fresh for 1 s, then stale for 30 s
    key = page_cache_key(_request("/t/stale/"))
    entry = cache.client.get_entry(cache.make_and_validate_key(key))
    assert entry is not None and entry.fresh_until is not None
    # While another request holds the recompute lock, a stale copy is served at once.
    lock = cache.client.backend.lock(cache.client._lock_name(
        cache.client.full_key(cache.make_and_validate_key(key))), 10)
    assert lock.acquire(True, 1)
    try:
        response = client.get("/t/stale/")
    finally:
        lock.release()
    assert response["Cache-Status"] == "cachekit; fwd=stale"
    assert response.content == first.content
    refreshed = client.get("/t/stale/")
    assert refreshed["Cache-Status"] == "cachekit; fwd=miss; stored"
    assert refreshed.content != first.content


def _request(path: str, **extra: Any) -> Any:
    from django.test import RequestFactory

    return RequestFactory().get(path, **extra)


def test_invalidate_page_by_request_or_url(cache: Any) -> None:
    client = Client()
    client.get("/t/plain/?inv=1")
    assert client.get("/t/plain/?inv=1")["Cache-Status"].startswith("cachekit; hit")
    assert invalidate_page("http://testserver/t/plain/?inv=1") is True
    assert client.get("/t/plain/?inv=1")["Cache-Status"].startswith("cachekit; fwd=miss")
    assert invalidate_page(_request("/t/plain/?inv=1")) is True
    assert invalidate_page(_request("/t/plain/?inv=1")) is False
    client.get("/t/varying/", HTTP_ACCEPT_LANGUAGE="fr")
    assert invalidate_page("http://testserver/t/varying/", headers={"Accept-Language": "fr"},
                           vary_on_headers=("Accept-Language",)) is True


def test_async_view_is_cached(cache: Any) -> None:
    import asyncio

    from django.test import AsyncClient

    async def run() -> tuple[Any, Any]:
        client = AsyncClient()
        return await client.get("/t/async/"), await client.get("/t/async/")

    before = calls("async")
    first, second = asyncio.run(run())
    assert first["Cache-Status"] == "cachekit; fwd=miss; stored"
    assert second["Cache-Status"].startswith("cachekit; hit")
    assert first.content == second.content
    assert calls("async") == before + 1


def test_pages_answer_200_with_bypass_when_redis_is_down(
        use_caches: Callable[..., Any], own_redis: EmbeddedRedis, namespace: str) -> None:
    use_caches({"default": cache_conf(own_redis.url, namespace, SOCKET_TIMEOUT=0.2,
                                      SOCKET_CONNECT_TIMEOUT=0.2,
                                      CIRCUIT_BREAKER_FAILURE_THRESHOLD=2)})
    client = Client()
    assert client.get("/t/plain/?down=1")["Cache-Status"].startswith("cachekit; fwd=miss")
    own_redis.kill()
    start = time.monotonic()
    for _ in range(5):
        response = client.get("/t/plain/?down=1")
        assert response.status_code == 200
    assert response["Cache-Status"] == "cachekit; fwd=bypass; detail=unavailable"
    assert time.monotonic() - start < 5


def test_active_language_is_part_of_the_key(cache: Any) -> None:
    from django.utils import translation

    client = Client()
    with translation.override("fr"):
        fr = client.get("/t/plain/?lang=1")
    with translation.override("de"):
        de = client.get("/t/plain/?lang=1")
        assert de["Cache-Status"].startswith("cachekit; fwd=miss")
        assert client.get("/t/plain/?lang=1").content == de.content
        assert invalidate_page("http://testserver/t/plain/?lang=1") is True
    assert fr.content != de.content
    with translation.override("fr"):
        assert client.get("/t/plain/?lang=1")["Cache-Status"].startswith("cachekit; hit")
