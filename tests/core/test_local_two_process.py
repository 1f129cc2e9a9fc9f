"""Two processes, one Redis: the reader serves from its in-process tier while the
writer overwrites and deletes; the reader never serves a value the writer replaced
longer ago than the invalidation bound (the scenario is ``benchmarks.local.two_process``,
which also reports its figures)."""

from __future__ import annotations

from benchmarks.local import quantile, two_process

# The goal is p99 < 2 ms on a quiet machine (see benchmarks/README.md); CI shares
# two cores with other jobs. Measured here: stale window p99 0 ms with the drain on each
# read, 10-17 ms without it.
STALE_P99_BOUND_S = 0.005
P99_BOUND_S = 0.020
MAX_BOUND_S = 0.100


def test_no_stale_reads_across_processes(redis_url: str, namespace: str) -> None:
    got = two_process(redis_url, namespace)
    print(f"\nstale window after the writer returned, over {len(got.stale)} overwrites: "
          f"p50 {quantile(got.stale, 0.5) * 1000:.3f} ms, "
          f"p99 {quantile(got.stale, 0.99) * 1000:.3f} ms, max {got.stale[-1] * 1000:.3f} ms;"
          f" first read of the new value: p99 {quantile(got.to_new, 0.99) * 1000:.3f} ms; "
          f"{got.counters}")
    assert got.counters["local_hits"] > got.counters["local_misses"]  # from memory
    assert got.counters["local_invalidations"] > 0
    assert quantile(got.stale, 0.99) < STALE_P99_BOUND_S
    assert got.stale[-1] < MAX_BOUND_S
    assert quantile(got.to_new, 0.99) < P99_BOUND_S
