"""Forced interleavings: a real backend whose chosen calls run a step of the test right
after they return, so a read-then-write gap is opened on purpose, every time.

Not a mock: every call still reaches the real redis-server; the step (another client's
add, a delete, a raw write) runs between two of the client's own round trips.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Match = Callable[[tuple[Any, ...], dict[str, Any], Any], bool]


@dataclass
class _Step:
    run: Callable[[], Any]
    when: Match | None
    fired: bool = False


class Interleaved:
    """Wraps a sync or async backend; ``after(method, step)`` runs ``step`` once, right
    after the first call of ``method`` that ``when(args, kwargs, result)`` accepts."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._steps: dict[str, list[_Step]] = {}
        self.calls: list[str] = []  # the wrapped client's backend calls, in order

    def after(self, method: str, step: Callable[[], Any], when: Match | None = None) -> _Step:
        """Run ``step`` once after ``method`` returns (and ``when`` accepts the call)."""
        made = _Step(step, when)
        self._steps.setdefault(method, []).append(made)
        return made

    def _fire(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
              result: Any) -> None:
        for step in self._steps.get(name, []):
            if not step.fired and (step.when is None or step.when(args, kwargs, result)):
                step.fired = True
                step.run()
                return

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._inner, name)
        if not callable(fn) or name.startswith("_"):
            return fn
        if inspect.iscoroutinefunction(fn):
            async def acall(*args: Any, **kwargs: Any) -> Any:
                self.calls.append(name)
                result = await fn(*args, **kwargs)
                self._fire(name, args, kwargs, result)
                return result
            return acall

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            result = fn(*args, **kwargs)
            self._fire(name, args, kwargs, result)
            return result
        return call


def failed_nx(args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> bool:
    """A SET NX that found the key taken."""
    return bool(kwargs.get("nx")) and result is False
