"""`pairs = "lfw.bin"` in a grid: an `accuracy` task reads an insightface pack (both pickle encodings) with the
trust rule, caches its images by the pack's bytes, and scores `accuracy_kfold` with insightface's folds;
checked against an oracle of insightface's `calculate_roc` on the distances the run wrote. Bad packs are
one-line errors naming the pack and the item."""

from __future__ import annotations

import io
import json
import pickle
import re
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pack_helpers import py2_pickle
from PIL import Image

from pytest_facebench.data.formats import insightface_bin
from pytest_facebench.data.formats.insightface_bin import (
    PACK_CACHE_ENV,
    materialize_cached,
    pack_cache_root,
    pack_image_dir,
    read_pack,
)
from pytest_facebench.errors import ConfigError, DataError
from pytest_facebench.tasks.correlation import CorrelationTask
from pytest_facebench.tasks.verification import AccuracyTask

N_PAIRS = 60  # LFW-shaped: 10 folds of 6 pairs, each fold 3 same then 3 different (LFW: 300 and 300)
PACK_PROTOCOL = "10-fold (insightface .bin pack order: contiguous folds, threshold fit on the other 9)"


# ------------------------------------------------------------------------------ packs


def _encode(pixels: np.ndarray, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


def lfw_shaped(n_pairs: int = N_PAIRS, seed: int = 0) -> tuple[list[bytes], list[bool]]:
    """16×16 JPEG pairs in LFW's .bin order (per fold of 6: 3 same, 3 different). Each "identity" is a common
    template plus its own deviation, each image that plus noise, so the pixel model separates most (not all)
    pairs and the threshold search matters."""
    rng = np.random.default_rng(seed)
    template = rng.integers(60, 196, size=(16, 16, 3)).astype(float)
    faces = template + rng.normal(0, 30, size=(n_pairs, 16, 16, 3))
    images, issame = [], []
    for i in range(n_pairs):
        same = i % 6 < 3
        first = faces[i]
        second = first if same else faces[(i + 7) % n_pairs]
        for base in (first, second):
            noisy = np.clip(base + rng.normal(0, 60, size=base.shape), 0, 255).astype(np.uint8)
            images.append(_encode(noisy))
        issame.append(same)
    return images, issame


def pack_bytes(encoding: str, images: list[bytes], issame: list[bool]) -> bytes:
    if encoding == "python2":
        return py2_pickle(images, issame)
    return pickle.dumps((images, issame), protocol=4)


@pytest.fixture(scope="module")
def lfw() -> tuple[list[bytes], list[bool]]:
    return lfw_shaped()


@pytest.fixture
def pack_cache(tmp_path, monkeypatch) -> Path:
    """Every pack's images go under this test's folder, never ~/.cache."""
    root = tmp_path / "pack_cache"
    monkeypatch.setenv(PACK_CACHE_ENV, str(root))
    return root


# ------------------------------------------------------------------------------ oracle


def calculate_roc_oracle(dist: np.ndarray, actual_issame: np.ndarray, nrof_folds: int = 10) -> np.ndarray:
    """insightface `verification.calculate_roc` (pca=0) on the given per-pair distances: sklearn `KFold`
    without shuffling; per fold, the first threshold of the candidate list that maximizes the training
    accuracy (a pair is "same" iff `np.less(dist, threshold)`), applied to the held-out fold; returns the
    held-out accuracies (their mean and np.std are insightface's `accuracy.mean()` ± `accuracy.std()`).

    The one difference from insightface: the candidates. insightface searches `np.arange(0, 4, 0.01)` on the
    squared euclidean distances of L2-normalized embeddings (= 2 × our cosine distance); ours, fixed by the
    `accuracy` task (`stats.Roc.accuracy_threshold`), are -inf, the midpoints between consecutive distinct
    training distances, and +inf. The oracle searches that candidate set by brute force. Where the two
    candidate sets split the pairs differently (a 0.01 grid cell holding two training distances; a held-out
    distance between the grid point and the midpoint) insightface's number differs by design; both cases are
    pinned in tests/formats/test_formats_bin.py."""
    from sklearn.model_selection import KFold

    def accuracy_at(threshold: float, d: np.ndarray, same: np.ndarray) -> float:
        predict = np.less(d, threshold)
        return float(np.sum(predict & same) + np.sum(~predict & ~same)) / d.size

    accuracy = np.zeros(nrof_folds)
    for fold, (train, test) in enumerate(KFold(n_splits=nrof_folds, shuffle=False).split(np.arange(len(dist)))):
        u = np.unique(dist[train])
        thresholds = np.concatenate([[-np.inf], (u[:-1] + u[1:]) / 2, [np.inf]])
        train_acc = np.array([accuracy_at(t, dist[train], actual_issame[train]) for t in thresholds])
        accuracy[fold] = accuracy_at(thresholds[int(np.argmax(train_acc))], dist[test], actual_issame[test])
    return accuracy


# ------------------------------------------------------------------------------ grid helpers


def pack_task(name: str, pack: str, extra: str = "", trusted: bool = True) -> str:
    return f'''
[[tasks]]
name = "{name}"
type = "accuracy"
pairs = "{pack}"
n_boot = 50
{"trusted = true" if trusted else ""}
{extra}
'''


FLIP_MODEL = """
[[models]]
name = "pixels_flip"
factory = "pixels"
layers = ["output"]
kwargs = { size = 16, flip_test = true }
"""


def failure_line(result: pytest.RunResult, node: str) -> str:
    """The single line of `node`'s failure report (as in tests/plugin/test_bad_input.py)."""
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if line.startswith("_") and f" {node} " in line)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(("_", "="))), len(lines))
    body = [line for line in lines[start + 1 : end] if line.strip()]
    assert len(body) == 1, body
    return body[0]


# ------------------------------------------------------------------------------ through a grid


def test_grid_kfold_accuracy_is_insightface_calculate_roc(bench, lfw, pack_cache):
    """Both pickle encodings, with and without flip_test: `accuracy_kfold` ± `accuracy_kfold_std` equal the
    oracle's on the distances the run wrote, to 1e-9."""
    images, issame = lfw
    encodings = ("python2", "python3")
    for encoding in encodings:
        (bench.data / f"lfw_{encoding}.bin").write_bytes(pack_bytes(encoding, images, issame))
    tasks = "".join(pack_task(f"lfw_{e}", f"data/lfw_{e}.bin") for e in encodings)
    bench.grid(models=("pixels",), tasks=(), extra=FLIP_MODEL + tasks)
    bench.test_file()
    result = bench.run()
    result.assert_outcomes(passed=4)
    bench.assert_no_traceback(result)

    results = bench.results()
    labels = np.array(issame)
    for task in (f"lfw_{e}" for e in encodings):
        for model in ("pixels", "pixels_flip"):
            rows = results[(results["model"] == model) & (results["task"] == task)].set_index("metric")
            table = pd.read_csv(bench.out / "distances" / task / f"{model}.csv")
            assert list(table.columns[:5]) == ["pair", "img1", "img2", "label", "fold"]
            assert table["pair"].tolist() == list(range(N_PAIRS))
            assert table["label"].tolist() == labels.astype(int).tolist()
            assert table["fold"].tolist() == np.repeat(np.arange(10), 6).tolist()  # KFold(10) of 60 pairs
            dist = table["output"].to_numpy(dtype=float)
            oracle = calculate_roc_oracle(dist, labels)
            assert 0.5 < oracle.mean() < 1.0  # a real threshold search, neither trivial nor perfect
            assert abs(rows.loc["accuracy_kfold", "value"] - oracle.mean()) < 1e-9
            assert abs(rows.loc["accuracy_kfold_std", "value"] - np.std(oracle)) < 1e-9
            assert rows.loc["accuracy_kfold", "protocol"] == PACK_PROTOCOL
            assert rows.loc["accuracy_kfold", "n"] == N_PAIRS
    distances = bench.out / "distances" / "lfw_python2"
    flipped = pd.read_csv(distances / "pixels_flip.csv")["output"]
    assert not np.allclose(flipped, pd.read_csv(distances / "pixels.csv")["output"])  # the mirror images counted
    for model in ("pixels", "pixels_flip"):  # one pack, two encodings: the same images, the same distances
        assert pd.read_csv(distances / f"{model}.csv").equals(
            pd.read_csv(bench.out / "distances" / "lfw_python3" / f"{model}.csv")
        )

    # each pack's images were written once, by content, under the pack cache; its sha256 names the folder
    for encoding in encodings:
        pack = read_pack(bench.data / f"lfw_{encoding}.bin", trusted=True)
        folder = pack_image_dir(pack, pack_cache)
        assert folder.parent == pack_cache and folder.name == pack.sha256[:16]
        assert sorted(p.read_bytes() for p in folder.iterdir()) == sorted(set(images))
    assert not [p for p in pack_cache.iterdir() if p.name.startswith(".tmp-")]


def test_grid_reuses_the_cache_and_honours_images(bench, lfw, pack_cache):
    images, issame = lfw
    (bench.data / "lfw.bin").write_bytes(pack_bytes("python3", images, issame))
    bench.grid(
        models=("pixels",),
        tasks=(),
        extra=pack_task("lfw", "data/lfw.bin") + pack_task("lfw_here", "data/lfw.bin", 'images = "packimages"'),
    )
    bench.test_file()
    cache = bench.path / "facebench_cache"
    bench.run(cache=cache).assert_outcomes(passed=2)
    sha16 = read_pack(bench.data / "lfw.bin", trusted=True).sha256[:16]
    own = bench.path / "packimages" / sha16  # `images` with a pack: the root its images are cached under
    default = pack_cache / sha16
    assert len(list(own.iterdir())) == len(list(default.iterdir())) == 2 * N_PAIRS
    mtimes = {p: p.stat().st_mtime_ns for p in default.iterdir()}
    results = bench.results().set_index(["task", "metric"])
    assert results.loc[("lfw", "accuracy_kfold"), "value"] == results.loc[("lfw_here", "accuracy_kfold"), "value"]

    bench.run(cache=cache).assert_outcomes(passed=2)
    assert {p: p.stat().st_mtime_ns for p in default.iterdir()} == mtimes  # reused, nothing written again
    run = json.loads((bench.out / "run.json").read_text())
    assert run["models"]["pixels"]["cells_reused"] == 2  # a pack task's state is keyable: the cells come back


def test_grid_untrusted_pack_is_refused_and_a_known_one_runs(bench, lfw, pack_cache, monkeypatch):
    images, issame = lfw
    path = bench.data / "lfw.bin"
    path.write_bytes(pack_bytes("python3", images, issame))
    bench.grid(models=("pixels",), tasks=("verif",), extra=pack_task("lfw", "data/lfw.bin", trusted=False))
    bench.test_file()
    result = bench.run()
    result.assert_outcomes(passed=1, errors=1)
    line = failure_line(result, "ERROR at setup of test_x[pixels-lfw]")
    assert re.fullmatch(
        rf"DataError: task 'lfw': pack {re.escape(str(path))} \(sha256 [0-9a-f]{{64}}\) is not a known insightface "
        r"pack and loading it unpickles it; set trusted = true on the task's grid entry \(trusted=True in Python\) "
        r"to opt in",
        line,
    ), line
    assert not pack_cache.exists()  # refused before anything was unpickled or written
    bench.assert_no_traceback(result)

    sha = read_pack(path, trusted=True).sha256
    monkeypatch.setattr(insightface_bin, "known_pack_hashes", lambda: {sha: {"name": "lfw"}})
    bench.run().assert_outcomes(passed=2)


def test_grid_bad_packs_are_one_line_errors(bench, lfw, pack_cache):
    images, issame = lfw
    data = pickle.dumps((images, issame), protocol=4)
    (bench.data / "cut.bin").write_bytes(data[: data.index(images[12]) + len(images[12]) // 2])  # inside item 12
    (bench.data / "odd.bin").write_bytes(pickle.dumps((images + [images[0]], issame), protocol=4))
    broken = list(images)
    broken[9] = broken[9][:20]  # a JPEG header without scan data
    (bench.data / "undecodable.bin").write_bytes(pickle.dumps((broken, issame), protocol=4))
    extra = "".join(pack_task(name, f"data/{name}.bin") for name in ("cut", "odd", "undecodable"))
    bench.grid(models=("pixels",), tasks=("verif",), extra=extra + pack_task("absent", "data/absent.bin"))
    bench.test_file()
    result = bench.run()
    result.assert_outcomes(passed=1, errors=4)
    bench.assert_no_traceback(result)
    expected = {
        "cut": "truncated (the .* bytes end inside the pickle after 12 complete image item(s): item 12 or the labels",
        "odd": "121 images, an odd count; images 2i and 2i+1 form pair i (item 120 has no partner)",
        "undecodable": "image item 9 (pair 4) does not decode as an image",
        "absent": "file not found",
    }
    for name, fragment in expected.items():
        line = failure_line(result, f"ERROR at setup of test_x[pixels-{name}]")
        prefix = f"DataError: task '{name}': pack {bench.data / f'{name}.bin'}: "
        assert line.startswith(prefix), line
        assert re.search(re.escape(fragment).replace(r"\.\*", ".*"), line), line
    assert not [p for p in pack_cache.rglob(".tmp-*")]  # the undecodable pack left no half-written folder


def test_grid_pack_needs_no_images_key_but_a_pairs_file_does(bench):
    bench.grid(
        models=("pixels",),
        tasks=("verif",),
        extra='\n[[tasks]]\nname = "noimages"\ntype = "accuracy"\npairs = "data/verif.csv"\n',
    )
    bench.test_file()
    result = bench.run()
    result.assert_outcomes(passed=1, failed=1)  # the invalid entry is one failing grid item
    assert "missing required key 'images' (the folder the pairs file's image paths are relative to; only an " in (
        result.stdout.str()
    )


# ------------------------------------------------------------------------------ the task in Python


def _write_pack(path: Path, lfw, encoding: str = "python3") -> Path:
    path.write_bytes(pack_bytes(encoding, *lfw))
    return path


def test_task_from_python(tmp_path, lfw, pack_cache):
    path = _write_pack(tmp_path / "agedb_30.bin", lfw, "python2")
    task = AccuracyTask("agedb", path, trusted=True, n_boot=0).load()
    assert task.images_root == pack_cache / task.pack_sha256[:16]
    in_pack_order = [task.images[i] for i in task.pair_index.ravel()]  # pair i = images 2i, 2i + 1
    assert [p.read_bytes() for p in in_pack_order] == lfw[0] and len(task.images) == 2 * N_PAIRS
    assert task.labels.tolist() == lfw[1]
    assert task.kfold_protocol == PACK_PROTOCOL
    assert task.describe()["pairs_sha256"] == task.pack_sha256
    five = AccuracyTask("agedb5", path, trusted=True, folds=5, n_boot=0).load()
    assert five.folds.tolist() == np.repeat(np.arange(5), 12).tolist()
    assert five.kfold_protocol.startswith("5-fold (insightface .bin pack order")


def test_task_errors(tmp_path, lfw, pack_cache):
    path = _write_pack(tmp_path / "lfw.bin", lfw)
    with pytest.raises(DataError, match=r"holds 60 pair\(s\), fewer than folds = 61"):
        AccuracyTask("lfw", path, trusted=True, folds=61).load()
    with pytest.raises(DataError, match="which a 'correlation' task cannot read; use it with type = 'accuracy'"):
        CorrelationTask("sim", path, tmp_path).load()
    with pytest.raises(DataError, match="'images' is required: the folder the image paths of"):
        AccuracyTask("csv", tmp_path / "pairs.csv").load()
    with pytest.raises(ConfigError, match="trusted must be true or false"):
        AccuracyTask("lfw", path, trusted="yes")  # type: ignore[arg-type]
    empty = tmp_path / "empty.bin"
    empty.write_bytes(pickle.dumps(([], []), protocol=4))
    with pytest.raises(DataError, match="holds no pairs"):
        AccuracyTask("empty", empty, trusted=True).load()


def test_a_fold_holding_every_pair_of_a_class_is_an_error(tmp_path, lfw, pack_cache):
    images, issame = lfw
    only_first = [i < 3 for i in range(N_PAIRS)]  # every same pair in fold 0
    path = tmp_path / "skewed.bin"
    path.write_bytes(pickle.dumps((images, only_first), protocol=4))
    with pytest.raises(DataError, match=r"every same pair is in fold 0 \(pairs 0\.\.5 of the pack\)"):
        AccuracyTask("skewed", path, trusted=True).load()
    one_class_fold = list(issame)
    one_class_fold[3:6] = [True] * 3  # fold 0 holds only same pairs: an error naming the remedy...
    path.write_bytes(pickle.dumps((images, one_class_fold), protocol=4))
    with pytest.raises(DataError, match=r"held-out fold 0 \(pairs 0\.\.5 of the pack\) has no different \(0\) pairs"):
        AccuracyTask("skewed", path, trusted=True, n_boot=0).load()
    # ...unless folds = "contiguous" insists: scored and noted, as insightface does
    task = AccuracyTask("skewed", path, trusted=True, n_boot=0, folds="contiguous").load()
    rng = np.random.default_rng(0)
    metrics = {m.metric: m for m in task.score(rng.random(N_PAIRS))}
    assert "fold 0: held-out part has only label 1" in metrics["accuracy_kfold"].note


def test_a_pack_sorted_by_label_is_an_error_naming_the_remedy_and_stratified_folds_fix_it(tmp_path, lfw, pack_cache):
    images, issame = lfw
    order = sorted(range(N_PAIRS), key=lambda i: not issame[i])  # every same pair first, as a sorted export
    path = tmp_path / "sorted.bin"
    sorted_images = [images[2 * i + j] for i in order for j in (0, 1)]
    path.write_bytes(pickle.dumps((sorted_images, [issame[i] for i in order]), protocol=4))
    with pytest.raises(DataError) as error:
        AccuracyTask("sorted", path, trusted=True, n_boot=0).load()
    message = str(error.value)
    assert "held-out fold 0 (pairs 0..5 of the pack) has no different (0) pairs" in message
    assert 'folds = "stratified"' in message and 'folds = "contiguous" to insist' in message
    stratified = AccuracyTask("sorted", path, trusted=True, n_boot=0, folds="stratified").load()
    assert stratified.kfold_protocol.startswith("stratified 10-fold")
    for fold in range(10):
        assert set(stratified.labels[stratified.folds == fold]) == {True, False}
    insisted = AccuracyTask("sorted", path, trusted=True, n_boot=0, folds="contiguous").load()
    assert insisted.kfold_protocol == PACK_PROTOCOL
    with pytest.raises(ConfigError, match=r'folds must be a whole number >= 2, "stratified" or "contiguous"'):
        AccuracyTask("sorted", path, trusted=True, folds="sorted")


# ------------------------------------------------------------------------------ the cache folder


def test_cache_root_rule(monkeypatch, tmp_path):
    monkeypatch.setenv(PACK_CACHE_ENV, str(tmp_path / "mine"))
    assert pack_cache_root() == tmp_path / "mine"
    monkeypatch.delenv(PACK_CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert pack_cache_root() == tmp_path / "xdg" / "pytest-facebench" / "packs"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert pack_cache_root() == tmp_path / "home" / ".cache" / "pytest-facebench" / "packs"


def test_materialize_cached_is_atomic_and_shared(tmp_path, lfw):
    pack = read_pack(_write_pack(tmp_path / "lfw.bin", lfw), trusted=True)
    root = tmp_path / "root"
    results: list[list[Path]] = []
    errors: list[BaseException] = []

    def fill() -> None:
        try:
            results.append(materialize_cached(pack, root))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fill) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    folder = pack_image_dir(pack, root)
    assert all(paths == results[0] for paths in results) and {p.parent for p in results[0]} == {folder}
    assert [p.name for p in root.iterdir()] == [folder.name]  # no temporary folder left behind
    assert [p.read_bytes() for p in results[0]] == list(pack.images)
    results[0][3].unlink()  # a damaged cache folder is repaired, not trusted blindly
    assert materialize_cached(pack, root) == results[0] and results[0][3].read_bytes() == pack.images[3]


def test_materialize_cached_losing_the_race(tmp_path, lfw, monkeypatch):
    """Another process renames its complete folder into place between our fill and our rename."""
    pack = read_pack(_write_pack(tmp_path / "lfw.bin", lfw), trusted=True)
    root = tmp_path / "root"
    real_rename = insightface_bin.os.rename

    def rename_after_the_other(src, dst):
        insightface_bin.materialize(pack, dst)  # the winner's folder
        real_rename(src, dst)  # ENOTEMPTY: ours lost

    monkeypatch.setattr(insightface_bin.os, "rename", rename_after_the_other)
    paths = materialize_cached(pack, root)
    assert {p.parent for p in paths} == {root / pack.sha256[:16]}
    assert [p.name for p in root.iterdir()] == [pack.sha256[:16]]


def test_materialize_cached_unwritable_root(tmp_path, lfw):
    pack = read_pack(_write_pack(tmp_path / "lfw.bin", lfw), trusted=True)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DataError) as info:
        materialize_cached(pack, blocker / "packs")
    message = str(info.value)
    assert "\n" not in message and str(pack.path) in message and PACK_CACHE_ENV in message
