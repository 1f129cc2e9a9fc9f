"""Two processes, one Redis: the reader serves from its in-process tier while the
writer overwrites and deletes; the reader never serves a value the writer replaced
longer ago than the invalidation bound."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from cachekit_web import CacheClient

# The goal is p99 < 2 ms on a quiet machine; CI shares two cores with other jobs.
# Measured here: stale window p99 0 ms with the drain on each read, 10-17 ms without it.
STALE_P99_BOUND_S = 0.005
P99_BOUND_S = 0.020
MAX_BOUND_S = 0.100
WRITES = 200


def test_no_stale_reads_across_processes(redis_url: str, namespace: str) -> None:
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root))
    reader = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("local_reader.py")), redis_url,
         namespace, "300", "30"], stdout=subprocess.PIPE, text=True, env=env)
    writer = CacheClient.from_url(redis_url, NAMESPACE=namespace)
    try:
        assert reader.stdout is not None
        assert reader.stdout.readline().strip() == "ready"
        # (value after each write, when the write returned); the key starts absent.
        returned: list[tuple[object, float]] = [(None, 0.0)]
        for i in range(1, WRITES + 1):
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
    runs = report["runs"]
    assert runs[-1][0] == "stop"
    # Pair each run of values the reader saw with the write that produced it (in order),
    # then: how long after the next write returned was that value still served?
    delays: list[float] = []
    to_new: list[float] = []  # from a write's return to the first read serving its value
    j = -1
    for value, first, last in runs:
        j += 1
        while j < len(returned) and returned[j][0] != value:
            j += 1
        assert j < len(returned), f"reader saw a value never written: {value!r}"
        if j:
            to_new.append(max(0.0, first - returned[j][1]))
        if j + 1 < len(returned):
            delays.append(max(0.0, last - returned[j + 1][1]))
    delays.sort()
    to_new.sort()
    p99 = quantile(delays, 0.99)
    print(f"\nstale window after the writer returned, over {len(delays)} overwrites: "
          f"p50 {quantile(delays, 0.5) * 1000:.3f} ms, p99 {p99 * 1000:.3f} ms, "
          f"max {delays[-1] * 1000:.3f} ms; first read of the new value after the write "
          f"returned (reads every ~0.3 ms): p50 {quantile(to_new, 0.5) * 1000:.3f} ms, "
          f"p99 {quantile(to_new, 0.99) * 1000:.3f} ms, max {to_new[-1] * 1000:.3f} ms; "
          f"local hits {report['local_hits']}, misses {report['local_misses']}, "
          f"invalidations {report['local_invalidations']}")
    assert report["local_hits"] > report["local_misses"]  # reads really came from memory
    assert report["local_invalidations"] > 0
    assert p99 < STALE_P99_BOUND_S
    assert delays[-1] < MAX_BOUND_S
    assert quantile(to_new, 0.99) < P99_BOUND_S


def quantile(sorted_values: list[float], q: float) -> float:
    """The ``q`` quantile of an ascending list (nearest rank)."""
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]
