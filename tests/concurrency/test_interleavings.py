"""Each read-then-write path of the client, with the gap between its read and its write
forced open by a real second writer (see interleave.py): exactly one caller wins, and
nothing is written over a value the writer never read."""

from __future__ import annotations

from typing import Any

import pytest

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
def test_add_released_between_set_nx_and_read(make_client: MakeClient, store: str,
                                              mode: str) -> None:
    # A holds the key; B's SET NX fails; A releases; B reads a missing key; C takes it.
    a, b, c = (make_client(store, **MODES[mode]) for _ in range(3))
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


def _plant_garbage(a: CacheClient) -> None:
    a.backend.set(a.full_key("job"), b"\x00not a frame", 60)


@pytest.mark.parametrize("entry", ["stale", "unreadable"])
@pytest.mark.parametrize("mode", MODES)
def test_add_replaces_stale_entry_only_once(make_client: MakeClient, store: str, clock: Clock,
                                            entry: str, mode: str) -> None:
    # B and C both find the same stale (or unreadable) entry; only one may replace it.
    a, b, c = (make_client(store, clock=clock, **MODES[mode]) for _ in range(3))
    _plant_stale(a, clock) if entry == "stale" else _plant_garbage(a)
    gap = interleaved(b)
    c_won: list[bool] = []
    gap.after("get", lambda: c_won.append(c.add("job", "C", 30)))
    b_won = b.add("job", "B", 30)
    assert c_won == [True]
    assert [b_won, *c_won].count(True) == 1, "two callers replaced the same entry"
    assert a.get("job") == "C"
    b.get("other")  # B's next call must not drop what C stored (B read garbage earlier)
    assert a.get("job") == "C"


def test_add_stale_entry_rewritten_by_holder(make_client: MakeClient, store: str,
                                             clock: Clock) -> None:
    # B reads a stale entry; meanwhile its owner refreshes it: B must not replace the fresh one.
    a, b = make_client(store, clock=clock), make_client(store, clock=clock)
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


def _first_write(args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> bool:
    return True


@pytest.mark.parametrize("mode", MODES)
def test_touch_never_retimes_a_value_it_did_not_read(make_client: MakeClient, store: str,
                                                     clock: Clock, mode: str) -> None:
    # Right after touch's write, the key is released and taken again by C (5 s): nothing
    # touch does may change C's expiry, which C sealed into its value.
    a, b, c = (make_client(store, clock=clock, **MODES[mode]) for _ in range(3))
    assert a.add("job", "A", 10)
    gap = interleaved(b)

    def replace() -> None:
        a.delete("job")
        assert c.add("job", "C", 5)

    for write in ("update", "compare_and_set"):  # whichever touch writes with
        gap.after(write, replace, when=_first_write)
    assert b.touch("job", 100)
    entry = c.get_entry("job")
    assert entry is not None and entry.value == "C"
    assert entry.expires_at == pytest.approx(clock.now + 5)
    assert (c.ttl("job") or 0) <= 5, "touch retimed a value it never read"


@pytest.mark.parametrize("mode", MODES)
def test_touch_applies_to_the_value_it_read(make_client: MakeClient, store: str, clock: Clock,
                                            mode: str) -> None:
    # Between touch's read and its write, C replaces the value: the touch lands on C's
    # value as a whole (sealed expiry and Redis TTL agree), never half on each.
    a, b, c = (make_client(store, clock=clock, **MODES[mode]) for _ in range(3))
    a.set("job", "A", 10, stale_ttl=30)
    gap = interleaved(b)
    gap.after("get", lambda: c.set("job", "C", 5))
    assert b.touch("job", 100)
    entry = c.get_entry("job")
    assert entry is not None and entry.value == "C"
    assert entry.expires_at is not None
    assert entry.expires_at - clock.now == pytest.approx(c.ttl("job"), abs=1.0)


def _stale(a: CacheClient, clock: Clock) -> None:
    a.set("k", "old", 10, stale_ttl=60)
    clock.now += 20


@pytest.mark.parametrize("start", ["missing", "stale"])
def test_get_or_set_keeps_a_value_set_while_it_computed(make_client: MakeClient, store: str,
                                                        clock: Clock,
                                                        start: str) -> None:
    # The computation read the world before a writer stored a newer value: the newer
    # value stands (as Django's get_or_set, which stores with add()).
    a, b = make_client(store, clock=clock), make_client(store, clock=clock)
    if start == "stale":
        _stale(a, clock)

    def compute() -> str:
        assert a.set("k", "newer", 60)
        return "computed"

    assert b.get_or_set("k", compute, 60, stale_ttl=60) == "computed"  # the caller's answer
    assert a.get("k") == "newer"


def test_stale_refresh_does_not_undo_a_delete(make_client: MakeClient, store: str,
                                              clock: Clock) -> None:
    # The value is invalidated while a stale-while-revalidate refresh computes from the
    # old data: the refresh must not write it back.
    a, b = make_client(store, clock=clock), make_client(store, clock=clock)
    _stale(a, clock)

    def compute() -> str:
        assert a.delete("k") is True
        return "computed-from-old-data"

    assert b.get_or_set("k", compute, 60, stale_ttl=60) == "computed-from-old-data"
    assert a.get("k") is None


def test_get_or_set_replaces_the_entry_it_read(make_client: MakeClient, store: str,
                                               clock: Clock) -> None:
    # Without interference a stale or unreadable entry is still replaced by the refresh.
    a, b = make_client(store, clock=clock), make_client(store, clock=clock)
    _stale(a, clock)
    assert b.get_or_set("k", lambda: "new", 60) == "new"
    assert a.get("k") == "new"
    a.backend.set(a.full_key("k"), b"\x00garbage", 60)
    assert b.get_or_set("k", lambda: "newest", 60) == "newest"
    assert a.get("k") == "newest"


def test_lock_release_after_losing_it_keeps_the_new_holder(make_client: MakeClient,
                                                           store: str) -> None:
    # A's lock is gone (expired: removed here) and B took it; A's release must not free B's.
    from cachekit_web.core.errors import LockTimeoutError
    from cachekit_web.core.keys import user_lock_key

    a, b = make_client(store), make_client(store)
    held = a.lock("section", timeout=30)
    assert held.acquire(blocking=False)
    a.backend.delete(user_lock_key(a.full_key("section")))  # its expiry, forced
    taken = b.lock("section", timeout=30)
    assert taken.acquire(blocking=False)
    with pytest.raises(LockTimeoutError) as lost:
        held.release()
    assert lost.value.code == "E050"
    assert taken.owned() and not a.lock("section").acquire(blocking=False)
    taken.release()


@pytest.mark.parametrize("read", ["get", "get_many", "has_key"])
def test_dropping_an_unreadable_entry_spares_its_successor(make_client: MakeClient,
                                                           store: str, read: str) -> None:
    # B reads an unreadable entry (dropped on its next call); before that call, C replaces
    # the entry: B's drop must not delete C's value (a blind DEL gave two add() winners).
    b, c, d = (make_client(store, **MODES["sealed"]) for _ in range(3))
    _plant_garbage(b)
    if read == "get":
        assert b.get("job") is None
    elif read == "get_many":
        assert b.get_many(["job"]) == {}
    else:
        assert not b.has_key("job")
    assert c.add("job", "C", 30)
    b.get("other")  # B's next call reaches the backend
    assert c.get("job") == "C"
    assert not d.add("job", "D", 30)
