"""AES-GCM nonces never repeat across a fork Python does not see (uWSGI's master forks in C)."""

from __future__ import annotations

import redis

from cachekit_web.core.data.crypto import NONCE_SIZE
from tests.forking import run_script

from .conftest import KEY_A

N = 200

# Forks in C from a process of its own, never from pytest's (its threads would hang the
# child: see tests/forking.py).
_FORKS = """
    import os, sys
    from cachekit_web import CacheClient
    from tests.forking import c_fork, reap

    url, namespace, key, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    # No background threads here, as in a uWSGI master kept free of them (docs/scaling.md).
    quiet = {"FLEET_PUBLISH_INTERVAL": 0}
    parent = CacheClient.from_url(url, MASTER_KEY=key, NAMESPACE=namespace, **quiet)
    assert parent.set("before", [0], 60)  # first use of the nonce source before the fork
    pids = []
    for child_no in range(2):
        pid = c_fork()  # no os.register_at_fork hook runs for this fork
        assert pid >= 0
        if pid == 0:
            code = 1
            try:
                child = CacheClient.from_url(url, MASTER_KEY=key, NAMESPACE=namespace, **quiet)
                for i in range(n):
                    child.set(f"c{child_no}-{i}", [i], 60)
                child.close()
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    for i in range(n):
        parent.set(f"p-{i}", [i], 60)
    codes = [reap(pid, 60) for pid in pids]
    parent.close()
    assert codes == [0, 0], codes
"""


def _nonce(frame: bytes) -> bytes:
    head = 16 if frame[2] == 2 else 8  # fixed header (version 2 adds the expiry), then the nonce
    return frame[head:head + NONCE_SIZE]


def test_libc_fork_child_and_parent_never_repeat_a_nonce(redis_url: str, namespace: str,
                                                         raw: redis.Redis) -> None:
    run_script(_FORKS, redis_url, namespace, KEY_A, str(N))
    names = [f"p-{i}" for i in range(N)] + [f"c{c}-{i}" for c in range(2) for i in range(N)]
    frames = raw.mget([f"{namespace}:{n}" for n in names])
    assert all(f is not None for f in frames)
    nonces = [_nonce(f) for f in frames if f is not None]
    assert len(set(nonces)) == len(nonces) == 3 * N, "a nonce was used twice under one key"
