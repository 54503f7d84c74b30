"""Relative difference (`relative_difference`): (A − B) / (A + B) of two declared groups' mean distances."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import stats
from ..distances import Distance
from ..errors import ConfigError, DataError
from ..results import Metric
from .base import BaseTask


class RelativeDifferenceTask(BaseTask):
    """The two group means and (mean_A − mean_B) / (mean_A + mean_B), with A and B **declared** in the
    grid (`groups = ["inverted", "upright"]`), never taken from row order. Also Cohen's d (A vs B)."""

    type = "relative_difference"
    headline = "relative_difference"
    metrics = ("relative_difference", "group_mean", "cohens_d")
    roles = {"group": "group"}

    def __init__(self, name: str, pairs: str | Path, images: str | Path, distance: Distance = "cosine",
                 columns: dict[str, str] | None = None, groups: list[str] | None = None):
        super().__init__(name, pairs, images, distance, columns)
        if not groups or len(groups) != 2 or groups[0] == groups[1]:
            raise ConfigError(f"task '{name}': declare the two groups in order, e.g. groups = ['inverted', "
                              f"'upright'] for (inverted − upright) / (inverted + upright); got {groups!r}")
        self.groups = [str(g) for g in groups]
        self.group_of_pair = np.empty(0, dtype=object)

    def _validate(self, table: pd.DataFrame) -> None:
        column = self.columns["group"]
        values = table[column].astype(str).str.strip()
        found = list(dict.fromkeys(values))
        if sorted(found) != sorted(self.groups):
            counts = values.value_counts()
            described = ", ".join(f"'{k}' ({counts[k]} rows)" for k in found)
            raise DataError(f"{self.pairs_path}: column '{column}' must hold exactly the two declared groups "
                            f"{self.groups}; found {described}")
        self.group_of_pair = values.to_numpy()

    def score(self, distances: np.ndarray) -> list[Metric]:
        a = distances[self.group_of_pair == self.groups[0]]
        b = distances[self.group_of_pair == self.groups[1]]
        label = f"({self.groups[0]} - {self.groups[1]}) / ({self.groups[0]} + {self.groups[1]})"
        return [
            Metric("relative_difference", float(stats.relative_difference(a, b)), protocol=label, n=len(distances)),
            Metric("group_mean", float(np.mean(a)), condition=self.groups[0], protocol="mean", n=len(a)),
            Metric("group_mean", float(np.mean(b)), condition=self.groups[1], protocol="mean", n=len(b)),
            Metric("cohens_d", float(stats.cohens_d(a, b)), protocol=f"{self.groups[0]} vs {self.groups[1]}, pooled SD",
                   n=len(distances)),
        ]
