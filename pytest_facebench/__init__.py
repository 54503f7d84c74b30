"""pytest-facebench: face-perception benchmarks as pytest tests.

The public names are imported lazily so that merely having the plugin installed does not import
torch in unrelated pytest runs.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "BaseModel": "pytest_facebench.model",
    "Preprocessing": "pytest_facebench.preprocessing",
    "BaseTask": "pytest_facebench.tasks.base",
    "Metric": "pytest_facebench.results",
    "run": "pytest_facebench.api",
    "RunTables": "pytest_facebench.api",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pytest_facebench' has no attribute {name!r}")
