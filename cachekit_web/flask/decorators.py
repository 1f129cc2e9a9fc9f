"""Flask-Caching's decorators on the core client: ``cached``, ``memoize`` and their deletes.

Each call of a decorated function is planned once (``_Call``: context, state, view, key,
bypass, accept); the sync and the async wrapper run that plan and differ only in ``await``.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from flask import Flask, current_app, has_request_context, url_for
from flask.globals import _cv_app, _cv_request

from ..core.client import AsyncCacheClient, CacheClient, Result
from ..core.errors import InvalidKeyError
from ..core.web import cookie_key_parts, is_page, normalized_query, view_cache_key
from .config import core_timeout
from .keys import canonical
from .request import base_url, bypass_reason, bypass_status, endpoint_of, is_dispatched
from .responses import acceptor, finish, package, page_hit, storable, thaw

if TYPE_CHECKING:
    from .extension import State

DEFAULT_VIEW_PREFIX = "view/%s"
_KEYS_PER_VIEW = 1024  # remembered view keys per cached view
_KEY_FACTS = 2048  # longest host, root, path, query and cookie (total) whose key is remembered

HashMethod = Callable[..., Any]


def _wants_args(fn: Callable[..., Any]) -> bool:
    try:
        return bool(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return False


def _says_yes(fn: Callable[..., Any] | None, /, *args: Any, **kwargs: Any) -> bool:
    """Flask-Caching's ``unless`` and ``forced_update``: called with the call's arguments
    if they take any, and only ``True`` counts."""
    if not callable(fn):
        return False
    return (fn(*args, **kwargs) if _wants_args(fn) else fn()) is True


def _takes_extra(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` takes more than the one value (is_stale may also take the call's args)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    return len(params) > 1 or any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params)


def _staleness(is_stale: Callable[..., Any] | None, args: tuple[Any, ...],
               kwargs: dict[str, Any]) -> Callable[[Any], bool] | None:
    """Flask-Caching's ``is_stale(value[, *args, **kwargs])`` as the core's ``refresh``."""
    if not callable(is_stale):
        return None
    if _takes_extra(is_stale):
        return lambda value: is_stale(thaw(value), *args, **kwargs) is True
    return lambda value: is_stale(thaw(value)) is True


def _source_hash(f: Callable[..., Any], hash_method: HashMethod) -> str:
    try:
        source = inspect.getsource(f)
    except (OSError, TypeError):
        source = getattr(getattr(f, "__code__", None), "co_code", b"").hex()
    return str(hash_method(source.encode("utf-8")).hexdigest())[:16]


@dataclass(kw_only=True, slots=True)
class _Options:
    """What one ``@cached`` or ``@memoize`` was given that each of its calls uses."""

    response_filter: Callable[[Any], Any] | None
    cache_none: bool
    forced_update: Callable[..., Any] | None
    stale_ttl: float | None
    is_stale: Callable[..., Any] | None
    local: bool | None
    vary_cookies: tuple[str, ...] = ()
    hit_indication: bool = False
    memory: bool = False  # fresh hits may come from the in-process tier first
    package_uncached: bool = False  # memoize delivers an uncached call packaged
    wrapper: Any = None  # the decorated function's wrapper, once made


class _Call:
    """One call of a decorated function, planned before the cache is asked.

    ``state`` None: ``unless`` said to run the function as if undecorated. ``key`` None
    (after ``prepare``): run it uncached, reporting ``status``/``detail``. ``names``: the
    version tokens a memoize key still needs (read by ``prepare``).
    """

    __slots__ = ("args", "asked_tier", "detail", "key", "kwargs", "make_key", "names",
                 "options", "ran", "state", "status", "timeout", "view")

    def __init__(self, options: _Options, args: tuple[Any, ...], kwargs: dict[str, Any],
                 state: State | None = None, view: bool = False) -> None:
        self.options, self.args, self.kwargs = options, args, kwargs
        self.state, self.view = state, view
        self.key: str | None = None
        self.status: str = "bypass"
        self.detail: str | None = None
        self.names: list[str] | None = None
        self.make_key: Callable[[list[str]], str] | None = None
        self.timeout: Any = None
        self.ran = False
        self.asked_tier = False  # the in-process tier was asked (no fresh page) or is unwanted

    # -- the steps that touch Redis: the only sync/async twins ----------------
    def prepare(self) -> _Call:
        """Read the version tokens the key needs, if any (None: the cache is unavailable)."""
        if self.names is not None and self.state is not None:
            self._versioned(self.state.client.versions(self.names))
        return self

    async def aprepare(self) -> _Call:
        """``prepare`` on the async client."""
        if self.names is not None and self.state is not None:
            self._versioned(await self.state.async_client.versions(self.names))
        return self

    def fetch(self, compute: Callable[[], Any]) -> Result[Any]:
        """The core's fetch for the planned key (or a fresh hit from the in-process tier)."""
        client, fetching = self._fetching(False)
        return self._memory_hit(client, fetching) or client.fetch(self.key, compute, **fetching)

    async def afetch(self, compute: Callable[[], Any]) -> Result[Any]:
        """``fetch`` on the async client."""
        client, fetching = self._fetching(True)
        return self._memory_hit(client, fetching) or \
            await client.fetch(self.key, compute, **fetching)

    # -- the rest is the same for both ------------------------------------------
    def _versioned(self, versions: list[str] | None) -> None:
        if versions is not None and self.make_key is not None:
            self.key = self.make_key(versions)

    def _fetching(self, is_async: bool) -> tuple[Any, dict[str, Any]]:
        """The client and the core's fetch arguments, worked out when the cache is asked."""
        assert self.state is not None and self.key is not None
        opts, args, kwargs = self.options, self.args, self.kwargs
        client = self.state.async_client if is_async else self.state.client
        forced = _says_yes(opts.forced_update, *args, **kwargs)
        self.timeout = core_timeout(opts.wrapper.cache_timeout)
        return client, {
            "timeout": self.timeout, "stale_ttl": opts.stale_ttl, "should_cache": storable,
            "force": forced, "accept": acceptor(self.view, self.authenticated),
            "refresh": _staleness(opts.is_stale, args, kwargs), "local": opts.local}

    def _memory_hit(self, client: CacheClient | AsyncCacheClient,
                    fetching: dict[str, Any]) -> Result[Any] | None:
        """A fresh hit from the in-process tier (no refresh machinery needed), or None."""
        opts = self.options
        if not opts.memory or fetching["force"] or opts.is_stale is not None or self.asked_tier:
            return None
        assert self.key is not None
        entry = client.local_hit(self.key, fetching["accept"], local=opts.local)
        return None if entry is None else Result(entry.value, "hit")

    @property
    def authenticated(self) -> bool:
        """Whether the cache authenticates what it reads (pages are only served if so)."""
        assert self.state is not None
        return self.state.client.authenticated

    def package(self, rv: Any) -> Any:
        """What a fresh return value is stored as (this call computed it)."""
        self.ran = True
        opts = self.options
        return package(rv, self.view, opts.response_filter, opts.cache_none, opts.vary_cookies,
                       self.authenticated)

    async def apackage(self, rv: Any) -> Any:
        """``package`` for an awaitable return value."""
        return self.package(await rv)

    def uncached(self, rv: Any) -> Any:
        """Deliver the return value of a call the cache stayed out of."""
        if self.state is None:
            return rv
        if self.options.package_uncached:
            rv = self.package(rv)
        return finish(rv, self.status, self.detail, self.view, False, self.state)

    def deliver(self, result: Result[Any]) -> Any:
        """Deliver what the cache answered."""
        assert self.state is not None
        return finish(result.value, result.status, None, self.view,
                      self.options.hit_indication, self.state, timeout=self.timeout,
                      ran=self.ran)


def _wrap(f: Callable[..., Any], plan: Callable[..., _Call], options: _Options,
          quick: Callable[..., Any] | None = None) -> Any:
    """The wrapper of ``f`` that runs ``plan``'s calls (async if ``f`` is). ``quick``, when
    given, goes first: a response (a hit from the in-process tier), the call planned
    already, or None (plan it)."""
    if inspect.iscoroutinefunction(f):
        async def awrapper(*args: Any, **kwargs: Any) -> Any:
            found = None if quick is None else quick(args, kwargs)
            if found is not None and not isinstance(found, _Call):
                return found
            call = found or await plan(args, kwargs).aprepare()
            if call.key is None:
                return call.uncached(await f(*args, **kwargs))
            return call.deliver(await call.afetch(lambda: call.apackage(f(*args, **kwargs))))
        wrapper: Any = awrapper
    else:
        def swrapper(*args: Any, **kwargs: Any) -> Any:
            found = None if quick is None else quick(args, kwargs)
            if found is not None and not isinstance(found, _Call):
                return found
            call = found or plan(args, kwargs).prepare()
            if call.key is None:
                return call.uncached(f(*args, **kwargs))
            return call.deliver(call.fetch(lambda: call.package(f(*args, **kwargs))))
        wrapper = swrapper
    functools.update_wrapper(wrapper, f)
    wrapper.uncached = f
    options.wrapper = wrapper
    return wrapper


class _RequestKeys:
    """How one ``@cached`` function keys its calls: the request (method, URL, query and
    the cookies it varies on) for a view key prefix with ``%s``, else the prefix."""

    def __init__(self, cache: CacheDecorators, f: Callable[..., Any],
                 key_prefix: str | Callable[[], str], include_query: bool,
                 vary_cookies: tuple[str, ...], source_check: bool | None,
                 hash_method: HashMethod, options: _Options) -> None:
        self.cache, self.f, self.key_prefix = cache, f, key_prefix
        self.fname = f"{f.__module__}.{f.__qualname__}"
        self.include_query, self.vary_cookies = include_query, vary_cookies
        self.source_check, self.hash_method = source_check, hash_method
        self.options = options
        self.templated = not callable(key_prefix) and "%s" in key_prefix
        self.own_prefix = self.templated and key_prefix != DEFAULT_VIEW_PREFIX
        self.source: str | None = None  # the source hash, computed on first use
        # The request facts a view key is made of -> the key (bounded: facts come from
        # the client; a full table starts over).
        self.known: dict[tuple[Any, ...], str] = {}
        self.default = self.make_cache_key  # one bound method, to recognise it on the wrapper

    def make_cache_key(self, *args: Any, path: str | None = None, query_args: Any = None,
                       **values: Any) -> str:
        """The key for the current request, or for ``path`` (default: url_for the
        view with ``values``) and ``query_args`` (str, mapping or pairs) outside one."""
        if not self.templated or (path is None and query_args is None
                                  and has_request_context()):
            return self.request_key()
        if path is None:
            endpoint = endpoint_of(self.options.wrapper)
            if endpoint is None:
                raise RuntimeError(f"{self.fname} is not a registered view: pass path=")
            path = url_for(endpoint, _external=False, **values)
        if query_args is not None and not isinstance(query_args, str):
            query_args = urlencode(
                list(query_args.items()) if isinstance(query_args, Mapping)
                else list(query_args), doseq=True)
        with current_app.test_request_context(path, query_string=query_args):
            return self.request_key()

    def request_key(self, ctx: Any = None, view: bool | None = None,
                    state: State | None = None) -> str:
        """The key of the request of ``ctx`` (default: the current one)."""
        check = self.source_check
        if check is None:
            check = (state or self.cache._state()).options.SOURCE_CHECK
        if callable(self.key_prefix):
            key = str(self.key_prefix())
        elif self.templated:
            if ctx is None:
                ctx = _cv_request.get(None)
                if ctx is None:
                    raise RuntimeError("a view's cache key needs a request: use it inside "
                                       "app.test_request_context(path)")
            key = self._remembered(ctx, view)
        else:
            key = self.key_prefix
        if check:
            if self.source is None:
                self.source = _source_hash(self.f, self.hash_method)
            key += ":src" + self.source
        return key

    def _remembered(self, ctx: Any, view: bool | None) -> str:
        req = ctx.request
        if view is None:
            view = is_dispatched(self.options.wrapper, ctx)
        environ = req.environ
        facts = (view, req.method, environ.get("wsgi.url_scheme"), req.host,
                 environ.get("SCRIPT_NAME"), environ.get("PATH_INFO"),
                 environ.get("QUERY_STRING") if self.include_query else None,
                 environ.get("HTTP_COOKIE") if self.vary_cookies else None)
        found = self.known.get(facts)
        if found is None:
            found = self._view_key(req, view)
            if len(self.known) >= _KEYS_PER_VIEW:
                self.known.clear()
            if sum(len(f) for f in facts[3:] if isinstance(f, str)) <= _KEY_FACTS:
                self.known[facts] = found
        return found

    def _view_key(self, req: Any, view: bool) -> str:
        """The key of a view's page for request ``req``."""
        url = base_url(req)
        raw_query = req.environ.get("QUERY_STRING") if self.include_query else ""
        if raw_query:  # an empty query string needs no parsing
            query = normalized_query(raw_query)
            if query:
                url += "?" + query
        prefix = self.key_prefix % req.path if self.own_prefix else ""
        if not view:
            prefix = f"{prefix}|{self.fname}" if prefix else self.fname
        context = (cookie_key_parts(req.cookies, self.vary_cookies) if self.vary_cookies
                   else ())
        return view_cache_key(url, method=req.method, prefix=prefix, context=context)


class _Memo:
    """How one memoized function turns its arguments into keys."""

    def __init__(self, cache: CacheDecorators, f: Callable[..., Any],
                 make_name: Callable[[str], str] | None, hash_method: HashMethod,
                 source_check: bool | None, ignore: frozenset[str]) -> None:
        self.cache = cache
        self.f = f
        self.signature = inspect.signature(f)
        params = list(self.signature.parameters)
        self.first = params[0] if params else None
        self.kind = self.first if self.first in ("self", "cls") else None
        name = f"{f.__module__}.{f.__qualname__}"
        self.fname = make_name(name) if make_name else name
        self.hash_method = hash_method
        self.source_check = source_check
        self.ignore = ignore
        self.function_version_key = f"memver:{self.fname}"

    def _hash(self, value: Any) -> str:
        return str(self.hash_method(repr(value).encode("utf-8")).hexdigest())

    def instance_version_key(self, instance: Any) -> str | None:
        """The version token name of one instance's results (None: not per instance)."""
        if self.kind != "self" or "self" in self.ignore:
            return None
        ident = canonical(instance, f"'self' of {self.fname}")
        return f"{self.function_version_key}:{self._hash(ident)[:24]}"

    def parts(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[list[str], str]:
        """(the names of the version tokens the key is built from, digest of the arguments)."""
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        items: list[Any] = []
        instance_key = None
        for name, value in bound.arguments.items():
            if name in self.ignore:
                continue
            if self.kind == "self" and name == self.first:
                instance_key = self.instance_version_key(value)
                continue
            items.append((name, canonical(value, f"argument {name!r} of {self.fname}")))
        check = self.cache._state().options.SOURCE_CHECK if self.source_check is None \
            else self.source_check
        if check:
            items.append(("__source__", _source_hash(self.f, self.hash_method)))
        names = [self.function_version_key]
        if instance_key is not None:
            names.append(instance_key)
        return names, self._hash(items)

    def key(self, versions: list[str], digest: str) -> str:
        """The key of the arguments of ``digest`` under version tokens ``versions``."""
        return f"memo:{self.fname}:{'.'.join(versions)}:{digest}"

    def make_cache_key(self, f: Any, /, *args: Any, **kwargs: Any) -> str | None:
        """The key for these arguments (None when the cache is unavailable); ``f`` is
        Flask-Caching's (the function), positional so the arguments may use its name."""
        names, digest = self.parts(args, kwargs)
        versions = self.cache._state().client.versions(names)
        return None if versions is None else self.key(versions, digest)


class CacheDecorators:
    """The decorators of ``Cache`` (which supplies the per-app state)."""

    app: Flask | None

    def _state(self) -> State:
        raise NotImplementedError

    # -- cached ------------------------------------------------------------------
    def cached(
        self,
        timeout: float | None = None,
        key_prefix: str | Callable[[], str] = DEFAULT_VIEW_PREFIX,
        unless: Callable[..., Any] | None = None,
        forced_update: Callable[..., Any] | None = None,
        response_filter: Callable[[Any], Any] | None = None,
        query_string: bool | None = None,
        hash_method: HashMethod = hashlib.sha256,
        cache_none: bool = False,
        make_cache_key: Callable[..., str] | None = None,
        source_check: bool | None = None,
        response_hit_indication: bool = False,
        stale_ttl: float | None = None,
        vary_on_cookies: Iterable[str] = (),
        is_stale: Callable[..., Any] | None = None,
        local: bool | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Cache a view (by method + full URL + query string) or a function (by key_prefix).

        A view that reads a cookie is not stored unless the cookie is named in
        ``vary_on_cookies``, whose values are then part of the key. ``is_stale(value)``
        (or ``(value, *args, **kwargs)``), asked on hits, recomputes when it returns True.
        ``local=True`` serves hits from the in-process tier (see LOCAL_CACHE), ``False``
        never; None follows the cache.
        """
        vary_cookies = tuple(vary_on_cookies)

        def decorator(f: Callable[..., Any]) -> Callable[..., Any]:
            options = _Options(response_filter=response_filter, cache_none=cache_none,
                               forced_update=forced_update, stale_ttl=stale_ttl,
                               is_stale=is_stale, local=local, vary_cookies=vary_cookies,
                               hit_indication=response_hit_indication, memory=True)
            keys = _RequestKeys(self, f, key_prefix, query_string is not False, vary_cookies,
                                source_check, hash_method, options)

            def plan(args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Call:
                if _says_yes(unless, f, *args, **kwargs):
                    return _Call(options, args, kwargs)
                ctx = _cv_request.get(None)
                state = self._state()
                view = ctx is not None and is_dispatched(wrapper, ctx)
                call = _Call(options, args, kwargs, state, view)
                reason = bypass_reason(ctx, call.authenticated, view)
                if reason is not None:
                    call.status, call.detail = bypass_status(reason)
                elif make_cache_key is not None:
                    call.key = make_cache_key(*args, **kwargs)
                elif wrapper.make_cache_key is keys.default:
                    call.key = keys.request_key(ctx, view, state)  # arguments never name the path
                else:
                    call.key = wrapper.make_cache_key(*args, **kwargs)
                return call

            def view_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
                """For the view serving this request, with what ``plan`` would check
                (authenticated, dispatch, bypass) passing: the response for a fresh page in
                the in-process tier, else the call planned with its key. None: plan it."""
                ctx = _cv_request.get(None)
                if ctx is None or wrapper.make_cache_key is not keys.default:
                    return None
                state = self._state()
                client = state.client
                if not (client.authenticated and is_dispatched(wrapper, ctx)
                        and bypass_reason(ctx, True, True) is None):
                    return None
                key = keys.request_key(ctx, True, state)
                tier = client.wants_tier(local)
                if tier:
                    entry = client.local_hit(key, is_page, local=local)
                    if entry is not None:
                        return page_hit(entry.value, wrapper.cache_timeout, state, ctx.app)
                call = _Call(options, args, kwargs, state, True)
                call.key, call.asked_tier = key, True  # asked above, or not wanted
                return call

            # Anything that runs per call or changes a hit's response takes the planned path.
            simple = (unless is None and forced_update is None and is_stale is None
                      and make_cache_key is None and not response_hit_indication)
            wrapper = _wrap(f, plan, options, view_call if simple else None)
            wrapper.cache_timeout = timeout
            wrapper.make_cache_key = keys.default
            return wrapper  # type: ignore[no-any-return]

        return decorator

    def delete_cached(self, f: Callable[..., Any], path: str | None = None,
                      query_args: Any = None, **values: Any) -> bool:
        """Delete what ``@cached`` stored for ``path`` (default: url_for the view with
        ``values``) and ``query_args``; True if there was an entry (or the delete is owed)."""
        key = f.make_cache_key(path=path, query_args=query_args, **values)  # type: ignore[attr-defined]
        return self._state().client.delete(key) is not False

    # -- memoize -----------------------------------------------------------------
    def memoize(
        self,
        timeout: float | None = None,
        make_name: Callable[[str], str] | None = None,
        unless: Callable[..., Any] | None = None,
        forced_update: Callable[..., Any] | None = None,
        response_filter: Callable[[Any], Any] | None = None,
        hash_method: HashMethod = hashlib.sha256,
        cache_none: bool = False,
        source_check: bool | None = None,
        args_to_ignore: Iterable[str] | None = None,
        stale_ttl: float | None = None,
        is_stale: Callable[..., Any] | None = None,
        local: bool | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Cache a function's result per arguments; works on methods and async functions.

        ``is_stale`` as for :meth:`cached`. Arguments that cannot be keyed stably (E023)
        raise in strict mode, debug or testing; otherwise the call runs uncached."""
        ignore = frozenset(args_to_ignore or ())

        def decorator(f: Callable[..., Any]) -> Callable[..., Any]:
            memo = _Memo(self, f, make_name, hash_method, source_check, ignore)
            options = _Options(response_filter=response_filter, cache_none=cache_none,
                               forced_update=forced_update, stale_ttl=stale_ttl,
                               is_stale=is_stale, local=local, package_uncached=True)

            def plan(args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Call:
                if _says_yes(unless, f, *args, **kwargs):
                    return _Call(options, args, kwargs)
                call = _Call(options, args, kwargs, self._state())
                try:
                    call.names, digest = memo.parts(args, kwargs)
                except InvalidKeyError as exc:  # only the arguments may be unkeyable
                    self._unkeyable(call.state, exc)
                    return call
                call.make_key = lambda versions: memo.key(versions, digest)
                return call

            wrapper = _wrap(f, plan, options)
            wrapper.cache_timeout = timeout
            wrapper.make_cache_key = memo.make_cache_key
            wrapper.delete_memoized = lambda: self.delete_memoized(wrapper)
            wrapper._cachekit_memo = memo
            return wrapper  # type: ignore[no-any-return]

        return decorator

    def _unkeyable(self, state: State | None, exc: InvalidKeyError) -> None:
        """E023 from a call's arguments: raise while developing, else let it run uncached."""
        if exc.code != "E023" or state is None:
            raise exc
        # Outside an app context (Cache(app) bound it), the bound app decides, as inside.
        ctx = _cv_app.get(None)
        app: Any = ctx.app if ctx is not None else self.app
        state.client.unkeyable(exc, strict=app is not None and bool(app.debug or app.testing))

    def _memo_of(self, f: Any) -> tuple[_Memo, Any]:
        target = getattr(f, "__func__", f)
        bound_to = getattr(f, "__self__", None)
        memo = getattr(target, "_cachekit_memo", None)
        if not isinstance(memo, _Memo):
            raise TypeError(f"{f!r} is not a function memoized by this cache; pass the "
                            "decorated function (deleting by name is not supported)")
        return memo, bound_to

    def delete_memoized(self, f: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Forget memoized results: all of them, one instance's, or those for given arguments."""
        memo, bound_to = self._memo_of(f)
        if args or kwargs:
            if isinstance(bound_to, type) and memo.kind == "cls":
                if not (args and isinstance(args[0], type)):
                    raise ValueError(f"delete_memoized on the classmethod {memo.fname} with "
                                     "arguments takes the class first: (f, cls, *args)")
            elif bound_to is not None and not (args and args[0] is bound_to):
                args = (bound_to, *args)  # a bound method supplies its own instance
            key = memo.make_cache_key(memo.f, *args, **kwargs)
            if key is not None:
                self._state().client.delete(key)
            return
        self._drop_version(memo, bound_to)

    def delete_memoized_verhash(self, f: Callable[..., Any], *args: Any) -> None:
        """Drop the version token of a memoized function (or of one instance, if bound)."""
        memo, bound_to = self._memo_of(f)
        self._drop_version(memo, bound_to)

    def _drop_version(self, memo: _Memo, bound_to: Any) -> None:
        client = self._state().client
        if bound_to is not None and not isinstance(bound_to, type) and memo.kind == "self":
            name = memo.instance_version_key(bound_to)
            if name is not None:
                client.bump_version(name)
                return
        client.bump_version(memo.function_version_key)
