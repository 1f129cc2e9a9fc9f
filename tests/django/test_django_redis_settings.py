"""A django-redis CACHES entry pasted as is: accepted where the meaning is identical, E041
naming what to write instead for every other key (OPTIONS and DJANGO_REDIS_* settings)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from cachekit_web.core import foreign
from cachekit_web.core.errors import ConfigurationError

BACKEND = "cachekit_web.django.CachekitCache"


def _entry(url: str, namespace: str, **options: Any) -> dict[str, Any]:
    return {"BACKEND": BACKEND, "LOCATION": url, "OPTIONS": {"NAMESPACE": namespace, **options}}


def _e041(use_caches: Callable[..., Any], entry: dict[str, Any], **settings: Any) -> str:
    use_caches({"default": entry}, **settings)
    with pytest.raises(ConfigurationError) as info:
        caches["default"].get("k")
    assert info.value.code == "E041"
    return info.value.message


def test_a_typical_django_redis_entry_works_as_is(
        use_caches: Callable[..., Any], redis_url: str, namespace: str) -> None:
    cache = use_caches({"default": _entry(
        redis_url, namespace,
        CLIENT_CLASS="django_redis.client.DefaultClient",
        IGNORE_EXCEPTIONS=True, SOCKET_TIMEOUT=2, SOCKET_CONNECT_TIMEOUT=1.5,
        CONNECTION_POOL_KWARGS={"max_connections": 7, "health_check_interval": 10},
        PICKLE_VERSION=-1, LOG_IGNORED_EXCEPTIONS=True)},
        DJANGO_REDIS_IGNORE_EXCEPTIONS=True, DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS=True,
        DJANGO_REDIS_LOGGER="cachekit_web", DJANGO_REDIS_SCAN_ITERSIZE=50)
    cache.set("k", 1)
    assert cache.get("k") == 1
    s = cache.settings
    assert (s.SOCKET_TIMEOUT, s.SOCKET_CONNECT_TIMEOUT) == (2.0, 1.5)
    assert (s.CONNECTION_POOL_SIZE, s.HEALTH_CHECK_INTERVAL) == (7, 10.0)
    assert not s.STRICT and cache._itersize == 50


def test_password_goes_into_the_url_and_never_into_errors(
        use_caches: Callable[..., Any], own_redis: Any, namespace: str) -> None:
    secret = "s3cret/with:odd@chars"
    import redis

    redis.Redis.from_url(own_redis.url).config_set("requirepass", secret)
    cache = use_caches({"default": _entry(own_redis.url, namespace, PASSWORD=secret)})
    cache.set("k", 1)
    assert cache.get("k") == 1  # authenticated with the percent-encoded password
    assert secret not in repr(cache) and secret not in repr(cache.settings)
    with_userinfo = own_redis.url.replace("redis://", "redis://:other@")
    message = _e041(use_caches, _entry(with_userinfo, namespace, PASSWORD=secret))
    assert "PASSWORD" in message and secret not in message


@pytest.mark.parametrize(("name", "value", "advice"), [
    ("CLIENT_CLASS", "django_redis.client.HerdClient", "stampede protection built in"),
    ("CLIENT_CLASS", "django_redis.client.ShardClient", "Redis Cluster"),
    ("SERIALIZER", "django_redis.serializers.json.JSONSerializer", "values are msgpack"),
    ("COMPRESSOR", "django_redis.compressors.zlib.ZlibCompressor", "COMPRESS_MIN_SIZE"),
    ("IGNORE_EXCEPTIONS", False, "STRICT: True"),
    ("LOG_IGNORED_EXCEPTIONS", False, "'cachekit_web' logger"),
    ("CONNECTION_POOL_KWARGS", {"retry_on_timeout": True}, "a timeout is not retried"),
    ("CONNECTION_POOL_KWARGS", {"max_connections": 5, "decode_responses": True},
     "CONNECTION_POOL_KWARGS['decode_responses'] is not read"),
    ("PICKLE_VERSION", 4, "highest protocol"),
    ("CONNECTION_FACTORY", "x.Factory", "connections are made from LOCATION"),
    ("REDIS_CLIENT_CLASS", "redis.client.StrictRedis", "get_client()"),
    ("PARSER_CLASS", "redis.connection.HiredisParser", "hiredis"),
    ("SENTINELS", [("h", 26379)], "redis+sentinel://"),
    ("CLOSE_CONNECTION", False, "close() then releases"),
])
def test_each_option_with_another_meaning_gets_e041_and_what_to_write(
        use_caches: Callable[..., Any], redis_url: str, namespace: str,
        name: str, value: Any, advice: str) -> None:
    message = _e041(use_caches, _entry(redis_url, namespace, **{name: value}))
    assert name in message and "django-redis" in message and advice in message


@pytest.mark.parametrize(("name", "value", "advice"), [
    ("DJANGO_REDIS_IGNORE_EXCEPTIONS", False, "OPTIONS['STRICT'] = True"),
    ("DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS", False, "always logged"),
    ("DJANGO_REDIS_LOGGER", "myapp.cache", "'cachekit_web' logger in LOGGING"),
    ("DJANGO_REDIS_SCAN_ITERSIZE", "many", "positive integer"),
    ("DJANGO_REDIS_CONNECTION_FACTORY", "x.Factory", "connections are made from LOCATION"),
    ("DJANGO_REDIS_CLOSE_CONNECTION", "sometimes", "CLOSE_CONNECTION"),
])
def test_each_django_redis_setting_with_another_meaning_gets_e041(
        use_caches: Callable[..., Any], redis_url: str, namespace: str,
        name: str, value: Any, advice: str) -> None:
    message = _e041(use_caches, _entry(redis_url, namespace), **{name: value})
    assert f"settings.{name}" in message and advice in message


def test_all_problems_are_named_at_once_and_by_manage_py_check(
        use_caches: Callable[..., Any], redis_url: str, namespace: str) -> None:
    entry = _entry(redis_url, namespace, SERIALIZER="x.Json", COMPRESSOR="x.Lz4")
    message = _e041(use_caches, entry)
    assert "SERIALIZER" in message and "COMPRESSOR" in message
    with pytest.raises(SystemCheckError, match=r"cachekit\.E041"):
        call_command("check", verbosity=0)


def test_close_connection_setting_is_read(
        use_caches: Callable[..., Any], redis_url: str, namespace: str) -> None:
    cache = use_caches({"default": _entry(redis_url, namespace)},
                       DJANGO_REDIS_CLOSE_CONNECTION=True)
    cache.set("k", 1)
    raw = cache.get_client()
    cache.close()
    assert all(conn._sock is None for conn in raw.connection_pool._connections)


def test_the_registry_covers_every_option_the_docs_list() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "django.md").read_text()
    for name in [*foreign.DJANGO_REDIS_OPTIONS, *foreign.DJANGO_REDIS_SETTINGS]:
        assert f'["{name}"]' in doc or f"`{name}`" in doc, name


def test_an_options_flag_overrides_the_django_redis_setting(
        use_caches: Callable[..., Any], redis_url: str, namespace: str) -> None:
    # django-redis reads DJANGO_REDIS_IGNORE_EXCEPTIONS only for caches whose OPTIONS
    # do not say: a cache with IGNORE_EXCEPTIONS=True fails open whatever it is
    cache = use_caches({"default": _entry(redis_url, namespace, IGNORE_EXCEPTIONS=True,
                                          LOG_IGNORED_EXCEPTIONS=True)},
                       DJANGO_REDIS_IGNORE_EXCEPTIONS=False,
                       DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS=False)
    cache.set("k", 1)
    assert cache.get("k") == 1 and cache._ignore_exceptions is True
    message = _e041(use_caches, _entry(redis_url, namespace),
                    DJANGO_REDIS_IGNORE_EXCEPTIONS=False)  # a cache that does not say
    assert "DJANGO_REDIS_IGNORE_EXCEPTIONS" in message
