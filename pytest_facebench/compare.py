"""Paired comparison of models on the same task: is model A's headline metric really better than B's?

`comparisons_frame(cells)` takes the cell payloads of a run (`CellResult.to_payload()`: model, task,
records, distances and the task's `scoring` facts) and compares every two models that scored the same
rows of a task, each at its readout layer. One row per model pair and metric:

- `accuracy` tasks: `accuracy_kfold` (paired bootstrap of the held-out correctness, thresholds as fit)
  and `auc` (DeLong's test; the CI is diff ± z·SE);
- `correlation`: `correlation` (paired bootstrap over pairs);
- `relative_difference`: `relative_difference` (paired bootstrap, pairs within each group);
- `rsa`: `rsa` (paired bootstrap over stimuli, self-pairs masked);
- `identification`: `rank1` (paired bootstrap over identities).

`conditions` tasks are not compared: their mean distances have no better direction.
Both models are evaluated on the same resamples (the task's `n_boot`, `seed` and `ci`). The
p-value of a paired bootstrap is twice the share of resampled differences on the other side of 0;
`p_holm` adjusts the p-values of one task and metric for the number of model pairs (Holm).
`verdict(row)` turns a row into the sentence a report may print.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import stats
from .metrics import metric_info
from .stats import Bootstrap, paired_result

COLUMNS = ["task", "metric", "model_a", "layer_a", "model_b", "layer_b", "value_a", "value_b", "diff", "ci_low",
           "ci_high", "p_value", "p_holm", "test", "n", "ci_level", "note"]


@dataclass
class _Entry:
    model: str
    layer: str
    values: np.ndarray
    scoring: dict[str, Any]


def comparisons_frame(cells: list[dict[str, Any]]) -> pd.DataFrame:
    """Every two models on the same task and rows, at their readout layers (see the module doc)."""
    tasks: dict[str, dict[str, _Entry]] = {}
    for cell in cells:
        entry = _entry(cell)
        if entry is not None:
            tasks.setdefault(cell["task"], {})[cell["model"]] = entry  # a rerun of a cell replaces it
    rows: list[dict[str, Any]] = []
    for task, entries in tasks.items():
        for a, b in itertools.combinations(entries.values(), 2):
            if a.scoring.get("rows_sha256") != b.scoring.get("rows_sha256") or len(a.values) != len(b.values):
                continue  # not the same pairs (a grid edited between runs): no paired comparison
            compare = COMPARERS[a.scoring["type"]]
            for row in compare(a, b):
                rows.append({"task": task, "model_a": a.model, "layer_a": a.layer, "model_b": b.model,
                             "layer_b": b.layer, "n": len(a.values), "ci_level": float(a.scoring.get("ci", 0.95)),
                             "note": "", **row})
    frame = pd.DataFrame(rows, columns=COLUMNS)
    if not frame.empty:
        frame["p_holm"] = frame.groupby(["task", "metric"], sort=False)["p_value"].transform(holm)
    return frame


def _entry(cell: dict[str, Any]) -> _Entry | None:
    scoring = cell.get("scoring") or {}
    if scoring.get("type") not in COMPARERS:
        return None
    readout = [r["layer"] for r in cell.get("records", []) if r.get("readout")]
    if not readout:
        return None
    column = (scoring.get("columns") or {}).get(readout[0])
    if column is None or column not in cell.get("distances", {}):
        return None
    values = np.asarray([np.nan if v is None else v for v in cell["distances"][column]], dtype=float)
    return _Entry(cell["model"], readout[0], values, scoring)


def _bootstrap(scoring: dict[str, Any]) -> Bootstrap:
    return Bootstrap(int(scoring.get("n_boot", 1000)), int(scoring.get("seed", 0)), float(scoring.get("ci", 0.95)))


def _paired(metric: str, a: _Entry, b: _Entry, estimate: Callable[[_Entry], float],
            resampled: Callable[[_Entry, np.ndarray], np.ndarray], test: str,
            groups: Any = None, strata: Any = None) -> dict[str, Any]:
    """A paired bootstrap row: `estimate(entry)` for the point, `resampled(entry, counts)` → (b,)."""
    boot = _bootstrap(a.scoring)
    value_a, value_b = float(estimate(a)), float(estimate(b))
    row = {"metric": metric, "value_a": value_a, "value_b": value_b, "diff": value_a - value_b, "ci_low": np.nan,
           "ci_high": np.nan, "p_value": np.nan, "test": test}
    if not (np.isfinite(value_a) and np.isfinite(value_b)):
        return {**row, "note": "undefined for at least one model"}
    if not boot.enabled:
        return {**row, "note": "n_boot = 0: no interval or p-value"}
    n = len(a.values)
    groups = None if groups is None else np.asarray(groups)
    strata = None if strata is None else np.asarray(strata)
    samples = boot.samples(lambda counts: {"a": resampled(a, counts), "b": resampled(b, counts)}, n,
                           groups=groups, strata=strata)
    diff, low, high, p = paired_result(value_a, value_b, samples["a"], samples["b"], boot.ci)
    return {**row, "diff": diff, "ci_low": low, "ci_high": high, "p_value": p}


def _accuracy(a: _Entry, b: _Entry) -> list[dict[str, Any]]:
    s = a.scoring
    labels = np.asarray(s["labels"], dtype=bool)
    rows = []
    if s.get("folds") is not None:
        folds = np.asarray(s["folds"], dtype=np.int64)
        correct = {e.model: stats.kfold_accuracy(e.values, labels, folds).correct for e in (a, b)}
        unit = s.get("unit", "pairs")
        rows.append(_paired(
            "accuracy_kfold", a, b,
            lambda e: float(np.mean(_per_fold(correct[e.model], folds))),
            lambda e, counts: stats.fold_accuracy(correct[e.model], folds, counts)[0],
            f"paired bootstrap({_bootstrap(s).n_boot}, {unit}) of held-out correctness; {s.get('kfold_protocol', '')}",
            groups=s.get("groups")))
    result = stats.delong_test(a.values, b.values, labels)
    z = stats.normal_quantile(0.5 + float(s.get("ci", 0.95)) / 2)
    rows.append({"metric": "auc", "value_a": result.auc_a, "value_b": result.auc_b, "diff": result.diff,
                 "ci_low": result.diff - z * result.se, "ci_high": result.diff + z * result.se,
                 "p_value": result.p_value, "test": "DeLong"})
    return rows


def _per_fold(correct: np.ndarray, folds: np.ndarray) -> np.ndarray:
    return np.array([correct[folds == f].mean() for f in np.unique(folds)])


def _correlation(a: _Entry, b: _Entry) -> list[dict[str, Any]]:
    s = a.scoring
    human = np.asarray(s["human"], dtype=float)
    method = s.get("method", "pearson")

    def resampled(entry: _Entry, counts: np.ndarray) -> np.ndarray:
        return stats.resampled_correlation(entry.values, human, counts, method)

    return [_paired("correlation", a, b, lambda e: stats.correlation(e.values, human, method).r, resampled,
                    f"paired bootstrap({_bootstrap(s).n_boot}, pairs) of {method} r")]


def _relative_difference(a: _Entry, b: _Entry) -> list[dict[str, Any]]:
    s = a.scoring
    in_a = np.asarray(s["in_a"], dtype=bool)
    return [_paired("relative_difference", a, b,
                    lambda e: float(stats.relative_difference(e.values[in_a], e.values[~in_a])),
                    lambda e, counts: stats.group_effects(e.values, in_a, counts)["relative_difference"],
                    f"paired bootstrap({_bootstrap(s).n_boot}, pairs within each group)", strata=s["strata"])]


def _rsa(a: _Entry, b: _Entry) -> list[dict[str, Any]]:
    s = a.scoring
    human = np.asarray(s["human"], dtype=float)
    n, method = int(s["n_stimuli"]), s.get("method", "spearman")
    boot = _bootstrap(s)
    known = np.isfinite(human)
    values = [stats.correlation(e.values[known], human[known], method).r for e in (a, b)]
    row = {"metric": "rsa", "value_a": values[0], "value_b": values[1], "diff": values[0] - values[1],
           "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan,
           "test": f"paired bootstrap({boot.n_boot}, stimuli, self-pairs masked) of {method} RDM correlation"}
    if not all(np.isfinite(values)) or not boot.enabled:
        return [{**row, "note": "undefined for at least one model" if boot.enabled else "n_boot = 0"}]
    squares = [_square(e.values, n) for e in (a, b)]
    human_square = _square(human, n)
    samples = [stats.stimulus_bootstrap(sq, human_square, method, boot.n_boot, boot.seed) for sq in squares]
    diff, low, high, p = paired_result(values[0], values[1], samples[0], samples[1], boot.ci)
    return [{**row, "diff": diff, "ci_low": low, "ci_high": high, "p_value": p}]


def _square(condensed: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((n, n))
    iu = np.triu_indices(n, k=1)
    out[iu] = condensed
    out.T[iu] = condensed
    return out


def _identification(a: _Entry, b: _Entry) -> list[dict[str, Any]]:
    s = a.scoring
    return [_paired("rank1", a, b, lambda e: float(np.mean(e.values <= 1)),
                    lambda e, counts: stats.weighted_mean((e.values <= 1).astype(float), counts),
                    f"paired bootstrap({_bootstrap(s).n_boot}, identities) of rank-1 hits", groups=s.get("groups"))]


COMPARERS: dict[str, Callable[[_Entry, _Entry], list[dict[str, Any]]]] = {
    "accuracy": _accuracy, "correlation": _correlation, "relative_difference": _relative_difference,
    "rsa": _rsa, "identification": _identification,
}


def holm(p: pd.Series) -> pd.Series:
    """Holm-adjusted p-values (NaN stays NaN and does not count)."""
    values = p.to_numpy(dtype=float)
    out = np.full(len(values), np.nan)
    finite = np.flatnonzero(np.isfinite(values))
    m = len(finite)
    order = finite[np.argsort(values[finite], kind="stable")]
    running = 0.0
    for i, index in enumerate(order):
        running = max(running, min(1.0, (m - i) * values[index]))
        out[index] = running
    return pd.Series(out, index=p.index)


def _number(value: float) -> str:
    return f"{value:.3f}".replace("-", "−")


def _interval(low: float, high: float) -> str:
    joint = "–" if low >= 0 and high >= 0 else " to "
    return f"{_number(low)}{joint}{_number(high)}"


def _p(value: float) -> str:
    if not math.isfinite(value):
        return "p=n/a"
    return "p<0.001" if value < 0.001 else f"p={value:.2g}" if value < 0.01 else f"p={value:.3g}"


def verdict(row: dict[str, Any] | pd.Series) -> str:
    """'A beats B on auc (Δ=0.031, 95% CI 0.012–0.050, DeLong p=0.002)', or 'no significant difference
    between A and B on auc (...)'. Significant: the CI excludes 0 and the (Holm-adjusted when present)
    p-value is below 1 − ci_level. Δ is the winner minus the loser; for lower-is-better metrics the
    winner is the model with the lower value."""
    get = row.get
    a, b, metric = str(get("model_a")), str(get("model_b")), str(get("metric"))
    diff, low, high = float(get("diff", np.nan)), float(get("ci_low", np.nan)), float(get("ci_high", np.nan))
    p = float(get("p_value", np.nan))
    p_holm = float(get("p_holm", np.nan)) if get("p_holm") is not None else np.nan
    level = float(get("ci_level", 0.95) or 0.95)
    test = "DeLong" if str(get("test", "")).startswith("DeLong") else "bootstrap"
    p_used = p_holm if math.isfinite(p_holm) else p
    significant = (math.isfinite(low) and math.isfinite(high) and (low > 0 or high < 0)
                   and math.isfinite(p_used) and p_used < 1 - level)
    lower_wins = metric_info(metric).higher_is_better is False
    a_wins = (diff < 0) if lower_wins else (diff > 0)
    if significant and not a_wins:  # report Δ as winner − loser
        diff, low, high = -diff, -high, -low
    p_text = _p(p) + (f", Holm {_p(p_holm).removeprefix('p')}" if math.isfinite(p_holm) and p_holm != p else "")
    detail = (f"Δ={_number(diff)}, {100 * level:.0f}% CI {_interval(low, high)}, {test} {p_text}"
              if math.isfinite(diff) else "undefined")
    if not significant:
        return f"no significant difference between {a} and {b} on {metric} ({detail})"
    winner, loser = (a, b) if a_wins else (b, a)
    return f"{winner} beats {loser} on {metric} ({detail})"
