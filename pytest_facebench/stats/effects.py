"""Effect sizes and means: relative difference, Cohen's d, and their count-weighted batched forms."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._checks import FloatArray, as_scalar, as_weights

__all__ = ["cohens_d", "group_effects", "relative_difference", "weighted_mean"]


def relative_difference(a: ArrayLike, b: ArrayLike) -> Any:
    """Relative difference of two groups' means, ``(mean(a) - mean(b)) / (mean(a) + mean(b))``.

    Parameters
    ----------
    a, b : array-like of shape (..., n_a) and (..., n_b)
        The two groups' values along the last axis; the order is declared, never inferred.

    Returns
    -------
    float or ndarray
        NaN where the sum of the means is 0.
    """
    ma = np.mean(np.asarray(a, dtype=float), axis=-1)
    mb = np.mean(np.asarray(b, dtype=float), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return as_scalar(np.where(ma + mb == 0, np.nan, (ma - mb) / (ma + mb)))


def cohens_d(a: ArrayLike, b: ArrayLike) -> Any:
    """Cohen's d, ``(mean(a) - mean(b)) / pooled SD`` (pooled variance with ddof = 1 per group).

    Parameters
    ----------
    a, b : array-like of shape (..., n_a) and (..., n_b)
        The two groups' values along the last axis; n_a, n_b >= 1 and n_a + n_b >= 3.

    Returns
    -------
    float or ndarray
        NaN where the pooled SD is 0.
    """
    aa, ba = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    na, nb = aa.shape[-1], ba.shape[-1]
    if na < 1 or nb < 1 or na + nb < 3:
        raise ValueError(f"Cohen's d needs >= 1 value per group and >= 3 in all; got {na} and {nb}")
    ma, mb = aa.mean(axis=-1), ba.mean(axis=-1)
    ss = ((aa - ma[..., None]) ** 2).sum(-1) + ((ba - mb[..., None]) ** 2).sum(-1)
    sd = np.sqrt(ss / (na + nb - 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return as_scalar(np.where(sd == 0, np.nan, (ma - mb) / sd))


def group_effects(values: ArrayLike, in_a: ArrayLike, counts: ArrayLike) -> dict[str, FloatArray]:
    """Group means, relative difference and Cohen's d of each resample.

    Parameters
    ----------
    values : array-like of shape (n,)
        Values of both groups.
    in_a : array-like of shape (n,)
        True for group A, False for group B.
    counts : array-like of shape (b, n)
        Resampling counts.

    Returns
    -------
    dict of str to ndarray of shape (b,)
        ``mean_a``, ``mean_b``, ``relative_difference`` and ``cohens_d``, each equal to the plain
        function on the expanded resample (NaN where undefined).
    """
    d = np.asarray(values, dtype=float)
    mask = np.asarray(in_a, dtype=bool)
    if d.ndim != 1 or mask.shape != d.shape:
        raise ValueError(f"values and in_a must be 1-D of equal length; got shapes {d.shape} and {mask.shape}")
    w = as_weights(counts, len(d)).astype(float)
    if w.ndim != 2:
        raise ValueError(f"counts must have shape (n_resamples, {len(d)}); got {w.shape}")
    wa, wb = w * mask, w * ~mask
    na, nb = wa.sum(axis=1), wb.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ma, mb = wa @ d / na, wb @ d / nb
        ss = (wa * (d - ma[:, None]) ** 2).sum(axis=1) + (wb * (d - mb[:, None]) ** 2).sum(axis=1)
        sd = np.sqrt(ss / (na + nb - 2))
        rel = np.where(ma + mb == 0, np.nan, (ma - mb) / (ma + mb))
        cohen = np.where(sd == 0, np.nan, (ma - mb) / sd)
    return {"mean_a": ma, "mean_b": mb, "relative_difference": rel, "cohens_d": cohen}


def weighted_mean(x: ArrayLike, counts: ArrayLike) -> FloatArray:
    """The mean of each resample.

    Parameters
    ----------
    x : array-like of shape (n,)
        Values.
    counts : array-like of shape (b, n)
        Resampling counts.

    Returns
    -------
    ndarray of shape (b,)
        NaN where a resample has no weight.
    """
    xa = np.asarray(x, dtype=float)
    if xa.ndim != 1:
        raise ValueError(f"x must be 1-D; got shape {xa.shape}")
    c = as_weights(counts, len(xa))
    if c.ndim != 2:
        raise ValueError(f"counts must have shape (n_resamples, {len(xa)}); got {c.shape}")
    total = c.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, c @ xa / total, np.nan)
