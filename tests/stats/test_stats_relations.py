"""Relations across models (`stats.relations`) against independent oracles: scipy for r on fixed data,
residualisation by hand for the partial r, a brute-force loop for the bootstrap-over-models CI, and the exact
enumeration of permutations for the permutation p-value."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sst

from pytest_facebench.stats import relations as R

X = np.array([0.12, 0.40, 0.33, 0.80, 0.55, 0.61, 0.05, 0.92, 0.47])
Y = np.array([0.60, 0.71, 0.66, 0.93, 0.70, 0.88, 0.52, 0.90, 0.80])
DIET = np.array(["faces", "objects", "faces", "faces", "objects", "faces", "objects", "faces", "none"])
SIZE = np.array([1.0, 3.0, 2.0, 8.0, 5.0, 4.0, 0.5, 9.0, 6.0])
SCIPY = {"pearson": sst.pearsonr, "spearman": sst.spearmanr, "kendall": sst.kendalltau}


@pytest.mark.parametrize("method", R.RELATION_METHODS)
def test_r_matches_scipy(method: str) -> None:
    assert R.relation_r(X, Y, method) == pytest.approx(SCIPY[method](X, Y).statistic, abs=1e-12)
    ties_x, ties_y = np.array([1, 2, 2, 3, 3, 3, 7.0]), np.array([5, 1, 4, 4, 2, 9, 9.0])
    assert R.relation_r(ties_x, ties_y, method) == pytest.approx(SCIPY[method](ties_x, ties_y).statistic, abs=1e-12)


def test_constant_variable_gives_nan() -> None:
    assert math.isnan(R.relation_r(X, np.full(len(X), 0.3), "spearman"))
    assert math.isnan(R.relation_r(X, np.full(len(X), 0.3), "kendall"))


def _residuals_by_hand(v: np.ndarray, design: np.ndarray) -> np.ndarray:
    full = np.column_stack([np.ones(len(v)), design])
    beta, *_ = np.linalg.lstsq(full, v, rcond=None)
    return v - full @ beta


def _one_hot(labels: np.ndarray) -> np.ndarray:
    levels = sorted(set(labels))
    return np.column_stack([(labels == level).astype(float) for level in levels[1:]])


def test_partial_pearson_against_residualisation_by_hand() -> None:
    design = np.column_stack([SIZE, _one_hot(DIET)])
    expected = sst.pearsonr(_residuals_by_hand(X, design), _residuals_by_hand(Y, design)).statistic
    matrix, numeric = R.control_matrix([SIZE, DIET])
    assert matrix.shape == (9, 3) and numeric.tolist() == [True, False, False]
    assert R.partial_r(X, Y, matrix, "pearson", numeric) == pytest.approx(expected, abs=1e-12)


def test_partial_spearman_ranks_numeric_controls_not_one_hot() -> None:
    rank = sst.rankdata
    design = np.column_stack([rank(SIZE), _one_hot(DIET)])
    expected = sst.pearsonr(_residuals_by_hand(rank(X), design), _residuals_by_hand(rank(Y), design)).statistic
    matrix, numeric = R.control_matrix([SIZE, DIET])
    assert R.partial_r(X, Y, matrix, "spearman", numeric) == pytest.approx(expected, abs=1e-12)


def test_single_control_partial_equals_the_textbook_formula() -> None:
    rxy, rxz, ryz = (sst.pearsonr(a, b).statistic for a, b in ((X, Y), (X, SIZE), (Y, SIZE)))
    textbook = (rxy - rxz * ryz) / math.sqrt((1 - rxz**2) * (1 - ryz**2))
    assert R.partial_r(X, Y, SIZE, "pearson") == pytest.approx(textbook, abs=1e-12)


def test_categorical_control_is_one_hot_of_all_but_the_first_level() -> None:
    matrix, numeric = R.control_matrix([np.array(["b", "a", "c", "a"]), np.array([True, False, True, True])])
    assert matrix.tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 1], [0, 0, 1]]
    assert numeric.tolist() == [False, False, True]


def test_kendall_refuses_controls() -> None:
    with pytest.raises(ValueError, match="Kendall's tau takes no controls"):
        R.relate(X, Y, "kendall", controls=[DIET])


@pytest.mark.parametrize("method", R.RELATION_METHODS)
def test_bootstrap_ci_against_a_brute_force_loop(method: str) -> None:
    stats = R.relate(X, Y, method, n_boot=300, n_perm=50, seed=7)
    index = R.model_resamples(len(X), 300, 7)
    loop = []
    for rows in index:  # scipy on each resample of models, as a user would write it
        xs, ys = X[rows], Y[rows]
        loop.append(np.nan if np.ptp(xs) == 0 or np.ptp(ys) == 0 else SCIPY[method](xs, ys).statistic)
    low, high = np.nanpercentile(loop, [2.5, 97.5])
    assert (stats.ci_low, stats.ci_high) == (pytest.approx(low, abs=1e-10), pytest.approx(high, abs=1e-10))
    assert stats.ci_low <= stats.r <= stats.ci_high and stats.n_boot == 300


def test_partial_bootstrap_ci_against_a_brute_force_loop() -> None:
    stats = R.relate(X, Y, "pearson", controls=[SIZE], n_boot=200, n_perm=50, seed=3)
    loop = []
    for rows in R.model_resamples(len(X), 200, 3):
        rx, ry = _residuals_by_hand(X[rows], SIZE[rows][:, None]), _residuals_by_hand(Y[rows], SIZE[rows][:, None])
        loop.append(np.nan if np.ptp(rx) < 1e-9 or np.ptp(ry) < 1e-9 else sst.pearsonr(rx, ry).statistic)
    low, high = np.nanpercentile(loop, [2.5, 97.5])
    assert stats.partial_ci_low == pytest.approx(low, abs=1e-9)
    assert stats.partial_ci_high == pytest.approx(high, abs=1e-9)


def _enumerated_p(x: np.ndarray, y: np.ndarray, fn) -> float:
    observed = abs(fn(x, y).statistic)
    hits = [abs(fn(x, np.array(p)).statistic) >= observed - 1e-12 for p in itertools.permutations(y)]
    return sum(hits) / len(hits)


@pytest.mark.parametrize("method", R.RELATION_METHODS)
def test_permutation_p_is_the_exact_enumeration_on_small_n(method: str) -> None:
    x, y = X[:6], Y[:6]
    p, used, exact = R.permutation_p(x, y, method, n_perm=1000)
    assert exact and used == 720
    assert p == pytest.approx(_enumerated_p(x, y, SCIPY[method]), abs=1e-12)


def test_monte_carlo_permutation_p_is_close_to_the_exact_enumeration() -> None:
    x, y = sst.rankdata(X[:8]), sst.rankdata(Y[:8])  # Spearman = Pearson of ranks (np.corrcoef: fast enough for 8!)
    observed = abs(np.corrcoef(x, y)[0, 1])
    hits = [abs(np.corrcoef(x, p)[0, 1]) >= observed - 1e-12 for p in itertools.permutations(y)]
    p, used, exact = R.permutation_p(X[:8], Y[:8], "spearman", n_perm=20_000, seed=1)
    assert not exact and used == 20_000
    assert p == pytest.approx(sum(hits) / len(hits), abs=0.01)


def test_partial_permutation_p_enumerates_permuted_residuals() -> None:
    x, y, z = X[:6], Y[:6], SIZE[:6]
    rx, ry = _residuals_by_hand(x, z[:, None]), _residuals_by_hand(y, z[:, None])
    p, used, exact = R.permutation_p(x, y, "pearson", controls=z, n_perm=1000)
    assert exact and used == 720
    assert p == pytest.approx(_enumerated_p(rx, ry, sst.pearsonr), abs=1e-12)


def test_fewer_than_five_models_say_too_few_models() -> None:
    stats = R.relate(X[:4], Y[:4])
    assert stats.status == R.TOO_FEW_MODELS and not stats.ok
    assert math.isnan(stats.r) and math.isnan(stats.ci_low) and stats.n == 4
    # a model missing a value does not count
    y = Y[:5].copy()
    y[2] = np.nan
    assert R.relate(X[:5], y).status == R.TOO_FEW_MODELS


def test_relate_reports_everything_for_enough_models() -> None:
    stats = R.relate(X, Y, controls=[DIET], n_boot=500)
    assert stats.ok and stats.n == 9 and stats.method == "spearman"
    assert stats.r == pytest.approx(sst.spearmanr(X, Y).statistic)
    assert 0 < stats.p_value < 0.05 and not stats.exact_p
    assert stats.n_controls == 2 and math.isfinite(stats.partial_r) and math.isfinite(stats.partial_p_value)
    assert stats.partial_ci_low <= stats.partial_r <= stats.partial_ci_high


def test_a_constant_axis_is_undefined_not_an_error() -> None:
    stats = R.relate(X, np.ones(len(X)))
    assert stats.status == "undefined" and math.isnan(stats.r)
