"""Generate cachekit_web/core/_sync/*.py from cachekit_web/core/_async/*.py.

The async modules are the one source of each I/O behaviour; this script turns
them into their sync twins with the `unasync` library (token rewriting), and
`--check` fails when a generated file is stale. Run it through `make generate`.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
import tempfile
from pathlib import Path

import unasync

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "cachekit_web" / "core" / "_async"
TARGET = ROOT / "cachekit_web" / "core" / "_sync"

# Names whose sync spelling is not just the async one without "Async"/"async_".
REPLACEMENTS = {
    "_async": "_sync",
    "make_async_backend": "make_backend",
    "AsyncIterator": "Iterator",
    "AsyncIterable": "Iterable",
    "aclose": "close",
}
# After the token rewrite: a sync callable returns T itself, not an Awaitable[T].
_AWAITABLE = re.compile(r"\bAwaitable\[([^\[\]]+)\]")
_AWAITABLE_IMPORT = re.compile(r"^(from collections\.abc import .*)\bAwaitable, ", re.M)
_CAMEL = re.compile(r"^(_*)Async(?=[A-Z])")
_SNAKE = re.compile(r"^(_*)async_(?=[a-z])")


class _Rule(unasync.Rule):  # type: ignore[misc]
    """unasync's rule, but AsyncFoo becomes Foo (not SyncFoo) and async_foo becomes foo."""

    def _unasync_name(self, name: str) -> str:
        if name in self.token_replacements:
            return str(self.token_replacements[name])
        name = _CAMEL.sub(r"\1", name)
        return _SNAKE.sub(r"\1", name)


def _header(source: Path) -> str:
    rel = source.relative_to(ROOT).as_posix()
    return (
        f"# GENERATED from {rel} by scripts/generate_sync.py.\n"
        "# Do not edit: change the async source, then run `make generate`.\n"
    )


def generate(out_dir: Path) -> list[Path]:
    """Write the sync modules for every async source into ``out_dir``; return their paths."""
    with tempfile.TemporaryDirectory() as tmp:
        src_dir = Path(tmp) / "_async"
        src_dir.mkdir()
        sources = sorted(SOURCE.glob("*.py"))
        for source in sources:
            (src_dir / source.name).write_text(source.read_text())
        rule = _Rule(fromdir="/_async/", todir="/_sync/", additional_replacements=REPLACEMENTS)
        unasync.unasync_files([str(src_dir / s.name) for s in sources], [rule])
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for source in sources:
            body = _AWAITABLE.sub(r"\1", (Path(tmp) / "_sync" / source.name).read_text())
            if "Awaitable" not in _AWAITABLE_IMPORT.sub(r"\1", body):
                body = _AWAITABLE_IMPORT.sub(r"\1", body)
            target = out_dir / source.name
            target.write_text(_header(source) + body)
            written.append(target)
        return written


def main(argv: list[str] | None = None) -> int:
    """Regenerate, or with --check report stale generated files and exit 1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a generated file is stale")
    args = parser.parse_args(argv)
    if not args.check:
        for path in generate(TARGET):
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = {p.name: p.read_text() for p in generate(Path(tmp))}
    current = {p.name: p.read_text() for p in TARGET.glob("*.py")}
    stale = False
    for name in sorted(set(fresh) | set(current)):
        if fresh.get(name) != current.get(name):
            stale = True
            diff = difflib.unified_diff(
                current.get(name, "").splitlines(), fresh.get(name, "").splitlines(),
                f"_sync/{name} (committed)", f"_sync/{name} (generated)", lineterm="", n=1,
            )
            print("\n".join(list(diff)[:40]))
    if stale:
        print("generated sync modules are stale: run `make generate`", file=sys.stderr)
        return 1
    print("generated sync modules are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
