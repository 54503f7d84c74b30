"""DeLong's test (`stats.delong`) against a hand-worked example, the O(m n) kernel and scipy's normal."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sst
from sklearn.metrics import roc_auc_score
from stats_oracles import brute_force_delong

from pytest_facebench import stats as S


def test_delong_hand_example() -> None:
    # A: same 0.1 0.3 0.4 0.6 | different 0.2 0.5 0.7 0.8
    # B: same 0.2 0.2 0.5 0.7 | different 0.1 0.4 0.5 0.6
    # psi(s, d) = 1 if the same pair is closer, 1/2 on a tie, 0 otherwise.
    # V10 (per same pair, mean over 4 different pairs):
    #   A: 0.1 beats all -> 1; 0.3 and 0.4 beat 0.5 0.7 0.8 -> 3/4; 0.6 beats 0.7 0.8 -> 1/2
    #   B: 0.2 beats 0.4 0.5 0.6 -> 3/4 (twice); 0.5: tie 0.5, beats 0.6 -> 1.5/4; 0.7 -> 0
    # V01 (per different pair, mean over 4 same pairs):
    #   A: 0.2 -> 1/4; 0.5 -> 3/4; 0.7 -> 1; 0.8 -> 1
    #   B: 0.1 -> 0; 0.4 -> 2/4; 0.5 -> (2 + 1/2)/4; 0.6 -> 3/4
    v10 = np.array([[1, 0.75, 0.75, 0.5], [0.75, 0.75, 0.375, 0.0]])
    v01 = np.array([[0.25, 0.75, 1.0, 1.0], [0.0, 0.5, 0.625, 0.75]])
    # AUC_A = 3/4, AUC_B = 15/32. S10 = cov(V10), S01 = cov(V01) (ddof=1):
    #   var(V10_A - V10_B) = 0.13671875/3, var(V01_A - V01_B) = 0.01171875/3
    #   Var(diff) = S10/4 + S01/4 = 0.1484375/12
    var = 0.1484375 / 12
    assert np.var(v10[0] - v10[1], ddof=1) / 4 + np.var(v01[0] - v01[1], ddof=1) / 4 == pytest.approx(var)
    da = [0.1, 0.3, 0.4, 0.6, 0.2, 0.5, 0.7, 0.8]
    db = [0.2, 0.2, 0.5, 0.7, 0.1, 0.4, 0.5, 0.6]
    y = [1, 1, 1, 1, 0, 0, 0, 0]
    res = S.delong_test(da, db, y)
    assert res.auc_a == pytest.approx(0.75) and res.auc_b == pytest.approx(15 / 32)
    assert res.diff == pytest.approx(0.28125)
    assert res.se == pytest.approx(math.sqrt(var))
    assert res.z == pytest.approx(0.28125 / math.sqrt(var))
    assert res.p_value == pytest.approx(2 * sst.norm.sf(0.28125 / math.sqrt(var)))
    assert res.p_value == pytest.approx(0.011446, abs=1e-6)


def test_delong_matches_brute_force_kernel() -> None:
    rng = np.random.default_rng(5)
    for _ in range(5):
        y = rng.integers(0, 2, 60)
        y[:2] = [0, 1]
        da = np.round(rng.normal(size=60) - y, 1)
        db = np.round(da + rng.normal(scale=0.8, size=60), 1)
        diff, se = brute_force_delong(da, db, y)
        res = S.delong_test(da, db, y)
        assert res.diff == pytest.approx(diff, abs=1e-12)
        assert res.se == pytest.approx(se, rel=1e-10)
        assert res.auc_a == pytest.approx(roc_auc_score(y, -da))
        assert res.p_value == pytest.approx(2 * sst.norm.sf(abs(diff / se)), rel=1e-9)


def test_delong_identical_scores_and_bad_input() -> None:
    rng = np.random.default_rng(1)
    y = np.r_[np.ones(15, int), np.zeros(15, int)]
    d = np.round(rng.normal(size=30), 1)
    res = S.delong_test(d, d, y)
    assert res.diff == 0 and res.p_value == 1.0 and res.z == 0.0
    with pytest.raises(ValueError, match="DeLong test needs both same"):
        S.delong_test(d, d, np.ones(30))
    with pytest.raises(ValueError, match="same length"):
        S.delong_test(d, d[:10], y)


def test_normal_quantile() -> None:
    assert S.normal_quantile(0.975) == pytest.approx(1.959963984540054)
    assert S.normal_quantile(0.5) == 0.0
