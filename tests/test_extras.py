"""Importing an adapter without its framework names the extra to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cachekit_web.core.errors import install_line

ROOT = Path(__file__).resolve().parent.parent

# Every meta path finder is wrapped to find nothing for the hidden top-level packages, as
# on a machine where they were never installed (importlib.util.find_spec answers None too).
BLOCK = textwrap.dedent("""
    import sys
    class Hide:
        def __init__(self, inner):
            self.inner = inner
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {blocked!r}:
                return None
            return self.inner.find_spec(name, path, target)
    sys.meta_path[:] = [Hide(finder) for finder in sys.meta_path]
    try:
        import {module}
    except ImportError as exc:
        print("ImportError:", exc)
        sys.exit(3)
    print("imported")
""")


@pytest.mark.parametrize(("module", "blocked", "extra"), [
    ("cachekit_web.flask", "flask", "flask"),
    ("cachekit_web.django", "django", "django"),
])
def test_adapter_without_framework_names_the_extra(module: str, blocked: str, extra: str) -> None:
    done = subprocess.run([sys.executable, "-c", BLOCK.format(module=module, blocked=(blocked,))],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 3, done.stdout + done.stderr
    assert install_line(extra) in done.stdout, done.stdout
    assert "Traceback" not in done.stderr


def test_core_imports_without_either_framework() -> None:
    code = BLOCK.format(module="cachekit_web", blocked=("flask", "django"))
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.stdout.strip() == "imported", done.stdout + done.stderr
