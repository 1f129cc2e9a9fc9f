"""Settings resolution for CachekitCache: a CACHES entry (LOCATION, OPTIONS, TIMEOUT,
KEY_PREFIX), django-redis's OPTIONS and DJANGO_REDIS_* settings, and its key functions,
turned into the core's Settings and the few flags the backend reads."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django.utils.module_loading import import_string

from ..core import foreign
from ..core.data import crypto
from ..core.errors import ConfigurationError, combined
from ..core.settings import Settings, parse_bool

_MISSING: Any = object()


def options_of(params: Mapping[str, Any]) -> dict[str, Any]:
    """A CACHES entry's OPTIONS, names upper-cased."""
    return {str(k).upper(): v for k, v in dict(params.get("OPTIONS") or {}).items()}


def django_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The CACHES entry as Django's BaseCache reads it: OPTIONS' DEFAULT_TIMEOUT is the
    cache's TIMEOUT when the entry names none."""
    params = dict(params)
    options = options_of(params)
    if "TIMEOUT" not in params and "timeout" not in params and "DEFAULT_TIMEOUT" in options:
        params["TIMEOUT"] = options["DEFAULT_TIMEOUT"]
    return params


@dataclass(frozen=True)
class CacheConfig:
    """What one CACHES entry resolves to: the core Settings (or the error that stands
    in for them until first use) and django-redis's behaviour flags."""

    settings: Settings | None
    error: ConfigurationError | None
    close_connection: bool  # CLOSE_CONNECTION: release the pool after each request
    itersize: int | None  # DJANGO_REDIS_SCAN_ITERSIZE: SCAN batch of keys()/delete_pattern()
    reverse_key_func: Callable[[str], str] | None  # REVERSE_KEY_FUNCTION: stored key -> key


def resolve(location: Any, params: Mapping[str, Any]) -> CacheConfig:
    """Resolve one CACHES entry (as ``django_params`` returns it). A settings error is
    kept, not raised: Django's own cache checks build every backend and must not crash."""
    options = options_of(params)
    itersize = _django_setting("DJANGO_REDIS_SCAN_ITERSIZE")
    reverse = params.get("REVERSE_KEY_FUNCTION")
    flags: dict[str, Any] = {
        "close_connection": _django_redis_flag(options, "CLOSE_CONNECTION"),
        "itersize": itersize if isinstance(itersize, int) else None,
        "reverse_key_func": import_string(reverse) if isinstance(reverse, str) else reverse,
    }
    try:
        return CacheConfig(build_settings(location, params), None, **flags)
    except ConfigurationError as exc:
        return CacheConfig(None, exc, **flags)


def derived_signing_key(secret_key: str) -> str:
    """A signing key for cached values derived from Django's SECRET_KEY (never the key itself)."""
    return crypto.derived_signing_key(secret_key, "django")


def _django_secret_key() -> str | None:
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        return str(settings.SECRET_KEY) or None
    except (ImproperlyConfigured, AttributeError):
        return None


def _django_setting(name: str) -> Any:
    from django.conf import settings

    return getattr(settings, name, None)


def _django_redis_flag(options: Mapping[str, Any], name: str) -> bool:
    # OPTIONS[name], else settings.DJANGO_REDIS_<name>, as django-redis reads them.
    value = options.get(name, _django_setting(f"DJANGO_REDIS_{name}"))
    try:
        return value is not None and parse_bool(value)
    except (TypeError, ValueError):
        return False  # refused with E041 when the settings are built


def namespace_for(base: str, key_prefix: str) -> str:
    """The core namespace of a Django cache: NAMESPACE, plus KEY_PREFIX so clear() stays in it."""
    return f"{base}.{quote(key_prefix, safe='')}" if key_prefix else base


def build_settings(location: Any, params: Mapping[str, Any]) -> Settings:
    """Settings for one CACHES entry: OPTIONS are core setting names; LOCATION the Redis URL."""
    options = options_of(params)
    problems: list[ConfigurationError] = []  # all reported in one error, a line each
    if isinstance(location, (list, tuple)):
        if len(location) > 1:
            problems.append(ConfigurationError(
                "LOCATION must name one Redis URL, not a list; for a Cluster or Sentinel write "
                "one redis+cluster:// or redis+sentinel:// URL (docs/scaling.md)", code="E042"))
        location = location[0] if location else ""
    url = location or os.environ.get("CACHEKIT_REDIS_URL") or os.environ.get("REDIS_URL")
    if not url:
        problems.append(ConfigurationError(
            "no Redis URL: set LOCATION in CACHES, or CACHEKIT_REDIS_URL / REDIS_URL",
            code="E040"))
    password, foreign_problems = _take_foreign_options(options)
    problems += foreign_problems
    timeout = params.get("TIMEOUT", params.get("timeout", _MISSING))
    if "DEFAULT_TIMEOUT" not in options and timeout is not _MISSING:
        options["DEFAULT_TIMEOUT"] = timeout  # what incr(ignore_key_check=True) gives a new key
    try:
        options["REDIS_URL"] = foreign.with_password(str(url), password) \
            if password and url else url
    except ConfigurationError as exc:
        problems.append(exc)
    if not options.get("MASTER_KEY") and not options.get("SIGNING_KEY"):
        env_has_key = os.environ.get("CACHEKIT_MASTER_KEY") or os.environ.get(
            "CACHEKIT_SIGNING_KEY")
        secret = None if env_has_key else _django_secret_key()
        if secret:
            options["SIGNING_KEY"] = derived_signing_key(secret)
    try:
        base = Settings.from_env(None, **options)
    except ConfigurationError as exc:
        problems.append(exc)
    error = combined(problems)
    if error is not None:
        raise error
    key_prefix = str(params.get("KEY_PREFIX", params.get("key_prefix", "")) or "")
    return base.replace(NAMESPACE=namespace_for(base.NAMESPACE, key_prefix))


def _take_foreign_options(options: dict[str, Any]) -> tuple[str | None, list[ConfigurationError]]:
    """Replace django-redis OPTIONS (and DJANGO_REDIS_* settings) by core names. Returns
    PASSWORD, if any, and an E041 naming what to write for each one whose meaning differs."""
    from django.conf import settings as django_settings

    problems: list[ConfigurationError] = []
    password: str | None = None
    core = set(Settings.names())
    given = set(options)
    for name in [n for n in options if n in foreign.DJANGO_REDIS_OPTIONS and n not in core]:
        value = options.pop(name)
        try:
            changes = foreign.translate(name, value, foreign.DJANGO_REDIS_OPTIONS, "OPTIONS: ")
        except ConfigurationError as exc:
            problems.append(exc)
            continue
        if name == "PASSWORD":
            password = value
        for key, item in changes.items():
            options.setdefault(key, item)
    for name in foreign.DJANGO_REDIS_SETTINGS:
        # django-redis reads DJANGO_REDIS_X only where OPTIONS has no X: not for this cache
        if name.removeprefix("DJANGO_REDIS_") in given:
            continue
        if hasattr(django_settings, name):
            try:
                foreign.translate(name, getattr(django_settings, name),
                                  foreign.DJANGO_REDIS_SETTINGS, "settings.")
            except ConfigurationError as exc:
                problems.append(exc)
    return password, problems


