"""``python -m benchmarks.outage --app django|flask``: a site under load while Redis fails.

Starts a private redis-server and gunicorn (2 workers x 4 threads by default) on free
127.0.0.1 ports, drives a bounded number of client threads against a cached page and a
get/set view, and goes through five phases of equal length: normal, Redis killed, Redis
restarted, Redis hung (SIGSTOP), Redis resumed; ``--cycles N`` goes through the five
phases N times on the same site (the shares and first-hit times are then medians over the
cycles, each cycle's share against its own normal phase). Prints per phase: requests, non-200
responses (a client timeout or a refused connection counts as one), p50, p99, the share
of requests the cache answered, throughput relative to the normal phase (and the hung
phase's relative to the killed one), and for the phases where Redis answers again the
time from its answering to the first cache hit (p50 and max over the client threads,
each thread's first response the cache answered). Exit status 1 if any response was not
a 200.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.outage_app import HIT_HEADER
from cachekit_web.embedded import EmbeddedRedis, free_port

ROOT = Path(__file__).resolve().parent.parent
PHASES: tuple[tuple[str, Callable[[EmbeddedRedis], object] | None], ...] = (
    ("normal", None),
    ("killed", EmbeddedRedis.kill),
    ("restarted", EmbeddedRedis.start),
    ("hung", EmbeddedRedis.pause),
    ("resumed", EmbeddedRedis.resume),
)
PATHS = ("/page", "/data")
BACK = ("restarted", "resumed")  # phases that begin with Redis answering again
REQUEST_TIMEOUT = 5.0


@dataclass
class PhaseStats:
    """What the clients saw during one phase."""

    name: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    non_200: int = 0
    started: float = 0.0  # perf_counter when the phase began (Redis answering, if back)
    hits: int = 0
    first_hit: dict[int, float] = field(default_factory=dict)  # client thread -> seconds

    def first_hit_ms(self, clients: int) -> tuple[float | None, float | None]:
        """(p50, max) over the client threads of the time to their first cache hit (ms);
        a thread that saw none counts as the whole phase."""
        if not clients:
            return None, None
        times = [self.first_hit.get(i, self.seconds) * 1000 for i in range(clients)]
        return statistics.median(times), max(times)

    @property
    def requests(self) -> int:
        """Requests started in this phase."""
        return len(self.latencies)

    @property
    def throughput(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        """Latency percentile in milliseconds (0 without requests)."""
        if not self.latencies:
            return 0.0
        if len(self.latencies) == 1:
            return self.latencies[0] * 1000
        cuts = statistics.quantiles(self.latencies, n=100, method="inclusive")
        return cuts[min(98, max(0, round(q * 100) - 1))] * 1000


def _request(conn: http.client.HTTPConnection, path: str) -> tuple[int, bool]:
    """(status, whether the cache answered)."""
    conn.request("GET", path, headers={"Connection": "keep-alive"})
    resp = conn.getresponse()
    resp.read()
    return resp.status, resp.getheader(HIT_HEADER) == "hit"


class Load:
    """Client threads that request the site until stopped, recording per phase."""

    def __init__(self, port: int, threads: int) -> None:
        self.port = port
        self.threads = threads
        self.phase: PhaseStats | None = None
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._workers = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(threads)]

    def start(self) -> None:
        """Start the client threads."""
        for t in self._workers:
            t.start()

    def join(self) -> None:
        """Stop and wait for the client threads (each ends within REQUEST_TIMEOUT)."""
        self.stop.set()
        for t in self._workers:
            t.join(REQUEST_TIMEOUT + 2)

    def _run(self, index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        i = index
        while not self.stop.is_set():
            i += 1
            phase = self.phase
            start = time.perf_counter()
            try:
                status, hit = _request(conn, PATHS[i % len(PATHS)])
            except (OSError, http.client.HTTPException):
                status, hit = 0, False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                  timeout=REQUEST_TIMEOUT)
            elapsed = time.perf_counter() - start
            if phase is not None:
                with self._lock:
                    phase.latencies.append(elapsed)
                    phase.non_200 += status != 200
                    hit = hit and status == 200
                    phase.hits += hit
                    if hit and index not in phase.first_hit:
                        phase.first_hit[index] = start + elapsed - phase.started
        conn.close()


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            ok = all(_request(conn, p)[0] == 200 for p in PATHS)
            conn.close()
            if ok:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError("gunicorn did not answer in time")


def run(app: str, seconds: float, warmup: float, clients: int, workers: int, threads: int,
        settings: dict[str, str], log_path: str, cycles: int = 1) -> list[list[PhaseStats]]:
    """Run the five phases ``cycles`` times against a fresh Redis and gunicorn; return each
    cycle's statistics."""
    redis_server = EmbeddedRedis().start()
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CACHEKIT_") and k != "REDIS_URL"}
    env.update({f"CACHEKIT_{k}": v for k, v in settings.items()})
    env.update(OUTAGE_APP=app, CACHEKIT_REDIS_URL=redis_server.url,
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p))
    cmd = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
           "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
           "--keep-alive", "30", "--log-level", "warning", "--timeout", "60",
           "benchmarks.outage_app:application"]
    with open(log_path, "wb") as log:
        gunicorn = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)
    load = Load(port, clients)
    runs = [[PhaseStats(name) for name, _ in PHASES] for _ in range(cycles)]
    try:
        _wait_ready(port, gunicorn)
        load.start()
        time.sleep(warmup)  # fills the page cache and every worker's pool; not counted
        for stats in runs:
            for phase, (_, action) in zip(stats, PHASES, strict=True):
                if action is not None:
                    action(redis_server)
                started = phase.started = time.perf_counter()
                load.phase = phase
                time.sleep(seconds)
                phase.seconds = time.perf_counter() - started
        load.phase = None
    finally:
        load.join()
        redis_server.resume()
        gunicorn.terminate()
        try:
            gunicorn.wait(15)
        except subprocess.TimeoutExpired:
            gunicorn.kill()
            gunicorn.wait(5)
        redis_server.stop()
    return runs


def _share(s: PhaseStats, of: PhaseStats) -> float:
    return s.throughput / (of.throughput or 1.0)


def shares(cycle: Sequence[PhaseStats]) -> dict[str, float]:
    """One cycle's throughput per phase relative to its normal phase, and "hung/killed"."""
    by = {s.name: s for s in cycle}
    out = {s.name: _share(s, cycle[0]) for s in cycle}
    if "hung" in by and "killed" in by:
        out["hung/killed"] = _share(by["hung"], by["killed"])
    return out


def median_shares(runs: Sequence[Sequence[PhaseStats]]) -> dict[str, float]:
    """The median over the cycles of each share (see ``shares``)."""
    each = [shares(cycle) for cycle in runs]
    return {k: statistics.median(c[k] for c in each) for k in each[0]}


def pooled(runs: Sequence[Sequence[PhaseStats]]) -> list[PhaseStats]:
    """Each phase's requests over every cycle, as one PhaseStats (first hits left out)."""
    out = []
    for phases in zip(*runs, strict=True):
        merged = PhaseStats(phases[0].name)
        for s in phases:
            merged.seconds += s.seconds
            merged.latencies += s.latencies
            merged.non_200 += s.non_200
            merged.hits += s.hits
        out.append(merged)
    return out


def first_hit_ms(runs: Sequence[Sequence[PhaseStats]], name: str,
                 clients: int) -> tuple[float, float] | None:
    """(median over the cycles of the p50, max over the cycles of the max) time from Redis
    answering to a client thread's first cache hit in phase ``name``, in ms."""
    got = [s.first_hit_ms(clients) for cycle in runs for s in cycle if s.name == name]
    p50s = [p for p, _ in got if p is not None]
    tops = [t for _, t in got if t is not None]
    return (statistics.median(p50s), max(tops)) if p50s and tops else None


def table(app: str, runs: Sequence[Sequence[PhaseStats]], clients: int) -> str:
    """The per-phase table (requests of every cycle pooled, shares the median over the
    cycles, with each cycle's when more than one), as markdown, and the issue 21 goals."""
    share = median_shares(runs)
    each = [shares(cycle) for cycle in runs]
    lines = [f"### {app}", "",
             "| phase | requests | non-200 | p50 ms | p99 ms | max ms | > 100 ms | req/s "
             "| hits | vs normal | first hit ms p50 / max |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in pooled(runs):
        slow = sum(1 for x in s.latencies if x > 0.1)
        worst = max(s.latencies, default=0.0) * 1000
        vs = f"{share[s.name]:.0%}"
        if s.name == "hung" and "hung/killed" in share:
            vs += f" ({share['hung/killed']:.0%} of killed)"
        if len(runs) > 1:
            vs += " [" + ", ".join(f"{c[s.name]:.0%}" for c in each) + "]"
        first = first_hit_ms(runs, s.name, clients) if s.name in BACK else None
        shown = "" if first is None else f"{first[0]:.0f} / {first[1]:.0f}"
        lines.append(f"| {s.name} | {s.requests} | {s.non_200} | {s.percentile(0.5):.1f} | "
                     f"{s.percentile(0.99):.1f} | {worst:.0f} | {slow} | {s.throughput:.0f} | "
                     f"{s.hits / (s.requests or 1):.0%} | {vs} | {shown} |")
    if len(runs) > 1 and "hung/killed" in share:
        per_cycle = ", ".join(f"{c['hung/killed']:.0%}" for c in each)
        lines.append(f"| hung vs killed, each cycle | | | | | | | | | {per_cycle} | |")
    lines += ["", "goals: " + ", ".join(f"{k} {'ok' if v else 'MISSED'}"
                                        for k, v in goals(runs).items())]
    return "\n".join(lines)


def goals(runs: Sequence[Sequence[PhaseStats]]) -> dict[str, bool]:
    """Issue 21's goals for one run: shares as medians over its cycles; no non-200 and a
    p99 within 50 ms in every phase of every cycle."""
    share = median_shares(runs)
    out = {f"{name} >= 75% of normal": share[name] >= 0.75 for name in BACK if name in share}
    if "hung/killed" in share:
        out["hung >= 90% of killed"] = share["hung/killed"] >= 0.9
    phases = [s for cycle in runs for s in cycle]
    out["0 non-200"] = not any(s.non_200 for s in phases)
    out["p99 <= 50 ms"] = all(s.percentile(0.99) <= 50 for s in phases)
    return out


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.outage", description=__doc__)
    parser.add_argument("--app", choices=("django", "flask"), default="django")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each phase")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=8, help="client threads (max 64)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a cachekit setting for the site, e.g. SOCKET_TIMEOUT=0.25")
    parser.add_argument("--cycles", type=int, default=1,
                        help="go through the five phases this many times (at most 10)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= 120 or not 1 <= args.clients <= 64 or not 1 <= args.cycles <= 10:
        parser.error("--seconds must be in (0, 120], --clients in [1, 64], --cycles in [1, 10]")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scenario and print its table."""
    args = _parse(argv)
    settings = dict(item.split("=", 1) for item in args.set)
    log_path = os.path.join(tempfile.gettempdir(), f"cachekit-outage-{args.app}.log")
    runs = run(args.app, args.seconds, args.warmup, args.clients, args.workers, args.threads,
               settings, log_path, args.cycles)
    print(f"{args.app}: gunicorn {args.workers} workers x {args.threads} threads, "
          f"{args.clients} client threads, {args.seconds:g} s per phase, "
          f"{args.cycles} cycle(s); settings {settings or 'default'}; site log {log_path}")
    print(table(args.app, runs, args.clients))
    if args.json:
        share = median_shares(runs)
        each = [shares(cycle) for cycle in runs]
        Path(args.json).write_text(json.dumps([
            {"phase": s.name, "requests": s.requests, "non_200": s.non_200,
             "p50_ms": s.percentile(0.5), "p99_ms": s.percentile(0.99),
             "throughput": s.throughput, "relative": share[s.name],
             "relative_per_cycle": [c[s.name] for c in each], "hits": s.hits,
             "first_hit_ms": first_hit_ms(runs, s.name, args.clients)
             if s.name in BACK else None}
            for s in pooled(runs)], indent=1))
    return 1 if any(s.non_200 for cycle in runs for s in cycle) else 0


if __name__ == "__main__":
    raise SystemExit(main())
