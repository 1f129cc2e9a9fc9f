"""Process-wide registries: one shared object per key, and objects reset after a fork."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """One object per key (a redacted Redis location), shared by the whole process."""

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._found: dict[str, T] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> T:
        """The object for ``key``, made by ``make()`` the first time it is asked for."""
        with self._lock:
            found = self._found.get(key)
            if found is None:
                found = self._found[key] = self._make()
            return found


def reset_in_forked_child(reset: Callable[[T], object]) -> weakref.WeakSet[T]:
    """A weak set of objects: in a child forked by Python, ``reset`` is called on each."""
    objects: weakref.WeakSet[T] = weakref.WeakSet()

    def after_fork() -> None:
        for obj in list(objects):
            reset(obj)

    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=after_fork)
    return objects
