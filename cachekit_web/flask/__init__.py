"""Flask integration: a Flask-Caching-compatible ``Cache`` extension on the core client."""

from .extension import Cache, CachedResponse, make_template_fragment_key
from .health import make_blueprint
from .jinja import CacheExtension

__all__ = ["Cache", "CacheExtension", "CachedResponse", "make_blueprint",
           "make_template_fragment_key"]
