"""Task metrics against independent oracles (sklearn, scipy, hand-computed values) on hand-built
distances, and the pairs-file formats the field uses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats as scipy_stats
from sklearn.metrics import roc_auc_score, roc_curve

from pytest_facebench.errors import ConfigError, DataError
from pytest_facebench.tasks import AccuracyTask, ConditionedAverageDistances, CorrelationTask, RelativeDifferenceTask


def make_images(root: Path, names: list[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.new("RGB", (8, 8), (i * 10 % 255, 0, 0)).save(root / name)


def write_pairs(tmp_path: Path, rows: list[dict], name: str = "pairs.csv") -> Path:
    names = sorted({r["img1"] for r in rows} | {r["img2"] for r in rows})
    make_images(tmp_path / "images", names)
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def by_metric(metrics, name, condition=None):
    return [m for m in metrics if m.metric == name and m.condition == condition][0]


@pytest.fixture
def verification(tmp_path):
    rng = np.random.default_rng(3)
    labels = np.array([1, 0] * 20)
    rows = [
        {"img1": f"a{i}.png", "img2": f"b{i}.png", "label": ["different", "same"][lab]} for i, lab in enumerate(labels)
    ]
    task = AccuracyTask("v", write_pairs(tmp_path, rows), tmp_path / "images").load()
    distances = np.round(rng.normal(0.5, 0.2, 40) - 0.15 * labels, 2)  # rounded: ties
    return task, distances, labels


def test_accuracy_task_matches_sklearn(verification):
    task, distances, labels = verification
    metrics = task.score(distances)
    assert by_metric(metrics, "auc").value == pytest.approx(roc_auc_score(labels, -distances))
    fpr, tpr, thresholds = roc_curve(labels, -distances)
    best = np.argmax(tpr - fpr)
    threshold = -thresholds[best]
    accuracy = np.mean((distances <= threshold) == labels)
    assert by_metric(metrics, "accuracy").value == pytest.approx(accuracy)
    assert by_metric(metrics, "optimal_threshold").value == pytest.approx(threshold)
    assert "in-sample" in by_metric(metrics, "accuracy").protocol


@pytest.mark.parametrize("same,different", [("1", "0"), ("TRUE", "false"), ("Yes", "no"), ("same", "Different")])
def test_label_spellings(tmp_path, same, different):
    rows = [{"img1": "a.png", "img2": "b.png", "label": same}, {"img1": "a.png", "img2": "c.png", "label": different}]
    task = AccuracyTask("v", write_pairs(tmp_path, rows), tmp_path / "images").load()
    assert task.labels.tolist() == [True, False]


def test_non_binary_labels_name_values_and_lines(tmp_path):
    rows = [
        {"img1": "a.png", "img2": "b.png", "label": "1"},
        {"img1": "a.png", "img2": "c.png", "label": "maybe"},
        {"img1": "b.png", "img2": "c.png", "label": "2"},
    ]
    with pytest.raises(DataError, match=r"pairs.csv: column 'label' must be binary.*'2', 'maybe'.*line\(s\) 3, 4"):
        AccuracyTask("v", write_pairs(tmp_path, rows), tmp_path / "images").load()


@pytest.mark.parametrize("method,oracle", [("pearson", scipy_stats.pearsonr), ("spearman", scipy_stats.spearmanr)])
def test_correlation_task_matches_scipy(tmp_path, method, oracle):
    rng = np.random.default_rng(0)
    human = rng.random(30)
    rows = [{"img1": f"x{i}.png", "img2": f"y{i}.png", "distance": h} for i, h in enumerate(human)]
    task = CorrelationTask("c", write_pairs(tmp_path, rows), tmp_path / "images", method=method).load()
    model = human + rng.normal(0, 0.3, 30)
    (metric,) = task.score(model)
    assert metric.value == pytest.approx(oracle(model, human)[0])
    assert metric.protocol == method


def test_correlation_column_name_is_configurable(tmp_path):
    rows = [{"img1": f"x{i}.png", "img2": f"y{i}.png", "rating": float(i)} for i in range(5)]
    task = CorrelationTask("c", write_pairs(tmp_path, rows), tmp_path / "images", columns={"distance": "rating"}).load()
    assert task.score(np.arange(5.0) ** 2)[0].value == pytest.approx(
        scipy_stats.pearsonr(np.arange(5.0) ** 2, np.arange(5.0))[0]
    )


def test_conditions_means_by_hand_and_normalized(tmp_path):
    conditions = ["b", "a", "b", "a", "c"]
    rows = [{"img1": f"x{i}.png", "img2": f"y{i}.png", "condition": c} for i, c in enumerate(conditions)]
    path = write_pairs(tmp_path, rows)
    distances = np.array([1.0, 2.0, 3.0, 4.0, 8.0])
    task = ConditionedAverageDistances("k", path, tmp_path / "images", conditions=["c", "a", "b"]).load()
    assert [(m.condition, m.value) for m in task.score(distances)] == [("c", 8.0), ("a", 3.0), ("b", 2.0)]
    normalized = ConditionedAverageDistances("k", path, tmp_path / "images", normalize=True).load()
    assert [(m.condition, m.value) for m in normalized.score(distances)] == [("a", 3 / 8), ("b", 2 / 8), ("c", 1.0)]


def test_relative_difference_order_is_declared_not_row_order(tmp_path):
    rows = [
        {"img1": f"x{i}.png", "img2": f"y{i}.png", "orientation": g}
        for i, g in enumerate(["upright", "inverted", "upright", "inverted"])
    ]
    path = write_pairs(tmp_path, rows)
    distances = np.array([1.0, 3.0, 1.0, 5.0])  # upright mean 1, inverted mean 4
    forward = RelativeDifferenceTask(
        "r", path, tmp_path / "images", columns={"group": "orientation"}, groups=["inverted", "upright"]
    ).load()
    backward = RelativeDifferenceTask(
        "r", path, tmp_path / "images", columns={"group": "orientation"}, groups=["upright", "inverted"]
    ).load()
    assert by_metric(forward.score(distances), "relative_difference").value == pytest.approx((4 - 1) / (4 + 1))
    assert by_metric(backward.score(distances), "relative_difference").value == pytest.approx(-(4 - 1) / (4 + 1))
    assert by_metric(forward.score(distances), "group_mean", "inverted").value == 4.0
    a, b = np.array([3.0, 5.0]), np.array([1.0, 1.0])
    pooled = np.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
    assert by_metric(forward.score(distances), "cohens_d").value == pytest.approx((a.mean() - b.mean()) / pooled)


def test_relative_difference_needs_exactly_the_declared_groups(tmp_path):
    rows = [{"img1": f"x{i}.png", "img2": f"y{i}.png", "group": g} for i, g in enumerate(["up", "inverted", "side"])]
    with pytest.raises(DataError, match=r"exactly the two declared groups \['inverted', 'upright'\]; found 'up'"):
        RelativeDifferenceTask(
            "r", write_pairs(tmp_path, rows), tmp_path / "images", groups=["inverted", "upright"]
        ).load()
    with pytest.raises(ConfigError, match="declare the two groups"):
        RelativeDifferenceTask("r", tmp_path / "pairs.csv", tmp_path / "images", groups=["only_one"])


def test_whitespace_txt_table(tmp_path):
    make_images(tmp_path / "images", ["a.png", "b.png", "c.png"])
    (tmp_path / "pairs.txt").write_text("img1 img2 label\na.png b.png 1\na.png  c.png\t0\n")
    task = AccuracyTask("v", tmp_path / "pairs.txt", tmp_path / "images").load()
    assert task.labels.tolist() == [True, False]
    assert task.pair_index.tolist() == [[0, 1], [0, 2]]


def test_lfw_pairs_txt(tmp_path):
    names = ["Ann/Ann_0001.jpg", "Ann/Ann_0002.jpg", "Bob/Bob_0001.jpg", "Bob/Bob_0003.jpg"]
    for name in names:
        (tmp_path / "lfw" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "lfw" / name)
    (tmp_path / "pairs.txt").write_text("2\t1\nAnn\t1\t2\nAnn\t1\tBob\t3\nBob\t1\t3\nAnn\t2\tBob\t1\n")
    task = AccuracyTask("lfw", tmp_path / "pairs.txt", tmp_path / "lfw").load()
    table = task.pair_rows()
    assert table["img1"].tolist() == ["Ann/Ann_0001.jpg", "Ann/Ann_0001.jpg", "Bob/Bob_0001.jpg", "Ann/Ann_0002.jpg"]
    assert task.labels.tolist() == [True, False, True, False]
    assert table["fold"].tolist() == ["0", "0", "1", "1"]


def test_distinct_images_embedded_once(tmp_path):
    rows = [
        {"img1": "a.png", "img2": "b.png", "label": 1},
        {"img1": "b.png", "img2": "a.png", "label": 1},
        {"img1": "a.png", "img2": "c.png", "label": 0},
    ]
    task = AccuracyTask("v", write_pairs(tmp_path, rows), tmp_path / "images").load()
    assert [p.name for p in task.images] == ["a.png", "b.png", "c.png"]
    assert task.pair_index.tolist() == [[0, 1], [1, 0], [0, 2]]


@pytest.mark.parametrize("fars", [0, 1.5, "0.1", [], [0.1, True], [0.1, -0.01], {"a": 0.1}])
def test_bad_fars_are_one_config_error_naming_the_task(fars):
    from pytest_facebench.tasks.template_verification import _check_fars
    from pytest_facebench.tasks.verification import checked_fars

    with pytest.raises(ConfigError, match=r"^task 'v': fars must be a list of false accept rates in \(0, 1\]"):
        checked_fars(fars, "v", "[0.01]")
    with pytest.raises(ConfigError, match=r"^task 'v': fars must be a list .*e\.g\. \[1e-6"):
        _check_fars(fars, "v")


def test_fars_keep_their_order_without_repeats_and_ijb_adds_its_headline():
    from pytest_facebench.tasks.template_verification import _check_fars
    from pytest_facebench.tasks.verification import checked_fars

    assert checked_fars(0.1, "v", "") == [0.1]
    assert checked_fars([0.1, 0.01, 0.1], "v", "") == [0.1, 0.01]
    assert _check_fars([0.1, 0.01], "v") == [1e-4, 0.01, 0.1]
