"""Deeply nested tuples/sets never crash a process, even in a thread with a 1 MiB stack.

Each scenario runs in a subprocess, so a segfault fails the test instead of killing pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from .conftest import MODES

_SCRIPT = textwrap.dedent('''
    import json, sys, threading
    import msgpack
    from cachekit_web import CacheClient, CachekitError
    from tests.security.conftest import v1_frame
    import redis

    url, namespace, mode = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    stack = int(sys.argv[4])
    out = {}

    def nested_payload(depth):
        # tuple((tuple(...),)) as msgpack ext 1 levels, built without recursion
        data = msgpack.packb(1)
        for _ in range(depth):
            data = msgpack.packb(msgpack.ExtType(1, b"\\x91" + data))
        return data

    def nest(depth):
        v = 1
        for _ in range(depth):
            v = (v,)
        return v

    def run():
        c = CacheClient.from_url(url, NAMESPACE=namespace, **mode)
        r = redis.Redis.from_url(url)
        ring = c.codec.keyring
        for depth in (30, 250, 3000):  # read: planted frames
            fk = c.full_key(f"deep{depth}")
            r.set(fk, v1_frame(ring, fk, nested_payload(depth)))
            out[f"get{depth}"] = c.get(f"deep{depth}", "miss")
            out[f"gos{depth}"] = c.get_or_set(f"deep{depth}", lambda: "computed", 60)
        for depth in (16, 17, 400, 5000):  # write
            try:
                out[f"set{depth}"] = c.set(f"w{depth}", nest(depth), 60)
                out[f"back{depth}"] = c.get(f"w{depth}") == nest(depth)
            except CachekitError as exc:
                out[f"set{depth}"] = exc.code
            try:
                c.get_or_set(f"g{depth}", lambda: [nest(depth)], 60)
                out[f"gosw{depth}"] = "ok"
            except CachekitError as exc:
                out[f"gosw{depth}"] = exc.code
        for depth in (200, 5000):  # sets and frozensets too
            v = frozenset([1])
            for _ in range(depth):
                v = frozenset([v])
            try:
                out[f"fset{depth}"] = c.set("fs", v, 60)
            except CachekitError as exc:
                out[f"fset{depth}"] = exc.code
        out["errors"] = dict(c.metrics.errors)
        c.close()

    if stack:
        threading.stack_size(stack)
    t = threading.Thread(target=run)
    t.start()
    t.join()
    print(json.dumps(out))
''')


@pytest.mark.parametrize("stack", [1 << 20, 0], ids=["1MiB-thread", "default-thread"])
@pytest.mark.parametrize("mode", list(MODES))
def test_deep_values_are_refused_not_crashed(redis_url: str, namespace: str, mode: str,
                                             stack: int) -> None:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": root}
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, redis_url, namespace, json.dumps(MODES[mode]),
         str(stack)],
        capture_output=True, text=True, timeout=60, env=env, cwd=root,
    )
    assert proc.returncode == 0, f"child died ({proc.returncode}): {proc.stderr[-2000:]}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for depth in (30, 250, 3000):  # planted: a miss with E021, get_or_set computes
        assert out[f"get{depth}"] == "miss"
        assert out[f"gos{depth}"] == "computed"
    assert out["errors"].get("E021", 0) >= 3
    assert out["set16"] is True and out["back16"] is True  # the documented limit holds
    assert out["gosw16"] == "ok"
    for depth in (17, 400, 5000):  # deeper: E020 from set() and get_or_set(), never a crash
        assert out[f"set{depth}"] == "E020"
        assert out[f"gosw{depth}"] == "E020"
    assert out["fset200"] == "E020" and out["fset5000"] == "E020"
