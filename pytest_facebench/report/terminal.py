"""The terminal summary: headline metric per model × task at each model's readout layer."""

from __future__ import annotations

import math

import pandas as pd

from ..metrics import display_name
from ..tasks import TASK_TYPES


def headline_frame(results: pd.DataFrame) -> pd.DataFrame:
    """Rows of `results` holding each task's headline metric at the readout layer."""
    if results.empty:
        return results
    readout = results["readout"].astype(str).str.lower().isin(["true", "1"]) if "readout" in results else True
    headline = results["task_type"].map(lambda t: getattr(TASK_TYPES.get(t), "headline", None))
    return results[readout & (results["metric"] == headline)]


def _format(group: pd.DataFrame) -> str:
    parts = []
    for _, row in group.iterrows():
        value = f"{row['value']:.3f}" if isinstance(row["value"], float) and math.isfinite(row["value"]) else "nan"
        low, high = row.get("ci_low"), row.get("ci_high")
        if isinstance(low, float) and math.isfinite(low) and isinstance(high, float) and math.isfinite(high):
            value += f" [{low:.3f}, {high:.3f}]"
        parts.append(value)
    return " / ".join(parts)


def summary_table(results: pd.DataFrame) -> str:
    """A models × tasks text table of headline metrics (with CIs when present)."""
    rows = headline_frame(results)
    if rows.empty:
        return ""
    cells = rows.groupby(["model", "task"], sort=False).apply(_format, include_groups=False)
    table = cells.unstack("task")
    table = table.reindex(index=list(dict.fromkeys(rows["model"])), columns=list(dict.fromkeys(rows["task"])))
    header = {task: f"{task} ({display_name(rows[rows['task'] == task]['metric'].iloc[0])})" for task in table.columns}
    return table.rename(columns=header).fillna("-").to_string()
