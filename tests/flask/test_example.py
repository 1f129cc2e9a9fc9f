"""The example app works end to end on the test Redis."""

from __future__ import annotations

import os
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
    assert first.data == second.data and cold >= 0.2 and warm < 0.1
    assert second.headers["Cache-Status"].startswith("cachekit; hit")
    assert c.get("/fib/30").get_json() == {"n": 30, "fibonacci": 832040}
    assert b"cached for 20 seconds" in c.get("/").data
    assert c.get("/_cachekit/health/").status_code == 200  # test client is 127.0.0.1
    assert c.get("/_cachekit/health/", environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code \
        == 403


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
                         capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "", "the embedded redis-server outlived the example"
