"""memory:// backend: the same client semantics, plus TTL expiry and LRU eviction."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from cachekit_web import CacheClient
from cachekit_web.core.backends.memory import MemoryBackend


@pytest.fixture()
def mem() -> CacheClient:
    return CacheClient.from_url(f"memory://{uuid.uuid4().hex}", NAMESPACE="m")


def test_memory_basic_operations(mem: CacheClient) -> None:
    c = mem
    assert c.get("k") is None
    assert c.set("k", (1, "a")) and c.get("k") == (1, "a")
    assert c.add("k", 2) is False and c.add("j", None) is True and c.has_key("j")
    assert c.get_many(["k", "j", "x"]) == {"k": (1, "a"), "j": None}
    assert c.set_many({"a": 1, "b": 2}) == []
    assert c.delete_many(["a", "b", "c"]) == 2
    assert c.delete("k") is True and c.delete("k") is False
    assert c.incr("n") is None and c.incr("n", default=0) == 1 and c.decr("n") == 0
    c.set("s", "x")
    with pytest.raises(ValueError):
        c.incr("s")
    assert c.touch("n", None) and c.ttl("n") is None
    assert c.touch("missing", 5) is False and c.ttl("missing") == 0.0
    assert c.get_or_set("g", lambda: 5) == 5 and c.fetch("g", lambda: 6).status == "hit"
    assert c.health().status == "ok" and c.describe() == "memory://"
    assert c.clear() >= 3 and c.get("g") is None


def test_memory_ttl(mem: CacheClient) -> None:
    mem.set("short", 1, 0.15)
    mem.set("forever", 1, None)
    assert 0 < (mem.ttl("short") or 0) <= 0.15
    time.sleep(0.2)
    assert mem.get("short") is None and mem.ttl("short") == 0.0
    assert mem.get("forever") == 1 and mem.ttl("forever") is None
    mem.set("gone", 1)
    mem.set("gone", 1, 0)
    assert mem.get("gone") is None


def test_memory_lru_eviction() -> None:
    c = CacheClient.from_url(f"memory://{uuid.uuid4().hex}", MEMORY_MAX_ENTRIES=3)
    for k in ("a", "b", "c"):
        c.set(k, k)
    assert c.get("a") == "a"  # a becomes most recently used
    c.set("d", "d")  # evicts b, the least recently used
    assert c.get_many(["a", "b", "c", "d"]) == {"a": "a", "c": "c", "d": "d"}
    assert c.health().server["evicted_keys"] == 1


def test_memory_named_stores_are_shared() -> None:
    name = f"memory://{uuid.uuid4().hex}"
    one, two = CacheClient.from_url(name), CacheClient.from_url(name)
    other = CacheClient.from_url(f"memory://{uuid.uuid4().hex}")
    one.set("k", 1)
    assert two.get("k") == 1 and other.get("k") is None
    ns = CacheClient.from_url(name, NAMESPACE="elsewhere")
    ns.set("k", 2)
    assert one.clear() == 1 and ns.get("k") == 2


def test_memory_single_flight_threads(mem: CacheClient) -> None:
    calls = []
    barrier = threading.Barrier(10)

    def compute() -> int:
        calls.append(1)
        time.sleep(0.2)
        return 1

    def work() -> None:
        barrier.wait(5)
        assert mem.get_or_set("k", compute) == 1

    threads = [threading.Thread(target=work) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(calls) == 1


def test_memory_lock_expires() -> None:
    store = MemoryBackend()
    first, second = store.lock("l", 0.1), store.lock("l", 0.1)
    assert first.acquire(True, 0.0) is True
    assert second.acquire(True, 0.02) is False
    time.sleep(0.12)
    assert second.acquire(True, 0.0) is True  # the first holder's lock expired
    first.release()  # not the holder any more: must not release the second's lock
    assert store.exists("l")
    second.release()
    assert not store.exists("l")
