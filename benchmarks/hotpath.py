"""The hot-path goals: small get, get_many(100) and view hits against the usual contenders.

Every contender of one goal runs interleaved in the same measurement (harness.measure),
and each goal is reported as the median of per-repeat time ratios against its reference.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgpack
import redis

from .contenders import MASTER_KEY, TTL, configure_django
from .harness import Batch, Config, Stat, Table, fmt_spread, fmt_us, measure, small_value

COLUMNS = ("goal", "contender", "us/op", "spread", "time vs ref", "goal met")
TIER_FLASK = "cachekit Flask @cached, in-process tier"
FLASK_ROWS = ("the view uncached (Flask's request handling, session opened)",
              "Flask-Caching @cached (RedisCache)", "cachekit Flask @cached, network path (signed)",
              TIER_FLASK)
SECRET_KEY = "benchmark-secret-key-not-a-secret-0123456789abcdef"
_PAGE = "<!doctype html><html><body>" + "".join(
    f"<p class='row-{i % 2}'>Product {i}: {i * 37 % 1000} EUR</p>" for i in range(110)
) + "</body></html>"


def time_ratio(ref: Stat, stat: Stat) -> float:
    """Median over repeats of (contender time / reference time): <1 is faster than the ref."""
    return statistics.median(s / r for r, s in zip(ref.samples, stat.samples, strict=True))


def floor_us(url: str, requests: int = 20000) -> float | None:
    """One client's GET of a 300-byte value by redis-benchmark, in us; None when absent."""
    tool = shutil.which("redis-benchmark")
    if tool is None:
        return None
    parts = urlsplit(url)
    try:
        out = subprocess.run(
            [tool, "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379),
             "-c", "1", "-n", str(requests), "-d", "300", "-t", "get", "-q"],
            capture_output=True, text=True, timeout=120, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"GET: ([0-9.]+) requests per second", out.replace("\r", "\n"))
    return 1e6 / float(found.group(1)) if found else None


# -- contenders -------------------------------------------------------------------------
class _RawMsgpack:
    """redis-py + msgpack, no key handling and no sealing: the reference for the data path."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)

    def get(self, key: str) -> Any:
        raw = self.client.get("rawmp:" + key)
        return None if raw is None else msgpack.unpackb(raw)

    def set(self, key: str, value: Any) -> None:
        self.client.set("rawmp:" + key, msgpack.packb(value), ex=TTL)

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        raws = self.client.mget(["rawmp:" + k for k in keys])
        return {k: msgpack.unpackb(r) for k, r in zip(keys, raws, strict=True) if r is not None}

    def close(self) -> None:
        self.client.close()


class _SealedFloor:
    """The raw reference plus AES-GCM: redis-py's MGET of cachekit's own encrypted frames
    (full keys worked out once, as raw's prefix), each opened and unpacked, nothing else
    (no key rules, expiry or shape checks, metrics or breaker): raw redis-py's cost of
    reading values sealed one by one."""

    def __init__(self, url: str, cache: Any) -> None:
        from cachekit_web.core.data.codec import _BODY, HEADER2_SIZE

        self.client = redis.Redis.from_url(url)
        self.core = cache.client  # the Django backend's core client
        self.head, self.body = HEADER2_SIZE, _BODY
        self.cache = cache
        decrypt = self.core.codec.keyring.current_decrypt()
        if decrypt is None:
            raise AssertionError("the sealed floor needs an encrypting cache")
        self.decrypt = decrypt
        self.full: dict[str, str] = {}

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        fks = [self.full.get(k) or self._full(k) for k in keys]
        frames = self.client.mget(fks)
        head, body, decrypt, unpackb = self.head, self.body, self.decrypt, msgpack.unpackb
        return {k: unpackb(decrypt(f[head:body], f[body:], f[:head] + fk.encode()))
                for k, fk, f in zip(keys, fks, frames, strict=True) if f is not None}

    def _full(self, key: str) -> str:
        fk = self.full[key] = self.core.full_key(self.cache.make_key(key))
        return fk

    def close(self) -> None:
        self.client.close()


def _django_caches(url: str) -> dict[str, Any]:
    """The Django caches compared: ours (encrypted / SECRET_KEY-signed), Django's, django-redis."""
    configure_django(url)
    from django.core.cache import caches

    return {name: caches[name] for name in ("cachekit", "cachekit-signed", "redis", "django-redis")}


def _getter(get: Callable[[str], Any], keys: Sequence[str]) -> Batch:
    count = len(keys)

    def run(n: int) -> None:
        for i in range(n):
            get(keys[i % count])

    return run


def _manyer(get_many: Callable[[Sequence[str]], Any], keys: Sequence[str]) -> Batch:
    def run(n: int) -> None:
        for _ in range(n):
            get_many(keys)

    return run


# -- views ------------------------------------------------------------------------------
def _environ(path: str) -> dict[str, Any]:
    return {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
            "SERVER_NAME": "testserver", "SERVER_PORT": "80", "HTTP_HOST": "testserver",
            "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""), "wsgi.errors": io.StringIO(),
            "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
            "wsgi.version": (1, 0)}


def _wsgi_hit(app: Any, path: str) -> Batch:
    base = _environ(path)

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        if not status.startswith("200"):
            raise AssertionError(f"{path}: {status}")

    def run(n: int) -> None:
        for _ in range(n):
            result = app(dict(base), start_response)
            b"".join(result)
            close = getattr(result, "close", None)
            if close is not None:
                close()

    return run


def _flask_apps(url: str) -> dict[str, Batch]:
    """The Flask contenders, each a WSGI app serving /page: the view uncached, Flask-Caching's
    ``@cached`` on its RedisCache, ours on the network path and ours with the in-process tier
    (in FLASK_ROWS' order), filled and the tier live."""
    from flask import Flask
    from flask_caching import Cache as FlaskCaching

    from cachekit_web.flask import Cache

    theirs = Flask("bench-flask-caching")
    theirs.config.update(SECRET_KEY=SECRET_KEY, CACHE_TYPE="RedisCache", CACHE_REDIS_URL=url,
                         CACHE_KEY_PREFIX="bench-fc:")
    fc = FlaskCaching(theirs)

    @theirs.route("/page")
    @fc.cached(timeout=TTL)
    def their_page() -> str:
        return _PAGE

    def cachekit_app(name: str, **config: Any) -> tuple[Any, Any]:
        app = Flask(name)
        app.config.update(SECRET_KEY=SECRET_KEY, CACHEKIT_REDIS_URL=url,
                          CACHEKIT_NAMESPACE=name, **config)
        cache = Cache(app)

        @app.route("/page")
        @cache.cached(timeout=TTL)
        def page() -> str:
            return _PAGE

        return app, cache

    ours, _ = cachekit_app(f"bench-flask-{os.getpid()}")
    tiered, ckl = cachekit_app(f"bench-flask-local-{os.getpid()}", CACHEKIT_LOCAL_CACHE=True)

    bare = Flask("bench-flask-bare")  # the same page, no cache: Flask's own request cost
    bare.config.update(SECRET_KEY=SECRET_KEY)

    @bare.route("/page")
    def bare_page() -> str:
        return _PAGE

    batches = dict(zip(FLASK_ROWS, (_wsgi_hit(bare.wsgi_app, "/page"),
                                    _wsgi_hit(theirs.wsgi_app, "/page"),
                                    _wsgi_hit(ours.wsgi_app, "/page"),
                                    _wsgi_hit(tiered.wsgi_app, "/page")), strict=True))
    for batch in batches.values():
        batch(2)  # fill
    _tier_live(ckl.client)
    batches[TIER_FLASK](2)  # now kept in memory
    if ckl.client.metrics.totals["local_hits"] < 1:
        raise AssertionError("the Flask tier view did not hit the in-process tier")
    return batches


# The Flask view rows, measured in a child process where hiredis cannot be imported: a
# default install (redis-py's own parser for every contender, as without `pip install
# hiredis`). sys.modules["hiredis"] = None before anything imports redis makes
# `import hiredis` raise ImportError, which is how redis-py (and the tier) find it absent.
_FLASK_CHILD = ("import sys; sys.modules['hiredis'] = None; "
                "from benchmarks.hotpath import flask_child; flask_child()")


def flask_child(argv: Sequence[str] | None = None) -> None:
    """In the child: time the Flask contenders interleaved, print their samples as JSON."""
    url, repeats, scale = argv or sys.argv[1:4]
    import redis.utils

    cfg = Config(repeats=int(repeats), scale=float(scale))
    got = measure(_flask_apps(url), cfg.n(600), cfg.repeats)
    print(json.dumps({"hiredis": bool(redis.utils.HIREDIS_AVAILABLE),
                      "samples": {name: list(stat.samples) for name, stat in got.items()}}))


def _flask_default_install(url: str, cfg: Config) -> tuple[bool, dict[str, Stat]]:
    """The Flask contenders timed in a child process with hiredis blocked."""
    root = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", _FLASK_CHILD, url, str(cfg.repeats),
                          str(cfg.scale)], capture_output=True, text=True, check=False,
                         cwd=root, env={**os.environ, "PYTHONPATH": root}, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"the Flask benchmark child failed:\n{out.stderr[-2000:]}")
    report = json.loads(out.stdout.strip().splitlines()[-1])
    return report["hiredis"], {k: Stat(tuple(v)) for k, v in report["samples"].items()}


def _flask_view_rows(table: Table, url: str, cfg: Config) -> None:
    """Issue 20's Flask goals: a tier hit <= 1.25x the view uncached (default install, and
    with hiredis when it is installed); a network-path hit <= 0.9x Flask-Caching's."""
    hiredis_in_child, child = _flask_default_install(url, cfg)
    runs = [("default install (hiredis blocked)" if not hiredis_in_child
             else "hiredis NOT blocked", child)]
    try:
        import hiredis  # noqa: F401
    except ImportError:
        pass
    else:
        runs.append(("with hiredis", measure(_flask_apps(url), cfg.n(600), cfg.repeats)))
    bare, theirs, ours, tier = FLASK_ROWS
    for install, got in runs:
        goal = f"Flask view hit (4 KB, WSGI), {install}"
        _row(table, goal, bare, got[bare], None, None)
        _row(table, goal, f"{tier} (vs the view uncached)", got[tier], got[bare], 1.25)
        _row(table, goal, theirs, got[theirs], None, None)
        _row(table, goal, f"{ours} (vs Flask-Caching)", got[ours], got[theirs], 0.9)
        _row(table, goal, f"{tier} (vs Flask-Caching)", got[tier], got[theirs], None)


def _tier_live(client: Any, timeout: float = 5.0) -> None:
    """Wait until the client's in-process tier holds its lease (hits are served from it)."""
    client.get("tier-warmup")  # starts the tier
    end = time.monotonic() + timeout
    # Not `tier and tier.live`: a tier holding no entries is falsy (it has a __len__).
    while not getattr(client._local, "live", False) and time.monotonic() < end:
        time.sleep(0.005)
    if not getattr(client._local, "live", False):
        raise AssertionError("the in-process tier did not start")


def _django_wsgi(url: str, cfg: Config, hiredis: bool) -> tuple[bool, dict[str, Stat]]:
    """The Django view contenders through WSGIHandler, in a child process (django_wsgi):
    without hiredis (``hiredis=False``) the child is a default install."""
    import json
    import sys

    cmd = [sys.executable, "-m", "benchmarks.django_wsgi", url, str(cfg.repeats),
           str(cfg.n(600))]
    if not hiredis:
        cmd.append("--no-hiredis")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False,
                          cwd=str(Path(__file__).resolve().parent.parent))
    if done.returncode != 0:
        raise AssertionError(f"the Django WSGI child failed:\n{done.stderr[-4000:]}")
    got = json.loads(done.stdout.strip().splitlines()[-1])
    if got["tier_hits"] < got["tier_requests"]:  # the tier row must time tier hits only
        raise AssertionError(f"the in-process tier answered {got['tier_hits']} of "
                             f"{got['tier_requests']} requests")
    return got["hiredis"], {k: Stat(tuple(v)) for k, v in got["samples"].items()}


def _django_view_rows(table: Table, url: str, cfg: Config) -> None:
    """Issue 20's Django rows: uncached view, Django's cache_page, ours (network, tier);
    a default install (no hiredis) first, then with hiredis."""
    from .django_wsgi import OURS, THEIRS, TIER, UNCACHED

    for want in (False, True):
        hiredis, got = _django_wsgi(url, cfg, want)
        if hiredis != want:
            raise AssertionError(f"the child's hiredis is {hiredis}, wanted {want}")
        goal = f"Django view hit (4 KB, WSGI), {'with hiredis' if want else 'no hiredis'}"
        _row(table, goal, UNCACHED, got[UNCACHED], None, None)
        _row(table, goal, TIER, got[TIER], got[UNCACHED], 1.25 if not want else None)
        _row(table, goal, THEIRS, got[THEIRS], None, None)
        _row(table, goal, OURS, got[OURS], got[THEIRS], 0.4)


# -- the section --------------------------------------------------------------------------
def _row(table: Table, goal: str, name: str, stat: Stat, ref: Stat | None,
         limit: float | None) -> str:
    ratio = time_ratio(ref, stat) if ref is not None else None
    met = "" if ratio is None or limit is None else ("yes" if ratio <= limit else "NO")
    table.add(goal, name, fmt_us(stat.median), fmt_spread(stat),
              "ref" if ratio is None else f"{ratio:.2f}", met if limit is None else
              f"{met} (<= {limit})")
    return met


def run_hotpath(url: str, cfg: Config) -> Table:
    """The issue's goals in one run: each contender interleaved with its reference."""
    from .contenders import Cachekit

    table = Table(f"hot-path goals (median of {cfg.repeats} interleaved repeats; 'time vs ref' "
                  "is the median per-repeat ratio of times: <1 is faster)", COLUMNS)
    before = floor_us(url)
    value = small_value()
    raw = _RawMsgpack(url)
    enc = Cachekit(url, "encrypted")
    sig = Cachekit(url, "signed")
    dj = _django_caches(url)
    try:
        keys = [f"hot:{i}" for i in range(64)]
        for k in keys:
            raw.set(k, value)
            enc.set(k, value)
            sig.set(k, value)
            dj["django-redis"].set(k, value)
        got = measure({"raw": _getter(raw.get, keys), "enc": _getter(enc.get, keys),
                       "sig": _getter(sig.get, keys),
                       "djr": _getter(dj["django-redis"].get, keys)},
                      cfg.n(2000), cfg.repeats)
        goal = "get small (300 B)"
        _row(table, goal, "raw redis-py + msgpack", got["raw"], None, None)
        _row(table, goal, "cachekit encrypted", got["enc"], got["raw"], 1.0)
        _row(table, goal, "cachekit signed", got["sig"], got["raw"], None)
        _row(table, goal, "django-redis", got["djr"], got["raw"], None)

        many = [f"many:{i}" for i in range(100)]
        for k in many:
            raw.set(k, value)
        for name in ("cachekit", "redis", "django-redis"):
            dj[name].set_many(dict.fromkeys(many, value))
            if len(dj[name].get_many(many)) != 100:
                raise AssertionError(f"{name}: get_many lost values")
        floor = _SealedFloor(url, dj["cachekit"])
        if floor.get_many(many) != dj["cachekit"].get_many(many):
            raise AssertionError("the sealed floor reads other values")
        got = measure({"raw": _manyer(raw.get_many, many),
                       "floor": _manyer(floor.get_many, many),
                       "ck": _manyer(dj["cachekit"].get_many, many),
                       "dj": _manyer(dj["redis"].get_many, many),
                       "djr": _manyer(dj["django-redis"].get_many, many)},
                      cfg.n(200), cfg.repeats)
        goal = "get_many(100) small"
        _row(table, goal, "raw redis-py + msgpack", got["raw"], None, None)
        _row(table, goal, "cachekit Django (encrypted)", got["ck"], got["raw"], 1.3)
        _row(table, goal, "raw redis-py + msgpack + AES-GCM open per value", got["floor"],
             got["raw"], None)
        floor.close()
        _row(table, goal, "django RedisCache", got["dj"], got["raw"], None)
        _row(table, goal, "django-redis", got["djr"], got["raw"], None)
        faster = "yes" if got["ck"].median < got["djr"].median else "NO"
        table.add(goal, "cachekit vs django-redis", "", "",
                  f"{time_ratio(got['djr'], got['ck']):.2f}", f"{faster} (< 1)")

        _flask_view_rows(table, url, cfg)
        _django_view_rows(table, url, cfg)
    finally:
        raw.close()
        enc.close()
        sig.close()
    after = floor_us(url)
    if before is not None and after is not None:
        table.add("floor: redis-benchmark GET 300 B, 1 client", "(before / after the run)",
                  f"{fmt_us(before * 1e-6)} / {fmt_us(after * 1e-6)}", "", "", "")
    else:
        table.add("floor", "redis-benchmark not on PATH", "", "", "", "")
    return table


__all__ = ["MASTER_KEY", "run_hotpath", "time_ratio"]
