"""The data layer of the reports: the results table as read back, orders, colours, headline rows, per-pair
value files, reference values and the saved run facts. Figures (`plots.py`), report.html (`html.py`), the
pytest-html extras and the terminal table all read results through here."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from ..data.pairs import FALSE_WORDS, TRUE_WORDS
from ..files import atomic_write
from ..outputs.metrics import display_name, metric_info, task_type_info
from ..outputs.reading import _truthy
from ..outputs.reading import normalize_results as normalize_results  # the report readers' names for them
from ..outputs.reading import read_results as read_results
from ..outputs.reading import read_run as read_run
from ..outputs.schema import TEXT_COLUMNS as TEXT_COLUMNS
from .tables import safe_name

PLOTS_DIR = "plots"
MANIFEST = "manifest.json"
REFERENCES_FILE = "references.json"
META_KEYS = {
    "source",
    "paper",
    "url",
    "note",
    "label",
    "layer",
    "model",
    "task",
    "metric",
    "condition",
    "value",
    "published",
}


def model_order(results: pd.DataFrame) -> list[str]:
    return [m for m in dict.fromkeys(results["model"]) if m != ""]


def task_order(results: pd.DataFrame) -> list[str]:
    return [t for t in dict.fromkeys(results["task"]) if t != ""]


PALETTE_SLOTS = 10  # a model's preferred colour: one of tab10's, by a hash of its name


def _palette() -> list[str]:
    """The fixed qualitative palette, in probing order: tab10, then tab20's light shades (same hue order)."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap, to_hex

    tab10 = list(cast(Sequence[Any], cast(ListedColormap, colormaps["tab10"]).colors))
    tab20 = list(cast(Sequence[Any], cast(ListedColormap, colormaps["tab20"]).colors))
    return [to_hex(c) for c in tab10] + [to_hex(c) for c in tab20[1::2]]


def _name_slot(name: str) -> int:
    """A slot of the palette from the model's name alone (blake2b: the same in every process and run)."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "big") % PALETTE_SLOTS


def _wheel(i: int) -> str:
    """Colours past the palette: a golden-ratio walk around the hue circle (deterministic)."""
    import colorsys

    from matplotlib.colors import to_hex

    hue = (0.07 + 0.618033988749895 * i) % 1.0
    return to_hex(colorsys.hsv_to_rgb(hue, 0.75 if i % 2 else 0.55, 0.8 if i % 2 else 0.65))


def model_colors(models: Iterable[str], overrides: dict[str, str | None] | None = None) -> dict[str, str]:
    """model → colour (hex), in the given order. A model's colour comes from its NAME, not its position: a
    hash of the name picks one of tab10's ten colours; when an earlier name (in sorted order) holds it, the
    next free one (tab10, then tab20's light shades, then a hue wheel). So the same model keeps its colour
    in runs with other model sets unless it collides with a name sorting before it. `overrides` (the grid's
    `color` per model, any matplotlib colour) win and are never handed to another model."""
    from matplotlib.colors import is_color_like, to_hex

    models = list(dict.fromkeys(models))
    out = {
        m: to_hex(color)
        for m in models
        if isinstance(color := (overrides or {}).get(m), str) and color and is_color_like(color)
    }
    taken = {c.lower() for c in out.values()}
    palette = _palette()
    extra = 0
    for model in sorted(m for m in models if m not in out):
        slot = _name_slot(model)
        probes = [(slot + i) % PALETTE_SLOTS for i in range(PALETTE_SLOTS)]
        probes += [PALETTE_SLOTS + (slot + i) % PALETTE_SLOTS for i in range(len(palette) - PALETTE_SLOTS)]
        color = next((palette[p] for p in probes if palette[p] not in taken), None)
        while color is None or color in taken:
            color, extra = _wheel(extra), extra + 1
        out[model] = color
        taken.add(color)
    return {m: out[m] for m in models}


def model_labels(models: Iterable[str], overrides: dict[str, str | None] | None = None) -> dict[str, str]:
    """model → the name figures show: the grid's `label` where set, else the model's name."""
    return {
        m: label if isinstance(label := (overrides or {}).get(m), str) and label.strip() else m
        for m in dict.fromkeys(models)
    }


MODEL_STYLES_KEY = "model_styles"  # run.json: {model: {"color": ..., "label": ...}} from the grid


def normalize_model_styles(styles: Any) -> dict[str, dict[str, str]]:
    """`{model: {"color": str, "label": str}}` with only the keys set (anything else dropped)."""
    out: dict[str, dict[str, str]] = {}
    for model, style in (styles or {}).items() if isinstance(styles, dict) else ():
        if isinstance(style, dict):
            kept = {k: str(style[k]) for k in ("color", "label") if isinstance(style.get(k), str) and style[k]}
            if kept:
                out[str(model)] = kept
    return out


def model_styles_from_grid(grid: Any) -> dict[str, dict[str, str]]:
    """The `color` and `label` of a `config.Grid`'s models (for `write_outputs(model_styles=...)`)."""
    if grid is None:
        return {}
    return normalize_model_styles(
        {
            m.name: {"color": getattr(m, "color", None), "label": getattr(m, "label", None)}
            for m in getattr(grid, "models", [])
        }
    )


def read_model_styles(out_dir: Path) -> dict[str, dict[str, str]]:
    """The model styles a results dir was written with (run.json `model_styles`)."""
    return normalize_model_styles(read_run(out_dir).get(MODEL_STYLES_KEY))


def style_overrides(styles: dict[str, dict[str, str]], key: str) -> dict[str, str | None]:
    """model → one key of its style (`color` or `label`), for `model_colors` / `model_labels`."""
    return {m: s.get(key) for m, s in styles.items()}


def task_types(results: pd.DataFrame) -> dict[str, str]:
    """task → its type: the most frequent type of its rows other than 'custom' (records of
    `facebench.record`), else 'custom'."""
    out: dict[str, str] = {}
    for task, rows in results.groupby("task", sort=False):
        types = [t for t in rows["task_type"] if t and t != "custom"]
        out[str(task)] = pd.Series(types).mode().iloc[0] if types else (rows["task_type"].iloc[0] or "custom")
    return out


def registry_headlines(saved: dict[str, str] | None = None, needed: Iterable[str] = ()) -> dict[str, str]:
    """task type → headline metric, for results written before the `headline` column existed: what the
    report that wrote the dir used (plots/manifest.json), else what the declared task type says."""
    out = {t: info.headline for t in needed if (info := task_type_info(t)) is not None and info.headline}
    return {**out, **(saved or {})}


def declared_figures(results: pd.DataFrame) -> dict[str, list[str]]:
    """task → the figure kinds its type declares (`BaseTask.figures`), for types known in this process."""
    return {
        task: list(info.figures)
        for task, kind in task_types(results).items()
        if (info := task_type_info(kind)) is not None
    }


def headline_metrics(results: pd.DataFrame, headlines: dict[str, str] | None = None) -> dict[str, str]:
    """task → its headline metric: the rows flagged `headline` (the task type declares it), else `headlines`
    by type (older results), else the first metric of the task (rows without a condition first)."""
    headlines = headlines or {}
    types = task_types(results)
    flagged = results["headline"].map(_truthy) if "headline" in results else pd.Series(False, index=results.index)
    out = {}
    for task, rows in results.groupby("task", sort=False):
        marked = rows.loc[flagged.loc[rows.index], "metric"]
        declared = headlines.get(types.get(str(task), ""), "")
        metrics = list(dict.fromkeys(rows["metric"]))
        if len(marked):
            out[str(task)] = str(marked.iloc[0])
        elif declared and declared in metrics:
            out[str(task)] = declared
        else:
            plain = [m for m in dict.fromkeys(rows.loc[rows["condition"] == "", "metric"]) if m]
            out[str(task)] = (plain or metrics or [""])[0]
    return out


def with_readout(results: pd.DataFrame) -> pd.DataFrame:
    """Adds `_readout`: the rows of each model × task readout layer (the `readout` column, else the
    deepest layer the model has in that task)."""
    frame = results.copy()
    if frame.empty:
        frame["_readout"] = pd.Series(dtype=bool)
        return frame
    keys = [frame["model"], frame["task"]]
    declared = frame["readout"].astype(bool)
    has = declared.groupby(keys).transform("any")
    depth = frame["layer_index"].fillna(-1)
    deepest = depth == depth.groupby(keys).transform("max")
    frame["_readout"] = np.where(has, declared, deepest)
    return frame


def headline_frame(results: pd.DataFrame, headlines: dict[str, str] | None = None) -> pd.DataFrame:
    """Each task's headline rows at each model's readout layer (one row per model × task × condition)."""
    frame = with_readout(results)
    metric = headline_metrics(results, headlines)
    chosen = frame["_readout"] & (frame["metric"] == frame["task"].map(metric))
    return frame[chosen].drop(columns=["_readout"])


def direction(metric: str) -> float:
    """+1 when higher is better (or no direction), −1 when lower is better."""
    return -1.0 if metric_info(metric).higher_is_better is False else 1.0


def finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def layer_column(table: pd.DataFrame, layer: str) -> str | None:
    """The column of a layer in a distances file: `<layer>`, or `<value>:<layer>` where a pairs column had the
    layer's name or the task's values are not distances (`rank:<layer>` for identification)."""
    for prefix in ("distance", "rank"):
        if f"{prefix}:{layer}" in table:
            return f"{prefix}:{layer}"
    return layer if layer in table else None


class DistanceFiles:
    """distances/<task>/<model>.csv, read once each."""

    def __init__(self, out_dir: Path):
        self.root = Path(out_dir) / "distances"
        self._cache: dict[tuple[str, str], pd.DataFrame | None] = {}

    def get(self, task: str, model: str) -> pd.DataFrame | None:
        key = (task, model)
        if key not in self._cache:
            path = self.root / safe_name(task) / f"{safe_name(model)}.csv"
            try:
                self._cache[key] = pd.read_csv(path) if path.is_file() else None
            except (OSError, ValueError, pd.errors.ParserError):
                self._cache[key] = None
        return self._cache[key]


def _binary(column: pd.Series) -> np.ndarray | None:
    words = column.astype(str).str.strip().str.lower()
    true, false = words.isin(TRUE_WORDS), words.isin(FALSE_WORDS)
    if not (true | false).all() or true.all() or false.all():
        return None
    return true.to_numpy()


def label_column(
    table: pd.DataFrame, layer_columns: set[str], auc: float | None = None, scores: np.ndarray | None = None
) -> np.ndarray | None:
    """The same/different labels of a verification distances file: 'label' when binary, else the
    binary column whose AUC matches the reported one (else the first binary column)."""
    candidates: dict[str, np.ndarray] = {}
    for name in table.columns:
        if name in layer_columns or name in ("img1", "img2"):
            continue
        labels = _binary(table[name])
        if labels is not None:
            candidates[str(name)] = labels
    if not candidates:
        return None
    if "label" in candidates:
        return candidates["label"]
    if auc is not None and scores is not None and finite(auc):
        from sklearn.metrics import roc_auc_score

        best = min(candidates, key=lambda c: abs(roc_auc_score(candidates[c], scores) - auc))
        return candidates[best]
    return next(iter(candidates.values()))


def _correlate(x: np.ndarray, y: np.ndarray, method: str) -> float:
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    if "spearman" in method.lower():
        x, y = pd.Series(x).rank().to_numpy(), pd.Series(y).rank().to_numpy()
    return float(np.corrcoef(x, y)[0, 1])


def human_column(
    table: pd.DataFrame,
    layer_columns: set[str],
    model_distances: np.ndarray | None = None,
    reported: float | None = None,
    method: str = "pearson",
) -> str | None:
    """The human-judgement column of a correlation task's distances file: 'distance' by default; where
    the task named it otherwise, the numeric pairs column whose correlation with the model reproduces
    the reported one."""
    candidates = [
        str(c)
        for c in table.columns
        if c not in layer_columns and c not in ("img1", "img2") and pd.api.types.is_numeric_dtype(table[c])
    ]
    if not candidates:
        return None
    if model_distances is None or reported is None or not finite(reported):
        return "distance" if "distance" in candidates else candidates[0]
    gaps = {c: abs(_correlate(model_distances, table[c].to_numpy(dtype=float), method) - reported) for c in candidates}
    gaps = {c: g for c, g in gaps.items() if finite(g)}
    if "distance" in gaps and gaps["distance"] < 1e-6:
        return "distance"
    if gaps and min(gaps.values()) < 1e-3:
        return min(gaps, key=lambda c: gaps[c])
    return "distance" if "distance" in candidates else candidates[0]


# --- drawing ----------------------------------------------------------------------------------
def read_manifest(out_dir: Path) -> dict[str, Any]:
    path = Path(out_dir) / PLOTS_DIR / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and math.isfinite(float(value)):
        return float(value)
    return None


def _meta(table: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {
        k: table[k] for k in ("source", "paper", "url", "note", "label", "layer", "condition") if k in table
    }
    source = "; ".join(str(meta.pop(k)) for k in ("source", "paper", "url") if meta.get(k))
    if source:
        meta["source"] = source
    return meta


def _task_references(task: str, table: dict[str, Any], model: str | None = None) -> list[dict[str, Any]]:
    """A `[[tasks]]` entry's `reference` table: `{metric = value, source = ...}` (no model: e.g. human
    performance), `{model = "m", metric = value}`, or `{<model> = {metric = value, ...}}`."""
    out = []
    model = table.get("model", model)
    meta = _meta(table)
    if "value" in table and _number(table["value"]) is not None:
        out.append(
            {"task": task, "model": model, "metric": table.get("metric"), "value": _number(table["value"]), **meta}
        )
    for key, value in table.items():
        if key in META_KEYS:
            continue
        if isinstance(value, dict):
            out.extend(_task_references(task, {**_meta(table), **value}, model=key))
        elif _number(value) is not None:
            out.append({"task": task, "model": model, "metric": key, "value": _number(value), **meta})
    return out


def _model_references(model: str, table: dict[str, Any]) -> list[dict[str, Any]]:
    """A `[[models]]` entry's `reference` table: `{<task> = value}` (the task's headline metric),
    `{<task> = {metric = value, source = ...}}`, or `{task = "t", metric = value, ...}`."""
    if "task" in table:
        return _task_references(str(table["task"]), {k: v for k, v in table.items() if k != "task"}, model=model)
    out = []
    meta = _meta(table)
    for key, value in table.items():
        if key in META_KEYS:
            continue
        if isinstance(value, dict):
            out.extend(_task_references(key, {**meta, **value}, model=model))
        elif _number(value) is not None:
            out.append({"task": key, "model": model, "metric": None, "value": _number(value), **meta})
    return out


def normalize_references(references: Any) -> list[dict[str, Any]]:
    """Reference values as a list of `{task, model (None: any model), metric (None: the task's
    headline), value, layer?, condition?, source?, label?}`. Accepts that list, or
    `{"tasks": {task: table}, "models": {model: table}}` with the grid's `reference` tables."""
    if not references:
        return []
    out: list[dict[str, Any]] = []
    if isinstance(references, dict):
        for task, table in (references.get("tasks") or {}).items():
            if isinstance(table, dict):
                out.extend(_task_references(str(task), table))
        for model, table in (references.get("models") or {}).items():
            if isinstance(table, dict):
                out.extend(_model_references(str(model), table))
        return out
    for entry in references:
        if not isinstance(entry, dict):
            continue
        value = _number(entry.get("value", entry.get("published")))
        if value is None or not entry.get("task"):
            continue
        clean = {
            "task": str(entry["task"]),
            "model": entry.get("model") or None,
            "metric": entry.get("metric") or None,
            "value": value,
        }
        clean.update({k: entry[k] for k in ("layer", "condition", "source", "label") if entry.get(k)})
        out.append(clean)
    return out


def references_from_grid(grid: Any) -> list[dict[str, Any]]:
    """The `reference` tables of a `config.Grid`'s tasks and models (an empty list for None)."""
    if grid is None:
        return []
    return normalize_references(
        {
            "tasks": {t.name: t.reference for t in getattr(grid, "tasks", []) if getattr(t, "reference", None)},
            "models": {m.name: m.reference for m in getattr(grid, "models", []) if getattr(m, "reference", None)},
        }
    )


def load_references(out_dir: Path) -> list[dict[str, Any]]:
    path = Path(out_dir) / REFERENCES_FILE
    try:
        return normalize_references(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return []


def save_references(out_dir: Path, references: list[dict[str, Any]]) -> None:
    path = Path(out_dir) / REFERENCES_FILE
    atomic_write(path, json.dumps(normalize_references(references), indent=2) + "\n")


def reference_rows(results: pd.DataFrame, references: list[dict[str, Any]], headlines: dict[str, str]) -> pd.DataFrame:
    """sotabench-style comparison: one row per reference × model it applies to, with the reproduced
    value (readout layer unless the reference names one), the published value and the delta."""
    frame = with_readout(normalize_results(results))
    rows = []
    for ref in references:
        task = ref["task"]
        metric = ref.get("metric") or headlines.get(task, "")
        evaluated = frame[(frame["task"] == task) & (frame["metric"] == metric)]
        models = [ref["model"]] if ref.get("model") else model_order(evaluated)
        for model in models or [None]:
            mine = frame[
                (frame["model"] == model)
                & (frame["task"] == task)
                & (frame["metric"] == metric)
                & (frame["condition"] == str(ref.get("condition") or ""))
            ]
            mine = mine[mine["layer"] == ref["layer"]] if ref.get("layer") else mine[mine["_readout"]]
            reproduced = float(mine["value"].iloc[0]) if len(mine) else float("nan")
            published = float(ref["value"])
            note = ""
            if (
                finite(reproduced)
                and 1.0 < published <= 100.0
                and 0.0 <= reproduced <= 1.0
                and metric_info(metric).higher_is_better is not None
            ):
                published, note = published / 100.0, "published in %"
            rows.append(
                {
                    "task": task,
                    "model": model or "",
                    "metric": metric,
                    "layer": mine["layer"].iloc[0] if len(mine) else (ref.get("layer") or ""),
                    "reproduced": reproduced,
                    "published": published,
                    "delta": reproduced - published if finite(reproduced) else float("nan"),
                    "scope": "model" if ref.get("model") else (ref.get("label") or "task reference"),
                    "source": "; ".join(x for x in (ref.get("source") or "", note) if x),
                }
            )
    return pd.DataFrame(
        rows, columns=["task", "model", "metric", "layer", "reproduced", "published", "delta", "scope", "source"]
    )


# --- tables ---------------------------------------------------------------------------------------
def task_target(rows: pd.DataFrame, metric: str, condition: str = "") -> float | None:
    """The value a `target` metric of one task should reach: the `target` column of its rows (of `condition`,
    none by default), else their `human_effect` column, else a `human_effect` row declared for that metric.
    None without one."""
    mine = rows[(rows["metric"] == metric) & (rows["condition"] == condition)]
    for column in ("target", "human_effect"):
        if column in mine:
            values = pd.to_numeric(mine[column], errors="coerce").dropna()
            if len(values):
                return float(values.median())
    human = rows[(rows["metric"] == "human_effect") & (rows["condition"] == condition)]
    human = human[human["protocol"].str.contains(f"({metric})", regex=False)] if "protocol" in human else human[:0]
    values = human["value"].dropna()
    return float(values.median()) if len(values) else None


def metric_title(rows: pd.DataFrame, metric: str) -> str:
    """What a table column or axis of `metric` shows: the task's own `metric_label` (e.g. 'Pearson r with human
    dissimilarity (mean of 6 raters)') when its rows agree on one, else the metric's display name."""
    if "metric_label" in rows:
        labels = rows.loc[rows["metric"] == metric, "metric_label"].dropna().astype(str)
        labels = labels[labels != ""].unique()
        if len(labels) == 1:
            return str(labels[0])
    return display_name(metric)
