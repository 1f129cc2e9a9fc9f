"""The example site, driven with Django's test client (and once as `python -m example_django`)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from cachekit_web.embedded import EmbeddedRedis

from .conftest import cache_conf

REPO = Path(__file__).resolve().parents[2]


def sidebar_time(html: bytes) -> str:
    match = re.search(rb"sidebar rendered at ([0-9:.]+)", html)
    assert match, html[:500]
    return match.group(1).decode()


def test_pages_are_cached(cache: Any) -> None:
    client = Client()
    start = time.monotonic()
    first = client.get("/")
    first_took = time.monotonic() - start
    assert first.status_code == 200
    assert cache.get("article-stats") == {"articles": 3, "views": 67}
    start = time.monotonic()
    second = client.get("/")
    assert time.monotonic() - start < first_took  # stats come from get_or_set's cache
    assert sidebar_time(second.content) == sidebar_time(first.content)  # fragment cached
    slow = client.get("/slow/")
    assert slow.status_code == 200 and slow["Cache-Status"] == "cachekit; fwd=miss; stored"
    start = time.monotonic()
    again = client.get("/slow/")
    assert time.monotonic() - start < 0.2  # the page sleeps 0.2 s when rendered
    assert again["Cache-Status"].startswith("cachekit; hit")
    # The same page, but for the line saying what the cache did (never stored).
    assert b"cache: miss, computed and stored" in slow.content
    assert b"cache: hit, served from Redis" in again.content
    assert again.content.split(b'<p id="cache-state">')[0] == \
        slow.content.split(b'<p id="cache-state">')[0]


def test_admin_health_page_for_staff(cache: Any) -> None:
    from django.contrib.auth import get_user_model

    user, _ = get_user_model().objects.get_or_create(username="example-admin", is_staff=True,
                                                     is_superuser=True)
    client = Client()
    assert client.get("/admin/cachekit/health/").status_code == 302
    client.force_login(user)
    index = client.get("/admin/")
    assert b"/admin/cachekit/health/" in index.content and b"Articles" in index.content
    page = client.get("/admin/cachekit/health/")
    assert page.status_code == 200 and b"<svg" in page.content


@pytest.mark.slow
def test_site_answers_200_with_redis_stopped(
        use_caches: Callable[..., Any], own_redis: EmbeddedRedis, namespace: str) -> None:
    use_caches({"default": cache_conf(own_redis.url, namespace, SOCKET_TIMEOUT=0.2,
                                      SOCKET_CONNECT_TIMEOUT=0.2)})
    client = Client()
    assert client.get("/slow/")["Cache-Status"] == "cachekit; fwd=miss; stored"
    own_redis.kill()
    start = time.monotonic()
    for _ in range(3):
        home = client.get("/")
        assert home.status_code == 200 and b"sidebar rendered at" in home.content
        slow = client.get("/slow/")
        assert slow.status_code == 200
        assert slow["Cache-Status"] == "cachekit; fwd=bypass; detail=unavailable"
        assert b"cache: bypass, Redis is down" in slow.content  # the page says so
    assert b"cache: bypass, Redis is down" in home.content
    assert time.monotonic() - start < 6
    assert re.search(rb"3 articles, 67 views", home.content)


def test_home_page_says_what_to_try(cache: Any) -> None:
    page = Client().get("/").content.decode()
    assert "Things to try" in page
    assert "Reload the" in page and 'href="/slow/"' in page and "Cache-Status" in page
    assert "Stop Redis and watch the site keep serving" in page
    assert 'href="/admin/cachekit/health/"' in page


def test_demo_database_lives_in_the_checkout() -> None:
    env = {k: v for k, v in os.environ.items() if k != "EXAMPLE_DJANGO_DB"}
    done = subprocess.run(
        [sys.executable, "-c", "from example_django import settings as s; "
         "print(s.DATABASES['default']['NAME'])"],
        cwd=REPO, env=env, capture_output=True, text=True, check=True, timeout=60)
    path = Path(done.stdout.strip())
    assert path.parent == REPO / "example_django" / ".data"  # a fresh clone, a fresh database
    ignored = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=REPO, check=False,
                             timeout=30)
    assert ignored.returncode == 0, "the demo database must be git-ignored"


def terminate_impatiently(proc: subprocess.Popen[str], signals: int = 5) -> str:
    """SIGTERM a demo several times in quick succession, as an impatient person would;
    return its remaining output."""
    for _ in range(signals):
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.01)
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=5)
    return out or ""


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_python_m_example_django_serves_on_an_embedded_redis(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CACHEKIT_", "DJANGO_")) and k != "REDIS_URL"}
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env.update(EXAMPLE_DJANGO_DB=str(tmp_path / "db.sqlite3"), EXAMPLE_SLOW_SECONDS="0.1",
               PYTHONUNBUFFERED="1", TMPDIR=str(tmp))
    proc = subprocess.Popen([sys.executable, "-m", "example_django"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        url = redis_port = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and url is None:
            line = proc.stdout.readline() if proc.stdout else ""
            if not line:
                break
            lines.append(line)
            if m := re.search(r"embedded redis-server on 127\.0\.0\.1:(\d+)", line):
                redis_port = int(m.group(1))
            if m := re.search(r"running at (http://127\.0\.0\.1:\d+/)", line):
                url = m.group(1)
        assert url and redis_port, "".join(lines)
        body = b""
        for _ in range(50):  # runserver binds shortly after printing
            try:
                with urllib.request.urlopen(url + "slow/", timeout=5) as response:
                    assert response.status == 200
                    assert response.headers["Cache-Status"].startswith("cachekit;")
                    body = response.read()
                    break
            except OSError:
                time.sleep(0.1)
        assert b"A slow page" in body
        assert (tmp_path / "db.sqlite3").exists()
        with urllib.request.urlopen(url + "slow/", timeout=5) as response:
            assert response.headers["Cache-Status"].startswith("cachekit; hit")
    finally:
        rest = terminate_impatiently(proc)  # repeated SIGTERMs during shutdown
    assert "Traceback" not in rest, rest
    assert proc.returncode == 0, rest
    assert redis_port is not None and not _port_open(redis_port)  # embedded redis stopped
    assert not list(tmp.glob("cachekit-redis-*")), "the embedded redis' directory was left"
