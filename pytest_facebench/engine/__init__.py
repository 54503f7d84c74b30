"""The embedding pipeline: models (`model`, `hub`), images and preprocessing, the overlapped engine and its
loader workers and store writer, the warm (numpy-only) path, scoring a cell (`evaluate`) and distances."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    """`pytest_facebench.engine.Engine` and the other names of the engine module, where they were before
    `engine.py` became this package (imported on first use: importing the package does not start torch)."""
    import importlib
    import pkgutil

    if name.startswith("__") or name in {m.name for m in pkgutil.iter_modules(__path__)}:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")  # a submodule: imported as one
    module = importlib.import_module(f"{__name__}.engine")
    try:
        return getattr(module, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
