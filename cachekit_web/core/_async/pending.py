"""Backend-wide helpers on the Backend protocol: applying remembered invalidations,
batching and counting a scan (the async source; sync is generated)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from ..backends import AsyncBackend
from ..backends.common import SCAN_BATCH

CHUNK = 1000


async def async_apply_invalidations(backend: AsyncBackend, prefix: str, keys: Sequence[str],
                                    clear: bool) -> None:
    """Clear the namespace if asked, then delete ``keys`` in chunks."""
    if clear:
        await backend.delete_prefix(prefix)
    for i in range(0, len(keys), CHUNK):
        await backend.delete_many(keys[i:i + CHUNK])


async def async_batches(keys: AsyncIterator[bytes]) -> AsyncIterator[list[bytes]]:
    """``keys`` in lists of up to SCAN_BATCH."""
    batch: list[bytes] = []
    async for k in keys:
        batch.append(k)
        if len(batch) >= SCAN_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


async def async_count_batches(batches: AsyncIterator[list[bytes]], limit: int) -> int:
    """How many keys the batches of a scan hold, counting at most ``limit``."""
    n = 0
    async for batch in batches:
        n += len(batch)
        if n >= limit:
            return limit
    return n
