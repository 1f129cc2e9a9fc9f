"""The django-redis API on CachekitCache, against a real redis-server: Django keys and
versions translated, each answer checked, and the fail-open answer with the breaker open."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import caches

from cachekit_web.core.errors import LockTimeoutError
from cachekit_web.core.resilience.breaker import State

from .conftest import cache_conf


def test_ttl_is_whole_seconds_and_pttl_milliseconds(cache: Any) -> None:
    cache.set("k", 1, 100)
    assert cache.ttl("k") == 100 and isinstance(cache.ttl("k"), int)
    assert 99_000 < cache.pttl("k") <= 100_000
    cache.set("short", 1, 0.3)
    assert cache.ttl("short") == 1  # rounded up: a live key never reads as missing
    cache.set("forever", 1, None)
    assert cache.ttl("forever") is None and cache.pttl("forever") is None
    assert cache.ttl("missing") == 0 and cache.pttl("missing") == 0


def test_expire_family_and_persist(cache: Any) -> None:
    cache.set("k", "v", None)
    assert cache.expire("k", 50) is True and 45 < cache.ttl("k") <= 50
    assert cache.pexpire("k", 20_000) is True and 19 < cache.ttl("k") <= 20
    assert cache.expire_at("k", dt.datetime.now() + dt.timedelta(seconds=30)) is True
    assert 25 < cache.ttl("k") <= 30
    assert cache.pexpire_at("k", int(time.time() * 1000) + 10_000) is True
    assert 5 < cache.ttl("k") <= 10
    assert cache.persist("k") is True and cache.ttl("k") is None
    assert cache.get("k") == "v"
    assert cache.expire("missing", 5) is False and cache.persist("missing") is False
    assert cache.expire("k", 0) is True and cache.get("k") is None


def test_versions_are_translated(cache: Any) -> None:
    cache.set("k", "v1", 100, version=1)
    cache.set("k", "v2", None, version=2)
    assert cache.ttl("k", version=2) is None and cache.ttl("k", version=1) == 100
    assert cache.persist("k", version=1) is True and cache.ttl("k", version=1) is None
    assert cache.keys("k", version=2) == ["k"]
    assert cache.keys("*") == ["k"]  # the cache's VERSION (1) only


def test_keys_iter_keys_delete_pattern_stay_in_this_cache(
        use_caches: Callable[..., Any], redis_url: str, namespace: str) -> None:
    use_caches({"default": cache_conf(redis_url, namespace),
                "other": {**cache_conf(redis_url, namespace), "KEY_PREFIX": "p*"}})
    cache, other = caches["default"], caches["other"]
    cache.clear()
    other.clear()
    cache.set_many({"user:1": 1, "user:2": 2, "page:1": 3})
    cache.set("user:3", 4, version=2)
    other.set("user:9", 9)
    assert sorted(cache.keys("user:*")) == ["user:1", "user:2"]
    assert sorted(cache.iter_keys("*", itersize=1)) == ["page:1", "user:1", "user:2"]
    assert cache.keys("user:*", version=2) == ["user:3"]
    assert other.keys("*") == ["user:9"]  # a KEY_PREFIX with '*' is matched literally
    assert cache.delete_pattern("user:*") == 2
    assert cache.keys("*") == ["page:1"] and cache.get("user:3", version=2) == 4
    assert other.get("user:9") == 9


def test_delete_many_counts_what_existed(cache: Any) -> None:
    cache.set_many({"a": 1, "b": 2})
    assert cache.delete_many(["a", "b", "c"]) == 2
    assert cache.delete_many([]) is None  # as Django's suite and django-redis expect


def test_set_nx_xx(cache: Any) -> None:
    assert cache.set("k", 1, xx=True) is False and cache.get("k") is None
    assert cache.set("k", 1, nx=True) is True
    assert cache.set("k", 2, nx=True) is False and cache.get("k") == 1
    assert cache.set("k", 3, xx=True) is True and cache.get("k") == 3
    assert cache.set("k", 4) is True


def test_incr_ignore_key_check(use_caches: Callable[..., Any], redis_url: str,
                               namespace: str) -> None:
    cache = use_caches({"default": {**cache_conf(redis_url, namespace), "TIMEOUT": 120}})
    with pytest.raises(ValueError):
        cache.incr("hits")
    assert cache.incr("hits", ignore_key_check=True) == 1
    assert cache.incr("hits", 5, ignore_key_check=True) == 6
    assert cache.decr("hits", 2) == 4 and cache.get("hits") == 4
    assert 110 < cache.ttl("hits") <= 120  # the cache's TIMEOUT, not forever


def test_lock_is_a_context_manager_and_excludes_others(cache: Any) -> None:
    with cache.lock("job", timeout=5, blocking_timeout=0.5) as held:
        assert held.owned()
        other = cache.lock("job", blocking_timeout=0.1)
        assert other.acquire() is False
        started = threading.Event()
        got: list[bool] = []

        def contender() -> None:
            started.set()
            got.append(cache.lock("job", sleep=0.01, blocking_timeout=2).acquire())

        t = threading.Thread(target=contender)
        t.start()
        started.wait(2)
    t.join(5)
    assert got == [True]  # acquired once the first holder released
    assert "job" not in cache.keys("*")  # a lock key never shows as a cache key


def test_sets_hashes_sorted_sets_with_versions(cache: Any) -> None:
    assert cache.sadd("s", "a", "b", 3) == 3
    assert cache.sadd("s", "a", version=2) == 1
    assert cache.smembers("s") == {"a", "b", 3} and cache.smembers("s", version=2) == {"a"}
    assert cache.sismember("s", "a") and not cache.sismember("s", "z")
    assert cache.scard("s") == 3 and cache.srem("s", "b") == 1
    cache.sadd("t", "a", "x")
    assert cache.sinter("s", "t") == {"a"} and cache.sunion("s", "t") == {"a", 3, "x"}
    assert cache.sdiff("s", "t") == {3}
    assert cache.sinterstore("st", "s", "t") == 1 and cache.smembers("st") == {"a"}
    assert cache.smove("t", "s", "x") is True and "x" in cache.smembers("s")
    assert cache.sscan("s", match="a*") == {"a"}
    assert set(cache.sscan_iter("s")) == {"a", 3, "x"}
    assert cache.spop("st") == "a" and cache.srandmember("st") is None
    assert cache.hset("h", "f", {"v": 1}) == 1
    assert cache.hget("h", "f") == {"v": 1} and cache.hget("h", "g", "d") == "d"
    assert cache.hexists("h", "f") and cache.hlen("h") == 1 and cache.hkeys("h") == ["f"]
    assert cache.hgetall("h") == {"f": {"v": 1}} and cache.hdel("h", "f") == 1
    assert cache.zadd("z", {"a": 1, "b": 2}) == 2 and cache.zincrby("z", 5, "a") == 6.0
    assert cache.zrange("z", 0, -1) == ["b", "a"]
    assert cache.zrange("z", 0, -1, withscores=True) == [("b", 2.0), ("a", 6.0)]
    assert cache.zscore("z", "a") == 6.0 and cache.zrank("z", "a") == 1
    assert cache.zcard("z") == 2 and cache.zcount("z", 0, 3) == 1
    assert cache.zpopmin("z") == ("b", 2.0) and cache.zpopmax("z") == ("a", 6.0)
    assert sorted(cache.keys("*")) == ["s", "t"]  # emptied collections are gone


def test_get_client_is_raw_redis_py_and_close(
        use_caches: Callable[..., Any], redis_url: str, namespace: str) -> None:
    import redis

    cache = use_caches({"default": cache_conf(redis_url, namespace, CLOSE_CONNECTION=True)})
    raw = cache.get_client()
    assert isinstance(raw, redis.Redis) and raw is cache.client.get_client()
    assert raw.ping() is True
    cache.set("k", 1)
    assert _open_sockets(raw) >= 1
    cache.close()  # CLOSE_CONNECTION: the pool's connections are released
    assert _open_sockets(raw) == 0
    assert cache.get("k") == 1  # and reopened on next use
    assert _open_sockets(raw) >= 1


def _open_sockets(raw: Any) -> int:
    return sum(1 for conn in raw.connection_pool._connections if conn._sock is not None)


def test_close_keeps_the_pool_by_default(cache: Any) -> None:
    cache.set("k", 1)
    raw = cache.get_client()
    cache.close()
    assert _open_sockets(raw) >= 1


def test_async_twins(cache: Any) -> None:
    async def run() -> list[Any]:
        return [
            await cache.aset("k", 1, nx=True), await cache.aset("k", 2, nx=True),
            await cache.aincr("n", ignore_key_check=True), await cache.adelete_many(["k", "x"]),
            await cache.asadd("s", "a"), await cache.asmembers("s"),
            await cache.ahset("h", "f", 1), await cache.ahget("h", "f"),
            await cache.azadd("z", {"m": 1}), await cache.azscore("z", "m"),
            await cache.aexpire("n", 30), 25 < (await cache.apttl("n")) / 1000 <= 30,
            await cache.apersist("n"),
        ]

    assert asyncio.run(run()) == [True, False, 1, 1, 1, {"a"}, 1, 1, 1, 1.0, True, True, True]


def test_fail_open_answers_with_the_breaker_open(
        use_caches: Callable[..., Any], redis_url: str, namespace: str) -> None:
    cache = use_caches({"default": cache_conf(
        redis_url, namespace, CIRCUIT_BREAKER_FAILURE_THRESHOLD=1,
        CIRCUIT_BREAKER_RECOVERY_TIMEOUT=60)})
    cache.set("k", 1)
    cache.client.breaker.record_failure()
    assert cache.client.breaker.state is State.OPEN
    answers = {
        "ttl": cache.ttl("k"), "pttl": cache.pttl("k"), "expire": cache.expire("k", 5),
        "persist": cache.persist("k"), "keys": cache.keys("*"),
        "delete_pattern": cache.delete_pattern("*"), "delete_many": cache.delete_many(["k"]),
        "set_nx": cache.set("n", 1, nx=True), "set": cache.set("n", 1),
        "sadd": cache.sadd("s", "a"), "smembers": cache.smembers("s"),
        "hget": cache.hget("h", "f", "d"), "zscore": cache.zscore("z", "m"),
        "lock": cache.lock("l").acquire(blocking=False),
    }
    assert answers == {
        "ttl": 0, "pttl": 0, "expire": False, "persist": False, "keys": [],
        "delete_pattern": 0, "delete_many": 0, "set_nx": False, "set": False, "sadd": 0,
        "smembers": set(), "hget": "d", "zscore": None, "lock": False,
    }
    with pytest.raises(ValueError):
        cache.incr("n", ignore_key_check=True)
    with pytest.raises(LockTimeoutError), cache.lock("l"):
        pass


def _ratelimit_hit(cache: Any, key: str) -> int:
    """What django-ratelimit does per request: add the window's key at 0, then incr it."""
    cache.add(key, 0, 60)
    return int(cache.incr(key))


def test_counters_are_sealed_unless_plain_counters_names_them(
        use_caches: Callable[..., Any], redis_url: str, namespace: str) -> None:
    import redis

    cache = use_caches({
        "default": cache_conf(redis_url, namespace, PLAIN_COUNTERS=["rl:*"]),
        "sealed": {**cache_conf(redis_url, namespace + "-s"), "KEY_PREFIX": "site"},
    })
    sealed = caches["sealed"]
    raw = redis.Redis.from_url(redis_url)
    try:
        # django-ratelimit's keys ('rl:' + a hash) match the caller's key, whatever
        # KEY_PREFIX or VERSION make of it: plain Redis integers, one INCRBY.
        assert [_ratelimit_hit(cache, "rl:abc") for _ in range(3)] == [1, 2, 3]
        fk = cache.client.full_key(cache.make_key("rl:abc"))
        assert raw.get(fk) == b"3" and raw.object("encoding", fk) == b"int"
        assert cache.get("rl:abc") == 3
        assert cache.incr("rl:abc", version=2, ignore_key_check=True) == 1
        assert raw.get(cache.client.full_key(cache.make_key("rl:abc", version=2))) == b"1"
        # Any other key is sealed, and digits over it are not served.
        assert [_ratelimit_hit(sealed, "rl:abc") for _ in range(3)] == [1, 2, 3]
        sk = sealed.client.full_key(sealed.make_key("rl:abc"))
        assert raw.get(sk)[:2] == b"CK"  # type: ignore[index]
        cache.set("price", 42)
        pk = cache.client.full_key(cache.make_key("price"))
        assert raw.get(pk)[:2] == b"CK"  # type: ignore[index]
        raw.set(pk, b"1", keepttl=True)
        assert cache.get("price") is None and cache.get_many(["price"]) == {}
        raw.set(sk, b"1000", keepttl=True)
        with pytest.raises(ValueError):
            sealed.incr("rl:abc")  # a forged counter is a missing one
    finally:
        raw.close()


# -- django-redis call signatures (issue 19) ------------------------------------------
def test_get_redis_connection_is_the_raw_client_of_an_alias(
        use_caches: Callable[..., Any], redis_url: str, namespace: str) -> None:
    import redis

    from cachekit_web.django import get_redis_connection

    use_caches({"default": cache_conf(redis_url, namespace),
                "other": cache_conf(redis_url, namespace + "-o"),
                "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}})
    raw = get_redis_connection()
    assert isinstance(raw, redis.Redis) and raw is caches["default"].get_client()
    assert get_redis_connection("default", write=False) is raw  # one client reads and writes
    assert get_redis_connection("other").ping() is True
    with pytest.raises(NotImplementedError, match="local"):
        get_redis_connection("local")


def test_client_get_client_takes_django_redis_arguments(cache: Any) -> None:
    raw = cache.get_client()
    assert cache.client.get_client(write=True) is raw
    assert cache.client.get_client(write=False) is raw
    assert cache.client.get_client("some-key", write=False) is raw
    assert cache.get_client("k", write=False) is raw


def test_expire_and_pexpire_default_timeout_is_the_caches(
        use_caches: Callable[..., Any], redis_url: str, namespace: str) -> None:
    from django.core.cache.backends.base import DEFAULT_TIMEOUT

    cache = use_caches({"default": {**cache_conf(redis_url, namespace), "TIMEOUT": 60}})
    cache.set("k", "v", None)
    assert cache.expire("k", timeout=DEFAULT_TIMEOUT) is True
    assert 55 < cache.ttl("k") <= 60
    cache.persist("k")
    assert cache.pexpire("k", timeout=DEFAULT_TIMEOUT) is True
    assert 55_000 < cache.pttl("k") <= 60_000
    assert cache.expire("k") is True and cache.pexpire("k") is True  # the default itself


def test_expire_default_timeout_none_means_forever(
        use_caches: Callable[..., Any], redis_url: str, namespace: str) -> None:
    cache = use_caches({"default": {**cache_conf(redis_url, namespace), "TIMEOUT": None}})
    cache.set("k", "v", 30)
    assert cache.expire("k") is True and cache.ttl("k") is None
    cache.set("k", "v", 30)
    assert cache.pexpire("k") is True and cache.ttl("k") is None


def test_sdiffstore_version_dest_and_version_keys(cache: Any) -> None:
    cache.sadd("a", 1, 2, 3, version=2)
    cache.sadd("b", 2, version=2)
    assert cache.sdiffstore("d", "a", "b", version_keys=2) == 2
    assert cache.smembers("d") == {1, 3}  # dest in the cache's version
    assert cache.sdiffstore("d", "a", "b", version_dest=3, version_keys=2) == 2
    assert cache.smembers("d", version=3) == {1, 3}
    assert cache.sdiffstore("e", "a", "b", version=2) == 2  # one version for all
    assert cache.smembers("e", version=2) == {1, 3}


def test_set_commands_take_version_keywords(cache: Any) -> None:
    cache.sadd("a", "x", "y", version=4)
    cache.sadd("b", "y", version=4)
    assert cache.sinterstore("i", "a", "b", version_dest=5, version_keys=4) == 1
    assert cache.smembers("i", version=5) == {"y"}
    assert cache.sunionstore("u", "a", "b", version_keys=4) == 2
    assert cache.smembers("u") == {"x", "y"}
    assert cache.smove("a", "b", "x", version=4) is True
    assert cache.smembers("b", version=4) == {"x", "y"}
    assert cache.spop("a", version=4) == "y" and cache.scard("a", version=4) == 0
    assert cache.srandmember("b", 5, version=4) and cache.smismember(
        "b", "x", "z", version=4) == [True, False]


def test_sscan_and_sscan_iter_with_match_and_version(cache: Any) -> None:
    cache.sadd("s", "apple", "avocado", "banana", 7, version=2)
    assert cache.sscan("s", match="a*", version=2) == {"apple", "avocado"}
    assert cache.sscan("s", match="a*", count=1, version=2) == {"apple", "avocado"}
    assert set(cache.sscan_iter("s", match="*an*", version=2)) == {"banana"}
    assert set(cache.sscan_iter("s", version=2)) == {"apple", "avocado", "banana", 7}
    assert cache.sscan("s", match="a*") == set()  # another version: another set


def _hash_key(key: str, prefix: str, version: Any) -> str:
    return f"{prefix}#{version}#{key}"


def _unhash_key(key: str) -> str:
    return key.split("#", 2)[2]


def test_reverse_key_function_gives_keys_back_in_callers_form(
        use_caches: Callable[..., Any], redis_url: str, namespace: str) -> None:
    here = __name__
    cache = use_caches({"default": {**cache_conf(redis_url, namespace),
                                    "KEY_FUNCTION": f"{here}._hash_key",
                                    "REVERSE_KEY_FUNCTION": f"{here}._unhash_key"}})
    for key in ("foo-aa", "foo-ab", "foo-bb"):
        cache.set(key, 1)
    assert cache.delete_pattern("*foo-a*") == 2
    assert sorted(cache.keys("foo*")) == ["foo-bb"]
    assert list(cache.iter_keys("foo-b*")) == ["foo-bb"]


def test_ignore_exceptions_reads_as_fail_open(
        use_caches: Callable[..., Any], redis_url: str, namespace: str) -> None:
    use_caches({"default": cache_conf(redis_url, namespace),
                "strict": cache_conf(redis_url, namespace, STRICT=True)})
    assert caches["default"]._ignore_exceptions is True
    assert caches["default"]._log_ignored_exceptions is True
    assert caches["strict"]._ignore_exceptions is False


def test_django_redis_probes_on_the_client(cache: Any) -> None:
    # their suite skips sscan(match=...) with compression; here match works on decoded members
    assert cache.client._has_compression_enabled() is False
    cache.set("d", {"when": dt.datetime(2026, 1, 2, 3, 4, 5)})
    assert cache.client._serializer is cache.client.codec
    assert cache.get("d") == {"when": dt.datetime(2026, 1, 2, 3, 4, 5)}
