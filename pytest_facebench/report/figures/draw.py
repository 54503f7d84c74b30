"""Drawing on one axes: bars, grouped bars, reference and chance lines, ROC curves with bootstrap bands,
histograms, scatter, RDMs, and the overview's colours by metric direction."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ...outputs.metrics import display_name
from ..data import _correlate, finite
from ..numbers import DEFAULT_DECIMALS, format_estimate, format_number
from .base import CHAR_IN, adjust, figure, shorten, wrap

CHANCE_STYLE: dict[str, Any] = {"color": "#777777", "linestyle": (0, (4, 2)), "linewidth": 1.0, "gid": "chance"}
N_BOOT = 200  # bootstrap resamples of a figure's bands (ROC)
SEED = 0
LOG_FAR_MIN = 1e-4
NEUTRAL = "#e3e6ea"  # overview cells of a descriptive metric (no better side)
MISSING = "#f4f4f4"


def chance_line(ax, chance: tuple[float, str] | None, vertical: bool = False) -> None:
    """The chance / no-effect level as a dashed grey line labelled for the legend (gid 'chance')."""
    if chance is None:
        return
    value, label = chance
    (ax.axvline if vertical else ax.axhline)(value, label=label, **CHANCE_STYLE)


def draw_hbars(
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


def reference_lines(ax, refs: list[dict[str, Any]], vertical: bool = True) -> None:
    styles = ["--", ":", "-."]
    for i, ref in enumerate(refs):
        value = float(ref["value"])
        label = ref.get("label") or "reference"
        line = ax.axvline if vertical else ax.axhline
        line(
            value,
            color=ref.get("color", "#333333"),
            linestyle=ref.get("linestyle", styles[i % len(styles)]),
            linewidth=1.2,
            label=ref.get("legend") or f"{label} ({value:.3g})",
            gid=ref.get("gid", "reference"),
        )


def draw_grouped(ax, conditions: list[str], series: list[tuple[str, str, pd.DataFrame]]) -> None:
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
    ax.set_xticks(x, [wrap(c) for c in conditions])
    ax.grid(axis="x", visible=False)
    ax.axhline(0, color="#444444", linewidth=0.7)


# --- ROC ------------------------------------------------------------------------------------------
def _roc_counts(inverse: np.ndarray, labels: np.ndarray, size: int, weights: Any = None) -> tuple[Any, Any]:
    """(FAR, TAR) at every distinct distance (accept pairs at most that far), from (0, 0)."""
    pos = np.bincount(inverse[labels], weights=None if weights is None else weights[0], minlength=size)
    neg = np.bincount(inverse[~labels], weights=None if weights is None else weights[1], minlength=size)
    tar = np.concatenate([[0.0], np.cumsum(pos)]) / max(pos.sum(), 1e-300)
    far = np.concatenate([[0.0], np.cumsum(neg)]) / max(neg.sum(), 1e-300)
    return far, tar


def _area(far: np.ndarray, tar: np.ndarray) -> float:
    return float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2))


def _at(far: np.ndarray, tar: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """TAR of the step ROC at each FAR of `grid` (the best TAR reachable without exceeding that FAR)."""
    return tar[np.clip(np.searchsorted(far, grid, side="right") - 1, 0, len(tar) - 1)]


@dataclass
class RocCurve:
    """One model's ROC at its readout layer: the curve, AUC and its CI (results.csv's), and bootstrap bands on a
    FAR grid."""

    label: str
    color: str
    far: np.ndarray
    tar: np.ndarray
    auc: float
    auc_ci: tuple[float, float] | None
    grid: np.ndarray
    low: np.ndarray | None
    high: np.ndarray | None
    n_negative: int


def roc_curve(
    label: str,
    color: str,
    labels: np.ndarray,
    distances: np.ndarray,
    n_boot: int = N_BOOT,
    seed: int = SEED,
    level: float = 0.95,
    auc: float | None = None,
    auc_ci: tuple[float, float] | None = None,
) -> RocCurve | None:
    """The ROC of distances (smaller = same identity) with a `level` band: pairs resampled with replacement
    within each class (`n_boot` times, fixed seed), TAR read at fixed FARs (linear and log grids), percentile
    interval per FAR. The legend's AUC and its CI are `auc` and `auc_ci` as results.csv holds them (one CI per
    number: a figure never recomputes one); without `auc`, the area under the curve and no CI. None without
    both classes."""
    labels = np.asarray(labels, dtype=bool)
    distances = np.asarray(distances, dtype=float)
    ok = np.isfinite(distances)
    labels, distances = labels[ok], distances[ok]
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    values, inverse = np.unique(distances, return_inverse=True)
    far, tar = _roc_counts(inverse, labels, len(values))
    if auc is None or not np.isfinite(auc):
        auc, auc_ci = _area(far, tar), None
    grid = np.unique(np.concatenate([np.linspace(0, 1, 201), np.logspace(np.log10(LOG_FAR_MIN), 0, 161)]))
    low = high = None
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        curves = np.empty((n_boot, len(grid)))
        for b in range(n_boot):
            weights = (
                np.bincount(rng.integers(0, n_pos, n_pos), minlength=n_pos).astype(float),
                np.bincount(rng.integers(0, n_neg, n_neg), minlength=n_neg).astype(float),
            )
            f, t = _roc_counts(inverse, labels, len(values), weights)
            curves[b] = _at(f, t, grid)
        tail = 100 * (1 - level) / 2
        low, high = np.percentile(curves, [tail, 100 - tail], axis=0)
    return RocCurve(label, color, far, tar, float(auc), auc_ci, grid, low, high, n_neg)


def log_far_min(curves: list[RocCurve]) -> float:
    """The smallest FAR the curves resolve: 1 ÷ the most different pairs any of them has (`LOG_FAR_MIN` without
    a count)."""
    counts = [c.n_negative for c in curves if c.n_negative]
    return 1.0 / max(counts) if counts else LOG_FAR_MIN


def draw_roc(ax, curves: list[RocCurve], log: bool = False, legend: bool = True, digits: int | None = None) -> None:
    """ROC curves (TAR against FAR) with their bands; `log`: FAR on a log axis from the smallest FAR the data
    resolve, 1 ÷ the largest number of different pairs (`log_far_min`). The chance line is TAR = FAR."""
    for curve in curves:
        low_auc, high_auc = curve.auc_ci if curve.auc_ci else (None, None)
        auc = "AUC " + format_estimate(curve.auc, low_auc, high_auc, digits)
        if log:
            shown = curve.far > 0
            ax.step(curve.far[shown], curve.tar[shown], where="post", color=curve.color, linewidth=1.6)
        else:
            ax.plot(curve.far, curve.tar, color=curve.color, linewidth=1.6, label=f"{shorten(curve.label, 32)} ({auc})")
        if curve.low is not None and curve.high is not None:
            keep = curve.grid >= (1.0 / curve.n_negative if log else 0.0)
            ax.fill_between(
                curve.grid[keep],
                curve.low[keep],
                curve.high[keep],
                color=curve.color,
                alpha=0.18,
                linewidth=0,
                step="post",
                gid="ci_band",
            )
    if log:
        start = log_far_min(curves)
        xs = np.logspace(np.log10(start), 0, 50)
        ax.plot(xs, xs, label="chance (TAR = FAR)", **CHANCE_STYLE)
        ax.set_xscale("log")
        ax.set_xlim(start, 1)
        ax.set_xlabel("false accept rate (FAR, log scale)")
    else:
        ax.plot([0, 1], [0, 1], label="chance (TAR = FAR)", **CHANCE_STYLE)
        ax.set_xlim(0, 1)
        ax.set_xlabel("false accept rate (FAR)")
    ax.set_ylim(0, 1.01)
    ax.set_ylabel("true accept rate (TAR)")
    if legend:
        ax.legend(loc="lower right", fontsize=7)


def draw_hist(ax, labels: np.ndarray, distances: np.ndarray, color: str, legend: bool = True) -> None:
    if len(distances) == 0:
        return
    edges = np.histogram_bin_edges(distances, bins=30)
    same, _ = np.histogram(distances[labels], bins=edges, density=True)
    different, _ = np.histogram(distances[~labels], bins=edges, density=True)
    ax.stairs(same, edges, fill=True, color=color, alpha=0.65, label="same identity")  # one artist, not 30 bars
    ax.stairs(different, edges, color="#222222", linewidth=1.1, label="different identity")
    ax.set_ylabel("density")
    ax.set_ylim(bottom=0)
    ax.grid(visible=False)
    if legend:
        ax.legend(loc="upper right", fontsize=7)


def draw_scatter(
    ax,
    human: np.ndarray,
    model: np.ndarray,
    color: str,
    reported: float | None,
    method: str = "pearson",
    digits: int | None = None,
) -> None:
    """Model distance against the human value per pair, the least-squares line, titled with r (`digits`
    decimals: those the r's CI needs, from the caller; 3 without)."""
    ok = np.isfinite(human) & np.isfinite(model)
    x, y = human[ok], model[ok]
    ax.scatter(x, y, s=7, color=color, alpha=0.55, linewidths=0, rasterized=True)
    if len(x) >= 2 and np.std(x) > 0:
        slope, intercept = np.polyfit(x, y, 1)
        xs = np.array([x.min(), x.max()])
        ax.plot(xs, slope * xs + intercept, color="#222222", linewidth=1.2)
    r = reported if reported is not None and finite(reported) else _correlate(x, y, "pearson")
    symbol = "ρ" if "spearman" in str(method).lower() else "r"
    decimals = DEFAULT_DECIMALS if digits is None else digits
    ax.set_title(f"{symbol} = {format_number(r, decimals)}" if finite(r) else f"{symbol} = n/a")


# --- RDMs -----------------------------------------------------------------------------------------
def square(table: pd.DataFrame, values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """A symmetric stimulus × stimulus matrix from pair rows (img1, img2, value), unknown cells NaN, and the
    stimuli in order of first appearance."""
    names = list(dict.fromkeys([*table["img1"].astype(str), *table["img2"].astype(str)]))
    index = {name: i for i, name in enumerate(names)}
    rows = np.array([index[a] for a in table["img1"].astype(str)], dtype=int)
    cols = np.array([index[b] for b in table["img2"].astype(str)], dtype=int)
    matrix = np.full((len(names), len(names)), np.nan)
    matrix[rows, cols] = values
    matrix[cols, rows] = values
    return matrix, names


def rdm_limits(rdm: np.ndarray) -> tuple[float, float]:
    """A colour scale for RDMs: 2nd–98th percentile of the finite cells (0..1 when none)."""
    ok = np.isfinite(rdm)
    if not ok.any():
        return 0.0, 1.0
    low, high = float(np.nanpercentile(rdm[ok], 2)), float(np.nanpercentile(rdm[ok], 98))
    return (low, high) if high > low else (low - 0.5, high + 0.5)


def stimulus_name(path: str) -> str:
    name = str(path).replace("\\", "/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name


def draw_rdm(
    fig, ax, rdm: np.ndarray, limits: tuple[float, float], stimuli: list[str], max_labels: int, label: str
) -> None:
    """One RDM with its colour bar (labelled `label`) and, for at most `max_labels` stimuli, their names."""
    from matplotlib import colormaps

    cmap = colormaps["magma"].with_extremes(bad="#dddddd")
    image = ax.imshow(np.ma.masked_invalid(rdm), cmap=cmap, vmin=limits[0], vmax=limits[1], interpolation="nearest")
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    bar.set_label(label, fontsize=7)
    bar.ax.tick_params(labelsize=6)
    ax.grid(visible=False)
    if len(stimuli) <= max_labels:
        names = [shorten(stimulus_name(s), 12) for s in stimuli]
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
        ax.set_yticks(range(len(names)), names, fontsize=6)
        ax.tick_params(length=0)
    else:
        ax.set_xticks([])
        ax.set_yticks([])


# --- the overview's colours -----------------------------------------------------------------------
def column_mode(direction: str | None, target: float | None) -> str:
    """How an overview column is coloured: 'higher' (brighter = higher), 'lower' (brighter = lower),
    'closeness' (target with a human value: brighter = closer), 'diverging' (target without one: centred
    at 0), 'neutral' (a descriptive metric: one flat colour)."""
    if direction == "higher":
        return "higher"
    if direction == "lower":
        return "lower"
    if direction == "target":
        return "closeness" if target is not None and finite(target) else "diverging"
    return "neutral"


MODE_HINTS = {
    "higher": "higher is better",
    "lower": "lower is better",
    "closeness": "closer to human is better",
    "diverging": "0-centred, no better side",
    "neutral": "descriptive",
}


def overview_colors(matrix: np.ndarray, modes: list[str], targets: list[float | None]) -> np.ndarray:
    """RGBA per cell of a model × task matrix, each column on its own scale by its mode (`column_mode`):
    viridis over the column's range (reversed for 'lower'; over the range of |value − target|, reversed,
    for 'closeness'), a diverging map with `TwoSlopeNorm` centred at 0 ('diverging'), a flat grey
    ('neutral'); missing values a light grey."""
    from matplotlib import colormaps
    from matplotlib.colors import TwoSlopeNorm, to_rgba

    rgba = np.zeros((*matrix.shape, 4))
    rgba[:, :] = to_rgba(MISSING)
    viridis, diverging = colormaps["viridis"], colormaps["RdBu_r"]
    for j, mode in enumerate(modes):
        column = matrix[:, j]
        ok = np.isfinite(column)
        if not ok.any():
            continue
        values = column[ok]
        if mode == "neutral":
            rgba[ok, j] = to_rgba(NEUTRAL)
            continue
        if mode == "diverging":
            low, high = float(values.min()), float(values.max())
            span = max(abs(low), abs(high), 1e-12)
            norm = TwoSlopeNorm(vcenter=0.0, vmin=min(low, -1e-9 * span), vmax=max(high, 1e-9 * span))
            rgba[ok, j] = diverging(0.15 + 0.7 * np.asarray(norm(values), dtype=float))
            continue
        if mode == "closeness":  # the closest model brightest, the farthest darkest
            gap = np.abs(values - float(targets[j] or 0.0))
            spread = gap.max() - gap.min()
            scaled = (gap.max() - gap) / spread if spread > 0 else np.full_like(gap, 0.5)
        else:
            low, high = values.min(), values.max()
            scaled = np.full_like(values, 0.5) if high == low else (values - low) / (high - low)
            if mode == "lower":
                scaled = 1 - scaled
        rgba[ok, j] = viridis(scaled)
    return rgba


def text_color(rgba: np.ndarray) -> str:
    """White on dark cells, near-black on light ones (relative luminance)."""
    luminance = 0.2126 * rgba[0] + 0.7152 * rgba[1] + 0.0722 * rgba[2]
    return "white" if luminance < 0.5 else "#222222"


def layer_colors(layers: list[str]) -> dict[str, str]:
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    n = len(layers)
    cmap = colormaps["viridis"]
    return {layer: to_hex(cmap(0.15 + 0.7 * (i / max(1, n - 1)))) for i, layer in enumerate(layers)}


def overview_figure(
    matrix: np.ndarray,
    tasks: list[str],
    metrics: list[str],
    modes: list[str],
    targets: list[float | None],
    labels: list[str],
    colors: list[str],
    dpi: int,
):
    """The overview heatmap: models (rows, named by `labels`, in `colors`) × tasks (columns: the task, its
    headline metric and how its column is coloured), each cell the value on its column's colour
    (`overview_colors`)."""
    names = [shorten(label, 28) for label in labels]
    left = 0.3 + CHAR_IN * max(len(n) for n in names)
    rotate = len(tasks) > 6
    longest = max(len(shorten(t, 26)) for t in tasks)
    hints = [
        MODE_HINTS[mode].replace("human", f"human {target:.3g}")
        if mode == "closeness" and target is not None
        else MODE_HINTS[mode]
        for mode, target in zip(modes, targets)
    ]
    ticks = [
        "\n".join([shorten(t, 26), shorten(display_name(metric), 26), *textwrap.wrap(f"({hint})", 18)])
        for t, metric, hint in zip(tasks, metrics, hints)
    ]
    lines = max(tick.count("\n") + 1 for tick in ticks)
    bottom = 0.5 + (0.5 * CHAR_IN * longest + 0.3 if rotate else 0.17 * lines)
    fig = figure(min(24.0, left + 0.3 + 1.3 * len(tasks)), min(16.0, bottom + 0.8 + 0.38 * len(names)), dpi)
    adjust(fig, left=left, right=0.3, top=0.75, bottom=bottom)
    ax = fig.subplots()
    rgba = overview_colors(matrix, modes, targets)
    ax.imshow(rgba, aspect="auto", interpolation="nearest")
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            value = matrix[i, j]
            text = ("0" if abs(value) < 1e-9 else f"{value:.3g}") if np.isfinite(value) else "–"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color=text_color(rgba[i, j]))
    ax.set_xticks(
        range(len(tasks)),
        ticks,
        rotation=30 if rotate else 0,
        ha="right" if rotate else "center",
        rotation_mode="anchor",
    )
    ax.set_yticks(range(len(names)), names)
    for tick, color in zip(ax.get_yticklabels(), colors):
        tick.set_color(color)
    ax.grid(visible=False)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(
        "Headline metric per model × task (readout layer)\ncolour: each task on its own scale; brighter is better "
        "(grey: no better side)"
    )
    return fig
