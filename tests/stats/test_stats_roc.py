"""The count-weighted ROC core (`stats.roc`) against scikit-learn, brentq on sklearn's ROC, and hand-worked
cases: AUC, the Youden threshold and in-sample accuracy, EER, TAR@FAR, plain and under resampling counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score
from stats_oracles import FAST, brentq_eer, counts_of, index_resamples, pairs, sklearn_tar_at_far, sklearn_youden

from pytest_facebench import stats as S
from pytest_facebench.stats import roc as roc_module


def random_pairs(rng: np.random.Generator, n: int, signal: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    d = np.round(rng.normal(size=n) - signal * y, 1)  # rounding creates ties
    return d, y


# --------------------------------------------------------------------------- AUC


@FAST
@given(pairs())
def test_roc_auc_matches_sklearn_with_ties(data: tuple[np.ndarray, np.ndarray]) -> None:
    d, y = data
    assert S.roc_auc(d, y) == pytest.approx(roc_auc_score(y, -d), abs=1e-12)


def test_roc_auc_matches_sklearn_large() -> None:
    d, y = random_pairs(np.random.default_rng(0), 3000)
    assert S.roc_auc(d, y) == pytest.approx(roc_auc_score(y, -d), abs=1e-12)
    assert S.roc_auc(d, y.astype(bool)) == pytest.approx(roc_auc_score(y, -d), abs=1e-12)


def test_roc_auc_hand_case() -> None:
    # same: 0.1, 0.3; different: 0.3, 0.5 -> comparisons (same closer than different):
    # (0.1,0.3)=1 (0.1,0.5)=1 (0.3,0.3)=1/2 (0.3,0.5)=1 -> 3.5/4
    assert S.roc_auc([0.1, 0.3, 0.3, 0.5], [1, 1, 0, 0]) == 0.875
    assert isinstance(S.roc_auc([0.1, 0.3, 0.3, 0.5], [1, 1, 0, 0]), float)


@FAST
@given(pairs(), st.sampled_from(["exp", "cube", "affine", "log1p"]))
def test_roc_auc_invariant_under_monotone_transform(data: tuple[np.ndarray, np.ndarray], kind: str) -> None:
    d, y = data
    f = {"exp": np.exp, "cube": lambda v: v**3, "affine": lambda v: 3 * v - 7, "log1p": np.log1p}[kind]
    assert S.roc_auc(f(d), y) == pytest.approx(S.roc_auc(d, y), abs=1e-12)


@FAST
@given(st.integers(4, 30), st.integers(1, 4), st.integers(0, 2**16))
def test_count_rows_selecting_separate_data_sets_equal_sklearn_per_data_set(n: int, batch: int, seed: int) -> None:
    # `batch` data sets laid end to end; row i of the count matrix counts only data set i, so each row
    # of the one sorted core is that data set's own AUC and in-sample accuracy.
    rng = np.random.default_rng(seed)
    d = rng.integers(0, 5, (batch, n)) / 2
    y = rng.integers(0, 2, (batch, n))
    y[:, 0], y[:, 1] = 0, 1
    counts = np.kron(np.eye(batch, dtype=np.int64), np.ones(n, dtype=np.int64))  # (batch, batch * n)
    got = S.roc_auc(d.ravel(), y.ravel(), weights=counts)
    metrics = S.Roc(d.ravel(), y.ravel()).metrics(counts)
    assert got.shape == (batch,)
    for i in range(batch):
        assert got[i] == pytest.approx(roc_auc_score(y[i], -d[i]), abs=1e-12)
        threshold, accuracy = sklearn_youden(d[i], y[i])
        assert metrics.accuracy[i] == pytest.approx(accuracy, abs=1e-12)
        assert metrics.threshold[i] == threshold


def test_single_class_raises_clear_error_and_a_weighted_row_without_a_class_is_nan() -> None:
    with pytest.raises(
        ValueError,
        match=r"^AUC needs both same \(1\) and different \(0\) pairs; got 120 pairs, "
        r"all labelled 1$",
    ):
        S.roc_auc(np.linspace(0, 1, 120), np.ones(120))
    with pytest.raises(ValueError, match=r"EER needs both .* got 7 pairs, all labelled 0"):
        S.eer(np.linspace(0, 1, 7), np.zeros(7, dtype=bool))
    with pytest.raises(ValueError, match=r"Youden threshold needs both"):
        S.in_sample_verification([0.1, 0.2], [0, 0])
    d, y = np.array([0.1, 0.2, 0.3, 0.4]), np.array([1, 0, 1, 0])
    auc = S.roc_auc(d, y, weights=[[1, 1, 1, 1], [0, 2, 0, 1]])  # row 1 holds only different pairs
    assert auc[0] == pytest.approx(roc_auc_score(y, -d)) and math.isnan(auc[1])
    m = S.Roc(d, y).metrics([[0, 2, 0, 1]], fars=[0.5])
    assert all(math.isnan(v[0]) for v in (m.auc, m.accuracy, m.threshold, m.eer, m.tar[0.5]))


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="same length"):
        S.roc_auc([0.1, 0.2, 0.3], [1, 0])
    with pytest.raises(ValueError, match="0/1"):
        S.roc_auc([0.1, 0.2, 0.3], [1, 0, 2])
    with pytest.raises(ValueError, match="finite"):
        S.roc_auc([0.1, np.nan, 0.3], [1, 0, 1])
    with pytest.raises(ValueError, match=r"1-D array; got shape \(2, 2\)"):
        S.roc_auc([[0.1, 0.2], [0.3, 0.4]], [1, 0])
    with pytest.raises(ValueError, match=r"weights must have shape \(\.\.\., 3\); got \(2,\)"):
        S.roc_auc([0.1, 0.2, 0.3], [1, 0, 1], weights=[1, 2])
    with pytest.raises(ValueError, match="non-negative"):
        S.roc_auc([0.1, 0.2, 0.3], [1, 0, 1], weights=[1, -1, 1])
    with pytest.raises(ValueError, match=r"target FAR must be in \(0, 1\]; got 1.5"):
        S.tar_at_far([0.1, 0.2, 0.3], [1, 0, 1], fars=[1.5])


# ------------------------------------------------------------------ in-sample verification


@FAST
@given(pairs())
def test_in_sample_verification_matches_sklearn(data: tuple[np.ndarray, np.ndarray]) -> None:
    d, y = data
    t, acc = sklearn_youden(d, y)
    res = S.in_sample_verification(d, y)
    assert res["optimal_threshold"] == t
    assert res["accuracy"] == pytest.approx(acc, abs=1e-12)
    assert res["auc"] == pytest.approx(roc_auc_score(y, -d), abs=1e-12)


def test_youden_ignores_distances_absent_from_the_resample() -> None:
    # Resample {1 (different) x2, 2 (same) x1}: candidates are 1 and 2 only; J = -1 and 0
    # -> threshold 2, accuracy 1/3. Distance 0 (weight 0) must not act as a threshold
    # (it would give J = 0 first and accuracy 2/3).
    assert sklearn_youden(np.array([1.0, 1, 2]), np.array([0, 0, 1])) == (2.0, pytest.approx(1 / 3))
    m = S.Roc([0.0, 1.0, 2.0], [1, 0, 1]).metrics([[0, 2, 1]])
    assert m.accuracy[0] == pytest.approx(1 / 3) and m.threshold[0] == 2.0


# --------------------------------------------------------------------------- under resampling counts


def test_weighted_metrics_equal_sklearn_on_the_expanded_resamples() -> None:
    # A row of counts gives exactly the metric of the resample it stands for (here the explicit
    # index resamples of the engine's scheme; several FARs, ties in the distances).
    rng = np.random.default_rng(4)
    y = (rng.random(150) < 0.4).astype(int)
    d = np.round(rng.normal(0.5, 0.2, 150) - 0.2 * y, 2)
    resamples = index_resamples(150, 30, seed=5)
    counts = S.bootstrap_weights(150, 30, seed=5)
    np.testing.assert_array_equal(counts, counts_of(resamples, 150))
    m = S.Roc(d, y).metrics(counts, fars=[0.05, 0.2])
    assert S.roc_auc(d, y, weights=counts) == pytest.approx(m.auc, abs=0)
    np.testing.assert_array_equal(S.eer(d, y, weights=counts), m.eer)
    for b, idx in enumerate(resamples):
        db, yb = d[idx], y[idx]
        assert m.auc[b] == pytest.approx(roc_auc_score(yb, -db), abs=1e-12)
        threshold, accuracy = sklearn_youden(db, yb)
        assert m.accuracy[b] == pytest.approx(accuracy, abs=1e-12) and m.threshold[b] == threshold
        assert m.eer[b] == pytest.approx(brentq_eer(db, yb), abs=1e-9)
        for far in (0.05, 0.2):
            if (yb == 0).sum() * far < 1:
                assert math.isnan(m.tar[far][b])
                continue
            tar, at = sklearn_tar_at_far(db, yb, far)
            assert m.tar[far][b] == pytest.approx(tar) and m.tar_threshold[far][b] == at


def test_permuting_the_pairs_with_their_counts_changes_nothing() -> None:
    rng = np.random.default_rng(7)
    d, y = random_pairs(rng, 80)
    w = S.bootstrap_weights(80, 25, seed=11)
    perm = rng.permutation(80)
    a, b = S.Roc(d, y).metrics(w, [0.1]), S.Roc(d[perm], y[perm]).metrics(w[:, perm], [0.1])
    for field in ("auc", "accuracy", "threshold", "eer"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    np.testing.assert_array_equal(a.tar[0.1], b.tar[0.1])


def test_one_dimensional_weights_give_a_float_and_equal_the_expanded_data() -> None:
    d, y = np.array([0.2, 0.4, 0.1, 0.9, 0.5]), np.array([1, 0, 1, 0, 0])
    w = np.array([2, 1, 0, 3, 1])
    expanded_d, expanded_y = np.repeat(d, w), np.repeat(y, w)
    auc = S.roc_auc(d, y, weights=w)
    assert isinstance(auc, float) and auc == pytest.approx(roc_auc_score(expanded_y, -expanded_d))
    assert S.eer(d, y, weights=w) == pytest.approx(brentq_eer(expanded_d, expanded_y), abs=1e-9)


def test_counts_at_each_distinct_distance_by_hand() -> None:
    # sorted: 0.1 S, 0.3 S, 0.3 D, 0.5 D -> distinct 0.1, 0.3, 0.5; same 1 1 0, different 0 1 1;
    # with counts (2, 0, 1, 3): same 2 0 0, different 0 1 3.
    roc = S.Roc([0.3, 0.1, 0.5, 0.3], [1, 1, 0, 0])
    np.testing.assert_array_equal(roc.thresholds, [0.1, 0.3, 0.5])
    pos, neg = roc.counts()
    np.testing.assert_array_equal(pos, [[1, 1, 0]])
    np.testing.assert_array_equal(neg, [[0, 1, 1]])
    pos, neg = roc.counts([0, 2, 3, 1])
    np.testing.assert_array_equal(pos, [[2, 0, 0]])
    np.testing.assert_array_equal(neg, [[0, 1, 3]])
    assert (roc.n, roc.n_pos, roc.n_neg) == (4, 2, 2)


@pytest.mark.parametrize("decimals", [None, 3, 1])  # no ties; a few short ties; ties longer than MAX_TIE_STEPS
def test_counts_under_ties_equal_a_sum_per_distance_and_float_weights_give_the_same_metrics(decimals) -> None:
    rng = np.random.default_rng(7)
    d = rng.normal(size=2000)
    if decimals is not None:
        d = np.round(d, decimals)
    y = rng.integers(0, 2, 2000)
    w = rng.integers(0, 3, (40, 2000))
    w[:, d == d.min()] = 0  # the smallest distance is absent from every row, so it is never a threshold
    roc = S.Roc(d, y)
    distinct = np.searchsorted(roc.thresholds, d)
    want_pos, want_neg = np.zeros((40, len(roc.thresholds)), np.int64), np.zeros((40, len(roc.thresholds)), np.int64)
    for row in range(40):
        np.add.at(want_pos[row], distinct, w[row] * y)
        np.add.at(want_neg[row], distinct, w[row] * (1 - y))
    pos, neg = roc.counts(w)
    np.testing.assert_array_equal(pos, want_pos)
    np.testing.assert_array_equal(neg, want_neg)
    whole, fractional = roc.metrics(w, (0.01, 0.1)), roc.metrics(w.astype(float), (0.01, 0.1))
    for field in ("auc", "accuracy", "threshold", "eer"):
        np.testing.assert_array_equal(getattr(whole, field), getattr(fractional, field))
    assert not np.isin(whole.threshold, d.min()).any()


def test_count_rows_scored_a_few_at_a_time_equal_each_row_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Integer counts are scored in parts of a few rows (`ROW_BLOCK_CELLS`): every metric of every row equals that
    row scored alone, to the last bit."""
    rng = np.random.default_rng(11)
    d, y = np.round(rng.normal(size=300), 2), rng.integers(0, 2, 300)
    w = rng.integers(0, 3, (23, 300))
    roc = S.Roc(d, y)
    monkeypatch.setattr(roc_module, "ROW_BLOCK_CELLS", 5 * len(roc.thresholds))  # parts of 5 rows, the last of 3
    parts = roc.metrics(w, (0.01, 0.1))
    for row in range(len(w)):
        alone = roc.metrics(w[row : row + 1], (0.01, 0.1))
        for field in ("auc", "accuracy", "threshold", "eer"):
            assert getattr(parts, field)[row] == getattr(alone, field)[0]
        for far in (0.01, 0.1):
            assert parts.tar[far][row] == alone.tar[far][0]
            assert parts.tar_threshold[far][row] == alone.tar_threshold[far][0]


# ------------------------------------------------------------------ EER / TAR


def test_eer_hand_interpolated() -> None:
    # same: 0.1 0.3 0.3 0.5; different: 0.2 0.3 0.6 0.7 (4 each).
    # ROC points (threshold: FAR, FRR): -inf: 0, 1 | 0.1: 0, 3/4 | 0.2: 1/4, 3/4 |
    # 0.3: 2/4, 1/4 (two same + one different tie at 0.3). FAR - FRR: -1/2 at 0.2,
    # +1/4 at 0.3 -> s = (1/2)/(3/4) = 2/3 along the segment:
    # FAR = 1/4 + 2/3 * 1/4 = 5/12, FRR = 3/4 - 2/3 * 1/2 = 5/12.
    d = [0.1, 0.3, 0.3, 0.5, 0.2, 0.3, 0.6, 0.7]
    y = [1, 1, 1, 1, 0, 0, 0, 0]
    assert S.eer(d, y) == pytest.approx(5 / 12, abs=1e-12)


def test_eer_hand_exact_crossing() -> None:
    # sorted: 0.1S 0.2S 0.3S 0.4D 0.5D 0.6S 0.7D 0.8D; at t=0.4 FAR = 1/4 and FRR = 1/4.
    assert S.eer([0.1, 0.2, 0.3, 0.6, 0.4, 0.5, 0.7, 0.8], [1, 1, 1, 1, 0, 0, 0, 0]) == pytest.approx(0.25)


def test_eer_perfect_and_inverted() -> None:
    assert S.eer([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == 0.0
    assert S.eer([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0


@FAST
@given(pairs(min_n=6))
def test_eer_matches_brentq_on_sklearn_roc(data: tuple[np.ndarray, np.ndarray]) -> None:
    d, y = data
    assert S.eer(d, y) == pytest.approx(brentq_eer(d, y), abs=1e-9)


def test_tar_at_far_constructed() -> None:
    # 4 same (0.1 0.2 0.35 0.6), 10 different (0.3 0.4 ... 0.9).
    # FAR 0.1 -> at most 1 of 10 different accepted: largest observed threshold is 0.35
    #   (accepts different 0.3 only), TAR = 3/4.
    # FAR 0.25 -> at most 2 accepted: threshold 0.4, TAR = 3/4.
    # FAR 0.01 -> needs >= 100 different pairs; only 10 -> unreachable.
    same = [0.1, 0.2, 0.35, 0.6]
    diff = [0.3, 0.4, 0.45, 0.5, 0.55, 0.65, 0.7, 0.75, 0.8, 0.9]
    res = S.tar_at_far(same + diff, [1] * 4 + [0] * 10, fars=(0.01, 0.1, 0.25))
    assert res[0.1].reachable and res[0.1].tar == 0.75 and res[0.1].threshold == 0.35
    assert res[0.25].tar == 0.75 and res[0.25].threshold == 0.4
    assert not res[0.01].reachable and math.isnan(res[0.01].tar)
    assert res[0.01].note == "FAR 0.01 needs >= 100 different pairs; got 10"


def test_tar_at_far_when_different_pairs_tie_at_the_smallest_distance() -> None:
    # 2 of 4 different pairs tie with a same pair at the smallest distance 0.1: FAR 0.25 allows 1 -> no
    # threshold reaches it; TAR 0 at -inf, reachable, with a note.
    res = S.tar_at_far([0.1, 0.1, 0.1, 0.5, 0.6, 0.7], [1, 0, 0, 1, 0, 0], fars=(0.25,))[0.25]
    assert res.reachable and res.tar == 0.0 and res.threshold == -np.inf
    assert "tie at the smallest distance" in res.note


def test_tar_at_far_unreachable_default_note() -> None:
    rng = np.random.default_rng(0)
    d = rng.random(100)
    y = np.r_[np.ones(40), np.zeros(60)]
    res = S.tar_at_far(d, y)
    assert res[0.001].note == "FAR 0.001 needs >= 1000 different pairs; got 60"
    assert not res[0.01].reachable and res[0.1].reachable


def test_tar_at_far_single_class_is_noted_not_raised() -> None:
    res = S.tar_at_far([0.1, 0.2, 0.3], [1, 1, 1], fars=(0.1,))
    assert math.isnan(res[0.1].tar) and not res[0.1].reachable
    assert "needs both same (1) and different (0) pairs" in res[0.1].note


@FAST
@given(pairs(min_n=20, max_n=60), st.sampled_from([0.05, 0.1, 0.2, 0.5]))
def test_tar_at_far_matches_sklearn_roc(data: tuple[np.ndarray, np.ndarray], far: float) -> None:
    d, y = data
    n_neg = int((y == 0).sum())
    res = S.tar_at_far(d, y, fars=(far,))[far]
    if n_neg * far < 1:
        assert not res.reachable
        return
    tar, threshold = sklearn_tar_at_far(d, y, far)
    assert res.tar == pytest.approx(tar)
    if threshold > -np.inf:
        assert res.threshold == threshold
    assert np.mean(d[y == 0] <= res.threshold) <= far + 1e-12
