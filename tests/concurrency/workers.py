"""What the concurrency checker's child processes run (spawned: importable, no fixtures).

Each worker builds its clients, reports ready, waits for the parent's go (so every
process and thread starts together), runs its threads, and puts one result dict on
the queue: counts the parent checks against the model, or the error.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from typing import Any

import redis


def worker(job: str, queue: Any, go: Any, proc: int, threads: int, conf: dict[str, Any]) -> None:
    """Run ``job``'s threads in this process; put its result (or error) on ``queue``."""
    try:
        result = JOBS[job](queue, go, proc, threads, conf)
    except BaseException:  # the parent must hear of it rather than wait
        result = {"error": traceback.format_exc()}
    queue.put(result)


# Every call must reach Redis and get its answer, however loaded the machine: a fail-open
# answer (a timed-out delete, a get that missed) would look like a broken promise.
PATIENT = {"SOCKET_TIMEOUT": 10.0, "POOL_TIMEOUT": 10.0, "CIRCUIT_BREAKER_ENABLED": False,
           "STRICT": True}


def _options(conf: dict[str, Any]) -> dict[str, Any]:
    return {"NAMESPACE": conf["namespace"], **PATIENT, **conf.get("options", {})}


def _client(conf: dict[str, Any]) -> Any:
    from cachekit_web import CacheClient

    return CacheClient.from_url(conf["url"], **_options(conf))


def _django_cache(conf: dict[str, Any]) -> Any:
    import django
    from django.conf import settings

    settings.configure(SECRET_KEY="concurrency-checker", USE_TZ=True, CACHES={"default": {
        "BACKEND": "cachekit_web.django.CachekitCache", "LOCATION": conf["url"],
        "OPTIONS": _options(conf)}})
    django.setup()
    from django.core.cache import cache

    return cache


def _run_threads(queue: Any, go: Any, threads: int, body: Callable[[int], dict[str, Any]],
                 timeout: float) -> list[dict[str, Any]]:
    """Start ``threads`` bodies together once the parent says go; their results."""
    out: list[dict[str, Any]] = [{} for _ in range(threads)]
    errors: list[str] = []
    start = threading.Event()

    def run(i: int) -> None:
        start.wait()
        try:
            out[i] = body(i)
        except BaseException:
            errors.append(traceback.format_exc())

    pool = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    queue.put("ready")
    if not go.wait(timeout):
        raise TimeoutError("the parent never said go")
    start.set()
    for t in pool:
        t.join(timeout)
    if any(t.is_alive() for t in pool):
        raise TimeoutError("a worker thread did not finish in time")
    if errors:
        raise RuntimeError(errors[0])
    return out


def _sum(parts: list[dict[str, Any]]) -> dict[str, Any]:
    total: Counter[str] = Counter()
    for part in parts:
        total.update({k: v for k, v in part.items() if isinstance(v, int)})
    return dict(total)


def lock_with_add(queue: Any, go: Any, proc: int, threads: int,
                  conf: dict[str, Any]) -> dict[str, Any]:
    """The "one task at a time" pattern: add() takes the key, delete() releases it.

    A hold overlaps another when the shared in-section counter is above 1 while it is
    held, or when the key no longer holds this holder's token at release time.
    """
    if conf.get("async"):
        return _lock_with_async_add(queue, go, proc, threads, conf)
    cache = _django_cache(conf) if conf.get("django") else _client(conf)
    r = redis.Redis.from_url(conf["url"], socket_timeout=10)
    inside, key, duration = conf["inside"], conf["key"], conf["duration"]

    def body(i: int) -> dict[str, Any]:
        acquired = overlaps = 0
        n = 0
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            n += 1
            token = f"{proc}-{i}-{n}"
            if not cache.add(key, token, 30):
                continue
            acquired += 1
            overlap = r.incr(inside) != 1
            time.sleep(0.0005)  # the task
            overlap = cache.get(key) != token or overlap
            r.decr(inside)
            overlaps += overlap
            cache.delete(key)
        return {"acquired": acquired, "overlaps": overlaps, "attempts": n}

    return _sum(_run_threads(queue, go, threads, body, duration + 20))


def _lock_with_async_add(queue: Any, go: Any, proc: int, threads: int,
                         conf: dict[str, Any]) -> dict[str, Any]:
    """lock_with_add through AsyncCacheClient: one event loop per thread."""
    import asyncio

    from cachekit_web import AsyncCacheClient

    cache = AsyncCacheClient.from_url(conf["url"], **_options(conf))
    r = redis.Redis.from_url(conf["url"], socket_timeout=10)
    inside, key, duration = conf["inside"], conf["key"], conf["duration"]

    async def run(i: int) -> dict[str, Any]:
        acquired = overlaps = 0
        n = 0
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            n += 1
            token = f"{proc}-{i}-{n}"
            if not await cache.add(key, token, 30):
                continue
            acquired += 1
            overlap = r.incr(inside) != 1
            await asyncio.sleep(0.0005)
            overlap = await cache.get(key) != token or overlap
            r.decr(inside)
            overlaps += overlap
            await cache.delete(key)
        return {"acquired": acquired, "overlaps": overlaps, "attempts": n}

    return _sum(_run_threads(queue, go, threads, lambda i: asyncio.run(run(i)),
                             duration + 20))


def add_delete_lifetimes(queue: Any, go: Any, proc: int, threads: int,
                         conf: dict[str, Any]) -> dict[str, Any]:
    """Every thread adds then deletes each key in turn: per key, each lifetime starts with
    exactly one add() that returns True and ends with exactly one delete() that does."""
    client = _client(conf)
    keys = conf["keys"]

    def body(i: int) -> dict[str, Any]:
        rng = random.Random(proc * 1000 + i)
        adds: Counter[str] = Counter()
        deletes: Counter[str] = Counter()
        for _ in range(conf["rounds"]):
            order = list(keys)
            rng.shuffle(order)
            for k in order:
                adds[k] += bool(client.add(k, f"{proc}-{i}", 30))
                deletes[k] += client.delete(k) is True
        return {"adds": dict(adds), "deletes": dict(deletes)}

    parts = _run_threads(queue, go, threads, body, 60)
    adds: Counter[str] = Counter()
    deletes: Counter[str] = Counter()
    for p in parts:
        adds.update(p["adds"])
        deletes.update(p["deletes"])
    return {"adds": dict(adds), "deletes": dict(deletes)}


def counters(queue: Any, go: Any, proc: int, threads: int, conf: dict[str, Any]) -> dict[str, Any]:
    """incr by 1 on one key (every answer must be distinct) and mixed incr/decr on another."""
    client = _client(conf)
    ops = conf["ops"]

    def body(i: int) -> dict[str, Any]:
        seen = [client.incr("ticket", 1, default=0) for _ in range(ops)]
        for n in range(ops):
            if n % 4 == 3:
                client.decr("level", 2, default=0)
            else:
                client.incr("level", 3, default=0)
        return {"seen": seen}

    parts = _run_threads(queue, go, threads, body, 60)
    return {"seen": [v for p in parts for v in p["seen"]]}


def compute_once(queue: Any, go: Any, proc: int, threads: int,
                 conf: dict[str, Any]) -> dict[str, Any]:
    """get_or_set on shared keys; each computation is counted in Redis by the compute."""
    client = _client(conf)
    r = redis.Redis.from_url(conf["url"], socket_timeout=10)
    keys = conf["keys"]

    def body(i: int) -> dict[str, Any]:
        rng = random.Random(proc * 1000 + i)
        wrong = 0
        order = list(keys)
        rng.shuffle(order)
        for k in order:
            def compute(k: str = k) -> str:
                r.incr(conf["computed"] + k)
                time.sleep(0.02)
                return "v-" + k
            wrong += client.get_or_set(k, compute, 60) != "v-" + k
        return {"wrong": wrong}

    return _sum(_run_threads(queue, go, threads, body, 60))


def mutual_exclusion(queue: Any, go: Any, proc: int, threads: int,
                     conf: dict[str, Any]) -> dict[str, Any]:
    """client.lock() around a critical section that counts who is inside."""
    from cachekit_web.core.errors import LockTimeoutError

    client = _client(conf)
    r = redis.Redis.from_url(conf["url"], socket_timeout=10)
    inside, duration = conf["inside"], conf["duration"]

    def body(i: int) -> dict[str, Any]:
        acquired = overlaps = timeouts = 0
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            try:
                with client.lock("section", timeout=30, sleep=0.002, blocking_timeout=5):
                    acquired += 1
                    overlaps += r.incr(inside) != 1
                    time.sleep(0.0005)
                    r.decr(inside)
            except LockTimeoutError:
                timeouts += 1
        return {"acquired": acquired, "overlaps": overlaps, "timeouts": timeouts}

    return _sum(_run_threads(queue, go, threads, body, duration + 20))


JOBS: dict[str, Callable[..., dict[str, Any]]] = {
    "lock_with_add": lock_with_add,
    "add_delete_lifetimes": add_delete_lifetimes,
    "counters": counters,
    "compute_once": compute_once,
    "mutual_exclusion": mutual_exclusion,
}
