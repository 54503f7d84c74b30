"""What face detection + alignment costs in a cold run of the default benchmark (prints figures, not a test).

Embeds every demo image (benchmarks/.demo_data/images) with dlib's ResNet descriptor twice through the engine,
each time into an empty store: with its `dlib_150` alignment (dlib's HOG detector, 5-point chips, centre crop
where no face is found) and with `align = "none"`. The difference is the alignment's cost; it is set against
the wall time of a cold `pytest benchmarks/` (run here unless `--cold-run-s` gives one).

    python bench/align_cost.py [--workers 0] [--cold-run-s 36]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def embed_seconds(images: list[Path], align: str, workers: int) -> tuple[float, dict]:
    from pytest_facebench.engine.engine import Engine
    from pytest_facebench.engine.options import EngineOptions
    from pytest_facebench.storage.store import EmbeddingStore
    from pytest_facebench.zoo.dlib_resnet import DlibResNet

    with tempfile.TemporaryDirectory() as cache:
        store = EmbeddingStore(Path(cache))
        engine = Engine(EngineOptions(device="cpu", workers=workers, batch_size=32), store)
        model = DlibResNet(name="dlib", align=align, on_missing="center_crop")
        start = time.perf_counter()
        embeddings = engine.embed(model, images)
        seconds = time.perf_counter() - start
        store.close()
    return seconds, embeddings.stats.faces


def cold_run_seconds() -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable,
            "-m",
            "pytest",
            "benchmarks/",
            "-q",
            "-p",
            "no:cacheprovider",
            "--facebench-cache",
            f"{tmp}/cache",
            "--facebench-out",
            f"{tmp}/out",
            "--facebench-no-progress",
        ]
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, env=env, capture_output=True, check=False)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (default 0: in process)")
    parser.add_argument("--cold-run-s", type=float, default=None, help="skip the cold run; use this figure")
    args = parser.parse_args()
    subprocess.run([sys.executable, "benchmarks/demo_data.py"], cwd=ROOT, check=True, capture_output=True)
    images = sorted((ROOT / "benchmarks" / ".demo_data" / "images").glob("*.png"))
    aligned_s, faces = embed_seconds(images, "dlib_150", args.workers)
    plain_s, _ = embed_seconds(images, "none", args.workers)
    cold = args.cold_run_s if args.cold_run_s is not None else cold_run_seconds()
    cost = aligned_s - plain_s
    print(f"{len(images)} demo images, dlib ResNet descriptor, {args.workers} loader workers, CPU")
    print(f"  outcomes with dlib_150 (dlib_hog): {faces.get('outcomes')}")
    print(f"  embed with alignment:    {aligned_s:6.2f} s")
    print(f"  embed without alignment: {plain_s:6.2f} s")
    print(f"  detection + alignment:   {cost:6.2f} s = {1000 * cost / len(images):.1f} ms per image")
    print(f"  cold `pytest benchmarks/`: {cold:.1f} s; alignment is {100 * cost / cold:.1f} % of it")


if __name__ == "__main__":
    main()
