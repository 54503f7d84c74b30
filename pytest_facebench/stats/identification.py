"""Closed-set identification: the rank of each probe's first correct gallery match, and the CMC curve.

Ties count against the model (pessimistic): a probe's rank is 1 + the number of wrong-identity
gallery items at most as far as its closest correct one.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._checks import FloatArray

__all__ = ["cmc_curve", "probe_ranks"]


def probe_ranks(dist: ArrayLike, probe_ids: ArrayLike, gallery_ids: ArrayLike) -> NDArray[np.int64]:
    """Pessimistic rank of the first correct gallery match of each probe.

    Parameters
    ----------
    dist : array-like of shape (n_probe, n_gallery)
        Probe-to-gallery distances.
    probe_ids : array-like of shape (n_probe,)
        Identity of each probe.
    gallery_ids : array-like of shape (n_gallery,)
        Identity of each gallery item.

    Returns
    -------
    ndarray of shape (n_probe,)
        1 + the wrong-identity gallery items at most as far as the probe's closest correct one.

    Raises
    ------
    ValueError
        If shapes disagree or a probe identity is absent from the gallery.
    """
    d = np.asarray(dist, dtype=float)
    p, g = np.asarray(probe_ids), np.asarray(gallery_ids)
    if p.ndim != 1 or g.ndim != 1 or d.shape != (len(p), len(g)):
        raise ValueError(f"dist must have shape (n_probe={len(p)}, n_gallery={len(g)}); got {d.shape}")
    genuine = p[:, None] == g[None, :]
    missing = ~genuine.any(axis=1)
    if missing.any():
        absent = np.unique(p[missing])
        raise ValueError(f"probe identities absent from the gallery: {absent[:10].tolist()} ({len(absent)} in all)")
    best = np.where(genuine, d, np.inf).min(axis=1)
    return 1 + np.sum(~genuine & (d <= best[:, None]), axis=1)


def cmc_curve(dist: ArrayLike, probe_ids: ArrayLike, gallery_ids: ArrayLike, max_rank: int | None = None) -> FloatArray:
    """Cumulative match characteristic.

    Parameters
    ----------
    dist : array-like of shape (n_probe, n_gallery)
        Finite probe-to-gallery distances.
    probe_ids, gallery_ids : array-like of shape (n_probe,) and (n_gallery,)
        Identities; every probe identity must occur in the gallery.
    max_rank : int, default=None
        Length of the curve (default: the gallery size).

    Returns
    -------
    ndarray of shape (max_rank,)
        Element k - 1 is the share of probes whose pessimistic rank (:func:`probe_ranks`) is at most k.
    """
    d = np.asarray(dist, dtype=float)
    if not np.isfinite(d).all():
        raise ValueError("dist must be finite")
    ranks = probe_ranks(d, probe_ids, gallery_ids)
    max_rank = d.shape[1] if max_rank is None else int(max_rank)
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1; got {max_rank}")
    return (ranks[:, None] <= np.arange(1, max_rank + 1)[None, :]).mean(axis=0)
