"""`run()`: the grid without pytest, for notebooks. Same engine, tasks and output writer (`outputs.write`)."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .engine.engine import Engine
from .engine.evaluate import evaluate_cached
from .engine.model import BaseModel
from .engine.options import EngineOptions
from .errors import FacebenchError, WeightsUnavailable
from .grid.builders import build_model, build_task
from .grid.config import load_grid
from .outputs.compare import comparisons_frame
from .outputs.results import CellResult, results_frame, summary_frame
from .storage.cell_cache import CellStore
from .storage.store import EmbeddingStore
from .tasks.base import BaseTask


@dataclass
class RunTables:
    """The long `results` table, the wide `summary`, paired model `comparisons`, and per-cell results."""

    results: pd.DataFrame
    summary: pd.DataFrame
    comparisons: pd.DataFrame = field(default_factory=pd.DataFrame)
    cells: list[CellResult] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def run(
    models: list[BaseModel] | str | Path,
    tasks: list[BaseTask] | None = None,
    out: str | Path | None = None,
    *,
    device: str = "auto",
    precision: str = "fp32",
    batch_size: int = 32,
    workers: int | None = 0,
    cache: str | Path | None = ".facebench_cache",
    compile: str = "off",
) -> RunTables:
    """Evaluate every model on every task. `models` may be a grid file path (then `tasks` is None).
    `compile`: a `torch.compile` mode for the networks (as `--facebench-compile`), or off.

    A cell that fails (bad data, missing weights) is reported in `errors` and the others still run.
    """
    errors: dict[str, str] = {}
    started = time.time()
    references: list[dict] = []
    styles: dict[str, dict[str, str]] = {}
    if isinstance(models, (str, Path)):
        grid = load_grid(models)
        built_models, tasks = [], []
        for spec in grid.models:
            try:
                built_models.append(build_model(spec, search_paths=[Path(models).parent]))
            except FacebenchError as exc:
                errors[spec.name] = str(exc)
        for task_spec in grid.tasks:
            try:
                tasks.append(build_task(task_spec))
            except FacebenchError as exc:
                errors[task_spec.name] = str(exc)
        models = built_models
        from .report.data import model_styles_from_grid, references_from_grid

        references = references_from_grid(grid)
        styles = model_styles_from_grid(grid)
    options = EngineOptions(device=device, precision=precision, batch_size=batch_size, workers=workers, compile=compile)
    engines: list[Engine] = []

    def engine() -> Engine:  # created on the first cell the cell cache cannot serve
        if not engines:
            engines.append(Engine(options, EmbeddingStore(Path(cache) if cache else None)))
        return engines[0]

    cell_store = CellStore(Path(cache)) if cache else None
    cells: list[CellResult] = []
    try:
        for model in models:
            try:
                model.check_weights()
            except WeightsUnavailable as exc:
                warnings.warn(f"skipping {model.name}: {exc}", stacklevel=2)
                errors[model.name] = f"skipped: {exc}"
                continue
            for task in tasks or []:
                try:
                    cells.append(evaluate_cached(engine, options, cell_store, model, task))
                except FacebenchError as exc:
                    errors[f"{model.name}-{task.name}"] = str(exc)
            model.release()
    finally:
        for built in engines:
            built.store.close()
    records = [r for cell in cells for r in cell.records]
    order = ([m.name for m in models], [t.name for t in tasks or []])
    payloads = [c.to_payload() for c in cells]
    comparisons = comparisons_frame(payloads)
    if out is not None:
        results = _write(Path(out), cells, payloads, errors, order, options, started, references, styles)
    else:
        results = results_frame(records, *order)
    return RunTables(
        results=results, summary=summary_frame(results), comparisons=comparisons, cells=cells, errors=errors
    )


def _write(
    out: Path,
    cells: list[CellResult],
    payloads: list[dict],
    errors: dict[str, str],
    order: tuple[list[str], list[str]],
    options: EngineOptions,
    started: float,
    references: list[dict],
    styles: dict[str, dict[str, str]],
) -> pd.DataFrame:
    """Every output file, through the pipeline the pytest session uses (one record per cell)."""
    from .outputs.lock import OutputLock
    from .outputs.records import write_record
    from .outputs.schema import cell_record, jsonable
    from .outputs.write import run_info, write_outputs

    lock = OutputLock(out)
    lock.acquire()
    try:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started))
        identity = {"grid_sha256": None, "precision": options.precision, "api": "pytest_facebench.run"}
        records = [
            cell_record(
                f"run::{c.model}-{c.task}",
                {"model": c.model, "task": c.task, "outcome": "passed", "cells": [jsonable(p)], "custom": []},
                identity,
                stamp,
            )
            for c, p in zip(cells, payloads)
        ]
        for record in records:  # the records every output derives from, so `report DIR --out` merges them
            write_record(out, record)
        tests = {r["nodeid"]: {"model": r["model"], "task": r["task"], "outcome": "passed"} for r in records}
        tests.update({f"run::{name}": {"outcome": "error", "reason": reason} for name, reason in errors.items()})
        info = run_info(
            started=stamp,
            duration_s=time.time() - started,
            tests=tests,
            payloads=payloads,
            engine={"precision": options.precision, "batch_size": options.batch_size, "compile": options.compile},
            api="pytest_facebench.run",
        )
        return write_outputs(
            out, records, info, model_order=order[0], task_order=order[1], references=references, model_styles=styles
        ).results
    finally:
        lock.release()
