"""The child processes of ``benchmarks.tracking`` (``python -m benchmarks.tracking_worker``).

``tracker URL NAMESPACE``: a process holding an in-process tier on the namespace, switched
on and off by the lines ``on`` / ``off`` on stdin (answered on stdout once done); ``on``
opens a client with LOCAL_CACHE, fills a few entries and waits for the tracking
connection's lease; ``off`` closes the client and the tier (its connection with it).

``memory URL NAMESPACE PREFIX MAX_BYTES KEYS``: reads ``KEYS`` stored values
(``<PREFIX>0``..) through a client whose tier is capped at ``MAX_BYTES`` (0: no tier) and
prints, as JSON, the decoded bytes read, what the tier holds, and the process's resident
memory before and after.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from typing import Any

from cachekit_web import CacheClient
from cachekit_web.core.local import tier as local_mod
from cachekit_web.core.local.copying import weight

from .contenders import MASTER_KEY


def _wait_live(client: CacheClient, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        client.get("w0")  # makes the tier (and starts its thread) on first use
        if getattr(client._local, "live", False):
            return True
        time.sleep(0.002)
    return False


def tracker(url: str, namespace: str) -> None:
    """Hold a tier on ``namespace`` while told ``on``; exit at end of input."""
    client: CacheClient | None = None
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "on" and client is None:
            client = CacheClient.from_url(url, NAMESPACE=namespace, LOCAL_CACHE=True,
                                          MASTER_KEY=MASTER_KEY, FLEET_PUBLISH_INTERVAL=0)
            ok = _wait_live(client)
            for i in range(100):  # hold entries, as a serving process would
                client.get(f"w{i}")
            print("on" if ok else "failed", flush=True)
        elif cmd == "off":
            if client is not None:
                client.close()
                client = None
            local_mod.close_all()  # the tracking connection closes now, not at the next ping
            print("off", flush=True)
    if client is not None:
        client.close()
    local_mod.close_all()


def _rss() -> int:
    """Resident bytes of this process (Linux /proc), 0 where unknown."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def memory(url: str, namespace: str, prefix: str, max_bytes: int,
           keys: int) -> dict[str, Any]:
    """Read every ``<prefix><i>`` through a tier capped at ``max_bytes`` (0: none)."""
    options: dict[str, Any] = {"NAMESPACE": namespace, "MASTER_KEY": MASTER_KEY,
                               "FLEET_PUBLISH_INTERVAL": 0}
    if max_bytes:
        options.update(LOCAL_CACHE=True, LOCAL_CACHE_MAX_BYTES=max_bytes,
                       LOCAL_CACHE_MAX_ENTRIES=1_000_000)
    client = CacheClient.from_url(url, **options)
    if max_bytes and not _wait_live(client):
        raise RuntimeError("the tier did not start")
    client.get(f"{prefix}0")  # connections, codec and tier warmed before the baseline
    gc.collect()
    before = _rss()
    decoded = 0
    for i in range(keys):
        value = client.get(f"{prefix}{i}")
        if value is None:
            raise RuntimeError(f"{prefix}{i} is missing")
        decoded += weight(value)
    del value
    gc.collect()
    after = _rss()
    tier = client._local if max_bytes else None
    report = {"decoded": decoded, "rss_before": before, "rss_after": after,
              "size_bytes": tier.size_bytes if tier is not None else 0,
              "entries": len(tier) if tier is not None else 0,
              "hits_on_reread": 0}
    if tier is not None:  # the entries kept (the newest) are served from memory
        hits = client.metrics.totals["local_hits"]
        for i in reversed(range(keys)):
            client.get(f"{prefix}{i}")
        report["hits_on_reread"] = client.metrics.totals["local_hits"] - hits
    client.close()
    local_mod.close_all()
    return report


def main(argv: list[str]) -> None:
    """Dispatch on the first argument (``tracker`` or ``memory``)."""
    if argv[0] == "tracker":
        tracker(argv[1], argv[2])
    elif argv[0] == "memory":
        print(json.dumps(memory(argv[1], argv[2], argv[3], int(argv[4]), int(argv[5]))),
              flush=True)
    else:
        raise SystemExit(f"unknown mode {argv[0]!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
