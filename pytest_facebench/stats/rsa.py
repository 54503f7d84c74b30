"""Representational similarity analysis: RDMs and the stimulus bootstrap of an RDM correlation.

Two RDMs are compared over their upper triangle (k = 1) with the rsatoolbox comparators (Spearman,
Pearson, Kendall tau-a; :func:`~pytest_facebench.stats.correlation.correlation`), skipping NaN
cells. The stimulus bootstrap resamples stimuli with replacement; a cell that pairs a drawn
stimulus with its own duplicate is masked rather than counted as a zero distance. It is computed
exactly from pair weights ``count_i * count_j`` on the original upper triangle.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._checks import FloatArray, check_method
from .bootstrap import bootstrap_weights
from .correlation import pearson_r, spearman_r

__all__ = ["RDM_METRICS", "RSA_METHODS", "rdm_from_embeddings", "stimulus_bootstrap"]

RDM_METRICS = ("correlation", "cosine", "euclidean")
RSA_METHODS = ("spearman", "pearson", "kendall_tau_a")
BLOCK_CELLS = 1 << 22  # resamples × RDM cells held at once by the stimulus bootstrap


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


def _stimulus_block(
    a: FloatArray,
    b: FloatArray,
    keep: NDArray[np.bool_],
    iu: tuple[Any, Any],
    n: int,
    method: str,
    n_boot: int,
    seed: int,
) -> FloatArray:
    """RDM correlations of ``n_boot`` stimulus resamples drawn with ``seed``."""
    counts = bootstrap_weights(n, n_boot, seed).astype(float)
    w = counts[:, iu[0]] * counts[:, iu[1]] * keep
    a, b = np.where(keep, a, 0.0), np.where(keep, b, 0.0)
    if method == "pearson":
        samples = np.asarray(pearson_r(a, b, w), dtype=float)
    elif method == "spearman":
        samples = np.asarray(spearman_r(a, b, w), dtype=float)
    else:
        samples = _tau_a_weighted(a, b, w)
    return np.where(w.sum(axis=1) < 3, np.nan, samples)  # as correlation(): n < 3 -> nan


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
    cells = n * (n - 1) // 2
    chunk = max(1, BLOCK_CELLS // max(cells, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # degenerate resamples are NaN
        if n_boot <= chunk:
            return _stimulus_block(a, b, keep, iu, n, method, n_boot, seed)
        parts = []
        for k, start in enumerate(range(0, n_boot, chunk)):
            sub_seed = int(np.random.SeedSequence([seed, k]).generate_state(1)[0])
            parts.append(_stimulus_block(a, b, keep, iu, n, method, min(chunk, n_boot - start), sub_seed))
        return np.concatenate(parts)
