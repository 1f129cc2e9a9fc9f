"""Behaviours the sync and async topology backends once had twice, differently.

Each test runs both flavours: routing errors get one code, and RETRIES never
retries a timeout (a slow server costs one SOCKET_TIMEOUT, not RETRIES + 1).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from cachekit_web import AsyncCacheClient, CacheClient
from cachekit_web.core.errors import CachekitError
from cachekit_web.embedded import EmbeddedRedis

from .servers import LocalCluster, LocalSentinel

SLOW = {"SOCKET_TIMEOUT": 0.3, "SOCKET_CONNECT_TIMEOUT": 0.5, "RETRIES": 3,
        "CIRCUIT_BREAKER_RECOVERY_TIMEOUT": 60.0}
FLAVOURS = ["sync", "async"]


def owner_port(cluster: LocalCluster, full_key: str) -> int:
    """Port of the primary that serves ``full_key``'s slot."""
    with cluster.client(cluster.nodes[0]) as c:
        slot = int(c.cluster("keyslot", full_key))
        for start, end, primary, *_ in c.execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return int(primary[1])
    raise AssertionError("slot not served")


class Flavour:
    """A client of one flavour, with its async calls run to completion on a private loop."""

    def __init__(self, flavour: str, url: str, namespace: str, **settings: Any) -> None:
        self.loop = asyncio.new_event_loop()
        cls = CacheClient if flavour == "sync" else AsyncCacheClient
        self.client: Any = cls.from_url(url, NAMESPACE=namespace, **settings)

    def __call__(self, result: Any) -> Any:
        """The result of a call (awaited when it is a coroutine)."""
        return self.loop.run_until_complete(result) if asyncio.iscoroutine(result) else result

    def close(self) -> None:
        self(self.client.close())
        self.loop.close()


def timed_while_stalled(port: int, call: Callable[[], Any]) -> tuple[float, BaseException | None]:
    """Run ``call`` while the server at ``port`` holds every client (CLIENT PAUSE)."""
    with redis.Redis(host="127.0.0.1", port=port, socket_timeout=5) as ctl:
        ctl.execute_command("CLIENT", "PAUSE", 5000, "ALL")
        start = time.monotonic()
        error: BaseException | None = None
        try:
            call()
        except CachekitError as exc:
            error = exc
        finally:
            took = time.monotonic() - start
            ctl.execute_command("CLIENT", "UNPAUSE")
    return took, error


def assert_not_retried(f: Flavour, port: int, method: str, *args: Any) -> None:
    """A backend call on a stalled server fails after one SOCKET_TIMEOUT, not RETRIES + 1."""
    took, error = timed_while_stalled(port, lambda: f(getattr(f.client.backend, method)(*args)))
    # A timeout (E064), or on a cluster the node counted as unreachable (E013).
    assert isinstance(error, CachekitError) and error.code in ("E064", "E013"), error
    assert took < 2.5 * SLOW["SOCKET_TIMEOUT"], f"{took:.2f}s: the timeout was retried"


# -- routing errors ------------------------------------------------------------------
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_slot_no_node_serves_is_that_slot_s_problem(flavour: str, namespace: str) -> None:
    """No owner for a key's slot: E013 for its keys, the breaker stays closed, others serve."""
    with LocalCluster(3) as cluster:
        f = Flavour(flavour, cluster.url, namespace)
        try:
            f(f.client.set_many({f"k{i}": i for i in range(30)}))
            fk = f.client.full_key("k0")
            port = owner_port(cluster, fk)
            others = {f"k{i}": i for i in range(30)
                      if owner_port(cluster, f.client.full_key(f"k{i}")) != port}
            owner = next(n for n in cluster.nodes if n.port == port)
            with cluster.client(owner) as c:
                c.execute_command("CLUSTER", "DELSLOTS", int(c.cluster("keyslot", fk)))
            for _ in range(3):
                assert f(f.client.get("k0")) is None
            assert f(f.client.get_many(others)) == others
            assert set(f.client.metrics.snapshot()["errors_by_code"]) == {"E013"}
            assert f.client.breaker.state.value == "closed"
        finally:
            f.close()


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_cluster_that_cannot_be_routed_to_trips_the_breaker(flavour: str,
                                                              namespace: str) -> None:
    """Every node gone: a cluster-wide routing failure (E010), which opens the breaker."""
    with LocalCluster(3) as cluster:
        f = Flavour(flavour, cluster.url, namespace, SOCKET_TIMEOUT=0.5,
                    SOCKET_CONNECT_TIMEOUT=0.5)
        try:
            for i in range(12):
                assert f(f.client.set(f"k{i}", i))
            for node in cluster.nodes:
                node.kill()
            for i in range(12):
                assert f(f.client.get(f"k{i}")) is None
            assert f.client.metrics.snapshot()["errors_by_code"].get("E010", 0) >= 1
            assert f.client.breaker.state.value == "open"
        finally:
            f.close()


# -- RETRIES never retries a timeout -------------------------------------------------
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_cluster_does_not_retry_a_timeout(flavour: str, cluster: LocalCluster,
                                          namespace: str) -> None:
    f = Flavour(flavour, cluster.url, namespace, **SLOW)
    try:
        assert f(f.client.set("slow", 1)) and f(f.client.get("slow")) == 1  # routed, connected
        fk = f.client.full_key("slow")
        assert_not_retried(f, owner_port(cluster, fk), "get", fk)
    finally:
        f.close()


@pytest.fixture(scope="module")
def sentinel_group() -> Iterator[LocalSentinel]:
    """A primary, a replica and a sentinel that will not fail over during a pause."""
    with LocalSentinel(replicas=1, sentinels=1, down_after_ms=30000) as group:
        yield group


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_sentinel_does_not_retry_a_timeout(flavour: str, sentinel_group: LocalSentinel,
                                           namespace: str) -> None:
    f = Flavour(flavour, sentinel_group.url, namespace, **SLOW)
    try:
        assert f(f.client.set("slow", 1)) and f(f.client.get("slow")) == 1
        assert_not_retried(f, sentinel_group.primary.port, "get", f.client.full_key("slow"))
    finally:
        f.close()


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_replicated_primary_does_not_retry_a_timeout(flavour: str, namespace: str) -> None:
    with EmbeddedRedis() as primary:
        f = Flavour(flavour, primary.url, namespace, REPLICA_URLS=(primary.url,), **SLOW)
        try:
            assert f(f.client.set("slow", 1)) and f(f.client.get("slow")) == 1
            assert_not_retried(f, primary.port, "set", f.client.full_key("s"), b"x", None)
        finally:
            f.close()
