"""A hostile Redis: a client with no key that writes over, publishes into and disconnects
whatever a test's cache client uses, on a private redis-server, while the test runs."""

from __future__ import annotations

import os
import random
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
import redis

from cachekit_web.embedded import EmbeddedRedis

CHANNEL = "__redis__:invalidate"
# What a writer with no key can put where a sealed value was.
DIGITS = (b"1", b"0", b"42", b"-7", b"99999999999999999999")
GARBAGE = (b"", b"\x00", b"\xff" * 9, b"CK", b"CK\x02\x01", b"CK\x02\x01" + b"\x00" * 40,
           b"\x93\x01\x02\x03", b"\xc1", b"not a frame")


class Adversary:
    """Attacks the keys of ``namespace`` on ``url`` from a background thread until stopped.

    Every action is one of: digits, garbage, another key's frame, another namespace's
    frame written over a key; a PUBLISH of garbage on the invalidation channel; a CLIENT
    KILL of every other connection. Bounded: it stops by itself after ``max_seconds``."""

    def __init__(self, url: str, namespace: str, *, others: tuple[str, ...] = (),
                 seed: int = 0, kill_every: int = 60, max_seconds: float = 120.0) -> None:
        self.namespace = namespace
        self.others = others  # namespaces whose valid frames are planted into ours
        self.counts: Counter[str] = Counter()
        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._rng = random.Random(seed)
        self._kill_every = kill_every
        self._max_seconds = max_seconds
        self._planted: set[bytes] = set()  # what copy() wrote: never copied again
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-adversary", daemon=True)

    def __enter__(self) -> Adversary:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def armed(self, times: int) -> bool:
        """Whether every kind of attack has been made at least ``times`` times."""
        c = self.counts
        return all(c[k] >= times for k in ("digits", "garbage", "published", "killed")) and (
            c["other-key"] + c["other-namespace"] >= times)

    def stop(self) -> None:
        """Stop attacking and wait for the thread (bounded)."""
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=10)
            assert not self._thread.is_alive(), "the adversary thread did not stop"
        self._redis.close()

    def copy(self, source: bytes | str, target: bytes | str) -> bool:
        """Write ``source``'s value over ``target`` (keeping its TTL); False if none.

        Never bytes it planted itself: a frame copied from ``target`` to another key and
        back would be ``target``'s own earlier value, a replay that sealing accepts until
        the frame's expiry (docs/security.md), not a forgery the cache must refuse."""
        data = self._redis.get(source)
        if not isinstance(data, bytes) or data in self._planted:  # None: nothing to copy
            return False
        self._redis.set(target, data, keepttl=True)
        self._planted.add(data)
        return True

    def _keys(self, namespace: str) -> list[bytes]:
        return [k for k in self._redis.scan_iter(match=f"{namespace}:*", count=200)
                if self._redis.type(k) == b"string"]

    def _run(self) -> None:
        deadline = threading.Event()
        timer = threading.Timer(self._max_seconds, deadline.set)
        timer.daemon = True
        timer.start()
        tick = 0
        try:
            while not self._stop.is_set() and not deadline.is_set():
                tick += 1
                try:
                    self._act(tick)
                except redis.RedisError:
                    self.counts["adversary-errors"] += 1
                self._stop.wait(0.002)
        finally:
            timer.cancel()

    def _act(self, tick: int) -> None:
        rng = self._rng
        if tick % self._kill_every == 0:
            # Every connection but this one: the client's pool, lanes and tracking.
            killed = self._redis.execute_command("CLIENT KILL", "SKIPME", "yes")
            self.counts["killed"] += int(killed or 0)
            return
        if tick % 7 == 0:
            payload = rng.choice([b"", b"\xff\xfe", os.urandom(rng.randint(1, 64)),
                                  f"{self.namespace}:a".encode(), b"1", b"*1\r\n"])
            self._redis.publish(CHANNEL, payload)
            self.counts["published"] += 1
            return
        keys = self._keys(self.namespace)
        if not keys:
            return
        target = rng.choice(keys)
        kind = rng.choice(["digits", "garbage", "other-key", "other-namespace"])
        if kind in ("digits", "garbage"):
            self._redis.set(target, rng.choice(DIGITS if kind == "digits" else GARBAGE),
                            keepttl=True)
        else:
            pool = (keys if kind == "other-key"
                    else [k for ns in self.others for k in self._keys(ns)])
            pool = [k for k in pool if k != target]
            if not pool or not self.copy(rng.choice(pool), target):
                return
        self.counts[kind] += 1


@pytest.fixture()
def hostile_redis() -> Iterator[EmbeddedRedis]:
    """A private redis-server for an adversary to attack (its CLIENT KILLs hit every client)."""
    server = EmbeddedRedis().start()
    try:
        yield server
    finally:
        server.stop()
