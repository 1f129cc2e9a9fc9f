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


def holder_chain(obj: object, max_depth: int = 12, budget: int = 5000) -> str:
    """The shortest chain of strong references from a root (a module, a class, a running
    thread's frame) to ``obj``, for a leak's failure message: 'root -> ... -> obj'."""
    modules = {id(vars(m)): m for m in list(sys.modules.values()) if m is not None}
    running: dict[int, str] = {}  # frames on a thread's stack now: roots
    names = {t.ident: t.name for t in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        f: types.FrameType | None = frame
        while f is not None:
            running[id(f)] = names.get(ident, str(ident))
            f = f.f_back
    del frame, f
    here = sys._getframe()
    objs: dict[int, object] = {id(obj): obj}  # every object reached, by id
    parent: dict[int, int] = {}  # id -> id of the object it holds, one step nearer ``obj``
    layer = [id(obj)]
    own = {id(objs), id(parent), id(modules), id(running), id(names)}
    root = None
    stacks: dict[int, tuple[object, str]] = {}  # locals of other threads' running frames: roots too
    for ident, frame in sys._current_frames().items():
        f = frame if ident != threading.get_ident() else None  # the caller's own: not asked
        while f is not None:
            if f is not here:
                for value in f.f_locals.values():
                    stacks.setdefault(id(value), (value, f"thread {names.get(ident, ident)}: "
                                                         f"{_describe(f)}"))
            f = f.f_back
    del frame, f
    own.add(id(stacks))
    for _ in range(max_depth):
        nxt: list[int] = []
        for node in layer:
            if node in stacks:
                root = node
                break
            for ref in gc.get_referrers(objs[node]):
                if id(ref) in objs or id(ref) in own or ref is here or ref is layer \
                        or ref is nxt:
                    continue
                objs[id(ref)] = ref
                parent[id(ref)] = node
                if (id(ref) in modules or isinstance(ref, (type, types.ModuleType))
                        or id(ref) in running):
                    root = id(ref)
                    break
                if isinstance(ref, list) and len(ref) > 10000:
                    continue  # gc's own lists
                nxt.append(id(ref))
            if root is not None or len(objs) > budget:
                break
        layer = nxt
        if root is not None or not layer or len(objs) > budget:
            break
    if root is None:
        return "no root found: " + ", ".join(
            _describe(r) for r in gc.get_referrers(obj) if id(r) not in own
            and r is not here)
    top = objs[root]
    links = [f"{stacks[root][1]} -> {_describe(top)}" if root in stacks
             else f"module {modules[root].__name__}" if root in modules
             else f"thread {running[root]}: {_describe(top)}" if root in running
             else _describe(top)]
    at = root
    while at != id(obj):
        holder, at = objs[at], parent[at]
        held = objs[at]
        key = ([k for k, v in holder.items() if v is held][:1]
               if isinstance(holder, dict) else [])
        links.append((f"[{key[0]!r}] " if key else "") + _describe(held))
    return " -> ".join(links)
