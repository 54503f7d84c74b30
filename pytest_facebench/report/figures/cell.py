"""The pytest-html figure of one model × task cell (`cell_figure_png`), drawn from the cell's records and
distances table alone (no results dir)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from ...outputs.metrics import display_name
from ..data import (
    headline_metrics,
    human_column,
    label_column,
    layer_column,
    normalize_results,
    registry_headlines,
    with_readout,
)
from .base import CHAR_IN, adjust, encode, figure, fit_titles, shorten, style
from .draw import RocCurve, draw_grouped, draw_hbars, draw_roc, draw_scatter, layer_colors, roc_curve
from .labels import distance_label, metric_label, type_headline


@dataclass
class _Cell:
    """One cell's records (with the readout flag) and distances table, and what every panel of it needs."""

    frame: pd.DataFrame
    table: pd.DataFrame | None
    task: str
    model: str
    metric: str  # the task's headline
    layers: list[str]  # in layer order
    colors: dict[str, str]  # layer → colour
    layer_cols: set[str]  # the distances table's layer columns
    readout_layer: str


def _cell(
    records: pd.DataFrame | list[dict[str, Any]],
    distances: pd.DataFrame | dict[str, list] | None,
    headlines: dict[str, str] | None,
) -> _Cell | None:
    """The cell's records and distances as a `_Cell`; None when it has no records to draw (custom tasks')."""
    frame = normalize_results(pd.DataFrame.from_records(records) if isinstance(records, list) else records)
    frame = frame[frame["task_type"] != "custom"]
    if frame.empty:
        return None
    frame = with_readout(frame)
    table = pd.DataFrame(distances) if isinstance(distances, dict) else distances
    task, model = frame["task"].iloc[0], frame["model"].iloc[0]
    metric = headline_metrics(frame, headlines if headlines is not None else registry_headlines()).get(task, "")
    layers = [lyr for lyr in dict.fromkeys(frame.sort_values("layer_index", kind="stable")["layer"])]
    colors = layer_colors(layers)
    layer_cols = {c for c in (layer_column(table, lyr) for lyr in layers) if c} if table is not None else set()
    readout = frame.loc[frame["_readout"], "layer"]
    readout_layer = readout.iloc[0] if len(readout) else layers[-1]
    return _Cell(frame, table, task, model, metric, layers, colors, layer_cols, readout_layer)


def cell_figure_png(
    records: pd.DataFrame | list[dict[str, Any]],
    distances: pd.DataFrame | dict[str, list] | None = None,
    *,
    dpi: int = 80,
    headlines: dict[str, str] | None = None,
    figures: list[str] | tuple[str, ...] = (),
) -> tuple[bytes, str] | None:
    """The main figure of one model × task cell (for a pytest-html extra), from its records and its
    distances table: ROC per layer (accuracy), scatter at the readout layer (correlation), bars per
    condition and layer (conditions), else the headline per layer. Returns (PNG bytes, title) or None."""
    cell = _cell(records, distances, headlines)
    if cell is None:
        return None
    with style():
        fig = figure(5.4, 3.8, dpi)
        adjust(fig, left=0.7, right=0.2, top=0.4, bottom=0.75)
        ax = fig.subplots()
        title = f"{cell.model} on {cell.task}"
        text = _roc_panel(ax, cell, title) if "roc" in figures else None
        if text is None and "scatter" in figures:
            text = _scatter_panel(ax, cell, title)
        if text is None:  # the headline per layer: drawn whenever the panels asked for had nothing to draw
            text = _headline_panel(fig, ax, cell, title)
        fit_titles(fig)
        return encode(fig, "png", dpi), text


def _roc_curves(cell: _Cell) -> list[RocCurve]:
    """A ROC curve per layer whose distances column has same/different labels beside it."""
    frame, table = cell.frame, cell.table
    assert table is not None
    curves = []
    for layer in cell.layers:
        column = layer_column(table, layer)
        if column is None:
            continue
        distances_ = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
        auc = frame[(frame["layer"] == layer) & (frame["metric"] == "auc")]["value"]
        labels = label_column(table, cell.layer_cols, auc.iloc[0] if len(auc) else None, -distances_)
        if labels is not None:
            curve = roc_curve(layer or cell.model, cell.colors[layer], labels, distances_, n_boot=0)
            if curve is not None:
                curves.append(curve)
    return curves


def _roc_panel(ax: Any, cell: _Cell, title: str) -> str | None:
    """ROC per layer, drawn when there are curves; returns the figure's title, else None (nothing drawn)."""
    if cell.table is None:
        return None
    curves = _roc_curves(cell)
    if not curves:
        return None
    draw_roc(ax, curves)
    ax.set_title(f"{title}: ROC per layer")
    return f"{title}: ROC per layer"


def _scatter_panel(ax: Any, cell: _Cell, title: str) -> str | None:
    """Model against human dissimilarity at the readout layer, drawn when the table has a human column;
    returns the figure's title, else None (nothing drawn)."""
    frame, table, readout_layer = cell.frame, cell.table, cell.readout_layer
    if table is None or not layer_column(table, readout_layer):
        return None
    x = pd.to_numeric(table[layer_column(table, readout_layer)], errors="coerce").to_numpy(dtype=float)
    row = frame[(frame["layer"] == readout_layer) & (frame["metric"] == type_headline(frame, cell.metric))]
    reported = row["value"].iloc[0] if len(row) else None
    method = row["protocol"].iloc[0] if len(row) else "pearson"
    human = human_column(table, cell.layer_cols, x, reported, method)
    if human is None:
        return None
    draw_scatter(ax, table[human].to_numpy(dtype=float), x, cell.colors[readout_layer], reported, method)
    ax.set_title(f"{title} · {readout_layer}: {ax.get_title()}")
    ax.set_xlabel(f"human dissimilarity ({human})")
    ax.set_ylabel(f"model {distance_label(frame)}")
    return f"{title}: model vs human dissimilarity"


def _headline_panel(fig: Any, ax: Any, cell: _Cell, title: str) -> str:
    """The headline metric per layer: grouped bars per condition when it has conditions, else one bar per
    layer with its CI (readout layer marked); returns the figure's title."""
    frame, metric, model, colors = cell.frame, cell.metric, cell.model, cell.colors
    head = frame[frame["metric"] == metric]
    if (head["condition"] != "").any():
        conditions = [c for c in dict.fromkeys(head["condition"]) if c]
        draw_grouped(ax, conditions, [(lyr or model, colors[lyr], head[head["layer"] == lyr]) for lyr in cell.layers])
        ax.legend(loc="best", title="layer")
        ax.set_ylabel(metric_label(metric, frame))
    else:
        head = head.drop_duplicates("layer")
        adjust(
            fig,
            left=0.35 + CHAR_IN * 1.08 * max((len(shorten(lyr or model, 30)) for lyr in head["layer"]), default=4),
            right=0.3,
            top=0.4,
            bottom=0.5 + 0.16 * metric_label(metric, frame).count("\n"),
        )
        draw_hbars(
            ax,
            [shorten(lyr or model, 30) for lyr in head["layer"]],
            head["value"].to_numpy(),
            head["ci_low"].to_numpy(),
            head["ci_high"].to_numpy(),
            [colors[lyr] for lyr in head["layer"]],
            list(head["_readout"]),
        )
        ax.set_xlabel(metric_label(metric, frame))
    ax.set_title(f"{title}: {display_name(metric)}")
    return f"{title}: {display_name(metric)}"
