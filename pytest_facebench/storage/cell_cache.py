"""Cell-result cache: a grid cell whose inputs have not changed is not scored again.

A warm embedding cache still pays for torch's start-up, the distances and thousands of bootstrap
resamples. When nothing that changes a cell's numbers has changed, its whole result (metrics, per-row
values, scoring facts) is reused instead, and neither torch nor scipy is imported. Gates, thresholds,
baselines and references live on the grid's specs, never on the task, and are applied to the result
afterwards, so editing one re-runs in seconds.

The key comes from `keys.cell_key`, the one builder of embedding and cell keys: the embedding inputs (model
identity, code and the user modules it imports, preprocessing, alignment and its library versions,
precision, decoder, device type) plus the task's whole state, the content of its files (pairs_sha256 among
them), the sources of facebench and of the task's class, and the scoring libraries' versions.

A cell whose state holds something that cannot be keyed safely (an arbitrary object) is not cached; the
user callables a task uses (a `distance = "module:function"`) are keyed by their source.
Entries are written atomically with a CRC, like embeddings; a corrupt entry is deleted and recomputed.
Each entry holds its own key, checked when read: a file renamed or copied over another cell's is never
reused for it (and `cache verify` flags it).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..outputs.results import CellResult
from .cache import read_entry, write_entry
from .keys import CELL_SCHEMA, cell_key

__all__ = ["CellStore", "cell_key", "reuse", "entry_key_problem"]
log = logging.getLogger("facebench")
SCHEMA = CELL_SCHEMA


class CellStore:
    """`get`/`put` whole cell results by key, under `<cache>/cells/`."""

    def __init__(self, root: Path):
        self.root = root / "cells" / f"v{SCHEMA}"
        self.writable = True

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored cell, or None when absent, truncated, corrupt (deleted) or holding another key (a file
        renamed over this cell's: never reused)."""
        path = self.path(key)
        entry = read_entry(path, _load_cell)
        if entry is None:
            return None
        problem = entry_key_problem(path, entry)
        if problem:
            log.warning("facebench cell cache: %s; scoring the cell again", problem)
            return None
        cell = entry["cell"]
        return cell if isinstance(cell, dict) else None

    def put(self, key: str, payload: dict[str, Any]) -> None:
        """Store a cell (atomically). An unwritable cache was already reported by the embedding store."""
        if not self.writable:
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            blob = json.dumps({"key": key, "cell": payload}, separators=(",", ":"), default=_jsonable).encode()
        except OSError:
            self.writable = False
            return
        except (TypeError, ValueError) as exc:
            log.info("facebench cell cache: not storing %s (%s)", key, exc)
            return
        write_entry(self.path(key), blob)


def _load_cell(payload: memoryview) -> dict[str, Any]:
    data = json.loads(bytes(payload))
    if not isinstance(data, dict) or "cell" not in data:
        raise ValueError("not a cell")
    return data


def entry_key_problem(path: Path, entry: dict[str, Any]) -> str | None:
    """Why a cell entry read from `path` must not be used for the key its name says, or None."""
    stored = entry.get("key")
    if stored != path.stem:
        return f"{path} holds the cell of key {stored!r}, not {path.stem!r} (renamed or copied over?)"
    return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON data")


def reuse(payload: dict[str, Any], nodeid: str | None) -> CellResult:
    """A stored cell as this run's result: the records name this test, and the stats say it was reused."""
    result = CellResult.from_payload(payload)
    for record in result.records:
        record["nodeid"] = nodeid
    images = result.stats.get("embedding", {}).get("images", 0)
    result.stats = {
        **result.stats,
        "cell_cache": "hit",
        "embedding": {"images": images, "cache_hits": 0, "cache_misses": 0, "embedded": 0},
    }
    return result
