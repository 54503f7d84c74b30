"""The one writer of a run folder: every table, figure and report derived from the per-cell records
(`schema.cell_record`), each file written atomically. A run, a `-k` subset, an `-n` run, a shard, `run()`
and `report DIRS --out` all write through `write_outputs`; a new output format plugs in through the
`pytest_facebench_write_outputs` hook (`hookspecs.py`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..files import OutputError, append_line, atomic_csv, atomic_write
from ..grid.gridfile import GRID_FILE, save_grid_file
from .schema import (
    COMPARISONS_FILE,
    INPUTS_FILE,
    RESULTS_FILE,
    RUN_FILE,
    cell_payloads,
    jsonable,
    metric_records,
    model_counters,
)

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Written:
    results: pd.DataFrame
    unchanged: bool = False
    report_path: Path | None = None
    report_error: str | None = None
    files: list[str] = field(default_factory=list)  # what this call wrote, in order (relative to the folder)


class OutputsIncomplete(OutputError):
    """A write failed part-way (a full disk): the message names the file that failed and what was written."""

    def __init__(self, error: OutputError, written: list[str]):
        done = f"written before it: {', '.join(written)}" if written else "nothing else was written"
        super().__init__(f"{error} ({done})")
        self.written = written


ENVIRONMENT_KEYS = ("versions", "platform", "machine", "gpus", "git_commit")  # `report.tables.environment`


def run_info(
    *,
    started: str,
    duration_s: float,
    tests: dict[str, Any],
    payloads: list[dict[str, Any]],
    engine: dict[str, Any],
    interrupted: bool = False,
    environment: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """run.json's contents, built in one place for every writer of a run folder: a pytest session, `run()`
    and merged folders. `started` (ISO time), `duration_s`, `interrupted`, the caller's own `fields` (grid,
    identity, cells, shard, merged_from ...), `engine` settings, the environment (versions, platform,
    machine, GPUs, git commit: this process's unless `environment`, e.g. a merged run's first folder, is
    given), per-model counters from the cell `payloads` (`schema.model_counters`) and the `tests`."""
    from ..report.tables import environment as this_environment

    env = (
        this_environment() if environment is None else {k: environment[k] for k in ENVIRONMENT_KEYS if k in environment}
    )
    return {
        "started": started,
        "duration_s": round(float(duration_s), 3),
        "interrupted": bool(interrupted),
        **fields,
        "engine": engine,
        **env,
        "models": model_counters(payloads),
        "tests": tests,
    }


def inputs_digest(records: list[dict[str, Any]], extra: Any) -> str:
    """What every derived output is computed from: the cells (metrics, per-pair values, scoring facts; not
    timings), the custom metrics, the references and order, and the code that writes the outputs."""
    from ..storage.fingerprint import facebench_source

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
    plots: bool = True,
    history: dict[str, Any] | None = None,
    baseline: Path | None = None,
    figure_formats: tuple[str, ...] | list[str] | None = None,
    dpi: int | None = None,
    model_styles: dict[str, dict[str, str]] | None = None,
    hook: Callable[..., Any] | None = None,
    force: bool = False,
    plot_workers: int | None = None,
) -> Written:
    """Derive results.csv, summary.csv, distances/, comparisons.csv, run.json, history.jsonl, plots/ and
    report.html from the records, then call `hook` (`pytest_facebench_write_outputs`) for other formats.
    Outputs whose inputs did not change since they were last written are kept as they are (run.json and
    history.jsonl are always written). A failed write raises `OutputsIncomplete`, naming what was written.

    `figure_formats` (png, svg, pdf; PNG is always written; None: those of the folder's previous report, so a
    plain rerun keeps the SVG/PDF figures of an earlier run) and `dpi` go to `report.plots.write_plots`;
    `plots=False` writes report.html without drawing figures. `model_styles` (model → {color, label} from the
    grid) is kept in run.json (`model_styles`), where the figures and a later `report` rebuild read it.
    `force` writes everything even when the inputs did not change (`report DIR`: new plotting code, formats);
    `plot_workers`: processes drawing figures (`report.plots.write_plots`' `workers`)."""
    written = Written(results=None)
    try:
        _write(Path(out_dir), records, run, written, locals())
    except OutputsIncomplete:
        raise
    except OutputError as exc:
        raise OutputsIncomplete(exc, written.files) from None
    return written


def _write(out_dir: Path, records: list[dict[str, Any]], run: dict[str, Any], written: Written, o: dict) -> None:
    from ..relations.compute import with_tag_columns, write_relations
    from .compare import comparisons_frame
    from .gates import baseline_payload
    from .metrics import remember_scoring, task_type_vocabulary
    from .results import results_frame, summary_frame

    metrics = metric_records(records)
    cells = cell_payloads(records)
    for cell in cells:
        remember_scoring(cell.get("scoring"))
    frame = results_frame(metrics, o["model_order"], o["task_order"])
    results = written.results = with_tag_columns(frame, run.get("model_tags"))
    styles, references = o["model_styles"] or {}, o["references"] or []
    formats = list(o["figure_formats"] or ())
    figure_options = {"formats": formats, "dpi": o["dpi"], "model_styles": styles, "plots": o["plots"]}
    extra = {"models": o["model_order"], "tasks": o["task_order"], "references": references, "report": o["report"]}
    extra.update(relations=run.get("relations"), model_tags=run.get("model_tags"))
    digest = inputs_digest(records, {**extra, **figure_options})
    stamp = out_dir / INPUTS_FILE
    written.unchanged = (
        not o["force"]
        and stamp.is_file()
        and stamp.read_text().strip() == digest
        and (out_dir / RESULTS_FILE).is_file()
        and (not o["report"] or (out_dir / "report.html").is_file())
    )

    def put(name: str, write: Callable[[], Any]) -> None:
        write()
        written.files.append(name)

    relations = None
    if not written.unchanged:
        stamp.unlink(missing_ok=True)  # a run killed mid-way must not leave a stamp over half-new outputs
        put(RESULTS_FILE, lambda: atomic_csv(out_dir / RESULTS_FILE, results))
        put("summary.csv", lambda: atomic_csv(out_dir / "summary.csv", summary_frame(results)))
        put("distances/", lambda: write_distances(out_dir, cells))
        rank = {m: i for i, m in enumerate(o["model_order"] or [])}
        ordered = sorted(cells, key=lambda c: rank.get(c["model"], len(rank)))
        put(COMPARISONS_FILE, lambda: atomic_csv(out_dir / COMPARISONS_FILE, comparisons_frame(ordered)))
        relations = write_relations(out_dir, results, run)  # relations.csv: across models (relations/)
        written.files += ["relations.csv", "relation_models.csv"] if relations else []
    run = {
        **run,
        "metrics": metric_vocabulary(results),
        "task_types": task_type_vocabulary(set(results["task_type"]) if "task_type" in results else ()),
        **({"model_styles": styles} if styles else {}),
    }
    put(RUN_FILE, lambda: atomic_write(out_dir / RUN_FILE, json.dumps(jsonable(run), indent=2) + "\n"))
    if (run.get("grid") or {}).get("effective"):  # grid.toml: the effective grid (runs, shard merges, copies)
        put(GRID_FILE, lambda: save_grid_file(out_dir, run))
    if o["baseline"] is not None:
        payload = json.dumps(jsonable(baseline_payload(metrics, run, cells)), indent=2) + "\n"
        put(str(o["baseline"]), lambda: atomic_write(o["baseline"], payload))
    if o["history"] is not None:
        line = json.dumps(jsonable(o["history"]), sort_keys=True, default=str)
        put("history.jsonl", lambda: append_line(out_dir / "history.jsonl", line))
    if o["report"] and not written.unchanged:
        _write_report(out_dir, results, cells, run, written, o, relations)
    elif o["report"]:
        written.report_path = out_dir / "report.html"
    if o["hook"] is not None:
        o["hook"](out_dir=out_dir, results=results, records=records, run=run, unchanged=written.unchanged)
    if not written.report_error:
        atomic_write(stamp, digest + "\n")


def _write_report(
    out_dir: Path,
    results: Any,
    cells: list[dict[str, Any]],
    run: dict[str, Any],
    written: Written,
    o: dict,
    relations: Any,
) -> None:
    """plots/ and report.html; a plotting problem is kept as `report_error` and never loses the tables."""
    try:
        from ..report.html import write_html
        from ..report.plots import DPI, write_plots

        if o["plots"]:
            figures = {c["task"]: list((c.get("scoring") or {}).get("figures", [])) for c in cells}
            write_plots(
                out_dir,
                results,
                o["references"] or [],
                figures=figures,
                formats=tuple(o["figure_formats"]) if o["figure_formats"] else None,
                model_styles=o["model_styles"] or {},
                dpi=o["dpi"] or DPI,
                workers=o["plot_workers"],
            )
            if relations:
                from ..relations.figures import write_relation_figures

                formats = tuple(o["figure_formats"] or ("png",))
                write_relation_figures(out_dir, results, relations, o["model_styles"] or {}, formats, o["dpi"] or DPI)
            from ..report.stimuli import write_stimuli_figure

            write_stimuli_figure(out_dir, run, o["dpi"] or DPI)  # one face in every manipulation (derive)
            written.files.append("plots/")
        written.report_path = write_html(out_dir, o["references"] or [], results=results, run=run)
        written.files.append("report.html")
    except OutputError:
        raise
    except Exception as exc:  # noqa: BLE001
        written.report_error = f"{type(exc).__name__}: {exc}"


def metric_vocabulary(results: Any) -> dict[str, dict[str, Any]]:
    """Display name and direction of every metric in results.csv, so `compare` and `report` can rank and
    label a results dir without importing the task types that produced it."""
    from .metrics import metric_info

    names = sorted(set(results["metric"])) if len(results) else []
    return {m: {"display": metric_info(m).display, "direction": metric_info(m).direction} for m in names}


def write_distances(out_dir: Path, cells: list[dict[str, Any]]) -> None:
    """`distances/<task>/<model>.csv`: the pairs table plus one value column per layer."""
    import pandas as pd

    from ..report.tables import safe_name

    for cell in cells:
        if cell.get("distances"):
            path = out_dir / "distances" / safe_name(cell["task"]) / f"{safe_name(cell['model'])}.csv"
            atomic_csv(path, pd.DataFrame(cell["distances"]))
