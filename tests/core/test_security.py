"""Sealing: secrets stay out of Redis, reprs, health and logs; moved/garbage entries are misses."""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import struct
from typing import Any

import msgpack
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from cachekit_web import CacheClient, DeserializationError, IntegrityError
from cachekit_web.core.data.codec import HEADER2_SIZE, MAGIC, VERSION, Codec
from cachekit_web.core.data.crypto import NONCE_SIZE, KeyRing
from cachekit_web.embedded import EmbeddedRedis
from tests.forking import reap

from .conftest import KEY_A, KEY_B, SIGNING, MakeClient, raw_for


def _leaks(blob: str | bytes, secret_texts: list[str]) -> list[str]:
    data = blob if isinstance(blob, bytes) else blob.encode()
    return [s for s in secret_texts if s.encode() in data]


def test_encrypted_value_unreadable_in_raw_redis(make_client: MakeClient, raw: redis.Redis
                                                 ) -> None:
    client = make_client(MASTER_KEY=KEY_A)
    secret = "card-4111-" + secrets.token_hex(8)
    value = {"owner": secret, "n": 123456789}
    assert client.set("profile", value, 60)
    stored = raw.get(client.full_key("profile"))
    assert stored is not None and stored.startswith(MAGIC)
    assert secret.encode() not in stored
    assert b"owner" not in stored
    assert msgpack.packb(123456789) not in stored
    assert KEY_A.encode() not in stored and bytes.fromhex(KEY_A) not in stored
    assert client.get("profile") == value


def test_signed_value_is_not_encrypted_but_authenticated(make_client: MakeClient,
                                                         raw: redis.Redis) -> None:
    client = make_client(SIGNING_KEY=SIGNING)
    client.set("k", "visible", 60)
    stored = raw.get(client.full_key("k"))
    assert stored is not None and b"visible" in stored  # signing does not hide values
    assert SIGNING.encode() not in stored
    raw.set(client.full_key("k"), stored.replace(b"visible", b"VISIBLE"))
    assert client.get("k") is None
    assert client.metrics.errors["E003"] == 1


def test_secrets_absent_from_repr_health_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    password = "pw-" + secrets.token_hex(6)
    server = EmbeddedRedis(password=password).start()
    try:
        secret = "secret-" + secrets.token_hex(8)
        client = CacheClient.from_url(
            server.url, MASTER_KEY=KEY_A, PREVIOUS_MASTER_KEYS=[KEY_B], NAMESPACE="sec",
            SOCKET_TIMEOUT=0.2, SOCKET_CONNECT_TIMEOUT=0.2, LOG_INTERVAL=0.0,
            CIRCUIT_BREAKER_FAILURE_THRESHOLD=3,
        )
        caplog.set_level(logging.DEBUG, logger="cachekit_web")
        assert client.set("k", secret, 60)
        # a tampered entry, then an outage: both log
        r = raw_for(server.url)
        r.set(client.full_key("k2"), r.get(client.full_key("k")) or b"")
        r.close()
        assert client.get("k2") is None
        server.kill()
        for _ in range(5):
            assert client.get("k") is None
            client.set("k", secret)
        texts = [
            repr(client), str(client.settings), repr(client.settings), repr(client.codec),
            json.dumps(client.health().as_dict()), json.dumps(client.settings.public_dict()),
            client.describe(),
            *(rec.getMessage() for rec in caplog.records),
            *(str(rec.exc_info) for rec in caplog.records),
        ]
        assert caplog.records, "the failures above must have logged something"
        forbidden = [secret, KEY_A, KEY_B, password, bytes.fromhex(KEY_A).hex().upper()]
        for text in texts:
            assert not _leaks(text, forbidden), text
        client.close()
    finally:
        server.stop()


def test_value_moved_to_another_key_is_refused(make_client: MakeClient, raw: redis.Redis,
                                               caplog: pytest.LogCaptureFixture) -> None:
    for extra in ({"MASTER_KEY": KEY_A}, {"SIGNING_KEY": SIGNING}):
        client = make_client(**extra)
        client.clear()
        client.set("a", "value-of-a", 60)
        raw.set(client.full_key("b"), raw.get(client.full_key("a")) or b"")
        with caplog.at_level(logging.WARNING, logger="cachekit_web"):
            assert client.get("b") is None
        assert client.metrics.errors["E003"] == 1
        assert any("E003" in r.getMessage() for r in caplog.records)
        assert client.get("a") == "value-of-a"  # next call also applies the delete
        assert raw.exists(client.full_key("b")) == 0
        assert client.get("b", "dflt") == "dflt"


def test_strict_mode_raises_e003(make_client: MakeClient, raw: redis.Redis) -> None:
    client = make_client(MASTER_KEY=KEY_A, STRICT=True)
    client.set("a", "x", 60)
    raw.set(client.full_key("b"), raw.get(client.full_key("a")) or b"")
    with pytest.raises(IntegrityError) as info:
        client.get("b")
    assert info.value.code == "E003"
    raw.set(client.full_key("c"), b"junk")
    with pytest.raises(DeserializationError) as info2:
        client.get("c")
    assert info2.value.code == "E021"


def test_codec_decode_raises_e003_for_moved_frame() -> None:
    codec = Codec(KeyRing(namespace="n", master_key=KEY_A))
    frame = codec.encode(b"n:a", "x")
    with pytest.raises(IntegrityError) as info:
        codec.decode(b"n:b", frame)
    assert info.value.code == "E003" and isinstance(info.value, ValueError)


@pytest.mark.parametrize("extra", [{}, {"MASTER_KEY": KEY_A}, {"SIGNING_KEY": SIGNING}])
def test_random_bytes_are_a_miss(make_client: MakeClient, raw: redis.Redis,
                                 extra: dict[str, str]) -> None:
    client = make_client(**extra)
    rng = __import__("random").Random(1234)
    garbage = [
        os.urandom(40), b"", b"C", MAGIC, MAGIC + bytes([VERSION, 0]) + b"\0" * 4 + b"\xc1",
        MAGIC + bytes([VERSION, 0x10]) + b"\0" * 4 + b"\x01",  # F_FRESH but truncated
        MAGIC + bytes([VERSION, 0x04]) + b"\0" * 4 + b"cos\nsystem\n",  # pickle flag
        *(bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 64))) for _ in range(20)),
    ]
    for i, blob in enumerate(garbage):
        raw.set(client.full_key(f"g{i}"), blob)
    for i in range(len(garbage)):
        assert client.get(f"g{i}", "miss") == "miss"
    codes = dict(client.metrics.errors)
    assert set(codes) <= {"E003", "E021"}, codes
    if extra:
        assert sum(codes.values()) == len(garbage)
    else:  # in plain mode some garbage happens to be valid msgpack after a valid header
        assert sum(codes.values()) >= len(garbage) - 2
    assert client.get_many([f"g{i}" for i in range(len(garbage))]) == {}
    client.get("anything")  # flushes the remembered deletes
    assert sum(raw.exists(client.full_key(f"g{i}")) for i in range(len(garbage))) == 0


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=80), flags=st.integers(0, 255), mode=st.sampled_from(
    [{}, {"master_key": KEY_A}, {"signing_key": SIGNING}]))
def test_codec_decode_never_crashes(body: bytes, flags: int, mode: dict[str, Any]) -> None:
    codec = Codec(KeyRing(namespace="n", **mode))
    for frame in (body, MAGIC + bytes([VERSION, flags]) + body[:4].ljust(4, b"\0") + body[4:]):
        try:
            codec.decode(b"n:k", frame)
        except (DeserializationError, IntegrityError) as exc:
            assert exc.code in ("E003", "E021")


def test_rotation_previous_key_reads_new_key_writes(make_client: MakeClient) -> None:
    old = make_client(MASTER_KEY=KEY_A)
    old.set("k", {"v": 1}, 60)
    new = make_client(MASTER_KEY=KEY_B, PREVIOUS_MASTER_KEYS=[KEY_A])
    assert new.get("k") == {"v": 1}
    assert new.metrics.errors.total() == 0
    new.set("k2", "from-b", 60)
    assert make_client(MASTER_KEY=KEY_B).get("k2") == "from-b"
    only_a = make_client(MASTER_KEY=KEY_A)
    assert only_a.get("k2") is None
    assert only_a.metrics.errors["E003"] == 1
    # once the previous key is dropped, old entries are misses, not errors raised
    assert make_client(MASTER_KEY=KEY_B).get("k") is None


def test_header_carries_current_key_id() -> None:
    ring_a = KeyRing(namespace="n", master_key=KEY_A)
    ring_b = KeyRing(namespace="n", master_key=KEY_B, previous_keys=(KEY_A,))
    frame = Codec(ring_b).encode(b"n:k", 1)
    assert frame[4:8] == ring_b.key_id != ring_a.key_id


def _nonces(codec: Codec, n: int) -> list[bytes]:
    return [codec.encode(b"n:k", i)[HEADER2_SIZE:HEADER2_SIZE + NONCE_SIZE] for i in range(n)]


def test_forked_processes_never_share_a_nonce() -> None:
    codec = Codec(KeyRing(namespace="n", master_key=KEY_A))
    parent_before = _nonces(codec, 10)  # first use of the crypto before fork
    n = 2000
    children = []
    for _ in range(2):
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: only os-level calls, then _exit
            try:
                data = b"".join(_nonces(codec, n))
                view = memoryview(data)
                while view:
                    view = view[os.write(wfd, view):]
            finally:
                os._exit(0)
        os.close(wfd)
        children.append((pid, rfd))
    parent_after = _nonces(codec, n)
    sets = [set(parent_before + parent_after)]
    for pid, rfd in children:
        chunks = []
        while True:
            chunk = os.read(rfd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(rfd)
        assert reap(pid) == 0
        blob = b"".join(chunks)
        assert len(blob) == n * NONCE_SIZE
        got = [blob[i:i + NONCE_SIZE] for i in range(0, len(blob), NONCE_SIZE)]
        assert len(set(got)) == n
        sets.append(set(got))
    assert len(sets[0]) == n + 10
    total = sum(len(s) for s in sets)
    assert len(set().union(*sets)) == total, "a nonce was reused across processes"
    # the counter part really counts up within a process
    counters = [struct.unpack(">I", x[8:])[0] for x in parent_after]
    assert counters == sorted(counters)


def test_redact_url_hides_passwords_and_key_like_query_values() -> None:
    from cachekit_web.core.urls import redact_url

    shown = redact_url(
        "redis://app:hunter2@h:6379/0?MASTER_KEY=deadbeef&sentinel_password=s3&db=1&api_token=t"
    )
    for secret in ("hunter2", "deadbeef", "s3", "=t"):
        assert secret not in shown
    assert shown.startswith("redis://app:***@h:6379/0?") and "db=1" in shown


@pytest.mark.parametrize("password", ["S3cr3t/pa55", "ab#cd", "a?b"])
def test_passwords_with_url_delimiters_never_leak(password: str) -> None:
    from cachekit_web import ConfigurationError, Settings
    from cachekit_web.cli import doctor_checks, run_checks

    url = f"redis://:{password}@cache.internal:6379/0"
    conf = Settings(REDIS_URL=url)
    assert password not in repr(conf)
    assert password not in str(conf.public_dict())
    try:
        client = CacheClient(conf)
    except ConfigurationError as exc:  # redis-py cannot parse it: E042, redacted
        assert exc.code == "E042" and password not in str(exc)
    else:
        assert password not in repr(client) and password not in client.describe()
        client.close()
    out = io.StringIO()
    run_checks(doctor_checks(url), out)
    assert password not in out.getvalue()
