"""{% load cachekit %}{% cache %}: Django's syntax, a stale window, invalidation, fail-open."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from django.template import Context, Engine, TemplateSyntaxError

from cachekit_web.django import invalidate_fragment
from cachekit_web.embedded import EmbeddedRedis

from .conftest import cache_conf

ENGINE = Engine(libraries={"cachekit": "cachekit_web.django.templatetags.cachekit"})


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def __str__(self) -> str:
        self.n += 1
        return str(self.n)


def render(source: str, **context: Any) -> str:
    return ENGINE.from_string("{% load cachekit %}" + source).render(Context(context))


def test_fragment_is_cached_per_vary_on_values(cache: Any) -> None:
    tpl = '{% cache 60 "sidebar" user %}[{{ counter }}]{% endcache %}'
    counter = Counter()
    assert render(tpl, counter=counter, user=1) == "[1]"
    assert render(tpl, counter=counter, user=1) == "[1]"
    assert render(tpl, counter=counter, user=2) == "[2]"
    assert counter.n == 2
    # Quoted and bare names are the same fragment.
    assert render("{% cache 60 sidebar user %}x{% endcache %}", user=1) == "[1]"


def test_invalidate_fragment_with_the_same_arguments(cache: Any) -> None:
    tpl = '{% cache 60 "box" a b %}[{{ counter }}]{% endcache %}'
    counter = Counter()
    render(tpl, counter=counter, a=1, b="x")
    assert invalidate_fragment("box", 1, "x") is True
    assert invalidate_fragment("box", 1, "x") is False
    assert render(tpl, counter=counter, a=1, b="x") == "[2]"


def test_timeout_variable_none_and_using(use_caches: Callable[..., Any], redis_url: str,
                                         namespace: str) -> None:
    use_caches({"default": cache_conf(redis_url, namespace),
                "fragments": cache_conf(redis_url, namespace + "-f")})
    from django.core.cache import caches

    counter = Counter()
    tpl = '{% cache t "f" using="fragments" %}[{{ counter }}]{% endcache %}'
    assert render(tpl, counter=counter, t=None) == "[1]"
    assert render(tpl, counter=counter, t=None) == "[1]"
    from cachekit_web.core.web import fragment_cache_key

    assert caches["fragments"].ttl(fragment_cache_key("f")) is None  # timeout None: forever
    assert caches["default"].client.metrics.totals["sets"] == 0
    assert caches["fragments"].client.metrics.totals["sets"] == 1


def test_stale_window_serves_old_fragment_while_locked(cache: Any) -> None:
    from cachekit_web.core.web import fragment_cache_key

    counter = Counter()
    tpl = '{% cache 1 "s" stale=30 %}[{{ counter }}]{% endcache %}'
    assert render(tpl, counter=counter) == "[1]"
    time.sleep(1.2)
    full = cache.client.full_key(cache.make_and_validate_key(fragment_cache_key("s")))
    lock = cache.client.backend.lock(cache.client._lock_name(full), 10)
    assert lock.acquire(True, 1)
    try:
        assert render(tpl, counter=counter) == "[1]"  # stale copy, no wait
    finally:
        lock.release()
    assert render(tpl, counter=counter) == "[2]"


def test_syntax_errors() -> None:
    with pytest.raises(TemplateSyntaxError):
        render("{% cache 60 %}x{% endcache %}")
    with pytest.raises(TemplateSyntaxError):
        render('{% cache "soon" "n" %}x{% endcache %}')


def test_block_renders_uncached_when_redis_is_down(
        use_caches: Callable[..., Any], own_redis: EmbeddedRedis, namespace: str) -> None:
    use_caches({"default": cache_conf(own_redis.url, namespace, SOCKET_TIMEOUT=0.2,
                                      SOCKET_CONNECT_TIMEOUT=0.2)})
    own_redis.kill()
    counter = Counter()
    tpl = '{% cache 60 "down" %}[{{ counter }}]{% endcache %}'
    assert render(tpl, counter=counter) == "[1]"
    assert render(tpl, counter=counter) == "[2]"


def test_block_renders_uncached_in_strict_mode_when_redis_is_down(
        use_caches: Callable[..., Any], own_redis: EmbeddedRedis, namespace: str) -> None:
    use_caches({"default": cache_conf(own_redis.url, namespace, SOCKET_TIMEOUT=0.2,
                                      SOCKET_CONNECT_TIMEOUT=0.2, STRICT=True)})
    own_redis.kill()
    assert render('{% cache 60 "strict" %}ok{% endcache %}') == "ok"
