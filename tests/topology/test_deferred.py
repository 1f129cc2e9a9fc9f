"""Deletes deferred for an unreachable cluster node are never silently lost or misapplied."""

from __future__ import annotations

import pytest

from cachekit_web.core.backends.cluster import DeferredDeletes
from cachekit_web.core.errors import BackendConnectionError


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
