"""MkDocs hooks: README.md is the site's home page and CHANGELOG.md its changelog.

Both stay in the top folder, where GitHub and the package show them; their links are
written for that folder (``docs/flask.md``), so they are rewritten for the site
(``flask.md``, which MkDocs then checks like any other link), and links to other files of
the repository point at the repository.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
PAGES = {"index.md": ROOT / "README.md", "changelog.md": ROOT / "CHANGELOG.md"}
LINK = re.compile(r"\]\((?!https?://|#|mailto:)([^)\s]+)\)")


def site_link(target: str, repo_url: str) -> str:
    """A top-folder relative link as the site's pages see it."""
    if target.startswith("docs/"):
        return target.removeprefix("docs/")
    return f"{repo_url.rstrip('/')}/blob/main/{target}"


def on_files(files: Files, config: Any) -> Files:
    """Add the top folder's README and CHANGELOG as pages."""
    for uri, path in PAGES.items():
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Rewrite the links of the pages that come from the top folder."""
    if page.file.src_uri not in PAGES:
        return markdown
    return LINK.sub(lambda m: f"]({site_link(m.group(1), config['repo_url'])})", markdown)
