"""Correlations, noise ceilings and split-half reliability (`stats.correlation`) against scipy.stats,
numpy and hand-worked cases, plain and on explicit resamples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats as sst
from stats_oracles import counts_of, index_resamples, tau_a

from pytest_facebench import stats as S

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(hnp.arrays(np.float64, st.integers(3, 30), elements=st.integers(-5, 5).map(float)), st.integers(0, 2**16))
def test_correlations_match_scipy(x: np.ndarray, seed: int) -> None:
    y = x + np.random.default_rng(seed).integers(-3, 4, len(x))
    for method, fn in (("pearson", sst.pearsonr), ("spearman", sst.spearmanr), ("kendall", sst.kendalltau)):
        res = S.correlation(x, y, method)
        if np.ptp(x) == 0 or np.ptp(y) == 0:
            assert math.isnan(res.r) and "constant" in res.reason
            continue
        ref = fn(x, y)
        assert res.r == pytest.approx(ref.statistic, abs=1e-12)
        assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)
        assert res.n == len(x) and res.reason == ""


def test_kendall_tau_a_by_double_loop() -> None:
    x = [1, 2, 2, 3, 5, 4]
    y = [2, 1, 3, 3, 6, 6]
    # 15 pairs: discordant (0,1); ties in x or y (1,2) (2,3) (4,5); the other 11 concordant
    # -> tau-a = (11 - 1) / (n(n-1)/2) = 10/15
    assert tau_a(np.array(x), np.array(y)) == pytest.approx(10 / 15)
    res = S.correlation(x, y, "kendall_tau_a")
    assert res.r == pytest.approx(10 / 15)
    assert res.p_value == pytest.approx(sst.kendalltau(x, y).pvalue)
    assert res.r < S.correlation(x, y, "kendall").r  # tau-b corrects for ties, tau-a does not


def test_correlation_degenerate_inputs_give_nan_with_reason() -> None:
    res = S.correlation([0.3, 0.3, 0.3, 0.3], [1, 2, 3, 4], "spearman")
    assert math.isnan(res.r) and res.reason == "x is constant (all 4 values equal 0.3); correlation undefined"
    res = S.correlation([1, 2], [2, 1])
    assert math.isnan(res.r) and "at least 3" in res.reason
    res = S.correlation([1, 2, np.nan, 4, 5], [1, 3, 2, np.nan, 4])
    assert res.n == 3 and res.r == pytest.approx(sst.pearsonr([1, 2, 5], [1, 3, 4]).statistic)
    with pytest.raises(ValueError, match="method must be one of"):
        S.correlation([1, 2, 3], [1, 2, 3], "cosine")
    with pytest.raises(ValueError, match="same length; got 3 and 2"):
        S.correlation([1, 2, 3], [1, 2])


def test_batched_pearson_spearman_rows_equal_scipy() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 6, (4, 25)).astype(float)
    y = x + rng.integers(0, 4, (4, 25))
    x[3] = 2.0  # constant row -> nan
    p, s = S.pearson_r(x, y), S.spearman_r(x, y)
    for i in range(3):
        assert p[i] == pytest.approx(sst.pearsonr(x[i], y[i]).statistic, abs=1e-12)
        assert s[i] == pytest.approx(sst.spearmanr(x[i], y[i]).statistic, abs=1e-12)
    assert math.isnan(p[3]) and math.isnan(s[3])


def test_weighted_correlations_equal_scipy_on_the_expanded_resamples() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 5, 30).astype(float)
    y = x + rng.integers(0, 3, 30)
    resamples = index_resamples(30, 10, seed=2)
    w = S.bootstrap_weights(30, 10, seed=2)
    np.testing.assert_array_equal(w, counts_of(resamples, 30))
    got_s, got_p = S.spearman_r(x, y, w), S.pearson_r(x, y, w)
    got = {m: S.resampled_correlation(x, y, w, m) for m in S.CORRELATION_METHODS}
    for b, idx in enumerate(resamples):
        xb, yb = x[idx], y[idx]
        assert got_s[b] == pytest.approx(sst.spearmanr(xb, yb).statistic, abs=1e-12)
        assert got_p[b] == pytest.approx(sst.pearsonr(xb, yb).statistic, abs=1e-12)
        assert got["pearson"][b] == pytest.approx(sst.pearsonr(xb, yb).statistic, abs=1e-12)
        assert got["spearman"][b] == pytest.approx(sst.spearmanr(xb, yb).statistic, abs=1e-12)
        assert got["kendall"][b] == pytest.approx(sst.kendalltau(xb, yb).statistic, abs=1e-12)
        assert got["kendall_tau_a"][b] == pytest.approx(tau_a(xb, yb), abs=1e-12)


def test_weighted_rows_with_fewer_than_three_observations_or_constant_are_nan() -> None:
    x, y = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 1.0, 4.0, 3.0])
    r = S.pearson_r(x, y, [[1, 1, 0, 0], [0, 3, 0, 0], [1, 1, 1, 0]])
    assert math.isnan(r[0]) and math.isnan(r[1])
    assert r[2] == pytest.approx(sst.pearsonr(x[:3], y[:3]).statistic)


# --------------------------------------------------------------------------- noise ceiling


def test_noise_ceiling_by_hand() -> None:
    # participants p1 = 1 2 3 4, p2 = 1 2 4 3, p3 = 2 1 3 4 (4 items)
    # lower bound, leave-one-out means:
    #   others(p1) = 1.5 1.5 3.5 3.5: centred p1 = -1.5 -.5 .5 1.5, others -1 -1 1 1
    #     r = 4 / sqrt(5 * 4)
    #   others(p2) = 1.5 1.5 3 4: centred p2 = -1.5 -.5 1.5 .5, others -1 -1 .5 1.5
    #     r = 3.5 / sqrt(5 * 4.5); others(p3) = 1 2 3.5 3.5 gives the same 3.5 / sqrt(22.5)
    # upper bound, mean of all = 4/3 5/3 10/3 11/3, centred (-7 -5 5 7)/6:
    #   r(p1) = 26 / sqrt(740), r(p2) = r(p3) = 24 / sqrt(740)
    ratings = np.array([[1, 1, 2], [2, 2, 1], [3, 4, 3], [4, 3, 4]], dtype=float)
    res = S.noise_ceiling(ratings)
    assert res.low == pytest.approx((4 / math.sqrt(20) + 2 * 3.5 / math.sqrt(22.5)) / 3)
    assert res.high == pytest.approx((26 + 24 + 24) / (3 * math.sqrt(740)))
    assert res.n_participants == 3 and res.note == ""


def test_noise_ceiling_with_missing_ratings() -> None:
    # p3 misses item 0: its mean-of-others and correlations use items 1..3 only.
    ratings = np.array([[1, 1, np.nan], [2, 2, 1], [3, 4, 3], [4, 3, 4]], dtype=float)
    res = S.noise_ceiling(ratings)
    others_p1 = [1.0, 1.5, 3.5, 3.5]  # item 0: only p2 -> 1
    lo_p1 = sst.pearsonr(ratings[:, 0], others_p1).statistic
    lo_p2 = sst.pearsonr(ratings[:, 1], [1.0, 1.5, 3.0, 4.0]).statistic
    lo_p3 = sst.pearsonr([1, 3, 4], [2.0, 3.5, 3.5]).statistic
    assert res.low == pytest.approx((lo_p1 + lo_p2 + lo_p3) / 3)


def test_noise_ceiling_needs_two_participants() -> None:
    res = S.noise_ceiling(np.arange(5.0)[:, None])
    assert math.isnan(res.low) and math.isnan(res.high)
    assert res.note == "noise ceiling needs >= 2 participants; got 1"
    with pytest.raises(ValueError, match=r"ratings must have shape \(n_items, n_participants\)"):
        S.noise_ceiling(np.arange(5.0))


def numpy_ceiling(ratings: np.ndarray, method: str) -> tuple[float, float]:
    """Oracle without missing ratings: leave-one-out and all-participant means, scipy correlations."""
    corr = {"pearson": sst.pearsonr, "spearman": sst.spearmanr, "kendall": sst.kendalltau}.get(method)
    r = (lambda a, b: corr(a, b).statistic) if corr else tau_a
    n_p = ratings.shape[1]
    mean = ratings.mean(axis=1)
    high = np.mean([r(ratings[:, p], mean) for p in range(n_p)])
    low = np.mean([r(ratings[:, p], np.delete(ratings, p, axis=1).mean(axis=1)) for p in range(n_p)])
    return float(low), float(high)


@pytest.mark.parametrize("method", S.CORRELATION_METHODS)
def test_resampled_noise_ceiling_equals_the_ceiling_of_the_expanded_items(method: str) -> None:
    # whole-number ratings (ties): item means are exact, so tied means tie in both computations
    rng = np.random.default_rng(3)
    ratings = (rng.integers(0, 6, 15)[:, None] + rng.integers(-2, 3, (15, 4))).astype(float)
    resamples = index_resamples(15, 8, seed=4)
    low, high = S.resampled_noise_ceiling(ratings, counts_of(resamples, 15), method)
    for b, idx in enumerate(resamples):
        want = numpy_ceiling(ratings[idx], method)
        assert (low[b], high[b]) == pytest.approx(want, abs=1e-12)
    assert (S.noise_ceiling(ratings, method).low, S.noise_ceiling(ratings, method).high) == pytest.approx(
        numpy_ceiling(ratings, method), abs=1e-12
    )


def test_split_half_reliability() -> None:
    # two participants: every split is p1 vs p2 -> Spearman-Brown of their correlation
    a = np.array([1.0, 2, 3, 4, 6])
    b = np.array([2.0, 1, 4, 3, 5])
    r = sst.pearsonr(a, b).statistic
    assert S.split_half_reliability(np.c_[a, b], n_splits=10) == pytest.approx(2 * r / (1 + r))
    rho = sst.spearmanr(a, b).statistic
    assert S.split_half_reliability(np.c_[a, b], n_splits=10, method="spearman") == pytest.approx(2 * rho / (1 + rho))
    # identical participants -> perfectly reliable
    assert S.split_half_reliability(np.tile(a[:, None], 6)) == pytest.approx(1.0)
    # pure noise -> far below the consistent case
    noise = np.random.default_rng(0).normal(size=(40, 8))
    assert S.split_half_reliability(noise) < 0.6
    assert math.isnan(S.split_half_reliability(a[:, None]))
    with pytest.raises(ValueError, match="method must be one of"):
        S.split_half_reliability(np.c_[a, b], method="kendall")


def test_split_half_of_four_participants_by_hand() -> None:
    # 4 participants: every split puts 2 in each half; the 3 distinct splits {01|23}, {02|13}, {03|12}
    # (either way round) each give Spearman-Brown of corr(mean of one half, mean of the other).
    rng = np.random.default_rng(6)
    ratings = rng.normal(size=(12, 4))
    sb = {}
    for pair in ((0, 1), (0, 2), (0, 3)):
        other = [p for p in range(4) if p not in pair]
        r = sst.pearsonr(ratings[:, list(pair)].mean(axis=1), ratings[:, other].mean(axis=1)).statistic
        sb[pair] = 2 * r / (1 + r)
    got = S.split_half_reliability(ratings, n_splits=200, seed=1)
    assert min(sb.values()) - 1e-12 <= got <= max(sb.values()) + 1e-12
    splits = np.argsort(np.random.default_rng(1).random((200, 4)), axis=1) < 2  # the documented draw
    chosen = [tuple(sorted(np.flatnonzero(s))) for s in splits]
    key = [c if 0 in c else tuple(p for p in range(4) if p not in c) for c in chosen]
    assert got == pytest.approx(np.mean([sb[k] for k in key]))
