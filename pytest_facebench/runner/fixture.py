"""The `facebench` fixture object: evaluate a cell and record metrics for the reports."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..engine.evaluate import evaluate_cached
from ..engine.model import BaseModel
from ..errors import FacebenchError
from ..grid.config import explicit_fars, valid_metrics
from ..outputs.gates import GateFailure, apply_gates, expectations, parse_thresholds
from ..outputs.results import Metric, metric_record
from ..outputs.schema import cell_provenance
from ..tasks.base import BaseTask

if TYPE_CHECKING:
    import pytest

    from .session import FacebenchSession


class Facebench:
    """Per-test recorder. Everything recorded travels on the test report to the controller."""

    def __init__(self, session: FacebenchSession, node: pytest.Item):
        self._session = session
        self._node = node
        self.cells: list[dict[str, Any]] = []
        self.custom: list[dict[str, Any]] = []

    def evaluate(
        self, model: BaseModel, task: BaseTask, expect: dict[str, tuple[str, float]] | None = None
    ) -> pd.DataFrame:
        """Embed the task's images with the model, score every extracted layer, record and return the
        metrics (one row per layer × metric).

        Gates run here, so a regression fails this test: the task's grid `thresholds`, `expect=`
        (e.g. `{"auc": (">=", 0.9)}`, also as `@pytest.mark.facebench_expect(auc=(">=", 0.9))`) and the
        `--facebench-baseline`. Every failing gate is listed; the metrics are recorded either way.
        """
        session = self._session
        with session.terminal():
            result = evaluate_cached(
                lambda: session.engine,
                session.engine_options(),
                session.cell_store,
                model,
                task,
                nodeid=self._node.nodeid,
                warm=session.warm_engine,
            )
        spec = session.task_spec(task.name)  # gate settings come from the grid entry, never from the task object
        thresholds = parse_thresholds(
            spec.thresholds if spec else [],
            valid_metrics(type(task), spec.options if spec else None),
            where=f"task '{task.name}'",
            exact=bool(explicit_fars(spec.options if spec else None)),
        )
        for marker in self._node.iter_markers("facebench_expect"):
            thresholds += expectations(marker.kwargs)
        thresholds += expectations(expect or {})
        failures, notes = apply_gates(
            result.records,
            thresholds,
            self._session.gate_settings,
            spec.tolerances if spec else None,
            provenance=cell_provenance({"records": result.records, "stats": result.stats}),
        )
        for note in notes:
            warnings.warn(f"facebench baseline: {note}", stacklevel=2)
        self.cells.append(result.to_payload())
        if failures:
            raise GateFailure("\n".join(failures))
        return result.frame()

    def record(self, layer: str | None = None, condition: str | None = None, **metrics: float) -> None:
        """Record custom metrics for this cell, e.g. `facebench.record(my_score=0.93)`."""
        callspec = getattr(self._node, "callspec", None)
        params = callspec.params if callspec is not None else {}
        model = getattr(params.get("model"), "name", None)
        task = next((getattr(v, "name", None) for k, v in params.items() if k == "task" or k.endswith("_task")), None)
        for name, value in metrics.items():
            self.custom.append(
                metric_record(
                    Metric(name, _number(name, value), condition=condition, protocol="custom"),
                    model=model,
                    layer=layer or "",
                    task=task or self._node.name,
                    task_type="custom",
                    nodeid=self._node.nodeid,
                )
            )

    def payload(self) -> dict[str, Any]:
        return {"cells": self.cells, "custom": self.custom}


def _number(name: str, value: Any) -> float:
    """A float from a Python, numpy or 0-d torch number; anything else is a clear error."""
    try:
        if isinstance(value, (str, bytes, bool)):
            raise TypeError
        return float(value)
    except (TypeError, ValueError):
        raise FacebenchError(
            f"facebench.record({name}=...): expected a number, got {type(value).__name__} {value!r}"
        ) from None
