"""Key rotation on a real redis-server: `cachekit-web rotate` and the doctor's sample."""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from typing import Any

import pytest
import redis

from cachekit_web import CacheClient
from cachekit_web.cli import main, rotate_keys
from cachekit_web.core.data.codec import HEADER2_SIZE, HEADER_SIZE, Codec
from cachekit_web.core.data.rotation import RotationReport, rotate, rotation_status
from cachekit_web.embedded import EmbeddedRedis

from .conftest import KEY_A, KEY_B, SIGNING, MakeClient

KEY_C = bytes(range(0x30, 0x50)).hex()  # a third key, in no ring of these tests
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def key_id(raw_value: bytes) -> bytes:
    """The key id in a stored frame's header."""
    return raw_value[4:HEADER_SIZE]


def snapshot(raw: redis.Redis, namespace: str) -> dict[bytes, bytes]:
    """Every stored string value under the namespace, by key."""
    keys = sorted(raw.scan_iter(match=namespace + ":*", count=1000))
    return dict(zip(keys, raw.mget(keys), strict=True)) if keys else {}


def fill(client: CacheClient, n: int, prefix: str = "k") -> dict[str, Any]:
    """Store ``n`` values (a mix of kinds and timeouts); return what was stored."""
    stored: dict[str, Any] = {}
    for i in range(n):
        value: Any = {"i": i, "tag": f"v{i}"} if i % 3 else f"text-{i}" * (1 + i % 50)
        timeout = None if i % 4 == 0 else 300 + i
        client.set(f"{prefix}{i}", value, timeout)
        stored[f"{prefix}{i}"] = value
    return stored


class PerKey:
    """The real backend without its batch compare-and-set: rotation's per-key path."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend

    def __getattr__(self, name: str) -> Any:
        if name == "compare_and_set_many":
            raise AttributeError(name)
        return getattr(self._backend, name)


@pytest.fixture(params=["batch", "per-key"])
def path(request: pytest.FixtureRequest) -> str:
    """Which write path rotation takes: one script call per batch, or update() per key."""
    return str(request.param)


def backend_for(client: CacheClient, path: str) -> Any:
    """``client``'s backend, seen through ``path``."""
    return client.backend if path == "batch" else PerKey(client.backend)


@pytest.fixture()
def clients(make_client: MakeClient) -> tuple[CacheClient, CacheClient]:
    """(old, new): writing with KEY_A, then KEY_B current with KEY_A as a previous key."""
    return (make_client(MASTER_KEY=KEY_A),
            make_client(MASTER_KEY=KEY_B, PREVIOUS_MASTER_KEYS=[KEY_A]))


def test_rotation_reseals_every_entry_keeping_expiry_and_ttl(
        clients: tuple[CacheClient, CacheClient], make_client: MakeClient,
        raw: redis.Redis, namespace: str) -> None:
    old, new = clients
    stored = fill(old, 1200)  # several SCAN batches
    old.set("stale", "swr", 100, stale_ttl=50)  # carries a fresh-until time
    old.set("pickled", Fraction(1, 3), 200)  # only pickle carries it: moved, never unpickled
    stored.update(stale="swr", pickled=Fraction(1, 3))
    before = snapshot(raw, namespace)
    ttl_before = {k: raw.pttl(k) for k in before}
    assert {key_id(v) for v in before.values()} == {old.codec.keyring.key_id}

    report = rotate(new.backend, new.codec, batch=200)

    assert (report.resealed, report.seen, report.unreadable) == (len(stored), len(stored), 0)
    after = snapshot(raw, namespace)
    assert after.keys() == before.keys()
    assert {key_id(v) for v in after.values()} == {new.codec.keyring.key_id}
    for k, frame in after.items():
        # same flags, same sealed expiry and fresh-until; TTL kept by Redis (KEEPTTL)
        assert frame[3] == before[k][3]
        assert Codec.expiry_of(frame) == Codec.expiry_of(before[k])
        fresh_end = HEADER2_SIZE + (8 if frame[3] & 0x10 else 0)
        assert frame[HEADER2_SIZE:fresh_end] == before[k][HEADER2_SIZE:fresh_end]
        ttl = raw.pttl(k)
        assert (ttl == -1) == (ttl_before[k] == -1)
        assert ttl == -1 or 0 < ttl <= ttl_before[k]
    only_new = make_client(MASTER_KEY=KEY_B)  # the old key can be retired
    assert only_new.get_many(list(stored)) == stored
    assert only_new.metrics.errors.total() == 0
    assert make_client(MASTER_KEY=KEY_A).get("k1") is None  # the old key opens nothing now

    again = rotate(new.backend, new.codec)
    assert (again.resealed, again.current) == (0, len(stored))
    assert snapshot(raw, namespace) == after  # a second run writes nothing


def test_a_value_written_between_read_and_write_is_never_overwritten(
        clients: tuple[CacheClient, CacheClient], raw: redis.Redis, path: str) -> None:
    old, new = clients
    fill(old, 40)
    prefix = new.namespace + ":"
    raced: set[str] = set()

    def write_concurrently(full_key: str) -> None:
        # Runs after rotation read the entry and before its write: the worst moment.
        name = full_key[len(prefix):]
        if int(name[1:]) % 2 == 0 and name not in raced:
            raced.add(name)
            new.set(name, f"fresh-{name}", 60)

    report = rotate(backend_for(new, path), new.codec, before_write=write_concurrently)

    assert len(raced) == 20 and report.replaced == 20 and report.resealed == 20
    for name in raced:
        assert new.get(name) == f"fresh-{name}"
    # an old process (still on KEY_A) writing mid-rotation: its value is kept, and re-sealed
    old.set("k1", "old-writer", 60)
    mixed: list[str] = []
    rotate(backend_for(new, path), new.codec, before_write=lambda k: mixed.append(k))
    assert mixed == [prefix + "k1"] and new.get("k1") == "old-writer"
    assert key_id(raw.get(prefix + "k1") or b"") == new.codec.keyring.key_id


def test_concurrent_writers_during_rotation_keep_their_values(
        clients: tuple[CacheClient, CacheClient], make_client: MakeClient, path: str) -> None:
    old, new = clients
    n, writers = 3000, 4
    fill(old, n)
    last: list[dict[str, str]] = [{} for _ in range(writers)]
    stop = threading.Event()
    started = threading.Barrier(writers + 1)

    def writer(w: int) -> None:
        mine = make_client(MASTER_KEY=KEY_B)  # a web process already on the new key
        started.wait(30)
        for rnd in range(10_000):  # bounded; stopped when rotation is done
            if stop.is_set():
                return
            name = f"k{(rnd * 7) % (n // writers) * writers + w}"  # keys = w mod writers
            value = f"w{w}-{rnd}"
            mine.set(name, value, 60)
            last[w][name] = value

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    started.wait(30)
    try:
        report = rotate(backend_for(new, path), new.codec, batch=100)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    written = {k: v for d in last for k, v in d.items()}
    assert written, "the writers wrote nothing while rotation ran"
    reader = make_client(MASTER_KEY=KEY_B)
    got = reader.get_many(list(written))
    lost = {k: (v, got.get(k)) for k, v in written.items() if got.get(k) != v}
    assert not lost, f"{len(lost)} concurrent writes overwritten, e.g. {list(lost.items())[:3]}"
    assert report.resealed + report.current + report.replaced == n
    assert report.current + report.replaced > 0  # the writers really overlapped the run
    assert reader.metrics.errors.total() == 0
    assert rotate(new.backend, new.codec).resealed == 0


def test_counters_are_counted_apart_not_unreadable(make_client: MakeClient,
                                                   namespace: str) -> None:
    old = make_client(MASTER_KEY=KEY_A, PLAIN_COUNTERS=["rl:*"])
    new = make_client(MASTER_KEY=KEY_B, PREVIOUS_MASTER_KEYS=[KEY_A], PLAIN_COUNTERS=["rl:*"])
    fill(old, 5)
    old.incr("rl:hits", default=0)  # a plain counter: a Redis integer, nothing to re-seal
    old.incr("hits", default=0)  # any other counter is sealed: re-sealed like a value
    report = rotate(new.backend, new.codec)
    assert (report.resealed, report.counters, report.unreadable) == (6, 1, 0)
    assert new.get("hits") == 1 and new.get("rl:hits") == 1
    assert "previous key" not in rotation_status(new.backend, new.codec)


def test_dry_run_counts_and_writes_nothing(
        clients: tuple[CacheClient, CacheClient], raw: redis.Redis, namespace: str) -> None:
    old, new = clients
    fill(old, 300)
    new.set("already", "current", 60)
    before = snapshot(raw, namespace)
    writes = _write_calls(raw)

    report = rotate(new.backend, new.codec, dry_run=True)

    assert (report.dry_run, report.resealed, report.current, report.remaining) == (
        True, 300, 1, 300)
    assert "would re-seal 300 of 301 entries" in report.summary()
    assert snapshot(raw, namespace) == before
    assert _write_calls(raw) == writes


def _write_calls(raw: redis.Redis) -> int:
    stats = raw.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0))
               for c in ("set", "exec", "eval", "evalsha", "del", "unlink"))


def test_interrupted_run_resumes_where_it_stopped(
        clients: tuple[CacheClient, CacheClient], raw: redis.Redis, namespace: str) -> None:
    old, new = clients
    fill(old, 350)
    report = RotationReport()
    batches = []

    def interrupt(n: int) -> None:
        batches.append(n)
        raise KeyboardInterrupt  # as Ctrl-C after the first batch

    with pytest.raises(KeyboardInterrupt):
        rotate(new.backend, new.codec, batch=100, on_batch=interrupt, report=report)
    first = report.resealed
    assert first == batches[0] > 0
    ids = [key_id(v) for v in snapshot(raw, namespace).values()]
    assert ids.count(new.codec.keyring.key_id) == first  # exactly the first batch is done

    rest = rotate(new.backend, new.codec, batch=100)
    assert (rest.current, rest.resealed) == (first, 350 - first)  # done entries skipped
    assert {key_id(v) for v in snapshot(raw, namespace).values()} == {
        new.codec.keyring.key_id}


def test_cli_interrupted_by_sigint_then_finished(
        clients: tuple[CacheClient, CacheClient], own_redis: EmbeddedRedis,
        namespace: str) -> None:
    old, _ = clients
    n = 4000
    raw = redis.Redis.from_url(own_redis.url)
    pipe = raw.pipeline(transaction=False)  # many entries, quickly: frames made by the codec
    for i in range(n):
        fk = old.full_key(f"k{i}")
        pipe.set(fk, old.codec.encode(fk.encode(), f"v{i}", None, time.time() + 600),
                 px=600_000)
    pipe.execute()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CACHEKIT_") or k == "CACHEKIT_SPOOL_DIR"}
    env.update(CACHEKIT_MASTER_KEY=KEY_B, CACHEKIT_PREVIOUS_MASTER_KEYS=KEY_A,
               CACHEKIT_NAMESPACE=namespace, PYTHONPATH=ROOT)
    # --force: nothing is sealed with KEY_B yet, which looks like swapped keys (E005).
    cmd = [sys.executable, "-m", "cachekit_web.cli", "rotate", own_redis.url, "--batch", "50",
           "--force"]
    # The run must be interrupted mid-way however slow this process is to react, so it
    # waits for us twice: its first progress line blocks on a full stderr pipe until we
    # read it, and its next Redis call blocks on the paused server (a long socket timeout:
    # it waits for the SIGINT, it does not give up first).
    read_fd, write_fd = os.pipe()
    fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, 4096)
    os.set_blocking(write_fd, False)
    filler = 0
    with contextlib.suppress(BlockingIOError):
        while True:
            filler += os.write(write_fd, b"-" * 512)
    os.set_blocking(write_fd, True)
    proc = subprocess.Popen(cmd, env={**env, "CACHEKIT_SOCKET_TIMEOUT": "120"},
                            stdout=subprocess.PIPE, stderr=write_fd, text=True)
    os.close(write_fd)
    err_lines: list[str] = []

    def read_err() -> None:
        with os.fdopen(read_fd, encoding="utf-8") as f:
            for line in f:
                err_lines.append(line)

    reader = threading.Thread(target=read_err, daemon=True)
    try:
        deadline = time.monotonic() + 60
        new_id = clients[1].codec.keyring.key_id
        # The first tenth (400 keys) re-sealed: the run is at its first progress line.
        while sum(key_id(v) == new_id for v in snapshot(raw, namespace).values()) < n // 10:
            assert time.monotonic() < deadline and proc.poll() is None, "no progress"
            time.sleep(0.05)
        own_redis.pause()
        try:
            reader.start()  # the line gets through; the next Redis call waits
            while not any("rotate: " in line for line in err_lines):  # after the filler
                assert time.monotonic() < deadline, err_lines
                time.sleep(0.02)
            proc.send_signal(signal.SIGINT)
        finally:
            own_redis.resume()
        out, _ = proc.communicate(timeout=60)
        reader.join(10)
        err = "".join(err_lines)[filler:]
    finally:
        proc.kill()
        if not reader.is_alive() and reader.ident is None:  # never started: close it here
            os.close(read_fd)
    assert proc.returncode == 130, (out, err)
    assert "interrupted: re-sealed" in out and "Traceback" not in err
    done = sum(key_id(v) != old.codec.keyring.key_id
               for v in snapshot(raw, namespace).values())
    assert 0 < done < n

    finish = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    assert finish.returncode == 0, finish.stdout + finish.stderr
    assert f"re-sealed {n - done} of {n} entries, current {done}" in finish.stdout
    assert old.codec.keyring.key_id not in {key_id(v) for v in snapshot(raw, namespace).values()}
    raw.close()


def test_unreadable_entries_are_left_alone_and_counted(
        clients: tuple[CacheClient, CacheClient], make_client: MakeClient,
        raw: redis.Redis, namespace: str) -> None:
    old, new = clients
    fill(old, 10)
    make_client(MASTER_KEY=KEY_C).set("foreign", "under a key nobody holds", 60)
    make_client(SIGNING_KEY=SIGNING).set("signed", "signed only", 60)
    raw.set(f"{namespace}:garbage", b"not a frame at all")
    frame = bytearray(raw.get(f"{namespace}:k1") or b"")
    frame[-1] ^= 1  # tampered: the previous key no longer opens it
    raw.set(f"{namespace}:k1", bytes(frame), keepttl=True)
    raw.hset(f"{namespace}:a-hash", "f", "v")  # not a string: nothing to read
    untouched = {k: v for k, v in snapshot(raw, namespace).items()
                 if k.split(b":", 1)[1] in (b"foreign", b"signed", b"garbage", b"k1")}

    report = rotate(new.backend, new.codec)

    assert (report.unreadable, report.resealed, report.gone) == (4, 9, 1)
    after = snapshot(raw, namespace)
    assert all(after[k] == v for k, v in untouched.items())
    assert "unreadable 4" in report.summary()


def test_doctor_reports_the_share_still_under_a_previous_key(
        clients: tuple[CacheClient, CacheClient], redis_url: str, namespace: str,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = clients
    fill(old, 30)
    fill(new, 10, prefix="n")
    line = ("75.0% of 40 sampled entries still sealed with a previous key: "
            "run cachekit-web rotate")
    assert rotation_status(new.backend, new.codec) == line
    assert rotation_status(new.backend, new.codec, limit=8).endswith(
        "of 8 sampled entries still sealed with a previous key: run cachekit-web rotate")
    monkeypatch.setenv("CACHEKIT_MASTER_KEY", KEY_B)
    monkeypatch.setenv("CACHEKIT_PREVIOUS_MASTER_KEYS", KEY_A)
    monkeypatch.setenv("CACHEKIT_NAMESPACE", namespace)
    assert main(["doctor", redis_url]) == 0
    out = capsys.readouterr().out
    assert f"ok    key rotation: {line}" in out
    assert KEY_A not in out and KEY_B not in out

    assert main(["rotate", redis_url]) == 0
    assert main(["doctor", redis_url]) == 0
    assert "key rotation: all 40 of 40 sampled entries use the current key" in (
        capsys.readouterr().out)
    assert rotation_status(old.backend, signing_codec(old)) == (
        "no MASTER_KEY: values are not encrypted, nothing to rotate")


def signing_codec(client: CacheClient) -> Codec:
    """A codec with no master key (signing only)."""
    from cachekit_web.core.data.crypto import KeyRing

    return Codec(KeyRing(namespace=client.namespace, signing_key=SIGNING))


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_plain_lines_off_a_terminal_and_a_bar_on_one(
        clients: tuple[CacheClient, CacheClient], redis_url: str, namespace: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    old, _ = clients
    fill(old, 250)
    monkeypatch.setenv("CACHEKIT_MASTER_KEY", KEY_B)
    monkeypatch.setenv("CACHEKIT_PREVIOUS_MASTER_KEYS", KEY_A)
    monkeypatch.setenv("CACHEKIT_NAMESPACE", namespace)
    out, err = io.StringIO(), io.StringIO()  # not a terminal, as in CI or a log file
    # Nothing is sealed with KEY_B yet, which looks like swapped keys (E005): forced.
    assert rotate_keys(redis_url, dry_run=True, batch=50, out=out, err=err, force=True) == 0
    lines = err.getvalue().splitlines()
    assert lines and all(line.startswith("rotate: ") and line.endswith("/250 keys")
                         for line in lines)
    assert "\r" not in err.getvalue()  # no bar drawing into a log
    assert out.getvalue() == "would re-seal 250 of 250 entries\n"

    out, tty = io.StringIO(), _Tty()
    assert rotate_keys(redis_url, dry_run=False, batch=50, out=out, err=tty, force=True) == 0
    assert "250/250" in tty.getvalue() and "\r" in tty.getvalue()  # tqdm drew a bar
    assert out.getvalue() == "re-sealed 250 of 250 entries\n"


def test_rotate_without_a_master_key_says_so(redis_url: str, namespace: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHEKIT_SIGNING_KEY", SIGNING)
    monkeypatch.setenv("CACHEKIT_NAMESPACE", namespace)
    out = io.StringIO()
    assert rotate_keys(redis_url, dry_run=False, batch=50, out=out, err=io.StringIO()) == 1
    assert out.getvalue().startswith("[E001]")


def test_rotation_on_the_memory_backend(make_client: MakeClient, namespace: str) -> None:
    url = f"memory://{namespace}"
    old = make_client(url, MASTER_KEY=KEY_A)
    fill(old, 20)
    new = make_client(url, MASTER_KEY=KEY_B, PREVIOUS_MASTER_KEYS=[KEY_A])
    assert rotate(new.backend, new.codec).resealed == 20
    assert make_client(url, MASTER_KEY=KEY_B).get("k4") == {"i": 4, "tag": "v4"}


def test_compare_and_set_many_writes_only_what_is_unchanged(
        redis_url: str, namespace: str, raw: redis.Redis, make_client: MakeClient) -> None:
    import asyncio

    from cachekit_web.core._async.redis import AsyncRedisBackend

    k = [f"{namespace}:{i}" for i in range(4)]
    raw.set(k[0], b"a", px=50_000)
    raw.set(k[1], b"changed")
    raw.hset(k[3], "f", "v")  # WRONGTYPE inside the batch: that entry is False, no abort
    backend = make_client().backend
    assert backend.compare_and_set_many(
        [(k[0], b"a", b"b"), (k[1], b"a", b"b"), (k[2], b"a", b"b"), (k[3], b"a", b"b")]
    ) == [True, False, False, False]
    assert (raw.get(k[0]), raw.get(k[1]), raw.exists(k[2])) == (b"b", b"changed", 0)
    assert 0 < raw.pttl(k[0]) <= 50_000  # KEEPTTL

    async def run() -> list[bool]:
        ab = AsyncRedisBackend(redis_url, make_client().settings)
        try:
            return await ab.compare_and_set_many([(k[0], b"b", b"c"), (k[1], b"b", b"c")])
        finally:
            await ab.close()

    assert asyncio.run(run()) == [True, False]
    assert raw.get(k[0]) == b"c" and raw.pttl(k[0]) > 0


def test_a_version_1_frame_gets_its_redis_ttl_as_sealed_expiry(
        clients: tuple[CacheClient, CacheClient], raw: redis.Redis, make_client: MakeClient
) -> None:
    import msgpack

    from cachekit_web.core.data.codec import F_ENCRYPTED, MAGIC, VERSION_1

    old, new = clients
    ring = old.codec.keyring
    for name, px in (("short", 100_000), ("forever", None)):
        fk = old.full_key(name)
        header = MAGIC + bytes([VERSION_1, F_ENCRYPTED]) + ring.key_id  # the old format
        raw.set(fk, header + ring.seal(header, fk.encode(), msgpack.packb(name)), px=px)

    assert rotate(new.backend, new.codec).resealed == 2

    short, forever = raw.get(old.full_key("short")) or b"", raw.get(old.full_key("forever"))
    assert short[2] == 2 and key_id(short) == new.codec.keyring.key_id
    assert abs(Codec.expiry_of(short) - (time.time() + 100)) < 5  # not "never"
    assert forever is not None and Codec.expiry_of(forever) == 0.0
    reader = make_client(MASTER_KEY=KEY_B)
    assert (reader.get("short"), reader.get("forever")) == ("short", "forever")


def test_rotate_refuses_keys_that_look_swapped_unless_forced(
        clients: tuple[CacheClient, CacheClient], make_client: MakeClient, raw: redis.Redis,
        redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _, new = clients
    stored = fill(new, 40)  # the site runs with KEY_B: every entry is sealed with it
    before = snapshot(raw, namespace)
    # The operator swaps them: the old key as MASTER_KEY, the one in use as a previous key.
    monkeypatch.setenv("CACHEKIT_MASTER_KEY", KEY_A)
    monkeypatch.setenv("CACHEKIT_PREVIOUS_MASTER_KEYS", KEY_B)
    monkeypatch.setenv("CACHEKIT_NAMESPACE", namespace)
    out = io.StringIO()
    assert rotate_keys(redis_url, dry_run=False, batch=50, out=out, err=io.StringIO()) == 1
    assert out.getvalue().startswith("[E005]") and "--force" in out.getvalue()
    assert KEY_A not in out.getvalue() and KEY_B not in out.getvalue()
    assert snapshot(raw, namespace) == before  # nothing re-sealed
    only_new = make_client(MASTER_KEY=KEY_B)
    assert only_new.get_many(list(stored)) == stored  # readers with the new key still read
    assert main(["rotate", redis_url]) == 1

    assert main(["rotate", "--force", redis_url]) == 0  # the operator insists
    assert {key_id(v) for v in snapshot(raw, namespace).values()} == {
        make_client(MASTER_KEY=KEY_A).codec.keyring.key_id}
