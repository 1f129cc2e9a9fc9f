"""``python -m benchmarks.local_topology``: what routing by slot adds to a tier hit.

A Cluster's in-process tier holds one LocalTier link per primary and finds a key's
link by its hash slot (redis-py's ``key_slot``: CRC16 in C, plus encoding the key)
before that link's own lookup. This times, in the same process, interleaved rounds:
``LocalTier.lookup`` (one Redis, Sentinel) and ``ClusterTier.lookup`` (3 links) on a
hit of a str value, no server needed (leases held open by hand). Medians of rounds.
Goal: routing adds at most 1.0 us per hit.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from redis.crc import REDIS_CLUSTER_HASH_SLOTS

from cachekit_web.core.data.codec import Entry
from cachekit_web.core.local.tier import LocalTier
from cachekit_web.core.local.topology import ClusterTier

GOAL_US = 1.0


def _link(name: str) -> LocalTier:
    def refuse() -> Any:
        raise OSError("not used")

    link = LocalTier(refuse, "b:", max_entries=10_000, max_bytes=1 << 26, lease=1.0,
                     start=False, address=name, verify_node=True)
    link.disabled = "benchmark"  # no reader thread: no server here
    link._lease_until = float("inf")  # served as if the lease were renewed
    return link


def _store(link: LocalTier, fk: str) -> None:
    token = link.begin(fk)
    assert link.finish(fk, token, Entry("value"), 5, -1, link.address)


def main(argv: list[str] | None = None) -> None:
    """Print per-hit cost of both lookups, their difference and the goal."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("-n", type=int, default=200_000)
    args = parser.parse_args(argv)
    keys = [f"b:user:{i}:profile" for i in range(100)]
    single = _link("one:1")
    for fk in keys:
        _store(single, fk)
    links = [_link(f"node:{i}") for i in range(3)]
    cluster = ClusterTier(lambda: None, lambda node: links[0], "b:", lease=1.0, start=False)
    share = REDIS_CLUSTER_HASH_SLOTS // 3
    cluster._slots = [links[min(s // share, 2)] for s in range(REDIS_CLUSTER_HASH_SLOTS)]
    cluster._links = {link.address or "": link for link in links}
    for fk in keys:
        link = cluster.link_for(fk)
        assert link is not None
        _store(link, fk)
    timings: dict[str, list[float]] = {"LocalTier.lookup": [], "ClusterTier.lookup": []}
    tiers = {"LocalTier.lookup": single, "ClusterTier.lookup": cluster}
    for _ in range(args.rounds):
        for name, tier in tiers.items():  # interleaved: same load for both
            lookup = tier.lookup
            n = args.n // len(keys)
            start = time.perf_counter()
            for _ in range(n):
                for fk in keys:
                    lookup(fk)
            timings[name].append((time.perf_counter() - start) / (n * len(keys)) * 1e6)
    medians = {name: statistics.median(ts) for name, ts in timings.items()}
    for name, us in medians.items():
        print(f"{name:<20} {us:6.3f} us per hit (median of {args.rounds} rounds)")
    added = medians["ClusterTier.lookup"] - medians["LocalTier.lookup"]
    print(f"routing by slot adds {added:.3f} us "
          f"({medians['ClusterTier.lookup'] / medians['LocalTier.lookup']:.2f}x)")
    print(f"goal: at most {GOAL_US:.1f} us added: {'met' if added <= GOAL_US else 'missed'}")


if __name__ == "__main__":
    main()
