"""The package's import contract: one home per concept, read from the source with ``ast``.

- no import cycle between modules (imports inside functions count; imports under
  ``if TYPE_CHECKING:`` do not);
- no module imports another module's private (``_``-prefixed) name;
- the adapters (django/, flask/) import only public core modules (no ``_async``/``_sync``);
- ``core/data`` and ``core/local`` never import ``core.web`` (the codec learns web types
  by registration);
- no hand-written module over 800 lines.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "cachekit_web"
MAX_LINES = 800


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _generated(path: Path) -> bool:
    return "_sync" in path.relative_to(PACKAGE).parts


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, skipping the bodies of ``if TYPE_CHECKING:``."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _edges() -> dict[str, set[tuple[str, str | None]]]:
    """Module -> {(imported module, imported name or None)} inside the package."""
    edges: dict[str, set[tuple[str, str | None]]] = {}
    for module, path in MODULES.items():
        found: set[tuple[str, str | None]] = set()
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {(a.name, None) for a in node.names if a.name in MODULES}
                continue
            target = _resolve(module, path.name == "__init__.py", node)
            if target not in MODULES:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add((sub, None) if sub in MODULES else (target, alias.name))
        edges[module] = found
    return edges


EDGES = _edges()


def _cycles() -> list[list[str]]:
    graph = {m: sorted({t for t, _ in targets if t != m}) for m, targets in EDGES.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                out.append(sorted(part))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    cycles = _cycles()
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_module_imports_another_modules_private_name() -> None:
    bad = sorted(f"{m} takes {t}.{n}" for m, targets in EDGES.items() for t, n in targets
                 if n is not None and n.startswith("_") and not n.startswith("__") and t != m)
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("adapter", ["cachekit_web.django", "cachekit_web.flask"])
def test_adapters_import_only_public_core_modules(adapter: str) -> None:
    bad = sorted(f"{m} imports {t}" for m, targets in EDGES.items()
                 if m == adapter or m.startswith(adapter + ".")
                 for t, _ in targets if t.startswith("cachekit_web.core")
                 and any(part.startswith("_") for part in t.split(".")))
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("folder", ["cachekit_web.core.data", "cachekit_web.core.local"])
def test_data_and_local_do_not_import_web(folder: str) -> None:
    bad = sorted(m for m, targets in EDGES.items() if m.startswith(folder)
                 for t, _ in targets if t == "cachekit_web.core.web")
    assert not bad, bad


def test_no_hand_written_module_is_over_800_lines() -> None:
    sizes = {m: len(p.read_text().splitlines()) for m, p in MODULES.items()
             if not _generated(p)}
    big = sorted(f"{m}: {n}" for m, n in sizes.items() if n > MAX_LINES)
    assert not big, big


def test_the_contract_sees_the_package() -> None:
    """The checks above read something: the core imports itself, the adapters the core."""
    assert sum(len(t) for t in EDGES.values()) > 100
    assert any(t.startswith("cachekit_web.core.data") for targets in EDGES.values()
               for t, _ in targets)
    assert any(t.startswith("cachekit_web.core") for t, _ in EDGES["cachekit_web.django.backend"])
