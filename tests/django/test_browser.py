"""The Django admin health page (the same core renderer as Flask's) in headless Chromium.

The page is fetched through the admin as a signed-in staff user, then rendered by
Chromium with ``set_content`` (the admin's static CSS is not served here); the
screenshots land in ``test-artifacts/``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from cachekit_web.embedded import EmbeddedRedis

from ..flask.test_browser import CHROMIUM, browser, check_dashboard, pytestmark, traffic
from .conftest import cache_conf

__all__ = ["CHROMIUM", "browser", "pytestmark"]


def _staff_client() -> Client:
    user, _ = get_user_model().objects.get_or_create(username="browser-staff")
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


def _admin_html(client: Client) -> str:
    page = client.get("/admin/cachekit/health/")
    assert page.status_code == 200
    return str(page.content.decode())


@pytest.mark.parametrize("state", ["traffic", "redis-down"])
def test_django_admin_page_in_chromium(request: pytest.FixtureRequest,
                                       use_caches: Callable[..., Any],
                                       own_redis: EmbeddedRedis, namespace: str,
                                       state: str) -> None:
    cache = use_caches({"default": cache_conf(own_redis.url, namespace, SOCKET_TIMEOUT=0.2,
                                              SOCKET_CONNECT_TIMEOUT=0.2)})
    traffic(cache)
    if state == "redis-down":
        own_redis.stop()
        for i in range(8):
            cache.get(f"k{i}")
    html = _admin_html(_staff_client())
    browser = request.getfixturevalue("browser")  # after the ORM: playwright runs a loop
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.set_content(html)
    text = check_dashboard(page, f"django-health-{state}.png")
    if state == "redis-down":
        assert page.locator("#ck-status").inner_text() == "down"
        assert "Local view: this process only." in text
        assert page.locator("svg.ck-chart-requests line.ck-breaker-open").count() >= 1
    else:
        assert "Fleet: 1 live process" in text and "83.3%" in text
