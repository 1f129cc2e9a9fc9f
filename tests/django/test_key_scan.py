"""get_many skips Django's memcached key scan only for keys it would not warn about."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from django.core.cache import CacheKeyWarning

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


def test_a_subclass_validate_key_runs_for_every_key(redis_url: str, namespace: str) -> None:
    seen: list[str] = []

    class Strict(CachekitCache):  # type: ignore[misc]
        def validate_key(self, key: str) -> None:
            seen.append(key)

    conf = cache_conf(redis_url, namespace)
    strict = Strict(conf["LOCATION"], conf)
    strict.get_many(["a", "b"])
    assert len(seen) == 2


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
    seen: list[str] = []

    class Strict(CachekitCache):  # type: ignore[misc]
        def validate_key(self, key: str) -> None:
            seen.append(key)

    conf = cache_conf(redis_url, namespace)
    strict = Strict(conf["LOCATION"], conf)
    strict.get("a")
    strict.set("b", 1)
    assert len(seen) == 2
