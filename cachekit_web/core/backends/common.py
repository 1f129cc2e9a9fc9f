"""What every Redis backend shares, in both flavours: the error boundary, pool options, helpers.

This module is the one boundary where redis-py's exceptions become ours,
through ``_ERROR_MAP`` (matched on exception type, most specific first).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Mapping
from typing import Any

import redis
from redis.backoff import NoBackoff

from ..errors import (
    BackendAuthError,
    BackendConnectionError,
    BackendError,
    BackendTimeoutError,
    CachekitError,
    ConfigurationError,
    NodeUnreachableError,
    PoolExhaustedError,
)
from ..settings import Settings
from ..urls import redact_url, scheme_of
from . import redispy
from .errors import ConnectRefused, ConnectTimeout, PoolExhausted

UPDATE_ATTEMPTS = 100  # rounds of an optimistic WATCH update before giving up
SCAN_BATCH = 500  # keys a prefix scan hands over per batch

# incr: one server-side step. INCRBY when the key holds a Redis integer (created at
# ARGV[2] with PX ARGV[3] first when missing and a default is given); nil when missing;
# otherwise the stored bytes (a sealed frame, or an integer INCRBY would overflow),
# which the client handles. A one-element array holds the new value as digits (a Lua
# number is a double: returning INCRBY's integer through it would lose precision).
INCR_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  if ARGV[2] == '' then return false end
  if ARGV[3] == '' then redis.call('SET', KEYS[1], ARGV[2])
  else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
end
if pcall(redis.call, 'INCRBY', KEYS[1], ARGV[1]) then return {redis.call('GET', KEYS[1])} end
return redis.call('GET', KEYS[1])
"""

# Swap keeping the TTL: the key becomes ARGV[2] only if it still holds ARGV[1]; 1 or 0.
# (Rotation's batches and the cluster's read-modify-write: no WATCH across a slot.)
SWAP_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  return 1
end
return 0
"""

# compare-and-set: replace the value only if it is still ARGV[1]; 1 when swapped,
# else the current bytes (nil when missing), so a retry needs no extra GET.
# ARGV[3]: 'keep' keeps the TTL, '' means no expiry, else PX milliseconds.
CAS_SCRIPT = """
local cur = redis.call('GET', KEYS[1])
if cur ~= ARGV[1] then return cur end
if ARGV[3] == 'keep' then redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
elseif ARGV[3] == '' then redis.call('SET', KEYS[1], ARGV[2])
else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return 1
"""


# Delete only if the key still holds ARGV[1]; 1 or 0. Drops an unreadable entry without
# touching a value written since it was read.
DELETE_IF_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


# redis-py command methods (the client's set, hash and sorted-set calls) that must not be
# re-sent after a lost reply: run again, they pop, count or remove once more.
NOT_IDEMPOTENT = frozenset({
    "spop", "zincrby", "zpopmin", "zpopmax", "zremrangebyrank", "hincrby", "hincrbyfloat",
    "incrby", "incrbyfloat", "decrby", "lpush", "rpush", "lpop", "rpop",
})


def sent_once_command(name: str, kwargs: Mapping[str, Any]) -> bool:
    """Whether the command method ``name`` called with ``kwargs`` is unsafe to repeat."""
    return name in NOT_IDEMPOTENT or (name == "zadd" and bool(kwargs.get("incr")))


def incr_args(delta: int, default: int | None, ttl: float | None) -> list[Any]:
    """INCR_SCRIPT's ARGV."""
    ms = milliseconds(ttl)
    return [delta, "" if default is None else default, "" if ms is None else ms]


def incr_result(reply: Any) -> int | bytes | None:
    """INCR_SCRIPT's reply: the new value, the stored bytes, or None (missing)."""
    return int(reply[0]) if isinstance(reply, list) else reply


def cas_args(expected: bytes, value: bytes, ttl: float | None, keep_ttl: bool) -> list[Any]:
    """CAS_SCRIPT's ARGV."""
    ms = milliseconds(ttl)
    return [expected, value, "keep" if keep_ttl else "" if ms is None else ms]


def cas_result(reply: Any) -> tuple[bool, bytes | None]:
    """(swapped, current bytes) from CAS_SCRIPT's reply."""
    if isinstance(reply, int):
        return True, None
    return False, reply


def contention_pause(attempt: int) -> float:
    """Seconds to wait before retrying a WATCH update: jittered, so contenders fall out of step."""
    return random.random() * min(0.01, 0.0005 * (attempt + 1))


# redis-py errors raised while connecting that keep their own codes (not marked as connect
# failures, nor taken for an exhausted pool).
PASSTHROUGH = (
    redis.exceptions.AuthenticationError,
    redis.exceptions.AuthorizationError,
    redis.exceptions.BusyLoadingError,
)

# redis-py exception type -> (our exception class, code). Looked up along the MRO.
_ERROR_MAP: dict[type[BaseException], tuple[type[CachekitError], str]] = {
    redis.exceptions.AuthenticationError: (BackendAuthError, "E060"),
    redis.exceptions.AuthorizationError: (BackendAuthError, "E060"),
    redis.exceptions.NoPermissionError: (BackendAuthError, "E060"),
    redis.exceptions.AuthenticationWrongNumberOfArgsError: (BackendAuthError, "E060"),
    PoolExhausted: (PoolExhaustedError, "E012"),
    redis.exceptions.MaxConnectionsError: (PoolExhaustedError, "E012"),
    ConnectRefused: (BackendConnectionError, "E010"),
    ConnectTimeout: (BackendTimeoutError, "E011"),
    redis.TimeoutError: (BackendTimeoutError, "E064"),
    redis.exceptions.BusyLoadingError: (BackendError, "E061"),
    redis.ConnectionError: (BackendConnectionError, "E065"),
    redis.exceptions.OutOfMemoryError: (BackendError, "E066"),
    redis.exceptions.ReadOnlyError: (BackendError, "E062"),
    # Topology: redirections and failovers are not failures of the server (E013/E014
    # do not trip the breaker); a cluster that refuses every slot is (E062).
    redis.exceptions.ClusterDownError: (BackendError, "E062"),
    redis.exceptions.TryAgainError: (BackendConnectionError, "E014"),
    redis.exceptions.AskError: (BackendConnectionError, "E014"),  # MovedError is a subclass
    redis.exceptions.SlotNotCoveredError: (NodeUnreachableError, "E013"),
    redispy.MasterNotFoundError: (BackendConnectionError, "E014"),
    redispy.SlaveNotFoundError: (BackendConnectionError, "E014"),
    redispy.AsyncMasterNotFoundError: (BackendConnectionError, "E014"),
    redispy.AsyncSlaveNotFoundError: (BackendConnectionError, "E014"),
    redis.exceptions.RedisClusterException: (BackendConnectionError, "E010"),
    redis.exceptions.InvalidResponse: (BackendError, "E067"),
    redis.exceptions.ResponseError: (BackendError, "E063"),
    redis.exceptions.DataError: (BackendError, "E063"),
    redis.RedisError: (BackendError, "E062"),
    TimeoutError: (BackendTimeoutError, "E064"),
    ConnectionError: (BackendConnectionError, "E065"),
    OSError: (BackendConnectionError, "E065"),
}


def translate(exc: BaseException) -> CachekitError:
    """Map a redis-py (or socket) exception to a coded cachekit-web error."""
    if isinstance(exc, CachekitError):
        return exc
    for klass in type(exc).__mro__:
        hit = _ERROR_MAP.get(klass)
        if hit is not None:
            cls, code = hit
            return cls(f"{type(exc).__name__} from Redis", code=code)
    return BackendError(f"unexpected {type(exc).__name__} from Redis", code="E062")


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Re-raise redis-py and socket errors as cachekit-web errors."""
    try:
        yield
    except CachekitError:
        raise
    except (redis.RedisError, redis.exceptions.RedisClusterException, OSError) as exc:
        raise translate(exc) from None


SCHEMES = ("redis", "rediss", "unix")


def retry_policy(settings: Settings, retry_class: Any) -> Any:
    """RETRIES as a redis-py retry: lost connections only, at once, never a timeout.

    A timeout already spent the caller's budget, and a backoff sleep would cost every
    call ~20 ms while Redis refuses connections. Every backend and flavour uses this.
    """
    return retry_class(NoBackoff(), settings.RETRIES, supported_errors=(redis.ConnectionError,))


def pool_options(url: str, settings: Settings, retry_class: Any) -> dict[str, Any]:
    """Keyword arguments for a redis-py pool built from ``url`` and settings."""
    scheme = scheme_of(url)
    if scheme not in SCHEMES:
        raise ConfigurationError(
            f"unsupported URL scheme {scheme!r} in {redact_url(url)}", code="E042"
        )
    options: dict[str, Any] = {
        "max_connections": settings.CONNECTION_POOL_SIZE,
        "timeout": settings.POOL_TIMEOUT,
        "socket_timeout": settings.SOCKET_TIMEOUT,
        "socket_connect_timeout": settings.SOCKET_CONNECT_TIMEOUT,
        "health_check_interval": settings.HEALTH_CHECK_INTERVAL,
        "retry": retry_policy(settings, retry_class),
        "retry_on_timeout": False,
    }
    if scheme == "rediss":
        options.update(tls_options(settings))
    return options


def tls_options(settings: Settings) -> dict[str, Any]:
    """redis-py's TLS keyword arguments from settings: server check and client certificate."""
    options: dict[str, Any] = {"ssl_cert_reqs": settings.SSL_CERT_REQS}
    for option, value in (("ssl_ca_certs", settings.SSL_CA_CERTS),
                          ("ssl_certfile", settings.SSL_CERTFILE),
                          ("ssl_keyfile", settings.SSL_KEYFILE)):
        if value:
            options[option] = value
    return options


def pool_from_url(pool_class: Any, url: str, classes: Mapping[str, Any],
                  options: dict[str, Any]) -> Any:
    """Build a redis-py pool for ``url``; a URL redis-py cannot parse is E042, shown redacted."""
    try:
        return pool_class.from_url(url, connection_class=classes[scheme_of(url)], **options)
    except (ValueError, TypeError) as exc:  # e.g. an unquoted '/' in the password
        failure = type(exc).__name__
    # Raised after the except block: redis-py's message quotes the password, and an error
    # raised inside the block would keep it as __context__ even with `from None`.
    raise ConfigurationError(
        f"invalid Redis URL {redact_url(url)} ({failure}); percent-encode "
        "special characters in the password", code="E042"
    )


def milliseconds(ttl: float | None) -> int | None:
    """A TTL in seconds as Redis PX milliseconds (at least 1); None stays None."""
    return None if ttl is None else max(1, round(ttl * 1000))


def info_subset(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The INFO fields a health report shows."""
    wanted = (
        "redis_version", "role", "uptime_in_seconds", "connected_clients", "used_memory",
        "used_memory_human", "maxmemory", "maxmemory_policy", "evicted_keys",
        "expired_keys", "keyspace_hits", "keyspace_misses",
    )
    return {k: raw[k] for k in wanted if k in raw}


