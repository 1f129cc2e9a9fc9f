"""touch() moves a stale-while-revalidate entry's fresh-until time, not only its Redis TTL."""

from __future__ import annotations

import asyncio

import pytest

from cachekit_web import AsyncCacheClient

from .conftest import KEY_A, FakeClock, MakeClient


@pytest.mark.parametrize("mode", [{}, {"MASTER_KEY": KEY_A}])
def test_touch_keeps_a_swr_entry_fresh(make_client: MakeClient, mode: dict[str, str],
                                       clock: FakeClock) -> None:
    c = make_client(clock=clock, **mode)
    c.set("page", "v1", 0.3, stale_ttl=5)
    assert c.touch("page", 2)
    clock.advance(0.5)  # past the original fresh period
    assert c.get("page") == "v1"
    assert c.fetch("page", lambda: "v2", 2, stale_ttl=5).status == "hit"
    # The stale window (about 5 s) is kept beyond the new 2 s fresh period.
    assert 5.5 < (c.ttl("page") or 0) <= 7.0


def test_touch_of_a_stale_entry_makes_it_fresh_again(make_client: MakeClient,
                                                      clock: FakeClock) -> None:
    c = make_client(clock=clock)
    c.set("page", "old", 0.2, stale_ttl=5)
    clock.advance(0.3)
    assert c.get("page") is None  # stale: a plain get misses
    assert c.touch("page", 2)
    assert c.get("page") == "old"


def test_touch_forever_drops_the_fresh_until(make_client: MakeClient, clock: FakeClock) -> None:
    c = make_client(clock=clock)
    c.set("page", "v", 0.2, stale_ttl=5)
    assert c.touch("page", None)
    clock.advance(3600)
    assert c.get("page") == "v"
    assert c.ttl("page") is None


def test_touch_of_plain_and_missing_entries(make_client: MakeClient, clock: FakeClock) -> None:
    c = make_client(clock=clock)
    c.set("plain", 1, 0.3)
    assert c.touch("plain", 5)
    assert 4.5 < (c.ttl("plain") or 0) <= 5  # Redis's expiry moved
    clock.advance(0.4)  # past the first timeout: the sealed expiry moved too
    assert c.get("plain") == 1
    assert c.touch("missing", 5) is False


def test_async_touch_keeps_a_swr_entry_fresh(redis_url: str, namespace: str,
                                             clock: FakeClock) -> None:
    async def run() -> None:
        c = AsyncCacheClient.from_url(redis_url, NAMESPACE=namespace, clock=clock)
        try:
            await c.set("page", "v1", 0.3, stale_ttl=5)
            assert await c.touch("page", 2)
            clock.advance(0.5)
            assert await c.get("page") == "v1"
        finally:
            await c.close()

    asyncio.run(run())
