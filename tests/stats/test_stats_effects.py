"""Relative difference, Cohen's d and means (`stats.effects`) against hand-worked values and numpy on
explicit resamples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from stats_oracles import cohens_d_expanded, counts_of, index_resamples

from pytest_facebench import stats as S


@given(
    hnp.arrays(np.float64, st.integers(1, 20), elements=st.floats(0.1, 100)),
    hnp.arrays(np.float64, st.integers(1, 20), elements=st.floats(0.1, 100)),
)
def test_relative_difference_antisymmetric(a: np.ndarray, b: np.ndarray) -> None:
    assert S.relative_difference(b, a) == pytest.approx(-S.relative_difference(a, b), abs=1e-12)
    assert -1 < S.relative_difference(a, b) < 1


def test_relative_difference_and_cohens_d_by_hand() -> None:
    assert S.relative_difference([3, 3], [1, 1]) == pytest.approx(0.5)  # (3 - 1) / (3 + 1)
    np.testing.assert_allclose(S.relative_difference([[3.0, 3.0], [2.0, 2.0]], [[1.0, 1.0], [2.0, 2.0]]), [0.5, 0.0])
    assert math.isnan(S.relative_difference([1.0, -1.0], [0.0]))  # the means sum to 0
    # means 2 and 5, both sample variances 1 -> pooled SD 1 -> d = -3
    assert S.cohens_d([1, 2, 3], [4, 5, 6]) == pytest.approx(-3.0)
    # unequal sizes: a var 2.5 (n=5), b var 1 (n=3): pooled = sqrt((4*2.5 + 2*1)/6) = sqrt(2)
    assert S.cohens_d([1, 2, 3, 4, 5], [0, 1, 2]) == pytest.approx(2 / math.sqrt(2))
    assert math.isnan(S.cohens_d([1, 1], [1, 1]))
    with pytest.raises(ValueError, match="Cohen's d needs >= 1 value per group and >= 3 in all; got 1 and 1"):
        S.cohens_d([1.0], [2.0])


def test_group_effects_equal_numpy_on_the_expanded_stratified_resamples() -> None:
    rng = np.random.default_rng(11)
    d = rng.random(20)
    in_a = np.arange(20) < 8
    resamples = index_resamples(20, 20, seed=3, strata=in_a)
    counts = S.bootstrap_weights(20, 20, seed=3, strata=in_a)
    np.testing.assert_array_equal(counts, counts_of(resamples, 20))
    out = S.group_effects(d, in_a, counts)
    for b, idx in enumerate(resamples):
        a, bb = d[idx][in_a[idx]], d[idx][~in_a[idx]]
        assert out["mean_a"][b] == pytest.approx(np.mean(a)) and out["mean_b"][b] == pytest.approx(np.mean(bb))
        assert out["cohens_d"][b] == pytest.approx(cohens_d_expanded(a, bb))
        assert out["relative_difference"][b] == pytest.approx((np.mean(a) - np.mean(bb)) / (np.mean(a) + np.mean(bb)))


def test_cohens_d_interval_from_group_effects_contains_a_true_effect() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 1, 40), rng.normal(0.0, 1, 30)
    values, in_a = np.r_[a, b], np.r_[np.ones(40, bool), np.zeros(30, bool)]
    boot = S.Bootstrap(500, 1)
    samples = boot.samples(lambda c: S.group_effects(values, in_a, c), 70, strata=in_a)
    low, high, _ = boot.interval(samples["cohens_d"])
    assert low < cohens_d_expanded(a, b) < high
    assert low > 0  # a true effect of d = 1 with 70 observations is clearly positive


def test_weighted_mean_equals_the_mean_of_each_resample() -> None:
    x = np.array([0.5, 2.0, -1.0, 4.0])
    counts = np.array([[1, 1, 1, 1], [4, 0, 0, 0], [0, 2, 1, 1], [0, 0, 0, 0]])
    got = S.weighted_mean(x, counts)
    np.testing.assert_allclose(got[:3], [np.mean(x), 0.5, np.mean([2.0, 2.0, -1.0, 4.0])])
    assert math.isnan(got[3])
    with pytest.raises(ValueError, match=r"counts must have shape \(n_resamples, 4\)"):
        S.weighted_mean(x, [1, 1, 1, 1])
