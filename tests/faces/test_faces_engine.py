"""Alignment as declared preprocessing (issue 14): a model's `align`/`detector`/`face_select`/`on_missing` run
before its `Preprocessing` in the engine, are part of every embedding key, cache their detections by content,
and report what happened to each image (counts in the embedding stats, a note on every result row)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage.transform import SimilarityTransform

from pytest_facebench.engine.engine import FACES, Engine
from pytest_facebench.engine.evaluate import face_note
from pytest_facebench.engine.options import EngineOptions
from pytest_facebench.errors import DataError, ModelError
from pytest_facebench.faces import ARCFACE_112
from pytest_facebench.storage.store import EmbeddingStore
from pytest_facebench.zoo.pixels import Pixels

cv2 = pytest.importorskip("cv2")

# where the five points lie in each generated 96×96 image (eye centres, nose tip, mouth corners)
POINTS = {
    "a.png": [(30.0, 38.0), (62.0, 37.0), (46.0, 55.0), (34.0, 72.0), (59.0, 71.0)],
    "b.png": [(20.0, 30.0), (50.0, 34.0), (33.0, 50.0), (22.0, 64.0), (46.0, 67.0)],
}


@pytest.fixture
def faces_dir(tmp_path):
    rng = np.random.default_rng(0)
    for name in (*POINTS, "noface.png"):
        Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(tmp_path / name)
    header = "path,left_eye_x,left_eye_y,right_eye_x,right_eye_y,nose_x,nose_y,mouth_left_x,mouth_left_y,"
    header += "mouth_right_x,mouth_right_y"
    rows = [f"{name}," + ",".join(f"{v:g}" for point in points for v in point) for name, points in POINTS.items()]
    (tmp_path / "landmarks.csv").write_text("\n".join([header, *rows]) + "\n")
    return tmp_path


def expected_crop(path, points) -> np.ndarray:
    """The arcface_112 crop by an independent estimate of the similarity (skimage), as Pixels(size=112) rows."""
    if hasattr(SimilarityTransform, "from_estimate"):  # scikit-image >= 0.26
        transform = SimilarityTransform.from_estimate(np.asarray(points), ARCFACE_112)
    else:
        transform = SimilarityTransform()
        assert transform.estimate(np.asarray(points), ARCFACE_112)
    pixels = np.asarray(Image.open(path).convert("RGB"))
    warped = cv2.warpAffine(pixels, transform.params[:2], (112, 112), flags=cv2.INTER_LINEAR, borderValue=0)
    return warped.astype(np.float32).transpose(2, 0, 1).reshape(-1) / 255.0


def model(faces_dir, **kwargs) -> Pixels:
    return Pixels(
        name="px", size=112, align="arcface_112", detector=f"landmarks:{faces_dir / 'landmarks.csv'}", **kwargs
    )


def engine(tmp_path) -> Engine:
    return Engine(EngineOptions(device="cpu", workers=0, batch_size=2), EmbeddingStore(tmp_path / "cache"))


def test_aligned_rows_match_an_independent_similarity_warp_and_outcomes_are_counted(faces_dir, tmp_path):
    paths = [faces_dir / "a.png", faces_dir / "b.png", faces_dir / "noface.png", faces_dir / "a.png"]
    first = engine(tmp_path).embed(model(faces_dir, on_missing="center_crop"), paths)
    rows = np.asarray(first.layers["output"])
    for row, name in zip(rows[:2], POINTS):
        np.testing.assert_allclose(row, expected_crop(faces_dir / name, POINTS[name]), atol=1.5 / 255)
    np.testing.assert_array_equal(rows[3], rows[0])  # the same image once, whatever its position
    faces = first.stats.faces
    assert faces["outcomes"] == {"aligned": 2, "center_crop": 1} and faces["images"] == 3
    assert faces["align"] == "arcface_112" and faces["on_missing"] == "center_crop"
    note = face_note(faces)
    assert note.startswith("faces (arcface_112, landmarks:") and "2 of 3 images aligned" in note
    assert "1 centre-cropped (no face found)" in note
    # a warm run embeds nothing and still counts the outcomes (they are stored with the embeddings)
    second = engine(tmp_path).embed(model(faces_dir, on_missing="center_crop"), paths)
    assert second.stats.cache_hits == 3 and second.stats.embedded == 0
    assert second.stats.faces["outcomes"] == {"aligned": 2, "center_crop": 1}


def test_alignment_is_part_of_every_embedding_key(faces_dir, tmp_path):
    e = engine(tmp_path)
    plain = e.layer_keys(Pixels(name="px", size=112))
    aligned = e.layer_keys(model(faces_dir))
    cropped = e.layer_keys(model(faces_dir, on_missing="center_crop"))
    central = e.layer_keys(model(faces_dir, face_select="central"))
    assert FACES not in plain and FACES in aligned
    assert len({plain["output"], aligned["output"], cropped["output"], central["output"]}) == 4


def test_no_face_fails_the_model_naming_the_image_by_default(faces_dir, tmp_path):
    with pytest.raises(DataError, match=r"noface\.png: no face found by detector landmarks:"):
        engine(tmp_path).embed(model(faces_dir), [faces_dir / "a.png", faces_dir / "noface.png"])


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"align": "arcface_96"}, "unknown alignment 'arcface_96'"),
        ({"align": "arcface_112", "detector": "haar"}, "detector"),
        ({"align": "arcface_112", "face_select": "first"}, "unknown face selection 'first'"),
        ({"align": "arcface_112", "on_missing": "skip"}, "unknown no-face policy 'skip'"),
        ({"align": "none", "detector": "dlib_hog"}, "would be unused"),
    ],
)
def test_bad_alignment_settings_are_one_line_model_errors(kwargs, message):
    with pytest.raises(ModelError, match=r"^model 'px': .*" + message.replace("(", r"\(").replace(")", r"\)")):
        Pixels(name="px", **kwargs)


def test_a_family_declares_its_default_alignment_and_none_turns_it_off():
    from pytest_facebench.zoo.dlib_resnet import DlibResNet

    assert DlibResNet(name="d").alignment.align == "dlib_150"
    assert DlibResNet(name="d").alignment.detector == "dlib_hog"
    assert DlibResNet(name="d", align="none").alignment.active is False
    assert Pixels(name="px").alignment.active is False


GRID_ALIGNED = """
[[models]]
name = "px"
factory = "pixels"
kwargs = {{ size = 16 }}
align = "arcface_112"
detector = "landmarks:data/landmarks.csv"
{extra}

[[tasks]]
name = "verif"
type = "accuracy"
pairs = "data/verif.csv"
images = "data/images"
n_boot = 0
folds = 2
"""


def test_a_grid_model_entry_declares_its_alignment_and_run_json_counts_the_outcomes(bench):
    import json

    import pandas as pd

    header = "path,left_eye_x,left_eye_y,right_eye_x,right_eye_y,nose_x,nose_y,mouth_left_x,mouth_left_y,"
    header += "mouth_right_x,mouth_right_y"
    listed = bench.images[:4]  # the others have no face: centre-cropped
    rows = [f"{name},5,6,11,6,8,9,6,12,10,12" for name in listed]
    (bench.data / "landmarks.csv").write_text("\n".join([header, *rows]) + "\n")
    (bench.path / "facebench.toml").write_text(GRID_ALIGNED.format(extra='on_missing = "center_crop"'))
    bench.test_file()
    result = bench.run()
    result.assert_outcomes(passed=1)
    results = pd.read_csv(bench.out / "results.csv")
    assert set(results["alignment"]) == {
        '{"align": "arcface_112", "detector": "landmarks:' + str(bench.data / "landmarks.csv") + '", '
        '"on_missing": "center_crop", "select": "largest"}'
    }  # the file resolved against the grid file's folder
    used = set(pd.read_csv(bench.data / "verif.csv")[["img1", "img2"]].to_numpy().ravel())
    aligned = len(used & set(listed))
    assert 0 < aligned < len(used)
    assert results["note"].str.contains(f"{aligned} of {len(used)} images aligned").all()
    faces = json.loads((bench.out / "run.json").read_text())["models"]["px"]["faces"]
    assert faces["align"] == "arcface_112" and faces["on_missing"] == "center_crop"
    assert faces["per_task"]["verif"] == {
        "images": len(used),
        "aligned": aligned,
        "center_crop": len(used) - aligned,
        "several_faces": 0,
    }


@pytest.mark.parametrize(
    "extra,message",
    [
        ('on_missing = "skip"', "unknown no-face policy 'skip'"),
        ("on_missing = 3", "'on_missing' must be a string, got 3"),
    ],
)
def test_bad_alignment_keys_are_one_line_errors_naming_the_grid(bench, extra, message):
    header = "path,left_eye_x,left_eye_y,right_eye_x,right_eye_y,nose_x,nose_y,mouth_left_x,mouth_left_y,"
    header += "mouth_right_x,mouth_right_y"
    (bench.data / "landmarks.csv").write_text(f"{header}\n{bench.images[0]},5,6,11,6,8,9,6,12,10,12\n")  # a valid file
    (bench.path / "facebench.toml").write_text(GRID_ALIGNED.format(extra=extra))
    bench.test_file()
    result = bench.run()
    assert message in result.stdout.str()
    assert "facebench.toml" in result.stdout.str()
    bench.assert_no_traceback(result)


def test_on_missing_drop_leaves_out_the_rows_of_faceless_images_and_counts_them(bench):
    import json

    import pandas as pd
    from sklearn.metrics import roc_auc_score

    header = "path,left_eye_x,left_eye_y,right_eye_x,right_eye_y,nose_x,nose_y,mouth_left_x,mouth_left_y,"
    header += "mouth_right_x,mouth_right_y"
    listed = bench.images[:8]
    rows = [f"{name},5,6,11,6,8,9,6,12,10,12" for name in listed]
    (bench.data / "landmarks.csv").write_text("\n".join([header, *rows]) + "\n")
    (bench.path / "facebench.toml").write_text(GRID_ALIGNED.format(extra='on_missing = "drop"'))
    bench.test_file()
    result = bench.run()
    result.assert_outcomes(passed=1)
    pairs = pd.read_csv(bench.data / "verif.csv")
    kept = pairs[pairs["img1"].isin(listed) & pairs["img2"].isin(listed)]
    assert 0 < len(kept) < len(pairs)
    distances = pd.read_csv(bench.out / "distances" / "verif" / "px.csv")
    assert distances[["img1", "img2"]].values.tolist() == kept[["img1", "img2"]].values.tolist()
    results = pd.read_csv(bench.out / "results.csv")
    auc = results[results["metric"] == "auc"].iloc[0]
    assert auc["n"] == len(kept)
    assert auc["value"] == pytest.approx(roc_auc_score(distances["label"], -distances["output"]))
    faceless = {i for pair in pairs[["img1", "img2"]].values for i in pair} - set(listed)
    assert f"{len(pairs) - len(kept)} row(s) dropped: no face in {len(faceless)} image(s)" in auc["note"]
    faces = json.loads((bench.out / "run.json").read_text())["models"]["px"]["faces"]
    assert faces["on_missing"] == "drop"
