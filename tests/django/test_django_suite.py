"""Django's own cache test suite (BaseCacheTests) against CachekitCache, encrypted and signed.

The suite is read from the installed Django's source distribution, fetched with
pip into a cache directory at test time (never copied into this repository).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import django
import pytest

from cachekit_web.embedded import EmbeddedRedis

REPO = Path(__file__).resolve().parents[2]
CACHE_DIR = Path(os.environ.get("CACHEKIT_DJANGO_TESTS_CACHE",
                                REPO / ".venv" / ".cache" / "django-tests"))


def django_tests_dir() -> Path:
    """tests/ of the installed Django's sdist (tests/cache and its imports), fetched once."""
    version = django.get_version()
    target = CACHE_DIR / version
    if (target / "tests" / "cache" / "tests.py").exists():
        return target / "tests"
    target.mkdir(parents=True, exist_ok=True)
    download = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
         "--disable-pip-version-check", "-q", "-d", str(target), f"django=={version}"],
        capture_output=True, text=True, timeout=300,
    )
    archives = list(target.glob("[dD]jango-*.tar.gz"))
    if download.returncode != 0 or not archives:
        pytest.skip(f"cannot download Django {version}'s sdist: {download.stderr[-300:]}")
    prefix = f"{archives[0].name[:-len('.tar.gz')]}/tests/cache/"
    with tarfile.open(archives[0]) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix) and m.isfile()]
        for m in members:
            m.name = "tests/cache/" + m.name[len(prefix):]
        try:
            tar.extractall(target, members=members, filter="data")
        except TypeError:  # Python without extraction filters (< 3.10.12)
            tar.extractall(target, members=members)
    return target / "tests"


@pytest.mark.slow
def test_django_cache_suite_passes_encrypted_and_signed(redis_server: EmbeddedRedis) -> None:
    tests_dir = django_tests_dir()
    procs = {
        mode: subprocess.Popen(
            [sys.executable, "-m", "tests.django.cache_suite.run", str(tests_dir),
             redis_server.url, mode],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
        )
        for mode in ("encrypted", "signed")
    }
    for mode, proc in procs.items():
        out, err = proc.communicate(timeout=240)
        match = re.search(r"SUITE-RESULT mode=(\w+) ran=(\d+) failures=(\d+) errors=(\d+) "
                          r"skipped=(\d+)", out)
        assert match, f"{mode}: no summary\n{out[-2000:]}\n{err[-4000:]}"
        ran, failures, errors, skipped = (int(g) for g in match.groups()[1:])
        print(match.group(0))
        assert proc.returncode == 0, f"{mode}: {failures} failures, {errors} errors\n{err[-6000:]}"
        # 54 BaseCacheTests in Django 5.2 plus our mode check; only the 3 cull tests skip.
        assert ran >= 50 and failures == 0 and errors == 0, match.group(0)
        assert skipped <= 3, f"{mode}: unexpected skips\n{err[-3000:]}"


def test_harness_exit_status_reports_failures(redis_server: EmbeddedRedis) -> None:
    tests_dir = django_tests_dir()
    proc = subprocess.run(
        [sys.executable, "-m", "tests.django.cache_suite.run", str(tests_dir), redis_server.url,
         "selftest", "tests.django.cache_suite.suite.HarnessSelfTest"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
    assert "SUITE-RESULT mode=selftest ran=1 failures=1 errors=0" in proc.stdout
