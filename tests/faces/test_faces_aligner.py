"""`FaceAligner`: face selection, the no-face policies, the detection cache, pickling, provenance and bad
input files (16-bit, CMYK, EXIF-rotated, tiny) read through `images.load_rgb`."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from PIL import Image

from pytest_facebench.engine.images import load_rgb
from pytest_facebench.errors import ConfigError, DataError
from pytest_facebench.faces.align import (
    align_arcface_112,
    center_crop,
    crop_facenet_160,
)
from pytest_facebench.faces.aligner import FaceAligner, select_face
from pytest_facebench.faces.detect import DlibHogDetector, Face
from pytest_facebench.faces.landmarks import POINT_COLUMNS

pytest.importorskip("dlib")
pytest.importorskip("cv2")  # arcface_112 warps with OpenCV


@pytest.fixture(scope="module")
def two_astronauts(astronaut_face):
    """A big face on the left edge, a smaller one at the centre of a 640×300 canvas."""
    canvas = Image.new("RGB", (640, 300), (128, 128, 128))
    canvas.paste(astronaut_face, (0, 22))
    canvas.paste(astronaut_face.resize((150, 150), Image.BILINEAR), (245, 75))
    return canvas


@pytest.fixture
def count_hog(monkeypatch):
    """Counts calls of the HOG detector's `detect`."""
    calls = []
    original = DlibHogDetector.detect

    def counting(self, image, path=None):
        calls.append(image.size)
        return original(self, image, path)

    monkeypatch.setattr(DlibHogDetector, "detect", counting)
    return calls


def test_two_faces_largest_and_central(two_astronauts):
    results = {
        select: FaceAligner("arcface_112", "dlib_hog", select=select)(two_astronauts, key="two")
        for select in ("largest", "central")
    }
    assert all(r.outcome == "aligned" and r.n_faces == 2 for r in results.values())
    big, small = results["largest"].face, results["central"].face
    assert big.center[0] < 200 and 250 < small.center[0] < 400  # the left face, the middle one
    assert big.area > 2 * small.area
    np.testing.assert_array_equal(
        np.asarray(results["largest"].image), np.asarray(align_arcface_112(two_astronauts, big.landmarks5))
    )


def test_select_face_by_hand():
    small_centre = Face(box=(45, 45, 55, 55), score=0.5)
    big_corner = Face(box=(0, 0, 40, 40), score=0.9)
    assert select_face([small_centre, big_corner], (100, 100), "largest") is big_corner
    assert select_face([small_centre, big_corner], (100, 100), "central") is small_centre


@pytest.mark.parametrize("align, size", [("arcface_112", 112), ("facenet_160", 160), ("dlib_150", 150)])
def test_no_face_policies(coffee, align, size):
    path = "/data/coffee.png"
    with pytest.raises(DataError, match=r"image /data/coffee.png: no face found by detector dlib_hog"):
        FaceAligner(align, "dlib_hog", on_missing="fail")(coffee, key="coffee", path=path)
    cropped = FaceAligner(align, "dlib_hog", on_missing="center_crop")(coffee, key="coffee", path=path)
    assert (cropped.outcome, cropped.n_faces, cropped.face) == ("center_crop", 0, None)
    np.testing.assert_array_equal(np.asarray(cropped.image), np.asarray(center_crop(coffee, size)))
    assert cropped.image.size == (size, size)
    dropped = FaceAligner(align, "dlib_hog", on_missing="drop")(coffee, key="coffee", path=path)
    assert (dropped.image, dropped.outcome, dropped.n_faces) == (None, "dropped", 0)


@pytest.mark.parametrize("detector", ["dlib_hog", "dlib_cnn:upsample=0", "mtcnn"])
def test_tiny_image_under_each_policy(blank_20, detector):
    if detector == "mtcnn":
        pytest.importorskip("facenet_pytorch")
    with pytest.raises(DataError, match="image with content hash tiny: no face"):
        FaceAligner("arcface_112", detector)(blank_20, key="tiny")
    result = FaceAligner("arcface_112", detector, on_missing="center_crop")(blank_20, key="tiny")
    assert result.outcome == "center_crop" and result.image.size == (112, 112)
    assert (np.asarray(result.image) == 128).all()
    assert FaceAligner("arcface_112", detector, on_missing="drop")(blank_20, key="tiny").outcome == "dropped"


def test_each_alignment_on_a_real_face(astronaut_face):
    pytest.importorskip("facenet_pytorch")
    pytest.importorskip("cv2")
    for align, size in (("arcface_112", 112), ("facenet_160", 160), ("dlib_150", 150)):
        result = FaceAligner(align, "mtcnn")(astronaut_face, key="astro")
        assert (result.outcome, result.n_faces, result.image.size) == ("aligned", 1, (size, size))
    facenet = FaceAligner("facenet_160", "mtcnn")(astronaut_face, key="astro")
    np.testing.assert_array_equal(
        np.asarray(facenet.image), np.asarray(crop_facenet_160(astronaut_face, facenet.face.box, margin=14))
    )


def test_detector_failure_is_one_line_naming_the_image(monkeypatch, astronaut_face):
    def broken(self, image, path=None):
        raise RuntimeError("\n\nError detected at line 2957.\nFailing expression was x.\n")

    monkeypatch.setattr(DlibHogDetector, "detect", broken)
    with pytest.raises(DataError) as info:
        FaceAligner("arcface_112", "dlib_hog")(astronaut_face, key="k", path="/data/a.jpg")
    assert str(info.value) == (
        "image /data/a.jpg: face detector dlib_hog failed: RuntimeError: "
        "Error detected at line 2957. Failing expression was x."
    )


def test_align_none_passes_through(astronaut_face):
    result = FaceAligner("none")(astronaut_face, key="k")
    assert result.image is astronaut_face and result.outcome == "unaligned" and result.n_faces == 0


def test_detection_is_cached_by_content(tmp_path, astronaut_face, count_hog):
    aligner = FaceAligner("arcface_112", "dlib_hog", cache_dir=tmp_path)
    first = aligner(astronaut_face, key="abcdef", path=None)
    assert len(count_hog) == 1
    entries = list(tmp_path.rglob("abcdef.json"))
    assert len(entries) == 1 and entries[0].parent.name == "ab"
    # a fresh aligner (another process, another run) reads the entry instead of detecting
    second = FaceAligner("arcface_112", "dlib_hog", cache_dir=tmp_path)(astronaut_face, key="abcdef")
    assert len(count_hog) == 1
    assert second.face == first.face
    np.testing.assert_array_equal(second.face.landmarks5, first.face.landmarks5)
    np.testing.assert_array_equal(np.asarray(second.image), np.asarray(first.image))
    # another detector setting is another key
    FaceAligner("arcface_112", "dlib_hog:upsample=0", cache_dir=tmp_path)(astronaut_face, key="abcdef")
    assert len(count_hog) == 2
    assert len(list(tmp_path.rglob("abcdef.json"))) == 2


def test_odd_keys_stay_inside_the_cache(tmp_path, astronaut_face, count_hog):
    cache = tmp_path / "cache"
    for key in ("../../escape", "x", "a b/c"):
        FaceAligner("arcface_112", "dlib_hog", cache_dir=cache)(astronaut_face, key=key)
        FaceAligner("arcface_112", "dlib_hog", cache_dir=cache)(astronaut_face, key=key)
    assert len(count_hog) == 3  # each key detected once, then served from the cache
    entries = list(tmp_path.rglob("*.json"))
    assert len(entries) == 3 and all(cache in e.parents for e in entries)


@pytest.mark.parametrize("damage", ["truncate", "flip_byte", "garbage_json"])
def test_corrupt_cache_entry_is_recomputed(tmp_path, astronaut_face, count_hog, damage):
    from pytest_facebench.storage.cache import write_entry

    aligner = FaceAligner("arcface_112", "dlib_hog", cache_dir=tmp_path)
    first = aligner(astronaut_face, key="0123")
    (entry,) = tmp_path.rglob("0123.json")
    blob = entry.read_bytes()
    if damage == "truncate":
        entry.write_bytes(blob[: len(blob) // 2])
    elif damage == "flip_byte":
        entry.write_bytes(blob[:-5] + bytes([blob[-5] ^ 0xFF]) + blob[-4:])
    else:  # a valid entry (CRC and all) whose payload is not a detection
        write_entry(entry, b'{"faces": "nope"}')
    again = FaceAligner("arcface_112", "dlib_hog", cache_dir=tmp_path)(astronaut_face, key="0123")
    assert len(count_hog) == 2
    assert again.face == first.face
    FaceAligner("arcface_112", "dlib_hog", cache_dir=tmp_path)(astronaut_face, key="0123")
    assert len(count_hog) == 2  # the rewritten entry serves the next call


def test_cached_entry_for_another_image_size_is_recomputed(tmp_path, astronaut_face, count_hog):
    FaceAligner("arcface_112", "dlib_hog", cache_dir=tmp_path)(astronaut_face, key="same")
    smaller = astronaut_face.resize((200, 200))
    result = FaceAligner("arcface_112", "dlib_hog", cache_dir=tmp_path)(smaller, key="same")
    assert len(count_hog) == 2 and result.outcome == "aligned"


def test_without_cache_dir_every_call_detects(astronaut_face, count_hog):
    aligner = FaceAligner("arcface_112", "dlib_hog")
    aligner(astronaut_face, key="k")
    aligner(astronaut_face, key="k")
    assert len(count_hog) == 2


def test_picklable_before_and_after_use(tmp_path, astronaut_face):
    aligner = FaceAligner("arcface_112", "dlib_hog", select="central", on_missing="drop", cache_dir=tmp_path)
    clone = pickle.loads(pickle.dumps(aligner))
    assert clone.describe() == aligner.describe()
    first = aligner(astronaut_face, key="p")
    again = pickle.loads(pickle.dumps(aligner))(astronaut_face, key="p2")
    np.testing.assert_array_equal(np.asarray(first.image), np.asarray(again.image))


def test_describe_is_stable_json_and_covers_the_options(tmp_path):
    base = FaceAligner("arcface_112", "dlib_hog")
    text = json.dumps(base.describe(), sort_keys=True)
    assert text == json.dumps(FaceAligner("arcface_112", "dlib_hog", cache_dir=tmp_path).describe(), sort_keys=True)
    described = base.describe()
    assert described["detector"]["dlib"] != "absent" and described["versions"]["opencv"] != "absent"
    assert described["alignment"]["template"][0] == [38.2946, 51.6963]
    assert FaceAligner("dlib_150", "mtcnn").describe()["versions"]["dlib"] != "absent"
    assert FaceAligner().describe() == {"align": "none", "faces_format": "1"}
    others = [
        FaceAligner("arcface_112", "mtcnn"),
        FaceAligner("facenet_160", "dlib_hog"),
        FaceAligner("arcface_112", "dlib_hog", select="central"),
        FaceAligner("arcface_112", "dlib_hog", on_missing="drop"),
        FaceAligner("arcface_112", "dlib_hog:upsample=0"),
        FaceAligner("none"),
    ]
    texts = {json.dumps(a.describe(), sort_keys=True) for a in others}
    assert len(texts) == len(others) and text not in texts


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"align": "arcface_224", "detector": "dlib_hog"}, "align"),
        ({"align": "arcface_112", "detector": "retinaface"}, "detector"),
        ({"align": "arcface_112", "detector": "none"}, "detector"),
        ({"align": "none", "detector": "mtcnn"}, "detector"),
        ({"align": "arcface_112", "detector": "dlib_hog", "select": "first"}, "select"),
        ({"align": "arcface_112", "detector": "dlib_hog", "on_missing": "skip"}, "on_missing"),
    ],
)
def test_bad_configuration(kwargs, key):
    with pytest.raises(ConfigError) as info:
        FaceAligner(**kwargs)
    assert info.value.key == key


def test_landmarks_file_drives_alignment(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8))
    image.save(root / "x.png")
    points = np.array([[70.0, 80.0], [130.0, 82.0], [100.0, 110.0], [75.0, 140.0], [125.0, 141.0]])
    file = tmp_path / "lm.csv"
    file.write_text("path," + ",".join(POINT_COLUMNS) + "\nx.png," + ",".join(map(str, points.ravel())) + "\n")
    aligner = FaceAligner("arcface_112", f"landmarks:{file}", images_root=root, cache_dir=tmp_path / "cache")
    result = aligner(load_rgb(root / "x.png"), key="h", path=root / "x.png")
    assert result.outcome == "aligned" and result.n_faces == 1
    np.testing.assert_array_equal(np.asarray(result.image), np.asarray(align_arcface_112(image, points)))
    assert not (tmp_path / "cache").exists()  # looked up by path: nothing to cache by content
    missing = FaceAligner("arcface_112", f"landmarks:{file}", images_root=root, on_missing="drop")
    assert missing(image, key="h", path=root / "unlisted.png").outcome == "dropped"


# ------------------------------------------------------------------------------- bad input files
def _face_centre(result) -> tuple[float, float]:
    assert result.outcome == "aligned", result
    return result.face.center


@pytest.fixture(scope="module")
def upright_centre(astronaut_face):
    return FaceAligner("arcface_112", "dlib_hog")(astronaut_face, key="upright").face.center


def test_exif_rotated_photo_is_detected_upright(tmp_path, astronaut_face, upright_centre):
    """Stored rotated by 90° with EXIF orientation 6 ('rotate 90° clockwise to display'): load_rgb turns
    it upright, and the face is found where it is in the upright photo."""
    stored = astronaut_face.transpose(Image.Transpose.ROTATE_90)  # counter-clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    stored.save(path, quality=95, exif=exif)
    image = load_rgb(path)
    assert image.size == astronaut_face.size
    centre = _face_centre(FaceAligner("arcface_112", "dlib_hog")(image, key="exif", path=path))
    assert np.hypot(centre[0] - upright_centre[0], centre[1] - upright_centre[1]) < 6


def test_16_bit_grey_photo(tmp_path, astronaut_face, upright_centre):
    grey16 = np.asarray(astronaut_face.convert("L"), dtype=np.uint16) * 257
    path = tmp_path / "grey16.png"
    Image.fromarray(grey16).save(path)  # uint16 → mode I;16
    with Image.open(path) as raw:
        assert raw.mode.startswith("I")
    image = load_rgb(path)
    assert image.mode == "RGB"
    centre = _face_centre(FaceAligner("arcface_112", "dlib_hog")(image, key="g16", path=path))
    assert np.hypot(centre[0] - upright_centre[0], centre[1] - upright_centre[1]) < 6


def test_cmyk_jpeg(tmp_path, astronaut_face, upright_centre):
    path = tmp_path / "cmyk.jpg"
    astronaut_face.convert("CMYK").save(path, quality=95)
    with Image.open(path) as raw:
        assert raw.mode == "CMYK"
    result = FaceAligner("facenet_160", "dlib_hog")(load_rgb(path), key="cmyk", path=path)
    centre = _face_centre(result)
    assert np.hypot(centre[0] - upright_centre[0], centre[1] - upright_centre[1]) < 6
    assert result.image.size == (160, 160) and result.image.mode == "RGB"
