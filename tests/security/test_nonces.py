"""AES-GCM nonces never repeat across a fork Python does not see (uWSGI's master forks in C)."""

from __future__ import annotations

import ctypes
import os

import redis

from cachekit_web import CacheClient
from cachekit_web.core.crypto import NONCE_SIZE

from .conftest import KEY_A

N = 200


def _nonce(frame: bytes) -> bytes:
    head = 16 if frame[2] == 2 else 8  # fixed header (version 2 adds the expiry), then the nonce
    return frame[head:head + NONCE_SIZE]


def test_libc_fork_child_and_parent_never_repeat_a_nonce(redis_url: str, namespace: str,
                                                         raw: redis.Redis) -> None:
    # No background threads here: this process forks in C, and a thread caught holding
    # an interpreter lock at that instant would hang the child (why uWSGI masters, which
    # fork like this, are best kept free of threads: see docs/scaling.md).
    quiet = {"FLEET_PUBLISH_INTERVAL": 0}
    parent = CacheClient.from_url(redis_url, MASTER_KEY=KEY_A, NAMESPACE=namespace, **quiet)
    assert parent.set("before", [0], 60)  # first use of the nonce source before the fork
    libc = ctypes.CDLL(None, use_errno=True)
    pids = []
    for child_no in range(2):
        pid = libc.fork()  # no os.register_at_fork hook runs for this fork
        assert pid >= 0, os.strerror(ctypes.get_errno())
        if pid == 0:
            code = 1
            try:
                child = CacheClient.from_url(redis_url, MASTER_KEY=KEY_A, NAMESPACE=namespace,
                                             **quiet)
                for i in range(N):
                    child.set(f"c{child_no}-{i}", [i], 60)
                child.close()
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    for i in range(N):
        parent.set(f"p-{i}", [i], 60)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    parent.close()
    names = [f"p-{i}" for i in range(N)] + [f"c{c}-{i}" for c in range(2) for i in range(N)]
    frames = raw.mget([f"{namespace}:{n}" for n in names])
    assert all(f is not None for f in frames)
    nonces = [_nonce(f) for f in frames if f is not None]
    assert len(set(nonces)) == len(nonces) == 3 * N, "a nonce was used twice under one key"
