"""One count-weighted ROC core for verification metrics.

Conventions
-----------
* ``distances`` are floats, smaller = more similar; ``labels`` are bool or 0/1, 1 = same identity.
  A pair is predicted "same" iff ``distance <= threshold``; thresholds are in distance units.
* ``weights`` are resampling counts: shape ``(n,)`` for one data set or ``(b, n)`` for ``b``
  resamples. Row ``w`` gives exactly the metric of the data set in which pair ``i`` occurs
  ``w[i]`` times (a bootstrap resample, or a training part of the k-fold protocol).

:class:`Roc` sorts the pairs once. For a ``(b, n)`` count matrix it sums the weighted same and
different pairs at each distinct distance (``(b, m)``, ``m`` distinct distances); their cumulative
sums are the ROC of every row. AUC (Mann-Whitney, ties count 1/2), the Youden threshold and the
accuracy at it, the EER, TAR@FAR and the accuracy-maximizing threshold of the k-fold protocol are
all read from these counts. The plain functions (:func:`roc_auc`, :func:`eer`, :func:`tar_at_far`,
:func:`in_sample_verification`) are the ``b = 1`` case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._checks import FloatArray, as_count_matrix, as_pairs, require_both_classes

__all__ = ["Roc", "RocMetrics", "TarAtFar", "eer", "in_sample_verification", "roc_auc", "tar_at_far"]

FAR_TOLERANCE = 1e-9  # a false accept count within this of the FAR budget still meets it
ROW_BLOCK_CELLS = 1 << 17  # integer count rows x distinct distances scored at once by `Roc.metrics` (cache-sized)
MAX_TIE_STEPS = 16  # ties of more pairs than this at one distance: counts summed over the sorted pairs instead


@dataclass(frozen=True)
class TarAtFar:
    """True accept rate at a target false accept rate (see :func:`tar_at_far`)."""

    tar: float
    threshold: float
    reachable: bool
    note: str = ""


@dataclass(frozen=True)
class RocMetrics:
    """Verification metrics of each row of a count matrix, every field of shape ``(b,)``.

    Rows lacking same or different pairs are NaN throughout.
    """

    auc: FloatArray
    accuracy: FloatArray  # in-sample accuracy at the Youden threshold
    threshold: FloatArray  # the Youden threshold (an observed distance; ties -> smallest)
    eer: FloatArray
    tar: dict[float, FloatArray] = field(default_factory=dict)  # NaN where the FAR needs more different pairs
    tar_threshold: dict[float, FloatArray] = field(default_factory=dict)


@dataclass(frozen=True)
class _Curve:
    """Per row: weighted same/different pairs at each distinct distance and their cumulative sums (int64 for
    integer counts, float64 for float weights)."""

    pos: NDArray[Any]  # (b, m)
    neg: NDArray[Any]
    tp: NDArray[Any]  # same pairs at distance <= each threshold
    fp: NDArray[Any]  # different pairs at distance <= each threshold
    total: NDArray[Any]  # pos + neg: the weight at each distinct distance

    @cached_property
    def present(self) -> NDArray[np.bool_]:
        """(b, m): the distances that occur in each row (non-zero weight)."""
        return self.total > 0

    @cached_property
    def last_present(self) -> NDArray[np.intp]:
        """(b, m): per row, the largest present index <= j (-1 when none)."""
        m = self.pos.shape[1]
        return np.maximum.accumulate(np.where(self.present, np.arange(m), -1), axis=1)

    @property
    def n_pos(self) -> FloatArray:
        return self.tp[:, -1]

    @property
    def n_neg(self) -> FloatArray:
        return self.fp[:, -1]

    @property
    def degenerate(self) -> NDArray[np.bool_]:
        return (self.n_pos == 0) | (self.n_neg == 0)


class Roc:
    """Verification pairs sorted once by distance; ROC counts and metrics under resampling counts.

    Parameters
    ----------
    distances : array-like of shape (n,)
        Finite pair distances (smaller = more similar).
    labels : array-like of shape (n,)
        Bool or 0/1 labels, 1 = same identity.

    Attributes
    ----------
    thresholds : ndarray of shape (m,)
        The distinct distances, ascending: the candidate thresholds.
    n : int
        Number of pairs.
    n_pos, n_neg : int
        Number of same and different pairs (unweighted).

    Examples
    --------
    >>> roc = Roc([0.1, 0.3, 0.3, 0.5], [1, 1, 0, 0])
    >>> float(roc.metrics().auc[0])
    0.875
    """

    def __init__(self, distances: ArrayLike, labels: ArrayLike):
        d, y = as_pairs(distances, labels)
        order = np.argsort(d, kind="stable")
        ds = d[order]
        self._starts = np.flatnonzero(np.append(True, ds[1:] != ds[:-1]))
        self._order = order
        self._y = y[order]
        self._sums = _DistanceSums(order, self._starts, self._y == 1)
        self.thresholds: FloatArray = ds[self._starts]
        self.n = len(d)
        self.n_pos = int(y.sum())
        self.n_neg = self.n - self.n_pos

    # --- counts ------------------------------------------------------------------------------
    def counts(self, weights: ArrayLike | None = None) -> tuple[NDArray[Any], NDArray[Any]]:
        """Weighted same and different pairs at each distinct distance.

        Integer (or bool, or absent) weights are summed in int64, exactly; float weights in float64.
        Every metric reads these counts through the same float operations, so both give the same numbers.

        Parameters
        ----------
        weights : array-like of shape (n,) or (b, n), default=None
            Resampling counts; None counts every pair once (b = 1).

        Returns
        -------
        pos, neg : ndarray of shape (b, m)
            Same / different pairs at ``thresholds[j]`` in each row.
        """
        curve = self._curve(weights)
        return curve.pos, curve.neg

    def _curve(self, weights: ArrayLike | None) -> _Curve:
        return self._curve_of(as_count_matrix(weights, self.n))

    def _curve_of(self, w: NDArray[Any]) -> _Curve:
        """The curve of a validated (b, n) count matrix (`as_count_matrix`)."""
        if w.dtype.kind == "f":
            ws = w[:, self._order]
            pos = np.add.reduceat(ws * self._y, self._starts, axis=1)
            neg = np.add.reduceat(ws * (1.0 - self._y), self._starts, axis=1)
            return _Curve(pos, neg, np.cumsum(pos, axis=1), np.cumsum(neg, axis=1), pos + neg)
        total, pos = self._sums(w)
        neg = total - pos
        return _Curve(pos, neg, np.cumsum(pos, axis=1), np.cumsum(neg, axis=1), total)

    # --- metrics -----------------------------------------------------------------------------
    def metrics(self, weights: ArrayLike | None = None, fars: Sequence[float] = ()) -> RocMetrics:
        """AUC, Youden threshold and accuracy, EER and TAR@FAR of each row, from one pass.

        Parameters
        ----------
        weights : array-like of shape (n,) or (b, n), default=None
            Resampling counts; None counts every pair once (b = 1).
        fars : sequence of float, default=()
            Target false accept rates in (0, 1].

        Returns
        -------
        RocMetrics
            Arrays of shape (b,); NaN for rows lacking a class.
        """
        targets = [_check_far(f) for f in fars]
        w = as_count_matrix(weights, self.n)
        rows = max(1, ROW_BLOCK_CELLS // len(self.thresholds))
        if w.dtype.kind == "f" or len(w) <= rows:
            return self._metrics(w, targets)
        # integer counts, exact: rows a few at a time, so that the (rows, m) arrays of a part stay in cache
        parts = [self._metrics(w[start : start + rows], targets) for start in range(0, len(w), rows)]
        return RocMetrics(
            auc=np.concatenate([p.auc for p in parts]),
            accuracy=np.concatenate([p.accuracy for p in parts]),
            threshold=np.concatenate([p.threshold for p in parts]),
            eer=np.concatenate([p.eer for p in parts]),
            tar={f: np.concatenate([p.tar[f] for p in parts]) for f in targets},
            tar_threshold={f: np.concatenate([p.tar_threshold[f] for p in parts]) for f in targets},
        )

    def _metrics(self, w: NDArray[Any], targets: list[float]) -> RocMetrics:
        """`metrics` of a validated (b, n) count matrix."""
        c = self._curve_of(w)
        with np.errstate(invalid="ignore", divide="ignore"):
            auc = _auc(c)
            threshold, accuracy = _youden(c, self.thresholds)
            rate = _eer(c)
            tars = _tars(c, self.thresholds, targets)
        bad = c.degenerate

        def nan(values: FloatArray) -> FloatArray:
            return np.where(bad, np.nan, values)

        return RocMetrics(
            auc=nan(auc),
            accuracy=nan(accuracy),
            threshold=nan(threshold),
            eer=nan(rate),
            tar={f: nan(t) for f, (t, _) in tars.items()},
            tar_threshold={f: nan(t) for f, (_, t) in tars.items()},
        )

    def auc(self, weights: ArrayLike | None = None) -> FloatArray:
        """(b,) ROC AUC of similarity = -distance (Mann-Whitney U, ties count 1/2); NaN for one-class rows."""
        c = self._curve(weights)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(c.degenerate, np.nan, _auc(c))

    def eer(self, weights: ArrayLike | None = None) -> FloatArray:
        """(b,) equal error rate, interpolated on the ROC; NaN for one-class rows."""
        c = self._curve(weights)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(c.degenerate, np.nan, _eer(c))

    def accuracy_threshold(self, weights: ArrayLike | None = None) -> FloatArray:
        """The accuracy-maximizing threshold of each row (the fit step of the k-fold protocol).

        Candidates are -inf (all pairs "different"), the midpoints between consecutive distinct
        distances present in the row (non-zero weight), and +inf (all "same"); ties go to the
        smallest candidate.

        Parameters
        ----------
        weights : array-like of shape (n,) or (b, n), default=None
            Counts of the pairs to fit on, e.g. a 0/1 mask of the training folds.

        Returns
        -------
        ndarray of shape (b,)
        """
        pos, neg = self.counts(weights)
        b, m = pos.shape
        zero = np.zeros((b, 1), dtype=pos.dtype)
        cp = np.concatenate([zero, np.cumsum(pos, axis=1)], axis=1)  # candidate j: "same" for thresholds[:j]
        cn = np.concatenate([zero, np.cumsum(neg, axis=1)], axis=1)
        best = np.argmax(cp + (cn[:, -1:] - cn), axis=1)  # the first best never follows an absent distance
        present = (pos + neg) > 0
        position = np.where(present, np.arange(m), m)
        following = np.minimum.accumulate(position[:, ::-1], axis=1)[:, ::-1]  # next present index >= j
        following = np.concatenate([following, np.full((b, 1), m)], axis=1)
        upper = following[np.arange(b), best]
        low = self.thresholds[np.maximum(best - 1, 0)]
        high = self.thresholds[np.minimum(upper, m - 1)]
        return np.where(best == 0, -np.inf, np.where(upper == m, np.inf, (low + high) / 2.0))


class _DistanceSums:
    """Integer counts summed per distinct distance: all pairs (`total`) and the same pairs (`pos`), exactly.

    With few ties, the first pair at each distance is read in one gather and each further step adds one more pair to
    every distance that has one (as many steps as the largest tie has pairs after its first), so no (b, n) array is
    sorted; with larger ties the sorted counts are summed by `reduceat`."""

    def __init__(self, order: NDArray[np.intp], starts: NDArray[np.intp], same: NDArray[np.bool_]):
        """`same`: the label of each pair in sorted order (`order`); `starts`: where each distinct distance begins."""
        self.order, self.starts, self.same = order, starts, same
        sizes = np.diff(np.append(starts, len(order)))
        self.first, self.first_same = order[starts], same[starts]
        self.steps: list[tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.bool_]]] | None = []
        if sizes.max() - 1 > MAX_TIE_STEPS:
            self.steps = None
            return
        for k in range(1, int(sizes.max())):
            tied = np.flatnonzero(sizes > k)  # the distinct distances with more than k pairs
            self.steps.append((tied, order[starts[tied] + k], same[starts[tied] + k]))

    def __call__(self, w: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(total, pos), each (b, m), for integer counts `w` (b, n) in input order."""
        if self.steps is None:
            ws = w.take(self.order, axis=1)
            return np.add.reduceat(ws, self.starts, axis=1), np.add.reduceat(
                np.where(self.same, ws, 0), self.starts, axis=1
            )
        total = w.take(self.first, axis=1)
        pos = np.where(self.first_same, total, 0)
        for tied, pairs, same in self.steps:
            extra = w[:, pairs]
            total[:, tied] += extra
            if same.any():
                pos[:, tied[same]] += extra[:, same]
        return total, pos


def _check_far(far: float) -> float:
    far = float(far)
    if not 0 < far <= 1:
        raise ValueError(f"target FAR must be in (0, 1]; got {far}")
    return far


def _auc(c: _Curve) -> FloatArray:
    # P(d_same < d_diff) + P(tie) / 2 = sum_j pos_j (N - fp_j + neg_j / 2) / (P N)
    n_pos, n_neg = c.n_pos, c.n_neg
    mann_whitney = n_pos * n_neg - np.einsum("bi,bi->b", c.pos, c.fp) + 0.5 * np.einsum("bi,bi->b", c.pos, c.neg)
    return mann_whitney / (n_pos * n_neg)


def _youden(c: _Curve, thresholds: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Observed distance maximizing TPR - FPR (ties -> smallest), and the accuracy there."""
    n_pos, n_neg = c.n_pos, c.n_neg
    j = c.tp / n_pos[:, None]
    j -= c.fp / n_neg[:, None]  # TPR - FPR, computed like sklearn's roc_curve
    best = np.argmax(j, axis=1)
    rows = np.arange(len(best))
    # Thresholds must be distances present in the row. An absent distance repeats the J of the distance before
    # it, so it is the first maximum only where no present distance precedes it: those rows are searched again
    # among their present distances alone.
    absent = np.flatnonzero(c.total[rows, best] == 0)
    if len(absent):
        again = j[absent]
        again[c.total[absent] == 0] = -np.inf
        best[absent] = np.argmax(again, axis=1)
    accuracy = (c.tp[rows, best] + n_neg - c.fp[rows, best]) / (n_pos + n_neg)
    return thresholds[best], accuracy


def _first(b: int, m: int, test: Any) -> NDArray[np.intp]:
    """Per row, the first index j in [0, m) where the monotone test(rows, j) (False ... False True ... True) holds;
    m where it never does. Binary lifting: log2(m) evaluations of b points instead of a pass over (b, m); each step
    of 2^k moves past 2^k more failing indices where the last of them fails too."""
    found = np.zeros(b, dtype=np.intp)  # per row: the test fails at every index below this
    rows = np.arange(b)
    step = 1 << max(m.bit_length() - 1, 0)
    while step:
        probe = found + (step - 1)
        passes = (probe < m) & ~test(rows, np.minimum(probe, m - 1))
        found += np.where(passes, step, 0)
        step >>= 1
    return found


def _eer(c: _Curve) -> FloatArray:
    """FAR = FRR, linearly interpolated between the ROC points where FAR - FRR changes sign.

    The ROC starts at threshold -inf (FAR 0, FRR 1); the crossing is the first threshold j with
    FAR_j >= FRR_j (so FAR - FRR >= 0; FAR grows and FRR falls with j, so it is found by bisection),
    interpolated from the point before it."""
    n_pos, n_neg = c.n_pos, c.n_neg
    b, m = c.tp.shape

    def far(rows: NDArray[np.intp], j: NDArray[np.intp]) -> FloatArray:
        return np.asarray(c.fp[rows, j] / n_neg[rows], dtype=float)

    def frr(rows: NDArray[np.intp], j: NDArray[np.intp]) -> FloatArray:
        return np.asarray((n_pos[rows] - c.tp[rows, j]) / n_pos[rows], dtype=float)

    j = _first(b, m, lambda rows, j: far(rows, j) >= frr(rows, j))
    rows = np.arange(b)
    j = np.where(j == m, 0, j)  # never (a one-class row, NaN later): as the first point
    f1 = far(rows, j)
    g1 = f1 - frr(rows, j)
    before = np.maximum(j - 1, 0)
    f0 = np.where(j > 0, far(rows, before), 0.0)
    g0 = np.where(j > 0, far(rows, before) - frr(rows, before), -1.0)
    return np.where(g1 == 0, f1, f0 + (-g0 / (g1 - g0)) * (f1 - f0))


def _tars(c: _Curve, thresholds: FloatArray, fars: list[float]) -> dict[float, tuple[FloatArray, FloatArray]]:
    """Per target FAR: TAR and threshold at the largest distance present in the row whose FAR <= far; NaN when
    the row has fewer than 1 / far different pairs, 0 at -inf when even the smallest distance exceeds the FAR.
    The false accepts grow with the threshold, so the thresholds within the FAR are a prefix of each row
    (found by bisection); with integer counts the last distance present in it is the first j whose
    cumulative count reaches the prefix's total (bisection again). All FARs are searched at once: one query
    per (far, row)."""
    if not fars:
        return {}
    b, m = c.tp.shape
    rows = np.tile(np.arange(b), len(fars))  # far-major: the rows of the first FAR, then of the next ...
    far = np.repeat(np.asarray(fars, dtype=float), b)
    n_pos, n_neg = c.n_pos[rows], c.n_neg[rows]
    bound = far * n_neg + FAR_TOLERANCE
    within = _first(len(rows), m, lambda q, j: c.fp[rows[q], j] > bound[q])
    end = np.maximum(within - 1, 0)
    if c.tp.dtype.kind == "f":  # float weights: presence from the counts themselves
        last = c.last_present[rows, end]
    else:
        total = c.tp[rows, end] + c.fp[rows, end]
        last = _first(len(rows), m, lambda q, j: c.tp[rows[q], j] + c.fp[rows[q], j] >= total[q])
        last = np.where(total > 0, last, -1)
    last = np.where(within > 0, last, -1)
    reached = last >= 0
    last = np.maximum(last, 0)
    tar = np.where(reached, c.tp[rows, last] / n_pos, 0.0)
    threshold = np.where(reached, thresholds[last], -np.inf)
    resolvable = n_neg * far >= 1 - FAR_TOLERANCE
    tar, threshold = np.where(resolvable, tar, np.nan), np.where(resolvable, threshold, np.nan)
    return {f: (tar[i * b : (i + 1) * b], threshold[i * b : (i + 1) * b]) for i, f in enumerate(fars)}


def _one_or_many(values: FloatArray, weights: ArrayLike | None) -> Any:
    """A float for unweighted or 1-D weights, else the (b,) array."""
    return float(values[0]) if weights is None or np.ndim(weights) == 1 else values


# --------------------------------------------------------------------------- plain functions


def roc_auc(distances: ArrayLike, labels: ArrayLike, weights: ArrayLike | None = None) -> Any:
    """ROC AUC of similarity = -distance (Mann-Whitney U with midranks: ties count 1/2).

    Equals ``sklearn.metrics.roc_auc_score(labels, -distances)``.

    Parameters
    ----------
    distances : array-like of shape (n,)
        Finite pair distances.
    labels : array-like of shape (n,)
        Bool or 0/1, 1 = same identity; both classes must occur.
    weights : array-like of shape (n,) or (b, n), default=None
        Resampling counts.

    Returns
    -------
    float or ndarray of shape (b,)
        The AUC; a float unless ``weights`` is 2-D. A weighted row lacking a class gives NaN.

    Raises
    ------
    ValueError
        If ``labels`` hold a single class, or inputs are malformed.
    """
    roc = _roc_with_both_classes(distances, labels, "AUC")
    return _one_or_many(roc.auc(weights), weights)


def eer(distances: ArrayLike, labels: ArrayLike, weights: ArrayLike | None = None) -> Any:
    """Equal error rate: FAR (different pairs accepted) = FRR (same pairs rejected).

    Linearly interpolated between the two ROC points where FAR - FRR changes sign.

    Parameters
    ----------
    distances : array-like of shape (n,)
        Finite pair distances.
    labels : array-like of shape (n,)
        Bool or 0/1, 1 = same identity; both classes must occur.
    weights : array-like of shape (n,) or (b, n), default=None
        Resampling counts.

    Returns
    -------
    float or ndarray of shape (b,)
        The EER; a float unless ``weights`` is 2-D.

    Raises
    ------
    ValueError
        If ``labels`` hold a single class, or inputs are malformed.
    """
    roc = _roc_with_both_classes(distances, labels, "EER")
    return _one_or_many(roc.eer(weights), weights)


def tar_at_far(
    distances: ArrayLike, labels: ArrayLike, fars: Sequence[float] = (1e-3, 1e-2, 1e-1)
) -> dict[float, TarAtFar]:
    """True accept rate at the largest observed distance whose false accept rate is at most each FAR.

    Parameters
    ----------
    distances : array-like of shape (n,)
        Finite pair distances.
    labels : array-like of shape (n,)
        Bool or 0/1, 1 = same identity.
    fars : sequence of float, default=(1e-3, 1e-2, 1e-1)
        Target false accept rates in (0, 1].

    Returns
    -------
    dict of float to TarAtFar
        Per target FAR. A FAR that needs more different pairs than there are (fewer than 1 / far),
        and single-class input, give ``tar = nan``, ``reachable = False`` and a note instead of
        raising. When more than the FAR's share of different pairs tie at the smallest distance,
        ``tar = 0`` at threshold -inf, with a note.
    """
    targets = [_check_far(f) for f in fars]
    roc = Roc(distances, labels)
    if roc.n_pos == 0 or roc.n_neg == 0:
        note = (
            f"TAR@FAR needs both same (1) and different (0) pairs; got {roc.n} pairs, "
            f"all labelled {1 if roc.n_neg == 0 else 0}"
        )
        return {f: TarAtFar(np.nan, np.nan, False, note) for f in targets}
    m = roc.metrics(None, targets)
    out: dict[float, TarAtFar] = {}
    for far in targets:
        tar, threshold = float(m.tar[far][0]), float(m.tar_threshold[far][0])
        if np.isnan(tar):
            note = f"FAR {far:g} needs >= {int(np.ceil(1 / far - 1e-9))} different pairs; got {roc.n_neg}"
            out[far] = TarAtFar(np.nan, np.nan, False, note)
        elif threshold == -np.inf:
            note = (
                f"more than {far:g} of the different pairs tie at the smallest distance; no threshold "
                f"reaches FAR {far:g}"
            )
            out[far] = TarAtFar(0.0, -np.inf, True, note)
        else:
            out[far] = TarAtFar(tar, threshold, True)
    return out


def in_sample_verification(distances: ArrayLike, labels: ArrayLike) -> dict[str, float]:
    """In-sample verification metrics: the threshold is chosen on the pairs it is scored on.

    Parameters
    ----------
    distances : array-like of shape (n,)
        Finite pair distances.
    labels : array-like of shape (n,)
        Bool or 0/1, 1 = same identity; both classes must occur.

    Returns
    -------
    dict
        ``accuracy`` at the Youden threshold (the observed distance maximizing TPR - FPR, ties ->
        smallest), ``auc`` and ``optimal_threshold`` (that threshold).
    """
    m = _roc_with_both_classes(distances, labels, "Youden threshold").metrics()
    return {"accuracy": float(m.accuracy[0]), "auc": float(m.auc[0]), "optimal_threshold": float(m.threshold[0])}


def _roc_with_both_classes(distances: ArrayLike, labels: ArrayLike, what: str) -> Roc:
    roc = Roc(distances, labels)
    require_both_classes(roc._y, what)
    return roc
