"""DeLong's test of two correlated ROC AUCs (same pairs, same labels), via midranks (Sun & Xu 2014)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ._checks import FloatArray, as_pairs, check_same_length, require_both_classes, scipy_stats

__all__ = ["DeLongResult", "delong_test", "normal_quantile"]


@dataclass(frozen=True)
class DeLongResult:
    """DeLong paired test of two correlated AUCs."""

    auc_a: float
    auc_b: float
    diff: float  # auc_a - auc_b
    se: float
    z: float
    p_value: float  # two-sided


def normal_quantile(q: float) -> float:
    """The standard normal's ``q`` quantile (e.g. 0.975 -> 1.96), for ``diff ± z·se`` intervals."""
    return float(scipy_stats().norm.ppf(q))


def _components(scores: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Structural components V10 (per positive) and V01 (per negative) of each row of similarities."""
    rank = scipy_stats().rankdata
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    v10 = np.empty_like(pos)
    v01 = np.empty_like(neg)
    for r in range(scores.shape[0]):  # one row per classifier (2), not per resample
        tz = rank(np.concatenate([pos[r], neg[r]]), method="average")
        v10[r] = (tz[:m] - rank(pos[r], method="average")) / n
        v01[r] = 1.0 - (tz[m:] - rank(neg[r], method="average")) / m
    return v10, v01


def delong_test(distances_a: ArrayLike, distances_b: ArrayLike, labels: ArrayLike) -> DeLongResult:
    """DeLong et al. (1988) test of AUC(a) = AUC(b) for two scorings of the same pairs.

    Parameters
    ----------
    distances_a, distances_b : array-like of shape (n,)
        The two models' distances of the same pairs.
    labels : array-like of shape (n,)
        Bool or 0/1, 1 = same identity; both classes must occur.

    Returns
    -------
    DeLongResult
        Both AUCs (of similarity = -distance), their difference, its standard error, z and the
        two-sided normal p-value. Identical scorings give z = 0 and p = 1.
    """
    da, y = as_pairs(distances_a, labels)
    db, _ = as_pairs(distances_b, labels)
    check_same_length(distances_a=da, distances_b=db)
    require_both_classes(y, "DeLong test")
    v10, v01 = _components(-np.stack([da, db]), y)
    auc = v10.mean(axis=1)
    contrast = np.array([1.0, -1.0])
    var = contrast @ np.cov(v10) @ contrast / v10.shape[1] + contrast @ np.cov(v01) @ contrast / v01.shape[1]
    diff = float(auc[0] - auc[1])
    se = float(np.sqrt(max(var, 0.0)))
    if se > 0:
        z = diff / se
        p = float(2 * scipy_stats().norm.sf(abs(z)))
    else:  # identical scorings (or perfect separation by both)
        z = 0.0 if diff == 0 else float(np.sign(diff) * np.inf)
        p = 1.0 if diff == 0 else 0.0
    return DeLongResult(float(auc[0]), float(auc[1]), diff, se, float(z), p)
