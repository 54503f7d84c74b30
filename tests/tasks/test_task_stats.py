"""Task-level statistics against independent oracles: protocols (k-fold, identity-disjoint folds,
TAR@FAR), bootstrap intervals, noise ceilings, RSA, identification, paired model comparisons and the
flip test; plus the bad inputs the issue names (single class, < 2 participants, single-class folds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy import stats as scipy_stats
from scipy.spatial.distance import pdist
from sklearn.metrics import roc_auc_score

from pytest_facebench import stats
from pytest_facebench.engine.model import BaseModel
from pytest_facebench.errors import DataError
from pytest_facebench.outputs.compare import comparisons_frame
from pytest_facebench.outputs.metrics import metric_info
from pytest_facebench.report.verdicts import verdict
from pytest_facebench.tasks import (
    AccuracyTask,
    ConditionedAverageDistances,
    CorrelationTask,
    IdentificationTask,
    RelativeDifferenceTask,
    RsaTask,
)
from pytest_facebench.tasks.verification import far_metric

FAST = {"n_boot": 200}  # enough resamples for the interval checks, quick


# --- helpers ---------------------------------------------------------------------------------------
def make_images(root: Path, names) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(sorted(set(names))):
        if not (root / name).exists():
            Image.new("RGB", (8, 8), (i * 7 % 255, 0, 0)).save(root / name)


def write(tmp_path: Path, rows: list[dict], name: str = "pairs.csv", image_columns=("img1", "img2")) -> Path:
    frame = pd.DataFrame(rows)
    make_images(tmp_path / "images", [v for c in image_columns for v in frame[c]])
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def metric(metrics, name, condition=None):
    found = [m for m in metrics if m.metric == name and m.condition == condition]
    assert len(found) == 1, f"{name} ({condition}): {[m.metric for m in metrics]}"
    return found[0]


def verification_rows(labels, **columns):
    return [
        {"img1": f"a{i}.png", "img2": f"b{i}.png", "label": int(label), **{k: v[i] for k, v in columns.items()}}
        for i, label in enumerate(labels)
    ]


def accuracy_task(tmp_path, labels, name="pairs.csv", **options) -> AccuracyTask:
    columns = options.pop("table_columns", {})
    path = write(tmp_path, verification_rows(labels, **columns), name)
    return AccuracyTask("v", path, tmp_path / "images", **options).load()


# --- verification ----------------------------------------------------------------------------------
def test_kfold_with_a_fold_column_matches_the_hand_computed_protocol(tmp_path):
    # Fold A held out: fit on B {0.2 S, 0.35 D, 0.45 S, 0.5 D}: thresholds 0.275 and 0.475 both get 3/4,
    # the smaller wins; applied to A {0.1 S, 0.4 D, 0.3 S, 0.6 D}: 0.3 is called different -> 3/4.
    # Fold B held out: fit on A: 0.35 separates A perfectly; applied to B: 0.35 D called same and
    # 0.45 S called different -> 2/4. Mean 0.625, population std 0.125.
    folds = ["A", "B", "A", "B", "A", "B", "A", "B"]  # interleaved: contiguous blocks would differ
    distances = np.array([0.1, 0.2, 0.4, 0.5, 0.3, 0.35, 0.6, 0.45])
    labels = [1, 1, 0, 0, 1, 0, 0, 1]
    task = accuracy_task(tmp_path, labels, folds=2, table_columns={"fold": folds}, **FAST)
    result = task.score(distances)
    kfold = metric(result, "accuracy_kfold")
    assert kfold.value == pytest.approx(0.625)
    assert metric(result, "accuracy_kfold_std").value == pytest.approx(0.125)
    assert kfold.protocol.startswith("fold column 'fold' (2 folds")
    contiguous = accuracy_task(tmp_path / "c", labels, folds=2, **FAST)
    assert "stratified" in metric(contiguous.score(distances), "accuracy_kfold").protocol
    assert metric(contiguous.score(distances), "accuracy_kfold").value != pytest.approx(0.625)


def test_in_sample_metrics_match_sklearn_and_carry_intervals(tmp_path):
    rng = np.random.default_rng(1)
    labels = rng.random(200) < 0.5
    distances = rng.normal(0.5, 0.2, 200) - 0.15 * labels
    task = accuracy_task(tmp_path, labels, **FAST)
    result = task.score(distances)
    auc = metric(result, "auc")
    assert auc.value == pytest.approx(roc_auc_score(labels, -distances))
    for m in result:
        assert m.n == 200
        assert m.protocol
        if np.isfinite(m.ci_low):
            assert m.extra["ci_method"].startswith("bootstrap(200, pairs")
            assert m.extra["ci_method"].endswith("), 95% percentile")
    for name in ("accuracy", "auc", "accuracy_kfold", "eer", "tar_at_far_0.1"):
        m = metric(result, name)
        assert m.ci_low <= m.value <= m.ci_high, name
    assert "in-sample" in metric(result, "accuracy").protocol


def test_intervals_widen_with_fewer_pairs(tmp_path):
    rng = np.random.default_rng(2)
    labels = np.tile([True, False], 200)
    distances = rng.normal(0.5, 0.2, 400) - 0.1 * labels
    big = accuracy_task(tmp_path, labels, **FAST).score(distances)
    small = accuracy_task(tmp_path / "s", labels[:40], **FAST).score(distances[:40])
    for name in ("auc", "accuracy", "accuracy_kfold", "eer"):

        def width(ms, name=name):
            return metric(ms, name).ci_high - metric(ms, name).ci_low

        assert width(small) > 1.5 * width(big), name


def test_identity_columns_give_identity_disjoint_folds_and_an_identity_bootstrap(tmp_path):
    rng = np.random.default_rng(3)
    n_ids, per = 20, 6
    id1, id2, labels = [], [], []
    for i in range(n_ids):  # each identity pairs with itself (same) and with its partner (different)
        partner = i + 1 if i % 2 == 0 else i - 1
        for k in range(per):
            same = k % 2 == 0
            id1.append(f"p{i:02d}")
            id2.append(f"p{i:02d}" if same else f"p{partner:02d}")
            labels.append(same)
    order = rng.permutation(len(labels))
    id1, id2, labels = (list(np.asarray(x)[order]) for x in (id1, id2, labels))
    task = accuracy_task(tmp_path, labels, folds=5, table_columns={"id1": id1, "id2": id2}, **FAST)
    folds = task.folds
    expected = stats.make_folds(len(labels), 5, identities=np.stack([id1, id2], axis=1), labels=labels)
    assert folds.tolist() == expected.tolist()
    for identity in set(id1):  # no identity on both sides of a split
        used = {f for f, a, b in zip(folds, id1, id2) if identity in (a, b)}
        assert len(used) == 1
    result = task.score(rng.normal(0.5, 0.2, len(labels)) - 0.2 * np.asarray(labels))
    kfold = metric(result, "accuracy_kfold")
    assert kfold.protocol.startswith("identity-disjoint stratified 5-fold")
    for fold in range(5):  # stratified as far as the identities allow: every fold holds both classes
        assert {bool(v) for v in np.asarray(labels)[folds == fold]} == {True, False}
    assert "identities" in kfold.extra["ci_method"] and "identities" in metric(result, "auc").extra["ci_method"]


def test_tar_at_unreachable_far_is_nan_with_a_note(tmp_path):
    labels = [1] * 10 + [0] * 5
    distances = np.linspace(0, 1, 15)
    task = accuracy_task(tmp_path, labels, fars=[0.01, 0.5], **FAST)
    result = task.score(distances)
    unreachable = metric(result, "tar_at_far_0.01")
    assert np.isnan(unreachable.value) and np.isnan(unreachable.ci_low)
    assert "needs >= 100 different pairs; got 5" in unreachable.note
    # FAR 0.5 of the 5 different pairs (the 5 largest distances) allows 2: the threshold is the 12th distance,
    # which accepts all 10 same pairs -> TAR 1.
    reachable = metric(result, "tar_at_far_0.5")
    assert reachable.value == 1.0 and reachable.extra["threshold"] == pytest.approx(distances[11])
    assert far_metric(1e-3) == "tar_at_far_0.001"
    assert [m.metric for m in result if m.metric.startswith("tar_")] == ["tar_at_far_0.01", "tar_at_far_0.5"]


def test_eer_by_hand_on_a_constructed_case(tmp_path):
    # same: 0.1 0.2 0.3 0.6; different: 0.4 0.5 0.7 0.8. At t=0.3: FRR 1/4, FAR 0; at t=0.4: FRR 1/4,
    # FAR 1/4 -> EER = 0.25 exactly.
    distances = np.array([0.1, 0.2, 0.3, 0.6, 0.4, 0.5, 0.7, 0.8])
    task = accuracy_task(tmp_path, [1, 1, 1, 1, 0, 0, 0, 0], folds=2, **FAST)
    assert metric(task.score(distances), "eer").value == pytest.approx(0.25)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(0, 1000), min_size=12, max_size=40))
def test_auc_and_its_interval_invariant_to_monotone_transforms_and_kfold_in_unit_interval(tmp_path_factory, values):
    distances = np.asarray(values) / 1000  # a grid: the transform below keeps distinct values distinct
    labels = np.arange(len(distances)) % 2 == 0
    root = tmp_path_factory.mktemp("mono")
    task = accuracy_task(root, labels, folds=3, n_boot=50)
    plain, warped = task.score(distances), task.score(np.exp(3 * distances) + 7)
    a, b = metric(plain, "auc"), metric(warped, "auc")
    assert a.value == pytest.approx(b.value) and a.ci_low == pytest.approx(b.ci_low, nan_ok=True)
    kfold = metric(plain, "accuracy_kfold").value
    assert 0 <= kfold <= 1


# --- bad input -------------------------------------------------------------------------------------
def test_single_class_pairs_are_a_clear_error(tmp_path):
    with pytest.raises(
        DataError,
        match=r"pairs\.csv: column 'label' holds only same \(1\) pairs \(6 rows\); a "
        r"verification task needs both same and different pairs",
    ):
        accuracy_task(tmp_path, [1] * 6)


def test_a_fold_without_same_pairs_is_an_error_naming_the_fold(tmp_path):
    folds = ["1", "1", "2", "2", "3", "3"]
    labels = [1, 0, 0, 0, 1, 0]
    with pytest.raises(DataError, match=r"pairs\.csv: fold '2' \(column 'fold', 2 pairs\) has no same \(1\) pairs"):
        accuracy_task(tmp_path, labels, table_columns={"fold": folds})


def test_an_explicitly_named_optional_column_must_exist(tmp_path):
    with pytest.raises(DataError, match=r"missing column\(s\) 'split' \(fold\)"):
        path = write(tmp_path, verification_rows([1, 0, 1, 0]))
        AccuracyTask("v", path, tmp_path / "images", columns={"fold": "split"}).load()


# --- correlation and noise ceilings ----------------------------------------------------------------
def similarity_task(tmp_path, ratings: np.ndarray, **options) -> CorrelationTask:
    rows = [
        {"img1": f"x{i}.png", "img2": f"y{i}.png", **{f"rater_{p + 1}": ratings[i, p] for p in range(ratings.shape[1])}}
        for i in range(len(ratings))
    ]
    return CorrelationTask("c", write(tmp_path, rows), tmp_path / "images", **options).load()


def test_noise_ceiling_by_hand_on_three_participants(tmp_path):
    ratings = np.array([[1.0, 2.0, 1.5], [2.0, 2.5, 3.0], [3.0, 2.0, 3.5], [4.0, 5.0, 3.0], [5.0, 4.0, 6.0]])
    task = similarity_task(tmp_path, ratings, participants_glob="rater_*", **FAST)
    model = np.array([0.2, 0.1, 0.5, 0.7, 0.6])
    result = task.score(model)
    r = lambda a, b: np.corrcoef(a, b)[0, 1]  # noqa: E731
    mean = ratings.mean(axis=1)
    high = np.mean([r(ratings[:, p], mean) for p in range(3)])
    low = np.mean([r(ratings[:, p], np.delete(ratings, p, axis=1).mean(axis=1)) for p in range(3)])
    assert metric(result, "correlation").value == pytest.approx(r(model, mean))  # human = participant mean
    assert metric(result, "correlation_ceiling_high").value == pytest.approx(high)
    assert metric(result, "correlation_ceiling_low").value == pytest.approx(low)
    assert metric(result, "correlation_normalized").value == pytest.approx(r(model, mean) / high)
    for m in result:
        assert np.isnan(m.ci_low) or m.ci_low <= m.value <= m.ci_high, m.metric


def test_split_half_ceiling_with_two_participants_is_spearman_brown_by_hand(tmp_path):
    ratings = np.array([[1.0, 1.2], [2.0, 2.5], [3.0, 2.4], [4.0, 4.4], [5.0, 4.0], [6.0, 6.5]])
    task = similarity_task(tmp_path, ratings, participants=["rater_1", "rater_2"], n_boot=0)
    result = task.score(np.arange(6.0))
    r = np.corrcoef(ratings[:, 0], ratings[:, 1])[0, 1]
    assert metric(result, "split_half_ceiling").value == pytest.approx(2 * r / (1 + r))
    assert metric(result, "correlation_ceiling_low").value == pytest.approx(r)  # each vs the other one
    assert metric(result, "correlation").extra["ci_method"] == "none (n_boot = 0)"


def test_long_table_of_ratings_equals_the_wide_one(tmp_path):
    ratings = np.array([[1.0, 2.0, 1.5], [2.0, 2.5, 3.0], [3.0, 2.0, 3.5], [4.0, 5.0, 3.0]])
    wide = similarity_task(tmp_path / "w", ratings, participants_glob="rater_*", **FAST)
    rows = [
        {"img1": f"x{i}.png", "img2": f"y{i}.png", "subject": f"s{p}", "score": ratings[i, p]}
        for p in range(3)
        for i in range(4)
    ]
    long = CorrelationTask(
        "c",
        write(tmp_path / "l", rows),
        tmp_path / "l" / "images",
        columns={"participant": "subject", "rating": "score"},
        **FAST,
    ).load()
    assert len(long.pair_rows()) == 4
    model = np.array([0.3, 0.2, 0.6, 0.9])
    for a, b in zip(wide.score(model), long.score(model)):
        assert (a.metric, a.value, a.ci_low) == pytest.approx((b.metric, b.value, b.ci_low))


@pytest.mark.parametrize(
    "method,oracle",
    [("pearson", scipy_stats.pearsonr), ("spearman", scipy_stats.spearmanr), ("kendall", scipy_stats.kendalltau)],
)
def test_correlation_methods_match_scipy(tmp_path, method, oracle):
    rng = np.random.default_rng(6)
    human = np.round(rng.random(25), 1)  # ties
    rows = [{"img1": f"x{i}.png", "img2": f"y{i}.png", "distance": h} for i, h in enumerate(human)]
    task = CorrelationTask("c", write(tmp_path, rows), tmp_path / "images", method=method, n_boot=100).load()
    model = human + rng.normal(0, 0.3, 25)
    (m,) = task.score(model)
    assert m.value == pytest.approx(oracle(model, human)[0])
    assert m.ci_low <= m.value <= m.ci_high


def test_kendall_tau_a_by_hand(tmp_path):
    human = np.array([1.0, 1.0, 2.0, 3.0])  # one tied human pair: tau-a counts it in the denominator
    rows = [{"img1": f"x{i}.png", "img2": f"y{i}.png", "distance": h} for i, h in enumerate(human)]
    task = CorrelationTask("c", write(tmp_path, rows), tmp_path / "images", method="kendall_tau_a", n_boot=0).load()
    model = np.array([0.1, 0.2, 0.4, 0.3])
    # pairs (i<j): (0,1) tie in human -> 0; (0,2) +; (0,3) +; (1,2) +; (1,3) +; (2,3) - -> (4 - 1) / 6
    assert task.score(model)[0].value == pytest.approx(3 / 6)


def test_constant_distances_give_nan_with_a_reason_never_a_crash(tmp_path):
    ratings = np.array([[1.0, 2.0], [2.0, 2.5], [3.0, 2.0], [4.0, 5.0]])
    task = similarity_task(tmp_path, ratings, participants_glob="rater_*", **FAST)
    result = task.score(np.full(4, 0.3))
    corr = metric(result, "correlation")
    assert np.isnan(corr.value) and np.isnan(corr.ci_low) and "constant" in corr.note
    assert np.isnan(metric(result, "correlation_normalized").value)
    assert np.isfinite(metric(result, "correlation_ceiling_high").value)


def test_fewer_than_two_participants_give_nan_ceilings_with_a_note(tmp_path):
    ratings = np.array([[1.0], [2.0], [3.0], [4.0]])
    task = similarity_task(tmp_path, ratings, participants=["rater_1"], **FAST)
    result = task.score(np.array([0.1, 0.3, 0.2, 0.4]))
    assert np.isfinite(metric(result, "correlation").value)
    for name in ("correlation_ceiling_low", "correlation_ceiling_high", "correlation_normalized", "split_half_ceiling"):
        m = metric(result, name)
        assert np.isnan(m.value), name
        assert "2 participants" in m.note, name


# --- RSA ---------------------------------------------------------------------------------------------
def test_rsa_matches_scipy_spearman_on_upper_triangles(tmp_path):
    rng = np.random.default_rng(7)
    names = [f"s{i}.png" for i in range(8)]
    embeddings = rng.normal(size=(8, 5))
    human = squareform_sym(rng.random(28))
    pd.DataFrame(human, index=names, columns=names).to_csv(tmp_path / "human.csv")
    path = write(tmp_path, [{"image": n} for n in names], "stimuli.csv", image_columns=("image",))
    task = RsaTask("r", path, tmp_path / "images", distance="correlation", human_rdm="human.csv", **FAST).load()
    model = task.layer_values(embeddings)
    np.testing.assert_allclose(model, pdist(embeddings, "correlation"), rtol=1e-10)
    (m,) = task.score(model)
    iu = np.triu_indices(8, k=1)
    assert m.value == pytest.approx(scipy_stats.spearmanr(pdist(embeddings, "correlation"), human[iu])[0])
    assert m.ci_low <= m.value <= m.ci_high and m.n == 8
    assert "stimuli" in m.extra["ci_method"]


def squareform_sym(condensed: np.ndarray) -> np.ndarray:
    from scipy.spatial.distance import squareform

    return squareform(condensed)


def test_rsa_from_a_pairs_table_masks_missing_pairs(tmp_path):
    rng = np.random.default_rng(8)
    names = [f"s{i}.png" for i in range(6)]
    iu, ju = np.triu_indices(6, k=1)
    human = rng.random(15)
    rows = [
        {"img1": names[j], "img2": names[i], "distance": h}  # reversed order: unordered pairs
        for i, j, h in zip(iu, ju, human)
    ][1:]  # the pair (s0, s1) is missing
    task = RsaTask("r", write(tmp_path, rows), tmp_path / "images", method="pearson", **FAST).load()
    model = rng.random(15)
    (m,) = task.score(model)
    assert task.stimuli[:2] == ["s2.png", "s0.png"]  # first appearance
    expected_human = np.full(15, np.nan)
    position = {s: k for k, s in enumerate(task.stimuli)}
    cell = {tuple(sorted((position[r["img1"]], position[r["img2"]]))): r["distance"] for r in rows}
    for k, (i, j) in enumerate(zip(*np.triu_indices(6, k=1))):
        expected_human[k] = cell.get((i, j), np.nan)
    known = np.isfinite(expected_human)
    assert m.value == pytest.approx(scipy_stats.pearsonr(model[known], expected_human[known])[0])
    assert "1 of 15 human RDM cells missing" in m.note


def test_rsa_constant_model_rdm_is_nan_with_a_reason(tmp_path):
    names = [f"s{i}.png" for i in range(4)]
    rows = [
        {"img1": a, "img2": b, "distance": k}
        for k, (a, b) in enumerate((names[i], names[j]) for i in range(4) for j in range(i + 1, 4))
    ]
    task = RsaTask("r", write(tmp_path, rows), tmp_path / "images", **FAST).load()
    (m,) = task.score(np.zeros(6))
    assert np.isnan(m.value) and "constant" in m.note


# --- identification ----------------------------------------------------------------------------------
def identification_task(tmp_path, rows, **options) -> IdentificationTask:
    path = write(tmp_path, rows, "gallery.csv", image_columns=("image",))
    return IdentificationTask("i", path, tmp_path / "images", **options).load()


def test_identification_rank1_by_hand(tmp_path):
    rows = [
        {"image": "gA.png", "identity": "A", "set": "gallery"},
        {"image": "gB.png", "identity": "B", "set": "Gallery"},
        {"image": "pA1.png", "identity": "A", "set": "probe"},
        {"image": "pB1.png", "identity": "B", "set": "probe"},
        {"image": "pA2.png", "identity": "A", "set": "PROBE"},
    ]
    task = identification_task(tmp_path, rows, **FAST)
    position = {p.name: i for i, p in enumerate(task.images)}
    vectors = {
        "gA.png": [1, 0],
        "gB.png": [0, 1],
        "pA1.png": [0.9, 0.1],  # A1 nearest A: rank 1
        "pB1.png": [0.8, 0.3],  # nearest A, B second: rank 2
        "pA2.png": [0.2, 0.9],
    }  # nearest B: rank 2
    embeddings = np.zeros((len(position), 2))
    for name, v in vectors.items():
        embeddings[position[name]] = v
    ranks = task.layer_values(embeddings)
    assert ranks.tolist() == [1.0, 2.0, 2.0]
    assert task.pair_rows()["image"].tolist() == ["pA1.png", "pB1.png", "pA2.png"]
    result = task.score(ranks)
    assert metric(result, "rank1").value == pytest.approx(1 / 3)
    assert metric(result, "rank2").value == pytest.approx(1.0)
    assert metric(result, "rank5").value == 1.0 and "only 2" in metric(result, "rank5").note


def test_identification_cmc_matches_stats_on_the_full_distance_matrix(tmp_path):
    rng = np.random.default_rng(9)
    rows = [{"image": f"g{i}_{k}.png", "identity": f"id{i}", "set": "gallery"} for i in range(12) for k in range(2)]
    rows += [{"image": f"p{i}_{k}.png", "identity": f"id{i}", "set": "probe"} for i in range(12) for k in range(3)]
    task = identification_task(tmp_path, rows, max_rank=8, **FAST)
    task_embeddings = np.round(rng.normal(size=(len(task.images), 4)), 1)
    ranks = task.layer_values(torch.from_numpy(task_embeddings))
    names = [p.name for p in task.images]
    table = pd.DataFrame(rows)
    emb = {n: task_embeddings[i] for i, n in enumerate(names)}
    probes, gallery = table[table["set"] == "probe"], table[table["set"] == "gallery"]
    p = np.stack([emb[n] for n in probes["image"]])
    g = np.stack([emb[n] for n in gallery["image"]])
    dist = 1 - (p / np.linalg.norm(p, axis=1, keepdims=True)) @ (g / np.linalg.norm(g, axis=1, keepdims=True)).T
    probe_ids, gallery_ids = probes["identity"].to_numpy(), gallery["identity"].to_numpy()
    oracle = []  # per probe: 1 + wrong gallery images at most as far as the closest correct one
    for row, identity in zip(dist, probe_ids):
        best = row[gallery_ids == identity].min()
        oracle.append(1 + int(np.sum((gallery_ids != identity) & (row <= best))))
    np.testing.assert_array_equal(ranks, oracle)
    result = task.score(ranks)
    for k in range(1, 9):
        assert metric(result, f"rank{k}").value == pytest.approx(np.mean(np.asarray(oracle) <= k))
        assert metric_info(f"rank{k}").higher_is_better is True


def test_identification_probe_without_gallery_identity_is_an_error(tmp_path):
    rows = [{"image": "g.png", "identity": "A", "set": "gallery"}, {"image": "p.png", "identity": "Z", "set": "probe"}]
    with pytest.raises(DataError, match=r"gallery\.csv: probe identities Z have no gallery image"):
        identification_task(tmp_path, rows)


# --- condition effects -------------------------------------------------------------------------------
def test_relative_difference_intervals_cohens_d_and_human_effect(tmp_path):
    rng = np.random.default_rng(10)
    groups = ["upright", "inverted"] * 20
    rows = [{"img1": f"x{i}.png", "img2": f"y{i}.png", "orientation": g} for i, g in enumerate(groups)]
    path = write(tmp_path, rows)
    distances = rng.normal(1.0, 0.1, 40) + 0.2 * (np.array(groups) == "inverted")
    task = RelativeDifferenceTask(
        "r",
        path,
        tmp_path / "images",
        columns={"group": "orientation"},
        groups=["inverted", "upright"],
        human_effect=0.12,
        **FAST,
    ).load()
    result = task.score(distances)
    rel, d = metric(result, "relative_difference"), metric(result, "cohens_d")
    assert rel.ci_low <= rel.value <= rel.ci_high and d.ci_low <= d.value <= d.ci_high
    assert rel.extra["human_effect"] == 0.12
    versus = metric(result, "effect_vs_human")
    assert versus.value == pytest.approx(rel.value - 0.12)
    assert versus.ci_low == pytest.approx(rel.ci_low - 0.12)
    assert metric(result, "human_effect").value == 0.12 and "model - human" in metric(result, "human_effect").note


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.floats(0.01, 2, allow_nan=False), min_size=6, max_size=20))
def test_swapping_the_groups_negates_the_relative_difference_and_its_interval(tmp_path_factory, values):
    root = tmp_path_factory.mktemp("swap")
    groups = ["a", "b"] * (len(values) // 2)
    distances = np.asarray(values[: len(groups)])
    rows = [{"img1": f"x{i}.png", "img2": f"y{i}.png", "group": g} for i, g in enumerate(groups)]
    path = write(root, rows)
    forward = RelativeDifferenceTask("r", path, root / "images", groups=["a", "b"], n_boot=100).load()
    backward = RelativeDifferenceTask("r", path, root / "images", groups=["b", "a"], n_boot=100).load()
    f = metric(forward.score(distances), "relative_difference")
    b = metric(backward.score(distances), "relative_difference")
    assert f.value == pytest.approx(-b.value, abs=1e-12)
    assert f.ci_low == pytest.approx(-b.ci_high, abs=1e-9) and f.ci_high == pytest.approx(-b.ci_low, abs=1e-9)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=4, max_size=30))
def test_condition_mean_interval_contains_the_mean(tmp_path_factory, values):
    root = tmp_path_factory.mktemp("cond")
    rows = [{"img1": f"x{i}.png", "img2": f"y{i}.png", "condition": "c"} for i in range(len(values))]
    task = ConditionedAverageDistances("k", write(root, rows), root / "images", n_boot=100).load()
    (m,) = task.score(np.asarray(values))
    assert m.ci_low - 1e-12 <= m.value <= m.ci_high + 1e-12


def test_conditions_human_values_per_condition(tmp_path):
    rows = [{"img1": f"x{i}.png", "img2": f"y{i}.png", "condition": c} for i, c in enumerate("aabb")]
    task = ConditionedAverageDistances(
        "k", write(tmp_path, rows), tmp_path / "images", human_effect={"b": 0.5}, **FAST
    ).load()
    result = task.score(np.array([0.1, 0.3, 0.6, 0.8]))
    assert metric(result, "effect_vs_human", "b").value == pytest.approx(0.7 - 0.5)
    assert [m.metric for m in result if m.condition == "a"] == ["mean_distance"]


# --- paired comparison of models ---------------------------------------------------------------------
def payload(task, model: str, values: np.ndarray) -> dict:
    """What evaluate_cell ships for a one-layer model (readout layer 'L')."""
    distances = {c: task.pair_rows()[c].tolist() for c in task.pair_rows().columns}
    distances["L"] = list(values)
    records = [
        {"model": model, "layer": "L", "readout": True, "task": task.name, "metric": m.metric, "value": m.value}
        for m in task.score(values)
    ]
    return {
        "model": model,
        "task": task.name,
        "records": records,
        "distances": distances,
        "scoring": {**task.scoring(), "columns": {"L": "L"}},
    }


def test_comparisons_delong_equals_stats_and_the_better_model_wins(tmp_path):
    rng = np.random.default_rng(12)
    labels = np.arange(300) % 2 == 0
    good = rng.normal(0.5, 0.2, 300) - 0.25 * labels
    bad = rng.normal(0.5, 0.2, 300) - 0.05 * labels
    task = accuracy_task(tmp_path, labels, **FAST)
    frame = comparisons_frame([payload(task, "good", good), payload(task, "bad", bad)])
    assert list(frame["metric"]) == ["accuracy_kfold", "auc"]
    auc = frame[frame["metric"] == "auc"].iloc[0]
    kernels = []  # DeLong from the O(m n) kernel: psi = 1 when the same pair is closer, 1/2 on a tie
    for d in (good, bad):
        psi = (d[labels][:, None] < d[~labels][None, :]) + 0.5 * (d[labels][:, None] == d[~labels][None, :])
        kernels.append((psi.mean(axis=1), psi.mean(axis=0)))
    (a10, a01), (b10, b01) = kernels
    diff = a10.mean() - b10.mean()
    se = np.sqrt(np.var(a10 - b10, ddof=1) / len(a10) + np.var(a01 - b01, ddof=1) / len(a01))
    assert auc["p_value"] == pytest.approx(2 * scipy_stats.norm.sf(diff / se))
    assert auc["diff"] == pytest.approx(diff) and auc["diff"] > 0
    assert auc["ci_low"] == pytest.approx(diff - scipy_stats.norm.ppf(0.975) * se)
    assert auc["value_a"] == pytest.approx(roc_auc_score(labels, -good))
    assert auc["ci_low"] > 0 and auc["test"] == "DeLong"
    kfold = frame[frame["metric"] == "accuracy_kfold"].iloc[0]
    assert kfold["value_a"] == pytest.approx(stats.kfold_accuracy(good, labels, task.folds).mean)
    assert kfold["diff"] > 0 and kfold["ci_low"] > 0 and kfold["p_value"] < 0.05
    assert verdict(auc).startswith("good beats bad on auc (Δ=")
    assert "DeLong p" in verdict(auc)
    swapped = comparisons_frame([payload(task, "bad", bad), payload(task, "good", good)])
    assert swapped["diff"].to_numpy() == pytest.approx(-frame["diff"].to_numpy())
    assert verdict(swapped.iloc[1]).startswith("good beats bad on auc (Δ=0.")  # Δ is winner − loser


def test_comparisons_no_difference_and_other_task_types(tmp_path):
    rng = np.random.default_rng(13)
    human = rng.random(40)
    rows = [{"img1": f"x{i}.png", "img2": f"y{i}.png", "distance": h} for i, h in enumerate(human)]
    task = CorrelationTask("c", write(tmp_path, rows), tmp_path / "images", method="spearman", **FAST).load()
    noise = rng.normal(0, 0.5, 40)
    a, b = human + noise, human + noise + rng.normal(0, 0.01, 40)
    frame = comparisons_frame([payload(task, "a", a), payload(task, "b", b)])
    row = frame.iloc[0]
    assert row["metric"] == "correlation"
    assert row["diff"] == pytest.approx(scipy_stats.spearmanr(a, human)[0] - scipy_stats.spearmanr(b, human)[0])
    assert verdict(row).startswith("no significant difference between a and b on correlation")
    assert metric_info("eer").higher_is_better is False
    lower = verdict(
        {
            "model_a": "A",
            "model_b": "B",
            "metric": "eer",
            "diff": 0.05,
            "ci_low": 0.01,
            "ci_high": 0.09,
            "p_value": 0.01,
            "test": "paired bootstrap",
            "ci_level": 0.95,
        }
    )
    assert lower.startswith("B beats A on eer (Δ=−0.050")  # lower EER wins


# --- end to end: the evaluate path with real (pixel) models ------------------------------------------
def test_rsa_and_identification_through_run_and_comparisons(tmp_path):
    from pytest_facebench.api import run
    from pytest_facebench.zoo.pixels import Pixels

    rng = np.random.default_rng(14)
    images = tmp_path / "images"
    images.mkdir()
    names = [f"id{i}_{k}.png" for i in range(4) for k in range(3)]
    for _i, name in enumerate(names):
        base = np.full((16, 16, 3), 40 * int(name[2]) + 30, dtype=np.uint8)
        noise = rng.integers(0, 60, size=(16, 16, 3), dtype=np.uint8)
        Image.fromarray(base + noise).save(images / name)
    pd.DataFrame(
        [{"image": n, "identity": n[:3], "set": "gallery" if n.endswith("_0.png") else "probe"} for n in names]
    ).to_csv(tmp_path / "ident.csv", index=False)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    pd.DataFrame(
        [{"img1": a, "img2": b, "distance": float(a[:3] != b[:3]) + rng.random() * 0.1} for a, b in pairs]
    ).to_csv(tmp_path / "rdm.csv", index=False)
    tasks = [
        IdentificationTask("ident", tmp_path / "ident.csv", images, **FAST),
        RsaTask("rsa", tmp_path / "rdm.csv", images, distance="correlation", **FAST),
    ]
    models = [Pixels(name="px8", size=8), Pixels(name="px16", size=16, flip_test=True)]
    tables = run(models, tasks, cache=None, workers=0)
    assert not tables.errors
    results = tables.results
    assert set(results["metric"]) >= {"rank1", "rank5", "rsa"}
    assert results["ci_method"].str.startswith("bootstrap(200").all()
    cells = [c.to_payload() for c in tables.cells]
    assert cells[0]["scoring"]["columns"] == {"output": "rank:output"}  # identification: ranks, not distances
    assert cells[1]["scoring"]["columns"] == {"output": "output"}
    frame = comparisons_frame(cells)
    assert sorted(frame["metric"]) == ["rank1", "rsa"]
    assert frame[["model_a", "model_b"]].drop_duplicates().values.tolist() == [["px8", "px16"]]


# --- flip test ---------------------------------------------------------------------------------------
class Linear(BaseModel):
    def _build_model(self):
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 5, 6))


class OwnIdentity(Linear):
    def identity_extra(self):
        return {"source": "own"}


def test_flip_test_sums_the_flipped_embedding_and_normalizes():
    batch = torch.randn(3, 3, 4, 5)
    plain = Linear(layers=["output"])
    flipped = Linear(layers=["output"], flip_test=True)
    net = plain.build().net
    expected = net(batch) + net(torch.flip(batch, dims=[3]))
    expected = expected / expected.norm(dim=1, keepdim=True)
    got = flipped.extract(batch)["output"]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert plain.extract(batch)["output"].shape == (3, 6)
    assert plain.identity()["arguments"]["flip_test"] is False and flipped.identity()["arguments"]["flip_test"] is True
    own = OwnIdentity(flip_test=True).identity()  # a subclass adds to the identity; it cannot drop flip_test
    assert own["source"] == "own" and own["arguments"]["flip_test"] is True


def test_no_spread_gets_a_ci_that_could_miss_it(tmp_path):
    """README "Statistics: one rule": a std (`*_std`, e.g. accuracy_kfold_std) has no CI, whatever task makes it:
    the percentile interval of resampled stds can lie wholly above the std (0.05 [0.0528, 0.207] in issue 20)."""
    task = accuracy_task(tmp_path, np.arange(40) % 2 == 0, **FAST)
    samples = np.linspace(0.0528, 0.207, 200)  # the resampled stds: all above the estimate 0.05
    spread = task.metric("fold_spread_std", 0.05, samples)
    assert np.isnan(spread.ci_low) and np.isnan(spread.ci_high) and spread.extra["ci_method"] == "none"
    mean = task.metric("fold_mean", 0.05, samples)  # any other metric keeps its interval
    assert mean.ci_low == pytest.approx(np.percentile(samples, 2.5)) and mean.ci_high > mean.ci_low


def test_conditions_compare_closeness_to_the_human_value_per_condition(tmp_path):
    """Comparisons of the `conditions` task: |mean distance − human| per condition that has a human value (hand
    values), normalized as `score` normalizes; a condition without one is not compared."""
    rows = [{"img1": f"x{i}.png", "img2": f"y{i}.png", "condition": c} for i, c in enumerate("aaaabbbb")]
    path = write(tmp_path, rows)
    task = ConditionedAverageDistances("k", path, tmp_path / "images", human_effect={"b": 0.5}, **FAST).load()
    a = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])  # b mean 0.65: 0.15 from 0.5
    b = np.array([0.4, 0.3, 0.2, 0.1, 0.4, 0.5, 0.6, 0.5])  # b mean 0.50: 0 from 0.5
    (row,) = comparisons_frame([payload(task, "A", a), payload(task, "B", b)]).to_dict("records")
    assert (row["metric"], row["condition"]) == ("mean_distance", "b")
    assert row["value_a"] == pytest.approx(0.15) and row["value_b"] == pytest.approx(0.0, abs=1e-12)
    assert row["quantity"] == "|value − human| (human 0.5)" and row["ci_low"] <= row["diff"] <= row["ci_high"]
    assert verdict(row).split(" (")[0] in (
        "B is closer to the human value than A on mean_distance",
        "neither A nor B is significantly closer to the human value on mean_distance",
    )
    normalized = ConditionedAverageDistances(
        "k", path, tmp_path / "images", human_effect={"b": 0.5}, normalize=True, **FAST
    ).load()
    (row,) = comparisons_frame([payload(normalized, "A", a), payload(normalized, "B", b)]).to_dict("records")
    assert row["value_a"] == pytest.approx(abs(0.65 / 0.8 - 0.5))  # each model's largest distance: 0.8, 0.6
    assert row["value_b"] == pytest.approx(abs(0.5 / 0.6 - 0.5))
