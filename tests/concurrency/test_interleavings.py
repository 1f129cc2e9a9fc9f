"""Each read-then-write path of the client, with the gap between its read and its write
forced open by a real second writer (see interleave.py): exactly one caller wins, and
nothing is written over a value the writer never read."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from cachekit_web import AsyncCacheClient, CacheClient

from .conftest import Clock, MakeClient
from .interleave import Interleaved, failed_nx

KEY_A = bytes(range(0xa1, 0xa1 + 32)).hex()
MODES: dict[str, dict[str, Any]] = {
    "plain": {},
    "sealed": {"MASTER_KEY": KEY_A, "ENCRYPTION": "required"},
}


def interleaved(client: CacheClient) -> Interleaved:
    """Route ``client``'s backend calls through an Interleaved wrapper."""
    wrapper = Interleaved(client.backend)
    client.backend = wrapper  # type: ignore[assignment]
    return wrapper


@pytest.mark.parametrize("mode", MODES)
def test_add_released_between_set_nx_and_read(make_client: MakeClient, mode: str) -> None:
    # A holds the key; B's SET NX fails; A releases; B reads a missing key; C takes it.
    a, b, c = (make_client(**MODES[mode]) for _ in range(3))
    gap = interleaved(b)
    assert a.add("job", "A", 30)
    gap.after("set", lambda: a.delete("job"), when=failed_nx)
    c_won: list[bool] = []
    gap.after("get", lambda: c_won.append(c.add("job", "C", 30)))
    b_won = b.add("job", "B", 30)
    assert c_won == [True]
    assert [b_won, *c_won].count(True) == 1, "two callers hold the key at once"
    assert a.get("job") == "C"


def _plant_stale(a: CacheClient, clock: Clock) -> None:
    a.set("job", "A", 10, stale_ttl=60)  # kept 60 s past its fresh time for revalidation
    clock.now += 20


def _plant_garbage(a: CacheClient, raw: redis.Redis) -> None:
    raw.set(a.full_key("job"), b"\x00not a frame", px=60_000)


@pytest.mark.parametrize("entry", ["stale", "unreadable"])
@pytest.mark.parametrize("mode", MODES)
def test_add_replaces_stale_entry_only_once(make_client: MakeClient, clock: Clock,
                                            raw: redis.Redis, entry: str, mode: str) -> None:
    # B and C both find the same stale (or unreadable) entry; only one may replace it.
    a, b, c = (make_client(clock=clock, **MODES[mode]) for _ in range(3))
    _plant_stale(a, clock) if entry == "stale" else _plant_garbage(a, raw)
    gap = interleaved(b)
    c_won: list[bool] = []
    gap.after("get", lambda: c_won.append(c.add("job", "C", 30)))
    b_won = b.add("job", "B", 30)
    assert c_won == [True]
    assert [b_won, *c_won].count(True) == 1, "two callers replaced the same entry"
    assert a.get("job") == "C"
    b.get("other")  # B's next call must not drop what C stored (B read garbage earlier)
    assert a.get("job") == "C"


def test_add_stale_entry_rewritten_by_holder(make_client: MakeClient, clock: Clock) -> None:
    # B reads a stale entry; meanwhile its owner refreshes it: B must not replace the fresh one.
    a, b = make_client(clock=clock), make_client(clock=clock)
    _plant_stale(a, clock)
    gap = interleaved(b)
    gap.after("get", lambda: a.set("job", "A2", 30))
    assert not b.add("job", "B", 30)
    assert a.get("job") == "A2"


def test_async_add_released_between_set_nx_and_read(redis_url: str, namespace: str,
                                                    make_client: MakeClient) -> None:
    import asyncio

    a, c = make_client(), make_client()

    async def run() -> tuple[bool, list[bool]]:
        b = AsyncCacheClient.from_url(redis_url, NAMESPACE=namespace)
        try:
            gap = Interleaved(b.backend)
            b.backend = gap  # type: ignore[assignment]
            assert a.add("job", "A", 30)
            gap.after("set", lambda: a.delete("job"), when=failed_nx)
            c_won: list[bool] = []
            gap.after("get", lambda: c_won.append(c.add("job", "C", 30)))
            return await b.add("job", "B", 30), c_won
        finally:
            await b.close()

    b_won, c_won = asyncio.run(run())
    assert c_won == [True]
    assert [b_won, *c_won].count(True) == 1
