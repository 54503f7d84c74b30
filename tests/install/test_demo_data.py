"""Tests for the synthetic demo face data set (benchmarks/demo_data.py)."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

DEMO_DATA_PY = Path(__file__).resolve().parents[2] / "benchmarks" / "demo_data.py"


def _load_module():
    """Import benchmarks/demo_data.py by path (``benchmarks`` is not a package)."""
    name = "_facebench_demo_data_under_test"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, DEMO_DATA_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


demo = _load_module()

COLUMNS = {
    "verification.csv": ["img1", "img2", "label", "id1", "id2", "fold"],
    "similarity.csv": ["img1", "img2", "distance"] + [f"rater_{i}" for i in range(1, 7)],
    "conditions.csv": ["img1", "img2", "condition"],
    "inversion.csv": ["img1", "img2", "orientation"],
    "thatcher.csv": ["img1", "img2", "orientation"],
}


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


DERIVED = {"inverted", "thatcher", "thatcher_inverted"}  # the derived conditions the demo grid declares


def original(cell: str) -> str:
    """The file a pairs-file cell names: `inverted:a.png` → `a.png`."""
    condition, sep, rest = cell.partition(":")
    return rest if sep and condition in DERIVED else cell


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def pixels(root: Path, name: str) -> np.ndarray:
    return np.asarray(Image.open(root / "images" / name), dtype=np.float64)


def pixel_distance(root: Path, a: str, b: str) -> float:
    return float(np.linalg.norm(pixels(root, a) - pixels(root, b)))


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "data"
    t0 = time.perf_counter()
    assert demo.ensure_demo_data(root) == root
    elapsed = time.perf_counter() - t0
    assert elapsed < 30, f"generation took {elapsed:.1f}s"
    return root


# --------------------------------------------------------------------------- layout


def test_files_and_columns(data_root: Path) -> None:
    assert (data_root / "VERSION").read_text().strip() == demo.DEMO_DATA_VERSION
    for name, columns in COLUMNS.items():
        header, rows = read_csv(data_root / name)
        assert header == columns, name
        assert rows, name


def test_row_counts(data_root: Path) -> None:
    counts = {name: len(read_csv(data_root / name)[1]) for name in COLUMNS}
    assert counts["verification.csv"] == 120
    assert counts["similarity.csv"] >= 45
    assert counts["conditions.csv"] == 60
    assert counts["inversion.csv"] == 30
    assert counts["thatcher.csv"] == 20
    n_images = len(list((data_root / "images").glob("*.png")))
    assert 70 <= n_images <= 100  # the inverted and Thatcher faces are derived, not files


def test_referenced_images_decode(data_root: Path) -> None:
    referenced = set()
    for name in COLUMNS:
        for row in read_csv(data_root / name)[1]:
            referenced.update((original(row["img1"]), original(row["img2"])))
    on_disk = {p.name for p in (data_root / "images").iterdir()}
    assert referenced <= on_disk
    assert on_disk == referenced, "unreferenced files in images/"
    for name in sorted(referenced):
        with Image.open(data_root / "images" / name) as img:
            assert img.format == "PNG"
            assert img.mode == "RGB"
            assert img.size == (112, 112)
            img.load()
            assert not {k for k in img.info if k not in ("dpi", "gamma")}, img.info


# --------------------------------------------------------------------------- content


def test_verification_folds_and_labels(data_root: Path) -> None:
    _, rows = read_csv(data_root / "verification.csv")
    assert {r["label"] for r in rows} == {"0", "1"}
    assert sum(r["label"] == "1" for r in rows) == 60
    folds = [int(r["fold"]) for r in rows]
    assert sorted(set(folds)) == list(range(10))
    assert folds == sorted(folds), "folds are contiguous blocks"
    for fold in range(10):
        labels = {r["label"] for r in rows if int(r["fold"]) == fold}
        assert labels == {"0", "1"}, f"fold {fold}"
    for r in rows:
        same = r["id1"] == r["id2"]
        assert same == (r["label"] == "1")
        assert r["img1"].startswith(r["id1"]) and r["img2"].startswith(r["id2"])
        assert r["img1"] != r["img2"]
    pairs = [(r["img1"], r["img2"]) for r in rows]
    assert len(set(pairs)) == len(pairs)


@pytest.mark.parametrize("name", ["inversion.csv", "thatcher.csv"])
def test_orientations_balanced(data_root: Path, name: str) -> None:
    _, rows = read_csv(data_root / name)
    orientations = [r["orientation"] for r in rows]
    assert set(orientations) == {"upright", "inverted"}
    assert orientations.count("upright") == orientations.count("inverted")


def test_inverted_rows_derive_from_the_upright_rows(data_root: Path) -> None:
    """The inverted faces are the upright ones under the grid's `inverted` condition (rotate180, after alignment)."""
    _, rows = read_csv(data_root / "inversion.csv")
    upright = [r for r in rows if r["orientation"] == "upright"]
    inverted = [r for r in rows if r["orientation"] == "inverted"]
    assert len(upright) == len(inverted)
    for up, inv in zip(upright, inverted):
        assert (inv["img1"], inv["img2"]) == (f"inverted:{up['img1']}", f"inverted:{up['img2']}")


def test_thatcher_rows_derive_from_the_neutral_face(data_root: Path) -> None:
    _, rows = read_csv(data_root / "thatcher.csv")
    for r in rows:
        face = original(r["img1"])
        assert face.endswith("_neutral.png") and original(r["img2"]) == face
        if r["orientation"] == "upright":
            assert (r["img1"], r["img2"]) == (face, f"thatcher:{face}")
        else:
            assert (r["img1"], r["img2"]) == (f"inverted:{face}", f"thatcher_inverted:{face}")


def test_the_demo_grid_declares_the_derived_conditions() -> None:
    import tomllib

    grid = tomllib.loads((DEMO_DATA_PY.parent / "facebench.toml").read_text(encoding="utf-8"))
    tasks = {t["name"]: t for t in grid["tasks"]}
    assert tasks["inversion"]["derive"] == {"inverted": "rotate180"}
    assert tasks["thatcher"]["derive"] == {
        "inverted": "rotate180",
        "thatcher": "thatcherize",
        "thatcher_inverted": ["thatcherize", "rotate180"],
    }


def test_inversion_pairs_are_different_identities(data_root: Path) -> None:
    _, rows = read_csv(data_root / "inversion.csv")
    for r in rows:
        assert original(r["img1"])[:4] != original(r["img2"])[:4]


def test_similarity_ratings(data_root: Path) -> None:
    _, rows = read_csv(data_root / "similarity.csv")
    raters = np.array([[float(r[f"rater_{i}"]) for i in range(1, 7)] for r in rows])
    distance = np.array([float(r["distance"]) for r in rows])
    assert ((raters >= 0) & (raters <= 1)).all()
    np.testing.assert_allclose(distance, raters.mean(axis=1), atol=1e-4)
    # raters agree with each other but not perfectly
    corr = np.corrcoef(raters.T)[np.triu_indices(6, 1)]
    assert corr.min() > 0.5
    assert corr.max() < 0.999
    assert len({(r["img1"], r["img2"]) for r in rows}) == len(rows)


def test_conditions(data_root: Path) -> None:
    _, rows = read_csv(data_root / "conditions.csv")
    by_condition: dict[str, list[float]] = {}
    for r in rows:
        by_condition.setdefault(r["condition"], []).append(pixel_distance(data_root, r["img1"], r["img2"]))
    assert set(by_condition) == {"same_image_jitter", "same_identity", "different_identity"}
    assert all(len(v) == 20 for v in by_condition.values())
    means = {k: np.mean(v) for k, v in by_condition.items()}
    assert means["same_image_jitter"] < means["same_identity"] < means["different_identity"]


def test_raw_pixels_separate_identities_imperfectly(data_root: Path) -> None:
    _, rows = read_csv(data_root / "verification.csv")
    d = np.array([pixel_distance(data_root, r["img1"], r["img2"]) for r in rows])
    same = np.array([r["label"] == "1" for r in rows])
    assert d[same].mean() < d[~same].mean()
    best_accuracy = max(((d <= t) == same).mean() for t in d)
    assert 0.6 < best_accuracy < 1.0


# --------------------------------------------------------------------------- caching and determinism


def test_deterministic(data_root: Path, tmp_path: Path) -> None:
    other = demo.ensure_demo_data(tmp_path / "again")
    assert tree_hashes(other) == tree_hashes(data_root)


def test_second_call_is_noop(tmp_path: Path) -> None:
    root = demo.ensure_demo_data(tmp_path / "data")
    image = root / "images" / "id00_0.png"
    before = image.stat().st_mtime_ns
    time.sleep(0.01)
    assert demo.ensure_demo_data(root) == root
    assert image.stat().st_mtime_ns == before


def test_version_mismatch_regenerates(tmp_path: Path) -> None:
    root = demo.ensure_demo_data(tmp_path / "data")
    reference = tree_hashes(root)
    (root / "VERSION").write_text("outdated\n")
    (root / "stray.txt").write_text("left over")
    (root / "images" / "id00_0.png").unlink()
    demo.ensure_demo_data(root)
    assert tree_hashes(root) == reference
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "data.lock"]


def test_incomplete_dir_without_version_is_replaced(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "verification.csv").write_text("partial")
    demo.ensure_demo_data(root)
    assert demo.is_current(root)
    assert read_csv(root / "verification.csv")[0] == COLUMNS["verification.csv"]


def test_leftover_temp_dir_is_cleaned(tmp_path: Path) -> None:
    leftover = tmp_path / ".data.tmp-crashed"
    (leftover / "images").mkdir(parents=True)
    demo.ensure_demo_data(tmp_path / "data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "data.lock"]


def test_concurrent_calls(tmp_path: Path, data_root: Path) -> None:
    root = tmp_path / "shared"
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
        "from demo_data import ensure_demo_data; ensure_demo_data(Path(sys.argv[2]))"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(DEMO_DATA_PY.parent), str(root)]) for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert tree_hashes(root) == tree_hashes(data_root)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared", "shared.lock"]


def test_command_line(tmp_path: Path, data_root: Path) -> None:
    out = tmp_path / "cli"
    result = subprocess.run([sys.executable, str(DEMO_DATA_PY), str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert tree_hashes(out) == tree_hashes(data_root)
