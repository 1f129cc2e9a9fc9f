"""What cache calls answer besides values: DEFAULT, DEFERRED, Result, Expiring and kin."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

T = TypeVar("T")


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()
"""Timeout sentinel: use the DEFAULT_TIMEOUT setting."""


class Deferred(enum.Enum):
    """What delete() returns when Redis is unreachable: the delete is remembered, spooled
    and replayed as soon as Redis answers; this process reads the key as a miss until then.
    Truthy, like a delete that happened; tell it apart with ``result is DEFERRED``."""

    DEFERRED = "deferred"

    def __bool__(self) -> bool:
        return True


DEFERRED = Deferred.DEFERRED


class Unavailable(enum.Enum):
    """What a guarded backend call returns when it could not run (breaker open, outage)."""

    TOKEN = "unavailable"


UNAVAILABLE = Unavailable.TOKEN

Status = Literal["hit", "miss", "stale", "bypass"]


@dataclass(frozen=True)
class Result(Generic[T]):
    """A value from get_or_set and how it was obtained: hit, miss, stale or bypass.

    ``computed`` says whether this caller ran the compute function itself.
    """

    value: T
    status: Status
    computed: bool = False


@dataclass(frozen=True)
class Expiring(Generic[T]):
    """What a compute function returns to give its value a timeout of its own."""

    value: T
    timeout: Any
