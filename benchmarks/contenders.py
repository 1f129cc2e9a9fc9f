"""The caches compared over the network, behind one tiny get/set/get_many interface."""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from typing import Any

import redis

from cachekit_web import CacheClient
from cachekit_web.core.settings import Settings

TTL = 300

# Fixed, obviously-fake secrets: the benchmark measures cost, not secrecy.
SIGNING_KEY = "benchmark-signing-key-not-a-secret-0123456789"
MASTER_KEY = bytes(range(0x42, 0x42 + 32)).hex()  # fixed, not weak (E002)


class Contender:
    """A cache under test: name plus get, set and get_many of already-prefixed keys."""

    name = "?"

    def get(self, key: str) -> Any:
        raise NotImplementedError

    def set(self, key: str, value: Any) -> None:
        raise NotImplementedError

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections."""


class RawRedis(Contender):
    """redis-py with pickle, no key handling, no safety: the floor to compare against."""

    name = "raw redis-py + pickle"

    def __init__(self, url: str, **options: Any) -> None:
        self.client = redis.Redis.from_url(url, **options)
        self.prefix = "raw:"

    def get(self, key: str) -> Any:
        raw = self.client.get(self.prefix + key)
        return None if raw is None else pickle.loads(raw)

    def set(self, key: str, value: Any) -> None:
        self.client.set(self.prefix + key, pickle.dumps(value, pickle.HIGHEST_PROTOCOL), ex=TTL)

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        raws = self.client.mget([self.prefix + k for k in keys])
        return {k: pickle.loads(r) for k, r in zip(keys, raws, strict=True) if r is not None}

    def close(self) -> None:
        self.client.close()


def configure_django(url: str | None = None) -> None:
    """Minimal in-process Django settings, enough for the cache framework.

    With ``url``, CACHES also names the caches the hot-path goals compare (cachekit
    encrypted and SECRET_KEY-signed, Django's RedisCache, django-redis) on that server.
    """
    from django.conf import settings

    if settings.configured:
        return
    caches: dict[str, Any] = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    if url is not None:
        ck = "cachekit_web.django.CachekitCache"
        caches.update({
            "cachekit": {"BACKEND": ck, "LOCATION": url, "TIMEOUT": TTL, "KEY_PREFIX": "ck",
                         "OPTIONS": {"MASTER_KEY": MASTER_KEY,
                                     "NAMESPACE": f"bench-dj-{os.getpid()}"}},
            "cachekit-signed": {"BACKEND": ck, "LOCATION": url, "TIMEOUT": TTL,
                                "KEY_PREFIX": "cks",
                                "OPTIONS": {"NAMESPACE": f"bench-djs-{os.getpid()}"}},
            "cachekit-local": {"BACKEND": ck, "LOCATION": url, "TIMEOUT": TTL,
                               "KEY_PREFIX": "ckl",
                               "OPTIONS": {"NAMESPACE": f"bench-djl-{os.getpid()}",
                                           "LOCAL_CACHE": True}},
            "redis": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                      "LOCATION": url, "TIMEOUT": TTL, "KEY_PREFIX": "djv"},
            "django-redis": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url,
                             "TIMEOUT": TTL, "KEY_PREFIX": "djr"},
        })
    settings.configure(USE_TZ=True, CACHES=caches, ALLOWED_HOSTS=["*"],
                       SECRET_KEY="benchmark-secret-key-not-a-secret-0123456789abcdef",
                       INSTALLED_APPS=[], ROOT_URLCONF=__name__)
    import django

    django.setup()


urlpatterns: list[Any] = []  # ROOT_URLCONF for the benchmark's Django settings


class DjangoRedis(Contender):
    """Django's built-in django.core.cache.backends.redis.RedisCache (pickle, no sealing)."""

    name = "django RedisCache"

    def __init__(self, url: str, **options: Any) -> None:
        configure_django(url)
        from django.core.cache.backends.redis import RedisCache

        self.cache = RedisCache(url, {"TIMEOUT": TTL, "KEY_PREFIX": "dj", "OPTIONS": options})

    def get(self, key: str) -> Any:
        return self.cache.get(key)

    def set(self, key: str, value: Any) -> None:
        self.cache.set(key, value)

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        return self.cache.get_many(keys)

    def close(self) -> None:
        self.cache.close()


MODES = {
    "plain": {},
    "signed": {"SIGNING_KEY": SIGNING_KEY},
    "encrypted": {"MASTER_KEY": MASTER_KEY},
}


def cachekit_settings(url: str, mode: str, **overrides: Any) -> Settings:
    """Settings for one mode, built from a mapping so no CACHEKIT_* variable leaks in."""
    values: dict[str, Any] = {"REDIS_URL": url, "NAMESPACE": f"bench-{mode}-{os.getpid()}",
                              "DEFAULT_TIMEOUT": TTL, **MODES[mode], **overrides}
    return Settings.from_mapping(values)


class Cachekit(Contender):
    """cachekit-web's CacheClient in one mode (plain, signed or encrypted)."""

    def __init__(self, url: str, mode: str, **overrides: Any) -> None:
        self.name = f"cachekit {mode}"
        self.client = CacheClient(cachekit_settings(url, mode, **overrides))

    def get(self, key: str) -> Any:
        return self.client.get(key)

    def set(self, key: str, value: Any) -> None:
        self.client.set(key, value)

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        return self.client.get_many(keys)

    def close(self) -> None:
        self.client.close()


def all_contenders(url: str) -> list[Contender]:
    """The baseline first, then Django, then cachekit-web in each mode."""
    return [RawRedis(url), DjangoRedis(url), *(Cachekit(url, mode) for mode in MODES)]
