"""HTTP caching rules shared by the Django and Flask adapters (no framework imports).

What may be cached, under which key, how a stored page looks, and the
RFC 9211 ``Cache-Status`` header that tells users what happened.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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


def visitor_reason(*, session_accessed: bool, csrf_used: bool = False,
                   messages_pending: bool = False) -> str | None:
    """Why a rendered page depends on its visitor, so must not be shared (None if it need not).

    Frameworks add what marks a page as personal (Vary: Cookie, Set-Cookie) after the
    view returns, so the adapters report what the request did instead.
    """
    if messages_pending:
        return "messages"
    if csrf_used:
        return "csrf"
    if session_accessed:
        return "session"
    return None


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
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()[:32]


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
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    names = sorted({v.lower() for v in vary_on})
    parts = [method, url, *(f"{n}={lowered.get(n, '')}" for n in names)]
    parts += [f"\x01{c}" for c in context]  # cannot collide with a header part
    return f"view:{prefix}:{_digest(parts)}" if prefix else f"view:{_digest(parts)}"


def fragment_cache_key(name: str, vary_on: Iterable[Any] = ()) -> str:
    """The cache key of a template fragment: its name and the values it varies on."""
    return f"fragment:{name}:{_digest([str(v) for v in vary_on])}"


@dataclass(frozen=True)
class StoredPage:
    """A page as kept in the cache: plain types only, so msgpack (not pickle) carries it."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    stored_at: float
    charset: str | None = None

    def as_value(self) -> dict[str, Any]:
        """The cacheable representation."""
        return {"v": 1, "status": self.status, "headers": [list(h) for h in self.headers],
                "body": self.body, "stored_at": self.stored_at, "charset": self.charset}

    @classmethod
    def from_value(cls, value: Any) -> StoredPage | None:
        """Rebuild from as_value()'s output; None if the value is not a stored page."""
        if not isinstance(value, dict) or value.get("v") != 1:
            return None
        try:
            return cls(
                status=int(value["status"]),
                headers=tuple((str(k), str(v)) for k, v in value["headers"]),
                body=bytes(value["body"]),
                stored_at=float(value["stored_at"]),
                charset=value.get("charset"),
            )
        except (KeyError, TypeError, ValueError):
            return None

    @classmethod
    def capture(cls, status: int, headers: Iterable[tuple[str, str]], body: bytes,
                charset: str | None = None) -> StoredPage:
        """Snapshot a response, leaving out headers that must not be replayed."""
        kept = tuple((k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP)
        return cls(status, kept, body, time.time(), charset)

    def age(self, now: float | None = None) -> int:
        """Seconds since the page was stored (never negative)."""
        return max(0, int((now if now is not None else time.time()) - self.stored_at))


def cache_status(outcome: str, *, detail: str | None = None, ttl: float | None = None,
                 stored: bool = False) -> str:
    """An RFC 9211 Cache-Status value for a lookup outcome.

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


def _token(text: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-._" else "-" for c in text)
    return safe or "none"


def normalized_query(query_string: str | bytes) -> str:
    """A query string with its parameters in a stable order, so ?a=1&b=2 and ?b=2&a=1 match."""
    from urllib.parse import parse_qsl, urlencode

    if isinstance(query_string, bytes):
        query_string = query_string.decode("latin-1")
    return urlencode(sorted(parse_qsl(query_string, keep_blank_values=True)))
