"""What django-redis users call, on the core client, against the real server."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import msgpack
import pytest
import redis

from cachekit_web import (
    CacheClient,
    LockTimeoutError,
    SerializationError,
    UnsupportedOperationError,
)
from cachekit_web.core.resilience.breaker import State

from .conftest import KEY_A, SIGNING, MakeClient

MODES: dict[str, dict[str, Any]] = {
    "plain": {},
    "signed": {"SIGNING_KEY": SIGNING},
    "encrypted": {"MASTER_KEY": KEY_A},
}


@pytest.fixture(params=list(MODES))
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture()
def c(mode: str, make_client: MakeClient) -> CacheClient:
    return make_client(**MODES[mode])


def _all_bytes(raw: redis.Redis, prefix: str) -> bytes:
    """Every key and value (of any type) under ``prefix``, concatenated."""
    out = b""
    for k in raw.scan_iter(match=prefix + "*"):
        kind = raw.type(k)
        out += k
        if kind == b"string":
            out += raw.get(k) or b""
        elif kind == b"set":
            out += b"".join(raw.smembers(k))
        elif kind == b"hash":
            out += b"".join(a + b for a, b in raw.hgetall(k).items())
        elif kind == b"zset":
            out += b"".join(m for m, _ in raw.zrange(k, 0, -1, withscores=True))
    return out


# -- expiry --------------------------------------------------------------------
def test_ttl_pttl_expire_persist(c: CacheClient, raw: redis.Redis) -> None:
    assert c.pttl("missing") == 0 and c.ttl("missing") == 0
    c.set("k", {"v": 1}, None)
    assert c.ttl("k") is None and c.pttl("k") is None
    assert c.expire("k", 100) is True and 99_000 < c.pttl("k") <= 100_000  # type: ignore[operator]
    assert c.get("k") == {"v": 1}
    assert c.pexpire("k", 50_000) is True and 49_000 < c.pttl("k") <= 50_000  # type: ignore[operator]
    assert c.persist("k") is True and c.ttl("k") is None and c.get("k") == {"v": 1}
    at = time.time() + 30
    assert c.expire_at("k", at) is True and 28 < c.ttl("k") <= 30  # type: ignore[operator]
    assert c.pexpire_at("k", int((at + 30) * 1000)) is True
    assert 58 < c.ttl("k") <= 60  # type: ignore[operator]
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=20)
    assert c.expire_at("k", when) is True and 18 < c.ttl("k") <= 20  # type: ignore[operator]
    assert c.get("k") == {"v": 1}
    assert c.expire("missing", 10) is False and c.persist("missing") is False
    assert c.expire("k", 0) is True and c.get("k") is None


def test_expire_and_persist_on_sets_hashes_and_sorted_sets(c: CacheClient) -> None:
    c.sadd("s", "a")
    c.hset("h", "f", 1)
    c.zadd("z", {"m": 1.0})
    for key in ("s", "h", "z"):
        assert c.expire(key, 30) is True, key
        assert 29_000 < (c.pttl(key) or 0) <= 30_000, key
        assert c.persist(key) is True, key
        assert c.pttl(key) is None, key
    assert c.smembers("s") == {"a"} and c.hget("h", "f") == 1
    assert c.expire("absent", 30) is False and c.persist("absent") is False


def test_expire_beyond_the_sealed_expiry_keeps_the_value_readable(
        make_client: MakeClient, clock: Any) -> None:
    c = make_client(SIGNING_KEY=SIGNING, clock=clock)
    c.set("k", "v", 10)
    assert c.expire("k", 100)
    clock.advance(50)  # past the expiry first sealed into the frame
    assert c.get("k") == "v"


# -- set nx / xx ------------------------------------------------------------------
def test_set_nx_xx(c: CacheClient) -> None:
    assert c.set("k", 1, xx=True) is False and c.get("k") is None
    assert c.set("k", 1, nx=True) is True and c.set("k", 2, nx=True) is False
    assert c.get("k") == 1
    assert c.set("k", 3, xx=True) is True and c.get("k") == 3
    with pytest.raises(ValueError):
        c.set("k", 4, nx=True, xx=True)


# -- keys -------------------------------------------------------------------------
def test_keys_iter_keys_delete_pattern_stay_in_the_namespace(
        mode: str, make_client: MakeClient, namespace: str) -> None:
    c = make_client(**MODES[mode])
    neighbour = make_client(NAMESPACE=namespace + "x", **MODES[mode])  # shares the prefix
    for k in ("user:1", "user:2", "user:10", "page:1", "a*b", "a[1]"):
        c.set(k, 1)
    neighbour.set("user:1", 1)
    with c.lock("user:9"):  # a lock key must never be listed
        assert sorted(c.keys("user:*")) == ["user:1", "user:10", "user:2"]
    assert sorted(c.keys()) == ["a*b", "a[1]", "page:1", "user:1", "user:10", "user:2"]
    assert sorted(c.iter_keys("user:?", itersize=1)) == ["user:1", "user:2"]
    assert c.keys("user:[12]") == [] or sorted(c.keys("user:[12]")) == ["user:1", "user:2"]
    assert c.keys("a\\*b") == ["a*b"] and c.keys("a\\[1\\]") == ["a[1]"]
    assert c.keys("*:1") and set(c.keys("*:1")) == {"user:1", "page:1"}
    assert c.delete_pattern("user:*") == 3
    assert sorted(c.keys()) == ["a*b", "a[1]", "page:1"]
    assert neighbour.get("user:1") == 1 and neighbour.keys() == ["user:1"]
    with pytest.raises(ValueError):  # E023: too many stars for Redis' glob matcher
        c.keys("*" * 20)


def test_keys_on_the_memory_backend(make_client: MakeClient) -> None:
    c = make_client("memory://keys-test")
    for k in ("user:1", "user:2", "page:1"):
        c.set(k, 1)
    assert sorted(c.keys("user:*")) == ["user:1", "user:2"]
    assert c.delete_pattern("*:1") == 2 and c.keys() == ["user:2"]
    with pytest.raises(UnsupportedOperationError):
        c.sadd("s", 1)
    with pytest.raises(UnsupportedOperationError):
        c.get_client()


# -- lock -------------------------------------------------------------------------
def test_lock_semantics(c: CacheClient, raw: redis.Redis) -> None:
    c.set("job", "value")
    lock = c.lock("job", timeout=5, sleep=0.01)
    with lock:
        assert lock.owned() and lock.locked()
        other = c.lock("job", timeout=5, sleep=0.01)
        assert other.acquire(blocking=False) is False
        assert other.acquire(blocking_timeout=0.05) is False
        assert c.get("job") == "value"  # the lock is not the user's key
        assert c.get_or_set("job2", lambda: 1) == 1  # nor a recompute lock
        # This test's lock only: other tests' locks may still live on the shared server.
        lock_keys = [k for k in raw.scan_iter(match=f"*{c.namespace}*")
                     if b"user-lock" in k]
        assert len(lock_keys) == 1 and not lock_keys[0].startswith(c.namespace.encode())
        assert lock.extend(5) is True
    assert not lock.locked()
    short = c.lock("short", timeout=0.05)
    assert short.acquire() is True
    time.sleep(0.1)
    with pytest.raises(LockTimeoutError):
        short.release()  # as redis-py's LockNotOwnedError


def test_lock_blocks_another_thread(c: CacheClient) -> None:
    order: list[str] = []
    held = threading.Event()

    def holder() -> None:
        with c.lock("x", timeout=5, sleep=0.01):
            held.set()
            time.sleep(0.1)
            order.append("first")

    t = threading.Thread(target=holder)
    t.start()
    assert held.wait(5)
    with c.lock("x", timeout=5, sleep=0.01, blocking_timeout=5):
        order.append("second")
    t.join(5)
    assert order == ["first", "second"]


# -- sets -------------------------------------------------------------------------
def test_sets(c: CacheClient, mode: str, raw: redis.Redis) -> None:
    assert c.sadd("s", "alice", "bob", ("t", 1), 7) == 4 and c.sadd("s", "alice") == 0
    assert c.smembers("s") == {"alice", "bob", ("t", 1), 7}
    assert c.sismember("s", "alice") and not c.sismember("s", "carol")
    assert c.smismember("s", "bob", "carol") == [True, False]
    assert c.scard("s") == 4 and c.srem("s", "bob", "zed") == 1
    c.sadd("t", "alice", "carol")
    assert c.sinter("s", "t") == {"alice"}
    assert c.sunion("s", "t") == {"alice", "carol", ("t", 1), 7}
    assert c.sdiff("s", "t") == {("t", 1), 7}
    assert c.sinterstore("i", "s", "t") == 1 and c.smembers("i") == {"alice"}
    assert c.sunionstore("u", "s", "t") == 4 and c.sdiffstore("d", "s", "t") == 2
    assert c.smove("s", "t", 7) is True and c.smove("s", "t", 7) is False
    assert c.sismember("t", 7)
    assert c.srandmember("t") in {"alice", "carol", 7}
    assert sorted(map(str, c.srandmember("t", 2))) != []
    assert c.sscan("t") == {"alice", "carol", 7} and c.sscan("t", match="c*") == {"carol"}
    assert set(c.sscan_iter("t", count=1)) == {"alice", "carol", 7}
    popped = c.spop("t")
    assert popped in {"alice", "carol", 7} and c.scard("t") == 2
    assert len(c.spop("t", 5)) == 2 and c.spop("t") is None and c.spop("t", 2) == set()
    with pytest.raises(SerializationError):
        c.sadd("s", object())
    stored = _all_bytes(raw, c.namespace)
    if mode == "encrypted":
        assert b"alice" not in stored and b"carol" not in stored
        assert msgpack.packb("alice") not in stored
    elif mode == "plain":
        assert msgpack.packb("alice") in stored


def test_planted_members_are_skipped_when_authenticated(c: CacheClient, mode: str,
                                                        raw: redis.Redis) -> None:
    c.sadd("s", "real")
    raw.sadd(c.full_key("s"), msgpack.packb("planted"))
    members = c.smembers("s")
    if mode == "plain":
        assert members == {"real", "planted"}
    else:
        assert members == {"real"} and c.metrics.errors["E003"] >= 1


# -- hashes -----------------------------------------------------------------------
def test_hashes(c: CacheClient, mode: str, raw: redis.Redis) -> None:
    assert c.hset("h", "name", "alice") == 1 and c.hset("h", "name", "bob") == 0
    assert c.hset("h", None, mapping={"age": 41, ("x", 1): [1, 2]}) == 2
    assert c.hget("h", "name") == "bob" and c.hget("h", "missing", "d") == "d"
    assert c.hget("h", "age") == 41 and c.hget("h", ("x", 1)) == [1, 2]
    assert c.hmget("h", "name", "nope") == ["bob", None]
    assert c.hgetall("h") == {"name": "bob", "age": 41, ("x", 1): [1, 2]}
    assert c.hlen("h") == 3 and sorted(map(str, c.hkeys("h"))) == sorted(
        ["name", "age", str(("x", 1))])
    assert c.hexists("h", "age") and not c.hexists("h", "nope")
    assert c.hdel("h", "age", "nope") == 1 and c.hlen("h") == 2
    fk = c.full_key("h")
    if mode != "plain":  # a value moved to another field fails to open: a miss
        fields = raw.hgetall(fk)
        name_f = c.codec.pack_member("name")
        other_f = c.codec.pack_member(("x", 1))
        raw.hset(fk, other_f, fields[name_f])
        assert c.hget("h", ("x", 1)) is None
    if mode == "encrypted":
        stored = _all_bytes(raw, c.namespace)
        assert b"bob" not in stored and b"name" not in stored


# -- sorted sets ------------------------------------------------------------------
def test_sorted_sets(c: CacheClient, mode: str, raw: redis.Redis) -> None:
    assert c.zadd("z", {"alice": 3, "bob": 1, "carol": 2}) == 3
    assert c.zadd("z", {"alice": 5}, ch=True) == 1 and c.zadd("z", {"dave": 9}, xx=True) == 0
    assert c.zadd("z", {"bob": 5}, incr=True) == 6.0
    assert c.zrange("z", 0, -1) == ["carol", "alice", "bob"]
    assert c.zrange("z", 0, -1, withscores=True) == [("carol", 2.0), ("alice", 5.0),
                                                    ("bob", 6.0)]
    assert c.zrevrange("z", 0, 0) == ["bob"]
    assert c.zrange("z", 0, 1, desc=True, withscores=True) == [("bob", 6.0), ("alice", 5.0)]
    assert c.zrangebyscore("z", 2, 4) == ["carol"]
    assert c.zrevrangebyscore("z", "+inf", 3, withscores=True) == [("bob", 6.0), ("alice", 5.0)]
    assert c.zscore("z", "alice") == 5.0 and c.zscore("z", "nobody") is None
    assert c.zmscore("z", "carol", "nobody") == [2.0, None]
    assert c.zincrby("z", 1.5, "carol") == 3.5
    assert c.zrank("z", "carol") == 0 and c.zrevrank("z", "carol") == 2
    assert c.zrank("z", "nobody") is None
    assert c.zcard("z") == 3 and c.zcount("z", 3, 5) == 2 and c.zcount("z", "(3.5", 5) == 1
    assert c.zpopmin("z") == ("carol", 3.5) and c.zpopmax("z", 1) == [("bob", 6.0)]
    assert c.zrem("z", "alice", "nobody") == 1 and c.zpopmin("z") is None
    assert c.zpopmax("z", 2) == []
    c.zadd("z", {"a": 1, "b": 2, "c": 3})
    assert c.zremrangebyscore("z", 1, 1) == 1 and c.zremrangebyrank("z", 0, 0) == 1
    assert c.zrange("z", 0, -1) == ["c"]
    if mode == "encrypted":
        assert b"alice" not in _all_bytes(raw, c.namespace)


# -- the redis-py client ----------------------------------------------------------
def test_get_client_is_raw_redis_py(c: CacheClient) -> None:
    r = c.get_client()
    assert c.raw() is r
    r.set(c.full_key("direct"), b"5")
    assert r.get(c.full_key("direct")) == b"5"


# -- fail-open answers ------------------------------------------------------------
def test_fail_open_answers_with_the_breaker_open(make_client: MakeClient) -> None:
    c = make_client(MASTER_KEY=KEY_A, CIRCUIT_BREAKER_FAILURE_THRESHOLD=1,
                    CIRCUIT_BREAKER_RECOVERY_TIMEOUT=60)
    c.sadd("s", "a")
    c.breaker.record_failure()
    assert c.breaker.state is State.OPEN
    answers = {
        "ttl": c.ttl("s"), "pttl": c.pttl("s"), "expire": c.expire("s", 5),
        "pexpire": c.pexpire("s", 5), "expire_at": c.expire_at("s", time.time() + 5),
        "pexpire_at": c.pexpire_at("s", int(time.time() * 1000) + 5),
        "persist": c.persist("s"), "keys": c.keys(), "iter_keys": list(c.iter_keys()),
        "delete_pattern": c.delete_pattern("*"), "set_nx": c.set("n", 1, nx=True),
        "set_xx": c.set("n", 1, xx=True), "incr": c.incr("n", ignore_key_check=True),
        "sadd": c.sadd("s", "b"), "srem": c.srem("s", "a"), "smembers": c.smembers("s"),
        "sismember": c.sismember("s", "a"), "smismember": c.smismember("s", "a"),
        "scard": c.scard("s"), "sinter": c.sinter("s", "t"), "sunion": c.sunion("s"),
        "sdiff": c.sdiff("s"), "sinterstore": c.sinterstore("d", "s"),
        "smove": c.smove("s", "t", "a"), "spop": c.spop("s"), "spop_n": c.spop("s", 2),
        "srandmember": c.srandmember("s"), "srandmember_n": c.srandmember("s", 2),
        "sscan": c.sscan("s"), "sscan_iter": list(c.sscan_iter("s")),
        "hset": c.hset("h", "f", 1), "hget": c.hget("h", "f", "dflt"),
        "hmget": c.hmget("h", "f"), "hgetall": c.hgetall("h"), "hdel": c.hdel("h", "f"),
        "hlen": c.hlen("h"), "hkeys": c.hkeys("h"), "hexists": c.hexists("h", "f"),
        "zadd": c.zadd("z", {"a": 1}), "zadd_incr": c.zadd("z", {"a": 1}, incr=True),
        "zrem": c.zrem("z", "a"), "zincrby": c.zincrby("z", 1, "a"),
        "zscore": c.zscore("z", "a"), "zrank": c.zrank("z", "a"), "zcard": c.zcard("z"),
        "zcount": c.zcount("z", 0, 1), "zrange": c.zrange("z", 0, -1),
        "zpopmin": c.zpopmin("z"), "zpopmax_n": c.zpopmax("z", 2),
        "lock": c.lock("l").acquire(blocking=False),
    }
    assert answers == {
        "ttl": 0.0, "pttl": 0, "expire": False, "pexpire": False, "expire_at": False,
        "pexpire_at": False, "persist": False, "keys": [], "iter_keys": [],
        "delete_pattern": 0, "set_nx": False, "set_xx": False, "incr": None, "sadd": 0,
        "srem": 0, "smembers": set(), "sismember": False, "smismember": [False],
        "scard": 0, "sinter": set(), "sunion": set(), "sdiff": set(), "sinterstore": 0,
        "smove": False, "spop": None, "spop_n": set(), "srandmember": None,
        "srandmember_n": [], "sscan": set(), "sscan_iter": [], "hset": 0, "hget": "dflt",
        "hmget": [None], "hgetall": {}, "hdel": 0, "hlen": 0, "hkeys": [],
        "hexists": False, "zadd": 0, "zadd_incr": None, "zrem": 0, "zincrby": None,
        "zscore": None, "zrank": None, "zcard": 0, "zcount": 0, "zrange": [],
        "zpopmin": None, "zpopmax_n": [], "lock": False,
    }
    with pytest.raises(LockTimeoutError), c.lock("l"):
        pass
    # writes that could not land invalidate their collections on recovery
    assert c.full_key("s") in c.pending and c.full_key("h") in c.pending
    c.breaker.reset()
    assert c.smembers("s") == set()  # the remembered delete landed first


def test_async_flavour(redis_url: str, namespace: str) -> None:
    import asyncio

    from .conftest import make_async

    async def run() -> None:
        c = make_async(redis_url, NAMESPACE=namespace, MASTER_KEY=KEY_A)
        try:
            assert await c.incr("n", ignore_key_check=True) == 1
            assert await c.sadd("s", "a", "b") == 2 and await c.smembers("s") == {"a", "b"}
            assert sorted(await c.keys()) == ["n", "s"]
            assert [k async for k in c.iter_keys("s")] == ["s"]
            async with c.lock("l", timeout=5) as held:
                assert await held.owned()
            assert await c.zadd("z", {"x": 1}) == 1 and await c.zpopmin("z") == ("x", 1.0)
            assert await c.pttl("n") > 0  # type: ignore[operator]
            assert await c.delete_pattern("*") == 2
        finally:
            await c.close()

    asyncio.run(run())
