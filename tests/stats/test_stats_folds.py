"""Folds and the k-fold protocol (`stats.folds`) against hand-worked cases, a brute-force threshold search with
sklearn's accuracy_score, and explicit loops over resamples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score
from stats_oracles import FAST, brute_force_best_threshold, index_resamples, pairs

from pytest_facebench import stats as S


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
    with pytest.raises(ValueError, match=r"folds must have shape \(6,\)"):
        S.kfold_accuracy(d, y, [0, 1])
    with pytest.raises(ValueError, match="at least 2 folds"):
        S.kfold_accuracy(d, y, [0] * 6)


def test_kfold_single_class_held_out_fold_is_noted() -> None:
    res = S.kfold_accuracy([1, 5, 2, 6, 3, 4], [1, 0, 1, 0, 1, 1], [0, 0, 1, 1, 2, 2])
    assert "fold 2: held-out part has only label 1" in res.note
    assert 0 <= res.mean <= 1


def brute_force_kfold(d: np.ndarray, y: np.ndarray, folds: np.ndarray) -> list[float]:
    """Oracle: per fold, every candidate threshold tried on the other folds with accuracy_score."""
    accs = []
    for f in np.unique(folds):
        tr, te = folds != f, folds == f
        t = brute_force_best_threshold(d[tr], y[tr])
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


@FAST
@given(pairs(min_n=5, max_n=40), st.integers(0, 2**16))
def test_accuracy_threshold_under_counts_equals_brute_force_on_the_expanded_data(
    data: tuple[np.ndarray, np.ndarray], seed: int
) -> None:
    # counts with zeros (distances absent from a row must not become midpoint ends) and repeats
    d, y = data
    counts = np.random.default_rng(seed).integers(0, 3, (4, len(d)))
    got = S.Roc(d, y).accuracy_threshold(counts)
    for row, threshold in zip(counts, got):
        if row.sum() == 0:
            continue
        assert threshold == brute_force_best_threshold(np.repeat(d, row), np.repeat(y, row))


def test_fold_accuracy_equals_a_loop_over_the_expanded_resamples() -> None:
    rng = np.random.default_rng(3)
    n = 40
    correct = rng.integers(0, 2, n)
    folds = np.repeat(np.arange(4), 10)
    resamples = index_resamples(n, 50, seed=2)
    counts = S.bootstrap_weights(n, 50, seed=2)
    mean, std = S.fold_accuracy(correct, folds, counts)
    for b, idx in enumerate(resamples):
        per_fold = [correct[idx][folds[idx] == f].mean() for f in range(4) if (folds[idx] == f).any()]
        assert mean[b] == pytest.approx(np.mean(per_fold)) and std[b] == pytest.approx(np.std(per_fold))
    # a fold absent from a resample is left out of its mean (fold 1 drawn nowhere here)
    only = np.where(folds == 1, 0, 1)[None, :]
    assert S.fold_accuracy(correct, folds, only)[0][0] == pytest.approx(
        np.mean([correct[folds == f].mean() for f in (0, 2, 3)])
    )
    with pytest.raises(ValueError, match="counts must have shape"):
        S.fold_accuracy(correct, folds, np.ones(n, dtype=int))
