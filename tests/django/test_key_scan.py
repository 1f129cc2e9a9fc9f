"""get_many skips Django's memcached key scan only for keys it would not warn about."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest
from django.core.cache import CacheKeyWarning

from cachekit_web.core.errors import InvalidKeyError
from cachekit_web.django import CachekitCache

from .conftest import cache_conf


def test_get_many_warns_exactly_as_django(cache: Any) -> None:
    cache.set_many({"plain": 1, "ключ": 2})
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheKeyWarning)
        assert cache.get_many(["plain", "ключ", "absent"]) == {"plain": 1, "ключ": 2}
    for bad in ("has space", "tab\tkey", "x" * 260, "del\x7f"):
        with pytest.warns(CacheKeyWarning):
            cache.get_many(["plain", bad])


def _strict(redis_url: str, namespace: str) -> tuple[Any, list[str]]:
    """A CachekitCache subclass with its own validate_key, and the keys it was shown."""
    seen: list[str] = []

    class Strict(CachekitCache):  # type: ignore[misc]
        def validate_key(self, key: str) -> None:
            seen.append(key)

    conf = cache_conf(redis_url, namespace)
    return Strict(conf["LOCATION"], conf), seen


def test_a_subclass_validate_key_runs_for_every_key(redis_url: str, namespace: str) -> None:
    strict, seen = _strict(redis_url, namespace)
    strict.get_many(["a", "b"])
    assert len(seen) == 2


def test_a_subclass_make_and_validate_key_is_used_by_every_read(redis_url: str,
                                                                 namespace: str) -> None:
    class Lower(CachekitCache):  # type: ignore[misc]
        def make_and_validate_key(self, key: Any, version: int | None = None) -> str:
            return str(super().make_and_validate_key(str(key).lower(), version=version))

    conf = cache_conf(redis_url, namespace)
    lower = Lower(conf["LOCATION"], conf)
    lower.set("ABC", "v")
    assert lower.get("abc") == "v" and lower.get("ABC") == "v"
    assert lower.get_many(["ABC", "x"]) == {"ABC": "v"}
    assert asyncio.run(lower.aget_many(["ABC"])) == {"ABC": "v"}
    assert asyncio.run(lower.aget("ABC")) == "v"


def test_remembered_keys_follow_prefix_and_version(cache: Any) -> None:
    cache.set("k", "v1")
    cache.set("k", "v2", version=2)
    assert cache.get_many(["k"]) == {"k": "v1"}  # now remembered for KEY_PREFIX "" version 1
    assert cache.get_many(["k"], version=2) == {"k": "v2"}
    cache.version = 2
    assert cache.get_many(["k"]) == {"k": "v2"}
    assert cache.get_many(["k"], version=1) == {"k": "v1"}
    cache.key_prefix = "other"
    assert cache.get_many(["k"]) == {}
    cache.set("k", "other's")
    assert cache.get_many(["k"]) == {"k": "other's"}
    cache.key_prefix, cache.version = "", 1
    assert cache.get_many(["k"]) == {"k": "v1"}


def test_answers_carry_the_callers_keys(cache: Any) -> None:
    cache.set("1", "one")
    cache.set(True, "true")
    assert cache.get_many(["1"]) == {"1": "one"}  # "1" remembered
    got = cache.get_many([1])  # 1 makes the same key as "1"
    assert got == {1: "one"} and type(next(iter(got))) is int
    got = cache.get_many([True])  # True == 1, but makes a key of its own
    assert got == {True: "true"} and type(next(iter(got))) is bool


def test_a_key_function_is_asked_every_time(use_caches: Any, redis_url: str,
                                            namespace: str) -> None:
    tenant = ["a"]

    def per_tenant(key: str, key_prefix: str, version: int) -> str:
        return f"{tenant[0]}:{key_prefix}:{version}:{key}"

    conf = cache_conf(redis_url, namespace)
    conf["KEY_FUNCTION"] = per_tenant
    cache = use_caches({"default": conf})
    cache.set("k", "for a")
    assert cache.get_many(["k"]) == {"k": "for a"}
    tenant[0] = "b"
    assert cache.get_many(["k"]) == {}
    cache.set("k", "for b")
    assert cache.get_many(["k"]) == {"k": "for b"}


def test_a_warned_key_warns_on_every_read(cache: Any) -> None:
    for _ in range(2):
        with pytest.warns(CacheKeyWarning):
            cache.get_many(["has space"])


def test_many_distinct_keys_stay_right(cache: Any) -> None:
    keys = [f"k{i}" for i in range(5000)]  # more than a cache object remembers
    cache.set_many(dict.fromkeys(keys[::500], "v"))
    for _ in range(2):
        assert cache.get_many(keys) == dict.fromkeys(keys[::500], "v")
    assert len(cache._made) <= 4096 and len(cache._fulls) <= 4096


def test_remembered_and_new_keys_mix_in_one_read(cache: Any) -> None:
    cache.set_many({"a": 1, "b": 2, "c": 3})
    assert cache.get_many(["a", "b"]) == {"a": 1, "b": 2}  # now remembered
    for keys in (["a", "c", "b", "a"], iter(["a", "c", "b", "a"]), ("a", "c", "b", "a")):
        got = cache.get_many(keys)
        assert got == {"a": 1, "c": 3, "b": 2} and list(got) == ["a", "c", "b"]
    got = cache.get_many(["c", 1, "a"])
    assert got == {"c": 3, "a": 1} and list(got) == ["c", "a"]
    assert asyncio.run(cache.aget_many(iter(["b", "z", "a"]))) == {"b": 2, "a": 1}


def test_an_invalid_key_after_remembered_ones_is_e023(cache: Any) -> None:
    cache.set("a", 1)
    for _ in range(2):  # before and after "a" is remembered
        assert cache.get_many(["a"]) == {"a": 1}
        with pytest.raises(InvalidKeyError) as info:
            cache.get_many(["a", "b\ud800", "c"])
        assert info.value.code == "E023"
    with warnings.catch_warnings(record=True) as seen:  # every key is scanned before E023
        warnings.simplefilter("always", CacheKeyWarning)
        with pytest.raises(InvalidKeyError):
            cache.get_many(["a", "b\ud800", "has space"])
    assert len(seen) == 1
    assert "b\ud800" not in cache._fulls and "has space" not in cache._fulls


def test_single_key_operations_warn_exactly_as_django(cache: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheKeyWarning)
        cache.set("plain", 1)
        assert cache.get("plain") == 1 and cache.get("ключ") is None
    for bad in ("has space", "tab\tkey", "x" * 260, "del\x7f"):
        with pytest.warns(CacheKeyWarning):
            cache.get(bad)
        with pytest.warns(CacheKeyWarning):
            cache.set(bad, 1)


def test_a_subclass_validate_key_runs_for_single_keys(redis_url: str, namespace: str) -> None:
    strict, seen = _strict(redis_url, namespace)
    strict.get("a")
    strict.set("b", 1)
    assert len(seen) == 2


def test_local_hit_remembers_keys_only_as_get_many_does(use_caches: Any, redis_url: str,
                                                        namespace: str, cache: Any) -> None:
    made: list[str] = []

    def counted(key: str, key_prefix: str, version: int) -> str:
        made.append(key)
        return f"{key_prefix}:{version}:{key}"

    for _ in range(2):  # a warned key warns on every lookup
        with pytest.warns(CacheKeyWarning):
            cache.local_hit("has space", local=True)
    cache.local_hit("k", local=True)
    assert cache._made.get("k") == cache.make_key("k")  # the default key rules: remembered
    cache.key_prefix = "other"
    cache.local_hit("k", local=True)
    assert cache._made.get("k") == "other:1:k"  # follows KEY_PREFIX
    conf = cache_conf(redis_url, namespace)
    conf["KEY_FUNCTION"] = counted
    own = use_caches({"default": conf})
    for _ in range(3):
        own.local_hit("k", local=True)
    assert made == ["k", "k", "k"]  # a key function is asked every time
