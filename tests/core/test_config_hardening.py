"""Bad input and configuration: unparseable URLs, unencodable keys, weak secrets."""

from __future__ import annotations

import asyncio
import traceback

import pytest

from cachekit_web import CacheClient
from cachekit_web.core.errors import CachekitError, ConfigurationError, InvalidKeyError
from cachekit_web.core.settings import Settings

from .conftest import KEY_A, MakeClient, make_async

PASSWORD = "hunter2/topsecret"


def chain(exc: BaseException) -> list[BaseException]:
    """The exception and everything chained to it (cause and context, followed)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        todo += [item.__cause__, item.__context__]
    return seen


def assert_no_password(exc: BaseException, *pieces: str) -> None:
    """No piece of the password in the exception, its chain, str, repr or traceback text."""
    texts = [text for e in chain(exc) for text in (str(e), repr(e), repr(e.args))]
    texts.append("".join(traceback.format_exception(exc)))
    for piece in pieces:
        for text in texts:
            assert piece not in text, (piece, text)


@pytest.mark.parametrize("template", [
    "redis://:{pw}@127.0.0.1:{port}/0", "rediss://user:{pw}@127.0.0.1:{port}/0",
    "redis+cluster://:{pw}@127.0.0.1:{port}", "redis+sentinel://:{pw}@127.0.0.1:{port}/svc",
    "redis+sentinel://:{pw}@127.0.0.1:{port}/svc/x",
])
def test_unparseable_url_is_e042_without_the_password_anywhere(redis_url: str,
                                                               template: str) -> None:
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    url = template.format(pw=PASSWORD, port=port)
    with pytest.raises(ConfigurationError) as info:
        CacheClient.from_url(url)
    assert info.value.code == "E042"
    assert info.value.__context__ is None and info.value.__cause__ is None
    assert_no_password(info.value, PASSWORD, "hunter2", "topsecret")


@pytest.mark.parametrize("key", ["a\udc80", "\ud800", "x" + "\udfff" * 3])
def test_lone_surrogate_keys_are_e023(make_client: MakeClient, redis_url: str,
                                      namespace: str, key: str) -> None:
    client = make_client()
    for call in (lambda: client.get(key), lambda: client.set(key, 1),
                 lambda: client.delete(key), lambda: client.get_many([key])):
        with pytest.raises(InvalidKeyError) as info:
            call()
        assert info.value.code == "E023"
        assert info.value.__context__ is None
    assert client.set("fine-\u00e9", 1) and client.get("fine-\u00e9") == 1

    async def run() -> None:
        aclient = make_async(redis_url, NAMESPACE=namespace)
        try:
            for coro in (lambda: aclient.get(key), lambda: aclient.set(key, 1)):
                with pytest.raises(InvalidKeyError) as ainfo:
                    await coro()
                assert ainfo.value.code == "E023"
        finally:
            await aclient.close()

    asyncio.run(run())


@pytest.mark.parametrize("key", ["00" * 32, "ab" * 32, "ff" * 48, "0102" * 16,
                                 "00010203" * 8])
def test_weak_master_key_is_e002(key: str) -> None:
    for values in ({"MASTER_KEY": key}, {"MASTER_KEY": KEY_A, "PREVIOUS_MASTER_KEYS": [key]}):
        with pytest.raises(ConfigurationError) as info:
            Settings.from_mapping(values)
        assert info.value.code == "E002" and "weak" in info.value.message
        assert key not in str(info.value)


@pytest.mark.parametrize("key", ["x", "short-secret", "a" * 40, "abababababababababab"])
def test_weak_signing_key_is_e004(key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_mapping({"SIGNING_KEY": key})
    assert info.value.code == "E004" and "SIGNING_KEY" in info.value.message
    assert key not in info.value.message


def test_strong_secrets_are_accepted() -> None:
    import secrets

    for _ in range(200):  # a random key is never mistaken for a weak one
        Settings.from_mapping({"MASTER_KEY": secrets.token_hex(32),
                               "SIGNING_KEY": secrets.token_urlsafe(12)})
    Settings.from_mapping({"SIGNING_KEY": "correct horse battery staple"})


def test_codes_are_registered() -> None:
    assert isinstance(ConfigurationError("x", code="E004"), CachekitError)
    from cachekit_web.core.errors import REGISTRY

    assert REGISTRY["E004"].category == "configuration"
