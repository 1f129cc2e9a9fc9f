"""Generated documentation must match its single source."""

from __future__ import annotations

from pathlib import Path

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
