"""The schema of a run folder, in one place: file names, the columns of results.csv, the per-cell record
(one per benchmark test, `cells/<test>.json`) and the pieces of run.json derived from records.

Pure data and functions: no pandas, no torch (the lowest layer; readers and writers build on it)."""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path
from typing import Any

RECORD_FORMAT = "facebench-record/1"
RECORDS_DIR = "cells"
LEASE_STEM = ".facebench"
INPUTS_FILE = ".facebench-inputs"
SHARD_PLAN = "shard_plan.json"  # in a shard's output folder: the plan of the whole grid
RESULTS_FILE = "results.csv"
RUN_FILE = "run.json"
COMPARISONS_FILE = "comparisons.csv"

# The columns of results.csv, in order. Records may carry more (they follow these).
RESULT_COLUMNS = [
    "model",
    "layer",
    "layer_index",
    "task",
    "task_type",
    "metric",
    "condition",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "protocol",
    "ci_method",
    "distance",
    "pooling",
    "preprocessing",
    "precision",
    "device",
    "weights",
    "gate",
    "gate_bound",
    "note",
    "readout",
    "headline",
    "nodeid",
]
# Columns read back as text (never as numbers or NaN).
TEXT_COLUMNS = (
    "model",
    "layer",
    "task",
    "task_type",
    "metric",
    "condition",
    "protocol",
    "note",
    "nodeid",
    "distance",
    "pooling",
    "preprocessing",
    "precision",
    "device",
    "weights",
)
REQUIRED_COLUMNS = ("model", "layer", "task", "metric", "value")
ROW_KEY = ("model", "layer", "task", "metric", "condition")  # one results.csv row
# What records must share to be kept together in one run's outputs (besides the grid sha256).
IDENTITY_KEYS = ("grid_sha256", "precision", "decode", "device_type")


def record_path(out_dir: Path, nodeid: str) -> Path:
    """`<out>/cells/<slug>-<digest>.json`: one file per test node id."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", nodeid)[-100:].strip("_")
    digest = hashlib.blake2b(nodeid.encode(), digest_size=5).hexdigest()
    return Path(out_dir) / RECORDS_DIR / f"{slug}-{digest}.json"


def cell_record(
    nodeid: str, entry: dict[str, Any], identity: dict[str, Any], run_started: str | None
) -> dict[str, Any]:
    """The per-cell record: format, node id, identity (grid sha256 and settings), the run it came from,
    and the test's entry (model, task, outcome, duration_s, reason, cells = payloads, custom metrics)."""
    return {
        "format": RECORD_FORMAT,
        "nodeid": nodeid,
        "identity": identity,
        "run_started": run_started,
        **{k: v for k, v in entry.items() if k != "result"},
    }


def is_record(data: Any) -> bool:
    return isinstance(data, dict) and data.get("format") == RECORD_FORMAT and "nodeid" in data


def metric_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every results.csv row the records hold (cells' metrics, then custom metrics)."""
    return [m for r in records for cell in r.get("cells", []) for m in cell.get("records", [])] + [
        m for r in records for m in r.get("custom", [])
    ]


def cell_payloads(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [cell for r in records for cell in r.get("cells", [])]


def cell_provenance(cell: dict[str, Any]) -> dict[str, Any]:
    """What a cell's numbers were computed from, for baselines and `compare`: the weights, the model's
    constructor arguments (`kwargs`), preprocessing, precision and the pairs file's sha256."""
    first: dict[str, Any] = next(iter(cell.get("records") or []), {})
    stats = cell.get("stats") or {}
    found = {
        "weights": first.get("weights"),
        "kwargs": (stats.get("model") or {}).get("arguments"),
        "preprocessing": first.get("preprocessing"),
        "precision": first.get("precision"),
        "pairs_sha256": (stats.get("task") or {}).get("pairs_sha256"),
    }
    return {k: v for k, v in found.items() if v is not None}


def test_entry(record: dict[str, Any], kept: bool = False) -> dict[str, Any]:
    """A test's line in run.json's `tests`."""
    entry = {
        k: record.get(k) for k in ("model", "task", "outcome", "duration_s", "reason") if record.get(k) is not None
    }
    if kept:
        entry["kept_from"] = record.get("run_started")
    return entry


def model_counters(cells: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per-model counters for run.json from this run's cells (embedding statistics, cells reused/scored)."""
    models: dict[str, dict[str, Any]] = {}
    for cell in cells:
        stats = cell.get("stats", {})
        entry = models.setdefault(cell["model"], {})
        for key, value in stats.get("embedding", {}).items():
            if isinstance(value, (int, float)) and key not in ("batch_size", "images_per_s"):
                entry[key] = round(entry.get(key, 0) + value, 4)
            elif key == "batch_size":
                entry[key] = value or entry.get(key, 0)  # a fully cached cell ran no batch (0)
            elif key in ("compile", "compile_note") and value not in ("", "off"):
                entry[key] = value  # the torch.compile mode the model ran in, or why it ran eagerly
            elif key == "faces" and value:  # alignment policy and outcomes, per task's images
                entry.setdefault(
                    "faces", {k: v for k, v in value.items() if k not in ("images", "outcomes", "several_faces")}
                )
                entry["faces"].setdefault("per_task", {})[cell["task"]] = {
                    "images": value.get("images", 0),
                    **value.get("outcomes", {}),
                    "several_faces": value.get("several_faces", 0),
                }
        reused = stats.get("cell_cache") == "hit"
        entry["cells_reused"] = entry.get("cells_reused", 0) + int(reused)
        entry["cells_scored"] = entry.get("cells_scored", 0) + int(not reused)
        if stats.get("cell_cache_note"):
            entry.setdefault("notes", []).append(f"{cell['task']}: {stats['cell_cache_note']}")
    for entry in models.values():
        forward = entry.get("forward_s", 0)
        entry["images_per_s"] = round(entry.get("embedded", 0) / forward, 1) if forward else None
    return models


def jsonable(value: Any) -> Any:
    """JSON data: NaN and ±inf → null, numpy scalars → Python, paths → strings."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return jsonable(value.item())
    if isinstance(value, Path):
        return str(value)
    return value
