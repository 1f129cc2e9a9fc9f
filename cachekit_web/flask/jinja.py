"""The Jinja ``{% cache timeout, "name", vary... %}`` tag, as Flask-Caching writes it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.parser import Parser
from markupsafe import Markup

from .config import core_timeout
from .keys import make_template_fragment_key

if TYPE_CHECKING:
    from .extension import Cache


class CacheExtension(Extension):
    """Caches the rendered body of ``{% cache %}...{% endcache %}`` through the core client."""

    tags = {"cache"}

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        args: list[nodes.Expr] = [parser.parse_expression()]
        if parser.stream.skip_if("comma"):
            args.append(parser.parse_expression())
        else:  # no name: the template and line identify the fragment
            args.append(nodes.Const(f"{parser.filename}:{lineno}"))
        vary_on: list[nodes.Expr] = []
        while parser.stream.skip_if("comma"):
            vary_on.append(parser.parse_expression())
        args.append(nodes.List(vary_on))
        body = parser.parse_statements(("name:endcache",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_cache", args), [], [], body).set_lineno(lineno)

    def _cache(self, timeout: Any, fragment_name: str, vary_on: list[Any],
               caller: Any) -> Markup:
        # Cache.init_app registers the extension and sets the environment's cache.
        cache: Cache | None = getattr(self.environment, "cachekit_cache", None)
        if cache is None:
            return Markup(caller())
        key = make_template_fragment_key(fragment_name, vary_on=vary_on)
        client = cache.client
        if timeout == "del":
            client.delete(key)
            return Markup(caller())
        if not client.authenticated:
            # Cached text is replayed as safe HTML: trust only frames we can authenticate.
            return Markup(caller())
        return Markup(client.get_or_set(key, lambda: str(caller()), core_timeout(timeout)))
