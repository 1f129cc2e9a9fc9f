"""Deletes deferred for an unreachable cluster node are never silently lost or misapplied."""

from __future__ import annotations

import time
from typing import Any

import pytest

from cachekit_web import CacheClient
from cachekit_web.core.backends.cluster import DeferredDeletes
from cachekit_web.core.errors import BackendConnectionError

from .servers import LocalCluster
from .test_drift import Flavour, owner_port


def test_a_newer_write_supersedes_a_deferred_delete() -> None:
    deferred = DeferredDeletes(limit=10)
    deferred.add(["ns:a", "ns:b"])
    deferred.discard(["ns:a"])
    assert deferred.take() == (["ns:b"], set())


def test_overflow_becomes_a_namespace_clear_not_a_loss() -> None:
    deferred = DeferredDeletes(limit=3)
    deferred.add(f"ns:k{i}" for i in range(5))
    keys, prefixes = deferred.take()
    assert keys == [] and prefixes == {"ns:"}


def test_overflow_without_a_shared_namespace_is_reported() -> None:
    deferred = DeferredDeletes(limit=1)
    with pytest.raises(BackendConnectionError) as info:
        deferred.add(["a:1", "b:2"])
    assert info.value.code == "E013"


def test_a_key_written_meanwhile_is_left_to_its_writer() -> None:
    """The background replay deletes only owed keys this process did not write since it
    looked (nor is writing): such a delete could reach the node after the write."""
    deferred = DeferredDeletes(limit=10)
    deferred.add(["ns:a", "ns:b", "ns:c"])
    since = deferred.marker()
    with deferred.writing(["ns:a"]):
        assert deferred.unwritten(["ns:a", "ns:b"], since) == ["ns:b"]
    assert deferred.unwritten(["ns:a", "ns:b"], since) == ["ns:b"]
    assert deferred.unwritten(["ns:a", "ns:b"], deferred.marker()) == ["ns:a", "ns:b"]
    with deferred.writing(["ns:c"]):
        deferred.discard(["ns:c"])  # stored: no longer owed
    assert deferred.unwritten(["ns:c"], since) == []


# -- a node that stops answering for a while, then answers again ----------------------
@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_owed_deletes_land_as_soon_as_the_node_answers(flavour: str, cluster: LocalCluster,
                                                       namespace: str) -> None:
    """A primary silent for 1.5 s (SIGSTOP, no failover) while a process writes, deletes
    and clears its keys: once it answers, what that process owes lands at once (not at the next
    slot-map reload), so within 3 s it reads the values another process writes."""
    node = cluster.nodes[0]
    a = Flavour(flavour, cluster.url, namespace)
    other = CacheClient.from_url(cluster.url, NAMESPACE=namespace)
    try:
        keys = [k for k in (f"k{i}" for i in range(100))
                if owner_port(cluster, a.client.full_key(k)) == node.port][:8]
        assert len(keys) == 8
        assert a(a.client.set_many({k: "old" for k in keys})) == []
        node.pause()
        try:
            stopped = time.monotonic()
            for i in range(10_000):  # writes and deletes on the silent node for 1.5 s
                if time.monotonic() - stopped >= 1.5:
                    break
                k = keys[i % len(keys)]
                if i == 0:
                    a(a.client.clear())  # owes a clear of the namespace too
                a(a.client.delete(k) if i % 2 else a.client.set(k, "during"))
                time.sleep(0.01)
        finally:
            node.resume()
        answered = time.monotonic()
        new = {k: "new" for k in keys}
        seen: dict[str, Any] = {}
        while time.monotonic() - answered < 3.0:
            assert other.set_many(new) == []  # another process (re)fills what it reads missing
            seen = a(a.client.get_many(keys))
            if seen == new:
                break
            time.sleep(0.1)
        took = time.monotonic() - answered
        assert seen == new, f"{took:.1f}s after the node answered, the process read {seen}"
        print(f"\nowed invalidations landed; new values read {took:.2f}s after the node answered")
        # Nothing is left owed that could erase those values later.
        assert not a.client.backend.deferred and not a.client.pending
        assert a(a.client.get_many(keys)) == new
    finally:
        node.resume()
        other.close()
        a.close()


def test_the_background_replay_never_erases_a_write_made_meanwhile(
        cluster: LocalCluster, namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The process writes an owed key while the background replay lands it (forced: right
    after the replay took its list): that write survives, and the key is no longer owed."""
    c = CacheClient.from_url(cluster.url, NAMESPACE=namespace, PENDING_REPLAY_INTERVAL=3600)
    try:
        assert c.set("k", "old")
        backend = c.backend
        fk = c.full_key("k")
        backend.deferred.add([fk])  # a delete that missed the node, which answers again
        real = backend.deferred.pending
        wrote: list[bool] = []

        def pending() -> tuple[list[str], set[str]]:
            taken = real()
            if not wrote:  # once, from the replay's turn (the write's own call replays too)
                wrote.append(False)
                wrote[0] = c.set("k", "mine")
            return taken

        monkeypatch.setattr(backend.deferred, "pending", pending)
        backend._replayer.turn()  # the thread's turn, run here at the forced moment
        assert wrote == [True]
        assert c.get("k") == "mine", "the replay erased the process's own write"
        assert not backend.deferred
    finally:
        c.close()
