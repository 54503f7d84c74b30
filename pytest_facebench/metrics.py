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

The vocabulary of task types (`register_task_type`): each declared task class's headline metric and figure
kinds by type name, so a results dir can be reported without importing the classes again.

Families resolved by pattern: `tar_at_far_<far>` (e.g. `tar_at_far_0.001`) and `rank<k>` (e.g. `rank10`, the
rows of a CMC curve): both higher is better.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .registries import Registry

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


@dataclass(frozen=True)
class TaskTypeInfo:
    headline: str
    figures: tuple[str, ...] = ()


_TASK_TYPES: dict[str, TaskTypeInfo] = {}


def register_task_type(type_name: str, headline: str, figures: tuple[str, ...] | list[str]) -> None:
    """Record a task type's headline and figure kinds (called for each task class; the last one wins)."""
    if type_name:
        _TASK_TYPES[type_name] = TaskTypeInfo(headline, tuple(figures))


def task_type_info(type_name: str) -> TaskTypeInfo | None:
    return _TASK_TYPES.get(type_name)


def remember_scoring(scoring: object) -> None:
    """Learn a cell's metric vocabulary and task type from its `scoring` (`BaseTask.scoring()`), so a process
    that never imported the task class (the xdist controller, `report`, `compare`) names and ranks it."""
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
    if isinstance(scoring.get("type"), str) and scoring["type"] not in _TASK_TYPES:
        register_task_type(scoring["type"], str(scoring.get("headline") or ""), list(scoring.get("figures") or ()))


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
