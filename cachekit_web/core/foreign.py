"""Settings names from other cache libraries (django-redis, Flask-Caching): accepted where
they mean the same thing here, otherwise answered with E041 naming what to write instead.

One registry, so the adapters, the checks and the docs give the same answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from .errors import ConfigurationError, combined
from .settings import parse_bool

Changes = dict[str, Any]


@dataclass(frozen=True)
class Foreign:
    """One foreign setting: the advice when it is refused, and the values accepted."""

    origin: str
    advice: str  # what to write instead ("remove it: ..." or a cachekit name)
    accept: Callable[[Any], Changes | None] | None = None  # same meaning -> core settings


def _bool_is(expected: bool) -> Callable[[Any], Changes | None]:
    def accept(value: Any) -> Changes | None:
        try:
            return {} if parse_bool(value) is expected else None
        except (TypeError, ValueError):
            return None
    return accept


def _one_of(*paths: Any) -> Callable[[Any], Changes | None]:
    return lambda value: {} if value in paths else None


def _same_name(name: str) -> Callable[[Any], Changes | None]:
    return lambda value: {name: value}


def _positive_int(name: str) -> Callable[[Any], Changes | None]:
    def accept(value: Any) -> Changes | None:
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return {name: value}
        return None
    return accept


_POOL_KWARGS: dict[str, tuple[str, Callable[[Any], Changes | None] | None]] = {
    "max_connections": ("CONNECTION_POOL_SIZE", _positive_int("CONNECTION_POOL_SIZE")),
    "health_check_interval": ("HEALTH_CHECK_INTERVAL", _same_name("HEALTH_CHECK_INTERVAL")),
    "socket_timeout": ("SOCKET_TIMEOUT", _same_name("SOCKET_TIMEOUT")),
    "socket_connect_timeout": ("SOCKET_CONNECT_TIMEOUT", _same_name("SOCKET_CONNECT_TIMEOUT")),
    "ssl_ca_certs": ("SSL_CA_CERTS", _same_name("SSL_CA_CERTS")),
    "ssl_certfile": ("SSL_CERTFILE", _same_name("SSL_CERTFILE")),
    "ssl_keyfile": ("SSL_KEYFILE", _same_name("SSL_KEYFILE")),
    "ssl_cert_reqs": ("SSL_CERT_REQS", lambda v: {"SSL_CERT_REQS": "none" if v is None else v}),
    "retry_on_timeout": ("remove it: a timeout is not retried (RETRIES retries lost "
                         "connections); the circuit breaker bounds a hung server", None),
    "retry": ("RETRIES (0 to 3)", None),
    "password": ("the password in LOCATION: redis://:PASSWORD@host:6379/0", None),
    "username": ("the user in LOCATION: redis://USER:PASSWORD@host:6379/0", None),
    "db": ("the database in LOCATION: redis://host:6379/DB", None),
}


def _pool_kwargs(value: Any) -> Changes | None:
    if not isinstance(value, Mapping):
        return None
    changes: Changes = {}
    for name, item in value.items():
        target = _POOL_KWARGS.get(str(name))
        got = target[1](item) if target and target[1] else None
        if got is None:
            return None
        changes.update(got)
    return changes


def advice(text: str) -> str:
    """Advice as the fix of a sentence: "remove it..." as it is, a replacement as "use X"."""
    return text if text.startswith("remove it") else f"use {text}"


def pool_kwargs_problems(value: Any) -> list[str]:
    """For CONNECTION_POOL_KWARGS: each key we cannot take, and what to write instead."""
    if not isinstance(value, Mapping):
        return ["CONNECTION_POOL_KWARGS must be a dict"]
    out = []
    for name, item in value.items():
        target = _POOL_KWARGS.get(str(name))
        if target is None:
            out.append(f"CONNECTION_POOL_KWARGS[{name!r}] is not read; remove it (the "
                       "connection settings are listed in the README)")
        elif target[1] is None or target[1](item) is None:
            out.append(f"CONNECTION_POOL_KWARGS[{name!r}]: {advice(target[0])}")
    return out


_DR = "django-redis"
_DEFAULT_CLIENT = ("django_redis.client.DefaultClient", "django_redis.client.default.DefaultClient")

# django-redis CACHES[...]["OPTIONS"] keys.
DJANGO_REDIS_OPTIONS: dict[str, Foreign] = {
    "CLIENT_CLASS": Foreign(_DR, "remove it: one client serves redis://, redis+sentinel:// and "
                            "redis+cluster:// URLs, with stampede protection built in "
                            "(HerdClient); sharding (ShardClient) is a Redis Cluster here",
                            _one_of(*_DEFAULT_CLIENT)),
    "SERIALIZER": Foreign(_DR, "remove it: values are msgpack, sealed; types msgpack cannot "
                          "carry are pickled only inside authenticated frames "
                          "(PICKLE_FALLBACK)"),
    "COMPRESSOR": Foreign(_DR, "remove it: values of COMPRESS_MIN_SIZE bytes or more are "
                          "zlib-compressed when that helps"),
    "IGNORE_EXCEPTIONS": Foreign(_DR, "remove it to fail open (the default), or write "
                                 "STRICT: True to raise typed errors", _bool_is(True)),
    "LOG_IGNORED_EXCEPTIONS": Foreign(_DR, "remove it: failures are always logged to the "
                                      "'cachekit_web' logger, once per LOG_INTERVAL and code",
                                      _bool_is(True)),
    "PASSWORD": Foreign(_DR, "the password in LOCATION: redis://:PASSWORD@host:6379/0",
                        lambda v: {} if isinstance(v, str) and v else None),
    "CONNECTION_POOL_KWARGS": Foreign(_DR, "the matching settings (max_connections -> "
                                      "CONNECTION_POOL_SIZE, ...)", _pool_kwargs),
    "SOCKET_TIMEOUT": Foreign(_DR, "SOCKET_TIMEOUT", _same_name("SOCKET_TIMEOUT")),
    "SOCKET_CONNECT_TIMEOUT": Foreign(_DR, "SOCKET_CONNECT_TIMEOUT",
                                      _same_name("SOCKET_CONNECT_TIMEOUT")),
    "PICKLE_VERSION": Foreign(_DR, "remove it: pickle (only a fallback inside authenticated "
                              "frames) uses the highest protocol", _one_of(-1)),
    "CLOSE_CONNECTION": Foreign(_DR, "remove it, or write True: close() then releases "
                                "the connections", _bool_is(True)),
    "CONNECTION_POOL_CLASS": Foreign(_DR, "remove it: the pool is chosen by the URL "
                                     "(CONNECTION_POOL_SIZE, POOL_TIMEOUT)"),
    "CONNECTION_POOL_CLASS_KWARGS": Foreign(_DR, "CONNECTION_POOL_SIZE and POOL_TIMEOUT"),
    "CONNECTION_FACTORY": Foreign(_DR, "remove it: connections are made from LOCATION"),
    "REDIS_CLIENT_CLASS": Foreign(_DR, "remove it: cache.get_client() returns the redis-py "
                                  "client"),
    "REDIS_CLIENT_KWARGS": Foreign(_DR, "the individual settings (SOCKET_TIMEOUT, "
                                   "SSL_CERT_REQS, ...)"),
    "PARSER_CLASS": Foreign(_DR, "remove it: redis-py picks hiredis when it is installed"),
    "SENTINELS": Foreign(_DR, "LOCATION = 'redis+sentinel://host1:26379,host2:26379/"
                         "SERVICE/DB'"),
    "SENTINEL_KWARGS": Foreign(_DR, "the Sentinel URL's query (see docs/scaling.md)"),
}

# django-redis's Django settings (settings.DJANGO_REDIS_*).
DJANGO_REDIS_SETTINGS: dict[str, Foreign] = {
    "DJANGO_REDIS_IGNORE_EXCEPTIONS": Foreign(
        _DR, "remove it to fail open (the default), or set OPTIONS['STRICT'] = True to raise",
        _bool_is(True)),
    "DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS": Foreign(
        _DR, "remove it: failures are always logged to the 'cachekit_web' logger, once per "
        "LOG_INTERVAL and code", _bool_is(True)),
    "DJANGO_REDIS_LOGGER": Foreign(
        _DR, "remove it: configure the 'cachekit_web' logger in LOGGING instead",
        _one_of("cachekit_web")),
    "DJANGO_REDIS_SCAN_ITERSIZE": Foreign(
        _DR, "a positive integer (keys asked of each SCAN)",
        lambda v: {} if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None),
    "DJANGO_REDIS_CONNECTION_FACTORY": Foreign(
        _DR, "remove it: connections are made from LOCATION"),
    "DJANGO_REDIS_CLOSE_CONNECTION": Foreign(
        _DR, "remove it, or set OPTIONS['CLOSE_CONNECTION'] = True", _bool_is(True)),
}


def translate(name: str, value: Any, registry: Mapping[str, Foreign],
              where: str = "") -> Changes:
    """The core settings a foreign ``name = value`` stands for; E041 with advice if none."""
    foreign = registry[name]
    changes = foreign.accept(value) if foreign.accept is not None else None
    if changes is not None:
        return changes
    problems = pool_kwargs_problems(value) if name == "CONNECTION_POOL_KWARGS" else []
    if problems:  # one line per key of the dict
        error = combined([ConfigurationError(f"{where}{foreign.origin} {line}", code="E041",
                                             suggestion=": use " in line)
                          for line in problems])
        assert error is not None
        raise error
    raise ConfigurationError(
        f"{where}{name} is a {foreign.origin} setting cachekit-web does not read with this "
        f"value; {advice(foreign.advice)}", code="E041",
        suggestion=not foreign.advice.startswith("remove it"))


def with_password(url: str, password: str) -> str:
    """``url`` with ``password`` (percent-encoded) put in, as django-redis's PASSWORD does.

    E041 when the URL has credentials already or no host part (a unix socket)."""
    parts = urlsplit(url)
    if "@" in parts.netloc or not parts.netloc:
        raise ConfigurationError(
            "OPTIONS: PASSWORD cannot be combined with this LOCATION; put the password in "
            "LOCATION instead (redis://:PASSWORD@host:6379/0, unix://:PASSWORD@/path.sock)",
            code="E041")
    return urlunsplit(parts._replace(netloc=f":{quote(password, safe='')}@{parts.netloc}"))


# -- Flask-Caching -----------------------------------------------------------
# Flask-Caching's keys -> what to write instead. None of them is read.
FLASK_CACHING_KEYS: dict[str, str] = {
    "CACHE_TYPE": "remove it: cachekit always talks to Redis (or memory:// for tests); "
                  "set CACHEKIT_REDIS_URL",
    "CACHE_REDIS_URL": "CACHEKIT_REDIS_URL",
    "CACHE_REDIS_HOST": "CACHEKIT_REDIS_URL = 'redis://HOST:PORT/DB'",
    "CACHE_REDIS_PORT": "CACHEKIT_REDIS_URL = 'redis://HOST:PORT/DB'",
    "CACHE_REDIS_DB": "CACHEKIT_REDIS_URL = 'redis://HOST:PORT/DB'",
    "CACHE_REDIS_PASSWORD": "CACHEKIT_REDIS_URL = 'redis://:PASSWORD@HOST:PORT/DB'",
    "CACHE_REDIS_SENTINELS": "CACHEKIT_REDIS_URL = 'redis+sentinel://HOST:PORT/SERVICE'",
    "CACHE_REDIS_SENTINEL_MASTER": "CACHEKIT_REDIS_URL = 'redis+sentinel://HOST:PORT/SERVICE'",
    "CACHE_REDIS_CLUSTER": "CACHEKIT_REDIS_URL = 'redis+cluster://HOST1:PORT1,HOST2:PORT2'",
    "CACHE_KEY_PREFIX": "CACHEKIT_NAMESPACE (no ':' allowed)",
    "CACHE_THRESHOLD": "CACHEKIT_MEMORY_MAX_ENTRIES (memory:// only)",
    "CACHE_OPTIONS": "the individual CACHEKIT_* settings (e.g. CACHEKIT_SOCKET_TIMEOUT)",
    "CACHE_ARGS": "the individual CACHEKIT_* settings",
    "CACHE_NO_NULL_WARNING": "remove it",
    "CACHE_IGNORE_ERRORS": "remove it: errors never escape unless CACHEKIT_STRICT is true",
    "CACHE_DIR": "remove it: no filesystem cache",
    "CACHE_MEMCACHED_SERVERS": "remove it: no memcached support",
    "CACHE_UWSGI_NAME": "remove it: no uWSGI cache support",
}




def _forever_if_zero(value: Any) -> Any:
    """Flask-Caching's timeout 0 means "never expires"; ours is none."""
    try:
        return None if value is not None and float(value) == 0 else value
    except (TypeError, ValueError):
        return value  # the setting's own check reports it (E042)


# Flask-Caching's keys that mean what ours do: read, under our name (and value convention).
ACCEPTED_FLASK_CACHING_KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "CACHE_DEFAULT_TIMEOUT": ("DEFAULT_TIMEOUT", _forever_if_zero),
    "CACHE_SOURCE_CHECK": ("SOURCE_CHECK", lambda value: value),
}
