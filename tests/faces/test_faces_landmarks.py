"""Landmarks files (CSV and IJB's `name_5pts_score.txt`): parsing, lookup by path, derived boxes, and a
`DataError` naming file and line for every malformed input."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from pytest_facebench.errors import DataError
from pytest_facebench.faces.align import ARCFACE_112, apply_transform
from pytest_facebench.faces.landmarks import (
    POINT_COLUMNS,
    LandmarksDetector,
    box_from_landmarks,
    load_landmarks,
    read_landmarks,
)

POINTS = [46.06, 62.026, 87.785, 60.323, 68.851, 77.656, 52.162, 99.875, 86.45, 98.648]
HEADER = "path," + ",".join(POINT_COLUMNS)


def csv_row(path: str, points=POINTS, extra: str = "") -> str:
    return f"{path}," + ",".join(str(v) for v in points) + extra


@pytest.fixture
def images(tmp_path):
    root = tmp_path / "images"
    for name in ("a/1.jpg", "a/2.jpg", "b/1.jpg"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(root / name)
    return root


def test_csv_with_boxes_scores_and_two_faces(tmp_path, images):
    file = tmp_path / "landmarks.csv"
    file.write_text(
        "\n".join(
            [
                HEADER + ",x0,y0,x1,y1,score,comment",
                csv_row("a/1.jpg", extra=",30,40,100,120,0.9,first"),
                csv_row("a/1.jpg", [v + 100 for v in POINTS], ",130,140,200,220,0.95,"),
                "",
                csv_row("./b/1.jpg", extra=",1,2,3,4,1.0,x"),
            ]
        )
        + "\n"
    )
    index = read_landmarks(file, images)
    faces = index.lookup(images / "a" / "1.jpg", images)
    assert [f.score for f in faces] == [0.95, 0.9]  # best score first
    assert faces[1].box == (30.0, 40.0, 100.0, 120.0)
    np.testing.assert_array_equal(faces[1].landmarks5, np.reshape(POINTS, (5, 2)))
    assert len(index.lookup(images / "b" / "1.jpg", images)) == 1
    assert index.lookup(images / "a" / "2.jpg", images) == []  # not listed: no face


def test_ijb_layout_and_lookup_by_trailing_path(tmp_path):
    file = tmp_path / "ijbb_name_5pts_score.txt"
    file.write_text(
        "1.jpg " + " ".join(map(str, POINTS)) + " 0.999\nsub/2.jpg " + " ".join(str(v * 2) for v in POINTS) + " 0.5\n"
    )
    index = read_landmarks(file)
    (face,) = index.lookup("/data/IJBB/loose_crop/1.jpg")
    assert face.score == 0.999
    np.testing.assert_array_equal(face.landmarks5, np.reshape(POINTS, (5, 2)))
    assert len(index.lookup("/elsewhere/sub/2.jpg")) == 1
    assert index.lookup("/data/IJBB/loose_crop/3.jpg") == []


def test_derived_box_is_the_arcface_square_in_the_image():
    assert np.allclose(box_from_landmarks(ARCFACE_112), (0, 0, 112, 112))
    # the template scaled by 2 and shifted by (10, 20): the square maps to (10, 20)-(234, 244)
    scaled = apply_transform(np.array([[2.0, 0, 10], [0, 2.0, 20]]), ARCFACE_112)
    assert np.allclose(box_from_landmarks(scaled), (10, 20, 234, 244))


@pytest.mark.parametrize(
    "text, message",
    [
        (HEADER + "\n" + csv_row("a/1.jpg") + ",7\n", r"line 2: 12 comma-separated fields; expected 11"),
        (HEADER + "\n" + csv_row("a/1.jpg", POINTS[:-1] + ["nan"]) + "\n", r"line 2, column mouth_right_y: .*'nan'"),
        (HEADER + "\n" + csv_row("a/1.jpg", POINTS[:-1] + [""]) + "\n", r"line 2, column mouth_right_y: .*blank"),
        (HEADER + "\n" + csv_row("a/1.jpg", POINTS[:-1] + ["x"]) + "\n", r"line 2, column mouth_right_y"),
        (HEADER + "\n" + csv_row(" ") + "\n", r"line 2, column path: blank"),
        (HEADER + "\n" + csv_row("a/1.jpg", [5.0] * 10) + "\n", r"line 2: the 5 points coincide"),
        ("path,left_eye_x\n", r"line 1: missing column\(s\) left_eye_y"),
        (HEADER + ",x0,y0\n", r"line 1: box columns x0, y0 without the others"),
        (HEADER + ",x0,y0,x1,y1\n" + csv_row("a/1.jpg", extra=",50,50,40,60") + "\n", r"line 2: the box .* is empty"),
        (HEADER + "\n", r"no rows"),
        ("", r"empty landmarks file"),
    ],
)
def test_malformed_csv(tmp_path, text, message):
    file = tmp_path / "bad.csv"
    file.write_text(text)
    with pytest.raises(DataError, match=message) as info:
        read_landmarks(file)
    assert str(file) in str(info.value)


@pytest.mark.parametrize(
    "line, message",
    [
        ("1.jpg " + " ".join(map(str, POINTS)), r"line 2: 11 whitespace-separated fields; expected 12"),
        ("1.jpg " + " ".join(map(str, POINTS[:-1])) + " NaN 0.9", r"line 2, column 11 \(mouth_right_y\)"),
        ("1.jpg " + " ".join(map(str, POINTS)) + " inf", r"line 2, column 12 \(score\)"),
    ],
)
def test_malformed_ijb_file(tmp_path, line, message):
    file = tmp_path / "name_5pts_score.txt"
    file.write_text("0.jpg " + " ".join(map(str, POINTS)) + " 0.9\n" + line + "\n")
    with pytest.raises(DataError, match=message):
        read_landmarks(file)


def test_missing_images_are_named_with_their_lines(tmp_path, images):
    file = tmp_path / "landmarks.csv"
    file.write_text("\n".join([HEADER, csv_row("a/1.jpg"), csv_row("a/9.jpg"), csv_row("c/1.jpg")]) + "\n")
    with pytest.raises(DataError, match=r"2 listed image\(s\) do not exist under .*line 3: a/9.jpg, line 4: c/1.jpg"):
        read_landmarks(file, images)
    assert len(read_landmarks(file).faces) == 3  # without an images root nothing is checked


def test_missing_or_binary_file(tmp_path):
    with pytest.raises(DataError, match="landmarks file not found"):
        load_landmarks(tmp_path / "nope.csv")
    binary = tmp_path / "pts.txt"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 10)
    with pytest.raises(DataError, match="not a UTF-8 text file"):
        read_landmarks(binary)


def test_detector_reads_by_path_and_describes_the_content(tmp_path, images):
    file = tmp_path / "landmarks.csv"
    file.write_text(HEADER + "\n" + csv_row("a/1.jpg") + "\n")
    detector = LandmarksDetector(file, images)
    (face,) = detector.detect(Image.new("RGB", (8, 8)), images / "a" / "1.jpg")
    np.testing.assert_array_equal(face.landmarks5, np.reshape(POINTS, (5, 2)))
    with pytest.raises(DataError, match="looked up by image path"):
        detector.detect(Image.new("RGB", (8, 8)), None)
    before = detector.describe()
    stat = file.stat()
    file.write_text(HEADER + "\n" + csv_row("a/1.jpg", [v + 1 for v in POINTS]) + "\n")
    os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a new mtime even on coarse clocks
    assert detector.describe()["blake2b"] != before["blake2b"]
