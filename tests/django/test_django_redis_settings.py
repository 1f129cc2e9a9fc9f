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


def test_django_redis_tls_pool_kwargs_become_settings(
        use_caches: Callable[..., Any], redis_url: str, namespace: str) -> None:
    tls = {"ssl_ca_certs": "/etc/ca.pem", "ssl_certfile": "/etc/client.pem",
           "ssl_keyfile": "/etc/client.key", "ssl_cert_reqs": None}
    cache = use_caches({"default": _entry(redis_url, namespace, CONNECTION_POOL_KWARGS=tls)})
    s = cache.settings
    assert (s.SSL_CA_CERTS, s.SSL_CERTFILE, s.SSL_KEYFILE, s.SSL_CERT_REQS) == (
        "/etc/ca.pem", "/etc/client.pem", "/etc/client.key", "none")


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


def test_every_problem_in_the_first_run(
        use_caches: Callable[..., Any], redis_url: str, namespace: str) -> None:
    entry = _entry(redis_url, namespace, CLIENT_CLASS2="x", SOCKET_TIMOUT=1,
                   SERIALIZER="x.Json", RETRIES=9)
    message = _e041(use_caches, entry)
    for part in ("CLIENT_CLASS2", "SOCKET_TIMOUT", "did you mean SOCKET_TIMEOUT", "SERIALIZER",
                 "RETRIES"):
        assert part in message, message
    assert len(message.splitlines()) == 5, message  # a head line, then one line per problem
    from cachekit_web.django.checks import check_configuration

    [error] = check_configuration()
    assert error.id == "cachekit.E041" and "CLIENT_CLASS2" in error.msg and "RETRIES" in error.msg
    assert error.hint  # a name is suggested (SOCKET_TIMEOUT)


def test_a_list_location_does_not_hide_other_problems(
        use_caches: Callable[..., Any], redis_url: str, namespace: str) -> None:
    entry = _entry(redis_url, namespace, SOCKET_TIMOUT=1)
    entry["LOCATION"] = [redis_url, redis_url]
    message = _e041(use_caches, entry)
    assert "LOCATION" in message and "SOCKET_TIMOUT" in message


def test_no_hint_without_a_suggestion(
        use_caches: Callable[..., Any], redis_url: str, namespace: str) -> None:
    from cachekit_web.django.checks import check_configuration

    use_caches({"default": _entry(redis_url, namespace, FROBNICATE=1)})
    [error] = check_configuration()
    assert error.id == "cachekit.E041" and "FROBNICATE" in error.msg and "remove it" in error.msg
    assert error.hint is None


def test_a_leftover_cache_redis_url_variable_is_a_check_warning(
        use_caches: Callable[..., Any], redis_url: str, namespace: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from cachekit_web.django.checks import check_configuration

    monkeypatch.setenv("CACHE_REDIS_URL", "redis://elsewhere/0")
    cache = use_caches({"default": _entry(redis_url, namespace)})
    cache.set("k", 1)
    assert cache.get("k") == 1
    [warning] = check_configuration()
    assert warning.level == 30 and "CACHE_REDIS_URL" in warning.msg


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
