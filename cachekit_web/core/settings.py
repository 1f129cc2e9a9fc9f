"""One Settings object: every option, its default, and its environment name.

The same name is used everywhere: env ``CACHEKIT_<NAME>``, Flask
``app.config["CACHEKIT_<NAME>"]`` and Django ``OPTIONS["<NAME>"]``.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import environ

from .errors import ConfigurationError, combined

log = logging.getLogger("cachekit_web")

ENV_PREFIX = "CACHEKIT_"

# Prefixes people reach for by habit (Flask-Caching, django-redis); reported, never read.
_FOREIGN_PREFIXES = ("CACHE_", "CACHES_", "CACHEKIT", "CACHE_KIT_", "DJANGO_REDIS_", "REDIS_CACHE_")


@dataclass(frozen=True)
class Settings:
    """Every cachekit-web option with its default; build with from_env or from_mapping."""

    REDIS_URL: str | None = None
    NAMESPACE: str = "cachekit"
    MASTER_KEY: str | None = field(default=None, repr=False)
    PREVIOUS_MASTER_KEYS: tuple[str, ...] = field(default=(), repr=False)
    ENCRYPTION: str = "auto"  # auto: encrypt when MASTER_KEY is set; required: E001 without it
    SIGNING_KEY: str | None = field(default=None, repr=False)
    PICKLE_FALLBACK: bool = True
    PLAIN_COUNTERS: tuple[str, ...] = ()
    DEFAULT_TIMEOUT: float | None = 300.0
    MAX_VALUE_SIZE: int = 8 * 1024 * 1024
    MAX_KEY_LENGTH: int = 1024
    COMPRESS_MIN_SIZE: int = 1024
    SOCKET_TIMEOUT: float = 0.5
    SOCKET_CONNECT_TIMEOUT: float = 0.5
    CONNECTION_POOL_SIZE: int = 50
    POOL_TIMEOUT: float = 0.5
    RETRIES: int = 1
    HEALTH_CHECK_INTERVAL: float = 30.0
    HEALTH_DOWN_STATUS: int = 200
    SSL_CERT_REQS: str = "required"
    SSL_CA_CERTS: str | None = None
    SSL_CERTFILE: str | None = None
    SSL_KEYFILE: str | None = None
    CIRCUIT_BREAKER_ENABLED: bool = True
    CIRCUIT_BREAKER_FAILURE_THRESHOLD: int = 5
    CIRCUIT_BREAKER_WINDOW: float = 30.0
    CIRCUIT_BREAKER_RECOVERY_TIMEOUT: float = 10.0
    CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS: int = 1
    CIRCUIT_BREAKER_FAILURE_RATE: float = 0.25
    CIRCUIT_BREAKER_MIN_CALLS: int = 20
    CIRCUIT_BREAKER_SLOW_CALL_DURATION: float = 0.25
    CIRCUIT_BREAKER_SLOW_CALL_RATE: float = 0.5
    CIRCUIT_BREAKER_SLOW_IN_FLIGHT: int = 3
    PENDING_DELETES_MAX: int = 10_000
    PENDING_SPOOL: bool = True
    SPOOL_DIR: str = ""
    PENDING_REPLAY_INTERVAL: float = 0.2
    LOCK_TIMEOUT: float = 30.0
    LOCK_WAIT: float = 5.0
    STRICT: bool = False
    LOG_INTERVAL: float = 30.0
    MEMORY_MAX_ENTRIES: int = 10_000
    REPLICA_READS: bool = True
    REPLICA_URLS: tuple[str, ...] = ()
    FLEET_PUBLISH_INTERVAL: float = 10.0
    PROMETHEUS: bool = False
    LOCAL_CACHE: bool = False
    LOCAL_CACHE_MAX_ENTRIES: int = 10_000
    LOCAL_CACHE_MAX_BYTES: int = 64 * 1024 * 1024
    LOCAL_CACHE_LEASE: float = 1.0

    def __repr__(self) -> str:
        # The URL may carry a password and the keys are secrets: show the redacted view.
        shown = ", ".join(f"{k}={v!r}" for k, v in self.public_dict().items())
        return f"Settings({shown})"

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with some settings changed (names checked)."""
        return Settings.from_mapping(changes, base=self)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """All setting names, without prefix."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_mapping(
        cls,
        values: Mapping[str, Any],
        *,
        base: Settings | None = None,
        prefix: str = "",
        extra_names: Iterable[str] = (),
    ) -> Settings:
        """Build settings from a dict of NAME -> value; E041 naming every unknown name (and
        every invalid value) at once."""
        known = set(cls.names()) | set(extra_names)
        changes: dict[str, Any] = {}
        problems: list[ConfigurationError] = []
        for raw_name, value in values.items():
            name = raw_name[len(prefix):] if prefix and raw_name.startswith(prefix) else raw_name
            name = name.upper()
            if name not in known:
                problems.append(unknown_setting(raw_name, known, prefix))
            elif name in cls.names():
                try:
                    changes[name] = _coerce(name, value)
                except ConfigurationError as exc:
                    problems.append(exc)  # the default stays, so the others are checked
        settings = dataclasses.replace(base or cls(), **changes)
        error = combined([*problems, *settings.problems()])
        if error is not None:
            raise error
        return settings

    @classmethod
    def from_env(
        cls,
        environ_map: Mapping[str, str] | None = None,
        *,
        extra_names: Iterable[str] = (),
        **overrides: Any,
    ) -> Settings:
        """Build settings from CACHEKIT_* variables (REDIS_URL as a fallback), then overrides."""
        env_map = os.environ if environ_map is None else environ_map
        problems = env_name_problems(env_map, extra_names)
        for note in env_name_warnings(env_map, extra_names):
            if note not in _WARNED:  # once per process, not once per client built
                _WARNED.add(note)
                log.warning("cachekit: %s", note)
        reader = environ.Env()
        reader.ENVIRON = env_map  # read from the given mapping, not only os.environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            var = ENV_PREFIX + f.name
            if var in env_map:
                try:
                    values[f.name] = _read_env(reader, var, f.name)
                except ConfigurationError as exc:
                    problems.append(exc)
        if "REDIS_URL" not in values and env_map.get("REDIS_URL"):
            values["REDIS_URL"] = env_map["REDIS_URL"]
        values.update({k.upper(): v for k, v in overrides.items()})
        try:
            settings = cls.from_mapping(values, extra_names=extra_names)
        except ConfigurationError as exc:
            problems.append(exc)
        error = combined(problems)
        if error is not None:
            raise error
        return settings

    def validate(self) -> None:
        """Raise E042 for values out of range, E001/E002/E004 for key problems (all of them)."""
        error = combined(self.problems())
        if error is not None:
            raise error

    def problems(self) -> list[ConfigurationError]:
        """Every value out of range (E042) and every key problem (E001/E002/E004)."""
        out: list[ConfigurationError] = []

        def bad(message: str, code: str) -> None:
            out.append(ConfigurationError(message, code=code))

        if self.ENCRYPTION not in ("auto", "required"):
            bad(f"ENCRYPTION must be 'auto' or 'required', not {self.ENCRYPTION!r}", "E042")
        if self.ENCRYPTION == "required" and not self.MASTER_KEY:
            bad("ENCRYPTION is 'required' but no MASTER_KEY is set", "E001")
        if self.PLAIN_COUNTERS and self.ENCRYPTION == "required":
            bad("PLAIN_COUNTERS stores unsealed integers; ENCRYPTION='required' forbids them",
                "E042")
        if any(not isinstance(p, str) or not p for p in self.PLAIN_COUNTERS):
            bad("PLAIN_COUNTERS holds non-empty key patterns", "E042")
        from .data.crypto import check_secret, parse_master_key  # E002/E004 now, not at first use

        keys: list[tuple[Any, tuple[str, str]]] = [
            (parse_master_key, (self.MASTER_KEY or "", "MASTER_KEY")),
            (check_secret, (self.SIGNING_KEY or "", "SIGNING_KEY")),
            *((parse_master_key, (old, f"PREVIOUS_MASTER_KEYS[{i}]"))
              for i, old in enumerate(self.PREVIOUS_MASTER_KEYS))]
        for check, (value, label) in keys:
            try:
                if value:
                    check(value, label)
            except ConfigurationError as exc:
                out.append(exc)
        for name in ("SOCKET_TIMEOUT", "SOCKET_CONNECT_TIMEOUT", "POOL_TIMEOUT",
                     "CIRCUIT_BREAKER_WINDOW", "CIRCUIT_BREAKER_RECOVERY_TIMEOUT",
                     "LOCK_TIMEOUT", "LOCK_WAIT", "PENDING_REPLAY_INTERVAL"):
            if getattr(self, name) <= 0:
                bad(f"{name} must be > 0", "E042")
        for name in ("CONNECTION_POOL_SIZE", "CIRCUIT_BREAKER_FAILURE_THRESHOLD",
                     "CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS", "MAX_VALUE_SIZE", "MAX_KEY_LENGTH",
                     "MEMORY_MAX_ENTRIES", "LOCAL_CACHE_MAX_ENTRIES", "LOCAL_CACHE_MAX_BYTES"):
            if getattr(self, name) < 1:
                bad(f"{name} must be >= 1", "E042")
        for name in ("CIRCUIT_BREAKER_FAILURE_RATE", "CIRCUIT_BREAKER_SLOW_CALL_RATE"):
            if not 0 < getattr(self, name) <= 1:
                bad(f"{name} must be > 0 and <= 1", "E042")
        for name in ("CIRCUIT_BREAKER_MIN_CALLS", "CIRCUIT_BREAKER_SLOW_IN_FLIGHT"):
            if getattr(self, name) < 0:
                bad(f"{name} must be >= 0", "E042")
        if not 0 < self.LOCAL_CACHE_LEASE <= 1.5:
            bad("LOCAL_CACHE_LEASE must be > 0 and <= 1.5", "E042")
        if self.FLEET_PUBLISH_INTERVAL < 0:
            bad("FLEET_PUBLISH_INTERVAL must be >= 0", "E042")
        if self.CIRCUIT_BREAKER_SLOW_CALL_DURATION < 0:
            bad("CIRCUIT_BREAKER_SLOW_CALL_DURATION must be >= 0", "E042")
        if self.HEALTH_DOWN_STATUS not in (200, 503):
            bad("HEALTH_DOWN_STATUS must be 200 or 503", "E042")
        if self.SSL_CERT_REQS not in ("required", "optional", "none"):
            bad("SSL_CERT_REQS must be 'required', 'optional' or 'none'", "E042")
        if self.SSL_KEYFILE and not self.SSL_CERTFILE:
            bad("SSL_KEYFILE is set without SSL_CERTFILE", "E042")
        if self.RETRIES < 0 or self.RETRIES > 3:
            bad("RETRIES must be between 0 and 3", "E042")
        if not _NAMESPACE_RE.fullmatch(self.NAMESPACE):
            bad("NAMESPACE must be letters, digits and _ . ~ % - only", "E042")
        return out

    def require_url(self) -> str:
        """Return REDIS_URL or raise E040."""
        if not self.REDIS_URL:
            raise ConfigurationError(
                "no Redis URL: set CACHEKIT_REDIS_URL (or REDIS_URL)", code="E040"
            )
        return self.REDIS_URL

    def public_dict(self) -> dict[str, Any]:
        """Settings safe to show: secrets replaced by whether they are set."""
        from .urls import redact_url

        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRET_NAMES:
                value = bool(value)
            elif f.name == "REDIS_URL" and value:
                value = redact_url(value)
            elif f.name == "REPLICA_URLS":
                value = [redact_url(u) for u in value]
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


# One line per setting: the README's settings table is generated from this.
DESCRIPTIONS: dict[str, str] = {
    "REDIS_URL": "Where the cache lives: redis://, rediss:// (TLS), unix://, memory:// "
    "(falls back to REDIS_URL).",
    "NAMESPACE": "Prefix of every key; clear() removes only this namespace.",
    "MASTER_KEY": "Random hex key, at least 32 bytes (16+ distinct byte values): values are "
    "AES-256-GCM encrypted when set. `cachekit-web keygen` prints a new one.",
    "PREVIOUS_MASTER_KEYS": "Comma-separated old master keys, used only to read during rotation.",
    "ENCRYPTION": "auto (encrypt when MASTER_KEY is set) or required (refuse to start without).",
    "SIGNING_KEY": "Secret for HMAC-signed frames when there is no MASTER_KEY (adapters derive "
    "it from SECRET_KEY); at least 16 characters, 8 of them different (`cachekit-web keygen "
    "--signing`).",
    "PICKLE_FALLBACK": "Store types msgpack cannot carry with pickle, only inside authenticated "
    "frames; off = never pickle, and never unpickle on read (E021).",
    "PLAIN_COUNTERS": "Key patterns (`*`, `?`; e.g. `rl:*`) whose integers are plain Redis "
    "integers (one INCRBY), not sealed: anyone who can write to Redis can set them. Other "
    "counters are sealed (compare-and-set). See docs/security.md.",
    "DEFAULT_TIMEOUT": "Seconds a value lives when no timeout is given; none = forever.",
    "MAX_VALUE_SIZE": "Largest serialized value in bytes, before compression; larger ones are "
    "refused (E022), and no stored value is inflated beyond it (E021).",
    "MAX_KEY_LENGTH": "Longest key in characters (E023).",
    "COMPRESS_MIN_SIZE": "Values at least this many bytes are zlib-compressed when it helps.",
    "SOCKET_TIMEOUT": "Seconds to wait for a Redis reply.",
    "SOCKET_CONNECT_TIMEOUT": "Seconds to wait for a connection.",
    "CONNECTION_POOL_SIZE": "Connections per process; callers wait POOL_TIMEOUT for a free one.",
    "POOL_TIMEOUT": "Seconds to wait for a free pooled connection (E012 after).",
    "RETRIES": "Retries of a lost connection (not of a timeout, nor of a write unsafe to "
               "repeat), 0 to 3.",
    "HEALTH_CHECK_INTERVAL": "Seconds idle before a pooled connection is PINGed before use.",
    "HEALTH_DOWN_STATUS": "HTTP status of the health JSON while the cache is down: 200 keeps "
    "a site that serves without its cache in a load balancer's rotation; 503 takes it out "
    "(a probe can ask for that with `?strict=1`). See docs/django.md, docs/flask.md.",
    "SSL_CERT_REQS": "rediss:// certificate check: required, optional or none.",
    "SSL_CA_CERTS": "Path of the CA bundle for rediss://.",
    "SSL_CERTFILE": "Path of this client's certificate (PEM) for rediss:// servers that ask "
                    "for one (tls-auth-clients); may hold the key too. See docs/tls.md.",
    "SSL_KEYFILE": "Path of the client certificate's private key (PEM, unencrypted) when "
                   "SSL_CERTFILE does not hold it.",
    "CIRCUIT_BREAKER_ENABLED": "Turn Redis failures into fast misses.",
    "CIRCUIT_BREAKER_FAILURE_THRESHOLD": "Failures in a row (within the window) that open the "
    "breaker.",
    "CIRCUIT_BREAKER_WINDOW": "Seconds over which failures, and the rates below, are counted.",
    "CIRCUIT_BREAKER_FAILURE_RATE": "Share of failed calls in the window (0-1] that opens the "
    "breaker, once it saw MIN_CALLS calls (a failed call can cost SOCKET_TIMEOUT: a quarter "
    "failing already makes the cache slower than none).",
    "CIRCUIT_BREAKER_MIN_CALLS": "Calls in the window before the failure and slow-call rates "
    "count.",
    "CIRCUIT_BREAKER_SLOW_CALL_DURATION": "Seconds after which a call counts as slow; a call "
    "that timed out after this long while Redis answered no other call opens the breaker at "
    "once (a hung server); 0 turns slow-call and hang detection off.",
    "CIRCUIT_BREAKER_SLOW_CALL_RATE": "Share of slow calls in the window (0-1] that opens the "
    "breaker.",
    "CIRCUIT_BREAKER_SLOW_IN_FLIGHT": "This many calls in flight at once for SLOW_CALL_DURATION "
    "or longer open the breaker at once (a hung server) and fail open, checked by a watchdog "
    "thread too; 0 = off.",
    "CIRCUIT_BREAKER_RECOVERY_TIMEOUT": "Longest gap between recovery probes while the breaker "
    "is open: a background PING every 250 ms at first, then every tenth of the outage, at most "
    "this; an answer half-opens the breaker at once. Also caps a lost node's retry (at most 5).",
    "CIRCUIT_BREAKER_HALF_OPEN_MAX_CALLS": "Calls allowed at once while half-open (two "
    "successes close the breaker, a failure reopens it).",
    "PENDING_DELETES_MAX": "Deletes remembered during an outage; beyond it the namespace is "
    "cleared on recovery.",
    "PENDING_SPOOL": "Also write deferred invalidations to a local spool file, so they survive "
    "the process and any process of the namespace replays them.",
    "SPOOL_DIR": "Where spool files live; empty: a per-user folder in the system temp dir. "
    "It must belong to the application's user and not be writable by group or others, and "
    "not be a symlink (else E080: deferred invalidations stay in memory).",
    "PENDING_REPLAY_INTERVAL": "Seconds between background probes while invalidations are "
    "deferred; they are replayed as soon as Redis answers.",
    "LOCK_TIMEOUT": "Seconds a recompute lock is held at most (a crashed holder's lock expires).",
    "LOCK_WAIT": "Seconds a caller waits for another's recompute before computing itself (E050).",
    "STRICT": "Raise typed errors instead of failing open.",
    "LOG_INTERVAL": "Seconds between two log lines for the same error code.",
    "MEMORY_MAX_ENTRIES": "Entries kept by a memory:// cache before LRU eviction.",
    "REPLICA_READS": "Send reads to replicas when some are named (REPLICA_URLS, or "
    "?replica_reads=1 on a Sentinel or Cluster URL); writes and locks always go to the primary.",
    "REPLICA_URLS": "Comma-separated redis:// URLs of read replicas of the REDIS_URL primary.",
    "FLEET_PUBLISH_INTERVAL": "Seconds between two snapshots of this process's metrics and "
    "breaker written to Redis, so health pages show every process; 0 = off.",
    "PROMETHEUS": "Mirror the metrics into prometheus_client (the prometheus extra) for a "
    "/metrics view; set PROMETHEUS_MULTIPROC_DIR under gunicorn.",
    "LOCAL_CACHE": "Serve reads from an in-process tier kept coherent by Redis CLIENT TRACKING "
    "(Redis 6+; on Cluster and Sentinel one tracking connection per primary); decorators "
    "can opt in or out with local=True/False. See docs/scaling.md.",
    "LOCAL_CACHE_MAX_ENTRIES": "Entries the in-process tier keeps before evicting the oldest.",
    "LOCAL_CACHE_MAX_BYTES": "Decoded bytes (the values' size in memory) the in-process tier "
    "keeps before evicting the oldest.",
    "LOCAL_CACHE_LEASE": "Seconds (at most 1.5) the in-process tier serves after its last "
    "heartbeat answer; the worst staleness if the invalidation channel silently stalls.",
}


# Names only an adapter reads: (default, meaning). Known here so that the environment
# check, which the core and every adapter share, accepts them, and the README lists them.
ADAPTER_SETTINGS: dict[str, tuple[str, str]] = {
    "HEALTH_ENABLED": ("False", "Flask: register the health dashboard blueprint."),
    "HEALTH_URL_PREFIX": ("/_cachekit/health", "Flask: where the health dashboard is served."),
    "HEALTH_TOKEN": ("", "Flask: bearer token for the dashboard (or pass an authorization "
                     "callback); without either the dashboard answers 404. At least 16 "
                     "characters, 8 of them different (E004)."),
    "SOURCE_CHECK": ("False", "Flask: default of cached/memoize source_check (the function's "
                     "code is part of the key)."),
    "CACHE_STATUS_HEADER": ("True", "Flask: add a Cache-Status header to cached views."),
}


def settings_markdown() -> str:
    """The settings table (name, environment variable, default, meaning) as Markdown."""
    rows = ["| setting | environment | default | meaning |", "|---|---|---|---|"]
    defaults = Settings()
    for f in fields(Settings):
        value = getattr(defaults, f.name)
        shown = "-" if value in (None, ()) else f"`{value}`"
        rows.append(f"| `{f.name}` | `{ENV_PREFIX}{f.name}` | {shown} | "
                    f"{DESCRIPTIONS.get(f.name, '')} |")
    for name, (default, meaning) in ADAPTER_SETTINGS.items():
        shown = f"`{default}`" if default else "-"
        rows.append(f"| `{name}` | `{ENV_PREFIX}{name}` | {shown} | {meaning} |")
    return "\n".join(rows) + "\n"


# Keys start with the namespace: keeping it to this set keeps lock keys ('{', '!') apart.
_NAMESPACE_RE = re.compile(r"[A-Za-z0-9_.~%-]+")
_SECRET_NAMES = frozenset({"MASTER_KEY", "PREVIOUS_MASTER_KEYS", "SIGNING_KEY"})
_TYPES: dict[str, Any] = {f.name: f.type for f in fields(Settings)}
_TRUE = frozenset({"1", "true", "yes", "on", "y", "ok"})
_FALSE = frozenset({"0", "false", "no", "off", "n", ""})


def parse_bool(value: Any) -> bool:
    """The one boolean parser (core and adapters): bool, int, or a yes/no word; else ValueError."""
    if isinstance(value, (bool, int)):
        return bool(value)
    if not isinstance(value, str):
        raise TypeError(type(value).__name__)
    # A typo such as "ture" must not silently mean False.
    word = value.strip().lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise ValueError("not a boolean word")


def coerce_bool(label: str, value: Any) -> bool:
    """``value`` as a boolean, or E042 naming ``label`` (never the value)."""
    try:
        return parse_bool(value)
    except (TypeError, ValueError):
        pass
    raise ConfigurationError(f"{label} must be a boolean (true/false, yes/no, on/off, 1/0)",
                             code="E042")


def unknown_setting(raw_name: str, known: Iterable[str], prefix: str = "") -> ConfigurationError:
    """Build the E041 error for an unknown name, with a did-you-mean."""
    bare = raw_name.upper()
    for p in (prefix, *_FOREIGN_PREFIXES):
        if p and bare.startswith(p):
            bare = bare[len(p):]
            break
    match = difflib.get_close_matches(bare, list(known), n=1, cutoff=0.6)
    if match:
        return ConfigurationError(f"unknown setting {raw_name!r}; did you mean "
                                  f"{prefix or ''}{match[0]}?", code="E041", suggestion=True)
    return ConfigurationError(f"unknown setting {raw_name!r}; remove it (the README lists "
                              "every setting)", code="E041")


def env_name_problems(env_map: Mapping[str, str],
                      extra_names: Iterable[str] = ()) -> list[ConfigurationError]:
    """E041 for each CACHEKIT_* variable that names no setting (a typo), with a did-you-mean."""
    known = set(Settings.names()) | set(ADAPTER_SETTINGS) | set(extra_names)
    return [unknown_setting(var, known, ENV_PREFIX) for var in env_map
            if var.startswith(ENV_PREFIX) and var[len(ENV_PREFIX):] not in known]


def env_name_warnings(env_map: Mapping[str, str], extra_names: Iterable[str] = ()) -> list[str]:
    """Cache variables with another prefix (CACHE_REDIS_URL...): not read, so only a warning
    (the environment may be shared with other software, such as a Flask-Caching app)."""
    known = set(Settings.names()) | set(ADAPTER_SETTINGS) | set(extra_names)
    out = []
    for var in env_map:
        if var.startswith(ENV_PREFIX) or not var.startswith(_FOREIGN_PREFIXES):
            continue
        bare = next(var[len(p):] for p in _FOREIGN_PREFIXES if var.startswith(p))
        if bare in known:
            out.append(f"environment variable {var!r} is not read; did you mean "
                       f"{ENV_PREFIX}{bare}? (E041)")
    return out


def check_env_names(env_map: Mapping[str, str], extra_names: Iterable[str] = ()) -> None:
    """Raise E041 naming every CACHEKIT_* typo in the environment."""
    error = combined(env_name_problems(env_map, extra_names))
    if error is not None:
        raise error


_WARNED: set[str] = set()  # environment warnings already logged by this process


def _read_env(reader: environ.Env, var: str, name: str) -> Any:
    kind = _TYPES[name]
    try:
        if "bool" in kind:
            return parse_bool(reader.str(var))
        if "tuple" in kind:
            return tuple(v.strip() for v in reader.list(var) if v.strip())
        if "float" in kind:
            raw = reader.str(var)
            return None if raw.lower() in ("", "none", "never") else float(raw)
        if kind == "int":
            return reader.int(var)
        return reader.str(var) or None
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"{var} has an invalid value; write {_expected(kind)}",
                                 code="E042") from exc


def _coerce(name: str, value: Any) -> Any:
    kind = _TYPES[name]
    try:
        if "tuple" in kind:
            if isinstance(value, str):
                return tuple(v for v in (p.strip() for p in value.split(",")) if v)
            return tuple(value or ())
        if value is None:
            if "None" in kind:
                return None
            raise TypeError(name)
        if "bool" in kind:
            if isinstance(value, str):
                return parse_bool(value)
            return bool(value)
        if "float" in kind:
            return float(value)
        if kind == "int":
            if isinstance(value, bool):
                raise TypeError(name)
            return int(value)
        if "str" in kind:
            return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"setting {name} has an invalid value; write {_expected(kind)}",
                                 code="E042") from exc
    return value


def _expected(kind: str) -> str:
    """What a value of a setting's type looks like, for the fix in E042."""
    if "tuple" in kind:
        return "a list, or a comma-separated string"
    if "bool" in kind:
        return "a boolean (true/false, yes/no, on/off, 1/0)"
    if "float" in kind:
        return "a number" + (" or None" if "None" in kind else "")
    return "an integer" if kind == "int" else "a string"
