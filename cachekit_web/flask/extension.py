"""The Cache extension: Flask-Caching's API, translated to the core client.

All caching decisions (stampede protection, stale-while-revalidate, fail-open)
are the core client's; this module sets the client up per app and maps Flask-Caching's
calls onto it (its decorators are in ``decorators``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.globals import _cv_app

from ..core.client import AsyncCacheClient, CacheClient, Deferred
from ..core.observe.health import HealthReport
from ..core.settings import Settings
from .cli import make_group
from .config import FlaskOptions, core_timeout, load
from .decorators import CacheDecorators
from .health import make_blueprint
from .jinja import CacheExtension
from .request import SESSION_MARKS_READS, unwatch_session, watch_cookies

EXTENSION_KEY = "cachekit"
log = logging.getLogger("cachekit_web")


@dataclass
class State:
    """What one Cache keeps per app (in app.extensions)."""

    settings: Settings
    options: FlaskOptions
    client: CacheClient

    @property
    def async_client(self) -> AsyncCacheClient:
        """The core's async client sharing this app's client and its connection pool
        (Flask runs each async view in a loop of its own: a pool per loop would be a
        connection per request)."""
        return AsyncCacheClient.twin(self.client, same_pool=True)


class Cache(CacheDecorators):
    """Flask-Caching-compatible cache for one or more Flask apps, backed by the core client."""

    def __init__(self, app: Flask | None = None, with_jinja2_ext: bool = True,
                 config: Mapping[str, Any] | None = None) -> None:
        self.app = app
        self.with_jinja2_ext = with_jinja2_ext
        self.config = dict(config) if config else None
        self._health_authorization: Callable[[], bool] | None = None
        if app is not None:
            self.init_app(app, config)

    def __repr__(self) -> str:
        return f"<Cache app={self.app.name if self.app else None!r}>"

    # -- setup -------------------------------------------------------------
    def init_app(self, app: Flask, config: Mapping[str, Any] | None = None) -> None:
        """Read CACHEKIT_* settings, build the client and register Jinja, CLI and health."""
        merged: dict[str, Any] = dict(app.config)
        merged.update(config or self.config or {})
        settings, options = load(merged)
        state = State(settings, options, CacheClient(settings))
        if not state.client.authenticated:
            log.warning("cachekit: app %r has no SECRET_KEY or CACHEKIT_MASTER_KEY, so cached "
                        "values are neither signed nor encrypted (anyone who can write to Redis "
                        "can forge them); cached views and {%% cache %%} fragments run uncached "
                        "until one is set", app.name)
        app.extensions.setdefault(EXTENSION_KEY, {})[self] = state
        first = app.url_value_preprocessors.setdefault(None, [])
        if watch_cookies not in first:
            first.insert(0, watch_cookies)  # before the app's hooks, which may read cookies
        after = app.after_request_funcs.setdefault(None, [])
        if not SESSION_MARKS_READS and unwatch_session not in after:
            after.append(unwatch_session)  # after hooks run last-added first
        if self.with_jinja2_ext:
            app.jinja_env.add_extension(CacheExtension)
            app.jinja_env.cachekit_cache = self  # type: ignore[attr-defined]
        if "cachekit" not in app.cli.commands:
            app.cli.add_command(make_group(self))
        if options.HEALTH_ENABLED:
            app.register_blueprint(make_blueprint(self), url_prefix=options.HEALTH_URL_PREFIX)

    def health_authorization(self, fn: Callable[[], bool]) -> Callable[[], bool]:
        """Decorator: ``fn()`` (run in the request) says whether the dashboard may be shown."""
        self._health_authorization = fn
        return fn

    def health_authorizer(self) -> Callable[[], bool] | None:
        """The function registered with ``health_authorization``, if any."""
        return self._health_authorization

    def _state(self) -> State:
        ctx = _cv_app.get(None)
        app: Any = ctx.app if ctx is not None else self.app
        for candidate in (app, self.app):
            if candidate is not None:
                found = candidate.extensions.get(EXTENSION_KEY, {}).get(self)
                if found is not None:
                    return found  # type: ignore[no-any-return]
        raise RuntimeError("this Cache is not initialised for the current app: call "
                           "cache.init_app(app) and use it inside an app context")

    @property
    def client(self) -> CacheClient:
        """The core client for the current app."""
        return self._state().client

    @property
    def cache(self) -> CacheClient:
        """The core client (Flask-Caching exposes its backend under this name)."""
        return self.client

    @property
    def settings(self) -> Settings:
        """The core settings for the current app."""
        return self._state().settings

    @property
    def options(self) -> FlaskOptions:
        """The Flask adapter's own settings for the current app."""
        return self._state().options

    def health(self) -> HealthReport:
        """The core HealthReport for the current app."""
        return self.client.health()

    # -- proxy methods (Flask-Caching's timeouts: None = default, 0 = forever) ------
    def get(self, key: str) -> Any:
        """The cached value or None."""
        return self.client.get(key)

    def has(self, key: str) -> bool:
        """Whether ``key`` holds a value."""
        return self.client.has_key(key)

    def set(self, key: str, value: Any, timeout: float | None = None) -> bool:
        """Store ``value`` (timeout None = default, 0 = forever); False if dropped."""
        return self.client.set(key, value, core_timeout(timeout))

    def add(self, key: str, value: Any, timeout: float | None = None) -> bool:
        """Store ``value`` only if ``key`` is absent."""
        return self.client.add(key, value, core_timeout(timeout))

    def delete(self, key: str) -> bool | Deferred:
        """Delete ``key``: True if it existed, False if not, DEFERRED while Redis is unreachable."""
        return self.client.delete(key)

    def delete_many(self, *keys: str) -> list[str]:
        """Delete several keys; returns the keys handled (empty if the cache is unavailable)."""
        client = self.client
        client.delete_many(keys)
        return list(keys) if client.available else []

    def unlink(self, *keys: str) -> list[str]:
        """Same as delete_many (Redis UNLINK semantics are the backend's concern)."""
        return self.delete_many(*keys)

    def get_many(self, *keys: str) -> list[Any]:
        """Values for ``keys`` in order, None where missing."""
        found = self.client.get_many(keys)
        return [found.get(k) for k in keys]

    def get_dict(self, *keys: str) -> dict[str, Any]:
        """{key: value or None} for ``keys``."""
        found = self.client.get_many(keys)
        return {k: found.get(k) for k in keys}

    def set_many(self, mapping: Mapping[str, Any], timeout: float | None = None) -> list[str]:
        """Store several values; returns the keys that were not stored."""
        return self.client.set_many(mapping, core_timeout(timeout))

    def clear(self) -> bool:
        """Delete every key of this app's namespace (never FLUSHDB)."""
        client = self.client
        client.clear()
        return client.available

    def inc(self, key: str, delta: int = 1) -> int | None:
        """Atomically add ``delta`` (a missing key counts as 0); None if unavailable."""
        return self.client.incr(key, delta, default=0)

    def dec(self, key: str, delta: int = 1) -> int | None:
        """Atomically subtract ``delta``."""
        return self.client.decr(key, delta, default=0)
