"""touch() moves a stale-while-revalidate entry's fresh-until time, not only its Redis TTL."""

from __future__ import annotations

import asyncio
import time

import pytest

from cachekit_web import AsyncCacheClient

from .conftest import KEY_A, MakeClient


@pytest.mark.parametrize("mode", [{}, {"MASTER_KEY": KEY_A}])
def test_touch_keeps_a_swr_entry_fresh(make_client: MakeClient, mode: dict[str, str]) -> None:
    c = make_client(**mode)
    c.set("page", "v1", 0.3, stale_ttl=5)
    assert c.touch("page", 2)
    time.sleep(0.5)  # past the original fresh period
    assert c.get("page") == "v1"
    assert c.fetch("page", lambda: "v2", 2, stale_ttl=5).status == "hit"
    # The stale window (about 5 s) is kept beyond the new 2 s fresh period.
    assert 5.5 < (c.ttl("page") or 0) <= 7.0


def test_touch_of_a_stale_entry_makes_it_fresh_again(make_client: MakeClient) -> None:
    c = make_client()
    c.set("page", "old", 0.2, stale_ttl=5)
    time.sleep(0.3)
    assert c.get("page") is None  # stale: a plain get misses
    assert c.touch("page", 2)
    assert c.get("page") == "old"


def test_touch_forever_drops_the_fresh_until(make_client: MakeClient) -> None:
    c = make_client()
    c.set("page", "v", 0.2, stale_ttl=5)
    assert c.touch("page", None)
    time.sleep(0.3)
    assert c.get("page") == "v"
    assert c.ttl("page") is None


def test_touch_of_plain_and_missing_entries(make_client: MakeClient) -> None:
    c = make_client()
    c.set("plain", 1, 0.3)
    assert c.touch("plain", 5)
    time.sleep(0.4)
    assert c.get("plain") == 1
    assert c.touch("missing", 5) is False


def test_async_touch_keeps_a_swr_entry_fresh(redis_url: str, namespace: str) -> None:
    async def run() -> None:
        c = AsyncCacheClient.from_url(redis_url, NAMESPACE=namespace)
        try:
            await c.set("page", "v1", 0.3, stale_ttl=5)
            assert await c.touch("page", 2)
            await asyncio.sleep(0.5)
            assert await c.get("page") == "v1"
        finally:
            await c.close()

    asyncio.run(run())
