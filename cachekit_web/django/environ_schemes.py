"""Teach django-environ's ``Env.cache_url`` the ``cachekit+redis://`` family of URLs."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

BACKEND = "cachekit_web.django.CachekitCache"
SCHEMES = ("cachekit+redis", "cachekit+rediss", "cachekit+unix")
# Query parameters that belong to the Redis URL itself, not to OPTIONS.
_URL_PARAMS = ("db",)
# Query parameters django-environ lifts to the top level of the CACHES entry.
_TOP_LEVEL = ("TIMEOUT", "KEY_PREFIX", "VERSION", "KEY_FUNCTION", "BINARY")


def cache_config_from_url(url: str, base: dict[str, Any]) -> dict[str, Any]:
    """Fix up django-environ's parse of a cachekit+ URL: LOCATION keeps path, db and scheme.

    OPTIONS are re-read as the raw strings of the query (django-environ would turn a
    numeric-looking key into an int); the core coerces each to its type.
    """
    parsed = urlparse(url)
    config = dict(base)
    pairs = parse_qsl(parsed.query, keep_blank_values=True)
    url_query = urlencode([(k, v) for k, v in pairs if k.lower() in _URL_PARAMS])
    location = f"{parsed.scheme.split('+', 1)[1]}://{parsed.netloc}{parsed.path}"
    config["LOCATION"] = location + (f"?{url_query}" if url_query else "")
    options = {k.upper(): v for k, v in pairs
               if k.lower() not in _URL_PARAMS and k.upper() not in _TOP_LEVEL}
    if options:
        config["OPTIONS"] = options
    else:
        config.pop("OPTIONS", None)
    return config


def register_environ_schemes() -> bool:
    """Register the schemes with django-environ (idempotent); False if it is not installed."""
    try:
        import environ
    except ImportError:  # pragma: no cover - a core dependency
        return False
    env_cls: Any = environ.Env
    for scheme in SCHEMES:
        env_cls.CACHE_SCHEMES[scheme] = BACKEND
    current = env_cls.__dict__["cache_url_config"]
    if getattr(current.__func__, "_cachekit", False):
        return True
    original = current.__func__

    def cache_url_config(cls: Any, url: Any, backend: Any = None) -> dict[str, Any]:
        config: dict[str, Any] = original(cls, url, backend)
        text = url if isinstance(url, str) else urlunparse(url)
        if urlparse(text).scheme in SCHEMES:
            config = cache_config_from_url(text, config)
        return config

    cache_url_config._cachekit = True  # type: ignore[attr-defined]
    env_cls.cache_url_config = classmethod(cache_url_config)
    return True
