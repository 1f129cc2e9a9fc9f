"""``{% load cachekit %}``: a ``{% cache %}`` tag with Django's syntax, fail-open and stampede-safe.

``{% cache timeout name [vary_on ...] [using="alias"] [stale=seconds] %}...{% endcache %}``
"""

from __future__ import annotations

from typing import Any

from django import template
from django.core.cache import InvalidCacheBackendError, caches
from django.template.base import FilterExpression, NodeList, Parser, Token

from ...core.errors import CachekitError
from ...core.web import fragment_cache_key
from ..backend import CachekitCache

register = template.Library()


def _fragment_name(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    return raw


class CacheNode(template.Node):  # type: ignore[misc]
    """Renders its block through the cache; renders it uncached if the cache fails."""

    def __init__(self, nodelist: NodeList, timeout: FilterExpression, name: str,
                 vary_on: list[FilterExpression], using: FilterExpression | None,
                 stale: FilterExpression | None) -> None:
        self.nodelist = nodelist
        self.timeout = timeout
        self.name = name
        self.vary_on = vary_on
        self.using = using
        self.stale = stale

    def _seconds(self, expr: FilterExpression | None, context: Any, what: str) -> float | None:
        if expr is None:
            return None
        value = expr.resolve(context)
        if value is None:
            return None
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise template.TemplateSyntaxError(
                f'"cache" tag got a non-number {what} value: {value!r}') from exc

    def _backend(self, context: Any) -> Any:
        if self.using is not None:
            alias = self.using.resolve(context)
            try:
                return caches[alias]
            except InvalidCacheBackendError:
                # As Django's tag: a template naming a missing cache is a template error.
                raise template.TemplateSyntaxError(
                    f"Invalid cache name specified for cache tag: {alias!r}") from None
        try:
            return caches["template_fragments"]
        except InvalidCacheBackendError:
            return caches["default"]

    def render(self, context: Any) -> str:
        """The block's output, from the cache when possible."""
        timeout = self._seconds(self.timeout, context, "timeout")
        stale = self._seconds(self.stale, context, "stale")
        key = fragment_cache_key(self.name, [v.resolve(context) for v in self.vary_on])
        backend = self._backend(context)
        if isinstance(backend, CachekitCache) and not backend.client.authenticated:
            # The output is inserted as HTML: never replay it from an entry we cannot verify.
            return str(self.nodelist.render(context))
        if not isinstance(backend, CachekitCache):
            value = backend.get(key)
            if value is None:
                value = self.nodelist.render(context)
                backend.set(key, value, timeout)
            return str(value)
        try:
            result = backend.fetch(key, lambda: str(self.nodelist.render(context)), timeout,
                                   stale_ttl=stale)
        except CachekitError:
            # Strict mode or a value too large: the page still renders, uncached.
            return str(self.nodelist.render(context))
        return str(result.value)


def do_cache(parser: Parser, token: Token) -> CacheNode:
    """Parse ``{% cache timeout name [vary_on ...] [using=".."] [stale=..] %}``."""
    nodelist = parser.parse(("endcache",))
    parser.delete_first_token()
    tokens = token.split_contents()
    if len(tokens) < 3:
        raise template.TemplateSyntaxError(f"'{tokens[0]}' tag requires at least 2 arguments.")
    rest = tokens[3:]
    options: dict[str, FilterExpression] = {}
    while rest and rest[-1].split("=", 1)[0] in ("using", "stale") and "=" in rest[-1]:
        name, value = rest.pop().split("=", 1)
        if name in options:
            raise template.TemplateSyntaxError(f"'{tokens[0]}' got {name}= twice")
        options[name] = parser.compile_filter(value)
    return CacheNode(
        nodelist,
        parser.compile_filter(tokens[1]),
        _fragment_name(tokens[2]),
        [parser.compile_filter(t) for t in rest],
        options.get("using"),
        options.get("stale"),
    )


register.tag("cache", do_cache)
