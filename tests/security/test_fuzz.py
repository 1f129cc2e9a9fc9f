"""Bounded fuzzing: mutated frames never raise; authenticated modes never accept one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cachekit_web import CacheClient

from .conftest import MODES

OPS = ("get", "get_many", "get_or_set", "touch", "add", "incr")


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["flip", "truncate", "extend", "splice", "header"]))
    if kind == "flip":
        return kind, (draw(st.integers(0, 10_000)), draw(st.integers(1, 255)))
    if kind == "truncate":
        return kind, draw(st.integers(0, 10_000))
    if kind == "extend":
        return kind, draw(st.binary(min_size=1, max_size=16))
    if kind == "splice":
        return kind, (draw(st.integers(0, 10_000)), draw(st.binary(min_size=1, max_size=8)))
    return kind, (draw(st.integers(0, 23)), draw(st.integers(0, 255)))


def mutate(frame: bytes, m: tuple[str, Any]) -> bytes:
    kind, arg = m
    if kind == "flip":
        i = arg[0] % len(frame)
        return frame[:i] + bytes([frame[i] ^ arg[1]]) + frame[i + 1:]
    if kind == "truncate":
        return frame[:arg % len(frame)]
    if kind == "extend":
        return frame + arg
    if kind == "splice":
        i = arg[0] % len(frame)
        return frame[:i] + arg[1] + frame[i + len(arg[1]):]
    i = arg[0] % len(frame)
    return frame[:i] + bytes([arg[1]]) + frame[i + 1:]


VALUES = [7, "text", {"a": [1, (2, 3)], "b": b"\0" * 2000}, (1, {2, 3}), None]


FUZZ_MODES = {**MODES, "required": {**MODES["encrypted"], "ENCRYPTION": "required"}}


@pytest.fixture(params=list(FUZZ_MODES))
def fuzz_client(request: pytest.FixtureRequest, redis_url: str, namespace: str
                ) -> Iterator[tuple[str, CacheClient]]:
    c = CacheClient.from_url(redis_url, NAMESPACE=f"{namespace}-{request.param}",
                             COMPRESS_MIN_SIZE=64, LOG_INTERVAL=3600, **FUZZ_MODES[request.param])
    yield request.param, c
    c.close()


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value_no=st.integers(0, len(VALUES) - 1), ttl=st.sampled_from([None, 60.0]),
       stale=st.booleans(), m=mutations(), op=st.sampled_from(OPS))
def test_mutated_frames_never_raise_or_pass(fuzz_client: tuple[str, CacheClient],
                                            raw: redis.Redis, value_no: int, ttl: float | None,
                                            stale: bool, m: tuple[str, Any], op: str) -> None:
    mode, c = fuzz_client
    value = VALUES[value_no]
    if type(value) is int and c.codec.raw_ints:
        return  # by default a counter is a Redis integer, unsealed by design (docs/security.md)
    assert c.set("k", value, ttl, stale_ttl=30 if stale and ttl else None)
    fk = c.full_key("k")
    frame = raw.get(fk)
    assert frame is not None
    bad = mutate(frame, m)
    if bad == frame:
        return
    raw.set(fk, bad)
    before = c.metrics.errors.total()
    if op == "get":
        got = c.get("k", "miss")
        accepted = got != "miss"
    elif op == "get_many":
        accepted = "k" in c.get_many(["k"])
    elif op == "get_or_set":
        accepted = c.get_or_set("k", lambda: "computed", 60) != "computed"
    elif op == "touch":
        accepted = c.touch("k", 60)
    elif op == "add":
        accepted = not c.add("k", "added", 60)
        assert accepted or c.get("k") == "added"
    else:
        try:
            accepted = c.incr("k") is not None
        except ValueError:  # decoded, but not an integer (as Django): only a plain frame can
            assert mode == "plain"
            accepted = True
    if mode != "plain":
        assert not accepted, f"{op} accepted a mutated frame ({m[0]})"
        assert c.metrics.errors.total() > before
    c.delete("k")
