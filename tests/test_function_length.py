"""No function of pytest_facebench is over `MAX_LINES` lines (from its `def` to its last line, docstring
included): a longer one is split into named steps (issue 25)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest_facebench

MAX_LINES = 80
PACKAGE = Path(pytest_facebench.__file__).parent


def long_functions(root: Path, limit: int) -> list[str]:
    """`path:line name (n lines)` for each function or method under `root` longer than `limit` lines."""
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_is_over_the_limit() -> None:
    too_long = long_functions(PACKAGE, MAX_LINES)
    assert not too_long, f"functions over {MAX_LINES} lines (split them into named steps): " + "; ".join(too_long)


def test_the_guard_finds_a_long_function(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    body = "".join(f"        x{i} = {i}\n" for i in range(MAX_LINES))
    (package / "mod.py").write_text(f"def short():\n    pass\n\n\nclass C:\n    def long(self):\n{body}")
    assert long_functions(package, MAX_LINES) == [f"pkg/mod.py:6 long ({MAX_LINES + 1} lines)"]
