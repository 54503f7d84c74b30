"""Correlation (`correlation`): model distances against human dissimilarities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import stats
from ..distances import Distance
from ..errors import ConfigError
from ..pairs import parse_numbers
from ..results import Metric
from .base import BaseTask

METHODS = ("pearson", "spearman")


class CorrelationTask(BaseTask):
    """Correlation Score between model distances and the `distance` column (Pearson by default)."""

    type = "correlation"
    headline = "correlation"
    metrics = ("correlation",)
    roles = {"distance": "distance"}

    def __init__(self, name: str, pairs: str | Path, images: str | Path, distance: Distance = "cosine",
                 columns: dict[str, str] | None = None, method: str = "pearson"):
        super().__init__(name, pairs, images, distance, columns)
        if method not in METHODS:
            raise ConfigError(f"task '{name}': method must be one of {', '.join(METHODS)}, got {method!r}")
        self.method = method
        self.human = np.empty(0)

    def _validate(self, table: pd.DataFrame) -> None:
        column = self.columns["distance"]
        self.human = parse_numbers(table[column], table["_line"], self.pairs_path, column)

    def score(self, distances: np.ndarray) -> list[Metric]:
        result = stats.correlation(distances, self.human, method=self.method)
        return [Metric("correlation", float(result.r), protocol=self.method, n=len(distances),
                       note=result.reason or "")]
