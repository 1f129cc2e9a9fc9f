"""The Prometheus view mounted as a Django URL, with real traffic."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .conftest import cache_conf

pytest.importorskip("prometheus_client")


def test_metrics_url(use_caches: Callable[..., Any], redis_url: str, namespace: str) -> None:
    from django.test import Client

    from ..core.test_prometheus import samples

    cache = use_caches({"default": cache_conf(redis_url, namespace, PROMETHEUS=True)})
    cache.set("a", 1)
    cache.get("a")
    cache.get("b")
    r = Client().get("/t/metrics")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/plain")
    got = samples(r.content.decode(), namespace)
    assert got[("cachekit_operations_total", (("op", "get"), ("outcome", "hit")))] == 1
    assert got[("cachekit_operations_total", (("op", "get"), ("outcome", "miss")))] == 1
