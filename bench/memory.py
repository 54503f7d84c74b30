"""Peak RSS of a task that extracts ALL VGG16 layers (flattened, or with --pooling avg), for growing
image counts.

Bounded memory means the peak does not grow with the number of images: wide layers stream to the
on-disk store, distances are computed in chunks, and the batch shrinks to keep one batch's pooled
outputs under `engine.BATCH_BYTES`. Each size runs in a fresh process (ru_maxrss is per process).

    python bench/memory.py --images 16 64 --pairs-per-image 3
    python bench/memory.py --images 2000 --pooling avg    # flattened, 2,000 images need ~220 GB of disk
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(n_images: int, pairs_per_image: int, pooling: str, workdir: Path) -> dict:
    sys.path.insert(0, str(ROOT))
    import numpy as np
    from PIL import Image
    from torchvision.models import vgg16

    from pytest_facebench.engine.engine import Engine, EngineOptions
    from pytest_facebench.engine.evaluate import evaluate_cell
    from pytest_facebench.storage.store import EmbeddingStore
    from pytest_facebench.tasks import AccuracyTask
    from pytest_facebench.zoo.vgg16 import Vgg16

    images = workdir / "images"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n_images):
        Image.fromarray(rng.integers(0, 255, (250, 250, 3), dtype=np.uint8)).save(images / f"{i}.jpg")
    n_pairs = n_images * pairs_per_image
    a, b = rng.integers(0, n_images, n_pairs), rng.integers(0, n_images, n_pairs)
    lines = ["img1,img2,label"] + [f"{x}.jpg,{y}.jpg,{i % 2}" for i, (x, y) in enumerate(zip(a, b))]
    (workdir / "pairs.csv").write_text("\n".join(lines) + "\n")
    layers = [name for name, module in vgg16().named_modules() if name and not list(module.children())]  # 39
    engine = Engine(EngineOptions(device="cpu", batch_size=32, workers=1), EmbeddingStore(workdir / "cache"))
    model = Vgg16(name="vgg16_all", layers=layers, device="cpu", pooling=pooling)
    task = AccuracyTask("mem", workdir / "pairs.csv", images).load()
    start = time.perf_counter()
    result = evaluate_cell(engine, model, task)
    engine.store.close()
    disk = sum(p.stat().st_size for p in (workdir / "cache").rglob("*.emb"))
    return {
        "images": n_images,
        "pairs": n_pairs,
        "layers": len(layers),
        "pooling": pooling,
        "seconds": time.perf_counter() - start,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
        "cache_gb": disk / 1024**3,
        "records": len(result.records),
        "batch_size": result.stats["embedding"]["batch_size"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--pairs-per-image", type=int, default=3)
    parser.add_argument("--pooling", default="flatten", choices=["flatten", "avg"])
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "memory.json")
    args = parser.parse_args()
    if args.child is not None:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(one_run(args.child, args.pairs_per_image, args.pooling, Path(tmp))))
        return
    rows = []
    for n in args.images:
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                str(n),
                "--pairs-per-image",
                str(args.pairs_per_image),
                "--pooling",
                args.pooling,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(
            f"{r['images']:6d} images {r['pairs']:6d} pairs {r['layers']} layers ({r['pooling']}): peak RSS {r['peak_rss_gb']:.2f} GB, "
            f"cache {r['cache_gb']:.1f} GB on disk, batch {r['batch_size']}, {r['seconds']:.0f} s",
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
