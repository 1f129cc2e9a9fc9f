"""``python -m benchmarks.counters``: N processes x M threads of incr on one key.

Runs Django's RedisCache and cachekit-web (default configuration plain and signed,
and ENCRYPTION=required) against the same private redis-server in one run. Each
round starts every contender's processes, lets them connect, then releases all
threads at once and times until the last increment; rounds rotate the order of the
contenders, and the median round counts. Prints seconds, increments per second,
errors (exceptions and None answers), whether the final count is exact, and the
ratio to Django. Exit status 1 on any error or wrong count.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import threading
import time
from typing import Any

from cachekit_web.embedded import EmbeddedRedis

from .contenders import MASTER_KEY, SIGNING_KEY, configure_django

KEY = "hits"
CONTENDERS: dict[str, dict[str, Any]] = {
    "django RedisCache": {},
    "cachekit default (plain)": {},
    "cachekit default (signed)": {"SIGNING_KEY": SIGNING_KEY},
    "cachekit ENCRYPTION=required": {"MASTER_KEY": MASTER_KEY, "ENCRYPTION": "required"},
}
BASELINE = "django RedisCache"


def _incr_fn(name: str, url: str, namespace: str, threads: int) -> tuple[Any, Any]:
    """(incr callable, closer) for one contender inside a worker process."""
    if name == BASELINE:
        configure_django()
        from django.core.cache.backends.redis import RedisCache

        cache = RedisCache(url, {"TIMEOUT": 300, "KEY_PREFIX": namespace})
        return (lambda: cache.incr(KEY)), cache.close
    from cachekit_web import CacheClient

    client = CacheClient.from_url(url, NAMESPACE=namespace, CONNECTION_POOL_SIZE=threads,
                                  **CONTENDERS[name])
    return (lambda: client.incr(KEY)), client.close


def _worker(name: str, url: str, namespace: str, threads: int, per_thread: int,
            barrier: Any, results: Any) -> None:
    """One process: build the client, wait for the start signal, run the threads."""
    incr, close = _incr_fn(name, url, namespace, threads)
    failures = [0]
    lock = threading.Lock()
    go = threading.Event()

    def run() -> None:
        go.wait()
        bad = 0
        for _ in range(per_thread):
            try:
                if incr() is None:
                    bad += 1
            except Exception:  # an error is what this benchmark counts
                bad += 1
        with lock:
            failures[0] += bad

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    go.set()
    for w in workers:
        w.join()
    close()
    results.put(failures[0])


def _seed(name: str, url: str, namespace: str) -> Any:
    """Create the key at 0 and return a reader of its value."""
    if name == BASELINE:
        configure_django()
        from django.core.cache.backends.redis import RedisCache

        cache = RedisCache(url, {"TIMEOUT": 300, "KEY_PREFIX": namespace})
        cache.set(KEY, 0)
        return cache
    from cachekit_web import CacheClient

    client = CacheClient.from_url(url, NAMESPACE=namespace, **CONTENDERS[name])
    client.set(KEY, 0)
    return client


def run_one(name: str, url: str, processes: int, threads: int, per_thread: int,
            round_no: int) -> dict[str, Any]:
    """Time one contender once; returns seconds, errors and whether the count is exact."""
    ctx = multiprocessing.get_context("spawn")
    namespace = f"bench-ctr-{round_no}-{abs(hash(name)) % 10_000}"
    reader = _seed(name, url, namespace)
    barrier = ctx.Barrier(processes + 1)
    results = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(name, url, namespace, threads, per_thread,
                                               barrier, results)) for _ in range(processes)]
    for p in procs:
        p.start()
    barrier.wait(timeout=120)
    start = time.perf_counter()
    errors = sum(results.get(timeout=600) for _ in procs)
    seconds = time.perf_counter() - start
    for p in procs:
        p.join(timeout=60)
    final = reader.get(KEY)
    reader.close()
    expected = processes * threads * per_thread
    return {"contender": name, "seconds": seconds, "errors": errors,
            "exact": final == expected, "final": final, "expected": expected}


def main(argv: list[str] | None = None) -> int:
    """Run the rounds and print the table; exit 1 on any error or wrong count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--per-thread", type=int, default=250)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", action="append", choices=list(CONTENDERS),
                        help="run only these contenders (Django is always run)")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    names = [BASELINE, *[n for n in (args.only or CONTENDERS) if n != BASELINE]]
    samples: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    with EmbeddedRedis() as server:
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]  # rotate: fair to all
            for name in order:
                samples[name].append(run_one(name, server.url, args.processes, args.threads,
                                             args.per_thread, r))
    base = statistics.median(s["seconds"] for s in samples[BASELINE])
    total = args.processes * args.threads * args.per_thread
    print(f"\n{args.processes} processes x {args.threads} threads x {args.per_thread} incr "
          f"on one key ({total} increments), median of {args.rounds} rounds\n")
    print("| contender | seconds | incr/s | errors | exact | vs Django |")
    print("|---|---:|---:|---:|---|---:|")
    rows = []
    failed = False
    for name in names:
        secs = statistics.median(s["seconds"] for s in samples[name])
        errors = sum(s["errors"] for s in samples[name])
        exact = all(s["exact"] for s in samples[name])
        failed |= errors > 0 or not exact
        rows.append({"contender": name, "seconds": secs, "errors": errors, "exact": exact,
                     "ratio": secs / base, "rounds": [s["seconds"] for s in samples[name]]})
        print(f"| {name} | {secs:.2f} | {total / secs:,.0f} | {errors} | "
              f"{'yes' if exact else 'NO'} | {secs / base:.2f}x |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
