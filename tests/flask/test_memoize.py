"""@cache.memoize: arguments, methods with stable ids, async functions, deletion."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from flask import Flask

from cachekit_web import InvalidKeyError
from cachekit_web.flask import Cache


def test_memoize_by_arguments(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    calls: list[tuple[int, int]] = []

    @cache.memoize(timeout=60)
    def add(a: int, b: int = 10) -> int:
        calls.append((a, b))
        return a + b

    assert add(1, 2) == 3 and add(1, b=2) == 3 and add(a=1, b=2) == 3
    assert add(1) == 11 and add(1, 10) == 11
    assert calls == [(1, 2), (1, 10)]


def test_delete_memoized_all_and_by_arguments(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    calls: list[int] = []

    @cache.memoize()
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    square(2), square(3)
    cache.delete_memoized(square, 2)
    square(2), square(3)
    assert calls == [2, 3, 2]
    cache.delete_memoized(square)
    square(2), square(3)
    assert calls == [2, 3, 2, 2, 3]
    square.delete_memoized()
    square(3)
    cache.delete_memoized_verhash(square)
    square(3)
    assert calls[-2:] == [3, 3]
    with pytest.raises(TypeError):
        cache.delete_memoized(lambda: None)


class Account:
    def __init__(self, pk: int) -> None:
        self.pk = pk
        self.calls = 0

    def __caching_id__(self) -> int:
        return self.pk

    def balance(self, currency: str) -> str:
        return self._balance(currency)

    def _balance(self, currency: str) -> str:
        raise NotImplementedError


class Anonymous:
    def total(self) -> int:
        return 1


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int


def test_methods_use_caching_id_not_repr(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache

    class Wallet(Account):
        @cache.memoize()
        def balance(self, currency: str) -> str:
            self.calls += 1
            return f"{self.pk}:{currency}:{self.calls}"

    a1, a1_again, a2 = Wallet(1), Wallet(1), Wallet(2)
    assert a1.balance("EUR") == "1:EUR:1"
    assert a1_again.balance("EUR") == "1:EUR:1"  # same id, other object: same entry
    assert a2.balance("EUR") == "2:EUR:1"
    cache.delete_memoized(a1.balance)  # this instance only
    assert a1.balance("EUR") == "1:EUR:2"
    assert a2.balance("EUR") == "2:EUR:1"
    cache.delete_memoized(Wallet.balance)  # every instance
    assert a2.balance("EUR") == "2:EUR:2"


def test_objects_without_identity_are_refused(app_cache: tuple[Flask, Cache]) -> None:
    app, cache = app_cache
    app.testing = True  # E023 raises while developing (production runs such calls uncached)

    class Counter(Anonymous):
        @cache.memoize()
        def total(self) -> int:
            return 2

        @cache.memoize(args_to_ignore=["self"])
        def shared(self) -> int:
            return 3

    @cache.memoize()
    def describe(thing: object) -> str:
        return str(thing)

    with pytest.raises(InvalidKeyError) as info:
        Counter().total()
    assert info.value.code == "E023" and "__caching_id__" in str(info.value)
    assert Counter().shared() == 3
    with pytest.raises(InvalidKeyError):
        describe(object())
    assert describe(Point(1, 2)) == "Point(x=1, y=2)"


def test_make_name_forced_update_response_filter(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    calls: list[int] = []
    force = {"on": False}

    @cache.memoize(make_name=lambda name: "renamed", forced_update=lambda: force["on"],
                   response_filter=lambda rv: rv != 0)
    def f(x: int) -> int:
        calls.append(x)
        return x

    f(1), f(1), f(0), f(0)
    assert calls == [1, 0, 0]
    force["on"] = True
    f(1)
    assert calls == [1, 0, 0, 1]
    key = f.make_cache_key(f.uncached, 1)
    assert key.startswith("memo:renamed:") and cache.get(key) == 1


def test_async_memoize(app_cache: tuple[Flask, Cache]) -> None:
    _, cache = app_cache
    calls: list[int] = []

    @cache.memoize(timeout=60)
    async def fetch(n: int) -> dict[str, int]:
        await asyncio.sleep(0.01)
        calls.append(n)
        return {"n": n}

    async def many() -> list[dict[str, int]]:
        return await asyncio.gather(*(fetch(7) for _ in range(10)))

    assert asyncio.run(many()) == [{"n": 7}] * 10
    assert asyncio.run(fetch(7)) == {"n": 7}  # a second event loop, same cache
    assert calls == [7]
    cache.delete_memoized(fetch)
    assert asyncio.run(fetch(7)) == {"n": 7} and calls == [7, 7]


def test_async_memoize_inside_an_async_view(app_cache: tuple[Flask, Cache]) -> None:
    app, cache = app_cache
    calls: list[int] = []

    @cache.memoize()
    async def lookup(n: int) -> int:
        calls.append(n)
        return n * 2

    @app.get("/double/<int:n>")
    async def double(n: int) -> str:
        return str(await lookup(n))

    c = app.test_client()
    assert [c.get("/double/4").data for _ in range(3)] == [b"8"] * 3
    assert calls == [4]


def test_unkeyable_arguments_outside_an_app_context_run_uncached(
        redis_url: str, namespace: str) -> None:
    # Cache(app) binds the app, so memoized functions work with no context pushed (as
    # Flask-Caching's own test_memoize_classfunc and test_memoize_classarg call them).
    app = Flask(f"app-{namespace}")
    app.config.update(CACHEKIT_REDIS_URL=redis_url, CACHEKIT_NAMESPACE=namespace)
    cache = Cache(app)
    calls: list[int] = []

    class Counter(Anonymous):
        @cache.memoize()
        def total(self) -> int:
            calls.append(1)
            return 2

    @cache.memoize()
    def describe(thing: object) -> str:
        calls.append(2)
        return type(thing).__name__

    assert Counter().total() == 2 and Counter().total() == 2  # computed each time, uncached
    assert describe(object()) == "object"
    assert calls == [1, 1, 2]
    assert cache.client.metrics.errors["E023"] == 3
    app.testing = True  # as inside a context: the app's debug/testing make it raise
    with pytest.raises(InvalidKeyError):
        describe(object())
