"""Embeddings out of a results dir (`python -m pytest_facebench embeddings`): read from the store, never computed.

A run records, per cell, the store key of every layer it embedded (`stats.store.layer_keys`, see
`evaluate.evaluate_cell`). The images are the grid's tasks' own (derived images included, named
`<condition>:<path>`), their rows looked up in the embedding cache that run.json names. An image without a stored
row is reported, never recomputed.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FacebenchError


class ExportError(FacebenchError):
    """A results dir, model, layer or task that cannot be exported: one line."""


@dataclass
class Exported:
    """The rows found (paths, content hashes, vectors) and the images without a stored row."""

    paths: list[str] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    missing: list[str] = field(default_factory=list)


def _suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f"; did you mean '{close[0]}'?" if close else f"; expected one of {', '.join(choices) or '(none)'}"


def _store_info(results_dir: Path, model: str, layer: str, tasks: list[str]) -> tuple[dict[str, str], str]:
    """The layer's store key per task (from the run's records) and the model's no-face policy."""
    from ..outputs.reading import read_records

    keys: dict[str, str] = {}
    on_missing = "fail"
    cells = [c for r in read_records(results_dir) for c in r.get("cells", []) if c.get("model") == model]
    if not cells:
        raise ExportError(f"{results_dir}: no cell of model '{model}' is recorded in {results_dir / 'cells'}")
    for cell in cells:
        store = cell.get("stats", {}).get("store") or {}
        if cell.get("task") in tasks and layer in store.get("layer_keys", {}):
            keys[cell["task"]] = store["layer_keys"][layer]
            on_missing = store.get("on_missing", on_missing)
    if not keys:
        layers = sorted({k for c in cells for k in (c.get("stats", {}).get("store") or {}).get("layer_keys", {})})
        if not layers:
            raise ExportError(
                f"{results_dir}: the cells of model '{model}' do not record their embedding keys (a run older than "
                "this command); run the grid again (its embeddings are reused) and export then"
            )
        raise ExportError(f"model '{model}' has no layer '{layer}' in this run{_suggest(layer, layers)}")
    return keys, on_missing


def export_embeddings(
    results_dir: Path, model: str, layer: str, task: str | None = None, cache: Path | None = None
) -> Exported:
    """The stored rows of `layer` of `model` for every image of the grid's tasks that the model ran (or `task`)."""
    from ..engine.images import content_hash
    from ..faces.stimuli import DerivedImage, stimulus_key
    from ..grid.builders import build_task
    from ..grid.config import load_grid
    from ..outputs.reading import read_run_strict
    from ..storage.store import EmbeddingStore

    results_dir = Path(results_dir)
    try:
        run = read_run_strict(results_dir)
    except FacebenchError as exc:
        raise ExportError(str(exc)) from None
    grid_path = run.get("grid", {}).get("path")
    if not grid_path or not Path(grid_path).is_file():
        raise ExportError(f"{results_dir / 'run.json'}: the run's grid file {grid_path!r} is not there")
    grid = load_grid(grid_path)
    models = [m.name for m in grid.models]
    if model not in models:
        raise ExportError(f"no model '{model}' in the grid {grid_path}{_suggest(model, models)}")
    specs = [t for t in grid.tasks if t.models is None or model in t.models]
    if task is not None:
        names = [t.name for t in specs]
        if task not in names:
            raise ExportError(f"no task '{task}' of model '{model}' in the grid {grid_path}{_suggest(task, names)}")
        specs = [t for t in specs if t.name == task]
    keys, on_missing = _store_info(results_dir, model, layer, [t.name for t in specs])
    root = cache or Path(run.get("engine", {}).get("cache") or "")
    if not str(root) or not Path(root).is_dir():
        raise ExportError(f"the run's embedding cache {str(root)!r} is not there (pass --cache DIR)")
    store = EmbeddingStore(Path(root))
    exported = Exported()
    vectors: list[np.ndarray] = []
    seen: set[tuple[str, str]] = set()
    try:
        for spec in specs:
            if spec.name not in keys:
                exported.missing.append(f"task '{spec.name}': no cell of this run")
                continue
            images = build_task(spec).images
            hashes = [stimulus_key(p, content_hash(p), on_missing) for p in images]
            block, found = store.get_many(keys[spec.name], hashes)
            for i, (path, row_hash) in enumerate(zip(images, hashes)):
                name = path.describe() if isinstance(path, DerivedImage) else str(path)
                if (keys[spec.name], row_hash) in seen:
                    continue
                seen.add((keys[spec.name], row_hash))
                if not found[i]:
                    exported.missing.append(name)
                    continue
                exported.paths.append(name)
                exported.hashes.append(row_hash)
                vectors.append(np.asarray(block[i], dtype=np.float32))
    finally:
        store.close()
    if vectors:
        exported.vectors = np.stack(vectors)
    return exported


def write_exported(exported: Exported, out: Path) -> None:
    """`.npz` (arrays `path`, `content_hash`, `vector`) or `.parquet` (columns path, content_hash, vector; pyarrow)."""
    from ..files import atomic_write

    suffix = out.suffix.lower()
    if suffix == ".npz":
        import io

        buffer = io.BytesIO()
        np.savez(
            buffer,
            path=np.asarray(exported.paths, dtype=str),
            content_hash=np.asarray(exported.hashes, dtype=str),
            vector=exported.vectors,
        )
        atomic_write(out, buffer.getvalue())
    elif suffix == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ExportError(
                "writing .parquet needs pyarrow: pip install 'pytest-facebench[parquet]' (or write .npz)"
            ) from None
        table = pa.table(
            {
                "path": exported.paths,
                "content_hash": exported.hashes,
                "vector": pa.array(list(exported.vectors), type=pa.list_(pa.float32())),
            }
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        pq.write_table(table, tmp)
        tmp.replace(out)
    else:
        raise ExportError(f"--out {out}: expected a .npz or .parquet file")


def describe(exported: Exported, out: Path, **what: Any) -> str:
    shape = "×".join(str(n) for n in exported.vectors.shape)
    return f"{out}: {len(exported.paths)} embedding(s) ({shape}) of " + ", ".join(
        f"{k} {v}" for k, v in what.items() if v
    )
