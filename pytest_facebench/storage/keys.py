"""One builder for every cache key: embedding keys (one per layer) and cell keys.

A cell key is the embedding inputs plus the task's inputs, so whatever re-embeds (a model's code or the user
modules it imports, its arguments and weights, preprocessing, alignment and the dlib/opencv versions that do
it, precision, decoder, device type, torch) also rescores. On top, a cell key holds the task's state, the
content of every file it names (`pairs_sha256` among them), the sources of the task's class and of this
package, and the versions of the libraries that score.

`embedding_inputs` and `cell_inputs` return the parts (JSON-able, for provenance and for tests that compare
them); `embedding_keys` and `cell_key` hash them. Nothing here imports torch: a fully reused run stays light.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engine.images import content_hash
from ..engine.options import device_type
from .cache import layer_key, package_version
from .fingerprint import (
    Unkeyable,
    class_source,
    facebench_source,
    file_sha256,
    inside_package,
    local_imports,
    plain,
    qualified,
)

if TYPE_CHECKING:
    from ..engine.model import BaseModel
    from ..engine.options import EngineOptions
    from ..tasks.base import BaseTask

log = logging.getLogger("facebench")
CELL_SCHEMA = "2"
FACES = "__faces__"  # the store key whose rows are each image's alignment outcome (code, faces found)
# Libraries whose versions change scores (not embeddings): part of every cell key.
SCORING_LIBRARIES = ("numpy", "scipy", "scikit-learn", "pandas", "pillow")


def version(distribution: str) -> str:
    """An installed distribution's version without its local part (`2.3.1+cu121` → `2.3.1`)."""
    return package_version(distribution).split("+")[0]


def decoder(model: BaseModel, decode: str) -> str:
    """The JPEG decoder, part of the embedding key: PIL in the loader workers, the only one."""
    return "pil"


def embedding_inputs(model: BaseModel, options: EngineOptions, device: str | None = None) -> dict[str, Any]:
    """Everything that changes a model's embeddings, for every layer: `model.identity()` (class, code and the
    user modules it imports, arguments, weights), preprocessing, alignment (with the versions of the
    libraries that align), precision, decoder, device type and torch's version. Raises `Unkeyable`.
    `device` is the resolved device type when known (the engine's), else derived from the options."""
    inputs: dict[str, Any] = {
        "model": model.identity(),
        "preprocessing": model.preprocessing.as_dict(),
        "precision": options.precision,
        "device_type": device or device_type(options.device),
        "decode": decoder(model, options.decode),
        "torch": version("torch"),
        "torchvision": version("torchvision"),
    }
    if "transformers" in type(model).__module__ or getattr(model, "uses_transformers", False):
        inputs["transformers"] = version("transformers")
    if model.alignment.active:  # detector, selection, policy, template and the libraries (dlib, opencv)
        inputs["alignment"] = model.alignment.aligner().describe()
    return inputs


def embedding_keys(inputs: dict[str, Any], model: BaseModel) -> dict[str, str]:
    """The store key of each layer (and of the face outcomes for a model that aligns) from `inputs`."""
    keys = {layer: layer_key({**inputs, "layer": layer, "pooling": model.pooling[layer]}) for layer in model.layers}
    if model.alignment.active:
        keys[FACES] = layer_key({**inputs, "layer": FACES})
    return keys


def pairs_sha256(task: BaseTask) -> str | None:
    """The full sha256 of the task's pairs file (of the pack for a `.bin`), or None when it has none."""
    if getattr(task, "pack_sha256", None):
        return str(task.pack_sha256)
    path = getattr(task, "pairs_path", None)
    if path is None or not Path(path).is_file():
        return None
    return file_sha256(Path(path))


def task_inputs(task: BaseTask) -> dict[str, Any]:
    """Everything of a loaded task that changes its scores: its class and code, its whole state (options,
    parsed labels and ratings), the callables it uses (by source), and the content of every image and every
    file its state names, the pairs file's full sha256 among them. Raises `Unkeyable`."""
    state = {name: plain(value) for name, value in sorted(vars(task).items()) if not name.startswith("_")}
    files = {str(p): content_hash(p) for p in task.images}
    files.update(
        {value: content_hash(Path(value)) for value in _strings(state) if value not in files and _is_file(value)}
    )
    return {
        "task_class": qualified(type(task)),
        "task_source": class_source(type(task)),
        "task": state,
        "callables": {name: plain(fn) for name, fn in task.callables().items()},
        "files": files,
        "pairs_sha256": pairs_sha256(task),
    }


def cell_inputs(model: BaseModel, task: BaseTask, options: EngineOptions) -> dict[str, Any]:
    """The embedding inputs of `model`, the task's inputs, the model's layers, pooling and readout, this
    package's source and the scoring libraries' versions. Raises `Unkeyable`."""
    return {
        "schema": CELL_SCHEMA,
        "facebench": facebench_source(),
        "embedding": embedding_inputs(model, options),
        "model_name": model.name,
        "model_class": qualified(type(model)),
        "model_source": class_source(type(model)),
        "layers": list(model.layers),
        "pooling": dict(model.pooling),
        "readout": model.readout_layer(),
        **task_inputs(task),
        "versions": {name: version(name) for name in SCORING_LIBRARIES},
    }


def cell_key(model: BaseModel, task: BaseTask, options: EngineOptions) -> str:
    """The key of a loaded task's cell with `model`. Raises `Unkeyable` when something in it cannot be
    described (the cell is then scored every time)."""
    try:
        inputs = cell_inputs(model, task, options)
    except Unkeyable as exc:
        log.info("facebench cell cache: %s × %s is scored every time (%s)", model.name, task.name, exc)
        raise
    return layer_key(inputs)


def cell_sources(model: BaseModel, task: BaseTask) -> dict[str, Any]:
    """What a cell's numbers came from that a later run can check without building anything: this package's
    source digest and the sha256 of each user code file of the model and the task (with the user modules they
    import, wherever on `sys.path`), of the task's callables, of the pairs file and of a weights file. A
    partial (`-k`) run keeps an earlier cell of a deselected test only while `stale_sources` finds nothing."""
    files: set[Path] = set()
    objects: list[Any] = [type(model), type(task), *task.callables().values()]
    for obj in objects:
        for cls in getattr(obj, "__mro__", [obj]):
            module = sys.modules.get(getattr(cls, "__module__", "") or "")
            file = getattr(module, "__file__", None)
            if file and not inside_package(Path(file).resolve()):
                files |= local_imports(Path(file))
    for extra in (getattr(task, "pairs_path", None), model.weights_path()):
        if extra is not None and Path(extra).is_file():
            files.add(Path(extra).resolve())
    return {"facebench": facebench_source(), "files": {str(f): file_sha256(f) for f in sorted(files)}}


def stale_sources(sources: Any) -> list[str]:
    """The inputs recorded by `cell_sources` that changed since (edited, or gone); empty when none did.
    A record without sources (an older format) is stale: nothing says it is not."""
    if not isinstance(sources, dict) or not isinstance(sources.get("files"), dict):
        return ["(no record of its sources)"]
    changed = [] if sources.get("facebench") == facebench_source() else ["pytest_facebench"]
    for name, sha in sources["files"].items():
        try:
            if file_sha256(Path(name)) != sha:
                changed.append(name)
        except OSError:
            changed.append(f"{name} (gone)")
    return changed


def model_kwargs(model: BaseModel) -> str | None:
    """The model's constructor arguments as sorted JSON (for provenance: a baseline made with other
    arguments is not like-for-like); None when they cannot be described."""
    try:
        return json.dumps(model.identity()["arguments"], sort_keys=True, default=str)
    except Unkeyable:
        return None


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
