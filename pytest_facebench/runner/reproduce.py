"""`python -m pytest_facebench reproduce RESULTS_DIR [--out NEW]`: rerun a saved run's effective grid
(`<RESULTS_DIR>/grid.toml`) with the run's own pytest arguments, and say per cell whether the numbers are
identical, within the saved run's CIs (naming what differs in the provenance: library versions, device,
precision), or not. A run whose data files changed since (sha256 in grid.toml's `[run]`) is refused by name.

The rerun uses no cache unless asked (`--use-cache`): a reproduction computes every number again.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FacebenchError
from ..grid.gridfile import GRID_FILE, read_saved_grid
from ..storage.fingerprint import file_sha256

# options of the saved command line that the reproduction sets itself (with a value, and flags)
REPLACED = (
    "--facebench-config",
    "--facebench-set",
    "--facebench-sweep",
    "--facebench-out",
    "--facebench-shard",
    "--facebench-durations",
    "--facebench-baseline",
    "--facebench-save-baseline",
    "--facebench-cache",
)
REPLACED_FLAGS = ("--facebench-no-cache", "--facebench-rescore")
KEY = ("model", "layer", "task", "metric", "condition")


class ReproduceError(FacebenchError):
    """A results folder that cannot be reproduced: one line naming the file or key."""


@dataclass
class Plan:
    """How to rerun a saved run."""

    grid: Path
    args: list[str]
    cwd: Path
    out: Path


def plan(results_dir: Path, out: Path | None = None, use_cache: bool = False) -> Plan:
    """Check the folder (grid.toml, data files unchanged) and build the rerun's command line."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ReproduceError(f"{results_dir}: not a folder; expected a results folder written by a run")
    grid = results_dir / GRID_FILE
    if not grid.is_file():
        raise ReproduceError(
            f"{results_dir}: no {GRID_FILE}; reproduce needs the effective grid every pytest run saves in its "
            "results folder (this folder predates it, or was not written by a pytest run)"
        )
    try:
        _, run = read_saved_grid(grid)
    except FacebenchError as exc:
        raise ReproduceError(str(exc)) from None
    for entry in run.get("data") or []:
        path = Path(str(entry.get("file")))
        if not path.is_file():
            raise ReproduceError(f"{grid}: data file {path} is gone; refusing to reproduce")
        now = file_sha256(path)
        if now != entry.get("sha256"):
            raise ReproduceError(
                f"{grid}: data file {path} changed since the run (sha256 {str(entry.get('sha256'))[:12]} then, "
                f"{now[:12]} now); refusing to reproduce"
            )
    target = Path(out) if out is not None else results_dir.with_name(results_dir.name + "-reproduced")
    if target.resolve() == results_dir.resolve():
        raise ReproduceError(f"--out {target}: the reproduction must go to another folder than {results_dir}")
    args = strip_args([str(a) for a in run.get("pytest_args") or []], use_cache)
    args += ["--facebench-config", str(grid.resolve()), "--facebench-out", str(target.resolve())]
    if not use_cache:
        args.append("--facebench-no-cache")
    cwd = Path(str(run.get("cwd") or "."))
    return Plan(grid, args, cwd if cwd.is_dir() else Path.cwd(), target)


def strip_args(args: Sequence[str], keep_cache: bool = False) -> list[str]:
    """The saved pytest arguments without those the reproduction sets (`--opt VALUE` and `--opt=VALUE`)."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        name, eq, _ = arg.partition("=")
        if keep_cache and name in ("--facebench-cache", *REPLACED_FLAGS):
            out.append(arg)
        elif name in REPLACED:
            skip = not eq
        elif arg not in REPLACED_FLAGS:
            out.append(arg)
    return out


def rerun(how: Plan, capture: bool = False) -> subprocess.CompletedProcess[str]:
    """pytest in a fresh interpreter, in the saved run's working directory."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", *how.args], cwd=how.cwd, text=True, capture_output=capture, check=False
    )


@dataclass
class CellVerdict:
    task: str
    model: str
    status: str  # identical | within CI | differs | missing
    metrics: int = 0
    changed: list[str] = field(default_factory=list)  # metric rows whose values differ


def compare(old_dir: Path, new_dir: Path) -> list[CellVerdict]:
    """Per model × task of the saved run: identical (every value equal), within CI (each new value inside the
    saved CI, or equal where there is none), differs, or missing (not in the rerun)."""
    from ..outputs.reading import read_results

    old, new = (_rows(read_results(Path(d))) for d in (old_dir, new_dir))
    cells: dict[tuple[str, str], CellVerdict] = {}
    for key, row in old.items():
        cell = cells.setdefault((key[2], key[0]), CellVerdict(key[2], key[0], "identical"))
        cell.metrics += 1
        other = new.get(key)
        if other is None:
            cell.status = "missing"
            continue
        if _same(row["value"], other["value"]):
            continue
        label = "/".join(p for p in (key[1], key[3], key[4]) if p)
        cell.changed.append(label)
        inside = math.isfinite(other["value"]) and row["ci_low"] <= other["value"] <= row["ci_high"]
        if cell.status == "identical" and inside:
            cell.status = "within CI"
        elif cell.status != "missing" and not inside:
            cell.status = "differs"
    return list(cells.values())


def _rows(frame: Any) -> dict[tuple[str, ...], dict[str, float]]:
    rows = {}
    for record in frame.to_dict("records") if len(frame) else []:
        key = tuple("" if _blank(record.get(k)) else str(record.get(k)) for k in KEY)
        rows[key] = {c: _float(record.get(c)) for c in ("value", "ci_low", "ci_high")}
    return rows


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def provenance_changes(old_run: dict[str, Any], new_run: dict[str, Any]) -> list[str]:
    """What differs between two run.json files among what changes numbers: library versions, devices,
    precision, decoder, torch.compile mode, GPUs, git commit."""
    changes = []
    old_versions, new_versions = old_run.get("versions") or {}, new_run.get("versions") or {}
    for name in sorted(set(old_versions) | set(new_versions)):
        if old_versions.get(name) != new_versions.get(name):
            changes.append(f"{name} {old_versions.get(name, 'absent')} → {new_versions.get(name, 'absent')}")
    old_engine, new_engine = old_run.get("engine") or {}, new_run.get("engine") or {}
    for name in ("devices", "precision"):
        if old_engine.get(name) != new_engine.get(name):
            changes.append(f"{name} {_text(old_engine.get(name))} → {_text(new_engine.get(name))}")
    old_compile, new_compile = old_engine.get("compile") or "off", new_engine.get("compile") or "off"
    if old_compile != new_compile:  # within float tolerance, yet not bit for bit (runs before it have none: off)
        changes.append(f"compile {old_compile} → {new_compile}")
    for name in ("gpus", "git_commit"):
        if old_run.get(name) != new_run.get(name):
            changes.append(f"{name} {_text(old_run.get(name))} → {_text(new_run.get(name))}")
    return changes


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return "none" if value is None else str(value)[:12] if isinstance(value, str) and len(value) == 40 else str(value)


def report_lines(verdicts: list[CellVerdict], changes: list[str]) -> list[str]:
    """One line per cell, then the counts."""
    why = f" (provenance differs: {'; '.join(changes)})" if changes else " (same provenance)"
    lines = []
    for cell in verdicts:
        line = f"{cell.task} · {cell.model}: {cell.status}"
        if cell.status == "identical":
            line += f" ({cell.metrics} values)"
        elif cell.status == "missing":
            line += " (not in the rerun)"
        else:
            line += f" ({len(cell.changed)} of {cell.metrics} values differ: {', '.join(cell.changed[:4])}"
            line += f"{' ...' if len(cell.changed) > 4 else ''}){why}"
        lines.append(line)
    counts = {s: sum(c.status == s for c in verdicts) for s in ("identical", "within CI", "differs", "missing")}
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items()) + f" of {len(verdicts)} cells")
    return lines
