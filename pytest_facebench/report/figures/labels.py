"""What the axes of a figure say: the real quantity (which distance, which correlation with what), and the
chance level of a metric where one exists."""

from __future__ import annotations

import re

import pandas as pd

from ...metrics import display_name
from ..data import finite

RANK = re.compile(r"^rank_?(\d+)$")
GALLERY = re.compile(r"(\d+)\s+gallery")
FAR = re.compile(r"^tar_at_far_(.+)$")
EFFECTS = ("relative_difference", "cohens_d", "effect_vs_human")


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


def correlation_method(rows: pd.DataFrame | None, metric: str = "correlation") -> str:
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


def metric_label(metric: str, rows: pd.DataFrame | None = None) -> str:
    """An axis label naming the quantity: e.g. 'mean cosine distance', 'Pearson r with human dissimilarity',
    'Spearman ρ between model and human RDMs'; the metric's display name when nothing more is known."""
    distance = distance_label(rows)
    mine = rows[rows["metric"] == metric] if rows is not None and "metric" in rows else rows
    protocols = " ".join(_text(mine, "protocol")).lower()
    if metric in ("mean_distance", "group_mean"):
        return f"mean {distance}" + (" (normalized by the max)" if "normalized" in protocols else "")
    if metric == "correlation":
        return f"{correlation_symbol(correlation_method(rows))} with human dissimilarity"
    if metric == "correlation_normalized":
        return f"{correlation_symbol(correlation_method(rows))} / noise ceiling"
    if metric == "rsa":
        return f"{correlation_symbol(correlation_method(rows, 'rsa'))} between model and human RDMs"
    if metric == "relative_difference":
        shown = _text(mine, "protocol")
        return f"relative difference of mean {distance}" + (f"\n{shown[0]}" if shown else "")
    if metric == "cohens_d":
        return f"Cohen's d of {distance}"
    if metric == "effect_vs_human":
        return "model − human effect"
    if metric == "auc":
        return "ROC AUC"
    if metric == "eer":
        return "equal error rate"
    if metric.startswith("accuracy"):
        return f"{display_name(metric)} (share of pairs correct)"
    match = RANK.match(metric)
    if match:
        return f"rank-{int(match.group(1))} identification rate"
    return display_name(metric)


def gallery_size(rows: pd.DataFrame | None) -> int | None:
    """The gallery size of an identification task, from its rows' protocol ('... vs N gallery images') or a
    'gallery has only N images' note; None when the rows do not say."""
    for text in _text(rows, "protocol") + _text(rows, "note"):
        match = GALLERY.search(text) or re.search(r"gallery has only (\d+)", text)
        if match and int(match.group(1)) > 0:
            return int(match.group(1))
    return None


def chance_level(metric: str, rows: pd.DataFrame | None = None) -> tuple[float, str] | None:
    """(value, legend text) of a metric's chance or no-effect level: 0.5 for verification accuracy, AUC and
    EER; the FAR itself for TAR@FAR; k/N for rank-k with a known gallery size N; 0 for correlations, RSA and
    effects. None when there is none (or it is unknown)."""
    if metric.startswith("accuracy") and not metric.endswith("_std") or metric in ("auc", "eer"):
        return 0.5, "chance (0.5)"
    far = FAR.match(metric)
    if far and finite(far.group(1)):
        return float(far.group(1)), f"chance ({float(far.group(1)):g})"
    rank = RANK.match(metric)
    if rank:
        n = gallery_size(rows)
        return (min(1.0, int(rank.group(1)) / n), f"chance (k/N, N = {n})") if n else None
    if metric in ("correlation", "correlation_normalized", "rsa"):
        return 0.0, "chance (0)"
    if metric in EFFECTS:
        return 0.0, "no effect (0)"
    return None
