"""cache_page(local=True) reads through the in-process tier."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from cachekit_web.core import local as local_mod
from cachekit_web.django import cache_page


@pytest.fixture(autouse=True)
def _fresh_tiers() -> Iterator[None]:
    yield
    local_mod.close_all()


def test_cache_page_local_hits_from_memory(cache: Any) -> None:
    calls: list[int] = []

    @cache_page(60, local=True)
    def view(request: Any) -> HttpResponse:
        calls.append(1)
        return HttpResponse(f"page #{len(calls)}")

    factory = RequestFactory()
    first = view(factory.get("/local/"))
    client = cache.client
    end = time.monotonic() + 3
    while not (getattr(client, "_local", None) and client._local.live) and \
            time.monotonic() < end:
        time.sleep(0.005)
    for _ in range(4):  # the first one fills the tier once its lease is live
        again = view(factory.get("/local/"))
        assert again.content == first.content
        assert again["Cache-Status"].startswith("cachekit; hit")
    assert calls == [1]
    assert client.metrics.totals["local_hits"] >= 3
