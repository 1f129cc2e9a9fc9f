"""The long description: README.md with its relative links made absolute.

Everything else is in pyproject.toml, which declares ``readme`` dynamic. The README's
links are written for the repository's top folder (``docs/flask.md``); on the package
index they would lead nowhere, so they point at the documentation site and the
repository instead.
"""

from __future__ import annotations

import re
from pathlib import Path

from setuptools import setup

REPO = "https://github.com/cachekit-web/cachekit-web"
DOCS = "https://cachekit-web.github.io/cachekit-web/"
LINK = re.compile(r"\]\((?!https?://|mailto:)([^)\s]+)\)")


def absolute(target: str) -> str:
    """Where a README link leads, from anywhere."""
    path, _, anchor = target.partition("#")
    anchor = f"#{anchor}" if anchor else ""
    if not path:  # a section of the README: the site's home page
        return f"{DOCS}{anchor}"
    if path.startswith("docs/") and path.endswith(".md"):
        return f"{DOCS}{path[5:-3]}/{anchor}"
    return f"{REPO}/blob/main/{path}{anchor}"


def long_description() -> str:
    """The README as the package index shows it."""
    text = (Path(__file__).parent / "README.md").read_text(encoding="utf-8")
    return LINK.sub(lambda m: f"]({absolute(m.group(1))})", text)


setup(long_description=long_description(), long_description_content_type="text/markdown")
