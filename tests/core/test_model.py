"""Stateful property test: the client behaves like a dict, on memory:// and on real Redis."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from cachekit_web import AsyncCacheClient, CacheClient

from .conftest import KEY_A

KEYS = st.sampled_from(["a", "b", "c d", "ü/é", "x*y", "[q]?"])
VALUES = st.one_of(st.none(), st.integers(-5, 5), st.text(max_size=5),
                   st.lists(st.integers(), max_size=3).map(tuple), st.binary(max_size=4))


class _Blocking:
    """Drives an AsyncCacheClient from the (synchronous) state machine, on one event loop."""

    def __init__(self, client: AsyncCacheClient) -> None:
        self._client = client
        self._loop = asyncio.new_event_loop()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            result = self._loop.run_until_complete(method(*args, **kwargs))
            if name == "close":
                self._loop.close()
            return result

        return call


def machine_for(url: str, flavour: str = "sync", **extra: Any) -> type[RuleBasedStateMachine]:
    class CacheModel(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            ns = "model-" + uuid.uuid4().hex[:8]
            self.client: Any = (
                CacheClient.from_url(url, NAMESPACE=ns, **extra) if flavour == "sync"
                else _Blocking(AsyncCacheClient.from_url(url, NAMESPACE=ns, **extra)))
            self.model: dict[str, Any] = {}

        @rule(key=KEYS, value=VALUES)
        def set(self, key: str, value: Any) -> None:
            assert self.client.set(key, value, 60) is True
            self.model[key] = value

        @rule(key=KEYS, value=VALUES)
        def add(self, key: str, value: Any) -> None:
            assert self.client.add(key, value, 60) is (key not in self.model)
            self.model.setdefault(key, value)

        @rule(key=KEYS)
        def delete(self, key: str) -> None:
            assert self.client.delete(key) is (key in self.model)
            self.model.pop(key, None)

        @rule(mapping=st.dictionaries(KEYS, VALUES, max_size=3))
        def set_many(self, mapping: dict[str, Any]) -> None:
            assert self.client.set_many(mapping, 60) == []
            self.model.update(mapping)

        @rule(keys=st.lists(KEYS, max_size=3))
        def delete_many(self, keys: list[str]) -> None:
            expected = len({k for k in keys if k in self.model})
            assert self.client.delete_many(list(dict.fromkeys(keys))) == expected
            for k in keys:
                self.model.pop(k, None)

        @rule(key=KEYS, delta=st.integers(-3, 3))
        def incr(self, key: str, delta: int) -> None:
            current = self.model.get(key, 0)
            if key in self.model and (type(current) is not int):
                with pytest.raises(ValueError):
                    self.client.incr(key, delta)
                return
            result = self.client.incr(key, delta, default=0)
            assert result == current + delta
            self.model[key] = result

        @rule(key=KEYS)
        def get(self, key: str) -> None:
            sentinel = object()
            got = self.client.get(key, sentinel)
            if key in self.model:
                assert got == self.model[key] and type(got) is type(self.model[key])
            else:
                assert got is sentinel

        @precondition(lambda self: len(self.model) > 2)
        @rule()
        def clear(self) -> None:
            self.client.clear()
            self.model.clear()

        @invariant()
        def many_matches(self) -> None:
            assert self.client.get_many([*self.model, "absent"]) == self.model

        def teardown(self) -> None:
            self.client.clear()
            self.client.close()

    return CacheModel


_SETTINGS = settings(max_examples=20, stateful_step_count=15, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])


def test_model_memory() -> None:
    machine = machine_for(f"memory://{uuid.uuid4().hex}")
    machine.TestCase.settings = _SETTINGS
    machine.TestCase().runTest()


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("extra", [{}, {"MASTER_KEY": KEY_A}], ids=["plain", "encrypted"])
def test_model_redis(redis_url: str, extra: dict[str, str], flavour: str) -> None:
    machine = machine_for(redis_url, flavour, **extra)
    machine.TestCase.settings = _SETTINGS
    machine.TestCase().runTest()
