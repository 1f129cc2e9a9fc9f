"""scripts/django_redis_compat.py's own parts, without the network or their suite (the
suite itself takes about two minutes: run the script, see the README)."""

from __future__ import annotations

import importlib.util
import io
import sys
import tarfile
from pathlib import Path
from typing import Any

_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "django_redis_compat.py"


def _script() -> Any:
    spec = importlib.util.spec_from_file_location("django_redis_compat", _SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _sdist(path: Path, version: str, names: list[str]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name in names:
            data = f"# {name}\n".encode()
            info = tarfile.TarInfo(f"django_redis-{version}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_prepare_takes_their_three_files_and_package_beside_our_settings(
        tmp_path: Path) -> None:
    compat = _script()
    archive = _sdist(tmp_path / "s.tar.gz", compat.VERSION, [
        "django_redis/__init__.py", "django_redis/client/default.py", "tests/__init__.py",
        "tests/settings_wrapper.py", "tests/conftest.py", "tests/test_backend.py",
        "tests/test_cache_options.py", "tests/test_session.py", "tests/test_client.py",
        "tests/settings/sqlite.py"])
    work = tmp_path / "work"
    tests = compat.prepare(archive, work)
    names = sorted(str(p.relative_to(work)) for p in work.rglob("*.py"))
    assert names == sorted([
        "django_redis/__init__.py", "django_redis/client/default.py", "pytest_mock.py",
        "tests/__init__.py", "tests/conftest.py", "tests/settings/__init__.py",
        "tests/settings/cachekit.py", "tests/settings_wrapper.py", "tests/test_backend.py",
        "tests/test_cache_options.py", "tests/test_session.py"])
    assert "CachekitCache" in (tests / "settings" / "cachekit.py").read_text()
    assert "pytest_generate_tests" in (tests / "conftest.py").read_text()  # ours, not theirs


def test_parse_names_each_test_and_its_outcome(tmp_path: Path) -> None:
    compat = _script()
    report = tmp_path / "r.xml"
    report.write_text(
        '<testsuites><testsuite>'
        '<testcase classname="tests.test_backend.TestDjangoRedisCache" name="test_a[cachekit]"/>'
        '<testcase classname="tests.test_backend.TestDjangoRedisCache" name="test_b[cachekit]">'
        '<failure message="x"/></testcase>'
        '<testcase classname="tests.test_session" name="test_c"><skipped/></testcase>'
        '<testcase classname="tests.test_cache_options" name="test_d"><error/></testcase>'
        '</testsuite></testsuites>')
    outcome = compat.parse(report)
    assert outcome.passed == ["test_backend::TestDjangoRedisCache::test_a"]
    assert outcome.failed == ["test_backend::TestDjangoRedisCache::test_b",
                              "test_cache_options::test_d"]
    assert outcome.skipped == ["test_session::test_c"]
    assert outcome.summary() == "1 passed, 2 failed, 1 skipped"
    assert compat.parse(tmp_path / "none.xml").failed == ["<the suite did not run>"]
