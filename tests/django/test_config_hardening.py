"""The Django adapter under bad configuration and locked-down admin sites."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client, override_settings

from cachekit_web.core.errors import InvalidKeyError
from cachekit_web.django.checks import check_configuration

from .conftest import cache_conf

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "hunter2/topsecret"


@pytest.fixture()
def people() -> dict[str, Any]:
    model = get_user_model()
    out = {}
    for name, superuser in (("plainstaff", False), ("root", True)):
        user, _ = model.objects.get_or_create(username=name)
        user.is_staff = True
        user.is_superuser = superuser
        user.save()
        out[name] = user
    return out


@override_settings(ROOT_URLCONF="tests.django.urls_superuser")
def test_health_page_obeys_the_admin_sites_permission(cache: Any, people: dict[str, Any]) -> None:
    staff = Client()
    staff.force_login(people["plainstaff"])
    for url in ("/superadmin/cachekit/health/", "/superadmin/cachekit/health.json",
                "/superadmin/cachekit/errors/E010/"):
        response = staff.get(url)
        assert response.status_code in (302, 403), url
        if response.status_code == 302:
            assert response["Location"].startswith("/superadmin/login/"), url
        assert b"hit rate" not in response.content and b"metrics" not in response.content
    root = Client()
    root.force_login(people["root"])
    assert root.get("/superadmin/cachekit/health/").status_code == 200
    data = root.get("/superadmin/cachekit/health.json")
    assert data.status_code == 200 and data.json()["alias"] == "default"
    assert root.get("/superadmin/cachekit/errors/E010/").status_code == 200
    # The default site (is_staff) still admits ordinary staff.
    assert staff.get("/admin/cachekit/health/").status_code == 200


def test_unparseable_location_is_a_check_message(
        use_caches: Callable[..., Any], redis_url: str, namespace: str) -> None:
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    use_caches({"default": cache_conf(url, namespace)})
    messages = check_configuration()
    assert [m.id for m in messages] == ["cachekit.E042"]
    out = io.StringIO()
    with pytest.raises(SystemCheckError) as info:
        call_command("check", stdout=out, stderr=out)
    shown = str(info.value) + out.getvalue() + messages[0].msg + str(messages[0].hint)
    assert "cachekit.E042" in shown
    from django.core.cache import caches

    error = caches["default"].configuration_error
    assert error is not None and error.code == "E042"
    texts = [shown, "".join(traceback.format_exception(error)), repr(caches["default"])]
    seen: list[BaseException] = []
    item: BaseException | None = error
    while item is not None:
        seen.append(item)
        texts += [str(item), repr(item)]
        assert item.__cause__ is None
        item = item.__context__
    assert len(seen) == 1
    for text in texts:
        for piece in ("hunter2", "topsecret"):
            assert piece not in text


def test_surrogate_key_is_e023_through_the_backend(cache: Any) -> None:
    for call in (lambda: cache.get("a\udc80"), lambda: cache.set("a\udc80", 1),
                 lambda: cache.delete("\ud800")):
        with pytest.raises(InvalidKeyError) as info:
            call()
        assert info.value.code == "E023"


def test_weak_master_key_fails_the_check(
        use_caches: Callable[..., Any], redis_url: str, namespace: str) -> None:
    use_caches({"default": cache_conf(redis_url, namespace, MASTER_KEY="00" * 32)})
    [message] = check_configuration()
    assert message.id == "cachekit.E002" and message.is_serious() and "weak" in message.msg
    use_caches({"default": cache_conf(redis_url, namespace, SIGNING_KEY="x")})
    [message] = check_configuration()
    assert message.id == "cachekit.E004" and message.is_serious()


API_ONLY_SETTINGS = """
SECRET_KEY = "api-only-test-secret-key-0123456789"
INSTALLED_APPS = ["cachekit_web.django"]
CACHES = {"default": {"BACKEND": "cachekit_web.django.CachekitCache",
                      "LOCATION": %(url)r, "OPTIONS": {"NAMESPACE": %(namespace)r}}}
ROOT_URLCONF = "api_only_urls"
USE_TZ = True
"""

API_ONLY_URLS = """
from django.urls import include, path
urlpatterns = [path("cache/", include("cachekit_web.django.urls"))]
"""

API_ONLY_SCRIPT = """
import django
django.setup()
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client
cache.set("k", {"v": 1})
assert cache.get("k") == {"v": 1}, cache.get("k")
call_command("check")
status = Client().get("/cache/health.json").status_code
print("OK", status)
"""


def test_api_only_project_without_auth_or_admin(tmp_path: Path, redis_url: str,
                                                namespace: str) -> None:
    (tmp_path / "api_only_settings.py").write_text(
        API_ONLY_SETTINGS % {"url": redis_url, "namespace": namespace})
    (tmp_path / "api_only_urls.py").write_text(API_ONLY_URLS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CACHEKIT_")}
    env.update(DJANGO_SETTINGS_MODULE="api_only_settings",
               PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(API_ONLY_SCRIPT)], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "System check identified no issues" in done.stdout
    # Without auth there is nobody to admit: the health data is never served.
    assert done.stdout.splitlines()[-1] == "OK 404", done.stdout
