"""The Flask-Caching proxy API and configuration, against a real redis-server."""

from __future__ import annotations

import os

import pytest
from flask import Flask

from cachekit_web import ConfigurationError
from cachekit_web.flask import Cache
from cachekit_web.flask.config import derived_signing_key

from .conftest import AppFactory


def test_proxy_methods_round_trip(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    assert cache.get("missing") is None
    assert cache.set("a", {"x": [1, 2]}) is True
    assert cache.get("a") == {"x": [1, 2]}
    assert cache.has("a") and not cache.has("b")
    assert cache.add("a", "other") is False
    assert cache.add("b", "new") is True
    assert cache.get_many("a", "b", "c") == [{"x": [1, 2]}, "new", None]
    assert cache.get_dict("a", "c") == {"a": {"x": [1, 2]}, "c": None}
    assert cache.set_many({"c": 1, "d": 2}) == []
    assert cache.delete("c") is True
    assert cache.delete("c") is False
    assert cache.delete_many("a", "b") == ["a", "b"]
    assert cache.get("a") is None and cache.get("d") == 2
    assert cache.inc("counter") == 1
    assert cache.inc("counter", 5) == 6
    assert cache.dec("counter", 2) == 4
    assert cache.clear() is True
    assert cache.get("d") is None


def test_timeouts_follow_flask_caching(app_cache: tuple[Flask, Cache]) -> None:
    """None = the default timeout, 0 = forever (Flask-Caching's meaning), n = n seconds."""
    _, cache = app_cache
    client = cache.client
    cache.set("default", 1)
    cache.set("forever", 1, timeout=0)
    cache.set("short", 1, timeout=5)
    assert 290 < (client.ttl("default") or 0) <= 300
    assert client.ttl("forever") is None
    assert 0 < (client.ttl("short") or 0) <= 5


def test_several_apps_keep_their_own_state(make_app: AppFactory, redis_url: str) -> None:
    app1, cache = make_app()
    app2 = Flask("second")
    app2.config.update(CACHEKIT_REDIS_URL=redis_url, CACHEKIT_NAMESPACE="t-second-app",
                       SECRET_KEY="other")
    cache.init_app(app2)
    assert app1.extensions["cachekit"][cache] is not app2.extensions["cachekit"][cache]
    with app1.app_context():
        cache.set("k", "one")
    with app2.app_context():
        assert cache.get("k") is None
        cache.set("k", "two")
        assert cache.client.namespace == "t-second-app"
        cache.clear()
    with app1.app_context():
        assert cache.get("k") == "one"


def test_cache_bound_to_app_works_without_context(redis_url: str, namespace: str) -> None:
    app = Flask("bound")
    app.config.update(CACHEKIT_REDIS_URL=redis_url, CACHEKIT_NAMESPACE=namespace)
    cache = Cache(app)
    cache.set("k", 1)
    assert cache.get("k") == 1


def test_unbound_cache_outside_context_says_what_to_do() -> None:
    with pytest.raises(RuntimeError, match="init_app"):
        Cache().get("k")


@pytest.mark.parametrize(("key", "hint"), [
    ("CACHE_TYPE", "CACHEKIT_REDIS_URL"),
    ("CACHE_REDIS_URL", "use CACHEKIT_REDIS_URL"),
    ("CACHE_THRESHOLD", "CACHEKIT_MEMORY_MAX_ENTRIES"),
    ("CACHE_KEY_PREFIX", "CACHEKIT_NAMESPACE"),
    ("CACHEKIT_DEFAULT_TIMOUT", "did you mean CACHEKIT_DEFAULT_TIMEOUT"),
    ("CACHE_SOMETHING_ELSE", "CACHEKIT_<NAME>"),
])
def test_foreign_and_unknown_keys_are_reported(make_app: AppFactory, key: str, hint: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_app(**{key: "x"})
    assert info.value.code == "E041"
    assert key in str(info.value) and hint in str(info.value)


def test_flask_caching_names_with_our_meaning_are_accepted(make_app: AppFactory) -> None:
    app, cache = make_app(CACHE_DEFAULT_TIMEOUT=0, CACHE_SOURCE_CHECK=True)  # 0 = forever
    with app.app_context():
        assert cache.settings.DEFAULT_TIMEOUT is None
        assert cache._state().options.SOURCE_CHECK is True
    app2, cache2 = make_app(CACHE_DEFAULT_TIMEOUT=5, CACHEKIT_DEFAULT_TIMEOUT=5)
    with app2.app_context():
        assert cache2.settings.DEFAULT_TIMEOUT == 5
    with pytest.raises(ConfigurationError) as info:  # two spellings, two values: which?
        make_app(CACHE_SOURCE_CHECK=True, CACHEKIT_SOURCE_CHECK=False)
    assert info.value.code == "E041"
    assert "CACHE_SOURCE_CHECK" in str(info.value) and "CACHEKIT_SOURCE_CHECK" in str(info.value)


def test_all_problems_reported_at_once(make_app: AppFactory) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_app(CACHE_TYPE="RedisCache", CACHE_REDIS_URL="redis://x")
    assert "CACHE_TYPE" in str(info.value) and "CACHE_REDIS_URL" in str(info.value)


def test_bad_value_is_e042(make_app: AppFactory) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_app(CACHEKIT_SOCKET_TIMEOUT="soon")
    assert info.value.code == "E042"


def test_environment_is_the_fallback(make_app: AppFactory, monkeypatch: pytest.MonkeyPatch,
                                     redis_url: str, namespace: str) -> None:
    monkeypatch.setitem(os.environ, "CACHEKIT_DEFAULT_TIMEOUT", "42")
    monkeypatch.setitem(os.environ, "CACHEKIT_HEALTH_TOKEN", "from-env-0123456789")
    app, cache = make_app()
    with app.app_context():
        assert cache.settings.DEFAULT_TIMEOUT == 42
        assert cache._state().options.HEALTH_TOKEN == "from-env-0123456789"
    app2, cache2 = make_app(CACHEKIT_DEFAULT_TIMEOUT=7)  # app.config wins over the environment
    with app2.app_context():
        assert cache2.settings.DEFAULT_TIMEOUT == 7


def test_secret_key_signs_values(make_app: AppFactory) -> None:
    app, cache = make_app()
    with app.app_context():
        ring = cache.client.codec.keyring
        assert ring.authenticated and not ring.encrypted
        signing_key = cache.settings.SIGNING_KEY
        assert signing_key == derived_signing_key("s3cr3t-flask-key")
        assert "s3cr3t-flask-key" not in repr(cache.client) + repr(cache.settings)
    app2, cache2 = make_app(CACHEKIT_MASTER_KEY=bytes(range(0xab - 32, 0xab)).hex())
    with app2.app_context():
        assert cache2.client.codec.keyring.encrypted


def test_values_are_not_pickled_for_plain_types(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    cache.set("plain", {"a": (1, 2)})
    raw = cache.client.backend.get(cache.client.full_key("plain"))
    assert raw is not None and b"pickle" not in raw and b"\x80\x04" not in raw
    assert cache.get("plain") == {"a": (1, 2)}


def test_counters_are_sealed_unless_cachekit_plain_counters_names_them(
        make_app: AppFactory, redis_url: str) -> None:
    import redis

    app, cache = make_app(CACHEKIT_PLAIN_COUNTERS=["rl:*"])
    raw = redis.Redis.from_url(redis_url)
    try:
        with app.app_context():
            assert cache.inc("rl:x") == 1 and cache.inc("rl:x", 2) == 3
            assert raw.get(cache.client.full_key("rl:x")) == b"3"
            assert cache.inc("hits") == 1 and cache.get("hits") == 1
            fk = cache.client.full_key("hits")
            assert raw.get(fk)[:2] == b"CK"  # type: ignore[index]
            raw.set(fk, b"99", keepttl=True)  # forged digits are not our counter
            assert cache.get("hits") is None
    finally:
        raw.close()
