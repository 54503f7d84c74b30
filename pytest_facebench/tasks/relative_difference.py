"""Relative difference (`relative_difference`): (A − B) / (A + B) of two declared groups' mean distances.

CIs resample pairs within each group independently (stratified bootstrap; the strata are visited in
sorted label order, so swapping the declared order exactly negates the index and its interval).
Cohen's d (A vs B, pooled SD) gets its interval from the same resamples.

Optionally `human_effect = 0.12`: the human value of the index (or of Cohen's d with
`human_effect_metric = "cohens_d"`). The row of that metric then carries a `human_effect` column,
and two rows are added: `human_effect` (the human value; the note compares) and `effect_vs_human`
(model − human, with the model's CI shifted by the human value).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import stats
from ..engine.distances import Distance
from ..errors import ConfigError, DataError
from ..outputs.metrics import TARGET, Axis, MetricInfo
from ..outputs.results import Metric
from .base import BaseTask, CellValues, bootstrap_of, paired_row
from .conditions import human_rows

EFFECT_METRICS = ("relative_difference", "cohens_d")


class RelativeDifferenceTask(BaseTask):
    """The two group means and (mean_A − mean_B) / (mean_A + mean_B), with A and B **declared** in the
    grid (`groups = ["inverted", "upright"]`), never taken from row order. Also Cohen's d (A vs B)."""

    type = "relative_difference"
    headline = "relative_difference"
    metrics = {
        "relative_difference": MetricInfo("Relative Difference", TARGET),
        "cohens_d": MetricInfo("Cohen's d", TARGET),
        "group_mean": MetricInfo("Group Mean", None),
        "human_effect": MetricInfo("Human effect", None),
        "effect_vs_human": MetricInfo("Model − human effect", TARGET),
    }
    figures = ("group_bars",)
    axes = {
        "relative_difference": Axis(
            "relative difference of mean {distance}\n{protocol}", chance=0.0, chance_label="no effect"
        ),
        "cohens_d": Axis("Cohen's d of {distance}", chance=0.0, chance_label="no effect"),
        "group_mean": Axis("mean {distance}", when={"normalized": "mean {distance} (normalized by the max)"}),
        "effect_vs_human": Axis("model − human effect", chance=0.0, chance_label="no effect"),
    }
    roles = {"group": "group"}

    def __init__(
        self,
        name: str,
        pairs: str | Path,
        images: str | Path,
        distance: Distance = "cosine",
        columns: dict[str, str] | None = None,
        groups: list[str] | None = None,
        human_effect: float | None = None,
        human_effect_metric: str = "relative_difference",
        n_boot: int = 1000,
        seed: int = 0,
        ci: float = 0.95,
    ):
        super().__init__(name, pairs, images, distance, columns, n_boot=n_boot, seed=seed, ci=ci)
        if not groups or len(groups) != 2 or groups[0] == groups[1]:
            raise ConfigError(
                f"task '{name}': declare the two groups in order, e.g. groups = ['inverted', "
                f"'upright'] for (inverted − upright) / (inverted + upright); got {groups!r}"
            )
        if human_effect is not None and (
            isinstance(human_effect, bool)
            or not isinstance(human_effect, (int, float))
            or not math.isfinite(human_effect)
        ):
            raise ConfigError(
                f"task '{name}': human_effect must be a finite number (the human value of "
                f"{human_effect_metric}); got {human_effect!r}"
            )
        if human_effect_metric not in EFFECT_METRICS:
            raise ConfigError(
                f"task '{name}': human_effect_metric must be one of {', '.join(EFFECT_METRICS)}; "
                f"got {human_effect_metric!r}"
            )
        self.groups = [str(g) for g in groups]
        self.human_effect = None if human_effect is None else float(human_effect)
        self.human_effect_metric = human_effect_metric
        self.group_of_pair = np.empty(0, dtype=object)

    def _validate(self, table: pd.DataFrame) -> None:
        column = self.columns["group"]
        values = table[column].astype(str).str.strip()
        found = list(dict.fromkeys(values))
        if sorted(found) != sorted(self.groups):
            counts = values.value_counts()
            described = ", ".join(f"'{k}' ({counts[k]} rows)" for k in found)
            raise DataError(
                f"{self.pairs_path}: column '{column}' must hold exactly the two declared groups "
                f"{self.groups}; found {described}"
            )
        self.group_of_pair = values.to_numpy()

    def score(self, distances: np.ndarray) -> list[Metric]:
        d = np.asarray(distances, dtype=float)
        in_a = self.group_of_pair == self.groups[0]
        a, b = d[in_a], d[~in_a]
        samples = self.bootstrap.samples(
            lambda counts: stats.group_effects(d, in_a, counts), len(d), strata=self.group_of_pair
        )
        unit = "pairs within each group"
        label = f"({self.groups[0]} - {self.groups[1]}) / ({self.groups[0]} + {self.groups[1]})"
        out = [
            self.metric(
                "relative_difference",
                float(stats.relative_difference(a, b)),
                samples.get("relative_difference"),
                unit=unit,
                protocol=label,
                n=len(d),
            ),
            self.metric(
                "group_mean",
                float(np.mean(a)),
                samples.get("mean_a"),
                unit=unit,
                condition=self.groups[0],
                protocol="mean",
                n=len(a),
            ),
            self.metric(
                "group_mean",
                float(np.mean(b)),
                samples.get("mean_b"),
                unit=unit,
                condition=self.groups[1],
                protocol="mean",
                n=len(b),
            ),
            self.metric(
                "cohens_d",
                float(stats.cohens_d(a, b)),
                samples.get("cohens_d"),
                unit=unit,
                protocol=f"{self.groups[0]} vs {self.groups[1]}, pooled SD",
                n=len(d),
            ),
        ]
        if self.human_effect is not None:
            model = next(m for m in out if m.metric == self.human_effect_metric)
            model.extra["human_effect"] = self.human_effect
            model.extra["target"] = self.human_effect  # a `target` metric: closer to the human value is better
            out += human_rows(self, model, self.human_effect, unit)
        return out

    @classmethod
    def compare(cls, a: CellValues, b: CellValues) -> list[dict[str, Any]]:
        """A paired bootstrap, pairs resampled within each group, of how close each model's effect comes to the
        declared human value (`|value − human|`), or with none declared, of the effects' magnitudes (`|value|`):
        an effect has no better sign of its own."""
        s = a.scoring
        in_a = np.asarray(s["in_a"], dtype=bool)
        metric = str(s.get("human_effect_metric") or "relative_difference")
        human = s.get("human_effect")
        if human is None:
            metric, quantity = "relative_difference", "|value|"

            def transform(x: Any) -> Any:
                return np.abs(x)
        else:
            quantity = f"|value − human| (human {float(human):.4g})"

            def transform(x: Any) -> Any:
                return np.abs(np.asarray(x, dtype=float) - float(human))

        def effect(e: CellValues) -> float:
            x, y = e.values[in_a], e.values[~in_a]
            raw = stats.relative_difference(x, y) if metric == "relative_difference" else stats.cohens_d(x, y)
            return float(transform(raw))

        row = paired_row(
            metric,
            a,
            b,
            effect,
            lambda e, counts: transform(stats.group_effects(e.values, in_a, counts)[metric]),
            f"paired bootstrap({bootstrap_of(s).n_boot}, pairs within each group) of {quantity.split(' (')[0]}",
            strata=s["strata"],
        )
        return [{**row, "quantity": quantity}]

    def scoring(self) -> dict:
        return {
            **super().scoring(),
            "in_a": (self.group_of_pair == self.groups[0]).astype(int).tolist(),
            "groups": self.groups,
            "strata": self.group_of_pair.tolist(),
            "unit": "pairs within each group",
            "human_effect": self.human_effect,
            "human_effect_metric": self.human_effect_metric,
        }
