"""Section 4: what a cache read costs when Redis is down (killed) or hung (SIGSTOP).

Bounded by construction: every loop has a call cap and a wall-clock budget.
"""

from __future__ import annotations

import contextlib
import logging
import statistics
import time
from collections.abc import Callable
from typing import Any

import redis

from cachekit_web.embedded import EmbeddedRedis

from .contenders import Cachekit, Contender, DjangoRedis, RawRedis
from .harness import (
    Batch,
    Config,
    Stat,
    Table,
    fmt_duration,
    fmt_ratio,
    fmt_spread,
    fmt_us,
    measure,
)

SOCKET_TIMEOUT = 0.25
THRESHOLD = 5  # CIRCUIT_BREAKER_FAILURE_THRESHOLD (the default, spelled out)
_ERRORS = (redis.RedisError, OSError)

DOWN_COLUMNS = ("benchmark", "contender", "us/call", "spread", "vs raw", "note")
HUNG_COLUMNS = ("benchmark", "contender", "calls", "median per call", "total", "note")


def _swallowing(get: Callable[[str], Any]) -> Batch:
    """A batch of gets that tolerates the errors a caller without fail-open must catch."""

    def run(n: int) -> None:
        for _ in range(n):
            with contextlib.suppress(*_ERRORS):
                get("k")

    return run


def _calls_for(batch: Batch, budget: float, cap: int) -> int:
    """How many calls fit in ``budget`` seconds, judged from one probe call."""
    start = time.perf_counter()
    batch(1)
    one = max(time.perf_counter() - start, 1e-7)
    return max(1, min(cap, int(budget / one)))


def _warm(c: Contender) -> None:
    """Make sure the contender has a live pooled connection (bounded retries)."""
    for _ in range(10):
        try:
            c.set("k", {"warm": True})
            if c.get("k") == {"warm": True}:
                return
        except _ERRORS:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{c.name} could not reach the benchmark Redis")


def _until_open(ck: Cachekit, cap: int, budget: float) -> tuple[int, float, list[float]]:
    """Call get until the breaker opens; returns calls, elapsed seconds, per-call times."""
    times: list[float] = []
    start = time.perf_counter()
    while ck.client.available and len(times) < cap and time.perf_counter() - start < budget:
        t0 = time.perf_counter()
        ck.get("k")
        times.append(time.perf_counter() - t0)
    return len(times), time.perf_counter() - start, times


def _timed_calls(get: Callable[[str], Any], cap: int, budget: float) -> list[float]:
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < cap and time.perf_counter() - start < budget:
        t0 = time.perf_counter()
        with contextlib.suppress(*_ERRORS):
            get("k")
        times.append(time.perf_counter() - t0)
    return times


def _down(victim: EmbeddedRedis, ck: Cachekit, others: list[Contender], cfg: Config) -> Table:
    for c in (ck, *others):
        _warm(c)
    victim.kill()
    calls, elapsed, _ = _until_open(ck, cap=50, budget=3.0)
    stats: dict[str, Stat] = {}
    batches = {c.name: _swallowing(c.get) for c in others}
    per_repeat = 0.03 if cfg.quick else 0.08
    for name, batch in batches.items():
        n = _calls_for(batch, per_repeat, cap=2000)
        stats.update(measure({name: batch}, n, cfg.repeats, warmup=0))
    stats.update(measure({f"{ck.name} (breaker open)": _swallowing(ck.get)},
                         cfg.n(5000), cfg.repeats))
    base = stats[others[0].name].median
    table = Table(f"Redis down (killed): latency of one get (median of {cfg.repeats} repeats; "
                  "vs raw: >1x is faster)", DOWN_COLUMNS)
    notes = {
        others[0].name: "raises ConnectionError every call (caller must catch)",
        f"{ck.name} (breaker open)": (
            f"miss, no network; breaker opened after {calls} calls / {elapsed * 1000:.0f} ms"
            if not ck.client.available else "breaker did not open (unexpected)"
        ),
    }
    for name, s in stats.items():
        note = notes.get(name, "")
        if not note and name.startswith("django"):
            note = "raises ConnectionError every call (caller must catch)"
        elif not note:
            note = "fail-open miss, but reconnects (with RETRIES=1 backoff) every call"
        table.add("get, Redis down", name, fmt_us(s.median), fmt_spread(s),
                  fmt_ratio(base, s.median), note)
    return table


def _hung(victim: EmbeddedRedis, ck: Cachekit, others: list[Contender], cfg: Config) -> Table:
    victim.restart()  # same port, so the clients reconnect to it
    ck.client.breaker.reset()
    for c in (ck, *others):
        _warm(c)
    victim.pause()
    table = Table(f"Redis hung (SIGSTOP), SOCKET_TIMEOUT={SOCKET_TIMEOUT} s: a handful of gets",
                  HUNG_COLUMNS)
    try:
        calls, elapsed, times = _until_open(ck, cap=THRESHOLD + 5, budget=4.0)
        opened = not ck.client.available
        table.add("get, Redis hung", f"{ck.name}, until the breaker opens", calls,
                  fmt_duration(statistics.median(times)), fmt_duration(elapsed),
                  "breaker opened" if opened else "breaker did NOT open")
        after = _timed_calls(ck.get, cap=200, budget=0.5)
        table.add("get, Redis hung", f"{ck.name}, breaker open", len(after),
                  fmt_duration(statistics.median(after)), fmt_duration(sum(after)),
                  "fail-open miss, no network")
        per_call_cap = 3 if cfg.quick else 4
        for c in others:
            times = _timed_calls(c.get, cap=per_call_cap, budget=1.2)
            table.add("get, Redis hung", c.name, len(times),
                      fmt_duration(statistics.median(times)), fmt_duration(sum(times)),
                      "no breaker: every call waits out the socket timeout")
    finally:
        victim.resume()
    return table


def run_failure(cfg: Config) -> list[Table]:
    """Latency of get with Redis killed, then with Redis paused, per contender."""
    lib_log = logging.getLogger("cachekit_web")
    old_level = lib_log.level
    lib_log.setLevel(logging.CRITICAL)  # the expected E010/E011/E030 warnings would flood stdout
    victim = EmbeddedRedis().start()
    timeouts = {"socket_timeout": SOCKET_TIMEOUT, "socket_connect_timeout": SOCKET_TIMEOUT}
    ck_timeouts = {"SOCKET_TIMEOUT": SOCKET_TIMEOUT, "SOCKET_CONNECT_TIMEOUT": SOCKET_TIMEOUT}
    ck = Cachekit(victim.url, "plain", CIRCUIT_BREAKER_RECOVERY_TIMEOUT=600.0,
                  CIRCUIT_BREAKER_FAILURE_THRESHOLD=THRESHOLD, **ck_timeouts)
    no_breaker = Cachekit(victim.url, "plain", CIRCUIT_BREAKER_ENABLED=False, **ck_timeouts)
    no_breaker.name = "cachekit plain, breaker disabled"
    others: list[Contender] = [RawRedis(victim.url, **timeouts),
                               DjangoRedis(victim.url, **timeouts), no_breaker]
    try:
        return [_down(victim, ck, others, cfg), _hung(victim, ck, others, cfg)]
    finally:
        for c in (ck, *others):
            c.close()
        victim.stop()
        lib_log.setLevel(old_level)
