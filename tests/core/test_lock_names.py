"""Recompute locks never share a Redis key with a user's value."""

from __future__ import annotations

import pytest
import redis

from cachekit_web import ConfigurationError, Settings

from .conftest import MakeClient


def test_a_user_key_named_like_a_lock_does_not_block_get_or_set(
    make_client: MakeClient, raw: redis.Redis
) -> None:
    c = make_client(LOCK_WAIT=0.3)
    assert c.set("a:lock", "user data")
    lock = c.backend.lock(c._lock_name(c.full_key("a")), 5)
    assert lock.acquire(True, 0)  # the lock's key is free although "a:lock" is set
    lock.release()
    assert c.fetch("a", lambda: "computed").status == "miss"
    assert c.get("a:lock") == "user data"
    assert c.metrics.snapshot()["errors_by_code"] == {}


@pytest.mark.parametrize("bad", ["a:b", "{ns}", "!ns", "with space", ""])
def test_namespace_charset_is_checked(bad: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings(NAMESPACE=bad).validate()
    assert info.value.code == "E042"
