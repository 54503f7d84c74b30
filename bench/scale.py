"""Cold embedding runs at 5k, 20k and 50k distinct images (a script that prints figures, not a test).

For each size, in a fresh process: synthetic 48×48 PNGs generated on the fly, the pixels model (a 3,072-D layer),
the engine into an empty packed store. Prints wall time, images/s, peak RSS, the store's bytes and file count,
and the per-image overhead apart from the forward pass (hashing, loading, store writes, bookkeeping). Growth should
be linear in time and flat in memory.

    python bench/scale.py [--sizes 5000 20000 50000] [--workers 0]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(n: int, workers: int, folder: Path) -> dict:
    sys.path.insert(0, str(ROOT))
    import numpy as np
    from PIL import Image

    from pytest_facebench.engine.engine import Engine
    from pytest_facebench.engine.options import EngineOptions
    from pytest_facebench.storage.store import EmbeddingStore
    from pytest_facebench.zoo.pixels import Pixels

    images = folder / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = images / f"{i:06d}.png"
        Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(path, compress_level=1)
        paths.append(path)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    store = EmbeddingStore(folder / "cache")
    engine = Engine(EngineOptions(device="cpu", workers=workers, batch_size=256), store)
    start = time.perf_counter()
    embeddings = engine.embed(Pixels(name="px", size=32), paths)
    wall = time.perf_counter() - start
    store.close()
    files = [p for p in (folder / "cache").rglob("*") if p.is_file()]
    stats = embeddings.stats
    return {
        "images": n,
        "wall_s": wall,
        "images_per_s": n / wall,
        "forward_s": stats.forward_s,
        "load_s": stats.load_s,
        "overhead_ms_per_image": 1000 * (wall - stats.forward_s) / n,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mb": rss_before / 1024,
        "cache_bytes": sum(p.stat().st_size for p in files),
        "cache_files": len(files),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000, 50000])
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.workers, args.folder)))
        return
    print(
        f"{'images':>8}{'wall s':>9}{'img/s':>9}{'peak RSS MB':>13}{'cache MB':>10}{'files':>7}{'overhead ms/img':>17}"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            command = [sys.executable, __file__, "--child", str(n), "--workers", str(args.workers), "--folder", tmp]
            out = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
        print(
            f"{r['images']:>8}{r['wall_s']:>9.1f}{r['images_per_s']:>9.0f}{r['peak_rss_mb']:>13.0f}"
            f"{r['cache_bytes'] / 1e6:>10.1f}{r['cache_files']:>7}{r['overhead_ms_per_image']:>17.2f}"
        )


if __name__ == "__main__":
    main()
