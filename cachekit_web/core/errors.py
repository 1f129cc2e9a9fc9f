"""The error registry and the exception hierarchy built from it.

Every failure cachekit-web reports has a stable code (``E001`` ...). The
registry below is the single source: exceptions, ``cachekit-web explain``
and ``docs/errors.md`` are all generated from it.
"""

from __future__ import annotations

import pickle
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class ErrorSpec:
    """One registry entry: what a code means and what to do about it."""

    code: str
    title: str
    category: str
    retryable: bool
    slo: bool
    causes: tuple[str, ...]
    fix: str
    trips_breaker: bool = False

    def explain(self) -> str:
        """Return the entry as plain text for a terminal."""
        lines = [
            f"{self.code}: {self.title}",
            f"  category:      {self.category}",
            f"  retryable:     {'yes' if self.retryable else 'no'}",
            f"  counts to SLO: {'yes' if self.slo else 'no'}",
            f"  trips breaker: {'yes' if self.trips_breaker else 'no'}",
            "  likely causes:",
            *(f"    - {c}" for c in self.causes),
            f"  fix: {self.fix}",
        ]
        return "\n".join(lines)

    def markdown(self) -> str:
        """Return the entry as a Markdown section."""
        causes = "\n".join(f"- {c}" for c in self.causes)
        return (
            f"## {self.code}: {self.title}\n\n"
            f"| category | retryable | counts toward SLO | trips the breaker |\n"
            f"|---|---|---|---|\n"
            f"| {self.category} | {_yn(self.retryable)} | {_yn(self.slo)} | "
            f"{_yn(self.trips_breaker)} |\n\n"
            f"Likely causes:\n\n{causes}\n\nFix: {self.fix}\n"
        )

    def fix_for(self, url: str | None) -> str:
        """The fix with the Redis URL actually used (pass it redacted) in place of its name."""
        if not url or URL_PLACEHOLDER not in self.fix:
            return self.fix
        return self.fix.replace(URL_PLACEHOLDER, shlex.quote(url))


# Fix texts name the URL by its variable; fix_for() puts the URL in use there instead.
URL_PLACEHOLDER = "$CACHEKIT_REDIS_URL"


def _yn(flag: bool) -> str:
    return "yes" if flag else "no"


def _spec(
    code: str,
    title: str,
    category: str,
    *,
    retryable: bool,
    slo: bool,
    causes: tuple[str, ...],
    fix: str,
    trips_breaker: bool = False,
) -> ErrorSpec:
    return ErrorSpec(code, title, category, retryable, slo, causes, fix, trips_breaker)


REGISTRY: dict[str, ErrorSpec] = {
    s.code: s
    for s in (
        _spec(
            "E001", "Master key required but not set", "configuration",
            retryable=False, slo=False,
            causes=(
                "ENCRYPTION is 'required' but CACHEKIT_MASTER_KEY is empty or missing",
                "the variable is set in one process (shell) but not in the app's environment",
            ),
            fix="Generate a key with `cachekit-web keygen` and set it as CACHEKIT_MASTER_KEY "
            "(or MASTER_KEY in OPTIONS / app.config).",
        ),
        _spec(
            "E002", "Master key is malformed", "configuration",
            retryable=False, slo=False,
            causes=(
                "the key is not hexadecimal",
                "the key is shorter than 32 bytes (64 hex characters)",
                "quotes or whitespace were pasted into the value",
                "the key is weak: fewer than 16 distinct byte values (all zeros, one byte "
                "repeated, a short pattern repeated), so it was not randomly generated",
            ),
            fix="Use 64 or more random hex characters: `cachekit-web keygen` prints a new key.",
        ),
        _spec(
            "E004", "Secret is too weak", "configuration",
            retryable=False, slo=False,
            causes=(
                "SIGNING_KEY or the Flask HEALTH_TOKEN is shorter than 16 characters",
                "the secret repeats a few characters (fewer than 8 different ones)",
                "a placeholder such as 'x' or 'changeme' was left in the configuration",
            ),
            fix="Use a random token of 16 or more characters: `cachekit-web keygen --signing` "
            "prints a new one.",
        ),
        _spec(
            "E005", "Rotation refused: the keys look swapped", "configuration",
            retryable=False, slo=False,
            causes=(
                "`cachekit-web rotate` ran with MASTER_KEY and PREVIOUS_MASTER_KEYS swapped: "
                "sampled entries open under a previous key and none under MASTER_KEY, so "
                "re-sealing would lock out every reader that has only the key in use",
                "a rotation right after a new key was deployed, before anything was written "
                "with it",
            ),
            fix="Check that MASTER_KEY is the key the application writes with and the old one "
            "is in PREVIOUS_MASTER_KEYS (`cachekit-web doctor` shows the share per key). If the "
            "configuration is right, run `cachekit-web rotate --force`.",
        ),
        _spec(
            "E003", "Stored value failed authentication", "integrity",
            retryable=False, slo=False,
            causes=(
                "the master key or SECRET_KEY changed and the old key is not in "
                "PREVIOUS_MASTER_KEYS",
                "the value was copied to another key or modified inside Redis",
                "another application writes to the same keys",
            ),
            fix="Nothing is lost: the entry is treated as a miss and deleted. After a key "
            "rotation, list the old key in CACHEKIT_PREVIOUS_MASTER_KEYS until old entries expire, "
            "or run `cachekit-web rotate` to re-seal them now and retire the old key.",
        ),
        _spec(
            "E010", "Cannot connect to Redis", "connection",
            retryable=True, slo=True, trips_breaker=True,
            causes=(
                "Redis is not running or was restarted",
                "the URL's host, port or socket path is wrong",
                "a firewall or the network refuses the connection",
            ),
            fix="Check the server (`redis-cli -u $CACHEKIT_REDIS_URL ping`) and the URL. "
            "Reads miss and writes are skipped until it is back.",
        ),
        _spec(
            "E011", "Timed out connecting to Redis", "connection",
            retryable=True, slo=True, trips_breaker=True,
            causes=(
                "the server is overloaded, paused or unreachable",
                "SOCKET_CONNECT_TIMEOUT is too small for the network's latency",
            ),
            fix="Check the server's load and latency; raise CACHEKIT_SOCKET_CONNECT_TIMEOUT "
            "only if the network is known to be slow.",
        ),
        _spec(
            "E012", "Connection pool exhausted", "connection",
            retryable=True, slo=True,
            causes=(
                "more concurrent cache calls than CONNECTION_POOL_SIZE connections",
                "slow commands hold connections longer than POOL_TIMEOUT",
            ),
            fix="Raise CACHEKIT_CONNECTION_POOL_SIZE to at least your worker thread count, "
            "or find what makes commands slow.",
        ),
        _spec(
            "E013", "A cluster node is unreachable", "connection",
            retryable=True, slo=True,
            causes=(
                "one Redis Cluster primary was killed, restarted or partitioned away",
                "the cluster has not yet promoted a replica for the lost node's slots",
            ),
            fix="Keys on the other nodes are still served; keys on the lost node miss until it "
            "or a promoted replica answers. The breaker stays closed: only that node is "
            "skipped, and retried every CIRCUIT_BREAKER_RECOVERY_TIMEOUT seconds.",
        ),
        _spec(
            "E014", "Topology change in progress", "connection",
            retryable=True, slo=True,
            causes=(
                "Sentinel is failing over: the old primary is gone and no new one is known yet",
                "a Redis Cluster slot is migrating (TRYAGAIN) or kept redirecting (MOVED/ASK)",
                "a request reached a primary that was just demoted to a replica",
            ),
            fix="Transient: requests miss for the few seconds the failover or resharding takes "
            "and the client follows the new primary by itself. If it persists, check "
            "`SENTINEL masters` or `CLUSTER INFO`.",
        ),
        _spec(
            "E020", "Value cannot be serialized", "serialization",
            retryable=False, slo=False,
            causes=(
                "the value's type has no msgpack encoding and the pickle fallback is off",
                "no master key or signing key is configured, so pickle is refused",
                "tuples, sets, frozensets or date/time values nest more than 16 levels "
                "inside one another (see docs/security.md)",
            ),
            fix="Cache plain data (dict, list, str, numbers, dates, Decimal, UUID), or configure "
            "MASTER_KEY or SIGNING_KEY so that other objects can be stored in sealed frames.",
        ),
        _spec(
            "E021", "Stored value cannot be decoded", "serialization",
            retryable=False, slo=False,
            causes=(
                "the entry was written by another program or an older format",
                "the bytes in Redis are corrupt",
                "the entry is past the expiry sealed into it (written back after it expired, "
                "or this machine's clock runs ahead)",
                "it nests more than 16 levels, inflates beyond MAX_VALUE_SIZE, or is pickled "
                "while PICKLE_FALLBACK is off",
            ),
            fix="Nothing is lost: the entry is treated as a miss and deleted.",
        ),
        _spec(
            "E022", "Value too large", "serialization",
            retryable=False, slo=False,
            causes=("the encoded value is larger than MAX_VALUE_SIZE",),
            fix="Cache smaller pieces, or raise CACHEKIT_MAX_VALUE_SIZE deliberately.",
        ),
        _spec(
            "E023", "Invalid cache key", "usage",
            retryable=False, slo=False,
            causes=(
                "the key is empty or not a string",
                "the key is longer than MAX_KEY_LENGTH",
            ),
            fix="Use a non-empty string key; hash long inputs before using them as keys.",
        ),
        _spec(
            "E030", "Circuit breaker open", "availability",
            retryable=True, slo=True,
            causes=(
                "recent calls to Redis failed CIRCUIT_BREAKER_FAILURE_THRESHOLD times in a row",
                "at least CIRCUIT_BREAKER_FAILURE_RATE of the calls in the last "
                "CIRCUIT_BREAKER_WINDOW seconds failed, or CIRCUIT_BREAKER_SLOW_CALL_RATE of "
                "them were slow",
                "CIRCUIT_BREAKER_SLOW_IN_FLIGHT calls were stuck at once (a hung server)",
            ),
            fix="Fix the underlying E010/E011/E06x errors. The breaker probes again after "
            "CIRCUIT_BREAKER_RECOVERY_TIMEOUT seconds and closes by itself.",
        ),
        _spec(
            "E040", "Redis URL missing", "configuration",
            retryable=False, slo=False,
            causes=("neither CACHEKIT_REDIS_URL nor REDIS_URL nor an explicit URL is set",),
            fix="Set CACHEKIT_REDIS_URL, e.g. redis://127.0.0.1:6379/0 (or memory:// for a "
            "process-local cache).",
        ),
        _spec(
            "E041", "Unknown setting name", "configuration",
            retryable=False, slo=False,
            causes=(
                "a typo in a setting name",
                "a misspelled CACHEKIT_ environment variable (one with another prefix, such as "
                "a leftover CACHE_REDIS_URL, is only warned about: other software may read it)",
                "a Flask-Caching or django-redis option that cachekit-web does not read",
            ),
            fix="Use the name suggested in the message (each problem is on a line of its own, "
            "with its fix); every setting is listed in the README.",
        ),
        _spec(
            "E042", "Invalid setting value", "configuration",
            retryable=False, slo=False,
            causes=("a setting has the wrong type or is out of range",),
            fix="Correct the value named in the message; the README's table gives each type.",
        ),
        _spec(
            "E043", "Cache alias cannot serve cachekit views", "configuration",
            retryable=False, slo=False,
            causes=(
                "cache_page(cache=...) names an alias missing from CACHES",
                "the alias (\"default\" when none is given) is not a CachekitCache",
            ),
            fix="Point the alias at cachekit_web.django.CachekitCache, or pass cache= naming "
            "one; until then the decorated views run uncached.",
        ),
        _spec(
            "E050", "Lock acquisition timed out", "concurrency",
            retryable=True, slo=False,
            causes=(
                "another process holds the recompute lock for longer than LOCK_WAIT",
                "a crashed holder's lock has not yet expired (LOCK_TIMEOUT)",
            ),
            fix="The value is computed without the lock (strict mode raises instead). "
            "If it recurs, make the computation faster or raise LOCK_WAIT.",
        ),
        _spec(
            "E060", "Authentication to the backend refused", "authentication",
            retryable=False, slo=True, trips_breaker=True,
            causes=(
                "wrong password or user name in the URL",
                "the ACL user lacks permission for a command cachekit-web uses",
            ),
            fix="Check the credentials in the URL and the user's ACL (needs GET, SET, DEL, "
            "SCAN, EVALSHA and friends). Alert whoever owns the Redis credentials. Treated as "
            "an outage: the breaker opens, so calls stop reconnecting until it probes again.",
        ),
        _spec(
            "E061", "Backend overloaded or rate-limited", "backend",
            retryable=True, slo=True, trips_breaker=True,
            causes=(
                "the server refuses new clients (maxclients reached)",
                "the server is busy running a long script or loading its dataset",
            ),
            fix="Reduce load or raise the server's limits; requests miss until it recovers.",
        ),
        _spec(
            "E062", "Backend server error", "backend",
            retryable=True, slo=True, trips_breaker=True,
            causes=(
                "the node is read-only (a replica after failover), or the cluster is down",
                "the server cannot persist (MISCONF) or is failing over",
            ),
            fix="Check the server's log and role; the client follows a new primary by itself "
            "when it is reached through Sentinel or Cluster.",
        ),
        _spec(
            "E063", "Request rejected by the backend", "backend",
            retryable=False, slo=False,
            causes=(
                "a key holds a value of another type (WRONGTYPE), written by another program",
                "the server does not support a command (too old a version)",
            ),
            fix="Give cachekit-web its own NAMESPACE or database; Redis 6.2 or newer is needed.",
        ),
        _spec(
            "E064", "Backend request timed out", "connection",
            retryable=True, slo=True, trips_breaker=True,
            causes=(
                "the server is paused, swapping or running a slow command",
                "SOCKET_TIMEOUT is too small for the value sizes in use",
            ),
            fix="Look at the server's SLOWLOG and latency. Reads miss until it answers again.",
        ),
        _spec(
            "E065", "Connection lost during a request", "connection",
            retryable=True, slo=True, trips_breaker=True,
            causes=(
                "the server was restarted or killed while a request was in flight",
                "an idle connection was closed by the server or a proxy (timeout setting)",
            ),
            fix="Transient: the request is retried once on a fresh connection. If it recurs, "
            "check the server's `timeout` setting and proxies between client and server.",
        ),
        _spec(
            "E066", "Backend out of memory", "backend",
            retryable=False, slo=True,
            causes=(
                "maxmemory is reached and the eviction policy is noeviction",
            ),
            fix="Set `maxmemory-policy allkeys-lru` (a cache should evict) or give Redis more "
            "memory. Writes are dropped until then; reads still work.",
        ),
        _spec(
            "E067", "Unexpected reply from the backend", "backend",
            retryable=True, slo=True, trips_breaker=True,
            causes=(
                "something other than Redis listens on the port",
                "a proxy between client and server corrupted the stream",
            ),
            fix="Check that the URL points at a Redis server.",
        ),
        _spec(
            "E068", "Client is closed", "usage",
            retryable=False, slo=False,
            causes=("a cache call was made after close()",),
            fix="Create a new client, or do not close a client that is still in use.",
        ),
        _spec(
            "E069", "Operation not supported by this backend", "usage",
            retryable=False, slo=False,
            causes=(
                "sets, hashes, sorted sets or get_client() were used on the in-process "
                "memory:// backend, which only stores values",
                "the backend in use does not implement this operation yet",
            ),
            fix="Use a Redis URL (redis://, rediss://, unix://) for these operations.",
        ),
        _spec(
            "E070", "In-process tier turned off", "configuration",
            retryable=False, slo=False,
            causes=(
                "LOCAL_CACHE (or local=True) was asked for, but the Redis server is older "
                "than 6.0 and has no CLIENT TRACKING",
                "the backend is read replicas (REPLICA_URLS) or memory://, where the "
                "tier is not available (on Sentinel and Cluster it tracks every primary)",
                "on a Cluster, the tier's own slot map cannot be loaded: keys of primaries "
                "it has no tracking connection to go to Redis until it loads",
                "the tier's tracking connection was lost (Redis restarted, CLIENT KILL, "
                "network) or cannot be opened: the tier is off until it reconnects, "
                "which it retries in the background (logged once per outage)",
            ),
            fix="Upgrade Redis to 6.0 or later; use a redis://, rediss://, unix://, Sentinel "
            "or Cluster URL; for a lost tracking connection, check that Redis is reachable "
            "(the message says why it failed). Reads work as before (from Redis) meanwhile.",
        ),
        _spec(
            "E080", "Spool folder refused", "configuration",
            retryable=False, slo=False,
            causes=(
                "the spool root (SPOOL_DIR, or cachekit-spool-<uid> in the temp folder) or "
                "its namespace folder belongs to another user, or group or others may write "
                "to it (someone created it first)",
                "one of these folders is a symlink (never followed)",
            ),
            fix="Invalidations deferred during an outage are kept in memory only (lost if the "
            "process exits before Redis answers). Remove the folder, or set SPOOL_DIR to a "
            "folder owned by the user the application runs as, mode 0700.",
        ),
        _spec(
            "E081", "Spool cannot be written or read", "configuration",
            retryable=True, slo=False,
            causes=(
                "SPOOL_DIR cannot be created (a file is in the way, no permission)",
                "the spool folder is not writable, or the disk is full",
            ),
            fix="Invalidations deferred during an outage are kept in memory only; nothing "
            "fails. Point SPOOL_DIR at a writable folder with free space.",
        ),
        _spec(
            "E082", "Spool file set aside", "integrity",
            retryable=False, slo=False,
            causes=(
                "a spool file holds lines that are not invalidations of this namespace (a key "
                "of another namespace, bytes that are not UTF-8, a malformed record)",
                "something in the spool folder is not a plain file of this user (a FIFO, a "
                "symlink, a device)",
            ),
            fix="Its valid lines were replayed; the file was renamed with a .bad suffix and "
            "is never read again. Look at it, then delete it.",
        ),
    )
}


REGISTRY = dict(sorted(REGISTRY.items()))  # code order for `explain --list` and the docs


def install_line(extras: str) -> str:
    """The one install command users are told (the README's): from a checkout, with extras."""
    return f"python -m pip install -e '.[{extras}]'"


def lookup(code: str) -> ErrorSpec:
    """Return the registry entry for ``code`` (case-insensitive)."""
    return REGISTRY[code.upper()]


class CachekitError(Exception):
    """Base of every cachekit-web error; ``.code`` names its registry entry."""

    default_code: ClassVar[str] = "E000"

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        self.code = code or self.default_code
        self.spec = REGISTRY[self.code]
        self.message = message or self.spec.title
        super().__init__(f"[{self.code}] {self.message}")

    @property
    def retryable(self) -> bool:
        """Whether trying again later may succeed."""
        return self.spec.retryable

    @property
    def trips_breaker(self) -> bool:
        """Whether this failure counts toward opening the circuit breaker."""
        return self.spec.trips_breaker

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.code))


def _rebuild(cls: type[CachekitError], message: str, code: str) -> CachekitError:
    return cls(message, code=code)


class ConfigurationError(CachekitError, ValueError):
    """Settings are missing, malformed, weak or unknown (E001, E002, E004, E040, E041, E042)."""

    default_code = "E042"

    def __init__(self, message: str = "", *, code: str | None = None,
                 suggestion: bool = False) -> None:
        super().__init__(message, code=code)
        self.suggestion = suggestion  # the message names a setting to write instead
        self.problems: tuple[ConfigurationError, ...] = (self,)

    @property
    def hint(self) -> str | None:
        """The registry's fix, except E041's "use the name suggested" when none is."""
        return None if self.code == "E041" and not self.suggestion else self.spec.fix


def combined(errors: Sequence[ConfigurationError]) -> ConfigurationError | None:
    """One error naming every settings problem, a line each (E041 if a name is wrong)."""
    flat = [p for e in errors for p in e.problems]
    if len(flat) <= 1:
        return flat[0] if flat else None
    code = "E041" if any(p.code == "E041" for p in flat) else flat[0].code
    lines = "".join(f"\n- {p.message if p.code == code else f'[{p.code}] {p.message}'}"
                    for p in flat)
    error = ConfigurationError(f"{len(flat)} problems in the settings:{lines}", code=code,
                               suggestion=any(p.suggestion for p in flat))
    error.problems = tuple(flat)
    return error


class IntegrityError(CachekitError, ValueError):
    """A stored value failed authentication and was not used (E003)."""

    default_code = "E003"


class SerializationError(CachekitError, TypeError):
    """A value cannot be turned into bytes (E020)."""

    default_code = "E020"


class DeserializationError(CachekitError, pickle.UnpicklingError):
    """Stored bytes cannot be turned back into a value (E021)."""

    default_code = "E021"


class ValueTooLargeError(CachekitError, ValueError):
    """An encoded value exceeds MAX_VALUE_SIZE (E022)."""

    default_code = "E022"


class InvalidKeyError(CachekitError, ValueError):
    """A cache key is empty, not a string or too long (E023)."""

    default_code = "E023"


class LockTimeoutError(CachekitError, TimeoutError):
    """A recompute lock could not be acquired within LOCK_WAIT (E050)."""

    default_code = "E050"


class ClientClosedError(CachekitError, RuntimeError):
    """The client was used after close() (E068)."""

    default_code = "E068"


class UnsupportedOperationError(CachekitError, NotImplementedError):
    """The backend cannot do this operation, e.g. sets on memory:// (E069)."""

    default_code = "E069"


class BackendError(CachekitError):
    """The backend (Redis) failed; see subclasses for the kind of failure."""

    default_code = "E062"


class BackendConnectionError(BackendError, ConnectionError):
    """Redis cannot be reached or the connection dropped (E010, E065; E012 is a subclass)."""

    default_code = "E010"


class NodeUnreachableError(BackendConnectionError):
    """One cluster node (or slot) cannot be served while others answer (E013): its keys
    miss, the breaker stays closed."""

    default_code = "E013"


class PoolExhaustedError(BackendConnectionError):
    """No pooled connection became free within POOL_TIMEOUT (E012): busy, not down."""

    default_code = "E012"


class BackendTimeoutError(BackendError, TimeoutError):
    """Redis did not answer in time (E011, E064)."""

    default_code = "E064"


class BackendAuthError(BackendError, PermissionError):
    """Redis refused the credentials (E060)."""

    default_code = "E060"


class CircuitOpenError(BackendError):
    """The circuit breaker is open; Redis is not being called (E030)."""

    default_code = "E030"


def all_codes() -> list[str]:
    """Return every registered code in order."""
    return sorted(REGISTRY)


def markdown_table() -> str:
    """Render the whole registry as the Markdown document docs/errors.md."""
    head = (
        "# cachekit-web error codes\n\n"
        "Generated from `cachekit_web/core/errors.py` by `make docs` "
        "(`cachekit-web explain --markdown`); do not edit by hand.\n\n"
        "| code | title | category | retryable |\n|---|---|---|---|\n"
    )
    rows = "".join(
        f"| [{s.code}](#{_anchor(f'{s.code}: {s.title}')}) | {s.title} | {s.category} | "
        f"{_yn(s.retryable)} |\n"
        for s in REGISTRY.values()
    )
    return head + rows + "\n" + "\n".join(s.markdown() for s in REGISTRY.values())


def _anchor(heading: str) -> str:
    """The id GitHub and MkDocs both give ``heading``: punctuation but '-' dropped."""
    kept = "".join(c for c in heading.lower() if c.isalnum() or c in " -")
    return "-".join(kept.split())
