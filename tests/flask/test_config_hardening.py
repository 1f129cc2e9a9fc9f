"""The Flask adapter under bad input and weak secrets."""

from __future__ import annotations

import pytest

from cachekit_web.core.errors import ConfigurationError, InvalidKeyError

from .conftest import AppFactory


def test_surrogate_key_is_e023(make_app: AppFactory) -> None:
    app, cache = make_app()
    with app.app_context():
        for call in (lambda: cache.get("a\udc80"), lambda: cache.set("a\udc80", 1),
                     lambda: cache.delete("\ud800")):
            with pytest.raises(InvalidKeyError) as info:
                call()
            assert info.value.code == "E023"
        assert cache.set("ok", 1) and cache.get("ok") == 1


@pytest.mark.parametrize("token", ["Q", "Zq9", "fifteen-chars!!", "a" * 20])
def test_weak_health_token_is_refused(make_app: AppFactory, token: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_app(CACHEKIT_HEALTH_ENABLED=True, CACHEKIT_HEALTH_TOKEN=token)
    assert info.value.code == "E004" and "HEALTH_TOKEN" in info.value.message
    assert token not in info.value.message


def test_weak_signing_key_is_refused(make_app: AppFactory) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_app(CACHEKIT_SIGNING_KEY="x")
    assert info.value.code == "E004"


@pytest.mark.parametrize("name", ["HEALTH_ENABLED", "SOURCE_CHECK", "CACHE_STATUS_HEADER"])
@pytest.mark.parametrize("where", ["config", "env"])
def test_boolean_typo_is_e042(make_app: AppFactory, monkeypatch: pytest.MonkeyPatch,
                              name: str, where: str) -> None:
    """A typo such as 'ture' is refused as in the core, never silently False."""
    if where == "env":
        monkeypatch.setenv(f"CACHEKIT_{name}", "ture")
        config = {}
    else:
        config = {f"CACHEKIT_{name}": "ture"}
    with pytest.raises(ConfigurationError) as info:
        make_app(**config)
    assert info.value.code == "E042" and name in info.value.message


@pytest.mark.parametrize(("raw", "expected"), [("yes", True), ("On", True), ("0", False),
                                               ("off", False), (True, True), (0, False)])
def test_boolean_words_the_core_accepts(make_app: AppFactory, raw: object,
                                        expected: bool) -> None:
    app, cache = make_app(CACHEKIT_SOURCE_CHECK=raw)
    with app.app_context():
        assert cache._state().options.SOURCE_CHECK is expected


def test_every_problem_at_start_up_in_one_error(make_app: AppFactory) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_app(CACHEKIT_SOCKET_TIMOUT=1, CACHEKIT_NAMESPAC="x", CACHEKIT_RETRIES=9,
                 CACHE_TYPE="RedisCache", CACHE_SOURCE_CHECK=True, CACHEKIT_SOURCE_CHECK=False)
    message = info.value.message
    assert info.value.code == "E041"
    for part in ("CACHEKIT_SOCKET_TIMEOUT", "CACHEKIT_NAMESPACE", "RETRIES", "CACHE_TYPE",
                 "CACHE_SOURCE_CHECK"):
        assert part in message, message
    assert len(message.splitlines()) == 6, message


def test_leftover_cache_redis_url_variable_does_not_stop_start_up(
        make_app: AppFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHE_REDIS_URL", "redis://elsewhere/0")
    app, cache = make_app()
    with app.app_context():
        assert cache.set("k", 1) and cache.get("k") == 1
