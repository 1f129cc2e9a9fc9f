"""The in-process tier (core/local/tier.py) on a real redis-server: coherence, lease, flush,
caps, fork, and where it turns itself off."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cachekit_web.core._sync.redis import pool_for
from cachekit_web.core.data.codec import Entry
from cachekit_web.core.local import tier as local_mod
from cachekit_web.core.local.copying import copied, copier
from cachekit_web.core.local.resp import Incomplete, parse, server_version
from cachekit_web.core.local.tier import LocalTier
from cachekit_web.core.settings import Settings
from tests.forking import reap, run_script

from .conftest import KEY_A, KEY_B, MakeClient, make_async, raw_for


@pytest.fixture(autouse=True)
def _fresh_tiers() -> Iterator[None]:
    yield
    local_mod.close_all()


def wait_for(cond: Callable[[], Any], timeout: float = 3.0) -> bool:
    """Poll ``cond`` until true or ``timeout`` (bounded)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.002)
    return bool(cond())


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_tier(url: str, prefix: str, clock: Callable[[], float] = time.monotonic,
              **caps: Any) -> LocalTier:
    pool = pool_for(url, Settings(REDIS_URL=url))
    return LocalTier(lambda: pool.connection_class(**local_mod.tracking_kwargs(pool)),
                     prefix, max_entries=caps.get("max_entries", 100),
                     max_bytes=caps.get("max_bytes", 10_000), lease=caps.get("lease", 1.0),
                     clock=clock)


def store(tier: LocalTier, fk: str, value: Any, size: int = 10, pttl_ms: int = -1) -> bool:
    token = tier.begin(fk)
    return tier.finish(fk, token, Entry(value), size, pttl_ms)


def test_hits_from_memory_and_other_writers_invalidate(make_client: MakeClient) -> None:
    reader = make_client(LOCAL_CACHE=True)
    writer = make_client()
    writer.set("k", "v1")
    assert reader.get("k") == "v1"  # miss: read from Redis, then kept
    tier = reader._local
    assert wait_for(lambda: tier.live)
    reader.get("k")
    assert reader.get("k") == "v1" and len(tier) == 1
    assert reader.metrics.totals["local_hits"] >= 1
    writer.set("k", "v2")
    assert wait_for(lambda: reader.get("k") == "v2")
    assert reader.metrics.totals["local_invalidations"] >= 1
    writer.delete("k")
    assert wait_for(lambda: reader.get("k") is None)


def test_own_writes_are_read_back_at_once(make_client: MakeClient) -> None:
    c = make_client(LOCAL_CACHE=True)
    c.set("k", 1)
    assert c.get("k") == 1
    assert wait_for(lambda: c._local.live)
    c.get("k")
    for i in range(20):
        c.set("k", i)
        assert c.get("k") == i
    c.delete("k")
    assert c.get("k") is None


def test_per_call_opt_in_and_out(make_client: MakeClient) -> None:
    c = make_client()
    c.set("k", "v")
    assert c.get("k") == "v" and "_local" not in vars(c)  # never made when not asked for
    assert c.get("k", local=True) == "v"
    assert c._local is not None
    assert c.fetch("k", lambda: "x", local=True).value == "v"
    on = make_client(LOCAL_CACHE=True)
    before = on.metrics.totals["local_misses"]
    on.get("k", local=False)
    assert on.metrics.totals["local_misses"] == before


def test_returned_values_are_copies(make_client: MakeClient) -> None:
    c = make_client(LOCAL_CACHE=True)
    c.set("k", {"a": [1, 2]})
    c.get("k")
    assert wait_for(lambda: c._local.live)
    c.get("k")
    got = c.get("k")
    got["a"].append(3)
    assert c.get("k") == {"a": [1, 2]}
    assert c.metrics.totals["local_hits"] >= 2


def test_the_value_of_the_read_that_fills_the_tier_is_the_caller_s_own(
        make_client: MakeClient) -> None:
    c = make_client(LOCAL_CACHE=True)
    c.set("k", {"a": [1, 2], "b": {"c": 1}})
    c.get("k")
    assert wait_for(lambda: c._local.live)
    first = c.get("k")  # a miss in memory: read from Redis and kept
    assert len(c._local) == 1
    first["a"].append(3)
    first["b"]["c"] = 2
    first["new"] = True
    assert c.get("k") == {"a": [1, 2], "b": {"c": 1}}
    assert c.metrics.totals["local_hits"] >= 1
    entry = c.get_entry("k")  # the entry API too
    assert entry is not None
    entry.value["a"].clear()
    assert c.get("k") == {"a": [1, 2], "b": {"c": 1}}


_leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                   st.text(max_size=5), st.binary(max_size=5))
_shapes = st.recursive(_leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=3), inner, max_size=4),
    st.tuples(inner, inner), st.sets(st.integers(), max_size=3)), max_leaves=12)


def _mutable_parts(value: Any) -> list[int]:
    found: list[int] = []
    if isinstance(value, (list, dict, set)):
        found.append(id(value))
    children = value.values() if isinstance(value, dict) else (
        value if isinstance(value, (list, tuple, set)) else ())
    for child in children:
        found += _mutable_parts(child)
    return found


@given(_shapes)
def test_a_copy_equals_the_value_and_shares_no_mutable_part(value: Any) -> None:
    copy_fn = copier(value)
    got = value if copy_fn is None else copy_fn(value)
    assert got == value and copied(value) == value
    assert not set(_mutable_parts(got)) & set(_mutable_parts(value))


def test_token_refuses_a_reply_raced_by_an_invalidation(redis_url: str, namespace: str) -> None:
    prefix = namespace + ":"
    tier = make_tier(redis_url, prefix)
    raw = raw_for(redis_url)
    try:
        assert wait_for(lambda: tier.live)
        token = tier.begin(prefix + "k")  # "GET sent"; the old value is on its way back
        seen = tier._seq
        raw.set(prefix + "k", b"new")  # another process writes before the reply is stored
        assert wait_for(lambda: (tier.drain(), tier._seq > seen)[1])
        assert not tier.finish(prefix + "k", token, Entry("old"), 10, -1)
        assert tier.lookup(prefix + "k") is None
        # Without a racing write the same sequence stores, and the token state is gone.
        assert store(tier, prefix + "k", "new")
        assert tier.lookup(prefix + "k") == Entry("new")
        assert not tier._inflight and not tier._touched
    finally:
        raw.close()
        tier.close()


def test_lease_expiry_and_pttl_deadline_on_an_injected_clock(redis_url: str,
                                                             namespace: str) -> None:
    clock = Clock()
    tier = make_tier(redis_url, namespace + ":", clock=clock, lease=1.0)
    try:
        assert wait_for(lambda: tier.live)
        assert store(tier, "a", "A") and store(tier, "b", "B", pttl_ms=300)
        assert tier.lookup("a") == Entry("A") and tier.lookup("b") == Entry("B")
        clock.now += 0.5  # past b's PTTL, inside the lease
        assert tier.lookup("b") is None and tier.lookup("a") == Entry("A")
        clock.now += 1.0  # no heartbeat answered within the lease: nothing is served
        assert not tier.live
        assert tier.lookup("a") is None
        assert not store(tier, "c", "C")  # nor stored
        assert wait_for(lambda: tier.live)  # the next PONG renews it
        assert tier.lookup("a") == Entry("A")
    finally:
        tier.close()


def test_killed_tracking_connection_flushes_and_reconnects(redis_url: str,
                                                          namespace: str) -> None:
    tier = make_tier(redis_url, namespace + ":")
    raw = raw_for(redis_url)
    try:
        assert wait_for(lambda: tier.live)
        assert store(tier, "a", 1) and store(tier, "b", 2)
        first = tier.client_id
        assert raw.client_kill_filter(_id=first) == 1
        assert wait_for(lambda: (tier.lookup("a"), len(tier) == 0)[1])
        assert tier.lookup("a") is None and tier.lookup("b") is None
        assert wait_for(lambda: tier.live and tier.client_id != first)
        assert store(tier, "a", 3) and tier.lookup("a") == Entry(3)
    finally:
        raw.close()
        tier.close()


def test_flushdb_flushes_the_tier(own_redis: Any) -> None:
    tier = make_tier(own_redis.url, "ns:")
    raw = raw_for(own_redis.url)
    try:
        assert wait_for(lambda: tier.live)
        assert store(tier, "ns:a", 1)
        raw.flushdb()
        assert wait_for(lambda: (tier.drain(), len(tier) == 0)[1])
    finally:
        raw.close()
        tier.close()


def test_caps_on_entries_and_bytes(redis_url: str, namespace: str) -> None:
    tier = make_tier(redis_url, namespace + ":", max_entries=3, max_bytes=100)
    try:
        assert wait_for(lambda: tier.live)
        for i in range(5):
            assert store(tier, f"k{i}", i, size=10)
        assert len(tier) == 3 and tier.lookup("k0") is None and tier.lookup("k4") == Entry(4)
        for i in range(3):
            store(tier, f"big{i}", i, size=40)
        assert tier.size_bytes <= 100 and len(tier) == 2
        assert not store(tier, "huge", 0, size=101)
    finally:
        tier.close()


def test_a_forked_child_starts_empty_with_its_own_connection(make_client: MakeClient) -> None:
    c = make_client(LOCAL_CACHE=True)
    c.set("k", "parent")
    c.get("k")
    tier = c._local
    assert wait_for(lambda: tier.live)
    c.get("k")
    assert len(tier) == 1
    parent_id = tier.client_id
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code only
        code = 0
        try:
            if len(tier) != 0 or tier.live:
                code = 2
            elif c.get("k") != "parent":
                code = 3
            elif not wait_for(lambda: tier.live and tier.client_id not in (None, parent_id)):
                code = 4
        except BaseException:
            code = 5
        os._exit(code)
    assert reap(pid) == 0
    assert tier.client_id == parent_id and len(tier) == 1


def test_old_server_turns_the_tier_off_with_a_code(redis_url: str, namespace: str,
                                                   caplog: pytest.LogCaptureFixture,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_mod, "MIN_VERSION", (99, 0))  # this server plays an old one
    caplog.set_level(logging.WARNING, "cachekit_web.local")
    tier = make_tier(redis_url, namespace + ":")
    try:
        assert wait_for(lambda: tier.disabled is not None)
        assert "E070" in caplog.text and not tier.live
    finally:
        tier.close()


def test_server_version_parsing() -> None:
    assert server_version("redis_version:7.0.15\r\nx:1") == (7, 0)
    assert server_version({"redis_version": "5.0.7"}) < local_mod.MIN_VERSION
    assert server_version(b"6.2.0") >= local_mod.MIN_VERSION


def test_parser_reads_invalidations_pongs_and_partial_input() -> None:
    msg = b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    assert parse(msg) == ([b"message", b"__redis__:invalidate", [b"a", b"b"]], len(msg))
    flush = b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*-1\r\n"
    assert parse(flush)[0][2] is None
    with pytest.raises(Incomplete):
        parse(msg[:-3])


def test_memory_backend_turns_it_off_and_still_works(caplog: pytest.LogCaptureFixture,
                                                     make_client: MakeClient) -> None:
    caplog.set_level(logging.WARNING, "cachekit_web.local")
    local_mod._WARNED.discard("memory")
    c = make_client("memory://local-test", LOCAL_CACHE=True)
    c.set("k", 1)
    assert c.get("k") == 1 and c._local is None
    assert "E070" in caplog.text


def test_async_client_reads_through_the_tier(redis_url: str, namespace: str) -> None:
    async def run() -> None:
        c = make_async(redis_url, NAMESPACE=namespace, LOCAL_CACHE=True)
        try:
            await c.set("k", [1, 2])
            assert await c.get("k") == [1, 2]
            assert wait_for(lambda: c._local.live)
            await c.get("k")
            assert await c.get("k") == [1, 2]
            assert c.metrics.totals["local_hits"] >= 1
        finally:
            await c.close()

    asyncio.run(run())


def test_lease_setting_is_bounded() -> None:
    from cachekit_web.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as info:
        Settings(REDIS_URL="redis://x").replace(LOCAL_CACHE_LEASE=2.0)
    assert info.value.code == "E042"


def test_health_page_shows_local_counts(make_client: MakeClient) -> None:
    from cachekit_web.core.observe.render import _glance

    c = make_client(LOCAL_CACHE=True)
    c.set("k", 1)
    c.get("k")
    assert wait_for(lambda: c._local.live)
    c.get("k")
    html = _glance(c.health(), c.metrics.snapshot())
    assert "in-process hits / misses / invalidations" in html


def test_kill_switch_redis_down_means_no_hits(own_redis: Any) -> None:
    from cachekit_web import CacheClient

    c = CacheClient.from_url(own_redis.url, LOCAL_CACHE=True, NAMESPACE="down")
    try:
        c.set("k", 1)
        c.get("k")
        tier = c._local
        assert wait_for(lambda: tier.live)
        c.get("k")
        assert len(tier) == 1
        own_redis.stop()
        assert wait_for(lambda: (tier.lookup("down:k"), len(tier) == 0)[1])
        assert c.get("k") is None
    finally:
        c.close()



def test_a_write_that_could_not_reach_redis_is_never_answered_from_memory(
        make_client: MakeClient) -> None:
    """A set or clear that comes back unavailable leaves the key owed an invalidation:
    the tier must not go on serving the value it held (the tracking link is healthy)."""
    client = make_client(LOCAL_CACHE=True)
    client.set("k", "v1")
    client.set("j", "w1")
    assert client.get("k") == "v1" and client.get("j") == "w1"
    tier = client._local
    assert wait_for(lambda: tier.live)
    client.get("k"), client.get("j")
    assert len(tier) == 2  # both now served from memory
    client.pending.add([client.full_key("k")])  # as set() does when Redis is unreachable
    assert client.get("k") is None
    client.pending.clear_all()  # as clear() does when Redis is unreachable
    assert client.get("j") is None


_C_FORK_TIER = """
    import sys, time
    from cachekit_web import CacheClient
    from tests.forking import in_c_forked_child

    url, namespace = sys.argv[1], sys.argv[2]
    client = CacheClient.from_url(url, NAMESPACE=namespace, LOCAL_CACHE=True)
    writer = CacheClient.from_url(url, NAMESPACE=namespace)

    def wait_for(check):
        deadline = time.monotonic() + 10
        while not check():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.01)
        return True

    writer.set("k", "v1")
    client.get("k")
    tier = client._local
    wait_for(lambda: tier.live)
    assert client.get("k") == "v1" and len(tier) == 1

    def child():  # its tier must be empty, and it must not drain the parent's
        found = tier.lookup(client.full_key("k"))
        tier.drain()
        return b"empty" if found is None else b"served"

    answer = in_c_forked_child(child)
    writer.set("k", "v2")  # the parent still receives its invalidation
    wait_for(lambda: client.get("k") == "v2")
    client.close()
    writer.close()
    print(answer.decode())
"""


def test_a_fork_done_in_c_never_reads_the_parent_s_tier(redis_url: str, namespace: str) -> None:
    """uWSGI forks in C: a child's tier must start empty and never touch the parent's
    tracking socket (it would swallow the parent's invalidations). Forks in a process of
    its own (tests/forking.py)."""
    assert run_script(_C_FORK_TIER, redis_url, namespace).strip() == "empty"


def test_clients_that_read_differently_never_share_decoded_entries(
        make_client: MakeClient) -> None:
    """A decoded entry is only as good as the key that opened it: a client with another
    master key must not be handed a value it could not have opened itself."""

    owner = make_client(LOCAL_CACHE=True, MASTER_KEY=KEY_A)
    stranger = make_client(LOCAL_CACHE=True, MASTER_KEY=KEY_B)
    owner.set("secret", "for A only")
    assert owner.get("secret") == "for A only"
    assert wait_for(lambda: owner._local.live)
    assert owner.get("secret") == "for A only"  # now held in A's tier
    assert stranger._local_tier(None) is not owner._local_tier(None)
    assert stranger.get("secret") is None  # cannot open it: a miss (E003), not A's value


def test_local_hit_serves_only_fresh_accepted_entries_from_memory(
        make_client: MakeClient) -> None:
    """local_hit: a hit from memory counted as fetch counts it; anything else is None with
    nothing counted (the caller then asks fetch)."""
    client = make_client(LOCAL_CACHE=True)
    writer = make_client()
    writer.set("k", "v1")
    assert client.local_hit("k") is None  # not in memory yet: nothing counted
    assert client.metrics.totals["hits"] == client.metrics.totals["misses"] == 0
    assert client.local_hit("k", local=False) is None  # the tier is not asked
    assert client.fetch("k", lambda: "computed").value == "v1"  # read from Redis, kept
    tier = client._local
    assert wait_for(lambda: tier.live)
    client.fetch("k", lambda: "computed")
    before = dict(client.metrics.totals)
    found = client.local_hit("k")
    assert found is not None and found.value == "v1"
    assert client.metrics.totals["hits"] == before.get("hits", 0) + 1
    assert client.metrics.totals["local_hits"] == before.get("local_hits", 0) + 1
    assert client.local_hit("k", accept=lambda v: v != "v1") is None  # refused: not served
    client.pending.add([client.full_key("k")])  # owed an invalidation: never from memory
    assert client.local_hit("k") is None
    client.pending.landed(*client.pending.take())
    writer.set("k", "v2")  # another writer: the tier drops it
    assert wait_for(lambda: client.local_hit("k") is None)
    assert client.fetch("k", lambda: "computed").value == "v2"


def test_local_hit_serves_only_what_the_tier_may_serve(make_client: MakeClient) -> None:
    """local_hit (the lean read before fetch) follows the tier's rules: only a fresh,
    accepted value held in memory, never one owed an invalidation; a miss counts nothing."""
    client = make_client(LOCAL_CACHE=True)
    client.set("k", "v1")
    client.set("s", "old", 60, stale_ttl=60)
    assert client.get("k") == "v1"
    tier = client._local
    assert wait_for(lambda: tier.live)
    totals = client.metrics.totals
    before = (totals["hits"], totals["misses"], totals["local_hits"], totals["local_misses"])
    assert client.local_hit("k") is None  # not in memory yet: nothing counted
    assert (totals["hits"], totals["misses"], totals["local_hits"],
            totals["local_misses"]) == before
    client.get("k")  # now held in memory
    hits = totals["hits"]
    entry = client.local_hit("k")
    assert entry is not None and entry.value == "v1"
    assert totals["hits"] == hits + 1 and totals["local_hits"] == before[2] + 1
    assert client.local_hit("k", accept=lambda v: v != "v1") is None  # refused: absent
    assert client.local_hit("k", local=False) is None  # opted out per call
    assert totals["hits"] == hits + 1
    assert client.get("s") == "old" and client.get("s") == "old"
    entry = client.local_hit("s")
    assert entry is not None and entry.value == "old"  # in memory and fresh
    now = client.clock()
    client.clock = lambda: now + 120  # past its fresh time, within its stale window
    assert client.local_hit("s") is None  # fetch's stale logic decides
    client.clock = lambda: now
    client.pending.add([client.full_key("k")])  # as set() does when Redis is unreachable
    assert client.local_hit("k") is None


@pytest.mark.parametrize("shape", ["rows of dicts", "nested lists", "a page"])
def test_the_memory_cap_counts_what_keeping_an_entry_holds(shape: str) -> None:
    """size_bytes covers the kept copy and the plan for copying it out on each hit."""
    import tracemalloc

    rows = [{"id": i, "name": f"item {i}", "tags": ["a", "b", [i, i + 1]], "price": i * 1.5}
            for i in range(500)]
    value: Any = {"rows of dicts": rows, "nested lists": [[[i, [i]] for i in range(50)]
                                                           for _ in range(20)],
                  "a page": "x" * 50_000}[shape]
    tier = LocalTier(lambda: None, "ns:", max_entries=10, max_bytes=1 << 30, lease=1.0,
                     start=False)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        with tier._lock:
            assert tier._keep_locked("ns:k", Entry(value, None, None), 0.0, 0, -1)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert tier.size_bytes >= 0.9 * held, (tier.size_bytes, held)  # malloc rounding aside
    assert tier.size_bytes <= 3 * max(held, 1) + 60_000  # and not wildly more
