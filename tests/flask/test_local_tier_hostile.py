"""A Flask app reading through the in-process tier while a keyless client publishes
garbage on the invalidation channel: no request fails (issue 16 item 3)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from cachekit_web.core.local import tier as local_mod

from .conftest import AppFactory


@pytest.fixture(autouse=True)
def _fresh_tiers() -> Iterator[None]:
    yield
    local_mod.close_all()


def test_garbage_on_the_channel_never_makes_a_500(make_app: AppFactory, redis_url: str) -> None:
    app, cache = make_app(CACHEKIT_LOCAL_CACHE=True)
    writes = [0]

    @app.get("/v/<int:n>")
    def view(n: int) -> str:
        value = cache.get(f"v{n}")
        if value is None:
            writes[0] += 1
            value = f"value {n}"
            cache.set(f"v{n}", value, timeout=60)
        return str(value)

    garbage = [b"x", 7, b"\xff\xfe", b"*1\r\n*1\r\n:1\r\n", b"y" * (1 << 20)]
    stop = threading.Event()
    sent = [0]

    def publish() -> None:
        raw = redis.Redis.from_url(redis_url, socket_timeout=2)
        try:
            while not stop.is_set() and sent[0] < 2000:
                raw.publish("__redis__:invalidate", garbage[sent[0] % len(garbage)])
                sent[0] += 1
                stop.wait(0.01)
        finally:
            raw.close()

    web = app.test_client()
    assert web.get("/v/0").status_code == 200
    publisher = threading.Thread(target=publish)
    publisher.start()
    statuses: list[int] = []
    wrong = 0
    try:
        end = time.monotonic() + 60
        i = 0
        while (i < 1500 or sent[0] < 50) and time.monotonic() < end:
            i += 1
            resp = web.get(f"/v/{i % 10}")
            statuses.append(resp.status_code)
            if resp.status_code == 200 and resp.get_data(as_text=True) != f"value {i % 10}":
                wrong += 1
    finally:
        stop.set()
        publisher.join(10)
    assert sent[0] >= 50
    assert statuses.count(500) == 0 and len(statuses) >= 500 and wrong == 0
