"""The horizontal (or vertical) lines a figure compares against: the declared human value, published
reference values, the noise ceiling; and one legend for several panels."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..data import finite
from .labels import declared


def human_value(rows: pd.DataFrame, metric: str, condition: str = "") -> float | None:
    """The declared human value of a metric (for one condition): the `human_effect` column of its rows, else
    a `human_effect` row declared for it."""
    mine = rows[(rows["metric"] == metric) & (rows["condition"] == condition)]
    if "human_effect" in mine:
        values = pd.to_numeric(mine["human_effect"], errors="coerce").dropna()
        if len(values):
            return float(values.median())
    human = rows[(rows["metric"] == "human_effect") & (rows["condition"] == condition)]
    human = human[human["protocol"].str.contains(f"({metric})", regex=False)]
    return float(human["value"].median()) if len(human["value"].dropna()) else None


def task_refs(
    task: str, metric: str, rows: pd.DataFrame, references: list[dict[str, Any]], condition: str = ""
) -> list[dict[str, Any]]:
    """Task-level reference values for a metric (no model): the human value, published baselines."""
    refs = []
    human = human_value(rows, metric, condition)
    if human is not None:
        refs.append({"value": human, "label": "human", "color": "#111111", "linestyle": "-", "gid": "human"})
        if condition:  # one legend entry for the human values of every condition's panel
            refs[-1]["legend"] = "human (per condition)"
    for ref in references:
        if (
            ref.get("task") == task
            and ref.get("metric") == metric
            and not ref.get("model")
            and str(ref.get("condition") or "") == condition
            and finite(ref.get("value"))
        ):
            refs.append({"value": float(ref["value"]), "label": ref.get("label") or ref.get("source") or "reference"})
    return refs


def noise_ceiling(task_rows: pd.DataFrame, metric: str) -> tuple[float, float] | None:
    """The noise ceiling drawn with `metric`: the medians of the two metrics its task type declares as its bounds
    (`Axis.ceiling`, e.g. `correlation_ceiling_low`/`_high`), when the rows have both."""
    axis, _ = declared(metric, task_rows)
    if axis is None or axis.ceiling is None:
        return None
    low, high = (task_rows.loc[task_rows["metric"] == bound, "value"].dropna() for bound in axis.ceiling)
    return (float(low.median()), float(high.median())) if len(low) and len(high) else None


def ceiling_lines(ax, ceiling: tuple[float, float] | None, vertical: bool = False) -> None:
    """The noise ceiling: a light band between its bounds and a dotted line at each (gid 'ceiling')."""
    if ceiling is None:
        return
    (ax.axvspan if vertical else ax.axhspan)(*ceiling, color="#999999", alpha=0.18, linewidth=0)
    for value, which, dash in ((ceiling[0], "low", ":"), (ceiling[1], "high", "--")):
        line = ax.axvline if vertical else ax.axhline
        line(
            value,
            color="#555555",
            linestyle=dash,
            linewidth=1.1,
            label=f"noise ceiling {which} ({value:.2f})",
            gid="ceiling",
        )


def legend_entries(axes: list[Any]) -> tuple[list[Any], list[str]]:
    """Legend handles of several axes, each label once."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label and not label.startswith("_"):
                seen.setdefault(label, handle)
    return list(seen.values()), list(seen)
