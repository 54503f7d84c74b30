"""Sharding the grid across machines (`--facebench-shard K/N`, or `auto` from a SLURM job array).

Every shard plans the same way from the same collected cells, so shards need no coordination: `plan` keeps a
model's cells on one shard where the balance allows (each model loads once per shard), balancing by the measured
durations of an earlier run (`--facebench-durations`: a run.json or a `{nodeid: seconds}` file, as pytest-split's
`.test_durations`) or, without one, by an estimate (layers × the size of the task's pairs file). Tests that are
not grid cells run on shard 1 only. Each shard writes its own output folder (`<out>/shard-K-of-N`), and records
the whole plan in its run.json, so a merge can name the cells of a shard that never finished.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

AUTO = "auto"


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def folder(self) -> str:
        return f"shard-{self.index}-of-{self.count}"


@dataclass(frozen=True)
class Cell:
    nodeid: str
    model: str | None  # None: a test that is not a grid cell
    cost: float


def parse_shard(value: str) -> Shard | str:
    """`K/N` with 1 <= K <= N, or `auto` (argparse type: a bad value is a usage error when the command line is
    read)."""
    if value == AUTO:
        return AUTO
    head, sep, tail = value.partition("/")
    if not sep or not head.isdigit() or not tail.isdigit():
        raise argparse.ArgumentTypeError(f"expected K/N (e.g. 2/8) or 'auto', got {value!r}")
    index, count = int(head), int(tail)
    if count < 1 or not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"shard {value!r}: K must be between 1 and N (N >= 1)")
    return Shard(index, count)


def shard_from_environment(environ: Mapping[str, str] = os.environ) -> Shard:
    """The shard of a SLURM array job: task id (from SLURM_ARRAY_TASK_MIN, usually 0) and task count."""
    try:
        task = int(environ["SLURM_ARRAY_TASK_ID"])
        count = int(environ["SLURM_ARRAY_TASK_COUNT"])
        first = int(environ.get("SLURM_ARRAY_TASK_MIN", "0"))
    except (KeyError, ValueError):
        raise ValueError(
            "--facebench-shard auto needs SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT (a SLURM job array); "
            "outside one, pass --facebench-shard K/N"
        ) from None
    index = task - first + 1
    if not 1 <= index <= count:
        raise ValueError(f"SLURM_ARRAY_TASK_ID {task} is outside the array of {count} tasks starting at {first}")
    return Shard(index, count)


def load_durations(path: Path) -> dict[str, float]:
    """Seconds per test node id: from a run.json (its `tests`) or a plain `{nodeid: seconds}` JSON file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"durations file {path}: {exc}; expected a run.json or a {{nodeid: seconds}} file") from None
    if isinstance(data, dict) and isinstance(data.get("tests"), dict):
        data = {k: v.get("duration_s") for k, v in data["tests"].items() if isinstance(v, dict)}
    if not isinstance(data, dict):
        raise ValueError(f"durations file {path}: expected a run.json or a {{nodeid: seconds}} object")
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float)) and v >= 0}


def plan(cells: Sequence[Cell], count: int) -> dict[str, int]:
    """nodeid → shard (1-based). Longest-processing-time first over model groups: a model's cells go to the
    least-loaded shard together unless the group alone exceeds a fair share, then its cells are spread one by one.
    Non-cell tests go to shard 1. Deterministic: ties break by shard index and node id."""
    out = {c.nodeid: 1 for c in cells if c.model is None}
    grid = [c for c in cells if c.model is not None]
    loads = [0.0] * count
    total = sum(c.cost for c in grid)
    fair = total / count if count else total
    groups: dict[str, list[Cell]] = {}
    for cell in sorted(grid, key=lambda c: c.nodeid):
        groups.setdefault(str(cell.model), []).append(cell)
    ordered = sorted(groups.items(), key=lambda kv: (-sum(c.cost for c in kv[1]), kv[0]))
    for _, members in ordered:
        cost = sum(c.cost for c in members)
        if cost <= fair * 1.05 or len(members) == 1:
            target = min(range(count), key=lambda i: (loads[i], i))
            loads[target] += cost
            out.update({c.nodeid: target + 1 for c in members})
            continue
        for cell in sorted(members, key=lambda c: (-c.cost, c.nodeid)):
            target = min(range(count), key=lambda i: (loads[i], i))
            loads[target] += cell.cost
            out[cell.nodeid] = target + 1
    return out


def balance(cells: Sequence[Cell], assignment: dict[str, int], count: int) -> dict[str, dict[str, float]]:
    """Per shard ('1'..'N'): its grid cells and their summed cost (the plan's balance, shown and recorded)."""
    out = {str(k): {"cells": 0, "cost": 0.0} for k in range(1, count + 1)}
    for cell in cells:
        if cell.model is not None:
            entry = out[str(assignment[cell.nodeid])]
            entry["cells"] += 1
            entry["cost"] = round(entry["cost"] + cell.cost, 3)
    return out
