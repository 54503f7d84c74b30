"""CI gates: thresholds from the grid (or `expect=`), and comparisons with a saved baseline.

Pure functions on result records; the plugin only decides where a failure is raised (in the test of
the cell that regressed) and where outcomes are written.
"""

from __future__ import annotations

import difflib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, FacebenchError
from .metrics import RANK, MetricInfo, badness, learn, learn_task_types, metric_info
from .schema import cell_provenance

BASELINE_FORMAT = "facebench-baseline/1"
PROVENANCE_KEYS = ("weights", "kwargs", "preprocessing", "precision", "pairs_sha256", "distance", "pooling")
OPERATORS = {">=": "min", ">": "min", "<=": "max", "<": "max"}


class GateFailure(AssertionError):
    """Raised in the test of a cell whose gates failed; the message lists every failing gate."""


@dataclass(frozen=True)
class Threshold:
    metric: str
    min: float | None = None
    max: float | None = None
    model: str | None = None
    layer: str | None = None
    condition: str | None = None

    def applies(self, record: dict[str, Any], readout: bool) -> bool:
        if record.get("metric") != self.metric:
            return False
        if self.model is not None and record.get("model") != self.model:
            return False
        if self.condition is not None and record.get("condition") != self.condition:
            return False
        return record.get("layer") == self.layer if self.layer is not None else readout


@dataclass
class GateOutcome:
    """One gate checked on one record."""

    task: str
    model: str
    layer: str
    metric: str
    condition: str | None
    value: float
    status: str  # pass | fail | new
    bound: str
    ci_low: float = math.nan
    ci_high: float = math.nan
    detail: str = ""

    def message(self) -> str:
        """`lfw · vgg16-face · classifier.5: accuracy_kfold 0.912 < min 0.950 (95% CI 0.90–0.92)`."""
        metric = self.metric + (f"[{self.condition}]" if self.condition else "")
        text = f"{self.task} · {self.model} · {self.layer}: {metric} {_fmt(self.value)} {self.detail or self.bound}"
        if math.isfinite(self.ci_low) and math.isfinite(self.ci_high):
            text += f" (95% CI {self.ci_low:.2f}–{self.ci_high:.2f})"
        return text


def _fmt(value: float) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) and math.isfinite(value) else "nan"


def parse_thresholds(
    entries: list[dict[str, Any]], valid_metrics: tuple[str, ...] | list[str], where: str = "", exact: bool = False
) -> list[Threshold]:
    """Validate a task's `thresholds = [{ metric = ..., min = ..., max = ... }]` (`exact`: the task's `fars` are
    known, so only their `tar_at_far_*` ids are valid)."""
    out = []
    for i, entry in enumerate(entries):
        key = f"{where} thresholds[{i}]".strip()
        unknown = set(entry) - {"metric", "min", "max", "model", "layer", "condition"}
        if unknown:
            raise ConfigError(
                f"unknown key(s) {sorted(unknown)}; a threshold has metric, min, max, model, layer, condition", key=key
            )
        metric = entry.get("metric")
        if not known_metric(metric, valid_metrics, exact=exact):
            close = difflib.get_close_matches(str(metric), list(valid_metrics), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"unknown metric {metric!r} for this task; valid metrics: {', '.join(valid_metrics)}.{hint}", key=key
            )
        low, high = entry.get("min"), entry.get("max")
        if low is None and high is None:
            raise ConfigError(f"threshold on '{metric}' needs 'min' and/or 'max'", key=key)
        for name, bound in (("min", low), ("max", high)):
            if bound is not None and not isinstance(bound, (int, float)):
                raise ConfigError(f"'{name}' must be a number, got {bound!r}", key=key)
        if low is not None and high is not None and low > high:
            raise ConfigError(f"threshold on '{metric}': min {low} is greater than max {high}", key=key)
        out.append(
            Threshold(
                metric=str(metric),
                min=low,
                max=high,
                model=entry.get("model"),
                layer=entry.get("layer"),
                condition=entry.get("condition"),
            )
        )
    return out


def known_metric(metric: Any, valid: tuple[str, ...] | list[str], exact: bool = False) -> bool:
    """Is `metric` one of `valid`, or of a family one of them belongs to (`tar_at_far_<far>` unless `exact`,
    `rank<k>`)?"""
    if not isinstance(metric, str):
        return False
    families: list[tuple[str, Callable[[str], bool]]] = [("rank", lambda m: RANK.match(m) is not None)]
    if not exact:
        families.append(("tar_at_far_", lambda m: m.startswith("tar_at_far_")))
    return metric in valid or any(test(metric) and any(test(v) for v in valid) for _, test in families)


def expectations(expect: Mapping[str, tuple[str, float]]) -> list[Threshold]:
    """`expect={"auc": (">=", 0.9)}` → thresholds (on the readout layer)."""
    out = []
    for metric, (op, bound) in expect.items():
        if op not in OPERATORS:
            raise ConfigError(f"expect[{metric!r}]: operator must be one of {', '.join(OPERATORS)}, got {op!r}")
        side = OPERATORS[op]
        out.append(
            Threshold(
                metric=metric, min=float(bound) if side == "min" else None, max=float(bound) if side == "max" else None
            )
        )
    return out


def check_thresholds(records: list[dict[str, Any]], thresholds: list[Threshold]) -> list[GateOutcome]:
    """Every threshold against every record it applies to (readout layer unless it names a layer)."""
    outcomes = []
    for threshold in thresholds:
        for record in records:
            if not threshold.applies(record, bool(record.get("readout"))):
                continue
            value = float(record["value"])
            failed = []
            if threshold.min is not None and not value >= threshold.min:
                failed.append(f"< min {_fmt(threshold.min)}")
            if threshold.max is not None and not value <= threshold.max:
                failed.append(f"> max {_fmt(threshold.max)}")
            bound = " and ".join(
                f"{k} {_fmt(v)}" for k, v in (("min", threshold.min), ("max", threshold.max)) if v is not None
            )
            outcomes.append(_outcome(record, "fail" if failed else "pass", bound, "; ".join(failed)))
    return outcomes


def _outcome(record: dict[str, Any], status: str, bound: str, detail: str = "") -> GateOutcome:
    return GateOutcome(
        task=str(record.get("task")),
        model=str(record.get("model")),
        layer=str(record.get("layer")),
        metric=str(record.get("metric")),
        condition=record.get("condition") or None,
        value=float(record.get("value", math.nan)),
        status=status,
        bound=bound,
        ci_low=_float(record.get("ci_low")),
        ci_high=_float(record.get("ci_high")),
        detail=detail,
    )


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


# --- baselines ---------------------------------------------------------------------------------
def cell_key(record: dict[str, Any]) -> str:
    """`task|model|layer|metric|condition`; a missing condition (None, NaN, '') is spelled '' everywhere."""
    return "|".join(_key_text(record.get(k)) for k in ("task", "model", "layer", "metric", "condition"))


def _key_text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def baseline_payload(
    records: list[dict[str, Any]], run_info: dict[str, Any] | None = None, cells_of: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    """The JSON a `--facebench-save-baseline` writes: every metric with its CI and provenance (the record's,
    and its cell's: weights, kwargs, preprocessing, precision, pairs_sha256; `cells_of` are the cell payloads)."""
    provenance = {f"{c.get('task')}|{c.get('model')}": cell_provenance(c) for c in cells_of}
    cells = {}
    for record in records:
        of_cell = provenance.get(f"{record.get('task')}|{record.get('model')}", {})
        value = _float(record.get("value"))
        cells[cell_key(record)] = {
            "value": value if math.isfinite(value) else None,
            "ci_low": _none_if_nan(record.get("ci_low")),
            "ci_high": _none_if_nan(record.get("ci_high")),
            "protocol": record.get("protocol"),
            "target": _none_if_nan(record.get("target")),
            "provenance": {**{k: record.get(k) for k in PROVENANCE_KEYS if record.get(k) is not None}, **of_cell},
        }
    return {
        "format": BASELINE_FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "run": {k: (run_info or {}).get(k) for k in ("git_commit", "grid", "versions")},
        "cells": cells,
    }


def _none_if_nan(value: Any) -> float | None:
    number = _float(value)
    return number if math.isfinite(number) else None


def load_baseline(path: Path) -> dict[str, Any]:
    """Read and validate a baseline file; errors name the file and what was expected."""
    if not path.is_file():
        raise FacebenchError(f"baseline file not found: {path} (write one with --facebench-save-baseline)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FacebenchError(
            f"baseline file {path} is not valid JSON ({exc}); expected a file written by --facebench-save-baseline"
        ) from None
    if not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT or not isinstance(data.get("cells"), dict):
        raise FacebenchError(
            f'baseline file {path} is not a facebench baseline (expected "format": '
            f'"{BASELINE_FORMAT}" and a "cells" table)'
        )
    for key, cell in data["cells"].items():
        _check_baseline_cell(path, key, cell)
    return data


def _check_baseline_cell(path: Path, key: str, cell: Any) -> None:
    """A baseline cell is a table whose `value` (and CI bounds, target) are finite numbers or null (null: not
    measurable in the baseline run). Anything else would crash the comparison or pass it silently."""
    where = f"baseline file {path}: cell {key!r}"
    if not isinstance(cell, dict):
        raise FacebenchError(f'{where} is a {type(cell).__name__}; expected a table with a numeric "value"')
    for name in ("value", "ci_low", "ci_high", "target"):
        value = cell.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise FacebenchError(
                f"{where}: {name} is {json.dumps(value)} ({type(value).__name__}); expected a number, or null when "
                f"the metric could not be measured (rewrite the file with --facebench-save-baseline)"
            )
        if not math.isfinite(value):
            raise FacebenchError(
                f"{where}: {name} is {value}; expected a finite number, or null when the metric could not be "
                f"measured (rewrite the file with --facebench-save-baseline)"
            )


def compare_to_baseline(
    records: list[dict[str, Any]],
    baseline: dict[str, Any],
    *,
    max_drop: float = 0.01,
    tolerances: dict[str, float] | None = None,
    gate_ci: bool = False,
    readout_only: bool = True,
    provenance: dict[str, Any] | None = None,
) -> tuple[list[GateOutcome], list[str]]:
    """Gate each directed metric against the baseline. Returns outcomes and like-for-like warnings.

    A drop (in the metric's bad direction; for a `target` metric, moving away from its declared target, e.g.
    the human value) larger than the tolerance fails; with `gate_ci`, only when the baseline value also lies
    outside the current CI. Cells absent from the baseline are `new`.
    """
    outcomes, warnings = [], []
    cells = baseline["cells"]
    for record in records:
        metric = str(record.get("metric"))
        value, target = _float(record.get("value")), _none_if_nan(record.get("target"))
        if badness(metric, 0.0, target) is None or (readout_only and not record.get("readout")):
            continue
        key = cell_key(record)
        old = cells.get(key)
        if old is None:
            outcomes.append(_outcome(record, "new", "not in baseline", "new (not in baseline)"))
            continue
        if old.get("value") is None:
            outcomes.append(_outcome(record, "new", "baseline null", "not compared (the baseline holds no value)"))
            continue
        tolerance = (tolerances or {}).get(str(record["metric"]), max_drop)
        drop = _drop(metric, old["value"], value, target)
        low, high = _float(record.get("ci_low")), _float(record.get("ci_high"))
        within_noise = math.isfinite(low) and math.isfinite(high) and low <= old["value"] <= high
        regressed = drop > tolerance and not (gate_ci and within_noise)
        sign = {True: "<", False: ">", None: "further from the target than"}[metric_info(metric).higher_is_better]
        detail = (
            f"{sign} baseline {_fmt(old['value'])} by {abs(drop):.3f} (tolerance {tolerance:.3f}"
            f"{', baseline inside the CI' if within_noise and gate_ci else ''})"
        )
        outcomes.append(
            _outcome(
                record, "fail" if regressed else "pass", f"baseline {_fmt(old['value'])}", detail if regressed else ""
            )
        )
        current = {**record, **(provenance or {})}  # the cell's provenance (kwargs, pairs_sha256) with the record's
        changed = [k for k, v in old.get("provenance", {}).items() if current.get(k) is not None and current[k] != v]
        if changed:
            warnings.append(f"{key}: not like-for-like with the baseline ({', '.join(changed)} differ)")
    return outcomes, warnings


def _drop(metric: str, old: float, new: float, target: float | None) -> float:
    """How much worse `new` is than `old` (negative: better), by the metric's direction and target."""
    before, after = badness(metric, old, target), badness(metric, new, target)
    return math.nan if before is None or after is None else after - before


# --- offline comparison of two runs -------------------------------------------------------------
def register_saved_metrics(run_json: Path) -> None:
    """Make the metric directions and task types (headline, figures, axes) a results dir recorded in its run.json
    known (the task classes not imported)."""
    from .reading import read_run

    try:
        run = read_run(run_json.parent)
        saved = run.get("metrics") or {}
        learn({m: MetricInfo(str(v["display"]), v.get("direction")) for m, v in saved.items()})
        learn_task_types(run.get("task_types"))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return  # an older or damaged run.json: the built-in vocabulary still applies


def load_run(path: Path) -> dict[str, dict[str, Any]]:
    """Cells of a result dir (its results.csv) or of a baseline JSON file, keyed by `cell_key`."""
    from .reading import read_results

    if path.is_dir():
        frame = read_results(_results_dir(path))
        register_saved_metrics(path / "run.json")
        return {
            cell_key(r): {
                "value": _float(r.get("value")),
                "readout": bool(r.get("readout")),
                "metric": r.get("metric"),
                "target": _none_if_nan(r.get("target")),
            }
            for r in frame.to_dict("records")
        }
    data = load_baseline(_baseline_file(path))
    return {
        key: {
            "value": _float(cell.get("value")),
            "readout": True,
            "metric": key.split("|")[3],
            "target": _none_if_nan(cell.get("target")),
        }
        for key, cell in data["cells"].items()
    }


def _results_dir(path: Path) -> Path:
    if not (path / "results.csv").is_file():
        raise FacebenchError(f"{path} has no results.csv; expected a --facebench-out directory or a baseline file")
    return path


def _baseline_file(path: Path) -> Path:
    if not path.exists():
        raise FacebenchError(
            f"{path} does not exist; expected a --facebench-out directory (with results.csv) or a baseline JSON file"
        )
    return path


def load_provenance(path: Path) -> dict[str, dict[str, Any]]:
    """`task|model` → what its numbers were computed from (weights, kwargs, preprocessing, precision,
    pairs_sha256), from a results dir's per-cell records or a baseline file's cells."""
    from .reading import read_records

    if path.is_dir():
        return {
            f"{c.get('task')}|{c.get('model')}": cell_provenance(c)
            for r in read_records(path)
            for c in r.get("cells", [])
        }
    found: dict[str, dict[str, Any]] = {}
    for key, cell in load_baseline(_baseline_file(path))["cells"].items():
        task, model = key.split("|")[:2]
        found.setdefault(f"{task}|{model}", dict(cell.get("provenance") or {}))
    return found


def provenance_warnings(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> list[str]:
    """'task · model: not like-for-like (kwargs, pairs_sha256 differ)' for each cell both sides describe."""
    lines = []
    for cell in sorted(set(old) & set(new)):
        keys = [k for k in PROVENANCE_KEYS if k in old[cell] and k in new[cell] and old[cell][k] != new[cell][k]]
        if keys:
            lines.append(f"{cell.replace('|', ' · ')}: not like-for-like ({', '.join(keys)} differ)")
    return lines


def compare_runs(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]], max_drop: float = 0.01):
    """A DataFrame of changes between two runs with a status per cell: regression, improvement, same,
    new or removed (directed metrics only; descriptive ones are listed as changed/same)."""
    import pandas as pd

    rows = []
    for key in sorted(set(old) | set(new)):
        task, model, layer, metric, condition = key.split("|")
        a, b = old.get(key, {}).get("value"), new.get(key, {}).get("value")
        target = new.get(key, {}).get("target", old.get(key, {}).get("target"))
        if a is None or b is None:
            status = "new" if a is None else "removed"
            change = math.nan
        else:
            change = b - a
            drop = _drop(metric, a, b, target)
            if not math.isfinite(drop):
                status = "same" if abs(change) <= max_drop else "changed"
            elif drop > max_drop:
                status = "regression"
            elif drop < -max_drop:
                status = "improvement"
            else:
                status = "same"
        rows.append(
            {
                "task": task,
                "model": model,
                "layer": layer,
                "metric": metric,
                "condition": condition or None,
                "old": a,
                "new": b,
                "change": change,
                "status": status,
            }
        )
    return pd.DataFrame(
        rows, columns=["task", "model", "layer", "metric", "condition", "old", "new", "change", "status"]
    )


@dataclass
class GateSettings:
    """What the plugin's options say about baselines."""

    baseline: dict[str, Any] | None = None
    max_drop: float = 0.01
    gate_ci: bool = False


def apply_gates(
    records: list[dict[str, Any]],
    thresholds: list[Threshold],
    settings: GateSettings,
    tolerances: dict[str, float] | None = None,
    provenance: dict[str, Any] | None = None,
) -> tuple[list[str], list[str]]:
    """Check thresholds and the baseline for one cell; mark each record's `gate` (pass, fail, new or none)
    and `gate_bound`. Returns the failure messages (all of them) and like-for-like warnings."""
    outcomes = check_thresholds(records, thresholds)
    warnings: list[str] = []
    if settings.baseline is not None:
        against, warnings = compare_to_baseline(
            records,
            settings.baseline,
            max_drop=settings.max_drop,
            tolerances=tolerances,
            gate_ci=settings.gate_ci,
            provenance=provenance,
        )
        outcomes += against
    by_key: dict[str, list[GateOutcome]] = {}
    for outcome in outcomes:
        key = "|".join(
            str(x) for x in (outcome.task, outcome.model, outcome.layer, outcome.metric, outcome.condition or "")
        )
        by_key.setdefault(key, []).append(outcome)
    for record in records:
        found = by_key.get(cell_key(record), [])
        statuses = {o.status for o in found}
        record["gate"] = (
            "fail" if "fail" in statuses else "pass" if "pass" in statuses else "new" if "new" in statuses else "none"
        )
        record["gate_bound"] = "; ".join(o.bound for o in found) or None
    return [o.message() for o in outcomes if o.status == "fail"], warnings
