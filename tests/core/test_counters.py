"""Counters under contention: exact counts, no errors; plain Redis integers where allowed."""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

import pytest
import redis

from cachekit_web import CacheClient

from .conftest import KEY_A, SIGNING, MakeClient

PROCESSES, THREADS, PER_THREAD = 4, 32, 10  # 128 concurrent writers, 1280 increments

MODES: dict[str, dict[str, Any]] = {
    "plain": {},
    "signed": {"SIGNING_KEY": SIGNING},
    "encrypted": {"MASTER_KEY": KEY_A},
    "required": {"MASTER_KEY": KEY_A, "ENCRYPTION": "required"},
}


def _hammer(args: tuple[str, str, dict[str, Any], int, int]) -> tuple[int, list[str]]:
    """In a child process: THREADS threads incr one key; (None answers, exception names)."""
    url, namespace, options, threads, per_thread = args
    client = CacheClient.from_url(url, NAMESPACE=namespace, CONNECTION_POOL_SIZE=threads,
                                  **options)
    nones = [0]
    errors: list[str] = []
    start = threading.Barrier(threads)

    def run() -> None:
        start.wait(timeout=30)
        for _ in range(per_thread):
            try:
                if client.incr("hits") is None:
                    nones[0] += 1
            except Exception as exc:  # every exception is a failure of the test
                errors.append(f"{type(exc).__name__}: {exc}")

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    client.close()
    return nones[0], errors


@pytest.mark.parametrize("mode", ["plain", "required"])
def test_concurrent_writers_threads_and_processes_count_exactly(
        mode: str, make_client: MakeClient, redis_url: str, namespace: str) -> None:
    options = MODES[mode]
    c = make_client(**options)
    assert c.add("hits", 0) is True
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(PROCESSES) as pool:
        results = pool.map(_hammer, [(redis_url, namespace, options, THREADS, PER_THREAD)]
                           * PROCESSES, chunksize=1)
    assert [e for _, errors in results for e in errors] == []
    assert sum(n for n, _ in results) == 0
    assert c.get("hits") == PROCESSES * THREADS * PER_THREAD


@pytest.mark.parametrize("mode", ["plain", "signed", "encrypted"])
def test_plain_counters_are_stored_as_redis_integers(
        mode: str, make_client: MakeClient, raw: redis.Redis) -> None:
    # Without a key every int is a Redis integer; with one, only PLAIN_COUNTERS keys.
    c = make_client(**MODES[mode], **({"PLAIN_COUNTERS": ["n"]} if mode != "plain" else {}))
    c.set("n", 41)
    fk = c.full_key("n")
    assert raw.get(fk) == b"41" and raw.object("encoding", fk) == b"int"
    assert c.incr("n") == 42 and raw.get(fk) == b"42"
    assert raw.incrby(fk, 8) == 50  # what INCRBY leaves there reads back as an int
    assert c.get("n") == 50 and type(c.get("n")) is int
    assert c.get_many(["n"]) == {"n": 50}
    assert c.decr("n", 60) == -10 and c.get("n") == -10
    assert 0 < c.ttl("n") <= 300  # type: ignore[operator]


@pytest.mark.parametrize("mode", ["plain", "signed", "encrypted"])
def test_only_plain_ints_are_stored_raw(mode: str, make_client: MakeClient,
                                        raw: redis.Redis) -> None:
    c = make_client(**MODES[mode])
    for key, value in [("t", True), ("s", "12"), ("f", 1.0), ("big", 2**70), ("l", [1])]:
        c.set(key, value)
        assert raw.get(c.full_key(key))[:2] == b"CK", key  # type: ignore[index]
        assert c.get(key) == value and type(c.get(key)) is type(value)
    c.set("fresh", 3, 60, stale_ttl=30)  # a stale-while-revalidate entry needs its frame
    assert raw.get(c.full_key("fresh"))[:2] == b"CK"  # type: ignore[index]
    assert c.incr("fresh") == 4 and c.get("fresh") == 4


def test_required_encryption_keeps_counters_sealed(make_client: MakeClient,
                                                   raw: redis.Redis) -> None:
    c = make_client(**MODES["required"])
    c.set("n", 41)
    fk = c.full_key("n")
    assert raw.get(fk)[:2] == b"CK" and b"41" not in raw.get(fk)  # type: ignore[index,operator]
    assert c.incr("n") == 42 and raw.get(fk)[:2] == b"CK"  # type: ignore[index]
    raw.set(c.full_key("planted"), b"7")  # an unauthenticated integer is not read
    assert c.get("planted") is None and c.incr("planted") is None


def test_incr_overflowing_64_bits_keeps_counting(make_client: MakeClient) -> None:
    c = make_client(SIGNING_KEY=SIGNING)
    c.set("n", 2**63 - 2)
    assert c.incr("n") == 2**63 - 1
    assert c.incr("n") == 2**63  # past INCRBY's range: stored sealed, still exact
    assert c.incr("n", 2) == 2**63 + 2 and c.get("n") == 2**63 + 2
    assert c.decr("n", 3) == 2**63 - 1


@pytest.mark.parametrize("mode", ["plain", "required"])
def test_incr_missing_default_and_ignore_key_check(mode: str, make_client: MakeClient) -> None:
    c = make_client(**MODES[mode])
    assert c.incr("absent") is None and c.get("absent") is None
    assert c.incr("a", 5, default=10) == 15 and c.get("a") == 15
    assert c.incr("b", 3, ignore_key_check=True) == 3 and c.incr("b", ignore_key_check=True) == 4
    assert 0 < c.ttl("b") <= 300  # type: ignore[operator]
    c.set("word", "x")
    with pytest.raises(ValueError):
        c.incr("word")
    assert c.get("word") == "x"


def test_incr_on_a_planted_non_integer_is_refused(make_client: MakeClient,
                                                  raw: redis.Redis) -> None:
    c = make_client()
    raw.set(c.full_key("junk"), b"12abc")
    assert c.get("junk") is None  # neither a frame nor an integer: a miss
    assert c.incr("junk") is None
    assert c.incr("junk", default=0) == 1 and c.get("junk") == 1


def test_counters_on_the_memory_backend(make_client: MakeClient) -> None:
    c = make_client("memory://counters")
    c.set("n", 1)
    assert c.incr("n") == 2 and c.decr("n", 5) == -3 and c.get("n") == -3
    assert c.incr("absent") is None and c.incr("absent", ignore_key_check=True) == 1
    c.set("n", 2**63 - 1)
    assert c.incr("n") == 2**63
