"""``python -m benchmarks [--quick] [--only NAME] [--profile]``: run and print the tables."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence

from cachekit_web.embedded import EmbeddedRedis, find_redis_server

from .codec import run_codec
from .contenders import Contender, all_contenders
from .failure import run_failure
from .harness import Config, Table
from .hotpath import run_hotpath
from .hotspots import run_profile
from .network import run_get_many, run_getset

SECTIONS = ("hotpath", "getset", "get_many", "codec", "failure")
_NETWORK = {"hotpath", "getset", "get_many"}


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="cachekit-web vs raw redis-py + pickle vs Django's RedisCache, on a private "
                    "local redis-server. Medians over repeats, ratios against the baseline.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="3 repeats of smaller batches: a smoke run, not a measurement")
    parser.add_argument("--only", action="append", metavar="NAME", default=[],
                        help=f"run only these sections (repeatable or comma-separated): "
                             f"{', '.join(SECTIONS)}")
    parser.add_argument("--repeats", type=int, default=None,
                        help="repeats per measurement (default 7, or 3 with --quick)")
    parser.add_argument("--profile", action="store_true",
                        help="also print a cProfile of cachekit-web's get/set/get_many hot path")
    args = parser.parse_args(argv)
    chosen = [name.strip() for item in args.only for name in item.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    args.sections = [s for s in SECTIONS if s in chosen] if chosen else list(SECTIONS)
    if args.repeats is not None and not 1 <= args.repeats <= 50:
        parser.error("--repeats must be between 1 and 50")
    return args


def _redis_version() -> str:
    try:
        out = subprocess.run([find_redis_server(), "--version"], capture_output=True, text=True,
                             timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return "?"
    for part in out.split():
        if part.startswith("v="):
            return part[2:]
    return out.strip() or "?"


def _banner(cfg: Config, sections: Sequence[str]) -> str:
    import django
    import msgpack
    import redis

    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (
        f"## cachekit-web benchmarks, {now}\n\n"
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores "
        f"(load average {load}); "
        f"redis-server {_redis_version()} (private, 127.0.0.1); redis-py {redis.__version__}; "
        f"django {django.__version__}; msgpack {'.'.join(map(str, msgpack.version))}\n"
        f"repeats={cfg.repeats}{' (quick)' if cfg.quick else ''}; sections: "
        f"{', '.join(sections)}\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen sections and print their tables."""
    args = _parse(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    cfg = Config(repeats=repeats, scale=0.15 if args.quick else 1.0, quick=args.quick)
    print(_banner(cfg, args.sections), flush=True)
    started = time.perf_counter()

    def show(table: Table) -> None:
        print(table.render(), flush=True)

    server: EmbeddedRedis | None = None
    contenders: list[Contender] = []
    try:
        if _NETWORK.intersection(args.sections) or args.profile:
            server = EmbeddedRedis().start()
            contenders = all_contenders(server.url)
        if "hotpath" in args.sections and server is not None:
            show(run_hotpath(server.url, cfg))
        if "getset" in args.sections:
            show(run_getset(contenders, cfg))
        if "get_many" in args.sections:
            show(run_get_many(contenders, cfg))
        if "codec" in args.sections:
            show(run_codec(cfg))
        if "failure" in args.sections:
            for table in run_failure(cfg):
                show(table)
        if args.profile and server is not None:
            print(run_profile(server.url, cfg), flush=True)
    finally:
        for c in contenders:
            c.close()
        if server is not None:
            server.stop()
    print(f"done in {time.perf_counter() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
