"""Task types by name (the `type` key of a grid's `[[tasks]]` entry)."""

from __future__ import annotations

from .base import BaseTask
from .conditions import ConditionedAverageDistances
from .correlation import CorrelationTask
from .identification import IdentificationTask
from .relative_difference import RelativeDifferenceTask
from .rsa import RsaTask
from .verification import AccuracyTask

TASK_TYPES: dict[str, type[BaseTask]] = {
    cls.type: cls
    for cls in (
        AccuracyTask,
        CorrelationTask,
        ConditionedAverageDistances,
        RelativeDifferenceTask,
        RsaTask,
        IdentificationTask,
    )
}

__all__ = [
    "TASK_TYPES",
    "BaseTask",
    "AccuracyTask",
    "CorrelationTask",
    "ConditionedAverageDistances",
    "RelativeDifferenceTask",
    "RsaTask",
    "IdentificationTask",
]
