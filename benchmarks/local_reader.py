"""The reading process of the two-process invalidation scenario (``python -m
benchmarks.local_reader URL NAMESPACE BUSY_US LIMIT_S``; see ``benchmarks.local``).

Reads one key through the in-process tier in a busy loop (CPU work between reads) and
prints, as JSON, the runs of values it saw: [value, first read start, last read start]
on the system-wide monotonic clock, plus its tier counters.
"""

from __future__ import annotations

import json
import sys
import time

from cachekit_web import CacheClient


def main(url: str, namespace: str, busy_us: float, limit_s: float) -> None:
    """Read until the writer stores "stop" (or ``limit_s`` passes)."""
    c = CacheClient.from_url(url, NAMESPACE=namespace, LOCAL_CACHE=True)
    c.get("k")
    end = time.monotonic() + 5
    while not (c._local is not None and c._local.live) and time.monotonic() < end:
        time.sleep(0.001)
    print("ready", flush=True)
    runs: list[list[object]] = []
    busy = busy_us / 1e6
    end = time.monotonic() + limit_s
    while True:
        t0 = time.monotonic()
        if t0 > end:
            break
        value = c.get("k")
        if runs and runs[-1][0] == value:
            runs[-1][2] = t0
        else:
            runs.append([value, t0, t0])
        if value == "stop":
            break
        spin = time.perf_counter() + busy
        x = 0
        while time.perf_counter() < spin:  # a CPU-bound request between reads
            x += 1
    totals = c.metrics.totals
    print(json.dumps({"runs": runs, "local_hits": totals["local_hits"],
                      "local_misses": totals["local_misses"],
                      "local_invalidations": totals["local_invalidations"]}), flush=True)
    c.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
