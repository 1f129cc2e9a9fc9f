"""CacheClient and AsyncCacheClient: where keys, codec, breaker, backend and metrics meet.

Failure semantics (fail open): when Redis is down, hung or the breaker is
open, reads miss, writes are dropped (and their keys remembered for deletion
on recovery, so a stale value is never served after an outage), deletes are
remembered and replayed. Strict mode raises the typed error instead.

Both clients are written once, in ``core/_async`` (client.py and its mixins); the
sync one is generated from it (``make generate``). Their shared non-I/O half is
``engine``; the values they answer besides cached ones are in ``results``.
"""

from __future__ import annotations

from ._async.client import AsyncCacheClient
from ._async.lock import AsyncCacheLock
from ._sync.client import CacheClient
from ._sync.lock import CacheLock
from .backends import make_async_backend, make_backend
from .results import (
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
    "AsyncCacheLock",
    "CacheClient",
    "CacheLock",
    "Deferred",
    "Expiring",
    "Result",
    "Status",
    "Unavailable",
    "make_async_backend",
    "make_backend",
]
