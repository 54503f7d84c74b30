"""Folds and the k-fold verification protocol (LFW / insightface).

Per fold, the accuracy-maximizing threshold is fit on the other folds (:meth:`Roc.accuracy_threshold`,
the same ROC core as every other verification metric) and applied to the held-out fold; the
accuracy is the mean (and population std) over folds. :func:`fold_accuracy` recomputes it under
resampling counts from each pair's held-out correctness, thresholds staying as fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._checks import FloatArray, as_pairs, as_weights
from .roc import Roc

__all__ = [
    "FoldAccuracy",
    "KFoldResult",
    "fold_accuracy",
    "identity_folds",
    "kfold_accuracy",
    "make_folds",
    "stratified_folds",
]


@dataclass(frozen=True)
class KFoldResult:
    """k-fold verification accuracy (threshold fit on the other folds)."""

    mean: float
    std: float  # population std (ddof=0) over folds, like np.std / insightface
    per_fold: FloatArray  # held-out accuracy per fold (sorted fold ids)
    thresholds: FloatArray  # fit on each fold's training part; -inf / +inf = all different / all same
    correct: NDArray[np.int64]  # per pair: 1 if its held-out prediction was right
    note: str = ""


def make_folds(
    n: int,
    k: int = 10,
    *,
    fold_column: ArrayLike | None = None,
    identities: ArrayLike | None = None,
    labels: ArrayLike | None = None,
) -> NDArray[np.int64]:
    """Fold id (0 .. k-1) per pair.

    Parameters
    ----------
    n : int
        Number of pairs.
    k : int, default=10
        Number of folds (ignored with ``fold_column``), 2 <= k <= n.
    fold_column : array-like of shape (n,), default=None
        Given folds, relabelled 0.. in sorted order of their distinct values.
    identities : array-like of shape (n,) or (n, 2), default=None
        Identity-disjoint folds (:func:`identity_folds`), stratified by ``labels`` when given.
    labels : array-like of shape (n,), default=None
        Stratified folds (:func:`stratified_folds`).

    Returns
    -------
    ndarray of shape (n,)
        Fold ids. Without any of the keyword arguments: contiguous blocks in file order
        (``np.array_split``, as LFW's View 2).

    Raises
    ------
    ValueError
        If ``k`` is out of range, a column has the wrong shape, or the folds cannot be made.
    """
    n = int(n)
    if fold_column is not None:
        col = np.asarray(fold_column)
        if col.ndim != 1 or len(col) != n:
            raise ValueError(f"fold_column must have shape ({n},); got {col.shape}")
        uniq, folds = np.unique(col, return_inverse=True)
        if len(uniq) < 2:
            raise ValueError(f"fold_column must contain at least 2 distinct folds; got {uniq.tolist()}")
        return folds.reshape(-1).astype(np.int64)
    if k < 2 or k > n:
        raise ValueError(f"k must satisfy 2 <= k <= n; got k={k}, n={n}")
    if identities is not None:
        return identity_folds(n, k, identities, labels)
    if labels is not None:
        return stratified_folds(labels, k)
    return np.repeat(np.arange(k, dtype=np.int64), [len(b) for b in np.array_split(np.arange(n), k)])


def stratified_folds(labels: ArrayLike, k: int) -> NDArray[np.int64]:
    """Folds that each hold the same share of every class, keeping file order within each class.

    The allocation is that of scikit-learn's ``StratifiedKFold(shuffle=False)``: class c gets, in
    fold i, as many pairs as the class-sorted labels hold of c at positions i, i + k, i + 2k, ...
    (classes numbered by first appearance); the first pairs of a class go to fold 0, the next to
    fold 1, and so on.

    Parameters
    ----------
    labels : array-like of shape (n,)
        Class per pair.
    k : int
        Number of folds, 2 <= k <= n.

    Returns
    -------
    ndarray of shape (n,)
        Fold ids 0 .. k-1.
    """
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
    """Identity-disjoint folds: no identity appears in two folds.

    Pairs are grouped into connected components of the identity graph. Components go, largest first
    (ties: first appearance), to the fold whose load is lowest after adding them (ties: lowest id).
    Without ``labels`` the load is the pair count; with them, the sum over classes of each class's
    count relative to its share per fold, so the folds are stratified as far as the identities allow.

    Parameters
    ----------
    n : int
        Number of pairs.
    k : int
        Number of folds.
    identities : array-like of shape (n,) or (n, 2)
        The identity (or the two identities) of each pair.
    labels : array-like of shape (n,), default=None
        Class per pair, for stratification.

    Returns
    -------
    ndarray of shape (n,)
        Fold ids 0 .. k-1.

    Raises
    ------
    ValueError
        When there are fewer components than folds or, with ``labels``, when a fold ends up without
        one of the classes.
    """
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
            raise ValueError(
                f"the identities allow no {k} disjoint folds that each hold both classes "
                f"({len(empty)} fold/class combination(s) empty, e.g. fold {empty[0][0]})"
            )
    return fold_of_comp[comp]


def kfold_accuracy(distances: ArrayLike, labels: ArrayLike, folds: ArrayLike) -> KFoldResult:
    """k-fold verification accuracy: each fold scored at the threshold fit on the other folds.

    The fit threshold maximizes accuracy on the training part (midpoint candidates plus -inf and
    +inf, ties -> smallest; see :meth:`Roc.accuracy_threshold`); a pair is called "same" iff its
    distance is at most the threshold.

    Parameters
    ----------
    distances : array-like of shape (n,)
        Finite pair distances.
    labels : array-like of shape (n,)
        Bool or 0/1, 1 = same identity.
    folds : array-like of shape (n,)
        Fold id per pair; at least 2 distinct ids.

    Returns
    -------
    KFoldResult
        Mean and population std over folds (sorted fold ids), per-fold accuracies and thresholds,
        and each pair's held-out correctness. A held-out fold with one class is noted.

    Raises
    ------
    ValueError
        If a fold's training part lacks same or different pairs, or inputs are malformed.
    """
    d, y = as_pairs(distances, labels)
    f = np.asarray(folds)
    if f.shape != d.shape:
        raise ValueError(f"folds must have shape {d.shape}; got {f.shape}")
    fold_ids = np.unique(f)
    if len(fold_ids) < 2:
        raise ValueError(f"need at least 2 folds; got fold ids {fold_ids.tolist()}")
    held_out = f[None, :] == fold_ids[:, None]  # (k, n)
    for fid, test in zip(fold_ids, held_out):
        train_y = y[~test]
        for cls, name in ((1.0, "same (1)"), (0.0, "different (0)")):
            if not np.any(train_y == cls):
                raise ValueError(
                    f"fold {fid}: its training part (all other folds, {len(train_y)} pairs) has no {name} pairs"
                )
    thresholds = Roc(d, y).accuracy_threshold(~held_out)  # every fold's fit at once: one row per fold
    fold_index = np.searchsorted(fold_ids, f)
    correct = ((d <= thresholds[fold_index]) == (y == 1)).astype(np.int64)
    accs, notes = [], []
    for fid, test in zip(fold_ids, held_out):
        accs.append(correct[test].mean())
        if len(np.unique(y[test])) < 2:
            notes.append(f"fold {fid}: held-out part has only label {int(y[test][0])}")
    accs_a = np.asarray(accs)
    return KFoldResult(
        float(accs_a.mean()), float(accs_a.std()), accs_a, thresholds.astype(float), correct, "; ".join(notes)
    )


def fold_accuracy(correct: ArrayLike, folds: ArrayLike, counts: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """k-fold accuracy of resampled pairs from their held-out correctness (thresholds stay as fit).

    Parameters
    ----------
    correct : array-like of shape (n,)
        1 where a pair's held-out prediction was right (:attr:`KFoldResult.correct`).
    folds : array-like of shape (n,)
        Fold ids 0 .. k-1.
    counts : array-like of shape (b, n)
        Resampling counts.

    Returns
    -------
    mean, std : ndarray of shape (b,)
        Mean and population std over folds of each fold's weighted held-out accuracy. A fold
        absent from a resample is left out of that resample's mean and std.
    """
    return FoldAccuracy(correct, folds)(counts)


class FoldAccuracy:
    """:func:`fold_accuracy` for one ``correct`` and ``folds`` over many count blocks: the pairs are grouped by
    (fold, correctness) once, and each block's per-fold sums are one gather and one ``reduceat``, in int64
    (exact, so equal to float sums of the same integer counts)."""

    def __init__(self, correct: ArrayLike, folds: ArrayLike):
        c = np.asarray(correct)
        f = np.asarray(folds)
        if c.ndim != 1 or f.shape != c.shape:
            raise ValueError(f"correct and folds must be 1-D of equal length; got shapes {c.shape} and {f.shape}")
        if f.dtype.kind not in "iu" or (len(f) and f.min() < 0):
            raise ValueError(f"folds must be fold ids 0 .. k-1; got dtype {f.dtype}")
        self.correct, self.folds, self.k = c, f, int(f.max()) + 1
        self._exact = c.dtype.kind in "biu"
        if self._exact:
            groups, code = np.unique(np.stack([f, c.astype(np.int64)]), axis=1, return_inverse=True)
            code = code.reshape(-1)
            self._order = np.argsort(code, kind="stable")
            self._starts = np.flatnonzero(np.append(True, np.diff(code[self._order]) != 0))
            to_fold = np.zeros((groups.shape[1], self.k), dtype=np.int64)
            to_fold[np.arange(groups.shape[1]), groups[0]] = 1
            self._to_fold, self._to_right = to_fold, to_fold * groups[1][:, None]

    def __call__(self, counts: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Mean and population std over folds, (b,) each, for a (b, n) count matrix."""
        c = self.correct
        w = as_weights(counts, len(c))
        if w.ndim != 2:
            raise ValueError(f"counts must have shape (n_resamples, {len(c)}); got {w.shape}")
        if self._exact and w.dtype.kind in "biu":
            sums = np.add.reduceat(w.astype(np.int64, copy=False).take(self._order, axis=1), self._starts, axis=1)
            right, total = sums @ self._to_right, sums @ self._to_fold
        else:
            fold_matrix = np.eye(self.k)[self.folds]
            wf = w.astype(float)
            right, total = (wf * c) @ fold_matrix, wf @ fold_matrix
        with np.errstate(invalid="ignore", divide="ignore"):
            per_fold = right / total
            return np.nanmean(per_fold, axis=1), np.nanstd(per_fold, axis=1)
