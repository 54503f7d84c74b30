"""Per-image time of face detection + alignment on the CPU, for each detector.

Runs on scikit-image's astronaut photo (one real face) resized to 250×250 (LFW's size) and at its own
512×512, after one warm-up call that loads the weights. Prints the median per-image milliseconds of
detection + arcface_112 alignment, then the alignment alone and a detection-cache hit.

    python bench/align_speed.py [--min-seconds 2] [--max-repeats 20] [--torch-threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DETECTORS = ("dlib_hog", "dlib_cnn", "dlib_cnn:upsample=0", "mtcnn")
SIZES = (250, 512)


def per_call_ms(call, min_seconds: float, max_repeats: int) -> tuple[float, int]:
    """Median milliseconds of `call()` over repeats (at least 3, until `min_seconds` or `max_repeats`)."""
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < min_seconds and len(times) < max_repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, len(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-seconds", type=float, default=2.0)
    parser.add_argument("--max-repeats", type=int, default=20)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="torch threads for MTCNN (DataLoader workers use 1); default: torch's own",
    )
    args = parser.parse_args()

    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    from PIL import Image
    from skimage import data

    from pytest_facebench.faces.align import align_image
    from pytest_facebench.faces.aligner import FaceAligner

    photo = Image.fromarray(data.astronaut()).convert("RGB")
    images = {size: photo if size == 512 else photo.resize((size, size), Image.Resampling.BILINEAR) for size in SIZES}
    print(
        f"CPU cores available: {len(os.sched_getaffinity(0))}, torch threads: {torch.get_num_threads()}, "
        f"load average at start: {os.getloadavg()[0]:.1f} (other work slows every figure)"
    )
    print("detection + arcface_112 alignment, per image (median):")
    print(f"  {'detector':<22}{'size':>6}{'faces':>7}{'ms':>10}{'repeats':>9}")
    for spec in DETECTORS:
        for size, image in images.items():
            aligner = FaceAligner("arcface_112", spec, on_missing="center_crop")
            aligner.load()
            found = aligner(image, key="warm-up")  # first call: weights and lazy imports
            ms, repeats = per_call_ms(lambda a=aligner, i=image: a(i, key="k"), args.min_seconds, args.max_repeats)
            print(f"  {spec:<22}{size:>6}{found.n_faces:>7}{ms:>10.1f}{repeats:>9}")

    print("alignment alone (MTCNN's detection on the 250×250 image), per image (median):")
    face = FaceAligner("arcface_112", "mtcnn")(images[250], key="k").face
    for alignment in ("arcface_112", "facenet_160", "dlib_150"):
        align_image(images[250], alignment, box=face.box, landmarks5=face.landmarks5)
        ms, repeats = per_call_ms(
            lambda a=alignment: align_image(images[250], a, box=face.box, landmarks5=face.landmarks5), 0.5, 200
        )
        print(f"  {alignment:<22}{ms:>10.2f} ms ({repeats} repeats)")

    with tempfile.TemporaryDirectory() as cache:
        cached = FaceAligner("arcface_112", "dlib_hog", cache_dir=Path(cache))
        cached(images[250], key="cached-image")
        ms, repeats = per_call_ms(lambda: cached(images[250], key="cached-image"), 0.5, 200)
        print(f"cache hit (read the detection entry + arcface_112 alignment): {ms:.2f} ms ({repeats} repeats)")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
