"""``--profile``: cProfile of cachekit-web's get/set/get_many, to find where the time goes."""

from __future__ import annotations

import cProfile
import io
import pstats

from .contenders import Cachekit
from .harness import Config, small_value

_TOP = 25


def run_profile(url: str, cfg: Config, mode: str = "encrypted") -> str:
    """Profile set, get and get_many of the small value in ``mode``; the top functions."""
    ck = Cachekit(url, mode)
    value = small_value()
    keys = [f"prof:{i}" for i in range(100)]
    n = cfg.n(3000)
    try:
        for k in keys:
            ck.set(k, value)
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(n):
            ck.set(keys[i % 100], value)
            ck.get(keys[i % 100])
        for _ in range(max(1, n // 30)):
            ck.get_many(keys)
        profiler.disable()
    finally:
        ck.close()
    out = io.StringIO()
    out.write(f"### cProfile: cachekit {mode}, {n} x (set + get) small and {max(1, n // 30)} x "
              "get_many(100), sorted by own time\n\n")
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(_TOP)
    return out.getvalue()
