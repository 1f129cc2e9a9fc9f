"""`flask cachekit doctor|explain|stats|clear`."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from flask import Flask

from cachekit_web.core.errors import REGISTRY
from cachekit_web.flask import Cache
from cachekit_web.flask.cli import PROGRESS_THRESHOLD

from .conftest import AppFactory


def test_doctor_and_explain(make_app: AppFactory) -> None:
    app, _ = make_app()
    runner = app.test_cli_runner()
    out = runner.invoke(args=["cachekit", "doctor"])
    assert out.exit_code == 0, out.output
    assert "all checks passed" in out.output and "HMAC-signed" in out.output
    assert "s3cr3t-flask-key" not in out.output
    out = runner.invoke(args=["cachekit", "explain", "E030"])
    assert out.exit_code == 0 and "E030" in out.output and "breaker" in out.output.lower()
    assert runner.invoke(args=["cachekit", "explain", "E999"]).exit_code == 2


def test_doctor_fails_with_code_when_redis_is_unreachable(make_app: AppFactory) -> None:
    app, _ = make_app(CACHEKIT_REDIS_URL="redis://127.0.0.1:1/0",
                      CACHEKIT_SOCKET_CONNECT_TIMEOUT=0.2)
    out = app.test_cli_runner().invoke(args=["cachekit", "doctor"])
    assert out.exit_code == 1 and "FAIL" in out.output and "E01" in out.output


def test_stats(app_cache: tuple[Flask, Cache]) -> None:
    app, cache = app_cache
    cache.set("a", 1)
    cache.get("a")
    out = app.test_cli_runner().invoke(args=["cachekit", "stats"])
    assert out.exit_code == 0
    assert "hit rate:   100.0%" in out.output and "keys:       1" in out.output
    out = app.test_cli_runner().invoke(args=["cachekit", "stats", "--json"])
    assert '"status"' in out.output


def test_clear_asks_and_touches_only_this_namespace(make_app: AppFactory) -> None:
    app, cache = make_app()
    other_app, other = make_app(CACHEKIT_NAMESPACE="t-cli-other")
    with other_app.app_context():
        other.set("keep", 1)
    with app.app_context():
        cache.set_many({f"k{i}": i for i in range(10)})
    runner = app.test_cli_runner()
    refused = runner.invoke(args=["cachekit", "clear"], input="n\n")
    assert refused.exit_code == 1 and "Delete 10 keys" in refused.output
    done = runner.invoke(args=["cachekit", "clear"], input="y\n")
    assert done.exit_code == 0 and "removed 10 keys" in done.output
    with app.app_context():
        assert cache.get("k1") is None
    with other_app.app_context():
        assert other.get("keep") == 1
        other.clear()


def test_clear_large_namespace_shows_progress(app_cache: tuple[Flask, Cache]) -> None:
    app, cache = app_cache
    n = PROGRESS_THRESHOLD + 500
    for start in range(0, n, 500):
        cache.set_many({f"k{i}": i for i in range(start, min(n, start + 500))})
    out = app.test_cli_runner().invoke(args=["cachekit", "clear", "--yes"])
    assert out.exit_code == 0 and f"removed {n} keys" in out.output
    assert "clearing" in out.output


def test_stats_adds_up_the_fleet_and_says_when_it_is_local(make_app: AppFactory,
                                                          redis_url: str,
                                                          namespace: str) -> None:
    from ..core.test_fleet import _run_workers

    _run_workers(redis_url, namespace, [3])  # another process with traffic (MASTER_KEY A)
    from ..core.conftest import KEY_A

    app, _ = make_app(CACHEKIT_MASTER_KEY=KEY_A)
    out = app.test_cli_runner().invoke(args=["cachekit", "stats"])
    assert out.exit_code == 0, out.output
    assert "fleet of 2 live processes" in out.output and "hits=3" in out.output
    assert "hits=3" in out.output and "sets=3" in out.output  # the CLI no longer shows zeros
    down, _ = make_app(CACHEKIT_REDIS_URL="redis://127.0.0.1:1/0",
                       CACHEKIT_SOCKET_CONNECT_TIMEOUT=0.2)
    out = down.test_cli_runner().invoke(args=["cachekit", "stats"])
    assert "LOCAL, this process only" in out.output and "E01" in out.output


def _flask(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """`flask --app app ...` in a fresh process whose environment names no Redis URL."""
    (tmp_path / "app.py").write_text(textwrap.dedent("""
        from flask import Flask
        from cachekit_web.flask import Cache

        app = Flask(__name__)
        app.config["SECRET_KEY"] = "an-app-secret-key-for-tests"
        cache = Cache(app)
    """))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CACHEKIT_", "CACHE_", "FLASK_")) and k != "REDIS_URL"}
    env.update(extra)
    return subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
                          check=False)


def test_help_works_without_a_redis_url(tmp_path: Path) -> None:
    done = _flask(tmp_path, "cachekit", "--help")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "doctor" in done.stdout and "Traceback" not in done.stderr


def test_doctor_reports_e040_without_a_traceback(tmp_path: Path) -> None:
    done = _flask(tmp_path, "cachekit", "doctor")
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert "[E040]" in out and REGISTRY["E040"].fix in out, out
    assert "Traceback" not in out


def test_explain_works_without_a_redis_url(tmp_path: Path) -> None:
    done = _flask(tmp_path, "cachekit", "explain", "E040")
    assert done.returncode == 0 and done.stdout.startswith("E040"), done.stdout + done.stderr



def test_the_flask_command_runs_the_apps_own_group(tmp_path: Path, redis_url: str) -> None:
    done = _flask(tmp_path, "cachekit", "doctor", CACHEKIT_REDIS_URL=redis_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all checks passed" in done.stdout and "HMAC-signed" in done.stdout


def test_keygen_without_a_redis_url(tmp_path: Path) -> None:
    from cachekit_web.core.data.crypto import parse_master_key

    done = _flask(tmp_path, "cachekit", "keygen")
    assert done.returncode == 0, done.stdout + done.stderr
    parse_master_key(done.stdout.strip())
    app = Flask("keygen")
    Cache().init_app(app, {"CACHEKIT_REDIS_URL": "memory://keygen"})
    out = app.test_cli_runner().invoke(args=["cachekit", "keygen", "--signing"])
    assert out.exit_code == 0 and len(out.output.strip()) >= 32
