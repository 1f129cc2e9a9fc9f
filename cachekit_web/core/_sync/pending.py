# GENERATED from cachekit_web/core/_async/pending.py by scripts/generate_sync.py.
# Do not edit: change the async source, then run `make generate`.
"""Applying remembered invalidations to a backend (the async source; sync is generated)."""

from __future__ import annotations

from collections.abc import Sequence

from ..backends import Backend

CHUNK = 1000


def apply_invalidations(backend: Backend, prefix: str, keys: Sequence[str],
                                    clear: bool) -> None:
    """Clear the namespace if asked, then delete ``keys`` in chunks."""
    if clear:
        backend.delete_prefix(prefix)
    for i in range(0, len(keys), CHUNK):
        backend.delete_many(keys[i:i + CHUNK])
