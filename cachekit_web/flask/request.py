"""Facts about the current Flask request that caching depends on.

Which cookies and whether the session the request's code read, its base URL, whether a
decorated function is the view serving it, and why the cache stays out of it.
"""

from __future__ import annotations

import functools
import inspect
import re
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from flask import current_app, request
from flask.ctx import RequestContext
from flask.globals import _cv_request
from flask.wrappers import Response
from werkzeug.datastructures import ImmutableMultiDict

from ..core.web import CookieReads, EnvironHeaders, request_bypass_reason


class WatchedCookies(CookieReads, ImmutableMultiDict[str, str]):  # type: ignore[misc]
    """request.cookies, recording which cookies the request's code read."""

    @classmethod
    def empty(cls) -> WatchedCookies:
        """The jar of a request without a Cookie header, made on every such request: an
        empty dict is all of an empty MultiDict's state, so its ``__init__`` is skipped."""
        jar = cls.__new__(cls)
        jar.reads = set()
        return jar


# Flask 3.1+ opens the session lazily behind a property that marks it accessed on any use:
# nothing to watch (and no class to give back after the view).
SESSION_MARKS_READS = isinstance(inspect.getattr_static(RequestContext, "session", None),
                                 property)


def watch_cookies(endpoint: str | None = None, values: dict[str, Any] | None = None) -> None:
    """First URL value preprocessor (run before every other and before the before_request
    hooks, and called without ``ensure_sync``): from here on, cookie and session reads
    are recorded."""
    if not SESSION_MARKS_READS:
        _watch_session()
    req = _cv_request.get().request
    found = req.__dict__.get("cookies")
    if isinstance(found, WatchedCookies):
        return
    if found is None and req.environ.get("HTTP_COOKIE"):
        found = req.cookies
    # No cookies (no header, or the session interface found none): nothing to copy.
    req.cookies = WatchedCookies(found) if found else WatchedCookies.empty()


def cookies_read() -> set[str]:
    """Cookies read since the request's first hook ran."""
    found = request.__dict__.get("cookies")
    return found.reads if isinstance(found, WatchedCookies) else set()


# Reads that Flask before 3.1 does not mark as `accessed` (it marks get, [] and setdefault);
# from 3.1 on, any use of `flask.session` marks it.
_SESSION_READS = ("__contains__", "__iter__", "__len__", "__getitem__", "get", "setdefault",
                  "keys", "values", "items", "copy", "__eq__", "__ne__", "__or__",
                  "__reversed__", "__repr__")
_READ_MARK = "_cachekit_read"  # our own flag: Flask's `accessed` (and so Vary) is untouched
_watching_classes: dict[type, type] = {}
_watched: set[type] = set()  # the values of _watching_classes


def watching_class(cls: type) -> type:
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
        found.__class__ = watching_class(type(found))
    except TypeError:  # an exotic layout: Flask's own `accessed` flag is all we have
        return
    found.__dict__[_READ_MARK] = False


def unwatch_session(response: Response) -> Response:
    """After the view: the session gets its own class back before Flask saves it."""
    found = vars(_cv_request.get()).get("session")
    if found is not None and type(found) in _watched:
        found.__class__ = type(found).__mro__[1]
    return response


def session_accessed() -> bool:
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


_PLAIN_PATH = re.compile(r"(?!//)[A-Za-z0-9/._~-]*\Z").match


def base_url(req: Any = None) -> str:
    """``request.base_url``, built from the environ when nothing in it needs quoting."""
    if req is None:
        req = request._get_current_object()  # type: ignore[attr-defined]
    root, path, host = req.root_path, req.path, req.host
    if _PLAIN_PATH(root) and _PLAIN_PATH(path) and host.isascii() and "xn--" not in host:
        return f"{req.environ['wsgi.url_scheme']}://{host}{root.rstrip('/')}/" \
               f"{path.lstrip('/')}"
    return str(req.base_url)


def _view_chain(fn: Any) -> Iterator[Any]:
    """``fn`` and the functions it wraps, outermost first (a bounded walk)."""
    for _ in range(32):
        if fn is None:
            return
        yield fn
        fn = getattr(fn, "__wrapped__", None)


def endpoint_of(wrapper: Callable[..., Any]) -> str | None:
    """The endpoint whose view is (or wraps) ``wrapper``."""
    for endpoint, view in current_app.view_functions.items():
        if any(fn is wrapper for fn in _view_chain(view)):
            return endpoint
    return None


# app -> wrapper -> (endpoint, method) -> whether that wrapper serves it: per-endpoint facts
# computed once (Flask refuses new routes once an app has served a request). Both levels
# weak: a wrapper's closure often holds its app, which would then never be collected.
_DISPATCHED: weakref.WeakKeyDictionary[
    Any, weakref.WeakKeyDictionary[Any, dict[tuple[str, str], bool]]] = (
    weakref.WeakKeyDictionary())


def is_dispatched(wrapper: Callable[..., Any], ctx: Any = None) -> bool:
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
    for fn in _view_chain(current_app.view_functions.get(request.endpoint)):  # type: ignore[arg-type]
        if fn is wrapper:
            return True
        view_class = getattr(fn, "view_class", None)
        if view_class is not None:
            names = (request.method.lower(), "get", "dispatch_request")
            return any(inspect.getattr_static(view_class, n, None) is wrapper for n in names)
    return False


def bypass_reason(ctx: Any, authenticated: bool, view: bool) -> str | None:
    """Why the cache stays out of the request of ``ctx`` (None: it does not); a view is
    only served from entries the cache can authenticate."""
    if ctx is None:
        return None
    if view and not authenticated:
        return "unauthenticated"
    req = ctx.request
    return request_bypass_reason(req.method, EnvironHeaders(req.environ))


def bypass_status(reason: str) -> tuple[str, str | None]:
    """(Cache-Status status, detail) for a request the cache stays out of."""
    return ("bypass", reason) if reason == "unauthenticated" else (reason, None)
