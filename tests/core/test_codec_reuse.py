"""Opened frames reused: the same bytes under the same key give the same immutable value,
and nothing else (other bytes, another key, a lapsed expiry, a mutable value) skips a check."""

from __future__ import annotations

import pytest

from cachekit_web.core.data.codec import Codec
from cachekit_web.core.data.crypto import KeyRing
from cachekit_web.core.errors import DeserializationError, IntegrityError
from cachekit_web.core.web import StoredPage

from .conftest import KEY_A, SIGNING

KEY = b"reuse-test:view:page"
NOW = 1_000_000.0


@pytest.fixture(params=["signed", "encrypted"])
def codec(request: pytest.FixtureRequest) -> Codec:
    ring = {"signed": {"signing_key": SIGNING}, "encrypted": {"master_key": KEY_A}}
    return Codec(KeyRing(namespace="reuse-test", **ring[request.param]),
                 compress_min_size=64)


def _page() -> StoredPage:
    return StoredPage(200, (("Content-Type", "text/html"),), b"<p>page</p>" * 400, NOW)


def test_a_page_frame_opened_again_is_the_same_page(codec: Codec) -> None:
    frame = codec.encode(KEY, _page(), expires_at=NOW + 60)
    first = codec.value_of(KEY, frame, NOW)
    assert first == _page()
    assert codec.value_of(KEY, bytes(frame), NOW + 1) is first


def test_other_bytes_under_the_key_are_checked_again(codec: Codec) -> None:
    frame = codec.encode(KEY, _page(), expires_at=NOW + 60)
    codec.value_of(KEY, frame, NOW)
    tampered = bytearray(frame)
    tampered[-1] ^= 1
    with pytest.raises(IntegrityError) as raised:
        codec.value_of(KEY, bytes(tampered), NOW)
    assert raised.value.code == "E003"
    # And the same bytes moved to another key do not open there.
    with pytest.raises(IntegrityError):
        codec.value_of(b"reuse-test:view:other", frame, NOW)


def test_a_reused_frame_past_its_expiry_is_refused(codec: Codec) -> None:
    frame = codec.encode(KEY, _page(), expires_at=NOW + 60)
    codec.value_of(KEY, frame, NOW)
    with pytest.raises(DeserializationError) as raised:
        codec.value_of(KEY, frame, NOW + 61)
    assert raised.value.code == "E021"


def test_mutable_values_are_decoded_afresh(codec: Codec) -> None:
    value = {"rows": list(range(200))}
    frame = codec.encode(KEY, value)
    first = codec.value_of(KEY, frame, NOW)
    first["rows"].append("mine")
    assert codec.value_of(KEY, frame, NOW) == value
