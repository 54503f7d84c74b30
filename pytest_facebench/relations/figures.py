"""Figures of relations across models, under `plots/relations/` (listed in `plots/relations/manifest.json`):

- a scatter per relation and layer choice: each model a labelled point with its CI as error bars on both axes,
  coloured by a tag (`color_by`) or by the model's own colour, the least-squares fit with its 95% band, and r,
  its CI and p in the title;
- `matrix`: the model × metric matrix of every task's headline metric at the readout layer (colour: rank
  within the column, text: the value), beside the Spearman correlation matrix of those metrics across models.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..files import atomic_write
from .compute import TAG_PREFIX, RelationResult, _number

FOLDER = "relations"
MANIFEST = "manifest.json"


def _save(fig: Any, out_dir: Path, stem: str, formats: Sequence[str], dpi: int) -> str:
    from ..report.figures.base import encode

    folder = Path(out_dir) / "plots" / FOLDER
    for fmt in dict.fromkeys(["png", *formats]):
        path = folder / f"{stem}.{fmt}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode(fig, fmt, dpi))
    return f"plots/{FOLDER}/{stem}.png"


def _title(result: RelationResult) -> str:
    s = result.stats
    head = f"{result.spec.name} [{result.layer}]"
    if not s.ok:
        return f"{head}: {s.status}"
    from ..report.numbers import format_p

    text = f"{head}: {s.method} r = {_number(s.r)} [{_number(s.ci_low)}, {_number(s.ci_high)}], {format_p(s.p_value)}"
    if result.spec.control:
        text += f"; partial r | {', '.join(result.spec.control)} = {_number(s.partial_r)}"
    return text + f" (n = {s.n})"


def _colors(result: RelationResult, styles: Mapping[str, Mapping[str, str]]) -> tuple[list[Any], list[Any]]:
    """Each point's colour, and legend handles (a tag's levels) or a colour bar mappable (a numeric tag)."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D

    from ..report.data import model_colors

    points = result.points
    column = f"{TAG_PREFIX}{result.spec.color_by}" if result.spec.color_by else None
    if column is None or column not in points:
        overrides = {m: (styles.get(m) or {}).get("color") for m in points["model"]}
        colors = model_colors(list(points["model"]), overrides)
        return [colors[m] for m in points["model"]], []
    values = points[column].tolist()
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values if v is not None)
    if numeric and any(v is not None for v in values):
        finite = [float(v) for v in values if v is not None]
        norm = Normalize(min(finite), max(finite) if max(finite) > min(finite) else min(finite) + 1)
        cmap = colormaps["viridis"]
        from matplotlib.cm import ScalarMappable

        mappable = ScalarMappable(norm=norm, cmap=cmap)
        return ["#999999" if v is None else cmap(norm(float(v))) for v in values], [mappable]
    levels = list(dict.fromkeys(str(v) for v in values))
    palette = colormaps["tab10"]
    by_level = {level: palette(i % 10) for i, level in enumerate(levels)}
    handles = [Line2D([], [], marker="o", ls="", color=by_level[lv], label=lv) for lv in levels]
    return [by_level[str(v)] for v in values], handles


def scatter(result: RelationResult, styles: Mapping[str, Mapping[str, str]], dpi: int) -> Any:
    """The scatter of one relation (see the module doc)."""
    from ..report.figures.base import adjust, figure, fit_titles, style

    points = result.points
    with style():
        fig = figure(6.2, 4.8, dpi)
        adjust(fig, left=0.8, right=1.4 if result.spec.color_by else 0.3, top=0.7, bottom=0.65)
        ax = fig.add_subplot(1, 1, 1)
        ax.set_xlabel(result.spec.x)
        ax.set_ylabel(result.spec.y)
        if len(points):
            x, y = points["x"].to_numpy(float), points["y"].to_numpy(float)
            colors, legend = _colors(result, styles)
            _fit(ax, x, y)
            for i, (_, row) in enumerate(points.iterrows()):
                xerr = _err(row["x"], row.get("x_ci_low"), row.get("x_ci_high"))
                yerr = _err(row["y"], row.get("y_ci_low"), row.get("y_ci_high"))
                ax.errorbar(
                    row["x"], row["y"], xerr=xerr, yerr=yerr, fmt="o", color=colors[i], ecolor=colors[i],
                    elinewidth=0.9, capsize=2, markersize=5, zorder=3,
                )  # fmt: skip
                label = (styles.get(row["model"]) or {}).get("label") or row["model"]
                ax.annotate(label, (row["x"], row["y"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
            if legend and hasattr(legend[0], "get_cmap"):
                bar = fig.colorbar(legend[0], ax=ax, pad=0.02)
                bar.set_label(str(result.spec.color_by))
            elif legend:
                ax.legend(
                    handles=legend, title=result.spec.color_by, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1)
                )
        if not result.stats.ok:
            ax.text(0.5, 0.5, result.stats.status, transform=ax.transAxes, ha="center", va="center", color="#a00")
        ax.set_title(_title(result), fontsize=9, loc="left")
        fit_titles(fig)
    return fig


def _err(value: Any, low: Any, high: Any) -> Any:
    """Asymmetric error bar lengths ([[below], [above]]) from a CI; None without one."""
    try:
        v, lo, hi = float(value), float(low), float(high)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return [[max(0.0, v - lo)], [max(0.0, hi - v)]]


def _fit(ax: Any, x: np.ndarray, y: np.ndarray) -> None:
    """The least-squares line and its 95% confidence band (of the mean), with 3 or more distinct x."""
    from scipy import stats

    n = len(x)
    if n < 3 or np.ptp(x) == 0:
        return
    slope, intercept = np.polyfit(x, y, 1)
    grid = np.linspace(x.min(), x.max(), 100)
    residual = y - (slope * x + intercept)
    s = math.sqrt(float(residual @ residual) / (n - 2))
    se = s * np.sqrt(1 / n + (grid - x.mean()) ** 2 / float(((x - x.mean()) ** 2).sum()))
    t = float(stats.t.ppf(0.975, n - 2))
    line = slope * grid + intercept
    ax.plot(grid, line, color="#444444", lw=1, zorder=2)
    ax.fill_between(grid, line - t * se, line + t * se, color="#888888", alpha=0.18, lw=0, zorder=1)


def headline_matrix(results: pd.DataFrame) -> pd.DataFrame:
    """Models (rows) × each task's headline metric at the readout layer (columns `task / metric`)."""
    from ..outputs.results import build_table

    table = build_table(results, layer="readout", references=False)
    return pd.DataFrame(
        {
            c.key: [row.cells[c.key].value if c.key in row.cells else np.nan for row in table.model_rows]
            for c in table.columns
        },
        index=[row.label for row in table.model_rows],
    )


def matrix_figure(matrix: pd.DataFrame, dpi: int) -> Any:
    """The property × benefit heatmap (colour: rank within each column) and the metrics' Spearman matrix."""
    from ..report.figures.base import CHAR_IN, adjust, figure, fit_titles, shorten, style

    models = list(matrix.index)
    columns = [shorten(c.replace(" / ", "/"), 30) for c in matrix.columns]
    corr = matrix.corr(method="spearman", min_periods=3)
    label_in = 0.3 + CHAR_IN * max(len(c) for c in columns)  # the longest tick label, in inches
    model_in = 0.3 + CHAR_IN * max(len(str(m)) for m in models)
    width = model_in + label_in + 1.2 + 0.5 * len(columns) * 2
    height = 1.0 + label_in * 0.75 + 0.3 * max(len(models), len(columns))
    with style():
        fig = figure(max(7.0, width), height, dpi)
        adjust(fig, left=model_in, right=0.9, top=0.6, bottom=label_in * 0.75, wspace=label_in, cols=2)
        left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
        ranks = matrix.rank(pct=True).to_numpy(float)
        left.imshow(np.where(np.isfinite(ranks), ranks, np.nan), aspect="auto", cmap="viridis", vmin=0, vmax=1)
        for i in range(len(models)):
            for j in range(len(columns)):
                value = matrix.iat[i, j]
                if np.isfinite(value):
                    shade = ranks[i, j]
                    left.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6.5,
                              color="black" if shade > 0.6 else "white")  # fmt: skip
        left.set_yticks(range(len(models)), models, fontsize=7)
        left.set_xticks(range(len(columns)), columns, rotation=60, ha="right", fontsize=7)
        left.set_title("headline metrics at readout (colour: rank in column)", fontsize=9, loc="left")
        image = right.imshow(corr.to_numpy(float), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
        for i in range(len(columns)):
            for j in range(len(columns)):
                value = corr.iat[i, j]
                if np.isfinite(value):
                    right.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6.5)
        right.set_xticks(range(len(columns)), columns, rotation=60, ha="right", fontsize=7)
        right.set_yticks(range(len(columns)), columns, fontsize=7)
        right.set_title(f"Spearman r across {len(models)} models", fontsize=9, loc="left")
        fig.colorbar(image, ax=right, pad=0.02)
        fit_titles(fig)
    return fig


def write_relation_figures(
    out_dir: Path,
    results: pd.DataFrame,
    computed: Sequence[RelationResult],
    styles: Mapping[str, Mapping[str, str]],
    formats: Sequence[str] = ("png",),
    dpi: int = 100,
) -> list[dict[str, Any]]:
    """Draw every relation's scatter and the headline matrix; write the folder's manifest (what report.html
    shows). Returns the manifest entries."""
    from ..report.tables import safe_name

    entries = []
    for result in computed:
        stem = safe_name(f"{result.spec.name}_{result.layer.replace(' ', '')}")
        fig = scatter(result, styles, dpi)
        entries.append({"kind": "relation", "relation": result.spec.name, "layer": result.layer,
                        "file": _save(fig, out_dir, stem, formats, dpi), "title": _title(result)})  # fmt: skip
    matrix = headline_matrix(results)
    if matrix.shape[0] >= 2 and matrix.shape[1] >= 2:
        title = "Property × benefit: headline metrics of every model at readout, and their correlations across models"
        file = _save(matrix_figure(matrix, dpi), out_dir, "matrix", formats, dpi)
        entries.append({"kind": "matrix", "file": file, "title": title})
    atomic_write(Path(out_dir) / "plots" / FOLDER / MANIFEST, json.dumps(entries, indent=1) + "\n")
    return entries


def read_relation_figures(out_dir: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads((Path(out_dir) / "plots" / FOLDER / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []
