"""The terminal summary: headline metric per model × task at each model's readout layer, and one line per
distinct reason cells were skipped for (`skip_lines`)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from .data import metric_title


def headline_frame(results: pd.DataFrame) -> pd.DataFrame:
    """Rows of `results` holding each task's headline metric at the readout layer."""
    if results.empty:
        return results
    flags = [results[c].astype(str).str.lower().isin(["true", "1"]) for c in ("readout", "headline") if c in results]
    if len(flags) < 2:
        return results[:0]
    return results[flags[0] & flags[1]]


def number(value: float) -> str:
    """Three decimals, without a sign on zero ('-0.000' from float noise such as -9.5e-13 prints '0.000')."""
    text = f"{value:.3f}"
    return text[1:] if text == "-0.000" else text


def _format(group: pd.DataFrame) -> str:
    """'0.783 [0.702, 0.879]'; several conditions: '0.003 / 0.042' (named in the row label)."""
    parts = []
    for _, row in group.iterrows():
        value = number(row["value"]) if isinstance(row["value"], float) and math.isfinite(row["value"]) else "nan"
        low, high = row.get("ci_low"), row.get("ci_high")
        if (
            len(group) == 1
            and isinstance(low, float)
            and math.isfinite(low)
            and isinstance(high, float)
            and math.isfinite(high)
        ):
            value += f" [{number(low)}, {number(high)}]"
        parts.append(value)
    return " / ".join(parts)


def _label(rows: pd.DataFrame) -> str:
    conditions = [c for c in dict.fromkeys(rows["condition"]) if isinstance(c, str) and c]
    suffix = f": {' / '.join(conditions)}" if len(conditions) > 1 else ""
    return f"{rows['task'].iloc[0]} ({metric_title(rows, rows['metric'].iloc[0])}{suffix})"


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


# --- skipped cells ----------------------------------------------------------------------------------
MODEL_IN_REASON = re.compile(r"model '([^']+)': ")


@dataclass
class SkipGroup:
    """Skipped cells that share a reason (the reason without its `model '<name>': ` part)."""

    reason: str
    models: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    cells: int = 0


def _split_label(label: str, reason: str, models: Sequence[str]) -> tuple[str, str]:
    """(model, task) of a 'model-task' cell label: a known model name (the longest that prefixes it), else the
    model the reason names, else ('', label)."""
    named = MODEL_IN_REASON.findall(reason)
    for model in sorted({*models, *named}, key=len, reverse=True):
        if label == model:
            return model, ""
        if label.startswith(model + "-"):
            return model, label[len(model) + 1 :]
    return "", label


def skip_groups(cells: Iterable[tuple[str, str, str]]) -> list[SkipGroup]:
    """(model, task, reason) of each skipped cell → one group per distinct reason, in order of first
    appearance. The model's own name is taken out of the reason (`weights unavailable: model 'x': ...` →
    `weights unavailable: ...`), so models skipped for the same cause share one group."""
    groups: dict[str, SkipGroup] = {}
    for model, task, reason in cells:
        reason = str(reason or "no reason given")
        if model:
            reason = reason.replace(f"model '{model}': ", "", 1)
        group = groups.setdefault(reason, SkipGroup(reason))
        if model and model not in group.models:
            group.models.append(model)
        if task and task not in group.tasks:
            group.tasks.append(task)
        group.cells += 1
    return list(groups.values())


def skip_lines(skips: Mapping[str, Sequence[str]], models: Sequence[str] = ()) -> list[str]:
    """The end of the terminal summary: one line per distinct skip reason, naming the models it skipped.
    `skips` maps each reason to the labels ('<model>-<task>') of the cells it skipped (as the session
    collects them); `models` (the grid's model names) tells where a label's model name ends when names
    hold '-'. 'skipped vgg16_imagenet (7 cells): weights unavailable: torchvision weights ...'."""
    cells = [
        (*_split_label(str(label), reason, models), reason) for reason, labels in skips.items() for label in labels
    ]
    lines = []
    for group in skip_groups(cells):
        who = ", ".join(group.models) if group.models else ", ".join(group.tasks)
        lines.append(f"skipped {who} ({group.cells} cell{'s' if group.cells != 1 else ''}): {group.reason}")
    return lines
