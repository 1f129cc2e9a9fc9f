"""Operator tasks on one namespace (count, clear in batches) for the CLIs of both adapters.

They go through the Backend protocol (scan_prefix, count_prefix, delete_many),
so they see every node of a Cluster; errors are raised with their code, for the CLI.
"""

from __future__ import annotations

from collections.abc import Iterator

from .client import CacheClient

_BATCH = 500


def _prefix(client: CacheClient) -> str:
    return client.full_key("x")[:-1]


def count_keys(client: CacheClient, limit: int = 10_000_000) -> int:
    """How many keys this client's namespace holds (SCAN, never KEYS), up to ``limit``."""
    return client.backend.count_prefix(_prefix(client), limit)


def clear_in_batches(client: CacheClient, batch: int = _BATCH) -> Iterator[int]:
    """Delete this namespace's keys, yielding how many each batch removed."""
    doomed: list[str] = []
    for found in client.backend.scan_prefix(_prefix(client)):
        for key in found:
            doomed.append(key.decode() if isinstance(key, bytes) else key)
            if len(doomed) >= batch:
                yield client.backend.delete_many(doomed)
                doomed = []
    if doomed:
        yield client.backend.delete_many(doomed)
