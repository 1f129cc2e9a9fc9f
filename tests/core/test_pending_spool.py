"""Invalidations made while Redis is unreachable are never lost (issue: hardening, item 9).

They are replayed as soon as Redis answers, by a background thread (not on the
next call), and spooled to a local file that any process of the namespace
replays, so a process that exits mid-outage loses nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from cachekit_web import DEFERRED, CacheClient
from cachekit_web.cli import main as cli_main
from cachekit_web.embedded import EmbeddedRedis

pytestmark = pytest.mark.slow

FAST = {"SOCKET_TIMEOUT": 0.2, "SOCKET_CONNECT_TIMEOUT": 0.2, "PENDING_REPLAY_INTERVAL": 0.05,
        "CIRCUIT_BREAKER_RECOVERY_TIMEOUT": 30}


def _gone(raw: redis.Redis, key: str, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not raw.exists(key):
            return True
        time.sleep(0.02)
    return False


@pytest.fixture()
def spool_dir(tmp_path: Path) -> str:
    return str(tmp_path / "spool")


@pytest.fixture()
def own_redis() -> Iterator[EmbeddedRedis]:
    """A server that keeps its data across kill and restart (AOF, fsync always).

    The outage is a kill, not a pause: a paused server would still execute the DEL
    sitting in its socket buffer when it resumes, and hide a lost invalidation.
    """
    server = EmbeddedRedis(args=("--appendonly", "yes", "--appendfsync", "always")).start()
    try:
        yield server
    finally:
        server.stop()


def test_deferred_delete_lands_without_another_call(own_redis: EmbeddedRedis,
                                                    spool_dir: str) -> None:
    raw = redis.Redis.from_url(own_redis.url)
    client = CacheClient.from_url(own_redis.url, NAMESPACE="ns", SPOOL_DIR=spool_dir, **FAST)
    try:
        client.set("k", "old")
        own_redis.kill()
        result = client.delete("k")
        own_redis.start()  # back with the retracted value (AOF): see the next test's check
        assert result is DEFERRED and result  # told apart from "did not exist" (False)
        assert client.metrics.snapshot()["totals"].get("deferred") == 1
        # The breaker is open for 30 s and this client makes no further call: only the
        # background replay can remove the key.
        assert _gone(raw, "ns:k"), "the retracted value outlived the outage"
        assert client.health().spooled == 0
    finally:
        client.close()
        raw.close()


def test_missing_key_is_false_not_deferred(own_redis: EmbeddedRedis, spool_dir: str) -> None:
    with CacheClient.from_url(own_redis.url, NAMESPACE="ns", SPOOL_DIR=spool_dir) as client:
        assert client.delete("never-set") is False


_EXITING = textwrap.dedent("""
    import os, signal, sys
    from cachekit_web import DEFERRED, CacheClient
    url, spool = sys.argv[1], sys.argv[2]
    c = CacheClient.from_url(url, NAMESPACE="ns", SPOOL_DIR=spool, SOCKET_TIMEOUT=0.2,
                             SOCKET_CONNECT_TIMEOUT=0.2, PENDING_REPLAY_INTERVAL=30)
    assert c.delete("k") is DEFERRED
    assert c.set("other", 1) is False
    print("deferred", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no atexit, no finally: only the spool remains
""")


def _run_exiting(url: str, spool_dir: str) -> None:
    proc = subprocess.run([sys.executable, "-c", _EXITING, url, spool_dir],
                          capture_output=True, text=True, timeout=30)
    assert "deferred" in proc.stdout, proc.stderr


def test_a_process_killed_mid_outage_loses_no_invalidation(own_redis: EmbeddedRedis,
                                                           spool_dir: str) -> None:
    raw = redis.Redis.from_url(own_redis.url)
    raw.set("ns:k", b"old")
    raw.set("ns:other", b"old")
    own_redis.kill()
    _run_exiting(own_redis.url, spool_dir)
    own_redis.start()
    assert raw.exists("ns:k")  # nobody replayed yet: the deleting process is gone
    files = list(Path(spool_dir).rglob("*.spool"))
    assert len(files) == 1 and b"ns:k" in files[0].read_bytes()
    # Any process of the namespace picks the orphan up, without a cache call.
    client = CacheClient.from_url(own_redis.url, NAMESPACE="ns", SPOOL_DIR=spool_dir, **FAST)
    try:
        assert _gone(raw, "ns:k") and _gone(raw, "ns:other")
        assert not list(Path(spool_dir).rglob("*.spool"))
    finally:
        client.close()
        raw.close()


def test_pending_command_lists_replays_and_drops(own_redis: EmbeddedRedis, spool_dir: str,
                                                 capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    raw = redis.Redis.from_url(own_redis.url)
    raw.set("ns:k", b"old")
    own_redis.kill()
    _run_exiting(own_redis.url, spool_dir)
    own_redis.start()
    monkeypatch.setenv("CACHEKIT_NAMESPACE", "ns")
    monkeypatch.setenv("CACHEKIT_SPOOL_DIR", spool_dir)
    assert cli_main(["pending", "list", own_redis.url]) == 0
    out = capsys.readouterr().out
    assert "2 invalidations" in out and "ns:k" in out
    assert cli_main(["pending", "replay", own_redis.url]) == 0
    assert not raw.exists("ns:k")
    assert "replayed 2" in capsys.readouterr().out
    # drop: a new orphan is discarded without touching Redis.
    raw.set("ns:k", b"new")
    own_redis.kill()
    _run_exiting(own_redis.url, spool_dir)
    own_redis.start()
    assert cli_main(["pending", "drop", own_redis.url]) == 0
    assert raw.get("ns:k") == b"new"
    assert not list(Path(spool_dir).rglob("*.spool"))
    raw.close()


def test_spool_is_private_to_its_user(own_redis: EmbeddedRedis, spool_dir: str) -> None:
    own_redis.kill()
    _run_exiting(own_redis.url, spool_dir)
    own_redis.start()
    (path,) = Path(spool_dir).rglob("*.spool")
    assert path.stat().st_mode & 0o077 == 0
    assert path.parent.stat().st_mode & 0o077 == 0
    assert os.environ.get("CACHEKIT_SPOOL_DIR")  # the suite never writes to the shared default


def test_a_key_owed_an_invalidation_reads_as_a_miss_until_it_lands(
        own_redis: EmbeddedRedis, spool_dir: str) -> None:
    """While another thread replays a delete (taken, not yet landed), every read path
    must miss: Redis still holds the retracted value at that moment."""
    client = CacheClient.from_url(own_redis.url, NAMESPACE="ns", SPOOL_DIR=spool_dir,
                                  PENDING_REPLAY_INTERVAL=30)
    try:
        client.set("k", "old")
        client.set("other", "kept")
        client.pending.add(["ns:k"])
        keys, clear = client.pending.take()  # a replayer holds the batch in flight
        assert keys == ["ns:k"] and not client.pending  # nothing left to flush first
        assert client.get("k") is None
        assert client.get_entry("k") is None
        assert client.get_many(["k", "other"]) == {"other": "kept"}
        assert client.has_key("k") is False
        result = client.fetch("k", lambda: "new", 60)
        assert (result.value, result.status) == ("new", "miss")
        client.pending.landed(keys, clear)
        assert client.get("k") == "new"  # once landed, reads are served again
    finally:
        client.close()


def test_a_running_process_replays_what_an_exited_one_left(own_redis: EmbeddedRedis,
                                                          spool_dir: str) -> None:
    """A worker built before its sibling died mid-outage (gunicorn recycling, OOM kill)
    picks up the sibling's spool file by itself; it need not be restarted."""
    raw = redis.Redis.from_url(own_redis.url)
    client = CacheClient.from_url(own_redis.url, NAMESPACE="ns", SPOOL_DIR=spool_dir, **FAST)
    try:
        raw.set("ns:k", b"old")
        assert client.get("other") is None  # built and used before the outage
        own_redis.kill()
        _run_exiting(own_redis.url, spool_dir)  # deletes k (spooled), then SIGKILLed
        own_redis.start()
        deadline = time.monotonic() + 5.0
        while raw.exists("ns:k") and time.monotonic() < deadline:
            client.get("other")  # ordinary traffic; no new client is built
            time.sleep(0.05)
        assert not raw.exists("ns:k"), "the exited process's invalidation was never replayed"
    finally:
        client.close()
        raw.close()


_EXITING_WITH_CHILD = _EXITING.replace(
    'print("deferred", flush=True)',
    'child = os.fork()\n'
    'if child == 0:\n'
    '    import time\n'
    '    null = os.open(os.devnull, os.O_WRONLY)\n'
    '    os.dup2(null, 1); os.dup2(null, 2)  # let the test read its parent\'s output\n'
    '    time.sleep(20)  # a worker the dead process forked, still alive\n'
    '    os._exit(0)\n'
    'print("deferred", child, flush=True)')


def test_a_child_of_the_exited_process_does_not_hold_its_spool(own_redis: EmbeddedRedis,
                                                               spool_dir: str) -> None:
    """A process that forked before dying leaves children holding its spool file open:
    the file must still be taken over once the process itself is gone."""
    import signal as signals

    raw = redis.Redis.from_url(own_redis.url)
    raw.set("ns:k", b"old")
    own_redis.kill()
    proc = subprocess.run([sys.executable, "-c", _EXITING_WITH_CHILD, own_redis.url,
                           spool_dir], capture_output=True, text=True, timeout=30)
    assert "deferred" in proc.stdout, proc.stderr
    child = int(proc.stdout.split()[-1])
    own_redis.start()
    try:
        client = CacheClient.from_url(own_redis.url, NAMESPACE="ns", SPOOL_DIR=spool_dir,
                                      **FAST)
        try:
            assert _gone(raw, "ns:k"), "the dead process's file was held by its child"
        finally:
            client.close()
    finally:
        os.kill(child, signals.SIGKILL)
        raw.close()
