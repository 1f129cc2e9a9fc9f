"""The spool trusts nothing at its path (issue 16, item 6): folders it does not own or that
others can write, symlinks, files with foreign keys, bad bytes or no data at all (a FIFO),
a SPOOL_DIR that cannot be created, an unwritable folder or a full disk. None of it ever
escapes a cache call or the constructor; only keys of the own namespace are replayed."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from cachekit_web import DEFERRED, CacheClient
from cachekit_web.cli import main as cli_main
from cachekit_web.core.resilience.spool import scope_name
from cachekit_web.core.urls import redact_url
from cachekit_web.embedded import EmbeddedRedis

pytestmark = pytest.mark.slow

FAST = {"SOCKET_TIMEOUT": 0.2, "SOCKET_CONNECT_TIMEOUT": 0.2, "PENDING_REPLAY_INTERVAL": 0.05,
        "CIRCUIT_BREAKER_RECOVERY_TIMEOUT": 30}
NOBODY = 65534


def _gone(raw: redis.Redis, key: str, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not raw.exists(key):
            return True
        time.sleep(0.02)
    return False


def _codes(caplog: pytest.LogCaptureFixture, code: str) -> int:
    return sum(getattr(r, "cachekit_code", None) == code for r in caplog.records)


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if not p.is_dir())


@pytest.fixture()
def own_redis() -> Iterator[EmbeddedRedis]:
    """A server that keeps its data across kill and restart (AOF, fsync always)."""
    server = EmbeddedRedis(args=("--appendonly", "yes", "--appendfsync", "always")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def raw(own_redis: EmbeddedRedis) -> Iterator[redis.Redis]:
    r = redis.Redis.from_url(own_redis.url)
    yield r
    r.close()


@pytest.mark.parametrize("planted", ["world-writable", "other-owner", "symlink", "scope-symlink"])
def test_a_spool_folder_not_safely_ours_is_refused(
        own_redis: EmbeddedRedis, raw: redis.Redis, tmp_path: Path, planted: str,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="cachekit_web")
    root = tmp_path / "spool"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    if planted == "world-writable":  # created first by someone, open to everyone
        root.mkdir()
        root.chmod(0o777)
    elif planted == "other-owner":
        if os.getuid() != 0:
            pytest.skip("only root can give a folder to another user")
        root.mkdir(mode=0o700)
        os.chown(root, NOBODY, NOBODY)
    elif planted == "symlink":
        root.symlink_to(elsewhere)
    else:  # the root is fine, its namespace folder is a link to somewhere else
        root.mkdir(mode=0o700)
        (root / scope_name(redact_url(own_redis.url), "ns")).symlink_to(elsewhere)
    before = _files(tmp_path)
    client = CacheClient.from_url(own_redis.url, NAMESPACE="ns", SPOOL_DIR=str(root), **FAST)
    try:
        client.set("k", "old")
        own_redis.kill()
        assert client.delete("k") is DEFERRED  # remembered in memory, never in that folder
        assert client.delete("k2") is DEFERRED
        assert client.get("k") is None
        assert _files(tmp_path) == before, "the spool wrote into a folder it does not own"
        assert _codes(caplog, "E080") == 1  # said once, with its code
        assert client.health().spooled == 0
        own_redis.start()
        assert _gone(raw, "ns:k"), "the invalidation kept in memory was not replayed"
    finally:
        client.close()


def _scope(url: str, spool_dir: Path) -> Path:
    folder = spool_dir / scope_name(redact_url(url), "ns")
    folder.mkdir(parents=True, mode=0o700)
    spool_dir.chmod(0o700)
    return folder


def test_orphans_replay_only_their_own_namespace_and_bad_files_are_set_aside(
        own_redis: EmbeddedRedis, raw: redis.Redis, tmp_path: Path,
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG, logger="cachekit_web")
    spool_dir = tmp_path / "spool"
    folder = _scope(own_redis.url, spool_dir)
    for key in ("other-app:secret", "ns:a", "ns:b", "ns:c"):
        raw.set(key, b"old")
    # A file with a foreign key, a non-UTF-8 line, a malformed record, a line nested too
    # deep for json and one too long to be a record, between valid ones.
    (folder / "111-aaaa.spool").write_bytes(
        b'["D", "other-app:secret"]\n["D", "ns:a"]\n\xff\xfe not utf-8\n["D", 5]\n'
        + b"[" * 60_000 + b"\n" + b"x" * 300_000 + b'\n["D", "ns:b"]\n')
    (folder / "222-bbbb.spool").write_bytes(b'["D", "ns:c"]\n')  # a clean orphan
    monkeypatch.setenv("CACHEKIT_NAMESPACE", "ns")
    monkeypatch.setenv("CACHEKIT_SPOOL_DIR", str(spool_dir))
    assert cli_main(["pending", "list", own_redis.url]) == 0  # reads, never crashes
    listed = capsys.readouterr().out
    assert "ns:a" in listed and "other-app" not in listed

    client = CacheClient.from_url(own_redis.url, NAMESPACE="ns", SPOOL_DIR=str(spool_dir),
                                  **FAST)
    try:
        report = client.health()  # never raises, whatever the files hold
        assert report.spooled <= 3  # a, b and c: before, while or after the replay runs
        for key in ("ns:a", "ns:b", "ns:c"):
            assert _gone(raw, key), f"{key}, a valid line, was not replayed"
        assert raw.get("other-app:secret") == b"old"  # outside the namespace: never touched
        deadline = time.monotonic() + 5
        while list(folder.glob("*.spool")) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not list(folder.glob("*.spool"))
        aside = [p.name for p in folder.iterdir()]
        assert len(aside) == 1 and aside[0].startswith("111-aaaa"), aside  # kept to look at
        assert _codes(caplog, "E082") == 1
    finally:
        client.close()


def test_a_fifo_or_a_symlink_in_the_spool_never_blocks_nor_is_followed(
        own_redis: EmbeddedRedis, raw: redis.Redis, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="cachekit_web")
    spool_dir = tmp_path / "spool"
    folder = _scope(own_redis.url, spool_dir)
    target = tmp_path / "target.txt"
    target.write_bytes(b'["D", "ns:via-link"]\n')
    raw.set("ns:via-link", b"old")
    os.mkfifo(folder / "333-cccc.spool")
    (folder / "444-dddd.spool").symlink_to(target)
    (folder / "555-eeee.spool").write_bytes(b'["D", "ns:real"]\n')
    raw.set("ns:real", b"old")
    outcome: list[object] = []

    def run() -> None:
        try:
            client = CacheClient.from_url(own_redis.url, NAMESPACE="ns",
                                          SPOOL_DIR=str(spool_dir), **FAST)
            try:
                outcome.append(client.health().spooled)
                outcome.append(_gone(raw, "ns:real"))
                outcome.append(client.pending.spool.failures["E082"])
            finally:
                client.close()
        except BaseException as exc:  # reported by the assertion below
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(20)
    if worker.is_alive():  # let the blocked open() go, so the thread can end
        fd = os.open(folder / "333-cccc.spool", os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        pytest.fail("the spool blocked on a FIFO")
    assert len(outcome) == 3 and outcome[1] is True, outcome
    assert outcome[2] == 2  # the FIFO and the symlink, each set aside
    assert raw.get("ns:via-link") == b"old"  # the link was not followed
    assert target.read_bytes() == b'["D", "ns:via-link"]\n'
    assert not list(folder.glob("*.spool"))
    assert _codes(caplog, "E082") == 1  # logged once


def test_a_spool_dir_that_cannot_be_created_never_breaks_the_client(
        own_redis: EmbeddedRedis, raw: redis.Redis, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="cachekit_web")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    client = CacheClient.from_url(own_redis.url, NAMESPACE="ns",
                                  SPOOL_DIR=str(blocker / "spool"), **FAST)  # no raise
    try:
        client.set("k", "old")
        own_redis.kill()
        for _ in range(3):
            assert client.delete("k") is DEFERRED
        report = client.health()
        assert report.pending_deletes == 1
        assert report.spool_errors["E081"] >= 3  # counted each time, logged once
        assert _codes(caplog, "E081") == 1
        own_redis.start()
        assert _gone(raw, "ns:k")
    finally:
        client.close()


_FAILING_DISK = textwrap.dedent("""
    import logging, os, resource, signal, sys
    from cachekit_web import DEFERRED, CacheClient
    url, spool, how = sys.argv[1], sys.argv[2], sys.argv[3]
    seen = []
    class Codes(logging.Handler):
        def emit(self, record):
            seen.append(getattr(record, "cachekit_code", None))
    logging.getLogger("cachekit_web").addHandler(Codes())
    logging.getLogger("cachekit_web").setLevel(logging.DEBUG)
    c = CacheClient.from_url(url, NAMESPACE="ns", SPOOL_DIR=spool, PENDING_REPLAY_INTERVAL=30)
    if how == "full":  # every write that would grow a file fails (EFBIG), as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
    assert c.get("bad") is None  # a forged entry: dropped, its delete remembered
    for _ in range(c.settings.CIRCUIT_BREAKER_FAILURE_THRESHOLD):
        c.breaker.record_failure()  # Redis treated as down: deletes are deferred
    assert c.delete("k") is DEFERRED
    assert c.delete("k2") is DEFERRED
    assert c.get("k") is None
    assert "ns:k" in c.pending and "ns:k2" in c.pending  # kept in memory
    print("ok", seen.count("E081"), flush=True)
""")


@pytest.mark.parametrize("how", ["unwritable", "full"])
def test_an_unwritable_folder_or_a_full_disk_never_escapes_a_cache_call(
        own_redis: EmbeddedRedis, raw: redis.Redis, tmp_path: Path, how: str) -> None:
    spool_dir = tmp_path / "spool"
    folder = _scope(own_redis.url, spool_dir)
    raw.set("ns:bad", b"not a frame")
    locked = False
    if how == "unwritable":
        folder.chmod(0o500)
        if os.getuid() == 0:  # root writes through modes: make it immutable instead
            chattr = shutil.which("chattr")
            if chattr is None or subprocess.run([chattr, "+i", str(folder)],
                                                capture_output=True).returncode:
                pytest.skip("running as root and the folder cannot be made immutable")
            locked = True
    try:
        proc = subprocess.run([sys.executable, "-c", _FAILING_DISK, own_redis.url,
                               str(spool_dir), how], capture_output=True, text=True,
                              timeout=60)
    finally:
        if locked:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o700)
    assert proc.returncode == 0 and proc.stdout.startswith("ok"), proc.stderr[-2000:]
    assert proc.stdout.split() == ["ok", "1"]  # logged once, with its code
