"""Representational similarity analysis: RDMs, the stimulus bootstrap of an RDM correlation, and the
noise ceiling of per-rater RDMs.

Two RDMs are compared over their upper triangle (k = 1) with the rsatoolbox comparators (Spearman,
Pearson, Kendall tau-a; :func:`~pytest_facebench.stats.correlation.correlation`), skipping NaN
cells. The stimulus bootstrap resamples stimuli with replacement; a cell that pairs a drawn
stimulus with its own duplicate is masked rather than counted as a zero distance. It is computed
exactly from pair weights ``count_i * count_j`` on the original upper triangle.

The noise ceiling of a stack of per-rater RDMs (:func:`rdm_noise_ceiling`, Nili et al. 2014, the
leave-one-out bounds of rsatoolbox's ``boot_noise_ceiling``) averages, over raters, the correlation of
each rater's RDM with the mean RDM of all raters (upper bound) and of the other raters (lower bound).
The mean RDM is the plain cell-wise mean over the raters who have the cell; rsatoolbox's ``pool_rdm``
first z-scores (Pearson) or ranks (Spearman, tau-a) each RDM, which gives other values when raters
use different scales.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._checks import FloatArray, check_method
from .bootstrap import bootstrap_weights
from .correlation import NoiseCeiling, noise_ceiling, pearson_r, spearman_r

__all__ = [
    "RDM_METRICS",
    "RSA_METHODS",
    "rdm_from_embeddings",
    "rdm_noise_ceiling",
    "stimulus_bootstrap",
    "stimulus_bootstrap_ceiling",
]

RDM_METRICS = ("correlation", "cosine", "euclidean")
RSA_METHODS = ("spearman", "pearson", "kendall_tau_a")
BLOCK_CELLS = 1 << 22  # resamples × RDM cells held at once by the stimulus bootstrap

T = TypeVar("T")


def rdm_from_embeddings(emb: ArrayLike, metric: str = "correlation") -> FloatArray:
    """Representational dissimilarity matrix of embeddings.

    Parameters
    ----------
    emb : array-like of shape (n, dim)
        One embedding per stimulus, n >= 2.
    metric : {'correlation', 'cosine', 'euclidean'}, default='correlation'
        Dissimilarity (``scipy.spatial.distance.pdist`` names); 'correlation' is 1 - Pearson r.

    Returns
    -------
    ndarray of shape (n, n)
        Symmetric, zero diagonal.
    """
    check_method(metric, RDM_METRICS)
    e = np.asarray(emb, dtype=float)
    if e.ndim != 2 or e.shape[0] < 2:
        raise ValueError(f"emb must have shape (n >= 2, dim); got {e.shape}")
    from scipy.spatial.distance import pdist, squareform

    return squareform(pdist(e, metric=metric), checks=False)


def _rdm_pairs(
    rdm_a: ArrayLike, rdm_b: ArrayLike, mask: ArrayLike | None
) -> tuple[FloatArray, FloatArray, NDArray[np.bool_], tuple[Any, Any]]:
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


def _tau_a_weighted(x: FloatArray, y: FloatArray, w: FloatArray, chunk: int = 512) -> FloatArray:
    """tau-a of the multisets where pair p occurs w[b, p] times, for each row b."""
    num = np.zeros(w.shape[0])
    for i in range(0, len(x), chunk):
        s = np.sign(x[i : i + chunk, None] - x) * np.sign(y[i : i + chunk, None] - y)
        num += np.einsum("bc,bc->b", w[:, i : i + chunk], w @ s.T)
    m = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / (m * (m - 1))


def _weighted_rdm_correlation(a: FloatArray, b: FloatArray, w: FloatArray, method: str) -> FloatArray:
    """The RDM correlation of each row of cell weights ``w`` (b, cells); ``a``, ``b`` finite wherever w > 0."""
    if method == "pearson":
        samples = np.asarray(pearson_r(a, b, w), dtype=float)
    elif method == "spearman":
        samples = np.asarray(spearman_r(a, b, w), dtype=float)
    else:
        present = w > 0
        constant = np.zeros(len(w), dtype=bool)
        for v in (a, b):  # as correlation(): a constant RDM -> nan (pearson_r / spearman_r do the same)
            constant |= np.max(np.where(present, v, -np.inf), -1) == np.min(np.where(present, v, np.inf), -1)
        samples = np.where(constant, np.nan, _tau_a_weighted(a, b, w))
    return np.where(w.sum(axis=1) < 3, np.nan, samples)  # as correlation(): n < 3 -> nan


def _pair_weights(n: int, n_boot: int, seed: int, iu: tuple[Any, Any]) -> FloatArray:
    """Weight of each upper-triangle cell in each stimulus resample: ``count_i * count_j``."""
    counts = bootstrap_weights(n, n_boot, seed).astype(float)
    return counts[:, iu[0]] * counts[:, iu[1]]


def _in_blocks(n: int, n_boot: int, seed: int, block: Callable[[int, int], T]) -> list[T]:
    """``block(size, seed)`` for one block of all ``n_boot`` resamples, or for seeded blocks of at most
    ``BLOCK_CELLS`` resampled cells (block k seeded with ``SeedSequence([seed, k]).generate_state(1)[0]``)."""
    cells = n * (n - 1) // 2
    chunk = max(1, BLOCK_CELLS // max(cells, 1))
    if n_boot <= chunk:
        return [block(n_boot, seed)]
    parts = []
    for k, start in enumerate(range(0, n_boot, chunk)):
        sub_seed = int(np.random.SeedSequence([seed, k]).generate_state(1)[0])
        parts.append(block(min(chunk, n_boot - start), sub_seed))
    return parts


def stimulus_bootstrap(
    rdm_a: ArrayLike,
    rdm_b: ArrayLike,
    method: str = "spearman",
    n_boot: int = 1000,
    seed: int = 0,
    mask: ArrayLike | None = None,
) -> FloatArray:
    """Bootstrap distribution over stimuli of the correlation of two RDMs.

    Resample b of a block takes the stimuli counted in ``bootstrap_weights(n, size, seed)[b]``.
    When ``n_boot`` resamples of the upper triangle exceed ``BLOCK_CELLS``, the resamples are drawn
    in blocks, block k with the seed ``SeedSequence([seed, k]).generate_state(1)[0]``.

    Parameters
    ----------
    rdm_a, rdm_b : array-like of shape (n, n)
        Square RDMs; NaN cells are left out.
    method : {'spearman', 'pearson', 'kendall_tau_a'}, default='spearman'
        RDM comparator.
    n_boot : int, default=1000
        Number of resamples, >= 1.
    seed : int, default=0
        Seed of the resamples.
    mask : array-like of shape (n, n), default=None
        True for cells to leave out.

    Returns
    -------
    ndarray of shape (n_boot,)
        NaN for resamples with fewer than 3 cells or a constant RDM.
    """
    check_method(method, RSA_METHODS)
    a, b, keep, iu = _rdm_pairs(rdm_a, rdm_b, mask)
    n = np.shape(rdm_a)[0]
    a, b = np.where(keep, a, 0.0), np.where(keep, b, 0.0)

    def block(size: int, block_seed: int) -> FloatArray:
        return _weighted_rdm_correlation(a, b, _pair_weights(n, size, block_seed, iu) * keep, method)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # degenerate resamples are NaN
        return np.concatenate(_in_blocks(n, n_boot, seed, block))


# --------------------------------------------------------------------------- noise ceiling


def _rater_cells(rdms: ArrayLike, mask: ArrayLike | None) -> tuple[FloatArray, int, tuple[Any, Any]]:
    """Validated (k, n, n) RDMs as (k, cells) upper triangles; masked and non-finite cells NaN."""
    r = np.asarray(rdms, dtype=float)
    if r.ndim != 3 or r.shape[0] < 1 or r.shape[1] != r.shape[2] or r.shape[1] < 2:
        raise ValueError(f"rdms must have shape (n_raters >= 1, n >= 2, n): one square RDM per rater; got {r.shape}")
    n = r.shape[1]
    iu = np.triu_indices(n, k=1)
    cells = r[:, iu[0], iu[1]]
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != (n, n):
            raise ValueError(f"mask must have shape {(n, n)}; got {m.shape}")
        cells = np.where(m[iu], np.nan, cells)
    return np.where(np.isfinite(cells), cells, np.nan), n, iu


def rdm_noise_ceiling(rdms: ArrayLike, method: str = "spearman", mask: ArrayLike | None = None) -> NoiseCeiling:
    """Noise ceiling of per-rater RDMs (Nili et al. 2014; rsatoolbox's leave-one-out bounds).

    Parameters
    ----------
    rdms : array-like of shape (n_raters, n, n)
        One square RDM per rater, over the same n stimuli; only the upper triangle (k = 1) is read,
        so the diagonal (a stimulus with itself) never counts. NaN = a cell the rater did not judge.
    method : {'spearman', 'pearson', 'kendall_tau_a'}, default='spearman'
        RDM comparator, as the RSA score it bounds.
    mask : array-like of shape (n, n), default=None
        True for cells to leave out (for every rater).

    Returns
    -------
    NoiseCeiling
        ``high``: mean over raters of corr(rater RDM, mean RDM of all raters); ``low``: mean over raters
        of corr(rater RDM, mean RDM of the other raters). A cell enters the mean RDM for the raters who
        have it and a rater's correlation for the cells where both the rater and the mean are defined.
        NaN with a note below 2 raters; undefined per-rater correlations (fewer than 3 cells, a
        constant RDM) are left out of the means and noted.
    """
    check_method(method, RSA_METHODS)
    cells, _, _ = _rater_cells(rdms, mask)
    ceiling = noise_ceiling(cells.T, method)
    return replace(ceiling, note=ceiling.note.replace("participant", "rater"))


def stimulus_bootstrap_ceiling(
    rdms: ArrayLike,
    method: str = "spearman",
    n_boot: int = 1000,
    seed: int = 0,
    mask: ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Bootstrap distributions over stimuli of the noise-ceiling bounds of per-rater RDMs.

    The resamples are those of :func:`stimulus_bootstrap` with the same ``n``, ``n_boot`` and ``seed``
    (so a ratio of the two is paired per resample); a cell pairing a drawn stimulus with its own
    duplicate is masked. The mean RDMs are those of the full data set restricted to the drawn cells.

    Parameters
    ----------
    rdms : array-like of shape (n_raters, n, n)
        One square RDM per rater (see :func:`rdm_noise_ceiling`).
    method : {'spearman', 'pearson', 'kendall_tau_a'}, default='spearman'
        RDM comparator.
    n_boot : int, default=1000
        Number of resamples, >= 1.
    seed : int, default=0
        Seed of the resamples.
    mask : array-like of shape (n, n), default=None
        True for cells to leave out.

    Returns
    -------
    low, high : ndarray of shape (n_boot,)
        The bounds of each resample (as :func:`rdm_noise_ceiling`); NaN where every rater's
        correlation is undefined, or for fewer than 2 raters.
    """
    check_method(method, RSA_METHODS)
    cells, n, iu = _rater_cells(rdms, mask)
    n_raters = cells.shape[0]
    if n_raters < 2:
        if n_boot < 1:
            raise ValueError(f"n_boot must be >= 1; got {n_boot}")
        return np.full(n_boot, np.nan), np.full(n_boot, np.nan)
    present = np.isfinite(cells)
    filled = np.where(present, cells, 0.0)
    total, count = filled.sum(axis=0), present.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_all = total / count
        others = (total - filled) / (count - present)  # (raters, cells): the mean RDM without rater p

    def block(size: int, block_seed: int) -> tuple[FloatArray, FloatArray]:
        w = _pair_weights(n, size, block_seed, iu)
        lows: list[FloatArray] = []
        highs: list[FloatArray] = []
        for p in range(n_raters):
            for target, out in ((mean_all, highs), (others[p], lows)):
                ok = present[p] & np.isfinite(target)
                out.append(
                    _weighted_rdm_correlation(np.where(ok, cells[p], 0.0), np.where(ok, target, 0.0), w * ok, method)
                )
        return np.nanmean(np.stack(lows), axis=0), np.nanmean(np.stack(highs), axis=0)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # degenerate resamples / all-NaN raters are NaN
        parts = _in_blocks(n, n_boot, seed, block)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
