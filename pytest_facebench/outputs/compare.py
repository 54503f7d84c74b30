"""Paired comparison of models on the same task: is model A's headline metric really better than B's?

`comparisons_frame(cells)` takes the cell payloads of a run (`CellResult.to_payload()`: model, task,
records, distances and the task's `scoring` facts) and compares every two models that scored the same
rows of a task, each at its readout layer. How two models compare on a task is the task class's own
`compare` (e.g. DeLong's test and a paired bootstrap of the k-fold accuracy for verification); this module
pairs the models, and `p_holm` adjusts the p-values of one task, metric and condition for the number of model pairs
(Holm), and `significant` is `report.verdicts.significant`'s decision, the one rule every view follows
(p_holm < 1 − ci_level and the CI excludes 0). Both models are evaluated on the same resamples (the task's `n_boot`, `seed` and `ci`).
`report.verdicts.verdict(row)` turns a row into the sentence a report prints.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..grid.registry import task_class
from ..report.verdicts import significant
from ..tasks.base import BaseTask, CellValues

COLUMNS = [
    "task",
    "metric",
    "condition",
    "model_a",
    "layer_a",
    "model_b",
    "layer_b",
    "value_a",
    "value_b",
    "diff",
    "quantity",
    "ci_low",
    "ci_high",
    "p_value",
    "p_holm",
    "significant",
    "test",
    "n",
    "ci_level",
    "note",
]


def comparisons_frame(cells: list[dict[str, Any]]) -> pd.DataFrame:
    """Every two models on the same task and rows, at their readout layers (see the module doc)."""
    tasks: dict[str, dict[str, CellValues]] = {}
    for cell in cells:
        entry = _entry(cell)
        if entry is not None:
            tasks.setdefault(cell["task"], {})[cell["model"]] = entry  # a rerun of a cell replaces it
    rows: list[dict[str, Any]] = []
    for task, entries in tasks.items():
        for a, b in itertools.combinations(entries.values(), 2):
            if a.scoring.get("rows_sha256") != b.scoring.get("rows_sha256") or len(a.values) != len(b.values):
                continue  # not the same pairs (a grid edited between runs): no paired comparison
            for row in _task_class(a.scoring).compare(a, b):
                rows.append(
                    {
                        "task": task,
                        "model_a": a.model,
                        "layer_a": a.layer,
                        "model_b": b.model,
                        "layer_b": b.layer,
                        "n": len(a.values),
                        "ci_level": float(a.scoring.get("ci", 0.95)),
                        "note": "",
                        "condition": "",
                        "quantity": "value",
                        **row,
                    }
                )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    if not frame.empty:
        frame["p_holm"] = frame.groupby(["task", "metric", "condition"], sort=False)["p_value"].transform(holm)
        frame["significant"] = [significant(row) for row in frame.to_dict("records")]
    return frame


def _task_class(scoring: dict[str, Any]) -> type[BaseTask]:
    """The task class that scored a cell (by its recorded reference; built-in names as a fallback)."""
    for reference in (scoring.get("task_class"), scoring.get("type")):
        if reference:
            try:
                return task_class(str(reference))
            except ConfigError:
                continue
    return BaseTask


def _entry(cell: dict[str, Any]) -> CellValues | None:
    scoring = cell.get("scoring") or {}
    readout = [r["layer"] for r in cell.get("records", []) if r.get("readout")]
    if not readout:
        return None
    column = (scoring.get("columns") or {}).get(readout[0])
    if column is None or column not in cell.get("distances", {}):
        return None
    values = np.asarray([np.nan if v is None else v for v in cell["distances"][column]], dtype=float)
    return CellValues(cell["model"], readout[0], values, scoring)


def holm(p: pd.Series) -> pd.Series:
    """Holm-adjusted p-values (NaN stays NaN and does not count)."""
    values = p.to_numpy(dtype=float)
    out = np.full(len(values), np.nan)
    finite = np.flatnonzero(np.isfinite(values))
    m = len(finite)
    order = finite[np.argsort(values[finite], kind="stable")]
    running = 0.0
    for i, index in enumerate(order):
        running = max(running, min(1.0, (m - i) * values[index]))
        out[index] = running
    return pd.Series(out, index=p.index)
