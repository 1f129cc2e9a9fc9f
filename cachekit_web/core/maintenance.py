"""Operator tasks on one namespace (count, clear in batches) for the CLIs of both adapters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .client import CacheClient

_BATCH = 500


def _redis(client: CacheClient) -> Any:
    # Only the Redis backend exposes a SCAN-able redis-py client; others clear in one call.
    return getattr(client.backend, "client", None) if hasattr(client.backend, "pool") else None


def count_keys(client: CacheClient, limit: int = 10_000_000) -> int:
    """How many keys this client's namespace holds (SCAN, never KEYS), up to ``limit``."""
    from .backends.common import _escape_glob, translated

    redis_client = _redis(client)
    prefix = client.full_key("x")[:-1]
    if redis_client is None:
        info = client.backend.info()
        return int(info.get("keys", 0))
    n = 0
    with translated():
        for _ in redis_client.scan_iter(match=_escape_glob(prefix) + "*", count=1000):
            n += 1
            if n >= limit:
                break
    return n


def clear_in_batches(client: CacheClient, batch: int = _BATCH) -> Iterator[int]:
    """Delete this namespace's keys, yielding how many each batch removed."""
    from .backends.common import _escape_glob, translated

    redis_client = _redis(client)
    prefix = client.full_key("x")[:-1]
    if redis_client is None:
        yield client.backend.delete_prefix(prefix)
        return
    with translated():
        keys: list[bytes] = []
        for k in redis_client.scan_iter(match=_escape_glob(prefix) + "*", count=1000):
            keys.append(k)
            if len(keys) >= batch:
                yield int(redis_client.unlink(*keys))
                keys = []
        if keys:
            yield int(redis_client.unlink(*keys))
