"""``python -m benchmarks.local``: the in-process tier against the network read paths.

One private redis-server, one process. Contenders, timed in the same run and
interleaved, three runs, medians: raw redis-py GET + msgpack.unpackb; the cachekit
client (encrypted) without the tier; the same with LOCAL_CACHE (a hit: str value
shared, dict value copied); and the tier's lookup alone (drain included). Then
invalidation across processes: a busy reading process serves one key from its tier
while this process overwrites and deletes it (``two_process``; the test suite runs the
same scenario and checks it never serves a replaced value beyond a bound).

What tracking costs the server with many processes (write fan-out), the staleness bound
with them, and the memory bound are ``benchmarks.tracking``'s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import redis

from cachekit_web import CacheClient
from cachekit_web.core.local import tier as local_mod
from cachekit_web.embedded import EmbeddedRedis

from .contenders import MASTER_KEY
from .harness import Table, fmt_us, small_value

NS = "bench-local"


def _per_op(fn: Callable[[], Any], n: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def _until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:
        time.sleep(0.002)


def reads(url: str, runs: int, n_net: int, n_local: int) -> Table:
    """Per-read cost of each read path (medians of ``runs``)."""
    raw = redis.Redis.from_url(url)
    raw.set("raw:str", msgpack.packb("x" * 300))
    raw.set("raw:dict", msgpack.packb(small_value()))
    plain = CacheClient.from_url(url, NAMESPACE=NS, MASTER_KEY=MASTER_KEY)
    tiered = CacheClient.from_url(url, NAMESPACE=NS, MASTER_KEY=MASTER_KEY, LOCAL_CACHE=True)
    plain.set("str", "x" * 300)
    plain.set("dict", small_value())
    tiered.get("str")
    tier = tiered._local
    assert tier is not None
    _until(lambda: tier.live)
    tiered.get("str")
    tiered.get("dict")
    fk = NS + ":str"
    contenders: list[tuple[str, Callable[[], Any], int]] = [
        ("raw redis-py GET + msgpack (str 300 B)",
         lambda: msgpack.unpackb(raw.get("raw:str")), n_net),
        ("cachekit get, encrypted, no tier (str)", lambda: plain.get("str"), n_net),
        ("cachekit get, encrypted, tier hit (str, shared)", lambda: tiered.get("str"), n_local),
        ("raw redis-py GET + msgpack (dict 10 fields)",
         lambda: msgpack.unpackb(raw.get("raw:dict")), n_net),
        ("cachekit get, encrypted, no tier (dict)", lambda: plain.get("dict"), n_net),
        ("cachekit get, encrypted, tier hit (dict, copied)", lambda: tiered.get("dict"),
         n_local),
        ("tier lookup alone (drain check included)", lambda: tier.lookup(fk), n_local),
    ]
    samples: dict[str, list[float]] = {name: [] for name, _, _ in contenders}
    for _ in range(runs):
        for name, fn, n in contenders:
            samples[name].append(_per_op(fn, n))
    hits = tiered.metrics.totals["local_hits"]
    table = Table(f"in-process tier: per read, median of {runs} runs ({hits} tier hits)",
                  ["contender", "note", "us per read", "runs (us)", "vs raw redis-py"])
    base = {"str": statistics.median(samples[contenders[0][0]]),
            "dict": statistics.median(samples[contenders[3][0]])}
    for name, _, _ in contenders:
        med = statistics.median(samples[name])
        kind = "dict" if "dict" in name else "str"
        table.add(name, kind, fmt_us(med), " / ".join(fmt_us(s) for s in samples[name]),
                  f"{med / base[kind]:.3f}x")
    raw.close()
    plain.close()
    tiered.close()
    return table


def quantile(sorted_values: list[float], q: float) -> float:
    """The ``q`` quantile of an ascending list (nearest rank)."""
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


@dataclass
class Coherence:
    """What the reading process saw, paired with the writes (seconds, ascending)."""

    stale: list[float]  # how long after a write returned the value it replaced was served
    to_new: list[float]  # from a write's return to the first read serving its value
    counters: dict[str, int]  # the reader's local_hits, local_misses, local_invalidations


def two_process(url: str, namespace: str, writes: int = 200, busy_us: float = 300) -> Coherence:
    """A reader process (CPU-bound between reads) against this process's writes."""
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root))
    reader = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.local_reader", url, namespace, str(busy_us), "30"],
        stdout=subprocess.PIPE, text=True, env=env, cwd=root)
    writer = CacheClient.from_url(url, NAMESPACE=namespace)
    try:
        assert reader.stdout is not None
        if reader.stdout.readline().strip() != "ready":
            raise RuntimeError("the reading process did not start its tier")
        # (value after each write, when the write returned); the key starts absent.
        returned: list[tuple[object, float]] = [(None, 0.0)]
        for i in range(1, writes + 1):
            if i % 7 == 0:
                writer.delete("k")
                value: object = None
            else:
                writer.set("k", i)
                value = i
            returned.append((value, time.monotonic()))
            if i % 20 >= 5:  # bursts of back-to-back writes, then paced ones
                time.sleep(0.003)
        writer.set("k", "stop")
        returned.append(("stop", time.monotonic()))
        out, _ = reader.communicate(timeout=60)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
        writer.close()
    report = json.loads(out.strip().splitlines()[-1])
    runs = report.pop("runs")
    if runs[-1][0] != "stop":
        raise RuntimeError("the reader stopped before the last write")
    stale, to_new = pair(runs, returned)
    return Coherence(stale, to_new, report)


def pair(runs: list[list[Any]], returned: list[tuple[object, float]]
         ) -> tuple[list[float], list[float]]:
    """Stale windows and first-new-read delays (ascending) from the reader's runs of
    values ``[value, first read start, last read start]`` and the writes ``(value, when
    the call returned)``, the first being the key's state before any write.

    Deletes all write None, and a reader kept off the CPU can see two of them as one run,
    or skip everything between two: so a run is paired with the write of its value that
    fits it best among those that had begun (write j begins once write j-1 returned)
    before the reader's next run began. The scenario's None is always a delete's, and
    absence is never kept in the tier, so this leniency cannot hide a stale entry."""
    stale: list[float] = []
    to_new: list[float] = []
    for n, (value, first, last) in enumerate(runs):
        bound = runs[n + 1][1] if n + 1 < len(runs) else float("inf")
        sources = [j for j, (v, _) in enumerate(returned)
                   if v == value and (j == 0 or returned[j - 1][1] <= bound)]
        if not sources:
            raise AssertionError(f"the reader saw a value never written: {value!r}")
        if sources[-1] + 1 < len(returned):  # the final write is never replaced
            stale.append(min(max(0.0, last - returned[j + 1][1]) for j in sources))
        if sources[0] == 0:  # the key's state before the writes: no write to time from
            sources = sources[1:]
        if sources:
            to_new.append(min(max(0.0, first - returned[j][1]) for j in sources))
    return sorted(stale), sorted(to_new)


def coherence(url: str, runs: int, writes: int) -> Table:
    """The two-process scenario ``runs`` times: stale window and invalidation delay."""
    table = Table(f"invalidation across processes: {writes} writes per run, the reader "
                  "busy ~0.3 ms between reads (ms; p99 goal < 2 ms)",
                  ["run", "stale p50 / p99 / max", "first new read p50 / p99 / max",
                   "tier hits / misses", "invalidations"])
    for n in range(runs):
        got = two_process(url, f"{NS}-coherence-{n}", writes)

        def ms(values: list[float]) -> str:
            return " / ".join(f"{quantile(values, q) * 1000:.2f}" for q in (0.5, 0.99, 1.0))

        table.add(str(n + 1), ms(got.stale), ms(got.to_new),
                  f"{got.counters['local_hits']} / {got.counters['local_misses']}",
                  str(got.counters["local_invalidations"]))
    return table


def main(argv: list[str] | None = None) -> int:
    """Run and print the two tables."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.local")
    parser.add_argument("--quick", action="store_true", help="few iterations (smoke test)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    n_net, n_local = (200, 2000) if args.quick else (3000, 100_000)
    with EmbeddedRedis() as server:
        print(reads(server.url, args.runs, n_net, n_local).render())
        print(coherence(server.url, args.runs, 40 if args.quick else 200).render())
    local_mod.close_all()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
