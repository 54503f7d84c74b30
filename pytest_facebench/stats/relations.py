"""Relations across models: one number per model on each axis, correlated over models.

A relation asks whether a property of models (a measured signature, e.g. an inversion effect) goes with a
benefit (e.g. verification AUC). The unit of observation is the model: the coefficient (Spearman by default,
Pearson, Kendall tau-b), optionally partial on control variables (numeric columns, or categories coded one-hot),
a two-sided permutation p-value (exact enumeration when there are few enough permutations), and a percentile
CI from a bootstrap over models (models resampled with replacement, each with its own value).

Partial correlation is the correlation of the residuals of x and y after a least-squares fit (with intercept)
on the controls; for Spearman on ranks (x, y and numeric controls ranked, one-hot columns as they are), as
partial Spearman is usually defined. Kendall's tau has no such residual form: it takes no controls.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._checks import FloatArray, check_level, check_method, scipy_stats
from .bootstrap import percentile_interval

__all__ = [
    "MIN_MODELS",
    "RELATION_METHODS",
    "TOO_FEW_MODELS",
    "RelationStats",
    "batched_r",
    "control_matrix",
    "model_resamples",
    "partial_r",
    "permutation_p",
    "relate",
    "relation_r",
]

RELATION_METHODS = ("spearman", "pearson", "kendall")
MIN_MODELS = 5
TOO_FEW_MODELS = "too few models"
nan = math.nan
_CHUNK_CELLS = 4_000_000  # float cells per batch of Kendall sign matrices


@dataclass(frozen=True)
class RelationStats:
    """A relation over `n` models. With fewer than `MIN_MODELS` (or an undefined r) the numbers are NaN and
    `status` says why ("too few models", "undefined")."""

    r: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    method: str
    partial_r: float = math.nan
    partial_ci_low: float = math.nan
    partial_ci_high: float = math.nan
    partial_p_value: float = math.nan
    n_controls: int = 0  # design columns of the controls (one-hot columns counted one by one)
    n_boot: int = 0
    n_perm: int = 0  # permutations used (all n! when `exact_p`)
    exact_p: bool = False
    level: float = 0.95
    status: str = "ok"
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# --------------------------------------------------------------------------- design of the controls


def control_matrix(columns: Sequence[ArrayLike]) -> tuple[FloatArray, NDArray[np.bool_]]:
    """The controls as design columns: a numeric (or boolean) column as it is, a categorical one as one-hot
    columns of its levels but the first (sorted). Returns the `(n, k)` matrix and which columns are numeric
    (these are ranked for Spearman)."""
    blocks: list[FloatArray] = []
    numeric: list[bool] = []
    n = None
    for column in columns:
        values = list(np.asarray(column, dtype=object).reshape(-1))
        if n is not None and len(values) != n:
            raise ValueError(f"every control needs one value per model ({n}); got {len(values)}")
        n = len(values)
        as_numbers = _numbers(values)
        if as_numbers is not None:
            blocks.append(as_numbers[:, None])
            numeric.append(True)
            continue
        levels = sorted({str(v) for v in values})
        codes = np.array([levels.index(str(v)) for v in values])
        for level in range(1, len(levels)):
            blocks.append((codes == level).astype(float)[:, None])
            numeric.append(False)
    if not blocks:
        return np.zeros((n or 0, 0)), np.zeros(0, dtype=bool)
    return np.concatenate(blocks, axis=1), np.array(numeric, dtype=bool)


def _numbers(values: list[object]) -> FloatArray | None:
    """A column of numbers or booleans as floats; None for anything else (a category)."""
    if all(isinstance(v, (bool, np.bool_, int, float, np.integer, np.floating)) for v in values):
        return np.array([float(v) for v in values])  # type: ignore[arg-type]
    return None


# --------------------------------------------------------------------------- batched coefficients


def _ranks(a: FloatArray) -> FloatArray:
    return np.asarray(scipy_stats().rankdata(a, method="average", axis=-1), dtype=float)


def _row_pearson(x: FloatArray, y: FloatArray) -> FloatArray:
    dx = x - x.mean(axis=-1, keepdims=True)
    dy = y - y.mean(axis=-1, keepdims=True)
    sxx, syy = (dx * dx).sum(-1), (dy * dy).sum(-1)
    scale = np.maximum(np.abs(x).max(-1), np.abs(y).max(-1)) + 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (dx * dy).sum(-1) / np.sqrt(sxx * syy)
    n = x.shape[-1]
    constant = (np.sqrt(sxx / n) <= 1e-12 * scale) | (np.sqrt(syy / n) <= 1e-12 * scale)
    return np.where(constant | (n < 3), np.nan, np.clip(r, -1.0, 1.0))


def _row_kendall(x: FloatArray, y: FloatArray) -> FloatArray:
    """Kendall tau-b per row: sum(sx sy) / sqrt(sum(sx^2) sum(sy^2)) over all ordered pairs."""
    b, n = x.shape
    out = np.empty(b)
    step = max(1, _CHUNK_CELLS // max(1, n * n))
    for start in range(0, b, step):
        xs, ys = x[start : start + step], y[start : start + step]
        sx = np.sign(xs[:, :, None] - xs[:, None, :])
        sy = np.sign(ys[:, :, None] - ys[:, None, :])
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + step] = (sx * sy).sum((1, 2)) / np.sqrt((sx * sx).sum((1, 2)) * (sy * sy).sum((1, 2)))
    return np.where((n < 3) | ~np.isfinite(out), np.nan, np.clip(out, -1.0, 1.0))


def _residuals(v: FloatArray, design: FloatArray) -> FloatArray:
    """Residuals of each row of `v` (b, n) after least squares on its design (b, n, k) plus an intercept."""
    b, n = v.shape
    full = np.concatenate([np.ones((b, n, 1)), design], axis=2)
    beta = np.linalg.pinv(full) @ v[:, :, None]
    return v - (full @ beta)[:, :, 0]


def batched_r(
    x: ArrayLike,
    y: ArrayLike,
    method: str = "spearman",
    controls: ArrayLike | None = None,
    numeric: ArrayLike | None = None,
) -> FloatArray:
    """The (partial) coefficient of each row: x, y of shape (b, n), controls of shape (b, n, k) (or (n, k),
    shared) with `numeric` marking the columns ranked for Spearman. NaN where undefined (fewer than 3 models,
    a constant variable, no residual variance left)."""
    check_method(method, RELATION_METHODS)
    xa = np.atleast_2d(np.asarray(x, dtype=float))
    ya = np.atleast_2d(np.asarray(y, dtype=float))
    if xa.shape != ya.shape:
        raise ValueError(f"x and y must have the same shape; got {xa.shape} and {ya.shape}")
    if controls is None or np.asarray(controls).size == 0:
        if method == "kendall":
            return _row_kendall(xa, ya)
        if method == "spearman":
            xa, ya = _ranks(xa), _ranks(ya)
        return _row_pearson(xa, ya)
    if method == "kendall":
        raise ValueError("Kendall's tau takes no controls; use method 'spearman' or 'pearson' for a partial r")
    design = np.asarray(controls, dtype=float)
    if design.ndim == 2:
        design = np.broadcast_to(design, (xa.shape[0], *design.shape))
    flags = np.ones(design.shape[2], dtype=bool) if numeric is None else np.asarray(numeric, dtype=bool)
    if method == "spearman":
        xa, ya = _ranks(xa), _ranks(ya)
        design = design.copy()
        if flags.any():
            design[:, :, flags] = _ranks(np.swapaxes(design[:, :, flags], 1, 2)).swapaxes(1, 2)
    r = _row_pearson(_residuals(xa, design), _residuals(ya, design))
    rank = np.linalg.matrix_rank(np.concatenate([np.ones((*design.shape[:2], 1)), design], axis=2))
    return np.where(xa.shape[1] - rank < 2, np.nan, r)  # n - (k+1) residual dof; 1 leaves a sign only


def relation_r(x: ArrayLike, y: ArrayLike, method: str = "spearman") -> float:
    """The coefficient over models (scipy's pearsonr, spearmanr or kendalltau (tau-b) on these data)."""
    return float(batched_r(np.asarray(x, dtype=float)[None], np.asarray(y, dtype=float)[None], method)[0])


def partial_r(
    x: ArrayLike, y: ArrayLike, controls: ArrayLike, method: str = "spearman", numeric: ArrayLike | None = None
) -> float:
    """The partial coefficient of x and y given the control columns (n, k) (see the module doc)."""
    design = np.asarray(controls, dtype=float)
    design = design[:, None] if design.ndim == 1 else design
    return float(
        batched_r(np.asarray(x, dtype=float)[None], np.asarray(y, dtype=float)[None], method, design[None], numeric)[0]
    )


# --------------------------------------------------------------------------- resampling


def model_resamples(n: int, n_boot: int, seed: int = 0) -> NDArray[np.intp]:
    """The bootstrap over models: `n_boot` rows of `n` model indices drawn with replacement."""
    if n < 1 or n_boot < 1:
        raise ValueError(f"need n >= 1 and n_boot >= 1; got n={n}, n_boot={n_boot}")
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _permutations(n: int, n_perm: int, seed: int) -> tuple[Iterator[NDArray[np.intp]], int, bool]:
    """Blocks of permutations of range(n): all n! of them when n! <= n_perm (exact), else n_perm random ones."""
    total = math.factorial(n)
    block = max(1, 200_000 // max(1, n))
    if total <= n_perm:
        import itertools

        def every() -> Iterator[NDArray[np.intp]]:
            source = itertools.permutations(range(n))
            while chunk := list(itertools.islice(source, block)):
                yield np.array(chunk, dtype=np.intp)

        return every(), total, True
    rng = np.random.default_rng(seed)

    def drawn() -> Iterator[NDArray[np.intp]]:
        for start in range(0, n_perm, block):
            rows = min(block, n_perm - start)
            yield rng.permuted(np.broadcast_to(np.arange(n), (rows, n)), axis=1)

    return drawn(), n_perm, False


def permutation_p(
    x: ArrayLike,
    y: ArrayLike,
    method: str = "spearman",
    controls: ArrayLike | None = None,
    numeric: ArrayLike | None = None,
    n_perm: int = 10_000,
    seed: int = 0,
) -> tuple[float, int, bool]:
    """Two-sided permutation p-value of the (partial) coefficient: y permuted against x (with controls: the
    residuals of y permuted against those of x, Kennedy's scheme). Exact (all n! permutations, p = share with
    |r| >= |r observed|) when n! <= n_perm; else Monte Carlo, p = (1 + count) / (1 + n_perm).
    Returns (p, permutations used, exact)."""
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(xa)
    if controls is not None and np.asarray(controls).size:
        design = np.asarray(controls, dtype=float)
        design = design[:, None] if design.ndim == 1 else design
        flags = np.ones(design.shape[1], dtype=bool) if numeric is None else np.asarray(numeric, dtype=bool)
        if method == "spearman":
            xa, ya = _ranks(xa), _ranks(ya)
            design = design.copy()
            design[:, flags] = _ranks(design[:, flags].T).T if flags.any() else design[:, flags]
        xa, ya = _residuals(xa[None], design[None])[0], _residuals(ya[None], design[None])[0]
        method = "pearson"
    observed = relation_r(xa, ya, method)
    if not math.isfinite(observed):
        return math.nan, 0, False
    blocks, total, exact = _permutations(n, n_perm, seed)
    tolerance = 1e-12 * max(1.0, abs(observed))
    count = 0
    for perms in blocks:
        rs = batched_r(np.broadcast_to(xa, perms.shape), ya[perms], method)
        count += int(np.sum(np.abs(rs) >= abs(observed) - tolerance))
    return (count / total if exact else (1 + count) / (1 + total)), total, exact


# --------------------------------------------------------------------------- the relation


def relate(
    x: ArrayLike,
    y: ArrayLike,
    method: str = "spearman",
    controls: Sequence[ArrayLike] | None = None,
    n_boot: int = 2000,
    n_perm: int = 10_000,
    level: float = 0.95,
    seed: int = 0,
    min_models: int = MIN_MODELS,
) -> RelationStats:
    """r, its bootstrap-over-models CI and permutation p; with `controls` (one array per control variable,
    numeric or categorical) also the partial r, its CI (on the same resamples) and permutation p. Models with
    a non-finite x, y or control are left out. Fewer than `min_models` models: NaN, status "too few models"."""
    check_method(method, RELATION_METHODS)
    level = check_level(level)
    xa = np.asarray(x, dtype=float).reshape(-1)
    ya = np.asarray(y, dtype=float).reshape(-1)
    if len(xa) != len(ya):
        raise ValueError(f"x and y need one value per model; got {len(xa)} and {len(ya)}")
    design, numeric = control_matrix(controls) if controls else (np.zeros((len(xa), 0)), np.zeros(0, dtype=bool))
    if controls and method == "kendall":
        raise ValueError("Kendall's tau takes no controls; use method 'spearman' or 'pearson' for a partial r")
    if len(design) != len(xa):
        raise ValueError(f"controls need one value per model ({len(xa)}); got {len(design)}")
    keep = np.isfinite(xa) & np.isfinite(ya) & np.isfinite(design).all(axis=1)
    xa, ya, design = xa[keep], ya[keep], design[keep]
    n = len(xa)
    empty = RelationStats(nan, nan, nan, nan, n=n, method=method, n_controls=design.shape[1], level=level)
    if n < min_models:
        note = f"{TOO_FEW_MODELS}: {n} with both values, at least {min_models} needed"
        return replace(empty, status=TOO_FEW_MODELS, note=note)
    r = relation_r(xa, ya, method)
    if not math.isfinite(r):
        return replace(empty, status="undefined", note="undefined: x or y is the same for every model")
    index = model_resamples(n, n_boot, seed)
    low, high, boot_note = percentile_interval(batched_r(xa[index], ya[index], method), level)
    p, used, exact = permutation_p(xa, ya, method, n_perm=n_perm, seed=seed)
    notes = [boot_note] if boot_note else []
    stats = replace(empty, r=r, ci_low=low, ci_high=high, p_value=p, n_boot=n_boot, n_perm=used, exact_p=exact)
    if design.shape[1]:
        pr = partial_r(xa, ya, design, method, numeric)
        samples = batched_r(xa[index], ya[index], method, design[index], numeric)
        plow, phigh, pnote = percentile_interval(samples, level)
        pp, _, _ = permutation_p(xa, ya, method, design, numeric, n_perm=n_perm, seed=seed)
        stats = replace(stats, partial_r=pr, partial_ci_low=plow, partial_ci_high=phigh, partial_p_value=pp)
        notes += [f"partial: {pnote}"] if pnote else []
        if not math.isfinite(pr):
            notes.append("partial r undefined: the controls leave no variance (too many control levels for the models)")
    return replace(stats, note="; ".join(notes))
