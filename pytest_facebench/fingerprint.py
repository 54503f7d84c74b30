"""Key material: turning state and code into stable, JSON-able fingerprints for cache keys.

`plain(value)` describes a value so that the description changes exactly when the value does (arrays and
frames by content, callables by their source); what cannot be described raises `Unkeyable`, and the caller
then never reuses a result on a guess. `code_digest(cls)` fingerprints the code that defines a class: each
user module in its MRO with the sibling modules it imports (transitively: helpers change numbers too, an
unrelated file beside it does not) and, for classes of this package, the module files themselves plus the
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

PACKAGE_DIR = Path(__file__).resolve().parent
# Code every embedding passes through (pooling, preprocessing, image decoding, alignment): part of each
# embedding key. The rest of the package (tasks, statistics, reports) changes scores, not embeddings.
EMBEDDING_MODULES = ("model.py", "preprocessing.py", "images.py", "faces")


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


def _inside_package(path: Path) -> bool:
    return path == PACKAGE_DIR or PACKAGE_DIR in path.parents


def module_source(module_name: str | None) -> str:
    """Digest of a user module and the sibling modules it imports; 'facebench' for this package's own
    modules, which `facebench_source()` covers."""
    file = _module_file(module_name)
    if _inside_package(file):
        return "facebench"
    return files_digest(Path("/"), sorted(local_imports(file)))


def local_imports(file: Path) -> set[Path]:
    """`file` and, transitively, the modules beside it (or in packages beside it) that it imports."""
    found: set[Path] = set()
    pending = [file.resolve()]
    while pending:
        current = pending.pop()
        if current in found or not current.is_file():
            continue
        found.add(current)
        pending.extend(_sibling_imports(current, *_stat(current)))
    return found


@cache
def _sibling_imports(file: Path, _size: int, _mtime: int) -> list[Path]:
    try:
        tree = ast.parse(file.read_bytes(), filename=str(file))
    except (SyntaxError, ValueError):
        return []
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            names += [base] if base else []
            names += [f"{base}.{alias.name}".lstrip(".") for alias in node.names]
    out = []
    roots = [file.parent, *list(file.parent.parents)[:2]]  # `from .x`, and `models.x` from inside models/
    for name in names:
        parts = name.split(".")
        for root in roots:
            candidate = root.joinpath(*parts)
            for path in (candidate.with_suffix(".py"), candidate / "__init__.py"):
                if path.is_file():
                    out.append(path.resolve())
    return out


def _mro_modules(cls: type) -> list[str]:
    return [c.__module__ for c in cls.__mro__ if c is not object and c.__module__ not in ("builtins", "abc", "typing")]


def class_source(cls: type) -> list[str]:
    """Digests of the folders of every class in `cls`'s MRO (for the cell key, beside `facebench_source`)."""
    return sorted({module_source(name) for name in _mro_modules(cls)})


def code_digest(cls: type) -> str:
    """The code that computes a model's embeddings: each module in its MRO with the sibling modules it imports
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
