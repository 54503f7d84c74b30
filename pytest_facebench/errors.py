"""Exceptions that carry a message a user can act on.

Every error names the file, the item (key, line, column) and what was expected. The plugin turns
them into short failure messages instead of tracebacks through pandas or PIL.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class FacebenchError(Exception):
    """Base class: a problem with the user's grid, data or models, reported without a traceback."""


class ConfigError(FacebenchError):
    """The grid file is invalid: names the file and the key."""

    def __init__(self, message: str, *, path: Path | str | None = None, key: str | None = None):
        where = ", ".join(p for p in (str(path) if path else "", key or "") if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.path = path
        self.key = key


class DataError(FacebenchError):
    """A pairs file, an image or an images directory is missing or malformed."""


class ModelError(FacebenchError):
    """A model cannot be built: bad factory, unknown layer, incompatible checkpoint."""


class WeightsUnavailable(FacebenchError):
    """Pretrained weights are neither on disk nor fetchable. Benchmarks skip, never fall back."""


class DataWarning(UserWarning):
    """Data that is probably wrong but still scored (e.g. labels that contradict the identity columns)."""


def list_some(items: Sequence[object], limit: int = 10) -> str:
    """'a, b, c' for short lists, 'a, b, ... (and 12 more)' past `limit` items."""
    shown = ", ".join(str(i) for i in items[:limit])
    rest = len(items) - limit
    return f"{shown} (and {rest} more)" if rest > 0 else shown
