"""The concurrency checker: several spawned processes x threads against the suite's
redis-server, for what people build locks and limits on, checked against a model of
what must hold (one add() winner per key lifetime, exact counters, one computation per
get_or_set key, mutual exclusion for locks).

Every child is joined with a timeout and killed if still alive: nothing can hang.
"""

from __future__ import annotations

import multiprocessing
import queue as queues
import time
from typing import Any

import pytest
import redis

from .workers import worker

PROCESSES, THREADS = 2, 4
KEY_A = bytes(range(0xa1, 0xa1 + 32)).hex()
SEALED = {"MASTER_KEY": KEY_A, "ENCRYPTION": "required"}


def run(job: str, conf: dict[str, Any], processes: int = PROCESSES,
        threads: int = THREADS, limit: float = 45.0) -> list[dict[str, Any]]:
    """Run ``job`` in ``processes`` spawned children of ``threads`` threads each, started
    together; their results. Fails (never hangs) if a child errs or overruns ``limit``."""
    ctx = multiprocessing.get_context("spawn")
    results: Any = ctx.Queue()
    go = ctx.Event()
    children = [ctx.Process(target=worker, args=(job, results, go, p, threads, conf),
                            daemon=True) for p in range(processes)]
    deadline = time.monotonic() + limit
    out: list[dict[str, Any]] = []
    try:
        for child in children:
            child.start()
        ready = 0
        while ready < processes:
            got = results.get(timeout=max(0.1, deadline - time.monotonic()))
            if got == "ready":
                ready += 1
            else:
                out.append(got)  # a child failed before it was ready
                break
        go.set()
        while len(out) < processes:
            out.append(results.get(timeout=max(0.1, deadline - time.monotonic())))
    except queues.Empty:
        pytest.fail(f"{job}: children did not finish within {limit} s")
    finally:
        go.set()
        for child in children:
            child.join(timeout=max(0.1, deadline - time.monotonic()))
            if child.is_alive():
                child.kill()
                child.join(timeout=5)
        results.close()
    errors = [r["error"] for r in out if "error" in r]
    assert not errors, errors[0]
    return out


def total(parts: list[dict[str, Any]], name: str) -> int:
    return sum(int(p.get(name, 0)) for p in parts)


@pytest.mark.parametrize("via", ["core", "core-async", "django"])
def test_add_as_lock_never_double_held(redis_url: str, namespace: str, via: str) -> None:
    conf = {"url": redis_url, "namespace": namespace, "key": "task", "duration": 2.0,
            "inside": namespace + "-inside", "django": via == "django",
            "async": via == "core-async"}
    parts = run("lock_with_add", conf)
    acquired, overlaps = total(parts, "acquired"), total(parts, "overlaps")
    print(f"\n{via}: {acquired} acquisitions, {overlaps} double holds, "
          f"{total(parts, 'attempts')} attempts")
    assert acquired >= 20, "too few acquisitions to say anything"
    assert overlaps == 0, f"{overlaps} of {acquired} holds overlapped another"


def test_add_delete_one_winner_per_lifetime(redis_url: str, namespace: str,
                                            raw: redis.Redis) -> None:
    keys = [f"k{i}" for i in range(8)]
    conf = {"url": redis_url, "namespace": namespace, "keys": keys, "rounds": 25}
    parts = run("add_delete_lifetimes", conf)
    adds: dict[str, int] = {k: sum(p["adds"].get(k, 0) for p in parts) for k in keys}
    deletes: dict[str, int] = {k: sum(p["deletes"].get(k, 0) for p in parts) for k in keys}
    print(f"\nlifetimes per key: {adds}")
    assert all(n > 0 for n in adds.values())
    # Each key ends deleted (every add is followed by its thread's delete), so each
    # lifetime began with one winning add and ended with one delete that found it.
    assert adds == deletes
    assert not raw.keys(namespace + "*")


@pytest.mark.parametrize("mode", ["plain", "sealed"])
def test_counters_exact(redis_url: str, namespace: str, make_client: Any, mode: str) -> None:
    options = SEALED if mode == "sealed" else {}
    ops = 60
    conf = {"url": redis_url, "namespace": namespace, "ops": ops, "options": options}
    parts = run("counters", conf)
    n = PROCESSES * THREADS * ops
    seen = sorted(v for p in parts for v in p["seen"])
    assert seen == list(range(1, n + 1)), "two incr() calls saw the same value"
    check = make_client(**options)
    assert check.get("ticket") == n
    assert check.get("level") == n * 3 // 4 * 3 - n // 4 * 2


def test_get_or_set_computes_once(redis_url: str, namespace: str, raw: redis.Redis) -> None:
    keys = [f"g{i}" for i in range(6)]
    computed = namespace + "-computed:"
    conf = {"url": redis_url, "namespace": namespace, "keys": keys, "computed": computed}
    parts = run("compute_once", conf)
    assert total(parts, "wrong") == 0
    counts = {k: int(raw.get(computed + k) or 0) for k in keys}
    assert counts == dict.fromkeys(keys, 1), f"computations per key: {counts}"


def test_lock_mutual_exclusion(redis_url: str, namespace: str) -> None:
    conf = {"url": redis_url, "namespace": namespace, "duration": 2.0,
            "inside": namespace + "-inside"}
    parts = run("mutual_exclusion", conf)
    acquired, overlaps = total(parts, "acquired"), total(parts, "overlaps")
    print(f"\nlock: {acquired} acquisitions, {overlaps} overlaps, "
          f"{total(parts, 'timeouts')} timeouts")
    assert acquired >= 20
    assert overlaps == 0
