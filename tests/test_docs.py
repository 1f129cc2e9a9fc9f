"""Generated documentation must match its single source."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cachekit_web.cli import readme_with_settings
from cachekit_web.core.settings import DESCRIPTIONS, Settings

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_described() -> None:
    assert set(DESCRIPTIONS) == set(Settings.names())


def test_readme_settings_table_is_current() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text == readme_with_settings(text), "run `make docs` to regenerate the table"
    for name in Settings.names():
        assert f"`CACHEKIT_{name}`" in text


def test_readme_names_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text
    assert "docs/errors.md" in text


def readme_snippets() -> list[str]:
    """The README's Python code blocks, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def snippet(marker: str) -> str:
    """The one README Python block containing ``marker``."""
    [found] = [s for s in readme_snippets() if marker in s]
    return found


def pasted(code: str, redis_url: str, namespace: str) -> str:
    """A snippet as a reader pastes it, pointed at the test server and a test namespace."""
    assert README_URL in code
    return code.replace(README_URL, redis_url).replace('"myapp"', repr(namespace))


README_URL = "redis://127.0.0.1:6379/0"


def test_readme_core_snippet_runs(redis_url: str, namespace: str) -> None:
    scope: dict[str, Any] = {}
    exec(pasted(snippet("cache = CacheClient.from_url"), redis_url, namespace), scope)
    cache = scope["cache"]
    assert cache.get("greeting") == {"text": "hi"}
    assert cache.get("report") == {"rows": 3}
    cache.close()


def test_readme_async_snippet_runs(redis_url: str, namespace: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    exec(pasted(snippet("AsyncCacheClient.from_url"), redis_url, namespace), {})
    assert capsys.readouterr().out.splitlines() == ["{'text': 'hi'}", "{'name': 'Ada'}"]
    from cachekit_web import CacheClient

    with CacheClient.from_url(redis_url, namespace=namespace) as check:
        assert check.get("profile:1") == {"name": "Ada"}  # cached by get_or_set


def test_readme_flask_snippet_runs(redis_url: str, namespace: str) -> None:
    code = pasted(snippet("from cachekit_web.flask import Cache"), redis_url, namespace)
    scope: dict[str, Any] = {"__name__": "readme_app"}
    exec(code.replace("cache = Cache(app)",
                      f"app.config['CACHEKIT_NAMESPACE'] = {namespace!r}\ncache = Cache(app)"),
         scope)
    client = scope["app"].test_client()
    first, second = client.get("/"), client.get("/")
    assert first.data == second.data == b"hello"
    assert second.headers["Cache-Status"].startswith("cachekit; hit")


def _github_slug(heading: str) -> str:
    """The id GitHub gives a Markdown heading: lower case, punctuation but '-' dropped."""
    kept = "".join(c for c in heading.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def test_error_table_links_reach_their_sections() -> None:
    """Every link of docs/errors.md's table names its section's id on GitHub and MkDocs."""
    from cachekit_web.core.errors import markdown_table

    toc = pytest.importorskip("markdown.extensions.toc")  # what MkDocs uses (docs extra)
    text = markdown_table()
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    links = re.findall(r"^\| \[E\d+\]\(#([^)]+)\)", text, flags=re.M)
    assert len(links) == len(headings) > 0
    for link, heading in zip(links, headings, strict=True):
        assert link == toc.slugify(heading, "-") == _github_slug(heading), heading


def _cells(text: str, row: str) -> set[str]:
    """The versions in the second column of the table row starting with ``| row |``."""
    [line] = [x for x in text.splitlines() if x.startswith(f"| {row} |")]
    return set(re.findall(r"\d+\.\d+", line.split("|")[2]))


def test_supported_versions_in_the_docs_are_the_tested_ones() -> None:
    """docs/production.md and docs/django.md name what the version matrix runs."""
    from tests.test_packaging import _matrix, pyproject

    envs = list(_matrix().ENVS.values())
    project = pyproject()["project"]
    production = (ROOT / "docs" / "production.md").read_text(encoding="utf-8")
    assert _cells(production, "Python") == {e.python for e in envs} | {"3.11"}  # make test
    djangos = {c.rsplit(" :: ", 1)[1] for c in project["classifiers"]
               if re.fullmatch(r"Framework :: Django :: \d+\.\d+", c)}  # checked vs matrix
    assert _cells(production, "Django") == djangos
    django_md = (ROOT / "docs" / "django.md").read_text(encoding="utf-8")
    [tested] = re.findall(r"^Supported: Django .*\(tested on ([^)]*)\)", django_md, flags=re.M)
    assert set(re.findall(r"\d+\.\d+", tested)) == djangos
    flasks = _cells(production, "Flask")
    floor = next(r for r in project["optional-dependencies"]["flask"] if r.startswith("flask"))
    middle = next(p for e in envs for p in e.pins if p.startswith("flask"))
    assert {floor.split(">=")[1], middle.split(">=")[1].split(",")[0]} <= flasks
    redis_floor = next(r for r in project["dependencies"] if r.startswith("redis"))
    assert _cells(production, "redis-py") >= {redis_floor.split(">=")[1].split()[0]}
    pytest.importorskip("flask")
    from importlib.metadata import version

    installed = ".".join(version("flask").split(".")[:2])
    assert installed in flasks, f"Flask {installed} runs in tests: name it in production.md"
    scaling = (ROOT / "docs" / "scaling.md").read_text(encoding="utf-8")
    assert f"every redis-py allowed ({redis_floor.split('>=')[1].split()[0]} to" in scaling


def _build_site(tmp_path: Path, readme: str) -> subprocess.CompletedProcess[str]:
    """`mkdocs build --strict` of a copy of the site's sources with ``readme`` as README."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    source = tmp_path / "src"
    shutil.copytree(ROOT / "docs", source / "docs")
    (source / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "mkdocs_hooks.py", source / "scripts")
    for name in ("mkdocs.yml", "CHANGELOG.md"):
        shutil.copy(ROOT / name, source / name)
    (source / "README.md").write_text(readme, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
         str(tmp_path / "site")], cwd=source, capture_output=True, text=True, timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, check=False)


def test_the_site_builds_and_a_broken_readme_link_fails_it(tmp_path: Path) -> None:
    """make test builds the site strictly; the README's links are checked like the pages'."""
    make_test = re.search(r"^test: (.*?)(?:##|$)", (ROOT / "Makefile").read_text(), re.M)
    assert make_test and "site" in make_test.group(1).split()
    [recipe] = re.findall(r"^site:.*\n\t(.*)$", (ROOT / "Makefile").read_text(), re.M)
    assert "--strict" in recipe and "--quiet" not in recipe and " -q" not in recipe  # see there
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    built = _build_site(tmp_path / "good", readme)
    assert built.returncode == 0, built.stderr[-3000:]
    home = (tmp_path / "good" / "site" / "index.html").read_text(encoding="utf-8")
    assert 'href="security/"' in home and 'href="docs/' not in home
    broken = readme.replace("(docs/django.md#migrating-from-django-redis)",
                            "(docs/django.md#migrating-from-djangoredis)")
    assert broken != readme
    failed = _build_site(tmp_path / "bad", broken)
    assert failed.returncode != 0 and "#migrating-from-djangoredis" in failed.stderr
