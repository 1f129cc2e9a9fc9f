"""CachekitCache: Django's cache API on top of the core client (translation only)."""

from __future__ import annotations

import builtins
import contextlib
import functools
import inspect
import itertools
import math
import pickle
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache, default_key_func

from ..core.client import AsyncCacheClient, CacheClient, CacheLock, Deferred, Result
from ..core.data.codec import Entry
from ..core.errors import ConfigurationError, SerializationError
from ..core.keys import escape_glob
from ..core.observe.health import HealthReport
from ..core.settings import Settings
from . import config

_CLIENTS: dict[tuple[Settings, tuple[str, str]], CacheClient] = {}
_LOCK = threading.Lock()
_MEMCACHE_SAFE = 250  # longer keys draw Django's memcached warning
_MEMO_SIZE = 4096  # made keys a cache remembers for get_many (then it starts afresh)
_NO_MEMO: dict[str, str] = {}  # looked up (never written) where nothing may be remembered


class CacheSerializationError(SerializationError, pickle.PicklingError):
    """E020 raised through Django's API: also a PicklingError, as Django's backends raise."""


def get_redis_connection(alias: str = "default", write: bool = True) -> Any:
    """The redis-py client of cache ``alias`` (django-redis's function): raw commands, not
    namespaced, sealed or breaker-guarded."""
    from django.core.cache import caches

    cache = caches[alias]
    if not isinstance(cache, CachekitCache):
        raise NotImplementedError(
            f"cache {alias!r} is {type(cache).__name__}, not a CachekitCache: it has no "
            "redis-py client")
    return cache.get_client(write=write)


def shared_client(settings: Settings, plain_key_form: tuple[str, str] = ("", "")) -> CacheClient:
    """One core client per configuration and process (Django makes a backend per thread)."""
    with _LOCK:
        client = _CLIENTS.get((settings, plain_key_form))
        if client is None:
            client = _CLIENTS[(settings, plain_key_form)] = CacheClient(
                settings, plain_key_form=plain_key_form)
        return client


def _keyed(name: str, doc: str) -> Callable[..., Any]:
    """A CachekitCache method forwarding to the core's ``name`` with the Django key."""
    def method(self: CachekitCache, key: Any, *args: Any, version: int | None = None,
               **kwargs: Any) -> Any:
        return getattr(self._client, name)(self._key(key, version), *args, **kwargs)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = doc
    return method


class _OnAsyncClient:
    """A CachekitCache whose ``_client`` is its async client: a method that only forwards
    to the core, run on it, returns the core's coroutine (see _async_twin)."""

    __slots__ = ("_cache", "_client")

    def __init__(self, cache: CachekitCache) -> None:
        self._cache = cache
        self._client = cache.async_client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cache, name)


def _async_twin(method: Callable[..., Any], pickling: bool = False,
                doc: str | None = None) -> Callable[..., Any]:
    """The async twin of a CachekitCache method that only translates its arguments and
    returns what the core client answers: the same translation, on the async client.
    ``pickling``: the sync method re-raises E020 as CacheSerializationError."""
    async def twin(self: CachekitCache, *args: Any, **kwargs: Any) -> Any:
        answer = method(_OnAsyncClient(self), *args, **kwargs)
        if not inspect.isawaitable(answer):
            return answer  # answered without asking the core (no keys given)
        if not pickling:
            return await answer
        with _pickling_errors():
            return await answer
    functools.update_wrapper(twin, method)
    twin.__name__ = twin.__qualname__ = "a" + method.__name__
    twin.__doc__ = doc or f"Async {method.__name__}."
    return twin


class CachekitCache(BaseCache):  # type: ignore[misc]
    """Django cache backend: ``BACKEND = "cachekit_web.django.CachekitCache"``."""

    def __init__(self, location: Any, params: dict[str, Any]) -> None:
        params = config.django_params(params)
        super().__init__(params)
        resolved = config.resolve(location, params)
        self._error = resolved.error
        self._close_connection = resolved.close_connection
        self._itersize = resolved.itersize
        self._reverse_key_func = resolved.reverse_key_func
        self._shared: CacheClient | None = None
        self._made: dict[str, str] = {}  # _memo: caller's key -> made key
        self._fulls: dict[str, str] = {}  # get_many: remembered key -> the core's full key
        self._made_for: tuple[Any, Any] | None = None  # the KEY_PREFIX and VERSION it is for
        if resolved.settings is None:
            return  # raised on first use; `manage.py check` reports it with its code
        self.settings = resolved.settings
        try:  # E042 for a URL redis-py cannot parse
            self._shared = shared_client(self.settings, self._plain_key_form())
        except ConfigurationError as exc:
            self._error = exc

    def __repr__(self) -> str:
        if self._shared is None:
            return f"<CachekitCache misconfigured: {self._error}>"
        return f"<CachekitCache {self._shared.describe()} namespace={self.settings.NAMESPACE!r}>"

    # -- plumbing ---------------------------------------------------------
    @property
    def configuration_error(self) -> ConfigurationError | None:
        """The settings error (E040/E041/E042/...) this cache was built with, if any."""
        return self._error

    @property
    def _client(self) -> CacheClient:
        if self._shared is None:
            assert self._error is not None
            raise self._error
        return self._shared

    @property
    def client(self) -> CacheClient:
        """The shared core client behind this cache."""
        return self._client

    @property
    def async_client(self) -> AsyncCacheClient:
        """The core async client sharing this cache's breaker, metrics and codec."""
        return AsyncCacheClient.twin(self._client)  # a pool per event loop, kept by the core

    def _plain_key_form(self) -> tuple[str, str]:
        """What Django's default key function puts around the caller's key (KEY_PREFIX and
        VERSION), so PLAIN_COUNTERS patterns match the caller's key; with a key function or
        key rules of one's own, they match the key those make."""
        if self.key_func is not default_key_func or self._own_key_rules() \
                or type(self).make_key is not BaseCache.make_key:
            return "", ""
        return re.escape(str(self.key_prefix)) + ":-?[0-9]+:", ""

    def _own_key_rules(self) -> bool:
        """Whether a subclass validates or makes-and-validates keys itself."""
        cls = type(self)
        return (cls.validate_key is not BaseCache.validate_key
                or cls.make_and_validate_key is not BaseCache.make_and_validate_key)

    def _key(self, key: Any, version: int | None) -> str:
        if self._own_key_rules():
            return str(self.make_and_validate_key(key, version=version))  # a subclass's rules
        made = self.make_key(key, version=version)
        # Django's memcached key scan only warns: skipped where it could not (see _made_keys).
        if type(made) is not str or len(made) > _MEMCACHE_SAFE or " " in made or \
                not made.isprintable():
            self.validate_key(made)
        return str(made)

    def _timeout(self, timeout: Any) -> float | None:
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        return None if timeout is None else float(timeout)

    def get_backend_timeout(self, timeout: Any = DEFAULT_TIMEOUT) -> float | None:
        """Seconds until expiry as sent to Redis: None forever, 0 for 'do not store'."""
        seconds = self._timeout(timeout)
        return None if seconds is None else max(0.0, seconds)

    # -- reads -------------------------------------------------------------
    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        """The cached value or ``default``."""
        return self._client.get(self._key(key, version), default)

    def _made_keys(self, keys: Iterable[Any], version: int | None) -> dict[str, Any]:
        """Made key -> caller's key. Django's memcached key scan (``validate_key``) runs
        only for keys it could warn about: a key of at most 250 printable characters
        without a space draws no warning, and the core enforces its own rules (E023)."""
        if self._own_key_rules():  # a subclass's own rules, for every key
            return {self._key(k, version): k for k in keys}
        make, validate = self.make_key, self.validate_key
        memo = self._memo(version)
        get = (_NO_MEMO if memo is None else memo).get
        by_key: dict[str, Any] = {}
        for k in keys:
            made = get(k) if type(k) is str else None
            if made is None:
                made = str(make(k, version=version))
                if len(made) > _MEMCACHE_SAFE or " " in made or not made.isprintable():
                    validate(made)  # Django's warning, every time (so never memoized)
                elif memo is not None and type(k) is str and len(memo) < _MEMO_SIZE:
                    memo[k] = made
            by_key[made] = k
        return by_key

    def _memo(self, version: int | None) -> dict[str, str] | None:
        """Caller's str key -> made key, for ``version``; None where a made key may not
        be a pure function of the key (a subclass's make_key, a custom KEY_FUNCTION, which
        may read per-request state such as a tenant). Emptied whenever KEY_PREFIX or
        VERSION change, and when it holds _MEMO_SIZE keys."""
        if (self.key_func is not default_key_func
                or type(self).make_key is not BaseCache.make_key
                or (version is not None and version != self.version)):
            return None
        state = (self.key_prefix, self.version)
        memo = self._made
        if self._made_for != state or len(memo) >= _MEMO_SIZE:
            memo = self._made = {}
            self._fulls = {}
            self._made_for = state
        return memo

    def get_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        """The found keys and their values (stored None kept)."""
        if self._own_key_rules() or self._memo(version) is None:
            by_key = self._made_keys(keys, version)
            return self._client.get_many_as(by_key) if by_key else {}
        # Remembered keys go straight to their full keys: one pass, no second lookup in
        # the core; from the first key not remembered on, the general path.
        get = self._fulls.get
        by_full: dict[str, Any] = {}
        rest = iter(keys)
        for k in rest:
            fk = get(k) if type(k) is str else None
            if fk is None:
                self._full_keys_of(by_full, itertools.chain((k,), rest), version)
                break
            by_full[fk] = k
        return self._client.get_many_full(by_full) if by_full else {}

    def _full_keys_of(self, by_full: dict[str, Any], keys: Iterable[Any],
                      version: int | None) -> None:
        """Add full key -> caller's key for ``keys`` to ``by_full`` (as _made_keys, then the
        core's key rules: E023), remembering the full keys of remembered made keys."""
        by_key = self._made_keys(keys, version)  # Django's warnings first, for every key
        full_key, made_memo, fulls = self._client.full_key, self._made, self._fulls
        for made, k in by_key.items():
            fk = full_key(made)
            by_full[fk] = k
            if type(k) is str and made_memo.get(k) == made and len(fulls) < _MEMO_SIZE:
                fulls[k] = fk

    def has_key(self, key: Any, version: int | None = None) -> bool:
        """Whether ``key`` holds a value."""
        return self._client.has_key(self._key(key, version))

    def ttl(self, key: Any, version: int | None = None) -> int | None:
        """Whole seconds left (rounded up), as django-redis: None if it never expires, 0 if
        it is missing (or Redis is down). pttl() has milliseconds."""
        left = self._client.ttl(self._key(key, version))
        return None if left is None else math.ceil(left)

    # -- writes ------------------------------------------------------------
    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT,
            version: int | None = None, nx: bool = False, xx: bool = False) -> bool:
        """Store ``value`` (timeout None = forever, <= 0 deletes); whether it was stored.

        ``nx=True``: only if absent; ``xx=True``: only if present (django-redis)."""
        k = self._key(key, version)
        with _pickling_errors():
            return self._client.set(k, value, self._timeout(timeout), nx=nx, xx=xx)

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT,
            version: int | None = None) -> bool:
        """Store ``value`` only if ``key`` is absent; True if it was."""
        k, seconds = self._key(key, version), self._timeout(timeout)
        with _pickling_errors():  # E020 for a value it could never store
            added = self._client.add(k, value, seconds)
        if not _stores_nothing(seconds):
            return added
        return self._client.available and not self._client.has_key(k)

    async def aadd(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT,
                   version: int | None = None) -> bool:
        """Async add."""
        k, seconds = self._key(key, version), self._timeout(timeout)
        with _pickling_errors():
            added = await self.async_client.add(k, value, seconds)
        if not _stores_nothing(seconds):
            return added
        return self.async_client.available and not await self.async_client.has_key(k)

    def set_many(self, data: Mapping[Any, Any], timeout: Any = DEFAULT_TIMEOUT,
                 version: int | None = None) -> list[Any]:
        """Store several values; returns the keys that could not be stored."""
        by_key = {self._key(k, version): k for k in data}
        with _pickling_errors():
            failed = self._client.set_many(_values(data, by_key), self._timeout(timeout)) \
                if by_key else []
        return [by_key[k] for k in failed]

    async def aset_many(self, data: Mapping[Any, Any], timeout: Any = DEFAULT_TIMEOUT,
                        version: int | None = None) -> list[Any]:
        """Async set_many."""
        by_key = {self._key(k, version): k for k in data}
        with _pickling_errors():
            failed = await self.async_client.set_many(_values(data, by_key),
                                                      self._timeout(timeout)) if by_key else []
        return [by_key[k] for k in failed]

    def delete(self, key: Any, version: int | None = None) -> bool | Deferred:
        """Delete ``key``: True if it existed, False if not, DEFERRED while Redis is unreachable."""
        return self._client.delete(self._key(key, version))

    def delete_many(self, keys: Iterable[Any], version: int | None = None) -> int | None:
        """Delete several keys; how many existed (None for no keys, as django-redis; 0 while
        Redis is down: the deletes are replayed once it answers)."""
        full = [self._key(k, version) for k in keys]
        return self._client.delete_many(full) if full else None

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        """Give ``key`` a new timeout; False if it is missing."""
        return self._client.touch(self._key(key, version), self._timeout(timeout))

    def incr(self, key: Any, delta: int = 1, version: int | None = None,
             ignore_key_check: bool = False) -> int:
        """Add ``delta`` atomically; ValueError if the key is missing (or the cache is down).

        ``ignore_key_check=True`` (django-redis) creates a missing key at ``delta``, living
        the cache's TIMEOUT."""
        k = self._key(key, version)
        with _integer_errors(key):
            value = self._client.incr(k, delta, ignore_key_check=ignore_key_check)
        return _found(key, value)

    async def aincr(self, key: Any, delta: int = 1, version: int | None = None,
                    ignore_key_check: bool = False) -> int:
        """Async incr."""
        k = self._key(key, version)
        with _integer_errors(key):
            value = await self.async_client.incr(k, delta, ignore_key_check=ignore_key_check)
        return _found(key, value)

    def decr(self, key: Any, delta: int = 1, version: int | None = None,
             ignore_key_check: bool = False) -> int:
        """Subtract ``delta`` atomically; see incr."""
        return self.incr(key, -delta, version, ignore_key_check)

    async def adecr(self, key: Any, delta: int = 1, version: int | None = None,
                    ignore_key_check: bool = False) -> int:
        """Async decr."""
        return await self.aincr(key, -delta, version, ignore_key_check)

    def incr_version(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Move ``key`` to version + delta, keeping its value and remaining lifetime."""
        old, new = self._moved_versions(version, delta)
        moved = self._client.move(self._key(key, old), self._key(key, new))
        return _found(key, new if moved else None)

    async def aincr_version(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Async incr_version."""
        old, new = self._moved_versions(version, delta)
        moved = await self.async_client.move(self._key(key, old), self._key(key, new))
        return _found(key, new if moved else None)

    def _moved_versions(self, version: int | None, delta: int) -> tuple[int, int]:
        old = self.version if version is None else version
        return old, old + delta

    def decr_version(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Move ``key`` to version - delta."""
        return self.incr_version(key, -delta, version)

    async def adecr_version(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Async decr_version."""
        return await self.aincr_version(key, -delta, version)

    def clear(self) -> None:
        """Delete every key of this cache (its namespace and key prefix), nothing else."""
        self._client.clear()

    def close(self, **kwargs: Any) -> None:
        """Django calls this after each request: the pool stays open, unless CLOSE_CONNECTION
        (django-redis's option or DJANGO_REDIS_CLOSE_CONNECTION) asks to release it."""
        if self._close_connection and self._shared is not None:
            self._shared.release_connections()

    @property
    def _ignore_exceptions(self) -> bool:
        """django-redis's flag, read-only: True unless STRICT (Redis errors become misses)."""
        return self._error is not None or not self.settings.STRICT

    @property
    def _log_ignored_exceptions(self) -> bool:
        """django-redis's flag, read-only: failures are always logged (once per LOG_INTERVAL)."""
        return True

    # -- django-redis API (translation: Django keys and versions; the core does the rest) ----
    def pttl(self, key: Any, version: int | None = None) -> int | None:
        """Milliseconds left: None if it never expires, 0 if missing (or Redis is down)."""
        return self._client.pttl(self._key(key, version))

    def expire(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
               ) -> bool:
        """Give ``key`` ``timeout`` seconds to live (the cache's TIMEOUT by default: None
        keeps it forever); False if missing (or Redis is down)."""
        k = self._key(key, version)
        if timeout is DEFAULT_TIMEOUT:
            seconds = self._timeout(timeout)
            return self._client.persist(k) if seconds is None else self._client.expire(
                k, seconds)
        return self._client.expire(k, timeout)

    def pexpire(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
                ) -> bool:
        """expire() in milliseconds (the cache's TIMEOUT by default)."""
        if timeout is DEFAULT_TIMEOUT:
            return self.expire(key, timeout, version)
        return self._client.pexpire(self._key(key, version), timeout)

    def expire_at(self, key: Any, when: datetime | float, version: int | None = None) -> bool:
        """Expire ``key`` at ``when`` (a datetime, or Unix seconds)."""
        return self._client.expire_at(self._key(key, version), when)

    def pexpire_at(self, key: Any, when: datetime | int, version: int | None = None) -> bool:
        """Expire ``key`` at ``when`` (a datetime, or Unix milliseconds)."""
        return self._client.pexpire_at(self._key(key, version), when)

    def persist(self, key: Any, version: int | None = None) -> bool:
        """Remove ``key``'s expiry; False if missing (or Redis is down)."""
        return self._client.persist(self._key(key, version))

    def make_pattern(self, pattern: str, version: int | None = None,
                     prefix: str | None = None) -> str:
        """The glob of ``pattern`` as a Django key: prefix and version matched literally."""
        prefix = self.key_prefix if prefix is None else prefix
        version = self.version if version is None else version
        return str(self.key_func(pattern, escape_glob(prefix), escape_glob(str(version))))

    def _reverse(self, full: str, version: int | None) -> str:
        # The Django key back from the stored one, when the key function is Django's own.
        if self._reverse_key_func is not None:
            return self._reverse_key_func(full)
        if self.key_func is not default_key_func:
            return full
        head = f"{self.key_prefix}:{self.version if version is None else version}:"
        return full[len(head):] if full.startswith(head) else full

    def iter_keys(self, search: str, itersize: int | None = None,
                  version: int | None = None) -> Iterator[str]:
        """This cache's keys of ``version`` matching the glob ``search`` (SCAN, lazily)."""
        for full in self._client.iter_keys(self.make_pattern(search, version),
                                           itersize or self._itersize):
            yield self._reverse(full, version)

    def keys(self, search: str, version: int | None = None) -> list[str]:
        """This cache's keys of ``version`` matching the glob ``search`` (SCAN)."""
        return list(self.iter_keys(search, version=version))

    def delete_pattern(self, pattern: str, version: int | None = None, prefix: str | None = None,
                       itersize: int | None = None) -> int:
        """Delete this cache's keys matching ``pattern``; how many. 0 while Redis is down
        (the namespace is then cleared once it answers)."""
        return self._client.delete_pattern(self.make_pattern(pattern, version, prefix),
                                           itersize or self._itersize)

    def lock(self, key: Any, version: int | None = None, timeout: float | None = None,
             sleep: float = 0.1, blocking: bool = True, blocking_timeout: float | None = None,
             thread_local: bool = True) -> CacheLock:
        """A distributed lock with redis-py's Lock semantics (``with cache.lock("name"):``)."""
        return self._client.lock(self._key(key, version), timeout, sleep, blocking,
                                 blocking_timeout, thread_local)

    def get_client(self, key: Any = None, write: bool = True) -> Any:
        """The redis-py client: raw commands, not namespaced, sealed or breaker-guarded."""
        return self._client.get_client(key, write)

    # sets, hashes and sorted sets: keys translated, everything else as the core takes it
    def _keys(self, keys: Iterable[Any], version: int | None) -> list[str]:
        return [self._key(k, version) for k in keys]

    sadd = _keyed("sadd", "Add members to a set; how many were new.")
    srem = _keyed("srem", "Remove members from a set; how many were there.")
    smembers = _keyed("smembers", "Every member of a set.")
    sismember = _keyed("sismember", "Whether ``member`` is in the set.")
    smismember = _keyed("smismember", "For each member, whether it is in the set.")
    scard = _keyed("scard", "How many members the set has.")
    spop = _keyed("spop", "Remove and return a random member (or a set of ``count``).")
    srandmember = _keyed("srandmember", "A random member (or a list of ``count``).")
    sscan = _keyed("sscan", "The set's members, read with SSCAN (``match`` filters them).")
    sscan_iter = _keyed("sscan_iter", "Yield the set's members with SSCAN.")
    hset = _keyed("hset", "Set a hash field (or ``mapping``); how many fields were new.")
    hget = _keyed("hget", "A hash field's value, or ``default``.")
    hmget = _keyed("hmget", "Several hash fields' values (None where absent).")
    hgetall = _keyed("hgetall", "The whole hash as a dict.")
    hdel = _keyed("hdel", "Delete hash fields; how many existed.")
    hlen = _keyed("hlen", "How many fields the hash has.")
    hkeys = _keyed("hkeys", "The hash's fields.")
    hexists = _keyed("hexists", "Whether the hash has ``field``.")
    zadd = _keyed("zadd", "Add members with scores; how many were added.")
    zrem = _keyed("zrem", "Remove members; how many were there.")
    zincrby = _keyed("zincrby", "Add ``amount`` to ``member``'s score; the new score.")
    zscore = _keyed("zscore", "``member``'s score, None if absent.")
    zmscore = _keyed("zmscore", "Scores of several members (None where absent).")
    zrank = _keyed("zrank", "``member``'s rank by ascending score, None if absent.")
    zrevrank = _keyed("zrevrank", "``member``'s rank by descending score, None if absent.")
    zcard = _keyed("zcard", "How many members the sorted set has.")
    zcount = _keyed("zcount", "How many members score within [min, max].")
    zrange = _keyed("zrange", "Members by rank (``withscores``: (member, score) pairs).")
    zrevrange = _keyed("zrevrange", "Members by descending rank.")
    zrangebyscore = _keyed("zrangebyscore", "Members scoring within [min, max], ascending.")
    zrevrangebyscore = _keyed("zrevrangebyscore", "Members scoring within [max, min], "
                              "descending.")
    zremrangebyscore = _keyed("zremrangebyscore", "Remove members scoring within [min, max].")
    zremrangebyrank = _keyed("zremrangebyrank", "Remove members ranked within [start, end].")
    zpopmin = _keyed("zpopmin", "Remove and return the lowest-scored (member, score).")
    zpopmax = _keyed("zpopmax", "Remove and return the highest-scored (member, score).")

    asadd, asrem, asmembers = _async_twin(sadd), _async_twin(srem), _async_twin(smembers)
    asismember, ascard = _async_twin(sismember), _async_twin(scard)
    ahset, ahget, ahgetall, ahdel = (_async_twin(hset), _async_twin(hget), _async_twin(hgetall),
                                     _async_twin(hdel))
    azadd, azincrby = _async_twin(zadd), _async_twin(zincrby)
    azrange, azscore = _async_twin(zrange), _async_twin(zscore)

    def sinter(self, *keys: Any, version: int | None = None) -> builtins.set[Any]:
        """The members every set has."""
        return self._client.sinter(*self._keys(keys, version))

    def sunion(self, *keys: Any, version: int | None = None) -> builtins.set[Any]:
        """The members any set has."""
        return self._client.sunion(*self._keys(keys, version))

    def sdiff(self, *keys: Any, version: int | None = None) -> builtins.set[Any]:
        """The first set's members that no other set has."""
        return self._client.sdiff(*self._keys(keys, version))

    def _store(self, command: str, dest: Any, keys: tuple[Any, ...], version: int | None,
               version_dest: int | None, version_keys: int | None) -> int:
        # django-redis's sdiffstore versions dest and keys apart; ``version`` is both's default
        dest_version = version if version_dest is None else version_dest
        keys_version = version if version_keys is None else version_keys
        return int(getattr(self._client, command)(self._key(dest, dest_version),
                                                  *self._keys(keys, keys_version)))

    def sinterstore(self, dest: Any, *keys: Any, version: int | None = None,
                    version_dest: int | None = None, version_keys: int | None = None) -> int:
        """Store sinter(*keys) in ``dest``; its size."""
        return self._store("sinterstore", dest, keys, version, version_dest, version_keys)

    def sunionstore(self, dest: Any, *keys: Any, version: int | None = None,
                    version_dest: int | None = None, version_keys: int | None = None) -> int:
        """Store sunion(*keys) in ``dest``; its size."""
        return self._store("sunionstore", dest, keys, version, version_dest, version_keys)

    def sdiffstore(self, dest: Any, *keys: Any, version: int | None = None,
                   version_dest: int | None = None, version_keys: int | None = None) -> int:
        """Store sdiff(*keys) in ``dest``; its size."""
        return self._store("sdiffstore", dest, keys, version, version_dest, version_keys)

    def smove(self, source: Any, destination: Any, member: Any,
              version: int | None = None) -> bool:
        """Move ``member`` from one set to another; False if it was not in ``source``."""
        return self._client.smove(self._key(source, version), self._key(destination, version),
                                  member)

    # -- compute once ------------------------------------------------------
    def get_or_set(self, key: Any, default: Any, timeout: Any = DEFAULT_TIMEOUT,
                   version: int | None = None) -> Any:
        """The cached value, or ``default`` (called if callable) stored once across callers."""
        compute = default if callable(default) else (lambda: default)
        k = self._key(key, version)
        with _pickling_errors():
            return self._client.get_or_set(k, compute, self._timeout(timeout))

    def fetch(self, key: Any, compute: Callable[[], Any], timeout: Any = DEFAULT_TIMEOUT, *,
              stale_ttl: float | None = None, should_cache: Callable[[Any], bool] | None = None,
              accept: Callable[[Any], bool] | None = None, force: bool = False,
              version: int | None = None, local: bool | None = None) -> Result[Any]:
        """Like get_or_set, also saying hit / miss / stale / bypass (see the core's fetch)."""
        k = self._remembered_key(key, version)
        with _pickling_errors():
            return self._client.fetch(k, compute, self._timeout(timeout), stale_ttl, should_cache,
                                      force=force, accept=accept, local=local)

    def local_hit(self, key: Any, accept: Callable[[Any], bool] | None = None, *,
                  version: int | None = None, local: bool | None = None) -> Entry | None:
        """A fresh value's entry from the in-process tier (a hit), else None (ask ``fetch``)."""
        return self._client.local_hit(self._remembered_key(key, version), accept, local=local)

    def _remembered_key(self, key: Any, version: int | None) -> str:
        """``_key``, remembered as ``_made_keys`` remembers (page keys repeat)."""
        memo = self._memo(version) if type(key) is str else None
        made = None if memo is None else memo.get(key)
        if made is None:
            made = self._key(key, version)
            if memo is not None and len(memo) < _MEMO_SIZE and not self._own_key_rules() \
                    and len(made) <= _MEMCACHE_SAFE and " " not in made and made.isprintable():
                memo[key] = made  # as _made_keys: a key Django warns about never is
        return made

    def health(self) -> HealthReport:
        """The core health report for this cache."""
        return self._client.health()

    # -- async twins of the methods that only forward (native, on the core async client) ---
    aget, aget_many, ahas_key = _async_twin(get), _async_twin(get_many), _async_twin(has_key)
    aset = _async_twin(set, pickling=True)
    adelete, adelete_many = _async_twin(delete), _async_twin(delete_many)
    atouch = _async_twin(touch)
    aget_or_set = _async_twin(get_or_set, pickling=True, doc="Async get_or_set; ``default`` "
                              "may be a value, a function or a coroutine function.")
    afetch = _async_twin(fetch, pickling=True)
    apttl, apersist = _async_twin(pttl), _async_twin(persist)
    aexpire = _async_twin(expire)

    async def aclear(self) -> None:
        """Async clear (Django's answers nothing: not a twin, which returns the core's)."""
        await self.async_client.clear()

    async def aclose(self, **kwargs: Any) -> None:
        """Nothing to release per request."""


def _stores_nothing(seconds: float | None) -> bool:
    # A timeout <= 0 stores nothing, but Django's add answers whether it could have.
    return seconds is not None and seconds <= 0


def _values(data: Mapping[Any, Any], by_key: Mapping[str, Any]) -> dict[str, Any]:
    """set_many's values by made key (``by_key``: made key -> caller's key)."""
    return {k: data[original] for k, original in by_key.items()}


def _found(key: Any, value: int | None) -> int:
    """incr's and incr_version's answer: ValueError, as Django's, for a missing key."""
    if value is None:
        raise ValueError(f"Key '{key}' not found")
    return value


@contextlib.contextmanager
def _integer_errors(key: Any) -> Iterator[None]:
    """The core's ValueError for a value that is not an integer is Django's TypeError."""
    try:
        yield
    except ValueError as exc:
        raise TypeError(f"cached value for {key!r} is not an integer") from exc


class _pickling_errors:
    """Re-raise E020 as CacheSerializationError, which Django code catches as PickleError."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, SerializationError) and not isinstance(exc, CacheSerializationError):
            raise CacheSerializationError(exc.message, code=exc.code) from exc


def reset_clients() -> None:
    """Close and forget every shared client (tests, and code that reloads settings)."""
    with _LOCK:
        clients = list(_CLIENTS.values())
        _CLIENTS.clear()
    for client in clients:
        client.close()
