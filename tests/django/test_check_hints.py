"""System-check hints name the Redis URL the cache actually uses (redacted)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cachekit_web.django.checks import check_connectivity
from cachekit_web.embedded import free_port

from .conftest import cache_conf


def test_unreachable_redis_hint_names_the_location(
        use_caches: Callable[..., Any], namespace: str) -> None:
    port = free_port()  # nothing listens there
    url = f"redis://:hunter2-secret@127.0.0.1:{port}/0"
    use_caches({"default": cache_conf(url, namespace, SOCKET_CONNECT_TIMEOUT=0.2)})
    [message] = check_connectivity()
    assert message.id == "cachekit.E010"
    assert f"redis-cli -u 'redis://:***@127.0.0.1:{port}/0' ping" in message.hint
    assert "$CACHEKIT_REDIS_URL" not in message.hint and "hunter2" not in message.hint
