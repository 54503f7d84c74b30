"""The warm path of issue 19 (scoring a cell from cached embeddings) gives the numbers it gave before it was
vectorised: `data/warm_golden.json` holds the verification metrics, bootstrap resamples and pair distances of
the earlier implementation at fixed seeds (`warm_cases.py` wrote it). Independent oracles (sklearn, a
per-resample loop) check the batched statistics on other inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from warm_cases import (
    BOOTSTRAP,
    DISTANCES,
    GOLDEN,
    VERIFICATION,
    bootstrap_case,
    counts_digest,
    distance_case,
    metric_rows,
    verification_case,
)

from pytest_facebench import stats
from pytest_facebench.engine.distances import pair_distances

GOLD = json.loads(GOLDEN.read_text())


def same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize("name", sorted(VERIFICATION))
def test_verification_metrics_unchanged(tmp_path, name):
    """Every value, CI bound and threshold of an accuracy task's `score`, bit for bit (except the std's CI, which
    issue 20's rule changed: it must contain the estimate)."""
    task, distances = verification_case(tmp_path, name)
    got = {row["metric"]: row for row in metric_rows(task.score(distances))}
    expected = {row["metric"]: row for row in GOLD["verification"][name]}
    assert list(got) == list(expected)
    for metric, want in expected.items():
        for field in ("value", "ci_low", "ci_high", "threshold"):
            if metric == "accuracy_kfold_std" and field.startswith("ci_"):
                continue
            assert same(got[metric][field], want[field]), (metric, field, got[metric][field], want[field])
        assert got[metric]["note"] == want["note"]


@pytest.mark.parametrize("name", sorted(BOOTSTRAP))
def test_bootstrap_resamples_unchanged(name):
    n, n_boot, seed, groups, strata = bootstrap_case(name)
    assert counts_digest(stats.bootstrap_weights(n, n_boot, seed, groups, strata)) == GOLD["bootstrap"][name]


@pytest.mark.parametrize("distance", DISTANCES)
def test_pair_distances_unchanged(distance):
    """Float64 distances on the CPU: equal to the earlier chunked torch computation within 1e-13."""
    embeddings, pairs = distance_case()
    got = pair_distances(embeddings, pairs, distance)
    np.testing.assert_allclose(got, GOLD["distances"][distance], rtol=0, atol=1e-13)
    assert got[3] == got[4]  # a repeated pair: the same number
    assert got.dtype == np.float64


def test_batched_roc_matches_sklearn_per_resample():
    """AUC of each resample, from the batched integer counts, equals sklearn's weighted AUC of that resample."""
    rng = np.random.default_rng(1)
    n = 300
    y = rng.random(n) < 0.4
    d = np.round(np.where(y, rng.normal(0.4, 0.2, n), rng.normal(0.7, 0.2, n)), 2)  # ties
    counts = stats.bootstrap_weights(n, 40, seed=2)
    roc = stats.Roc(d, y)
    got = roc.metrics(counts).auc
    for row, w in zip(got, counts):
        assert row == pytest.approx(roc_auc_score(y, -d, sample_weight=w), abs=1e-12)
    assert np.array_equal(got, roc.metrics(counts.astype(float)).auc)  # integer and float counts agree exactly


def test_batched_metrics_equal_one_resample_at_a_time():
    """Each row of a (b, n) block gives the metrics of that resample alone (no row leaks into another)."""
    rng = np.random.default_rng(4)
    n = 200
    y = rng.random(n) < 0.5
    d = np.round(rng.random(n) + 0.3 * ~y, 2)
    counts = stats.bootstrap_weights(n, 25, seed=5)
    roc = stats.Roc(d, y)
    block = roc.metrics(counts, [0.05, 0.2])
    for b, w in enumerate(counts):
        one = stats.Roc(np.repeat(d, w), np.repeat(y, w)).metrics(None, [0.05, 0.2])
        for field in ("auc", "accuracy", "threshold", "eer"):
            assert getattr(block, field)[b] == pytest.approx(getattr(one, field)[0], abs=1e-12), field
        for far in (0.05, 0.2):
            assert block.tar[far][b] == pytest.approx(one.tar[far][0], abs=1e-12, nan_ok=True)


def test_fold_accuracy_equals_its_definition():
    """Per-fold weighted held-out accuracy, mean and population std over the folds present, by hand."""
    rng = np.random.default_rng(6)
    n, k = 120, 5
    correct = (rng.random(n) < 0.7).astype(np.int64)
    folds = np.arange(n) % k
    counts = stats.bootstrap_weights(n, 30, seed=1)
    counts[0, folds == 2] = 0  # a fold absent from a resample: left out of that resample
    mean, std = stats.fold_accuracy(correct, folds, counts)
    for b, w in enumerate(counts):
        per = [(w * correct)[folds == f].sum() / w[folds == f].sum() for f in range(k) if w[folds == f].sum()]
        assert mean[b] == pytest.approx(np.mean(per), abs=1e-12)
        assert std[b] == pytest.approx(np.std(per), abs=1e-12)
    float_mean, float_std = stats.fold_accuracy(correct, folds, counts.astype(float))
    assert np.array_equal(mean, float_mean) and np.array_equal(std, float_std)


def test_kfold_thresholds_equal_one_fold_at_a_time():
    """The vectorised k-fold fit: each fold's threshold is the one fit on the other folds alone."""
    rng = np.random.default_rng(8)
    n = 150
    y = rng.random(n) < 0.5
    d = np.round(rng.random(n) + 0.4 * ~y, 2)
    folds = np.arange(n) % 6
    result = stats.kfold_accuracy(d, y, folds)
    roc = stats.Roc(d, y)
    for f in range(6):
        assert result.thresholds[f] == roc.accuracy_threshold(folds != f)[0]
        held = folds == f
        assert result.per_fold[f] == np.mean((d[held] <= result.thresholds[f]) == y[held])


def test_kfold_std_has_no_ci_that_misses_it(tmp_path):
    """Issue 20: the resampled std's percentile CI lay above the std (0.0588 [0.0593, ...] in this case, with the
    earlier code); the std now has no CI at all, and the k-fold mean keeps its own."""
    task, distances = verification_case(tmp_path, "stratified_continuous")
    old = {row["metric"]: row for row in GOLD["verification"]["stratified_continuous"]}["accuracy_kfold_std"]
    assert old["ci_low"] > old["value"]  # the defect, as the earlier code reported it
    rows = {m.metric: m for m in task.score(distances)}
    std, mean = rows["accuracy_kfold_std"], rows["accuracy_kfold"]
    assert std.value == old["value"]
    assert math.isnan(std.ci_low) and math.isnan(std.ci_high) and std.extra["ci_method"] == "none"
    assert mean.ci_low < mean.value < mean.ci_high


def test_pairs_table_indexed_as_before(tmp_path):
    """Images in order of first appearance (img1 column, then img2), a pair index into them; two spellings of one
    file ('./a.png', 'a.png', ' a.png') are one image. The earlier indexing, kept here as the oracle."""
    from pathlib import Path

    import pandas as pd
    from PIL import Image

    from pytest_facebench.tasks import AccuracyTask

    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    for name in ("a.png", "b.png", "c.png", "sub/d.png"):
        Image.new("RGB", (4, 4)).save(images / name)
    rows = [("c.png", "./a.png"), ("a.png", " b.png"), ("sub/d.png", "sub//d.png"), ("b.png", "c.png")]
    frame = pd.DataFrame({"img1": [r[0] for r in rows], "img2": [r[1] for r in rows], "label": [1, 0, 1, 0]})
    frame.to_csv(tmp_path / "pairs.csv", index=False)
    task = AccuracyTask("t", tmp_path / "pairs.csv", images).load()
    paths = [[images / str(p).strip() for p in task.table[c]] for c in ("img1", "img2")]
    want_images = list(dict.fromkeys(p for column in paths for p in column))
    position = {p: i for i, p in enumerate(want_images)}
    want_index = np.array([[position[p] for p in row] for row in zip(*paths)])
    assert task.images == want_images == [images / n for n in ("c.png", "a.png", "sub/d.png", "b.png")]
    assert task.pair_index.tolist() == want_index.tolist() == [[0, 1], [1, 3], [2, 2], [3, 0]]
    assert all(isinstance(p, Path) for p in task.images)
