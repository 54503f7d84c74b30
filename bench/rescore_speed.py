"""Rescoring from cached embeddings vs an unchanged rerun (a script that prints figures, not a test).

Builds the 6,000-pair accuracy task of issue 19 (2,000 distinct 250×250 JPEGs, a pairs CSV, half same and
half different; `--ids` adds `id1`/`id2` columns, so folds are identity-disjoint and the bootstrap resamples
identities) with the `pixels` model (64 × 64 × 3 = 12,288 features), in a temporary project. One cold run
fills the embedding and cell caches; then, alternately, `--runs` unchanged reruns (the cell is reused) and
`--runs` reruns with `--facebench-rescore` (embeddings from the cache, the cell scored again: pair
distances, k-fold, bootstrap). Prints each wall time, both medians and rescore / unchanged (issue 19's target
on the 2-core CPU: at most 1.3), by wall time and by CPU time (user + system: the fairer figure on a machine
shared with other work). `--profile` also prints a cProfile of one in-process rescore of the cell (the warm
path: `evaluate_cached` with `warm.WarmEngine`).

    python bench/rescore_speed.py --runs 5
    python bench/rescore_speed.py --runs 3 --profile
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_facebench.engine.threads import scoring_threads  # noqa: E402

GRID = """\
[[models]]
name = "pixels"
factory = "pixels"
layers = ["output"]
kwargs = {{ size = 64 }}

[[tasks]]
name = "pairs6k"
type = "accuracy"
pairs = "pairs.csv"
images = "images"
n_boot = {n_boot}
"""

TEST = """\
def test_accuracy(model, accuracy_task, facebench):
    facebench.evaluate(model, accuracy_task)
"""


def _make_jpeg(args: tuple[Path, int]) -> None:
    path, seed = args
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((250, 250), Image.BICUBIC)
    noise = rng.normal(0, 6, (250, 250, 3))
    Image.fromarray(np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8)).save(
        path, quality=90
    )


def make_project(root: Path, n_images: int, n_pairs: int, ids: bool, n_boot: int) -> Path:
    """The grid, a test file, `n_images` JPEGs and a pairs CSV (labels alternate) under `root`."""
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    with Pool(min(4, os.cpu_count() or 1)) as pool:
        pool.map(_make_jpeg, [(images / f"img_{i:05d}.jpg", i) for i in range(n_images)], chunksize=64)
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, n_images, n_pairs), rng.integers(0, n_images, n_pairs)
    labels = np.arange(n_pairs) % 2
    if ids:
        person = np.arange(n_images) // 4  # 4 images an identity
        lines = ["img1,img2,label,id1,id2"] + [
            f"img_{x:05d}.jpg,img_{y:05d}.jpg,{lab},p{person[x]},p{person[y]}" for x, y, lab in zip(a, b, labels)
        ]
    else:
        lines = ["img1,img2,label"] + [f"img_{x:05d}.jpg,img_{y:05d}.jpg,{lab}" for x, y, lab in zip(a, b, labels)]
    (root / "pairs.csv").write_text("\n".join(lines) + "\n")
    (root / "facebench.toml").write_text(GRID.format(n_boot=n_boot))
    (root / "test_pairs.py").write_text(TEST)
    return root


def timed_run(project: Path, extra: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, of the pytest process and its children)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "test_pairs.py",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:hypothesispytest",
        "--facebench-config",
        "facebench.toml",
        "--facebench-cache",
        "cache",
        "--facebench-out",
        "out",
        "--facebench-device",
        "cpu",
        "--facebench-no-progress",
        *extra,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if result.returncode != 0:
        raise SystemExit(f"pytest failed ({result.returncode}):\n{result.stdout[-3000:]}{result.stderr[-2000:]}")
    return elapsed, cpu


def profile_scoring(project: Path) -> None:
    """cProfile of `evaluate_cell` on cached embeddings (the in-process part of a rescore)."""
    import cProfile
    import pstats

    sys.path.insert(0, str(ROOT))
    from pytest_facebench.engine.evaluate import evaluate_cached
    from pytest_facebench.engine.options import EngineOptions
    from pytest_facebench.engine.warm import WarmEngine
    from pytest_facebench.storage.store import EmbeddingStore
    from pytest_facebench.tasks import AccuracyTask
    from pytest_facebench.zoo.pixels import Pixels

    options = EngineOptions(device="cpu")
    store = EmbeddingStore(project / "cache")
    model = Pixels(name="pixels", layers=["output"], size=64)

    def rescore() -> None:
        task = AccuracyTask("pairs6k", project / "pairs.csv", project / "images")
        evaluate_cached(_no_engine, options, None, model, task, warm=lambda: WarmEngine(options, store))

    rescore()  # warm imports and the OS file cache
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    rescore()
    profiler.disable()
    print(f"\nin-process load + rescore of the cell: {time.perf_counter() - started:.2f} s")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    store.close()


def _no_engine() -> None:
    raise SystemExit("the warm path declined the cell: its embeddings are not all in the cache")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="reruns of each kind (default 5)")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--pairs", type=int, default=6000)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--ids", action="store_true", help="identity columns (identity-disjoint folds, cluster CIs)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of one in-process rescore")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="facebench-rescore-") as tmp:
        project = make_project(Path(tmp), args.images, args.pairs, args.ids, args.n_boot)
        cold, _ = timed_run(project, [])
        print(f"cold: {cold:.2f} s")
        plain: list[tuple[float, float]] = []
        rescore: list[tuple[float, float]] = []
        for i in range(args.runs):
            plain.append(timed_run(project, []))
            rescore.append(timed_run(project, ["--facebench-rescore"]))
            print(
                f"run {i + 1}: unchanged {plain[-1][0]:.2f} s (CPU {plain[-1][1]:.2f} s), "
                f"--facebench-rescore {rescore[-1][0]:.2f} s (CPU {rescore[-1][1]:.2f} s)",
                flush=True,
            )
        if args.profile:
            profile_scoring(project)
    p, r = statistics.median(w for w, _ in plain), statistics.median(w for w, _ in rescore)
    pc, rc = statistics.median(c for _, c in plain), statistics.median(c for _, c in rescore)
    print(
        f"{args.pairs} pairs over {args.images} images (pixels, {args.n_boot} resamples"
        f"{', identities' if args.ids else ''}; {scoring_threads()} scoring thread(s), load {os.getloadavg()[0]:.1f}): "
        f"median unchanged rerun {p:.2f} s, "
        f"median --facebench-rescore {r:.2f} s, rescore / unchanged = {r / p:.2f} (target <= 1.3); "
        f"CPU time {pc:.2f} s vs {rc:.2f} s = {rc / pc:.2f} (the wall ratio on a machine shared with other work)"
    )
    if args.json:
        figures = {
            "cold_s": cold,
            "unchanged_s": [w for w, _ in plain],
            "rescore_s": [w for w, _ in rescore],
            "unchanged_cpu_s": [c for _, c in plain],
            "rescore_cpu_s": [c for _, c in rescore],
            "ratio": r / p,
            "cpu_ratio": rc / pc,
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
