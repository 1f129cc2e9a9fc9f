"""Sentinel-managed primaries and read replicas, sync and asyncio.

The classes are written once in ``core/_async/sentinel.py`` (the sync ones are
generated from it); what they share without I/O is in ``topology``.
"""

from __future__ import annotations

from .._async.sentinel import AsyncReplicatedRedisBackend, AsyncSentinelBackend
from .._sync.sentinel import ReplicatedRedisBackend, SentinelBackend
from .topology import NoSentinelAnswered

__all__ = [
    "AsyncReplicatedRedisBackend", "AsyncSentinelBackend", "NoSentinelAnswered",
    "ReplicatedRedisBackend", "SentinelBackend",
]
