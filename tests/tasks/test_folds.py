"""Folds that are sound on any file (issue 10): stratified automatic folds (against scikit-learn's
StratifiedKFold and a hand-computed assignment), identity-disjoint stratified folds, every fold holding
both classes from any source, blank fold/identity cells, and labels that contradict the identities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.model_selection import StratifiedKFold

from pytest_facebench import stats
from pytest_facebench.errors import DataError, DataWarning
from pytest_facebench.tasks import AccuracyTask


def task_from(tmp_path: Path, frame: pd.DataFrame, **options) -> AccuracyTask:
    images = tmp_path / "images"
    images.mkdir(parents=True, exist_ok=True)
    for name in set(frame["img1"]) | set(frame["img2"]):
        Image.new("RGB", (4, 4)).save(images / name)
    path = tmp_path / "pairs.csv"
    frame.to_csv(path, index=False)
    return AccuracyTask("v", path, images, n_boot=0, **options).load()


def pairs(labels, **columns) -> pd.DataFrame:
    n = len(labels)
    return pd.DataFrame(
        {
            "img1": [f"a{i}.png" for i in range(n)],
            "img2": [f"b{i}.png" for i in range(n)],
            "label": [int(v) for v in labels],
            **columns,
        }
    )


def kfold_row(task: AccuracyTask, distances: np.ndarray, name: str = "accuracy_kfold"):
    return next(m for m in task.score(distances) if m.metric == name)


@pytest.mark.parametrize("seed, n, k", [(0, 40, 10), (1, 57, 5), (2, 23, 3), (3, 100, 10)])
def test_stratified_folds_equal_sklearn_stratified_kfold_without_shuffle(seed, n, k):
    labels = np.random.default_rng(seed).random(n) < 0.35
    labels[:k] = True  # every class has at least k members
    labels[k : 2 * k] = False
    expected = np.empty(n, dtype=int)
    for fold, (_, test) in enumerate(StratifiedKFold(n_splits=k, shuffle=False).split(np.zeros(n), labels)):
        expected[test] = fold
    np.testing.assert_array_equal(stats.stratified_folds(labels, k), expected)


def test_stratified_folds_by_hand_keep_file_order_within_each_class():
    # same (1) at rows 0, 1, 2, 6; different (0) at rows 3, 4, 5, 7; k = 2 folds.
    # Each fold gets 2 of each class, in file order: same rows 0, 1 -> fold 0, rows 2, 6 -> fold 1;
    # different rows 3, 4 -> fold 0, rows 5, 7 -> fold 1.
    labels = [1, 1, 1, 0, 0, 0, 1, 0]
    assert stats.stratified_folds(labels, 2).tolist() == [0, 0, 1, 0, 0, 1, 1, 1]
    # 5 same, 2 different, k = 2: the class-sorted labels [1,1,1,1,1,0,0] give fold 0 positions 0, 2, 4, 6
    # (3 same, 1 different) and fold 1 positions 1, 3, 5 (2 same, 1 different).
    assert stats.stratified_folds([0, 1, 1, 0, 1, 1, 1], 2).tolist() == [0, 0, 0, 1, 0, 1, 1]


def test_on_a_label_sorted_file_the_kfold_accuracy_stays_near_the_in_sample_accuracy(tmp_path):
    """The bug: contiguous blocks of a file with all 'same' pairs first each hold one class, and the k-fold
    accuracy of a model with a real signal fell to chance (0.44-0.50 against AUC 0.6-0.77)."""
    rng = np.random.default_rng(7)
    labels = np.array([1] * 140 + [0] * 140)  # positives first, as many users write them
    distances = rng.normal(0.55, 0.12, 280) - 0.15 * labels
    task = task_from(tmp_path, pairs(labels))
    result = {m.metric: m for m in task.score(distances)}
    assert result["accuracy_kfold"].protocol.startswith("stratified 10-fold")
    assert result["accuracy"].value > 0.75  # a real signal
    assert abs(result["accuracy_kfold"].value - result["accuracy"].value) < 0.05
    for fold in range(10):  # every automatic fold holds both classes
        assert set(labels[task.folds == fold]) == {0, 1}
    shuffled = np.random.default_rng(1).permutation(280)  # same pairs, another file order: same protocol
    other = task_from(tmp_path / "shuffled", pairs(labels[shuffled]))
    assert abs(kfold_row(other, distances[shuffled]).value - result["accuracy_kfold"].value) < 0.05


def test_fewer_pairs_of_a_class_than_folds_uses_fewer_folds_and_says_so(tmp_path):
    labels = [1] * 20 + [0] * 4
    task = task_from(tmp_path, pairs(labels))
    row = kfold_row(task, np.linspace(0, 1, 24))
    assert row.protocol.startswith("stratified 4-fold")
    assert "4 folds instead of 10: only 4 pairs of the rarer class" in row.note
    one = task_from(tmp_path / "one", pairs([1] * 10 + [0]))
    row = kfold_row(one, np.linspace(0, 1, 11))
    assert np.isnan(row.value) and "at least 2 same and 2 different pairs" in row.note


def test_identity_folds_are_disjoint_and_stratified_or_fall_back_declared(tmp_path):
    # 12 identities; each has 2 'same' pairs and one 'different' pair with its partner: 6 components.
    id1, id2, labels = [], [], []
    for i in range(12):
        partner = i ^ 1
        id1 += [f"p{i}", f"p{i}", f"p{i}"]
        id2 += [f"p{i}", f"p{i}", f"p{partner}"]
        labels += [1, 1, 0]
    frame = pairs(labels, id1=id1, id2=id2).iloc[np.argsort(labels, kind="stable")]  # label-sorted file
    task = task_from(tmp_path, frame.reset_index(drop=True), folds=3)
    y, folds = task.labels, task.folds
    assert kfold_row(task, np.linspace(0, 1, len(y))).protocol.startswith("identity-disjoint stratified 3-fold")
    for identity in set(id1):
        rows = (frame["id1"].to_numpy() == identity) | (frame["id2"].to_numpy() == identity)
        assert len(set(folds[rows])) == 1
    for fold in range(3):
        assert set(y[folds == fold]) == {True, False}
    # one connected component: identity-disjoint folds are impossible -> declared stratified fallback
    chain = pairs([1, 0, 1, 0, 1, 0, 1, 0], id1=list("aabbccdd"), id2=list("abbccdda"))
    fallback = task_from(tmp_path / "chain", chain, folds=2)
    row = kfold_row(fallback, np.linspace(0, 1, 8))
    assert row.protocol.startswith("stratified 2-fold")
    assert "identity-disjoint folds impossible" in row.note


def test_an_explicit_fold_column_is_obeyed_and_checked(tmp_path):
    labels = [1, 0, 1, 0, 1, 0]
    task = task_from(tmp_path, pairs(labels, fold=[2, 2, 1, 1, 3, 3]))
    assert task.folds.tolist() == [1, 1, 0, 0, 2, 2]
    assert kfold_row(task, np.linspace(0, 1, 6)).protocol.startswith("fold column 'fold' (3 folds")
    bad = pairs(labels, fold=[2, 2, 1, 3, 1, 3])
    with pytest.raises(DataError, match=r"fold '1' \(column 'fold', 2 pairs\) has no different \(0\) pairs") as error:
        task_from(tmp_path / "bad", bad)
    assert 'folds = "stratified"' in str(error.value) and 'folds = "contiguous" to insist' in str(error.value)
    insisted = task_from(tmp_path / "insisted", bad, folds="contiguous")  # scored and noted
    assert insisted.folds.tolist() == [1, 1, 0, 2, 0, 2]
    assert "held-out part has only label 1" in kfold_row(insisted, np.linspace(0, 1, 6)).note
    ignored = task_from(tmp_path / "ignored", bad, folds="stratified")  # the column is set aside
    assert kfold_row(ignored, np.linspace(0, 1, 6)).protocol.startswith("stratified")


def test_a_file_sorted_by_label_gets_stratified_folds_or_contiguous_ones_when_insisted(tmp_path):
    labels = [1] * 10 + [0] * 10  # a file sorted by label: contiguous blocks hold one class each
    insisted = task_from(tmp_path, pairs(labels), folds="contiguous")
    assert insisted.folds.tolist() == np.repeat(np.arange(10), 2).tolist()
    row = kfold_row(insisted, np.linspace(0, 1, 20))
    assert row.protocol.startswith('10-fold (folds = "contiguous": contiguous folds')
    assert "held-out part has only label 1" in row.note
    automatic = task_from(tmp_path / "auto", pairs(labels))  # the default: stratified, every fold holds both
    assert all(set(automatic.labels[automatic.folds == f]) == {True, False} for f in set(automatic.folds))


@pytest.mark.parametrize("column", ["fold", "id1"])
def test_blank_fold_or_identity_cells_are_errors_naming_the_lines(tmp_path, column):
    values = ["1", "1", "", "2", "2", " "] if column == "fold" else ["x", "x", "", "y", "y", " "]
    extra = {column: values} if column == "fold" else {"id1": values, "id2": ["x", "z", "x", "y", "w", "y"]}
    with pytest.raises(DataError, match=rf"column '{column}' \((folds|identity)\) is blank on line\(s\) 4, 7"):
        task_from(tmp_path, pairs([1, 0, 1, 0, 1, 0], **extra))


def test_labels_that_contradict_the_identity_columns_warn_with_the_lines(tmp_path):
    frame = pairs([1, 1, 0, 0], id1=["a", "a", "b", "c"], id2=["a", "b", "c", "c"])
    with pytest.warns(DataWarning) as caught:
        task_from(tmp_path, frame)
    messages = [str(w.message) for w in caught]
    assert any("1 'same' pairs whose identities differ" in m and "line(s) 3" in m for m in messages)
    assert any("1 'different' pairs of one identity" in m and "line(s) 5" in m for m in messages)
