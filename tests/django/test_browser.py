"""The Django admin health page (the same core renderer as Flask's) in headless Chromium.

Chromium loads the page from a live server (the admin's own CSS included) as a
signed-in staff user; the screenshots land in ``test-artifacts/``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from django.contrib.auth import get_user_model
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.handlers.wsgi import WSGIHandler
from django.test import Client

from cachekit_web.embedded import EmbeddedRedis

from ..flask.test_browser import (
    CHROMIUM,
    browser,
    check_dashboard,
    check_outages,
    plant_outages,
    pytestmark,
    traffic,
)
from .conftest import cache_conf

__all__ = ["CHROMIUM", "browser", "pytestmark"]


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:  # keep the test output readable
        pass


@pytest.fixture()
def live_server() -> Iterator[str]:
    """This Django project served over HTTP on a free loopback port, static files too."""
    server: WSGIServer = make_server("127.0.0.1", 0, StaticFilesHandler(WSGIHandler()),
                                     handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _staff_session() -> str:
    """A signed-in staff user's session id (made through Django's own login)."""
    user, _ = get_user_model().objects.get_or_create(username="browser-staff")
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    assert client.get("/admin/cachekit/health/").status_code == 200
    return str(client.cookies["sessionid"].value)


@pytest.mark.parametrize("state", ["traffic", "redis-down"])
def test_django_admin_page_in_chromium(request: pytest.FixtureRequest,
                                       use_caches: Callable[..., Any],
                                       own_redis: EmbeddedRedis, namespace: str,
                                       live_server: str, state: str) -> None:
    cache = use_caches({"default": cache_conf(own_redis.url, namespace, SOCKET_TIMEOUT=0.2,
                                              SOCKET_CONNECT_TIMEOUT=0.2)})
    traffic(cache)
    if state == "redis-down":
        own_redis.stop()
        for i in range(8):
            cache.get(f"k{i}")
    session = _staff_session()
    browser = request.getfixturevalue("browser")  # after the ORM: playwright runs a loop
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.add_cookies([{"name": "sessionid", "value": session, "url": live_server}])
    page = context.new_page()
    response = page.goto(f"{live_server}/admin/cachekit/health/")
    assert response is not None and response.status == 200
    # The admin's own stylesheet was served and applied (a live page, not pasted HTML).
    assert page.evaluate("getComputedStyle(document.querySelector('#header')).display") != ""
    assert page.locator("link[href*='admin/css/base.css']").count() == 1
    text = check_dashboard(page, f"django-health-{state}.png")
    if state == "redis-down":
        assert page.locator("#ck-status").inner_text() == "down"
        assert "Local view: this process only." in text
        assert page.locator("svg.ck-chart-requests rect.ck-outage").count() >= 1
    else:
        assert "Fleet: 1 live process" in text and "83.3%" in text


def test_django_admin_page_with_a_flapping_outage(request: pytest.FixtureRequest,
                                                  use_caches: Callable[..., Any],
                                                  own_redis: EmbeddedRedis, namespace: str,
                                                  live_server: str) -> None:
    cache = use_caches({"default": cache_conf(own_redis.url, namespace)})
    traffic(cache)
    spans = plant_outages(cache.client.breaker)
    session = _staff_session()
    browser = request.getfixturevalue("browser")  # after the ORM: playwright runs a loop
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_cookies([{"name": "sessionid", "value": session, "url": live_server}])
    page = context.new_page()
    response = page.goto(f"{live_server}/admin/cachekit/health/")
    assert response is not None and response.status == 200
    check_outages(page, spans, "django-health-outages.png")
