"""Condition averages (`conditions`): the mean distance of the pairs of each condition."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..distances import Distance
from ..errors import DataError
from ..results import Metric
from .base import BaseTask


class ConditionedAverageDistances(BaseTask):
    """Mean Value per condition; with `normalize = true`, distances are first divided by the largest
    distance of the task (per layer), which makes layers comparable."""

    type = "conditions"
    headline = "mean_distance"
    metrics = ("mean_distance",)
    roles = {"condition": "condition"}

    def __init__(self, name: str, pairs: str | Path, images: str | Path, distance: Distance = "cosine",
                 columns: dict[str, str] | None = None, normalize: bool = False,
                 conditions: list[str] | None = None):
        super().__init__(name, pairs, images, distance, columns)
        self.normalize = bool(normalize)
        self.declared = list(conditions) if conditions else None
        self.conditions: list[str] = []
        self.condition_of_pair = np.empty(0, dtype=object)

    def _validate(self, table: pd.DataFrame) -> None:
        values = table[self.columns["condition"]].astype(str).str.strip()
        found = list(dict.fromkeys(values))
        if self.declared is not None:
            absent = [c for c in self.declared if c not in found]
            extra = [c for c in found if c not in self.declared]
            if absent or extra:
                raise DataError(f"{self.pairs_path}: column '{self.columns['condition']}' should hold the declared "
                                f"conditions {self.declared}; missing {absent}, undeclared {extra}")
        self.conditions = self.declared or sorted(found)
        self.condition_of_pair = values.to_numpy()

    def score(self, distances: np.ndarray) -> list[Metric]:
        scale = float(np.max(distances)) if self.normalize and len(distances) else 1.0
        values = distances / scale if scale > 0 else distances
        protocol = "mean (normalized by max distance)" if self.normalize else "mean"
        out = []
        for condition in self.conditions:
            chosen = values[self.condition_of_pair == condition]
            out.append(Metric("mean_distance", float(np.mean(chosen)), condition=condition, protocol=protocol,
                              n=int(len(chosen))))
        return out
