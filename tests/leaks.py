"""What a test may leave behind: cachekit's background threads and Redis connections."""

from __future__ import annotations

import gc
import sys
import threading
import time
import types
from collections.abc import Callable

import redis


def cachekit_threads() -> list[str]:
    """Names of this process's live threads that cachekit started."""
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("cachekit-"))


def connections(raw: redis.Redis) -> int:
    """Client connections the server holds, ``raw``'s own included."""
    return len(raw.client_list())


def settle(done: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Collect garbage until ``done()`` holds or ``timeout`` seconds pass; the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        gc.collect()
        if done():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _describe(obj: object) -> str:
    """A short name for one link of a holder chain."""
    kind = type(obj).__name__
    if isinstance(obj, types.MethodType):
        return f"method {obj.__func__.__qualname__}"
    if isinstance(obj, types.FunctionType):
        return f"function {obj.__qualname__}"
    if isinstance(obj, types.CellType):
        users = [f.__qualname__ for t in gc.get_referrers(obj) if isinstance(t, tuple)
                 for f in gc.get_referrers(t)
                 if isinstance(f, types.FunctionType) and f.__closure__ is t]
        return f"cell of {users or 'a frame'}"
    if isinstance(obj, types.FrameType):
        return f"frame {obj.f_code.co_name} {obj.f_code.co_filename}:{obj.f_lineno}"
    if isinstance(obj, type):
        return f"class {obj.__qualname__}"
    if isinstance(obj, types.ModuleType):
        return f"module {obj.__name__}"
    if isinstance(obj, dict):
        owners = [type(r).__name__ for r in gc.get_referrers(obj)
                  if getattr(r, "__dict__", None) is obj]
        return f"__dict__ of {owners[0]}" if owners else f"dict({len(obj)})"
    if isinstance(obj, (list, tuple, set, frozenset)):
        return f"{kind}({len(obj)})"
    return kind


def holder_chain(obj: object, max_depth: int = 12, budget: int = 3000) -> str:
    """The shortest chain of strong references from a root (a module, a class, a running
    frame) to ``obj``, for a leak's failure message: 'root -> ... -> obj'."""
    modules = {id(vars(m)): m for m in list(sys.modules.values()) if m is not None}
    mine = {id(sys._getframe())}
    running: dict[int, str] = {}  # frames on a thread's stack now: roots
    names = {t.ident: t.name for t in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        f: types.FrameType | None = frame
        while f is not None:
            running[id(f)] = names.get(ident, str(ident))
            f = f.f_back
    start = [obj]
    seen = {id(obj)}
    layer: list[tuple[object, list[object]]] = [(obj, [])]
    queue_ids = {id(layer), id(start), id(seen), id(modules), id(mine), id(running)}
    for _ in range(max_depth):
        nxt: list[tuple[object, list[object]]] = []
        for node, path in layer:
            for ref in gc.get_referrers(node):
                if id(ref) in seen or id(ref) in queue_ids or id(ref) in mine:
                    continue
                if isinstance(ref, types.FrameType) and ref.f_code in (
                        holder_chain.__code__, _describe.__code__):
                    continue
                seen.add(id(ref))
                chain = [ref, node, *path]
                root = modules.get(id(ref))
                if (root is not None or isinstance(ref, (type, types.ModuleType))
                        or id(ref) in running):
                    head = (f"module {root.__name__}" if root is not None
                            else f"thread {running[id(ref)]}: {_describe(ref)}"
                            if id(ref) in running else _describe(ref))
                    links = [head]
                    for holder, held in zip(chain, chain[1:]):
                        key = ([k for k, v in holder.items() if v is held][:1]
                               if isinstance(holder, dict) else [])
                        links.append((f"[{key[0]!r}] " if key else "") + _describe(held))
                    return " -> ".join(links)
                if isinstance(ref, (list, tuple)) and len(ref) > 10000:
                    continue  # gc's own lists
                nxt.append((ref, [node, *path]))
                budget -= 1
                if budget <= 0:
                    break
        layer = nxt
        del nxt
        if not layer or budget <= 0:
            break
    return "no root found: " + ", ".join(_describe(r) for r in gc.get_referrers(obj))
