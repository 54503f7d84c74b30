"""`template_verification` (IJB-B/C 1:1) on a small IJB-shaped set built here: template features against a
loop-by-loop re-implementation of insightface's recipe, TAR@FAR and AUC against sklearn and a brute-force
threshold count, the cell bootstrap against the pair bootstrap it stands for, runs through `run()` and a
pytester grid, and bad files as one-line errors naming file and line."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score, roc_curve
from testkit import one_line_failure

from pytest_facebench.data.templates import template_features
from pytest_facebench.errors import ConfigError, DataError
from pytest_facebench.grid.registry import task_class
from pytest_facebench.stats import Roc, weight_blocks
from pytest_facebench.tasks import TemplateVerificationTask
from pytest_facebench.tasks.base import CellValues
from pytest_facebench.tasks.template_verification import IJB_FARS, ScoreCells
from pytest_facebench.tasks.verification import far_metric

FAST = {"n_boot": 200}
POINTS = np.array([[22.0, 26.0], [42.0, 26.0], [32.0, 36.0], [24.0, 46.0], [40.0, 46.0]])  # in a 64 x 64 image


def make_ijb(
    root: Path, subjects: int = 8, templates_per_subject: int = 4, size: int = 16, seed: int = 0
) -> dict[str, Path]:
    """insightface's IJB layout under `root`: loose_crop/<k>.jpg and meta/ files. Templates (non-contiguous
    ids) of several medias of 1-3 frames, a media shared by two templates, every template pair labelled."""
    rng = np.random.default_rng(seed)
    crops, meta = root / "loose_crop", root / "meta"
    crops.mkdir(parents=True)
    meta.mkdir()
    faces, marks, templates = [], [], []
    image, media = 0, 5000
    for subject in range(subjects):
        colour = rng.integers(30, 226, size=3)
        for k in range(templates_per_subject):
            template = 7 + 13 * (subject * templates_per_subject + k)
            templates.append((template, subject))
            for _ in range(int(rng.integers(1, 4))):
                media += 1
                for _ in range(int(rng.integers(1, 4))):
                    image += 1
                    pixels = np.clip(colour + rng.normal(0, 45, size=(size, size, 3)), 0, 255).astype(np.uint8)
                    Image.fromarray(pixels).save(crops / f"{image}.jpg")
                    faces.append(f"{image}.jpg {template} {media}")
                    points = POINTS * size / 64 + rng.normal(0, 0.3, size=(5, 2))
                    score = rng.uniform(0.2, 1.0)
                    marks.append(f"{image}.jpg " + " ".join(f"{v:.3f}" for v in points.ravel()) + f" {score:.4f}")
        # one media listed in two templates of the subject (IJB lists a video's frames under several templates)
        image += 1
        Image.fromarray(np.full((size, size, 3), colour, dtype=np.uint8)).save(crops / f"{image}.jpg")
        for template, _ in templates[-2:]:
            faces.append(f"{image}.jpg {template} 77")
        marks.append(f"{image}.jpg " + " ".join(f"{v:.3f}" for v in (POINTS * size / 64).ravel()) + " 0.9")
    pairs = [f"{a} {b} {int(sa == sb)}" for i, (a, sa) in enumerate(templates) for b, sb in templates[i + 1 :]]
    order = rng.permutation(len(pairs))
    paths = {
        "faces": meta / "ijb_face_tid_mid.txt",
        "pairs": meta / "ijb_template_pair_label.txt",
        "landmarks": meta / "ijb_name_5pts_score.txt",
        "images": crops,
    }
    paths["faces"].write_text("\n".join(faces) + "\n")
    paths["pairs"].write_text("\n".join(pairs[i] for i in order) + "\n")
    paths["landmarks"].write_text("\n".join(marks) + "\n")
    return paths


@pytest.fixture
def ijb(tmp_path) -> dict[str, Path]:
    return make_ijb(tmp_path / "IJB")


def task_of(paths: dict[str, Path], **options) -> TemplateVerificationTask:
    options = {"faces": paths["faces"], **FAST, **options}
    return TemplateVerificationTask("ijb", paths["pairs"], paths["images"], **options).load()


# --- oracles ----------------------------------------------------------------------------------------
def insightface_templates(feats, templates, medias, faceness=None, use_norm=True):
    """`image2template_feature` of insightface's ijb_11.py, one template and one media at a time, after its
    per-image steps (N0: L2-normalize each image; D1: multiply by the faceness score)."""
    x = np.asarray(feats, dtype=np.float64)
    if not use_norm:
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    if faceness is not None:
        x = x * np.asarray(faceness)[:, None]
    unique = np.unique(templates)
    out = np.zeros((len(unique), x.shape[1]))
    for row, t in enumerate(unique):
        in_t = np.where(templates == t)[0]
        media_feats = []
        for m in np.unique(medias[in_t]):
            frames = x[in_t[medias[in_t] == m]]
            media_feats.append(frames[0] if len(frames) == 1 else frames.mean(axis=0))
        total = np.sum(media_feats, axis=0)
        out[row] = total / np.linalg.norm(total)
    return unique, out


def brute_force_tar(distances, labels, far):
    """TAR at the largest observed distance whose share of different pairs at or below it is <= far."""
    d, y = np.asarray(distances), np.asarray(labels, dtype=bool)
    best = 0.0
    for t in np.unique(d):
        if np.mean(d[~y] <= t) <= far + 1e-12:
            best = np.mean(d[y] <= t)
    return best


def sklearn_tar(distances, labels, far):
    fpr, tpr, _ = roc_curve(labels, -np.asarray(distances), drop_intermediate=False)
    return float(tpr[fpr <= far + 1e-12].max())


# --- template features and pair scores ---------------------------------------------------------------
@pytest.mark.parametrize("use_norm", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_template_features_equal_insightfaces_recipe(ijb, use_norm, weighted):
    task = task_of(ijb, use_norm=use_norm, faceness=ijb["landmarks"] if weighted else None)
    faces = pd.read_csv(ijb["faces"], sep=" ", header=None, names=["image", "template", "media"])
    rng = np.random.default_rng(3)
    embeddings = rng.normal(size=(len(task.images), 24)) * rng.uniform(0.5, 3.0, size=(len(task.images), 1))
    row_of = {p.name: i for i, p in enumerate(task.images)}
    per_record = embeddings[[row_of[name] for name in faces["image"]]]
    faceness = None
    if weighted:
        marks = pd.read_csv(ijb["landmarks"], sep=" ", header=None).set_index(0)[11]
        faceness = marks.loc[faces["image"]].to_numpy()
    ids, expected = insightface_templates(
        per_record, faces["template"].to_numpy(), faces["media"].to_numpy(), faceness, use_norm
    )
    got_ids, got = task.template_features(embeddings)
    np.testing.assert_array_equal(got_ids, ids)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    # the pair values: 1 - cos of the two template features, in the pairs file's order
    pairs = pd.read_csv(ijb["pairs"], sep=" ", header=None).to_numpy()
    row = {t: i for i, t in enumerate(ids)}
    cosine = np.array([expected[row[a]] @ expected[row[b]] for a, b, _ in pairs])
    np.testing.assert_allclose(task.layer_values(embeddings), 1 - cosine, atol=1e-6)
    assert len(task.images) == len(set(faces["image"]))  # the shared media's frame is embedded once


def test_template_features_read_lazy_rows_in_chunks_through_image_rows():
    class Rows:  # like the engine's StoredRows: a shape and row indexing, no __array__
        def __init__(self, data):
            self.data, self.shape, self.reads = data, data.shape, 0

        def __getitem__(self, index):
            self.reads += 1
            return self.data[index]

    rng = np.random.default_rng(0)
    data = rng.normal(size=(5, 8)).astype(np.float32)
    rows = np.array([4, 0, 0, 2, 3, 1, 4])  # record -> feature row, a row used twice
    templates, medias = np.array([9, 9, 3, 3, 3, 5, 5]), np.array([1, 2, 7, 7, 8, 4, 4])
    lazy = Rows(data)
    ids, feats = template_features(lazy, templates, medias, image_rows=rows)
    ids2, feats2 = template_features(data[rows], templates, medias)
    np.testing.assert_array_equal(ids, ids2)
    np.testing.assert_allclose(feats, feats2, atol=1e-7)
    assert lazy.reads == 1
    with pytest.raises(ValueError, match=r"image_rows\[1\] = 5 is outside the 5 feature rows"):
        template_features(data, templates[:2], medias[:2], image_rows=[0, 5])


def test_a_template_whose_faceness_is_all_zero_scores_cosine_zero_with_a_note(ijb):
    faces = [line.split() for line in ijb["faces"].read_text().splitlines()]
    zero = {name for name, template, _ in faces if template == "7"}
    marks = [line.split() for line in ijb["landmarks"].read_text().splitlines()]
    ijb["landmarks"].write_text("\n".join(" ".join([*m[:11], "0" if m[0] in zero else m[11]]) for m in marks) + "\n")
    task = task_of(ijb, faceness=ijb["landmarks"], n_boot=0)
    embeddings = np.random.default_rng(0).normal(size=(len(task.images), 6))
    values = task.layer_values(embeddings)
    with_zero = (task.pair_templates == 7).any(axis=1)
    np.testing.assert_allclose(values[with_zero], 1.0)
    assert not np.isclose(values[~with_zero], 1.0).all()
    notes = {m.metric: m.note for m in task.score(values)}
    assert "1 template(s) have a zero feature (weights summing to 0): their pairs score cosine 0" in notes["auc"]
    assert notes["tar_at_far_0.1"].endswith("their pairs score cosine 0")


# --- metrics ----------------------------------------------------------------------------------------
def test_tar_at_far_and_auc_equal_independent_computations(ijb):
    task = task_of(ijb, fars=[0.01, 0.05, 0.1, 0.5])
    rng = np.random.default_rng(1)
    distances = rng.normal(size=len(task.labels)) - 1.0 * task.labels
    distances[:20] = np.round(distances[:20], 1)  # a few ties
    rows = {m.metric: m for m in task.score(distances)}
    y = task.labels
    assert task.fars == [1e-4, 0.01, 0.05, 0.1, 0.5]  # the headline's FAR is always there
    for far in (0.01, 0.05, 0.1, 0.5):
        metric = rows[far_metric(far)]
        assert metric.value == pytest.approx(brute_force_tar(distances, y, far))
        assert metric.value == pytest.approx(sklearn_tar(distances, y, far))
        assert metric.ci_low <= metric.value <= metric.ci_high
        assert metric.extra["ci_method"] == "bootstrap(200, pairs), 95% percentile"
        assert "media mean, template sum, L2 (image norms kept; unweighted)" in metric.protocol
    assert rows["auc"].value == pytest.approx(roc_auc_score(y, -distances))
    n_neg = int((~y).sum())
    assert n_neg < 10_000
    headline = rows["tar_at_far_0.0001"]
    assert np.isnan(headline.value) and f"needs >= 10000 different pairs; got {n_neg}" in headline.note
    assert TemplateVerificationTask.headline == "tar_at_far_0.0001"
    assert set(TemplateVerificationTask.metrics) == {*(far_metric(f) for f in IJB_FARS), "auc"}


@pytest.mark.parametrize("seed", range(4))
def test_cell_bootstrap_is_the_pair_bootstrap_on_the_same_resamples(seed):
    """Aggregating a pair resample's counts into the cells gives exactly the metrics of the resample; a
    threshold outside its window is NaN (degenerate), never a wrong value."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(300, 3000))
    y = rng.random(n) < rng.uniform(0.02, 0.4)
    y[:2] = [True, False]
    d = rng.normal(size=n) - 1.5 * y
    if seed % 2:
        d = np.round(d, 1)
    fars = [1e-3, 1e-2, 0.05, 0.1, 0.5, 1.0]
    counts = next(weight_blocks(n, 40, seed=seed))
    reference = Roc(d, y).metrics(counts, fars)
    for z, exact in ((8.0, True), (0.5, False)):
        cells = ScoreCells.build(d[None], y, fars, with_auc=True, z=z)
        assert len(cells.sizes) <= n and cells.n == n
        got = cells.metrics(cells.aggregate(counts), fars, with_auc=True)[0]
        np.testing.assert_allclose(got["auc"], reference.auc)
        for far in fars:
            value = got[far_metric(far)]
            defined = ~np.isnan(value)
            assert not exact or (defined | np.isnan(reference.tar[far])).all()
            np.testing.assert_allclose(value[defined], reference.tar[far][defined])
        point = cells.metrics(cells.sizes[None], fars, with_auc=True)[0]  # every pair once: the estimate
        for far in fars:
            np.testing.assert_allclose(point[far_metric(far)], Roc(d, y).metrics(None, fars).tar[far])
    other = d + rng.normal(size=n)
    joint = ScoreCells.build(np.stack([d, other]), y, fars, with_auc=False, z=2.0)
    for values, dm in zip(joint.metrics(joint.aggregate(counts), fars, with_auc=False), (d, other)):
        ref = Roc(dm, y).metrics(counts, fars)
        for far in fars:
            defined = ~np.isnan(values[far_metric(far)])
            np.testing.assert_allclose(values[far_metric(far)][defined], ref.tar[far][defined])


def test_cell_bootstrap_intervals_match_a_pair_by_pair_bootstrap():
    rng = np.random.default_rng(5)
    n = 4000
    y = rng.random(n) < 0.1
    d = rng.normal(size=n) - 1.2 * y
    fars = [0.01, 0.1]
    cells = ScoreCells.build(d[None], y, fars, with_auc=True)
    fast = cells.bootstrap(2000, 0, fars, with_auc=True)[0]
    roc = Roc(d, y)
    slow = [roc.metrics(block, fars) for block in weight_blocks(n, 2000, seed=1)]
    for name, reference in (
        ("auc", np.concatenate([m.auc for m in slow])),
        ("tar_at_far_0.01", np.concatenate([m.tar[0.01] for m in slow])),
        ("tar_at_far_0.1", np.concatenate([m.tar[0.1] for m in slow])),
    ):
        assert not np.isnan(fast[name]).any()
        np.testing.assert_allclose(
            np.percentile(fast[name], [2.5, 50, 97.5]), np.percentile(reference, [2.5, 50, 97.5]), atol=0.015
        )
        assert np.std(fast[name]) == pytest.approx(np.std(reference), rel=0.1)


def test_compare_pairs_the_headline_and_runs_delong(ijb):
    task = task_of(ijb, n_boot=300)
    rng = np.random.default_rng(2)
    y = task.labels
    n = len(y)
    a = rng.normal(size=n) - 2.0 * y
    b = a + rng.normal(size=n) * 0.7
    scoring = task.scoring()
    assert sorted(scoring["same_rows"]) == np.flatnonzero(y).tolist() and scoring["n_pairs"] == n
    rows = TemplateVerificationTask.compare(CellValues("a", "out", a, scoring), CellValues("b", "out", b, scoring))
    assert [r["metric"] for r in rows] == ["tar_at_far_0.0001", "auc"]
    assert rows[0]["note"] == "undefined for at least one model"  # 1e-4 needs 10,000 different pairs
    assert rows[1]["test"] == "DeLong" and rows[1]["value_a"] == pytest.approx(roc_auc_score(y, -a))
    # a reachable headline: the paired bootstrap runs on cells joint over both models
    many = rng.random(60_000) < 0.01
    da = rng.normal(size=60_000) - 3.0 * many
    db = da + rng.normal(size=60_000) * 0.5
    s = {"same_rows": np.flatnonzero(many).tolist(), "n_pairs": 60_000, "n_boot": 200, "seed": 0, "ci": 0.95}
    row = TemplateVerificationTask.compare(CellValues("a", "o", da, s), CellValues("b", "o", db, s))[0]
    assert row["value_a"] == pytest.approx(sklearn_tar(da, many, 1e-4))
    assert row["ci_low"] <= row["diff"] <= row["ci_high"] and 0 <= row["p_value"] <= 1
    assert row["test"] == "paired bootstrap(200, pairs) of TAR@FAR=0.0001"


# --- end to end --------------------------------------------------------------------------------------
def test_runs_through_run_with_pixels_models(ijb, tmp_path):
    from pytest_facebench.api import run
    from pytest_facebench.zoo.pixels import Pixels

    task = task_of(ijb, faceness=ijb["landmarks"], fars=[0.01, 0.1])
    models = [Pixels(name="px8", size=8), Pixels(name="px16", size=16)]
    tables = run(models, [task], out=tmp_path / "out", cache=None, workers=0)
    assert not tables.errors, tables.errors
    results = tables.results
    assert set(results["metric"]) == {"auc", "tar_at_far_0.0001", "tar_at_far_0.01", "tar_at_far_0.1"}
    headline = results[results["headline"].astype(bool)]
    assert set(headline["metric"]) == {"tar_at_far_0.0001"}
    cell = tables.cells[0]
    values = cell.distances["output"].to_numpy()
    labels = cell.distances["label"].to_numpy().astype(bool)
    assert list(cell.distances.columns) == ["template_1", "template_2", "label", "output"]
    mine = results[(results["model"] == "px8")].set_index("metric")
    assert mine.loc["tar_at_far_0.1", "value"] == pytest.approx(brute_force_tar(values, labels, 0.1))
    assert mine.loc["auc", "value"] == pytest.approx(roc_auc_score(labels, -values))
    assert mine.loc["auc", "value"] > 0.7  # colours tell subjects apart
    assert "faceness-weighted (ijb_name_5pts_score.txt)" in mine.loc["auc", "protocol"]
    assert sorted(tables.comparisons["metric"]) == ["auc", "tar_at_far_0.0001"]
    out = tmp_path / "out"
    assert (out / "distances" / "ijb" / "px8.csv").is_file()
    manifest = (out / "plots" / "manifest.json").read_text()
    assert '"roc"' in manifest


def test_arcface_alignment_from_the_ijb_landmarks_file(tmp_path):
    from pytest_facebench.api import run
    from pytest_facebench.zoo.pixels import Pixels

    paths = make_ijb(tmp_path / "IJB", subjects=3, templates_per_subject=2, size=64)
    task = task_of(paths)
    model = Pixels(name="px", size=112, align="arcface_112", detector=f"landmarks:{paths['landmarks']}")
    tables = run([model], [task], cache=None, workers=0)
    assert not tables.errors, tables.errors
    assert "faces (arcface_112, landmarks:" in tables.results["note"].iloc[0]
    assert f"{len(task.images)} of {len(task.images)} images aligned" in tables.results["note"].iloc[0]
    # an image without a landmark row: the model's cell fails naming the image
    lines = paths["landmarks"].read_text().splitlines()
    paths["landmarks"].write_text("\n".join(lines[1:]) + "\n")
    model = Pixels(name="px2", size=112, align="arcface_112", detector=f"landmarks:{paths['landmarks']}")
    tables = run([model], [task_of(paths)], cache=None, workers=0)
    (message,) = tables.errors.values()
    assert "1.jpg: no face found by detector landmarks:" in message and "\n" not in message


GRID = """
[[models]]
name = "pixels"
factory = "pixels"
kwargs = {{ size = 8 }}

[[tasks]]
name = "ijbc"
type = "template_verification"
pairs = "IJB/meta/ijb_template_pair_label.txt"
images = "IJB/loose_crop"
faces = "IJB/meta/ijb_face_tid_mid.txt"
faceness = "ijb_name_5pts_score.txt"
use_norm = false
fars = [0.01, 0.1]
n_boot = 50

[[tasks]]
name = "broken"
type = "template_verification"
pairs = "IJB/meta/{broken}"
images = "IJB/loose_crop"
faces = "ijb_face_tid_mid.txt"
"""


def test_a_grid_runs_it_and_a_bad_pairs_file_is_one_line(bench):
    paths = make_ijb(bench.path / "IJB")
    text = paths["pairs"].read_text().splitlines()
    text[3] = "7 999 0"
    (paths["pairs"].parent / "bad_pairs.txt").write_text("\n".join(text) + "\n")
    (bench.path / "facebench.toml").write_text(GRID.format(broken="bad_pairs.txt"))
    bench.test_file()
    result = bench.run()
    result.assert_outcomes(passed=1, errors=1)
    line = one_line_failure(result, "test_x[pixels-broken]")
    assert re.fullmatch(r"DataError: .*bad_pairs\.txt: line 4: template_2 999 is an unknown template .*", line)
    results = bench.results()
    assert set(results["task"]) == {"ijbc"}
    assert "images L2-normalized first; faceness-weighted" in results["protocol"].iloc[0]
    bench.assert_no_traceback(result)


def test_a_nan_headline_is_printed_with_its_reason_in_the_terminal(bench):
    """TAR@FAR=1e-4 (the default headline) on a set with far fewer than 10,000 different pairs is NaN: the
    terminal shows `nan [1]` and footnote [1] gives the reason results.csv carries, within 120 columns."""
    make_ijb(bench.path / "IJB")
    (bench.path / "facebench.toml").write_text(GRID.format(broken="").split('\n[[tasks]]\nname = "broken"')[0])
    bench.test_file()
    result = bench.run()
    result.assert_outcomes(passed=1)
    head = bench.results()
    head = head[
        head["headline"].astype(str).str.lower().eq("true") & head["readout"].astype(str).str.lower().eq("true")
    ]
    (note,) = head["note"]
    assert head["metric"].tolist() == ["tar_at_far_0.0001"] and np.isnan(head["value"].iloc[0])
    assert "FAR 0.0001 needs >= 10000 different pairs" in note
    lines = result.outlines
    (row,) = [line for line in lines if line.startswith("ijbc (")]
    assert row.rstrip().endswith("nan [1]")
    (footnote,) = [line for line in lines if line.startswith("[1] nan: ")]
    assert footnote.startswith(f"[1] nan: {note[:60]}") and footnote.endswith("(ijbc · pixels)")
    assert all(len(line) <= 120 for line in lines[lines.index(row) - 1 : lines.index(footnote) + 1])


# --- bad input --------------------------------------------------------------------------------------
def one_line(fn, *fragments: str, error: type[Exception] = DataError) -> str:
    with pytest.raises(error) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_a_pair_naming_an_unknown_template(ijb):
    lines = ijb["pairs"].read_text().splitlines()
    lines[5] = "4242 7 1"
    ijb["pairs"].write_text("\n".join(lines) + "\n")
    one_line(lambda: task_of(ijb), f"{ijb['pairs']}: line 6: template_1 4242 is an unknown template", "no images in")


def test_a_template_whose_images_are_missing(ijb):
    faces = ijb["faces"].read_text().splitlines()
    name = faces[2].split()[0]
    (ijb["images"] / name).unlink()
    one_line(lambda: task_of(ijb), f"{ijb['faces']}: line 3: image '{name}' not found under {ijb['images']}")


def test_an_image_without_a_faceness_row(ijb):
    marks = ijb["landmarks"].read_text().splitlines()
    ijb["landmarks"].write_text("\n".join(marks[:4] + marks[5:]) + "\n")
    name = marks[4].split()[0]
    one_line(
        lambda: task_of(ijb, faceness=ijb["landmarks"]),
        f"{ijb['landmarks']}: no landmark row for image '{name}' (line 5 of {ijb['faces']}",
    )


@pytest.mark.parametrize(
    "file,line,fragment",
    [
        ("faces", "3.jpg 7", "line 2: 2 fields; expected 3 (image template_id media_id)"),
        ("pairs", "7 20 2", "line 2: label 2; expected 0 or 1"),
        ("landmarks", "2.jpg 1 2 3 4 5 6 7 8 9 nan 0.5", "line 2: y5 is NaN"),
    ],
)
def test_malformed_lines_name_file_and_line(ijb, file, line, fragment):
    lines = ijb[file].read_text().splitlines()
    lines[1] = line
    ijb[file].write_text("\n".join(lines) + "\n")
    one_line(lambda: task_of(ijb, faceness=ijb["landmarks"]), f"{ijb[file]}: {fragment}")


def test_one_class_pairs_and_bad_options(ijb):
    lines = [x for x in ijb["pairs"].read_text().splitlines() if x.endswith(" 0")]
    ijb["pairs"].write_text("\n".join(lines) + "\n")
    one_line(lambda: task_of(ijb), "only different (0) pairs")
    make = TemplateVerificationTask
    one_line(lambda: make("t", ijb["pairs"], ijb["images"]), "option 'faces' is required", error=ConfigError)
    one_line(
        lambda: make("t", ijb["pairs"], ijb["images"], faces=ijb["faces"], distance="euclidean"),
        "distance must be 'cosine'",
        error=ConfigError,
    )
    one_line(
        lambda: make("t", ijb["pairs"], ijb["images"], faces=ijb["faces"], columns={"label": "y"}),
        "remove 'columns'",
        error=ConfigError,
    )
    one_line(lambda: make("t", ijb["pairs"], ijb["images"], faces=ijb["faces"], fars=[0]), "fars", error=ConfigError)
    one_line(lambda: task_of(ijb, faces="nope.txt"), "faces file not found", f"from {ijb['pairs'].parent} upwards")


def test_registered_by_type_name_and_relative_paths_resolve_from_the_pairs_folder_upwards(ijb):
    assert task_class("template_verification") is TemplateVerificationTask
    root = ijb["pairs"].parents[1]
    for faces in ("ijb_face_tid_mid.txt", "meta/ijb_face_tid_mid.txt"):
        task = TemplateVerificationTask("t", ijb["pairs"], ijb["images"], faces=faces)
        assert task.faces_path == root / "meta" / "ijb_face_tid_mid.txt"
    task = task_of(ijb)
    description = task.describe()
    assert description["n_templates"] == 32 and description["n_pairs"] == 32 * 31 // 2
    assert description["n_images"] == len(task.images)
    assert len(task.rows_sha256()) == 16
