"""The sync Redis data path (backends.redispy.Lane): a kept connection, retries, fork."""

from __future__ import annotations

import os
import select
from typing import Any

import pytest
import redis

from cachekit_web.core.backends import redispy
from cachekit_web.embedded import free_port
from tests.forking import reap


def _received(r: redis.Redis) -> int:
    return int(r.info("stats")["total_connections_received"])


def test_a_thread_keeps_its_connection(make_client: Any, redis_url: str) -> None:
    client = make_client()
    raw = redis.Redis.from_url(redis_url)
    client.set("k", "v")
    before = _received(raw)
    for _ in range(50):
        assert client.get("k") == "v"
        assert client.get_many(["k", "absent"]) == {"k": "v"}
    assert _received(raw) == before  # no new connection
    assert len(client.backend._lane._idle) == 1  # one connection, taken from the pool once
    pool = client.backend.pool
    checkouts = []
    take = pool.get_connection
    pool.get_connection = lambda *a, **k: checkouts.append(1) or take(*a, **k)  # counts only
    for i in range(20):  # the batches and small commands take the same kept connection
        assert client.set_many({"a": i, "b": i}, 60) == []
        assert client.get_many(["a", "b"]) == {"a": i, "b": i}
        assert 0 < client.ttl("a") <= 60
        assert client.backend.touch(client.full_key("b"), None)  # EXISTS + PERSIST
        assert client.ttl("b") is None
        assert client.has_key("a")
        assert client.delete_many(["a", "b"]) == 2
    assert _received(raw) == before
    assert len(client.backend._lane._idle) == 1 and not checkouts  # never the pool's path
    raw.close()


def test_a_multi_key_read_sends_what_redis_py_would(make_client: Any) -> None:
    client = make_client()
    keys = ["plain", "ключ", "☃ x", "a" * 300]
    client.set_many(dict.fromkeys(keys, "v"))
    lane = client.backend._lane
    assert client.get_many(keys) == dict.fromkeys(keys, "v")
    conn, _ = lane._idle[-1]
    sent: list[bytes] = []
    send = conn.send_packed_command
    conn.send_packed_command = lambda command, *a, **k: sent.append(b"".join(command)) or \
        send(command, *a, **k)
    fks = [client.full_key(k) for k in keys]
    assert client.get_many(keys) == dict.fromkeys(keys, "v")
    assert sent[-1] == b"".join(conn.pack_command("MGET", *fks))  # redis-py's own packing
    conn.encoder.encoding = "latin-1"  # not what hiredis packs: redis-py packs it
    try:
        assert client.backend.get_many(["\xe9"]) == [None]
        assert sent[-1] == b"".join(conn.pack_command("MGET", "\xe9"))
    finally:
        conn.encoder.encoding = "utf-8"


def test_a_batch_with_an_error_reply_raises_and_the_connection_stays_usable(
        make_client: Any) -> None:
    client = make_client()
    lane = client.backend._lane
    lane.call("RPUSH", "list", "x")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        lane.call_many([("SET", "s", "1"), ("GET", "list"), ("GET", "s")])
    assert lane.call_many([("GET", "s"), ("PTTL", "s")]) == [b"1", -1]  # the SET was done
    assert lane.call("GET", "s") == b"1"


@pytest.mark.parametrize("retries", [0, 1])
def test_a_batch_lost_mid_command_is_retried_per_retries(
        make_client: Any, redis_url: str, monkeypatch: pytest.MonkeyPatch, retries: int) -> None:
    monkeypatch.setattr(redispy, "STALE_AFTER", 1e9)
    client = make_client(RETRIES=retries)
    client.set("k", "v")
    raw = redis.Redis.from_url(redis_url)
    assert raw.client_kill_filter(_type="normal", skipme=True) >= 1
    failed = client.set_many({"a": 1, "b": 2})
    if retries:
        assert failed == [] and client.get_many(["a", "b"]) == {"a": 1, "b": 2}
    else:
        assert sorted(failed) == ["a", "b"] and client.metrics.errors == {"E065": 1}
    raw.close()


@pytest.mark.parametrize("retries", [0, 1])
def test_a_connection_lost_mid_command_is_retried_per_retries(
        make_client: Any, redis_url: str, monkeypatch: pytest.MonkeyPatch, retries: int) -> None:
    monkeypatch.setattr(redispy, "STALE_AFTER", 1e9)  # no idle poll: the loss is seen mid-command
    client = make_client(RETRIES=retries)
    client.set("k", "v")
    raw = redis.Redis.from_url(redis_url)
    assert len(client.backend._lane._idle) == 1
    assert raw.client_kill_filter(_type="normal", skipme=True) >= 1  # kills the kept one
    if retries:
        assert client.get("k") == "v"
        assert client.metrics.errors.total() == 0
    else:
        assert client.get("k", "miss") == "miss"
        assert client.metrics.errors == {"E065": 1}  # lost in flight, not a refused connect
    raw.close()


def test_pool_commands_take_back_idle_lane_connections(make_client: Any) -> None:
    client = make_client(CONNECTION_POOL_SIZE=1, POOL_TIMEOUT=0.1)
    client.set("k", "v")  # the only connection now idles in the lane
    assert client.incr("n", default=0) == 1  # a script on the pool: no E012
    assert client.get("k") == "v" and client.metrics.errors.total() == 0


@pytest.mark.filterwarnings("error::DeprecationWarning")
def test_the_lane_checks_out_connections_as_the_installed_redis_py_asks(
        make_client: Any) -> None:
    # redis-py before 5.3 requires get_connection's command name; 5.3+ deprecates passing it.
    client = make_client()
    assert client.set("k", "v") is True
    assert client.get("k") == "v"
    assert client.get_many(["k", "absent"]) == {"k": "v"}
    assert client.metrics.errors.total() == 0
    assert len(client.backend._lane._idle) == 1  # taken from the pool, once


def test_refused_connect_is_still_e010() -> None:
    from cachekit_web import CacheClient

    client = CacheClient.from_url(f"redis://127.0.0.1:{free_port()}/0", RETRIES=1,
                                  CIRCUIT_BREAKER_ENABLED=False)
    assert client.get("k", "miss") == "miss"
    assert client.get_many(["a", "b"]) == {}
    assert client.metrics.errors == {"E010": 2}
    client.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_opens_its_own_connection(make_client: Any) -> None:
    client = make_client()
    client.set("k", "parent")
    parent_conn = client.backend._lane._idle[-1][0]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: must not talk on the parent's socket
        try:
            ok = client.get("k") == "parent" and client.backend._lane._idle[-1][0] \
                is not parent_conn
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    got = os.read(read, 1) if select.select([read], [], [], 30)[0] else b""
    assert reap(pid) == 0
    os.close(read)
    assert got == b"1"
    assert client.get("k") == "parent"  # the parent's connection is intact
    assert client.backend._lane._idle[-1][0] is parent_conn
