"""Metric ids (snake_case in files, thresholds and the API), their display names and directions.

Families resolved by pattern: `tar_at_far_<far>` (e.g. `tar_at_far_0.001`) and `rank<k>` (e.g.
`rank10`; the rank-k rows of an identification task are its CMC curve). Both: higher is better.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    display: str
    higher_is_better: bool | None  # None: no direction (descriptive), so it cannot be gated


METRICS: dict[str, MetricInfo] = {
    "accuracy": MetricInfo("Accuracy", True),
    "auc": MetricInfo("AUC", True),
    "optimal_threshold": MetricInfo("Optimal Threshold", None),
    "accuracy_kfold": MetricInfo("Accuracy (k-fold)", True),
    "accuracy_kfold_std": MetricInfo("Accuracy (k-fold) std", False),
    "eer": MetricInfo("EER", False),
    "correlation": MetricInfo("Correlation Score", True),
    "correlation_ceiling_low": MetricInfo("Noise ceiling (low)", None),
    "correlation_ceiling_high": MetricInfo("Noise ceiling (high)", None),
    "correlation_normalized": MetricInfo("Correlation / ceiling", True),
    "split_half_ceiling": MetricInfo("Split-half ceiling", None),
    "mean_distance": MetricInfo("Mean Value", None),
    "group_mean": MetricInfo("Group Mean", None),
    "relative_difference": MetricInfo("Relative Difference", True),
    "cohens_d": MetricInfo("Cohen's d", True),
    "rank1": MetricInfo("Rank-1", True),
    "rank5": MetricInfo("Rank-5", True),
    "rsa": MetricInfo("RSA", True),
    "human_effect": MetricInfo("Human effect", None),
    "effect_vs_human": MetricInfo("Model − human effect", None),
}
RANK = re.compile(r"^rank(\d+)$")


def metric_info(metric: str) -> MetricInfo:
    """Known metrics, plus `tar_at_far_<far>` (higher is better); custom ones have no direction."""
    if metric in METRICS:
        return METRICS[metric]
    if metric.startswith("tar_at_far_"):
        return MetricInfo(f"TAR@FAR={metric.removeprefix('tar_at_far_')}", True)
    match = RANK.match(metric)
    if match:
        return MetricInfo(f"Rank-{int(match.group(1))}", True)
    return MetricInfo(metric, None)


def display_name(metric: str) -> str:
    return metric_info(metric).display
