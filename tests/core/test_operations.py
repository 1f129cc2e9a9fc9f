"""The basic operations of CacheClient against the real server."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import msgpack
import pytest
import redis

from cachekit_web import CacheClient, ConfigurationError
from cachekit_web.core.observe.metrics import Metrics

from .conftest import KEY_A, MakeClient


@pytest.fixture(params=["plain", "encrypted"])
def any_client(request: pytest.FixtureRequest, make_client: MakeClient) -> CacheClient:
    return make_client(**({"MASTER_KEY": KEY_A} if request.param == "encrypted" else {}))


def test_get_set_add_delete(any_client: CacheClient, raw: redis.Redis) -> None:
    c = any_client
    assert c.get("missing") is None and c.get("missing", 5) == 5
    assert c.set("k", {"a": [1, 2]}) is True
    assert c.get("k") == {"a": [1, 2]}
    assert raw.exists(c.full_key("k")) == 1 and c.full_key("k") == f"{c.namespace}:k"
    assert c.add("k", "other") is False and c.get("k") == {"a": [1, 2]}
    assert c.add("new", "first") is True and c.get("new") == "first"
    assert c.delete("k") is True and c.delete("k") is False
    assert c.get("k") is None


def test_add_replaces_unreadable_entry(any_client: CacheClient, raw: redis.Redis) -> None:
    raw.set(any_client.full_key("junk"), b"not a frame")
    assert any_client.add("junk", 1) is True
    assert any_client.get("junk") == 1


def test_stored_none_and_falsy_values(any_client: CacheClient) -> None:
    c = any_client
    for key, value in [("none", None), ("zero", 0), ("empty", ""), ("false", False), ("l", [])]:
        c.set(key, value)
        assert c.get(key, "default") == value and type(c.get(key, "d")) is type(value)
        assert c.has_key(key)
    assert c.get_many(["none", "zero", "absent"]) == {"none": None, "zero": 0}


def test_get_many_set_many_delete_many(any_client: CacheClient) -> None:
    c = any_client
    assert c.set_many({"a": 1, "b": "two", "c": None}, 60) == []
    assert c.get_many(["a", "b", "c", "d"]) == {"a": 1, "b": "two", "c": None}
    assert c.get_many([]) == {}
    assert c.set_many({}) == []
    assert c.delete_many(["a", "b", "zz"]) == 2
    assert c.get_many(["a", "b", "c"]) == {"c": None}
    assert c.delete_many([]) == 0
    assert 0 < c.ttl("c") <= 60  # type: ignore[operator]


def test_set_many_timeout_zero_deletes(any_client: CacheClient) -> None:
    any_client.set_many({"a": 1, "b": 2})
    assert any_client.set_many({"a": 3, "b": 4}, 0) == []
    assert any_client.get_many(["a", "b"]) == {}


def test_timeouts(any_client: CacheClient) -> None:
    c = any_client
    c.set("forever", 1, None)
    assert c.ttl("forever") is None
    c.set("default", 1)
    assert 299 < c.ttl("default") <= 300  # type: ignore[operator]
    c.set("short", 1, 0.25)
    assert 0 < c.ttl("short") <= 0.25  # type: ignore[operator]
    assert c.get("short") == 1
    time.sleep(0.3)
    assert c.get("short") is None and c.ttl("short") == 0.0
    c.set("gone", 1)
    assert c.set("gone", 2, 0) is True and c.get("gone") is None
    c.set("gone", 1)
    assert c.set("gone", 2, -5) is True and c.get("gone") is None
    assert c.add("gone", 1, 0) is False and c.get("gone") is None
    assert c.ttl("never-set") == 0.0


def test_touch(any_client: CacheClient) -> None:
    c = any_client
    assert c.touch("missing", 10) is False
    c.set("k", 1, 1)
    assert c.touch("k", 100) is True and 99 < c.ttl("k") <= 100  # type: ignore[operator]
    assert c.touch("k", None) is True and c.ttl("k") is None
    assert c.touch("k", 0) is True and c.get("k") is None


def test_incr_decr(any_client: CacheClient) -> None:
    c = any_client
    assert c.incr("n") is None
    assert c.incr("n", default=10) == 11
    assert c.incr("n", 5) == 16
    assert c.decr("n", 20) == -4
    assert c.get("n") == -4
    c.set("big", 2**64 - 1)
    assert c.incr("big") == 2**64  # through the bigint path
    c.set("s", "text")
    with pytest.raises(ValueError):
        c.incr("s")
    c.set("b", True)
    with pytest.raises(ValueError):
        c.incr("b")
    c.set("ttl", 1, 50)
    c.incr("ttl")
    assert 0 < c.ttl("ttl") <= 50  # type: ignore[operator]


def test_incr_atomic_under_threads(make_client: MakeClient, raw: redis.Redis) -> None:
    # Only ENCRYPTION=required seals counters; by default they are Redis integers.
    c = make_client(MASTER_KEY=KEY_A, ENCRYPTION="required")
    c.set("n", 0)
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(50):
                assert c.incr("n") is not None
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert c.get("n") == 500
    assert c.metrics.errors["E050"] == 0
    stored = raw.get(c.full_key("n")) or b""
    assert b"500" not in stored and msgpack.packb(500) not in stored


def test_clear_only_this_namespace(make_client: MakeClient, raw: redis.Redis,
                                   namespace: str) -> None:
    c = make_client()
    other = make_client(NAMESPACE=namespace + "x")  # a prefix-sharing neighbour
    c.set_many({f"k{i}": i for i in range(1200)})  # more than one SCAN batch
    other.set("k1", "mine")
    raw.set("plain-key-" + namespace, b"1")
    raw.set(namespace + "-no-colon", b"1")
    dbsize = raw.dbsize()
    assert c.clear() == 1200
    assert c.get_many(["k1", "k2"]) == {}
    assert other.get("k1") == "mine"
    assert raw.get("plain-key-" + namespace) == b"1" and raw.get(namespace + "-no-colon") == b"1"
    # Only this namespace's keys went (the neighbours above prove no FLUSHDB); other tests'
    # keys on the shared server may expire meanwhile (the oldest matrix run saw one go).
    assert dbsize - 1200 - 100 <= raw.dbsize() <= dbsize - 1200
    assert c.clear() == 0
    raw.delete("plain-key-" + namespace, namespace + "-no-colon")


def test_namespace_with_glob_characters_is_refused(make_client: MakeClient) -> None:
    # A glob namespace could make clear()'s SCAN pattern match another namespace.
    with pytest.raises(ConfigurationError) as info:
        make_client(NAMESPACE="glob*[x]?")
    assert info.value.code == "E042"
    near = make_client(NAMESPACE="glob.x%5D-Y~")  # what Django's quoted KEY_PREFIX produces
    other = make_client(NAMESPACE="globXx")
    near.set("a", 1)
    other.set("a", 2)
    assert near.clear() == 1
    assert other.get("a") == 2


def test_metrics_counts(make_client: MakeClient) -> None:
    c = make_client()
    now = [600_000.0]
    c.metrics = Metrics(clock=lambda: now[0])  # no minute boundary inside the test
    c.set("a", 1)
    c.set_many({"b": 2, "c": 3})
    c.get("a")
    c.get("a")
    c.get("zz")
    c.get_many(["b", "yy"])
    c.delete("a")
    c.delete_many(["b", "c"])
    m = c.metrics
    assert m.totals["sets"] == 3
    assert m.totals["hits"] == 3 and m.totals["misses"] == 2
    assert m.totals["deletes"] == 3
    assert m.hit_rate() == pytest.approx(3 / 5)
    series = m.series()
    assert len(series) == 60
    assert series[-1]["hits"] == 3 and series[-1]["misses"] == 2
    assert all(row["hits"] == 0 for row in series[:-1])
    snap = m.snapshot()
    assert snap["error_rates"] == {"1m": 0.0, "5m": 0.0, "15m": 0.0}
    assert snap["latency"]["get"]["count"] == 3
    now[0] += 120  # two minutes later: the series shifts, totals stay
    series = m.series()
    assert len(series) == 60 and series[-3]["hits"] == 3 and series[-1]["hits"] == 0
    now[0] += 3600
    assert all(row["hits"] == 0 for row in m.series()) and m.totals["hits"] == 3


def test_unlocked_tier_hits_are_all_counted_in_their_minute() -> None:
    now = [600_000.0]
    m = Metrics(clock=lambda: now[0])

    def hits() -> None:
        for _ in range(2000):
            m.local_hit()

    threads = [threading.Thread(target=hits) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    m.count("misses")  # a locked update folds what came before it into this minute
    now[0] += 60
    m.local_hit()
    exported = m.export()
    assert exported["totals"]["local_hits"] == 16_001 == m.totals["hits"]
    minutes = {row["minute"]: row["counts"] for row in exported["series"]}
    assert minutes[10_000] == {"hits": 16_000, "local_hits": 16_000, "misses": 1}
    assert minutes[10_001] == {"hits": 1, "local_hits": 1}
    assert m.hit_rate() == pytest.approx(16_001 / 16_002)


def test_error_rates(make_client: MakeClient, raw: redis.Redis) -> None:
    c = make_client()
    now = [600_000.0]
    c.metrics = Metrics(clock=lambda: now[0])
    raw.rpush(c.full_key("list"), b"x")
    for _ in range(3):
        c.get("ok")
    c.get("list")  # E063
    rates = c.metrics.error_rates()
    assert rates["1m"] == pytest.approx(1 / 4)
    assert c.health().status == "degraded"
    now[0] += 120  # the error leaves the 1-minute window but not the 5-minute one
    rates = c.metrics.error_rates()
    assert rates["1m"] == 0.0 and rates["5m"] == pytest.approx(1 / 4)


def test_health_report(make_client: MakeClient) -> None:
    c = make_client(MASTER_KEY=KEY_A)
    c.set("a", 1)
    c.get("a")
    report = c.health()
    data = report.as_dict()
    json.dumps(data)
    assert report.status == "ok" and report.ok
    assert data["ping_ms"] is not None and data["error"] is None
    assert data["server"]["redis_version"]
    assert data["breaker"]["state"] == "closed"
    assert data["metrics"]["totals"]["hits"] == 1
    assert data["encryption"] == {"mode": "encrypted", "authenticated": True,
                                  "encrypted": True, "signed": False,
                                  "key_fingerprint": c.codec.keyring.fingerprint}
    assert data["namespace"] == c.namespace and data["pending_deletes"] == 0
    assert KEY_A not in json.dumps(data)
    assert report.errors_explained() == []


def test_health_errors_explained(make_client: MakeClient, raw: redis.Redis) -> None:
    c = make_client()
    raw.set(c.full_key("bad"), b"junk")
    c.get("bad")
    explained = c.health().errors_explained()
    assert explained[0]["code"] == "E021" and explained[0]["count"] == 1
    assert explained[0]["title"] and explained[0]["fix"]


def test_context_manager_and_describe(redis_url: str, namespace: str) -> None:
    with CacheClient.from_url(redis_url, NAMESPACE=namespace) as c:
        assert c.describe() == redis_url
        assert "redis://" in repr(c)
    assert c._closed


def test_from_url_uses_env_overrides(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHEKIT_REDIS_URL", redis_url)
    monkeypatch.setenv("CACHEKIT_NAMESPACE", "from-env")
    monkeypatch.setenv("CACHEKIT_DEFAULT_TIMEOUT", "none")
    c = CacheClient.from_url()
    try:
        assert c.namespace == "from-env" and c.settings.DEFAULT_TIMEOUT is None
        c.set("k", 1)
        assert c.ttl("k") is None
        c.delete("k")
    finally:
        c.close()


def test_values_of_many_types(any_client: CacheClient) -> None:
    import datetime as dt
    import uuid
    from decimal import Decimal

    value: dict[str, Any] = {
        "t": (1, 2), "s": {1, 2}, "d": Decimal("1.10"), "u": uuid.UUID(int=5),
        "when": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), "b": b"\x00\xff",
    }
    any_client.set("k", value)
    assert any_client.get("k") == value


def test_metrics_local_hit_counts_like_two_counts() -> None:
    seen: list[tuple[str, int]] = []

    class Sink:
        def count(self, what: str, n: int) -> None:
            seen.append((what, n))

        def error(self, code: str) -> None:
            """Unused."""

        def observe(self, op: str, seconds: float) -> None:
            """Unused."""

    m = Metrics(clock=lambda: 600_000.0)
    m.sinks.append(Sink())
    m.local_hit()
    m.local_hit()
    assert m.totals["hits"] == 2 and m.totals["local_hits"] == 2 and m.totals["misses"] == 0
    assert m.series()[-1]["hits"] == 2 and m.hit_rate() == 1.0
    assert seen == [("local_hits", 1), ("hits", 1)] * 2
