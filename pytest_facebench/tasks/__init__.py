"""The built-in task types (each class declares its `type` name; `registry.BUILTIN_TASK_MODULES`, registered in
`registry.TASK_TYPES`, maps the names a grid's `type` key takes to them, beside entry points and 'file.py:Class'
references)."""

from __future__ import annotations

from .base import BaseTask
from .conditions import ConditionedAverageDistances
from .correlation import CorrelationTask
from .identification import IdentificationTask
from .relative_difference import RelativeDifferenceTask
from .rsa import RsaTask
from .template_verification import TemplateVerificationTask
from .verification import AccuracyTask

__all__ = [
    "BaseTask",
    "AccuracyTask",
    "CorrelationTask",
    "ConditionedAverageDistances",
    "RelativeDifferenceTask",
    "RsaTask",
    "IdentificationTask",
    "TemplateVerificationTask",
]
