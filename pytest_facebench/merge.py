"""Merging the output folders of a sharded run (`python -m pytest_facebench report SHARD_DIRS... --out MERGED`).

The merge reads each shard's records (`<shard>/cells/*.json`, written as its tests finished) and derives every
output from them through the one output pipeline (`outputs.write_outputs`), so the merged folder equals a single
run's: the same results.csv values, comparisons.csv recomputed across all models, a run.json listing the shards
and their hosts. It refuses, naming what is wrong, shards of different grids, a cell two shards computed with
different values, and a plan whose cells no shard finished (a shard that died): never a silently partial report.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import FacebenchError
from .outputs import metric_records, read_records, write_outputs

SHARD_PLAN = "shard_plan.json"


def is_shard_dir(directory: Path) -> bool:
    return "shard" in _run(directory)


def _run(directory: Path) -> dict[str, Any]:
    try:
        data = json.loads((Path(directory) / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def merge_shards(dirs: Sequence[Path], out: Path, *, report: bool = True) -> Any:
    """Merge shard folders into `out` (see the module doc); returns the merged results frame."""
    runs = {Path(d): _run(Path(d)) for d in dirs}
    grids = {str((run.get("grid") or {}).get("sha256")): d for d, run in runs.items()}
    if len(grids) > 1:
        listing = "; ".join(f"{d} (grid {str((r.get('grid') or {}).get('sha256'))[:12]})" for d, r in runs.items())
        raise FacebenchError(f"the shards ran different grids and cannot be merged: {listing}")
    records: dict[str, dict[str, Any]] = {}
    origin: dict[str, Path] = {}
    for directory in runs:
        for record in read_records(directory):
            nodeid = record["nodeid"]
            if nodeid in records:
                if not _same_values(records[nodeid], record):
                    raise FacebenchError(
                        f"{nodeid} was run by two shards with different values ({origin[nodeid]} and {directory}); "
                        f"rerun it in one shard"
                    )
                continue
            records[nodeid] = record
            origin[nodeid] = directory
    planned: dict[str, int] = {}
    for run in runs.values():
        planned.update((run.get("shard") or {}).get("plan") or {})
    count = max([int((r.get("shard") or {}).get("count") or 0) for r in runs.values()] or [0])
    present = {int((r.get("shard") or {}).get("index") or 0) for r in runs.values()}
    absent = sorted(set(range(1, count + 1)) - present)
    missing = sorted(n for n in planned if n not in records or records[n].get("outcome") == "running")
    if absent or missing:
        shards = f"shard(s) {', '.join(f'{i}/{count}' for i in absent)} not given; " if absent else ""
        names = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        raise FacebenchError(f"cannot merge: {shards}{len(missing)} planned cell(s) did not finish: {names}")
    merged_run = _merged_run(runs)
    ordered = [records[n] for n in sorted(records)]
    written = write_outputs(
        out, ordered, merged_run, report=report, model_order=_order(runs, "models"), task_order=_order(runs, "tasks")
    )
    return written.results


def _same_values(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def values(record: dict[str, Any]) -> list[tuple[str, float]]:
        rows = metric_records([record])
        key = ("model", "layer", "task", "metric", "condition")
        return sorted((("|".join(str(r.get(k)) for k in key)), float(r.get("value") or math.nan)) for r in rows)

    va, vb = values(a), values(b)
    return len(va) == len(vb) and all(
        ka == kb and (x == y or (math.isnan(x) and math.isnan(y)) or abs(x - y) <= 1e-12)
        for (ka, x), (kb, y) in zip(va, vb)
    )


def _order(runs: dict[Path, dict[str, Any]], key: str) -> list[str] | None:
    for run in runs.values():
        names = (run.get("grid") or {}).get(key)
        if isinstance(names, list) and names:
            return [str(n) for n in names]
    return None


def _merged_run(runs: dict[Path, dict[str, Any]]) -> dict[str, Any]:
    first = next(iter(runs.values()))
    tests: dict[str, Any] = {}
    for run in runs.values():
        tests.update(run.get("tests") or {})
    shards = [
        {
            "dir": str(directory),
            "index": (run.get("shard") or {}).get("index"),
            "count": (run.get("shard") or {}).get("count"),
            "host": (run.get("shard") or {}).get("host") or run.get("host"),
            "started": run.get("started"),
            "duration_s": run.get("duration_s"),
        }
        for directory, run in runs.items()
    ]
    keep = {k: v for k, v in first.items() if k not in ("tests", "shard", "models", "cells", "unfinished")}
    return {**keep, "tests": tests, "shards": sorted(shards, key=lambda s: s["index"] or 0), "merged": True}
