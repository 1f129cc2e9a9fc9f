"""Run Flask-Caching 2.5.1's own tests against ``cachekit_web.flask.Cache``.

Their test files are not part of this repository: the sdist is downloaded (once,
cached under ``.venv/.cache``) and its tests are run from a temporary directory,
with a conftest and a ``flask_caching`` stand-in of our own that put
``cachekit_web.flask`` in Flask-Caching's place, on a private redis-server.

    python scripts/flask_caching_compat.py            # prints "N passed, M failed" + names
    python scripts/flask_caching_compat.py --offline  # only use an sdist already cached
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compat_common import Outcome, fetch_sdist

VERSION = "2.5.1"
SDIST = f"flask_caching-{VERSION}.tar.gz"
FILES = ("test_view.py", "test_memoize.py", "test_templates.py", "test_cache.py")
ROOT = Path(__file__).resolve().parent.parent

# Their conftest uses cachelib's clock and an xprocess-run Redis on port 6360; this one
# gives the same fixtures over cachekit-web: a private redis-server, a namespace per
# test, and a settable clock: the client's sealed expiries read it, and advancing it
# takes as much off every TTL on the private server (counters are plain Redis integers
# with no sealed expiry, so only the server's TTL ends them).
CONFTEST = '''
import hashlib
import itertools
import os
import re
import time as _real_time

import flask
import pytest
import redis

import cachekit_web.core.engine as _engine
from cachekit_web.embedded import EmbeddedRedis

for _name in list(os.environ):
    if _name.startswith("CACHEKIT_") or _name == "REDIS_URL":
        del os.environ[_name]


class _Clock:
    def __init__(self):
        self.now = 1_700_000_000.0
        self.url = None

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds
        if self.url is None:
            return
        step = int(seconds * 1000)
        with redis.Redis.from_url(self.url) as server:
            for key in server.scan_iter(count=1000):
                left = server.pttl(key)
                if left > 0:
                    if left > step:
                        server.pexpire(key, left - step)
                    else:
                        server.delete(key)


_CLOCK = _Clock()


class _Time:
    """The ``time`` module as the cache client sees it: wall time from the test clock."""

    def __getattr__(self, name):
        return getattr(_real_time, name)

    def time(self):
        return _CLOCK()


_engine.time = _Time()
_serial = itertools.count()


@pytest.fixture(scope="session")
def _server():
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture
def redis_server(_server):
    return _server


@pytest.fixture
def clock(_server):
    _CLOCK.url = _server.url
    return _CLOCK


@pytest.fixture
def app(request, _server, clock):
    clock.now = 1_700_000_000.0
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", request.node.name)[:60]
    app = flask.Flask(request.module.__name__, template_folder=os.path.dirname(__file__))
    app.testing = True
    app.config.update(SECRET_KEY="compat-suite-secret", CACHEKIT_REDIS_URL=_server.url,
                      CACHEKIT_NAMESPACE=f"fc{next(_serial)}-{name}")
    return app


@pytest.fixture
def cache(app):
    from flask_caching import Cache

    return Cache(app)


@pytest.fixture(params=[hashlib.sha1, hashlib.sha224, hashlib.sha256, hashlib.sha384,
                        hashlib.sha512, hashlib.md5],
                ids=["sha1", "sha224", "sha256", "sha384", "sha512", "md5"])
def hash_method(request):
    return request.param
'''

# What their tests import from flask_caching, answered by cachekit_web.flask.
STAND_IN = '''
import hashlib

from cachekit_web.flask import Cache, CachedResponse, make_template_fragment_key

SUPPORTED_HASH_FUNCTIONS = [hashlib.sha1, hashlib.sha224, hashlib.sha256, hashlib.sha384,
                            hashlib.sha512, hashlib.md5]


def function_namespace(f, args=None):
    raise NotImplementedError("cachekit-web has no function_namespace (see docs/flask.md)")
'''


def sdist(offline: bool = False) -> Path | None:
    """Their sdist, downloaded with pip unless cached (None if it cannot be had)."""
    return fetch_sdist(f"flask-caching=={VERSION}", SDIST, offline)


def prepare(archive: Path, workdir: Path) -> Path:
    """Extract their tests (and templates) into ``workdir`` beside our conftest and stand-in."""
    tests = workdir / "tests"
    tests.mkdir(parents=True)
    prefix = f"flask_caching-{VERSION}/tests/"
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            name = member.name[len(prefix):] if member.name.startswith(prefix) else ""
            if member.isfile() and "/" not in name and (
                    name in FILES or name.endswith(".html")):
                source = tar.extractfile(member)
                assert source is not None
                (tests / name).write_bytes(source.read())
    (tests / "conftest.py").write_text(CONFTEST)
    (workdir / "flask_caching").mkdir()
    (workdir / "flask_caching" / "__init__.py").write_text(STAND_IN)
    (workdir / "pytest.ini").write_text("[pytest]\n")
    return tests


def run(archive: Path, extra: list[str] | None = None, timeout: float = 600) -> Outcome:
    """Run the four files against cachekit_web and collect the outcome per test."""
    with tempfile.TemporaryDirectory(prefix="fc-compat-") as tmp:
        work = Path(tmp)
        tests = prepare(archive, work)
        report = work / "report.xml"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(work), str(ROOT)]))
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "-c", str(work / "pytest.ini"), "--rootdir", str(work),
             f"--junitxml={report}", *(extra or []), *(str(tests / f) for f in FILES)],
            cwd=work, env=env, capture_output=True, timeout=timeout, check=False)
        return parse(report)


def parse(report: Path) -> Outcome:
    """Per-test outcomes from a junit XML report."""
    outcome = Outcome()
    if not report.is_file():
        outcome.failed.append("<the suite did not run>")
        return outcome
    for case in ET.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[-1]
        name = f"{module}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            outcome.failed.append(name)
        elif case.find("skipped") is not None:
            outcome.skipped.append(name)
        else:
            outcome.passed.append(name)
    return outcome


def main(argv: list[str] | None = None) -> int:
    """Command line: run the suite, print the counts and the failing tests."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offline", action="store_true", help="never download the sdist")
    parser.add_argument("pytest_args", nargs="*", help="passed on to pytest (after --)")
    args = parser.parse_args(argv)
    archive = sdist(offline=args.offline)
    if archive is None:
        print(f"flask-caching {VERSION} sdist not available", file=sys.stderr)
        return 2
    outcome = run(archive, args.pytest_args)
    print(outcome.summary())
    for name in outcome.failed:
        print(f"FAILED {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
