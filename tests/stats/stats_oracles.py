"""Independent oracles for the statistics tests: explicit loops over index resamples, scikit-learn,
scipy and brute force. Nothing here calls `pytest_facebench.stats`.

These were public functions of the old `stats.py` used only by tests (`bootstrap_indices`,
`bootstrap_samples`, `bootstrap_ci`, `paired_bootstrap`, `mean_ci`, `cohens_d_ci`, `compare_rdms`,
`rank_k_accuracy`, `youden_threshold`, `in_sample_accuracy`); they live on here as oracles.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats as sst
from sklearn.metrics import accuracy_score, roc_curve

BLOCK_CELLS = 1 << 19  # the engine's documented block size: max(1, BLOCK_CELLS // n) resamples per block


# --------------------------------------------------------------------------- resamples as indices


def index_resamples(n: int, n_boot: int, seed: int = 0, groups: Any = None, strata: Any = None) -> list[np.ndarray]:
    """The bootstrap resamples of the documented scheme as explicit row indices, one array per resample.

    numpy's default_rng(seed); blocks of max(1, BLOCK_CELLS // n) resamples; within a block, for each
    stratum in sorted label order, one (b, m) draw of `integers(0, m)` over the stratum's m rows (or
    its m groups, each drawn group contributing all its rows)."""
    rng = np.random.default_rng(seed)
    strata_labels = np.zeros(n, dtype=int).astype(str) if strata is None else np.asarray(strata).astype(str)
    parts = []
    for s in np.unique(strata_labels):
        members = np.flatnonzero(strata_labels == s)
        if groups is None:
            units = [np.array([i]) for i in members]
        else:
            g = np.asarray(groups)[members]
            units = [members[g == u] for u in np.unique(g)]
        parts.append(units)
    rows = max(1, BLOCK_CELLS // n)
    out: list[np.ndarray] = []
    for start in range(0, n_boot, rows):
        b = min(rows, n_boot - start)
        draws = [rng.integers(0, len(units), size=(b, len(units))) for units in parts]
        for r in range(b):
            out.append(np.concatenate([units[k] for units, d in zip(parts, draws) for k in d[r]]))
    return out


def counts_of(resamples: Sequence[np.ndarray], n: int) -> np.ndarray:
    """(n_boot, n) counts of the index resamples."""
    return np.stack([np.bincount(idx, minlength=n) for idx in resamples])


def loop_bootstrap(
    metric: Callable[..., float], arrays: Sequence[np.ndarray], resamples: Sequence[np.ndarray]
) -> np.ndarray:
    """metric(*[a[idx] for a in arrays]) for every resample, one at a time."""
    out = []
    for idx in resamples:
        try:
            out.append(float(metric(*(np.asarray(a)[idx] for a in arrays))))
        except ValueError:  # e.g. a single-class resample
            out.append(np.nan)
    return np.asarray(out)


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    a = 100 * (1 - level) / 2
    low, high = np.percentile(samples[~np.isnan(samples)], [a, 100 - a])
    return float(low), float(high)


def paired_p(diff: float, diffs: np.ndarray) -> float:
    """Twice the share of resampled differences on the other side of 0, clipped to 1."""
    if diff == 0:
        return 1.0
    side = np.mean(diffs <= 0) if diff > 0 else np.mean(diffs >= 0)
    return float(min(1.0, 2 * side))


# --------------------------------------------------------------------------- verification


def sklearn_youden(d: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Threshold maximizing TPR - FPR over sklearn's roc_curve (its leading +inf dropped), and the accuracy there."""
    fpr, tpr, thr = roc_curve(y, -d, drop_intermediate=False)
    i = int(np.argmax((tpr - fpr)[1:])) + 1
    t = -thr[i]
    return t, accuracy_score(y, d <= t)


def brentq_eer(d: np.ndarray, y: np.ndarray) -> float:
    """EER as the root of 1 - x - TPR(x) on sklearn's (linearly interpolated) ROC."""
    from scipy.interpolate import interp1d
    from scipy.optimize import brentq

    fpr, tpr, _ = roc_curve(y, -d)
    return float(brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0))


def sklearn_tar_at_far(d: np.ndarray, y: np.ndarray, far: float) -> tuple[float, float]:
    """TAR and threshold at the largest observed distance whose FAR <= far (sklearn's roc_curve)."""
    fpr, tpr, thr = roc_curve(y, -d, drop_intermediate=False)
    ok = np.flatnonzero(fpr <= far + 1e-12)
    i = ok[-1]
    return float(tpr[i]), (-np.inf if i == 0 else float(-thr[i]))


def brute_force_best_threshold(d: np.ndarray, y: np.ndarray) -> float:
    """Accuracy-maximizing threshold: -inf, midpoints of the sorted distinct distances, +inf; first best."""
    u = np.unique(d)
    candidates = [-np.inf] + [(a + b) / 2 for a, b in itertools.pairwise(u)] + [np.inf]
    scores = [accuracy_score(y, d <= t) for t in candidates]
    return candidates[int(np.argmax(scores))]


def brute_force_delong(da: np.ndarray, db: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Difference of AUCs and DeLong's standard error from the O(m n) kernel."""
    comps = []
    for d in (da, db):
        s, n = d[y == 1][:, None], d[y == 0][None, :]
        psi = (s < n) + 0.5 * (s == n)
        comps.append((psi.mean(axis=1), psi.mean(axis=0)))
    (a10, a01), (b10, b01) = comps
    var = np.var(a10 - b10, ddof=1) / len(a10) + np.var(a01 - b01, ddof=1) / len(a01)
    return float(a10.mean() - b10.mean()), float(np.sqrt(var))


# --------------------------------------------------------------------------- correlation, RSA


def tau_a(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall tau-a by a double loop."""
    n, s = len(x), 0.0
    for i in range(n):
        for j in range(i + 1, n):
            s += np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])
    return s / (n * (n - 1) / 2)


def rdm_correlation(a: np.ndarray, b: np.ndarray, method: str, mask: np.ndarray | None = None) -> float:
    """Correlation of two square RDMs over the upper triangle, masked (True) and NaN cells left out;
    NaN below 3 cells or for a constant triangle."""
    iu = np.triu_indices(len(a), k=1)
    x, y = a[iu], b[iu]
    keep = np.isfinite(x) & np.isfinite(y)
    if mask is not None:
        keep &= ~mask[iu]
    x, y = x[keep], y[keep]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return np.nan
    if method == "spearman":
        return float(sst.spearmanr(x, y).statistic)
    if method == "pearson":
        return float(sst.pearsonr(x, y).statistic)
    return tau_a(x, y)


def pessimistic_ranks(dist: np.ndarray, probe_ids: Sequence[Any], gallery_ids: Sequence[Any]) -> list[int]:
    """Per probe, by a loop: 1 + wrong gallery items at most as far as the closest correct one."""
    ranks = []
    for row, pid in zip(dist, probe_ids):
        best = min(v for v, gid in zip(row, gallery_ids) if gid == pid)
        ranks.append(1 + sum(1 for v, gid in zip(row, gallery_ids) if gid != pid and v <= best))
    return ranks


# --------------------------------------------------------------------------- effects


def cohens_d_expanded(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's d with the pooled variance (SS_a + SS_b) / (n_a + n_b - 2)."""
    na, nb = len(a), len(b)
    pooled = (np.sum((a - np.mean(a)) ** 2) + np.sum((b - np.mean(b)) ** 2)) / (na + nb - 2)
    return float((np.mean(a) - np.mean(b)) / np.sqrt(pooled)) if pooled > 0 else np.nan


# --- hypothesis strategies shared by the ROC and fold tests -----------------------------------

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def pairs(draw: st.DrawFn, min_n: int = 4, max_n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Distances on a coarse grid (many ties) and labels with both classes."""
    n = draw(st.integers(min_n, max_n))
    d = draw(hnp.arrays(np.float64, n, elements=st.integers(0, 12).map(lambda v: v / 4)))
    y = draw(hnp.arrays(np.int64, n, elements=st.integers(0, 1)))
    y[0], y[-1] = 1, 0
    return d, y
