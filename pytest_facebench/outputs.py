"""The output folder of a run: one record per benchmark test, written as the test finishes, and every
table, figure and report derived from those records, each written atomically.

```
<out>/cells/<test>.json    a record per test (outcome, metrics, per-pair values), atomic, written at once
<out>/results.csv, summary.csv, distances/, comparisons.csv, run.json, history.jsonl, plots/, report.html
<out>/.facebench.lease     held while a run writes here (a second run into the folder stops at once)
```

A run that selects part of the grid (`-k`, `--deselect`, a shard) keeps the records of the grid's other
tests from earlier runs of the same grid file (same sha256) and settings; records of another grid or other
settings are dropped, never mixed. The pytest session and `run()` both write through `write_outputs`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .files import OutputError, append_line, atomic_csv, atomic_write, check_writable_dir
from .leases import lease_state, read_text, release_lease, take_lease

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("facebench")
RECORDS_DIR = "cells"
LEASE_STEM = ".facebench"
INPUTS_FILE = ".facebench-inputs"
RECORD_FORMAT = "facebench-record/1"


# --- the lock -------------------------------------------------------------------------------------
class OutputLock:
    """One run per output folder: a lease naming the run's pid and host; a dead owner's lease is broken."""

    def __init__(self, out_dir: Path):
        self.out_dir = Path(out_dir)
        self.token: str | None = None

    def acquire(self) -> None:
        check_writable_dir(self.out_dir, "output folder")
        self.token = take_lease(self.out_dir, LEASE_STEM)
        if self.token is None:
            raise OutputError(self._held_message())

    def _held_message(self) -> str:
        path = self.out_dir / f"{LEASE_STEM}.lease"
        text = read_text(str(path))
        try:
            owner = json.loads(text or "")
        except ValueError:
            owner = {}
        owner = owner if isinstance(owner, dict) else {}
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner["time"])) if "time" in owner else "?"
        hint = "" if lease_state(text) == "live" else f"; if that run is gone, delete {path}"
        return (
            f"output folder {self.out_dir} is in use by another run (pid {owner.get('pid', '?')} on host "
            f"{owner.get('host', '?')}, since {since}); wait for it or pass another --facebench-out{hint}"
        )

    def release(self) -> None:
        if self.token is not None:
            release_lease(self.out_dir, LEASE_STEM, self.token)
            self.token = None


# --- records --------------------------------------------------------------------------------------
def record_path(out_dir: Path, nodeid: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", nodeid)[-100:].strip("_")
    digest = hashlib.blake2b(nodeid.encode(), digest_size=5).hexdigest()
    return Path(out_dir) / RECORDS_DIR / f"{slug}-{digest}.json"


def write_record(out_dir: Path, record: dict[str, Any]) -> None:
    """A finished test's record, atomically (it survives a SIGKILL a moment later)."""
    atomic_write(record_path(out_dir, record["nodeid"]), json.dumps(jsonable(record), separators=(",", ":")))


def read_records(out_dir: Path) -> list[dict[str, Any]]:
    """Every readable record of a folder (an unreadable one is logged and skipped)."""
    folder = Path(out_dir) / RECORDS_DIR
    records = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("facebench: skipping unreadable record %s (%s)", path, exc)
            continue
        if isinstance(record, dict) and record.get("format") == RECORD_FORMAT and "nodeid" in record:
            records.append(record)
    return records


@dataclass
class Selection:
    """The records that make up a run's outputs, and where they came from."""

    records: list[dict[str, Any]]
    current: int = 0
    kept: int = 0
    kept_from: list[str] = field(default_factory=list)  # the start times of the runs kept cells come from
    dropped: int = 0


def select_records(
    current: list[dict[str, Any]], stored: list[dict[str, Any]], identity: dict[str, Any], selectable: set[str]
) -> Selection:
    """This run's records, plus stored records of tests this run collected but did not run (deselected),
    when they come from the same grid file and settings (`identity`)."""
    ran = {r["nodeid"] for r in current}
    kept = [
        r
        for r in stored
        if r["nodeid"] not in ran
        and r["nodeid"] in selectable
        and r.get("identity") == identity
        and r.get("outcome") in ("passed", "failed")
    ]
    dropped = len([r for r in stored if r["nodeid"] not in ran]) - len(kept)
    return Selection(
        records=[*current, *kept],
        current=len(current),
        kept=len(kept),
        kept_from=sorted({str(r.get("run_started")) for r in kept}),
        dropped=dropped,
    )


def prune_records(out_dir: Path, keep: list[dict[str, Any]]) -> None:
    """Remove record files not in `keep` (other grids, other settings, tests that no longer exist)."""
    wanted = {record_path(out_dir, r["nodeid"]).name for r in keep}
    folder = Path(out_dir) / RECORDS_DIR
    for path in folder.glob("*.json") if folder.is_dir() else []:
        if path.name not in wanted:
            path.unlink(missing_ok=True)


# --- deriving the outputs -------------------------------------------------------------------------
@dataclass
class Written:
    results: pd.DataFrame
    unchanged: bool = False
    report_path: Path | None = None
    report_error: str | None = None


def metric_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for r in records for cell in r.get("cells", []) for m in cell.get("records", [])] + [
        m for r in records for m in r.get("custom", [])
    ]


def cell_payloads(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [cell for r in records for cell in r.get("cells", [])]


def inputs_digest(records: list[dict[str, Any]], extra: Any) -> str:
    """What every derived output is computed from: the cells (metrics, per-pair values, scoring facts; not
    timings), the custom metrics, the references and order, and the code that writes the outputs."""
    from .fingerprint import facebench_source

    digest = hashlib.blake2b(facebench_source().encode(), digest_size=16)
    for record in sorted(records, key=lambda r: r["nodeid"]):
        cells = [{k: v for k, v in c.items() if k != "stats"} for c in record.get("cells", [])]
        data = jsonable({"cells": cells, "custom": record.get("custom", [])})
        digest.update(json.dumps(data, sort_keys=True, default=str).encode())
    digest.update(json.dumps(jsonable(extra), sort_keys=True, default=str).encode())
    return digest.hexdigest()


def write_outputs(
    out_dir: Path,
    records: list[dict[str, Any]],
    run: dict[str, Any],
    *,
    model_order: list[str] | None = None,
    task_order: list[str] | None = None,
    references: list[dict[str, Any]] | None = None,
    report: bool = True,
    history: dict[str, Any] | None = None,
    baseline: Path | None = None,
    figure_formats: tuple[str, ...] | list[str] = ("png",),
    dpi: int | None = None,
    model_styles: dict[str, dict[str, str]] | None = None,
) -> Written:
    """Derive results.csv, summary.csv, distances/, comparisons.csv, run.json, history.jsonl, plots/ and
    report.html from the records. Outputs whose inputs did not change since they were last written are
    kept as they are (run.json and history.jsonl are always written).

    `figure_formats` (png, svg, pdf; PNG is always written) and `dpi` go to `report.plots.write_plots`;
    `model_styles` (model → {color, label} from the grid, `report.data.model_styles_from_grid`) is kept in
    run.json (`model_styles`), where the figures and a later `report` rebuild read it."""
    from .compare import comparisons_frame
    from .gates import baseline_payload
    from .metrics import remember_scoring
    from .results import results_frame, summary_frame

    out_dir = Path(out_dir)
    metrics = metric_records(records)
    cells = cell_payloads(records)
    for cell in cells:
        remember_scoring(cell.get("scoring"))
    from .relations.compute import with_tag_columns, write_relations

    results = with_tag_columns(results_frame(metrics, model_order, task_order), run.get("model_tags"))
    figure_options = {"formats": list(figure_formats), "dpi": dpi, "model_styles": model_styles or {}}
    relation_inputs = {"relations": run.get("relations"), "model_tags": run.get("model_tags")}
    digest = inputs_digest(
        records,
        {
            "models": model_order,
            "tasks": task_order,
            "references": references,
            "report": report,
            **figure_options,
            **relation_inputs,
        },
    )
    stamp = out_dir / INPUTS_FILE
    unchanged = (
        stamp.is_file()
        and stamp.read_text().strip() == digest
        and (out_dir / "results.csv").is_file()
        and (not report or (out_dir / "report.html").is_file())
    )
    written = Written(results=results, unchanged=unchanged)
    if not unchanged:
        stamp.unlink(missing_ok=True)  # a run killed mid-way must not leave a stamp over half-new outputs
        atomic_csv(out_dir / "results.csv", results)
        atomic_csv(out_dir / "summary.csv", summary_frame(results))
        write_distances(out_dir, cells)
        rank = {m: i for i, m in enumerate(model_order or [])}
        atomic_csv(
            out_dir / "comparisons.csv", comparisons_frame(sorted(cells, key=lambda c: rank.get(c["model"], len(rank))))
        )
        relations = write_relations(out_dir, results, run)  # relations.csv: across models (relations/)
    run = {**run, "metrics": metric_vocabulary(results), **({"model_styles": model_styles} if model_styles else {})}
    atomic_write(out_dir / "run.json", json.dumps(jsonable(run), indent=2) + "\n")
    if baseline is not None:
        atomic_write(baseline, json.dumps(jsonable(baseline_payload(metrics, run)), indent=2) + "\n")
    if history is not None:
        append_line(out_dir / "history.jsonl", json.dumps(jsonable(history), sort_keys=True, default=str))
    if report and not unchanged:
        try:  # figures and report.html; a plotting problem must never lose the tables written above
            from .report.html import write_html
            from .report.plots import DPI, write_plots

            figures = {c["task"]: list((c.get("scoring") or {}).get("figures", [])) for c in cells}
            write_plots(
                out_dir,
                results,
                references or [],
                figures=figures,
                formats=tuple(figure_formats),
                model_styles=model_styles or {},
                dpi=dpi or DPI,
            )
            if relations:
                from .relations.figures import write_relation_figures

                write_relation_figures(
                    out_dir, results, relations, model_styles or {}, tuple(figure_formats), dpi or DPI
                )
            written.report_path = write_html(out_dir, references or [], results=results, run=run)
        except OutputError:
            raise
        except Exception as exc:  # noqa: BLE001
            written.report_error = f"{type(exc).__name__}: {exc}"
    elif report:
        written.report_path = out_dir / "report.html"
    if not written.report_error:
        atomic_write(stamp, digest + "\n")
    return written


def metric_vocabulary(results: Any) -> dict[str, dict[str, Any]]:
    """Display name and direction of every metric in results.csv, so `compare` and `report` can rank and
    label a results dir without importing the task types that produced it."""
    from .metrics import metric_info

    names = sorted(set(results["metric"])) if len(results) else []
    return {m: {"display": metric_info(m).display, "direction": metric_info(m).direction} for m in names}


def write_distances(out_dir: Path, cells: list[dict[str, Any]]) -> None:
    """`distances/<task>/<model>.csv`: the pairs table plus one value column per layer."""
    import pandas as pd

    from .report.tables import safe_name

    for cell in cells:
        if cell.get("distances"):
            path = out_dir / "distances" / safe_name(cell["task"]) / f"{safe_name(cell['model'])}.csv"
            atomic_csv(path, pd.DataFrame(cell["distances"]))


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
