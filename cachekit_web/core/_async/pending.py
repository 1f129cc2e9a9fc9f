"""Applying remembered invalidations to a backend (the async source; sync is generated)."""

from __future__ import annotations

from collections.abc import Sequence

from ..backends import AsyncBackend

CHUNK = 1000


async def async_apply_invalidations(backend: AsyncBackend, prefix: str, keys: Sequence[str],
                                    clear: bool) -> None:
    """Clear the namespace if asked, then delete ``keys`` in chunks."""
    if clear:
        await backend.delete_prefix(prefix)
    for i in range(0, len(keys), CHUNK):
        await backend.delete_many(keys[i:i + CHUNK])
