# GENERATED from cachekit_web/core/_async/pending.py by scripts/generate_sync.py.
# Do not edit: change the async source, then run `make generate`.
"""Backend-wide helpers on the Backend protocol: applying remembered invalidations,
batching and counting a scan (the async source; sync is generated)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ..backends import Backend
from ..backends.common import SCAN_BATCH

CHUNK = 1000


def apply_invalidations(backend: Backend, prefix: str, keys: Sequence[str],
                                    clear: bool) -> None:
    """Clear the namespace if asked, then delete ``keys`` in chunks."""
    if clear:
        backend.delete_prefix(prefix)
    for i in range(0, len(keys), CHUNK):
        backend.delete_many(keys[i:i + CHUNK])


def batches(keys: Iterator[bytes]) -> Iterator[list[bytes]]:
    """``keys`` in lists of up to SCAN_BATCH."""
    batch: list[bytes] = []
    for k in keys:
        batch.append(k)
        if len(batch) >= SCAN_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def count_batches(batches: Iterator[list[bytes]], limit: int) -> int:
    """How many keys the batches of a scan hold, counting at most ``limit``."""
    n = 0
    for batch in batches:
        n += len(batch)
        if n >= limit:
            return limit
    return n
