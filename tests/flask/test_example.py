"""The example app works end to end on the test Redis."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from cachekit_web.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_example_app_pages(redis_url: str, namespace: str) -> None:
    from example_flask import create_app

    app = create_app({"CACHEKIT_REDIS_URL": redis_url, "CACHEKIT_NAMESPACE": namespace,
                      "SLOW_SECONDS": 0.2})
    c = app.test_client()
    start = time.monotonic()
    first = c.get("/slow")
    cold = time.monotonic() - start
    start = time.monotonic()
    second = c.get("/slow")
    warm = time.monotonic() - start
    assert first.data.splitlines()[0] == second.data.splitlines()[0]
    assert cold >= 0.2 and warm < 0.1
    assert first.data.endswith(b"cache: miss, computed and stored\n")
    assert second.data.endswith(b"cache: hit, served from Redis\n")
    assert second.headers["Cache-Status"].startswith("cachekit; hit")
    fib = c.get("/fib/30").get_json()
    assert fib["fibonacci"] == 832040 and fib["cache"] == "cache: on, circuit breaker closed"
    assert b"cached for 20 seconds" in c.get("/").data
    assert c.get("/_cachekit/health/").status_code == 200  # test client is 127.0.0.1
    assert c.get("/_cachekit/health/", environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code \
        == 403


def test_home_page_says_what_to_try(redis_url: str, namespace: str) -> None:
    from example_flask import create_app

    app = create_app({"CACHEKIT_REDIS_URL": redis_url, "CACHEKIT_NAMESPACE": namespace,
                      "EXAMPLE_REDIS_STOP": "kill 4242"})
    page = app.test_client().get("/").get_data(as_text=True)
    assert "Things to try" in page
    assert "Reload the" in page and 'href="/slow"' in page and "Cache-Status" in page
    assert "Stop Redis and watch the site keep serving" in page and "kill 4242" in page
    assert 'href="/_cachekit/health/"' in page


@pytest.mark.slow
def test_busy_port_5000_and_repeated_sigterm(tmp_path: Path) -> None:
    """Without PORT the demo picks a free port (5000 may be taken); SIGTERM sent again and
    again during shutdown prints no traceback and leaves no temp directory."""
    blocker = socket.socket()
    try:
        blocker.bind(("127.0.0.1", 5000))
        blocker.listen(1)
    except OSError:
        pass  # 5000 is already taken by someone else: busy either way
    env = {k: v for k, v in os.environ.items() if not k.startswith("CACHEKIT_") and k != "PORT"}
    env.update(PYTHONUNBUFFERED="1", TMPDIR=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "example_flask"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]
        match = re.search(r"on http://127\.0\.0\.1:(\d+)/", lines[1])
        assert match, lines
        port = int(match.group(1))
        assert port != 5000
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    assert b"Things to try" in r.read()
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        blocker.close()
        for _ in range(5):
            if proc.poll() is not None:
                break
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.01)
        try:
            rest, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            rest, _ = proc.communicate(timeout=5)
    assert "Traceback" not in rest, rest
    assert proc.returncode == 0, rest
    assert not list(tmp_path.glob("cachekit-redis-*")), "the embedded redis' directory was left"


@pytest.mark.slow
def test_python_m_example_flask_starts_embedded_redis() -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CACHEKIT_")}
    env.update(PORT=str(port), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "example_flask"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]
        assert lines[0].startswith("embedded redis-server on redis://127.0.0.1:"), lines
        assert f"http://127.0.0.1:{port}/" in lines[1]
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(10)
    redis_port = lines[0].rsplit(":", 1)[1].split("/")[0]
    out = subprocess.run(["pgrep", "-f", f"redis-server 127.0.0.1:{redis_port}"],
                         capture_output=True, text=True, check=False, timeout=30)
    assert out.stdout.strip() == "", "the embedded redis-server outlived the example"


def _get(url: str, timeout: float = 20) -> tuple[float, int, dict[str, str], bytes]:
    start = time.monotonic()
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body = r.read()
        return time.monotonic() - start, r.status, dict(r.headers), body


@pytest.mark.slow
def test_demo_stays_fast_with_its_redis_killed(tmp_path: Path) -> None:
    """`python -m example_flask`, its redis-server killed (SIGKILL, a real process): /fib/60,
    linked from the home page, answers within a bound (naive recursion never returned), the
    pages say the cache is bypassed, log lines carry timestamps, and the printed restart
    command brings Redis back."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CACHEKIT_")}
    env.update(PORT=str(port), PYTHONUNBUFFERED="1", TMPDIR=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "example_flask"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
        text = "".join(lines)
        redis_pid = re.search(r"redis-server on redis://\S+ \(pid (\d+)\)", text)
        stop = re.search(r"stop Redis: +kill -USR1 (\d+)", text)
        restart = re.search(r"restart Redis: +kill -USR2 (\d+)", text)
        assert redis_pid and stop and restart, text
        assert int(stop.group(1)) == int(restart.group(1)) == proc.pid
        deadline = time.monotonic() + 15
        while True:
            try:
                _get(base + "/")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        took, _, _, body = _get(base + "/fib/60")
        assert b'"fibonacci": 1548008755920' in body.replace(b'":1548', b'": 1548')
        os.kill(int(redis_pid.group(1)), signal.SIGKILL)
        for n in (60, 59, 30, 60):
            took, status, _, body = _get(f"{base}/fib/{n}", timeout=20)
            assert status == 200 and took < 5, (n, took)
        assert b"bypass" in body and b"Redis is down" in body, body
        _, _, headers, slow = _get(base + "/slow")
        assert "fwd=bypass" in headers["Cache-Status"]
        assert b"cache: bypass, Redis is down" in slow
        _, _, _, home = _get(base + "/")
        assert b"cache: bypass, Redis is down" in home
        os.kill(proc.pid, signal.SIGUSR2)  # the printed restart command
        deadline = time.monotonic() + 20
        while b"cache: bypass" in _get(base + "/slow")[3]:
            assert time.monotonic() < deadline, "Redis did not come back"
            time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rest, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            rest, _ = proc.communicate(timeout=5)
    log = text + rest
    assert "Traceback" not in log, log
    stamped = [line for line in log.splitlines()
               if re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", line)]
    assert any("E010" in line or "breaker" in line for line in stamped), log
    assert any("GET /fib/60" in line for line in stamped), log
