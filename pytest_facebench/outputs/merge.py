"""Merging run folders (`python -m pytest_facebench report DIRS... --out MERGED`): the shards of a sharded
run, or runs of one grid over different cells. Every output is derived again from the per-cell records
(`<dir>/cells/*.json`) through the one writer (`write.write_outputs`), so the merged folder equals a single
run's (comparisons.csv recomputed across all models, every figure), with a run.json listing its sources.

Refused, naming what is wrong: a folder without a readable run.json or without records, folders of
different grids, shards run with different precision, decoder or device class, a cell two shards computed
with different values, and a shard plan whose cells no shard finished (never a silently partial report).
Between plain runs of one grid, the later folder wins a cell both hold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import FacebenchError
from .reading import ResultsError, read_records, read_run_strict
from .schema import IDENTITY_KEYS, RECORDS_DIR, cell_payloads, metric_records
from .write import ENVIRONMENT_KEYS, Written, run_info, write_outputs


class MergeError(FacebenchError):
    """Folders that cannot be merged into one run's outputs."""


def merge_dirs(
    dirs: Sequence[Path],
    out: Path,
    *,
    report: bool = True,
    plots: bool = True,
    figure_formats: tuple[str, ...] | None = None,
    dpi: int | None = None,
) -> Written:
    """Merge run folders into `out` (see the module doc); figures in `figure_formats` (default: those the
    folders' reports used) at `dpi`."""
    runs = {Path(d): _run(Path(d)) for d in dirs}
    shards = [d for d, run in runs.items() if "shard" in run]
    if shards and len(shards) != len(runs):
        plain = ", ".join(str(d) for d in runs if d not in shards)
        raise MergeError(f"cannot merge shards with folders that are not shards of the run: {plain}")
    _check_same(runs, shards=bool(shards))
    records: dict[str, dict[str, Any]] = {}
    origin: dict[str, Path] = {}
    for directory in runs:
        found = read_records(directory)
        if not found and not shards:
            raise MergeError(
                f"{directory} has no per-cell records ({RECORDS_DIR}/): only folders written by a run of this "
                f"version merge (`report {directory}` alone still redraws it)"
            )
        for record in found:
            nodeid = record["nodeid"]
            if shards and nodeid in records and not _same_values(records[nodeid], record):
                raise MergeError(
                    f"{nodeid} was run by two shards with different values ({origin[nodeid]} and {directory}); "
                    f"rerun it in one shard"
                )
            if not shards or nodeid not in records:
                records[nodeid], origin[nodeid] = record, directory
    if shards:
        _check_complete(runs, records)
    if not any(r.get("cells") for r in records.values()):
        failed = sorted({str(r.get("outcome")) for r in records.values()}) or ["none ran"]
        raise MergeError(
            f"nothing to merge: no cell of {', '.join(str(d) for d in runs)} produced results "
            f"(outcomes: {', '.join(failed)}); see each folder's run.json"
        )
    return write_outputs(
        out,
        [records[n] for n in sorted(records)],
        _merged_run(runs, [records[n] for n in sorted(records)], bool(shards)),
        report=report,
        plots=plots,
        **_saved_settings(runs, figure_formats, dpi),
    )


def _saved_settings(
    runs: dict[Path, dict[str, Any]], figure_formats: tuple[str, ...] | None, dpi: int | None
) -> dict[str, Any]:
    """What the folders' run.json kept for the writer: model and task order, references, model styles, and
    the figures' formats and dpi (unless given)."""
    return {
        "model_order": _order(runs, "models"),
        "task_order": _order(runs, "tasks"),
        "references": _references(runs),
        "model_styles": _styles(runs),
        "figure_formats": figure_formats or _formats(runs),
        "dpi": dpi or _dpi(runs),
    }


def rewrite_dir(
    directory: Path,
    *,
    plots: bool = True,
    figure_formats: tuple[str, ...] | None = None,
    dpi: int | None = None,
    plot_workers: int | None = None,
) -> Written:
    """`report DIR` in place: every output derived again from the folder's own per-cell records through the
    one writer, as the run wrote them (its run.json, order, references, styles; figures in `figure_formats`,
    default the folder's). A folder without records (hand-made, or from an older version) is a `MergeError`."""
    directory = Path(directory)
    runs = {directory: _run(directory)}
    records = read_records(directory)
    if not records:
        raise MergeError(f"{directory} has no per-cell records ({RECORDS_DIR}/)")
    return write_outputs(
        directory,
        sorted(records, key=lambda r: r["nodeid"]),
        runs[directory],
        plots=plots,
        **_saved_settings(runs, figure_formats, dpi),
        force=True,
        plot_workers=plot_workers,
    )


def is_shard_dir(directory: Path) -> bool:
    try:
        return "shard" in read_run_strict(directory)
    except ResultsError:
        return False


def _run(directory: Path) -> dict[str, Any]:
    try:
        return read_run_strict(directory)
    except ResultsError as exc:
        raise MergeError(f"cannot merge {directory}: {exc}; its provenance cannot be checked") from None


def identity_of(run: dict[str, Any]) -> dict[str, Any]:
    """The grid and the settings a folder's cells were computed with (older run.json: from grid/engine)."""
    identity = dict(run.get("identity") or {})
    identity["grid_sha256"] = (run.get("grid") or {}).get("sha256") or identity.get("grid_sha256")
    identity.setdefault("precision", (run.get("engine") or {}).get("precision"))
    return {k: identity.get(k) for k in IDENTITY_KEYS}


def _check_same(runs: dict[Path, dict[str, Any]], shards: bool) -> None:
    identities = {d: identity_of(r) for d, r in runs.items()}
    keys = IDENTITY_KEYS if shards else ("grid_sha256",)
    for key in keys:
        values = {str(i[key]) for i in identities.values()}
        if len(values) > 1:
            what = {"grid_sha256": "grid", "device_type": "device class"}.get(key, key)
            listing = "; ".join(f"{d} ({what} {_short(i[key], key)})" for d, i in identities.items())
            kind = "shards" if shards else "folders"
            plural = "device classes" if key == "device_type" else f"{what}s"
            raise MergeError(f"the {kind} ran different {plural} and cannot be merged: {listing}")


def _short(value: Any, key: str) -> str:
    return str(value)[:12] if key == "grid_sha256" else str(value)


def _check_complete(runs: dict[Path, dict[str, Any]], records: dict[str, dict[str, Any]]) -> None:
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
        raise MergeError(f"cannot merge: {shards}{len(missing)} planned cell(s) did not finish: {names}")


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


def _references(runs: dict[Path, dict[str, Any]]) -> list[dict[str, Any]]:
    from ..report.data import load_references

    references: list[dict[str, Any]] = []
    for directory in runs:
        references += [r for r in load_references(directory) if r not in references]
    return references


def _styles(runs: dict[Path, dict[str, Any]]) -> dict[str, dict[str, str]]:
    styles: dict[str, dict[str, str]] = {}
    for run in runs.values():
        styles.update(run.get("model_styles") or {})  # per model: later folders win
    return styles


def _formats(runs: dict[Path, dict[str, Any]]) -> list[str] | None:
    from ..report.data import read_manifest

    formats = [f for d in runs for f in (read_manifest(d).get("formats") or []) if isinstance(f, str)]
    return list(dict.fromkeys(["png", *formats])) if formats else None


def _dpi(runs: dict[Path, dict[str, Any]]) -> int | None:
    from ..report.data import read_manifest

    found = [read_manifest(d).get("dpi") for d in runs]
    return next((d for d in found if isinstance(d, int) and d > 0), None)


def _merged_run(runs: dict[Path, dict[str, Any]], records: list[dict[str, Any]], shards: bool) -> dict[str, Any]:
    """The merged folder's run.json (`write.run_info`, the one builder): the first folder's settings and
    environment, every folder's tests, per-model counters from the merged records, and the sources."""
    first = next(iter(runs.values()))
    tests: dict[str, Any] = {}
    for run in runs.values():
        tests.update(run.get("tests") or {})
    sources = [
        {
            "dir": str(directory),
            "started": run.get("started"),
            "duration_s": run.get("duration_s"),
            "git_commit": run.get("git_commit"),
            **(
                {
                    "index": (run.get("shard") or {}).get("index"),
                    "count": (run.get("shard") or {}).get("count"),
                    "host": (run.get("shard") or {}).get("host") or run.get("host"),
                }
                if shards
                else {}
            ),
        }
        for directory, run in runs.items()
    ]
    own = ("started", "duration_s", "interrupted", "engine", "models", "tests", *ENVIRONMENT_KEYS)
    drop = (*own, "shard", "shards", "cells", "unfinished", "merged_from", "merged", "metrics")
    return run_info(
        started=min(str(r.get("started") or "") for r in runs.values()) or str(first.get("started") or ""),
        duration_s=sum(float(r.get("duration_s") or 0) for r in runs.values()),
        interrupted=any(bool(r.get("interrupted")) for r in runs.values()),
        tests=tests,
        payloads=cell_payloads(records),
        engine=first.get("engine") or {},
        environment=first,
        **{k: v for k, v in first.items() if k not in drop},
        merged_from=sources,
        merged=True,
        **({"shards": sorted(sources, key=lambda s: s["index"] or 0)} if shards else {}),
    )
