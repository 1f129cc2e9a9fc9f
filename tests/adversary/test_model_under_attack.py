"""The core API under a hostile Redis: no exception escapes a cache call, and with a key
every value read is one this test wrote for that key, or a miss."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest

from cachekit_web import AsyncCacheClient, CacheClient
from cachekit_web.embedded import EmbeddedRedis

from ..core.conftest import KEY_A, SIGNING
from ..core.test_model import _Blocking
from .conftest import Adversary

VALUE_KEYS = ["a", "b", "c", "d", "user:1", "price"]
COUNTER_KEYS = ["n0", "n1"]
VALUES: list[Any] = [{"id": 42}, 42, 1, "42", "text", b"\x00bytes", (1, 2), [3, 4], None,
                     {"nested": {"deep": [1.5, "x"]}}, True]
MODES = {"plain": {}, "signed": {"SIGNING_KEY": SIGNING}, "encrypted": {"MASTER_KEY": KEY_A}}
STEPS = 400
MAX_STEPS = 20_000
MISS = object()


def _same(a: Any, b: Any) -> bool:
    return bool(a == b) and type(a) is type(b)


class Model:
    """What each key may hold: the values this test may have left there (empty: only a miss)."""

    def __init__(self, checked: bool) -> None:
        self.checked = checked  # False without a key: forgeries cannot be told apart
        self.possible: dict[str, list[Any]] = {}
        self.bad: list[str] = []

    def wrote(self, key: str, value: Any, ok: bool) -> None:
        if ok:
            self.possible[key] = [value]
        else:  # a failed write may or may not have landed
            self.possible.setdefault(key, []).append(value)

    def read(self, op: str, key: str, got: Any) -> None:
        if not self.checked or got is MISS:
            return
        if not any(_same(got, v) for v in self.possible.get(key, [])):
            self.bad.append(f"{op}({key!r}) served {got!r}; the test wrote "
                            f"{self.possible.get(key, [])!r}")


def _step(rng: random.Random, client: Any, model: Model, counts: dict[str, int]) -> None:
    op = rng.choice(["set", "set", "get", "get", "get", "add", "delete", "get_many",
                     "set_many", "incr", "incr", "get_or_set", "touch", "clear"])
    key = rng.choice(VALUE_KEYS)
    value = rng.choice(VALUES)
    counts[op] = counts.get(op, 0) + 1
    if op == "set":
        model.wrote(key, value, client.set(key, value, 60) is True)
    elif op == "get":
        model.read(op, key, client.get(key, MISS))
    elif op == "add":
        if client.add(key, value, 60):
            model.wrote(key, value, True)
    elif op == "delete":
        client.delete(key)
        model.possible.pop(key, None)
    elif op == "get_many":
        keys = rng.sample(VALUE_KEYS + COUNTER_KEYS, 4)
        for k, v in client.get_many(keys).items():
            assert k in keys, f"get_many returned a key not asked for: {k!r}"
            model.read(op, k, v)
    elif op == "set_many":
        mapping = {k: rng.choice(VALUES) for k in rng.sample(VALUE_KEYS, 3)}
        failed = client.set_many(mapping, 60)
        for k, v in mapping.items():
            model.wrote(k, v, k not in failed)
    elif op == "incr":
        ckey = rng.choice(COUNTER_KEYS)
        delta = rng.randint(-3, 3)
        try:
            got = client.incr(ckey, delta, default=0)
        except ValueError:  # the documented answer for a value that is not a counter
            counts["incr-refused"] = counts.get("incr-refused", 0) + 1
            return
        starts = [v for v in model.possible.get(ckey, []) if type(v) is int] + [0]
        if got is None:  # fail-open: unknown whether the increment landed
            for s in starts:
                model.wrote(ckey, s + delta, False)
            return
        if model.checked and not any(got == s + delta for s in starts):
            model.bad.append(f"incr({ckey!r}, {delta}) -> {got!r}; possible starts {starts!r}")
        model.wrote(ckey, got, True)
    elif op == "get_or_set":
        got = client.get_or_set(key, lambda: value, 60)
        if _same(got, value):
            model.wrote(key, value, False)  # computed (maybe stored) or a match: keep both
        else:
            model.read(op, key, got)
    elif op == "touch":
        client.touch(key, 60)
    elif op == "clear" and rng.random() < 0.2:
        client.clear()
        model.possible.clear()


def _client(url: str, flavour: str, ns: str, tier: bool, extra: dict[str, Any]) -> Any:
    settings = {"NAMESPACE": ns, "LOCAL_CACHE": tier, "SOCKET_TIMEOUT": 0.5,
                "SOCKET_CONNECT_TIMEOUT": 0.5, **extra}
    if flavour == "sync":
        return CacheClient.from_url(url, **settings)
    return _Blocking(AsyncCacheClient.from_url(url, **settings))


@pytest.mark.parametrize("tier", [False, True], ids=["network", "tier"])
@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("mode", list(MODES))
def test_api_under_attack(hostile_redis: EmbeddedRedis, mode: str, flavour: str,
                          tier: bool) -> None:
    ns = "adv-" + uuid.uuid4().hex[:8]
    other_ns = ns + "-other"
    extra = MODES[mode]
    client = _client(hostile_redis.url, flavour, ns, tier, extra)
    # Valid frames sealed by the same key holder, for another namespace and other keys.
    other = CacheClient.from_url(hostile_redis.url, NAMESPACE=other_ns, **extra)
    for i, k in enumerate(VALUE_KEYS + COUNTER_KEYS):
        other.set(k, VALUES[i % len(VALUES)], 600)
    other.close()
    model = Model(checked=mode != "plain")
    rng = random.Random(f"{mode}-{flavour}-{tier}")
    counts: dict[str, int] = {}
    adversary = Adversary(hostile_redis.url, ns, others=(other_ns,),
                          seed=rng.randint(0, 2**31))
    try:
        with adversary:
            # Go on until the adversary has used every weapon twice (bounded in steps).
            for step in range(MAX_STEPS):
                _step(rng, client, model, counts)  # any exception fails the test
                if step >= STEPS and adversary.armed(2):
                    break
    finally:
        client.close()
    attacks = adversary.counts
    assert attacks["digits"] and attacks["garbage"] and attacks["published"], attacks
    assert attacks["other-key"] + attacks["other-namespace"], attacks
    assert attacks["killed"], attacks
    assert not model.bad, "\n".join(model.bad[:10])
