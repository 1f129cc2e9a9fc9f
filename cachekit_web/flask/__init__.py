"""Flask integration: a Flask-Caching-compatible ``Cache`` extension on the core client."""

from ..core.errors import install_line

try:
    import flask  # noqa: F401  (checked first, to name the extra when it is missing)
except ImportError:
    raise ImportError(f"cachekit_web.flask needs Flask: {install_line('flask')} (in the "
                      "cachekit-web checkout, as its README says)", name="flask") from None

from .extension import Cache
from .health import make_blueprint
from .jinja import CacheExtension
from .keys import make_template_fragment_key
from .responses import CachedResponse

__all__ = ["Cache", "CacheExtension", "CachedResponse", "make_blueprint",
           "make_template_fragment_key"]
