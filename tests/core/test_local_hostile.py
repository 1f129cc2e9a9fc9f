"""The in-process tier against a hostile Redis: garbage on the invalidation channel, a
killed tracking connection, redis-py without hiredis, values it cannot copy, its memory
cap, and this process's own writes (issue 16 items 3, 5 and 12)."""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import pytest

from cachekit_web.core.data.codec import Entry
from cachekit_web.core.local import tier as local_mod
from cachekit_web.core.local.tier import LocalTier

from .conftest import KEY_A, MakeClient, raw_for
from .test_local import make_tier, store, wait_for

CHANNEL = "__redis__:invalidate"
GARBAGE: list[Any] = [
    b"a plain string", 42, -7, 3.5, b"", b"\r\n", b"\xff\xfe\x80 not UTF-8 \xc3",
    b"*2\r\n$1\r\na\r\n*1\r\n*1\r\n:1\r\n",  # RESP that looks like nested arrays
    b"-ERR forged\r\n", b"x" * (1 << 20),  # a 1 MiB payload
]


@pytest.fixture(autouse=True)
def _fresh_tiers() -> Iterator[None]:
    yield
    local_mod.close_all()


class Publisher:
    """A plain redis-py client with no key publishing garbage on the invalidation channel
    until stopped (bounded by ``limit`` messages)."""

    def __init__(self, url: str, every: float = 0.01, limit: int = 5000) -> None:
        self.raw = raw_for(url)
        self.every, self.limit, self.sent = every, limit, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set() and self.sent < self.limit:
            self.raw.publish(CHANNEL, GARBAGE[self.sent % len(GARBAGE)])
            self.sent += 1
            self.stop.wait(self.every)

    def __enter__(self) -> Publisher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)
        self.raw.close()


def _tracking_ids(raw: Any) -> list[int]:
    """Client ids of tracking connections (flags t: tracking, P: subscribed)."""
    return [int(c["id"]) for c in raw.client_list()
            if "t" in c["flags"] and "P" in c["flags"]]


def _hits_again(client: Any, key: str, want: Any) -> bool:
    """Whether ``key`` is served from memory (a tier hit) with the value ``want``."""
    before = client.metrics.totals["local_hits"]

    def served() -> bool:
        return client.get(key) == want and client.metrics.totals["local_hits"] > before

    return wait_for(served, 5.0)


# -- item 3: garbage on __redis__:invalidate ---------------------------------------
def test_garbage_on_the_invalidation_channel_never_reaches_a_caller(
        make_client: MakeClient) -> None:
    reader = make_client(LOCAL_CACHE=True)
    writer = make_client()
    keys = [f"k{i}" for i in range(6)]
    written: dict[str, list[int]] = {k: [0] for k in keys}
    for k in keys:
        writer.set(k, {"key": k, "n": 0})
    reader.get(keys[0])
    tier = reader._local
    assert wait_for(lambda: tier.live)
    errors: list[BaseException] = []
    wrong: list[tuple[str, Any]] = []
    reads = [0]
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            for k in keys:
                try:
                    got = reader.get(k)
                except BaseException as exc:  # what the test is about: nothing escapes
                    errors.append(exc)
                    continue
                reads[0] += 1
                # Only a value this test wrote for this key (or a miss) may be served.
                if got is not None and (got.get("key") != k or got.get("n") not in written[k]):
                    wrong.append((k, got))

    def write() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            k = keys[n % len(keys)]
            written[k].append(n)  # recorded before the write: a reader may see it at once
            writer.set(k, {"key": k, "n": n})
            stop.wait(0.005)

    threads = [threading.Thread(target=read) for _ in range(3)]
    threads.append(threading.Thread(target=write))
    with Publisher(reader.url) as pub:
        for t in threads:
            t.start()
        wait_for(lambda: pub.sent >= 3 * len(GARBAGE), 10.0)
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join(10)
    assert pub.sent >= 3 * len(GARBAGE)
    assert errors == [] and wrong == [] and reads[0] > 100
    assert reader.metrics.totals["local_bad_messages"] >= pub.sent // 2  # counted
    # Once the garbage stops, the tier serves hits again, and the values are the last ones.
    for k in keys:
        last = {"key": k, "n": written[k][-1]}
        assert wait_for(lambda k=k, last=last: reader.get(k) == last)  # type: ignore[misc]
    assert _hits_again(reader, keys[0], {"key": keys[0], "n": written[keys[0]][-1]})


def test_a_bulk_string_on_the_channel_flushes_and_is_counted(redis_url: str,
                                                            namespace: str) -> None:
    prefix = namespace + ":"
    tier = make_tier(redis_url, prefix)
    raw = raw_for(redis_url)
    try:
        assert wait_for(lambda: tier.live)
        assert store(tier, prefix + "a", 1)
        flushes = tier.flushes
        raw.publish(CHANNEL, b"not a list of keys")
        assert wait_for(lambda: (tier.lookup(prefix + "a"), tier.flushes > flushes)[1])
        assert tier.bad_messages == 1 and len(tier) == 0
        assert tier.live  # a flush, not an outage
        assert store(tier, prefix + "a", 2) and tier.lookup(prefix + "a") == Entry(2)
    finally:
        raw.close()
        tier.close()


def test_a_killed_tracking_connection_turns_the_tier_off_then_back(
        make_client: MakeClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "cachekit_web.local")
    reader = make_client(LOCAL_CACHE=True)
    writer = make_client()
    writer.set("k", "v1")
    reader.get("k")
    tier = reader._local
    assert wait_for(lambda: tier.live)
    assert _hits_again(reader, "k", "v1")
    raw = raw_for(reader.url)
    try:
        for outage in (1, 2):
            ids = _tracking_ids(raw)
            assert tier.client_id in ids
            raw.client_kill_filter(_id=tier.client_id)
            # Off: nothing served from memory; reads go to Redis and see other writers.
            assert wait_for(lambda ids=ids: not tier.live or tier.client_id not in ids)
            writer.set("k", f"v{outage + 1}")
            assert reader.get("k") == f"v{outage + 1}"
            # Back: a new tracking connection, hits again.
            assert _hits_again(reader, "k", f"v{outage + 1}")
            assert tier.client_id not in ids
            warned = [r for r in caplog.records if "E070" in r.getMessage()]
            assert len(warned) == outage  # once per outage
    finally:
        raw.close()


def test_an_outage_warns_once_not_per_attempt(own_redis: Any,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "cachekit_web.local")
    tier = make_tier(own_redis.url, "ns:")
    try:
        assert wait_for(lambda: tier.live)
        own_redis.stop()
        assert wait_for(lambda: not tier.live)
        time.sleep(1.0)  # several reconnect attempts (backoff from 50 ms)
        warned = [r for r in caplog.records
                  if r.levelno == logging.WARNING and "E070" in r.getMessage()]
        assert len(warned) == 1
    finally:
        tier.close()


class _StuckReader(LocalTier):
    """A tier whose reader thread stalls inside an invalidation (as the GIL may stall it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.stall_on = b""
        super().__init__(*args, **kwargs)

    def _invalidate(self, keys: Any) -> None:
        if (self.stall_on and isinstance(keys, list) and self.stall_on in keys
                and threading.current_thread() is self._thread):
            self.entered.set()
            self.release.wait(5)
        super()._invalidate(keys)


def test_lookup_never_serves_an_entry_whose_invalidation_was_read(redis_url: str,
                                                                  namespace: str) -> None:
    """The reader thread has taken the invalidation off the socket but not applied it
    yet: a lookup then must wait for it (or miss), never serve the old entry."""
    from cachekit_web.core._sync.redis import pool_for
    from cachekit_web.core.settings import Settings

    prefix = namespace + ":"
    pool = pool_for(redis_url, Settings(REDIS_URL=redis_url))
    tier = _StuckReader(lambda: pool.connection_class(**local_mod.tracking_kwargs(pool)),
                        prefix, max_entries=100, max_bytes=10_000, lease=1.0)
    raw = raw_for(redis_url)
    try:
        assert wait_for(lambda: tier.live)
        fk = prefix + "k"
        assert store(tier, fk, "old")
        tier.stall_on = fk.encode()
        raw.set(fk, b"new")
        assert tier.entered.wait(5)  # the reader thread holds the invalidation
        got: list[Any] = []
        looker = threading.Thread(target=lambda: got.append(tier.lookup(fk)))
        looker.start()
        looker.join(0.2)
        tier.release.set()
        looker.join(5)
        assert got == [None]
    finally:
        tier.release.set()
        raw.close()
        tier.close()


class _DyingReader(LocalTier):
    """A tier whose reader thread ends abruptly once (as a BaseException would end it)."""

    die = False

    def _serve(self) -> None:
        if self.die:
            self.die = False
            raise SystemExit  # ends the thread without a traceback
        super()._serve()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_reader_thread_turns_the_tier_off_and_is_restarted(
        redis_url: str, namespace: str, caplog: pytest.LogCaptureFixture) -> None:
    from cachekit_web.core._sync.redis import pool_for
    from cachekit_web.core.settings import Settings

    caplog.set_level(logging.WARNING, "cachekit_web.local")
    prefix = namespace + ":"
    pool = pool_for(redis_url, Settings(REDIS_URL=redis_url))
    tier = _DyingReader(lambda: pool.connection_class(**local_mod.tracking_kwargs(pool)),
                        prefix, max_entries=100, max_bytes=10_000, lease=1.0)
    try:
        assert wait_for(lambda: tier.live)
        assert store(tier, prefix + "a", 1)
        first = tier._thread
        assert first is not None
        tier.die = True
        raw = raw_for(redis_url)
        raw.client_kill_filter(_id=tier.client_id)  # the reader reconnects...
        raw.close()
        first.join(5)  # ...and dies in the attempt
        assert not first.is_alive()
        assert not tier.live and len(tier) == 0 and tier.lookup(prefix + "a") is None
        assert "E070" in caplog.text
        store(tier, prefix + "a", 2)  # the next read restarts the reader
        assert tier._thread is not first
        assert wait_for(lambda: tier.live)
        assert store(tier, prefix + "a", 3) and tier.lookup(prefix + "a") == Entry(3)
    finally:
        tier.close()


# -- item 5: without hiredis ---------------------------------------------------------
_NO_HIREDIS = textwrap.dedent("""
    import logging, sys, time
    sys.modules["hiredis"] = None  # as on a default install: redis-py's own parsers
    import redis
    from cachekit_web import CacheClient
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout)
    c = CacheClient.from_url(sys.argv[1], LOCAL_CACHE=True, NAMESPACE=sys.argv[2])
    c.set("k", [1, 2])
    c.get("k")
    end = time.monotonic() + 10
    while not (c._local is not None and c._local.live) and time.monotonic() < end:
        time.sleep(0.01)
    c.get("k")  # the first read while live fills the tier
    for _ in range(3):
        assert c.get("k") == [1, 2]
    hits = c.metrics.totals["local_hits"]
    print("redis", redis.__version__, "live", c._local.live, "hits", hits)
    c.close()
""")


def test_the_tier_works_without_hiredis(redis_url: str, namespace: str) -> None:
    out = subprocess.run([sys.executable, "-c", _NO_HIREDIS, redis_url, namespace],
                         capture_output=True, text=True, timeout=60, check=False,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "live True" in out.stdout and "hits 3" in out.stdout, out.stdout
    assert "E070" not in out.stdout


def test_a_tier_that_cannot_start_says_so_once(redis_url: str, namespace: str,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "cachekit_web.local")

    def refuse() -> Any:
        raise OSError("refused")  # as a tracking connection that can never open

    tier = LocalTier(refuse, namespace + ":", max_entries=10, max_bytes=1000, lease=1.0)
    try:
        time.sleep(0.6)  # several attempts
        warned = [r for r in caplog.records
                  if r.levelno == logging.WARNING and "E070" in r.getMessage()]
        assert len(warned) == 1 and not tier.live
    finally:
        tier.close()


# -- item 12: copier depth, memory cap, own writes -------------------------------------
def _deep(n: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": [1]}
    for _ in range(n):
        value = {"d": value}
    return value


@pytest.mark.skipif(
    msgpack.Packer.__module__ == "msgpack.fallback",
    reason="pure-Python msgpack (no wheel for this Python) cannot pack 400 levels: E020")
def test_a_deep_value_reads_the_same_with_the_tier_on(make_client: MakeClient) -> None:
    c = make_client(LOCAL_CACHE=True)
    deep = _deep(400)
    c.set("deep", deep)
    assert c.get("deep") == deep
    assert wait_for(lambda: c._local.live)
    for _ in range(3):
        assert c.get("deep") == deep
    got = c.get("deep")
    inner = got
    for _ in range(400):
        inner = inner["d"]
    inner["leaf"].append(2)  # a caller's change is never seen by the next reader
    assert c.get("deep") == deep


def test_a_self_referencing_value_reads_the_same_with_the_tier_on(
        make_client: MakeClient) -> None:
    c = make_client(LOCAL_CACHE=True, PICKLE_FALLBACK=True, MASTER_KEY=KEY_A)
    loop: dict[str, Any] = {"name": "loop", "tags": {1, 2}}
    loop["self"] = loop
    c.set("loop", loop)
    c.get("loop")
    assert wait_for(lambda: c._local.live)
    for _ in range(3):
        got = c.get("loop")
        assert got["name"] == "loop" and got["self"] is got
    assert pickle.dumps(got)


def test_the_memory_cap_counts_decoded_bytes(make_client: MakeClient) -> None:
    cap = 256 * 1024
    c = make_client(LOCAL_CACHE=True, LOCAL_CACHE_MAX_BYTES=cap)
    for i in range(40):
        c.set(f"big{i}", "a" * (200 * 1024))  # 200 KiB each, a few hundred bytes sealed
    c.get("big0")
    assert wait_for(lambda: c._local.live)
    for _ in range(2):
        for i in range(40):
            assert c.get(f"big{i}") == "a" * (200 * 1024)
    tier = c._local
    held = sum(len(e.value) for e, *_ in tier._entries.values())
    assert held <= cap and tier.size_bytes <= cap
    assert len(tier) >= 1  # one such value fits, and is served from memory
    c.set("small", "s" * 1000)
    c.get("small")
    assert tier.size_bytes >= 1000


def _own(c: Any, name: str) -> tuple[Callable[[], Any], Any]:
    """A write of ``name`` by ``c`` itself and the value a read must give at once."""
    if name == "incr":
        c.set("n", 1)
        return lambda: c.incr("n"), 2
    if name == "decr":
        c.set("n", 5)
        return lambda: c.decr("n"), 4
    if name == "clear":
        c.set("n", 1)
        return c.clear, None
    if name == "delete_pattern":
        c.set("n", 1)
        return lambda: c.delete_pattern("n*"), None
    if name == "expire":
        c.set("n", 1)
        return lambda: c.expire("n", 0.05), None  # read after it lapsed: a miss
    if name == "set_many":
        c.set("n", 1)
        return lambda: c.set_many({"n": 7}), 7
    if name == "touch":
        c.set("n", 1)
        return lambda: c.touch("n", 0.05), None
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["incr", "decr", "clear", "delete_pattern", "expire",
                                  "set_many", "touch"])
def test_own_writes_are_read_through_the_tier_at_once(make_client: MakeClient,
                                                      name: str) -> None:
    c = make_client(LOCAL_CACHE=True)
    write, want = _own(c, name)
    c.get("n")
    tier = c._local
    assert wait_for(lambda: tier.live)
    c.get("n")
    assert len(tier) == 1  # held in memory
    # The server's invalidation may come after our next read: hold it in the socket.
    tier.drain = lambda: None
    try:
        write()
        if name in ("expire", "touch"):
            time.sleep(0.1)
        got = c.get("n")
    finally:
        del tier.drain
    assert got == want
