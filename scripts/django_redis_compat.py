"""Run django-redis 6.0.0's own tests against ``cachekit_web.django.CachekitCache``.

Their test files are not part of this repository: the sdist is downloaded (once,
cached under ``.venv/.cache``) and three of its test files (test_backend.py,
test_cache_options.py, test_session.py) are run from a temporary directory, with a
conftest and Django settings of our own that put ``CachekitCache`` where their
settings name ``django_redis.cache.RedisCache``, on a private redis-server (a free
loopback port). Their ``django_redis`` package is only imported (the tests name its
classes), never used as the cache. Each mode is one pytest process:

    python scripts/django_redis_compat.py                 # both modes: counts + failing names
    python scripts/django_redis_compat.py --mode plain    # signed values (SECRET_KEY)
    python scripts/django_redis_compat.py --mode encrypted
    python scripts/django_redis_compat.py --offline       # only use an sdist already cached
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

VERSION = "6.0.0"
SDIST = f"django_redis-{VERSION}.tar.gz"
FILES = ("test_backend.py", "test_cache_options.py", "test_session.py")
SUPPORT = ("__init__.py", "settings_wrapper.py")
MODES = ("plain", "encrypted")
ROOT = Path(__file__).resolve().parent.parent
MASTER_KEY = bytes(range(7, 39)).hex()  # fixed, for a run whose values die with its server

# Their conftest parametrizes every test over twelve django-redis settings modules and
# asks for a Redis on 6379; this one gives one settings module, "cachekit", that reads
# the server and the mode from the environment.
CONFTEST = '''
import os
import sys
from pathlib import Path

import pytest

from tests.settings_wrapper import SettingsWrapper

for _name in list(os.environ):
    if _name.startswith("CACHEKIT_"):  # the developer's settings are not the suite's
        del os.environ[_name]
os.environ.pop("REDIS_URL", None)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.cachekit")  # a test run alone


def pytest_configure(config):
    sys.path.insert(0, str(Path(__file__).absolute().parent))


@pytest.fixture()
def settings():
    wrapper = SettingsWrapper()
    yield wrapper
    wrapper.finalize()


@pytest.fixture()
def cache(cache_settings):
    from django import setup

    os.environ["DJANGO_SETTINGS_MODULE"] = f"settings.{cache_settings}"
    setup()

    from django.core.cache import cache as default_cache

    yield default_cache
    default_cache.clear()


@pytest.fixture()
def mocker():
    from pytest_mock import MockerFixture

    fixture = MockerFixture()
    yield fixture
    fixture.stopall()


def pytest_generate_tests(metafunc):
    if "cache" in metafunc.fixturenames or "session" in metafunc.fixturenames:
        metafunc.parametrize("cache_settings", ["cachekit"])
'''

# pytest-mock is not one of our test dependencies: the two calls their tests make.
PYTEST_MOCK = '''
from unittest import mock


class _Patch:
    def __init__(self, stack):
        self._stack = stack

    def object(self, target, attribute, *args, **kwargs):
        patcher = mock.patch.object(target, attribute, *args, **kwargs)
        self._stack.append(patcher)
        return patcher.start()


class MockerFixture:
    def __init__(self):
        self._patchers = []
        self.patch = _Patch(self._patchers)

    def stopall(self):
        for patcher in reversed(self._patchers):
            patcher.stop()
        del self._patchers[:]
'''

SETTINGS = '''
import os

_URL = os.environ["DJR_COMPAT_URL"]
_DEAD = os.environ["DJR_COMPAT_DEAD_URL"]
_OPTIONS = {"NAMESPACE": "djr"}
if os.environ.get("DJR_COMPAT_MODE") == "encrypted":
    _OPTIONS["MASTER_KEY"] = "@KEY@"


def _cache(url, namespace, **extra):
    return {"BACKEND": "cachekit_web.django.CachekitCache", "LOCATION": url,
            "OPTIONS": {**_OPTIONS, "NAMESPACE": namespace}, **extra}


SECRET_KEY = "django_tests_secret_key"
CACHES = {
    "default": _cache(_URL, "djr"),
    "doesnotexist": _cache(_DEAD, "djr-dead"),
    "sample": _cache(_URL, "djr-sample"),
    "with_prefix": _cache(_URL, "djr", KEY_PREFIX="test-prefix"),
}
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
]
USE_TZ = False
'''.replace("@KEY@", MASTER_KEY)


def sdist(offline: bool = False) -> Path | None:
    """Their sdist, downloaded with pip unless cached (None if it cannot be had)."""
    return fetch_sdist(f"django-redis=={VERSION}", SDIST, offline)


def prepare(archive: Path, workdir: Path) -> Path:
    """Extract their tests and package into ``workdir`` beside our conftest and settings."""
    tests = workdir / "tests"
    (tests / "settings").mkdir(parents=True)
    top = f"django_redis-{VERSION}/"
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            name = member.name[len(top):] if member.name.startswith(top) else ""
            wanted = name.startswith("django_redis/") or (
                name.startswith("tests/") and name[len("tests/"):] in FILES + SUPPORT)
            if member.isfile() and wanted:
                source = tar.extractfile(member)
                assert source is not None
                (workdir / name).parent.mkdir(parents=True, exist_ok=True)
                (workdir / name).write_bytes(source.read())
    (tests / "conftest.py").write_text(CONFTEST)
    (tests / "settings" / "__init__.py").write_text("")
    (workdir / "pytest_mock.py").write_text(PYTEST_MOCK)
    (tests / "settings" / "cachekit.py").write_text(SETTINGS)
    # a hung test fails alone instead of stalling the run
    (workdir / "pytest.ini").write_text("[pytest]\ntimeout = 30\n")
    return tests


def run(archive: Path, mode: str, extra: list[str] | None = None,
        timeout: float = 900, show: bool = False) -> Outcome:
    """Run the three files against CachekitCache in one mode; the outcome per test."""
    from cachekit_web.embedded import EmbeddedRedis, free_port

    with tempfile.TemporaryDirectory(prefix="djr-compat-") as tmp, EmbeddedRedis() as server:
        work = Path(tmp)
        tests = prepare(archive, work)
        report = work / "report.xml"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CACHEKIT_")}
        env.update(PYTHONPATH=os.pathsep.join([str(work), str(ROOT)]),
                   DJR_COMPAT_URL=server.url, DJR_COMPAT_MODE=mode,
                   DJR_COMPAT_DEAD_URL=f"redis://127.0.0.1:{free_port()}/0")
        env.pop("DJANGO_SETTINGS_MODULE", None)
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "-p", "no:randomly", "-p", "no:xdist", "-p", "no:pytest_mock",
             "-c", str(work / "pytest.ini"),
             "--rootdir", str(work), f"--junitxml={report}", *(extra or []),
             *(str(tests / f) for f in FILES)],
            cwd=work, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        if show:
            print(done.stdout[-20000:], done.stderr[-5000:], sep="\n")
        return parse(report)


def parse(report: Path) -> Outcome:
    """Per-test outcomes from a junit XML report."""
    outcome = Outcome()
    if not report.is_file():
        outcome.failed.append("<the suite did not run>")
        return outcome
    for case in ET.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").split(".")
        file = next((part for part in module if part.startswith("test_")), module[-1])
        cls = module[-1] if module[-1] != file else ""
        test = (case.get("name") or "").replace("[cachekit]", "")
        name = "::".join(p for p in (file, cls, test) if p)
        if case.find("failure") is not None or case.find("error") is not None:
            outcome.failed.append(name)
        elif case.find("skipped") is not None:
            outcome.skipped.append(name)
        else:
            outcome.passed.append(name)
    return outcome


def main(argv: list[str] | None = None) -> int:
    """Command line: run the suite per mode, print the counts and the failing tests."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--offline", action="store_true", help="never download the sdist")
    parser.add_argument("--mode", choices=MODES, action="append",
                        help="plain (signed) or encrypted; both when not given")
    parser.add_argument("--show", action="store_true", help="print pytest's own output")
    parser.add_argument("pytest_args", nargs="*", help="passed on to pytest (after --)")
    args = parser.parse_args(argv)
    from cachekit_web.embedded import stop_on_signals

    stop_on_signals()  # SIGTERM too stops the private redis-server on the way out
    archive = sdist(offline=args.offline)
    if archive is None:
        print(f"django-redis {VERSION} sdist not available", file=sys.stderr)
        return 2
    for mode in args.mode or MODES:
        outcome = run(archive, mode, args.pytest_args, show=args.show)
        print(f"{mode}: {outcome.summary()}")
        for name in outcome.failed:
            print(f"  FAILED {name}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
