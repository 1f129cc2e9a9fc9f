"""Redis outages never break a page: fail-open views, memoize and fragments; recovery."""

from __future__ import annotations

import time

import pytest
from flask import Flask, render_template_string

from cachekit_web import CachekitError
from cachekit_web.embedded import EmbeddedRedis
from cachekit_web.flask import Cache

pytestmark = pytest.mark.slow


def _app(url: str, debug: bool = False, **config: object) -> tuple[Flask, Cache, list[int]]:
    app = Flask("outage")
    app.debug = debug
    app.config.update(SECRET_KEY="k", CACHEKIT_REDIS_URL=url, CACHEKIT_NAMESPACE="outage",
                      CACHEKIT_SOCKET_TIMEOUT=0.2, CACHEKIT_SOCKET_CONNECT_TIMEOUT=0.2,
                      CACHEKIT_CIRCUIT_BREAKER_FAILURE_THRESHOLD=3,
                      CACHEKIT_CIRCUIT_BREAKER_RECOVERY_TIMEOUT=0.5, CACHEKIT_RETRIES=0,
                      CACHEKIT_LOCK_WAIT=0.5)
    app.config.update(config)
    cache = Cache(app)
    calls: list[int] = []

    @cache.memoize()
    def triple(n: int) -> int:
        calls.append(n)
        return n * 3

    @app.get("/")
    @cache.cached(timeout=60)
    def index() -> str:
        calls.append(0)
        frag = render_template_string('{% cache 60, "f" %}frag{% endcache %}')
        return f"page {triple(2)} {frag}"

    @app.get("/proxy")
    def proxy() -> str:
        cache.set("k", 1)
        return repr((cache.get("k"), cache.has("k"), cache.inc("n"), cache.get_many("k")))

    return app, cache, calls


def _network_errors(app: Flask, cache: Cache) -> int:
    """Calls that reached for Redis and failed (every code but the breaker's own E030)."""
    with app.app_context():
        errors = cache.client.metrics.errors
        return sum(n for code, n in errors.items() if code != "E030")


def test_views_stay_up_and_fast_when_redis_dies_then_recover(own_redis: EmbeddedRedis) -> None:
    app, cache, calls = _app(own_redis.url, debug=True)
    c = app.test_client()
    assert c.get("/").headers["Cache-Status"].startswith("cachekit; fwd=miss")
    assert c.get("/").headers["Cache-Status"].startswith("cachekit; hit")
    own_redis.kill()
    attempts = []  # network errors counted so far, after each request
    for _ in range(10):
        r = c.get("/")
        attempts.append(_network_errors(app, cache))
        assert r.status_code == 200 and r.data == b"page 6 frag"
    assert calls.count(0) == 11  # computed on every request while Redis is gone
    assert c.get("/proxy").status_code == 200
    with app.app_context():
        assert cache.client.breaker.state.value == "open"
    # Once the breaker is open a request does not touch the network at all.
    assert attempts[-4] == attempts[-1] > 0, attempts
    assert c.get("/").headers["Cache-Status"] == 'cachekit; fwd=bypass; detail=unavailable'
    own_redis.start()
    deadline = time.monotonic() + 10
    status = ""
    while time.monotonic() < deadline:
        time.sleep(0.2)
        c.get("/")  # refills the entry once the breaker lets calls through
        status = c.get("/").headers["Cache-Status"]
        if status.startswith("cachekit; hit"):
            break
    else:
        pytest.fail(f"cache did not recover: {status}")


def test_hung_redis_is_bounded_by_socket_timeout(own_redis: EmbeddedRedis) -> None:
    app, cache, _ = _app(own_redis.url)
    c = app.test_client()
    c.get("/")
    own_redis.pause()
    try:
        start = time.monotonic()
        for _ in range(6):
            assert c.get("/").status_code == 200
        elapsed = time.monotonic() - start
        # At most the breaker threshold's worth of socket timeouts (3), then nothing.
        assert _network_errors(app, cache) <= 3, _network_errors(app, cache)
        assert elapsed < 10.0, elapsed  # a backstop: 3 timeouts of 0.2 s, not one per call
        with app.app_context():
            assert cache.client.breaker.state.value == "open"
    finally:
        own_redis.resume()


def test_strict_mode_raises(own_redis: EmbeddedRedis) -> None:
    app, _, _ = _app(own_redis.url, CACHEKIT_STRICT=True)
    app.testing = True  # let the exception reach the test
    c = app.test_client()
    own_redis.kill()
    with pytest.raises(CachekitError):
        c.get("/")
