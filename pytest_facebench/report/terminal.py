"""The terminal summary: headline metric per model × task at each model's readout layer."""

from __future__ import annotations

import math

import pandas as pd

from ..metrics import display_name


def headline_frame(results: pd.DataFrame) -> pd.DataFrame:
    """Rows of `results` holding each task's headline metric at the readout layer."""
    if results.empty:
        return results
    flags = [results[c].astype(str).str.lower().isin(["true", "1"]) for c in ("readout", "headline") if c in results]
    if len(flags) < 2:
        return results[:0]
    return results[flags[0] & flags[1]]


def _format(group: pd.DataFrame) -> str:
    """'0.783 [0.702, 0.879]'; several conditions: '0.003 / 0.042' (named in the row label)."""
    parts = []
    for _, row in group.iterrows():
        value = f"{row['value']:.3f}" if isinstance(row["value"], float) and math.isfinite(row["value"]) else "nan"
        low, high = row.get("ci_low"), row.get("ci_high")
        if (
            len(group) == 1
            and isinstance(low, float)
            and math.isfinite(low)
            and isinstance(high, float)
            and math.isfinite(high)
        ):
            value += f" [{low:.3f}, {high:.3f}]"
        parts.append(value)
    return " / ".join(parts)


def _label(rows: pd.DataFrame) -> str:
    conditions = [c for c in dict.fromkeys(rows["condition"]) if isinstance(c, str) and c]
    suffix = f": {' / '.join(conditions)}" if len(conditions) > 1 else ""
    return f"{rows['task'].iloc[0]} ({display_name(rows['metric'].iloc[0])}{suffix})"


def summary_table(results: pd.DataFrame) -> str:
    """Headline metric per task (rows) × model (columns) at each model's readout layer, with 95% CIs."""
    rows = headline_frame(results)
    if rows.empty:
        return ""
    cells = rows.groupby(["task", "model"], sort=False).apply(_format, include_groups=False)
    table = cells.unstack("model")
    table = table.reindex(index=list(dict.fromkeys(rows["task"])), columns=list(dict.fromkeys(rows["model"])))
    label = {task: _label(rows[rows["task"] == task]) for task in table.index}
    table = table.rename(index=label).fillna("-")
    table.index.name = None
    table.columns.name = None
    return table.to_string()
