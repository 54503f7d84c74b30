"""Statistics for face-perception benchmarks: pure functions on numpy arrays.

Conventions
-----------
* Verification metrics take ``distances`` (float, smaller = more similar) and
  ``labels`` (bool or 0/1, 1 = same identity). Internally similarity = -distance.
  Thresholds are reported in distance units: a pair is predicted "same" iff
  ``distance <= threshold``.
* Functions marked **[batched]** accept arrays of shape ``(..., n)`` and return shape
  ``(...)`` (a float for 1-D input). They also take ``weights``: non-negative
  resampling counts of shape ``(..., n)``. A row with counts ``w`` gives *exactly*
  the metric of the data set in which pair ``i`` appears ``w[i]`` times.

Bootstrap design
----------------
A resample is represented by a count matrix ``(n_boot, n)`` (:func:`bootstrap_weights`):
entry ``[b, i]`` is how often row ``i`` occurs in resample ``b``. This keeps a fixed
shape for both designs:

* row bootstrap (``groups=None``): rows drawn with replacement; the counts are the
  ``np.bincount`` of the index matrix :func:`bootstrap_indices` returns for the same
  seed, so both representations describe the same resamples;
* cluster bootstrap (``groups`` = e.g. identity per pair): whole groups drawn with
  replacement (as many draws as there are groups); every row of a group drawn ``c``
  times gets count ``c``. Resamples then have variable length, which the count matrix
  represents without padding.

:func:`bootstrap_ci` / :func:`paired_bootstrap` call ``metric(*arrays, weights=W)``
when the metric accepts a ``weights`` keyword (all batched metrics here do, and with
1-D data they sort once and reuse the order for every resample). Other metrics get
``metric(*(a[idx] for a in arrays))`` with rows of the index matrix; that path
supports groups only when all groups have the same size. Resamples are drawn and
evaluated in blocks of a few hundred rows (vectorized within a block) to keep memory
small; the blocking never changes the resamples. Percentile intervals.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray


def _st():  # type: ignore[no-untyped-def]
    """scipy.stats, imported on first use: a run whose cells come from the cache never needs it."""
    from scipy import stats

    return stats


def normal_quantile(q: float) -> float:
    """The standard normal's `q` quantile (e.g. 0.975 → 1.96)."""
    return float(_st().norm.ppf(q))


__all__ = [
    "normal_quantile",
    "CorrelationResult",
    "DeLongResult",
    "KFoldResult",
    "NoiseCeiling",
    "PairedComparison",
    "RSABootstrap",
    "TarAtFar",
    "bootstrap_ci",
    "bootstrap_indices",
    "bootstrap_samples",
    "bootstrap_weights",
    "cmc_curve",
    "cohens_d",
    "cohens_d_ci",
    "compare_rdms",
    "correlation",
    "delong_test",
    "eer",
    "in_sample_accuracy",
    "in_sample_verification",
    "kfold_accuracy",
    "make_folds",
    "mean_ci",
    "noise_ceiling",
    "paired_bootstrap",
    "pearson_r",
    "rank_k_accuracy",
    "rdm_from_embeddings",
    "relative_difference",
    "roc_auc",
    "rsa_bootstrap",
    "spearman_r",
    "split_half_reliability",
    "tar_at_far",
    "youden_threshold",
]

FloatArray = NDArray[np.float64]
CORRELATION_METHODS = ("pearson", "spearman", "kendall", "kendall_tau_a")
RDM_METRICS = ("correlation", "cosine", "euclidean")


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class KFoldResult:
    """k-fold verification accuracy (threshold fit on the other folds)."""

    mean: float
    std: float  # population std (ddof=0) over folds, like np.std / insightface
    per_fold: FloatArray  # held-out accuracy per fold (sorted fold ids)
    thresholds: FloatArray  # fit on each fold's training part; -inf / +inf = all different / all same
    correct: NDArray[np.int64]  # per pair: 1 if its held-out prediction was right
    note: str = ""


@dataclass(frozen=True)
class TarAtFar:
    """True accept rate at a target false accept rate."""

    tar: float
    threshold: float
    reachable: bool
    note: str = ""


@dataclass(frozen=True)
class DeLongResult:
    """DeLong paired test of two correlated AUCs (same pairs, same labels)."""

    auc_a: float
    auc_b: float
    diff: float  # auc_a - auc_b
    se: float
    z: float
    p_value: float  # two-sided


@dataclass(frozen=True)
class PairedComparison:
    """Paired bootstrap comparison metric(a) - metric(b)."""

    diff: float
    ci_low: float
    ci_high: float
    p_value: float  # two-sided bootstrap p-value
    n_boot: int


@dataclass(frozen=True)
class CorrelationResult:
    """A correlation coefficient; ``r`` is nan with a ``reason`` when undefined."""

    r: float
    p_value: float
    n: int
    method: str
    reason: str = ""


@dataclass(frozen=True)
class NoiseCeiling:
    """Lower/upper bounds of the noise ceiling (Nili et al. 2014)."""

    low: float
    high: float
    n_participants: int
    note: str = ""


@dataclass(frozen=True)
class RSABootstrap:
    """RDM similarity with a stimulus-bootstrap percentile interval."""

    estimate: float
    ci_low: float
    ci_high: float
    samples: FloatArray  # (n_boot,), nan for degenerate resamples


# --------------------------------------------------------------------------- helpers


def _scalar(x: Any) -> Any:
    """0-d results become Python floats; arrays pass through."""
    x = np.asarray(x)
    return float(x) if x.ndim == 0 else x


def _as_distances(distances: ArrayLike, name: str = "distances") -> FloatArray:
    d = np.asarray(distances, dtype=float)
    if d.ndim == 0 or d.shape[-1] == 0:
        raise ValueError(f"{name} must be a non-empty array of shape (..., n); got shape {d.shape}")
    finite = np.isfinite(d)
    if not finite.all():
        raise ValueError(f"{name} must be finite; got {int((~finite).sum())} NaN/inf of {d.size} values")
    return d


def _as_labels(labels: ArrayLike, name: str = "labels") -> FloatArray:
    raw = np.asarray(labels)
    if raw.ndim == 0 or raw.shape[-1] == 0:
        raise ValueError(f"{name} must be a non-empty array of shape (..., n); got shape {raw.shape}")
    try:
        y = raw.astype(float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be bool or 0/1 (1 = same identity); got dtype {raw.dtype}") from None
    ok = (y == 0) | (y == 1)
    if not ok.all():
        bad = np.unique(raw[~ok])[:5].tolist()
        raise ValueError(f"{name} must be bool or 0/1 (1 = same identity); got values such as {bad}")
    return y


def _as_weights(weights: ArrayLike, n: int) -> NDArray[Any]:
    w = np.asarray(weights)
    if w.ndim == 0 or w.shape[-1] != n:
        raise ValueError(f"weights must have shape (..., {n}); got {w.shape}")
    if w.dtype.kind not in "biuf":
        raise ValueError(f"weights must be numeric resampling counts; got dtype {w.dtype}")
    if w.dtype.kind == "f" and not np.isfinite(w).all():
        raise ValueError("weights must be finite")
    if w.dtype.kind != "u" and (w < 0).any():
        raise ValueError("weights must be non-negative (resampling counts)")
    return w


def _require_both_classes(y: FloatArray, what: str) -> None:
    n = y.shape[-1]
    n_pos = y.sum(axis=-1)
    bad = (n_pos == 0) | (n_pos == n)
    if np.any(bad):
        first = np.unravel_index(int(np.argmax(bad)), np.shape(bad)) if y.ndim > 1 else ()
        label = 1 if np.asarray(n_pos)[first] == n else 0
        row = ", ".join(str(int(i)) for i in first)
        where = f"got {n} pairs" if y.ndim == 1 else f"batch row {row} has {n} pairs"
        raise ValueError(f"{what} needs both same (1) and different (0) pairs; {where}, all labelled {label}")


def _check_same_length(**arrays: NDArray[Any]) -> int:
    lengths = {k: v.shape[-1] for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        given = ", ".join(f"{k}: {v}" for k, v in lengths.items())
        raise ValueError(f"arrays must have the same length along the last axis; got {given}")
    return next(iter(lengths.values()))


def _take(a: NDArray[Any], idx: NDArray[np.intp]) -> NDArray[Any]:
    """Gather along the last axis with a 1-D (shared) or full-shape index."""
    if idx.ndim == 1:
        return a[..., idx]
    return np.take_along_axis(np.broadcast_to(a, idx.shape), idx, axis=-1)


def _tie_groups(s: NDArray[Any]) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.bool_]]:
    """For sorted rows: index of the first/last element of each element's tie group."""
    n = s.shape[-1]
    ar = np.arange(n)
    step = s[..., 1:] != s[..., :-1]
    edge = np.ones(s.shape[:-1] + (1,), dtype=bool)
    first = np.concatenate([edge, step], axis=-1)
    last = np.concatenate([step, edge], axis=-1)
    start = np.maximum.accumulate(np.where(first, ar, 0), axis=-1)
    end = np.minimum.accumulate(np.where(last, ar, n - 1)[..., ::-1], axis=-1)[..., ::-1]
    return start, end, last


def _sort_along(key: FloatArray, *others: FloatArray | None) -> tuple[Any, ...]:
    """Sort ``key`` along the last axis, permuting ``others`` the same way.

    A 1-D key is sorted once and the order shared by all batch rows of ``others``.
    """
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


def _sorted_pairs(
    distances: ArrayLike, labels: ArrayLike, weights: ArrayLike | None, what: str
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Validate and sort by distance, collapsing ties.

    Returns (d, pos, neg) along the last axis: the distinct distances ascending and the
    (weighted) number of same / different pairs at each. With a 1-D ``distances`` the
    groups are shared by all batch rows; with batched distances each row keeps length n
    and a tie group's totals sit at its last element (zeros elsewhere).
    """
    d = _as_distances(distances)
    y = _as_labels(labels)
    n = _check_same_length(distances=d, labels=y)
    _require_both_classes(y, what)
    w = None if weights is None else _as_weights(weights, n)
    try:
        _, shape, (ds, ys, ws) = _sort_along(d, y, w)
    except ValueError:
        given = f"distances {d.shape}, labels {y.shape}" + ("" if w is None else f", weights {w.shape}")
        raise ValueError(f"shapes do not broadcast: {given}") from None
    pos = np.broadcast_to(ys if ws is None else ws * ys, shape)
    neg = np.broadcast_to(1.0 - ys, shape) if ws is None else ws - pos
    if ds.ndim == 1:
        starts = np.flatnonzero(np.append(True, ds[1:] != ds[:-1]))
        if len(starts) < n:
            pos, neg = np.add.reduceat(pos, starts, axis=-1), np.add.reduceat(neg, starts, axis=-1)
        return ds[starts], pos, neg
    start, _, last = _tie_groups(ds)
    cp, cn = np.cumsum(pos, axis=-1), np.cumsum(neg, axis=-1)
    pos = np.where(last, cp - _take(cp - pos, start), 0.0)
    neg = np.where(last, cn - _take(cn - neg, start), 0.0)
    return ds, pos, neg


# ------------------------------------------------------------------ verification


def roc_auc(distances: ArrayLike, labels: ArrayLike, weights: ArrayLike | None = None) -> Any:
    """[batched] ROC AUC of similarity = -distance (Mann-Whitney, ties count 1/2).

    The Mann-Whitney U with midranks, computed from cumulative class counts over the
    distinct distances (one sort, shared by all batch rows when ``distances`` is 1-D).
    Equals ``sklearn.metrics.roc_auc_score(labels, -distances)``. Raises ValueError
    if ``labels`` lack a class; a weighted row lacking a class gives nan.
    """
    _, pos, neg = _sorted_pairs(distances, labels, weights, "AUC")
    cn = np.cumsum(neg, axis=-1)  # different pairs at distance <= each group's
    n_pos, n_neg = pos.sum(axis=-1), cn[..., -1]
    # P(d_same < d_diff) + P(tie) / 2 = sum_g pos_g * (N - cn_g + neg_g / 2) / (P N)
    num = n_pos * n_neg - np.einsum("...i,...i->...", pos, cn) + 0.5 * np.einsum("...i,...i->...", pos, neg)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _scalar(num / (n_pos * n_neg))


def _youden(distances: ArrayLike, labels: ArrayLike, weights: ArrayLike | None) -> tuple[Any, Any]:
    """Per row: (Youden distance threshold, accuracy at it). Ties -> smallest threshold."""
    ds, pos, neg = _sorted_pairs(distances, labels, weights, "Youden threshold")
    cp = np.cumsum(pos, axis=-1)
    cn = np.cumsum(neg, axis=-1)
    n_pos, n_neg = cp[..., -1:], cn[..., -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        j = cp / n_pos
        j -= cn / n_neg  # TPR - FPR, computed like sklearn's roc_curve
        j[(pos + neg) <= 0] = -np.inf  # thresholds must be observed distances
        best = np.argmax(j, axis=-1)[..., None]
        tp = np.take_along_axis(cp, best, axis=-1)
        fp = np.take_along_axis(cn, best, axis=-1)
        thr = np.take_along_axis(np.broadcast_to(ds, cp.shape), best, axis=-1)
        acc = (tp + n_neg - fp) / (n_pos + n_neg)
    degenerate = (n_pos == 0) | (n_neg == 0)
    thr = np.where(degenerate, np.nan, thr)[..., 0]
    acc = np.where(degenerate, np.nan, acc)[..., 0]
    return _scalar(thr), _scalar(acc)


def youden_threshold(distances: ArrayLike, labels: ArrayLike) -> float:
    """Observed distance maximizing TPR - FPR over all pairs (in-sample); ties -> smallest."""
    d, y = _as_pairs_1d(distances, labels)
    return float(_youden(d, y, None)[0])


def in_sample_accuracy(distances: ArrayLike, labels: ArrayLike, weights: ArrayLike | None = None) -> Any:
    """[batched] Accuracy at the Youden threshold re-picked on each row (in-sample)."""
    return _youden(distances, labels, weights)[1]


def in_sample_verification(distances: ArrayLike, labels: ArrayLike) -> dict[str, float]:
    """In-sample ``accuracy`` at the Youden threshold, ``auc`` and ``optimal_threshold``."""
    d, y = _as_pairs_1d(distances, labels)
    thr, acc = _youden(d, y, None)
    return {"accuracy": float(acc), "auc": float(roc_auc(d, y)), "optimal_threshold": float(thr)}


def _as_pairs_1d(distances: ArrayLike, labels: ArrayLike) -> tuple[FloatArray, FloatArray]:
    d = _as_distances(distances)
    y = _as_labels(labels)
    if d.ndim != 1 or y.ndim != 1:
        raise ValueError(f"distances and labels must be 1-D; got shapes {d.shape} and {y.shape}")
    _check_same_length(distances=d, labels=y)
    return d, y


def make_folds(
    n: int,
    k: int = 10,
    *,
    fold_column: ArrayLike | None = None,
    identities: ArrayLike | None = None,
    labels: ArrayLike | None = None,
) -> NDArray[np.int64]:
    """Fold id (0..k-1) per pair.

    * ``fold_column``: the given folds, relabelled 0.. in sorted order of the unique
      values (``k`` is then ignored; the column defines the number of folds).
    * ``identities`` (shape (n,) or (n, 2)): identity-disjoint folds (see `identity_folds`),
      stratified by ``labels`` when given.
    * ``labels``: stratified folds (see `stratified_folds`).
    * otherwise contiguous blocks in file order (``np.array_split``, like LFW).
    """
    n = int(n)
    if fold_column is not None:
        col = np.asarray(fold_column)
        if col.ndim != 1 or len(col) != n:
            raise ValueError(f"fold_column must have shape ({n},); got {col.shape}")
        uniq, folds = np.unique(col, return_inverse=True)
        if len(uniq) < 2:
            raise ValueError(f"fold_column must contain at least 2 distinct folds; got {uniq.tolist()}")
        return folds.astype(np.int64)
    if k < 2 or k > n:
        raise ValueError(f"k must satisfy 2 <= k <= n; got k={k}, n={n}")
    if identities is not None:
        return identity_folds(n, k, identities, labels)
    if labels is not None:
        return stratified_folds(labels, k)
    return np.repeat(np.arange(k, dtype=np.int64), [len(b) for b in np.array_split(np.arange(n), k)])


def stratified_folds(labels: ArrayLike, k: int) -> NDArray[np.int64]:
    """Fold id per pair such that every fold holds the same share of each class (fold sizes per class
    differ by at most one), deterministic, and keeping file order within each class: the first pairs of
    a class go to fold 0, the next to fold 1, and so on. The allocation is that of scikit-learn's
    ``StratifiedKFold(shuffle=False)``: class c gets, in fold i, as many pairs as the class-sorted labels
    hold of c at positions i, i + k, i + 2k, ...; classes are numbered by first appearance."""
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D; got shape {y.shape}")
    if not 2 <= k <= len(y):
        raise ValueError(f"k must satisfy 2 <= k <= n; got k={k}, n={len(y)}")
    _, first, inverse = np.unique(y, return_index=True, return_inverse=True)
    by_appearance = np.argsort(np.argsort(first))
    encoded = by_appearance[inverse.reshape(-1)]
    n_classes = len(first)
    ordered = np.sort(encoded)
    allocation = np.stack([np.bincount(ordered[i::k], minlength=n_classes) for i in range(k)])  # (k, classes)
    folds = np.empty(len(y), dtype=np.int64)
    for c in range(n_classes):
        folds[encoded == c] = np.repeat(np.arange(k, dtype=np.int64), allocation[:, c])
    return folds


def identity_folds(n: int, k: int, identities: ArrayLike, labels: ArrayLike | None = None) -> NDArray[np.int64]:
    """Identity-disjoint folds: pairs are grouped into connected components of the identity graph (no
    identity appears in two folds). Components go, largest first (ties: first appearance), to the fold
    whose load is lowest after adding them (ties: lowest id). Without ``labels`` the load is the pair
    count; with them, the sum over classes of each class's count relative to its share per fold, so the
    folds are stratified as far as the identities allow. Raises ValueError when there are fewer
    components than folds or, with ``labels``, when a fold ends up without one of the classes."""
    ids = np.asarray(identities)
    if ids.shape not in ((n,), (n, 2)):
        raise ValueError(f"identities must have shape ({n},) or ({n}, 2); got {ids.shape}")
    _, codes = np.unique(ids.reshape(-1), return_inverse=True)
    codes = codes.reshape(n, -1)
    m = int(codes.max()) + 1
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(n), (codes[:, 0], codes[:, -1])), shape=(m, m))
    _, comp_of_id = connected_components(graph, directed=False)
    comp = np.unique(comp_of_id[codes[:, 0]], return_inverse=True)[1].reshape(-1)  # renumber used comps
    n_comp = int(comp.max()) + 1
    if n_comp < k:
        raise ValueError(f"identities form only {n_comp} connected groups; cannot make {k} identity-disjoint folds")
    if labels is None:
        classes = np.zeros(n, dtype=np.int64)
    else:
        classes = np.unique(np.asarray(labels), return_inverse=True)[1].reshape(-1)
        if len(classes) != n:
            raise ValueError(f"labels must have one value per pair ({n}); got {len(classes)}")
    n_classes = int(classes.max()) + 1
    counts = np.zeros((n_comp, n_classes))
    np.add.at(counts, (comp, classes), 1.0)
    share = np.maximum(counts.sum(axis=0) / k, 1e-12)  # each class's count per fold when balanced
    sizes = counts.sum(axis=1)
    first_seen = np.full(n_comp, n)
    np.minimum.at(first_seen, comp, np.arange(n))
    load = np.zeros((k, n_classes))
    fold_of_comp = np.empty(n_comp, dtype=np.int64)
    for c in np.lexsort((first_seen, -sizes)):
        f = int(np.argmin(((load + counts[c]) / share).sum(axis=1)))
        fold_of_comp[c] = f
        load[f] += counts[c]
    if labels is not None:
        empty = [(f, c) for f in range(k) for c in range(n_classes) if load[f, c] == 0]
        if empty:
            raise ValueError(f"the identities allow no {k} disjoint folds that each hold both classes "
                             f"({len(empty)} fold/class combination(s) empty, e.g. fold {empty[0][0]})")
    return fold_of_comp[comp]


def _best_split(d: FloatArray, y: FloatArray) -> float:
    """Accuracy-maximizing threshold: midpoints of sorted unique d, or -inf/+inf; ties -> smallest."""
    uniq, inv = np.unique(d, return_inverse=True)
    pos = np.bincount(inv, weights=y, minlength=len(uniq))
    neg = np.bincount(inv, weights=1.0 - y, minlength=len(uniq))
    cp = np.concatenate([[0.0], np.cumsum(pos)])  # candidate j: "same" for the j smallest values
    cn = np.concatenate([[0.0], np.cumsum(neg)])
    j = int(np.argmax(cp + (cn[-1] - cn)))
    if j == 0:
        return -np.inf
    if j == len(uniq):
        return np.inf
    return float((uniq[j - 1] + uniq[j]) / 2.0)


def kfold_accuracy(distances: ArrayLike, labels: ArrayLike, folds: ArrayLike) -> KFoldResult:
    """k-fold verification accuracy: per fold, the threshold maximizing accuracy on the
    other folds (midpoint candidates plus -inf/+inf, ties -> smallest) is applied to the
    held-out fold. ``mean``/``std`` are over folds."""
    d, y = _as_pairs_1d(distances, labels)
    f = np.asarray(folds)
    if f.shape != d.shape:
        raise ValueError(f"folds must have shape {d.shape}; got {f.shape}")
    fold_ids = np.unique(f)
    if len(fold_ids) < 2:
        raise ValueError(f"need at least 2 folds; got fold ids {fold_ids.tolist()}")
    accs, thrs, notes = [], [], []
    correct = np.zeros(len(d), dtype=np.int64)
    for fid in fold_ids:
        test = f == fid
        train_y = y[~test]
        for cls, name in ((1.0, "same (1)"), (0.0, "different (0)")):
            if not np.any(train_y == cls):
                raise ValueError(f"fold {fid}: its training part (all other folds, {len(train_y)} pairs) has no {name} pairs")
        thr = _best_split(d[~test], train_y)
        ok = ((d[test] <= thr) == (y[test] == 1)).astype(np.int64)
        correct[test] = ok
        accs.append(ok.mean())
        thrs.append(thr)
        if len(np.unique(y[test])) < 2:
            notes.append(f"fold {fid}: held-out part has only label {int(y[test][0])}")
    accs_a = np.asarray(accs)
    return KFoldResult(float(accs_a.mean()), float(accs_a.std()), accs_a, np.asarray(thrs), correct, "; ".join(notes))


def _roc_points(d: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, float, float]:
    """Thresholds (unique distances ascending) with cumulative TP/FP counts; n_pos, n_neg."""
    order = np.argsort(d, kind="stable")
    ds, ys = d[order], y[order]
    last = np.append(ds[1:] != ds[:-1], True)
    tp = np.cumsum(ys)[last]
    fp = np.cumsum(1.0 - ys)[last]
    return ds[last], tp, fp, float(ys.sum()), float(len(ys) - ys.sum())


def eer(distances: ArrayLike, labels: ArrayLike) -> float:
    """Equal error rate: FAR (different pairs accepted) = FRR (same pairs rejected),
    linearly interpolated between the ROC points where FAR - FRR changes sign."""
    d, y = _as_pairs_1d(distances, labels)
    _require_both_classes(y, "EER")
    _, tp, fp, n_pos, n_neg = _roc_points(d, y)
    far = np.concatenate([[0.0], fp / n_neg])
    frr = np.concatenate([[1.0], (n_pos - tp) / n_pos])
    gap = far - frr  # -1 at t=-inf ... +1 at t=max
    i = int(np.argmax(gap >= 0))
    if gap[i] == 0:
        return float(far[i])
    s = -gap[i - 1] / (gap[i] - gap[i - 1])
    return float(far[i - 1] + s * (far[i] - far[i - 1]))


def tar_at_far(
    distances: ArrayLike, labels: ArrayLike, fars: Sequence[float] = (1e-3, 1e-2, 1e-1)
) -> dict[float, TarAtFar]:
    """TAR at the largest observed distance threshold whose FAR <= each target FAR.

    Unresolvable targets (fewer than 1/far different pairs) and single-class inputs give
    ``tar=nan`` with a note instead of raising.
    """
    d, y = _as_pairs_1d(distances, labels)
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    out: dict[float, TarAtFar] = {}
    if n_pos == 0 or n_neg == 0:
        note = (
            f"TAR@FAR needs both same (1) and different (0) pairs; got {len(y)} pairs, "
            f"all labelled {1 if n_neg == 0 else 0}"
        )
        return {float(f): TarAtFar(np.nan, np.nan, False, note) for f in fars}
    thr, tp, fp, _, _ = _roc_points(d, y)
    for far in fars:
        far = float(far)
        if not 0 < far <= 1:
            raise ValueError(f"target FAR must be in (0, 1]; got {far}")
        if n_neg * far < 1 - 1e-9:
            note = f"FAR {far:g} needs >= {int(np.ceil(1 / far - 1e-9))} different pairs; got {n_neg}"
            out[far] = TarAtFar(np.nan, np.nan, False, note)
            continue
        ok = np.flatnonzero(fp <= far * n_neg + 1e-9)
        if len(ok) == 0:
            note = f"more than {far:g} of the different pairs tie at the smallest distance; no threshold reaches FAR {far:g}"
            out[far] = TarAtFar(0.0, -np.inf, True, note)
            continue
        i = ok[-1]
        out[far] = TarAtFar(float(tp[i] / n_pos), float(thr[i]), True)
    return out


# --------------------------------------------------------------------- bootstrap


def _group_codes(groups: ArrayLike, n: int) -> tuple[NDArray[np.intp], int]:
    g = np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(f"groups must have shape ({n},) (one group label per row); got {g.shape}")
    uniq, codes = np.unique(g, return_inverse=True)
    return codes.reshape(-1), len(uniq)


def _row_counts(idx: NDArray[np.int64], m: int) -> NDArray[np.int64]:
    b = idx.shape[0]
    flat = (idx + (np.arange(b, dtype=np.int64) * m)[:, None]).ravel()
    return np.bincount(flat, minlength=b * m).reshape(b, m)


def _check_boot(n: int, n_boot: int) -> None:
    if n < 1 or n_boot < 1:
        raise ValueError(f"need n >= 1 and n_boot >= 1; got n={n}, n_boot={n_boot}")


_BLOCK_ELEMENTS = 1 << 19  # resamples are drawn and evaluated in blocks of about this many cells


def _draw_blocks(high: int, n: int, n_boot: int, seed: int) -> Iterator[NDArray[np.int64]]:
    """Blocks of resamples, each ``high`` uniform draws from range(high) (rows or groups).

    Rows per block depend only on n, so indices, weights and metrics see the same resamples.
    """
    rng = np.random.default_rng(seed)
    rows = max(1, _BLOCK_ELEMENTS // n)
    for start in range(0, n_boot, rows):
        yield rng.integers(0, high, size=(min(rows, n_boot - start), high))


def _weight_blocks(n: int, n_boot: int, seed: int, groups: ArrayLike | None) -> Iterator[NDArray[np.int64]]:
    _check_boot(n, n_boot)
    if groups is None:
        return (_row_counts(draws, n) for draws in _draw_blocks(n, n, n_boot, seed))
    codes, n_groups = _group_codes(groups, n)
    return (_row_counts(draws, n_groups)[:, codes] for draws in _draw_blocks(n_groups, n, n_boot, seed))


def _index_blocks(n: int, n_boot: int, seed: int, groups: ArrayLike | None) -> Iterator[NDArray[np.int64]]:
    _check_boot(n, n_boot)
    if groups is None:
        return _draw_blocks(n, n, n_boot, seed)
    codes, n_groups = _group_codes(groups, n)
    sizes = np.bincount(codes)
    if np.any(sizes != sizes[0]):
        raise ValueError(
            f"cluster resamples have variable length when group sizes differ (sizes {sizes.min()}..{sizes.max()}); "
            "use bootstrap_weights or a metric that accepts weights="
        )
    members = np.argsort(codes, kind="stable").reshape(n_groups, sizes[0])
    return (members[draws].reshape(len(draws), n) for draws in _draw_blocks(n_groups, n, n_boot, seed))


def bootstrap_weights(n: int, n_boot: int = 1000, seed: int = 0, groups: ArrayLike | None = None) -> NDArray[np.int64]:
    """(n_boot, n) resampling counts: how often each row occurs in each resample.

    Without ``groups`` rows are drawn with replacement (row b is the bincount of
    ``bootstrap_indices(n, n_boot, seed)[b]``). With ``groups`` whole groups are drawn
    with replacement (as many draws as groups) and each row gets its group's count.
    """
    return np.concatenate(list(_weight_blocks(n, n_boot, seed, groups)))


def bootstrap_indices(n: int, n_boot: int = 1000, seed: int = 0, groups: ArrayLike | None = None) -> NDArray[np.int64]:
    """(n_boot, n) row indices of bootstrap resamples (same resamples as
    :func:`bootstrap_weights` for the same arguments).

    With ``groups`` all groups must have the same size (so every resample has n rows);
    for unequal groups use :func:`bootstrap_weights` / a metric accepting ``weights``.
    """
    return np.concatenate(list(_index_blocks(n, n_boot, seed, groups)))


def _accepts_weights(metric: Callable[..., Any]) -> bool:
    try:
        return "weights" in inspect.signature(metric).parameters
    except (TypeError, ValueError):
        return False


def _bootstrap_apply(
    metric: Callable[..., Any],
    array_sets: Sequence[Sequence[NDArray[Any]]],
    n: int,
    n_boot: int,
    seed: int,
    groups: ArrayLike | None,
) -> list[FloatArray]:
    """``metric`` on every resample of each set of arrays (the same resamples for all sets).

    Resamples are generated and evaluated block by block (a few hundred rows), which
    keeps temporaries cache-sized; within a block the metric is fully vectorized.
    """
    weighted = _accepts_weights(metric)
    blocks = _weight_blocks(n, n_boot, seed, groups) if weighted else _index_blocks(n, n_boot, seed, groups)
    out: list[list[FloatArray]] = [[] for _ in array_sets]
    for block in blocks:
        for samples, arrays in zip(out, array_sets):
            value = metric(*arrays, weights=block) if weighted else metric(*(a[block] for a in arrays))
            samples.append(np.asarray(value, dtype=float).reshape(len(block)))
    return [np.concatenate(samples) for samples in out]


def _arrays_n(arrays: Sequence[ArrayLike]) -> tuple[list[NDArray[Any]], int]:
    if not arrays:
        raise ValueError("need at least one data array to resample")
    arrs = [np.asarray(a) for a in arrays]
    lengths = [a.shape[0] if a.ndim else 0 for a in arrs]
    if len(set(lengths)) != 1 or lengths[0] == 0:
        raise ValueError(f"arrays to resample must be non-empty with equal length; got lengths {lengths}")
    return arrs, lengths[0]


def _percentile_ci(samples: FloatArray, alpha: float) -> tuple[float, float]:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha}")
    bad = int(np.isnan(samples).sum())
    if bad == len(samples):
        return np.nan, np.nan
    if bad:
        warnings.warn(f"{bad} of {len(samples)} bootstrap resamples were degenerate (nan) and were dropped", RuntimeWarning, stacklevel=3)
    low, high = np.nanpercentile(samples, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)


def bootstrap_samples(
    metric: Callable[..., Any], *arrays: ArrayLike, n_boot: int = 1000, seed: int = 0, groups: ArrayLike | None = None
) -> FloatArray:
    """(n_boot,) metric values over bootstrap resamples of the rows of ``arrays``."""
    arrs, n = _arrays_n(arrays)
    return _bootstrap_apply(metric, [arrs], n, n_boot, seed, groups)[0]


def bootstrap_ci(
    metric: Callable[..., Any],
    *arrays: ArrayLike,
    n_boot: int = 1000,
    seed: int = 0,
    groups: ArrayLike | None = None,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile bootstrap (1 - alpha) interval of ``metric(*arrays)`` (see module doc)."""
    return _percentile_ci(bootstrap_samples(metric, *arrays, n_boot=n_boot, seed=seed, groups=groups), alpha)


def paired_bootstrap(
    metric: Callable[..., Any],
    x_a: ArrayLike,
    x_b: ArrayLike,
    *rest: ArrayLike,
    n_boot: int = 1000,
    seed: int = 0,
    groups: ArrayLike | None = None,
    alpha: float = 0.05,
) -> PairedComparison:
    """metric(x_a, *rest) - metric(x_b, *rest) with both evaluated on the same resamples.

    p-value: twice the share of bootstrap differences on the other side of 0, clipped to 1.
    """
    arrs, n = _arrays_n((x_a, x_b, *rest))
    diff = float(metric(arrs[0], *arrs[2:])) - float(metric(arrs[1], *arrs[2:]))
    sa, sb = _bootstrap_apply(metric, [[arrs[0], *arrs[2:]], [arrs[1], *arrs[2:]]], n, n_boot, seed, groups)
    diffs = sa - sb
    low, high = _percentile_ci(diffs, alpha)
    valid = diffs[~np.isnan(diffs)]
    if diff == 0 or len(valid) == 0:
        p = 1.0
    else:
        other_side = np.mean(valid <= 0) if diff > 0 else np.mean(valid >= 0)
        p = float(min(1.0, 2 * other_side))
    return PairedComparison(diff, low, high, p, n_boot)


# ----------------------------------------------------------------------- DeLong


def _midranks_1d(x: FloatArray) -> FloatArray:
    return _st().rankdata(x, method="average")


def _delong_components(scores: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Structural components V10 (per positive) and V01 (per negative) of each row of
    ``scores`` (similarities), via midranks (Sun & Xu 2014)."""
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    v10 = np.empty_like(pos)
    v01 = np.empty_like(neg)
    for r in range(scores.shape[0]):  # one row per classifier (2), not per resample
        tz = _midranks_1d(np.concatenate([pos[r], neg[r]]))
        v10[r] = (tz[:m] - _midranks_1d(pos[r])) / n
        v01[r] = 1.0 - (tz[m:] - _midranks_1d(neg[r])) / m
    return v10, v01


def delong_test(distances_a: ArrayLike, distances_b: ArrayLike, labels: ArrayLike) -> DeLongResult:
    """DeLong et al. (1988) test of AUC(a) = AUC(b) for two scorings of the same pairs."""
    da, y = _as_pairs_1d(distances_a, labels)
    db, _ = _as_pairs_1d(distances_b, labels)
    _check_same_length(distances_a=da, distances_b=db)
    _require_both_classes(y, "DeLong test")
    v10, v01 = _delong_components(-np.stack([da, db]), y)
    auc = v10.mean(axis=1)
    contrast = np.array([1.0, -1.0])
    var = contrast @ np.cov(v10) @ contrast / v10.shape[1] + contrast @ np.cov(v01) @ contrast / v01.shape[1]
    diff = float(auc[0] - auc[1])
    se = float(np.sqrt(max(var, 0.0)))
    if se > 0:
        z = diff / se
        p = float(2 * _st().norm.sf(abs(z)))
    else:  # identical scorings (or perfect separation by both)
        z = 0.0 if diff == 0 else float(np.sign(diff) * np.inf)
        p = 1.0 if diff == 0 else 0.0
    return DeLongResult(float(auc[0]), float(auc[1]), diff, se, float(z), p)


# ------------------------------------------------------------------ correlations


def _check_method(method: str, allowed: Sequence[str]) -> None:
    if method not in allowed:
        raise ValueError(f"method must be one of {list(allowed)}; got {method!r}")


def _tau_a(x: FloatArray, y: FloatArray, chunk: int = 1024) -> float:
    """Kendall tau-a = (concordant - discordant) / (n(n-1)/2); O(n^2) in row chunks."""
    n = len(x)
    s = 0.0
    for i in range(0, n, chunk):
        s += float(np.sum(np.sign(x[i : i + chunk, None] - x) * np.sign(y[i : i + chunk, None] - y)))
    return s / (n * (n - 1))  # s counts each unordered pair twice


def correlation(x: ArrayLike, y: ArrayLike, method: str = "pearson") -> CorrelationResult:
    """Correlation of x and y over pairs where both are finite (others dropped).

    ``pearson``/``spearman``/``kendall`` (tau-b) via scipy.stats; ``kendall_tau_a``
    by hand, with the p-value of scipy's Kendall test of the same S = C - D statistic.
    Fewer than 3 complete pairs or constant input give r = nan with a ``reason``.
    """
    _check_method(method, CORRELATION_METHODS)
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
    if method == "pearson":
        res = _st().pearsonr(xa, ya)
        r, p = res.statistic, res.pvalue
    elif method == "spearman":
        res = _st().spearmanr(xa, ya)
        r, p = res.statistic, res.pvalue
    elif method == "kendall":
        res = _st().kendalltau(xa, ya)
        r, p = res.statistic, res.pvalue
    else:
        r, p = _tau_a(xa, ya), _st().kendalltau(xa, ya).pvalue
    return CorrelationResult(float(r), float(p), n, method)


def pearson_r(x: ArrayLike, y: ArrayLike, weights: ArrayLike | None = None) -> Any:
    """[batched] Pearson r along the last axis; nan where a row is constant or has < 3 values."""
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = _check_same_length(x=np.atleast_1d(xa), y=np.atleast_1d(ya))
    wa = np.ones(n) if weights is None else _as_weights(weights, n)
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
    return _scalar(np.where(const, np.nan, np.clip(r, -1.0, 1.0)))


def _midranks(x: FloatArray, w: FloatArray | None) -> FloatArray:
    """Midranks along the last axis; with weights, the midranks in the expanded multiset."""
    if w is None:
        return _st().rankdata(x, method="average", axis=-1)
    order, shape, (xs, ws) = _sort_along(x, w)
    start, end, _ = _tie_groups(xs)
    cw = np.cumsum(np.broadcast_to(ws, shape), axis=-1)
    before = _take(cw - ws, start)
    ranks_sorted = before + (_take(cw, end) - before + 1.0) / 2.0
    inverse = np.argsort(order, axis=-1)
    return _take(ranks_sorted, inverse)


def spearman_r(x: ArrayLike, y: ArrayLike, weights: ArrayLike | None = None) -> Any:
    """[batched] Spearman rho (Pearson r of midranks) along the last axis."""
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    wa = None if weights is None else _as_weights(weights, xa.shape[-1])
    return pearson_r(_midranks(xa, wa), _midranks(ya, wa), wa)


# ------------------------------------------------------------------- reliability


def _as_ratings(ratings: ArrayLike) -> FloatArray:
    r = np.asarray(ratings, dtype=float)
    if r.ndim != 2:
        raise ValueError(f"ratings must have shape (n_items, n_participants); got {r.shape}")
    return r


def noise_ceiling(ratings: ArrayLike, method: str = "pearson") -> NoiseCeiling:
    """Noise ceiling of a (n_items, n_participants) rating matrix (NaN = missing).

    high: mean over participants of corr(participant, mean of all participants);
    low: mean over participants of corr(participant, mean of the others).
    """
    _check_method(method, CORRELATION_METHODS)
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


def _nanmean(values: Sequence[float]) -> float:
    v = np.asarray(values, dtype=float)
    return float(np.nanmean(v)) if np.isfinite(v).any() else np.nan


def split_half_reliability(
    ratings: ArrayLike, n_splits: int = 100, seed: int = 0, method: str = "pearson"
) -> float:
    """Mean over random participant half-splits of the Spearman-Brown corrected
    correlation 2r/(1+r) between the two halves' item means (NaN = missing)."""
    _check_method(method, ("pearson", "spearman"))
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


# --------------------------------------------------------------------------- RSA


def rdm_from_embeddings(emb: ArrayLike, metric: str = "correlation") -> FloatArray:
    """(n, n) representational dissimilarity matrix of (n, dim) embeddings."""
    _check_method(metric, RDM_METRICS)
    e = np.asarray(emb, dtype=float)
    if e.ndim != 2 or e.shape[0] < 2:
        raise ValueError(f"emb must have shape (n >= 2, dim); got {e.shape}")
    from scipy.spatial.distance import pdist, squareform

    return squareform(pdist(e, metric=metric), checks=False)


def _rdm_pairs(rdm_a: ArrayLike, rdm_b: ArrayLike, mask: ArrayLike | None) -> tuple[FloatArray, FloatArray, NDArray[np.bool_], tuple[Any, Any]]:
    a, b = np.asarray(rdm_a, dtype=float), np.asarray(rdm_b, dtype=float)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape != b.shape:
        raise ValueError(f"RDMs must be square and of equal shape; got {a.shape} and {b.shape}")
    iu = np.triu_indices(a.shape[0], k=1)
    keep = np.isfinite(a[iu]) & np.isfinite(b[iu])
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != a.shape:
            raise ValueError(f"mask must have shape {a.shape}; got {m.shape}")
        keep &= ~m[iu]
    return a[iu], b[iu], keep, iu


def compare_rdms(rdm_a: ArrayLike, rdm_b: ArrayLike, method: str = "spearman", mask: ArrayLike | None = None) -> float:
    """Correlation of two RDMs over the upper triangle (k=1), skipping masked (True) and NaN cells."""
    _check_method(method, CORRELATION_METHODS)
    a, b, keep, _ = _rdm_pairs(rdm_a, rdm_b, mask)
    return correlation(a[keep], b[keep], method).r


def _tau_a_weighted(x: FloatArray, y: FloatArray, w: FloatArray, chunk: int = 512) -> FloatArray:
    """tau-a of the multisets where pair p occurs w[b, p] times, for each row b."""
    num = np.zeros(w.shape[0])
    for i in range(0, len(x), chunk):
        s = np.sign(x[i : i + chunk, None] - x) * np.sign(y[i : i + chunk, None] - y)
        num += np.einsum("bc,bc->b", w[:, i : i + chunk], w @ s.T)
    m = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / (m * (m - 1))


def rsa_bootstrap(
    rdm_a: ArrayLike,
    rdm_b: ArrayLike,
    method: str = "spearman",
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    mask: ArrayLike | None = None,
) -> RSABootstrap:
    """Bootstrap over stimuli of :func:`compare_rdms`.

    Resample b takes stimuli ``bootstrap_indices(n, n_boot, seed)[b]``; cells pairing a
    duplicated stimulus with itself are masked, not counted as zero distance. Computed
    exactly via pair weights count_i * count_j on the original upper triangle.
    """
    _check_method(method, ("spearman", "pearson", "kendall_tau_a"))
    a, b, keep, (iu, ju) = _rdm_pairs(rdm_a, rdm_b, mask)
    estimate = compare_rdms(rdm_a, rdm_b, method, mask)
    counts = bootstrap_weights(np.shape(rdm_a)[0], n_boot, seed).astype(float)
    w = counts[:, iu] * counts[:, ju] * keep
    a, b = np.where(keep, a, 0.0), np.where(keep, b, 0.0)
    if method == "pearson":
        samples = np.asarray(pearson_r(a, b, w), dtype=float)
    elif method == "spearman":
        samples = np.asarray(spearman_r(a, b, w), dtype=float)
    else:
        samples = _tau_a_weighted(a, b, w)
    samples = np.where(w.sum(axis=1) < 3, np.nan, samples)  # as correlation(): n < 3 -> nan
    low, high = _percentile_ci(samples, alpha)
    return RSABootstrap(estimate, low, high, samples)


# ---------------------------------------------------------------- identification


def _probe_ranks(dist: ArrayLike, probe_ids: ArrayLike, gallery_ids: ArrayLike) -> NDArray[np.int64]:
    """Pessimistic rank of the first correct gallery match for each probe."""
    d = np.asarray(dist, dtype=float)
    p, g = np.asarray(probe_ids), np.asarray(gallery_ids)
    if d.ndim != 2 or d.shape != (len(p), len(g)):
        raise ValueError(f"dist must have shape (n_probe={len(p)}, n_gallery={len(g)}); got {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError("dist must be finite")
    genuine = p[:, None] == g[None, :]
    missing = ~genuine.any(axis=1)
    if missing.any():
        absent = np.unique(p[missing])
        raise ValueError(f"probe identities absent from the gallery: {absent[:10].tolist()} ({len(absent)} in all)")
    best = np.where(genuine, d, np.inf).min(axis=1)
    return 1 + np.sum(~genuine & (d <= best[:, None]), axis=1)


def cmc_curve(dist: ArrayLike, probe_ids: ArrayLike, gallery_ids: ArrayLike, max_rank: int | None = None) -> FloatArray:
    """CMC: element k-1 is the share of probes with a correct match within rank k.

    Ties are pessimistic: rank = 1 + items strictly closer + wrong items at equal distance.
    """
    ranks = _probe_ranks(dist, probe_ids, gallery_ids)
    max_rank = np.shape(dist)[1] if max_rank is None else int(max_rank)
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1; got {max_rank}")
    return (ranks[:, None] <= np.arange(1, max_rank + 1)[None, :]).mean(axis=0)


def rank_k_accuracy(
    dist: ArrayLike, probe_ids: ArrayLike, gallery_ids: ArrayLike, ks: Sequence[int] = (1, 5)
) -> dict[int, float]:
    """Rank-k identification accuracy for each k (pessimistic ties, as :func:`cmc_curve`)."""
    ranks = _probe_ranks(dist, probe_ids, gallery_ids)
    if any(int(k) < 1 for k in ks):
        raise ValueError(f"ranks k must be >= 1; got {list(ks)}")
    return {int(k): float(np.mean(ranks <= int(k))) for k in ks}


# ----------------------------------------------------------------------- effects


def relative_difference(a: ArrayLike, b: ArrayLike) -> Any:
    """[batched] (mean(a) - mean(b)) / (mean(a) + mean(b)); nan if the sum is 0."""
    ma = np.mean(np.asarray(a, dtype=float), axis=-1)
    mb = np.mean(np.asarray(b, dtype=float), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _scalar(np.where(ma + mb == 0, np.nan, (ma - mb) / (ma + mb)))


def cohens_d(a: ArrayLike, b: ArrayLike) -> Any:
    """[batched] Cohen's d = (mean(a) - mean(b)) / pooled SD (ddof=1); nan if the SD is 0."""
    aa, ba = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    na, nb = aa.shape[-1], ba.shape[-1]
    if na < 1 or nb < 1 or na + nb < 3:
        raise ValueError(f"Cohen's d needs >= 1 value per group and >= 3 in all; got {na} and {nb}")
    ma, mb = aa.mean(axis=-1), ba.mean(axis=-1)
    ss = ((aa - ma[..., None]) ** 2).sum(-1) + ((ba - mb[..., None]) ** 2).sum(-1)
    sd = np.sqrt(ss / (na + nb - 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return _scalar(np.where(sd == 0, np.nan, (ma - mb) / sd))


def cohens_d_ci(
    a: ArrayLike, b: ArrayLike, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float]:
    """Percentile bootstrap interval of Cohen's d, resampling a and b independently."""
    aa, ba = np.asarray(a, dtype=float).reshape(-1), np.asarray(b, dtype=float).reshape(-1)
    _check_boot(min(len(aa), len(ba)), n_boot)
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, len(aa), size=(n_boot, len(aa)))
    ib = rng.integers(0, len(ba), size=(n_boot, len(ba)))
    return _percentile_ci(np.asarray(cohens_d(aa[ia], ba[ib])), alpha)


def _weighted_mean(x: ArrayLike, weights: ArrayLike | None = None) -> Any:
    xa = np.asarray(x, dtype=float)
    if weights is None:
        return _scalar(xa.mean(axis=-1))
    w = _as_weights(weights, xa.shape[-1])
    return _scalar((w * xa).sum(axis=-1) / w.sum(axis=-1))


def mean_ci(
    x: ArrayLike, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05, groups: ArrayLike | None = None
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (rows, or whole groups, resampled)."""
    return bootstrap_ci(_weighted_mean, np.asarray(x, dtype=float).reshape(-1), n_boot=n_boot, seed=seed, groups=groups, alpha=alpha)
