"""Figures of a results directory: PNGs under `plots/`, written from results.csv and distances/.

matplotlib is used through `matplotlib.figure.Figure` only (no pyplot): nothing is registered with a
GUI backend, no global state changes (styles apply through `rc_context`), and every figure is dropped
once saved. Every model keeps one colour across all figures of a report (`model_colors`).

Figures (see `write_plots`):
- every task: the headline metric per model·layer as horizontal bars, with CI error bars where the CI
  columns are finite (many layers: each model's readout layer plus its best layers, 40 bars at most);
- `accuracy`: ROC curves of every model at its readout layer on one axes, and same vs different
  distance histograms (one panel per model);
- `correlation`: model distance against human distance (one panel per model·layer) with the least
  squares line and r, and the noise ceiling band on the bars when the task reports one;
- metrics with conditions (`conditions`, the group means of `relative_difference`): grouped bars per
  condition; `relative_difference` bars carry the human effect as a reference line when known;
- tasks with rank-k metrics (`identification`): CMC curves;
- tasks where a model has more than one layer: the layer profile (metric against layer depth);
- the overview: a model × task heatmap of each task's headline metric at the readout layer.

Unknown task types get the headline bars (and the layer profile). `plots/manifest.json` lists every
figure with its task, kind and number of panels; `report.html` is assembled from it.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from ..files import atomic_write
from ..metrics import display_name, metric_vocabulary, remember_scoring
from .data import (
    MANIFEST,
    PLOTS_DIR,
    DistanceFiles,
    _correlate,
    declared_figures,
    direction,
    finite,
    headline_metrics,
    human_column,
    label_column,
    layer_column,
    load_references,
    model_colors,
    model_order,
    normalize_results,
    read_manifest,
    read_results,
    registry_headlines,
    task_order,
    task_types,
    with_readout,
)
from .tables import safe_name

DPI = 100
MAX_BARS = 40  # bars in one headline chart
MAX_LAYERS_PER_MODEL = 12  # layers of one model in one bar chart
MAX_PANELS = 12  # small multiples in one figure
PARALLEL_MIN_CELLS = 40  # model × task cells from which write_plots draws in several processes
STYLE: dict[str, Any] = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "savefig.facecolor": "white",
    "figure.facecolor": "white",
}
RANK_METRIC = re.compile(r"^rank_?(\d+)$")


@dataclass
class PlotInfo:
    """One written figure: its file (relative to the results dir), what it shows, and its panels."""

    file: str
    kind: str
    task: str | None
    axes: int
    title: str
    caption: str = ""
    items: int = 0  # bars, curves or panels shown (model·layers, models...)


# --- the data ---------------------------------------------------------------------------------
@contextmanager
def _style() -> Iterator[None]:
    import matplotlib

    with matplotlib.rc_context(cast(Any, STYLE)):  # matplotlib types rc keys as a Literal union
        yield


def _figure(width: float, height: float, dpi: int = DPI):
    """A figure outside pyplot. No layout engine: constrained layout doubles the drawing time (a dry
    draw to measure every text), so each figure sets its margins in inches (`_adjust`)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=dpi)


CHAR_IN = 0.068  # inches per character of an 8 pt tick label (DejaVu Sans, average)


def _adjust(
    fig,
    left: float = 0.7,
    right: float = 0.2,
    top: float = 0.45,
    bottom: float = 0.55,
    wspace: float = 0.45,
    hspace: float = 0.6,
    rows: int = 1,
    cols: int = 1,
) -> None:
    """Margins and gaps between panels in inches."""
    width, height = fig.get_size_inches()
    lo = min(left / width, 0.7)
    hi = max(1 - right / width, lo + 0.1)
    bo = min(bottom / height, 0.7)
    to = max(1 - top / height, bo + 0.1)
    axes_w = max(0.1, (width * (hi - lo) - (cols - 1) * wspace) / cols)
    axes_h = max(0.1, (height * (to - bo) - (rows - 1) * hspace) / rows)
    fig.subplots_adjust(left=lo, right=hi, bottom=bo, top=to, wspace=wspace / axes_w, hspace=hspace / axes_h)


def _few_ticks(ax, n: int = 4, y: bool = True) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(n))
    if y:
        ax.yaxis.set_major_locator(MaxNLocator(n))


def _png(fig, dpi: int = DPI) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()  # the figure is not registered anywhere: dropping it frees it


def _shorten(text: str, width: int = 38) -> str:
    text = str(text)
    if len(text) <= width:
        return text
    keep = (width - 1) // 2
    return text[:keep] + "…" + text[-(width - 1 - keep) :]


def _wrap(text: str, width: int = 18) -> str:
    return textwrap.fill(_shorten(text, 44), width, break_long_words=False, break_on_hyphens=True) or text


def _grid_shape(n: int, max_cols: int = 4) -> tuple[int, int]:
    cols = min(max_cols, max(1, n))
    return math.ceil(n / cols), cols


def _panels(fig, n: int, max_cols: int = 4, **kwargs: Any) -> list[Any]:
    rows, cols = _grid_shape(n, max_cols)
    axes = fig.subplots(rows, cols, squeeze=False, **kwargs).ravel().tolist()
    for ax in axes[n:]:
        fig.delaxes(ax)
    return axes[:n]


def _data_axes(fig) -> int:
    """Axes holding data (colour bars excluded)."""
    return sum(1 for ax in fig.axes if not getattr(ax, "_colorbar", None) and ax.get_label() != "<colorbar>")


def select_layers(
    rows: pd.DataFrame, metric: str, max_bars: int = MAX_BARS, max_per_model: int = MAX_LAYERS_PER_MODEL
) -> tuple[pd.DataFrame, bool]:
    """Rows (one per model·layer) to show in one bar chart: all of them when they fit; else each model's
    readout layer plus its best layers. Returns (rows in model then depth order, whether any were dropped)."""
    frame = rows.copy()
    models = list(dict.fromkeys(frame["model"]))
    if len(frame) <= max_bars and frame.groupby("model").size().max() <= max_per_model:
        return frame, False
    per_model = max(1, min(max_per_model, max_bars // max(1, len(models))))
    sign = direction(metric)
    keep = []
    for model in models:
        mine = frame[frame["model"] == model]
        chosen = list(mine.index[mine["_readout"]])[:1]
        order = (mine["value"] * sign).fillna(-np.inf).sort_values(ascending=False, kind="stable").index
        for index in order:
            if len(chosen) >= per_model:
                break
            if index not in chosen:
                chosen.append(index)
        keep.extend(
            sorted(chosen, key=lambda i: frame.at[i, "layer_index"] if finite(frame.at[i, "layer_index"]) else -1)
        )
    return frame.loc[keep], True


def _draw_hbars(
    ax,
    labels: list[str],
    values: np.ndarray,
    lows: np.ndarray,
    highs: np.ndarray,
    colors: list[str],
    strong: list[bool],
) -> None:
    y = np.arange(len(labels))
    values = np.asarray(values, dtype=float)
    shown = np.where(np.isfinite(values), values, 0.0)
    alphas = [1.0 if s else 0.55 for s in strong]
    bars = ax.barh(
        y, shown, color=colors, height=0.75, edgecolor=["#222222" if s else "none" for s in strong], linewidth=0.8
    )
    for bar, alpha in zip(bars, alphas):
        bar.set_alpha(alpha)
    lows, highs = np.asarray(lows, dtype=float), np.asarray(highs, dtype=float)
    ci = np.isfinite(lows) & np.isfinite(highs) & np.isfinite(values)
    if ci.any():
        err = np.vstack([np.clip(values[ci] - lows[ci], 0, None), np.clip(highs[ci] - values[ci], 0, None)])
        ax.errorbar(values[ci], y[ci], xerr=err, fmt="none", ecolor="#222222", elinewidth=1, capsize=2.5)
    for yi, value in zip(y, values):
        if not np.isfinite(value):
            ax.text(0, yi, " n/a", va="center", fontsize=7, color="#666666")
    ax.set_yticks(y, labels)
    for tick, s in zip(ax.get_yticklabels(), strong):
        tick.set_fontweight("bold" if s else "normal")
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    ax.axvline(0, color="#444444", linewidth=0.7)


def _reference_lines(ax, refs: list[dict[str, Any]], vertical: bool = True) -> None:
    styles = ["--", ":", "-."]
    for i, ref in enumerate(refs):
        value = float(ref["value"])
        label = ref.get("label") or "reference"
        line = ax.axvline if vertical else ax.axhline
        line(value, color="#333333", linestyle=styles[i % len(styles)], linewidth=1.2, label=f"{label} ({value:.3g})")


def _task_refs(task: str, metric: str, rows: pd.DataFrame, references: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Task-level reference values for a metric (no model): human effect, published baselines."""
    refs = []
    mine = rows[(rows["metric"] == metric) & (rows["condition"] == "")]
    if "human_effect" in mine:  # the task's declared human value rides on its metric's rows
        values = pd.to_numeric(mine["human_effect"], errors="coerce").dropna()
        if len(values):
            refs.append({"value": float(values.median()), "label": "human effect"})
    for ref in references:
        if (
            ref.get("task") == task
            and ref.get("metric") == metric
            and not ref.get("model")
            and finite(ref.get("value"))
        ):
            refs.append({"value": float(ref["value"]), "label": ref.get("label") or ref.get("source") or "reference"})
    return refs


def _ceiling(task_rows: pd.DataFrame) -> tuple[float, float] | None:
    low = task_rows.loc[task_rows["metric"] == "correlation_ceiling_low", "value"].dropna()
    high = task_rows.loc[task_rows["metric"] == "correlation_ceiling_high", "value"].dropna()
    if len(low) and len(high):
        return float(low.median()), float(high.median())
    return None


# --- the report's figures -----------------------------------------------------------------------
class _Plotter:
    def __init__(
        self,
        out_dir: Path,
        results: pd.DataFrame,
        references: list[dict[str, Any]],
        dpi: int,
        headlines: dict[str, str] | None,
        models: list[str] | None = None,
        colors: dict[str, str] | None = None,
        figures: dict[str, list[str]] | None = None,
    ):
        self.out_dir = Path(out_dir)
        self.plot_dir = self.out_dir / PLOTS_DIR
        self.results = with_readout(results)
        self.models = models if models is not None else model_order(results)
        self.colors = colors if colors is not None else model_colors(self.models)
        self.types = task_types(results)
        self.figures = figures or {}  # task → the figure kinds its type declares (BaseTask.figures)
        self.headline = headline_metrics(results, headlines)
        self.headline_source = headlines
        self.references = references
        self.dpi = dpi
        self.files = DistanceFiles(self.out_dir)
        self.written: list[PlotInfo] = []
        self.errors: list[dict[str, str]] = []

    def attempt(self, task: str | None, kind: str, draw: Any, *args: Any) -> None:
        """Draw one figure; a failure is recorded (manifest `errors`, shown in the report), not raised,
        so one odd task never costs the other figures."""
        try:
            draw(*args)
        except Exception as exc:  # noqa: BLE001
            self.errors.append({"task": task or "", "kind": kind, "error": f"{type(exc).__name__}: {exc}"})

    def save(self, fig, name: str, kind: str, task: str | None, title: str, caption: str = "", items: int = 0) -> None:
        path = self.plot_dir / f"{name}.png"
        axes = _data_axes(fig)
        atomic_write(path, _png(fig, self.dpi))
        self.written.append(
            PlotInfo(
                file=f"{PLOTS_DIR}/{path.name}",
                kind=kind,
                task=task,
                axes=axes,
                title=title,
                caption=caption,
                items=items,
            )
        )

    def run(self, workers: int = 1) -> list[PlotInfo]:
        self.plot_dir.mkdir(parents=True, exist_ok=True)
        tasks = task_order(self.results)
        if workers > 1 and len(tasks) > 1:
            from concurrent.futures import BrokenExecutor

            try:
                return self._run_parallel(tasks, workers)
            except (BrokenExecutor, OSError):  # no working process pool here: draw serially
                self.written, self.errors = [], []
        with _style():
            if not self.results.empty:
                self.attempt(None, "overview", self.overview)
            for task in tasks:
                self.task_figures(task, self.results[self.results["task"] == task])
        return self.written

    def _run_parallel(self, tasks: list[str], workers: int) -> list[PlotInfo]:
        """One job per task in `workers` spawned processes (spawn: the parent may hold torch threads);
        the overview is drawn here meanwhile. Same files and order as the serial path."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        results = self.results.drop(columns=["_readout"])
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context) as pool:
            jobs = [
                pool.submit(
                    _task_job,
                    str(self.out_dir),
                    results[results["task"] == task],
                    self.references,
                    self.dpi,
                    self.headline_source,
                    self.models,
                    self.colors,
                    self.figures,
                    metric_vocabulary(),
                )
                for task in tasks
            ]
            with _style():
                if not self.results.empty:
                    self.attempt(None, "overview", self.overview)
            for job in jobs:
                done = job.result()
                self.written.extend(PlotInfo(**info) for info in done["plots"])
                self.errors.extend(done["errors"])
        return self.written

    def task_figures(self, task: str, rows: pd.DataFrame) -> None:
        kinds = set(self.figures.get(task, ()))
        metric = self.headline.get(task, "")
        head = rows[rows["metric"] == metric]
        base = safe_name(task)
        if (head["condition"] == "").any():
            self.attempt(task, "headline", self.headline_bars, task, rows, head[head["condition"] == ""], metric, base)
        if (head["condition"] != "").any():
            self.attempt(task, "conditions", self.condition_bars, task, head, metric, base)
        if "group_bars" in kinds:
            groups = rows[(rows["metric"] == "group_mean") & (rows["condition"] != "")]
            if len(groups):
                self.attempt(task, "conditions", self.condition_bars, task, groups, "group_mean", base)
        if "roc" in kinds:
            self.attempt(task, "roc", self.roc_and_distributions, task, rows, base)
        if "scatter" in kinds:
            self.attempt(task, "scatter", self.scatter, task, rows, metric, base)
        if "rdm" in kinds:
            self.attempt(task, "rdm", self.rdms, task, rows, metric, base)
        ranks = sorted({int(m.group(1)) for m in map(RANK_METRIC.match, rows["metric"]) if m})
        if "cmc" in kinds and len(ranks) >= 2:
            self.attempt(task, "cmc", self.cmc, task, rows, base)
        if len(head) and head.groupby("model")["layer"].nunique().max() > 1:
            self.attempt(task, "layer_profile", self.layer_profile, task, rows, head, metric, base)

    # every task: headline bars
    def headline_bars(self, task: str, rows: pd.DataFrame, head: pd.DataFrame, metric: str, base: str) -> None:
        chosen, dropped = select_layers(head, metric)
        labels = [_shorten(f"{m} · {layer}" if layer else m, 44) for m, layer in zip(chosen["model"], chosen["layer"])]
        left = 0.35 + CHAR_IN * 1.08 * max((len(lbl) for lbl in labels), default=4)
        height = min(14.0, max(2.2, 1.0 + 0.24 * len(chosen)))
        ceiling = _ceiling(rows) if metric.startswith("correlation") and metric != "correlation_normalized" else None
        refs = _task_refs(task, metric, rows, self.references)
        entries = (["noise ceiling"] if ceiling else []) + [f"{r['label']} (0.000)" for r in refs]
        legend_w = 0.45 + CHAR_IN * max(len(e) for e in entries) if entries else 0.0
        fig = _figure(4.6 + left + legend_w, height, self.dpi)
        _adjust(fig, left=left, right=0.3 + legend_w, top=0.72 if dropped else 0.45, bottom=0.5)
        ax = fig.subplots()
        _draw_hbars(
            ax,
            labels,
            chosen["value"].to_numpy(),
            chosen["ci_low"].to_numpy(),
            chosen["ci_high"].to_numpy(),
            [self.colors.get(m, "#888888") for m in chosen["model"]],
            list(chosen["_readout"]),
        )
        if ceiling:
            ax.axvspan(*ceiling, color="#999999", alpha=0.25, linewidth=0, label="noise ceiling")
        _reference_lines(ax, refs)
        if entries:
            ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
        ax.set_xlabel(display_name(metric))
        title = f"{task}: {display_name(metric)} per model · layer"
        ax.set_title(title + ("\n(readout layer and best layers of each model)" if dropped else ""))
        caption = "Bold: readout layer. Error bars: confidence intervals where reported."
        self.save(fig, f"{base}__headline", "headline", task, title, caption, items=len(chosen))

    # conditions: grouped bars per condition at the readout layer
    def condition_bars(self, task: str, rows: pd.DataFrame, metric: str, base: str) -> None:
        rows = rows[rows["_readout"]]
        conditions = [c for c in dict.fromkeys(rows["condition"]) if c != ""]
        models = [m for m in self.models if m in set(rows["model"])]
        if not conditions or not models:
            return
        legend = 0.5 + CHAR_IN * max(len(_shorten(m, 28)) for m in models)
        plot_w = min(14.0, max(3.5, len(conditions) * (0.35 + 0.2 * len(models))))
        lines = max(len(_wrap(c).splitlines()) for c in conditions)
        fig = _figure(0.8 + plot_w + legend, 3.8, self.dpi)
        _adjust(fig, left=0.8, right=legend, top=0.45, bottom=0.3 + 0.16 * lines)
        ax = fig.subplots()
        _draw_grouped(ax, conditions, [(m, self.colors[m], rows[rows["model"] == m]) for m in models])
        if "human_effect" in rows:  # per-condition human values: a black segment across each group
            human = pd.to_numeric(rows["human_effect"], errors="coerce")
            drawn = False
            for i, condition in enumerate(conditions):
                values = human[rows["condition"] == condition].dropna()
                if len(values):
                    ax.hlines(
                        float(values.median()),
                        i - 0.42,
                        i + 0.42,
                        color="#111111",
                        linewidth=2,
                        label=None if drawn else "human",
                    )
                    drawn = True
        ax.set_ylabel(display_name(metric))
        title = f"{task}: {display_name(metric)} per condition (readout layer)"
        ax.set_title(title)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="model")
        self.save(fig, f"{base}__{safe_name(metric)}_conditions", "conditions", task, title, items=len(models))

    # accuracy: ROC overlay and distance histograms
    def _verification_data(self, task: str, rows: pd.DataFrame) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
        out = []
        for model in self.models:
            mine = rows[(rows["model"] == model)]
            if mine.empty:
                continue
            table = self.files.get(task, model)
            if table is None:
                continue
            readout = mine[mine["_readout"]]
            layer = (readout if len(readout) else mine)["layer"].iloc[0]
            column = layer_column(table, layer)
            if column is None:
                continue
            layer_columns = {c for c in (layer_column(table, lyr) for lyr in set(mine["layer"])) if c}
            distances = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
            auc_rows = mine[(mine["layer"] == layer) & (mine["metric"] == "auc")]["value"]
            labels = label_column(table, layer_columns, auc_rows.iloc[0] if len(auc_rows) else None, -distances)
            if labels is None:
                continue
            ok = np.isfinite(distances)
            out.append((model, layer, labels[ok], distances[ok]))
        return out

    def roc_and_distributions(self, task: str, rows: pd.DataFrame, base: str) -> None:
        data = self._verification_data(task, rows)
        if not data:
            return
        fig = _figure(5.6, 4.6, self.dpi)
        _adjust(fig, left=0.6, right=0.15, top=0.4, bottom=0.55)
        ax = fig.subplots()
        _draw_roc(ax, [(f"{m} · {layer}" if layer else m, self.colors[m], labels, -d) for m, layer, labels, d in data])
        title = f"{task}: ROC at the readout layer"
        ax.set_title(title)
        self.save(fig, f"{base}__roc", "roc", task, title, "Score = −distance; AUC in the legend.", items=len(data))

        shown = data[:MAX_PANELS]
        rows_n, cols = _grid_shape(len(shown))
        fig = _figure(2.9 * cols + 0.4, 2.3 * rows_n + 0.9, self.dpi)
        _adjust(fig, left=0.25, right=0.15, top=0.75, bottom=0.6, wspace=0.25, hspace=0.55, rows=rows_n, cols=cols)
        for i, (ax, (model, layer, labels, distances)) in enumerate(zip(_panels(fig, len(shown)), shown)):
            _draw_hist(ax, labels, distances, self.colors[model], legend=i == 0)
            _few_ticks(ax, y=False)
            ax.set_title(_shorten(f"{model} · {layer}" if layer else model, 34), color=self.colors[model])
        fig.supxlabel("distance")
        title = f"{task}: same vs different pair distances (readout layer)"
        fig.suptitle(title)
        self.save(
            fig,
            f"{base}__distributions",
            "distributions",
            task,
            title,
            items=len(shown),
            caption="Filled: same-identity pairs; outline: different-identity pairs.",
        )

    # correlation: model vs human distance per model·layer
    def scatter(self, task: str, rows: pd.DataFrame, metric: str, base: str) -> None:
        head = rows[rows["metric"] == "correlation"]
        if head.empty:
            head = rows[rows["metric"] == metric]
        chosen = []
        for model in self.models:
            mine = head[head["model"] == model]
            if len(mine):
                chosen.extend(mine.index[mine["_readout"]][:1])
        if len(chosen) < MAX_PANELS:  # fill with the best other layers
            rest = head.drop(index=chosen).sort_values("value", ascending=False, kind="stable")
            chosen.extend(rest.index[: MAX_PANELS - len(chosen)])

        def order(i: Any) -> tuple[int, float]:
            depth = head.at[i, "layer_index"]
            return self.models.index(head.at[i, "model"]), depth if finite(depth) else -1.0

        chosen = sorted(chosen[:MAX_PANELS], key=order)
        panels = []
        for index in chosen:
            model, layer = head.at[index, "model"], head.at[index, "layer"]
            table = self.files.get(task, model)
            column = layer_column(table, layer) if table is not None else None
            if column is None or table is None:
                continue
            own = set(rows.loc[rows["model"] == model, "layer"])
            layers = {c for c in (layer_column(table, lyr) for lyr in own) if c}
            x = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
            human = human_column(table, layers, x, head.at[index, "value"], head.at[index, "protocol"])
            if human is None:
                continue
            panels.append(
                (
                    model,
                    layer,
                    table[human].to_numpy(dtype=float),
                    x,
                    head.at[index, "value"],
                    head.at[index, "protocol"],
                    human,
                )
            )
        if not panels:
            return
        rows_n, cols = _grid_shape(len(panels))
        fig = _figure(2.9 * cols + 0.9, 2.6 * rows_n + 1.0, self.dpi)
        _adjust(fig, left=0.85, right=0.15, top=0.75, bottom=0.65, wspace=0.45, hspace=0.8, rows=rows_n, cols=cols)
        for ax, (model, layer, human, x, reported, method, _human_name) in zip(_panels(fig, len(panels)), panels):
            _draw_scatter(ax, human, x, self.colors[model], reported, method)
            _few_ticks(ax)
            ax.set_title(
                _shorten(f"{model} · {layer}" if layer else model, 34) + "\n" + ax.get_title(),
                color=self.colors[model],
                fontsize=9,
            )
        fig.supxlabel(f"human ({panels[0][6]})")
        fig.supylabel("model distance")
        title = f"{task}: model vs human distances"
        ceiling = _ceiling(rows)
        fig.suptitle(title + (f"  (noise ceiling {ceiling[0]:.2f}–{ceiling[1]:.2f})" if ceiling else ""))
        self.save(
            fig,
            f"{base}__scatter",
            "scatter",
            task,
            title,
            items=len(panels),
            caption="One panel per model at its readout layer, then the best other layers; line: least squares fit.",
        )

    # rsa: the human RDM beside each model's (readout layer)
    def rdms(self, task: str, rows: pd.DataFrame, metric: str, base: str) -> None:
        head = rows[(rows["metric"] == metric) & rows["_readout"]]
        panels: list[tuple[str, str, np.ndarray, str]] = []
        human_rdm = None
        for model in self.models:
            mine = head[head["model"] == model]
            table = self.files.get(task, model)
            if mine.empty or table is None or not {"img1", "img2"} <= set(table.columns):
                continue
            layer = mine["layer"].iloc[0]
            column = layer_column(table, layer)
            if column is None:
                continue
            layers = {
                c for c in (layer_column(table, lyr) for lyr in set(rows.loc[rows["model"] == model, "layer"])) if c
            }
            x = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
            if human_rdm is None:
                human = human_column(table, layers, x, mine["value"].iloc[0], mine["protocol"].iloc[0])
                if human is not None:
                    human_rdm = _square(table, table[human].to_numpy(dtype=float))
                    panels.append(("human", f"human ({human})", human_rdm, "#222222"))
            value = mine["value"].iloc[0]
            label = f"{_shorten(model, 24)} · {_shorten(layer, 20)}"
            label += f"\n{metric} = {value:.3f}" if finite(value) else ""
            panels.append((model, label, _square(table, x), self.colors[model]))
            if len(panels) >= MAX_PANELS:
                break
        if len(panels) < 2:
            return
        rows_n, cols = _grid_shape(len(panels))
        fig = _figure(2.6 * cols + 0.4, 2.7 * rows_n + 0.8, self.dpi)
        _adjust(fig, left=0.2, right=0.2, top=0.75, bottom=0.2, wspace=0.3, hspace=0.6, rows=rows_n, cols=cols)
        from matplotlib import colormaps

        cmap = colormaps["magma"].with_extremes(bad="#dddddd")
        for ax, (_, label, rdm, color) in zip(_panels(fig, len(panels)), panels):
            ok = np.isfinite(rdm)
            low, high = (np.nanpercentile(rdm[ok], 2), np.nanpercentile(rdm[ok], 98)) if ok.any() else (0, 1)
            ax.imshow(np.ma.masked_invalid(rdm), cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(visible=False)
            ax.set_title(label, color=color, fontsize=8.5)
        title = f"{task}: representational dissimilarity matrices (readout layer)"
        fig.suptitle(title)
        self.save(
            fig,
            f"{base}__rdm",
            "rdm",
            task,
            title,
            items=len(panels),
            caption="Stimuli in order of first appearance; each panel on its own colour scale (2nd–98th percentile).",
        )

    # identification: CMC curves from rank-k metrics
    def cmc(self, task: str, rows: pd.DataFrame, base: str) -> None:
        fig = _figure(5.6, 4.2, self.dpi)
        _adjust(fig, left=0.7, right=0.2, top=0.4, bottom=0.55)
        ax = fig.subplots()
        for model in self.models:
            mine = rows[(rows["model"] == model) & rows["_readout"] & (rows["condition"] == "")]
            points = sorted(
                (int(m.group(1)), v)
                for m, v in zip(map(RANK_METRIC.match, mine["metric"]), mine["value"])
                if m and finite(v)
            )
            if points:
                ks, values = zip(*points)
                ax.plot(ks, values, marker="o", color=self.colors[model], label=model)
        ax.set_xlabel("rank k")
        ax.set_ylabel("identification rate")
        title = f"{task}: CMC (readout layer)"
        ax.set_title(title)
        ax.legend(loc="lower right")
        self.save(fig, f"{base}__cmc", "cmc", task, title, items=len(ax.get_lines()))

    # multi-layer models: metric against depth
    def layer_profile(self, task: str, rows: pd.DataFrame, head: pd.DataFrame, metric: str, base: str) -> None:
        conditions = [c for c in dict.fromkeys(head["condition"])]
        conditions = conditions[:6]
        names = head.groupby("layer_index")["layer"].agg(lambda s: set(s))
        shared = all(len(v) == 1 for v in names) and head.groupby("model")["layer"].nunique().nunique() == 1
        longest = max((len(_shorten(next(iter(v)), 18)) for v in names), default=4) if shared else 0
        rows_n, cols = _grid_shape(len(conditions), 3)
        bottom = 0.55 + 0.72 * CHAR_IN * longest if shared else 0.55
        legend_w = 0.5 + CHAR_IN * max(
            (len(_shorten(m, 28)) + (12 if (head["model"] == m).sum() <= len(conditions) else 0) for m in self.models),
            default=8,
        )
        fig = _figure(0.9 + 5.0 * cols + legend_w, 3.4 * rows_n + bottom + 0.2, self.dpi)
        _adjust(
            fig,
            left=0.8,
            right=legend_w,
            top=0.5 if len(conditions) == 1 else 0.75,
            bottom=bottom,
            wspace=0.7,
            hspace=bottom + 0.3,
            rows=rows_n,
            cols=cols,
        )
        axes = _panels(fig, len(conditions), max_cols=3)
        ceiling = _ceiling(rows) if metric == "correlation" else None
        for ax, condition in zip(axes, conditions):
            sub = head[head["condition"] == condition]
            for model in self.models:
                mine = sub[sub["model"] == model].sort_values("layer_index", kind="stable")
                if mine.empty:
                    continue
                color = self.colors[model]
                if len(mine) == 1:
                    ax.axhline(
                        mine["value"].iloc[0], color=color, linestyle=":", linewidth=1.2, label=f"{model} (one layer)"
                    )
                    continue
                x = mine["layer_index"].to_numpy(dtype=float)
                x = np.where(np.isfinite(x), x, np.arange(len(x)))
                y = mine["value"].to_numpy(dtype=float)
                ax.plot(x, y, marker="o", markersize=3.5, color=color, linewidth=1.6, label=model)
                low, high = mine["ci_low"].to_numpy(dtype=float), mine["ci_high"].to_numpy(dtype=float)
                if (np.isfinite(low) & np.isfinite(high)).any():
                    ax.fill_between(x, low, high, color=color, alpha=0.15, linewidth=0)
                readout = mine["_readout"].to_numpy()
                if readout.any():
                    ax.plot(
                        x[readout],
                        y[readout],
                        marker="*",
                        markersize=11,
                        color=color,
                        linestyle="none",
                        markeredgecolor="#222222",
                        markeredgewidth=0.6,
                    )
            if ceiling:
                ax.axhspan(*ceiling, color="#999999", alpha=0.25, linewidth=0, label="noise ceiling")
            _reference_lines(ax, _task_refs(task, metric, rows, self.references), vertical=False)
            if shared:
                ticks = sorted(names.index)
                ax.set_xticks(ticks, [_shorten(next(iter(names[t])), 18) for t in ticks], rotation=45, ha="right")
                ax.set_xlabel("layer")
            else:
                from matplotlib.ticker import MaxNLocator

                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                ax.set_xlabel("layer depth (index of the model's extracted layers)")
            ax.set_ylabel(display_name(metric))
            if condition:
                ax.set_title(condition)
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(
            handles,
            labels,
            loc="upper left",
            bbox_to_anchor=(1 - (legend_w - 0.15) / fig.get_size_inches()[0], 1 - 0.5 / fig.get_size_inches()[1]),
        )
        title = f"{task}: {display_name(metric)} across layers"
        fig.suptitle(title + ("  (★ readout layer)"))
        self.save(fig, f"{base}__layer_profile", "layer_profile", task, title, items=head["model"].nunique())

    # overview heatmap
    def overview(self) -> None:
        frame = self.results
        head = frame[
            frame["_readout"] & (frame["metric"] == frame["task"].map(self.headline)) & (frame["condition"] == "")
        ]
        tasks = [t for t in task_order(self.results) if t in set(head["task"])]
        if not tasks:
            return
        matrix = np.full((len(self.models), len(tasks)), np.nan)
        for (model, task), value in head.groupby(["model", "task"], sort=False)["value"].first().items():
            if model in self.models:
                matrix[self.models.index(model), tasks.index(task)] = value
        draw_overview(self, matrix, tasks)


def _square(table: pd.DataFrame, values: np.ndarray) -> np.ndarray:
    """A symmetric stimulus × stimulus matrix from pair rows (img1, img2, value); unknown cells NaN."""
    names = list(dict.fromkeys([*table["img1"].astype(str), *table["img2"].astype(str)]))
    index = {name: i for i, name in enumerate(names)}
    rows = np.array([index[a] for a in table["img1"].astype(str)], dtype=int)
    cols = np.array([index[b] for b in table["img2"].astype(str)], dtype=int)
    matrix = np.full((len(names), len(names)), np.nan)
    matrix[rows, cols] = values
    matrix[cols, rows] = values
    return matrix


def _draw_grouped(ax, conditions: list[str], series: list[tuple[str, str, pd.DataFrame]]) -> None:
    n = max(1, len(series))
    width = 0.8 / n
    x = np.arange(len(conditions))
    for i, (label, color, rows) in enumerate(series):
        by = rows.drop_duplicates("condition").set_index("condition")
        values = np.array([by["value"].get(c, np.nan) for c in conditions], dtype=float)
        lows = np.array([by["ci_low"].get(c, np.nan) for c in conditions], dtype=float)
        highs = np.array([by["ci_high"].get(c, np.nan) for c in conditions], dtype=float)
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(pos, np.where(np.isfinite(values), values, 0), width=width * 0.95, color=color, label=label)
        ci = np.isfinite(lows) & np.isfinite(highs) & np.isfinite(values)
        if ci.any():
            err = np.vstack([np.clip(values[ci] - lows[ci], 0, None), np.clip(highs[ci] - values[ci], 0, None)])
            ax.errorbar(pos[ci], values[ci], yerr=err, fmt="none", ecolor="#222222", elinewidth=1, capsize=2)
    ax.set_xticks(x, [_wrap(c) for c in conditions])
    ax.grid(axis="x", visible=False)
    ax.axhline(0, color="#444444", linewidth=0.7)


def _draw_roc(ax, curves: list[tuple[str, str, np.ndarray, np.ndarray]]) -> None:
    from sklearn.metrics import roc_auc_score, roc_curve

    for label, color, labels, scores in curves:
        if labels.all() or not labels.any():
            continue
        fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=True)
        auc = roc_auc_score(labels, scores)
        ax.plot(fpr, tpr, color=color, linewidth=1.6, label=f"{_shorten(label, 32)} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right", fontsize=7)


def _draw_hist(ax, labels: np.ndarray, distances: np.ndarray, color: str, legend: bool = True) -> None:
    if len(distances) == 0:
        return
    edges = np.histogram_bin_edges(distances, bins=30)
    same, _ = np.histogram(distances[labels], bins=edges, density=True)
    different, _ = np.histogram(distances[~labels], bins=edges, density=True)
    ax.stairs(same, edges, fill=True, color=color, alpha=0.65, label="same")  # one artist, not 30 bars
    ax.stairs(different, edges, color="#222222", linewidth=1.1, label="different")
    ax.set_yticks([])
    ax.grid(visible=False)
    if legend:
        ax.legend(loc="upper right", fontsize=7)


def _draw_scatter(
    ax, human: np.ndarray, model: np.ndarray, color: str, reported: float | None, method: str = "pearson"
) -> None:
    ok = np.isfinite(human) & np.isfinite(model)
    x, y = human[ok], model[ok]
    ax.scatter(x, y, s=7, color=color, alpha=0.55, linewidths=0, rasterized=True)
    if len(x) >= 2 and np.std(x) > 0:
        slope, intercept = np.polyfit(x, y, 1)
        xs = np.array([x.min(), x.max()])
        ax.plot(xs, slope * xs + intercept, color="#222222", linewidth=1.2)
    r = reported if reported is not None and finite(reported) else _correlate(x, y, "pearson")
    symbol = "ρ" if "spearman" in str(method).lower() else "r"
    ax.set_title(f"{symbol} = {r:.3f}" if finite(r) else f"{symbol} = n/a")


def draw_overview(plotter: _Plotter, matrix: np.ndarray, tasks: list[str]) -> None:
    models = plotter.models
    left = 0.3 + CHAR_IN * max(len(_shorten(m, 28)) for m in models)
    rotate = len(tasks) > 6
    longest = max(len(_shorten(t, 26)) for t in tasks)
    bottom = 0.35 + (0.5 * CHAR_IN * longest + 0.3 if rotate else 0.35)
    fig = _figure(min(24.0, left + 0.3 + 1.05 * len(tasks)), min(16.0, bottom + 0.75 + 0.38 * len(models)), plotter.dpi)
    _adjust(fig, left=left, right=0.3, top=0.7, bottom=bottom)
    ax = fig.subplots()
    scaled = np.full_like(matrix, np.nan)
    for j, task in enumerate(tasks):  # colour each column on its own scale (tasks differ in range)
        column = matrix[:, j]
        ok = np.isfinite(column)
        if not ok.any():
            continue
        low, high = column[ok].min(), column[ok].max()
        scaled[ok, j] = 0.5 if high == low else (column[ok] - low) / (high - low)
        if direction(plotter.headline.get(task, "")) < 0:
            scaled[ok, j] = 1 - scaled[ok, j]
    from matplotlib import colormaps

    cmap = colormaps["viridis"].with_extremes(bad="#eeeeee")
    ax.imshow(np.ma.masked_invalid(scaled), cmap=cmap, vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            value = matrix[i, j]
            text = f"{value:.3g}" if np.isfinite(value) else "–"
            dark = np.isfinite(scaled[i, j]) and scaled[i, j] < 0.6
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "#222222")
    ax.set_xticks(
        range(len(tasks)),
        [f"{_shorten(t, 26)}\n{_shorten(display_name(plotter.headline.get(t, '')), 26)}" for t in tasks],
        rotation=30 if rotate else 0,
        ha="right" if rotate else "center",
        rotation_mode="anchor",
    )
    ax.set_yticks(range(len(models)), [_shorten(m, 28) for m in models])
    for tick, model in zip(ax.get_yticklabels(), models):
        tick.set_color(plotter.colors[model])
    ax.grid(visible=False)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    title = "Headline metric per model × task (readout layer)"
    ax.set_title(title + "\ncolour: position within each task's range (brighter is better)")
    plotter.save(fig, "overview", "overview", None, title, items=int(np.isfinite(matrix).sum()))


# --- entry points -------------------------------------------------------------------------------
def _task_job(
    out_dir: str,
    rows: pd.DataFrame,
    references: list[dict[str, Any]],
    dpi: int,
    headlines: dict[str, str] | None,
    models: list[str],
    colors: dict[str, str],
    figures: dict[str, list[str]],
    vocabulary: dict[str, tuple[str, str | None]],
) -> dict[str, Any]:
    """A worker process's share: every figure of one task (see `_Plotter._run_parallel`)."""
    remember_scoring({"metrics": vocabulary})  # the parent's metric names (a spawned process imported no task)
    plotter = _Plotter(Path(out_dir), rows, references, dpi, headlines, models=models, colors=colors, figures=figures)
    with _style():
        for task in task_order(plotter.results):
            plotter.task_figures(task, plotter.results[plotter.results["task"] == task])
    return {"plots": [asdict(info) for info in plotter.written], "errors": plotter.errors}


def plot_workers(results: pd.DataFrame) -> int:
    """Processes for `write_plots` by default: one per available CPU (at most 4) for large grids
    (PARALLEL_MIN_CELLS model × task cells or more), else 1: a spawned worker costs ~2 s to start."""
    cells = results[["model", "task"]].drop_duplicates().shape[0] if len(results) else 0
    if cells < PARALLEL_MIN_CELLS:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def write_plots(
    out_dir: Path,
    results: pd.DataFrame | None = None,
    references: list[dict[str, Any]] | None = None,
    *,
    dpi: int = DPI,
    headlines: dict[str, str] | None = None,
    workers: int | None = None,
    figures: dict[str, list[str]] | None = None,
) -> list[Path]:
    """Write the figures of a results dir under `plots/` and `plots/manifest.json`; return the PNG paths.

    `results` is the results table (read from results.csv when None); distances come from
    `distances/<task>/<model>.csv`. `references` are task-level reference values drawn as lines
    (see `html.normalize_references`; references.json of the dir when None). `workers`: processes
    drawing the tasks' figures (default `plot_workers(results)`). `figures`: task → the figure kinds its type
    declares (`BaseTask.figures`; from plots/manifest.json when None, so a rebuilt report draws the same)."""
    out_dir = Path(out_dir)
    results = read_results(out_dir) if results is None else normalize_results(results)
    plot_dir = out_dir / PLOTS_DIR
    old = read_manifest(out_dir)
    if references is None:
        references = load_references(out_dir)
    saved = old.get("headlines") if old else None
    if headlines is None:
        headlines = registry_headlines(saved, set(task_types(results).values()))
    figures = {**declared_figures(results), **((old or {}).get("figures") or {} if figures is None else figures)}
    plotter = _Plotter(out_dir, results, references, dpi, headlines, figures=figures)
    written = plotter.run(plot_workers(results) if workers is None else workers)
    keep = {info.file for info in written}
    for entry in (old or {}).get("plots", []):  # figures of a previous report that no longer exist
        stale = out_dir / str(entry.get("file", ""))
        if entry.get("file") not in keep and stale.parent == plot_dir and stale.suffix == ".png" and stale.is_file():
            stale.unlink()
    types = plotter.types
    manifest = {
        "plots": [asdict(info) for info in written],
        "errors": plotter.errors,
        "colors": plotter.colors,
        "headlines": {t: h for t, h in headlines.items() if t in set(types.values())} or headlines,
        "task_headlines": plotter.headline,
        "figures": figures,
    }
    if written or plot_dir.is_dir():
        plot_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(plot_dir / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return [out_dir / info.file for info in written]


def overview_png(results: pd.DataFrame, *, dpi: int = DPI, headlines: dict[str, str] | None = None) -> bytes | None:
    """Only the overview heatmap, as PNG bytes (None without results)."""
    import tempfile

    results = normalize_results(results)
    if results.empty:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        plotter = _Plotter(Path(tmp), results, [], dpi, headlines if headlines is not None else registry_headlines())
        plotter.plot_dir.mkdir(parents=True, exist_ok=True)
        with _style():
            plotter.overview()
        return (plotter.plot_dir / "overview.png").read_bytes() if plotter.written else None


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
    colors = _layer_colors(layers)
    layer_cols = {c for c in (layer_column(table, lyr) for lyr in layers) if c} if table is not None else set()
    readout = frame.loc[frame["_readout"], "layer"]
    readout_layer = readout.iloc[0] if len(readout) else layers[-1]
    with _style():
        fig = _figure(5.4, 3.8, dpi)
        _adjust(fig, left=0.7, right=0.2, top=0.4, bottom=0.75)
        ax = fig.subplots()
        title = f"{model} on {task}"
        if "roc" in figures and table is not None:
            curves = []
            for layer in layers:
                column = layer_column(table, layer)
                if column is None:
                    continue
                scores = -pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
                auc = frame[(frame["layer"] == layer) & (frame["metric"] == "auc")]["value"]
                labels = label_column(table, layer_cols, auc.iloc[0] if len(auc) else None, scores)
                if labels is not None:
                    ok = np.isfinite(scores)
                    curves.append((layer or model, colors[layer], labels[ok], scores[ok]))
            if curves:
                _draw_roc(ax, curves)
                ax.set_title(f"{title}: ROC per layer")
                return _png(fig, dpi), f"{title}: ROC per layer"
        if "scatter" in figures and table is not None and layer_column(table, readout_layer):
            x = pd.to_numeric(table[layer_column(table, readout_layer)], errors="coerce").to_numpy(dtype=float)
            row = frame[(frame["layer"] == readout_layer) & (frame["metric"] == "correlation")]
            reported = row["value"].iloc[0] if len(row) else None
            human = human_column(table, layer_cols, x, reported, row["protocol"].iloc[0] if len(row) else "pearson")
            if human is not None:
                _draw_scatter(
                    ax,
                    table[human].to_numpy(dtype=float),
                    x,
                    colors[readout_layer],
                    reported,
                    row["protocol"].iloc[0] if len(row) else "pearson",
                )
                ax.set_title(f"{title} · {readout_layer}: {ax.get_title()}")
                ax.set_xlabel(f"human ({human})")
                ax.set_ylabel("model distance")
                return _png(fig, dpi), f"{title}: model vs human distance"
        head = frame[frame["metric"] == metric]
        if (head["condition"] != "").any():
            conditions = [c for c in dict.fromkeys(head["condition"]) if c]
            _draw_grouped(ax, conditions, [(lyr or model, colors[lyr], head[head["layer"] == lyr]) for lyr in layers])
            ax.legend(loc="best", title="layer")
        else:
            head = head.drop_duplicates("layer")
            _adjust(
                fig,
                left=0.35 + CHAR_IN * 1.08 * max((len(_shorten(lyr or model, 30)) for lyr in head["layer"]), default=4),
                right=0.3,
                top=0.4,
                bottom=0.5,
            )
            _draw_hbars(
                ax,
                [_shorten(lyr or model, 30) for lyr in head["layer"]],
                head["value"].to_numpy(),
                head["ci_low"].to_numpy(),
                head["ci_high"].to_numpy(),
                [colors[lyr] for lyr in head["layer"]],
                list(head["_readout"]),
            )
        ax.set_title(f"{title}: {display_name(metric)}")
        return _png(fig, dpi), f"{title}: {display_name(metric)}"


def _layer_colors(layers: list[str]) -> dict[str, str]:
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    n = len(layers)
    cmap = colormaps["viridis"]
    return {layer: to_hex(cmap(0.15 + 0.7 * (i / max(1, n - 1)))) for i, layer in enumerate(layers)}
