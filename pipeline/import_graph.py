"""The project's own imports, read from the source with ``ast`` (nothing is imported).

Every ``import`` / ``from ... import`` statement of a module counts, wherever it stands: the
stages and the library import torch, transformers and their own heavy modules lazily inside
functions, so a module's top-level imports alone miss what its ``main`` loads when it runs.
Only project modules (``pipeline.*``, ``stages.*``) are followed. Two users: the DVC stage deps
(:mod:`pipeline.stage_deps`: what each stage runs must be a dep, or DVC serves stale outputs)
and the import-direction tests (no cycle between modules or packages).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

PROJECT_PACKAGES = ("pipeline", "stages")


def module_files(root: Path) -> dict[str, Path]:
    """Every project module under ``root`` (dotted name -> path relative to ``root``); a
    package is its ``__init__.py``."""
    out: dict[str, Path] = {}
    for package in PROJECT_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root)
            parts = rel.with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = rel
    return out


def _package_of(name: str, path: Path) -> str:
    """The package a module's relative imports start from."""
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _named(node: ast.AST, name: str, path: Path, known: dict[str, Path]) -> Iterable[str]:
    """The project modules one import statement names (before their parent packages)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
        return
    assert isinstance(node, ast.ImportFrom)
    base = node.module or ""
    if node.level:
        package = _package_of(name, path).split(".")
        anchor = ".".join(package[: len(package) - node.level + 1])
        base = f"{anchor}.{base}" if base else anchor
    # `from pipeline.train import loop` names the module loop; `from pipeline.io import
    # read_json` names pipeline.io (the packages above are added where files are listed).
    subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
    yield from subs if len(subs) == len(node.names) else [*subs, base]


def direct_imports(name: str, root: Path, known: dict[str, Path]) -> set[str]:
    """The project modules module ``name`` imports by name anywhere in its source."""
    path = known[name]
    tree = ast.parse((root / path).read_text(encoding="utf-8"), filename=str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            out.update(m for m in _named(node, name, path, known) if m in known)
    out.discard(name)
    return out


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the project modules it imports by name (static, function-level included)."""
    known = module_files(root)
    return {name: direct_imports(name, root, known) for name in known}


def with_parents(modules: Iterable[str], known: dict[str, Path]) -> set[str]:
    """``modules`` and every package above them (importing ``a.b.c`` runs ``a`` and ``a.b``)."""
    out = set()
    for name in modules:
        parts = name.split(".")
        out.update(p for p in (".".join(parts[:i]) for i in range(1, len(parts) + 1))
                   if p in known)
    return out


def loaded_by(start: str, root: Path) -> set[Path]:
    """The project files running module ``start`` can load: its transitive project imports
    and their packages, as paths relative to ``root``."""
    known = module_files(root)
    graph = import_graph(root)
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph[name])
    return {known[m] for m in with_parents(seen, known)}


def package_of(module: str) -> str:
    """The unit a module belongs to in the package-level graph: its subpackage
    (``pipeline.model.heads`` -> ``pipeline.model``, ``stages.train`` -> ``stages``); a module
    directly in ``pipeline/`` (``pipeline.config``) is a unit of its own."""
    parts = module.split(".")
    if parts[0] == "stages":
        return "stages"
    return ".".join(parts[:2])


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The module graph collapsed onto :func:`package_of` units (edges inside a unit dropped)."""
    out: dict[str, set[str]] = {}
    for name, targets in graph.items():
        unit = package_of(name)
        out.setdefault(unit, set()).update(package_of(t) for t in targets)
        out[unit].discard(unit)
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None when it has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None
