"""The Cache extension: Flask-Caching's API, translated to the core client.

All caching decisions (stampede protection, stale-while-revalidate, fail-open)
are the core client's; this module maps Flask conventions onto it.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import re
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import Flask, current_app, has_request_context, request, url_for
from flask.globals import _cv_app, _cv_request
from flask.wrappers import Response
from werkzeug.datastructures import ImmutableMultiDict

from ..core.client import DEFAULT, AsyncCacheClient, CacheClient, Deferred, Expiring
from ..core.errors import InvalidKeyError
from ..core.observe.health import HealthReport
from ..core.settings import Settings
from ..core.web import (
    CACHE_STATUS_HEADER,
    CookieReads,
    EnvironHeaders,
    StoredPage,
    cache_status,
    cookie_key_parts,
    fragment_cache_key,
    is_page,
    normalized_query,
    request_bypass_reason,
    response_uncacheable_reason,
    view_cache_key,
    visitor_reason,
)
from . import config as _config
from .keys import canonical

EXTENSION_KEY = "cachekit"
log = logging.getLogger("cachekit_web")
TEMPLATE_FRAGMENT_KEY_PREFIX = "_template_fragment_cache_"
_DEFAULT_VIEW_PREFIX = "view/%s"

HashMethod = Callable[..., Any]


class CachedResponse(Response):
    """A response that carries its own cache timeout (seconds), as in Flask-Caching."""

    def __init__(self, response: Response, timeout: float | None) -> None:
        super().__init__(response.get_data(), status=response.status,
                         headers=list(response.headers.items()))
        self.timeout = timeout


def make_template_fragment_key(fragment_name: str, vary_on: Iterable[Any] | None = None) -> str:
    """The cache key of a ``{% cache %}`` fragment: its name and a digest of its vary-on values."""
    return fragment_cache_key(fragment_name, vary_on or (), prefix=TEMPLATE_FRAGMENT_KEY_PREFIX)


@dataclass
class _State:
    """What one Cache keeps per app (in app.extensions)."""

    settings: Settings
    options: _config.FlaskOptions
    client: CacheClient

    @property
    def async_client(self) -> AsyncCacheClient:
        """The core's async client sharing this app's client and its connection pool
        (Flask runs each async view in a loop of its own: a pool per loop would be a
        connection per request)."""
        return AsyncCacheClient.twin(self.client, same_pool=True)


@dataclass
class _Marker:
    """A computed value that must not be stored: what to deliver, and why not."""

    deliver: Any
    reason: str


def _storable(value: Any) -> bool:
    return not isinstance(value, _Marker)


def _any_value(value: Any) -> bool:
    return True


def _not_page(value: Any) -> bool:
    return not isinstance(value, StoredPage)


def _acceptor(view: bool, authenticated: bool) -> Callable[[Any], bool]:
    """Which stored values a wrapper can deliver: a view only pages, and a page only from
    an authenticated entry (any other stored value is a miss to the core)."""
    if view:
        return is_page
    return _any_value if authenticated else _not_page


def _joined(rv: Any) -> Any:
    """A generator's output as Flask-Caching stores it: strings or bytes joined, else a list."""
    items = list(rv)
    for kind in (str, bytes):
        if items and all(isinstance(item, kind) for item in items):
            return kind().join(items)
    return items


def _takes_extra(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` takes more than the one value (is_stale may also take the call's args)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    return len(params) > 1 or any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params)


def _staleness(is_stale: Callable[..., Any] | None, thaw: Callable[[Any], Any],
               args: tuple[Any, ...], kwargs: dict[str, Any]) -> Callable[[Any], bool] | None:
    """Flask-Caching's ``is_stale(value[, *args, **kwargs])`` as the core's ``refresh``."""
    if not callable(is_stale):
        return None
    if _takes_extra(is_stale):
        return lambda value: is_stale(thaw(value), *args, **kwargs) is True
    return lambda value: is_stale(thaw(value)) is True


def _endpoint_of(wrapper: Callable[..., Any]) -> str | None:
    """The endpoint whose view is (or wraps) ``wrapper``."""
    for endpoint, view in current_app.view_functions.items():
        fn: Any = view
        for _ in range(32):  # bounded walk down the decorator chain
            if fn is None:
                break
            if fn is wrapper:
                return endpoint
            fn = getattr(fn, "__wrapped__", None)
    return None


def _wants_args(fn: Callable[..., Any]) -> bool:
    try:
        return bool(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return False


class _WatchedCookies(CookieReads, ImmutableMultiDict[str, str]):  # type: ignore[misc]
    """request.cookies, recording which cookies the request's code read."""


def _watch_cookies() -> None:
    """First before_request hook: from here on, cookie and session reads are recorded."""
    _watch_session()
    req = _cv_request.get().request
    found = req.__dict__.get("cookies")
    if isinstance(found, _WatchedCookies):
        return
    if found is None and not req.environ.get("HTTP_COOKIE"):
        req.cookies = _WatchedCookies()  # no Cookie header: nothing to parse
    else:
        req.cookies = _WatchedCookies(req.cookies)


def _cookies_read() -> set[str]:
    """Cookies read since the request's first hook ran."""
    found = request.__dict__.get("cookies")
    return found.reads if isinstance(found, _WatchedCookies) else set()


# Reads that Flask before 3.1 does not mark as `accessed` (it marks get, [] and setdefault);
# from 3.1 on, any use of `flask.session` marks it.
_SESSION_READS = ("__contains__", "__iter__", "__len__", "__getitem__", "get", "setdefault",
                  "keys", "values", "items", "copy", "__eq__", "__ne__", "__or__",
                  "__reversed__", "__repr__")
_READ_MARK = "_cachekit_read"  # our own flag: Flask's `accessed` (and so Vary) is untouched
_watching_classes: dict[type, type] = {}
_watched: set[type] = set()  # the values of _watching_classes


def _watching_class(cls: type) -> type:
    """A subclass of the session class ``cls`` that records every read in _READ_MARK."""
    found = _watching_classes.get(cls)
    if found is not None:
        return found

    def reader(name: str) -> Callable[..., Any]:
        inner = getattr(cls, name)

        @functools.wraps(inner)
        def read(self: Any, *args: Any, **kwargs: Any) -> Any:
            self.__dict__[_READ_MARK] = True
            return inner(self, *args, **kwargs)
        return read

    methods: dict[str, Any] = {name: reader(name) for name in _SESSION_READS
                               if hasattr(cls, name)}
    found = type(cls.__name__, (cls,), {"__slots__": (), **methods})
    found.__module__, found.__qualname__ = cls.__module__, cls.__qualname__
    _watching_classes[cls] = found
    _watched.add(found)
    return found


def _watch_session() -> None:
    """On Flask before 3.1, record any read of the request's session from here on."""
    found = vars(_cv_request.get()).get("session")  # 3.1+ keeps it in `_session`, lazily
    if found is None or not hasattr(found, "__dict__") or _READ_MARK in found.__dict__:
        return
    try:
        found.__class__ = _watching_class(type(found))
    except TypeError:  # an exotic layout: Flask's own `accessed` flag is all we have
        return
    found.__dict__[_READ_MARK] = False


def _unwatch_session(response: Response) -> Response:
    """After the view: the session gets its own class back before Flask saves it."""
    found = vars(_cv_request.get()).get("session")
    if found is not None and type(found) in _watched:
        found.__class__ = type(found).__mro__[1]
    return response


def _session_accessed() -> bool:
    """Whether the view read the session, checked without marking it read ourselves."""
    ctx = _cv_request.get(None)
    if ctx is None:
        return False
    found = vars(ctx)
    session = found.get("_session", found.get("session"))  # Flask 3.1+ / before 3.1
    if session is None:
        return False
    return bool(getattr(session, "__dict__", {}).get(_READ_MARK)
                or getattr(session, "accessed", False))


def _source_hash(f: Callable[..., Any], hash_method: HashMethod) -> str:
    try:
        source = inspect.getsource(f)
    except (OSError, TypeError):
        source = getattr(getattr(f, "__code__", None), "co_code", b"").hex()
    return str(hash_method(source.encode("utf-8")).hexdigest())[:16]


def _bypassed(reason: str) -> tuple[str, str | None]:
    """(status, detail) for a request the cache stays out of."""
    return ("bypass", reason) if reason == "unauthenticated" else (reason, None)


_PLAIN_PATH = re.compile(r"(?!//)[A-Za-z0-9/._~-]*\Z").match


def _base_url(req: Any = None) -> str:
    """``request.base_url``, built from the environ when nothing in it needs quoting."""
    if req is None:
        req = request._get_current_object()  # type: ignore[attr-defined]
    root, path, host = req.root_path, req.path, req.host
    if _PLAIN_PATH(root) and _PLAIN_PATH(path) and host.isascii() and "xn--" not in host:
        return f"{req.environ['wsgi.url_scheme']}://{host}{root.rstrip('/')}/" \
               f"{path.lstrip('/')}"
    return str(req.base_url)


_HIT_STATUS = cache_status("hit")  # a page that never expires: no ttl to tell
_KEYS_PER_VIEW = 1024  # remembered view keys per cached view
_KEY_FACTS = 2048  # longest host, root, path, query and cookie (total) whose key is remembered


def _page_response(page: StoredPage, status_header: bool, app: Flask,
                   ttl: float | None = None) -> Response:
    """The response for a view hit: one construction from the stored header tuples, Age
    (and Cache-Status) appended; the body as a one-item list with its own Content-Length
    (what ``set_data`` would do, without setting that header a second time)."""
    body = page.body
    headers = [h for h in page.replay_headers() if h[0].lower() != "content-length"]
    headers.append(("Content-Length", str(len(body))))
    headers.append(("Age", str(page.age())))
    if status_header:
        headers.append((CACHE_STATUS_HEADER,
                        _HIT_STATUS if ttl is None else cache_status("hit", ttl=ttl)))
    return app.response_class([body], status=page.status, headers=headers)


# app -> wrapper -> (endpoint, method) -> whether that wrapper serves it: per-endpoint facts
# computed once (Flask refuses new routes once an app has served a request). Both levels
# weak: a wrapper's closure often holds its app, which would then never be collected.
_DISPATCHED: weakref.WeakKeyDictionary[
    Any, weakref.WeakKeyDictionary[Any, dict[tuple[str, str], bool]]] = (
    weakref.WeakKeyDictionary())


def _is_dispatched(wrapper: Callable[..., Any], ctx: Any = None) -> bool:
    """Whether ``wrapper`` is (part of) the view serving the current request (``ctx``:
    the request context, when the caller has it)."""
    if ctx is None:
        ctx = _cv_request.get(None)
        if ctx is None:
            return False
    req = ctx.request
    rule = req.url_rule
    if rule is None:
        return False
    by_wrapper = _DISPATCHED.get(ctx.app)
    if by_wrapper is None:
        by_wrapper = _DISPATCHED.setdefault(ctx.app, weakref.WeakKeyDictionary())
    try:
        known = by_wrapper.get(wrapper)
        if known is None:
            known = by_wrapper.setdefault(wrapper, {})
    except TypeError:  # not weakly referenceable: not remembered
        return _walk_dispatch(wrapper)
    fact = (rule.endpoint, req.method)
    found = known.get(fact)
    if found is None:
        found = known[fact] = _walk_dispatch(wrapper)
    return found


def _walk_dispatch(wrapper: Callable[..., Any]) -> bool:
    fn: Any = current_app.view_functions.get(request.endpoint)  # type: ignore[arg-type]
    for _ in range(32):  # bounded walk down the decorator chain
        if fn is None:
            return False
        if fn is wrapper:
            return True
        view_class = getattr(fn, "view_class", None)
        if view_class is not None:
            names = (request.method.lower(), "get", "dispatch_request")
            return any(inspect.getattr_static(view_class, n, None) is wrapper for n in names)
        fn = getattr(fn, "__wrapped__", None)
    return False


class Cache:
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
        settings, options = _config.load(merged)
        state = _State(settings, options, CacheClient(settings))
        if not state.client.authenticated:
            log.warning("cachekit: app %r has no SECRET_KEY or CACHEKIT_MASTER_KEY, so cached "
                        "values are neither signed nor encrypted (anyone who can write to Redis "
                        "can forge them); cached views and {%% cache %%} fragments run uncached "
                        "until one is set", app.name)
        app.extensions.setdefault(EXTENSION_KEY, {})[self] = state
        hooks = app.before_request_funcs.setdefault(None, [])
        if _watch_cookies not in hooks:
            hooks.insert(0, _watch_cookies)  # before the app's hooks, which may read cookies
        after = app.after_request_funcs.setdefault(None, [])
        if _unwatch_session not in after:
            after.append(_unwatch_session)  # after hooks run last-added first
        if self.with_jinja2_ext:
            from .jinja import CacheExtension

            app.jinja_env.add_extension(CacheExtension)
            app.jinja_env.cachekit_cache = self  # type: ignore[attr-defined]
        from .cli import make_group

        if "cachekit" not in app.cli.commands:
            app.cli.add_command(make_group(self))
        if options.HEALTH_ENABLED:
            from .health import make_blueprint

            app.register_blueprint(make_blueprint(self), url_prefix=options.HEALTH_URL_PREFIX)

    def health_authorization(self, fn: Callable[[], bool]) -> Callable[[], bool]:
        """Decorator: ``fn()`` (run in the request) says whether the dashboard may be shown."""
        self._health_authorization = fn
        return fn

    def _state(self) -> _State:
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

    def health(self) -> HealthReport:
        """The core HealthReport for the current app."""
        return self.client.health()

    # -- Flask-Caching's timeouts: None = default, 0 = forever ---------------
    @staticmethod
    def _timeout(timeout: Any) -> Any:
        if timeout is None:
            return DEFAULT
        if timeout == 0:
            return None
        return timeout

    # -- proxy methods ---------------------------------------------------------
    def get(self, key: str) -> Any:
        """The cached value or None."""
        return self.client.get(key)

    def has(self, key: str) -> bool:
        """Whether ``key`` holds a value."""
        return self.client.has_key(key)

    def set(self, key: str, value: Any, timeout: float | None = None) -> bool:
        """Store ``value`` (timeout None = default, 0 = forever); False if dropped."""
        return self.client.set(key, value, self._timeout(timeout))

    def add(self, key: str, value: Any, timeout: float | None = None) -> bool:
        """Store ``value`` only if ``key`` is absent."""
        return self.client.add(key, value, self._timeout(timeout))

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
        return self.client.set_many(mapping, self._timeout(timeout))

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

    # -- shared by cached and memoize ----------------------------------------
    def _bypass(self, unless: Callable[..., Any] | None, f: Callable[..., Any],
                args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        if not callable(unless):
            return False
        return (unless(f, *args, **kwargs) if _wants_args(unless) else unless()) is True

    @staticmethod
    def _forced(forced_update: Callable[..., Any] | None, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> bool:
        if not callable(forced_update):
            return False
        return (forced_update(*args, **kwargs) if _wants_args(forced_update)
                else forced_update()) is True

    def _package(self, rv: Any, view: bool, response_filter: Callable[[Any], Any] | None,
                 cache_none: bool, vary_cookies: Iterable[str] = ()) -> Any:
        """Turn a fresh return value into what is stored, or a _Marker saying why not."""
        if inspect.isgenerator(rv):
            rv = _joined(rv)
        if view or isinstance(rv, Response):
            resp = current_app.make_response(rv)
            reason: str | None = None
            if not self.client.authenticated:
                reason = "unauthenticated"  # a page from an unsigned entry could be forged
            elif view:  # a session or cookie read anywhere in the request makes it personal
                reason = visitor_reason(session_accessed=_session_accessed(),
                                        cookies_read=_cookies_read(),
                                        cookies_keyed=vary_cookies)
            reason = reason or response_uncacheable_reason(
                resp.status_code, list(resp.headers.items()), streaming=resp.is_streamed)
            if reason is None and response_filter is not None and not response_filter(rv):
                reason = "response-filter"
            if reason is not None:
                return _Marker(resp, reason)
            page = StoredPage.capture(resp.status_code, list(resp.headers.items()),
                                      resp.get_data(), resp.mimetype_params.get("charset"))
            timeout = getattr(rv, "timeout", None) if isinstance(rv, CachedResponse) else None
            if timeout is not None:
                return Expiring(page, self._timeout(timeout))
            return page
        if rv is None and not cache_none:
            return _Marker(rv, "none")
        if response_filter is not None and not response_filter(rv):
            return _Marker(rv, "response-filter")
        return rv

    @staticmethod
    def _thaw(value: Any) -> Any:
        if isinstance(value, StoredPage):
            resp = current_app.response_class(value.body, status=value.status,
                                              headers=list(value.replay_headers()))
            resp.headers["Age"] = str(value.age())
            return resp
        return value

    @staticmethod
    def _ttl(value: Any, timeout: Any, state: _State) -> float | None:
        """Seconds a hit page has left by the view's timeout (Cache-Status ttl), None if
        it never expires."""
        if timeout is DEFAULT:
            timeout = state.settings.DEFAULT_TIMEOUT
        if timeout is None or not isinstance(value, StoredPage):
            return None
        return max(0.0, float(timeout) - value.age())

    def _finish(self, value: Any, status: str, detail: str | None, view: bool,
                hit_indication: bool, state: _State | None = None, *,
                timeout: Any = None, ran: bool = False) -> Any:
        """Deliver a value; views get the Cache-Status (and optional hit_cache) header.

        ``timeout`` is the view's (for the ttl of a hit); ``ran``: this request computed
        the value (a miss it stored, rather than one it waited for).
        """
        if state is None:
            state = self._state()
        if view and status == "hit" and not hit_indication and isinstance(value, StoredPage):
            return _page_response(value, state.options.CACHE_STATUS_HEADER, _cv_app.get().app,
                                  self._ttl(value, timeout, state))
        ttl = self._ttl(value, timeout, state) if view and status == "hit" else None
        stored = ran and status == "miss" and not isinstance(value, _Marker)
        if isinstance(value, _Marker) and detail is None:  # this caller computed it
            status, detail = "uncacheable", value.reason
        value = value.deliver if isinstance(value, _Marker) else self._thaw(value)
        if not view:
            return value
        resp = current_app.make_response(value)
        if status != "hit":
            resp.headers.pop("Age", None)
        if state.options.CACHE_STATUS_HEADER:
            resp.headers[CACHE_STATUS_HEADER] = cache_status(status, detail=detail, ttl=ttl,
                                                             stored=stored)
        if hit_indication and status in ("hit", "stale"):
            resp.headers["hit_cache"] = "True"
        return resp

    # -- cached ------------------------------------------------------------------
    def cached(
        self,
        timeout: float | None = None,
        key_prefix: str | Callable[[], str] = _DEFAULT_VIEW_PREFIX,
        unless: Callable[..., Any] | None = None,
        forced_update: Callable[..., Any] | None = None,
        response_filter: Callable[[Any], Any] | None = None,
        query_string: bool | None = None,
        hash_method: HashMethod = hashlib.sha256,
        cache_none: bool = False,
        make_cache_key: Callable[..., str] | None = None,
        source_check: bool | None = None,
        response_hit_indication: bool = False,
        stale_ttl: float | None = None,
        vary_on_cookies: Iterable[str] = (),
        is_stale: Callable[..., Any] | None = None,
        local: bool | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Cache a view (by method + full URL + query string) or a function (by key_prefix).

        A view that reads a cookie is not stored unless the cookie is named in
        ``vary_on_cookies``, whose values are then part of the key. ``is_stale(value)``
        (or ``(value, *args, **kwargs)``), asked on hits, recomputes when it returns True.
        ``local=True`` serves hits from the in-process tier (see LOCAL_CACHE), ``False``
        never; None follows the cache.
        """
        include_query = query_string is not False
        vary_cookies = tuple(vary_on_cookies)

        def decorator(f: Callable[..., Any]) -> Callable[..., Any]:
            fname = f"{f.__module__}.{f.__qualname__}"
            is_async = inspect.iscoroutinefunction(f)
            wrapper: Any = None

            def default_make_cache_key(*args: Any, path: str | None = None,
                                       query_args: Any = None, **values: Any) -> str:
                """The key for the current request, or for ``path`` (default: url_for the
                view with ``values``) and ``query_args`` (str, mapping or pairs) outside one."""
                if callable(key_prefix) or "%s" not in key_prefix or (
                        path is None and query_args is None and has_request_context()):
                    return request_key()
                if path is None:
                    endpoint = _endpoint_of(wrapper)
                    if endpoint is None:
                        raise RuntimeError(f"{fname} is not a registered view: pass path=")
                    path = url_for(endpoint, _external=False, **values)
                if query_args is not None and not isinstance(query_args, str):
                    query_args = urlencode(
                        list(query_args.items()) if isinstance(query_args, Mapping)
                        else list(query_args), doseq=True)
                with current_app.test_request_context(path, query_string=query_args):
                    return request_key()

            templated = not callable(key_prefix) and "%s" in key_prefix
            own_prefix = templated and key_prefix != _DEFAULT_VIEW_PREFIX
            source: list[str] = []  # the source hash, computed on first use
            # The request facts a view key is made of -> the key (bounded: facts come from
            # the client; a full table starts over).
            keys: dict[tuple[Any, ...], str] = {}

            def request_key(ctx: Any = None, view: bool | None = None,
                            state: _State | None = None) -> str:
                check = source_check
                if check is None:
                    check = (state or self._state()).options.SOURCE_CHECK
                if callable(key_prefix):
                    key = str(key_prefix())
                elif templated:
                    if ctx is None:
                        ctx = _cv_request.get(None)
                        if ctx is None:
                            raise RuntimeError(
                                "a view's cache key needs a request: use it inside "
                                "app.test_request_context(path)")
                    req = ctx.request
                    if view is None:
                        view = _is_dispatched(wrapper, ctx)
                    environ = req.environ
                    facts = (view, req.method, environ.get("wsgi.url_scheme"), req.host,
                             environ.get("SCRIPT_NAME"), environ.get("PATH_INFO"),
                             environ.get("QUERY_STRING") if include_query else None,
                             environ.get("HTTP_COOKIE") if vary_cookies else None)
                    found = keys.get(facts)
                    if found is None:
                        found = view_key(req, view)
                        if len(keys) >= _KEYS_PER_VIEW:
                            keys.clear()
                        if sum(len(f) for f in facts[3:] if isinstance(f, str)) <= _KEY_FACTS:
                            keys[facts] = found
                    key = found
                else:
                    key = key_prefix
                if check:
                    if not source:
                        source.append(_source_hash(f, hash_method))
                    key += ":src" + source[0]
                return key

            def view_key(req: Any, view: bool) -> str:
                """The key of a view's page for request ``req``."""
                url = _base_url(req)
                raw_query = req.environ.get("QUERY_STRING") if include_query else ""
                if raw_query:  # an empty query string needs no parsing
                    query = normalized_query(raw_query)
                    if query:
                        url += "?" + query
                prefix = key_prefix % req.path if own_prefix else ""
                if not view:
                    prefix = f"{prefix}|{fname}" if prefix else fname
                context = cookie_key_parts(req.cookies, vary_cookies) if vary_cookies else ()
                return view_cache_key(url, method=req.method, prefix=prefix, context=context)

            def key_for(args: tuple[Any, ...], kwargs: dict[str, Any], ctx: Any,
                        view: bool, state: _State) -> str:
                if make_cache_key is not None:
                    return make_cache_key(*args, **kwargs)
                if wrapper.make_cache_key is default_make_cache_key:
                    return request_key(ctx, view, state)  # the view's arguments never name the path
                return wrapper.make_cache_key(*args, **kwargs)  # type: ignore[no-any-return]

            def bypass_reason(ctx: Any, state: _State, view: bool) -> str | None:
                if ctx is None:
                    return None
                if view and not state.client.authenticated:
                    return "unauthenticated"  # pages are only served from entries we signed
                req = ctx.request
                return request_bypass_reason(req.method, EnvironHeaders(req.environ))

            def from_memory(client: Any, key: str, forced: bool,
                            accept: Callable[[Any], bool]) -> Any:
                """A fresh hit from the in-process tier (no refresh machinery needed), or None."""
                if forced or is_stale is not None:
                    return None
                return client.local_hit(key, accept, local=local)

            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                if unless is not None and self._bypass(unless, f, args, kwargs):
                    return await f(*args, **kwargs)
                ctx = _cv_request.get(None)
                state = self._state()
                view = ctx is not None and _is_dispatched(wrapper, ctx)
                if (bypass := bypass_reason(ctx, state, view)) is not None:
                    return self._finish(await f(*args, **kwargs), *_bypassed(bypass), view,
                                        False, state)
                client = state.async_client
                key = key_for(args, kwargs, ctx, view, state)

                ran: list[bool] = []

                async def compute() -> Any:
                    ran.append(True)
                    return self._package(await f(*args, **kwargs), view, response_filter,
                                         cache_none, vary_cookies)

                forced = self._forced(forced_update, args, kwargs)
                accept = _acceptor(view, client.authenticated)
                timeout = self._timeout(wrapper.cache_timeout)
                if (hit := from_memory(client, key, forced, accept)) is not None:
                    return self._finish(hit.value, "hit", None, view, response_hit_indication,
                                        state, timeout=timeout)
                result = await client.fetch(
                    key, compute, timeout, stale_ttl,
                    _storable, force=forced, accept=accept,
                    refresh=_staleness(is_stale, self._thaw, args, kwargs), local=local)
                return self._finish(result.value, result.status, None, view,
                                    response_hit_indication, state, timeout=timeout,
                                    ran=bool(ran))

            def swrapper(*args: Any, **kwargs: Any) -> Any:
                if unless is not None and self._bypass(unless, f, args, kwargs):
                    return f(*args, **kwargs)
                ctx = _cv_request.get(None)
                state = self._state()
                view = ctx is not None and _is_dispatched(wrapper, ctx)
                if (bypass := bypass_reason(ctx, state, view)) is not None:
                    return self._finish(f(*args, **kwargs), *_bypassed(bypass), view, False,
                                        state)
                client = state.client
                key = key_for(args, kwargs, ctx, view, state)

                ran: list[bool] = []

                def compute() -> Any:
                    ran.append(True)
                    return self._package(f(*args, **kwargs), view, response_filter,
                                         cache_none, vary_cookies)

                forced = self._forced(forced_update, args, kwargs)
                accept = _acceptor(view, client.authenticated)
                timeout = self._timeout(wrapper.cache_timeout)
                if (hit := from_memory(client, key, forced, accept)) is not None:
                    return self._finish(hit.value, "hit", None, view, response_hit_indication,
                                        state, timeout=timeout)
                result = client.fetch(
                    key, compute, timeout, stale_ttl,
                    _storable, force=forced, accept=accept,
                    refresh=_staleness(is_stale, self._thaw, args, kwargs), local=local)
                return self._finish(result.value, result.status, None, view,
                                    response_hit_indication, state, timeout=timeout,
                                    ran=bool(ran))

            wrapper = awrapper if is_async else swrapper
            functools.update_wrapper(wrapper, f)
            wrapper.uncached = f
            wrapper.cache_timeout = timeout
            wrapper.make_cache_key = default_make_cache_key
            return wrapper  # type: ignore[no-any-return]

        return decorator

    def delete_cached(self, f: Callable[..., Any], path: str | None = None,
                      query_args: Any = None, **values: Any) -> bool:
        """Delete what ``@cached`` stored for ``path`` (default: url_for the view with
        ``values``) and ``query_args``; True if there was an entry (or the delete is owed)."""
        key = f.make_cache_key(path=path, query_args=query_args, **values)  # type: ignore[attr-defined]
        return self.client.delete(key) is not False

    # -- memoize -----------------------------------------------------------------
    def memoize(
        self,
        timeout: float | None = None,
        make_name: Callable[[str], str] | None = None,
        unless: Callable[..., Any] | None = None,
        forced_update: Callable[..., Any] | None = None,
        response_filter: Callable[[Any], Any] | None = None,
        hash_method: HashMethod = hashlib.sha256,
        cache_none: bool = False,
        source_check: bool | None = None,
        args_to_ignore: Iterable[str] | None = None,
        stale_ttl: float | None = None,
        is_stale: Callable[..., Any] | None = None,
        local: bool | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Cache a function's result per arguments; works on methods and async functions.

        ``is_stale`` as for :meth:`cached`. Arguments that cannot be keyed stably (E023)
        raise in strict mode, debug or testing; otherwise the call runs uncached."""
        ignore = frozenset(args_to_ignore or ())

        def decorator(f: Callable[..., Any]) -> Callable[..., Any]:
            memo = _Memo(self, f, make_name, hash_method, source_check, ignore)
            is_async = inspect.iscoroutinefunction(f)
            wrapper: Any = None

            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                if self._bypass(unless, f, args, kwargs):
                    return await f(*args, **kwargs)
                client = self._state().async_client

                async def compute() -> Any:
                    return self._package(await f(*args, **kwargs), False, response_filter,
                                         cache_none)

                try:
                    names, digest = memo.parts(args, kwargs)
                except InvalidKeyError as exc:
                    self._unkeyable(client, exc)
                    return self._finish(await compute(), "bypass", None, False, False)
                versions = await client.versions(names)
                if versions is None:
                    return self._finish(await compute(), "bypass", None, False, False)
                result = await client.fetch(
                    memo.key(versions, digest), compute, self._timeout(wrapper.cache_timeout),
                    stale_ttl, _storable, force=self._forced(forced_update, args, kwargs),
                    accept=_acceptor(False, client.authenticated),
                    refresh=_staleness(is_stale, self._thaw, args, kwargs), local=local)
                return self._finish(result.value, result.status, None, False, False)

            def swrapper(*args: Any, **kwargs: Any) -> Any:
                if self._bypass(unless, f, args, kwargs):
                    return f(*args, **kwargs)
                client = self._state().client

                def compute() -> Any:
                    return self._package(f(*args, **kwargs), False, response_filter,
                                         cache_none)

                try:
                    key = memo.make_cache_key(f, *args, **kwargs)
                except InvalidKeyError as exc:
                    self._unkeyable(client, exc)
                    key = None
                if key is None:
                    return self._finish(compute(), "bypass", None, False, False)
                result = client.fetch(
                    key, compute, self._timeout(wrapper.cache_timeout), stale_ttl, _storable,
                    force=self._forced(forced_update, args, kwargs),
                    accept=_acceptor(False, client.authenticated),
                    refresh=_staleness(is_stale, self._thaw, args, kwargs), local=local)
                return self._finish(result.value, result.status, None, False, False)

            wrapper = awrapper if is_async else swrapper
            functools.update_wrapper(wrapper, f)
            wrapper.uncached = f
            wrapper.cache_timeout = timeout
            wrapper.make_cache_key = memo.make_cache_key
            wrapper.delete_memoized = lambda: self.delete_memoized(wrapper)
            wrapper._cachekit_memo = memo
            return wrapper  # type: ignore[no-any-return]

        return decorator

    def _unkeyable(self, client: CacheClient | AsyncCacheClient, exc: InvalidKeyError) -> None:
        """E023 from a call's arguments: raise while developing, else let it run uncached."""
        if exc.code != "E023":
            raise exc
        # Outside an app context (Cache(app) bound it), the bound app decides, as inside.
        ctx = _cv_app.get(None)
        app: Any = ctx.app if ctx is not None else self.app
        client.unkeyable(exc, strict=app is not None and bool(app.debug or app.testing))

    def _memo_of(self, f: Any) -> tuple[_Memo, Any]:
        target = getattr(f, "__func__", f)
        bound_to = getattr(f, "__self__", None)
        memo = getattr(target, "_cachekit_memo", None)
        if not isinstance(memo, _Memo):
            raise TypeError(f"{f!r} is not a function memoized by this cache; pass the "
                            "decorated function (deleting by name is not supported)")
        return memo, bound_to

    def delete_memoized(self, f: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Forget memoized results: all of them, one instance's, or those for given arguments."""
        memo, bound_to = self._memo_of(f)
        client = self.client
        if args or kwargs:
            if isinstance(bound_to, type) and memo.kind == "cls":
                if not (args and isinstance(args[0], type)):
                    raise ValueError(f"delete_memoized on the classmethod {memo.fname} with "
                                     "arguments takes the class first: (f, cls, *args)")
            elif bound_to is not None and not (args and args[0] is bound_to):
                args = (bound_to, *args)  # a bound method supplies its own instance
            key = memo.make_cache_key(memo.f, *args, **kwargs)
            if key is not None:
                client.delete(key)
            return
        self._drop_version(memo, bound_to)

    def delete_memoized_verhash(self, f: Callable[..., Any], *args: Any) -> None:
        """Drop the version token of a memoized function (or of one instance, if bound)."""
        memo, bound_to = self._memo_of(f)
        self._drop_version(memo, bound_to)

    def _drop_version(self, memo: _Memo, bound_to: Any) -> None:
        if bound_to is not None and not isinstance(bound_to, type) and memo.kind == "self":
            name = memo.instance_version_key(bound_to)
            if name is not None:
                self.client.bump_version(name)
                return
        self.client.bump_version(memo.function_version_key)


class _Memo:
    """How one memoized function turns its arguments into keys."""

    def __init__(self, cache: Cache, f: Callable[..., Any], make_name: Callable[[str], str] | None,
                 hash_method: HashMethod, source_check: bool | None,
                 ignore: frozenset[str]) -> None:
        self.cache = cache
        self.f = f
        self.signature = inspect.signature(f)
        params = list(self.signature.parameters)
        self.first = params[0] if params else None
        self.kind = self.first if self.first in ("self", "cls") else None
        name = f"{f.__module__}.{f.__qualname__}"
        self.fname = make_name(name) if make_name else name
        self.hash_method = hash_method
        self.source_check = source_check
        self.ignore = ignore
        self.function_version_key = f"memver:{self.fname}"

    def _hash(self, value: Any) -> str:
        return str(self.hash_method(repr(value).encode("utf-8")).hexdigest())

    def instance_version_key(self, instance: Any) -> str | None:
        if self.kind != "self" or "self" in self.ignore:
            return None
        ident = canonical(instance, f"'self' of {self.fname}")
        return f"{self.function_version_key}:{self._hash(ident)[:24]}"

    def parts(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[list[str], str]:
        """(the names of the version tokens the key is built from, digest of the arguments)."""
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        items: list[Any] = []
        instance_key = None
        for name, value in bound.arguments.items():
            if name in self.ignore:
                continue
            if self.kind == "self" and name == self.first:
                instance_key = self.instance_version_key(value)
                continue
            items.append((name, canonical(value, f"argument {name!r} of {self.fname}")))
        check = self.cache._state().options.SOURCE_CHECK if self.source_check is None \
            else self.source_check
        if check:
            items.append(("__source__", _source_hash(self.f, self.hash_method)))
        names = [self.function_version_key]
        if instance_key is not None:
            names.append(instance_key)
        return names, self._hash(items)

    def key(self, versions: list[str], digest: str) -> str:
        return f"memo:{self.fname}:{'.'.join(versions)}:{digest}"

    def make_cache_key(self, f: Any, *args: Any, **kwargs: Any) -> str | None:
        """The key for these arguments (None when the cache is unavailable)."""
        names, digest = self.parts(args, kwargs)
        versions = self.cache.client.versions(names)
        return None if versions is None else self.key(versions, digest)

