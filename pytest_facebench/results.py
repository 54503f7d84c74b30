"""Result records: plain JSON-able dicts that travel on test reports, and the DataFrame views of them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

NAN = float("nan")

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


@dataclass
class Metric:
    """One number a task produced for one layer."""

    metric: str
    value: float
    condition: str | None = None
    protocol: str = ""
    ci_low: float = NAN
    ci_high: float = NAN
    n: int | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class CellResult:
    """What one model × task evaluation produced."""

    model: str
    task: str
    records: list[dict[str, Any]]
    distances: pd.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)
    scoring: dict[str, Any] = field(default_factory=dict)  # what compare.py needs (task.scoring() + columns)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame.from_records(self.records)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> CellResult:
        """The inverse of `to_payload` (for results read back from the cell cache)."""
        return cls(
            model=payload["model"],
            task=payload["task"],
            records=[dict(r) for r in payload["records"]],
            distances=pd.DataFrame(payload["distances"]),
            stats=dict(payload.get("stats", {})),
            scoring=dict(payload.get("scoring", {})),
        )

    def to_payload(self) -> dict[str, Any]:
        """Plain JSON-able data for the test report (travels from xdist workers to the controller)."""
        return {
            "model": self.model,
            "task": self.task,
            "records": self.records,
            "stats": self.stats,
            "distances": {c: [_plain(v) for v in self.distances[c]] for c in self.distances.columns},
            "scoring": self.scoring,
        }


def metric_record(metric: Metric, **context: Any) -> dict[str, Any]:
    """A flat, JSON-able record: the metric plus its context (model, layer, task, provenance...)."""
    record = {
        **context,
        "metric": metric.metric,
        "value": _plain(metric.value),
        "condition": metric.condition,
        "protocol": metric.protocol,
        "ci_low": _plain(metric.ci_low),
        "ci_high": _plain(metric.ci_high),
        "n": metric.n,
        "note": metric.note,
    }
    record.update({k: _plain(v) for k, v in metric.extra.items()})
    return record


def _plain(value: Any) -> Any:
    """numpy scalars → Python; NaN stays NaN (float)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return NAN
    return value


def results_frame(
    records: list[dict[str, Any]], model_order: list[str] | None = None, task_order: list[str] | None = None
) -> pd.DataFrame:
    """Long table: one row per model × layer × task × metric (× condition), deterministic order."""
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    for column in RESULT_COLUMNS:
        if column not in frame:
            frame[column] = None
    extra = [c for c in frame.columns if c not in RESULT_COLUMNS]
    frame = frame[RESULT_COLUMNS + extra]
    keys = {"model": model_order, "task": task_order}
    sort_cols = []
    for column in ("model", "task"):
        order = keys[column] or sorted(frame[column].dropna().unique())
        rank = {name: i for i, name in enumerate(dict.fromkeys(order))}  # a duplicate keeps its first place
        frame[f"_{column}_rank"] = frame[column].map(lambda v, r=rank: r.get(v, len(r)))
        sort_cols.append(f"_{column}_rank")
    frame["_layer_index"] = pd.to_numeric(frame["layer_index"], errors="coerce").fillna(-1)
    frame = frame.sort_values(sort_cols + ["_layer_index"], kind="stable")
    return frame.drop(columns=sort_cols + ["_layer_index"]).reset_index(drop=True)


def summary_frame(results: pd.DataFrame) -> pd.DataFrame:
    """Wide table: one row per model·layer, one column per task.metric[.condition]."""
    if results.empty:
        return pd.DataFrame(columns=["model", "layer"])
    frame = results.copy()
    frame["column"] = frame["task"].astype(str) + "." + frame["metric"].astype(str)
    has_condition = frame["condition"].notna() & (frame["condition"].astype(str) != "")
    frame.loc[has_condition, "column"] += "." + frame.loc[has_condition, "condition"].astype(str)
    frame["layer"] = frame["layer"].fillna("")
    row_order = list(dict.fromkeys(zip(frame["model"], frame["layer"])))
    column_order = list(dict.fromkeys(frame["column"]))
    wide = frame.pivot_table(
        index=["model", "layer"], columns="column", values="value", aggfunc="first", dropna=False, sort=False
    )
    wide = wide.reindex(index=pd.MultiIndex.from_tuples(row_order, names=["model", "layer"]), columns=column_order)
    wide.columns.name = None
    return wide.reset_index()
