"""Open-set 1:N and distractor galleries of the `identification` task against brute force on the full
probe × gallery distance matrix (the oracle here): pessimistic ranks, rank-k, TPIR@FPIR; chunking changes
nothing; the closed set is scored as before; `search.scan_mates` and `search.open_set_rates` directly."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from testkit import cuda_available

from pytest_facebench import stats
from pytest_facebench.data import search
from pytest_facebench.data.search import fpir_metric, open_set_rates, scan_mates, topk, tpir_at_fpir
from pytest_facebench.errors import ConfigError, DataError, ModelError
from pytest_facebench.outputs.compare import comparisons_frame
from pytest_facebench.outputs.metrics import metric_info
from pytest_facebench.report.figures.labels import gallery_size
from pytest_facebench.stats import Bootstrap
from pytest_facebench.tasks import IdentificationTask
from pytest_facebench.tasks import identification as identification_module
from pytest_facebench.tasks.base import CellValues

FAST = {"n_boot": 100}
FPIRS = [0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0]


# --- helpers -------------------------------------------------------------------------------------------
def make_task(tmp_path: Path, rows: list[dict], name: str = "ident.csv", **options) -> IdentificationTask:
    """A task over placeholder image files (the embeddings are given directly, nothing is decoded)."""
    images = tmp_path / "images"
    images.mkdir(parents=True, exist_ok=True)
    for row in rows:
        (images / row["image"]).write_bytes(b"x")
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return IdentificationTask("ident", path, images, **options).load()


def by_name(metrics, name):
    found = [m for m in metrics if m.metric == name]
    assert len(found) == 1, [m.metric for m in metrics]
    return found[0]


def open_set_data(seed: int = 0, dim: int = 16, n_gallery: int = 30, n_nonmated: int = 150, n_distractors: int = 80):
    """Rows and a name → embedding map: identities with a centre, images = centre + noise; two mated probes per
    gallery identity, one probe of each of `n_nonmated` other identities, distractors of yet others."""
    rng = np.random.default_rng(seed)
    rows, vectors = [], {}

    def add(image: str, identity: str, subset: str, centre: np.ndarray, noise: float) -> None:
        rows.append({"image": image, "identity": identity, "set": subset})
        vectors[image] = centre + noise * rng.normal(size=dim)

    for i in range(n_gallery):
        centre = rng.normal(size=dim)
        add(f"g{i}.png", f"id{i}", "gallery", centre, 0.6)
        for k in range(2):
            add(f"p{i}_{k}.png", f"id{i}", "probe", centre, 0.9)
    for i in range(n_nonmated):
        add(f"n{i}.png", f"other{i}", "probe", rng.normal(size=dim), 0.9)
    for i in range(n_distractors):
        add(f"d{i}.png", f"distractor{i}", "distractor", rng.normal(size=dim), 0.6)
    return rows, vectors


def embeddings_of(task: IdentificationTask, vectors: dict[str, np.ndarray]) -> np.ndarray:
    return np.stack([vectors[p.name] for p in task.images])


def cosine_matrix(p: np.ndarray, g: np.ndarray) -> np.ndarray:
    """1 - cos, as the definition reads (exact ties of small-integer vectors stay ties)."""
    return 1 - (p @ g.T) / (np.linalg.norm(p, axis=1)[:, None] * np.linalg.norm(g, axis=1)[None, :])


def brute_force(rows: list[dict], vectors: dict[str, np.ndarray], fpirs=(), distance=cosine_matrix) -> dict:
    """The oracle: the full distance matrix of probes × (gallery + distractors), straight from the definitions."""
    table = pd.DataFrame(rows)
    probes = table[table["set"] == "probe"]
    gallery = table[table["set"] != "probe"]
    dist = distance(np.stack([vectors[n] for n in probes["image"]]), np.stack([vectors[n] for n in gallery["image"]]))
    gallery_ids = np.where(gallery["set"] == "gallery", gallery["identity"], None)  # a distractor mates nobody
    ranks, mate, nearest = [], [], []
    for row, identity in zip(dist, probes["identity"]):
        is_mate = gallery_ids == identity
        nearest.append(row.min())
        if is_mate.any():
            best = row[is_mate].min()
            mate.append(best)
            ranks.append(1 + int(np.sum(~is_mate & (row <= best))))
        else:
            mate.append(np.inf)
            ranks.append(0)
    ranks, mate, nearest = np.array(ranks), np.array(mate), np.array(nearest)
    mated = ranks > 0
    nonmated_nearest = np.sort(nearest[~mated])
    tpir, threshold = {}, {}
    for f in fpirs:
        n = len(nonmated_nearest)
        allowed = math.floor(f * n + 1e-9)  # false alarms allowed; accepted = strictly closer than the threshold
        if allowed == 0:
            tpir[f], threshold[f] = math.nan, math.nan
            continue
        t = math.inf if allowed >= n else nonmated_nearest[allowed]
        assert np.sum(nonmated_nearest < t) <= f * n
        threshold[f] = t
        tpir[f] = float(np.mean((ranks[mated] == 1) & (mate[mated] < t)))
    return {"ranks": ranks, "mate": mate, "nearest": nearest, "mated": mated, "tpir": tpir, "threshold": threshold}


# --- open set -------------------------------------------------------------------------------------------
def test_open_set_tpir_at_fpir_equals_brute_force(tmp_path):
    rows, vectors = open_set_data()
    task = make_task(tmp_path, rows, fpirs=FPIRS, **FAST)
    ranks = task.layer_values(embeddings_of(task, vectors))
    oracle = brute_force(rows, vectors, FPIRS)
    np.testing.assert_array_equal(ranks, oracle["ranks"])
    assert task.pair_rows()["set"].tolist() == ["probe"] * len(ranks)
    result = task.score(ranks)
    mated_ranks = oracle["ranks"][oracle["mated"]]
    for k in task.ranks_k():
        m = by_name(result, f"rank{k}")
        assert m.value == pytest.approx(np.mean(mated_ranks <= k), abs=0)
        assert m.n == 60 and m.protocol.startswith(
            "open-set, mated probes: 60 of 210 probes vs 110 gallery images (180 probe identities, 80 of the gallery "
            "images distractors), cosine distance"
        )
    assert 0.2 < by_name(result, "rank1").value < 0.9  # a benchmark that discriminates
    for f in FPIRS:
        m = by_name(result, fpir_metric(f))
        assert metric_info(m.metric).higher_is_better is True
        if f == 0.005:  # 150 non-mated probes: 0.005 allows no false alarm
            assert math.isnan(m.value) and "needs >= 200 non-mated probes; got 150" in m.note
            continue
        assert m.value == oracle["tpir"][f], f
        assert m.extra["threshold"] == pytest.approx(oracle["threshold"][f], rel=1e-12)
        assert m.ci_low <= m.value <= m.ci_high and m.n == 210
    assert by_name(result, "tpir_at_fpir_1").value == pytest.approx(by_name(result, "rank1").value)
    values = [by_name(result, fpir_metric(f)).value for f in FPIRS[1:]]
    assert values == sorted(values) and values[0] < values[-1]  # TPIR grows with the FPIR allowed
    assert task.scoring()["metrics"]["tpir_at_fpir_0.02"] == ["TPIR@FPIR=0.02", "higher"]


def test_open_set_agrees_with_search_tpir_at_fpir_on_the_full_top_k(tmp_path):
    """`search.tpir_at_fpir` (cosine top-k lists, NIST rule) gives the same TPIR on tie-free data."""
    rows, vectors = open_set_data(seed=3, n_distractors=0)
    task = make_task(tmp_path, rows, fpirs=[0.01, 0.1, 0.3], n_boot=0)
    embeddings = embeddings_of(task, vectors)
    result = task.score(task.layer_values(embeddings))
    table = pd.DataFrame(rows)
    probes, gallery = table[table["set"] == "probe"], table[table["set"] == "gallery"]
    p = np.stack([vectors[n] for n in probes["image"]])
    g = np.stack([vectors[n] for n in gallery["image"]])
    scores, indices = topk(p, g, len(g))
    points = tpir_at_fpir(
        scores, indices, gallery["identity"].to_numpy(), probes["identity"].to_numpy(), (0.01, 0.1, 0.3)
    )
    for f, point in points.items():
        assert by_name(result, fpir_metric(f)).value == pytest.approx(point.tpir, abs=0)
        assert math.isnan(by_name(result, fpir_metric(f)).ci_low)  # n_boot = 0


def test_tpir_intervals_resample_identities_within_mated_and_non_mated(tmp_path):
    rows, vectors = open_set_data(seed=5, n_distractors=10)
    task = make_task(tmp_path, rows, fpirs=[0.1], n_boot=60, seed=2)
    result = task.score(task.layer_values(embeddings_of(task, vectors)))
    oracle = brute_force(rows, vectors)
    mated, ranks = oracle["mated"], oracle["ranks"]
    nearest_nonmated = oracle["nearest"][~mated]  # the non-mated probes' distances to their nearest gallery image
    samples = []
    for counts in Bootstrap(60, 2).blocks(len(ranks), groups=task.probe_identity, strata=mated):
        for c in counts:  # one resample at a time, straight from the definition
            w_n, w_m = c[~mated], c[mated]
            order = np.argsort(nearest_nonmated)
            cumulative = np.cumsum(w_n[order])
            allowed = math.floor(0.1 * w_n.sum() + 1e-9)
            t = math.inf if allowed >= w_n.sum() else nearest_nonmated[order][np.argmax(cumulative > allowed)]
            hit = (ranks[mated] == 1) & (oracle["mate"][mated] < t)
            samples.append(np.nan if allowed < 1 else np.sum(w_m * hit) / w_m.sum())
    low, high, _ = stats.percentile_interval(np.array(samples), 0.95)
    m = by_name(result, "tpir_at_fpir_0.1")
    assert (m.ci_low, m.ci_high) == pytest.approx((low, high), abs=1e-12)
    assert m.extra["ci_method"] == "bootstrap(60, identities), 95% percentile"


def test_score_without_its_layer_values_gives_no_tpir(tmp_path):
    rows, vectors = open_set_data(seed=1, n_distractors=0)
    task = make_task(tmp_path, rows, **FAST)
    ranks = task.layer_values(embeddings_of(task, vectors))
    changed = ranks.copy()
    changed[0] = 3 if changed[0] != 3 else 2
    m = by_name(task.score(changed), "tpir_at_fpir_0.1")
    assert math.isnan(m.value) and "layer_values" in m.note
    assert not math.isnan(by_name(task.score(ranks), "tpir_at_fpir_0.1").value)


# --- distractors ----------------------------------------------------------------------------------------
def test_distractors_lower_rank1_exactly_as_brute_force_predicts(tmp_path):
    rows, vectors = open_set_data(seed=2, n_nonmated=0, n_distractors=0)
    rng = np.random.default_rng(7)
    probes = [r["image"] for r in rows if r["set"] == "probe"]
    distractors = []
    for i, name in enumerate(probes[::3]):  # look-alikes of some probes, and far ones
        distractors.append({"image": f"d{i}.png", "identity": f"look{i}", "set": "Distractor"})
        vectors[f"d{i}.png"] = vectors[name] + 0.3 * rng.normal(size=16)
    for i in range(40):
        distractors.append({"image": f"far{i}.png", "identity": f"x{i}", "set": "distractor"})
        vectors[f"far{i}.png"] = rng.normal(size=16)
    plain = make_task(tmp_path / "plain", rows, **FAST)
    crowded = make_task(tmp_path / "crowded", rows + distractors, **FAST)
    before = plain.layer_values(embeddings_of(plain, vectors))
    after = crowded.layer_values(embeddings_of(crowded, vectors))
    oracle_rows = [{**r, "set": r["set"].lower()} for r in rows + distractors]
    np.testing.assert_array_equal(before, brute_force(rows, vectors)["ranks"])
    np.testing.assert_array_equal(after, brute_force(oracle_rows, vectors)["ranks"])
    assert (after >= before).all() and (after > before).sum() >= 5
    rank1_before, rank1_after = by_name(plain.score(before), "rank1"), by_name(crowded.score(after), "rank1")
    assert rank1_after.value == np.mean(after == 1) < rank1_before.value == np.mean(before == 1)
    assert rank1_after.protocol.startswith("closed-set: 60 probes vs 90 gallery images (30 probe identities, 60 of")
    assert gallery_size(pd.DataFrame({"protocol": [rank1_after.protocol], "note": [""]})) == 90  # the chance line's N
    assert not [m for m in crowded.score(after) if m.metric.startswith("tpir")]  # closed set: no TPIR
    assert crowded.describe()["n_distractors"] == 60 and crowded.describe()["n_nonmated"] == 0
    assert crowded.ranks_k()[-1] == 10


# --- chunking -------------------------------------------------------------------------------------------
def manhattan(a, b):
    return (a - b).abs().sum(dim=1)


def tie_data(seed: int = 4):
    """Small-integer embeddings (exact dot products, so chunking cannot move a value) with duplicated gallery
    vectors across identities: exact ties between mates and non-mates."""
    rng = np.random.default_rng(seed)
    rows, vectors = [], {}
    for i in range(12):
        for k, subset in enumerate(["gallery", "gallery", "probe", "probe", "probe"]):
            name = f"i{i}_{k}.png"
            rows.append({"image": name, "identity": f"id{i}", "set": subset})
            vectors[name] = rng.integers(-2, 3, size=6).astype(float)
    for i in range(9):
        rows.append({"image": f"n{i}.png", "identity": f"new{i}", "set": "probe"})
        vectors[f"n{i}.png"] = rng.integers(-2, 3, size=6).astype(float)
    for i in range(25):
        rows.append({"image": f"d{i}.png", "identity": f"dis{i}", "set": "distractor"})
        vectors[f"d{i}.png"] = vectors[f"i{i % 12}_{i % 2}.png"].copy() if i < 12 else rng.integers(-2, 3, 6) * 1.0
    for name in list(vectors):  # no all-zero rows (cosine of a zero vector is a convention, not the point)
        if not vectors[name].any():
            vectors[name][0] = 1.0
    return rows, vectors


@pytest.mark.parametrize(
    ("distance", "oracle"),
    [
        ("cosine", cosine_matrix),
        ("euclidean", lambda p, g: np.linalg.norm(p[:, None] - g[None], axis=2)),
        (manhattan, lambda p, g: np.abs(p[:, None] - g[None]).sum(axis=2)),
    ],
    ids=["cosine", "euclidean", "callable"],
)
def test_chunking_gives_the_one_block_result(tmp_path, monkeypatch, distance, oracle):
    rows, vectors = tie_data()
    task = make_task(tmp_path, rows, distance=distance, fpirs=[0.2, 0.5], **FAST)
    embeddings = embeddings_of(task, vectors)
    one = task.layer_values(embeddings)
    one_scan = task._scan[1]
    one_result = task.score(one)
    truth = brute_force([{**r} for r in rows], vectors, [0.2, 0.5], distance=oracle)
    np.testing.assert_array_equal(one, truth["ranks"])
    assert (truth["ranks"][truth["mated"]] > 1).sum() > 5  # ties pushed mates down
    for budget, cache in [(1, 0), (7, 0), (7, 1 << 20), (40, 0), (333, 50)]:
        monkeypatch.setattr(identification_module, "PAIR_BUDGET", budget)
        monkeypatch.setattr(search, "CACHE_ELEMENTS", cache)
        ranks = task.layer_values(embeddings)
        np.testing.assert_array_equal(ranks, one)
        np.testing.assert_array_equal(task._scan[1].mate, one_scan.mate)
        np.testing.assert_array_equal(task._scan[1].nonmate, one_scan.nonmate)
        got = task.score(ranks)
        assert [(m.metric, m.value, m.ci_low, m.ci_high) for m in got] == [
            (m.metric, m.value, m.ci_low, m.ci_high) for m in one_result
        ]
    for f in (0.2, 0.5):
        assert by_name(one_result, fpir_metric(f)).value == truth["tpir"][f]


def test_scan_blocks_are_bounded_by_the_budget(monkeypatch):
    rng = np.random.default_rng(6)
    embeddings = rng.normal(size=(300, 8))
    seen = []
    original = search.cross_distances

    def spy(a, b, distance):
        seen.append((len(a), len(b)))
        return original(a, b, distance)

    monkeypatch.setattr(search, "cross_distances", spy)
    codes = np.arange(300) % 40
    scan = scan_mates(embeddings, np.arange(100), np.arange(100, 300), codes[:100], codes[100:], budget=500)
    assert max(p * g for p, g in seen) <= 500 and len(seen) > 10
    full = search.scan_mates(embeddings, np.arange(100), np.arange(100, 300), codes[:100], codes[100:], budget=1 << 20)
    np.testing.assert_array_equal(scan.ranks, full.ranks)


def test_non_finite_distances_are_named(tmp_path):
    rows, vectors = open_set_data(seed=1, n_gallery=3, n_nonmated=2, n_distractors=2)
    task = make_task(tmp_path, rows, **FAST)
    embeddings = embeddings_of(task, vectors)
    embeddings[[p.name for p in task.images].index("d1.png"), 2] = np.nan
    with pytest.raises(ModelError, match=r"task 'ident': the distance of probe 1 to gallery entry 5 is nan"):
        task.layer_values(embeddings)


# --- the closed set is scored as before ------------------------------------------------------------------
def old_score(task: IdentificationTask, ranks: np.ndarray) -> list[tuple]:
    """The closed-set scoring before open sets existed (rank-k over all probes, identities resampled)."""
    ks = sorted({1, 5} | set(range(1, min(task.max_rank, len(task.gallery_image)) + 1)))
    hits = (ranks[:, None] <= np.asarray(ks)[None, :]).astype(float)
    samples = task.bootstrap.samples(
        lambda counts: {k: (counts @ hits)[:, i] / counts.sum(axis=1) for i, k in enumerate(ks)},
        len(ranks),
        groups=task.probe_identity,
    )
    return [(f"rank{k}", float(hits[:, i].mean()), *task.bootstrap.interval(samples[k])[:2]) for i, k in enumerate(ks)]


def test_closed_set_scores_and_comparisons_are_unchanged(tmp_path):
    rows, vectors = open_set_data(seed=8, n_nonmated=0, n_distractors=0)
    task = make_task(tmp_path, rows, max_rank=6, **FAST)
    embeddings = embeddings_of(task, vectors)
    ranks = task.layer_values(embeddings)
    table = pd.DataFrame(rows)
    probes, gallery = table[table["set"] == "probe"], table[table["set"] == "gallery"]
    dist = cosine_matrix(
        np.stack([vectors[n] for n in probes["image"]]), np.stack([vectors[n] for n in gallery["image"]])
    )
    np.testing.assert_array_equal(ranks, stats.probe_ranks(dist, probes["identity"], gallery["identity"]))
    result = task.score(ranks)
    assert [(m.metric, m.value, m.ci_low, m.ci_high) for m in result] == old_score(task, ranks)
    assert result[0].protocol == (
        "closed-set: 60 probes vs 30 gallery images (30 probe identities), cosine distance, ties pessimistic"
    )
    other = ranks.copy()
    other[::4] = 1
    scoring = task.scoring()
    a, b = CellValues("a", "x", ranks, scoring), CellValues("b", "x", other, scoring)
    (row,) = IdentificationTask.compare(a, b)
    boot = Bootstrap(FAST["n_boot"], 0)
    samples = boot.samples(
        lambda c: {
            "a": stats.weighted_mean((ranks <= 1).astype(float), c),
            "b": stats.weighted_mean((other <= 1).astype(float), c),
        },
        len(ranks),
        groups=task.probe_identity,
    )
    diff, low, high, p = stats.paired_result(np.mean(ranks <= 1), np.mean(other <= 1), samples["a"], samples["b"], 0.95)
    assert (row["diff"], row["ci_low"], row["ci_high"], row["p_value"]) == pytest.approx((diff, low, high, p))


def test_open_set_comparison_is_over_mated_probes(tmp_path):
    rows, vectors = open_set_data(seed=9, n_distractors=5)
    task = make_task(tmp_path, rows, **FAST)
    ranks = task.layer_values(embeddings_of(task, vectors))
    other = ranks.copy()
    other[(other > 1)] = 1  # every mated probe at rank 1; the non-mated stay 0
    scoring = task.scoring()
    (row,) = IdentificationTask.compare(CellValues("a", "x", ranks, scoring), CellValues("b", "x", other, scoring))
    assert row["value_a"] == by_name(task.score(ranks), "rank1").value and row["value_b"] == 1.0
    assert row["ci_high"] < 0 and row["p_value"] < 0.05


# --- the whole path ------------------------------------------------------------------------------------
def test_open_set_with_distractors_through_run(tmp_path):
    from pytest_facebench.api import run
    from pytest_facebench.zoo.pixels import Pixels

    rng = np.random.default_rng(11)
    images = tmp_path / "images"
    images.mkdir()
    rows = []
    for i in range(14):  # identities 0-5 in the gallery, 6-9 probed only, 10-13 distractors
        base = rng.integers(0, 200, size=3)
        for k in range(3 if i < 6 else 1):
            name = f"id{i}_{k}.png"
            Image.fromarray((base + rng.integers(0, 50, size=(8, 8, 3))).astype(np.uint8)).save(images / name)
            subset = "distractor" if i >= 10 else ("gallery" if i < 6 and k == 0 else "probe")
            rows.append({"image": name, "identity": f"id{i}", "set": subset})
    pd.DataFrame(rows).to_csv(tmp_path / "ident.csv", index=False)
    task = IdentificationTask("ident", tmp_path / "ident.csv", images, fpirs=[0.25, 0.5], **FAST)
    tables = run([Pixels(name="px4", size=4), Pixels(name="px8", size=8)], [task], cache=None, workers=0)
    assert not tables.errors
    results = tables.results
    tpir = results[results["metric"].str.startswith("tpir")]
    assert sorted(set(tpir["metric"])) == ["tpir_at_fpir_0.25", "tpir_at_fpir_0.5"] and tpir["threshold"].notna().all()
    assert (results.loc[results["metric"] == "rank1", "n"] == 12).all()
    values = tables.cells[0].distances
    nonmated = values["identity"].isin([f"id{i}" for i in range(6, 10)])
    assert (values.loc[nonmated, "rank:output"] == 0).all() and (values.loc[~nonmated, "rank:output"] >= 1).all()
    assert len(values) == 16 and tables.cells[0].stats["task"]["n_distractors"] == 4
    frame = comparisons_frame([c.to_payload() for c in tables.cells])
    assert frame["metric"].tolist() == ["rank1"] and frame["n"].tolist() == [16]


# --- bad input ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            [{"image": "x.png", "identity": "A", "set": "query"}],
            r"must say 'gallery', 'probe' or 'distractor'; found query",
        ),
        (
            [{"image": "d.png", "identity": "A", "set": "distractor"}],
            r"distractor identities A are also probe identities",
        ),
        (
            [{"image": "g.png", "identity": "Q", "set": "distractor"}],
            r"g\.png are in both the gallery and the distractors",
        ),
        (
            [{"image": "p.png", "identity": "Q", "set": "distractor"}],
            r"p\.png are in both the distractors and the probes",
        ),
    ],
)
def test_bad_sets_are_named(tmp_path, extra, message):
    rows = [{"image": "g.png", "identity": "A", "set": "gallery"}, {"image": "p.png", "identity": "A", "set": "probe"}]
    with pytest.raises(DataError, match=message):
        make_task(tmp_path, rows + extra)


def test_probes_need_a_mate_and_fpirs_are_checked(tmp_path):
    rows = [{"image": "g.png", "identity": "A", "set": "gallery"}, {"image": "p.png", "identity": "Z", "set": "probe"}]
    with pytest.raises(DataError, match=r"probe identities Z have no gallery image.*mated probes"):
        make_task(tmp_path, rows)
    for bad in ([], [0.0], [1.5], ["0.1"], [True]):
        with pytest.raises(ConfigError, match="fpirs must be a list"):
            IdentificationTask("i", tmp_path / "ident.csv", tmp_path / "images", fpirs=bad)
    assert IdentificationTask("i", tmp_path / "x.csv", tmp_path, fpirs=0.05).fpirs == [0.05]
    assert metric_info("tpir_at_fpir_0.05").higher_is_better is True  # registered by the task that asked for it


# --- the search functions directly -----------------------------------------------------------------------
def test_open_set_rates_weighted_equals_repeated_rows():
    """Counts of 2 are the same as the row listed twice; 0 as the row left out."""
    rng = np.random.default_rng(12)
    mate, hits, non = rng.normal(size=20), rng.random(20) < 0.7, rng.normal(size=30)
    mc, nc = rng.integers(0, 3, size=(1, 20)), rng.integers(0, 3, size=(1, 30))
    weighted = open_set_rates(mate, hits, non, [0.1, 0.34, 1.0], mc, nc)
    expanded = open_set_rates(np.repeat(mate, mc[0]), np.repeat(hits, mc[0]), np.repeat(non, nc[0]), [0.1, 0.34, 1.0])
    for f in (0.1, 0.34, 1.0):
        assert weighted[f].tpir[0] == pytest.approx(expanded[f].tpir[0])
        assert weighted[f].threshold[0] == expanded[f].threshold[0]
        assert weighted[f].fpir[0] <= f
    assert weighted[1.0].threshold[0] == -np.inf
    none = open_set_rates(mate, hits, np.empty(0), [0.5])[0.5]
    assert np.isnan(none.tpir[0])


@pytest.mark.skipif(not cuda_available(), reason="needs a CUDA device")
def test_scan_on_cuda_matches_cpu():
    rng = np.random.default_rng(13)
    embeddings = rng.normal(size=(2000, 64)).astype(np.float32)
    codes = rng.integers(0, 300, size=2000)
    codes[1500:] = -1
    args = (embeddings, np.arange(400), np.arange(400, 2000), codes[:400], codes[400:])
    cpu = scan_mates(*args, budget=50_000)
    gpu = scan_mates(torch.from_numpy(embeddings).cuda(), *args[1:], device="cuda", budget=50_000)
    np.testing.assert_allclose(cpu.mate, gpu.mate, atol=1e-5)
    assert np.isinf(cpu.mate).sum() > 0 and np.mean(cpu.ranks == gpu.ranks) > 0.99
    np.testing.assert_allclose(cpu.nonmate, gpu.nonmate, atol=1e-5)
