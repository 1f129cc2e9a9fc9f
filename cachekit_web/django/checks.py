"""System checks (``manage.py check``) for every CACHES entry that uses CachekitCache."""

from __future__ import annotations

import contextlib
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from ..core.errors import CachekitError, ConfigurationError, lookup
from ..core.urls import redact_url

BACKEND_PATHS = ("cachekit_web.django.CachekitCache", "cachekit_web.django.backend.CachekitCache")


def cachekit_aliases() -> list[str]:
    """The CACHES aliases served by CachekitCache."""
    return [alias for alias, conf in getattr(settings, "CACHES", {}).items()
            if conf.get("BACKEND") in BACKEND_PATHS]


def _message(alias: str, exc: CachekitError) -> str:
    return f"CACHES[{alias!r}]: [{exc.code}] {exc.message}"


def _hint(exc: CachekitError) -> str | None:
    # E041's "use the name suggested" only when one is; each line says its own fix.
    return exc.hint if isinstance(exc, ConfigurationError) else exc.spec.fix


def _client_error(alias: str) -> CachekitError | None:
    from django.core.cache import caches

    from .backend import CachekitCache

    cache = caches[alias]
    return cache.configuration_error if isinstance(cache, CachekitCache) else None


def check_configuration(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Settings errors (E001, E002, E040, E041, E042) and value authentication."""
    import os

    from ..core.settings import env_name_warnings
    from .config import build_settings

    messages: list[CheckMessage] = []
    aliases = cachekit_aliases()
    if aliases:
        messages += [Warning(note, hint="Remove the variable if nothing else reads it.",
                             id="cachekit.E041") for note in env_name_warnings(os.environ)]
    for alias in aliases:
        conf = settings.CACHES[alias]
        try:
            built = build_settings(conf.get("LOCATION"), conf)
        except CachekitError as exc:
            messages.append(Error(_message(alias, exc), hint=_hint(exc), obj=alias,
                                  id=f"cachekit.{exc.code}"))
            continue
        try:
            from ..core.data.crypto import parse_master_key

            for name, key in (("MASTER_KEY", built.MASTER_KEY),
                              *(("PREVIOUS_MASTER_KEYS", k) for k in built.PREVIOUS_MASTER_KEYS)):
                if key:
                    parse_master_key(key, name)
        except CachekitError as exc:
            messages.append(Error(_message(alias, exc), hint=_hint(exc), obj=alias,
                                  id=f"cachekit.{exc.code}"))
            continue
        built_error = _client_error(alias)  # e.g. a LOCATION redis-py cannot parse
        if built_error is not None:
            messages.append(Error(_message(alias, built_error), hint=_hint(built_error),
                                  obj=alias, id=f"cachekit.{built_error.code}"))
            continue
        if not built.MASTER_KEY and not built.SIGNING_KEY:
            messages.append(Warning(
                f"CACHES[{alias!r}]: cached values are not authenticated: no MASTER_KEY or "
                "SIGNING_KEY, and no SECRET_KEY to derive a signing key from; responses, "
                "model instances and other pickled objects cannot be cached, and cache_page "
                "views and {% cache %} fragments run uncached",
                hint="Set SECRET_KEY (a signing key is derived from it) or OPTIONS['MASTER_KEY'] "
                "(`cachekit-web keygen` prints a new one).",
                obj=alias, id="cachekit.E020"))
    return messages


def check_connectivity(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """A warning (with its code) when Redis cannot be reached: the site still runs, uncached."""
    from django.core.cache import caches

    from .backend import CachekitCache

    messages: list[CheckMessage] = []
    for alias in cachekit_aliases():
        try:
            cache = caches[alias]
        except CachekitError:
            continue  # reported by check_configuration
        if not isinstance(cache, CachekitCache) or cache.configuration_error is not None:
            continue  # misconfiguration is reported by check_configuration
        try:
            cache.client.backend.ping()
        except CachekitError as exc:
            url = cache.client.settings.REDIS_URL
            messages.append(Warning(
                f"CACHES[{alias!r}]: Redis at {cache.client.describe()} is unreachable: "
                f"[{exc.code}] {exc.message}; pages will be served uncached",
                hint=exc.spec.fix_for(redact_url(url) if url else None), obj=alias,
                id=f"cachekit.{exc.code}"))
    return messages


def check_cache_page_aliases(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E043 for each alias a cache_page names that is missing or not a CachekitCache."""
    from django.core.cache import caches
    from django.urls import get_resolver

    from .backend import CachekitCache
    from .views import DECORATED_ALIASES

    # Import the views, so their decorators have run; a broken URLconf is reported by
    # Django's own check.
    with contextlib.suppress(Exception):
        _ = get_resolver().url_patterns
    messages: list[CheckMessage] = []
    for alias in sorted(DECORATED_ALIASES):
        if alias not in getattr(settings, "CACHES", {}):
            problem = "is not in CACHES"
        else:
            try:
                ok = isinstance(caches[alias], CachekitCache)
            except CachekitError:
                continue  # reported by check_configuration
            if ok:
                continue
            problem = "is not a cachekit_web.django.CachekitCache"
        messages.append(Warning(  # the site runs, those views uncached
            f"cache_page(cache={alias!r}): CACHES[{alias!r}] {problem}; the decorated views "
            "run uncached", hint=lookup("E043").fix, obj=alias, id="cachekit.E043"))
    return messages


register(check_configuration, Tags.caches)
register(check_cache_page_aliases, Tags.caches)
register(check_connectivity, Tags.caches)
