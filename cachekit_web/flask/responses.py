"""A decorated call's value: what the cache stores, and what the caller gets back.

A view's return value is stored as a ``StoredPage`` (or refused, saying why); a function's
as it is. Delivering turns a stored value back into the return value, and gives views
their Cache-Status header.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app
from flask.globals import _cv_app
from flask.wrappers import Response
from werkzeug.datastructures import Headers

from ..core.client import DEFAULT, Expiring
from ..core.web import (
    CACHE_STATUS_HEADER,
    MEMO_BODY_MAX,
    StoredPage,
    cache_status,
    is_page,
    response_uncacheable_reason,
    visitor_reason,
)
from .config import core_timeout
from .request import cookies_read, session_accessed

if TYPE_CHECKING:
    from .extension import State


class CachedResponse(Response):
    """A response that carries its own cache timeout (seconds), as in Flask-Caching."""

    def __init__(self, response: Response, timeout: float | None) -> None:
        super().__init__(response.get_data(), status=response.status,
                         headers=list(response.headers.items()))
        self.timeout = timeout


@dataclass
class Marker:
    """A computed value that must not be stored: what to deliver, and why not."""

    deliver: Any
    reason: str


def storable(value: Any) -> bool:
    """Whether a computed value may be stored (the core's ``should_cache``)."""
    return not isinstance(value, Marker)


def _any_value(value: Any) -> bool:
    return True


def _not_page(value: Any) -> bool:
    return not isinstance(value, StoredPage)


def acceptor(view: bool, authenticated: bool) -> Callable[[Any], bool]:
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


def package(rv: Any, view: bool, response_filter: Callable[[Any], Any] | None,
            cache_none: bool, vary_cookies: Iterable[str], authenticated: bool) -> Any:
    """Turn a fresh return value into what is stored, or a Marker saying why not."""
    if inspect.isgenerator(rv):
        rv = _joined(rv)
    if view or isinstance(rv, Response):
        resp = current_app.make_response(rv)
        reason: str | None = None
        if not authenticated:
            reason = "unauthenticated"  # a page from an unsigned entry could be forged
        elif view:  # a session or cookie read anywhere in the request makes it personal
            reason = visitor_reason(session_accessed=session_accessed(),
                                    cookies_read=cookies_read(),
                                    cookies_keyed=vary_cookies)
        reason = reason or response_uncacheable_reason(
            resp.status_code, list(resp.headers.items()), streaming=resp.is_streamed)
        if reason is None and response_filter is not None and not response_filter(rv):
            reason = "response-filter"
        if reason is not None:
            return Marker(resp, reason)
        page = StoredPage.capture(resp.status_code, list(resp.headers.items()),
                                  resp.get_data(), resp.mimetype_params.get("charset"))
        timeout = getattr(rv, "timeout", None) if isinstance(rv, CachedResponse) else None
        if timeout is not None:
            return Expiring(page, core_timeout(timeout))
        return page
    if rv is None and not cache_none:
        return Marker(rv, "none")
    if response_filter is not None and not response_filter(rv):
        return Marker(rv, "response-filter")
    return rv


def thaw(value: Any) -> Any:
    """A stored value as the caller gets it: a page becomes a response again."""
    if isinstance(value, StoredPage):
        resp = current_app.response_class(value.body, status=value.status,
                                          headers=list(value.replay_headers()))
        resp.headers["Age"] = str(value.age())
        return resp
    return value


def _ttl(value: Any, timeout: Any, state: State) -> float | None:
    """Seconds a hit page has left by the view's timeout (Cache-Status ttl), None if
    it never expires."""
    if timeout is DEFAULT:
        timeout = state.settings.DEFAULT_TIMEOUT
    if timeout is None or not isinstance(value, StoredPage):
        return None
    return max(0.0, float(timeout) - value.age())


_HIT_STATUS = cache_status("hit")  # a page that never expires: no ttl to tell
_PREPARED_MAX = 64  # pages (bodies up to web.MEMO_BODY_MAX) whose served headers are kept


# id(page) -> (page, its headers as served, Content-Length included, Age and Cache-Status
# not): a page is immutable, and the tier hands out the same page object on every hit.
# Holding the page keeps its id from being reused; a full table starts over.
_prepared: dict[int, tuple[StoredPage, list[tuple[str, str]]]] = {}
_hit_statuses: dict[int, str] = {}  # ttl seconds -> a hit's Cache-Status (at most 4096)


def _served_headers(page: StoredPage) -> list[tuple[str, str]]:
    """The page's replayed headers with its own Content-Length (a new list each call),
    checked as werkzeug checks what is added to Headers (ValueError on a line break)."""
    found = _prepared.get(id(page))
    if found is not None and found[0] is page:
        return found[1].copy()
    headers = [h for h in page.replay_headers() if h[0].lower() != "content-length"]
    headers.append(("Content-Length", str(len(page.body))))
    Headers(headers)  # raises as werkzeug does on a value it would refuse
    if len(page.body) > MEMO_BODY_MAX:
        return headers
    if len(_prepared) >= _PREPARED_MAX:
        _prepared.clear()
    _prepared[id(page)] = (page, headers)
    return headers.copy()


def page_hit(page: StoredPage, view_timeout: float | None, state: State, app: Flask) -> Response:
    """A view hit's response; ``view_timeout`` is the view's own, in Flask-Caching's terms."""
    return _hit_response(page, core_timeout(view_timeout), state, app)


def _hit_response(page: StoredPage, timeout: Any, state: State, app: Flask) -> Response:
    """The response for a view hit: one construction from the page's served headers, Age
    and Cache-Status (its ttl by the core ``timeout``) appended, the clock read once; the
    body as a one-item list with its own Content-Length (what ``set_data`` would do,
    without setting that header a second time)."""
    age = page.age()
    headers = _served_headers(page)
    headers.append(("Age", str(age)))
    if state.options.CACHE_STATUS_HEADER:
        if timeout is DEFAULT:
            timeout = state.settings.DEFAULT_TIMEOUT
        if timeout is None:
            status = _HIT_STATUS
        else:
            ttl = int(max(0.0, float(timeout) - age))
            status = _hit_statuses.get(ttl) or _hit_status(ttl)
        headers.append((CACHE_STATUS_HEADER, status))
    return app.response_class([page.body], status=page.status, headers=_checked(headers))


def _checked(items: list[tuple[str, str]]) -> Headers:
    """Headers holding ``items``, already checked (see _served_headers; Age and
    Cache-Status are ours), without werkzeug checking each again on every hit."""
    headers = Headers()
    headers._list = items
    return headers


def _hit_status(ttl: int) -> str:
    """A hit's Cache-Status for ``ttl`` seconds left, remembered."""
    if len(_hit_statuses) >= 4096:
        _hit_statuses.clear()
    found = _hit_statuses[ttl] = cache_status("hit", ttl=ttl)
    return found


def finish(value: Any, status: str, detail: str | None, view: bool, hit_indication: bool,
           state: State, *, timeout: Any = None, ran: bool = False) -> Any:
    """Deliver a value; views get the Cache-Status (and optional hit_cache) header.

    ``timeout`` is the view's (for the ttl of a hit); ``ran``: this request computed
    the value (a miss it stored, rather than one it waited for).
    """
    if view and status == "hit" and not hit_indication and isinstance(value, StoredPage):
        return _hit_response(value, timeout, state, _cv_app.get().app)
    ttl = _ttl(value, timeout, state) if view and status == "hit" else None
    stored = ran and status == "miss" and not isinstance(value, Marker)
    if isinstance(value, Marker) and detail is None:  # this caller computed it
        status, detail = "uncacheable", value.reason
    value = value.deliver if isinstance(value, Marker) else thaw(value)
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
