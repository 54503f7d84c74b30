"""Derived stimuli (issue 21): a task's `derive` conditions are made from its originals after alignment, keyed
apart from them, and a detector-based model runs an inversion task on real photos without dropping or
centre-cropping any image."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pytest_facebench.engine.engine import Engine
from pytest_facebench.engine.evaluate import evaluate_cell
from pytest_facebench.engine.options import EngineOptions
from pytest_facebench.errors import ConfigError, DataError
from pytest_facebench.faces.manipulations import parse_manipulation, thatcher_boxes
from pytest_facebench.faces.stimuli import DerivedImage, Deriver, derived_image, parse_derive, stimulus_key
from pytest_facebench.storage.store import EmbeddingStore
from pytest_facebench.tasks import RelativeDifferenceTask
from pytest_facebench.zoo.pixels import Pixels

cv2 = pytest.importorskip("cv2")
# where the five points lie in each generated 96×96 image (eye centres, nose tip, mouth corners)
POINTS = {
    "a.png": [(30.0, 38.0), (62.0, 37.0), (46.0, 55.0), (34.0, 72.0), (59.0, 71.0)],
    "b.png": [(20.0, 30.0), (50.0, 34.0), (33.0, 50.0), (22.0, 64.0), (46.0, 67.0)],
}


def _engine(tmp_path: Path) -> Engine:
    return Engine(EngineOptions(device="cpu", workers=0, batch_size=4), EmbeddingStore(tmp_path / "cache"))


def test_derived_images_compare_pickle_and_key_apart_from_their_originals(tmp_path):
    original = tmp_path / "a.png"
    inverted = derived_image(original, "inverted", (parse_manipulation("rotate180"),))
    assert inverted != original and original != inverted and inverted == pickle.loads(pickle.dumps(inverted))
    assert len({original, inverted, derived_image(original, "inverted", ())}) == 2
    assert str(inverted) == str(original) and inverted.describe() == f"inverted:{original}"
    again = pickle.loads(pickle.dumps(inverted))
    assert isinstance(again, DerivedImage) and again.steps == inverted.steps
    assert stimulus_key(original, "abc") == "abc"
    assert stimulus_key(inverted, "abc") not in ("abc", stimulus_key(inverted, "abd"))
    negated = derived_image(original, "inverted", (parse_manipulation("negate"),))
    assert stimulus_key(negated, "abc") != stimulus_key(inverted, "abc")


@pytest.mark.parametrize(
    ("derive", "message"),
    [
        ({"inverted": "rotate18"}, "derive: inverted: unknown manipulation 'rotate18'; did you mean 'rotate180'"),
        ({"x": "rotate180"}, "at least 2 characters"),
        ({"inv": []}, "a manipulation or a list of them"),
        ("rotate180", "must be a table"),
    ],
)
def test_bad_derive_declarations(derive, message):
    with pytest.raises(ConfigError, match=message):
        parse_derive(derive)


@pytest.fixture
def faces_dir(tmp_path):
    rng = np.random.default_rng(0)
    for name in POINTS:
        Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(tmp_path / name)
    header = "path,left_eye_x,left_eye_y,right_eye_x,right_eye_y,nose_x,nose_y,mouth_left_x,mouth_left_y,"
    header += "mouth_right_x,mouth_right_y"
    rows = [f"{name}," + ",".join(f"{v:g}" for point in points for v in point) for name, points in POINTS.items()]
    (tmp_path / "landmarks.csv").write_text("\n".join([header, *rows]) + "\n")
    pd.DataFrame(
        {
            "img1": ["a.png", "inverted:a.png", "a.png"],
            "img2": ["b.png", "inverted:b.png", "b.png"],
            "orientation": ["upright", "inverted", "upright"],
        }
    ).to_csv(tmp_path / "pairs.csv", index=False)
    return tmp_path


def _task(faces_dir: Path, **derive: str) -> RelativeDifferenceTask:
    task = RelativeDifferenceTask(
        "inversion",
        faces_dir / "pairs.csv",
        faces_dir,
        columns={"group": "orientation"},
        groups=["inverted", "upright"],
    )
    return task.derive_stimuli(derive or {"inverted": "rotate180"}).load()  # type: ignore[return-value]


def test_a_derived_image_is_the_aligned_original_turned(faces_dir, tmp_path):
    """Alignment runs on the original: the inverted row is the upright chip turned by 180°, exactly."""
    task = _task(faces_dir)
    assert len(task.images) == 4 and sum(isinstance(p, DerivedImage) for p in task.images) == 2
    model = Pixels(name="px", size=112, align="arcface_112", detector=f"landmarks:{faces_dir / 'landmarks.csv'}")
    embeddings = _engine(tmp_path).embed(model, task.images)
    rows = np.asarray(embeddings.layers["output"]).reshape(4, 3, 112, 112)
    upright = {p.name: rows[i] for i, p in enumerate(task.images) if not isinstance(p, DerivedImage)}
    for i, path in enumerate(task.images):
        if isinstance(path, DerivedImage):
            np.testing.assert_array_equal(rows[i], upright[path.name][:, ::-1, ::-1])
    assert embeddings.stats.faces["outcomes"] == {"aligned": 4}


def test_derive_is_recorded_and_an_unknown_condition_names_the_line(faces_dir, tmp_path):
    task = _task(faces_dir)
    result = evaluate_cell(_engine(tmp_path), Pixels(name="px", size=16), task)
    assert {r["derive"] for r in result.records} == {json.dumps({"inverted": ["rotate180"]})}
    assert result.stats["task"]["derive"] == {"inverted": ["rotate180"]}
    bad = RelativeDifferenceTask(
        "inversion",
        faces_dir / "pairs.csv",
        faces_dir,
        columns={"group": "orientation"},
        groups=["inverted", "upright"],
    ).derive_stimuli({"inverse": "rotate180"})
    with pytest.raises(DataError, match=r"pairs.csv, line 3: image 'inverted:a.png'.*did you mean 'inverse'"):
        bad.load()


def test_landmark_manipulations_without_a_face_follow_on_missing(faces_dir, tmp_path):
    """A model without alignment finds landmarks on the whole image: random pixels have no face, so 'fail'
    stops the cell naming the image, 'center_crop' places them in the central square (counted in the note)."""
    pytest.importorskip("dlib")
    task = _task(faces_dir, inverted="thatcherize")
    with pytest.raises(DataError, match=r"inverted:.*a.png: no face found for the landmarks of thatcherize"):
        evaluate_cell(_engine(tmp_path), Pixels(name="px", size=16), task)
    result = evaluate_cell(_engine(tmp_path), Pixels(name="px", size=16, on_missing="center_crop"), task)
    note = result.records[0]["note"]
    assert "landmarks (68 points) of 2 derived image(s): 0 detected, 2 in the central square" in note
    with pytest.raises(DataError, match=r"after dropping 1 row\(s\) without a face"):
        evaluate_cell(_engine(tmp_path), Pixels(name="px", size=16, on_missing="drop"), task)


# ------------------------------------------------------------------------------------------ real photos
@pytest.fixture
def photos(tmp_path, astronaut):
    """Six distinct real photos of one face (crops, a mirror image, a darker copy) and the inversion pairs."""
    folder = tmp_path / "photos"
    folder.mkdir()
    crops = [(0, 0, 512, 512), (40, 0, 400, 360), (60, 10, 380, 330), (20, 0, 420, 400)]
    images = [astronaut.crop(box) for box in crops]
    images.append(images[1].transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    images.append(Image.fromarray((np.asarray(images[2]) * 0.7).astype(np.uint8)))
    names = [f"p{i}.png" for i in range(len(images))]
    for name, image in zip(names, images):
        image.save(folder / name)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    rows = [(a, b, "upright") for a, b in pairs] + [(f"inverted:{a}", f"inverted:{b}", "inverted") for a, b in pairs]
    pd.DataFrame(rows, columns=["img1", "img2", "orientation"]).to_csv(folder / "pairs.csv", index=False)
    # the same photos turned by hand, as a researcher would otherwise make them
    for name, image in zip(names, images):
        image.rotate(180).save(folder / f"turned_{name}")
    turned = [(f"turned_{a}", f"turned_{b}", "inverted") for a, b in pairs]
    pd.DataFrame([*rows[: len(pairs)], *turned], columns=["img1", "img2", "orientation"]).to_csv(
        folder / "turned.csv", index=False
    )
    return folder


def test_inversion_by_derive_on_real_photos_drops_and_crops_nothing(photos, tmp_path):
    """HOG finds no face in the upside-down photos, so a pairs file of turned photos fails with a detector-based
    model; declared with `derive`, every image is aligned on its upright original and nothing is lost."""
    pytest.importorskip("dlib")
    model = Pixels(name="px", size=32, align="dlib_150")  # dlib's HOG detector, on_missing = 'fail'
    turned = RelativeDifferenceTask(
        "inversion", photos / "turned.csv", photos, columns={"group": "orientation"}, groups=["inverted", "upright"]
    )
    with pytest.raises(DataError, match="no face found by detector dlib_hog"):
        evaluate_cell(_engine(tmp_path), model, turned)
    task = RelativeDifferenceTask(
        "inversion", photos / "pairs.csv", photos, columns={"group": "orientation"}, groups=["inverted", "upright"]
    ).derive_stimuli({"inverted": "rotate180"})
    result = evaluate_cell(_engine(tmp_path), model, task)
    faces = result.stats["embedding"]["faces"]
    assert faces["outcomes"] == {"aligned": 12} and "dropped_images" not in faces
    assert result.records[0]["n"] == 30 and "centre-cropped" not in result.records[0]["note"]


def test_thatcherize_on_a_real_chip_turns_only_the_eyes_and_mouth(photos, tmp_path):
    pytest.importorskip("dlib")
    from pytest_facebench.faces import FaceAligner

    image = Image.open(photos / "p1.png").convert("RGB")
    chip = FaceAligner("dlib_150", "dlib_hog")(image, key="p1").image
    assert chip is not None
    deriver = Deriver("dlib_150", "fail", tmp_path / "cache")
    points, source = deriver.landmarks(chip, "p1", "aligned")
    assert source == "chip" and points is not None
    eyes_y, mouth_y = points[36:48, 1].mean(), points[48:68, 1].mean()
    assert 30 < eyes_y < mouth_y < 140 and points[36:42, 0].mean() < 75 < points[42:48, 0].mean()
    assert deriver.landmarks(chip, "p1", "aligned")[1] == "chip"  # read back from the cache
    assert list((tmp_path / "cache" / "faces" / "v1" / "landmarks68").rglob("*.json"))
    path = derived_image(photos / "p1.png", "thatcher", (parse_manipulation("thatcherize"),))
    out = np.asarray(deriver(path, chip, "p1", "aligned")).astype(int)
    before = np.asarray(chip).astype(int)
    inside = np.zeros(before.shape[:2], dtype=bool)
    for x0, y0, x1, y1 in thatcher_boxes(points, before.shape[:2]):
        inside[y0:y1, x0:x1] = True
        assert np.abs(out[y0:y1, x0:x1] - before[y0:y1, x0:x1]).mean() > 5  # the region is turned
    np.testing.assert_array_equal(out[~inside], before[~inside])
