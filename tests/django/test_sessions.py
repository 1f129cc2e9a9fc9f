"""Django sessions on CachekitCache (backends.cache and cached_db): a real admin login and
session round trip through the test client, against the real redis-server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from .conftest import cache_conf


@pytest.mark.parametrize("engine", ["django.contrib.sessions.backends.cache",
                                    "django.contrib.sessions.backends.cached_db"])
def test_admin_login_round_trip_with_sessions_on_the_cache(
        use_caches: Callable[..., Any], redis_url: str, namespace: str, engine: str) -> None:
    cache = use_caches({"default": cache_conf(redis_url, namespace)}, SESSION_ENGINE=engine,
                       SESSION_CACHE_ALIAS="default")
    cache.clear()
    name = f"staff-{engine.rsplit('.', 1)[1]}"
    User.objects.filter(username=name).delete()
    User.objects.create_superuser(name, f"{name}@example.invalid", "pw-for-tests-only")
    client = Client()
    assert client.get("/admin/").status_code == 302  # not logged in: to the login page
    response = client.post("/admin/login/?next=/admin/",
                           {"username": name, "password": "pw-for-tests-only"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    session_key = client.cookies["sessionid"].value
    stored = cache.keys("*session*")
    assert len(stored) == 1 and stored[0].endswith(session_key)  # the session is in Redis
    assert client.get("/admin/").status_code == 200  # the session is read back
    # The entry is sealed: a tampered session is a miss (logged out), never trusted; the
    # cached_db engine then reads the database copy.
    redis_key = cache.client.full_key(cache.make_key(stored[0]))
    raw = cache.get_client().get(redis_key)
    cache.get_client().set(redis_key, raw[:-1] + bytes([raw[-1] ^ 1]), keepttl=True)
    expected = 200 if engine.endswith("cached_db") else 302
    assert client.get("/admin/").status_code == expected
    if expected == 302:
        client.post("/admin/login/", {"username": name, "password": "pw-for-tests-only"})
        assert client.get("/admin/").status_code == 200
    client.post("/admin/logout/")
    assert cache.keys("*session*") == []
    assert client.get("/admin/").status_code == 302
