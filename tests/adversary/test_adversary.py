"""The adversary itself: it forges and moves frames, but never replays a key's own
earlier frame (a replay before the sealed expiry is accepted by design, docs/security.md)."""

from __future__ import annotations

import uuid

from cachekit_web import CacheClient
from cachekit_web.embedded import EmbeddedRedis

from ..core.conftest import SIGNING
from .conftest import Adversary


def test_copies_never_bring_a_keys_own_frame_back(hostile_redis: EmbeddedRedis) -> None:
    ns = "adv-" + uuid.uuid4().hex[:8]
    client = CacheClient.from_url(hostile_redis.url, NAMESPACE=ns, SIGNING_KEY=SIGNING)
    adversary = Adversary(hostile_redis.url, ns)  # not started: one move at a time
    try:
        assert client.set("user:1", [3, 4], 60)
        assert adversary.copy(f"{ns}:user:1", f"{ns}:a")  # user:1's frame under a
        assert client.set("user:1", "text", 60)
        adversary.copy(f"{ns}:a", f"{ns}:user:1")  # a's frame back: user:1's older one
        assert client.get("user:1") == "text"
    finally:
        adversary.stop()
        client.close()
