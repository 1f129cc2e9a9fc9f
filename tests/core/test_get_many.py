"""get_many opens common encrypted frames in one loop; every other frame takes the full decode."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis

from cachekit_web.core.errors import InvalidKeyError

from .conftest import KEY_A, KEY_B, SIGNING, MakeClient, make_async

MODES = {"plain": {}, "signed": {"SIGNING_KEY": SIGNING}, "encrypted": {"MASTER_KEY": KEY_A}}


def _plant(c: Any, raw: redis.Redis) -> dict[str, Any]:
    """Every kind of entry under one client; returns what get_many must answer, in order."""
    sealed = c.codec.keyring.authenticated  # pickle is only stored in authenticated frames
    assert c.set("common", {"a": [1, 2]}, 60)
    assert c.set("forever", "no expiry", None)
    assert c.set("none", None, 60)
    assert c.set("big", "x" * 5000, 60)  # compressed
    assert c.set("swr", "fresh", 60, stale_ttl=30)  # carries a fresh-until time
    assert c.set("count", 7, 60)  # a Redis integer
    assert c.set("obj", ValueError("p"), 60) if sealed else True
    assert c.set("tampered", "t", 60)
    frame = bytearray(raw.get(c.full_key("tampered")) or b"")
    frame[-1] ^= 1
    raw.set(c.full_key("tampered"), bytes(frame))
    assert c.set("moved", "m", 60)  # sealed for another key: E003 where authenticated
    raw.set(c.full_key("elsewhere"), raw.get(c.full_key("moved")) or b"")
    expected = {"common": {"a": [1, 2]}, "forever": "no expiry", "none": None,
                "big": "x" * 5000, "swr": "fresh", "count": 7}
    if sealed:
        expected["obj"] = "ValueError"
    return expected


@pytest.mark.parametrize("mode", list(MODES))
def test_every_kind_of_entry_in_one_read(make_client: MakeClient, raw: redis.Redis,
                                         mode: str) -> None:
    c = make_client(**MODES[mode])
    expected = _plant(c, raw)
    keys = ["common", "absent", "forever", "none", "big", "swr", "count", "obj",
            "tampered", "elsewhere"]
    got = c.get_many(keys)
    if "obj" in got:
        got["obj"] = type(got["obj"]).__name__
    if mode == "plain":  # no key: nothing detects tampering or a frame moved to another key
        assert got.pop("tampered") != "t" and got.pop("elsewhere") == "m"
    assert got == expected
    assert list(got) == [k for k in keys if k in expected]  # the caller's order
    if mode != "plain":
        assert c.metrics.errors["E003"] == 2  # tampered, elsewhere: counted once each
        assert c.get_many(["tampered", "elsewhere"]) == {}  # and dropped
        assert raw.exists(c.full_key("tampered"), c.full_key("elsewhere")) == 0


def test_frames_of_a_previous_key_and_past_their_expiry(make_client: MakeClient,
                                                        raw: redis.Redis) -> None:
    old = make_client(MASTER_KEY=KEY_B)
    assert old.set("rotated", "by B", 60)
    new = make_client(MASTER_KEY=KEY_A, PREVIOUS_MASTER_KEYS=KEY_B)
    assert new.set("current", "by A", 60) and new.set("short", "gone soon", 0.2)
    frame = raw.get(new.full_key("short"))
    time.sleep(0.3)
    raw.set(new.full_key("short"), frame or b"")  # written back after its sealed expiry
    assert new.get_many(["short", "rotated", "current"]) == {"rotated": "by B",
                                                           "current": "by A"}
    assert new.metrics.errors["E021"] == 1
    assert make_client(MASTER_KEY=KEY_A).get_many(["rotated", "current"]) == {"current": "by A"}


def test_owed_deletes_and_invalid_keys(make_client: MakeClient, raw: redis.Redis) -> None:
    c = make_client(MASTER_KEY=KEY_A)
    assert c.set_many({"a": 1, "b": 2, "c": 3}, 60) == []
    fks = [c.full_key(k) for k in "abc"]
    raws = [raw.get(fk) for fk in fks]
    c.pending.on_add = None  # nothing replays it: "b" stays owed its delete
    c.pending.add([fks[1]])
    try:
        assert c._values_many(["a", "b", "c"], fks, raws)[0] == {"a": 1, "c": 3}
    finally:
        c.pending.landed(*c.pending.take())
    assert c._values_many(["a", "b", "c"], fks, raws)[0] == {"a": 1, "b": 2, "c": 3}
    for _ in range(2):  # an invalid key is never remembered as checked
        for bad in ("", "x" * 1025, "lone\udc80", 5):
            with pytest.raises(InvalidKeyError):
                c.get_many(["a", bad])


def test_many_distinct_keys_stay_right(make_client: MakeClient) -> None:
    c = make_client(MASTER_KEY=KEY_A)
    keys = [f"k{i}" for i in range(5000)]  # more than a client remembers as checked
    assert c.set_many(dict.fromkeys(keys[::500], "v"), 60) == []
    for _ in range(2):
        assert c.get_many(keys) == dict.fromkeys(keys[::500], "v")
    assert len(c._checked) <= 4096


def test_async_get_many_and_get_many_as(make_client: MakeClient, raw: redis.Redis,
                                        redis_url: str, namespace: str) -> None:
    c = make_client(MASTER_KEY=KEY_A)
    expected = _plant(c, raw)
    expected.pop("obj")

    async def read() -> tuple[dict[str, Any], dict[Any, Any]]:
        a = make_async(redis_url, NAMESPACE=namespace, MASTER_KEY=KEY_A)
        try:
            keys = ["common", "forever", "none", "big", "swr", "count"]
            return (await a.get_many(keys),
                    await a.get_many_as({"common": ("caller", 1), "absent": "x"}))
        finally:
            await a.close()

    plain, named = asyncio.run(read())
    assert plain == expected
    assert named == {("caller", 1): {"a": [1, 2]}}


def test_truncated_frames_are_misses(make_client: MakeClient, raw: redis.Redis) -> None:
    c = make_client(MASTER_KEY=KEY_A)
    assert c.set("whole", "w", 60) and c.set("forever", "f", None)
    frames = {k: raw.get(c.full_key(k)) or b"" for k in ("whole", "forever")}
    cuts = {"c9": frames["whole"][:9], "c16": frames["forever"][:16],
            "c24": frames["whole"][:24], "c43": frames["forever"][:43]}
    for name, frame in cuts.items():
        raw.set(c.full_key(name), frame)
    assert c.get_many(["whole", *cuts, "forever"]) == {"whole": "w", "forever": "f"}
    assert c.metrics.errors["E021"] + c.metrics.errors["E003"] == len(cuts)
