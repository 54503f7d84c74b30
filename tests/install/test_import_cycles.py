"""No import cycle inside pytest_facebench, counting the imports inside functions too.

lint-imports checks the layers, but it cannot see a cycle hidden behind imports inside functions
between modules of one layer (faces/align → faces/detect → faces/landmarks → faces/align was one).
Here every module's syntax tree is walked, relative imports resolved, and the module graph must be
acyclic. Imports under `if TYPE_CHECKING:` do not run, so they do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pytest_facebench

Graph = dict[str, set[str]]


def module_names(root: Path) -> dict[str, Path]:
    """Dotted module name → file, for every .py file of the package whose folder is `root`."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that module `name` imports anywhere in its body (functions included)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    targets: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                targets.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package[: len(package) - child.level + 1]
                    source = ".".join([*base, *([child.module] if child.module else [])])
                else:
                    source = child.module or ""
                for alias in child.names:  # `from . import x` imports the module x
                    full = f"{source}.{alias.name}"
                    targets.add(full if full in modules else source)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    found = set()
    for target in targets:
        while target and target not in modules:  # `import a.b.name`: the nearest module of the package
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)
    return found


def import_graph(root: Path) -> Graph:
    modules = module_names(root)
    return {name: _imported(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: Graph) -> list[str] | None:
    """One cycle as a list of modules (the first repeated at the end), or None when the graph is acyclic."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def walk(node: str) -> list[str] | None:
        path.append(node)
        on_path.add(node)
        for target in sorted(graph.get(node, ())):
            if target in on_path:
                return [*path[path.index(target) :], target]
            if target not in done:
                cycle = walk(target)
                if cycle:
                    return cycle
        path.pop()
        on_path.discard(node)
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done:
            cycle = walk(start)
            if cycle:
                return cycle
    return None


def test_the_package_has_no_import_cycle():
    graph = import_graph(Path(pytest_facebench.__file__).parent)
    assert len(graph) > 50
    assert "pytest_facebench.faces.detect" in graph["pytest_facebench.faces.stimuli"]  # imported inside functions
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_faces_depends_one_way():
    graph = import_graph(Path(pytest_facebench.__file__).parent)
    faces = {
        name.rpartition(".")[2]: {t.rpartition(".")[2] for t in targets if t.startswith("pytest_facebench.faces.")}
        for name, targets in graph.items()
        if name.startswith("pytest_facebench.faces.")
    }
    assert faces["face"] == set() and faces["model_files"] == set()
    assert faces["landmarks"] == {"face"}
    assert "detect" not in faces["align"] and "align" not in faces["detect"]


@pytest.fixture
def package(tmp_path: Path):
    """Write a package `pkg` into tmp_path from {relative path: source}; return its folder."""

    def write(files: dict[str, str]) -> Path:
        for relative, source in {"pkg/__init__.py": "", **files}.items():
            (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / relative).write_text(source)
        return tmp_path / "pkg"

    return write


def test_a_cycle_through_a_function_level_relative_import_is_found(package):
    root = package(
        {
            "pkg/sub/__init__.py": "",
            "pkg/sub/a.py": "from .b import thing\n",
            "pkg/sub/b.py": "from ..c import helper\nthing = 1\n",
            "pkg/c.py": "def helper():\n    from .sub import a\n    return a\n",
        }
    )
    assert find_cycle(import_graph(root)) == ["pkg.c", "pkg.sub.a", "pkg.sub.b", "pkg.c"]


def test_absolute_dotted_imports_and_type_checking_blocks(package):
    root = package(
        {
            "pkg/a.py": "import pkg.b.deep\n",
            "pkg/b/__init__.py": "from . import deep\n",
            "pkg/b/deep.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\nelse:\n    import os\n",
        }
    )
    graph = import_graph(root)
    assert graph["pkg.a"] == {"pkg.b.deep"} and graph["pkg.b"] == {"pkg.b.deep"} and graph["pkg.b.deep"] == set()
    assert find_cycle(graph) is None
    (root / "b" / "deep.py").write_text("import pkg.a\n")
    assert find_cycle(import_graph(root)) == ["pkg.a", "pkg.b.deep", "pkg.a"]
