"""Cell-result cache: a grid cell whose inputs have not changed is not scored again.

A warm embedding cache still pays for torch's start-up, the distances and thousands of bootstrap
resamples. When nothing that changes a cell's numbers has changed, its whole result (metrics, per-row
values, scoring facts) is reused instead, and neither torch nor scipy is imported. Gates, thresholds,
baselines and references are applied to the result afterwards, so editing one re-runs in seconds.

The key covers what the embedding key covers (`model.identity()`, layers, pooling, preprocessing,
precision, decoder, device type, library versions) plus:
- the task's whole state after loading (options, parsed labels and ratings, bootstrap settings);
- the content hash of every image and of every file the task names (pairs, ratings, human RDM);
- the source of facebench and of the folders defining the model's and the task's classes.

A cell whose state holds something that cannot be keyed safely (an arbitrary object) is not cached.
Entries are written atomically with a CRC, like embeddings; a corrupt entry is deleted and recomputed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import logging
import os
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .cache import layer_key, package_version, read_entry, write_entry
from .images import content_hash

if TYPE_CHECKING:
    from .evaluate import CellResult
    from .model import BaseModel
    from .options import EngineOptions
    from .tasks.base import BaseTask

log = logging.getLogger("facebench")
SCHEMA = "1"
GATING_ATTRIBUTES = frozenset({"thresholds", "tolerances", "reference"})  # change verdicts, not numbers
VERSIONED = ("torch", "torchvision", "transformers", "numpy", "scipy", "scikit-learn", "pandas", "pillow")


class Unkeyable(Exception):
    """A value whose identity cannot be captured in a key: the cell is scored every time."""


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


def cell_key(model: BaseModel, task: BaseTask, options: EngineOptions) -> str | None:
    """The key of a loaded task's cell with `model`, or None when something in it cannot be keyed."""
    from .evaluate import readout_layer

    try:
        task_state = {name: plain(value) for name, value in sorted(vars(task).items())
                      if not name.startswith("_") and name not in GATING_ATTRIBUTES}
        files = {str(p): content_hash(p) for p in task.images}
        files.update({value: content_hash(Path(value)) for value in _strings(task_state)
                      if value not in files and _is_file(value)})
        parts = {
            "schema": SCHEMA, "facebench": facebench_source(),
            "model_name": model.name, "model": plain(model.identity()), "model_class": qualified(type(model)),
            "model_source": class_source(type(model)), "layers": list(model.layers),
            "pooling": dict(model.pooling), "readout": readout_layer(model),
            "preprocessing": plain(model.preprocessing.as_dict()),
            "task_class": qualified(type(task)), "task_source": class_source(type(task)),
            "task": task_state, "files": files,
            "precision": options.precision, "decode": options.decode, "device_type": device_type(options.device),
            "versions": {name: package_version(name) for name in VERSIONED},
        }
    except Unkeyable as exc:
        log.info("facebench cell cache: %s × %s is scored every time (%s)", model.name, task.name, exc)
        return None
    return layer_key(parts)


def reuse(payload: dict[str, Any], nodeid: str | None) -> CellResult:
    """A stored cell as this run's result: the records name this test, and the stats say it was reused."""
    from .evaluate import CellResult

    result = CellResult.from_payload(payload)
    for record in result.records:
        record["nodeid"] = nodeid
    images = result.stats.get("embedding", {}).get("images", 0)
    result.stats = {**result.stats, "cell_cache": "hit",
                    "embedding": {"images": images, "cache_hits": 0, "cache_misses": 0, "embedded": 0}}
    return result


# --- turning state into key material ------------------------------------------------------------
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
        return {"ndarray": hashlib.blake2b(data.tobytes(), digest_size=16).hexdigest(),
                "shape": list(value.shape), "dtype": str(value.dtype)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [plain(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"dataclass": qualified(type(value)),
                **{f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if type(value).__module__.startswith("pandas"):
        import pandas as pd

        if isinstance(value, (pd.Series, pd.DataFrame, pd.Index)):
            hashed = pd.util.hash_pandas_object(value, index=True).to_numpy()
            columns = [str(c) for c in value.columns] if isinstance(value, pd.DataFrame) else None
            return {"pandas": hashlib.blake2b(hashed.tobytes(), digest_size=16).hexdigest(), "columns": columns}
    if inspect.isfunction(value) or inspect.isclass(value) or inspect.isbuiltin(value):
        return {"callable": qualified(value), "source": module_source(getattr(value, "__module__", None))}
    raise Unkeyable(f"cannot key a {type(value).__name__}")


def qualified(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"


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


# --- source digests -----------------------------------------------------------------------------
def _folder_digest(folder: str, recursive: bool) -> str:
    """Hash of the .py files in `folder` (names and bytes; re-read only when a file's size or mtime changes)."""
    root = Path(folder)
    files = sorted(root.rglob("*.py") if recursive else root.glob("*.py"))
    return _files_digest(str(root), tuple((str(f), *_stat(f)) for f in files))


def _stat(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


@cache
def _files_digest(root: str, files: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for name, _size, _mtime in files:
        digest.update(os.path.relpath(name, root).encode())
        digest.update(Path(name).read_bytes())
    return digest.hexdigest()


def facebench_source() -> str:
    """The plugin's own code: scoring and statistics live here, so any edit rescores."""
    return _folder_digest(str(Path(__file__).parent), recursive=True)


def module_source(module_name: str | None) -> str:
    """Digest of the folder holding a module (its siblings included: helpers change numbers too)."""
    module = sys.modules.get(module_name or "")
    file = getattr(module, "__file__", None)
    if not file:
        raise Unkeyable(f"no source file for module {module_name!r}")
    folder = Path(file).parent
    if folder == Path(__file__).parent or Path(__file__).parent in folder.parents:
        return "facebench"  # covered by facebench_source()
    return _folder_digest(str(folder), recursive=False)


def class_source(cls: type) -> list[str]:
    """Digests of the folders of every class in `cls`'s MRO outside the standard library and builtins."""
    return sorted({module_source(c.__module__) for c in cls.__mro__
                   if c is not object and c.__module__ not in ("builtins", "abc", "typing")})


# --- environment --------------------------------------------------------------------------------
def device_type(option: str) -> str:
    """The device type `--facebench-device` resolves to, without importing torch when it is not loaded.
    A wrong guess for `auto` costs a miss, or reuses results equal to float tolerance."""
    if option == "cpu" or option.startswith("cuda"):
        return option.split(":")[0]
    torch = sys.modules.get("torch")
    if torch is not None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1") or "+cpu" in package_version("torch"):
        return "cpu"
    return "cuda" if os.path.exists("/dev/nvidiactl") else "cpu"
