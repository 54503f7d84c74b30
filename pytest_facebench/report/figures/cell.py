"""The pytest-html figure of one model × task cell (`cell_figure_png`), drawn from the cell's records and
distances table alone (no results dir)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ...metrics import display_name
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
from .draw import draw_grouped, draw_hbars, draw_roc, draw_scatter, layer_colors, roc_curve
from .labels import distance_label, metric_label, type_headline


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
    with style():
        fig = figure(5.4, 3.8, dpi)
        adjust(fig, left=0.7, right=0.2, top=0.4, bottom=0.75)
        ax = fig.subplots()
        title = f"{model} on {task}"

        def done(text: str) -> tuple[bytes, str]:
            fit_titles(fig)
            return encode(fig, "png", dpi), text

        if "roc" in figures and table is not None:
            curves = []
            for layer in layers:
                column = layer_column(table, layer)
                if column is None:
                    continue
                distances_ = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
                auc = frame[(frame["layer"] == layer) & (frame["metric"] == "auc")]["value"]
                labels = label_column(table, layer_cols, auc.iloc[0] if len(auc) else None, -distances_)
                if labels is not None:
                    curve = roc_curve(layer or model, colors[layer], labels, distances_, n_boot=0)
                    if curve is not None:
                        curves.append(curve)
            if curves:
                draw_roc(ax, curves)
                ax.set_title(f"{title}: ROC per layer")
                return done(f"{title}: ROC per layer")
        if "scatter" in figures and table is not None and layer_column(table, readout_layer):
            x = pd.to_numeric(table[layer_column(table, readout_layer)], errors="coerce").to_numpy(dtype=float)
            row = frame[(frame["layer"] == readout_layer) & (frame["metric"] == type_headline(frame, metric))]
            reported = row["value"].iloc[0] if len(row) else None
            method = row["protocol"].iloc[0] if len(row) else "pearson"
            human = human_column(table, layer_cols, x, reported, method)
            if human is not None:
                draw_scatter(ax, table[human].to_numpy(dtype=float), x, colors[readout_layer], reported, method)
                ax.set_title(f"{title} · {readout_layer}: {ax.get_title()}")
                ax.set_xlabel(f"human dissimilarity ({human})")
                ax.set_ylabel(f"model {distance_label(frame)}")
                return done(f"{title}: model vs human dissimilarity")
        head = frame[frame["metric"] == metric]
        if (head["condition"] != "").any():
            conditions = [c for c in dict.fromkeys(head["condition"]) if c]
            draw_grouped(ax, conditions, [(lyr or model, colors[lyr], head[head["layer"] == lyr]) for lyr in layers])
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
        return done(f"{title}: {display_name(metric)}")
