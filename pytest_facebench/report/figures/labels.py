"""What the axes of a figure say: the real quantity (which distance, which correlation with what), and the
chance level of a metric where one exists, as its task type declares them (`BaseTask.axes`, `metrics.Axis`;
known by type name through `metrics.task_type_info`, also in a process that never imported the class)."""

from __future__ import annotations

import re

import pandas as pd

from ...outputs.metrics import Axis, TaskTypeInfo, display_name, task_type_info
from ..data import finite

GALLERY = re.compile(r"(\d+)\s+gallery")
NUMBER = re.compile(r"(\d+(?:\.\d*)?(?:e-?\d+)?)$")  # the number that ends a metric id: rank5, tar_at_far_0.001


def _text(rows: pd.DataFrame | None, column: str) -> list[str]:
    if rows is None or column not in rows:
        return []
    return [str(v) for v in dict.fromkeys(rows[column]) if isinstance(v, str) and v]


def distance_label(rows: pd.DataFrame | None) -> str:
    """'cosine distance' from the rows' `distance` column ('module:fn' → 'fn'); 'distance' when unknown."""
    names = [name.rsplit(":", 1)[-1] for name in _text(rows, "distance")]
    if len(names) == 1:
        return f"{names[0]} distance"
    return f"distance ({', '.join(names)})" if names else "distance"


def correlation_method(rows: pd.DataFrame | None, metric: str) -> str:
    """'pearson' / 'spearman' / 'kendall' from the protocol of a correlation metric's rows (pearson by default)."""
    if rows is not None and "metric" in rows:
        rows = rows[rows["metric"] == metric]
    for protocol in _text(rows, "protocol"):
        for method in ("spearman", "kendall", "pearson"):
            if method in protocol.lower():
                return method
    return "pearson"


def correlation_symbol(method: str) -> str:
    return {"spearman": "Spearman ρ", "kendall": "Kendall τ"}.get(method, "Pearson r")


def task_type(rows: pd.DataFrame | None) -> str:
    """The task type of rows (their most frequent `task_type` other than 'custom'), '' when they do not say."""
    if rows is None or "task_type" not in rows:
        return ""
    types = [t for t in rows["task_type"] if isinstance(t, str) and t and t != "custom"]
    return pd.Series(types).mode().iloc[0] if types else ""


def declared(metric: str, rows: pd.DataFrame | None) -> tuple[Axis | None, TaskTypeInfo | None]:
    """What the rows' task type declares for `metric` on figures (`BaseTask.axes`), and the type's info."""
    info = task_type_info(task_type(rows))
    return (info.axis(metric) if info is not None else None), info


def type_headline(rows: pd.DataFrame, default: str) -> str:
    """The headline metric the rows' task type declares when the rows have it (what a scatter against human data
    shows, whichever headline the grid chose for the tables), else `default`."""
    _, info = declared(default, rows)
    return info.headline if info is not None and (rows["metric"] == info.headline).any() else default


def metric_label(metric: str, rows: pd.DataFrame | None = None) -> str:
    """An axis label naming the quantity, as the task type declares it (`Axis.label`, e.g. 'mean {distance}',
    '{method} with human dissimilarity') filled in from the rows: 'mean cosine distance', 'Spearman ρ with human
    dissimilarity'; the metric's display name when the type declares none."""
    axis, info = declared(metric, rows)
    if axis is None or not axis.label:
        return display_name(metric)
    mine = rows[rows["metric"] == metric] if rows is not None and "metric" in rows else rows
    protocols = _text(mine, "protocol")
    said = " ".join(protocols).lower()
    template = next((text for word, text in axis.when.items() if word.lower() in said), axis.label)
    number = NUMBER.search(metric)
    text = template.format(
        display=display_name(metric),
        distance=distance_label(rows),
        method=correlation_symbol(correlation_method(rows, info.headline if info else metric)),
        protocol=protocols[0] if protocols else "",
        k=_number_text(number.group(1)) if number else "",
    )
    return "\n".join(line for line in text.split("\n") if line.strip())


def _number_text(text: str) -> str:
    return str(int(text)) if text.isdigit() else text


def gallery_size(rows: pd.DataFrame | None) -> int | None:
    """The gallery size of an identification task, from its rows' protocol ('... vs N gallery images') or a
    'gallery has only N images' note; None when the rows do not say."""
    for text in _text(rows, "protocol") + _text(rows, "note"):
        match = GALLERY.search(text) or re.search(r"gallery has only (\d+)", text)
        if match and int(match.group(1)) > 0:
            return int(match.group(1))
    return None


def chance_level(metric: str, rows: pd.DataFrame | None = None) -> tuple[float, str] | None:
    """(value, legend text) of a metric's chance or no-effect level as its task type declares it (`Axis.chance`):
    a number (0.5 for verification accuracy, AUC and EER; 0 for correlations, RSA and effects), the FAR itself for
    TAR@FAR ('far'), k/N for rank-k with a known gallery size N ('k/N'). None when there is none (or it is
    unknown)."""
    axis, _ = declared(metric, rows)
    if axis is None or axis.chance is None:
        return None
    if not isinstance(axis.chance, str):
        value = float(axis.chance)
        return value, f"{axis.chance_label} ({value:g})"
    number = NUMBER.search(metric)
    if number is None or not finite(number.group(1)):
        return None
    if axis.chance == "far":
        far = float(number.group(1))
        return far, f"{axis.chance_label} ({far:g})"
    n = gallery_size(rows)  # 'k/N'
    return (min(1.0, float(number.group(1)) / n), f"{axis.chance_label} (k/N, N = {n})") if n else None
