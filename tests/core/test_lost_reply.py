"""A write that is not safe to repeat is never re-sent after its connection was lost
mid-command: the server may have run it already (forced interleaving, see lost_reply).

incr answers the single application or None (unknown: fail-open), never a double one;
add answers True only when the stored bytes prove the write was its own. Idempotent
commands (GET) are still retried (RETRIES).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from cachekit_web import AsyncCacheClient, CacheClient
from cachekit_web.core.backends.common import CAS_SCRIPT, INCR_SCRIPT

from .conftest import KEY_A, SIGNING
from .lost_reply import LostReply

MODES: dict[str, dict[str, Any]] = {
    "signed": {"SIGNING_KEY": SIGNING},
    "encrypted": {"MASTER_KEY": KEY_A},
    "plain-counters": {"SIGNING_KEY": SIGNING, "PLAIN_COUNTERS": ["n", "m"]},
    "plain": {},
}


@pytest.fixture()
def made() -> Iterator[list[Any]]:
    """Clients and traps to close after the test."""
    things: list[Any] = []
    yield things
    for t in things:
        t.close()


def _run(flavour: str, redis_url: str, namespace: str, settings: dict[str, Any],
         key: str, setup: Any, act: Any, made: list[Any]) -> tuple[Any, Any, LostReply]:
    """setup(client), arm, act(client) -> (answer, value read back afterwards, trap)."""
    opts = {"NAMESPACE": namespace, **settings}
    scripts = LostReply(redis_url, "-")
    made.append(scripts)
    for script in (CAS_SCRIPT, INCR_SCRIPT):  # loaded: an EVALSHA runs (never NOSCRIPT)
        scripts.raw.script_load(script)
    check = CacheClient.from_url(redis_url, **opts)
    made.append(check)
    if flavour == "sync":
        c = CacheClient.from_url(redis_url, **opts)
        made.append(c)
        trap = LostReply(redis_url, c.full_key(key))
        made.append(trap)
        trap.install(c.backend.pool)
        setup(c, trap)
        answer = act(c)
        return answer, check.get(key), trap

    async def main() -> tuple[Any, LostReply]:
        ac = AsyncCacheClient.from_url(redis_url, **opts)
        try:
            trap = LostReply(redis_url, ac.full_key(key))
            made.append(trap)
            trap.install(ac.backend.pool)
            prepared = setup(ac, trap)
            if asyncio.iscoroutine(prepared):
                await prepared
            return await act(ac), trap
        finally:
            await ac.close()

    answer, trap = asyncio.run(main())
    return answer, check.get(key), trap


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("mode", list(MODES))
def test_an_incr_whose_reply_is_lost_is_applied_once(
        mode: str, flavour: str, redis_url: str, namespace: str, made: list[Any]) -> None:
    def setup(c: Any, trap: LostReply) -> Any:
        got = c.set("n", 1, None)

        async def arm() -> None:
            assert await got
            trap.arm("EVALSHA", "EVAL")
        if flavour == "async":
            return arm()
        assert got
        trap.arm("EVALSHA", "EVAL")

    answer, stored, trap = _run(flavour, redis_url, namespace, MODES[mode], "n",
                                setup, lambda c: c.incr("n", 5), made)
    assert trap.fired == 1, trap.seen
    assert answer in (None, 6), (answer, trap.seen)
    assert stored == 6, f"applied {(stored - 1) // 5} times: {trap.seen}"


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("mode", ["signed", "encrypted"])
def test_a_new_counter_whose_reply_is_lost_is_created_once(
        mode: str, flavour: str, redis_url: str, namespace: str, made: list[Any]) -> None:
    def setup(c: Any, trap: LostReply) -> Any:
        trap.arm("SET")
        return _noop() if flavour == "async" else None

    answer, stored, trap = _run(flavour, redis_url, namespace, MODES[mode], "m",
                                setup, lambda c: c.incr("m", 5, default=1), made)
    assert trap.fired == 1, trap.seen
    assert answer in (None, 6), (answer, trap.seen)
    assert stored == 6, f"stored {stored}: {trap.seen}"


async def _noop() -> None:
    return None


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("mode", list(MODES))
def test_an_add_whose_reply_is_lost_is_never_a_silent_win_or_loss(
        mode: str, flavour: str, redis_url: str, namespace: str, made: list[Any]) -> None:
    def setup(c: Any, trap: LostReply) -> Any:
        trap.arm("SET")
        return _noop() if flavour == "async" else None

    answer, stored, trap = _run(flavour, redis_url, namespace, MODES[mode], "k",
                                setup, lambda c: c.add("k", "ours", 60), made)
    assert trap.fired == 1, trap.seen
    if mode == "encrypted":  # a sealed frame's nonce is unique: the bytes read prove it
        assert (answer, stored) == (True, "ours"), trap.seen
    else:  # identical bytes could be another caller's: undone, as an eviction would
        assert answer is False and stored is None, (answer, stored, trap.seen)


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_get_whose_reply_is_lost_is_still_retried(
        flavour: str, redis_url: str, namespace: str, made: list[Any]) -> None:
    if flavour == "async" and int(redis.__version__.split(".")[0]) < 6:
        pytest.skip("redis.asyncio before 6.0 retries only errors listed in retry_on_error")
    def setup(c: Any, trap: LostReply) -> Any:
        got = c.set("g", "v", 60)

        async def arm() -> None:
            assert await got
            trap.arm("GET", changes=False)
        if flavour == "async":
            return arm()
        assert got
        trap.arm("GET", changes=False)

    answer, _, trap = _run(flavour, redis_url, namespace, {}, "g", setup,
                           lambda c: c.get("g"), made)
    assert trap.fired == 1, trap.seen
    assert answer == "v", trap.seen
