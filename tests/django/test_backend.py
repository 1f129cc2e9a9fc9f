"""CachekitCache beyond Django's own suite: settings, signing, prefixes, async, fail-open."""

from __future__ import annotations

import asyncio
import pickle
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.http import HttpResponse

from cachekit_web import DEFERRED
from cachekit_web.core.errors import ConfigurationError
from cachekit_web.django import CachekitCache
from cachekit_web.django.config import derived_signing_key
from cachekit_web.embedded import EmbeddedRedis

from .conftest import BACKEND, cache_conf

MASTER_KEY = bytes(range(0xcd - 32, 0xcd)).hex()  # 32 distinct bytes


def test_unknown_option_fails_with_e041_and_did_you_mean(
        use_caches: Callable[..., Any], redis_url: str) -> None:
    use_caches({"default": cache_conf(redis_url, "x", SOCKET_TIMOUT=1)})
    with pytest.raises(ConfigurationError) as info:
        caches["default"].get("k")
    assert info.value.code == "E041"
    assert "did you mean SOCKET_TIMEOUT" in info.value.message


def test_bad_value_fails_with_e042(use_caches: Callable[..., Any], redis_url: str) -> None:
    use_caches({"default": cache_conf(redis_url, "x", SOCKET_TIMEOUT="soon")})
    with pytest.raises(ConfigurationError) as info:
        caches["default"].set("k", 1)
    assert info.value.code == "E042"


def test_location_falls_back_to_env_then_e040(
        use_caches: Callable[..., Any], redis_url: str, namespace: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    use_caches({"default": {"BACKEND": BACKEND, "OPTIONS": {"NAMESPACE": namespace}}})
    assert "E040" in repr(caches["default"])
    with pytest.raises(ConfigurationError) as info:
        caches["default"].get("k")
    assert info.value.code == "E040"
    monkeypatch.setenv("REDIS_URL", redis_url)
    use_caches({"default": {"BACKEND": BACKEND, "OPTIONS": {"NAMESPACE": namespace}}})
    cache = caches["default"]
    cache.set("k", 1)
    assert cache.get("k") == 1
    assert f"127.0.0.1:{redis_url.rsplit(':', 1)[1].split('/')[0]}" in cache.client.describe()


def test_signing_key_derived_from_secret_key_lets_django_objects_be_cached(
        cache: Any) -> None:
    from django.conf import settings

    from example_django.models import Article

    assert derived_signing_key(settings.SECRET_KEY) == cache.settings.SIGNING_KEY
    assert settings.SECRET_KEY not in repr(cache) and settings.SECRET_KEY not in str(
        cache.health().as_dict())
    assert not cache.client.codec.keyring.encrypted
    response = HttpResponse("hello", headers={"X-A": "1"})
    cache.set("response", response)
    got = cache.get("response")
    assert got.content == b"hello" and got["X-A"] == "1"
    article = Article.objects.first()
    assert article is not None
    cache.set("article", article)
    assert cache.get("article").title == article.title
    cache.set("qs", Article.objects.all())
    assert [a.pk for a in cache.get("qs")] == [a.pk for a in Article.objects.all()]


def test_signed_values_are_not_readable_with_another_secret_key(
        use_caches: Callable[..., Any], redis_url: str, namespace: str) -> None:
    use_caches({"default": cache_conf(redis_url, namespace)})
    caches["default"].set("obj", HttpResponse("x"))
    use_caches({"default": cache_conf(redis_url, namespace)}, SECRET_KEY="another-secret")
    assert caches["default"].get("obj", "missing") == "missing"


def test_encrypted_values_are_opaque_in_redis(
        use_caches: Callable[..., Any], redis_url: str, namespace: str) -> None:
    cache = use_caches({"default": cache_conf(redis_url, namespace, MASTER_KEY=MASTER_KEY)})
    cache.set("secret", "plain text value")
    raw = redis.Redis.from_url(redis_url)
    try:
        stored = [raw.get(k) for k in raw.scan_iter(match=f"{namespace}:*")]
    finally:
        raw.close()
    assert stored and all(b"plain text value" not in v for v in stored if v)
    assert cache.get("secret") == "plain text value"
    assert MASTER_KEY not in repr(cache) and MASTER_KEY not in str(cache.health().as_dict())


def test_clear_is_limited_to_this_caches_key_prefix(
        use_caches: Callable[..., Any], redis_url: str, namespace: str) -> None:
    use_caches({
        "default": cache_conf(redis_url, namespace),
        "other": {**cache_conf(redis_url, namespace), "KEY_PREFIX": "other"},
    })
    default, other = caches["default"], caches["other"]
    default.set("a", 1)
    other.set("a", 2)
    assert default.get("a") == 1 and other.get("a") == 2
    other.clear()
    assert other.get("a") is None
    assert default.get("a") == 1


def test_sub_second_timeouts_are_kept(cache: Any) -> None:
    cache.set("short", "v", 0.3)
    assert cache.get("short") == "v"
    assert 0 < cache.pttl("short") <= 300
    time.sleep(0.45)
    assert cache.get("short") is None


def test_incr_version_keeps_none_values_and_no_expiry(cache: Any) -> None:
    cache.set("forever", None, None)
    assert cache.incr_version("forever") == 2
    assert cache.get("forever", "missing", version=2) is None
    assert cache.ttl("forever", version=2) is None
    cache.set("timed", "v", 100)
    cache.incr_version("timed")
    assert 90 < cache.ttl("timed", version=2) <= 100
    with pytest.raises(ValueError):
        cache.incr_version("absent")


def test_unpicklable_value_raises_pickle_error_with_code(cache: Any) -> None:
    class Unpicklable:
        def __reduce__(self) -> Any:
            raise pickle.PickleError("no")

    with pytest.raises(pickle.PickleError) as info:
        cache.set("u", Unpicklable())
    assert info.value.code == "E020"


def test_async_methods_are_native(cache: Any) -> None:
    for name in ("aget", "aset", "aadd", "aget_many", "aset_many", "adelete", "adelete_many",
                 "ahas_key", "aincr", "adecr", "atouch", "aclear", "aget_or_set",
                 "aincr_version", "adecr_version"):
        assert getattr(CachekitCache, name) is not getattr(BaseCache, name), name

    async def run() -> None:
        assert type(cache.async_client).__name__ == "AsyncCacheClient"
        assert cache.async_client.breaker is cache.client.breaker
        await cache.aset("a", 1)
        assert await cache.aget("a") == 1
        assert await cache.aadd("a", 2) is False
        assert await cache.aset_many({"b": None, "c": 3}) == []
        assert await cache.aget_many(iter(["a", "b", "c", "d"])) == {"a": 1, "b": None, "c": 3}
        assert await cache.aincr("c", 2) == 5
        with pytest.raises(ValueError):
            await cache.aincr("nope")
        assert await cache.ahas_key("b") is True
        assert await cache.aincr_version("a") == 2
        assert await cache.aget("a", version=2) == 1

        async def compute() -> str:
            return "computed"

        assert await cache.aget_or_set("g", compute, 60) == "computed"
        assert cache.get("g") == "computed"
        await cache.adelete_many(["b", "c"])
        assert await cache.aget_many(["b", "c"]) == {}
        await cache.aclear()
        assert await cache.aget("g") is None

    asyncio.run(run())


def test_get_or_set_computes_once_across_threads(cache: Any) -> None:
    import threading

    runs: list[int] = []

    def compute() -> str:
        runs.append(1)
        time.sleep(0.3)
        return "value"

    out: list[str] = []
    threads = [threading.Thread(target=lambda: out.append(cache.get_or_set("once", compute, 60)))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert out == ["value"] * 6
    assert len(runs) == 1


def _down_conf(server: EmbeddedRedis, namespace: str) -> dict[str, Any]:
    return cache_conf(server.url, namespace, SOCKET_TIMEOUT=0.2, SOCKET_CONNECT_TIMEOUT=0.2,
                      CIRCUIT_BREAKER_FAILURE_THRESHOLD=2, LOCK_WAIT=0.5)


def _exercise_fail_open(cache: Any) -> None:
    assert cache.get("k", "default") == "default"
    cache.set("k", 1)
    assert cache.add("k", 1) is False
    assert cache.get_many(["k", "j"]) == {}
    assert cache.set_many({"k": 1, "j": 2}) == ["k", "j"]
    assert cache.delete("k") is DEFERRED
    assert cache.delete_many(["k"]) == 0  # none known to exist; replayed on recovery
    assert cache.has_key("k") is False
    assert cache.touch("k") is False
    with pytest.raises(ValueError):
        cache.incr("k")
    assert cache.get_or_set("k", lambda: "computed") == "computed"
    cache.clear()
    assert asyncio.run(cache.aget("k", "adefault")) == "adefault"


@pytest.mark.slow
def test_every_method_fails_open_when_redis_is_down(
        use_caches: Callable[..., Any], own_redis: EmbeddedRedis, namespace: str) -> None:
    cache = use_caches({"default": _down_conf(own_redis, namespace)})
    cache.set("k", "before")
    own_redis.kill()
    start = time.monotonic()
    _exercise_fail_open(cache)
    assert time.monotonic() - start < 3
    assert cache.client.breaker.state.value == "open"
    assert cache.health().status == "down"


@pytest.mark.slow
def test_every_method_fails_open_when_redis_hangs(
        use_caches: Callable[..., Any], own_redis: EmbeddedRedis, namespace: str) -> None:
    cache = use_caches({"default": _down_conf(own_redis, namespace)})
    cache.set("k", "before")
    own_redis.pause()
    try:
        start = time.monotonic()
        _exercise_fail_open(cache)
        elapsed = time.monotonic() - start
    finally:
        own_redis.resume()
    # Two timeouts open the breaker; everything after that skips the network.
    assert elapsed < 3, elapsed
    assert cache.client.breaker.state.value == "open"


def test_environ_cache_url_builds_a_working_entry(
        use_caches: Callable[..., Any], redis_url: str, namespace: str) -> None:
    import environ

    import cachekit_web.django  # noqa: F401  (registers the schemes)

    env = environ.Env()
    url = redis_url.replace("redis://", "cachekit+redis://") + \
        f"?NAMESPACE={namespace}&MASTER_KEY={MASTER_KEY}&TIMEOUT=60"
    conf = env.cache_url_config(url)
    assert conf["BACKEND"] == "cachekit_web.django.CachekitCache"
    assert conf["LOCATION"] == redis_url and conf["TIMEOUT"] == 60
    cache = use_caches({"default": conf})
    cache.set("k", "v")
    assert cache.get("k") == "v"
    assert cache.client.codec.keyring.encrypted
    assert cache.default_timeout == 60
    unix = env.cache_url_config("cachekit+unix:///tmp/redis.sock?db=2&STRICT=true")
    assert unix["LOCATION"] == "unix:///tmp/redis.sock?db=2"
    assert unix["OPTIONS"] == {"STRICT": "true"}
    assert env.cache_url_config("cachekit+rediss://h:6380/1")["LOCATION"] == "rediss://h:6380/1"
