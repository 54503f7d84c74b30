"""pytest-facebench: face-perception benchmarks as pytest tests.

The public names are imported lazily so that merely having the plugin installed does not import
torch in unrelated pytest runs.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "BaseModel": "pytest_facebench.engine.model",
    "Preprocessing": "pytest_facebench.engine.preprocessing",
    "BaseTask": "pytest_facebench.tasks.base",
    "Metric": "pytest_facebench.outputs.results",
    "run": "pytest_facebench.api",
    "RunTables": "pytest_facebench.api",
}
__all__ = list(_EXPORTS)


# Modules that moved into packages by layer: their old names keep working (`import pytest_facebench.model`
# gives `pytest_facebench.engine.model`, the same module object), for user code written against them.
MOVED_MODULES = {
    **dict.fromkeys(("session", "fixture", "launch", "reproduce", "shards", "export"), "runner"),
    **dict.fromkeys(("config", "gridfile", "builders", "registry"), "grid"),
    **dict.fromkeys(
        ("model", "hub", "images", "preprocessing", "workers", "writer", "warm", "options", "evaluate", "distances"),
        "engine",
    ),
    **dict.fromkeys(("store", "store_admin", "cache", "cell_cache", "leases", "keys", "fingerprint"), "storage"),
    **dict.fromkeys(("pairs", "templates", "search", "formats"), "data"),
    **dict.fromkeys(("results", "metrics", "compare", "gates"), "outputs"),
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds `pytest_facebench.<old name>[.sub]` and loads it as the module at its new place."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        prefix, _, rest = fullname.partition(".")
        first = rest.split(".", 1)[0]
        if prefix != __name__ or first not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        rest = spec.name.split(".", 1)[1]
        return importlib.import_module(f"{__name__}.{MOVED_MODULES[rest.split('.', 1)[0]]}.{rest}")

    def exec_module(self, module: ModuleType) -> None:
        """The module was executed at its new place."""


if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
    sys.meta_path.insert(0, _MovedModuleFinder())  # before path finders: no stale file of an old install wins


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pytest_facebench' has no attribute {name!r}")
