"""Oracle tests for pytest_facebench.stats.

Each metric is checked against an independent oracle: sklearn.metrics, scipy.stats,
brute-force loops, or values worked out by hand (reasoning in comments).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats as sst
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn.metrics import accuracy_score, roc_auc_score, roc_curve

from pytest_facebench import stats as S

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def pairs(draw: st.DrawFn, min_n: int = 4, max_n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Distances on a coarse grid (many ties) and labels with both classes."""
    n = draw(st.integers(min_n, max_n))
    d = draw(hnp.arrays(np.float64, n, elements=st.integers(0, 12).map(lambda v: v / 4)))
    y = draw(hnp.arrays(np.int64, n, elements=st.integers(0, 1)))
    y[0], y[-1] = 1, 0
    return d, y


def random_pairs(rng: np.random.Generator, n: int, signal: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    d = np.round(rng.normal(size=n) - signal * y, 1)  # rounding creates ties
    return d, y


# ------------------------------------------------------------------ AUC / ROC


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


@FAST
@given(pairs(), st.sampled_from(["exp", "cube", "affine", "log1p"]))
def test_roc_auc_invariant_under_monotone_transform(data: tuple[np.ndarray, np.ndarray], kind: str) -> None:
    d, y = data
    f = {"exp": np.exp, "cube": lambda v: v**3, "affine": lambda v: 3 * v - 7, "log1p": np.log1p}[kind]
    assert S.roc_auc(f(d), y) == pytest.approx(S.roc_auc(d, y), abs=1e-12)


@FAST
@given(st.integers(4, 30), st.integers(1, 4), st.integers(0, 2**16))
def test_roc_auc_batched_rows_equal_single_calls(n: int, batch: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    d = rng.integers(0, 5, (batch, n)) / 2
    y = rng.integers(0, 2, (batch, n))
    y[:, 0], y[:, 1] = 0, 1
    got = S.roc_auc(d, y)
    assert got.shape == (batch,)
    for i in range(batch):
        assert got[i] == pytest.approx(S.roc_auc(d[i], y[i]), abs=1e-12)
        assert got[i] == pytest.approx(roc_auc_score(y[i], -d[i]), abs=1e-12)


def test_single_class_raises_clear_error_for_auc_and_eer() -> None:
    with pytest.raises(ValueError, match=r"^AUC needs both same \(1\) and different \(0\) pairs; got 120 pairs, all labelled 1$"):
        S.roc_auc(np.linspace(0, 1, 120), np.ones(120))
    with pytest.raises(ValueError, match=r"EER needs both .* got 7 pairs, all labelled 0"):
        S.eer(np.linspace(0, 1, 7), np.zeros(7, dtype=bool))
    with pytest.raises(ValueError, match=r"batch row 1 has 5 pairs, all labelled 0"):
        S.roc_auc(np.zeros((2, 5)), np.array([[1, 0, 1, 0, 0], [0, 0, 0, 0, 0]]))


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="same length"):
        S.roc_auc([0.1, 0.2, 0.3], [1, 0])
    with pytest.raises(ValueError, match="0/1"):
        S.roc_auc([0.1, 0.2, 0.3], [1, 0, 2])
    with pytest.raises(ValueError, match="finite"):
        S.roc_auc([0.1, np.nan, 0.3], [1, 0, 1])


# ------------------------------------------------------- in-sample verification


def sklearn_youden(d: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Oracle: argmax of TPR - FPR over roc_curve thresholds (the leading +inf dropped)."""
    fpr, tpr, thr = roc_curve(y, -d, drop_intermediate=False)
    i = int(np.argmax((tpr - fpr)[1:])) + 1
    t = -thr[i]
    return t, accuracy_score(y, d <= t)


@FAST
@given(pairs())
def test_in_sample_verification_matches_sklearn(data: tuple[np.ndarray, np.ndarray]) -> None:
    d, y = data
    t, acc = sklearn_youden(d, y)
    res = S.in_sample_verification(d, y)
    assert res["optimal_threshold"] == t == S.youden_threshold(d, y)
    assert res["accuracy"] == pytest.approx(acc, abs=1e-12)
    assert res["auc"] == pytest.approx(roc_auc_score(y, -d), abs=1e-12)
    assert S.in_sample_accuracy(d, y) == pytest.approx(acc, abs=1e-12)


def test_in_sample_accuracy_batched_rows() -> None:
    rng = np.random.default_rng(3)
    d = np.round(rng.normal(size=(5, 50)), 1)
    y = rng.integers(0, 2, (5, 50))
    got = S.in_sample_accuracy(d, y)
    want = [sklearn_youden(d[i], y[i])[1] for i in range(5)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_weighted_metrics_equal_explicit_resamples() -> None:
    # The count-matrix bootstrap must give exactly the metric of the expanded resample.
    rng = np.random.default_rng(7)
    d, y = random_pairs(rng, 80)
    idx = S.bootstrap_indices(80, 25, seed=11)
    w = S.bootstrap_weights(80, 25, seed=11)
    np.testing.assert_array_equal(w, [np.bincount(row, minlength=80) for row in idx])
    auc_w = S.roc_auc(d, y, weights=w)
    acc_w = S.in_sample_accuracy(d, y, weights=w)
    for b in range(25):
        assert auc_w[b] == pytest.approx(roc_auc_score(y[idx[b]], -d[idx[b]]), abs=1e-12)
        assert acc_w[b] == pytest.approx(sklearn_youden(d[idx[b]], y[idx[b]])[1], abs=1e-12)
    np.testing.assert_allclose(S.roc_auc(d[idx], y[idx]), auc_w, atol=1e-12)
    # batched distances (per-row order) with weights: a permuted copy gives the same rows
    perm = rng.permutation(80)
    np.testing.assert_allclose(S.roc_auc(d[perm][None], y[perm], weights=w[:, perm]), auc_w, atol=1e-12)
    np.testing.assert_array_equal(S.in_sample_accuracy(np.tile(d[perm], (25, 1)), y[perm], weights=w[:, perm]), acc_w)


def test_youden_ignores_distances_absent_from_the_resample() -> None:
    # Resample {1 (different) x2, 2 (same) x1}: candidates are 1 and 2 only; J = -1 and 0
    # -> threshold 2, accuracy 1/3. Distance 0 (weight 0) must not act as a threshold
    # (it would give J = 0 first and accuracy 2/3).
    expanded = S.in_sample_accuracy([1.0, 1.0, 2.0], [0, 0, 1])
    assert expanded == pytest.approx(1 / 3) == sklearn_youden(np.array([1.0, 1, 2]), np.array([0, 0, 1]))[1]
    assert S.in_sample_accuracy([0.0, 1.0, 2.0], [1, 0, 1], weights=[[0, 2, 1]]) == pytest.approx([1 / 3])


# ------------------------------------------------------------------------ folds


def test_make_folds_contiguous_blocks_like_lfw() -> None:
    f = S.make_folds(6000, 10)
    assert np.array_equal(np.bincount(f), [600] * 10)
    assert np.all(np.diff(f) >= 0)  # file order, contiguous
    assert S.make_folds(7, 3).tolist() == [0, 0, 0, 1, 1, 2, 2]  # np.array_split sizes 3, 2, 2


def test_make_folds_from_fold_column() -> None:
    assert S.make_folds(5, fold_column=["b", "a", "c", "a", "b"]).tolist() == [1, 0, 2, 0, 1]
    assert S.make_folds(4, fold_column=[10, 3, 3, 10]).tolist() == [1, 0, 0, 1]
    with pytest.raises(ValueError, match="at least 2 distinct folds"):
        S.make_folds(3, fold_column=[1, 1, 1])
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        S.make_folds(4, fold_column=[1, 2])


def test_make_folds_bad_k() -> None:
    with pytest.raises(ValueError, match="k=1"):
        S.make_folds(10, 1)
    with pytest.raises(ValueError, match="k=11, n=10"):
        S.make_folds(10, 11)


def test_make_folds_identity_greedy_by_hand() -> None:
    # Identity graph components: {A,B} via pairs 0,1,4 (3 pairs); {C} pairs 2,5 (2 pairs);
    # {D,E} pair 3 (1 pair); {F} pair 6 (1 pair). Largest first into the emptiest fold:
    # {A,B}->fold 0 (load 3), {C}->fold 1 (2), then {D,E} (first seen at 3) -> fold 1 (3),
    # then {F} -> fold 0 or 1 both at 3 -> lowest id 0.
    ids = np.array([["A", "A"], ["A", "B"], ["C", "C"], ["D", "E"], ["B", "B"], ["C", "C"], ["F", "F"]])
    assert S.make_folds(7, 2, identities=ids).tolist() == [0, 0, 1, 1, 0, 1, 0]
    with pytest.raises(ValueError, match="only 4 connected groups; cannot make 5"):
        S.make_folds(7, 5, identities=ids)


@FAST
@given(st.integers(10, 60), st.integers(2, 5), st.integers(3, 30), st.integers(0, 2**16), st.booleans())
def test_make_folds_identity_disjoint(n: int, k: int, n_ids: int, seed: int, paired: bool) -> None:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, n_ids, (n, 2) if paired else n)
    try:
        f = S.make_folds(n, k, identities=ids)
    except ValueError as e:
        assert "connected groups" in str(e)
        return
    assert f.shape == (n,) and set(f.tolist()) == set(range(k))
    folds_of: dict[int, set[int]] = {}
    for row, fold in zip(ids.reshape(n, -1), f):
        for ident in row:
            folds_of.setdefault(int(ident), set()).add(int(fold))
    assert all(len(v) == 1 for v in folds_of.values())  # no identity in two folds
    assert np.array_equal(f, S.make_folds(n, k, identities=ids))  # deterministic


def test_kfold_accuracy_by_hand() -> None:
    # Folds (contiguous, 3 pairs each); S = same (1), D = different (0):
    #   fold 0: 1S 5D 3S   fold 1: 2S 7D 4D   fold 2: 6S 8D 9D
    # Fold 0 held out. Train (folds 1, 2) sorted: 2S 4D 6S 7D 8D 9D (2 S, 4 D).
    #   Correct counts per candidate: -inf:4, 3:5, 5:4, 6.5:5, 7.5:4, 8.5:3, +inf:2
    #   -> max 5 at 3 and 6.5; smallest -> t=3. Held out: 1<=3 S ok, 5>3 D ok,
    #   3<=3 S ok (predict same iff d <= t) -> 3/3.
    # Fold 1 held out. Train (folds 0, 2): 1S 3S 5D 6S 8D 9D (3 S, 3 D).
    #   -inf:3, 2:4, 4:5, 5.5:4, 7:5, 8.5:4, +inf:3 -> tie 4 / 7, smallest t=4.
    #   Held out: 2S ok, 7D ok, 4D predicted same (4<=4) wrong -> 2/3.
    #   (Breaking the tie towards 7 would give 1/3.)
    # Fold 2 held out. Train (folds 0, 1): 1S 2S 3S 4D 5D 7D -> t=3.5 separates perfectly.
    #   Held out: 6S predicted different (wrong), 8D ok, 9D ok -> 2/3.
    # mean = (1 + 2/3 + 2/3)/3 = 7/9; population std = sqrt(((2/9)^2 + 2 (1/9)^2)/3) = sqrt(2)/9.
    d = [1, 5, 3, 2, 7, 4, 6, 8, 9]
    y = [1, 0, 1, 1, 0, 0, 1, 0, 0]
    res = S.kfold_accuracy(d, y, S.make_folds(9, 3))
    np.testing.assert_allclose(res.per_fold, [1, 2 / 3, 2 / 3])
    np.testing.assert_array_equal(res.thresholds, [3.0, 4.0, 3.5])
    assert res.correct.tolist() == [1, 1, 1, 1, 1, 0, 0, 1, 1]
    assert res.mean == pytest.approx(7 / 9)
    assert res.std == pytest.approx(math.sqrt(2) / 9)
    assert res.note == ""


def test_kfold_training_part_without_positives_names_fold() -> None:
    d = [1, 2, 3, 4, 5, 6]
    y = [1, 1, 0, 0, 0, 0]  # all same pairs in fold 0
    with pytest.raises(ValueError, match=r"^fold 0: .*no same \(1\) pairs"):
        S.kfold_accuracy(d, y, [0, 0, 1, 1, 2, 2])
    with pytest.raises(ValueError, match=r"^fold 2: .*no different \(0\) pairs"):
        S.kfold_accuracy(d, [1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 2, 2])


def test_kfold_single_class_held_out_fold_is_noted() -> None:
    res = S.kfold_accuracy([1, 5, 2, 6, 3, 4], [1, 0, 1, 0, 1, 1], [0, 0, 1, 1, 2, 2])
    assert "fold 2: held-out part has only label 1" in res.note
    assert 0 <= res.mean <= 1


def brute_force_kfold(d: np.ndarray, y: np.ndarray, folds: np.ndarray) -> list[float]:
    """Oracle: try every candidate threshold with accuracy_score, keep the first best."""
    accs = []
    for f in np.unique(folds):
        tr, te = folds != f, folds == f
        u = np.unique(d[tr])
        cands = [-np.inf] + [(a + b) / 2 for a, b in zip(u[:-1], u[1:])] + [np.inf]
        scores = [accuracy_score(y[tr], d[tr] <= t) for t in cands]
        t = cands[int(np.argmax(scores))]
        accs.append(accuracy_score(y[te], d[te] <= t))
    return accs


@FAST
@given(pairs(min_n=12, max_n=40), st.integers(2, 4))
def test_kfold_accuracy_in_unit_interval_and_matches_brute_force(data: tuple[np.ndarray, np.ndarray], k: int) -> None:
    d, y = data
    folds = S.make_folds(len(d), k)
    try:
        res = S.kfold_accuracy(d, y, folds)
    except ValueError as e:
        assert "training part" in str(e)
        return
    assert 0 <= res.mean <= 1 and np.all((res.per_fold >= 0) & (res.per_fold <= 1))
    np.testing.assert_allclose(res.per_fold, brute_force_kfold(d, y, folds), atol=1e-12)
    assert res.std == pytest.approx(np.std(res.per_fold))
    for f in range(k):
        assert res.correct[folds == f].mean() == pytest.approx(res.per_fold[f])


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
    fpr, tpr, _ = roc_curve(y, -d)
    oracle = brentq(lambda x: 1.0 - x - interp1d(fpr, tpr)(x), 0.0, 1.0)
    assert S.eer(d, y) == pytest.approx(oracle, abs=1e-9)


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
    fpr, tpr, thr = roc_curve(y, -d, drop_intermediate=False)
    ok = np.flatnonzero(fpr <= far)
    assert res.tar == pytest.approx(tpr[ok[-1]])
    if ok[-1] > 0:  # index 0 is sklearn's "+inf" threshold (nothing accepted)
        assert res.threshold == -thr[ok[-1]]
    assert np.mean(d[y == 0] <= res.threshold) <= far + 1e-12


# --------------------------------------------------------------------- DeLong


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


def brute_force_delong(da: np.ndarray, db: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Oracle: structural components from the O(m n) kernel, then DeLong's variance."""
    comps = []
    for d in (da, db):
        s, n = d[y == 1][:, None], d[y == 0][None, :]
        psi = (s < n) + 0.5 * (s == n)
        comps.append((psi.mean(axis=1), psi.mean(axis=0)))
    (a10, a01), (b10, b01) = comps
    var = np.var(a10 - b10, ddof=1) / len(a10) + np.var(a01 - b01, ddof=1) / len(a01)
    return float(a10.mean() - b10.mean()), float(np.sqrt(var))


def test_delong_matches_brute_force_kernel() -> None:
    rng = np.random.default_rng(5)
    for _ in range(5):
        da, y = random_pairs(rng, 60)
        db = np.round(da + rng.normal(scale=0.8, size=60), 1)
        diff, se = brute_force_delong(da, db, y)
        res = S.delong_test(da, db, y)
        assert res.diff == pytest.approx(diff, abs=1e-12)
        assert res.se == pytest.approx(se, rel=1e-10)
        assert res.auc_a == pytest.approx(roc_auc_score(y, -da))


def test_delong_identical_scores() -> None:
    d, y = random_pairs(np.random.default_rng(1), 30)
    res = S.delong_test(d, d, y)
    assert res.diff == 0 and res.p_value == 1.0


# ------------------------------------------------------------------- bootstrap


def test_bootstrap_indices_and_weights_describe_same_resamples() -> None:
    idx = S.bootstrap_indices(50, 30, seed=3)
    assert idx.shape == (30, 50) and idx.min() >= 0 and idx.max() < 50
    w = S.bootstrap_weights(50, 30, seed=3)
    assert np.array_equal(w.sum(axis=1), np.full(30, 50))
    assert np.array_equal(w, np.stack([np.bincount(r, minlength=50) for r in idx]))
    assert not np.array_equal(idx, S.bootstrap_indices(50, 30, seed=4))
    assert np.array_equal(idx, S.bootstrap_indices(50, 30, seed=3))


def test_cluster_bootstrap_resamples_whole_groups() -> None:
    groups = np.array(["a", "a", "a", "b", "c", "c", "d", "d", "d", "d"])
    w = S.bootstrap_weights(10, 200, seed=0, groups=groups)
    for g in np.unique(groups):
        cols = w[:, groups == g]
        assert np.all(cols == cols[:, :1])  # all rows of a group share the group's count
    group_counts = np.stack([w[:, groups == g][:, 0] for g in np.unique(groups)], axis=1)
    assert np.all(group_counts.sum(axis=1) == 4)  # 4 groups drawn per resample
    with pytest.raises(ValueError, match="bootstrap_weights"):
        S.bootstrap_indices(10, 5, groups=groups)
    eq = np.repeat(np.arange(5), 2)  # equal-sized groups: index form works, same resamples
    idx = S.bootstrap_indices(10, 50, seed=1, groups=eq)
    assert np.all(eq[idx[:, 0::2]] == eq[idx[:, 1::2]])
    np.testing.assert_array_equal(S.bootstrap_weights(10, 50, seed=1, groups=eq), [np.bincount(r, minlength=10) for r in idx])


@FAST
@given(hnp.arrays(np.float64, st.integers(10, 50), elements=st.floats(-100, 100)), st.integers(0, 1000))
def test_bootstrap_ci_contains_mean(x: np.ndarray, seed: int) -> None:
    low, high = S.mean_ci(x, n_boot=300, seed=seed)
    assert low - 1e-9 <= x.mean() <= high + 1e-9


@FAST
@given(st.integers(0, 2**16), st.floats(0.0, 2.0))
def test_bootstrap_ci_contains_auc(seed: int, signal: float) -> None:
    d, y = random_pairs(np.random.default_rng(seed), 60, signal)
    low, high = S.bootstrap_ci(S.roc_auc, d, y, n_boot=300, seed=seed)
    assert low - 1e-12 <= S.roc_auc(d, y) <= high + 1e-12
    low2, high2 = S.bootstrap_ci(S.in_sample_accuracy, d, y, n_boot=300, seed=seed)
    assert 0 <= low2 <= high2 <= 1


def test_bootstrap_ci_weights_and_index_paths_agree() -> None:
    # n = 3000 -> resamples are evaluated in several blocks; both paths and the explicit
    # index matrix must still describe the same resamples.
    d, y = random_pairs(np.random.default_rng(2), 3000)
    weighted = S.bootstrap_samples(S.roc_auc, d, y, n_boot=400, seed=9)
    indexed = S.bootstrap_samples(lambda dd, yy: S.roc_auc(dd, yy), d, y, n_boot=400, seed=9)
    np.testing.assert_allclose(weighted, indexed, atol=1e-12)
    idx = S.bootstrap_indices(3000, 400, seed=9)
    for b in (0, 199, 399):
        assert weighted[b] == pytest.approx(roc_auc_score(y[idx[b]], -d[idx[b]]), abs=1e-12)
    ci = S.bootstrap_ci(S.roc_auc, d, y, n_boot=400, seed=9)
    assert ci == pytest.approx(tuple(np.percentile(weighted, [2.5, 97.5])))
    assert weighted.std() > 0


def test_cluster_bootstrap_ci_is_wider_for_clustered_data() -> None:
    # 20 clusters of 10 identical values: the effective sample size is 20, not 200.
    rng = np.random.default_rng(0)
    x = np.repeat(rng.normal(size=20), 10)
    groups = np.repeat(np.arange(20), 10)
    lo_r, hi_r = S.mean_ci(x, n_boot=500, seed=0)
    lo_g, hi_g = S.mean_ci(x, n_boot=500, seed=0, groups=groups)
    assert (hi_g - lo_g) > 2 * (hi_r - lo_r)


def test_paired_bootstrap() -> None:
    rng = np.random.default_rng(4)
    d_good, y = random_pairs(rng, 300, signal=2.0)
    d_bad = np.round(rng.normal(size=300) - 0.3 * y, 1)
    res = S.paired_bootstrap(S.roc_auc, d_good, d_bad, y, n_boot=400, seed=1)
    assert res.diff == pytest.approx(S.roc_auc(d_good, y) - S.roc_auc(d_bad, y))
    assert 0 < res.ci_low <= res.diff <= res.ci_high
    assert res.p_value == 0.0
    # p-value by hand from the same resamples (same seed -> same resamples)
    d_close = np.round(d_good + rng.normal(scale=0.7, size=300), 1)
    res2 = S.paired_bootstrap(S.roc_auc, d_good, d_close, y, n_boot=400, seed=1)
    diffs = S.bootstrap_samples(S.roc_auc, d_good, y, n_boot=400, seed=1) - S.bootstrap_samples(
        S.roc_auc, d_close, y, n_boot=400, seed=1
    )
    side = np.mean(diffs <= 0) if res2.diff > 0 else np.mean(diffs >= 0)
    assert res2.p_value == pytest.approx(min(1.0, 2 * side))
    same = S.paired_bootstrap(S.roc_auc, d_good, d_good, y, n_boot=50)
    assert same.diff == 0 and same.p_value == 1.0


# ---------------------------------------------------------------- correlations


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
    n = len(x)
    s = 0
    for i in range(n):
        for j in range(i + 1, n):
            s += np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])
    # 15 pairs: discordant (0,1); ties in x or y (1,2) (2,3) (4,5); the other 11 concordant
    # -> tau-a = (11 - 1) / (n(n-1)/2) = 10/15
    assert s == 10
    res = S.correlation(x, y, "kendall_tau_a")
    assert res.r == pytest.approx(10 / 15)
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


def test_weighted_spearman_equals_expanded_sample() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 5, 30).astype(float)
    y = x + rng.integers(0, 3, 30)
    idx = S.bootstrap_indices(30, 10, seed=2)
    w = S.bootstrap_weights(30, 10, seed=2)
    got_s, got_p = S.spearman_r(x, y, w), S.pearson_r(x, y, w)
    for b in range(10):
        assert got_s[b] == pytest.approx(sst.spearmanr(x[idx[b]], y[idx[b]]).statistic, abs=1e-12)
        assert got_p[b] == pytest.approx(sst.pearsonr(x[idx[b]], y[idx[b]]).statistic, abs=1e-12)


# -------------------------------------------------------------- noise ceiling


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


def test_split_half_reliability() -> None:
    # two participants: every split is p1 vs p2 -> Spearman-Brown of their correlation
    a = np.array([1.0, 2, 3, 4, 6])
    b = np.array([2.0, 1, 4, 3, 5])
    r = sst.pearsonr(a, b).statistic
    assert S.split_half_reliability(np.c_[a, b], n_splits=10) == pytest.approx(2 * r / (1 + r))
    # identical participants -> perfectly reliable
    assert S.split_half_reliability(np.tile(a[:, None], 6)) == pytest.approx(1.0)
    # pure noise -> far below the consistent case
    noise = np.random.default_rng(0).normal(size=(40, 8))
    assert S.split_half_reliability(noise) < 0.6
    assert math.isnan(S.split_half_reliability(a[:, None]))


# -------------------------------------------------------------------------- RSA


def test_rdm_from_embeddings_metrics() -> None:
    emb = np.random.default_rng(0).normal(size=(6, 4))
    euc = np.linalg.norm(emb[:, None] - emb[None], axis=-1)
    np.testing.assert_allclose(S.rdm_from_embeddings(emb, "euclidean"), euc, atol=1e-12)
    np.testing.assert_allclose(S.rdm_from_embeddings(emb, "correlation"), 1 - np.corrcoef(emb), atol=1e-12)
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    np.testing.assert_allclose(S.rdm_from_embeddings(emb, "cosine"), 1 - unit @ unit.T, atol=1e-12)


def test_compare_rdms_upper_triangle_and_mask() -> None:
    rng = np.random.default_rng(1)
    a = S.rdm_from_embeddings(rng.normal(size=(8, 5)), "euclidean")
    b = S.rdm_from_embeddings(rng.normal(size=(8, 5)), "euclidean")
    iu = np.triu_indices(8, 1)
    assert S.compare_rdms(a, b) == pytest.approx(sst.spearmanr(a[iu], b[iu]).statistic)
    assert S.compare_rdms(a, b, "pearson") == pytest.approx(sst.pearsonr(a[iu], b[iu]).statistic)
    mask = np.zeros((8, 8), dtype=bool)
    mask[0, :] = mask[:, 0] = True
    b_nan = b.copy()
    b_nan[1, 2] = b_nan[2, 1] = np.nan
    keep = (iu[0] != 0) & ~((iu[0] == 1) & (iu[1] == 2))
    assert S.compare_rdms(a, b_nan, "spearman", mask=mask) == pytest.approx(
        sst.spearmanr(a[iu][keep], b[iu][keep]).statistic
    )


@pytest.mark.parametrize("method", ["spearman", "pearson", "kendall_tau_a"])
def test_rsa_bootstrap_equals_explicit_resampled_rdms(method: str) -> None:
    rng = np.random.default_rng(2)
    emb = rng.normal(size=(9, 3))
    a = S.rdm_from_embeddings(emb, "euclidean")
    b = S.rdm_from_embeddings(emb + rng.normal(scale=0.7, size=emb.shape), "euclidean")
    res = S.rsa_bootstrap(a, b, method=method, n_boot=40, seed=5)
    assert res.estimate == pytest.approx(S.compare_rdms(a, b, method))
    idx = S.bootstrap_indices(9, 40, seed=5)
    for k in range(40):
        i = idx[k]
        self_pair = i[:, None] == i[None, :]  # a stimulus drawn twice, paired with itself
        want = S.compare_rdms(a[np.ix_(i, i)], b[np.ix_(i, i)], method, mask=self_pair)
        assert res.samples[k] == pytest.approx(want, abs=1e-12, nan_ok=True)
    assert res.ci_low <= res.estimate <= res.ci_high


# --------------------------------------------------------------- identification


def test_rank_k_and_cmc_by_hand() -> None:
    gallery = ["a", "b", "c", "a"]
    probes = ["a", "b", "c"]
    dist = np.array(
        [
            [0.5, 0.2, 0.9, 0.4],  # a: closest 'a' at 0.4; 'b' (0.2) is closer -> rank 2
            [0.3, 0.3, 0.8, 0.1],  # b: at 0.3, 'a' at 0.1 closer, 'a' at 0.3 ties (pessimistic) -> rank 3
            [0.6, 0.7, 0.1, 0.9],  # c: nearest -> rank 1
        ]
    )
    np.testing.assert_allclose(S.cmc_curve(dist, probes, gallery), [1 / 3, 2 / 3, 1, 1])
    np.testing.assert_allclose(S.cmc_curve(dist, probes, gallery, max_rank=2), [1 / 3, 2 / 3])
    assert S.rank_k_accuracy(dist, probes, gallery, ks=(1, 2, 5)) == pytest.approx({1: 1 / 3, 2: 2 / 3, 5: 1.0})


def test_identification_missing_identity_is_named() -> None:
    dist = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"absent from the gallery: \['zoe'\]"):
        S.rank_k_accuracy(dist, ["ann", "zoe"], ["ann", "bob"])


# ---------------------------------------------------------------------- effects


@FAST
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
    # means 2 and 5, both sample variances 1 -> pooled SD 1 -> d = -3
    assert S.cohens_d([1, 2, 3], [4, 5, 6]) == pytest.approx(-3.0)
    # unequal sizes: a var 2.5 (n=5), b var 1 (n=3): pooled = sqrt((4*2.5 + 2*1)/6) = sqrt(2)
    assert S.cohens_d([1, 2, 3, 4, 5], [0, 1, 2]) == pytest.approx(2 / math.sqrt(2))
    assert math.isnan(S.cohens_d([1, 1], [1, 1]))


def test_cohens_d_ci_contains_estimate() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 1, 40), rng.normal(0.0, 1, 30)
    low, high = S.cohens_d_ci(a, b, n_boot=500, seed=1)
    assert low < S.cohens_d(a, b) < high
    assert low > 0  # a true effect of d = 1 with 70 observations is clearly positive
