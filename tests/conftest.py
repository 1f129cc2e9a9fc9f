"""Test harness: a throwaway redis-server per session, never any other Redis."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator

import pytest
import redis

from cachekit_web.embedded import EmbeddedRedis
from tests.leaks import cachekit_threads, settle

# The suite must not read the developer's CACHEKIT_* or REDIS_URL environment.
for _name in list(os.environ):
    if _name.startswith("CACHEKIT_") or _name == "REDIS_URL":
        del os.environ[_name]
# Deferred invalidations are spooled to files: keep this run's apart from any other's.
os.environ["CACHEKIT_SPOOL_DIR"] = tempfile.mkdtemp(prefix="cachekit-test-spool-")


_SHARED: list[EmbeddedRedis] = []  # the session's server, once started

# What may still be alive after a test module: a few threads and connections of clients
# a later module's fixtures still hold. Anything more is a leak, and fails the run.
MAX_THREADS = int(os.environ.get("LEAK_MAX", 4))
MAX_CONNECTIONS = int(os.environ.get("LEAK_MAX", 4))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    """A redis-server shared by the session's tests; each test uses its own namespace."""
    with EmbeddedRedis() as server:
        _SHARED.append(server)
        yield server
        _SHARED.clear()


def _connections(raw: redis.Redis) -> dict[int, str]:
    """The shared server's client connections but ``raw``'s own: id -> what it last ran."""
    me = raw.client_id()
    return {int(c["id"]): f"id={c['id']} age={c['age']} cmd={c['cmd']}"
            for c in raw.client_list() if int(c["id"]) != me}


def _threads() -> dict[int, str]:
    return {t.ident or 0: t.name for t in threading.enumerate()
            if t.name.startswith("cachekit-")}


def _server() -> redis.Redis | None:
    return redis.Redis.from_url(_SHARED[0].url) if _SHARED else None


_LAST_MODULE: list[str] = []  # the module that ran before, for the message
_SEEN_THREADS: set[int] = set()
_SEEN_CONNECTIONS: set[int] = set()


def _leaks() -> str | None:
    """What is left beyond the bounds once garbage is collected (None: nothing), naming what
    appeared since the last check."""
    raw = _server()
    try:
        def tidy() -> bool:
            return len(cachekit_threads()) <= MAX_THREADS and (
                raw is None or len(_connections(raw)) <= MAX_CONNECTIONS)

        if settle(tidy, 10.0):
            found = None
        else:
            threads = _threads()
            conns = _connections(raw) if raw is not None else {}
            new_threads = [n for i, n in threads.items() if i not in _SEEN_THREADS]
            new_conns = [c for i, c in conns.items() if i not in _SEEN_CONNECTIONS]
            found = (f"{len(threads)} cachekit threads and {len(conns)} connections to the "
                     f"suite's server are alive (at most {MAX_THREADS} and "
                     f"{MAX_CONNECTIONS}); new since the last check: threads {new_threads}, "
                     f"connections {new_conns[:20]}")
        _SEEN_THREADS.update(_threads())
        if raw is not None:
            _SEEN_CONNECTIONS.update(_connections(raw))
        return found
    finally:
        if raw is not None:
            raw.close()


@pytest.fixture(autouse=True)
def no_leaks_between_modules(request: pytest.FixtureRequest) -> None:
    """Fails the first test of a module when the modules before it left cachekit threads or
    connections to the session's server piling up: every test closes (or drops) what it
    opened. Checked as a module starts (the test before no longer holds its fixtures); the
    last module is checked at the end of the session."""
    module = request.module.__name__
    if _LAST_MODULE[:1] == [module]:
        return
    found = _leaks() if _LAST_MODULE else None
    before = _LAST_MODULE[:]
    _LAST_MODULE[:] = [module]
    if found:
        pytest.fail(f"left behind by {before[0]} or earlier: {found}", pytrace=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The last module's leaks fail the run too."""
    if _LAST_MODULE and (found := _leaks()):
        session.config.get_terminal_writer().line(
            f"\nleft behind by {_LAST_MODULE[0]} or earlier: {found}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture()
def redis_url(redis_server: EmbeddedRedis) -> str:
    """URL of the shared test server."""
    return redis_server.url


@pytest.fixture()
def namespace(request: pytest.FixtureRequest) -> str:
    """A namespace unique to the test, so tests never see each other's keys."""
    return "t-" + "".join(c if c.isalnum() else "-" for c in request.node.name)[:80]


@pytest.fixture()
def own_redis() -> Iterator[EmbeddedRedis]:
    """A private redis-server for a fault test to kill, pause or restart."""
    server = EmbeddedRedis().start()
    try:
        yield server
    finally:
        server.stop()
