"""Input validation shared by the statistics modules (private)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


def scipy_stats() -> Any:
    """`scipy.stats`, imported on first use: a run whose cells all come from the cache never needs it."""
    from scipy import stats

    return stats


def as_scalar(x: Any) -> Any:
    """0-d results become Python floats; arrays pass through."""
    x = np.asarray(x)
    return float(x) if x.ndim == 0 else x


def as_distances(distances: ArrayLike, name: str = "distances") -> FloatArray:
    """A finite, non-empty 1-D float array."""
    d = np.asarray(distances, dtype=float)
    if d.ndim != 1 or d.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array; got shape {d.shape}")
    finite = np.isfinite(d)
    if not finite.all():
        raise ValueError(f"{name} must be finite; got {int((~finite).sum())} NaN/inf of {d.size} values")
    return d


def as_labels(labels: ArrayLike, name: str = "labels") -> FloatArray:
    """A non-empty 1-D array of 0.0 / 1.0 (1 = same identity) from bool or 0/1 input."""
    raw = np.asarray(labels)
    if raw.ndim != 1 or raw.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array; got shape {raw.shape}")
    try:
        y = raw.astype(float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be bool or 0/1 (1 = same identity); got dtype {raw.dtype}") from None
    ok = (y == 0) | (y == 1)
    if not ok.all():
        bad = np.unique(raw[~ok])[:5].tolist()
        raise ValueError(f"{name} must be bool or 0/1 (1 = same identity); got values such as {bad}")
    return y


def as_pairs(distances: ArrayLike, labels: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Validated 1-D distances and labels of equal length."""
    d, y = as_distances(distances), as_labels(labels)
    check_same_length(distances=d, labels=y)
    return d, y


def as_weights(weights: ArrayLike, n: int) -> NDArray[Any]:
    """Non-negative finite resampling counts of shape (..., n), dtype kept."""
    w = np.asarray(weights)
    if w.ndim == 0 or w.shape[-1] != n:
        raise ValueError(f"weights must have shape (..., {n}); got {w.shape}")
    if w.dtype.kind not in "biuf":
        raise ValueError(f"weights must be numeric resampling counts; got dtype {w.dtype}")
    if w.dtype.kind == "f" and not np.isfinite(w).all():
        raise ValueError("weights must be finite")
    if w.dtype.kind not in "bu" and w.size and w.min() < 0:
        raise ValueError("weights must be non-negative (resampling counts)")
    return w


def as_count_matrix(weights: ArrayLike | None, n: int) -> NDArray[Any]:
    """(b, n) counts: ones((1, n)) for None, one row for a 1-D `weights`; int64 for None, bool and integer
    weights (summed exactly), float64 for float weights."""
    if weights is None:
        return np.ones((1, n), dtype=np.int64)
    w = as_weights(weights, n)
    if w.ndim > 2:
        raise ValueError(f"weights must have shape ({n},) or (n_resamples, {n}); got {w.shape}")
    return np.atleast_2d(w).astype(float if w.dtype.kind == "f" else np.int64, copy=False)


def check_same_length(**arrays: NDArray[Any]) -> int:
    """The common length of the last axis; ValueError naming every length otherwise."""
    lengths = {k: v.shape[-1] for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        given = ", ".join(f"{k}: {v}" for k, v in lengths.items())
        raise ValueError(f"arrays must have the same length along the last axis; got {given}")
    return next(iter(lengths.values()))


def require_both_classes(y: FloatArray, what: str) -> None:
    """ValueError when 1-D labels hold only one class."""
    n, n_pos = len(y), int(y.sum())
    if n_pos in (0, n):
        raise ValueError(
            f"{what} needs both same (1) and different (0) pairs; got {n} pairs, all labelled {1 if n_pos == n else 0}"
        )


def check_method(method: str, allowed: Sequence[str]) -> None:
    if method not in allowed:
        raise ValueError(f"method must be one of {list(allowed)}; got {method!r}")


def check_level(level: float, name: str = "level") -> float:
    """A confidence level strictly between 0 and 1."""
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ValueError(f"{name} must be in (0, 1), e.g. 0.95; got {level!r}")
    return float(level)
