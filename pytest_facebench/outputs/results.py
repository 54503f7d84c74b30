"""Result records: plain JSON-able dicts that travel on test reports, and the DataFrame views of them."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from .schema import RESULT_COLUMNS  # the columns of results.csv: the run folder's schema

NAN = float("nan")


@dataclass
class Metric:
    """One number a task produced for one layer."""

    metric: str
    value: float
    condition: str | None = None
    protocol: str = ""
    ci_low: float = NAN
    ci_high: float = NAN
    n: int | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class CellResult:
    """What one model × task evaluation produced."""

    model: str
    task: str
    records: list[dict[str, Any]]
    distances: pd.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)
    scoring: dict[str, Any] = field(default_factory=dict)  # what compare.py needs (task.scoring() + columns)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame.from_records(self.records)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> CellResult:
        """The inverse of `to_payload` (for results read back from the cell cache)."""
        return cls(
            model=payload["model"],
            task=payload["task"],
            records=[dict(r) for r in payload["records"]],
            distances=pd.DataFrame(payload["distances"]),
            stats=dict(payload.get("stats", {})),
            scoring=dict(payload.get("scoring", {})),
        )

    def to_payload(self) -> dict[str, Any]:
        """Plain JSON-able data for the test report (travels from xdist workers to the controller)."""
        return {
            "model": self.model,
            "task": self.task,
            "records": self.records,
            "stats": self.stats,
            "distances": {c: [_plain(v) for v in self.distances[c]] for c in self.distances.columns},
            "scoring": self.scoring,
        }


def metric_record(metric: Metric, **context: Any) -> dict[str, Any]:
    """A flat, JSON-able record: the metric plus its context (model, layer, task, provenance...)."""
    record = {
        **context,
        "metric": metric.metric,
        "value": _plain(metric.value),
        "condition": metric.condition,
        "protocol": metric.protocol,
        "ci_low": _plain(metric.ci_low),
        "ci_high": _plain(metric.ci_high),
        "n": metric.n,
        "note": metric.note,
    }
    record.update({k: _plain(v) for k, v in metric.extra.items()})
    return record


def _plain(value: Any) -> Any:
    """numpy scalars → Python; NaN stays NaN (float)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return NAN
    return value


def results_frame(
    records: list[dict[str, Any]], model_order: list[str] | None = None, task_order: list[str] | None = None
) -> pd.DataFrame:
    """Long table: one row per model × layer × task × metric (× condition), deterministic order."""
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    for column in RESULT_COLUMNS:
        if column not in frame:
            frame[column] = None
    extra = sorted(c for c in frame.columns if c not in RESULT_COLUMNS)  # a fixed order, whichever record comes first
    frame = frame[RESULT_COLUMNS + extra]
    keys = {"model": model_order, "task": task_order}
    sort_cols = []
    for column in ("model", "task"):
        order = keys[column] or sorted(frame[column].dropna().unique())
        rank = {name: i for i, name in enumerate(dict.fromkeys(order))}  # a duplicate keeps its first place
        frame[f"_{column}_rank"] = frame[column].map(lambda v, r=rank: r.get(v, len(r)))
        sort_cols.append(f"_{column}_rank")
    frame["_layer_index"] = pd.to_numeric(frame["layer_index"], errors="coerce").fillna(-1)
    frame = frame.sort_values(sort_cols + ["_layer_index"], kind="stable")
    return frame.drop(columns=sort_cols + ["_layer_index"]).reset_index(drop=True)


def summary_frame(results: pd.DataFrame) -> pd.DataFrame:
    """Wide table (summary.csv): one row per model·layer, per metric a column `task / metric[ / condition]`
    and its CI columns `<key> [ci_low]`, `<key> [ci_high]`. The same table as `python -m pytest_facebench
    table DIR --format csv --layer all --metrics all` (`build_table` + `table_frame`)."""
    if results.empty:
        return pd.DataFrame(columns=["model", "layer"])
    return table_frame(build_table(results, metrics=[ALL_METRICS], layer="all", references=False))


# --- the wide view: summary.csv and `python -m pytest_facebench table` ---------------------------------
# The one builder of wide tables. `build_table` picks the rows (a layer per model, or every layer) and the
# columns (metrics) of the long results table; `table_frame` lays a `Table` out as plain CSV columns, which
# is what summary.csv holds (`summary_frame`); `report.paper` renders the same `Table` as Markdown or LaTeX.
TABLE_LAYERS = ("readout", "best", "all")
ALL_METRICS = "all"
HUMAN_ROW = "human"
CEILING_ROWS = {"_ceiling_low": "noise ceiling (low)", "_ceiling_high": "noise ceiling (high)"}
HUMAN_METRIC = "human_effect"
_DECLARED_FOR = re.compile(r"declared in the grid \(([^)]+)\)")


def column_key(task: str, metric: str, condition: str = "") -> str:
    """A wide table's column name: `task / metric` or `task / metric / condition` (metric ids may hold dots)."""
    return " / ".join(part for part in (task, metric, condition) if part)


@dataclass(frozen=True)
class TableColumn:
    task: str
    metric: str
    condition: str = ""
    label: str = field(default="", compare=False)  # the header shown, when not the key (e.g. "LFW")

    @property
    def key(self) -> str:
        return column_key(self.task, self.metric, self.condition)

    @property
    def title(self) -> str:
        return self.label or self.key


@dataclass
class TableCell:
    value: float
    ci_low: float = NAN
    ci_high: float = NAN
    n: int | None = None
    layer: str = ""
    target: float | None = None  # the value a `target` metric should be close to (e.g. the human value)
    delta: float | None = None  # a published value's row: the reproduced value beside it minus this one
    source: str = ""  # a published value's source (paper, URL)
    sd: float | None = None  # an aggregate row's SD across the swept entries (`value` their mean, the CI its t CI)
    runs: str = ""  # an aggregate row's count: "5 seeds"


@dataclass
class TableRow:
    label: str  # the model, or a reference row's label ("noise ceiling (low)", "human")
    layer: str
    cells: dict[str, TableCell]  # by column key; a missing key is a cell the row does not have
    reference: bool = False
    published: bool = False  # a model's published values ("<model> (paper)"), a reference row kept with its model
    aggregate: bool = False  # mean ± SD across a swept entry's variants (`vgg16[seed:0]`, `vgg16[seed:1]`, ...)
    readout: bool = False  # (`layer="all"`) the model's readout layer (of at least one of the row's tasks)


@dataclass
class Table:
    columns: list[TableColumn]
    rows: list[TableRow]
    layer: str  # how model rows were chosen: readout | best | all
    layer_column: bool | None = None  # a `layer` column (None: unless `best`, whose cells name their layer)
    unit: str = ""  # "%": values (and CIs, deltas) are percentages of the fractions results.csv holds

    @property
    def model_rows(self) -> list[TableRow]:
        return [row for row in self.rows if not row.reference]

    @property
    def has_layer_column(self) -> bool:
        return self.layer != "best" if self.layer_column is None else self.layer_column


def _text(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "1.0", "yes")
    return bool(value) and _text(value) != ""


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return NAN


def _finite(value: Any) -> bool:
    return math.isfinite(_number(value))


def _table_records(results: pd.DataFrame) -> list[dict[str, Any]]:
    """The results rows with stable types (from memory or read back from results.csv), readout rows marked."""
    rows: list[dict[str, Any]] = []
    if len(results) == 0:  # (an empty frame may repeat a column name: no records, and no warning about it)
        return rows
    for record in results.to_dict("records"):
        rows.append(
            {
                "model": _text(record.get("model")),
                "layer": _text(record.get("layer")),
                "layer_index": _number(record.get("layer_index")),
                "task": _text(record.get("task")),
                "task_type": _text(record.get("task_type")),
                "metric": _text(record.get("metric")),
                "condition": _text(record.get("condition")),
                "value": _number(record.get("value")),
                "ci_low": _number(record.get("ci_low")),
                "ci_high": _number(record.get("ci_high")),
                "n": int(_number(record.get("n"))) if _finite(record.get("n")) else None,
                "readout": _flag(record.get("readout")),
                "headline": _flag(record.get("headline")),
                "target": _number(record.get("target")),
                "human_effect": _number(record.get("human_effect")),
                "protocol": _text(record.get("protocol")),
            }
        )
    # each model × task's readout layer: the `readout` rows, else its deepest layer
    declared: set[tuple[str, str]] = {(r["model"], r["task"]) for r in rows if r["readout"]}
    deepest: dict[tuple[str, str], float] = {}
    for r in rows:
        depth = r["layer_index"] if math.isfinite(r["layer_index"]) else -1.0
        key = (r["model"], r["task"])
        deepest[key] = max(deepest.get(key, -1.0), depth)
    for r in rows:
        key = (r["model"], r["task"])
        depth = r["layer_index"] if math.isfinite(r["layer_index"]) else -1.0
        r["_readout"] = r["readout"] if key in declared else depth == deepest[key]
    return [r for r in rows if r["model"] and r["metric"]]


def _is_reference(metric: str) -> bool:
    return metric == HUMAN_METRIC or any(metric.endswith(suffix) for suffix in CEILING_ROWS)


def _headline_columns(rows: list[dict[str, Any]], universe: list[TableColumn]) -> list[TableColumn]:
    """Each task's headline metric: its rows flagged `headline`, else its type's declared headline, else its
    first metric without a condition."""
    from .metrics import task_type_info

    flagged = {(r["task"], r["metric"]) for r in rows if r["headline"]}
    types = {r["task"]: r["task_type"] for r in rows}
    chosen: dict[str, str] = {}
    for column in universe:
        if column.task in chosen:
            continue
        metrics = [c.metric for c in universe if c.task == column.task]
        marked = [m for m in metrics if (column.task, m) in flagged]
        info = task_type_info(types.get(column.task, ""))
        plain = [c.metric for c in universe if c.task == column.task and not c.condition]
        if marked:
            chosen[column.task] = marked[0]
        elif info is not None and info.headline in metrics:
            chosen[column.task] = info.headline
        else:
            chosen[column.task] = (plain or metrics)[0]
    return [c for c in universe if chosen.get(c.task) == c.metric]


def _select_columns(universe: list[TableColumn], metrics: list[str]) -> list[TableColumn]:
    """The columns named by metric ids (`accuracy`), `task/metric` or `task/metric/condition`, in the order
    named; `all` names every column. An unknown name raises `ConfigError` with the closest known name."""
    import difflib

    from ..errors import ConfigError

    chosen: list[TableColumn] = []
    for name in metrics:
        parts = [p.strip() for p in name.split("/")]
        if parts == [ALL_METRICS]:
            found = list(universe)
        elif len(parts) == 1:
            found = [c for c in universe if c.metric == parts[0]]
        elif len(parts) == 2:
            found = [c for c in universe if (c.task, c.metric) == (parts[0], parts[1])]
        elif len(parts) == 3:
            found = [c for c in universe if (c.task, c.metric, c.condition) == tuple(parts)]
        else:
            found = []
        if not found:
            known = list(dict.fromkeys([c.metric for c in universe] + [column_key(c.task, c.metric) for c in universe]))
            known += [c.key for c in universe if c.condition]
            close = difflib.get_close_matches(" / ".join(parts), known, n=1) or difflib.get_close_matches(
                parts[-1], [c.metric for c in universe], n=1
            )
            hint = (
                f"did you mean '{close[0]}'?"
                if close
                else "metrics: " + ", ".join(dict.fromkeys(c.metric for c in universe))
            )
            raise ConfigError(f"unknown metric '{name}'; {hint}")
        chosen += [c for c in found if c not in chosen]
    return chosen


def _reference_of(
    record: dict[str, Any], universe: list[TableColumn], headline: dict[str, str], by_task: dict[str, list[dict]]
) -> tuple[str, TableColumn] | None:
    """(row label, the column it belongs in) for a noise-ceiling or human-value row, else None. A ceiling
    `<m>_ceiling_low` bounds metric `<m>` of its task, else the task's headline; a human value belongs to the
    metric whose rows carry it (`human_effect` column), else the one its protocol names, else the headline."""
    metric, task, condition = record["metric"], record["task"], record["condition"]
    metrics = {c.metric for c in universe if c.task == task}
    label, of = "", ""
    for suffix, name in CEILING_ROWS.items():
        if metric.endswith(suffix):
            label, of = name, metric.removesuffix(suffix)
            break
    if metric == HUMAN_METRIC:
        label = HUMAN_ROW
        carriers = [
            r["metric"]
            for r in by_task.get(task, [])
            if r["condition"] == condition and r["metric"] != HUMAN_METRIC and math.isfinite(r["human_effect"])
        ]
        named = _DECLARED_FOR.search(record["protocol"])
        of = carriers[0] if carriers else named.group(1) if named else ""
    if not label:
        return None
    if of not in metrics:
        of = headline.get(task, "")
    for column in (TableColumn(task, of, condition), TableColumn(task, of)):
        if column in universe:
            return label, column
    return None


def _universe(rows: list[dict[str, Any]]) -> list[TableColumn]:
    """Every (task, metric, condition) of the results, tasks in their order, metrics in the order reported."""
    task_rank: dict[str, int] = {}
    for r in rows:
        task_rank.setdefault(r["task"], len(task_rank))
    first: dict[TableColumn, int] = {}
    for i, r in enumerate(rows):
        first.setdefault(TableColumn(r["task"], r["metric"], r["condition"]), i)
    return sorted(first, key=lambda c: (task_rank[c.task], first[c]))


def _table_cell(r: dict[str, Any], target: float | None = None) -> TableCell:
    return TableCell(r["value"], r["ci_low"], r["ci_high"], r["n"], r["layer"], target)


def _model_rows(
    rows: list[dict[str, Any]], columns: list[TableColumn], layer: str, human: dict[str, float]
) -> list[TableRow]:
    """The model rows of a wide table (see `build_table`); `human` holds each column's human value (the target
    of `target` metrics without their own)."""
    from .metrics import badness

    by_cell: dict[tuple[str, str, TableColumn], dict[str, Any]] = {}
    for r in rows:
        by_cell.setdefault((r["model"], r["layer"], TableColumn(r["task"], r["metric"], r["condition"])), r)

    def cell(r: dict[str, Any], column: TableColumn) -> TableCell:
        target = next((t for t in (r["target"], r["human_effect"]) if math.isfinite(t)), human.get(column.key))
        return _table_cell(r, target)

    models = list(dict.fromkeys(r["model"] for r in rows))
    layers: dict[str, list[str]] = {}
    for r in sorted(rows, key=lambda r: r["layer_index"] if math.isfinite(r["layer_index"]) else -1.0):
        if r["layer"] not in layers.setdefault(r["model"], []):
            layers[r["model"]].append(r["layer"])
    readout: dict[tuple[str, TableColumn], dict[str, Any]] = {}
    for r in rows:
        if r["_readout"]:
            readout.setdefault((r["model"], TableColumn(r["task"], r["metric"], r["condition"])), r)

    out: list[TableRow] = []
    for model in models:
        if layer == "all":
            for name in layers[model]:
                found = {c.key: by_cell[(model, name, c)] for c in columns if (model, name, c) in by_cell}
                cells = {c.key: cell(found[c.key], c) for c in columns if c.key in found}
                if cells:
                    is_readout = any(r["_readout"] for r in found.values())
                    out.append(TableRow(model, name, cells, readout=is_readout))
            continue
        cells = {}
        for column in columns:
            chosen: dict[str, Any] | None = readout.get((model, column))
            if layer == "best":
                scored = []
                for name in layers[model]:
                    candidate = by_cell.get((model, name, column))
                    if candidate is None or not math.isfinite(candidate["value"]):
                        continue
                    bad = badness(column.metric, candidate["value"], cell(candidate, column).target)
                    if bad is not None:
                        scored.append((bad, candidate))
                if scored:  # ties: the readout layer, else the shallowest
                    chosen = min(scored, key=lambda pair: (pair[0], not pair[1]["_readout"]))[1]
            if chosen is not None:
                cells[column.key] = cell(chosen, column)
        used = dict.fromkeys(c.layer for c in cells.values() if c.layer)
        if cells:
            out.append(TableRow(model, "" if layer == "best" else ", ".join(used), cells))
    return out


def build_table(
    results: pd.DataFrame, metrics: list[str] | None = None, layer: str = "readout", references: bool = True
) -> Table:
    """The wide table of `results` (results.csv as a frame): rows = models at their readout layer (`readout`),
    at the best layer per column by the metric's direction (`best`; the cells say which layer), or one row
    per model·layer (`all`); columns = each task's headline metric (`metrics=None`), the named ones, or every
    one (`["all"]`). With `references`, noise ceilings and declared human values of the shown columns follow
    as rows labelled "noise ceiling (low)", "noise ceiling (high)" and "human" (unless shown as columns)."""
    from ..errors import ConfigError

    if layer not in TABLE_LAYERS:
        raise ConfigError(f"layer must be one of {', '.join(TABLE_LAYERS)}; got {layer!r}")
    rows = _table_records(results)
    universe = _universe(rows)
    headline_list = _headline_columns(rows, universe)
    headline = {c.task: c.metric for c in headline_list}
    columns = headline_list if metrics is None else _select_columns(universe, metrics)
    shown = set(columns)

    by_task: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_task.setdefault(r["task"], []).append(r)

    # reference values (the same for every model and layer): the first model's readout row wins
    unique: dict[TableColumn, dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: not r["_readout"]):
        if _is_reference(r["metric"]):
            unique.setdefault(TableColumn(r["task"], r["metric"], r["condition"]), r)
    refs: dict[str, dict[str, dict[str, Any]]] = {}  # label → column key → record
    for r in unique.values():
        found = _reference_of(r, universe, headline, by_task)
        if found is not None:
            refs.setdefault(found[0], {}).setdefault(found[1].key, r)
    human = {key: r["value"] for key, r in refs.get(HUMAN_ROW, {}).items()}

    out = with_aggregates(_model_rows(rows, columns, layer, human), columns)
    if references:
        keys = {c.key for c in columns}
        for label in [*CEILING_ROWS.values(), HUMAN_ROW]:
            cells = {}
            for key, r in refs.get(label, {}).items():
                column = TableColumn(r["task"], r["metric"], r["condition"])
                if key in keys and column not in shown:
                    target = next((t for t in (r["target"], r["human_effect"]) if math.isfinite(t)), human.get(key))
                    cells[key] = _table_cell(r, target)
                    cells[key].layer = ""
            if cells:
                out.append(TableRow(label, "", cells, reference=True))
    return Table(columns, out, layer)


def with_aggregates(rows: list[TableRow], columns: list[TableColumn]) -> list[TableRow]:
    """After the rows of a swept entry's variants (`gridfile.swept_name`: `vgg16[seed:0]`, `vgg16[seed:1]`...),
    one row `vgg16 (across seeds)` per layer: per column the mean across the variants, their SD (ddof 1) and
    the t-interval of the mean (95%), labelled with the count (`5 seeds`). Variance across seeds, not the
    bootstrap CI of one run."""
    from ..grid.gridfile import swept_name

    groups: dict[tuple[str, str], list[TableRow]] = {}
    keys: dict[tuple[str, str], set[str]] = {}
    for row in rows:
        parsed = None if row.reference else swept_name(row.label)
        if parsed is not None:
            groups.setdefault((parsed[0], row.layer), []).append(row)
            keys.setdefault((parsed[0], row.layer), set()).update(k for k, _ in parsed[1])
    last = {id(members[-1]): group for group, members in groups.items() if len(members) >= 2}
    out = []
    for row in rows:
        out.append(row)
        group = last.get(id(row))
        if group is None:
            continue
        swept = sorted(keys[group])
        cells = {}
        for column in columns:
            values = [r.cells[column.key].value for r in groups[group] if column.key in r.cells]
            values = [v for v in values if math.isfinite(v)]
            if len(values) >= 2:
                cells[column.key] = aggregate_cell(values, _runs(swept, len(values)))
        across = f"{swept[0]}s" if len(swept) == 1 and not swept[0].endswith("s") else " × ".join(swept)
        if cells:
            out.append(TableRow(f"{group[0]} (across {across})", group[1], cells, aggregate=True))
    return out


def _runs(keys: list[str], count: int) -> str:
    if len(keys) == 1:
        return f"{count} {keys[0] if keys[0].endswith('s') or count == 1 else keys[0] + 's'}"
    return f"{count} runs"


def aggregate_cell(values: list[float], runs: str) -> TableCell:
    """Mean, SD (ddof 1) and the 95% t-interval of the mean of `values` (at least two)."""
    from scipy.stats import t

    k = len(values)
    mean = math.fsum(values) / k
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (k - 1))
    half = float(t.ppf(0.975, k - 1)) * sd / math.sqrt(k)
    return TableCell(mean, mean - half, mean + half, k, sd=sd, runs=runs)


# --- the face-recognition layout: `table DIR --layout face-recognition` and report.html's section --------
ACCURACY_KFOLD = "accuracy_kfold"
TAR_AT_1E4 = "tar_at_far_0.0001"
# (display name, aliases compared without case, spaces, '-', '_' or '.', the metric papers report), in the
# order papers print them
FACE_RECOGNITION_BENCHMARKS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("LFW", ("lfw",), ACCURACY_KFOLD),
    ("CFP-FP", ("cfpfp",), ACCURACY_KFOLD),
    ("AgeDB-30", ("agedb30", "agedb"), ACCURACY_KFOLD),
    ("CALFW", ("calfw",), ACCURACY_KFOLD),
    ("CPLFW", ("cplfw",), ACCURACY_KFOLD),
    ("IJB-B", ("ijbb",), TAR_AT_1E4),
    ("IJB-C", ("ijbc",), TAR_AT_1E4),
)
PUBLISHED_SUFFIX = " (paper)"  # the row of a model's published values: "<model> (paper)"
REFERENCE_ROW = "reference"  # a published value for no model in particular (without a `label`)


def face_recognition_benchmark(task: str) -> tuple[str, str] | None:
    """(display name, conventional metric) of a task named like a face-recognition benchmark (`lfw`, `CFP-FP`,
    `agedb_30`, `IJB-C`, ...), else None."""
    key = re.sub(r"[\s_.\-]", "", task.lower())
    for display, aliases, metric in FACE_RECOGNITION_BENCHMARKS:
        if key in aliases:
            return display, metric
    return None


def far_text(metric: str) -> str:
    """`tar_at_far_0.0001` → `1e-4` (the FAR as papers write it)."""
    value = _number(metric.removeprefix("tar_at_far_"))
    if not math.isfinite(value) or value <= 0:
        return metric.removeprefix("tar_at_far_")
    mantissa, exponent = f"{value:e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def face_recognition_columns(results: pd.DataFrame) -> list[TableColumn]:
    """The face-recognition columns of a run: a task named like a known benchmark (`face_recognition_benchmark`)
    with its conventional metric (k-fold accuracy; TAR@FAR=1e-4 for IJB-B/C), else any task whose type declares a
    `face_recognition_metric` (`face_recognition_types`: `accuracy_kfold` of an accuracy task, `tar_at_far_0.0001`
    of a template_verification one); such a task without that metric shows its headline. Known benchmarks first in the papers' order (LFW, CFP-FP, AgeDB-30, CALFW, CPLFW,
    IJB-B, IJB-C), then the other tasks in the grid's order under their own names. A TAR column's label names
    its FAR (`IJB-C (TAR@FAR=1e-4)`), another metric than the benchmark's its display name; two tasks of one
    benchmark keep their own names."""
    rows = _table_records(results)
    return _face_recognition_columns(rows, _headlines(rows))


def _headlines(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Each task's headline metric (as `build_table` chooses it)."""
    return {c.task: c.metric for c in _headline_columns(rows, _universe(rows))}


def face_recognition_types() -> dict[str, str]:
    """Task type → the metric a face-recognition table gives for its tasks, as the known types declare it
    (`BaseTask.face_recognition_metric`: k-fold accuracy for pair verification, TAR@FAR=1e-4 for IJB templates)."""
    from .metrics import known_task_types, task_type_info

    return {
        kind: info.face_recognition_metric
        for kind in known_task_types()
        if (info := task_type_info(kind)) is not None and info.face_recognition_metric
    }


def _face_recognition_columns(rows: list[dict[str, Any]], headline: dict[str, str]) -> list[TableColumn]:
    from .metrics import display_name

    declared = face_recognition_types()

    universe = _universe(rows)
    types = {r["task"]: r["task_type"] for r in rows}
    plain = {(c.task, c.metric) for c in universe if not c.condition}
    chosen: list[tuple[int, TableColumn, str]] = []  # (benchmark rank, column, benchmark)
    order = {b[0]: i for i, b in enumerate(FACE_RECOGNITION_BENCHMARKS)}
    for task in dict.fromkeys(c.task for c in universe):
        benchmark = face_recognition_benchmark(task)
        kind = types.get(task, "")
        preferred = benchmark[1] if benchmark else declared.get(kind)
        if preferred is None:
            continue
        if (task, preferred) in plain:
            metric = preferred
        elif kind in declared and (task, headline.get(task, "")) in plain:
            metric = headline[task]
        else:
            continue
        name = benchmark[0] if benchmark else ""
        chosen.append((order.get(name, len(order)), TableColumn(task, metric), name))
    chosen.sort(key=lambda item: item[0])  # stable: the grid's order within a benchmark and after them
    names = [name for _, _, name in chosen]
    columns = []
    for _, column, name in chosen:
        base = name if name and names.count(name) == 1 else column.task
        conventional = next((b[2] for b in FACE_RECOGNITION_BENCHMARKS if b[0] == name), ACCURACY_KFOLD)
        if column.metric.startswith("tar_at_far_"):
            label = f"{base} (TAR@FAR={far_text(column.metric)})"
        elif column.metric != conventional:
            label = f"{base} ({display_name(column.metric)})"
        else:
            label = base
        columns.append(replace(column, label=label))
    return columns


def _percent(value: float) -> float:
    """A fraction as a percentage (12 significant digits: no float noise such as 99.38000000000001)."""
    return float(f"{value * 100:.12g}") if math.isfinite(value) else value


def _published_percent(value: float) -> float:
    """A published rate as a percentage: papers print 99.83 (%), a reference may also say 0.9983."""
    return _percent(value) if abs(value) <= 1 else value


def build_face_recognition_table(
    results: pd.DataFrame, references: list[dict[str, Any]] | None = None, layer: str = "readout"
) -> Table:
    """The paper-style face-recognition table: rows = models (at their readout layer, the best layer per
    column, or every layer: as `build_table`), columns = `face_recognition_columns`, values and CIs in percent.

    `references` (normalized reference dicts: `{task, model (None: any), metric (None: the task's headline),
    value, layer?, condition?, source?, label?}`, as `report.data.load_references` gives) that match a column
    (its task, its metric, no condition) add rows of published values, in percent (a value up to 1 is taken as
    a fraction): a model's as `<model> (paper)` right below the model's last row, each cell with `delta` =
    the reproduced value (the value the model's row shows, at the reference's `layer` when it names one; with
    `--layer all` the readout layer's) minus the published one, in percentage points; a model the run lacks
    gets its `(paper)` row after the run's models, without a delta; references for no model in particular
    follow at the bottom, one row per `label` (default `reference`)."""
    from ..errors import ConfigError

    if layer not in TABLE_LAYERS:
        raise ConfigError(f"layer must be one of {', '.join(TABLE_LAYERS)}; got {layer!r}")
    rows = _table_records(results)
    headline = _headlines(rows)
    columns = _face_recognition_columns(rows, headline)
    model_rows = [_in_percent(row) for row in _model_rows(rows, columns, layer, {})]
    table = Table(columns, model_rows, layer, layer_column=layer == "all", unit="%")
    if not references or not columns:
        return table
    reproduced = _Reproduced.of(rows, model_rows)
    published, general = _published_cells(references, columns, headline, layer, reproduced)
    return replace(table, rows=_with_published(model_rows, published, general))


def _in_percent(row: TableRow) -> TableRow:
    """A model row with its values and CIs in percent."""
    return replace(
        row,
        cells={
            key: replace(c, value=_percent(c.value), ci_low=_percent(c.ci_low), ci_high=_percent(c.ci_high))
            for key, c in row.cells.items()
        },
    )


@dataclass
class _Reproduced:
    """The reproduced values (in percent, no condition) that published values are compared with."""

    at_layer: dict[tuple[str, str, str], float]  # (model, layer, column key) → value
    at_readout: dict[tuple[str, str], float]  # (model, column key) → the readout layer's value
    shown: dict[tuple[str, str], float]  # (row label, column key) → the value the table's model row shows

    @classmethod
    def of(cls, rows: list[dict[str, Any]], model_rows: list[TableRow]) -> _Reproduced:
        """From results.csv's records and the table's model rows."""
        at_layer: dict[tuple[str, str, str], float] = {}
        at_readout: dict[tuple[str, str], float] = {}
        for r in rows:
            if r["condition"]:
                continue
            key = column_key(r["task"], r["metric"])
            at_layer.setdefault((r["model"], r["layer"], key), _percent(r["value"]))
            if r["_readout"]:
                at_readout.setdefault((r["model"], key), _percent(r["value"]))
        shown = {(row.label, key): cell.value for row in model_rows for key, cell in row.cells.items()}
        return cls(at_layer, at_readout, shown)

    def value(self, model: str, key: str, ref_layer: Any, layer: str) -> float:
        """The model's value in column `key` beside a published one: at the reference's layer when it names
        one, else (`layer` all) the readout layer's, else the value its row shows; NaN when there is none."""
        if ref_layer:
            return self.at_layer.get((model, str(ref_layer), key), NAN)
        if layer == "all":
            return self.at_readout.get((model, key), NAN)
        return self.shown.get((model, key), NAN)


def _published_cells(
    references: list[dict[str, Any]],
    columns: list[TableColumn],
    headline: dict[str, str],
    layer: str,
    reproduced: _Reproduced,
) -> tuple[dict[str, dict[str, TableCell]], dict[str, dict[str, TableCell]]]:
    """The references' cells in percent, the first per column: by model (with their delta to the reproduced
    value), and those of no model in particular by row label."""
    published: dict[str, dict[str, TableCell]] = {}  # model → column key → cell
    general: dict[str, dict[str, TableCell]] = {}  # label → column key → cell
    for ref in references:
        if ref.get("condition"):
            continue
        column = next(
            (
                c
                for c in columns
                if c.task == ref.get("task") and (ref.get("metric") or headline.get(c.task)) == c.metric
            ),
            None,
        )
        value = _number(ref.get("value"))
        if column is None or not math.isfinite(value):
            continue
        cell = TableCell(_published_percent(value), source=str(ref.get("source") or ""))
        model = ref.get("model")
        if not model:
            general.setdefault(str(ref.get("label") or REFERENCE_ROW), {}).setdefault(column.key, cell)
            continue
        value_here = reproduced.value(model, column.key, ref.get("layer"), layer)
        if math.isfinite(value_here):
            cell.delta = float(f"{value_here - cell.value:.12g}")
        published.setdefault(str(model), {}).setdefault(column.key, cell)
    return published, general


def _with_published(
    model_rows: list[TableRow],
    published: dict[str, dict[str, TableCell]],
    general: dict[str, dict[str, TableCell]],
) -> list[TableRow]:
    """The model rows, each model's `(paper)` row below its last one, the `(paper)` rows of models the run
    lacks, then the rows of references for no model in particular."""
    published = dict(published)
    out: list[TableRow] = []
    for i, row in enumerate(model_rows):
        out.append(row)
        last = i + 1 == len(model_rows) or model_rows[i + 1].label != row.label
        if last and row.label in published:
            out.append(TableRow(row.label + PUBLISHED_SUFFIX, "", published.pop(row.label), True, True))
    out += [TableRow(model + PUBLISHED_SUFFIX, "", cells, True, True) for model, cells in published.items()]
    out += [TableRow(label, "", cells, reference=True) for label, cells in general.items()]
    return out


def table_frame(table: Table, n: bool = False) -> pd.DataFrame:
    """A `Table` as plain CSV columns: `model`, `layer` (not with `best`), then per column (its title: the key,
    or the face-recognition label) `<col>`, `<col> [ci_low]`, `<col> [ci_high]`, with `n` also `<col> [n]`,
    with `best` also `<col> [layer]`, when the table has published values also `<col> [delta]` and
    `<col> [source]`; values unrounded, reference rows labelled in `model`. A `layer="all"` table has a
    `readout` column after `layer` (True on each model's readout layer). A `[ci_low]`, `[ci_high]` or `[n]`
    column empty in every row (a metric without CIs, such as a declared human value) is left out."""
    cells = [cell for row in table.rows for cell in row.cells.values()]
    fields = ["ci_low", "ci_high"] + (["n"] if n else []) + (["layer"] if table.layer == "best" else [])
    fields += ["sd"] if any(cell.sd is not None for cell in cells) else []
    fields += ["delta", "source"] if any(cell.delta is not None or cell.source for cell in cells) else []
    names = ["model"] + (["layer"] if table.has_layer_column else [])
    for column in table.columns:
        names += [column.title] + [f"{column.title} [{f}]" for f in fields]
    records = []
    for row in table.rows:
        record: dict[str, Any] = {"model": row.label, "layer": row.layer}
        for column in table.columns:
            found = row.cells.get(column.key)
            record[column.title] = NAN if found is None else found.value
            for f in fields:
                value = None if found is None else getattr(found, f)
                record[f"{column.title} [{f}]"] = NAN if value is None or value == "" else value
        records.append(record)
    if table.layer == "all" and table.has_layer_column:
        names.insert(2, "readout")
        for row, record in zip(table.rows, records):
            record["readout"] = row.readout
    frame = pd.DataFrame.from_records(records, columns=names) if records else pd.DataFrame(columns=names)
    if records:
        siblings = [f"{c.title} [{f}]" for c in table.columns for f in fields if f in ("ci_low", "ci_high", "n")]
        frame = frame.drop(columns=[name for name in siblings if frame[name].isna().all()])
    for f in ("n",):
        for column in table.columns:
            name = f"{column.title} [{f}]"
            if name in frame:
                frame[name] = frame[name].astype("Int64")
    return frame
