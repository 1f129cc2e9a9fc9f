"""The Prometheus export: real traffic, parsed by prometheus_client's own parser."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
import redis

from .conftest import MakeClient

pc = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from cachekit_web.core.observe.prometheus import exposition  # noqa: E402


def samples(text: str, namespace: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels without namespace): value} for one namespace."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("namespace") != namespace:
                continue
            labels = tuple(sorted((k, v) for k, v in s.labels.items()
                                  if k not in ("namespace", "pid")))
            out[(s.name, labels)] = out.get((s.name, labels), 0.0) + s.value
    return out


def _traffic(c: Any, raw_list_key: str | None = None) -> None:
    for i in range(3):
        c.set(f"k{i}", i)
        c.get(f"k{i}")
    c.get("absent-1")
    c.get("absent-2")
    c.delete("k0")
    if raw_list_key:
        c.get(raw_list_key)  # E063: a list where a string was expected


def test_exposition_matches_real_traffic(make_client: MakeClient, raw: redis.Redis,
                                         namespace: str) -> None:
    c = make_client(PROMETHEUS=True)
    raw.rpush(c.full_key("list"), b"x")
    _traffic(c, "list")
    body, content_type = exposition()
    assert content_type.startswith("text/plain")
    got = samples(body.decode(), namespace)
    assert got[("cachekit_operations_total", (("op", "get"), ("outcome", "hit")))] == 3
    # The failed get is a miss too (fail-open), exactly as the client's own counters say.
    assert got[("cachekit_operations_total", (("op", "get"), ("outcome", "miss")))] == 3 \
        == c.metrics.totals["misses"]
    assert got[("cachekit_operations_total", (("op", "set"), ("outcome", "ok")))] == 3
    assert got[("cachekit_operations_total", (("op", "delete"), ("outcome", "ok")))] == 1
    assert got[("cachekit_errors_total", (("code", "E063"),))] == 1
    assert got[("cachekit_operation_duration_seconds_count", (("op", "get"),))] == 6
    assert got[("cachekit_operation_duration_seconds_bucket", (("le", "+Inf"), ("op", "get")))] \
        == 6
    assert got[("cachekit_breaker_state", ())] == 0
    assert got[("cachekit_pending_invalidations", ())] == 0


def test_breaker_state_gauge_follows_the_breaker(make_client: MakeClient,
                                                 namespace: str) -> None:
    c = make_client(PROMETHEUS=True, CIRCUIT_BREAKER_RECOVERY_TIMEOUT=60)
    for _ in range(c.settings.CIRCUIT_BREAKER_FAILURE_THRESHOLD):
        c.breaker.record_failure()
    assert samples(exposition()[0].decode(), namespace)[("cachekit_breaker_state", ())] == 2


WORKER = r"""
import sys
from cachekit_web import CacheClient
url, ns, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = CacheClient.from_url(url, NAMESPACE=ns, PROMETHEUS=True, FLEET_PUBLISH_INTERVAL=0)
for i in range(n):
    c.set(f"k{i}", i)
    c.get(f"k{i}")
c.get("absent")
c.close()
"""

SCRAPE = r"""
from cachekit_web.core.observe.prometheus import exposition
import sys
sys.stdout.write(exposition()[0].decode())
"""


def test_multiprocess_mode_adds_up_two_processes(redis_url: str, namespace: str,
                                                 tmp_path: Any) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, redis_url, namespace, str(n)],
                              env=env) for n in (4, 7)]
    for p in procs:
        assert p.wait(timeout=60) == 0
    assert len(os.listdir(tmp_path)) >= 2  # one file per process and kind
    text = subprocess.run([sys.executable, "-c", SCRAPE], env=env, check=True,
                          capture_output=True, text=True, timeout=60).stdout
    got = samples(text, namespace)
    assert got[("cachekit_operations_total", (("op", "get"), ("outcome", "hit")))] == 4 + 7
    assert got[("cachekit_operations_total", (("op", "get"), ("outcome", "miss")))] == 2
    assert got[("cachekit_operation_duration_seconds_count", (("op", "set"),))] == 11


def test_core_imports_without_prometheus_client() -> None:
    code = r"""
import sys
sys.modules["prometheus_client"] = None  # as if the extra were not installed
import cachekit_web, cachekit_web.core.client, cachekit_web.core.observe.render
from cachekit_web import CacheClient
from cachekit_web.core.errors import ConfigurationError
CacheClient.from_url("memory://noprom").get("x")
try:
    CacheClient.from_url("memory://noprom2", PROMETHEUS=True)
except ConfigurationError as exc:
    print(exc.code, "prometheus" in exc.message)
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, timeout=60).stdout.split()
    assert out == ["E042", "True"]
    assert json.dumps(out)
