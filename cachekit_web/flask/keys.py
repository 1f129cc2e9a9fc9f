"""The adapter's keys: stable identities for memoized arguments (values, never memory
addresses) and the keys of template fragments."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import enum
import uuid
from collections.abc import Iterable
from typing import Any

from ..core.errors import InvalidKeyError
from ..core.web import fragment_cache_key

TEMPLATE_FRAGMENT_KEY_PREFIX = "_template_fragment_cache_"
_SCALARS = (str, bytes, int, float, bool, type(None))
_MAX_DEPTH = 16


def caching_id(obj: Any) -> Any:
    """The stable identity an object declares with ``__caching_id__`` (attribute or method)."""
    cid = getattr(obj, "__caching_id__", None)
    if cid is None:
        return None
    return cid() if callable(cid) else cid


def _qualname(t: type) -> str:
    return f"{t.__module__}.{t.__qualname__}"


def canonical(value: Any, what: str = "argument", _depth: int = 0) -> Any:
    """A nested tuple that identifies ``value`` the same way in every process."""
    if _depth > _MAX_DEPTH:
        raise InvalidKeyError(f"{what} is nested too deeply to build a cache key", code="E023")
    d = _depth + 1
    if isinstance(value, _SCALARS):
        return (type(value).__name__, value)
    cid = caching_id(value)
    if cid is not None:
        return ("id", _qualname(type(value)), canonical(cid, what, d))
    if isinstance(value, enum.Enum):
        return ("enum", _qualname(type(value)), canonical(value.value, what, d))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(canonical(v, what, d) for v in value))
    if isinstance(value, dict):
        items = [(canonical(k, what, d), canonical(v, what, d)) for k, v in value.items()]
        return ("dict", tuple(sorted(items, key=repr)))
    if isinstance(value, (set, frozenset)):
        return ("set", tuple(sorted((canonical(v, what, d) for v in value), key=repr)))
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return (type(value).__name__, value.isoformat())
    if isinstance(value, _dt.timedelta):
        return ("timedelta", value.total_seconds())
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return (type(value).__name__, str(value))
    if isinstance(value, type):
        return ("type", _qualname(value))
    if dataclasses.is_dataclass(value):
        fields = tuple((f.name, canonical(getattr(value, f.name), what, d))
                       for f in dataclasses.fields(value))
        return ("dataclass", _qualname(type(value)), fields)
    raise InvalidKeyError(
        f"cannot build a stable cache key from {what} of type {_qualname(type(value))}: "
        "its repr may hold a memory address that differs between processes. Give the class "
        "a __caching_id__ (e.g. the database id), pass a plain value, or list the parameter "
        "in args_to_ignore",
        code="E023",
    )


def make_template_fragment_key(fragment_name: str, vary_on: Iterable[Any] | None = None) -> str:
    """The cache key of a ``{% cache %}`` fragment: its name and a digest of its vary-on values."""
    return fragment_cache_key(fragment_name, vary_on or (), prefix=TEMPLATE_FRAGMENT_KEY_PREFIX)
