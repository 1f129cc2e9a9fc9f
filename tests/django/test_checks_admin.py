"""System checks (manage.py check) and the staff-only admin health page and JSON endpoint."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client

from cachekit_web.django.checks import check_configuration, check_connectivity
from cachekit_web.embedded import EmbeddedRedis, free_port

from .conftest import BACKEND, cache_conf


def ids(messages: list[Any]) -> list[str]:
    return [m.id for m in messages]


def test_checks_pass_for_a_good_configuration(cache: Any) -> None:
    assert check_configuration() == []
    assert check_connectivity() == []


def test_unknown_option_is_e041_with_did_you_mean(
        use_caches: Callable[..., Any], redis_url: str) -> None:
    use_caches({"default": cache_conf(redis_url, "x", MASTERKEY="ab" * 32)})
    [message] = check_configuration()
    assert message.id == "cachekit.E041" and message.is_serious()
    assert "did you mean MASTER_KEY" in message.msg
    out = io.StringIO()
    with pytest.raises(SystemCheckError) as info:
        call_command("check", stdout=out, stderr=out)
    assert "cachekit.E041" in str(info.value)


def test_bad_master_key_is_e002_and_never_echoed(
        use_caches: Callable[..., Any], redis_url: str) -> None:
    use_caches({"default": cache_conf(redis_url, "x", MASTER_KEY="tooshort-secret-zz")})
    [message] = check_configuration()
    assert message.id == "cachekit.E002" and message.is_serious()
    assert "tooshort-secret-zz" not in message.msg + str(message.hint)


def test_missing_url_is_e040(use_caches: Callable[..., Any]) -> None:
    use_caches({"default": {"BACKEND": BACKEND}})
    assert ids(check_configuration()) == ["cachekit.E040"]


def test_unreachable_redis_is_a_warning_with_its_code(
        use_caches: Callable[..., Any], namespace: str) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    use_caches({"default": cache_conf(url, namespace, SOCKET_CONNECT_TIMEOUT=0.2)})
    [message] = check_connectivity()
    assert message.id == "cachekit.E010" and not message.is_serious()
    assert "unreachable" in message.msg
    call_command("check", stdout=io.StringIO(), stderr=io.StringIO())  # warnings do not fail


def test_no_secret_key_and_no_master_key_warns(
        use_caches: Callable[..., Any], redis_url: str, namespace: str) -> None:
    use_caches({"default": cache_conf(redis_url, namespace),
                "keyed": cache_conf(redis_url, namespace, MASTER_KEY=bytes(range(32)).hex())},
               SECRET_KEY="")
    messages = check_configuration()
    assert ids(messages) == ["cachekit.E020"]
    assert messages[0].obj == "default" and not messages[0].is_serious()


@pytest.fixture()
def users() -> dict[str, Any]:
    model = get_user_model()
    out = {}
    for name, staff in (("staff", True), ("visitor", False)):
        user, _ = model.objects.get_or_create(username=name)
        user.is_staff = staff
        user.set_password("pw")
        user.save()
        out[name] = user
    return out


def test_health_page_permissions(cache: Any, users: dict[str, Any]) -> None:
    anonymous = Client()
    for url in ("/admin/cachekit/health/", "/admin/cachekit/health.json",
                "/cache/health/", "/admin/cachekit/errors/E010/"):
        response = anonymous.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/?next=")
    visitor = Client()  # signed in, not staff: the admin site's own answer, its login page
    visitor.force_login(users["visitor"])
    for url in ("/admin/cachekit/health/", "/admin/cachekit/health.json", "/cache/health.json"):
        response = visitor.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/admin/login/?next="), url


def test_health_page_shows_the_report(cache: Any, users: dict[str, Any]) -> None:
    cache.set("a", 1)
    cache.get("a")
    cache.get("missing")
    cache.client.metrics.error("E010")  # as if one call had failed
    client = Client()
    client.force_login(users["staff"])
    page = client.get("/admin/cachekit/health/")
    assert page.status_code == 200
    html = page.content.decode()
    for needle in ("ck-status", "<svg", "ck-series-hits", "ck-series-misses", "ck-series-errors",
                   "Circuit breaker", "redis_version", "used_memory", "hit rate", "50.0%",
                   'href="/admin/cachekit/errors/E010/"', 'href="/admin/cachekit/health.json'):
        assert needle in html, needle
    dashboard = html.split('id="cachekit-dashboard"', 1)[1]
    assert "<script" not in dashboard and "<img" not in dashboard and "src=" not in dashboard
    explained = client.get("/admin/cachekit/errors/E010/")
    assert explained.status_code == 200 and b"Cannot connect to Redis" in explained.content
    assert client.get("/admin/cachekit/errors/E999/").status_code == 404
    data = client.get("/admin/cachekit/health.json").json()
    # One error among a handful of operations is above the 5% degraded threshold.
    assert data["status"] == "degraded" and data["alias"] == "default"
    assert data["metrics"]["totals"]["hits"] == 1
    assert data["metrics"]["errors_by_code"] == {"E010": 1}
    assert len(data["metrics"]["series"]) == 60
    index = client.get("/admin/")
    assert b'href="/admin/cachekit/health/"' in index.content


@pytest.mark.parametrize(("options", "query", "expected"), [
    ({}, "", 200),  # a cache outage keeps a healthy site in a load balancer's rotation
    ({}, "?strict=1", 503),  # unless the probe asks for it
    ({"HEALTH_DOWN_STATUS": 503}, "", 503),  # or the operator does
])
def test_health_json_when_redis_is_down(
        use_caches: Callable[..., Any], own_redis: EmbeddedRedis, namespace: str,
        users: dict[str, Any], options: dict[str, Any], query: str, expected: int) -> None:
    use_caches({"default": cache_conf(own_redis.url, namespace, SOCKET_TIMEOUT=0.2,
                                      SOCKET_CONNECT_TIMEOUT=0.2, **options)})
    own_redis.kill()
    client = Client()
    client.force_login(users["staff"])
    response = client.get("/cache/health.json" + query)
    assert response.status_code == expected
    assert response.json()["status"] == "down"
    assert response.json()["error"]["code"] in ("E010", "E011")
    page = client.get("/cache/health/")
    assert page.status_code == 200 and b"down" in page.content


def test_django_health_check_integration(
        use_caches: Callable[..., Any], own_redis: EmbeddedRedis, namespace: str) -> None:
    base = pytest.importorskip("health_check.base")  # optional; 4.x API (Django >= 5.2)
    if not hasattr(base, "HealthCheck"):
        pytest.skip("django-health-check 4.x is not installed")
    import asyncio

    from cachekit_web.django.healthcheck import CachekitHealthCheck

    use_caches({"default": cache_conf(own_redis.url, namespace, SOCKET_TIMEOUT=0.2,
                                      SOCKET_CONNECT_TIMEOUT=0.2)})
    check = CachekitHealthCheck(alias="default")
    assert asyncio.run(check.get_result()).error is None
    own_redis.kill()
    error = asyncio.run(check.get_result()).error
    assert error is not None and "Unavailable" in str(error) and "[E010]" in str(error)
