"""Cell-result cache: a grid cell whose inputs have not changed is not scored again.

A warm embedding cache still pays for torch's start-up, the distances and thousands of bootstrap
resamples. When nothing that changes a cell's numbers has changed, its whole result (metrics, per-row
values, scoring facts) is reused instead, and neither torch nor scipy is imported. Gates, thresholds,
baselines and references live on the grid's specs, never on the task, and are applied to the result
afterwards, so editing one re-runs in seconds.

The key covers what the embedding key covers (`model.identity()`, layers, pooling, preprocessing,
precision, decoder, device type, library versions) plus:
- the task's whole state after loading (options, parsed labels and ratings, bootstrap settings);
- the content hash of every image and of every file the task names (pairs, ratings, human RDM);
- the source of facebench and of the folders defining the model's and the task's classes.

A cell whose state holds something that cannot be keyed safely (an arbitrary object) is not cached; the
user callables a task uses (a `distance = "module:function"`) are keyed by their source.
Entries are written atomically with a CRC, like embeddings; a corrupt entry is deleted and recomputed.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .cache import layer_key, package_version, read_entry, write_entry
from .fingerprint import Unkeyable, class_source, facebench_source, plain, qualified
from .images import content_hash
from .options import device_type
from .results import CellResult

if TYPE_CHECKING:
    from .model import BaseModel
    from .options import EngineOptions
    from .tasks.base import BaseTask

log = logging.getLogger("facebench")
SCHEMA = "1"
VERSIONED = ("torch", "torchvision", "transformers", "numpy", "scipy", "scikit-learn", "pandas", "pillow")


class CellStore:
    """`get`/`put` whole cell results by key, under `<cache>/cells/`."""

    def __init__(self, root: Path):
        self.root = root / "cells" / f"v{SCHEMA}"
        self.writable = True

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored cell, or None when absent, truncated or corrupt (a corrupt entry is deleted)."""
        return read_entry(self.path(key), _load_cell)

    def put(self, key: str, payload: dict[str, Any]) -> None:
        """Store a cell (atomically). An unwritable cache was already reported by the embedding store."""
        if not self.writable:
            return
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            blob = json.dumps(payload, separators=(",", ":"), default=_jsonable).encode()
        except OSError:
            self.writable = False
            return
        except (TypeError, ValueError) as exc:
            log.info("facebench cell cache: not storing %s (%s)", key, exc)
            return
        write_entry(self.path(key), blob)


def _load_cell(payload: memoryview) -> dict[str, Any]:
    data = json.loads(bytes(payload))
    if not isinstance(data, dict):
        raise ValueError("not a cell")
    return data


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON data")


def cell_key(model: BaseModel, task: BaseTask, options: EngineOptions) -> str:
    """The key of a loaded task's cell with `model`. Raises `Unkeyable` when something in it cannot be
    described (the cell is then scored every time)."""
    try:
        task_state = {name: plain(value) for name, value in sorted(vars(task).items()) if not name.startswith("_")}
        files = {str(p): content_hash(p) for p in task.images}
        files.update(
            {
                value: content_hash(Path(value))
                for value in _strings(task_state)
                if value not in files and _is_file(value)
            }
        )
        parts = {
            "schema": SCHEMA,
            "facebench": facebench_source(),
            "model_name": model.name,
            "model": plain(model.identity()),
            "model_class": qualified(type(model)),
            "model_source": class_source(type(model)),
            "layers": list(model.layers),
            "pooling": dict(model.pooling),
            "readout": model.readout_layer(),
            "preprocessing": plain(model.preprocessing.as_dict()),
            "task_class": qualified(type(task)),
            "task_source": class_source(type(task)),
            "task": task_state,
            "callables": {name: plain(fn) for name, fn in task.callables().items()},
            "files": files,
            "precision": options.precision,
            "decode": options.decode,
            "device_type": device_type(options.device),
            "versions": {name: package_version(name) for name in VERSIONED},
        }
    except Unkeyable as exc:
        log.info("facebench cell cache: %s × %s is scored every time (%s)", model.name, task.name, exc)
        raise
    return layer_key(parts)


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


def _strings(data: Any) -> list[str]:
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [s for v in data.values() for s in _strings(v)]
    if isinstance(data, list):
        return [s for v in data for s in _strings(v)]
    return []


def _is_file(value: str) -> bool:
    if len(value) > 4096 or "\n" in value:
        return False
    try:
        return os.path.isfile(value)
    except (OSError, ValueError):
        return False
