"""Verification (`accuracy`): same/different pairs scored by distance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import stats
from ..distances import Distance
from ..pairs import parse_labels
from ..results import Metric
from .base import BaseTask

IN_SAMPLE = "in-sample (Youden threshold chosen on all pairs)"


class AccuracyTask(BaseTask):
    """Accuracy, AUC and the optimal threshold.

    `accuracy` is **in-sample**: the threshold (Youden's J on the ROC of similarity = −distance) is
    chosen on the same pairs it is scored on, which flatters it. A pair is called 'same' when its
    distance is at most the threshold.
    """

    type = "accuracy"
    headline = "accuracy"
    metrics = ("accuracy", "auc", "optimal_threshold")
    roles = {"label": "label"}

    def __init__(self, name: str, pairs: str | Path, images: str | Path, distance: Distance = "cosine",
                 columns: dict[str, str] | None = None):
        super().__init__(name, pairs, images, distance, columns)
        self.labels = np.empty(0, dtype=bool)

    def _validate(self, table: pd.DataFrame) -> None:
        column = self.columns["label"]
        self.labels = parse_labels(table[column], table["_line"], self.pairs_path, column)

    def score(self, distances: np.ndarray) -> list[Metric]:
        n = len(distances)
        values = stats.in_sample_verification(distances, self.labels)
        return [Metric(metric, float(values[metric]), protocol=IN_SAMPLE, n=n) for metric in self.metrics]
