"""@cache.memoize and @cache.cached: the sync and the async wrapper run one plan, so they
agree on the cases where the hand-kept twins had drifted apart."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from cachekit_web import InvalidKeyError
from cachekit_web.flask import Cache


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    result = fn(*args, **kwargs)
    return asyncio.run(result) if asyncio.iscoroutine(result) else result


def _memoized(cache: Cache, calls: list[Any], is_async: bool, **options: Any) -> Any:
    if is_async:
        async def alookup(f: int, self: int = 0) -> int:
            calls.append((f, self))
            return f + self
        return cache.memoize(**options)(alookup)

    def lookup(f: int, self: int = 0) -> int:
        calls.append((f, self))
        return f + self
    return cache.memoize(**options)(lookup)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_memoize_keys_parameters_named_f_and_self_given_by_keyword(
        app_cache: tuple[Flask, Cache], is_async: bool) -> None:
    # The sync twin passed the call's kwargs on to make_cache_key(f, *args, **kwargs),
    # whose own `f` (and `self`) they collided with: TypeError.
    _, cache = app_cache
    calls: list[Any] = []
    lookup = _memoized(cache, calls, is_async)
    assert _call(lookup, f=1, self=2) == 3 and _call(lookup, f=1, self=2) == 3
    assert _call(lookup, 1, 2) == 3
    assert calls == [(1, 2)]
    assert lookup.make_cache_key(lookup.uncached, f=1, self=2) == \
        lookup.make_cache_key(lookup.uncached, 1, 2)
    cache.delete_memoized(lookup, f=1, self=2)
    assert _call(lookup, 1, 2) == 3 and calls == [(1, 2), (1, 2)]


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_memoize_name_too_long_for_a_key_raises_outside_debug(
        app_cache: tuple[Flask, Cache], is_async: bool) -> None:
    # Only a call's arguments are allowed to be unkeyable (E023: run uncached outside
    # debug); a name no key can hold is the decorator's own error, raised as @cached's
    # key_prefix is. The sync twin ran such calls uncached, the async one raised.
    app, cache = app_cache
    assert not (app.debug or app.testing or cache.settings.STRICT)
    calls: list[Any] = []
    lookup = _memoized(cache, calls, is_async,
                       make_name=lambda name: "n" * cache.settings.MAX_KEY_LENGTH)
    with pytest.raises(InvalidKeyError) as raised:
        _call(lookup, 1)
    assert raised.value.code == "E023" and calls == []
