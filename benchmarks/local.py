"""``python -m benchmarks.local``: the in-process tier against the network read paths.

One private redis-server, one process. Contenders, timed in the same run and
interleaved, three runs, medians: raw redis-py GET + msgpack.unpackb; the cachekit
client (encrypted) without the tier; the same with LOCAL_CACHE (a hit: str value
shared, dict value copied); and the tier's lookup alone (drain included). Then the
write fan-out: time per SET (pipelined) while 0, 4 and 16 tracking connections
(one per simulated process) receive every write's invalidation in broadcast mode.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import msgpack
import redis

from cachekit_web import CacheClient
from cachekit_web.core import local as local_mod
from cachekit_web.core._sync.redis import pool_for
from cachekit_web.core.local import LocalTier
from cachekit_web.core.settings import Settings
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


def fanout(url: str, runs: int, n_writes: int) -> Table:
    """Time per pipelined SET under the prefix with 0, 4, 16 tracking connections."""
    raw = redis.Redis.from_url(url)
    pool = pool_for(url, Settings(REDIS_URL=url))
    value = b"v" * 300
    table = Table(f"write fan-out (BCAST): per SET, pipelined batches of {n_writes}, "
                  f"median of {runs} runs", ["trackers", "note", "us per SET", "runs (us)",
                                              "vs none"])
    base = 0.0
    for count in (0, 4, 16):
        tiers = [LocalTier(lambda: pool.connection_class(
            **{**pool.connection_kwargs, "protocol": 2}), NS + ":", max_entries=10,
            max_bytes=10_000, lease=1.0) for _ in range(count)]
        _until(lambda: all(t.live for t in tiers))  # noqa: B023 - used at once
        samples = []
        for _ in range(runs):
            pipe = raw.pipeline(transaction=False)
            for i in range(n_writes):
                pipe.set(f"{NS}:w{i % 100}", value)
            start = time.perf_counter()
            pipe.execute()
            samples.append((time.perf_counter() - start) / n_writes)
        med = statistics.median(samples)
        base = base or med
        table.add(str(count), "each gets every key name", fmt_us(med),
                  " / ".join(fmt_us(s) for s in samples), f"{med / base:.2f}x")
        for t in tiers:
            t.close()
    raw.close()
    return table


def main(argv: list[str] | None = None) -> int:
    """Run and print both tables."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.local")
    parser.add_argument("--quick", action="store_true", help="few iterations (smoke test)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    n_net, n_local, n_writes = (200, 2000, 500) if args.quick else (3000, 100_000, 5000)
    with EmbeddedRedis() as server:
        print(reads(server.url, args.runs, n_net, n_local).render())
        print(fanout(server.url, args.runs, n_writes).render())
    local_mod.close_all()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
