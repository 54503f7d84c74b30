"""IJB-B/C meta files: readers against pandas/numpy parsing as insightface does it, and every bad-file
error naming the file and the line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pytest_facebench.data.formats.ijb import (
    attach_landmarks,
    ijb_layout,
    landmarks_array,
    read_face_tid_mid,
    read_landmarks,
    read_template_pairs,
    read_template_subjects,
)
from pytest_facebench.errors import DataError

FACES = """1.jpg 1 69544
2.jpg 1 69544
3.jpg 1 3864
4.jpg 2 3865
5.jpg 3 3866
6.jpg 3 3867
"""
PAIRS = """1 2 1
1 3 0
2 3 0
3 1 1
"""
LANDMARKS = """1.jpg 46.060 62.026 87.785 60.323 68.851 77.656 52.162 99.875 86.450 98.648 0.999
2.jpg 45.0 60.0 85.0 61.0 66.0 78.0 50.0 98.0 84.0 97.0 0.98
3.jpg 40.5 55.25 80.75 56.0 60.0 70.0 45.0 90.0 79.0 91.5 0.5
4.jpg 41 56 81 57 61 71 46 91 80 92 0.9
5.jpg 42 57 82 58 62 72 47 92 81 93 0.1
6.jpg 43 58 83 59 63 73 48 93 82 94 1
"""
GALLERY = """TEMPLATE_ID,SUBJECT_ID,FILENAME,SIGHTING_ID
1,11,img/1.jpg,100
1,11,img/2.jpg,101
2,22,img/4.jpg,102
"""


def _file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _error(fn, *args, fragments=(), **kwargs) -> str:
    with pytest.raises(DataError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


# ----------------------------------------------------------------------------- good files


def test_face_tid_mid_matches_insightface_parsing(tmp_path):
    path = _file(tmp_path, "ijbc_face_tid_mid.txt", FACES)
    faces = read_face_tid_mid(path)
    assert list(faces.columns) == ["image", "template_id", "media_id", "_line"]
    meta = pd.read_csv(path, sep=" ", header=None).values  # insightface's read_template_media_list
    assert faces["image"].tolist() == meta[:, 0].tolist()
    assert np.array_equal(faces["template_id"].to_numpy(), meta[:, 1].astype(int))
    assert np.array_equal(faces["media_id"].to_numpy(), meta[:, 2].astype(int))
    assert faces["_line"].tolist() == [1, 2, 3, 4, 5, 6]
    assert faces["template_id"].dtype == np.int64


def test_column_roles_can_be_remapped(tmp_path):
    reordered = "\n".join(f"{t} {m} extra {img}" for img, t, m in (ln.split() for ln in FACES.splitlines())) + "\n"
    path = _file(tmp_path, "faces.txt", reordered)
    faces = read_face_tid_mid(path, columns={"image": 3, "template_id": 0, "media_id": 1})
    expected = read_face_tid_mid(_file(tmp_path, "plain.txt", FACES))
    pd.testing.assert_frame_equal(faces.drop(columns="_line"), expected.drop(columns="_line"))
    with pytest.raises(DataError, match="unknown column role 'subject'"):
        read_face_tid_mid(path, columns={"subject": 1})
    _error(read_face_tid_mid, path, columns={"image": 0, "template_id": 0}, fragments=["same field"])
    _error(read_face_tid_mid, path, columns={"media_id": 7}, fragments=["line 1: 4 fields", "need at least 8"])


def test_pairs_and_landmarks_match_insightface_parsing(tmp_path):
    pairs = read_template_pairs(_file(tmp_path, "p.txt", PAIRS))
    raw = np.loadtxt(tmp_path / "p.txt", dtype=str)  # ijb_1n.py's read_template_pair_list
    assert np.array_equal(pairs[["template_1", "template_2", "label"]].to_numpy(), raw.astype(int))
    marks = read_landmarks(_file(tmp_path, "l.txt", LANDMARKS))
    records = np.array([line.strip().split(" ") for line in LANDMARKS.splitlines()])  # ijb_evals.py
    np.testing.assert_array_equal(landmarks_array(marks), records[:, 1:-1].astype("float32").reshape(-1, 5, 2))
    np.testing.assert_array_equal(marks["faceness"].to_numpy(), records[:, -1].astype(float))
    assert marks["image"].tolist() == records[:, 0].tolist() and marks["_line"].tolist() == list(range(1, 7))


def test_crlf_and_repeated_spaces_are_accepted(tmp_path):
    text = FACES.replace("\n", "\r\n").replace(" 1 ", "  1 ")
    assert read_face_tid_mid(_file(tmp_path, "f.txt", text))["template_id"].tolist() == [1, 1, 1, 2, 3, 3]


def test_attach_landmarks_keeps_face_order(tmp_path):
    faces = read_face_tid_mid(_file(tmp_path, "f.txt", FACES))
    shuffled = "".join(reversed(LANDMARKS.splitlines(keepends=True)))
    marks = read_landmarks(_file(tmp_path, "l.txt", shuffled))
    joined = attach_landmarks(faces, marks)
    assert joined["image"].tolist() == faces["image"].tolist() and joined["_line"].tolist() == faces["_line"].tolist()
    assert joined["faceness"].tolist() == [0.999, 0.98, 0.5, 0.9, 0.1, 1.0]
    assert landmarks_array(joined)[2, 0].tolist() == [40.5, 55.25]


def test_template_subjects(tmp_path):
    faces = read_face_tid_mid(_file(tmp_path, "f.txt", FACES))
    gallery = read_template_subjects(_file(tmp_path, "ijbc_1N_gallery_G1.csv", GALLERY), faces=faces)
    assert gallery["template_id"].tolist() == [1, 2] and gallery["subject_id"].tolist() == [11, 22]
    assert gallery["_line"].tolist() == [2, 4]  # the header is line 1


# ----------------------------------------------------------------------------- bad files


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            FACES.replace("3.jpg 1 3864", "3.jpg 1 3864 9"),
            ["line 3: 4 fields; expected 3 (image template_id media_id)"],
        ),
        (FACES.replace("4.jpg 2 3865", "4.jpg 2"), ["line 4: 2 fields; expected 3"]),
        (FACES.replace("2.jpg 1 69544", "2.jpg one 69544"), ["line 2: template_id 'one' is not a number"]),
        (FACES.replace("5.jpg 3 3866", "5.jpg 3 38.5"), ["line 5: media_id '38.5' is not an integer id"]),
        (FACES.replace("5.jpg 3 3866\n", "\n5.jpg 3 3866\n"), ["line 5: empty line"]),
        ("", ["no rows"]),
    ],
)
def test_face_file_errors(tmp_path, text, fragments):
    path = _file(tmp_path, "ijbc_face_tid_mid.txt", text)
    message = _error(read_face_tid_mid, path, fragments=fragments)
    assert str(path) in message


def test_pair_file_errors(tmp_path):
    faces = read_face_tid_mid(_file(tmp_path, "ijbc_face_tid_mid.txt", FACES))
    bad_label = _file(tmp_path, "a.txt", PAIRS.replace("2 3 0", "2 3 2"))
    _error(read_template_pairs, bad_label, fragments=[str(bad_label), "line 3: label 2; expected 0 or 1"])
    unknown = _file(tmp_path, "b.txt", PAIRS + "3 999 0\n")
    _error(
        read_template_pairs,
        unknown,
        faces=faces,
        fragments=[str(unknown), "line 5: template_2 999 is an unknown template", "ijbc_face_tid_mid.txt"],
    )
    assert len(read_template_pairs(unknown)) == 5  # without faces nothing is cross-checked
    non_numeric = _file(tmp_path, "c.txt", PAIRS.replace("1 3 0", "1 t3 0"))
    _error(read_template_pairs, non_numeric, fragments=["line 2: template_2 't3' is not a number"])


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ("55.25", "nan", "line 3: y1 is NaN"),
        ("57 82", "57 NaN", "line 5: x2 is NaN"),
        ("87.785", "abc", "line 1: x2 'abc' is not a number"),
        ("0.98", "inf", "line 2: faceness is 'inf'; expected a finite number"),
        ("4.jpg 41 56", "4.jpg 56", "line 4: 11 fields; expected 12"),
    ],
)
def test_landmark_file_errors(tmp_path, old, new, fragment):
    path = _file(tmp_path, "ijbc_name_5pts_score.txt", LANDMARKS.replace(old, new, 1))
    _error(read_landmarks, path, fragments=[str(path), fragment])


def test_duplicate_and_missing_landmarks(tmp_path):
    dup = _file(tmp_path, "dup.txt", LANDMARKS + LANDMARKS.splitlines(keepends=True)[1])
    _error(read_landmarks, dup, fragments=["line 7: image '2.jpg' already has landmarks on line 2"])
    faces = read_face_tid_mid(_file(tmp_path, "ijbc_face_tid_mid.txt", FACES))
    partial = read_landmarks(_file(tmp_path, "ijbc_name_5pts_score.txt", "".join(LANDMARKS.splitlines(True)[:4])))
    _error(
        attach_landmarks,
        faces,
        partial,
        fragments=[
            "ijbc_name_5pts_score.txt",
            "no landmark row for image '5.jpg'",
            "line 5 of",
            "ijbc_face_tid_mid.txt",
            "2 image(s) without landmarks",
        ],
    )


def test_template_subject_errors(tmp_path):
    faces = read_face_tid_mid(_file(tmp_path, "ijbc_face_tid_mid.txt", FACES))
    no_images = _file(tmp_path, "g2.csv", GALLERY + "77,33,img/9.jpg,103\n")
    _error(
        read_template_subjects,
        no_images,
        faces=faces,
        fragments=[str(no_images), "line 5: template 77 has no images in", "ijbc_face_tid_mid.txt"],
    )
    clash = _file(tmp_path, "g3.csv", GALLERY.replace("1,11,img/2.jpg", "1,12,img/2.jpg"))
    _error(read_template_subjects, clash, fragments=["line 3: template 1 has subject 12, but subject 11 on line 2"])
    short = _file(tmp_path, "g4.csv", GALLERY.replace("2,22,img/4.jpg,102", "2,22"))
    _error(read_template_subjects, short, fragments=["line 4: 2 fields; expected 4"])


# --------------------------------------------------------------------------------- layout


def _ijb_tree(base: Path, name: str = "IJBC", with_1n: bool = True) -> Path:
    root = base / name
    low = name.lower()
    (root / "meta").mkdir(parents=True)
    (root / "loose_crop").mkdir()
    for stem in ("face_tid_mid.txt", "template_pair_label.txt", "name_5pts_score.txt"):
        (root / "meta" / f"{low}_{stem}").write_text("")
    if with_1n:
        g1, g2 = ("G1", "G2") if name == "IJBC" else ("S1", "S2")
        for stem in (f"1N_gallery_{g1}.csv", f"1N_gallery_{g2}.csv", "1N_probe_mixed.csv"):
            (root / "meta" / f"{low}_{stem}").write_text("")
    return root


@pytest.mark.parametrize("name", ["IJBC", "IJBB"])
def test_layout_found_from_the_set_folder_or_its_parent(tmp_path, name):
    root = _ijb_tree(tmp_path, name)
    for given in (root, tmp_path):
        layout = ijb_layout(given, name.lower() if given == tmp_path else name)
        assert layout.root == root and layout.name == name
        assert layout.faces == root / "meta" / f"{name.lower()}_face_tid_mid.txt"
        assert layout.images == root / "loose_crop" and layout.gallery_2 is not None
    if name == "IJBB":
        assert layout.gallery_1.name == "ijbb_1N_gallery_S1.csv"


def test_layout_lists_what_is_missing(tmp_path):
    root = _ijb_tree(tmp_path, with_1n=False)
    (root / "meta" / "ijbc_name_5pts_score.txt").unlink()
    (root / "loose_crop").rmdir()
    _error(ijb_layout, root, fragments=[str(root), "missing 2 of 4", "meta/ijbc_name_5pts_score.txt", "loose_crop/"])
    (root / "loose_crop").mkdir()
    (root / "meta" / "ijbc_name_5pts_score.txt").write_text("")
    assert ijb_layout(root).probes is None
    _error(ijb_layout, root, require_1n=True, fragments=["missing 3 of 7", "meta/ijbc_1N_gallery_G1.csv"])
    _error(ijb_layout, root, "IJBA", fragments=["unknown IJB set 'IJBA'"])
