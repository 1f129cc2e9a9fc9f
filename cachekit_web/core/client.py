"""CacheClient and AsyncCacheClient: where keys, codec, breaker, backend and metrics meet.

Failure semantics (fail open): when Redis is down, hung or the breaker is
open, reads miss, writes are dropped (and their keys remembered for deletion
on recovery, so a stale value is never served after an outage), deletes are
remembered and replayed. Strict mode raises the typed error instead.

Both clients are written once, in ``core/_async/client.py``; the sync one is
generated from it (``make generate``). Shared non-I/O parts are in ``clientbase``.
"""

from __future__ import annotations

from ._async.client import AsyncCacheClient
from ._sync.client import CacheClient
from .backends import make_async_backend, make_backend
from .clientbase import (
    DEFAULT,
    DEFERRED,
    UNAVAILABLE,
    Deferred,
    Expiring,
    Result,
    Status,
    Unavailable,
)

__all__ = [
    "DEFAULT",
    "DEFERRED",
    "UNAVAILABLE",
    "AsyncCacheClient",
    "CacheClient",
    "Deferred",
    "Expiring",
    "Result",
    "Status",
    "Unavailable",
    "make_async_backend",
    "make_backend",
]
