"""Relations computed from a run's results: each model's value on each axis, the statistics across models,
the `expect` gate, relations.csv and relation_models.csv.

The grid's relations and model tags travel in run.json (`relations`, `model_tags`), so a controller, a shard
merge and `python -m pytest_facebench relate` all compute a relation from the same data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..files import atomic_csv
from ..outputs.reading import read_run
from ..stats.relations import RelationStats, relate
from .select import compile_selection
from .spec import RelationSpec, split_axis

RELATIONS_FILE = "relations.csv"
MODELS_FILE = "relation_models.csv"
TAG_PREFIX = "tag_"  # results.csv: one column per model tag
RELATION_COLUMNS = [
    "relation",
    "x",
    "y",
    "method",
    "layer",
    "n_models",
    "r",
    "ci_low",
    "ci_high",
    "p_perm",
    "control",
    "partial_r",
    "partial_ci_low",
    "partial_ci_high",
    "partial_p_perm",
    "expect",
    "gate",
    "status",
    "models",
    "protocol",
    "note",
]


@dataclass
class RelationResult:
    """One relation at one layer choice: the models' points and the statistics across them."""

    spec: RelationSpec
    layer: str  # "readout", "best" or "depth 0.5"
    points: pd.DataFrame  # model, x, x_ci_low, x_ci_high, x_layer, y, ..., tag columns
    stats: RelationStats
    gate: str = ""  # "" (no expect), pass, fail, inconclusive, untested
    notes: list[str] = field(default_factory=list)

    @property
    def gated_on_partial(self) -> bool:
        return bool(self.spec.control) and self.stats.ok

    def row(self) -> dict[str, Any]:
        s = self.stats
        return {
            "relation": self.spec.name,
            "x": self.spec.x,
            "y": self.spec.y,
            "method": self.spec.method,
            "layer": self.layer,
            "n_models": s.n,
            "r": s.r,
            "ci_low": s.ci_low,
            "ci_high": s.ci_high,
            "p_perm": s.p_value,
            "control": ", ".join(self.spec.control),
            "partial_r": s.partial_r,
            "partial_ci_low": s.partial_ci_low,
            "partial_ci_high": s.partial_ci_high,
            "partial_p_perm": s.partial_p_value,
            "expect": self.spec.expect or "",
            "gate": self.gate,
            "status": s.status,
            "models": ", ".join(self.points["model"]) if len(self.points) else "",
            "protocol": protocol(self.spec, self.layer, s),
            "note": "; ".join([*self.notes, *([s.note] if s.note else [])]),
        }


def protocol(spec: RelationSpec, layer: str, stats: RelationStats) -> str:
    """How the numbers were made, in words (relations.csv's `protocol`)."""
    where = {"readout": "each model's readout layer", "best": "each model's best layer per axis"}.get(
        layer, f"each model's listed layer nearest relative {layer}"
    )
    text = (
        f"{spec.method} r across models at {where}; {round(spec.ci * 100, 3):g}% CI: percentile bootstrap over models"
    )
    text += f" ({spec.n_boot} resamples, seed {spec.seed}); p: two-sided permutation"
    if stats.n_perm:
        text += f" ({'exact, all ' if stats.exact_p else ''}{stats.n_perm} permutations)"
    if spec.control:
        text += f"; partial r given {', '.join(spec.control)} (residuals of a least-squares fit"
        text += ", on ranks" if spec.method == "spearman" else ""
        text += "; categories one-hot)"
    if spec.models:
        text += f"; models: {spec.models}"
    return text


def gate(stats: RelationStats, expect: str | None, partial: bool = False) -> str:
    """`expect` against the CI (the partial r's with controls): `fail` when the CI contradicts it (positive: the
    CI lies at or below 0; negative: at or above 0; none: the CI excludes 0), `pass` when the CI shows it,
    `inconclusive` otherwise, `untested` without a number (too few models)."""
    if not expect:
        return ""
    low, high = (stats.partial_ci_low, stats.partial_ci_high) if partial else (stats.ci_low, stats.ci_high)
    if not stats.ok or not (math.isfinite(low) and math.isfinite(high)):
        return "untested"
    if expect == "positive":
        return "fail" if high <= 0 else "pass" if low > 0 else "inconclusive"
    if expect == "negative":
        return "fail" if low >= 0 else "pass" if high < 0 else "inconclusive"
    return "fail" if low > 0 or high < 0 else "pass"


# --- each model's values -----------------------------------------------------------------------------
def _layer_choices(spec: RelationSpec) -> list[tuple[str, str | float]]:
    if isinstance(spec.layer, str):
        return [(spec.layer, spec.layer)]
    return [(f"depth {d:g}", d) for d in spec.layer]


def _cells(results: pd.DataFrame, axis: str, layer: str | float) -> dict[str, dict[str, Any]]:
    """model → {value, ci_low, ci_high, layer} of one axis (`task/metric[/condition]`) at the layer choice."""
    from ..outputs.results import _table_records

    task, metric, condition = split_axis(axis)
    rows = [r for r in _table_records(results) if (r["task"], r["metric"], r["condition"]) == (task, metric, condition)]
    if isinstance(layer, float):
        return _at_depth(rows, layer)
    from ..outputs.results import build_table, column_key

    if not rows:
        return {}
    table = build_table(results, metrics=[axis], layer=layer, references=False)
    key = column_key(task, metric, condition)
    out = {}
    for row in table.model_rows:
        cell = row.cells.get(key)
        if cell is not None and math.isfinite(cell.value):
            out[row.label] = {"value": cell.value, "ci_low": cell.ci_low, "ci_high": cell.ci_high, "layer": cell.layer}
    return out


def _at_depth(rows: list[dict[str, Any]], depth: float) -> dict[str, dict[str, Any]]:
    """Each model's listed layer nearest the relative depth (index / (layers - 1); ties: the deeper)."""
    by_model: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_model.setdefault(r["model"], []).append(r)
    out = {}
    for model, found in by_model.items():
        found.sort(key=lambda r: r["layer_index"] if math.isfinite(r["layer_index"]) else -1.0)
        count = len(found)
        depths = [i / (count - 1) if count > 1 else 1.0 for i in range(count)]
        best = min(range(count), key=lambda i: (abs(depths[i] - depth), -i))
        r = found[best]
        if math.isfinite(r["value"]):
            out[model] = {"value": r["value"], "ci_low": r["ci_low"], "ci_high": r["ci_high"], "layer": r["layer"]}
    return out


def relation_points(
    results: pd.DataFrame, spec: RelationSpec, tags: Mapping[str, Mapping[str, Any]], layer: str | float
) -> tuple[pd.DataFrame, list[str]]:
    """The models with a value on both axes (and every control tag), in results order: their values, CIs and
    layers, and their tags. Also notes on models left out."""
    xs, ys = _cells(results, spec.x, layer), _cells(results, spec.y, layer)
    notes = []
    models = [m for m in dict.fromkeys(results["model"]) if isinstance(m, str) and m] if len(results) else []
    if spec.models:
        selection = compile_selection(spec.models)
        models = [m for m in models if selection.matches(m, tags.get(m, {}))]
    for axis, found in (("x", xs), ("y", ys)):
        if not found:
            notes.append(f"no model has {axis} = {getattr(spec, axis)} (a task/metric/condition of results.csv?)")
    records = []
    lacking: list[str] = []
    for model in models:
        if model not in xs or model not in ys:
            continue
        if any(c not in tags.get(model, {}) for c in spec.control):
            lacking.append(model)
            continue
        record = {"model": model}
        for axis, found in (("x", xs), ("y", ys)):
            record.update({f"{axis}_{k}" if k != "value" else axis: v for k, v in found[model].items()})
        record.update({f"{TAG_PREFIX}{k}": v for k, v in tags.get(model, {}).items()})
        records.append(record)
    if lacking:
        notes.append(f"left out for lacking a control tag: {', '.join(lacking)}")
    columns = ["model", "x", "x_ci_low", "x_ci_high", "x_layer", "y", "y_ci_low", "y_ci_high", "y_layer"]
    return pd.DataFrame.from_records(
        records, columns=columns + sorted({c for r in records for c in r} - set(columns))
    ), notes


def compute_relation(
    results: pd.DataFrame, spec: RelationSpec, tags: Mapping[str, Mapping[str, Any]]
) -> list[RelationResult]:
    """The relation at each of its layer choices."""
    out = []
    for label, layer in _layer_choices(spec):
        points, notes = relation_points(results, spec, tags, layer)
        controls = [points[f"{TAG_PREFIX}{c}"].tolist() for c in spec.control] if len(points) else []
        stats = relate(
            points["x"].to_numpy(dtype=float),
            points["y"].to_numpy(dtype=float),
            spec.method,
            controls=controls or None,
            n_boot=spec.n_boot,
            n_perm=spec.n_perm,
            level=spec.ci,
            seed=spec.seed,
        )
        result = RelationResult(spec, label, points, stats, notes=notes)
        result.gate = gate(stats, spec.expect, partial=result.gated_on_partial)
        out.append(result)
    return out


def compute_relations(
    results: pd.DataFrame, specs: Sequence[RelationSpec], tags: Mapping[str, Mapping[str, Any]]
) -> list[RelationResult]:
    return [r for spec in specs for r in compute_relation(results, spec, tags)]


def relations_frame(computed: Sequence[RelationResult]) -> pd.DataFrame:
    return pd.DataFrame.from_records([r.row() for r in computed], columns=RELATION_COLUMNS)


def models_frame(computed: Sequence[RelationResult]) -> pd.DataFrame:
    """relation_models.csv: each relation's models with their values, CIs, layers and tags."""
    frames = [r.points.assign(relation=r.spec.name, layer=r.layer) for r in computed if len(r.points)]
    if not frames:
        return pd.DataFrame(columns=["relation", "layer", "model"])
    frame = pd.concat(frames, ignore_index=True)
    first = ["relation", "layer", "model"]
    return frame[first + [c for c in frame.columns if c not in first]]


# --- run.json and the output folder ---------------------------------------------------------------------
def run_relations(run: Mapping[str, Any]) -> tuple[list[RelationSpec], dict[str, dict[str, Any]]]:
    """The relation specs and model tags a run.json carries."""
    specs = [RelationSpec.from_dict(d) for d in run.get("relations") or [] if isinstance(d, dict)]
    tags = {str(m): dict(t) for m, t in (run.get("model_tags") or {}).items() if isinstance(t, dict)}
    return specs, tags


def with_tag_columns(results: pd.DataFrame, tags: Mapping[str, Mapping[str, Any]] | None) -> pd.DataFrame:
    """results.csv with one `tag_<name>` column per model tag (empty for a model without it)."""
    names = sorted({name for model_tags in (tags or {}).values() for name in model_tags})
    if not names or not len(results):
        return results
    results = results.copy()
    for name in names:
        results[f"{TAG_PREFIX}{name}"] = results["model"].map(lambda m, n=name: (tags or {}).get(m, {}).get(n))
    return results


def write_relations(out_dir: Path, results: pd.DataFrame, run: Mapping[str, Any]) -> list[RelationResult]:
    """relations.csv and relation_models.csv for the run's relations (none: no file, an old one removed)."""
    specs, tags = run_relations(run)
    out_dir = Path(out_dir)
    if not specs:
        for name in (RELATIONS_FILE, MODELS_FILE):
            (out_dir / name).unlink(missing_ok=True)
        return []
    computed = compute_relations(results, specs, tags)
    atomic_csv(out_dir / RELATIONS_FILE, relations_frame(computed))
    atomic_csv(out_dir / MODELS_FILE, models_frame(computed))
    return computed


def read_relations(out_dir: Path) -> pd.DataFrame | None:
    """relations.csv of a results folder, or None."""
    path = Path(out_dir) / RELATIONS_FILE
    if not path.is_file():
        return None
    text = ("relation", "x", "y", "method", "layer", "control", "expect", "gate", "status", "models", "note")
    frame = pd.read_csv(path, dtype={c: str for c in text})
    for column in text:
        if column in frame:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), "").astype(str)
    return frame


def load_dirs(dirs: Sequence[Path]) -> tuple[pd.DataFrame, list[RelationSpec], dict[str, dict[str, Any]]]:
    """The results of one or several results folders (later folders win on the same model, layer, task, metric
    and condition), the relations their run.json declare (first folder first, by name) and the model tags
    (run.json's, else results.csv's `tag_<name>` columns)."""

    from ..report.data import read_results

    frames, specs, tags = [], {}, {}  # type: ignore[var-annotated]
    for directory in dirs:
        frame = read_results(Path(directory))
        frames.append(frame)
        dir_specs, dir_tags = run_relations(read_run(Path(directory)))
        for spec in dir_specs:
            specs.setdefault(spec.name, spec)
        columns = [c for c in frame.columns if c.startswith(TAG_PREFIX)]
        for record in frame[["model", *columns]].drop_duplicates("model").to_dict("records") if columns else []:
            found = {
                c.removeprefix(TAG_PREFIX): _tag_value(record[c]) for c in columns if _tag_value(record[c]) is not None
            }
            tags.setdefault(str(record["model"]), {}).update(found)
        for model, values in dir_tags.items():
            tags.setdefault(model, {}).update(values)
    results = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(results):
        keys = ["model", "layer", "task", "metric", "condition"]
        key = results[keys].astype(object).where(results[keys].notna(), "").astype(str)
        results = results[~key.duplicated(keep="last")].reset_index(drop=True)
    return results, list(specs.values()), tags


def _tag_value(value: Any) -> Any:
    """A tag read back from results.csv: NaN/empty → None, 'True'/'False' → bool, numbers → float."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    if isinstance(value, str):
        if value in ("True", "False"):
            return value == "True"
        try:
            return float(value)
        except ValueError:
            return value
    return value


# --- words -----------------------------------------------------------------------------------------
def _number(value: Any, digits: int = 2) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return f"{number:.{digits}f}" if math.isfinite(number) else "n/a"


def relation_line(row: Mapping[str, Any]) -> str:
    """One line per relation (a relations.csv row) for the terminal."""
    from ..report.numbers import format_p

    head = f"relation {row['relation']} [{row['layer']}]: {row['y']} ~ {row['x']}"
    if row.get("status") != "ok":
        text = f"{head}: {row.get('status')} ({row.get('note') or ''})".replace(" ()", "")
    else:
        text = (
            f"{head}: {row['method']} r = {_number(row['r'])} [{_number(row['ci_low'])}, {_number(row['ci_high'])}], "
            f"{format_p(row['p_perm'])}, {int(row['n_models'])} models"
        )
        if row.get("control"):
            text += (
                f"; partial r | {row['control']} = {_number(row['partial_r'])} [{_number(row['partial_ci_low'])}, "
                f"{_number(row['partial_ci_high'])}]"
            )
    if row.get("expect"):
        text += f"; expect {row['expect']}: {str(row.get('gate') or '').upper()}"
    return text


def failed_gates(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    if frame is None or not len(frame):
        return []
    return [r for r in frame.to_dict("records") if r.get("gate") == "fail"]
