"""The django-redis operations (tests/core/test_django_redis_api.py), re-run on a Cluster.

``redis_url`` becomes the cluster's redis+cluster:// URL and ``raw`` a RedisCluster,
so the same scenarios run unchanged against three primaries.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis
from redis.cluster import RedisCluster

from cachekit_web import CacheClient, UnsupportedOperationError
from cachekit_web.core.resilience.breaker import State
from tests.core.conftest import (  # noqa: F401 - fixtures used below
    KEY_A,
    MakeClient,
    clock,
    make_client,
)
from tests.core.test_django_redis_api import *  # noqa: F403 - the shared scenarios
from tests.core.test_django_redis_api import _all_bytes

from .conftest import raw_cluster
from .servers import LocalCluster


@pytest.fixture()
def redis_url(cluster: LocalCluster) -> str:
    """The cluster URL, in place of the single server's."""
    return cluster.url


@pytest.fixture()
def raw(cluster: LocalCluster) -> Iterator[RedisCluster]:
    """A RedisCluster in place of the single server's raw client."""
    r = raw_cluster(cluster)
    yield r
    r.close()


# -- replaced: multi-key set commands need their keys in one slot on a cluster ----------
def test_sets(c: CacheClient, mode: str, raw: RedisCluster) -> None:
    """The single-server scenario, with the sets under one {hash tag}."""
    s, t = "{g}s", "{g}t"
    assert c.sadd(s, "alice", "bob", ("t", 1), 7) == 4 and c.sadd(s, "alice") == 0
    assert c.smembers(s) == {"alice", "bob", ("t", 1), 7}
    assert c.smismember(s, "bob", "carol") == [True, False]
    assert c.srem(s, "bob") == 1
    c.sadd(t, "alice", "carol")
    assert c.sinter(s, t) == {"alice"}
    assert c.sunion(s, t) == {"alice", "carol", ("t", 1), 7}
    assert c.sdiff(s, t) == {("t", 1), 7}
    assert c.sinterstore("{g}i", s, t) == 1 and c.smembers("{g}i") == {"alice"}
    assert c.sunionstore("{g}u", s, t) == 4 and c.sdiffstore("{g}d", s, t) == 2
    assert c.smove(s, t, 7) is True and c.smove(s, t, 7) is False
    assert c.sscan(t) == {"alice", "carol", 7}
    if mode == "encrypted":
        assert b"alice" not in _all_bytes(raw, c.namespace)


def test_multi_key_set_commands_across_slots_raise_e069(c: CacheClient) -> None:
    c.sadd("s", "a")
    c.sadd("t", "a")
    for call in (lambda: c.sinter("s", "t"), lambda: c.sunionstore("d", "s", "t"),
                 lambda: c.smove("s", "t", "a")):
        with pytest.raises(UnsupportedOperationError) as info:
            call()
        assert info.value.code == "E069" and "{tag}" in info.value.message
    assert c.breaker.state is State.CLOSED and c.smembers("s") == {"a"}


def test_counters_are_exact_under_concurrency(make_client: MakeClient) -> None:  # noqa: F811
    """8 threads x 100 increments on one key, plain (INCRBY) and sealed (compare-and-set)."""
    for overrides in ({}, {"MASTER_KEY": KEY_A, "ENCRYPTION": "required"}):
        c = make_client(**overrides)
        errors: list[BaseException] = []

        def work(c: CacheClient = c, errors: list[BaseException] = errors) -> None:
            for _ in range(100):
                try:
                    c.incr("hits", ignore_key_check=True)
                except BaseException as exc:  # collected, asserted empty
                    errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        assert errors == [] and c.get("hits") == 800
        assert c.decr("hits", 5) == 795 and c.incr("missing") is None
        c.delete("hits")


def test_compare_and_set_many_is_one_pipeline_per_node(
        cluster: LocalCluster, make_client: MakeClient) -> None:  # noqa: F811
    c = make_client()
    keys = [c.full_key(f"k{i}") for i in range(30)]
    for k in keys:
        assert c.backend.set(k, b"old", 60)
    before = [_calls(cluster, n.port, "eval") for n in cluster.nodes]
    items = [(k, b"old" if i % 3 else b"other", b"new") for i, k in enumerate(keys)]
    assert c.backend.compare_and_set_many(items) == [bool(i % 3) for i in range(30)]
    assert [c.backend.get(k) for k in keys] == [b"new" if i % 3 else b"old"
                                                 for i in range(30)]
    after = [_calls(cluster, n.port, "eval") for n in cluster.nodes]
    assert sum(after) - sum(before) == 30 and all(a > b for a, b in zip(after, before, strict=True))


def test_get_client_is_the_cluster_client(make_client: MakeClient) -> None:  # noqa: F811
    c = make_client()
    assert isinstance(c.get_client(), RedisCluster)  # before any call, too
    c.set("k", 1)
    assert isinstance(c.get_client(), RedisCluster)


def _calls(cluster: LocalCluster, port: int, command: str) -> int:
    with redis.Redis(host="127.0.0.1", port=port, socket_timeout=2) as r:
        return int(r.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))
