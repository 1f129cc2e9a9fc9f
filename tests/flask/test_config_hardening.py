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
