"""Issue 16 item 1: with a key, digits written over a key are never served or counted on.

Counters are sealed unless their key matches PLAIN_COUNTERS; only those keys are Redis
integers, and only under those keys are digits read.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from typing import Any

import pytest
import redis

from cachekit_web import AsyncCacheClient
from cachekit_web.core.errors import ConfigurationError
from cachekit_web.core.settings import Settings

from .conftest import KEY_A, SIGNING, MakeClient
from .test_counters import _hammer

KEYED: dict[str, dict[str, Any]] = {
    "signed": {"SIGNING_KEY": SIGNING},
    "encrypted": {"MASTER_KEY": KEY_A},
}


def _forge(raw: redis.Redis, fk: str, digits: bytes = b"1") -> None:
    """What a writer without the key does: digits over the stored bytes, TTL kept."""
    raw.set(fk, digits, keepttl=True)


@pytest.mark.parametrize("mode", list(KEYED))
@pytest.mark.parametrize("value", [{"id": 42}, 42, 0])
def test_forged_digits_over_a_sealed_value_are_a_miss(
        mode: str, value: Any, make_client: MakeClient, raw: redis.Redis) -> None:
    c = make_client(**KEYED[mode])
    c.set("user", value)
    assert raw.get(c.full_key("user"))[:2] == b"CK"  # type: ignore[index]
    _forge(raw, c.full_key("user"))
    assert c.get("user") is None
    _forge(raw, c.full_key("user"))
    assert c.get_many(["user", "other"]) == {}
    _forge(raw, c.full_key("user"))
    assert c.get_or_set("user", lambda: "computed") == "computed"
    assert c.get("user") == "computed"


@pytest.mark.parametrize("mode", list(KEYED))
def test_forged_digits_under_a_sealed_counter_are_not_counted_on(
        mode: str, make_client: MakeClient, raw: redis.Redis) -> None:
    c = make_client(**KEYED[mode])
    c.set("n", 5)
    fk = c.full_key("n")
    assert raw.get(fk)[:2] == b"CK"  # type: ignore[index]
    assert c.incr("n") == 6 and raw.get(fk)[:2] == b"CK"  # type: ignore[index]
    _forge(raw, fk, b"1000")
    assert c.incr("n") is None  # a forged counter is a missing one: nothing to add to
    _forge(raw, fk, b"1000")
    assert c.incr("n", default=0) == 1  # ... and a default replaces it, sealed
    assert raw.get(fk)[:2] == b"CK" and c.get("n") == 1  # type: ignore[index]
    raw.delete(fk)
    assert c.incr("n", default=0) == 1 and raw.get(fk)[:2] == b"CK"  # type: ignore[index]
    assert c.decr("n", 3) == -2 and c.get("n") == -2


@pytest.mark.parametrize("mode", list(KEYED))
def test_async_forged_digits_are_a_miss(mode: str, redis_url: str, namespace: str,
                                        raw: redis.Redis) -> None:
    async def main() -> None:
        c = AsyncCacheClient.from_url(redis_url, NAMESPACE=namespace, **KEYED[mode])
        try:
            await c.set("user", {"id": 42})
            _forge(raw, c.full_key("user"))
            assert await c.get("user") is None
            _forge(raw, c.full_key("user"))
            assert await c.get_many(["user"]) == {}
            _forge(raw, c.full_key("user"))
            assert await c.get_or_set("user", lambda: "computed") == "computed"
            await c.set("n", 5)
            assert await c.incr("n") == 6
            assert raw.get(c.full_key("n"))[:2] == b"CK"  # type: ignore[index]
            _forge(raw, c.full_key("n"), b"1000")
            assert await c.incr("n") is None
            _forge(raw, c.full_key("n"), b"1000")
            assert await c.incr("n", default=0) == 1
            assert await c.get("n") == 1
        finally:
            await c.close()

    asyncio.run(main())


@pytest.mark.parametrize("mode", list(KEYED))
def test_plain_counters_are_redis_integers_and_only_they_read_digits(
        mode: str, make_client: MakeClient, raw: redis.Redis) -> None:
    c = make_client(PLAIN_COUNTERS=["rl:*", "throttle:*"], **KEYED[mode])
    assert c.add("rl:abc", 0) is True
    fk = c.full_key("rl:abc")
    assert raw.type(fk) == b"string" and raw.get(fk) == b"0"
    assert raw.object("encoding", fk) == b"int"
    assert c.incr("rl:abc") == 1 and raw.get(fk) == b"1"
    assert raw.incrby(fk, 8) == 9  # what INCRBY leaves there reads back as an int
    assert c.get("rl:abc") == 9 and c.get_many(["rl:abc"]) == {"rl:abc": 9}
    assert c.incr("throttle:x", default=0) == 1 and raw.get(c.full_key("throttle:x")) == b"1"
    c.set("rl:obj", {"a": 1})  # only ints are plain: other values stay sealed
    assert raw.get(c.full_key("rl:obj"))[:2] == b"CK"  # type: ignore[index]
    # A key that does not match is sealed, and digits under it are a miss.
    c.set("rlx", 3)
    assert raw.get(c.full_key("rlx"))[:2] == b"CK"  # type: ignore[index]
    assert c.incr("other", default=0) == 1
    assert raw.get(c.full_key("other"))[:2] == b"CK"  # type: ignore[index]
    _forge(raw, c.full_key("rlx"), b"7")
    assert c.get("rlx") is None


def test_plain_counters_match_the_callers_key_not_the_namespace(
        make_client: MakeClient, raw: redis.Redis) -> None:
    c = make_client(PLAIN_COUNTERS=["rl:*"], SIGNING_KEY=SIGNING)
    c.set("x:rl:1", 1)  # 'rl:' inside the key is not a match
    assert raw.get(c.full_key("x:rl:1"))[:2] == b"CK"  # type: ignore[index]
    c.set("rl:1", 1)
    assert raw.get(c.full_key("rl:1")) == b"1"


def test_plain_counters_setting_is_read_from_every_source() -> None:
    env = {"CACHEKIT_PLAIN_COUNTERS": "rl:*, throttle:*"}
    assert Settings.from_env(env).PLAIN_COUNTERS == ("rl:*", "throttle:*")
    assert Settings.from_mapping({"PLAIN_COUNTERS": ["rl:*"]}).PLAIN_COUNTERS == ("rl:*",)
    assert Settings().PLAIN_COUNTERS == ()
    with pytest.raises(ConfigurationError) as info:
        Settings.from_mapping({"PLAIN_COUNTERS": ["rl:*"], "MASTER_KEY": KEY_A,
                               "ENCRYPTION": "required"})
    assert info.value.code == "E042"


def test_without_a_key_every_int_is_still_a_redis_integer(make_client: MakeClient,
                                                         raw: redis.Redis) -> None:
    c = make_client()  # unauthenticated: nothing is sealed, so nothing changes
    c.set("n", 41)
    assert raw.get(c.full_key("n")) == b"41"
    assert c.incr("n") == 42 and c.get("n") == 42


@pytest.mark.parametrize("mode", list(KEYED))
def test_sealed_counter_is_exact_under_processes_and_threads(
        mode: str, make_client: MakeClient, redis_url: str, namespace: str,
        raw: redis.Redis) -> None:
    processes, threads, per_thread = 4, 8, 25
    options = KEYED[mode]
    c = make_client(**options)
    assert c.add("hits", 0) is True
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes) as pool:
        results = pool.map(_hammer, [(redis_url, namespace, options, threads, per_thread)]
                           * processes, chunksize=1)
    assert [e for _, errors in results for e in errors] == []
    assert sum(n for n, _ in results) == 0
    assert c.get("hits") == processes * threads * per_thread
    assert raw.get(c.full_key("hits"))[:2] == b"CK"  # type: ignore[index]


@pytest.mark.parametrize("mode", list(KEYED))
def test_counters_read_through_the_in_process_tier(mode: str, make_client: MakeClient,
                                                   raw: redis.Redis) -> None:
    from cachekit_web.core.local import tier as local_mod

    try:
        c = make_client(LOCAL_CACHE=True, PLAIN_COUNTERS=["rl:*"], **KEYED[mode])
        writer = make_client(PLAIN_COUNTERS=["rl:*"], **KEYED[mode])
        writer.add("rl:n", 0)
        writer.incr("rl:n", 4)
        assert raw.get(c.full_key("rl:n")) == b"4"
        assert c.get("rl:n") == 4 and c.get("rl:n") == 4  # from Redis, then from memory
        writer.set("sealed", 7)
        assert c.get("sealed") == 7 and c.get("sealed") == 7
        _forge(raw, c.full_key("sealed"), b"1")  # the tier is told; digits are still a miss
        deadline = threading.Event()
        for _ in range(300):  # bounded: until the invalidation lands
            if c.get("sealed") is None:
                break
            deadline.wait(0.01)
        assert c.get("sealed") is None
    finally:
        local_mod.close_all()


@pytest.mark.parametrize("mode", list(KEYED))
def test_each_caller_gets_its_own_answer_when_threads_share_rounds(
        mode: str, make_client: MakeClient) -> None:
    c = make_client(CONNECTION_POOL_SIZE=16, **KEYED[mode])
    threads, per_thread = 16, 40
    answers: list[int | None] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def run() -> None:
        start.wait(timeout=30)
        mine = [c.incr("n", default=0) for _ in range(per_thread)]
        with lock:
            answers.extend(mine)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    # Combined or not, the answers are those of increments applied one after another.
    assert sorted(answers) == list(range(1, threads * per_thread + 1))  # type: ignore[type-var]
    assert c.get("n") == threads * per_thread


def test_async_sealed_counter_is_exact_under_concurrent_tasks(redis_url: str,
                                                               namespace: str) -> None:
    async def main() -> tuple[list[int | None], Any]:
        c = AsyncCacheClient.from_url(redis_url, NAMESPACE=namespace, SIGNING_KEY=SIGNING)
        try:
            got = await asyncio.gather(*(c.incr("n", default=0) for _ in range(200)))
            return list(got), await c.get("n")
        finally:
            await c.close()

    answers, final = asyncio.run(main())
    assert sorted(answers) == list(range(1, 201)) and final == 200  # type: ignore[type-var]


def test_the_lead_passes_on_in_order_and_when_a_waiter_gives_up() -> None:
    from cachekit_web.core.singleflight import CounterOp, Counters

    counters = Counters()
    first, second, third = CounterOp(1, None), CounterOp(1, None), CounterOp(1, None)
    assert counters.join("k", first) == [first]  # nobody leads: the caller does
    got: dict[str, Any] = {}
    waiter = threading.Thread(target=lambda: got.update(b=counters.join("k", second)))
    waiter.start()
    for _ in range(500):  # bounded: until the waiter is queued
        with counters._lock:
            if counters._queues.queues["k"] == [second]:
                break
        threading.Event().wait(0.002)
    with counters._lock:
        assert counters._queues.enter("k", third, threading.Event()) is False
    first.finish()
    counters.leave("k")  # the first waiter leads, taking everything queued
    waiter.join(timeout=10)
    assert got["b"] == [second, third]
    counters.leave("k")
    assert counters._queues.queues == {}
    # A waiter handed the lead that stops waiting (interrupted) passes it on.
    assert counters.join("j", first) == [first]
    with counters._lock:
        counters._queues.enter("j", second, threading.Event())
        counters._queues.enter("j", third, threading.Event())
    counters.leave("j")  # ``second`` leads now ...
    with counters._lock:
        assert counters._queues.drop("j", second) is True  # ... but it gave up
    counters.leave("j")
    assert third.led and third._wake.is_set() and counters._queues.queues["j"] == [third]
