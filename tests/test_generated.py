"""The sync modules are generated from core/_async, and a stale one is caught."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _script():  # type: ignore[no-untyped-def]
    pytest.importorskip("unasync")
    spec = importlib.util.spec_from_file_location("generate_sync", ROOT / "scripts" /
                                                  "generate_sync.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_sync_modules_are_fresh() -> None:
    assert _script().main(["--check"]) == 0


def test_a_hand_edit_of_a_generated_module_is_reported(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    gen = _script()
    target = tmp_path / "_sync"
    shutil.copytree(gen.TARGET, target)
    edited = target / "client.py"
    edited.write_text(edited.read_text().replace("def get(", "def get_(", 1))
    gen.TARGET = target
    assert gen.main(["--check"]) == 1
    assert "client.py" in capsys.readouterr().out


def test_every_generated_module_says_where_to_edit() -> None:
    for path in (ROOT / "cachekit_web" / "core" / "_sync").glob("*.py"):
        head = path.read_text().splitlines()[:2]
        assert head[0].startswith("# GENERATED from cachekit_web/core/_async/"), path
        assert "make generate" in head[1], path


def test_no_async_code_in_generated_modules() -> None:
    for path in (ROOT / "cachekit_web" / "core" / "_sync").glob("*.py"):
        text = path.read_text()
        assert "await " not in text and "async def" not in text, path
