"""Bootstrap resampling shared by the tasks and `compare.py`: count matrices, intervals, labels.

A resample is a row of non-negative counts over the n rows of a task (how often each pair, probe or
stimulus occurs in it), as in `stats.bootstrap_weights`; every batched metric of `stats` accepts such
counts as `weights=`. Resamples are drawn in blocks of a few hundred rows so memory stays bounded, and
the same (n, n_boot, seed, groups, strata) always gives the same resamples, so every metric of a task
layer, and every model of a comparison, is evaluated on identical resamples.

- rows: drawn with replacement;
- `groups` (e.g. an identity per pair): whole groups drawn with replacement, as many as there are
  groups (cluster bootstrap);
- `strata` (e.g. the two groups of a relative difference, the conditions): each stratum resampled
  on its own to its own size (strata are visited in sorted order of their labels, never in the
  order a grid declares them, so swapping the declared order gives the same resamples).
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

BLOCK_CELLS = 1 << 19  # counts per block: n_rows × resamples in one block
N_BOOT_WARN = 100_000  # more resamples than this are allowed, with a warning: CIs stop changing long before
PROGRESS_AFTER_S = 3.0  # a bootstrap still running after this long shows a progress bar (when bars are on)
_progress = {"enabled": False}


def set_progress(enabled: bool) -> None:
    """Let long bootstraps show a progress bar (the plugin turns this on when it shows bars at all)."""
    _progress["enabled"] = enabled


@dataclass(frozen=True)
class Bootstrap:
    """`n_boot` resamples with a fixed `seed`; percentile intervals at level `ci`."""

    n_boot: int = 1000
    seed: int = 0
    ci: float = 0.95

    @classmethod
    def checked(cls, n_boot: int, seed: int, ci: float, owner: str = "") -> Bootstrap:
        where = f"task '{owner}': " if owner else ""
        if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 0:
            raise ConfigError(f"{where}n_boot must be a whole number >= 0 (0 turns confidence intervals off); "
                              f"got {n_boot!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"{where}seed must be an integer; got {seed!r}")
        if isinstance(ci, bool) or not isinstance(ci, (int, float)) or not 0 < ci < 1:
            raise ConfigError(f"{where}ci must be a level in (0, 1) such as 0.95; got {ci!r}")
        if n_boot > N_BOOT_WARN:
            warnings.warn(f"{where}n_boot = {n_boot:,} resamples: percentile intervals are stable at a few thousand; "
                          f"this will take long (a progress bar shows after {PROGRESS_AFTER_S:g} s)", stacklevel=3)
        return cls(int(n_boot), int(seed), float(ci))

    @property
    def enabled(self) -> bool:
        return self.n_boot > 0

    def blocks(self, n: int, groups: np.ndarray | None = None,
               strata: np.ndarray | None = None) -> Iterator[np.ndarray]:
        """(b, n) int64 count matrices, b resamples per block, n_boot in all."""
        return weight_blocks(n, self.n_boot, self.seed, groups, strata)

    def samples(self, metric: Callable[[np.ndarray], dict[str, np.ndarray]], n: int,
                groups: np.ndarray | None = None, strata: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """{name: (n_boot,) values}: `metric(counts)` maps a (b, n) block of resamples to
        {name: (b,) values}; every name sees the same resamples. Empty when n_boot is 0."""
        if not self.enabled:
            return {}
        out: dict[str, list[np.ndarray]] = {}
        started, done, bar = time.perf_counter(), 0, None
        for block in self.blocks(n, groups, strata):
            with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                values = metric(block)
            for name, value in values.items():
                out.setdefault(name, []).append(np.asarray(value, dtype=float).reshape(len(block)))
            done += len(block)
            if bar is None and _progress["enabled"] and time.perf_counter() - started > PROGRESS_AFTER_S:
                from tqdm.auto import tqdm

                bar = tqdm(total=self.n_boot, initial=done, desc="bootstrap", unit="resample", leave=False,
                           file=sys.stderr, dynamic_ncols=True)
            elif bar is not None:
                bar.update(len(block))
        if bar is not None:
            bar.close()
        return {name: np.concatenate(values) for name, values in out.items()}

    def interval(self, samples: np.ndarray) -> tuple[float, float, str]:
        """Percentile interval; degenerate (NaN) resamples are dropped and counted in the note."""
        return percentile_interval(samples, self.ci)

    def method(self, unit: str) -> str:
        """The `ci_method` of a result row, e.g. 'bootstrap(1000, pairs), 95% percentile'."""
        if not self.enabled:
            return "none (n_boot = 0)"
        return f"bootstrap({self.n_boot}, {unit}), {_percent(self.ci)} percentile"


def _percent(level: float) -> str:
    return f"{100 * level:.10g}%"


def percentile_interval(samples: np.ndarray, level: float) -> tuple[float, float, str]:
    samples = np.asarray(samples, dtype=float)
    samples = np.where(np.isfinite(samples), samples, np.nan)  # ±inf (e.g. Spearman-Brown at r = -1): degenerate
    if samples.size == 0:
        return np.nan, np.nan, ""
    bad = int(np.isnan(samples).sum())
    if bad == len(samples):
        return np.nan, np.nan, f"no CI: all {bad} bootstrap resamples were degenerate"
    alpha = 1.0 - level
    low, high = np.nanpercentile(samples, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    note = f"{bad} of {len(samples)} bootstrap resamples were degenerate and left out of the CI" if bad else ""
    return float(low), float(high), note


def weight_blocks(n: int, n_boot: int, seed: int, groups: np.ndarray | None = None,
                  strata: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Resampling counts in blocks (see the module doc). Without strata and with or without groups,
    the resamples equal `stats.bootstrap_weights(n, n_boot, seed, groups)`."""
    if n < 1:
        raise ValueError(f"cannot resample an empty set (n = {n})")
    rng = np.random.default_rng(seed)
    parts = _parts(n, groups, strata)  # [(row indices, group code per row, n_groups)]
    rows = max(1, BLOCK_CELLS // n)
    for start in range(0, n_boot, rows):
        b = min(rows, n_boot - start)
        counts = np.zeros((b, n), dtype=np.int64)
        for members, codes, m in parts:
            draws = rng.integers(0, m, size=(b, m))
            flat = (draws + (np.arange(b, dtype=np.int64) * m)[:, None]).ravel()
            per_group = np.bincount(flat, minlength=b * m).reshape(b, m)
            counts[:, members] = per_group[:, codes]
        yield counts


def _parts(n: int, groups: np.ndarray | None, strata: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray, int]]:
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


def weighted_mean(x: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(b,) weighted means of x (n,) under counts (b, n); NaN where a row has no weight."""
    total = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, counts @ np.asarray(x, dtype=float) / total, np.nan)


def paired_result(estimate_a: float, estimate_b: float, samples_a: np.ndarray, samples_b: np.ndarray,
                  level: float) -> tuple[float, float, float, float]:
    """(diff, ci_low, ci_high, p) of a − b from paired bootstrap samples (the same resamples).

    p: twice the share of bootstrap differences on the other side of 0 (as `stats.paired_bootstrap`)."""
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
