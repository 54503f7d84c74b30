"""One grid cell: embed a task's images with a model, compute distances per layer, score them.

Shared by the `facebench` fixture and the programmatic `run()`; knows nothing about pytest.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError, ModelError, list_some
from ..outputs.results import CellResult, metric_record
from ..storage.cell_cache import reuse
from ..storage.fingerprint import Unkeyable
from ..storage.keys import cell_key, cell_sources, model_kwargs, pairs_sha256
from ..tasks.base import BaseTask
from .distances import distance_name
from .model import BaseModel

if TYPE_CHECKING:
    from ..storage.cell_cache import CellStore
    from .engine import Embeddings, Engine
    from .options import EngineOptions
    from .warm import CachedEmbeddings, WarmEngine


def evaluate_cached(
    engine: Callable[[], Engine],
    options: EngineOptions,
    cells: CellStore | None,
    model: BaseModel,
    task: BaseTask,
    nodeid: str | None = None,
    warm: Callable[[], WarmEngine | None] | None = None,
) -> CellResult:
    """`evaluate_cell`, or the stored result of a cell whose inputs are all unchanged (`cell_cache.py`).
    `engine` is called only on a miss: a fully reused run never imports torch. `warm` (`warm.WarmEngine`), when
    given, serves a miss whose embeddings are all in the store, on the CPU, without torch either."""
    task.load()
    key, unkeyable = None, ""
    if cells is not None:
        try:
            key = cell_key(model, task, options)
        except Unkeyable as exc:
            unkeyable = f"cell results not cached: {exc}"
    stored = cells.get(key) if cells is not None and key is not None else None
    if stored is not None:
        result = reuse(stored, nodeid)
        result.stats["sources"] = cell_sources(model, task)
        return result
    server = warm() if warm is not None else None
    embeddings = server.embed(model, task.images) if server is not None else None
    if server is not None and embeddings is not None:
        result = score_cell(server, model, task, embeddings, nodeid=nodeid)
    else:
        result = evaluate_cell(engine(), model, task, nodeid=nodeid)
    result.stats["sources"] = cell_sources(model, task)
    result.stats["cell_cache"] = "off" if cells is None else ("unkeyable" if key is None else "miss")
    if unkeyable:
        result.stats["cell_cache_note"] = unkeyable
    if cells is not None and key is not None:
        cells.put(key, result.to_payload())
    return result


def evaluate_cell(engine: Engine, model: BaseModel, task: BaseTask, nodeid: str | None = None) -> CellResult:
    """Embed (once per distinct image), compute every layer's per-row values (pair distances, or what
    the task's `layer_values` gives) on the device, score."""
    task.load()
    try:
        dropped = engine.dropped_images(model, task.images)  # on_missing = "drop": rows with a faceless image go
        landmarks = derived_landmarks(engine, model, task.images)  # derived images needing landmarks, unaligned
        if model.alignment.on_missing == "drop":
            dropped |= {path for path, source in landmarks.items() if source == "missing"}
        if dropped:
            task = task.without_images(dropped)
        embeddings = engine.embed(model, task.images)
    except DataError as exc:  # name the task too: the same image set may serve several
        raise DataError(f"task '{task.name}' ({task.pairs_path}): {exc}") from None
    if dropped and model.alignment.active:
        embeddings.stats.faces["dropped_images"] = len(dropped)
        embeddings.stats.faces["dropped_rows"] = task.dropped_rows
    return score_cell(engine, model, task, embeddings, landmarks, nodeid)


def score_cell(
    engine: Engine | WarmEngine,
    model: BaseModel,
    task: BaseTask,
    embeddings: Embeddings | CachedEmbeddings,
    landmarks: dict[Any, str] | None = None,
    nodeid: str | None = None,
) -> CellResult:
    """Per-row values (on `engine.device`) and metrics of every layer from the task's embeddings; `landmarks`:
    where derived images' landmarks came from (`derived_landmarks`)."""
    landmarks = landmarks or {}
    distances = task.pair_rows().reset_index(drop=True)
    records: list[dict[str, Any]] = []
    readout = model.readout_layer()
    columns: dict[str, str] = {}
    provenance = {"kwargs": model_kwargs(model), "pairs_sha256": pairs_sha256(task)}
    for index, layer in enumerate(model.layers):
        values = task.layer_values(embeddings.layers[layer], engine.device)
        _require_finite(values, model, task, layer, distances)
        prefixed = layer in distances or task.value_name != "distance"
        column = f"{task.value_name}:{layer}" if prefixed else layer  # e.g. rank:<layer> for identification
        distances[column] = values
        columns[layer] = column
        context = {
            "model": model.name,
            "layer": layer,
            "layer_index": index,
            "task": task.name,
            "task_type": task.type,
            "distance": distance_name(task.distance),
            "pooling": model.pooling[layer],
            "preprocessing": model.preprocessing.describe(),
            "precision": engine.options.precision,
            "device": str(engine.device),
            "weights": str(model.weights_identity()),
            **provenance,
            "readout": layer == readout,
            "nodeid": nodeid,
        }
        if model.alignment.active:
            context["alignment"] = json.dumps(model.alignment.as_dict(), sort_keys=True)
        if task.derive:
            context["derive"] = json.dumps({k: list(v) for k, v in task.derive.items()}, sort_keys=True)
        faces = "; ".join(
            p for p in (face_note(embeddings.stats.faces), landmark_note(landmarks, task.dropped_rows)) if p
        )
        for metric in task.score(np.asarray(values)):
            if faces:
                metric.note = "; ".join(part for part in (metric.note, faces) if part)
            records.append(metric_record(metric, **context, headline=metric.metric == task.headline_metric))
    if task.headline_metric != task.headline and not any(r["headline"] for r in records):
        computed = ", ".join(dict.fromkeys(str(r["metric"]) for r in records))
        raise ConfigError(
            f"task '{task.name}': its headline '{task.headline_metric}' is not among the metrics it computed "
            f"with its options ({computed})"
        )
    stats = {
        "embedding": embeddings.stats.as_dict(),
        "task": task.describe(),
        "engine": engine.provenance(),
        "model": {"arguments": _arguments(model)},
        # where the rows are in the store (the `embeddings` command reads them back from there)
        "store": {"layer_keys": dict(embeddings.keys), "on_missing": model.alignment.on_missing},
    }
    scoring = {**task.scoring(), "columns": columns}
    return CellResult(
        model=model.name, task=task.name, records=records, distances=distances, stats=stats, scoring=scoring
    )


def derived_landmarks(engine: Engine, model: BaseModel, images: list[Any]) -> dict[Any, str]:
    """For a model without alignment, where the landmarks of each derived image that needs them come from
    ('detected', 'central', 'missing'; `faces.stimuli`); {} otherwise."""
    from ..faces.stimuli import DerivedImage, Deriver

    if model.alignment.active or not any(isinstance(p, DerivedImage) and p.needs_landmarks for p in images):
        return {}
    cache = engine.store.root if engine.store.persistent else None
    return Deriver(model.alignment.align, model.alignment.on_missing, cache).whole_image_sources(images)


def landmark_note(sources: dict[Any, str], dropped_rows: int = 0) -> str:
    """'landmarks (68 points) of 12 derived images: 10 detected, 2 in the central square (no face found)'."""
    if not sources:
        return ""
    counts = {s: sum(1 for v in sources.values() if v == s) for s in ("detected", "central", "missing")}
    parts = [f"{counts['detected']} detected"]
    if counts["central"]:
        parts.append(f"{counts['central']} in the central square (no face found, on_missing = 'center_crop')")
    if counts["missing"]:
        parts.append(f"{counts['missing']} without a face: {dropped_rows} row(s) dropped (on_missing = 'drop')")
    return f"landmarks (68 points) of {len(sources)} derived image(s): " + ", ".join(parts)


def _arguments(model: BaseModel) -> Any:
    """The model's constructor arguments as its identity describes them (provenance: `kwargs`)."""
    try:
        return model.identity().get("arguments")
    except Unkeyable:
        return None


def face_note(faces: dict[str, Any]) -> str:
    """'faces (dlib_150, dlib_hog): 10 of 122 images aligned, 112 centre-cropped (no face found), 2 with several
    faces (largest taken)' for a model that aligns; '' otherwise."""
    if not faces:
        return ""
    outcomes = faces.get("outcomes", {})
    parts = [f"{outcomes.get('aligned', 0)} of {faces.get('images', 0)} images aligned"]
    if outcomes.get("center_crop"):
        parts.append(f"{outcomes['center_crop']} centre-cropped (no face found)")
    if faces.get("dropped_images"):
        parts.append(f"{faces['dropped_rows']} row(s) dropped: no face in {faces['dropped_images']} image(s)")
    if faces.get("several_faces"):
        parts.append(f"{faces['several_faces']} with several faces ({faces.get('select')} taken)")
    return f"faces ({faces.get('align')}, {faces.get('detector')}): " + ", ".join(parts)


def _require_finite(values: np.ndarray, model: BaseModel, task: BaseTask, layer: str, rows: pd.DataFrame) -> None:
    """Per-row values (distances, ranks) must be numbers: a NaN would silently shrink every statistic."""
    bad = ~np.isfinite(np.asarray(values, dtype=float))
    if bad.any():
        lines = rows.index[bad].tolist()
        raise ModelError(
            f"model '{model.name}', layer '{layer}', task '{task.name}': {int(bad.sum())} of {len(bad)} "
            f"per-pair values are NaN or infinite (rows {list_some([i + 1 for i in lines], 5)}); "
            f"check the distance '{distance_name(task.distance)}' and the layer's outputs"
        )
