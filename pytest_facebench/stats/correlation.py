"""Correlations (Pearson, Spearman, Kendall tau-b and tau-a), their count-weighted batched forms,
noise ceilings (Nili et al. 2014, rsatoolbox's convention) and split-half reliability.

The batched forms (:func:`pearson_r`, :func:`spearman_r`) take resampling counts: a row ``w`` gives
exactly the coefficient of the data set in which observation ``i`` occurs ``w[i]`` times.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._checks import FloatArray, as_scalar, as_weights, check_method, check_same_length, scipy_stats

__all__ = [
    "CORRELATION_METHODS",
    "CorrelationResult",
    "NoiseCeiling",
    "correlation",
    "noise_ceiling",
    "pearson_r",
    "resampled_correlation",
    "resampled_noise_ceiling",
    "spearman_r",
    "split_half_reliability",
]

CORRELATION_METHODS = ("pearson", "spearman", "kendall", "kendall_tau_a")


@dataclass(frozen=True)
class CorrelationResult:
    """A correlation coefficient; ``r`` is NaN with a ``reason`` when undefined."""

    r: float
    p_value: float
    n: int
    method: str
    reason: str = ""


@dataclass(frozen=True)
class NoiseCeiling:
    """Lower and upper bounds of the noise ceiling (Nili et al. 2014)."""

    low: float
    high: float
    n_participants: int
    note: str = ""


# --------------------------------------------------------------------------- one data set


def correlation(x: ArrayLike, y: ArrayLike, method: str = "pearson") -> CorrelationResult:
    """Correlation of x and y over the observations where both are finite (others dropped).

    Parameters
    ----------
    x, y : array-like of shape (n,)
        Paired observations.
    method : {'pearson', 'spearman', 'kendall', 'kendall_tau_a'}, default='pearson'
        ``pearson``, ``spearman`` and ``kendall`` (tau-b) via ``scipy.stats``; ``kendall_tau_a``
        = (concordant - discordant) / (n (n - 1) / 2), with the p-value of scipy's Kendall test.

    Returns
    -------
    CorrelationResult
        ``r = nan`` with a ``reason`` for fewer than 3 complete pairs or constant input.
    """
    check_method(method, CORRELATION_METHODS)
    xa = np.asarray(x, dtype=float).reshape(-1)
    ya = np.asarray(y, dtype=float).reshape(-1)
    if len(xa) != len(ya):
        raise ValueError(f"x and y must have the same length; got {len(xa)} and {len(ya)}")
    keep = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[keep], ya[keep]
    n = len(xa)
    reason = ""
    if n < 3:
        reason = f"need at least 3 complete (x, y) pairs; got {n}"
    else:
        for name, v in (("x", xa), ("y", ya)):
            if v.min() == v.max():
                reason = f"{name} is constant (all {n} values equal {v[0]:g}); correlation undefined"
                break
    if reason:
        return CorrelationResult(np.nan, np.nan, n, method, reason)
    st = scipy_stats()
    if method == "pearson":
        res = st.pearsonr(xa, ya)
        r, p = res.statistic, res.pvalue
    elif method == "spearman":
        res = st.spearmanr(xa, ya)
        r, p = res.statistic, res.pvalue
    elif method == "kendall":
        res = st.kendalltau(xa, ya)
        r, p = res.statistic, res.pvalue
    else:
        r, p = _tau_a(xa, ya), st.kendalltau(xa, ya).pvalue
    return CorrelationResult(float(r), float(p), n, method)


def _tau_a(x: FloatArray, y: FloatArray, chunk: int = 1024) -> float:
    """Kendall tau-a = (concordant - discordant) / (n(n-1)/2); O(n^2) in row chunks."""
    n = len(x)
    s = 0.0
    for i in range(0, n, chunk):
        s += float(np.sum(np.sign(x[i : i + chunk, None] - x) * np.sign(y[i : i + chunk, None] - y)))
    return s / (n * (n - 1))  # s counts each unordered pair twice


# --------------------------------------------------------------------------- batched, weighted


def pearson_r(x: ArrayLike, y: ArrayLike, weights: ArrayLike | None = None) -> Any:
    """Pearson r along the last axis, optionally under resampling counts.

    Parameters
    ----------
    x, y : array-like of shape (..., n)
        Observations; leading axes broadcast.
    weights : array-like of shape (..., n), default=None
        Resampling counts (0 drops an observation).

    Returns
    -------
    float or ndarray
        One coefficient per row; NaN where a row has fewer than 3 observations or is constant.
    """
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = check_same_length(x=np.atleast_1d(xa), y=np.atleast_1d(ya))
    wa = np.ones(n) if weights is None else as_weights(weights, n)
    xa, ya, wa = np.broadcast_arrays(xa, ya, wa)
    sw = wa.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        dx = xa - (wa * xa).sum(axis=-1, keepdims=True) / sw
        dy = ya - (wa * ya).sum(axis=-1, keepdims=True) / sw
        r = (wa * dx * dy).sum(-1) / np.sqrt((wa * dx * dx).sum(-1) * (wa * dy * dy).sum(-1))
    present = wa > 0
    const = sw[..., 0] < 3  # like correlation(): fewer than 3 observations -> nan
    for v in (xa, ya):
        const |= np.max(np.where(present, v, -np.inf), -1) == np.min(np.where(present, v, np.inf), -1)
    return as_scalar(np.where(const, np.nan, np.clip(r, -1.0, 1.0)))


def spearman_r(x: ArrayLike, y: ArrayLike, weights: ArrayLike | None = None) -> Any:
    """Spearman rho (Pearson r of midranks) along the last axis, optionally under resampling counts.

    Parameters
    ----------
    x, y : array-like of shape (..., n)
        Observations.
    weights : array-like of shape (..., n), default=None
        Resampling counts; ranks are those of the expanded data set (a tie group of total
        count c occupies c ranks).

    Returns
    -------
    float or ndarray
        One coefficient per row; NaN where undefined (see :func:`pearson_r`).
    """
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    wa = None if weights is None else as_weights(weights, xa.shape[-1])
    return pearson_r(_midranks(xa, wa), _midranks(ya, wa), wa)


BATCHED = {"pearson": pearson_r, "spearman": spearman_r}


def resampled_correlation(x: ArrayLike, y: ArrayLike, counts: ArrayLike, method: str) -> FloatArray:
    """The correlation of each resample.

    Parameters
    ----------
    x, y : array-like of shape (n,)
        Paired observations.
    counts : array-like of shape (b, n)
        Resampling counts.
    method : {'pearson', 'spearman', 'kendall', 'kendall_tau_a'}
        As :func:`correlation`; Pearson and Spearman are batched, the Kendall coefficients are
        computed per resample on the expanded data.

    Returns
    -------
    ndarray of shape (b,)
    """
    check_method(method, CORRELATION_METHODS)
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    c = np.asarray(counts)
    if method in BATCHED:
        return np.asarray(BATCHED[method](xa, ya, c), dtype=float).reshape(len(c))
    index = np.arange(len(xa))
    return np.array([correlation(xa[rows], ya[rows], method).r for rows in (np.repeat(index, row) for row in c)])


def _sort_along(key: FloatArray, *others: FloatArray | None) -> tuple[Any, ...]:
    """Sort ``key`` along the last axis, permuting ``others`` the same way (a 1-D key is sorted once)."""
    shapes = [key.shape] + [o.shape for o in others if o is not None]
    shape = np.broadcast_shapes(*shapes)
    if key.ndim == 1:
        order = np.argsort(key, kind="stable")
        out = [key[order]] + [None if o is None else o[..., order] for o in others]
        return order, shape, out
    order = np.argsort(np.broadcast_to(key, shape), axis=-1, kind="stable")
    out = [np.take_along_axis(np.broadcast_to(key, shape), order, axis=-1)]
    out += [None if o is None else np.take_along_axis(np.broadcast_to(o, shape), order, axis=-1) for o in others]
    return order, shape, out


def _take(a: NDArray[Any], idx: NDArray[np.intp]) -> NDArray[Any]:
    """Gather along the last axis with a 1-D (shared) or full-shape index."""
    if idx.ndim == 1:
        return a[..., idx]
    return np.take_along_axis(np.broadcast_to(a, idx.shape), idx, axis=-1)


def _tie_groups(s: NDArray[Any]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """For sorted rows: index of the first and last element of each element's tie group."""
    n = s.shape[-1]
    ar = np.arange(n)
    step = s[..., 1:] != s[..., :-1]
    edge = np.ones(s.shape[:-1] + (1,), dtype=bool)
    first = np.concatenate([edge, step], axis=-1)
    last = np.concatenate([step, edge], axis=-1)
    start = np.maximum.accumulate(np.where(first, ar, 0), axis=-1)
    end = np.minimum.accumulate(np.where(last, ar, n - 1)[..., ::-1], axis=-1)[..., ::-1]
    return start, end


def _midranks(x: FloatArray, w: NDArray[Any] | None) -> FloatArray:
    """Midranks along the last axis; with weights, the midranks in the expanded multiset."""
    if w is None:
        return scipy_stats().rankdata(x, method="average", axis=-1)
    order, shape, (xs, ws) = _sort_along(x, w)
    start, end = _tie_groups(xs)
    cw = np.cumsum(np.broadcast_to(ws, shape), axis=-1)
    before = _take(cw - ws, start)
    ranks_sorted = before + (_take(cw, end) - before + 1.0) / 2.0
    inverse = np.argsort(order, axis=-1)
    return _take(ranks_sorted, inverse)


# --------------------------------------------------------------------------- reliability


def _as_ratings(ratings: ArrayLike) -> FloatArray:
    r = np.asarray(ratings, dtype=float)
    if r.ndim != 2:
        raise ValueError(f"ratings must have shape (n_items, n_participants); got {r.shape}")
    return r


def noise_ceiling(ratings: ArrayLike, method: str = "pearson") -> NoiseCeiling:
    """Noise ceiling of a rating matrix (Nili et al. 2014; rsatoolbox's convention).

    Parameters
    ----------
    ratings : array-like of shape (n_items, n_participants)
        Ratings; NaN = missing.
    method : {'pearson', 'spearman', 'kendall', 'kendall_tau_a'}, default='pearson'
        Correlation used for both bounds.

    Returns
    -------
    NoiseCeiling
        ``high``: mean over participants of corr(participant, mean of all participants);
        ``low``: mean over participants of corr(participant, mean of the others). NaN with a note
        below 2 participants; undefined per-participant correlations are left out and noted.
    """
    check_method(method, CORRELATION_METHODS)
    r = _as_ratings(ratings)
    n_p = r.shape[1]
    if n_p < 2:
        return NoiseCeiling(np.nan, np.nan, n_p, f"noise ceiling needs >= 2 participants; got {n_p}")
    present = np.isfinite(r)
    total, count = np.where(present, r, 0.0).sum(axis=1), present.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_all = total / count
    highs, lows, notes = [], [], []
    for p in range(n_p):
        with np.errstate(invalid="ignore", divide="ignore"):
            others = (total - np.where(present[:, p], r[:, p], 0.0)) / (count - present[:, p])
        hi, lo = correlation(r[:, p], mean_all, method), correlation(r[:, p], others, method)
        highs.append(hi.r)
        lows.append(lo.r)
        if np.isnan(lo.r) or np.isnan(hi.r):
            notes.append(f"participant {p}: {lo.reason or hi.reason}")
    if notes:
        notes.append("nan correlations were left out of the means")
    return NoiseCeiling(_nanmean(lows), _nanmean(highs), n_p, "; ".join(notes))


def resampled_noise_ceiling(ratings: ArrayLike, counts: ArrayLike, method: str) -> tuple[FloatArray, FloatArray]:
    """The noise-ceiling bounds of each resample of the items (as :func:`noise_ceiling`).

    Parameters
    ----------
    ratings : array-like of shape (n_items, n_participants)
        Ratings; NaN = missing.
    counts : array-like of shape (b, n_items)
        Resampling counts of the items.
    method : {'pearson', 'spearman', 'kendall', 'kendall_tau_a'}
        Correlation used for both bounds.

    Returns
    -------
    low, high : ndarray of shape (b,)
        NaN where every participant's correlation is undefined.
    """
    check_method(method, CORRELATION_METHODS)
    r = _as_ratings(ratings)
    c = np.asarray(counts)
    present = np.isfinite(r)
    filled = np.where(present, r, 0.0)
    total, count = filled.sum(axis=1), present.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_all = total / count
    lows: list[FloatArray] = []
    highs: list[FloatArray] = []
    for p in range(r.shape[1]):
        with np.errstate(invalid="ignore", divide="ignore"):
            others = (total - filled[:, p]) / (count - present[:, p])
        x = r[:, p]
        for target, out in ((mean_all, highs), (others, lows)):
            ok = np.isfinite(x) & np.isfinite(target)
            if method in BATCHED:
                w = c * ok
                out.append(np.asarray(BATCHED[method](np.where(ok, x, 0.0), np.where(ok, target, 0.0), w), dtype=float))
            else:
                index = np.arange(len(x))
                out.append(
                    np.array(
                        [correlation(x[rows], target[rows], method).r for rows in (np.repeat(index, row) for row in c)]
                    )
                )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: degenerate resamples
        return np.nanmean(np.stack(lows), axis=0), np.nanmean(np.stack(highs), axis=0)


def _nanmean(values: Sequence[float]) -> float:
    v = np.asarray(values, dtype=float)
    return float(np.nanmean(v)) if np.isfinite(v).any() else np.nan


def split_half_reliability(ratings: ArrayLike, n_splits: int = 100, seed: int = 0, method: str = "pearson") -> float:
    """Split-half reliability of the participant mean, Spearman-Brown corrected.

    Parameters
    ----------
    ratings : array-like of shape (n_items, n_participants)
        Ratings; NaN = missing.
    n_splits : int, default=100
        Random splits of the participants into halves (``n_participants // 2`` in the first).
    seed : int, default=0
        Seed of the splits.
    method : {'pearson', 'spearman'}, default='pearson'
        Correlation of the two halves' item means.

    Returns
    -------
    float
        Mean over splits of 2r / (1 + r); NaN below 2 participants or when every split is undefined.
    """
    check_method(method, ("pearson", "spearman"))
    r = _as_ratings(ratings)
    n_p = r.shape[1]
    if n_p < 2:
        return np.nan
    rng = np.random.default_rng(seed)
    in_a = np.argsort(rng.random((n_splits, n_p)), axis=1) < n_p // 2  # (splits, participants)
    present = np.isfinite(r).astype(float)
    filled = np.where(present > 0, r, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_a = (filled @ in_a.T) / (present @ in_a.T)  # (items, splits)
        mean_b = (filled @ ~in_a.T) / (present @ ~in_a.T)
    ok = np.isfinite(mean_a) & np.isfinite(mean_b)
    a, b, w = np.where(ok, mean_a, 0.0).T, np.where(ok, mean_b, 0.0).T, ok.T.astype(float)
    corr = pearson_r(a, b, w) if method == "pearson" else spearman_r(a, b, w)
    with np.errstate(invalid="ignore", divide="ignore"):
        sb = 2 * np.asarray(corr) / (1 + np.asarray(corr))
    return float(np.nanmean(sb)) if np.isfinite(sb).any() else np.nan
