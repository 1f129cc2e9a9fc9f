"""Issue 21 item 3: a cluster node that answers again rejoins within a second."""

from __future__ import annotations

import time

from cachekit_web import CacheClient

from .conftest import raw_cluster
from .servers import local_cluster


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
