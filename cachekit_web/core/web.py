"""HTTP caching rules shared by the Django and Flask adapters (no framework imports).

What may be cached, under which key, how a stored page looks, and the
RFC 9211 ``Cache-Status`` header that tells users what happened.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from .data.codec import REUSE_MAX_BYTES, X_PAGE, register_extension
from .local.copying import register_immutable

CACHE_STATUS_HEADER = "Cache-Status"
CACHE_NAME = "cachekit"
CACHEABLE_METHODS = frozenset({"GET", "HEAD"})

# Response headers that must not be replayed from a stored page.
_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailer", "transfer-encoding", "upgrade", "set-cookie", "age",
    CACHE_STATUS_HEADER.lower(),
})
_UNCACHEABLE_DIRECTIVES = frozenset({"private", "no-store", "no-cache"})


def request_bypass_reason(method: str, headers: Any = None) -> str | None:
    """Why a request must neither be answered from nor stored in the cache (None if it may).

    ``headers`` is any case-insensitive mapping with ``.get`` (Django's or Werkzeug's).
    """
    if method.upper() not in CACHEABLE_METHODS:
        return "method"
    # RFC 9111 section 3.5: a shared cache does not reuse answers to authenticated requests.
    if headers is not None and headers.get("Authorization"):
        return "authorization"
    return None


class EnvironHeaders:
    """Request-header lookups on a WSGI environ or Django's ``request.META`` (``HTTP_*``
    keys), for the few headers a cache hit reads, without building a headers object."""

    __slots__ = ("_environ",)

    def __init__(self, environ: Mapping[str, Any]) -> None:
        self._environ = environ

    def get(self, name: str, default: Any = None) -> Any:
        """The header's value, or ``default``."""
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        return self._environ.get(key, default)


def visitor_reason(*, session_accessed: bool, csrf_used: bool = False,
                   messages_pending: bool = False, cookies_read: Iterable[str] = (),
                   cookies_keyed: Iterable[str] = ()) -> str | None:
    """Why a rendered page depends on its visitor, so must not be shared (None if it need not).

    Frameworks add what marks a page as personal (Vary: Cookie, Set-Cookie) after the
    view returns, so the adapters report what the request did instead. A cookie read
    (``cookies_read``: names, ``"*"`` for the whole jar) is personal unless the cookie
    is part of the key (``cookies_keyed``, ``"*"`` when the Cookie header is).
    """
    if messages_pending:
        return "messages"
    if csrf_used:
        return "csrf"
    if session_accessed:
        return "session"
    keyed = set(cookies_keyed)
    if "*" not in keyed and not set(cookies_read) <= keyed:
        return "cookie"
    return None


class CookieReads:
    """Mixin for a request's cookie mapping that records which cookies the code read.

    Mixed into the framework's own mapping type (Django's dict, Werkzeug's
    ImmutableMultiDict) so views see the same object; whole-jar access records ``"*"``.
    """

    reads: set[str]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.reads = set()
        cast(Any, super()).__init__(*args, **kwargs)

    def _note(self, name: object) -> None:
        self.reads.add(str(name))

    def __getitem__(self, key: Any) -> Any:
        self._note(key)
        return cast(Any, super()).__getitem__(key)

    def get(self, key: Any, *args: Any, **kwargs: Any) -> Any:
        """The cookie's value (recorded as read)."""
        self._note(key)
        return cast(Any, super()).get(key, *args, **kwargs)

    def getlist(self, key: Any, *args: Any, **kwargs: Any) -> Any:
        """All values of a cookie (recorded as read)."""
        self._note(key)
        return cast(Any, super()).getlist(key, *args, **kwargs)

    def __contains__(self, key: object) -> bool:
        self._note(key)
        return bool(cast(Any, super()).__contains__(key))

    def __iter__(self) -> Any:
        self._note("*")
        return cast(Any, super()).__iter__()

    def keys(self) -> Any:
        """Cookie names (the whole jar counts as read)."""
        self._note("*")
        return cast(Any, super()).keys()

    def items(self, *args: Any, **kwargs: Any) -> Any:
        """Cookie names and values (the whole jar counts as read)."""
        self._note("*")
        return cast(Any, super()).items(*args, **kwargs)

    def values(self) -> Any:
        """Cookie values (the whole jar counts as read)."""
        self._note("*")
        return cast(Any, super()).values()

    def to_dict(self, *args: Any, **kwargs: Any) -> Any:
        """The jar as a plain dict (the whole jar counts as read)."""
        self._note("*")
        return cast(Any, super()).to_dict(*args, **kwargs)

    def copy(self) -> Any:
        """A copy of the jar (the whole jar counts as read)."""
        self._note("*")
        return cast(Any, super()).copy()


def cookie_key_parts(cookies: Mapping[str, str], names: Iterable[str]) -> list[str]:
    """Key parts for the cookies a view declares it varies on (sorted names, their values)."""
    return [f"cookie:{n}={cookies.get(n, '')}" for n in sorted(set(names))]


def replayable_headers(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The response headers a stored page may carry and replay (no cookies, hop-by-hop, Age).

    Applied when a page is stored and again when it is served, so an entry that
    holds such a header (planted, or stored by an older release) never replays it.
    """
    return tuple((str(k), str(v)) for k, v in headers if str(k).lower() not in _HOP_BY_HOP)


def cache_control_directives(value: str | None) -> dict[str, str | None]:
    """Parse a Cache-Control header into lower-case directive -> argument (or None)."""
    out: dict[str, str | None] = {}
    for part in (value or "").split(","):
        name, _, arg = part.strip().partition("=")
        if name:
            out[name.strip().lower()] = arg.strip().strip('"') or None
    return out


def vary_names(value: str | None) -> list[str]:
    """The header names a Vary header lists, lower-cased, in order."""
    return [v.strip().lower() for v in (value or "").split(",") if v.strip()]


def response_uncacheable_reason(
    status: int,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    *,
    keyed_headers: Iterable[str] = (),
    streaming: bool = False,
) -> str | None:
    """Why a response must not be stored (None when it may be).

    Only complete 200 responses without cookies, without Cache-Control
    private/no-store/no-cache, and whose Vary headers are all part of the
    cache key are stored.
    """
    if status != 200:
        return "status"
    if streaming:
        return "streaming"
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    lowered = [(k.lower(), v) for k, v in pairs]
    if any(k == "set-cookie" for k, _ in lowered):
        return "set-cookie"
    for k, v in lowered:
        if k == "cache-control" and _UNCACHEABLE_DIRECTIVES & cache_control_directives(v).keys():
            return "cache-control"
    keyed = {h.lower() for h in keyed_headers}
    for k, v in lowered:
        if k == "vary":
            names = vary_names(v)
            if "*" in names:
                return "vary"
            if not set(names) <= keyed:
                return "vary"
    return None


def _digest(parts: Sequence[str]) -> str:
    # Each part NUL-terminated, hashed in one update (the same bytes as one update a part).
    data = "".join([p + "\x00" for p in parts]).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()[:32]


def view_cache_key(
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    vary_on: Iterable[str] = (),
    prefix: str = "",
    context: Iterable[str] = (),
) -> str:
    """The cache key of a page: method (HEAD shares GET), full URL and the Vary headers' values.

    ``headers`` maps request header names (any case) to values; only those
    named in ``vary_on`` enter the key. ``context`` adds request state that
    selects a variant without a header (e.g. the active language and time zone).
    """
    method = method.upper()
    if method == "HEAD":
        method = "GET"
    parts = [method, url]
    names = sorted({v.lower() for v in vary_on})
    if names:
        lowered = {k.lower(): v for k, v in (headers or {}).items()}
        parts += [f"{n}={lowered.get(n, '')}" for n in names]
    parts += ["\x01" + c for c in context]  # cannot collide with a header part
    return f"view:{prefix}:{_digest(parts)}" if prefix else f"view:{_digest(parts)}"


def vary_token(values: Iterable[Any]) -> str:
    """An unambiguous digest of vary-on values: each ``str(value)`` is length-prefixed,
    so ("ann_lee", "x") and ("ann", "lee_x") never share one."""
    h = hashlib.sha256()
    for v in values:
        data = str(v).encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()[:32]


def fragment_cache_key(name: str, vary_on: Iterable[Any] = (), *,
                       prefix: str = "fragment:") -> str:
    """The cache key of a template fragment: its name and the values it varies on."""
    return f"{prefix}{name}:{vary_token(vary_on)}"


# Adapters remember per-page work (a prepared response, served headers) by page object
# only for bodies up to this: the codec hands back the same page object for a frame read
# again only while frame and payload (each holding the body) fit its reuse limit, so a
# larger page read from Redis is a new object per read; it also bounds what they hold.
MEMO_BODY_MAX = REUSE_MAX_BYTES // 2


@dataclass(frozen=True)
class StoredPage:
    """A page as kept in the cache: its own msgpack extension type in the codec, so a
    cached dict is never taken for a page however it is shaped."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    stored_at: float
    charset: str | None = None

    @staticmethod
    def from_value(value: Any) -> StoredPage | None:
        """``value`` if it is a stored page, else None (by type, never by shape)."""
        return value if isinstance(value, StoredPage) else None

    def replay_headers(self) -> tuple[tuple[str, str], ...]:
        """The headers to send when serving this page, filtered again as at capture."""
        return replayable_headers(self.headers)

    @classmethod
    def capture(cls, status: int, headers: Iterable[tuple[str, str]], body: bytes,
                charset: str | None = None) -> StoredPage:
        """Snapshot a response, leaving out headers that must not be replayed."""
        return cls(status, replayable_headers(headers), body, time.time(), charset)

    def age(self, now: float | None = None) -> int:
        """Seconds since the page was stored (never negative)."""
        return max(0, int((now if now is not None else time.time()) - self.stored_at))


def _page_fields(page: StoredPage) -> list[Any]:
    return [page.status, [list(h) for h in page.headers], page.body, page.stored_at,
            page.charset]


def _page_from(fields: Any) -> StoredPage | None:
    """The page stored as ``fields``, or None if they are malformed."""
    status, headers, body, stored_at, charset = fields
    if not (isinstance(status, int) and isinstance(body, bytes)
            and isinstance(stored_at, float) and isinstance(charset, (str, type(None)))
            and all(isinstance(k, str) and isinstance(v, str) for k, v in headers)):
        return None
    return StoredPage(status, tuple((k, v) for k, v in headers), body, stored_at, charset)


# The codec and the in-process tier learn pages here, so neither imports this module.
register_extension(StoredPage, X_PAGE, "page", _page_fields, _page_from, immutable=True)
register_immutable(StoredPage, lambda page: (page.headers, page.body, page.charset))


def is_page(value: Any) -> bool:
    """Whether ``value`` is a stored page (by type, never by shape)."""
    return isinstance(value, StoredPage)


def cache_status(outcome: str, *, detail: str | None = None, ttl: float | None = None,
                 stored: bool = False) -> str:
    """An RFC 9211 Cache-Status value for a lookup outcome, the same in every adapter.

    The cache's name first, then its parameters: ``cachekit; hit; ttl=30``,
    ``cachekit; fwd=miss; stored``, ``cachekit; fwd=bypass; detail=unavailable``.

    ``outcome`` is the core's fetch status (hit, miss, stale, bypass) or one of
    method / uncacheable for requests and responses the cache stays out of.
    """
    if outcome == "hit":
        parts = ["hit"]
        if ttl is not None:
            parts.append(f"ttl={int(ttl)}")
    elif outcome == "stale":
        parts = ["fwd=stale"]
    elif outcome == "miss":
        parts = ["fwd=miss"]
        if stored:
            parts.append("stored")
    elif outcome == "bypass":
        parts = ["fwd=bypass"]
        detail = detail or "unavailable"
    elif outcome == "method":
        parts = ["fwd=method"]
    elif outcome == "authorization":
        parts, detail = ["fwd=request"], detail or "authorization"
    elif outcome == "uncacheable":
        parts = ["fwd=miss"]
    else:
        parts = [f"fwd={outcome}"]
    if detail:
        parts.append(f"detail={_token(detail)}")
    return f"{CACHE_NAME}; " + "; ".join(parts)


def describe_cache(cache_status: str | None, breaker_state: str = "closed") -> str:
    """A one-line reading for people ("cache: bypass, Redis is down") of a response's
    Cache-Status value, or, for a response without one, of the breaker's state."""
    status = cache_status or ""
    params = [p.strip() for p in status.split(";")[1:]]
    if "fwd=bypass" in params and "detail=unavailable" in params:
        return "cache: bypass, Redis is down (computed without the cache)"
    if "hit" in params:
        return "cache: hit, served from Redis"
    if "fwd=stale" in params:
        return "cache: stale, served while one request recomputes it"
    if "fwd=miss" in params:
        return "cache: miss, computed" + (" and stored" if "stored" in params else "")
    if status:
        return f"cache: {', '.join(params) or status}"
    if breaker_state == "open":
        return "cache: bypass, Redis is down (circuit breaker open)"
    if breaker_state == "half_open":
        return "cache: bypass, Redis is coming back (circuit breaker half-open)"
    # Closed says calls go to Redis, not that it answers: a dead server takes a few failed
    # calls to open the breaker.
    return "cache: on, circuit breaker closed"


def _token(text: str) -> str:
    # An RFC 8941 token starts with a letter; anything else goes as a quoted string.
    safe = "".join(c if (c.isascii() and c.isalnum()) or c in "-._" else "-" for c in text)
    if not safe:
        return "none"
    return safe if safe[0].isalpha() else f'"{safe}"'


def normalized_query(query_string: str | bytes) -> str:
    """A query string with its names in a stable order, so ?a=1&b=2 and ?b=2&a=1 match."""
    from urllib.parse import parse_qsl, urlencode

    if isinstance(query_string, bytes):
        query_string = query_string.decode("latin-1")
    # Sort by name only (stable): repeated names keep their order, since
    # ?next=a&next=b and ?next=b&next=a are different requests to the view.
    pairs = parse_qsl(query_string, keep_blank_values=True)
    return urlencode(sorted(pairs, key=lambda kv: kv[0]))
