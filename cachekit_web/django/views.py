"""cache_page for Django views, and helpers to invalidate pages and fragments.

The rules (what is cacheable, the key, the Cache-Status header) live in
``cachekit_web.core.web``; stampede protection and stale-while-revalidate in
the core client's ``fetch``. This module only translates Django requests and
responses.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, InvalidCacheBackendError, caches
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.http.response import ResponseHeaders
from django.utils.cache import patch_response_headers, patch_vary_headers

from ..core import web
from ..core.client import Result
from . import active
from .backend import CachekitCache

Outcome = dict[str, Any]


# Aliases named by cache_page, checked at start-up (E043) rather than on each request.
DECORATED_ALIASES: set[str] = set()

# Settings read on every page hit, read once (LazySettings costs ~1 us a lookup); cleared
# when a setting changes (override_settings in tests).
_SETTINGS: dict[str, Any] = {}


def _setting(name: str, default: Any) -> Any:
    try:
        return _SETTINGS[name]
    except KeyError:
        value = _SETTINGS[name] = getattr(settings, name, default)
        return value


# Per process, emptied with _SETTINGS: the caches by alias (django.core.cache.caches is an
# asgiref Local, ~2 us a lookup; our backends share one thread-safe core client), and
# "scheme://host" for the request values get_host() accepted under the current settings.
_BACKENDS: dict[str, CachekitCache] = {}
_ORIGINS: dict[tuple[Any, ...], str] = {}
_MAX_ORIGINS = 256  # Host is the client's to choose: a bounded memo
# Page keys without Vary by (method, absolute URL, key prefix, language, time zone): the
# hash is the costly part of a key. The URL is the client's to choose: bounded.
_PAGE_KEYS: dict[tuple[str, ...], str] = {}
_MAX_PAGE_KEYS = 1024


def _forget_settings(**kwargs: Any) -> None:
    _SETTINGS.clear()
    _BACKENDS.clear()
    _ORIGINS.clear()
    _PAGE_KEYS.clear()


setting_changed.connect(_forget_settings, dispatch_uid="cachekit_web.django.views.settings")


def get_cache(cache: str | None = None) -> CachekitCache:
    """The CachekitCache for an alias (default: "default", as Django's cache_page)."""
    alias = cache or DEFAULT_CACHE_ALIAS
    backend = caches[alias]
    if not isinstance(backend, CachekitCache):
        raise TypeError(f"CACHES[{alias!r}] is not a cachekit_web.django.CachekitCache")
    return backend


def _prefix(key_prefix: str | None) -> str:
    # As Django's decorator: CACHE_MIDDLEWARE_KEY_PREFIX belongs to the middleware only.
    return key_prefix or ""


def _cachekit_or_none(alias: str) -> CachekitCache | None:
    # A wrong alias is reported by the E043 check at start-up; here the view runs uncached.
    try:
        return _BACKENDS[alias]
    except KeyError:
        pass
    try:
        backend = caches[alias]
    except InvalidCacheBackendError:
        return None
    if not isinstance(backend, CachekitCache):
        return None
    _BACKENDS[alias] = backend
    return backend


def _vary_on_authorization(request: HttpRequest, response: HttpResponseBase) -> None:
    # As Django 5.2: a response to a request bearing credentials varies on them, unless
    # the response says it is public.
    if request.META.get("HTTP_AUTHORIZATION") and \
            "public" not in response.get("Cache-Control", "").lower():
        patch_vary_headers(response, ("Authorization",))


def _variant() -> list[str]:
    # LocaleMiddleware and the time zone pick a page variant before the view runs
    # (and add Vary/Content-Language after it): the active ones are part of the key.
    # active.*: trans_real.get_language() and timezone.get_current_timezone_name(), faster.
    out = []
    if _setting("USE_I18N", True):
        out.append("lang=" + (active.language() or ""))
    if _setting("USE_TZ", True):
        out.append("tz=" + active.timezone_name())
    return out


_PLAIN_PATH = re.compile(r"(?!//)[A-Za-z0-9/._~-]*\Z").match


# What get_host() reads (besides the scheme and settings, which clear the memo).
_HOST_INPUTS = ("HTTP_HOST", "HTTP_X_FORWARDED_HOST", "SERVER_NAME", "SERVER_PORT",
                "HTTP_X_FORWARDED_PORT")


def _origin(request: HttpRequest) -> str:
    """``scheme://host``; the host checked by ``get_host`` (ALLOWED_HOSTS) once per distinct
    request value and settings: a disallowed host is never remembered, so always raises."""
    scheme = request.scheme
    if type(request).get_host is not HttpRequest.get_host:  # a subclass decides itself
        return f"{scheme}://{request.get_host()}"
    meta = request.META
    inputs = (scheme, *[meta.get(name) for name in _HOST_INPUTS])
    try:
        return _ORIGINS[inputs]
    except KeyError:
        pass
    origin = f"{scheme}://{request.get_host()}"  # DisallowedHost propagates
    if len(_ORIGINS) >= _MAX_ORIGINS:
        _ORIGINS.clear()
    _ORIGINS[inputs] = origin
    return origin


def _absolute_uri(request: HttpRequest) -> str:
    """``request.build_absolute_uri()``, from ``request.META`` when nothing needs quoting
    (the host is still checked against ALLOWED_HOSTS by ``get_host``)."""
    if not request.META.get("QUERY_STRING") and _PLAIN_PATH(request.path):
        return f"{_origin(request)}{request.path}"
    return str(request.build_absolute_uri())


def page_cache_key(request: HttpRequest, *, key_prefix: str | None = None,
                   vary_on_headers: Iterable[str] = (),
                   vary_on_cookies: Iterable[str] = ()) -> str:
    """The cache key of the page ``request`` asks for (method, full URL, varying headers
    and cookies, active language and time zone)."""
    names = list(vary_on_headers)
    cookies = list(vary_on_cookies)
    context = _variant()
    method = request.method or "GET"
    if not names and not cookies:  # the key is a function of these facts: remembered
        facts = (method, _absolute_uri(request), key_prefix or "", *context)
        try:
            return _PAGE_KEYS[facts]
        except KeyError:
            pass
        key = web.view_cache_key(facts[1], method=method, prefix=_prefix(key_prefix),
                                 context=context)
        if len(_PAGE_KEYS) >= _MAX_PAGE_KEYS:
            _PAGE_KEYS.clear()
        _PAGE_KEYS[facts] = key
        return key
    if cookies:
        context += web.cookie_key_parts(request.COOKIES, cookies)
    values: dict[str, str] = {}
    if names:
        headers = web.EnvironHeaders(request.META)  # request.headers would build them all
        values = {n: headers.get(n, "") for n in names}
    return web.view_cache_key(
        _absolute_uri(request),
        method=method,
        headers=values,
        vary_on=names,
        prefix=_prefix(key_prefix),
        context=context,
    )


class _WatchedCookies(web.CookieReads, dict[str, str]):
    """request.COOKIES, recording which cookies the view read."""


def _watch_cookies(request: HttpRequest) -> None:
    """Record cookie reads from here on (middleware that ran before read only its own)."""
    if not isinstance(request.COOKIES, _WatchedCookies):
        request.COOKIES = _WatchedCookies(request.COOKIES)


def _cookies_keyed(vary_on_headers: Iterable[str], vary_on_cookies: Iterable[str]) -> list[str]:
    keyed = list(vary_on_cookies)
    if "cookie" in {h.lower() for h in vary_on_headers}:
        keyed.append("*")  # the whole Cookie header is part of the key
    return keyed


def invalidate_page(target: HttpRequest | str, *, headers: dict[str, str] | None = None,
                    vary_on_headers: Iterable[str] = (), key_prefix: str | None = None,
                    cache: str | None = None, cookies: dict[str, str] | None = None,
                    vary_on_cookies: Iterable[str] = ()) -> bool:
    """Delete a cached page, given a request for it or its absolute URL; True if it existed.

    Pass the same ``vary_on_headers``, ``vary_on_cookies`` and ``key_prefix`` as to
    cache_page, and for a URL the header and cookie values the cached variant was
    requested with; the variant of the active language and time zone is removed (wrap
    in ``translation.override`` for others).
    """
    names = list(vary_on_headers)
    if isinstance(target, HttpRequest):
        key = page_cache_key(target, key_prefix=key_prefix, vary_on_headers=names,
                             vary_on_cookies=vary_on_cookies)
    else:
        key = web.view_cache_key(
            target, headers=headers or {}, vary_on=names, prefix=_prefix(key_prefix),
            context=_variant() + web.cookie_key_parts(cookies or {}, vary_on_cookies))
    return bool(get_cache(cache).delete(key))  # a deferred delete (outage) will land: True


def invalidate_fragment(fragment_name: str, *vary_on: Any, cache: str | None = None) -> bool:
    """Delete a {% cache %} fragment, given the same name and vary-on values; True if it existed."""
    if cache is None:
        # The tag's default: "template_fragments" when configured, else "default".
        cache = "template_fragments" if "template_fragments" in settings.CACHES else "default"
    return bool(caches[cache].delete(web.fragment_cache_key(fragment_name, vary_on)))


def _uncacheable_reason(request: HttpRequest, response: HttpResponseBase,
                        vary_on: Iterable[str], vary_cookies: Iterable[str] = ()) -> str | None:
    keyed = {v.lower() for v in vary_on}
    # The headers as sent: Django keeps the Set-Cookie lines apart, in response.cookies.
    headers = list(response.items())
    headers += [("Set-Cookie", cookie.OutputString()) for cookie in response.cookies.values()]
    reason = web.response_uncacheable_reason(
        response.status_code, headers, keyed_headers=keyed,
        streaming=bool(getattr(response, "streaming", False)),
    )
    # Middleware that runs after the view makes the page depend on the visitor: a touched
    # session adds Vary: Cookie, a used CSRF token or pending messages set a cookie.
    session = getattr(request, "session", None)
    messages = getattr(request, "_messages", None)
    return reason or web.visitor_reason(
        session_accessed=bool(getattr(session, "accessed", False)) and "cookie" not in keyed,
        csrf_used=bool(request.META.get("CSRF_COOKIE_NEEDS_UPDATE")),
        messages_pending=bool(getattr(messages, "used", False)
                              or getattr(messages, "added_new", False)),
        cookies_read=getattr(request.COOKIES, "reads", ()),
        cookies_keyed=_cookies_keyed(keyed, vary_cookies),
    )


def _capture(request: HttpRequest, response: HttpResponseBase, timeout: float | None,
             vary_on: tuple[str, ...], outcome: Outcome,
             vary_cookies: tuple[str, ...] = ()) -> web.StoredPage | None:
    """What the leader stores: a StoredPage value, or None when the response is not cacheable."""
    render = getattr(response, "render", None)
    if callable(render) and not getattr(response, "is_rendered", True):
        response = render()
    outcome["response"] = response
    reason = _uncacheable_reason(request, response, vary_on, vary_cookies)
    if reason is not None:
        outcome["reason"] = reason
        return None
    if vary_on:
        patch_vary_headers(response, vary_on)
    if timeout is not None:
        patch_response_headers(response, int(timeout))
    assert isinstance(response, HttpResponse)
    return web.StoredPage.capture(response.status_code, list(response.items()),
                                  response.content, response.charset)


# The attributes HttpResponse(bytes, status=, headers=) sets, and those of them a response
# must not share with another (mutable). A Django whose responses differ from this takes the
# plain constructor (see _Prepared.of).
_RESPONSE_FIELDS = frozenset({"headers", "_charset", "_resource_closers", "_handler_class",
                              "cookies", "closed", "status_code", "_reason_phrase",
                              "_container"})
_FRESH_FIELDS = frozenset({"headers", "cookies", "_resource_closers", "_container"})


class _Prepared:
    """A stored page turned into a response once (headers checked by Django then); each hit
    is a copy with fresh mutable parts and Age and Cache-Status set."""

    __slots__ = ("body", "state", "store")

    def __init__(self, body: bytes, state: dict[str, Any],
                 store: dict[str, tuple[str, str]]) -> None:
        self.body, self.state, self.store = body, state, store

    @classmethod
    def of(cls, page: web.StoredPage) -> _Prepared | None:
        """The prepared form of ``page``; None if this Django's responses are shaped
        otherwise than this copy knows (then each hit uses the constructor)."""
        template = HttpResponse(page.body, status=page.status,
                                headers=dict(page.replay_headers()))
        fields = vars(template)
        store = getattr(template.headers, "_store", None)
        if fields.keys() != _RESPONSE_FIELDS or type(template.headers) is not ResponseHeaders \
                or type(store) is not dict or template._container != [page.body]:
            return None
        state = {k: v for k, v in fields.items() if k not in _FRESH_FIELDS}
        return cls(page.body, state, store)

    def response(self, age: str, status: str | None) -> HttpResponse:
        """A new response: the page's, with ``Age`` and ``Cache-Status`` (ours: ASCII)."""
        response = HttpResponse.__new__(HttpResponse)
        fields = response.__dict__
        fields.update(self.state)
        headers = ResponseHeaders.__new__(ResponseHeaders)
        store = headers._store = self.store.copy()
        store["age"] = ("Age", age)
        if status is not None:
            store[_STATUS_LOWER] = (web.CACHE_STATUS_HEADER, status)
        fields["headers"] = headers
        fields["cookies"] = SimpleCookie()
        fields["_resource_closers"] = []
        fields["_container"] = [self.body]  # bytes are immutable: shared, not copied
        return response


_STATUS_LOWER = web.CACHE_STATUS_HEADER.lower()

# Prepared pages by the page object (immutable; the in-process tier serves one object per
# entry, the codec one per stored frame read again): (page, prepared or _SEEN_ONCE), the
# page kept so that its id is not reused.
_PREPARED: dict[int, tuple[web.StoredPage, Any]] = {}
_MAX_PREPARED = 64
_SEEN_ONCE: Any = object()  # read from Redis once: prepared if the same object comes again


def _prepared(page: web.StoredPage, tier: bool) -> _Prepared | None:
    """The prepared form of ``page``, remembered: at once for a page from the in-process
    tier, else once the same page object is served a second time (None until then)."""
    found = _PREPARED.get(id(page))
    if found is not None and found[0] is page:
        if found[1] is not _SEEN_ONCE:
            return found[1]  # type: ignore[no-any-return]
    elif not tier:
        if len(page.body) > web.MEMO_BODY_MAX:  # larger ones read from Redis
            return None
        _remember(page, _SEEN_ONCE)  # e.g. a stale_ttl page: a new object on every read
        return None
    prepared = _Prepared.of(page)
    _remember(page, prepared)
    return prepared


def _remember(page: web.StoredPage, prepared: Any) -> None:
    if len(_PREPARED) >= _MAX_PREPARED:
        _PREPARED.clear()
    _PREPARED[id(page)] = (page, prepared)


def _from_page(page: web.StoredPage, cache_status: str | None = None,
               age: int | None = None, tier: bool = False) -> HttpResponse:
    """The response serving ``page``: its stored headers, Age (and Cache-Status)."""
    age_value = str(page.age() if age is None else age)
    prepared = _prepared(page, tier)
    if prepared is not None:
        return prepared.response(age_value, cache_status)
    headers = dict(page.replay_headers())
    headers["Age"] = age_value
    if cache_status is not None:
        headers[web.CACHE_STATUS_HEADER] = cache_status
    return HttpResponse(page.body, status=page.status, headers=headers)


def _status_header(status: str, outcome: Outcome, page: web.StoredPage | None,
                   timeout: float | None, age: int | None = None) -> str:
    if "response" in outcome:  # this request ran the view
        if status == "bypass":
            return web.cache_status("bypass")
        if "reason" in outcome:
            return web.cache_status("uncacheable", detail=outcome["reason"])
        return web.cache_status(status, stored=status == "miss")
    if status == "hit" and page is not None and timeout is not None:
        return _hit_status(int(max(0.0, timeout - (page.age() if age is None else age))))
    return web.cache_status(status)


# Cache-Status of a hit by its whole seconds to live (bounded by the longest timeout).
_HIT_STATUS: dict[int, str] = {}
_MAX_HIT_STATUS = 4096


def _hit_status(ttl: int) -> str:
    """``web.cache_status("hit", ttl=ttl)``, remembered."""
    try:
        return _HIT_STATUS[ttl]
    except KeyError:
        pass
    if len(_HIT_STATUS) >= _MAX_HIT_STATUS:
        _HIT_STATUS.clear()
    value = _HIT_STATUS[ttl] = web.cache_status("hit", ttl=ttl)
    return value


def _direct(response: HttpResponseBase, header: str) -> HttpResponseBase:
    response[web.CACHE_STATUS_HEADER] = header
    return response


@dataclass(frozen=True)
class _PageOptions:
    """What one ``cache_page`` decoration asks for."""

    alias: str
    timeout: float | None
    key_prefix: str | None
    stale_ttl: float | None
    vary_on: tuple[str, ...]
    vary_cookies: tuple[str, ...]
    local: bool | None

    @functools.cached_property
    def fetching(self) -> dict[str, Any]:
        """The core fetch's arguments after the key and compute function (never mutated:
        passed as ``**fetching``)."""
        return {"timeout": self.timeout, "stale_ttl": self.stale_ttl,
                "should_cache": web.is_page, "accept": web.is_page, "local": self.local}


class _PageCall:
    """One page request's plan, made by the pre-flight before the view runs. The sync and
    the async wrapper follow it and differ only in ``await``.

    ``key`` None: the view runs uncached and its response gets ``status`` (the Cache-Status
    value); ``vary_auth``: the request was refused the cache for itself (Vary as Django).
    """

    __slots__ = ("backend", "head", "key", "options", "outcome", "request", "status",
                 "vary_auth")

    def __init__(self, options: _PageOptions, request: HttpRequest) -> None:
        self.options, self.request = options, request
        self.backend: CachekitCache | None = None
        self.key: str | None = None
        self.status = ""
        self.vary_auth = False
        self.head = False
        self.outcome: Outcome = {}

    @classmethod
    def preflight(cls, options: _PageOptions, request: HttpRequest) -> _PageCall:
        """The plan: the cache and key to serve ``request`` through, or why not."""
        call = cls(options, request)
        backend = _cachekit_or_none(options.alias)
        if backend is None:
            call.status = web.cache_status("bypass", detail="not-cachekit")
            return call
        method = (request.method or "GET").upper()
        # request.META, as the key and Vary read it: request.headers is built once per
        # request, so it misses what middleware changed in META after it was first read.
        bypass = web.request_bypass_reason(method, web.EnvironHeaders(request.META))
        if bypass is not None:
            call.status, call.vary_auth = web.cache_status(bypass), True
            return call
        if not backend.client.authenticated:
            call.status = web.cache_status("bypass", detail="unauthenticated")
            return call
        call.backend, call.head = backend, method == "HEAD"
        call.key = page_cache_key(request, key_prefix=options.key_prefix,
                                  vary_on_headers=options.vary_on,
                                  vary_on_cookies=options.vary_cookies)
        return call

    @property
    def cache(self) -> CachekitCache:
        """The cache a keyed call is served through."""
        assert self.backend is not None
        return self.backend

    @property
    def fetching(self) -> dict[str, Any]:
        """The core fetch's arguments after the key and compute function."""
        return self.options.fetching

    def uncached(self, response: HttpResponseBase) -> HttpResponseBase:
        """The response of a view that ran without the cache."""
        if self.vary_auth:
            _vary_on_authorization(self.request, response)
        return _direct(response, self.status)

    def head_hit(self, value: Any) -> HttpResponseBase | None:
        """HEAD is answered from GET's entry (read: ``value``), but never fills it."""
        page = web.StoredPage.from_value(value)
        if page is None:
            return None
        return _direct(_from_page(page), _status_header("hit", {}, page, self.options.timeout))

    @staticmethod
    def head_miss(response: HttpResponseBase) -> HttpResponseBase:
        """The response of a HEAD request that found no page."""
        return _direct(response, web.cache_status("miss", detail="head"))

    def tier_hit(self) -> HttpResponseBase | None:
        """A page the in-process tier holds (a memory hit needs no stampede logic)."""
        local = self.options.local
        if not self.cache.client.wants_tier(local):
            return None
        assert self.key is not None
        hit = self.cache.local_hit(self.key, web.is_page, local=local)
        return None if hit is None else self.finish(hit.value, "hit", tier=True)

    def render(self, view: Callable[[], Any]) -> Any:
        """Run the view (or start its coroutine), recording the cookies it reads."""
        _watch_cookies(self.request)  # only a render reads cookies
        return view()

    def capture(self, response: HttpResponseBase) -> web.StoredPage | None:
        """What the leader stores (see _capture)."""
        opts = self.options
        return _capture(self.request, response, opts.timeout, opts.vary_on, self.outcome,
                        opts.vary_cookies)

    async def acapture(self, rendering: Any) -> web.StoredPage | None:
        """``capture`` of an async view's response."""
        return self.capture(await rendering)

    def deliver(self, result: Result[Any]) -> HttpResponseBase:
        """The response for the core fetch's answer."""
        return self.finish(result.value, result.status)

    def finish(self, value: Any, status: str, tier: bool = False) -> HttpResponseBase:
        """The response for ``value`` obtained as ``status``."""
        timeout = self.options.timeout
        if "response" in self.outcome:  # this request rendered it
            response: HttpResponseBase = self.outcome["response"]
            return _direct(response, _status_header(status, self.outcome, None, timeout))
        page = web.StoredPage.from_value(value)
        assert page is not None  # the core hands on cacheable (page) values only
        age = page.age()
        return _from_page(page, _status_header(status, self.outcome, page, timeout, age), age,
                          tier)


def _serve(call: _PageCall, view: Callable[[], HttpResponseBase]) -> HttpResponseBase:
    """Serve a sync view's request as ``call`` plans."""
    if call.key is None:
        return call.uncached(view())
    if call.head:
        found = call.head_hit(call.cache.get(call.key))
        return found if found is not None else call.head_miss(view())
    hit = call.tier_hit()
    if hit is not None:
        return hit
    return call.deliver(call.cache.fetch(call.key, lambda: call.capture(call.render(view)),
                                         **call.fetching))


async def _aserve(call: _PageCall, view: Callable[[], Any]) -> HttpResponseBase:
    """Serve an async view's request as ``call`` plans: _serve with ``await``."""
    if call.key is None:
        return call.uncached(await view())
    if call.head:
        found = call.head_hit(await call.cache.aget(call.key))
        return found if found is not None else call.head_miss(await view())
    hit = call.tier_hit()
    if hit is not None:
        return hit
    return call.deliver(await call.cache.afetch(call.key, lambda: call.acapture(call.render(view)),
                                                **call.fetching))


def cache_page(timeout: float | None, *, cache: str | None = None, key_prefix: str | None = None,
               stale_ttl: float | None = None, vary_on_headers: Iterable[str] = (),
               vary_on_cookies: Iterable[str] = (), local: bool | None = None
               ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Cache a view's GET/HEAD 200 responses for ``timeout`` seconds, one render per key.

    A drop-in for Django's ``cache_page`` with stampede protection, an optional
    ``stale_ttl`` window during which a stale page is served while one request
    re-renders it, and a ``Cache-Status`` header on every response. A view that
    reads a cookie is not stored unless the cookie is named in ``vary_on_cookies``
    (whose values are then part of the key) or ``Cookie`` is in ``vary_on_headers``.
    Without a key to authenticate values the view runs uncached. ``local=True`` serves
    hits from the in-process tier (see LOCAL_CACHE), ``False`` never; None follows the cache.
    """
    options = _PageOptions(cache or DEFAULT_CACHE_ALIAS, timeout, key_prefix, stale_ttl,
                           tuple(vary_on_headers), tuple(vary_on_cookies), local)
    DECORATED_ALIASES.add(options.alias)
    preflight = _PageCall.preflight

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        if iscoroutinefunction(view):
            @functools.wraps(view)
            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                return await _aserve(preflight(options, request),
                                     lambda: view(request, *args, **kwargs))

            return async_wrapper

        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            return _serve(preflight(options, request), lambda: view(request, *args, **kwargs))

        return wrapper

    return decorator
