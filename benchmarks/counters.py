"""``python -m benchmarks.counters``: processes x threads of incr on one key.

Two shapes by default, 4 processes x 8 threads and 128 writers (8 x 16). Runs
Django's RedisCache and cachekit-web against the same private redis-server in one
run: sealed counters (signed, encrypted: the default with a key) and opted-in plain
ones (PLAIN_COUNTERS). Each round starts every contender's processes, lets them
connect, then releases all threads at once and times until the last increment;
rounds rotate the order of the contenders, and the median round counts. Prints
seconds, increments per second, errors (exceptions and None answers), whether the
final count is exact, the ratio to Django and the goal (sealed at most 2.0x,
plain at most 1.2x). Exit status 1 on any error or wrong count.
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
    "cachekit sealed (signed)": {"SIGNING_KEY": SIGNING_KEY},
    "cachekit sealed (encrypted)": {"MASTER_KEY": MASTER_KEY},
    "cachekit PLAIN_COUNTERS (signed)": {"SIGNING_KEY": SIGNING_KEY, "PLAIN_COUNTERS": [KEY]},
    "cachekit no key (plain)": {},
}
BASELINE = "django RedisCache"
GOALS = {  # at most this many times Django's time (issue 16)
    "cachekit sealed (signed)": 2.0,
    "cachekit sealed (encrypted)": 2.0,
    "cachekit PLAIN_COUNTERS (signed)": 1.2,
    "cachekit no key (plain)": 1.2,
}
SHAPES = ("4x8", "8x16")  # processes x threads: 32 and 128 concurrent writers


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


def _shape(text: str) -> tuple[int, int]:
    processes, threads = (int(n) for n in text.lower().split("x"))
    return processes, threads


def run_shape(url: str, names: list[str], processes: int, threads: int, per_thread: int,
              rounds: int) -> tuple[list[dict[str, Any]], bool]:
    """Rounds of every contender on one shape; print its table; (rows, any failure)."""
    samples: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]  # rotate: fair to all
        for name in order:
            samples[name].append(run_one(name, url, processes, threads, per_thread,
                                         r + 100 * processes * threads))
    base = statistics.median(s["seconds"] for s in samples[BASELINE])
    total = processes * threads * per_thread
    print(f"\n{processes} processes x {threads} threads x {per_thread} incr on one key "
          f"({processes * threads} writers, {total} increments), median of {rounds} rounds\n")
    print("| contender | seconds | incr/s | errors | exact | vs Django | goal |")
    print("|---|---:|---:|---:|---|---:|---|")
    rows = []
    failed = False
    for name in names:
        secs = statistics.median(s["seconds"] for s in samples[name])
        errors = sum(s["errors"] for s in samples[name])
        exact = all(s["exact"] for s in samples[name])
        failed |= errors > 0 or not exact
        ratio = secs / base
        goal = GOALS.get(name)
        shown = "-" if goal is None else f"<= {goal:.1f}x {'met' if ratio <= goal else 'MISSED'}"
        rows.append({"contender": name, "shape": f"{processes}x{threads}", "seconds": secs,
                     "errors": errors, "exact": exact, "ratio": ratio, "goal": goal,
                     "rounds": [s["seconds"] for s in samples[name]]})
        print(f"| {name} | {secs:.2f} | {total / secs:,.0f} | {errors} | "
              f"{'yes' if exact else 'NO'} | {ratio:.2f}x | {shown} |")
    return rows, failed


def main(argv: list[str] | None = None) -> int:
    """Run the rounds and print the tables; exit 1 on any error or wrong count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", action="append", type=_shape,
                        help="PROCESSESxTHREADS (repeatable; default 4x8 and 8x16)")
    parser.add_argument("--processes", type=int, help="one shape: this many processes")
    parser.add_argument("--threads", type=int, help="... of this many threads")
    parser.add_argument("--per-thread", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", action="append", choices=list(CONTENDERS),
                        help="run only these contenders (Django is always run)")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    shapes = args.shape or [_shape(s) for s in SHAPES]
    if args.processes or args.threads:
        shapes = [(args.processes or 4, args.threads or 8)]
    names = [BASELINE, *[n for n in (args.only or CONTENDERS) if n != BASELINE]]
    rows: list[dict[str, Any]] = []
    failed = False
    with EmbeddedRedis() as server:
        for processes, threads in shapes:
            got, bad = run_shape(server.url, names, processes, threads, args.per_thread,
                                 args.rounds)
            rows += got
            failed |= bad
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
