"""The health dashboard blueprint: protection, HTML with its chart, JSON."""

from __future__ import annotations

import pytest
from flask import Flask, request

from cachekit_web.embedded import EmbeddedRedis
from cachekit_web.flask import Cache

from .conftest import AppFactory

URL = "/_cachekit/health/"
TOKEN = "Xy7_s3cret.token"


def test_dashboard_is_404_without_protection(make_app: AppFactory) -> None:
    app, _ = make_app(CACHEKIT_HEALTH_ENABLED=True)
    c = app.test_client()
    assert c.get(URL).status_code == 404
    assert c.get(URL + "health.json").status_code == 404


def test_dashboard_is_absent_unless_enabled(make_app: AppFactory) -> None:
    app, _ = make_app(CACHEKIT_HEALTH_TOKEN=TOKEN)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert app.test_client().get(URL, headers=headers).status_code == 404


@pytest.mark.parametrize(("header", "status"), [
    (None, 401), ("Bearer wrong", 403), ("Basic dG9rOnRvaw==", 403), ("good", 200),
])
def test_bearer_token(make_app: AppFactory, header: str | None, status: int) -> None:
    app, _ = make_app(CACHEKIT_HEALTH_ENABLED=True, CACHEKIT_HEALTH_TOKEN=TOKEN)
    if header == "good":
        header = f"Bearer {TOKEN}"
    headers = {"Authorization": header} if header else {}
    r = app.test_client().get(URL, headers=headers)
    assert r.status_code == status
    if status == 401:
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    if status == 200:
        assert r.headers["Cache-Control"] == "no-store"
        assert TOKEN.encode() not in r.data


def test_authorization_callback(make_app: AppFactory) -> None:
    app, cache = make_app(CACHEKIT_HEALTH_ENABLED=True)

    @cache.health_authorization
    def staff_only() -> bool:
        return request.headers.get("X-Staff") == "yes"

    c = app.test_client()
    assert c.get(URL).status_code == 403
    assert c.get(URL, headers={"X-Staff": "yes"}).status_code == 200


def test_dashboard_content(make_app: AppFactory) -> None:
    app, cache = make_app(CACHEKIT_HEALTH_ENABLED=True, CACHEKIT_HEALTH_TOKEN=TOKEN,
                          CACHEKIT_HEALTH_URL_PREFIX="/ops/cache")
    with app.app_context():
        cache.set("a", 1)
        cache.get("a"), cache.get("b")
        cache.client.metrics.error("E010")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    c = app.test_client()
    html = c.get("/ops/cache/", headers=auth).get_data(as_text=True)
    for needle in ("<svg", "ck-series-hits", "Status:", "hit rate", "50.0%", "Circuit breaker",
                   "closed", "E010", "redis_version", "ping (ms)"):
        assert needle in html, needle
    assert "s3cr3t-flask-key" not in html
    data = c.get("/ops/cache/health.json", headers=auth).get_json()
    assert data["status"] in ("ok", "degraded") and data["namespace"] == cache_ns(app, cache)
    assert data["metrics"]["totals"]["hits"] == 1 and len(data["metrics"]["series"]) == 60
    assert data["errors_explained"][0]["code"] == "E010" and data["errors_explained"][0]["fix"]
    assert 'href="/ops/cache/errors/E010"' in html
    explained = c.get("/ops/cache/errors/E010", headers=auth)
    assert explained.status_code == 200 and b"E010" in explained.data
    assert c.get("/ops/cache/errors/E010").status_code == 401
    assert c.get("/ops/cache/errors/E999", headers=auth).status_code == 404


def cache_ns(app: Flask, cache: Cache) -> str:
    with app.app_context():
        return cache.client.namespace


def test_dashboard_reports_down_when_redis_is_gone(make_app: AppFactory) -> None:
    app, _ = make_app(CACHEKIT_HEALTH_ENABLED=True, CACHEKIT_HEALTH_TOKEN=TOKEN,
                      CACHEKIT_REDIS_URL="redis://127.0.0.1:1/0",
                      CACHEKIT_SOCKET_CONNECT_TIMEOUT=0.2)
    r = app.test_client().get(URL + "health.json", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.get_json()["status"] == "down"


def test_health_numbers_add_up_while_redis_is_down(make_app: AppFactory) -> None:
    """Redis killed, N cache calls: each failed call is one error with one code, the process's
    calls count every call (refused ones too), and errors never exceed calls."""
    from cachekit_web.embedded import EmbeddedRedis

    with EmbeddedRedis() as server:
        app, cache = make_app(CACHEKIT_REDIS_URL=server.url, CACHEKIT_HEALTH_ENABLED=True,
                              CACHEKIT_HEALTH_TOKEN=TOKEN, CACHEKIT_SOCKET_TIMEOUT=0.2,
                              CACHEKIT_SOCKET_CONNECT_TIMEOUT=0.2, CACHEKIT_RETRIES=0)

        @cache.memoize()
        def describe(thing: object) -> str:  # an object() cannot be keyed: E023, uncached
            return type(thing).__name__

        @app.get("/work")
        def work() -> str:
            cache.set("k", 1)  # each proxy call below is one backend call
            cache.get("k")
            cache.delete("k")
            return describe(object())

        c = app.test_client()
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with app.app_context():
            metrics = cache.client.metrics
            cache.get("warm")
        before = c.get(URL + "health.json", headers=headers).get_json()["metrics"]
        assert before["totals"]["errors"] == 0
        server.kill()
        n = 150
        for _ in range(n):
            assert c.get("/work").data == b"object"
        report = c.get(URL + "health.json", headers=headers).get_json()
    (row,) = report["fleet"]["processes"]
    assert row["errors"] <= row["ops"], row  # the dashboard's "calls" column
    m = report["metrics"]
    calls, errors = m["totals"]["calls"], m["totals"]["errors"]
    assert calls == before["totals"]["calls"] + 4 * n  # set, get, delete, memoize: 4 a request
    assert errors == 4 * n == metrics.errors.total()  # each failed call counted once
    assert sum(m["errors_by_code"].values()) == errors
    assert m["errors_by_code"]["E023"] == n
    assert errors <= calls
    assert row["errors"] == errors and row["ops"] == calls
    assert m["rates_per_s"]["errors"] <= m["rates_per_s"]["ops"]


@pytest.mark.parametrize("keyed", [False, True], ids=["keyless", "signed"])
def test_forged_snapshots_never_break_the_health_pages(make_app: AppFactory, keyed: bool,
                                                       redis_url: str) -> None:
    """Snapshots with missing fields, wrong types, now=1e300, NaN, or that inflate to MBs:
    skipped and counted (never a 500, never inflated); without a key, other processes'
    snapshots cannot be authenticated, so the report covers this process only."""
    import copy
    import math
    import time
    import tracemalloc

    import redis

    from cachekit_web.core.observe.fleet import snapshot_prefix

    app, cache = make_app(CACHEKIT_HEALTH_ENABLED=True, CACHEKIT_HEALTH_TOKEN=TOKEN,
                          SECRET_KEY="s3cr3t-flask-key" if keyed else None)
    with app.app_context():
        client = cache.client
    assert client.codec.keyring.authenticated is keyed
    client.get("warm")
    prefix = snapshot_prefix(client.namespace)
    genuine = copy.deepcopy(client.fleet.local())
    genuine.update(host="peer", pid=424242)
    genuine["metrics"]["totals"]["sets"] = 7

    def edited(**changes: object) -> dict[str, object]:
        snap = copy.deepcopy(genuine)
        snap.update(changes)
        return snap

    nan_metrics = copy.deepcopy(genuine["metrics"])
    nan_metrics["started"] = math.nan
    huge_now = copy.deepcopy(genuine["metrics"])
    huge_now["now"] = 1e300
    forged: dict[str, object] = {
        "missing": {"format": 1, "host": "h"},
        "types": edited(pid="x", breaker="open", metrics={"totals": []}),
        "now": edited(published=1e300, metrics=huge_now),
        "nan": edited(started=math.nan, metrics=nan_metrics),
        **{f"bomb{i}": edited(host="\0" * (7 * 1024 * 1024)) for i in range(6)},
    }
    codec = copy.copy(client.codec)
    codec.max_value_size = 64 * 1024 * 1024
    raw = redis.Redis.from_url(redis_url)  # a plain client plants them, as an attacker would
    expires = time.time() + 300
    for name, snap in [("peer", genuine), *forged.items()]:
        key = f"{prefix}{name}:1:x"
        raw.set(key, codec.encode(key.encode(), snap, None, expires), ex=300)
        client.fleet.enrol(client.backend, key, 300)
    raw.close()

    c = app.test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    tracemalloc.start()
    try:
        page = c.get(URL, headers=headers)
        body = c.get(URL + "health.json", headers=headers)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert page.status_code == 200 and body.status_code == 200, (page.data[-500:], body.data)
    fleet = body.get_json()["fleet"]
    assert peak < 8 * 1024 * 1024, peak  # no snapshot inflated to megabytes
    if keyed:
        assert fleet["scope"] == "fleet"
        assert sorted(p["pid"] for p in fleet["processes"] if not p["this"]) == [424242]
        assert fleet["skipped"] == len(forged)
        assert f"{len(forged)} invalid snapshot(s) skipped".encode() in page.data
        assert body.get_json()["metrics"]["totals"]["sets"] == 7
    else:
        assert fleet["scope"] == "local" and "authenticated" in fleet["reason"]
        assert [p["this"] for p in fleet["processes"]] == [True]
        assert b"this process" in page.data


@pytest.mark.parametrize(("config", "query", "expected"), [
    ({}, "", 200),  # a cache outage keeps a healthy site in a load balancer's rotation
    ({}, "?strict=1", 503),  # unless the probe asks for it
    ({"CACHEKIT_HEALTH_DOWN_STATUS": 503}, "", 503),  # or the operator does
])
def test_health_json_when_redis_is_down(make_app: AppFactory, own_redis: EmbeddedRedis,
                                        config: dict[str, object], query: str,
                                        expected: int) -> None:
    app, _ = make_app(CACHEKIT_HEALTH_ENABLED=True, CACHEKIT_HEALTH_TOKEN=TOKEN,
                      CACHEKIT_REDIS_URL=own_redis.url, **config)
    own_redis.kill()
    r = app.test_client().get(URL + "health.json" + query,
                              headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == expected
    assert r.get_json()["status"] == "down"
