"""Django integration: cache backend, cache_page, {% cache %}, system checks, admin health page.

``CACHES = {"default": {"BACKEND": "cachekit_web.django.CachekitCache", ...}}`` and
``INSTALLED_APPS += ["cachekit_web.django"]``. Importing this package also teaches
django-environ the ``cachekit+redis://`` (``+rediss``, ``+unix``) cache URL schemes.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import install_line

try:
    import django  # noqa: F401  (checked first, to name the extra when it is missing)
except ImportError:
    raise ImportError(f"cachekit_web.django needs Django: {install_line('django')} (in the "
                      "cachekit-web checkout, as its README says)", name="django") from None

from .environ_schemes import register_environ_schemes

register_environ_schemes()

_LAZY = {
    "CachekitCache": ".backend",
    "cache_page": ".views",
    "get_redis_connection": ".backend",
    "invalidate_page": ".views",
    "invalidate_fragment": ".views",
    "page_cache_key": ".views",
    "metrics_view": ".metrics",
}

__all__ = [
    "CachekitCache",
    "cache_page",
    "get_redis_connection",
    "invalidate_fragment",
    "invalidate_page",
    "metrics_view",
    "page_cache_key",
    "register_environ_schemes",
]


def __getattr__(name: str) -> Any:
    # Lazy, so settings.py can import this package before Django is configured.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value
