"""Issue 21 item 3: a cluster node that answers again rejoins within a second."""

from __future__ import annotations

import time

from cachekit_web import CacheClient
from cachekit_web.core.resilience.breaker import State

from .conftest import raw_cluster
from .servers import LocalSentinel, local_cluster


def test_a_hung_node_rejoins_within_a_second_of_sigcont() -> None:
    with local_cluster(3) as cluster:
        client = CacheClient.from_url(cluster.url, NAMESPACE="rejoin", SOCKET_TIMEOUT=0.3,
                                      SOCKET_CONNECT_TIMEOUT=0.3)
        raw = raw_cluster(cluster)
        try:
            port = cluster.nodes[0].port
            key = next(f"k{i}" for i in range(1000)
                       if raw.get_node_from_key(client.full_key(f"k{i}")).port == port)
            assert client.set(key, 0) and client.get(key) == 0
            cluster.nodes[0].pause()
            try:
                for _ in range(20):  # bounded: the node is lost within a few calls
                    client.get(key)
                    if client.backend.guard.is_down(  # type: ignore[attr-defined]
                            raw.get_node_from_key(client.full_key(key)).name):
                        break
                time.sleep(2.0)
            finally:
                cluster.nodes[0].resume()
            start = time.monotonic()
            took = None
            for n in range(1, 500):  # bounded: 10 ms apart
                if client.set(key, n) and client.get(key) == n:
                    took = time.monotonic() - start
                    break
                time.sleep(0.01)
            assert took is not None and took < 1.0, took
        finally:
            raw.close()
            client.close()


def test_a_hung_primary_s_slots_serve_hits_again_within_a_second_of_resuming() -> None:
    """One primary SIGSTOPped: the other primaries' slots keep serving hits throughout,
    the lost node costs at most ~4 probes a second, and once it resumes its slots serve
    the values stored before the hang (cache intact) within a second."""
    with local_cluster(3) as cluster:
        client = CacheClient.from_url(cluster.url, NAMESPACE="rejoin-hits", SOCKET_TIMEOUT=0.3,
                                      SOCKET_CONNECT_TIMEOUT=0.3)
        raw = raw_cluster(cluster)
        try:
            port = cluster.nodes[0].port

            def on_node(i: int) -> bool:
                return bool(raw.get_node_from_key(client.full_key(f"k{i}")).port == port)

            hung = [f"k{i}" for i in range(1000) if on_node(i)][:5]
            other = [f"k{i}" for i in range(1000) if not on_node(i)][:5]
            name = raw.get_node_from_key(client.full_key(hung[0])).name
            guard = client.backend.guard  # type: ignore[attr-defined]
            for n, key in enumerate(hung + other):
                assert client.set(key, n, 600)
            cluster.nodes[0].pause()
            try:
                lost_at, probes = None, 0
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:  # bounded, ~10 ms a turn
                    assert [client.get(k) for k in other] == list(range(5, 10))
                    start = time.monotonic()
                    client.get(hung[0])
                    if lost_at is not None and time.monotonic() - start >= 0.2:
                        probes += 1  # this call reached the hung node and waited it out
                    if lost_at is None and guard.is_down(name):
                        lost_at = time.monotonic()
                    if lost_at is not None and time.monotonic() - lost_at >= 2.0:
                        break  # down long enough for the probes to back off past 250 ms
                    time.sleep(0.01)
                assert lost_at is not None, "the hung node was never marked down"
                down_for = time.monotonic() - lost_at
                assert probes <= 4 * down_for + 1, (probes, down_for)
            finally:
                cluster.nodes[0].resume()
            resumed = time.monotonic()
            took = None
            while time.monotonic() - resumed < 5:  # bounded, 10 ms apart
                if [client.get(k) for k in hung] == list(range(5)):
                    took = time.monotonic() - resumed
                    break
                time.sleep(0.01)
            print(f"\n{probes} probes in {down_for:.2f}s down; hits {took}s after SIGCONT")
            assert took is not None and took < 1.0, took
            assert not guard.is_down(name)
        finally:
            raw.close()
            client.close()


def test_a_hung_sentinel_primary_serves_hits_again_within_a_second_of_resuming() -> None:
    """Sentinel, no failover (down-after is long): the client's breaker opens on the hang,
    probes the primary in the background and serves hits within a second of SIGCONT."""
    with LocalSentinel(replicas=1, down_after_ms=60_000) as group:
        client = CacheClient.from_url(group.url, NAMESPACE="rejoin-sentinel",
                                      SOCKET_TIMEOUT=0.3, SOCKET_CONNECT_TIMEOUT=0.3)
        try:
            keys = [f"k{i}" for i in range(5)]
            for n, key in enumerate(keys):
                assert client.set(key, n, 600)
            group.primary.pause()
            try:
                opened_at = None
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:  # bounded, ~10 ms a turn
                    assert client.get(keys[0]) is None
                    if opened_at is None and client.breaker.state is State.OPEN:
                        opened_at = time.monotonic()
                    if opened_at is not None and time.monotonic() - opened_at >= 2.0:
                        break  # open long enough for the probes to back off past 250 ms
                    time.sleep(0.01)
                assert opened_at is not None, client.breaker.snapshot()
                probes = client.breaker.probes_sent
            finally:
                group.primary.resume()
            resumed = time.monotonic()
            took = None
            while time.monotonic() - resumed < 5:  # bounded, 10 ms apart
                if [client.get(k) for k in keys] == list(range(5)):
                    took = time.monotonic() - resumed
                    break
                time.sleep(0.01)
            print(f"\n{probes} probes while open; hits {took}s after SIGCONT")
            assert took is not None and took < 1.0, took
            assert probes <= 4 * 2.5
        finally:
            client.close()
