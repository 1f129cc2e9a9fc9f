"""Copies of cached values, so a caller mutating what the tier returned changes nothing.

Immutable values are handed out as they are. Other modules add their own immutable
types with ``register_immutable`` (``core.web`` registers its stored pages), so this
folder never imports them.
"""

from __future__ import annotations

import copy
import datetime as _dt
import decimal
import sys
import uuid
from collections.abc import Callable, Iterable
from types import FunctionType
from typing import Any

_IMMUTABLE: set[type] = {str, bytes, int, float, bool, type(None), complex, _dt.datetime,
                         _dt.date, _dt.time, _dt.timedelta, decimal.Decimal, uuid.UUID,
                         frozenset, range}
# Registered immutable types whose parts count towards a value's weight.
_PARTS: dict[type, Callable[[Any], Iterable[Any]]] = {}
_MAX_DEPTH = 64  # deeper values are served from Redis, never copied out of the tier


def register_immutable(kind: type, parts: Callable[[Any], Iterable[Any]]) -> None:
    """Hand ``kind`` out uncopied; ``parts(value)`` names what its weight is made of."""
    _IMMUTABLE.add(kind)
    _PARTS[kind] = parts


class TooDeep(Exception):
    """A value nested deeper than the tier copies (or referring to itself)."""


def copied(value: Any) -> Any:
    """``value`` itself if immutable, else a copy (cheap for the JSON-like shapes)."""
    try:
        copy_fn = copier(value)
    except TooDeep:
        return copy.deepcopy(value)
    return value if copy_fn is None else copy_fn(value)


Copier = Callable[[Any], Any]


def copier(value: Any, _depth: int = 0) -> Copier | None:
    """A function that copies values shaped like ``value``; None if it is immutable.

    Worked out once when an entry is kept, so a hit copies only the mutable parts.
    Raises TooDeep past _MAX_DEPTH levels (a self-referring value never ends).
    """
    kind = type(value)
    if kind in _IMMUTABLE:
        return None
    if _depth >= _MAX_DEPTH:
        raise TooDeep
    if kind is dict:
        inner = [(k, c) for k, c in ((k, copier(v, _depth + 1)) for k, v in value.items())
                 if c is not None]
        if not inner:
            return dict.copy

        def copy_dict(d: dict[Any, Any]) -> dict[Any, Any]:
            out = d.copy()
            for k, c in inner:
                out[k] = c(d[k])
            return out

        return copy_dict
    if kind is list or kind is tuple:
        parts = [(i, c) for i, c in enumerate(copier(v, _depth + 1) for v in value)
                 if c is not None]
        if not parts:
            return list.copy if kind is list else None

        def copy_seq(seq: Any) -> Any:
            out = list(seq)
            for i, c in parts:
                out[i] = c(seq[i])
            return out if kind is list else tuple(out)

        return copy_seq
    return copy.deepcopy


def plan_weight(copy_fn: Copier | None) -> int:
    """Bytes a copier made by ``copier`` holds (its functions, cells and part lists), which
    a kept entry holds beside its value: for many small mutable parts, more than the value."""
    if copy_fn is None:
        return 0
    total, seen = 0, set()
    todo: list[Any] = [copy_fn]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        kind = type(obj)
        if kind is FunctionType:
            total += sys.getsizeof(obj)  # (not __dict__: asking for it would make one)
            for cell in obj.__closure__ or ():
                total += sys.getsizeof(cell)
                todo.append(cell.cell_contents)
        elif kind is list or kind is tuple:
            total += sys.getsizeof(obj)
            todo.extend(obj)
        elif kind is int:
            total += sys.getsizeof(obj)
        # str (dict keys: the value's own), builtins (dict.copy...), types: shared
    return total


def weight(value: Any) -> int:
    """Bytes ``value`` holds in process memory, each object counted once (the memory cap)."""
    kind = type(value)
    if kind is str or kind is bytes:
        return sys.getsizeof(value)
    total, seen, todo = 0, set(), [value]  # a loop, not recursion: any depth, any cycle
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        kind = type(obj)
        if kind is dict:
            todo.extend(obj.keys())
            todo.extend(obj.values())
        elif kind in (list, tuple, set, frozenset):
            todo.extend(obj)
        elif kind in _PARTS:
            todo.extend(_PARTS[kind](obj))
        elif not isinstance(obj, type) and hasattr(obj, "__dict__"):
            todo.extend(vars(obj).values())
    return total
