"""Detectors on real photos (scikit-image's astronaut and coffee, offline): one face where there is one,
none where there is none, landmarks that agree across detectors, and clear errors without weights."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from pytest_facebench.errors import ConfigError, WeightsUnavailable
from pytest_facebench.faces import detect, model_files
from pytest_facebench.faces.align import ARCFACE_112, align_arcface_112
from pytest_facebench.faces.detect import (
    DlibCnnDetector,
    DlibHogDetector,
    Face,
    MtcnnDetector,
    landmarks5_from_68,
    make_detector,
    parse_detector,
)

pytest.importorskip("dlib")

# dlib's CNN without upsampling: 4x cheaper on a CPU, and the astronaut's face (~90 px) is big enough.
DETECTORS = {"dlib_hog": "dlib_hog", "dlib_cnn": "dlib_cnn:upsample=0", "mtcnn": "mtcnn"}


def needs(spec: str) -> None:
    """Skip when the detector's library is not installed (MTCNN comes from facenet-pytorch)."""
    if spec.startswith("mtcnn"):
        pytest.importorskip("facenet_pytorch")


@pytest.fixture(scope="module")
def detections(astronaut_face):
    """Each detector's faces on the astronaut, computed once (None when its library is absent)."""
    found = {}
    for name, spec in DETECTORS.items():
        try:
            needs(spec)
        except pytest.skip.Exception:
            found[name] = None
            continue
        found[name] = make_detector(spec).detect(astronaut_face)
    return found


def faces_of(detections, name):
    if detections[name] is None:
        pytest.skip(f"{name}: library not installed")
    return detections[name]


@pytest.mark.parametrize("name", DETECTORS)
def test_one_face_on_the_astronaut(detections, name):
    faces = faces_of(detections, name)
    assert len(faces) == 1
    face = faces[0]
    x0, y0, x1, y1 = face.box
    assert 60 < x1 - x0 < 130 and 60 < y1 - y0 < 130  # a face-sized box
    points = face.landmarks5
    assert points.shape == (5, 2)
    assert (points[:, 0] > x0 - 5).all() and (points[:, 0] < x1 + 5).all()
    assert (points[:, 1] > y0 - 5).all() and (points[:, 1] < y1 + 5).all()
    # insightface's order: eyes above the nose above the mouth; the image's left before its right
    assert points[0, 0] < points[1, 0] and points[3, 0] < points[4, 0]
    assert max(points[0, 1], points[1, 1]) < points[2, 1] < min(points[3, 1], points[4, 1])


@pytest.mark.parametrize("a, b", [("dlib_hog", "dlib_cnn"), ("dlib_hog", "mtcnn"), ("dlib_cnn", "mtcnn")])
def test_landmarks_agree_across_detectors(detections, a, b):
    first, second = faces_of(detections, a)[0].landmarks5, faces_of(detections, b)[0].landmarks5
    assert np.abs(first - second).max() < 8


@pytest.mark.parametrize("name", ["dlib_hog", "mtcnn"])
def test_aligned_eyes_land_on_the_template(astronaut_face, detections, name):
    """Align with one detector's landmarks, find the eyes in the 112×112 crop with the other detector."""
    pytest.importorskip("cv2")
    needs("mtcnn")
    other = MtcnnDetector() if name == "dlib_hog" else DlibHogDetector(upsample=1)
    crop = align_arcface_112(astronaut_face, faces_of(detections, name)[0].landmarks5)
    found = other.detect(crop)
    assert len(found) == 1
    np.testing.assert_allclose(found[0].landmarks5[:2], ARCFACE_112[:2], atol=4.0)


def test_hog_on_the_full_photo_picks_the_face_first(astronaut):
    """At 512×512 with one upsampling, HOG also reports a weak second box (score ~0.1, lower left, not a
    face); the face is the largest and best-scored one."""
    faces = DlibHogDetector().detect(astronaut)
    assert faces[0].score == max(f.score for f in faces)
    assert faces[0].area == max(f.area for f in faces)
    x0, y0, x1, y1 = faces[0].box
    assert 160 < (x0 + x1) / 2 < 250 and 80 < (y0 + y1) / 2 < 160


@pytest.mark.parametrize("spec", ["dlib_hog", "dlib_cnn:upsample=0", "mtcnn"])
def test_no_face_in_a_tiny_or_faceless_image(spec, blank_20, coffee):
    needs(spec)
    detector = make_detector(spec)
    assert detector.detect(blank_20) == []
    if spec != "dlib_cnn:upsample=0":  # the CNN on the 600×400 photo costs seconds; the policy tests cover it
        assert detector.detect(coffee) == []


@pytest.mark.parametrize("spec", ["dlib_hog", "dlib_cnn", "dlib_cnn:upsample=0", "mtcnn"])
def test_slivers_find_no_face_instead_of_crashing(spec):
    """dlib's CNN raises on images a few pixels wide (and corrupts its heap on 1-3 px slivers); MTCNN
    raises below its 20 px minimum face. Too small to hold a face: no face."""
    needs(spec)
    detector = make_detector(spec)
    for size in ((1, 1), (5, 3), (3, 200), (200, 9), (19, 400)):
        assert detector.detect(Image.new("RGB", size)) == [], size


def test_landmarks5_from_68_by_hand():
    points = np.zeros((68, 2))
    points[36:42] = [[0, 0], [2, 0], [4, 0], [4, 2], [2, 2], [0, 2]]  # mean (2, 1)
    points[42:48] = [[10, 4], [12, 4], [14, 4], [14, 6], [12, 6], [10, 6]]  # mean (12, 5)
    points[30], points[48], points[54] = [7, 9], [3, 12], [11, 13]
    np.testing.assert_array_equal(landmarks5_from_68(points), [[2, 1], [12, 5], [7, 9], [3, 12], [11, 13]])
    with pytest.raises(ValueError):
        landmarks5_from_68(np.zeros((5, 2)))


def test_face_round_trips_through_json():
    face = Face(box=(1.5, 2.0, 30.25, 40.0), landmarks5=np.arange(10.0).reshape(5, 2) / 3, score=0.987654321)
    again = Face.from_json(face.to_json())
    assert again == face and again.box == face.box
    np.testing.assert_array_equal(again.landmarks5, face.landmarks5)  # floats survive JSON exactly
    with pytest.raises(ValueError):
        Face.from_json({"box": [1, 2, 3], "score": 1.0})


def test_detector_specs():
    assert parse_detector("dlib_cnn:upsample=0") == ("dlib_cnn", {"upsample": "0"})
    assert parse_detector("landmarks:data/a:b.csv") == ("landmarks", "data/a:b.csv")
    assert make_detector("none") is None
    assert make_detector("dlib_hog") == DlibHogDetector(upsample=1)
    assert make_detector("dlib_cnn:upsample=2") == DlibCnnDetector(upsample=2)
    for bad in (
        "retinaface",
        "dlib_hog:scale=2",
        "dlib_cnn:upsample=x",
        "dlib_cnn:upsample=9",
        "mtcnn:upsample=1",
        "landmarks:",
        "dlib_hog:upsample",
        "",
    ):
        with pytest.raises(ConfigError):
            make_detector(bad)


def test_describe_names_versions_and_options():
    hog = DlibHogDetector().describe()
    assert hog["name"] == "dlib_hog" and hog["upsample"] == 1
    assert hog["dlib"] != "absent" and hog["face_recognition_models"] != "absent"
    assert DlibCnnDetector(upsample=0).describe()["model"] == "mmod_human_face_detector.dat"
    mtcnn = MtcnnDetector().describe()  # from package metadata: imports nothing
    assert mtcnn["thresholds"] == [0.6, 0.7, 0.7] and "facenet-pytorch" in mtcnn


def test_missing_dlib_model_file_is_weights_unavailable(monkeypatch, tmp_path):
    monkeypatch.setattr(model_files, "face_recognition_models_dir", lambda: tmp_path)
    detect._cnn_detector.cache_clear()
    try:
        with pytest.raises(WeightsUnavailable, match="mmod_human_face_detector.dat"):
            DlibCnnDetector().load()
    finally:
        detect._cnn_detector.cache_clear()


def test_missing_facenet_pytorch_is_weights_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "facenet_pytorch", None)  # makes `import facenet_pytorch` fail
    detect._mtcnn.cache_clear()
    try:
        with pytest.raises(WeightsUnavailable, match="pip install --no-deps facenet-pytorch"):
            MtcnnDetector().detect(Image.new("RGB", (64, 64)))
    finally:
        detect._mtcnn.cache_clear()
