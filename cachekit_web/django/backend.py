"""CachekitCache: Django's cache API on top of the core client (translation only)."""

from __future__ import annotations

import os
import pickle
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache

from ..core import crypto
from ..core.client import AsyncCacheClient, CacheClient, Deferred, Result
from ..core.errors import ConfigurationError, SerializationError
from ..core.health import HealthReport
from ..core.settings import Settings

_MISSING: Any = object()
_CLIENTS: dict[Settings, CacheClient] = {}
_LOCK = threading.Lock()
_MEMCACHE_SAFE = 250  # longer keys draw Django's memcached warning


class CacheSerializationError(SerializationError, pickle.PicklingError):
    """E020 raised through Django's API: also a PicklingError, as Django's backends raise."""


def derived_signing_key(secret_key: str) -> str:
    """A signing key for cached values derived from Django's SECRET_KEY (never the key itself)."""
    return crypto.derived_signing_key(secret_key, "django")


def _django_secret_key() -> str | None:
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        return str(settings.SECRET_KEY) or None
    except (ImproperlyConfigured, AttributeError):
        return None


def namespace_for(base: str, key_prefix: str) -> str:
    """The core namespace of a Django cache: NAMESPACE, plus KEY_PREFIX so clear() stays in it."""
    return f"{base}.{quote(key_prefix, safe='')}" if key_prefix else base


def build_settings(location: Any, params: Mapping[str, Any]) -> Settings:
    """Settings for one CACHES entry: OPTIONS are core setting names; LOCATION the Redis URL."""
    options = {str(k).upper(): v for k, v in dict(params.get("OPTIONS") or {}).items()}
    if isinstance(location, (list, tuple)):
        if len(location) > 1:
            raise ConfigurationError("LOCATION must name one Redis URL", code="E042")
        location = location[0] if location else ""
    url = location or os.environ.get("CACHEKIT_REDIS_URL") or os.environ.get("REDIS_URL")
    if not url:
        raise ConfigurationError(
            "no Redis URL: set LOCATION in CACHES, or CACHEKIT_REDIS_URL / REDIS_URL", code="E040"
        )
    options["REDIS_URL"] = url
    if not options.get("MASTER_KEY") and not options.get("SIGNING_KEY"):
        env_has_key = os.environ.get("CACHEKIT_MASTER_KEY") or os.environ.get(
            "CACHEKIT_SIGNING_KEY")
        secret = None if env_has_key else _django_secret_key()
        if secret:
            options["SIGNING_KEY"] = derived_signing_key(secret)
    base = Settings.from_env(None, **options)
    key_prefix = str(params.get("KEY_PREFIX", params.get("key_prefix", "")) or "")
    return base.replace(NAMESPACE=namespace_for(base.NAMESPACE, key_prefix))


def shared_client(settings: Settings) -> CacheClient:
    """One core client per configuration and process (Django makes a backend per thread)."""
    with _LOCK:
        client = _CLIENTS.get(settings)
        if client is None:
            client = _CLIENTS[settings] = CacheClient(settings)
        return client


class CachekitCache(BaseCache):  # type: ignore[misc]
    """Django cache backend: ``BACKEND = "cachekit_web.django.CachekitCache"``."""

    def __init__(self, location: Any, params: dict[str, Any]) -> None:
        params = dict(params)
        options = {str(k).upper(): v for k, v in dict(params.get("OPTIONS") or {}).items()}
        if "TIMEOUT" not in params and "timeout" not in params and "DEFAULT_TIMEOUT" in options:
            params["TIMEOUT"] = options["DEFAULT_TIMEOUT"]
        super().__init__(params)
        self._error: ConfigurationError | None = None
        self._shared: CacheClient | None = None
        try:
            self.settings = build_settings(location, params)
            self._shared = shared_client(self.settings)  # E042 for a URL redis-py cannot parse
        except ConfigurationError as exc:
            # Raised on first use; `manage.py check` reports it with its code meanwhile
            # (Django's own cache checks instantiate every backend and must not crash).
            self._error = exc

    def __repr__(self) -> str:
        if self._shared is None:
            return f"<CachekitCache misconfigured: {self._error}>"
        return f"<CachekitCache {self._shared.describe()} namespace={self.settings.NAMESPACE!r}>"

    # -- plumbing ---------------------------------------------------------
    @property
    def configuration_error(self) -> ConfigurationError | None:
        """The settings error (E040/E041/E042/...) this cache was built with, if any."""
        return self._error

    @property
    def _client(self) -> CacheClient:
        if self._shared is None:
            assert self._error is not None
            raise self._error
        return self._shared

    @property
    def client(self) -> CacheClient:
        """The shared core client behind this cache."""
        return self._client

    @property
    def async_client(self) -> AsyncCacheClient:
        """The core async client sharing this cache's breaker, metrics and codec."""
        return AsyncCacheClient.twin(self._client)  # a pool per event loop, kept by the core

    def _key(self, key: Any, version: int | None) -> str:
        return str(self.make_and_validate_key(key, version=version))

    def _timeout(self, timeout: Any) -> float | None:
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        return None if timeout is None else float(timeout)

    def get_backend_timeout(self, timeout: Any = DEFAULT_TIMEOUT) -> float | None:
        """Seconds until expiry as sent to Redis: None forever, 0 for 'do not store'."""
        seconds = self._timeout(timeout)
        return None if seconds is None else max(0.0, seconds)

    # -- reads -------------------------------------------------------------
    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        """The cached value or ``default``."""
        return self._client.get(self._key(key, version), default)

    def _keys(self, keys: Iterable[Any], version: int | None) -> dict[str, Any]:
        """Made key -> caller's key. Django's memcached key scan (``validate_key``) runs
        only for keys it could warn about: a key of at most 250 printable characters
        without a space draws no warning, and the core enforces its own rules (E023)."""
        if type(self).validate_key is not BaseCache.validate_key:  # a subclass's own rules
            return {self._key(k, version): k for k in keys}
        make, validate = self.make_key, self.validate_key
        by_key: dict[str, Any] = {}
        for k in keys:
            made = str(make(k, version=version))
            if len(made) > _MEMCACHE_SAFE or " " in made or not made.isprintable():
                validate(made)  # Django's warning (CacheKeyWarning), as it would give it
            by_key[made] = k
        return by_key

    def get_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        """The found keys and their values (stored None kept)."""
        by_key = self._keys(keys, version)
        if not by_key:
            return {}
        found = self._client.get_many(list(by_key))
        return {by_key[k]: v for k, v in found.items()}

    def has_key(self, key: Any, version: int | None = None) -> bool:
        """Whether ``key`` holds a value."""
        return self._client.has_key(self._key(key, version))

    def ttl(self, key: Any, version: int | None = None) -> float | None:
        """Seconds left for ``key``: None if it never expires, 0 if it is missing."""
        return self._client.ttl(self._key(key, version))

    # -- writes ------------------------------------------------------------
    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT,
            version: int | None = None) -> None:
        """Store ``value`` (timeout None = forever, <= 0 deletes)."""
        k = self._key(key, version)
        with _pickling_errors():
            self._client.set(k, value, self._timeout(timeout))

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT,
            version: int | None = None) -> bool:
        """Store ``value`` only if ``key`` is absent; True if it was."""
        k = self._key(key, version)
        seconds = self._timeout(timeout)
        with _pickling_errors():
            added = self._client.add(k, value, seconds)  # E020 for a value it could never store
            if seconds is not None and seconds <= 0:
                # Nothing is stored, but Django answers whether it could have been.
                return self._client.available and not self._client.has_key(k)
            return added

    def set_many(self, data: Mapping[Any, Any], timeout: Any = DEFAULT_TIMEOUT,
                 version: int | None = None) -> list[Any]:
        """Store several values; returns the keys that could not be stored."""
        by_key = {self._key(k, version): k for k in data}
        if not by_key:
            return []
        mapping = {k: data[original] for k, original in by_key.items()}
        with _pickling_errors():
            failed = self._client.set_many(mapping, self._timeout(timeout))
        return [by_key[k] for k in failed]

    def delete(self, key: Any, version: int | None = None) -> bool | Deferred:
        """Delete ``key``: True if it existed, False if not, DEFERRED while Redis is unreachable."""
        return self._client.delete(self._key(key, version))

    def delete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        """Delete several keys."""
        full = [self._key(k, version) for k in keys]
        if full:
            self._client.delete_many(full)

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        """Give ``key`` a new timeout; False if it is missing."""
        return self._client.touch(self._key(key, version), self._timeout(timeout))

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Add ``delta`` atomically; ValueError if the key is missing (or the cache is down)."""
        k = self._key(key, version)
        try:
            value = self._client.incr(k, delta)
        except ValueError as exc:
            raise TypeError(f"cached value for {key!r} is not an integer") from exc
        if value is None:
            raise ValueError(f"Key '{key}' not found")
        return value

    def decr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Subtract ``delta`` atomically; see incr."""
        return self.incr(key, -delta, version)

    def incr_version(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Move ``key`` to version + delta, keeping its value and remaining lifetime."""
        if version is None:
            version = self.version
        if not self._client.move(self._key(key, version), self._key(key, version + delta)):
            raise ValueError(f"Key '{key}' not found")
        return version + delta

    def decr_version(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Move ``key`` to version - delta."""
        return self.incr_version(key, -delta, version)

    def clear(self) -> None:
        """Delete every key of this cache (its namespace and key prefix), nothing else."""
        self._client.clear()

    def close(self, **kwargs: Any) -> None:
        """Django calls this after each request; the pooled client stays open."""

    # -- compute once ------------------------------------------------------
    def get_or_set(self, key: Any, default: Any, timeout: Any = DEFAULT_TIMEOUT,
                   version: int | None = None) -> Any:
        """The cached value, or ``default`` (called if callable) stored once across callers."""
        compute = default if callable(default) else (lambda: default)
        k = self._key(key, version)
        with _pickling_errors():
            return self._client.get_or_set(k, compute, self._timeout(timeout))

    def fetch(self, key: Any, compute: Callable[[], Any], timeout: Any = DEFAULT_TIMEOUT, *,
              stale_ttl: float | None = None, should_cache: Callable[[Any], bool] | None = None,
              accept: Callable[[Any], bool] | None = None, force: bool = False,
              version: int | None = None) -> Result[Any]:
        """Like get_or_set, also saying hit / miss / stale / bypass (see the core's fetch)."""
        k = self._key(key, version)
        with _pickling_errors():
            return self._client.fetch(k, compute, self._timeout(timeout), stale_ttl, should_cache,
                                      force=force, accept=accept)

    def health(self) -> HealthReport:
        """The core health report for this cache."""
        return self._client.health()

    # -- async (native, on the core async client) ----------------------------
    async def aget(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        """Async get."""
        return await self.async_client.get(self._key(key, version), default)

    async def aget_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        """Async get_many."""
        by_key = {self._key(k, version): k for k in keys}
        if not by_key:
            return {}
        found = await self.async_client.get_many(list(by_key))
        return {by_key[k]: v for k, v in found.items()}

    async def ahas_key(self, key: Any, version: int | None = None) -> bool:
        """Async has_key."""
        return await self.async_client.has_key(self._key(key, version))

    async def aset(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT,
                   version: int | None = None) -> None:
        """Async set."""
        k = self._key(key, version)
        with _pickling_errors():
            await self.async_client.set(k, value, self._timeout(timeout))

    async def aadd(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT,
                   version: int | None = None) -> bool:
        """Async add."""
        k = self._key(key, version)
        seconds = self._timeout(timeout)
        client = self.async_client
        with _pickling_errors():
            added = await client.add(k, value, seconds)
            if seconds is not None and seconds <= 0:
                return client.available and not await client.has_key(k)
            return added

    async def aset_many(self, data: Mapping[Any, Any], timeout: Any = DEFAULT_TIMEOUT,
                        version: int | None = None) -> list[Any]:
        """Async set_many."""
        by_key = {self._key(k, version): k for k in data}
        if not by_key:
            return []
        mapping = {k: data[original] for k, original in by_key.items()}
        with _pickling_errors():
            failed = await self.async_client.set_many(mapping, self._timeout(timeout))
        return [by_key[k] for k in failed]

    async def adelete(self, key: Any, version: int | None = None) -> bool | Deferred:
        """Async delete."""
        return await self.async_client.delete(self._key(key, version))

    async def adelete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        """Async delete_many."""
        full = [self._key(k, version) for k in keys]
        if full:
            await self.async_client.delete_many(full)

    async def atouch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT,
                     version: int | None = None) -> bool:
        """Async touch."""
        return await self.async_client.touch(self._key(key, version), self._timeout(timeout))

    async def aincr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Async incr."""
        k = self._key(key, version)
        try:
            value = await self.async_client.incr(k, delta)
        except ValueError as exc:
            raise TypeError(f"cached value for {key!r} is not an integer") from exc
        if value is None:
            raise ValueError(f"Key '{key}' not found")
        return value

    async def adecr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Async decr."""
        return await self.aincr(key, -delta, version)

    async def aincr_version(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Async incr_version."""
        if version is None:
            version = self.version
        if not await self.async_client.move(self._key(key, version),
                                            self._key(key, version + delta)):
            raise ValueError(f"Key '{key}' not found")
        return version + delta

    async def adecr_version(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Async decr_version."""
        return await self.aincr_version(key, -delta, version)

    async def aclear(self) -> None:
        """Async clear."""
        await self.async_client.clear()

    async def aclose(self, **kwargs: Any) -> None:
        """Nothing to release per request."""

    async def aget_or_set(self, key: Any, default: Any, timeout: Any = DEFAULT_TIMEOUT,
                          version: int | None = None) -> Any:
        """Async get_or_set; ``default`` may be a value, a function or a coroutine function."""
        compute = default if callable(default) else (lambda: default)
        k = self._key(key, version)
        with _pickling_errors():
            return await self.async_client.get_or_set(k, compute, self._timeout(timeout))

    async def afetch(self, key: Any, compute: Callable[[], Any], timeout: Any = DEFAULT_TIMEOUT,
                     *, stale_ttl: float | None = None,
                     should_cache: Callable[[Any], bool] | None = None,
                     accept: Callable[[Any], bool] | None = None, force: bool = False,
                     version: int | None = None) -> Result[Any]:
        """Async fetch."""
        k = self._key(key, version)
        with _pickling_errors():
            return await self.async_client.fetch(k, compute, self._timeout(timeout), stale_ttl,
                                                 should_cache, force=force, accept=accept)


class _pickling_errors:
    """Re-raise E020 as CacheSerializationError, which Django code catches as PickleError."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, SerializationError) and not isinstance(exc, CacheSerializationError):
            raise CacheSerializationError(exc.message, code=exc.code) from exc


def reset_clients() -> None:
    """Close and forget every shared client (tests, and code that reloads settings)."""
    with _LOCK:
        clients = list(_CLIENTS.values())
        _CLIENTS.clear()
    for client in clients:
        client.close()
