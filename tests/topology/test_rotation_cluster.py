"""Key rotation on a real 3-primary Redis Cluster: every primary's entries re-sealed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cachekit_web import CacheClient
from cachekit_web.core.data.codec import HEADER_SIZE
from cachekit_web.core.data.rotation import rotate, rotation_status

from .servers import LocalCluster

KEY_A = bytes(range(0xa1, 0xa1 + 32)).hex()
KEY_B = bytes(range(0x12, 0x12 + 32)).hex()


@pytest.fixture()
def pair(cluster: LocalCluster, namespace: str) -> Iterator[tuple[CacheClient, CacheClient]]:
    """(old, new) clients on the cluster: KEY_A, then KEY_B with KEY_A as a previous key."""
    old = CacheClient.from_url(cluster.url, NAMESPACE=namespace, MASTER_KEY=KEY_A)
    new = CacheClient.from_url(cluster.url, NAMESPACE=namespace, MASTER_KEY=KEY_B,
                               PREVIOUS_MASTER_KEYS=[KEY_A])
    yield old, new
    new.clear()
    old.close()
    new.close()


def key_ids_by_node(cluster: LocalCluster, namespace: str) -> list[set[bytes]]:
    """For each primary, the key ids in the headers of the namespace's entries it holds."""
    found = []
    for node in cluster.nodes:
        r = cluster.client(node)
        try:
            pipe = r.pipeline(transaction=False)  # one GET each: MGET would cross slots
            for k in r.scan_iter(match=namespace + ":*", count=1000):
                pipe.get(k)
            found.append({v[4:HEADER_SIZE] for v in pipe.execute() if v})
        finally:
            r.close()
    return found


def test_rotation_reseals_every_primary_and_keeps_concurrent_writes(
        cluster: LocalCluster, namespace: str, pair: tuple[CacheClient, CacheClient]) -> None:
    old, new = pair
    n = 300
    old.set_many({f"k{i}": {"i": i} for i in range(n)}, 300)
    before = key_ids_by_node(cluster, namespace)
    assert all(ids == {old.codec.keyring.key_id} for ids in before)  # spread over all three
    assert rotation_status(new.backend, new.codec).startswith(
        f"100.0% of {n} sampled entries still sealed with a previous key")
    prefix = new.namespace + ":"
    raced: list[str] = []

    def write_concurrently(full_key: str) -> None:
        name = full_key[len(prefix):]
        if int(name[1:]) % 10 == 0 and name not in raced:
            raced.append(name)
            new.set(name, f"fresh-{name}", 60)  # lands on the key's node, mid-rotation

    report = rotate(new.backend, new.codec, before_write=write_concurrently, batch=100)

    assert (report.resealed, report.replaced, report.unreadable) == (n - 30, 30, 0)
    assert all(ids == {new.codec.keyring.key_id} for ids in key_ids_by_node(cluster, namespace))
    only_new = CacheClient.from_url(cluster.url, NAMESPACE=namespace, MASTER_KEY=KEY_B)
    try:
        got = only_new.get_many([f"k{i}" for i in range(n)])
        assert got == {f"k{i}": f"fresh-k{i}" if i % 10 == 0 else {"i": i} for i in range(n)}
        assert only_new.metrics.errors.total() == 0
    finally:
        only_new.close()
    again = rotate(new.backend, new.codec)
    assert (again.resealed, again.current) == (0, n)
    assert rotation_status(new.backend, new.codec) == (
        f"all {n} of {n} sampled entries use the current key")
