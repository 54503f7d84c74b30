"""Figures of a results dir under `plots/`, written from results.csv, distances/ and comparisons.csv.

Every figure is written as PNG (report.html embeds it) and in each further format asked for (`formats`:
svg, pdf; same file stem). The building blocks are in `report.figures` (`base`: figure, formats, titles
that fit; `labels`: axis quantities and chance levels; `draw`: drawing on one axes; `references`: human,
reference and ceiling lines; `cell`: the pytest-html figure); this module decides what each task shows.
`draw_figures` returns the figures without saving them (to adjust one for a paper, or to test what it
shows). Every model keeps one colour and one label across all figures (`data.model_colors`: by the model's
name, or the grid's `color`; `label` likewise), and every title fits in its figure (`fit_titles`).

What a task shows is what its type declares (`BaseTask.figures`, the figure kinds below, and `BaseTask.axes`:
each metric's axis label, chance or no-effect line and noise ceiling; `metrics.TaskTypeInfo`, known by type name
also in a process that never imported the class). No figure here depends on a task type's name.

Figures (see `write_plots`):
- every task: the headline metric per model·layer as horizontal bars, with CI error bars where the CI
  columns are finite (many layers: each model's readout layer plus its best layers, 40 bars at most), the
  declared chance level (e.g. 0.5 for verification accuracy and AUC, 0 for correlations, RSA and effects), noise
  ceiling and reference values as lines;
- `roc` (accuracy, template_verification): ROC curves at the readout layer, linear and log FAR (1e-4..1), each
  with a 95% bootstrap band over pairs, and same vs different distance histograms (one panel per model);
- `scatter` (correlation): model distance against human dissimilarity for the type's headline (one panel per
  model·layer) with the least squares line and r;
- metrics with conditions (`conditions`; `group_bars`: the `group_mean` rows per condition): grouped bars per
  condition, with the declared human values;
- `rdm` (rsa): the human RDM beside each model's, with colour bars and stimulus names (few stimuli),
  on one colour scale shared by the models (default), or each on its own (`rdm_scale="panel"`);
- `cmc` (identification; rank-k metrics): CMC curves with CI bands and the chance line k/N (N: the gallery size);
- tasks where a model has more than one layer: the layer profile (metric against layer by name: one axis
  when the models share their layers, else a panel per model; relative depth 0–1 with `layer_axis="depth"`,
  `"auto"` picks depth when the layers differ), with the
  noise ceiling, human value and chance level as horizontal lines;
- tasks with model comparisons (comparisons.csv): a forest plot of each model pair's difference and CI;
- the overview: a model × task heatmap of each task's headline metric at the readout layer, each column
  coloured by its metric's direction (higher, lower, closeness to the human value, 0-centred, neutral).

Unknown task types get the headline bars (and the layer profile). `plots/manifest.json` lists every
figure with its task, kind, number of panels and files; `report.html` is assembled from it.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..files import atomic_write
from ..outputs.metrics import (
    display_name,
    learn_task_types,
    metric_info,
    metric_vocabulary,
    remember_scoring,
    task_type_vocabulary,
)
from ..outputs.reading import read_comparisons, read_run
from .data import (
    MANIFEST,
    PLOTS_DIR,
    DistanceFiles,
    declared_figures,
    direction,
    finite,
    headline_metrics,
    human_column,
    label_column,
    layer_column,
    load_references,
    model_colors,
    model_labels,
    model_order,
    normalize_model_styles,
    normalize_results,
    read_manifest,
    read_model_styles,
    read_results,
    registry_headlines,
    style_overrides,
    task_order,
    task_target,
    task_types,
    with_readout,
)
from .figures.base import (
    CHAR_IN,
    DPI,
    FORMATS,
    STYLE,
    PlotInfo,
    adjust,
    data_axes,
    encode,
    few_ticks,
    figure,
    figure_formats,
    fit_titles,
    grid_shape,
    panels,
    shorten,
    style,
    wrap,
)
from .figures.cell import cell_figure_png
from .figures.draw import (
    CHANCE_STYLE,
    N_BOOT,
    SEED,
    chance_line,
    column_mode,
    draw_grouped,
    draw_hbars,
    draw_hist,
    draw_rdm,
    draw_roc,
    draw_scatter,
    overview_figure,
    rdm_limits,
    reference_lines,
    roc_curve,
    square,
)
from .figures.labels import (
    chance_level,
    correlation_method,
    correlation_symbol,
    distance_label,
    gallery_size,
    metric_label,
    type_headline,
)
from .figures.references import ceiling_lines, human_value, legend_entries, noise_ceiling, task_refs
from .numbers import format_number, format_p, shared_decimals
from .tables import safe_name
from .verdicts import significant as is_significant

__all__ = [
    "DPI",
    "FORMATS",
    "LAYER_AXES",
    "MAX_BARS",
    "RDM_SCALES",
    "STYLE",
    "PlotInfo",
    "cell_figure_png",
    "draw_figures",
    "overview_png",
    "plot_workers",
    "select_layers",
    "write_plots",
]

MAX_BARS = 40  # bars in one headline chart
MAX_LAYERS_PER_MODEL = 12  # layers of one model in one bar chart
MAX_PANELS = 12  # small multiples in one figure
MAX_STIMULUS_LABELS = 24  # RDMs name their stimuli up to this many
PARALLEL_MIN_CELLS = 40  # model × task cells from which write_plots draws in several processes
RANK_METRIC = re.compile(r"^rank_?(\d+)$")
LAYER_AXES = ("auto", "names", "depth")
RDM_SCALES = ("panel", "shared")
CONDITION_STYLES = ["-", "--", ":", "-."]


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
        *,
        labels: dict[str, str] | None = None,
        formats: tuple[str, ...] = ("png",),
        layer_axis: str = "names",
        rdm_scale: str = "shared",
        keep: bool = False,
    ):
        self.out_dir = Path(out_dir)
        self.plot_dir = self.out_dir / PLOTS_DIR
        self.results = with_readout(results)
        self.models = models if models is not None else model_order(results)
        self.colors = colors if colors is not None else model_colors(self.models)
        self.labels = labels if labels is not None else model_labels(self.models)
        self.types = task_types(results)
        self.figures = figures or {}  # task → the figure kinds its type declares (BaseTask.figures)
        self.headline = headline_metrics(results, headlines)
        self.headline_source = headlines
        self.references = references
        self.dpi = dpi
        self.formats = figure_formats(formats)
        self.layer_axis = layer_axis
        self.rdm_scale = rdm_scale
        self.files = DistanceFiles(self.out_dir)
        self.comparisons = read_comparisons(self.out_dir)
        self.digits = run_digits(self.out_dir)  # --facebench-digits of the run (run.json), else from each CI
        self.written: list[PlotInfo] = []
        self.kept: list[tuple[PlotInfo, Any]] | None = [] if keep else None
        self.errors: list[dict[str, str]] = []

    def options(self) -> dict[str, Any]:
        """What a worker process needs to draw the same figures (`_task_job`)."""
        return {
            "dpi": self.dpi,
            "headlines": self.headline_source,
            "models": self.models,
            "colors": self.colors,
            "figures": self.figures,
            "labels": self.labels,
            "formats": self.formats,
            "layer_axis": self.layer_axis,
            "rdm_scale": self.rdm_scale,
        }

    def color(self, model: str) -> str:
        return self.colors.get(model, "#888888")

    def label(self, model: str) -> str:
        return self.labels.get(model, model)

    def attempt(self, task: str | None, kind: str, draw: Any, *args: Any) -> None:
        """Draw one figure; a failure is recorded (manifest `errors`, shown in the report), not raised,
        so one odd task never costs the other figures."""
        try:
            draw(*args)
        except Exception as exc:  # noqa: BLE001
            self.errors.append({"task": task or "", "kind": kind, "error": f"{type(exc).__name__}: {exc}"})

    def save(self, fig, name: str, kind: str, task: str | None, title: str, caption: str = "", items: int = 0) -> None:
        """Fit the titles, then write the figure in every format (or keep it, for `draw_figures`)."""
        fit_titles(fig)
        caption = with_interval_note(caption, kind, self.results if task is None else self.task_rows(task))
        files = [f"{PLOTS_DIR}/{name}.{fmt}" for fmt in self.formats]
        info = PlotInfo(
            file=files[0],
            kind=kind,
            task=task,
            axes=data_axes(fig),
            title=title,
            caption=caption,
            items=items,
            files=files,
        )
        if self.kept is not None:
            self.kept.append((info, fig))
        else:
            for fmt, file in zip(self.formats, files):
                atomic_write(self.out_dir / file, encode(fig, fmt, self.dpi, tight=kind == "overview"))
        self.written.append(info)

    def task_rows(self, task: str) -> pd.DataFrame:
        return self.results[self.results["task"] == task] if "task" in self.results else self.results

    def run(self, workers: int = 1) -> list[PlotInfo]:
        if self.kept is None:
            self.plot_dir.mkdir(parents=True, exist_ok=True)
        tasks = task_order(self.results)
        if workers > 1 and len(tasks) > 1 and self.kept is None:
            from concurrent.futures import BrokenExecutor

            try:
                return self._run_parallel(tasks, workers)
            except (BrokenExecutor, OSError):  # no working process pool here: draw serially
                self.written, self.errors = [], []
        with style():
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
                    self.options(),
                    metric_vocabulary(),
                    task_type_vocabulary(),
                )
                for task in tasks
            ]
            with style():
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
        if "task" in self.comparisons and (self.comparisons["task"] == task).any():
            self.attempt(task, "forest", self.forest, task, rows, base)

    # every task: headline bars
    def headline_bars(self, task: str, rows: pd.DataFrame, head: pd.DataFrame, metric: str, base: str) -> None:
        chosen, dropped = select_layers(head, metric)
        labels = [
            shorten(f"{self.label(m)} · {layer}" if layer else self.label(m), 44)
            for m, layer in zip(chosen["model"], chosen["layer"])
        ]
        left = 0.35 + CHAR_IN * 1.08 * max((len(lbl) for lbl in labels), default=4)
        height = min(14.0, max(2.2, 1.0 + 0.24 * len(chosen)))
        ceiling = noise_ceiling(rows, metric)
        refs = task_refs(task, metric, rows, self.references)
        chance = chance_level(metric, rows)
        entries = (
            ([f"noise ceiling low ({0:.2f})"] if ceiling else [])
            + [f"{r['label']} (0.000)" for r in refs]
            + ([chance[1]] if chance else [])
        )
        legend_w = 0.45 + CHAR_IN * max(len(e) for e in entries) if entries else 0.0
        xlabel = metric_label(metric, rows)
        fig = figure(4.6 + left + legend_w, height + 0.16 * xlabel.count("\n"), self.dpi)
        adjust(
            fig, left=left, right=0.3 + legend_w, top=0.72 if dropped else 0.45, bottom=0.5 + 0.16 * xlabel.count("\n")
        )
        ax = fig.subplots()
        draw_hbars(
            ax,
            labels,
            chosen["value"].to_numpy(),
            chosen["ci_low"].to_numpy(),
            chosen["ci_high"].to_numpy(),
            [self.color(m) for m in chosen["model"]],
            list(chosen["_readout"]),
        )
        ceiling_lines(ax, ceiling, vertical=True)
        reference_lines(ax, refs)
        chance_line(ax, chance, vertical=True)
        if entries:
            ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
        ax.set_xlabel(xlabel)
        title = f"{task}: {display_name(metric)} per model · layer"
        ax.set_title(title + ("\n(readout layer and best layers of each model)" if dropped else ""))
        caption = "Bold: readout layer. Error bars: {intervals}."
        if chance:
            caption += f" Dashed grey: {chance[1]}."
        self.save(fig, f"{base}__headline", "headline", task, title, caption, items=len(chosen))

    # conditions: grouped bars per condition at the readout layer
    def condition_bars(self, task: str, rows: pd.DataFrame, metric: str, base: str) -> None:
        task_rows = self.results[self.results["task"] == task]
        rows = rows[rows["_readout"]]
        conditions = [c for c in dict.fromkeys(rows["condition"]) if c != ""]
        models = [m for m in self.models if m in set(rows["model"])]
        if not conditions or not models:
            return
        legend = 0.5 + CHAR_IN * max(len(shorten(self.label(m), 28)) for m in models)
        plot_w = min(14.0, max(3.5, len(conditions) * (0.35 + 0.2 * len(models))))
        lines = max(len(wrap(c).splitlines()) for c in conditions)
        fig = figure(0.8 + plot_w + legend, 3.8, self.dpi)
        adjust(fig, left=0.8, right=legend, top=0.45, bottom=0.3 + 0.16 * lines)
        ax = fig.subplots()
        draw_grouped(ax, conditions, [(self.label(m), self.color(m), rows[rows["model"] == m]) for m in models])
        drawn = False
        for i, condition in enumerate(conditions):  # per-condition human values: a black segment across each group
            human = human_value(task_rows, metric, condition)
            if human is not None:
                ax.hlines(
                    human,
                    i - 0.42,
                    i + 0.42,
                    color="#111111",
                    linewidth=2,
                    label=None if drawn else "human",
                    gid="human",
                )
                drawn = True
        ax.set_ylabel(metric_label(metric, task_rows))
        title = f"{task}: {display_name(metric)} per condition (readout layer)"
        ax.set_title(title)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="model")
        self.save(fig, f"{base}__{safe_name(metric)}_conditions", "conditions", task, title, items=len(models))

    # accuracy: ROC overlay (linear and log FAR) and distance histograms
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

    def _auc_row(self, rows: pd.DataFrame, model: str, layer: str) -> tuple[float | None, tuple[float, float] | None]:
        """The AUC and its CI of a model's layer as results.csv holds them (the one CI of that number)."""
        mine = rows[(rows["model"] == model) & (rows["layer"] == layer) & (rows["metric"] == "auc")]
        if "condition" in mine:
            mine = mine[mine["condition"].fillna("").astype(str) == ""]
        if mine.empty or not finite(mine["value"].iloc[0]):
            return None, None
        low, high = (mine[c].iloc[0] if c in mine else np.nan for c in ("ci_low", "ci_high"))
        return float(mine["value"].iloc[0]), ((float(low), float(high)) if finite(low) and finite(high) else None)

    def roc_and_distributions(self, task: str, rows: pd.DataFrame, base: str) -> None:
        data = self._verification_data(task, rows)
        curves = []
        for model, layer, labels, distances in data:
            auc, auc_ci = self._auc_row(rows, model, layer)
            label = f"{self.label(model)} · {layer}" if layer else self.label(model)
            curve = roc_curve(label, self.color(model), labels, distances, auc=auc, auc_ci=auc_ci)
            if curve is not None:
                curves.append(curve)
        if curves:
            fig = figure(10.6, 4.6, self.dpi)
            adjust(fig, left=0.6, right=0.3, top=0.75, bottom=0.55, wspace=0.75, cols=2)
            linear, log = fig.subplots(1, 2)
            draw_roc(linear, curves, digits=self.digits)
            draw_roc(log, curves, log=True, legend=False)
            linear.set_title("linear FAR")
            most = max(c.n_negative for c in curves)
            log.set_title(f"log FAR (1/{most} to 1)" if most else "log FAR")
            title = f"{task}: ROC at the readout layer"
            fig.suptitle(title)
            fewest = min(c.n_negative for c in curves)
            caption = (
                f"Score = −distance; AUC and its CI in the legend as results.csv and the tables give them "
                f"({interval_text(rows[rows['metric'] == 'auc'])}). Bands: the curve's pointwise 95% bootstrap "
                f"band over pairs ({N_BOOT} resamples within same and different pairs, seed {SEED}); on the log "
                f"axis from FAR 1/{fewest} (one different pair). Dashed grey: chance (TAR = FAR)."
            )
            self.save(fig, f"{base}__roc", "roc", task, title, caption, items=len(curves))
        if not data:
            return
        shown = data[:MAX_PANELS]
        rows_n, cols = grid_shape(len(shown))
        fig = figure(max(4.6, 2.9 * cols + 0.4), 2.3 * rows_n + 0.9, self.dpi)
        adjust(fig, left=0.25, right=0.15, top=0.75, bottom=0.6, wspace=0.25, hspace=0.55, rows=rows_n, cols=cols)
        for i, (ax, (model, layer, labels, distances)) in enumerate(zip(panels(fig, len(shown)), shown)):
            draw_hist(ax, labels, distances, self.color(model), legend=i == 0)
            few_ticks(ax, y=False)
            ax.set_title(
                shorten(f"{self.label(model)} · {layer}" if layer else self.label(model), 34), color=self.color(model)
            )
        fig.supxlabel(distance_label(rows))
        title = f"{task}: same vs different pair distances (readout layer)"
        fig.suptitle(title)
        self.save(
            fig,
            f"{base}__distributions",
            "distributions",
            task,
            title,
            items=len(shown),
            caption="Filled: same-identity pairs; outline: different-identity pairs (densities).",
        )

    # scatter: model vs human distance per model·layer, for the type's headline (a correlation with human data)
    def scatter(self, task: str, rows: pd.DataFrame, metric: str, base: str) -> None:
        metric = type_headline(rows, metric)
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
        found = []
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
            found.append(
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
        if not found:
            return
        rows_n, cols = grid_shape(len(found))
        fig = figure(2.9 * cols + 0.9, 2.6 * rows_n + 1.0, self.dpi)
        adjust(fig, left=0.85, right=0.15, top=0.75, bottom=0.65, wspace=0.45, hspace=0.8, rows=rows_n, cols=cols)
        for ax, (model, layer, human, x, reported, method, _human_name) in zip(panels(fig, len(found)), found):
            draw_scatter(ax, human, x, self.color(model), reported, method, self.decimals(task, model, layer))
            few_ticks(ax)
            ax.set_title(
                shorten(f"{self.label(model)} · {layer}" if layer else self.label(model), 34) + "\n" + ax.get_title(),
                color=self.color(model),
                fontsize=9,
            )
        fig.supxlabel(f"human dissimilarity ({found[0][6]})")
        fig.supylabel(f"model {distance_label(rows)}")
        title = f"{task}: model vs human dissimilarity"
        ceiling = noise_ceiling(rows, metric)
        fig.suptitle(
            title
            + (f"  (noise ceiling {format_number(ceiling[0], 2)}–{format_number(ceiling[1], 2)})" if ceiling else "")
        )
        self.save(
            fig,
            f"{base}__scatter",
            "scatter",
            task,
            title,
            items=len(found),
            caption=f"One panel per model at its readout layer, then the best other layers; line: least squares "
            f"fit; {correlation_symbol(correlation_method(rows, metric))} as reported.",
        )

    # rsa: the human RDM beside each model's (readout layer)
    def rdms(self, task: str, rows: pd.DataFrame, metric: str, base: str) -> None:
        head = rows[(rows["metric"] == metric) & rows["_readout"]]
        found: list[tuple[str, str, np.ndarray, str, list[str]]] = []
        human_rdm = None
        symbol = correlation_symbol(correlation_method(rows, metric))
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
                    human_rdm, stimuli = square(table, table[human].to_numpy(dtype=float))
                    found.append(("", f"human ({human})", human_rdm, "#222222", stimuli))
            value = mine["value"].iloc[0]
            label = f"{shorten(self.label(model), 24)} · {shorten(layer, 20)}"
            label += f"\n{symbol} = {value:.3f}" if finite(value) else ""
            rdm, stimuli = square(table, x)
            found.append((model, label, rdm, self.color(model), stimuli))
            if len(found) >= MAX_PANELS:
                break
        if len(found) < 2:
            return
        named = max(len(s) for *_, s in found) <= MAX_STIMULUS_LABELS
        shared = None
        if self.rdm_scale == "shared":
            models = [rdm[np.isfinite(rdm)] for model, _, rdm, _, _ in found if model]
            shared = rdm_limits(np.concatenate(models)) if models else None
        rows_n, cols = grid_shape(len(found))
        size = 2.9 if named else 2.3  # the matrix, in inches; its colour bar and labels come on top
        left, bottom, wspace, hspace = (0.55, 0.55, 0.95, 1.2) if named else (0.2, 0.2, 0.8, 0.75)
        fig = figure(
            left + 0.8 + cols * size * 1.1 + (cols - 1) * wspace,
            0.95 + bottom + rows_n * size + (rows_n - 1) * hspace,
            self.dpi,
        )
        adjust(fig, left=left, right=0.8, top=0.95, bottom=bottom, wspace=wspace, hspace=hspace, rows=rows_n, cols=cols)
        distance = distance_label(rows)
        for ax, (model, label, rdm, color, stimuli) in zip(panels(fig, len(found)), found):
            limits = shared if (shared is not None and model) else rdm_limits(rdm)
            bar = distance if model else "human dissimilarity"
            draw_rdm(fig, ax, rdm, limits, stimuli, MAX_STIMULUS_LABELS, bar)
            ax.set_title(label, color=color, fontsize=8.5)
        title = f"{task}: representational dissimilarity matrices (readout layer)"
        fig.suptitle(title)
        scale = (
            "the model panels share one colour scale, the human panel its own"
            if shared is not None
            else "each panel on its own colour scale"
        )
        self.save(
            fig,
            f"{base}__rdm",
            "rdm",
            task,
            title,
            items=len(found),
            caption=f"Stimuli in order of first appearance; {scale} (2nd–98th percentile).",
        )

    # identification: CMC curves from rank-k metrics
    def _rank_samples(self, task: str, model: str, layer: str, ks: list[int]) -> tuple[np.ndarray, np.ndarray] | None:
        """A bootstrap band of the CMC from the probes' ranks (distances file), when the rows have no CIs."""
        table = self.files.get(task, model)
        column = layer_column(table, layer) if table is not None else None
        if table is None or column is None:
            return None
        ranks = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
        ranks = ranks[np.isfinite(ranks) & (ranks >= 1)]  # rank 0: a non-mated probe (open set), not a hit
        if len(ranks) < 2:
            return None
        rng = np.random.default_rng(SEED)
        hits = ranks[:, None] <= np.asarray(ks, dtype=float)[None, :]
        counts = np.stack(
            [np.bincount(rng.integers(0, len(ranks), len(ranks)), minlength=len(ranks)) for _ in range(N_BOOT)]
        )
        rates = counts @ hits / len(ranks)
        low, high = np.percentile(rates, [2.5, 97.5], axis=0)
        return low, high

    def cmc(self, task: str, rows: pd.DataFrame, base: str) -> None:
        fig = figure(5.8, 4.2, self.dpi)
        adjust(fig, left=0.7, right=0.2, top=0.45, bottom=0.55)
        ax = fig.subplots()
        all_ks: set[int] = set()
        resampled = False
        drawn = 0
        for model in self.models:
            mine = rows[(rows["model"] == model) & rows["_readout"] & (rows["condition"] == "")]
            points = sorted(
                (int(m.group(1)), v, lo, hi)
                for m, v, lo, hi in zip(
                    map(RANK_METRIC.match, mine["metric"]), mine["value"], mine["ci_low"], mine["ci_high"]
                )
                if m and finite(v)
            )
            if not points:
                continue
            ks, values, lows, highs = (np.asarray(x, dtype=float) for x in zip(*points))
            all_ks |= {int(k) for k in ks}
            drawn += 1
            ax.plot(ks, values, marker="o", color=self.color(model), label=self.label(model))
            band = np.isfinite(lows) & np.isfinite(highs)
            if not band.all():
                sampled = self._rank_samples(task, model, str(mine["layer"].iloc[0]), [int(k) for k in ks])
                if sampled is not None:
                    lows, highs, band, resampled = sampled[0], sampled[1], np.ones(len(ks), bool), True
            if band.any():
                ax.fill_between(
                    ks[band], lows[band], highs[band], color=self.color(model), alpha=0.18, linewidth=0, gid="ci_band"
                )
        n = gallery_size(rows)
        caption = "Bands: the rank-k rows' confidence intervals" + (
            " (else a bootstrap over probes)." if resampled else "."
        )
        if n and all_ks:
            ks_line = np.arange(1, max(all_ks) + 1)
            ax.plot(ks_line, np.minimum(1.0, ks_line / n), label=f"chance (k/N, N = {n})", **CHANCE_STYLE)
            caption += f" Dashed grey: chance k/N with a gallery of N = {n}."
        else:
            caption += " No chance line: the gallery size is not recorded in the results."
        ax.set_xlabel("rank k")
        ax.set_ylabel("identification rate (share of probes with rank ≤ k)")
        ax.set_ylim(0, 1.02)
        title = f"{task}: CMC (readout layer)"
        ax.set_title(title)
        ax.legend(loc="lower right")
        self.save(fig, f"{base}__cmc", "cmc", task, title, caption, items=drawn)

    # multi-layer models: metric against depth
    def layer_profile(self, task: str, rows: pd.DataFrame, head: pd.DataFrame, metric: str, base: str) -> None:
        conditions = list(dict.fromkeys(head["condition"]))[:6]
        models = [m for m in self.models if m in set(head["model"])]
        layers_of = {
            m: list(dict.fromkeys(head[head["model"] == m].sort_values("layer_index", kind="stable")["layer"]))
            for m in models
        }
        shared = len({tuple(v) for v in layers_of.values()}) == 1
        mode = {"auto": "names" if shared else "depth", "names": "names" if shared else "models", "depth": "depth"}[
            self.layer_axis
        ]
        if mode == "models":
            self._profile_per_model(task, rows, head, metric, base, conditions, models[:MAX_PANELS], layers_of)
            return
        names = layers_of[models[0]] if mode == "names" else []
        longest = max((len(shorten(n, 18)) for n in names), default=0)
        rows_n, cols = grid_shape(len(conditions), 3)
        bottom = 0.55 + 0.72 * CHAR_IN * longest if mode == "names" else 0.6
        legend_w = 0.5 + CHAR_IN * max(
            (len(shorten(self.label(m), 28)) + (12 if len(layers_of[m]) <= 1 else 0) for m in models), default=8
        )
        legend_w = max(legend_w, 0.5 + CHAR_IN * 26)  # the reference lines' labels
        fig = figure(0.9 + 5.0 * cols + legend_w, 3.4 * rows_n + bottom + 0.2, self.dpi)
        adjust(
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
        axes = panels(fig, len(conditions), max_cols=3)
        for ax, condition in zip(axes, conditions):
            sub = head[head["condition"] == condition]
            for model in models:
                mine = sub[sub["model"] == model].sort_values("layer_index", kind="stable")
                if mine.empty:
                    continue
                if len(mine) == 1:
                    ax.axhline(
                        mine["value"].iloc[0],
                        color=self.color(model),
                        linestyle=":",
                        linewidth=1.2,
                        label=f"{self.label(model)} (one layer)",
                    )
                    continue
                position = {name: i for i, name in enumerate(layers_of[model])}
                x = np.array([position[name] for name in mine["layer"]], dtype=float)
                if mode == "depth":
                    x = x / max(1, len(layers_of[model]) - 1)
                self._profile_line(ax, mine, x, self.color(model), self.label(model))
            self._profile_references(ax, task, rows, metric, condition)
            if mode == "names":
                ax.set_xticks(range(len(names)), [shorten(n, 18) for n in names], rotation=45, ha="right")
                ax.set_xlabel("layer")
            else:
                ax.set_xlim(-0.04, 1.04)
                ax.set_xlabel("relative depth (0 = first extracted layer, 1 = last)")
            ax.set_ylabel(metric_label(metric, rows))
            if condition:
                ax.set_title(condition)
        handles, labels = legend_entries(axes)
        fig.legend(
            handles,
            labels,
            loc="upper left",
            bbox_to_anchor=(1 - (legend_w - 0.15) / fig.get_size_inches()[0], 1 - 0.5 / fig.get_size_inches()[1]),
        )
        title = f"{task}: {display_name(metric)} across layers"
        fig.suptitle(title + "  (★ readout layer)")
        caption = "Bands: {intervals}."
        if mode == "depth":
            caption += " Models have different layers: x is each layer's position among its model's layers (0–1)."
        self.save(fig, f"{base}__layer_profile", "layer_profile", task, title, caption, items=len(models))

    def _profile_line(
        self, ax, mine: pd.DataFrame, x: np.ndarray, color: str, label: str, linestyle: str = "-"
    ) -> None:
        y = mine["value"].to_numpy(dtype=float)
        ax.plot(x, y, marker="o", markersize=3.5, color=color, linewidth=1.6, label=label, linestyle=linestyle)
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

    def _profile_references(self, ax, task: str, rows: pd.DataFrame, metric: str, condition: str) -> None:
        """Horizontal lines of a layer profile panel: noise ceiling, human value and references, chance."""
        ceiling_lines(ax, noise_ceiling(rows, metric))
        reference_lines(ax, task_refs(task, metric, rows, self.references, condition), vertical=False)
        chance_line(ax, chance_level(metric, rows))

    def _profile_per_model(
        self,
        task: str,
        rows: pd.DataFrame,
        head: pd.DataFrame,
        metric: str,
        base: str,
        conditions: list[str],
        models: list[str],
        layers_of: dict[str, list[str]],
    ) -> None:
        """`layer_axis='names'` with models of different layers: one panel per model, its layers named."""
        longest = max((len(shorten(n, 18)) for m in models for n in layers_of[m]), default=4)
        rows_n, cols = grid_shape(len(models), 3)
        bottom = 0.6 + 0.72 * CHAR_IN * longest
        legend_w = 0.5 + CHAR_IN * max([26, *(len(shorten(c, 28)) for c in conditions)])
        fig = figure(0.9 + 4.2 * cols + legend_w, 3.2 * rows_n + bottom + 0.3, self.dpi)
        adjust(
            fig,
            left=0.8,
            right=legend_w,
            top=0.8,
            bottom=bottom,
            wspace=0.7,
            hspace=bottom + 0.35,
            rows=rows_n,
            cols=cols,
        )
        axes = panels(fig, len(models), max_cols=3, sharey=True)
        for ax, model in zip(axes, models):
            position = {name: i for i, name in enumerate(layers_of[model])}
            for i, condition in enumerate(conditions):
                mine = head[(head["model"] == model) & (head["condition"] == condition)].sort_values(
                    "layer_index", kind="stable"
                )
                if mine.empty:
                    continue
                x = np.array([position[name] for name in mine["layer"]], dtype=float)
                label = condition or f"_{model}"  # one condition: the panel's title names the model
                self._profile_line(ax, mine, x, self.color(model), label, CONDITION_STYLES[i % len(CONDITION_STYLES)])
            if len(conditions) == 1:
                self._profile_references(ax, task, rows, metric, conditions[0])
            else:
                chance_line(ax, chance_level(metric, rows))
            names = layers_of[model]
            ax.set_xticks(range(len(names)), [shorten(n, 18) for n in names], rotation=45, ha="right")
            ax.set_title(shorten(self.label(model), 34), color=self.color(model))
            ax.set_ylabel(metric_label(metric, rows))
        handles, labels = legend_entries(axes)
        fig.legend(
            handles,
            labels,
            loc="upper left",
            bbox_to_anchor=(1 - (legend_w - 0.15) / fig.get_size_inches()[0], 1 - 0.6 / fig.get_size_inches()[1]),
        )
        title = f"{task}: {display_name(metric)} across layers"
        fig.suptitle(title + "  (★ readout layer)")
        self.save(
            fig,
            f"{base}__layer_profile",
            "layer_profile",
            task,
            title,
            "One panel per model (their layers differ); line style: condition.",
            items=len(models),
        )

    def decimals(self, task: str, model: str, layer: str) -> int:
        """The decimals of a cell's headline value: the run's fixed digits, else those its CI needs."""
        rows = self.results
        if "ci_low" not in rows or "ci_high" not in rows:
            return shared_decimals((), self.digits)
        mine = rows[(rows["task"] == task) & (rows["model"] == model) & (rows["layer"] == layer)]
        if self.headline.get(task):
            mine = mine[mine["metric"] == self.headline[task]]
        return shared_decimals(zip(mine["ci_low"], mine["ci_high"]), self.digits)

    # model comparisons: forest plot of paired differences
    def forest(self, task: str, rows: pd.DataFrame, base: str) -> None:
        comps = self.comparisons[self.comparisons["task"] == task]
        conditions = comps["condition"] if "condition" in comps else pd.Series("", index=comps.index)
        keys = [k for k in dict.fromkeys(zip(comps["metric"].astype(str), conditions.fillna("").astype(str))) if k[0]][
            :MAX_PANELS
        ]  # a panel per metric and condition
        if not keys:
            return
        blocks = []
        for metric, condition in keys:
            mine = comps[(comps["metric"] == metric) & (conditions.fillna("").astype(str) == condition)]
            labels = []
            for a, b, p in zip(
                mine["model_a"], mine["model_b"], mine.get("p_holm", pd.Series(np.nan, index=mine.index))
            ):
                text = f"{shorten(self.label(str(a)), 24)} − {shorten(self.label(str(b)), 24)}"
                labels.append(text + (f"  ({format_p(p, 'Holm')})" if finite(p) else ""))
            blocks.append(((metric, condition), mine, labels))
        longest = max(len(lbl) for _, _, labels in blocks for lbl in labels)
        left = 0.35 + CHAR_IN * 1.05 * longest
        most = max(len(mine) for _, mine, _ in blocks)
        rows_n, cols = grid_shape(len(blocks), 2)
        panel_h = max(1.3, 0.32 * most + 0.6)
        fig = figure(cols * (left + 3.6) + 0.3, rows_n * (panel_h + 0.9) + 0.7, self.dpi)
        adjust(fig, left=left, right=0.3, top=0.8, bottom=0.7, wspace=left + 0.4, hspace=1.0, rows=rows_n, cols=cols)
        levels = set()
        for ax, ((metric, condition), mine, labels) in zip(panels(fig, len(blocks), max_cols=2), blocks):
            diff = mine["diff"].to_numpy(dtype=float)
            low, high = mine["ci_low"].to_numpy(dtype=float), mine["ci_high"].to_numpy(dtype=float)
            y = np.arange(len(mine))
            ci = np.isfinite(low) & np.isfinite(high) & np.isfinite(diff)
            significant = np.array([is_significant(r) for r in mine.to_dict("records")], dtype=bool)
            if ci.any():
                err = np.vstack([np.clip(diff[ci] - low[ci], 0, None), np.clip(high[ci] - diff[ci], 0, None)])
                ax.errorbar(diff[ci], y[ci], xerr=err, fmt="none", ecolor="#333333", elinewidth=1.2, capsize=3)
            ax.scatter(diff[significant], y[significant], s=36, color="#222222", zorder=3, label="significant (Holm)")
            rest = ~significant & np.isfinite(diff)
            ax.scatter(
                diff[rest], y[rest], s=36, facecolor="white", edgecolor="#222222", zorder=3, label="not significant"
            )
            ax.axvline(0, color="#444444", linewidth=1.0, linestyle="--", gid="zero", label="no difference (0)")
            ax.set_yticks(y, labels)
            ax.set_ylim(len(mine) - 0.5, -0.5)
            ax.grid(axis="y", visible=False)
            quantity = (
                str(mine["quantity"].iloc[0])
                if "quantity" in mine and isinstance(mine["quantity"].iloc[0], str)
                else "value"
            )
            what = metric_label(metric, rows).split("\n")[0]
            if quantity != "value":
                what = f"{quantity.split(' (')[0]} of {display_name(metric)}"
            ax.set_xlabel(f"difference in {what} (A − B)")
            ax.set_title(display_name(metric) + (f" · {condition}" if condition else ""))
            if "ci_level" in mine:
                levels |= {float(v) for v in mine["ci_level"] if finite(v)}
        level = f"{next(iter(levels)):.0%}" if len(levels) == 1 else "the task's"
        title = f"{task}: paired differences between models (readout layers)"
        fig.suptitle(title)
        self.save(
            fig,
            f"{base}__forest",
            "forest",
            task,
            title,
            caption=f"Each row: model A − model B with its {level} CI (comparisons.csv, per comparison, unadjusted). "
            "Filled: significant by the report's one rule (Holm-adjusted p, per task, metric and condition, below 1 − the CI "
            "level, and the CI excludes 0), as in the verdicts; a hollow point's CI may exclude 0 when the "
            "correction for the number of model pairs decides against it.",
            items=sum(len(mine) for _, mine, _ in blocks),
        )

    # overview heatmap
    def overview(self) -> None:
        frame = self.results
        head = frame[frame["_readout"] & (frame["metric"] == frame["task"].map(self.headline))]
        columns: list[tuple[str, str]] = []  # (task, condition): the task's headline without a condition, else
        for task in task_order(self.results):  # one column per condition (each with its own human value)
            conditions = list(dict.fromkeys(head.loc[head["task"] == task, "condition"]))
            columns += [(task, "")] if "" in conditions else [(task, c) for c in conditions]
        if not columns:
            return
        matrix = np.full((len(self.models), len(columns)), np.nan)
        for (model, task, condition), value in (
            head.groupby(["model", "task", "condition"], sort=False)["value"].first().items()
        ):
            if model in self.models and (task, condition) in columns:
                matrix[self.models.index(model), columns.index((task, condition))] = value
        targets, modes = [], []
        for task, condition in columns:
            metric = self.headline.get(task, "")
            kind = metric_info(metric).direction
            target = task_target(frame[frame["task"] == task], metric, condition) if kind == "target" else None
            targets.append(target)
            modes.append(column_mode(kind, target))
        fig = overview_figure(
            matrix,
            [f"{t} · {c}" if c else t for t, c in columns],
            [self.headline.get(t, "") for t, _ in columns],
            modes,
            targets,
            [self.label(m) for m in self.models],
            [self.color(m) for m in self.models],
            self.dpi,
        )
        title = "Headline metric per model × task (readout layer)"
        caption = (
            "Columns are coloured by their metric's direction: higher or lower is better (viridis, brighter is "
            "better), closer to the human value is better (brighter is closer), a target without a human value "
            "(blue–red, centred at 0), descriptive (flat grey). A task whose headline is per condition has a "
            "column per condition, each with its own human value."
        )
        self.save(fig, "overview", "overview", None, title, caption, items=int(np.isfinite(matrix).sum()))


# --- entry points -------------------------------------------------------------------------------
def _task_job(
    out_dir: str,
    rows: pd.DataFrame,
    references: list[dict[str, Any]],
    options: dict[str, Any],
    vocabulary: dict[str, tuple[str, str | None]],
    types: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """A worker process's share: every figure of one task (see `_Plotter._run_parallel`)."""
    remember_scoring({"metrics": vocabulary})  # the parent's metric names (a spawned process imported no task)
    learn_task_types(types)  # and its task types' axes (labels, chance lines, ceilings)
    options = dict(options)
    plotter = _Plotter(Path(out_dir), rows, references, options.pop("dpi"), options.pop("headlines"), **options)
    with style():
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


def _plotter(
    out_dir: Path,
    results: pd.DataFrame | None,
    references: list[dict[str, Any]] | None,
    dpi: int,
    headlines: dict[str, str] | None,
    figures: dict[str, list[str]] | None,
    formats: Any,
    model_styles: dict[str, dict[str, str]] | None,
    layer_axis: str,
    rdm_scale: str,
    keep: bool = False,
) -> tuple[_Plotter, dict[str, Any], dict[str, str], dict[str, list[str]], dict[str, dict[str, str]]]:
    """The plotter of a results dir and what the manifest keeps (shared by `write_plots` and `draw_figures`)."""
    if layer_axis not in LAYER_AXES:
        raise ValueError(f"layer_axis must be one of {', '.join(LAYER_AXES)}; got {layer_axis!r}")
    if rdm_scale not in RDM_SCALES:
        raise ValueError(f"rdm_scale must be one of {', '.join(RDM_SCALES)}; got {rdm_scale!r}")
    formats = figure_formats(formats)
    out_dir = Path(out_dir)
    results = read_results(out_dir) if results is None else normalize_results(results)
    old = read_manifest(out_dir)
    if references is None:
        references = load_references(out_dir)
    saved = old.get("headlines") if old else None
    if headlines is None:
        headlines = registry_headlines(saved, set(task_types(results).values()))
    figures = {**declared_figures(results), **((old or {}).get("figures") or {} if figures is None else figures)}
    styles = read_model_styles(out_dir) if model_styles is None else normalize_model_styles(model_styles)
    models = model_order(results)
    plotter = _Plotter(
        out_dir,
        results,
        references,
        dpi,
        headlines,
        models=models,
        colors=model_colors(models, style_overrides(styles, "color")),
        figures=figures,
        labels=model_labels(models, style_overrides(styles, "label")),
        formats=formats,
        layer_axis=layer_axis,
        rdm_scale=rdm_scale,
        keep=keep,
    )
    return plotter, old, headlines, figures, styles


NO_INTERVALS = {  # figures that draw no error bars or bands, and what they show instead
    "overview": "No error bars: each cell is the headline value at the readout layer (its CI is in the Summary).",
    "distributions": "No error bars: the histograms show every pair.",
    "scatter": "No error bars: one point per pair.",
    "rdm": "No error bars: one cell per stimulus pair.",
}


def interval_text(rows: pd.DataFrame) -> str:
    """What a task's confidence intervals are, from results.csv's `ci_method` (`95% percentile bootstrap CIs,
    1,000 resamples of identities`), else 'confidence intervals where reported'."""
    from .methods import BOOTSTRAP

    methods = [str(m) for m in rows.get("ci_method", pd.Series(dtype=str)).dropna() if BOOTSTRAP.search(str(m))]
    if not methods:
        return "confidence intervals where reported"
    found = BOOTSTRAP.search(max(set(methods), key=methods.count))
    assert found is not None
    resamples, unit, _extra, level, kind = found.groups()
    return f"{level}% {kind} bootstrap CIs ({int(resamples):,} resamples of {unit.strip()})"


def with_interval_note(caption: str, kind: str, rows: pd.DataFrame) -> str:
    """A figure's caption saying what its error bars or bands are: `{intervals}` filled in from the rows'
    CI method, or the `NO_INTERVALS` sentence of a figure without any; captions that already say are kept."""
    if "{intervals}" in caption:
        return caption.replace("{intervals}", interval_text(rows))
    if any(word in caption for word in ("Error bars", "Bands", "error bars", "CI")):
        return caption
    note = NO_INTERVALS.get(kind) or f"Error bars: {interval_text(rows)}."
    return f"{caption} {note}".strip()


def run_digits(out_dir: Path) -> int | None:
    """The fixed decimals a run asked for (`--facebench-digits`, run.json `digits`), else None."""
    value = read_run(Path(out_dir)).get("digits")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def write_plots(
    out_dir: Path,
    results: pd.DataFrame | None = None,
    references: list[dict[str, Any]] | None = None,
    *,
    dpi: int | None = None,
    headlines: dict[str, str] | None = None,
    workers: int | None = None,
    figures: dict[str, list[str]] | None = None,
    formats: tuple[str, ...] | list[str] | str | None = None,
    model_styles: dict[str, dict[str, str]] | None = None,
    layer_axis: str = "names",
    rdm_scale: str = "shared",
) -> list[Path]:
    """Write the figures of a results dir under `plots/` and `plots/manifest.json`; return the PNG paths.

    `results` is the results table (read from results.csv when None); distances come from
    `distances/<task>/<model>.csv`, model comparisons from comparisons.csv. `references` are task-level
    reference values drawn as lines (see `data.normalize_references`; references.json of the dir when None).
    `workers`: processes drawing the tasks' figures (default `plot_workers(results)`). `figures`: task → the
    figure kinds its type declares (`BaseTask.figures`; from plots/manifest.json when None, so a rebuilt report
    draws the same). `formats`: png, svg, pdf (a list or 'png,svg'); every figure is written as PNG too, since
    report.html embeds PNGs; the manifest lists each figure's `files`. `dpi`: the PNG resolution (and that of
    rasterized parts of SVG/PDF). `formats` and `dpi` default to those of the dir's previous report
    (plots/manifest.json), else PNG at `DPI`, so a rebuild keeps the SVG/PDF files a run wrote. `model_styles`: model → {color, label} from the grid (run.json
    `model_styles` of the dir when None). `layer_axis`: 'names' (default; a panel per model when their layers
    differ), 'auto' (layer names when the models share their layers, else relative depth 0–1) or 'depth'.
    `rdm_scale`: 'shared' (default: one scale for the models' RDMs) or 'panel' (each on its own)."""
    out_dir = Path(out_dir)
    previous = read_manifest(out_dir)
    if formats is None:
        formats = (
            [f for f in previous.get("formats") or () if f in FORMATS]
            if isinstance(previous.get("formats"), list)
            else ()
        )
    if dpi is None:
        dpi = previous["dpi"] if isinstance(previous.get("dpi"), int) and previous["dpi"] > 0 else DPI
    plotter, old, headlines, figures, styles = _plotter(
        out_dir, results, references, dpi, headlines, figures, formats, model_styles, layer_axis, rdm_scale
    )
    plot_dir = out_dir / PLOTS_DIR
    written = plotter.run(plot_workers(plotter.results) if workers is None else workers)
    keep = {file for info in written for file in (info.files or [info.file])}
    for entry in (old or {}).get("plots", []):  # figures of a previous report that no longer exist
        for file in entry.get("files") or [entry.get("file", "")]:
            stale = out_dir / str(file)
            if file not in keep and stale.parent == plot_dir and stale.suffix[1:] in FORMATS and stale.is_file():
                stale.unlink()
    types = plotter.types
    manifest = {
        "plots": [asdict(info) for info in written],
        "errors": plotter.errors,
        "colors": plotter.colors,
        "labels": plotter.labels,
        "model_styles": styles,
        "formats": list(plotter.formats),
        "dpi": plotter.dpi,
        "headlines": {t: h for t, h in headlines.items() if t in set(types.values())} or headlines,
        "task_headlines": plotter.headline,
        "figures": figures,
    }
    if written or plot_dir.is_dir():
        plot_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(plot_dir / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return [out_dir / info.file for info in written]


def draw_figures(
    out_dir: Path,
    results: pd.DataFrame | None = None,
    references: list[dict[str, Any]] | None = None,
    *,
    dpi: int = DPI,
    headlines: dict[str, str] | None = None,
    figures: dict[str, list[str]] | None = None,
    model_styles: dict[str, dict[str, str]] | None = None,
    layer_axis: str = "names",
    rdm_scale: str = "shared",
) -> list[tuple[PlotInfo, Any]]:
    """The figures `write_plots` would write, as (PlotInfo, matplotlib Figure) pairs, nothing saved: to
    adjust a figure for a paper before `fig.savefig(...)`, or to check what a figure shows. Failures are
    raised here (not recorded)."""
    plotter, *_ = _plotter(
        Path(out_dir), results, references, dpi, headlines, figures, ("png",), model_styles, layer_axis, rdm_scale, True
    )

    def strict(task: str | None, kind: str, draw: Any, *args: Any) -> None:
        draw(*args)

    plotter.attempt = strict  # type: ignore[method-assign]
    plotter.run(1)
    return list(plotter.kept or [])


def overview_png(
    results: pd.DataFrame,
    *,
    dpi: int = DPI,
    headlines: dict[str, str] | None = None,
    model_styles: dict[str, dict[str, str]] | None = None,
) -> bytes | None:
    """Only the overview heatmap, as PNG bytes (None without results)."""
    results = normalize_results(results)
    if results.empty:
        return None
    styles = normalize_model_styles(model_styles)
    models = model_order(results)
    plotter = _Plotter(
        Path("."),
        results,
        [],
        dpi,
        headlines if headlines is not None else registry_headlines(),
        models=models,
        colors=model_colors(models, style_overrides(styles, "color")),
        labels=model_labels(models, style_overrides(styles, "label")),
        keep=True,
    )
    with style():
        plotter.overview()
    return encode(plotter.kept[0][1], "png", dpi) if plotter.kept else None
