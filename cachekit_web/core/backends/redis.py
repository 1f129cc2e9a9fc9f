"""Redis backend on redis-py: URL, TLS, unix socket; sync and asyncio.

The classes are written once in ``core/_async/redis.py`` (the sync ones are
generated from it); the error boundary and pool options are in ``common``.
"""

from __future__ import annotations

from .._async.redis import AsyncRedisBackend, AsyncTranslatedLock
from .._sync.redis import RedisBackend, TranslatedLock
from .common import translate, translated

__all__ = [
    "AsyncRedisBackend", "AsyncTranslatedLock", "RedisBackend", "TranslatedLock", "translate",
    "translated",
]
