"""Hostile frames in a real Redis: decompression bombs, pickle when it is off, replay."""

from __future__ import annotations

import pickle
import struct
import time
import zlib

import msgpack
import pytest
import redis

from cachekit_web import CacheClient
from cachekit_web.core.data.codec import Codec

from .conftest import KEY_A, MODES, SIGNING, MakeClient, v1_frame

F_PICKLE, F_ZLIB = 0x04, 0x08


@pytest.mark.parametrize("mode", list(MODES))
def test_decompression_bomb_is_a_miss(make_client: MakeClient, raw: redis.Redis,
                                      mode: str) -> None:
    c = make_client(MAX_VALUE_SIZE=1 << 20, **MODES[mode])
    inflated = msgpack.packb(bytes(64 << 20))  # 64 MiB of zeros in ~64 KiB
    bomb = zlib.compress(inflated, 9)
    assert len(bomb) < 1 << 20
    fk = c.full_key("bomb")
    raw.set(fk, v1_frame(c.codec.keyring, fk, bomb, F_ZLIB))
    start = time.perf_counter()
    assert c.get("bomb", "miss") == "miss"
    assert c.get_or_set("bomb", lambda: "computed", 60) == "computed"
    assert c.metrics.errors["E021"] >= 1
    assert time.perf_counter() - start < 2.0
    # an ordinary compressed value inside the limit still reads back
    assert c.set("fine", b"x" * 500_000) and c.get("fine") == b"x" * 500_000


class _Marker:
    """Unpickling this records that pickle ran."""

    loaded: list[int] = []

    def __reduce__(self) -> tuple[object, tuple[int]]:
        return (_Marker.loaded.append, (1,))


@pytest.mark.parametrize("mode", ["signed", "encrypted"])
def test_pickle_off_never_unpickles(make_client: MakeClient, raw: redis.Redis,
                                    mode: str) -> None:
    writer = make_client(**MODES[mode])  # PICKLE_FALLBACK on: stores a pickled object
    assert writer.set("obj", ValueError("stored"), 60)
    reader = make_client(PICKLE_FALLBACK=False, **MODES[mode])
    assert reader.get("obj", "miss") == "miss"
    assert reader.metrics.errors["E021"] == 1
    fk = reader.full_key("planted")
    raw.set(fk, v1_frame(reader.codec.keyring, fk, pickle.dumps(_Marker()), F_PICKLE))
    _Marker.loaded.clear()
    assert reader.get("planted", "miss") == "miss"
    assert reader.get_many(["planted", "obj"]) == {}
    assert _Marker.loaded == []
    assert writer.set("obj", ValueError("stored"), 60)  # the reader dropped it
    assert writer.get("obj").args == ("stored",)  # with pickle on, it still reads


@pytest.mark.parametrize("mode", list(MODES))
def test_expired_frame_written_back_is_not_served(make_client: MakeClient, raw: redis.Redis,
                                                  mode: str) -> None:
    c = make_client(**MODES[mode])
    assert c.set("k", "old", 0.2)
    assert c.set("swr", "old", 0.1, stale_ttl=0.1)
    frames = {k: raw.get(c.full_key(k)) for k in ("k", "swr")}
    deadline = time.monotonic() + 5
    while raw.exists(c.full_key("k"), c.full_key("swr")) and time.monotonic() < deadline:
        time.sleep(0.05)
    for k, frame in frames.items():  # the replay: written back, without a TTL
        assert frame is not None
        raw.set(c.full_key(k), frame)
    assert c.get("k", "miss") == "miss" and c.get("swr", "miss") == "miss"
    assert c.get_many(["k", "swr"]) == {}
    assert c.get_or_set("k", lambda: "new", 60) == "new"
    assert c.metrics.errors["E021"] >= 2
    raw.set(c.full_key("k"), frames["k"])
    assert c.add("k", "added", 60) is True  # an expired entry blocks nothing
    raw.set(c.full_key("swr"), frames["swr"])
    assert c.touch("swr", 60) is False


@pytest.mark.parametrize("mode", ["signed", "encrypted"])
def test_extended_expiry_fails_authentication(make_client: MakeClient, raw: redis.Redis,
                                              mode: str) -> None:
    c = make_client(**MODES[mode])
    assert c.set("k", "v", 60)
    frame = raw.get(c.full_key("k"))
    assert frame is not None and frame[2] == 2
    (expires,) = struct.unpack_from(">d", frame, 8)
    assert abs(expires - (time.time() + 60)) < 5
    raw.set(c.full_key("k"), frame[:8] + struct.pack(">d", expires + 3600) + frame[16:])
    assert c.get("k", "miss") == "miss"
    assert c.metrics.errors["E003"] == 1


@pytest.mark.parametrize("mode", list(MODES))
def test_first_format_frames_still_read(make_client: MakeClient, raw: redis.Redis,
                                        mode: str) -> None:
    c = make_client(**MODES[mode])
    fk = c.full_key("old")
    raw.set(fk, v1_frame(c.codec.keyring, fk, msgpack.packb({"a": [1, 2]})), px=60_000)
    assert c.get("old") == {"a": [1, 2]}
    raw.set(fk, v1_frame(c.codec.keyring, fk, msgpack.packb(5)), px=60_000)
    assert c.incr("old") == 6
    assert c.metrics.errors.total() == 0


def test_touch_and_incr_keep_a_correct_expiry(make_client: MakeClient, raw: redis.Redis
                                              ) -> None:
    c = make_client(SIGNING_KEY=SIGNING)

    def expiry(key: str) -> float | None:
        frame = raw.get(c.full_key(key))
        assert frame is not None
        return Codec.decode(c.codec, c.full_key(key).encode(), frame).expires_at

    assert c.set("t", "v", 0.3)
    assert c.touch("t", 60)
    e = expiry("t")
    assert e is not None and abs(e - (time.time() + 60)) < 5
    assert c.touch("t", None) and expiry("t") is None and c.ttl("t") is None
    assert c.set("n", 1, 60)
    before = expiry("n")
    assert c.incr("n") == 2 and expiry("n") == before
    assert c.set("forever", 1, None) and expiry("forever") is None


def test_replayed_counter_is_a_miss_for_incr(make_client: MakeClient, raw: redis.Redis) -> None:
    # Sealed counters are ENCRYPTION=required's; by default they are Redis integers.
    c: CacheClient = make_client(MASTER_KEY=KEY_A, ENCRYPTION="required")
    assert c.set("n", 5, 0.2)
    frame = raw.get(c.full_key("n"))
    assert frame is not None
    time.sleep(0.3)
    raw.set(c.full_key("n"), frame)
    assert c.incr("n") is None
    raw.set(c.full_key("n"), frame)
    assert c.incr("n", default=100) == 101
    assert c.get("n") == 101
