"""``python -m benchmarks.tracking``: what the in-process tier costs the server and what
it bounds, measured with real processes on one private redis-server.

1. **fan-out**: SET throughput (pipelined, redis-py), SET latency (one at a time, from
   redis-py and through cachekit's client) and the server's CPU per SET (``INFO cpu``,
   ``used_cpu_sys`` + ``used_cpu_user``), while 0, 4 and 16 other processes each hold a
   tier on the namespace (a ``CLIENT TRACKING ... BCAST`` connection each, checked with
   ``CLIENT LIST``). Rounds interleave the tracker counts; medians of the rounds, ratios
   against 0 trackers paired per round.
2. **staleness**: the two-process scenario of ``benchmarks.local`` (a busy reader process
   serving one key from its tier while this process overwrites and deletes it) with the
   same tracker counts: how long after the writer's call returned the reader still served
   the replaced value, and when it first served the new one; against the lease bound.
3. **memory**: a process reads far more decoded bytes than ``LOCAL_CACHE_MAX_BYTES``
   through its tier; what the tier holds (``size_bytes``, the ``weight`` of its values) and
   the process's resident memory before and after.

Each section prints its goal and whether this run met it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgpack
import redis

from cachekit_web import CacheClient
from cachekit_web.core.local import tier as local_mod
from cachekit_web.core.local.copying import weight
from cachekit_web.core.settings import Settings
from cachekit_web.embedded import EmbeddedRedis, find_redis_server

from .contenders import MASTER_KEY
from .harness import Table, fmt_us, large_value, small_value
from .local import quantile, two_process

NS = "bench-tracking"
ROOT = Path(__file__).resolve().parents[1]
STALE_P99_GOAL_S = 0.002  # the tier issue's goal for the stale window (quiet machine)


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "benchmarks.tracking_worker", *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT)


def tracking_connections(raw: redis.Redis) -> int:
    """Connections of the server with CLIENT TRACKING on (``t`` in their flags)."""
    return sum("t" in c.get("flags", "") for c in raw.client_list())


class Trackers:
    """Up to ``most`` tracker processes, of which ``on(n)`` leaves the first n tracking."""

    def __init__(self, url: str, most: int) -> None:
        self.procs = [_spawn("tracker", url, NS) for _ in range(most)]
        self.active = [False] * most
        self.raw = redis.Redis.from_url(url)

    def _ask(self, i: int, cmd: str) -> None:
        proc = self.procs[i]
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(cmd + "\n")
        proc.stdin.flush()
        answer = proc.stdout.readline().strip()
        if answer != cmd:
            raise RuntimeError(f"tracker {i} answered {answer!r} to {cmd!r}")
        self.active[i] = cmd == "on"

    def on(self, n: int) -> None:
        """Exactly ``n`` trackers hold a tier; checked on the server."""
        for i in range(len(self.procs)):
            want = i < n
            if want != self.active[i]:
                self._ask(i, "on" if want else "off")
        end = time.monotonic() + 5
        while tracking_connections(self.raw) != n and time.monotonic() < end:
            time.sleep(0.01)  # a closed connection takes a moment to leave CLIENT LIST
        if (seen := tracking_connections(self.raw)) != n:
            raise RuntimeError(f"{seen} tracking connections on the server, {n} wanted")

    def close(self) -> None:
        """Ends every tracker process (end of input)."""
        for proc in self.procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.raw.close()


def _rotated(counts: Sequence[int], r: int) -> list[int]:
    k = r % len(counts)
    return [*counts[k:], *counts[:k]]


def _server_cpu(raw: redis.Redis) -> float:
    info = raw.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


@dataclass
class Round:
    """One tracker count's figures in one round (seconds)."""

    pipelined: float  # per SET, pipelined
    raw: list[float]  # each redis-py SET, one at a time
    ours: list[float]  # each cachekit set, one at a time
    cpu_pipe: float  # server CPU per pipelined SET
    cpu_one: float  # server CPU per SET sent one at a time


def _one_round(raw: redis.Redis, writer: CacheClient, n_pipe: int, n_seq: int) -> Round:
    value = b"v" * 300
    text = "v" * 300
    cpu0 = _server_cpu(raw)
    pipe = raw.pipeline(transaction=False)
    start = time.perf_counter()
    for i in range(n_pipe):
        pipe.set(f"{NS}:r{i % 100}", value)
        if i % 100 == 99:  # batches of 100 commands, as an application pipelines
            pipe.execute()
    pipe.execute()
    pipelined = (time.perf_counter() - start) / n_pipe
    cpu1 = _server_cpu(raw)
    lat_raw, lat_ours = [], []
    clock = time.perf_counter
    for i in range(n_seq):
        t0 = clock()
        raw.set(f"{NS}:r{i % 100}", value)
        t1 = clock()
        writer.set(f"w{i % 100}", text)
        lat_ours.append(clock() - t1)
        lat_raw.append(t1 - t0)
    cpu2 = _server_cpu(raw)
    return Round(pipelined, sorted(lat_raw), sorted(lat_ours), (cpu1 - cpu0) / n_pipe,
                 (cpu2 - cpu1) / (2 * n_seq))


def fanout(url: str, trackers: Trackers, counts: Sequence[int], rounds: int, n_pipe: int,
           n_seq: int) -> Table:
    """Write cost with each tracker count, interleaved rounds, medians, ratios vs none."""
    raw = redis.Redis.from_url(url)
    writer = CacheClient.from_url(url, NAMESPACE=NS, MASTER_KEY=MASTER_KEY,
                                  FLEET_PUBLISH_INTERVAL=0)
    got: dict[int, list[Round]] = {c: [] for c in counts}
    _one_round(raw, writer, n_pipe // 10, n_seq // 10)  # warm-up: connections, code paths
    for r in range(rounds):
        for c in _rotated(counts, r):
            trackers.on(c)
            got[c].append(_one_round(raw, writer, n_pipe, n_seq))
    writer.close()
    raw.close()
    base = counts[0]

    def med(c: int, pick: Callable[[Round], float]) -> float:
        return statistics.median(pick(x) for x in got[c])

    def vs(c: int, pick: Callable[[Round], float]) -> str:
        ratios = [pick(x) / pick(b) for x, b in zip(got[c], got[base], strict=True)]
        return f"{statistics.median(ratios):.2f}x"

    def p50(x: Round, attr: str) -> float:
        return quantile(getattr(x, attr), 0.5)

    def p99(x: Round, attr: str) -> float:
        return quantile(getattr(x, attr), 0.99)

    table = Table(
        f"write fan-out (BCAST): {n_pipe} pipelined + {n_seq} single SETs of 300 B per "
        f"round, {rounds} interleaved round(s), medians; vs = paired ratio to "
        f"{base} trackers (goal: none, measured for docs/scaling.md)",
        ["trackers", "pipelined SETs/s", "vs", "redis-py SET p50 / p99 us", "vs p50",
         "cachekit set p50 / p99 us", "vs p50", "server CPU us per SET: pipelined",
         "vs", "one at a time", "vs"])
    for c in counts:
        table.add(
            str(c), f"{1 / med(c, lambda x: x.pipelined):,.0f}",
            vs(c, lambda x: 1 / x.pipelined),
            f"{fmt_us(med(c, lambda x: p50(x, 'raw')))} / "
            f"{fmt_us(med(c, lambda x: p99(x, 'raw')))}",
            vs(c, lambda x: p50(x, "raw")),
            f"{fmt_us(med(c, lambda x: p50(x, 'ours')))} / "
            f"{fmt_us(med(c, lambda x: p99(x, 'ours')))}",
            vs(c, lambda x: p50(x, "ours")),
            fmt_us(med(c, lambda x: x.cpu_pipe)), vs(c, lambda x: x.cpu_pipe),
            fmt_us(med(c, lambda x: x.cpu_one)), vs(c, lambda x: x.cpu_one))
    return table


@dataclass
class Staleness:
    """Pooled samples of one tracker count (seconds), and the reader's counters."""

    stale: list[float] = field(default_factory=list)
    to_new: list[float] = field(default_factory=list)
    hits: int = 0
    misses: int = 0


READERS = {"tight loop": 0.0, "busy 0.3 ms": 300.0}  # the reader's CPU work between reads (us)


def staleness(url: str, trackers: Trackers, counts: Sequence[int], rounds: int,
              writes: int) -> tuple[Table, bool]:
    """The two-process scenario with each tracker count and reader; whether the goals were
    met. A tight-loop reader resolves the stale window to microseconds; a busy one is a
    CPU-bound request that leaves its tier's reader thread little time."""
    lease = Settings().LOCAL_CACHE_LEASE
    bound = lease + lease / 4  # a stalled channel: the lease, plus one heartbeat interval
    raw = redis.Redis.from_url(url)
    got = {(c, reader): Staleness() for c in counts for reader in READERS}
    for r in range(rounds):
        for c in _rotated(counts, r):
            trackers.on(c)
            for reader, busy_us in READERS.items():
                raw.delete(f"{NS}:k")  # the scenario starts with the key absent
                run = two_process(url, NS, writes, busy_us)
                s = got[c, reader]
                s.stale += run.stale
                s.to_new += run.to_new
                s.hits += run.counters["local_hits"]
                s.misses += run.counters["local_misses"]
    raw.close()

    def ms(values: list[float]) -> str:
        values = sorted(values)
        return " / ".join(f"{quantile(values, q) * 1000:.2f}" for q in (0.5, 0.99, 1.0))

    table = Table(
        f"staleness across processes: {writes} writes per run, {rounds} run(s) per row, "
        "pooled; ms from the writer's call returning to the start of the last read serving "
        "the replaced value (stale) and of the first serving the new one (goals: stale p99 < "
        f"{STALE_P99_GOAL_S * 1000:.0f} ms, max < the lease bound {bound * 1000:.0f} ms)",
        ["other trackers", "reader", "overwrites", "stale window p50 / p99 / max",
         "first new read p50 / p99 / max", "max vs lease bound", "reader hits / misses",
         "goals"])
    all_met = True
    for (c, reader), s in got.items():
        stale = sorted(s.stale)
        met = quantile(stale, 0.99) < STALE_P99_GOAL_S and stale[-1] < bound
        all_met &= met
        table.add(str(c), reader, str(len(stale)), ms(stale), ms(s.to_new),
                  f"{stale[-1] / bound:.4f}x", f"{s.hits} / {s.misses}",
                  "met" if met else "missed")
    return table, all_met


def _rows(i: int) -> list[dict[str, object]]:
    """A query result: 20 rows of ten fields, every string its own (copied on each hit)."""
    rows = []
    for j in range(20):
        row = small_value()
        row["id"] = i * 100 + j
        row["username"] = f"user-{i}-{j}"
        row["bio"] = f"{row['bio']} #{i}.{j}"
        rows.append(row)
    return rows


def _page(i: int) -> str:
    """A rendered page of about 25 KB (immutable: served without a copy)."""
    return f"<!-- {i} -->" + large_value(25_000)


SHAPES = {"rows": ("m", _rows), "page": ("p", _page)}


def memory(url: str, fill: int, runs: Sequence[tuple[str, int]]) -> tuple[Table, bool]:
    """For each (shape, cap) of ``runs``, a fresh process reads ``fill`` decoded bytes of
    values of that shape through a tier capped at ``cap`` (0: no tier)."""
    ns = NS + "-memory"
    writer = CacheClient.from_url(url, NAMESPACE=ns, MASTER_KEY=MASTER_KEY,
                                  FLEET_PUBLISH_INTERVAL=0)
    keys: dict[str, int] = {}
    for shape in dict.fromkeys(shape for shape, _ in runs):
        prefix, make = SHAPES[shape]
        # Weighed as the codec returns it: literals shared here are separate objects there.
        keys[shape] = n = max(1, fill // weight(msgpack.unpackb(msgpack.packb(make(0)))))
        for start in range(0, n, 200):
            writer.set_many({f"{prefix}{i}": make(i) for i in range(start, min(n, start + 200))})
    writer.close()
    mib = 2**20
    table = Table(
        f"memory bound: {fill / mib:.0f} MiB of decoded values read once through a tier, a "
        "fresh process per row; rows = 20 ten-field dicts (~25 KiB), page = a 25 KB str "
        "(goal: size_bytes <= LOCAL_CACHE_MAX_BYTES)",
        ["value", "LOCAL_CACHE_MAX_BYTES", "decoded read MiB", "tier size_bytes MiB",
         "entries kept", "hits on re-read", "RSS delta MiB", "RSS delta / size_bytes",
         "goal"])
    all_met = True
    for shape, cap in runs:
        proc = _spawn("memory", url, ns, SHAPES[shape][0], str(cap), str(keys[shape]))
        out, _ = proc.communicate(timeout=300)
        if proc.returncode:
            raise RuntimeError(f"the memory process failed ({proc.returncode})")
        got = json.loads(out.strip().splitlines()[-1])
        delta = got["rss_after"] - got["rss_before"]
        size = got["size_bytes"]
        met = not cap or size <= cap
        all_met &= met
        table.add(shape, "no tier" if not cap else f"{cap / mib:.0f} MiB",
                  f"{got['decoded'] / mib:.1f}", f"{size / mib:.2f}", str(got["entries"]),
                  str(got["hits_on_reread"]), f"{delta / mib:.1f}",
                  f"{delta / size:.2f}" if size else "-",
                  ("met" if met else "missed") if cap else "-")
    return table, all_met


def _redis_version() -> str:
    out = subprocess.run([find_redis_server(), "--version"], capture_output=True, text=True,
                         timeout=10, check=False).stdout
    return next((p[2:] for p in out.split() if p.startswith("v=")), "?")


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


SECTIONS = ("fanout", "staleness", "memory")


def main(argv: list[str] | None = None) -> int:
    """Run the sections and print their tables, goals and the machine's load."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tracking")
    parser.add_argument("--quick", action="store_true",
                        help="few iterations, trackers 0 and 2 (a smoke run, not a measurement)")
    parser.add_argument("--rounds", type=int, default=None, help="default 3 (1 with --quick)")
    parser.add_argument("--trackers", default=None,
                        help="comma-separated tracker counts (default 0,4,16)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections: {', '.join(SECTIONS)}")
    args = parser.parse_args(argv)
    quick = args.quick
    rounds = args.rounds or (1 if quick else 3)
    counts = [int(c) for c in (args.trackers or ("0,2" if quick else "0,4,16")).split(",")]
    sections = [s for s in args.only.split(",") if s]
    if unknown := set(sections) - set(SECTIONS):
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"## in-process tier: tracking cost and bounds, {now}\n\n{os.cpu_count()} cores, "
          f"load average {_load()}; redis-server {_redis_version()} (private); "
          f"redis-py {redis.__version__}; rounds={rounds}{' (quick)' if quick else ''}\n",
          flush=True)
    goals: list[str] = []
    with EmbeddedRedis() as server:
        trackers = Trackers(server.url, max(counts)) if {"fanout", "staleness"} & set(
            sections) else None
        try:
            if trackers is not None:
                seed = CacheClient.from_url(server.url, NAMESPACE=NS, MASTER_KEY=MASTER_KEY)
                seed.set_many({f"w{i}": "v" * 300 for i in range(100)})  # what trackers hold
                seed.close()
            if "fanout" in sections and trackers is not None:
                n_pipe, n_seq = (500, 100) if quick else (20_000, 2_000)
                print(fanout(server.url, trackers, counts, rounds, n_pipe, n_seq).render(),
                      flush=True)
                goals.append("fan-out: no goal (figures for docs/scaling.md)")
            if "staleness" in sections and trackers is not None:
                table, met = staleness(server.url, trackers, counts, rounds,
                                       30 if quick else 200)
                print(table.render(), flush=True)
                goals.append(f"staleness: {'met' if met else 'missed'}")
            if "memory" in sections:
                mib = 2**20
                fill, caps = ((4 * mib, (0, mib, 8 * mib)) if quick else
                              (96 * mib, (0, 8 * mib, 32 * mib, 128 * mib)))
                runs = [("rows", cap) for cap in caps] + [("page", caps[0]), ("page", caps[2])]
                table, met = memory(server.url, fill, runs)
                print(table.render(), flush=True)
                goals.append(f"memory bound: {'met' if met else 'missed'}")
        finally:
            if trackers is not None:
                trackers.close()
            local_mod.close_all()
    print(f"goals: {'; '.join(goals) or 'none run'}; load average at the end {_load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
