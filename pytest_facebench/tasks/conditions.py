"""Condition averages (`conditions`): the mean distance of the pairs of each condition, with a CI.

Optionally `human_effect = { same_identity = 0.21, different_identity = 0.83 }`: human values per
condition on the model's scale (use `normalize = true` when the human values are normalized too). Each
such condition then also gets `human_effect` (the human value; the note gives the model's) and
`effect_vs_human` (model mean − human value, with the model's CI shifted by the human value).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..engine.distances import Distance, distance_name
from ..errors import ConfigError, DataError
from ..outputs.metrics import TARGET, Axis, MetricInfo
from ..outputs.results import Metric
from ..stats import weighted_mean
from .base import BaseTask, CellValues, bootstrap_of, paired_row


class ConditionedAverageDistances(BaseTask):
    """The mean distance per condition; with `normalize = true`, distances are first divided by the largest
    distance of the task (per layer), which makes layers comparable. CIs resample pairs within each
    condition (the normalizing maximum is held fixed)."""

    type = "conditions"
    headline = "mean_distance"
    metrics = {
        "mean_distance": MetricInfo("Mean distance", TARGET),
        "human_effect": MetricInfo("Human effect", None),
        "effect_vs_human": MetricInfo("Model − human effect", TARGET),
    }
    axes = {
        "mean_distance": Axis("mean {distance}", when={"normalized": "mean {distance} (normalized by the max)"}),
        "effect_vs_human": Axis("model − human effect", chance=0.0, chance_label="no effect"),
    }
    roles = {"condition": "condition"}

    def __init__(
        self,
        name: str,
        pairs: str | Path,
        images: str | Path,
        distance: Distance = "cosine",
        columns: dict[str, str] | None = None,
        normalize: bool = False,
        conditions: list[str] | None = None,
        human_effect: dict[str, float] | None = None,
        n_boot: int = 1000,
        seed: int = 0,
        ci: float = 0.95,
    ):
        super().__init__(name, pairs, images, distance, columns, n_boot=n_boot, seed=seed, ci=ci)
        self.normalize = bool(normalize)
        self.declared = list(conditions) if conditions else None
        if human_effect is not None and (
            not isinstance(human_effect, dict)
            or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in human_effect.values()
            )
        ):
            raise ConfigError(
                f"task '{name}': human_effect must be a table of human values per condition, e.g. "
                f"{{ same_identity = 0.2, different_identity = 0.8 }}; got {human_effect!r}"
            )
        self.human_effect = {str(k): float(v) for k, v in (human_effect or {}).items()}
        self.conditions: list[str] = []
        self.condition_of_pair = np.empty(0, dtype=object)

    def _validate(self, table: pd.DataFrame) -> None:
        values = table[self.columns["condition"]].astype(str).str.strip()
        found = list(dict.fromkeys(values))
        if self.declared is not None:
            absent = [c for c in self.declared if c not in found]
            extra = [c for c in found if c not in self.declared]
            if absent or extra:
                raise DataError(
                    f"{self.pairs_path}: column '{self.columns['condition']}' should hold the declared "
                    f"conditions {self.declared}; missing {absent}, undeclared {extra}"
                )
        self.conditions = self.declared or sorted(found)
        unknown = [c for c in self.human_effect if c not in self.conditions]
        if unknown:
            raise DataError(
                f"task '{self.name}': human_effect names condition(s) {unknown} that {self.pairs_path} "
                f"does not have; its conditions are {self.conditions}"
            )
        self.condition_of_pair = values.to_numpy()

    def metric_label(self, metric: str) -> str | None:
        if metric != "mean_distance":
            return None
        return f"Mean {distance_name(self.distance)} distance" + (" (÷ largest distance)" if self.normalize else "")

    def score(self, distances: np.ndarray) -> list[Metric]:
        values = _scaled(distances, {"normalize": self.normalize})
        protocol = "mean (normalized by max distance)" if self.normalize else "mean"
        masks = {c: self.condition_of_pair == c for c in self.conditions}
        samples = self.bootstrap.samples(
            lambda counts: {c: weighted_mean(values[m], counts[:, m]) for c, m in masks.items()},
            len(values),
            strata=self.condition_of_pair,
        )
        unit = "pairs within each condition"
        out = []
        for condition in self.conditions:
            chosen = values[masks[condition]]
            metric = self.metric(
                "mean_distance",
                float(np.mean(chosen)),
                samples.get(condition),
                unit=unit,
                condition=condition,
                protocol=protocol,
                n=int(len(chosen)),
                extra=(
                    {"human_effect": self.human_effect[condition], "target": self.human_effect[condition]}
                    if condition in self.human_effect
                    else None
                ),
            )
            out.append(metric)
            if condition in self.human_effect:
                out += human_rows(self, metric, self.human_effect[condition], unit, condition=condition)
        return out

    @classmethod
    def compare(cls, a: CellValues, b: CellValues) -> list[dict[str, Any]]:
        """One row per condition with a human value: a paired bootstrap (pairs resampled within each condition,
        the resamples of `score`) of how close each model's mean distance comes to it, `|value − human|`.
        Conditions without a human value have no better side and are not compared."""
        s = a.scoring
        of = np.asarray(s.get("condition_of_pair") or [], dtype=object)
        if len(of) != len(a.values):
            return []
        rows = []
        for condition, human in (s.get("human_effect") or {}).items():
            mask, human = of == condition, float(human)

            def closeness(e: CellValues, mask: np.ndarray = mask, human: float = human) -> float:
                return abs(float(np.mean(_scaled(e.values, s)[mask])) - human)

            def resampled(e: CellValues, counts: np.ndarray, mask: np.ndarray = mask, human: float = human) -> Any:
                return np.abs(weighted_mean(_scaled(e.values, s)[mask], counts[:, mask]) - human)

            row = paired_row(
                "mean_distance",
                a,
                b,
                closeness,
                resampled,
                f"paired bootstrap({bootstrap_of(s).n_boot}, pairs within each condition) of |value − human|",
                strata=of,
            )
            rows.append({**row, "condition": condition, "quantity": f"|value − human| (human {human:.4g})"})
        return rows

    def scoring(self) -> dict[str, Any]:
        return {
            **super().scoring(),
            "condition_of_pair": [str(c) for c in self.condition_of_pair],
            "human_effect": self.human_effect,
            "normalize": self.normalize,
            "unit": "pairs within each condition",
        }


def _scaled(values: np.ndarray, scoring: dict[str, Any]) -> np.ndarray:
    """The distances as `score` averages them: divided by the largest when the task normalizes."""
    values = np.asarray(values, dtype=float)
    scale = float(np.max(values)) if scoring.get("normalize") and len(values) else 1.0
    return values / scale if scale > 0 else values


def human_rows(task: BaseTask, model: Metric, human: float, unit: str, condition: str | None = None) -> list[Metric]:
    """`human_effect` (the declared human value) and `effect_vs_human` (model − human, CI shifted)."""
    diff = model.value - human
    inside = (model.ci_low <= human <= model.ci_high) if np.isfinite(model.ci_low) else None
    where = {
        True: f"; the human value lies inside the model's {task.bootstrap.ci:.0%} CI",
        False: f"; the human value lies outside the model's {task.bootstrap.ci:.0%} CI",
        None: "",
    }[inside]
    extra: dict[str, Any] = {"ci_method": "none (declared value)"}
    return [
        Metric(
            "human_effect",
            human,
            condition=condition,
            protocol=f"declared in the grid ({model.metric})",
            n=model.n,
            note=f"model {model.metric} {model.value:.4g} vs human {human:.4g} (model - human = {diff:+.4g}){where}",
            extra=extra,
        ),
        Metric(
            "effect_vs_human",
            diff,
            condition=condition,
            protocol=f"model {model.metric} - human value",
            ci_low=model.ci_low - human,
            ci_high=model.ci_high - human,
            n=model.n,
            note=f"human {model.metric} = {human:.4g}{where}",
            extra={"ci_method": model.extra.get("ci_method", "none"), "target": 0.0},
        ),
    ]
