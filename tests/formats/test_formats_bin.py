"""insightface .bin packs: both pickle encodings, the restricted unpickler, bad packs, materializing, and
the 10-fold protocol against an oracle re-implementation of insightface's `calculate_roc`."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from pack_helpers import py2_pickle
from PIL import Image

from pytest_facebench.data.formats import insightface_bin
from pytest_facebench.data.formats.insightface_bin import Pack, insightface_kfold_folds, materialize, read_pack
from pytest_facebench.engine.images import content_hash
from pytest_facebench.errors import DataError
from pytest_facebench.stats import kfold_accuracy, make_folds

N_PAIRS = 20


# ------------------------------------------------------------------------------- fixtures


def _jpeg(seed: int, fmt: str = "JPEG") -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def lfw_like() -> tuple[list[bytes], list[bool]]:
    """20 pairs of tiny JPEGs (one PNG), labels alternating in blocks like LFW's folds; image 5 repeats image 2."""
    images = [_jpeg(i, "PNG" if i == 7 else "JPEG") for i in range(2 * N_PAIRS)]
    images[5] = bytes(bytearray(images[2]))  # equal bytes, a distinct object (pickle memoizes by identity)
    issame = [bool((i // 5) % 2 == 0) for i in range(N_PAIRS)]
    return images, issame


_py2_pickle = py2_pickle


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------------- good packs


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_python3_packs_load_plainly(tmp_path, lfw_like, protocol):
    images, issame = lfw_like
    path = _write(tmp_path / "lfw.bin", pickle.dumps((images, issame), protocol=protocol))
    pack = read_pack(path, trusted=True)
    assert isinstance(pack, Pack) and pack.n_pairs == N_PAIRS and not pack.python2
    assert pack.issame.dtype == bool and pack.issame.tolist() == issame
    assert [pack.image_bytes(i) for i in range(2 * N_PAIRS)] == images
    assert pack.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert pack.path == path


def test_python2_pack_needs_bytes_encoding(tmp_path, lfw_like):
    images, issame = lfw_like
    path = _write(tmp_path / "agedb_30.bin", _py2_pickle(images, issame))
    with pytest.raises(UnicodeDecodeError):  # the premise: a plain Python 3 load fails on py2 str items
        pickle.loads(path.read_bytes())
    bins, labels = pickle.loads(path.read_bytes(), encoding="bytes")  # ... and insightface's fallback works
    assert bins == images and labels == issame
    pack = read_pack(path, trusted=True)
    assert pack.python2 and pack.n_pairs == N_PAIRS
    assert pack.issame.tolist() == issame and list(pack.images) == images


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_items_and_labels(tmp_path, lfw_like, protocol):
    """Writers that store cv2.imencode output (uint8 arrays, (n,) or (n, 1)) and numpy bool labels."""
    cv2 = pytest.importorskip("cv2")
    images, issame = lfw_like
    encoded = []
    for i, data in enumerate(images):
        array = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        ok, buf = cv2.imencode(".jpg", array)
        assert ok and buf.dtype == np.uint8
        encoded.append(buf.reshape(-1, 1) if i % 2 else buf.reshape(-1))  # OpenCV < 4.? returned (n, 1)
    labels = np.array(issame)
    path = _write(tmp_path / "calfw.bin", pickle.dumps((encoded, labels), protocol=protocol))
    pack = read_pack(path, trusted=True)
    assert [pack.image_bytes(i) for i in range(len(encoded))] == [b.tobytes() for b in encoded]
    assert pack.issame.tolist() == issame
    labels_as_scalars = [np.bool_(s) for s in issame]
    path2 = _write(tmp_path / "cplfw.bin", pickle.dumps((images, labels_as_scalars), protocol=protocol))
    assert read_pack(path2, trusted=True).issame.tolist() == issame


def test_image_bytes_index_is_checked(tmp_path, lfw_like):
    path = _write(tmp_path / "p.bin", pickle.dumps(lfw_like, protocol=4))
    pack = read_pack(path, trusted=True)
    with pytest.raises(IndexError, match="out of range"):
        pack.image_bytes(2 * N_PAIRS)


# ------------------------------------------------------------------------------- trust


class _CreatesFile:
    """A pickle payload that creates a file when unpickled by plain `pickle`."""

    def __init__(self, target: Path, how: str):
        self.target, self.how = target, how

    def __reduce__(self):
        if self.how == "system":
            return (os.system, (f"touch {self.target}",))
        return (open, (str(self.target), "w"))


def _crafted(target: Path, how: str, images: list[bytes], issame: list[bool]) -> bytes:
    poisoned = list(images)
    poisoned[3] = _CreatesFile(target, how)  # type: ignore[call-overload]
    return pickle.dumps((poisoned, issame), protocol=4)


@pytest.mark.parametrize("how", ["open", "system"])
def test_crafted_payload_works_with_plain_pickle(tmp_path, lfw_like, how):
    """The premise of the two tests below: plain unpickling of the crafted pack does create the file."""
    target = tmp_path / "pwned"
    pickle.loads(_crafted(target, how, *lfw_like))
    assert target.exists()


@pytest.mark.parametrize("how", ["open", "system"])
def test_untrusted_pack_is_refused_before_unpickling(tmp_path, lfw_like, how):
    target = tmp_path / "pwned"
    path = _write(tmp_path / "lfw.bin", _crafted(target, how, *lfw_like))
    with pytest.raises(DataError) as info:
        read_pack(path, trusted=False)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "trusted = true" in message
    assert not target.exists()


@pytest.mark.parametrize("how", ["open", "system"])
def test_trusted_crafted_pack_cannot_run_code(tmp_path, lfw_like, how):
    target = tmp_path / "pwned"
    path = _write(tmp_path / "lfw.bin", _crafted(target, how, *lfw_like))
    with pytest.raises(DataError, match="refused to load global") as info:
        read_pack(path, trusted=True)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert ("system" in str(info.value)) == (how == "system")
    assert not target.exists()


class _BytesBomb:
    def __reduce__(self):
        return (bytes, (10**12,))  # an allowed global called with a size: must not allocate a terabyte


class _ArrayBomb:
    def __reduce__(self):
        return (np.ndarray, ((10**7, 10**6),))


@pytest.mark.parametrize("bomb", [_BytesBomb(), _ArrayBomb()])
def test_allowed_globals_refuse_abuse(tmp_path, bomb):
    path = _write(tmp_path / "bomb.bin", pickle.dumps(([bomb, b"x"], [True]), protocol=2))
    with pytest.raises(DataError, match="cannot unpickle"):
        read_pack(path, trusted=True)


def test_known_hash_needs_no_opt_in(tmp_path, lfw_like, monkeypatch):
    path = _write(tmp_path / "lfw.bin", pickle.dumps(lfw_like, protocol=4))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(DataError, match="not a known insightface pack"):
        read_pack(path, trusted=False)
    monkeypatch.setattr(insightface_bin, "known_pack_hashes", lambda: {sha: {"name": "lfw"}})
    assert read_pack(path, trusted=False).n_pairs == N_PAIRS


def test_shipped_known_packs_list_is_valid():
    known = insightface_bin.known_pack_hashes()
    assert isinstance(known, dict)
    for sha, entry in known.items():
        assert len(sha) == 64 and int(sha, 16) >= 0 and entry["sha256"].lower() == sha


# -------------------------------------------------------------------------- bad packs


def _one_line_error(path: Path, *fragments: str) -> str:
    with pytest.raises(DataError) as info:
        read_pack(path, trusted=True)
    message = str(info.value)
    assert "\n" not in message and str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_truncated_pack(tmp_path, lfw_like):
    data = pickle.dumps(lfw_like, protocol=4)
    images = lfw_like[0]
    cut = data.index(images[12]) + len(images[12]) // 2  # inside image 12
    path = _write(tmp_path / "cut.bin", data[:cut])
    _one_line_error(path, "truncated", "after 12 complete image item(s): item 12 or the labels are cut off")


def test_truncated_python2_pack(tmp_path, lfw_like):
    data = _py2_pickle(*lfw_like)
    path = _write(tmp_path / "cut2.bin", data[: len(data) - 30])  # inside the labels
    _one_line_error(path, "truncated", f"after {2 * N_PAIRS} complete image item(s)")


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [(b"", "empty"), (_jpeg(0), "not a pickle"), (b"image_a.jpg image_b.jpg 1\n", "not a pickle")],
)
def test_not_a_pickle(tmp_path, payload, fragment):
    _one_line_error(_write(tmp_path / "x.bin", payload), fragment)


@pytest.mark.parametrize(
    ("obj", "fragments"),
    [
        ({"bins": [], "issame": []}, ["holds a dict", "expected a pair (images, issame_list)"]),
        (([], [], []), ["tuple of length 3"]),
        (({0: b"a"}, [True]), ["images are a dict"]),
        (([b"a", b"b", 7, b"d"], [True, False]), ["image item 2 is a int"]),
        (([b"a", b"b"], "yes"), ["issame_list is a str"]),
        (([b"a", b"b", b"c", b"d"], [True, "no"]), ["label 1", "'no'"]),
        (([b"a", b"b", b""] + [b"d"], [True, False]), ["image item 2 is empty"]),
    ],
)
def test_wrong_structure(tmp_path, obj, fragments):
    _one_line_error(_write(tmp_path / "s.bin", pickle.dumps(obj, protocol=4)), *fragments)


def test_odd_image_count(tmp_path, lfw_like):
    images, issame = lfw_like
    path = _write(tmp_path / "odd.bin", pickle.dumps((images + [images[0]], issame), protocol=4))
    _one_line_error(path, "41 images, an odd count", "item 40 has no partner")


def test_image_count_not_twice_the_labels(tmp_path, lfw_like):
    images, issame = lfw_like
    path = _write(tmp_path / "n.bin", pickle.dumps((images, issame + [True]), protocol=4))
    _one_line_error(path, "40 images but 21 labels", "2 images per label")


def test_missing_pack(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_pack(tmp_path / "absent.bin", trusted=True)


# ------------------------------------------------------------------------- materialize


def test_materialize_content_addressed(tmp_path, lfw_like):
    images, _ = lfw_like
    pack = read_pack(_write(tmp_path / "lfw.bin", pickle.dumps(lfw_like, protocol=4)), trusted=True)
    folder = tmp_path / "images"
    paths = materialize(pack, folder)
    assert len(paths) == 2 * N_PAIRS
    assert paths[5] == paths[2] and len(set(paths)) == 2 * N_PAIRS - 1
    assert len(list(folder.iterdir())) == 2 * N_PAIRS - 1
    for data, path in zip(images, paths):
        assert path.read_bytes() == data
        assert path.stem == hashlib.blake2b(data, digest_size=20).hexdigest() == content_hash(path)
        with Image.open(path) as stored, Image.open(io.BytesIO(data)) as original:
            assert np.array_equal(np.asarray(stored), np.asarray(original))
    assert paths[7].suffix == ".png" and paths[0].suffix == ".jpg"


def test_materialize_skips_present_files(tmp_path, lfw_like, monkeypatch):
    pack = read_pack(_write(tmp_path / "lfw.bin", pickle.dumps(lfw_like, protocol=4)), trusted=True)
    first = materialize(pack, tmp_path / "images")
    mtimes = [p.stat().st_mtime_ns for p in first]

    def refuse(*args, **kwargs):
        raise AssertionError("a present file was written again")

    monkeypatch.setattr(insightface_bin, "_write_atomically", refuse)
    monkeypatch.setattr(insightface_bin, "_decoded_format", refuse)
    assert materialize(pack, tmp_path / "images") == first
    assert [p.stat().st_mtime_ns for p in first] == mtimes


def test_materialize_undecodable_image(tmp_path, lfw_like):
    images, issame = list(lfw_like[0]), lfw_like[1]
    images[9] = images[9][:20]  # a JPEG header with no scan data
    pack = read_pack(_write(tmp_path / "bad.bin", pickle.dumps((images, issame), protocol=4)), trusted=True)
    with pytest.raises(DataError) as info:
        materialize(pack, tmp_path / "images")
    message = str(info.value)
    assert "\n" not in message and str(pack.path) in message and "image item 9 (pair 4)" in message


# ---------------------------------------------------------------------- 10-fold protocol


@pytest.mark.parametrize("n", [6000, 7000, 25, 13, 10])
def test_kfold_folds_match_sklearn(n):
    from sklearn.model_selection import KFold

    folds = insightface_kfold_folds(n, 10)
    for fold, (_train, test) in enumerate(KFold(n_splits=10, shuffle=False).split(np.arange(n))):
        assert np.array_equal(np.flatnonzero(folds == fold), test)
    assert np.array_equal(folds, make_folds(n, 10))


def test_kfold_folds_bad_arguments():
    with pytest.raises(ValueError, match="n_folds"):
        insightface_kfold_folds(5, 10)


def _oracle_calculate_roc(thresholds, embeddings1, embeddings2, actual_issame, nrof_folds=10):
    """insightface `verification.calculate_roc` (pca=0), rewritten from its description: sklearn KFold
    without shuffling; per fold the first threshold of the grid maximizing train accuracy, where a pair
    is predicted "same" iff its squared distance is < threshold; returns the held-out accuracies."""
    from sklearn.model_selection import KFold

    def accuracy_at(threshold, dist, issame):
        predict = np.less(dist, threshold)
        tp = np.sum(predict & issame)
        tn = np.sum(~predict & ~issame)
        return float(tp + tn) / dist.size

    nrof_pairs = min(len(actual_issame), embeddings1.shape[0])
    dist = np.sum(np.square(np.subtract(embeddings1, embeddings2)), 1)
    accuracy = np.zeros(nrof_folds)
    for fold, (train, test) in enumerate(KFold(n_splits=nrof_folds, shuffle=False).split(np.arange(nrof_pairs))):
        train_acc = np.array([accuracy_at(t, dist[train], actual_issame[train]) for t in thresholds])
        accuracy[fold] = accuracy_at(thresholds[int(np.argmax(train_acc))], dist[test], actual_issame[test])
    return dist, accuracy


def _unit_pairs_at(sq_distances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalized 2-D embedding pairs whose squared euclidean distance is each given value."""
    cos = 1.0 - sq_distances / 2.0
    e1 = np.tile([1.0, 0.0], (len(cos), 1))
    e2 = np.stack([cos, np.sqrt(1.0 - cos**2)], axis=1)
    return e1, e2


def test_kfold_accuracy_matches_insightface_on_lattice_distances():
    """Like with like: squared distances on a lattice 0.025 + 0.05 j (every gap holds a 0.01 grid point,
    none lies on one), and every value of a held-out fold also occurs in its training folds. Then the
    grid search and our all-midpoints search split the training pairs the same way and classify every
    held-out pair the same way, so the accuracies agree exactly."""
    rng = np.random.default_rng(7)
    n = 6000
    issame = np.zeros(n, dtype=bool)
    issame[rng.permutation(n)[: n // 2]] = True
    lattice = 0.025 + 0.05 * np.arange(60)  # 0.025 .. 2.975
    centre = np.where(issame, 1.0, 1.7)
    j = np.clip(np.rint((rng.normal(centre, 0.35) - 0.025) / 0.05), 10, 44).astype(int)  # 0.525 .. 2.225
    e1, e2 = _unit_pairs_at(lattice[j])
    dist, oracle = _oracle_calculate_roc(np.arange(0, 4, 0.01), e1, e2, issame)
    folds = insightface_kfold_folds(n)
    for fold in range(10):  # precondition of exact agreement, checked rather than assumed
        held_out, train = np.unique(dist[folds == fold]), np.unique(dist[folds != fold])
        assert np.isin(held_out, train).all()
    assert len(np.unique(dist)) == 35 and 0.6 < oracle.mean() < 0.95  # a real threshold search
    ours = kfold_accuracy(dist, issame, folds)
    np.testing.assert_allclose(ours.per_fold, oracle, rtol=0, atol=1e-9)
    assert abs(ours.mean - np.mean(oracle)) < 1e-9 and abs(ours.std - np.std(oracle)) < 1e-9


def test_kfold_accuracy_differs_from_the_grid_where_documented():
    """Off the lattice the two protocols may disagree, in the two ways the report documents:
    (1) a held-out distance strictly between two training distances: ours cuts at their midpoint,
        insightface at the first 0.01 grid point above the lower one;
    (2) two training distances inside one 0.01 grid cell: the grid cannot separate them."""
    # (1) training: same at 0.101, different at 0.191 (folds 1..9); held out: 0.105 (different) and 0.15 (same)
    train_d = np.array([0.101, 0.191] * 9)
    train_y = np.array([True, False] * 9)
    dist = np.concatenate([[0.105, 0.15], train_d])
    issame = np.concatenate([[False, True], train_y])
    folds = np.repeat(np.arange(10), 2)
    e1, e2 = _unit_pairs_at(dist)
    d_oracle, oracle = _oracle_calculate_roc(np.arange(0, 4, 0.01), e1, e2, issame)
    ours = kfold_accuracy(d_oracle, issame, folds)
    # insightface: threshold 0.11 → 0.105 "same" (wrong), 0.15 "different" (wrong): fold 0 scores 0.
    # ours: threshold (0.101 + 0.191) / 2 = 0.146 → 0.105 "same" (wrong), 0.15 "different" (wrong) too.
    assert oracle[0] == 0.0 and ours.per_fold[0] == 0.0
    # But move the held-out same pair to 0.13: insightface still rejects it (>= 0.11), ours accepts it.
    dist2 = dist.copy()
    dist2[1] = 0.13
    e1, e2 = _unit_pairs_at(dist2)
    d_oracle2, oracle2 = _oracle_calculate_roc(np.arange(0, 4, 0.01), e1, e2, issame)
    ours2 = kfold_accuracy(d_oracle2, issame, folds)
    assert oracle2[0] == 0.0 and ours2.per_fold[0] == 0.5
    np.testing.assert_allclose(ours2.per_fold[1:], oracle2[1:], atol=1e-12)
    # (2) same at 0.101, different at 0.104 in training: ours separates them (accuracy 1 on the held-out
    # copies), the grid cannot (its best threshold 0.11 or 0 gets half of them).
    dist3 = np.array([0.101, 0.104] * 10)
    issame3 = np.array([True, False] * 10)
    e1, e2 = _unit_pairs_at(dist3)
    d_oracle3, oracle3 = _oracle_calculate_roc(np.arange(0, 4, 0.01), e1, e2, issame3)
    ours3 = kfold_accuracy(d_oracle3, issame3, np.repeat(np.arange(10), 2))
    assert np.all(ours3.per_fold == 1.0) and np.all(oracle3 == 0.5)
