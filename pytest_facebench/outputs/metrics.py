"""The vocabulary of metrics: a metric id (snake_case in files, thresholds and the API) has a display name and
a direction. Task types declare their metrics (`BaseTask.metrics`, a dict id → `MetricInfo`); declaring a
task class registers them here, so reports, gates and comparisons look them up by id.

The declarations are `METRICS`, a `registries.Registry`. One id, one meaning: a second task class declaring an
id with another display name or direction is a `ConfigError` naming the id and both classes (the same spec again
is fine, and so is a class declared again from the same place, as a reloaded module does). What other processes or saved runs report (`remember_scoring`,
`learn`) fills in ids no class here declared and never overrides a declaration.

Directions:
- `higher`: higher is better (accuracy, AUC, r);
- `lower`: lower is better (EER);
- `target`: closer to a reference value is better (effects and condition means: the human value when one
  is declared); with none, the value has no better side;
- `None`: descriptive (thresholds, ceilings, human values), never ranked or gated by direction.

The vocabulary of task types (`register_task_type`, `TaskTypeInfo`): what each declared task class says for
reports by type name (headline metric, figure kinds, `Axis` of its metrics on figures, face-recognition metric),
so a results dir can be reported without importing the classes again (`remember_scoring`, `learn_task_types`).

Families resolved by pattern: `tar_at_far_<far>` (e.g. `tar_at_far_0.001`) and `rank<k>` (e.g. `rank10`, the
rows of a CMC curve): both higher is better.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..registries import Registry

HIGHER, LOWER, TARGET = "higher", "lower", "target"
DIRECTIONS = (HIGHER, LOWER, TARGET, None)


@dataclass(frozen=True)
class MetricInfo:
    display: str
    direction: str | None = None  # higher | lower | target | None (see the module doc)

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}; got {self.direction!r}")

    @property
    def higher_is_better(self) -> bool | None:
        """True / False for a directed metric, None for target and descriptive ones (no winner by value)."""
        return {HIGHER: True, LOWER: False}.get(self.direction or "")


def _spec(info: MetricInfo) -> str:
    return f"({info.display!r}, {info.direction or 'no direction'})"


METRICS: Registry[MetricInfo] = Registry(  # declared by the task classes of this process
    "metric",
    describe=lambda entry: _spec(entry.value),
    clash_hint="expected one spec per metric id (rename one of them)",
)
_LEARNED: dict[str, MetricInfo] = {}  # from other processes' scorings and saved runs
RANK = re.compile(r"^rank(\d+)$")


def register(metrics: dict[str, MetricInfo], declared_by: str) -> None:
    """Declare metric ids; `declared_by` names the place (module.Class). An id that another place declared
    with a different display name or direction is a `ConfigError` naming the id and both places."""
    for metric, info in metrics.items():
        METRICS.register(metric, info, origin=declared_by)


def learn(metrics: dict[str, MetricInfo]) -> None:
    """Metric ids reported by another process or a saved run: known unless declared here (never an error)."""
    for metric, info in metrics.items():
        _LEARNED.setdefault(metric, info)


def metric_info(metric: str) -> MetricInfo:
    """A registered metric, a family member (`tar_at_far_<far>`, `rank<k>`), else an undirected custom metric."""
    declared = METRICS.get(metric)
    if declared is not None:
        return declared
    if metric in _LEARNED:
        return _LEARNED[metric]
    if metric.startswith("tar_at_far_"):
        return MetricInfo(f"TAR@FAR={metric.removeprefix('tar_at_far_')}", HIGHER)
    if metric.startswith("tpir_at_fpir_"):
        return MetricInfo(f"TPIR@FPIR={metric.removeprefix('tpir_at_fpir_')}", HIGHER)
    match = RANK.match(metric)
    if match:
        return MetricInfo(f"Rank-{int(match.group(1))}", HIGHER)
    return MetricInfo(metric, None)


CHANCE_RULES = ("far", "k/N")


@dataclass(frozen=True)
class Axis:
    """How figures show one metric of a task type, declared on the task class (`BaseTask.axes`: a metric id, or a
    pattern such as 'rank*', → Axis). The report fills the label in from the results rows: `{display}` (the
    metric's display name), `{distance}` ('cosine distance'), `{method}` ('Pearson r', 'Spearman ρ' or
    'Kendall τ': the correlation the protocol of the type's headline names), `{protocol}` (the metric's own; a line
    left empty is dropped) and `{k}` (the number that ends the id: rank5 → 5).

    - `label`: the axis text ('' shows the display name); `when`: a word of the metric's protocol → the label to
      use instead (`{"normalized": "mean {distance} (normalized by the max)"}`).
    - `chance`: the chance or no-effect level, drawn as a dashed line: a number, 'far' (the FAR a
      `tar_at_far_<far>` id names) or 'k/N' (rank-k over the gallery size the rows state); `chance_label` names it
      in the legend ('chance (0.5)', 'no effect (0)').
    - `ceiling`: the metrics whose values bound the noise ceiling (low, high), drawn as a band beside it."""

    label: str = ""
    when: Mapping[str, str] = field(default_factory=dict)
    chance: float | str | None = None
    chance_label: str = "chance"
    ceiling: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.chance, str) and self.chance not in CHANCE_RULES:
            raise ValueError(f"chance must be a number, one of {CHANCE_RULES} or None; got {self.chance!r}")
        if self.ceiling is not None and len(self.ceiling) != 2:
            raise ValueError(f"ceiling must name two metrics (low, high); got {self.ceiling!r}")

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "when": dict(self.when),
            "chance": self.chance,
            "chance_label": self.chance_label,
            "ceiling": list(self.ceiling) if self.ceiling else None,
        }

    @classmethod
    def from_json(cls, data: Any) -> Axis | None:
        """An Axis from `as_json` (None when `data` is not one: an older or damaged file)."""
        try:
            ceiling = data.get("ceiling")
            return cls(
                str(data.get("label") or ""),
                {str(k): str(v) for k, v in (data.get("when") or {}).items()},
                data.get("chance"),
                str(data.get("chance_label") or "chance"),
                (str(ceiling[0]), str(ceiling[1])) if ceiling else None,
            )
        except (AttributeError, TypeError, ValueError, IndexError):
            return None


@dataclass(frozen=True)
class TaskTypeInfo:
    """What reports need of a task type, declared by its class: the headline metric, the figure kinds it draws
    (`figures`), how its metrics are shown on figure axes (`axes`) and the metric a face-recognition table gives
    for its tasks (`face_recognition_metric`). JSON-able (`as_json`), so it travels with the cells' scoring, to
    plot workers and in run.json: a process that never imports the class reports it the same."""

    headline: str
    figures: tuple[str, ...] = ()
    axes: Mapping[str, Axis] = field(default_factory=dict)
    face_recognition_metric: str = ""

    def axis(self, metric: str) -> Axis | None:
        """The declared Axis of `metric`: by its id, else by the first pattern ('rank*') it matches."""
        if metric in self.axes:
            return self.axes[metric]
        return next((a for key, a in self.axes.items() if "*" in key and fnmatch.fnmatchcase(metric, key)), None)

    def as_json(self) -> dict[str, Any]:
        return {
            "headline": self.headline,
            "figures": list(self.figures),
            "axes": {metric: axis.as_json() for metric, axis in self.axes.items()},
            "face_recognition_metric": self.face_recognition_metric,
        }

    @classmethod
    def from_json(cls, data: Any) -> TaskTypeInfo | None:
        if not isinstance(data, dict):
            return None
        axes = {str(m): a for m, raw in (data.get("axes") or {}).items() if (a := Axis.from_json(raw)) is not None}
        return cls(
            str(data.get("headline") or ""),
            tuple(str(f) for f in data.get("figures") or ()),
            axes,
            str(data.get("face_recognition_metric") or ""),
        )


_TASK_TYPES: dict[str, TaskTypeInfo] = {}


def register_task_type(type_name: str, info: TaskTypeInfo) -> None:
    """Record what a task type declares for reports (called for each task class; the last one wins)."""
    if type_name:
        _TASK_TYPES[type_name] = info


def task_type_info(type_name: str) -> TaskTypeInfo | None:
    return _TASK_TYPES.get(type_name)


def known_task_types() -> list[str]:
    """The names of the task types this process knows (declared or learned)."""
    return list(_TASK_TYPES)


def task_type_vocabulary(types: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """Type name → `TaskTypeInfo.as_json()` of the known types (of `types` only, when given): what `learn_task_types`
    takes back in another process (plot workers) and run.json's `task_types` keeps."""
    wanted = set(types) if types is not None else None
    return {t: info.as_json() for t, info in _TASK_TYPES.items() if wanted is None or t in wanted}


def learn_task_types(vocabulary: object) -> None:
    """Task types another process or a saved run describes (`task_type_vocabulary`): known unless declared here."""
    if not isinstance(vocabulary, dict):
        return
    for type_name, data in vocabulary.items():
        info = TaskTypeInfo.from_json(data)
        if isinstance(type_name, str) and type_name not in _TASK_TYPES and info is not None:
            register_task_type(type_name, info)


def remember_scoring(scoring: object) -> None:
    """Learn a cell's metric vocabulary and task type from its `scoring` (`BaseTask.scoring()`), so a process
    that never imported the task class (the xdist controller, `report`, `compare`) names, ranks and draws it."""
    if not isinstance(scoring, dict):
        return
    declared = scoring.get("metrics")
    if isinstance(declared, dict):
        learn(
            {
                str(metric): MetricInfo(str(info[0]), info[1])
                for metric, info in declared.items()
                if isinstance(info, (list, tuple)) and len(info) == 2 and info[1] in DIRECTIONS
            }
        )
    if isinstance(scoring.get("type"), str):
        learn_task_types({scoring["type"]: scoring})


def badness(metric: str, value: float, target: float | None = None) -> float | None:
    """How bad a value is, on a scale where smaller is better: −value (higher), value (lower), |value − target|
    (target, with a declared target such as a human value); None when the metric has no better side."""
    direction = metric_info(metric).direction
    if direction == HIGHER:
        return -value
    if direction == LOWER:
        return value
    if direction == TARGET and target is not None and math.isfinite(target):
        return abs(value - target)
    return None


def metric_vocabulary() -> dict[str, tuple[str, str | None]]:
    """Every registered metric id → (display, direction): what `remember_scoring` takes back elsewhere."""
    return {
        m: (info.display, info.direction)
        for m, info in {**_LEARNED, **{e.name: e.value for e in METRICS.entries()}}.items()
    }


def display_name(metric: str) -> str:
    return metric_info(metric).display
