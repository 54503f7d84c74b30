"""The bootstrap engine: resampling count blocks, percentile intervals and paired differences.

A resample is a row of non-negative counts over the n rows of a data set (how often each pair,
probe or stimulus occurs in it); every batched metric of this package takes such a ``(b, n)``
count matrix. Resamples are drawn in blocks of about ``BLOCK_CELLS`` counts so memory stays bounded,
and the same ``(n, n_boot, seed, groups, strata)`` always gives the same resamples, so every metric
of a task, and every model of a paired comparison, is evaluated on identical resamples.

- rows: drawn with replacement;
- ``groups`` (e.g. an identity per pair): whole groups drawn with replacement, as many draws as
  there are groups (cluster bootstrap); every row of a group drawn c times gets count c;
- ``strata`` (e.g. the two groups of a relative difference, the conditions): each stratum resampled
  on its own to its own size (strata are visited in sorted order of their labels, never in the
  order a grid declares them, so swapping the declared order gives the same resamples).

Intervals are percentile intervals; resamples on which a metric is undefined (NaN or infinite)
are left out of the interval and counted in its note.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..engine.threads import map_ordered
from ..errors import ConfigError
from ._checks import FloatArray, check_level

__all__ = [
    "BLOCK_CELLS",
    "N_BOOT_WARN",
    "PROGRESS_AFTER_S",
    "Bootstrap",
    "bootstrap_weights",
    "paired_result",
    "percentile_interval",
    "set_progress",
    "weight_blocks",
]

BLOCK_CELLS = 1 << 19  # counts per block: resamples × rows in one block
N_BOOT_WARN = 100_000  # more resamples than this are allowed, with a warning: CIs stop changing long before
PROGRESS_AFTER_S = 3.0  # a bootstrap still running after this long shows a progress bar (when bars are on)
_progress = {"enabled": False}


def set_progress(enabled: bool) -> None:
    """Let long bootstraps show a progress bar (the plugin turns this on when it shows bars at all)."""
    _progress["enabled"] = enabled


@dataclass(frozen=True)
class Bootstrap:
    """``n_boot`` resamples with a fixed ``seed``; percentile intervals at level ``ci``.

    Parameters
    ----------
    n_boot : int, default=1000
        Number of resamples; 0 turns intervals off.
    seed : int, default=0
        Seed of ``numpy.random.default_rng``.
    ci : float, default=0.95
        Level of the percentile intervals.
    """

    n_boot: int = 1000
    seed: int = 0
    ci: float = 0.95

    @classmethod
    def checked(cls, n_boot: int, seed: int, ci: float, owner: str = "") -> Bootstrap:
        """A `Bootstrap` from grid options: `ConfigError` naming the task `owner` when one is invalid,
        a warning when ``n_boot`` exceeds `N_BOOT_WARN`."""
        where = f"task '{owner}': " if owner else ""
        if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 0:
            raise ConfigError(
                f"{where}n_boot must be a whole number >= 0 (0 turns confidence intervals off); got {n_boot!r}"
            )
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"{where}seed must be an integer; got {seed!r}")
        if isinstance(ci, bool) or not isinstance(ci, (int, float)) or not 0 < ci < 1:
            raise ConfigError(f"{where}ci must be a level in (0, 1) such as 0.95; got {ci!r}")
        if n_boot > N_BOOT_WARN:
            warnings.warn(
                f"{where}n_boot = {n_boot:,} resamples: percentile intervals are stable at a few thousand; "
                f"this will take long (a progress bar shows after {PROGRESS_AFTER_S:g} s)",
                stacklevel=3,
            )
        return cls(int(n_boot), int(seed), float(ci))

    @property
    def enabled(self) -> bool:
        return self.n_boot > 0

    def blocks(
        self, n: int, groups: ArrayLike | None = None, strata: ArrayLike | None = None
    ) -> Iterator[NDArray[np.int64]]:
        """(b, n) int64 count matrices, b resamples per block, ``n_boot`` in all (see :func:`weight_blocks`)."""
        return weight_blocks(n, self.n_boot, self.seed, groups, strata)

    def samples(
        self,
        metric: Callable[[NDArray[Any]], Mapping[str, ArrayLike]],
        n: int,
        groups: ArrayLike | None = None,
        strata: ArrayLike | None = None,
    ) -> dict[str, FloatArray]:
        """Bootstrap distributions of several metrics on the same resamples.

        Parameters
        ----------
        metric : callable
            Maps a (b, n) block of resampling counts to ``{name: (b,) values}``.
        n : int
            Number of rows resampled.
        groups, strata : array-like of shape (n,), default=None
            Cluster and stratum labels (see the module doc).

        Returns
        -------
        dict of str to ndarray of shape (n_boot,)
            Empty when ``n_boot`` is 0. Numpy warnings of degenerate resamples are silenced.
        """
        if not self.enabled:
            return {}
        out: dict[str, list[FloatArray]] = {}
        started, done, bar = time.perf_counter(), 0, None

        def measure(block: NDArray[np.int64]) -> tuple[int, Mapping[str, ArrayLike]]:
            with np.errstate(invalid="ignore", divide="ignore"):  # per thread
                return len(block), metric(block)

        with warnings.catch_warnings():  # process-wide: covers the scoring threads
            warnings.simplefilter("ignore", RuntimeWarning)
            for size, values in map_ordered(measure, self.blocks(n, groups, strata)):
                for name, value in values.items():
                    out.setdefault(name, []).append(np.asarray(value, dtype=float).reshape(size))
                done += size
                if bar is None and _progress["enabled"] and time.perf_counter() - started > PROGRESS_AFTER_S:
                    bar = _bar(self.n_boot, done)
                elif bar is not None:
                    bar.update(size)
        if bar is not None:
            bar.close()
        return {name: np.concatenate(values) for name, values in out.items()}

    def interval(self, samples: ArrayLike) -> tuple[float, float, str]:
        """Percentile interval at level ``ci`` (:func:`percentile_interval`)."""
        return percentile_interval(samples, self.ci)

    def method(self, unit: str) -> str:
        """The ``ci_method`` of a result row, e.g. 'bootstrap(1000, pairs), 95% percentile'."""
        if not self.enabled:
            return "none (n_boot = 0)"
        return f"bootstrap({self.n_boot}, {unit}), {100 * self.ci:.10g}% percentile"


def _bar(total: int, done: int) -> Any:
    """The bootstrap's progress bar, shown once a bootstrap runs long."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total, initial=done, desc="bootstrap", unit="resample", leave=False, file=sys.stderr, dynamic_ncols=True
    )


def weight_blocks(
    n: int, n_boot: int, seed: int = 0, groups: ArrayLike | None = None, strata: ArrayLike | None = None
) -> Iterator[NDArray[np.int64]]:
    """Bootstrap resamples as blocks of resampling counts.

    Parameters
    ----------
    n : int
        Number of rows, >= 1.
    n_boot : int
        Number of resamples in all.
    seed : int, default=0
        Seed of ``numpy.random.default_rng``.
    groups : array-like of shape (n,), default=None
        Cluster labels: whole groups are drawn (as many draws as groups).
    strata : array-like of shape (n,), default=None
        Stratum labels: each stratum is resampled on its own, to its own size.

    Yields
    ------
    ndarray of shape (b, n), int64
        Counts of each row in each of b resamples, ``max(1, BLOCK_CELLS // n)`` resamples per block
        (the last block may be smaller). The blocking never changes the resamples.
    """
    if n < 1:
        raise ValueError(f"cannot resample an empty set (n = {n})")
    rng = np.random.default_rng(seed)
    parts = _parts(n, groups, strata)  # [(row indices, group code per row, n_groups)]
    rows = max(1, BLOCK_CELLS // n)
    plain = len(parts) == 1 and groups is None  # rows drawn directly: the counts are the per-row tallies
    for start in range(0, n_boot, rows):
        b = min(rows, n_boot - start)
        counts = None if plain else np.zeros((b, n), dtype=np.int64)
        for members, codes, m in parts:
            draws = rng.integers(0, m, size=(b, m))
            draws += (np.arange(b, dtype=np.int64) * m)[:, None]
            per_group = np.bincount(draws.ravel(), minlength=b * m).reshape(b, m)
            if counts is None:
                counts = per_group
            else:
                counts[:, members] = per_group[:, codes]
        assert counts is not None
        yield counts


def bootstrap_weights(
    n: int, n_boot: int = 1000, seed: int = 0, groups: ArrayLike | None = None, strata: ArrayLike | None = None
) -> NDArray[np.int64]:
    """All resamples of :func:`weight_blocks` as one count matrix.

    Parameters
    ----------
    n : int
        Number of rows, >= 1.
    n_boot : int, default=1000
        Number of resamples, >= 1.
    seed : int, default=0
        Seed of ``numpy.random.default_rng``.
    groups, strata : array-like of shape (n,), default=None
        Cluster and stratum labels (see :func:`weight_blocks`).

    Returns
    -------
    ndarray of shape (n_boot, n), int64
        Entry ``[b, i]``: how often row i occurs in resample b.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1; got {n_boot}")
    return np.concatenate(list(weight_blocks(n, n_boot, seed, groups, strata)))


def _parts(
    n: int, groups: ArrayLike | None, strata: ArrayLike | None
) -> list[tuple[NDArray[np.intp], NDArray[np.intp], int]]:
    if groups is not None and np.shape(groups) != (n,):
        raise ValueError(f"groups must have one label per row ({n}); got shape {np.shape(groups)}")
    if strata is None:
        stratum_members = [np.arange(n)]
    else:
        if np.shape(strata) != (n,):
            raise ValueError(f"strata must have one label per row ({n}); got shape {np.shape(strata)}")
        labels = np.asarray(strata).astype(str)
        stratum_members = [np.flatnonzero(labels == s) for s in np.unique(labels)]
    parts = []
    for members in stratum_members:
        if groups is None:
            parts.append((members, np.arange(len(members)), len(members)))
        else:
            uniq, codes = np.unique(np.asarray(groups)[members], return_inverse=True)
            parts.append((members, codes.reshape(-1), len(uniq)))
    return parts


def percentile_interval(samples: ArrayLike, level: float) -> tuple[float, float, str]:
    """Percentile bootstrap interval.

    Parameters
    ----------
    samples : array-like of shape (n_boot,)
        Bootstrap values; NaN and ±inf mark degenerate resamples.
    level : float
        Confidence level in (0, 1), e.g. 0.95 for the 2.5th and 97.5th percentiles.

    Returns
    -------
    low, high : float
        NaN when there are no samples or all are degenerate.
    note : str
        How many resamples were degenerate and left out ('' when none).
    """
    level = check_level(level)
    values = np.asarray(samples, dtype=float).reshape(-1)
    values = np.where(np.isfinite(values), values, np.nan)  # ±inf (e.g. Spearman-Brown at r = -1): degenerate
    if values.size == 0:
        return np.nan, np.nan, ""
    bad = int(np.isnan(values).sum())
    if bad == len(values):
        return np.nan, np.nan, f"no CI: all {bad} bootstrap resamples were degenerate"
    alpha = 1.0 - level
    low, high = np.nanpercentile(values, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    note = f"{bad} of {len(values)} bootstrap resamples were degenerate and left out of the CI" if bad else ""
    return float(low), float(high), note


def paired_result(
    estimate_a: float, estimate_b: float, samples_a: ArrayLike, samples_b: ArrayLike, level: float
) -> tuple[float, float, float, float]:
    """Paired bootstrap comparison of a − b evaluated on the same resamples.

    Parameters
    ----------
    estimate_a, estimate_b : float
        The metric of a and b on the data.
    samples_a, samples_b : array-like of shape (n_boot,)
        The metric of a and b on the same resamples.
    level : float
        Confidence level of the interval of the difference.

    Returns
    -------
    diff : float
        ``estimate_a - estimate_b``.
    ci_low, ci_high : float
        Percentile interval of the resampled differences.
    p_value : float
        Two-sided: twice the share of resampled differences on the other side of 0 from ``diff``
        (clipped to 1); 1 when ``diff`` is 0, NaN when ``diff`` is undefined.
    """
    diff = float(estimate_a - estimate_b)
    diffs = np.asarray(samples_a, dtype=float) - np.asarray(samples_b, dtype=float)
    low, high, _ = percentile_interval(diffs, level)
    valid = diffs[~np.isnan(diffs)]
    if not np.isfinite(diff):
        return diff, low, high, np.nan
    if diff == 0 or len(valid) == 0:
        return diff, low, high, 1.0
    other_side = np.mean(valid <= 0) if diff > 0 else np.mean(valid >= 0)
    return diff, low, high, float(min(1.0, 2 * other_side))
