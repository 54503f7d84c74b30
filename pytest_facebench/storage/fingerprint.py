"""Key material: turning state and code into stable, JSON-able fingerprints for cache keys.

`plain(value)` describes a value so that the description changes exactly when the value does (arrays and
frames by content, callables by their source); what cannot be described raises `Unkeyable`, and the caller
then never reuses a result on a guess. `code_digest(cls)` fingerprints the code that defines a class: each
user module in its MRO with the user modules it imports (transitively, beside it or anywhere on
`sys.path` outside the standard library and site-packages: helpers change numbers too, an unrelated file
beside it does not) and, for classes of this package, the module files themselves plus the
modules every embedding goes through. Imports done dynamically (importlib) are not followed.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import inspect
import os
import sys
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # pytest_facebench/
# Code every embedding passes through (pooling, preprocessing, image decoding, alignment): part of each
# embedding key. The rest of the package (tasks, statistics, reports) changes scores, not embeddings.
EMBEDDING_MODULES = ("engine/model.py", "engine/preprocessing.py", "engine/images.py", "faces")


class Unkeyable(Exception):
    """A value whose identity cannot be captured in a key: results that depend on it are never reused."""


def plain(value: Any) -> Any:
    """JSON-able data that changes exactly when `value` does; `Unkeyable` when that cannot be said."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return [plain(v) for v in value.tolist()]
        data = np.ascontiguousarray(value)
        return {
            "ndarray": hashlib.blake2b(data.tobytes(), digest_size=16).hexdigest(),
            "shape": list(value.shape),
            "dtype": str(value.dtype),
        }
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [plain(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            "dataclass": qualified(type(value)),
            **{f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)},
        }
    if type(value).__module__.startswith("pandas"):
        import pandas as pd

        if isinstance(value, (pd.Series, pd.DataFrame, pd.Index)):
            hashed = pd.util.hash_pandas_object(value, index=True).to_numpy()
            columns = [str(c) for c in value.columns] if isinstance(value, pd.DataFrame) else None
            return {"pandas": hashlib.blake2b(hashed.tobytes(), digest_size=16).hexdigest(), "columns": columns}
    if inspect.isfunction(value) or inspect.isclass(value) or inspect.isbuiltin(value):
        return callable_identity(value)
    raise Unkeyable(f"cannot key a {type(value).__name__}")


def callable_identity(fn: Any) -> dict[str, Any]:
    """A function or class by name and by the source of the code that defines it."""
    return {"callable": qualified(fn), "source": module_source(getattr(fn, "__module__", None))}


def qualified(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"


def digest(parts: Any) -> str:
    """A short stable hash of JSON-able parts (the form of every cache key)."""
    import json

    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


# --- source digests -----------------------------------------------------------------------------
def _stat(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


@cache
def _files_digest(root: str, files: tuple[tuple[str, int, int], ...]) -> str:
    """Names (relative to `root`) and bytes; memoized per (size, mtime) of every file."""
    hasher = hashlib.blake2b(digest_size=16)
    for name, _size, _mtime in files:
        hasher.update(os.path.relpath(name, root).encode())
        hasher.update(Path(name).read_bytes())
    return hasher.hexdigest()


def files_digest(root: Path, files: list[Path]) -> str:
    return _files_digest(str(root), tuple((str(f), *_stat(f)) for f in sorted(set(files))))


def folder_digest(folder: Path, recursive: bool = False) -> str:
    """Hash of the .py files in `folder`."""
    return files_digest(folder, list(folder.rglob("*.py") if recursive else folder.glob("*.py")))


def facebench_source() -> str:
    """The whole package: scoring and statistics live here, so any edit of it rescores cells."""
    return folder_digest(PACKAGE_DIR, recursive=True)


def _module_file(module_name: str | None) -> Path:
    module = sys.modules.get(module_name or "")
    file = getattr(module, "__file__", None)
    if not file:
        raise Unkeyable(f"no source file for module {module_name!r}")
    return Path(file).resolve()


def inside_package(path: Path) -> bool:
    return path == PACKAGE_DIR or PACKAGE_DIR in path.parents


def module_source(module_name: str | None) -> str:
    """Digest of a user module and the user modules it imports (`local_imports`); 'facebench' for this package's own
    modules, which `facebench_source()` covers."""
    file = _module_file(module_name)
    if inside_package(file):
        return "facebench"
    return files_digest(Path("/"), sorted(local_imports(file)))


def local_imports(file: Path) -> set[Path]:
    """`file` and, transitively, every module it imports that is user code: found beside it, in packages
    beside it, or anywhere on `sys.path` (a `PYTHONPATH` helper folder, an editable install), but not in the
    standard library or site-packages (their versions are keyed instead). This package's own files are
    followed only from this package's modules (user code reaches them through `facebench_source`)."""
    found: set[Path] = set()
    search = _search_path()
    pending = [file.resolve()]
    while pending:
        current = pending.pop()
        if current in found or not current.is_file():
            continue
        found.add(current)
        inside = inside_package(current)
        pending.extend(p for p in _imported_files(current, *_stat(current), search) if inside or not inside_package(p))
    return found


def _search_path() -> tuple[str, ...]:
    return tuple(os.path.abspath(entry or os.curdir) for entry in sys.path if isinstance(entry, str))


@cache
def library_roots() -> tuple[Path, ...]:
    """Folders of installed code: the standard library and every site-packages folder."""
    import site
    import sysconfig

    paths = sysconfig.get_paths()
    roots = [paths[name] for name in ("stdlib", "platstdlib", "purelib", "platlib") if name in paths]
    roots += site.getsitepackages() if hasattr(site, "getsitepackages") else []
    roots += [site.getusersitepackages()] if hasattr(site, "getusersitepackages") else []
    return tuple(dict.fromkeys(Path(r).resolve() for r in roots if r))


def is_library(path: Path) -> bool:
    """True for a file or folder of the standard library or of an installed distribution."""
    resolved = path.resolve()
    if {"site-packages", "dist-packages"} & set(resolved.parts):
        return True
    return any(resolved == root or root in resolved.parents for root in library_roots())


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(level, dotted name) of every import in a module, including those inside functions."""
    names: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            names += [(node.level, base)] if base else []
            names += [(node.level, f"{base}.{alias.name}".lstrip(".")) for alias in node.names if alias.name != "*"]
    return names


def _module_files(root: Path, parts: list[str]) -> list[Path]:
    """The files that importing `parts` from `root` runs: each package's `__init__.py` and the module."""
    out = []
    for depth in range(1, len(parts) + 1):
        candidate = root.joinpath(*parts[:depth])
        init = candidate / "__init__.py"
        if init.is_file():
            out.append(init)
        elif depth == len(parts) and candidate.with_suffix(".py").is_file():
            out.append(candidate.with_suffix(".py"))
    return out


@cache
def _imported_files(file: Path, _size: int, _mtime: int, search: tuple[str, ...]) -> list[Path]:
    try:
        tree = ast.parse(file.read_bytes(), filename=str(file))
    except (SyntaxError, ValueError):
        return []
    out: list[Path] = []
    # `models.x` from inside models/, as pytest's rootdir insertion allows, besides `sys.path` proper
    near = [file.parent, *list(file.parent.parents)[:2]]
    for level, name in _imports(tree):
        parts = [p for p in name.split(".") if p]
        if not parts:
            continue
        if level:
            base = file.parent
            for _ in range(level - 1):
                base = base.parent
            out += _module_files(base, parts)
            continue
        for root in (*near, *(Path(entry) for entry in search)):
            top = root / parts[0]
            if not (top.with_suffix(".py").is_file() or top.is_dir()):
                continue
            if is_library(top):
                break  # an installed module (or the standard library) shadows the rest of the path
            files = _module_files(root, parts)
            if files:
                out += files
                break
    return [p.resolve() for p in out]


def _mro_modules(cls: type) -> list[str]:
    return [c.__module__ for c in cls.__mro__ if c is not object and c.__module__ not in ("builtins", "abc", "typing")]


def class_source(cls: type) -> list[str]:
    """Digests of the folders of every class in `cls`'s MRO (for the cell key, beside `facebench_source`)."""
    return sorted({module_source(name) for name in _mro_modules(cls)})


def code_digest(cls: type) -> str:
    """The code that computes a model's embeddings: each module in its MRO with the user modules it imports
    (for classes of this package too: a family's network definition), and this package's embedding modules.
    Editing a task, a statistic or a report leaves it unchanged, so embeddings survive such edits."""
    files: set[Path] = set()
    for name in _mro_modules(cls):
        files.update(local_imports(_module_file(name)))
    for entry in EMBEDDING_MODULES:
        path = PACKAGE_DIR / entry
        files.update(path.rglob("*.py") if path.is_dir() else [path])
    return files_digest(Path("/"), [f for f in files if f.is_file()])


def file_identity(value: str, base: Path | None = None) -> dict[str, str] | None:
    """`{"file": path, "sha256": ...}` when `value` names an existing file, else None."""
    if len(value) > 4096 or "\n" in value or not value:
        return None
    path = Path(os.path.expanduser(value))
    if base is not None and not path.is_absolute():
        path = base / path
    try:
        if not path.is_file():
            return None
    except (OSError, ValueError):
        return None
    return {"file": str(path), "sha256": file_sha256(path)}


@cache
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def file_sha256(path: Path) -> str:
    """Content hash of a file, memoized per process by (path, size, mtime)."""
    stat = path.stat()
    return _sha256_cached(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
