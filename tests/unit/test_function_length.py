"""No function in ``pipeline/`` is longer than 80 lines (def line to last line, inclusive):
a longer one cannot be read top to bottom or tested in parts; split it into named parts."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

MAX_LINES = 80


def long_functions(root: Path, limit: int = MAX_LINES) -> list[str]:
    """``path:line name (n lines)`` of every function or method under ``root`` over ``limit``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno} {node.name} "
                                 f"({lines} lines)")
    return found


def test_no_function_in_the_pipeline_package_is_longer_than_80_lines():
    assert long_functions(ROOT / "pipeline") == []


def test_the_check_sees_nested_functions_and_methods(tmp_path):
    body = "\n".join(f"        x{i} = {i}" for i in range(79))
    (tmp_path / "m.py").write_text(
        "class A:\n    def short(self):\n        return 1\n\n"
        f"    def long(self):\n{body}\n        return 0\n\n"
        f"def outer():\n    def inner():\n{body}\n        return 0\n    return inner\n")
    found = long_functions(tmp_path)
    assert sorted(f.split(" ", 1)[1] for f in found) == [
        "inner (81 lines)", "long (81 lines)", "outer (83 lines)"]  # `short` (3) is fine
