"""IJB-C-sized template building and 1:1 pair scoring on synthetic features: time and peak memory.

    python bench/ijb_scale.py                        # IJB-C shape: 469,375 images, 23,124 templates, 15.7 M pairs
    python bench/ijb_scale.py --uniform-pairs        # pairs without IJB's gallery x probe structure (worst case)
    python bench/ijb_scale.py --pairs 2000000 --io   # fewer pairs; also time reading a pair file of that size

Prints one line per stage: wall time, RSS at the stage's start and the stage's peak RSS (the kernel's
high-water mark, reset before each stage through /proc/self/clear_refs; where that is not allowed, the
process's peak so far from resource.getrusage). Features are random (the kernels' cost does not depend on values).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_facebench.data.templates import score_template_pairs, template_features


def rss_mb() -> float:
    """Current resident set size (MB)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    """The process's peak RSS so far (MB), as resource.getrusage reports it."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def reset_stage_peak() -> bool:
    """Reset the kernel's RSS high-water mark (VmHWM) so a stage's own peak can be read (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def stage_peak_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def stage(name: str, fn, *args, **kwargs):
    """Run one stage; print wall time, RSS at its start and its peak RSS."""
    before = rss_mb()
    own_peak = reset_stage_peak()
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    elapsed = time.perf_counter() - start
    peak = stage_peak_mb() if own_peak else peak_mb()
    print(f"{name:<44s} {elapsed:7.2f} s   RSS at start {before:6.0f} MB   peak RSS {peak:6.0f} MB", flush=True)
    return out


def ijb_like_pairs(rng: np.random.Generator, template_ids: np.ndarray, n_gallery: int, n_pairs: int) -> np.ndarray:
    """IJB's 1:1 list pairs gallery (enrolment) templates with probe templates: IJB-C's 3,531 + 19,593 =
    23,124 templates and 15.66 M of the 69.2 M gallery x probe pairs (IJB-B: 1,845 x 10,270, 8.0 M).
    Each gallery x probe cell is kept with the same probability, then the list is shuffled."""
    gallery, probes = template_ids[:n_gallery], template_ids[n_gallery:]
    keep = n_pairs / (len(gallery) * len(probes))
    parts = []
    for g0 in range(0, len(gallery), 256):
        mask = rng.random((min(256, len(gallery) - g0), len(probes))) < keep
        gi, pi = np.nonzero(mask)
        parts.append(np.stack([gallery[g0 + gi], probes[pi]], axis=1))
    pairs = np.concatenate(parts)
    return pairs[rng.permutation(len(pairs))]


def synthetic_ijb(n_images: int, n_templates: int, n_pairs: int, dim: int, seed: int, n_gallery: int | None):
    """Template/media structure like IJB-C's: ~20 images per template in up to 8 medias (video frames)."""
    rng = np.random.default_rng(seed)
    template_of_image = np.sort(rng.integers(0, n_templates, size=n_images))
    template_of_image[:n_templates] = np.arange(n_templates)  # every template has an image
    media_of_image = template_of_image * 8 + rng.integers(0, 8, size=n_images)  # up to 8 medias per template
    template_ids = rng.choice(np.arange(1, 10 * n_templates), size=n_templates, replace=False)
    features = np.empty((n_images, dim), dtype=np.float32)
    for start in range(0, n_images, 65536):
        block = rng.standard_normal(size=(min(65536, n_images - start), dim), dtype=np.float32)
        features[start : start + len(block)] = block
    faceness = rng.uniform(0.1, 1.0, size=n_images).astype(np.float32)
    if n_gallery:
        pairs = ijb_like_pairs(rng, template_ids, n_gallery, n_pairs)
    else:  # worst case for the scorer: pairs uniform over all templates x all templates
        pairs = template_ids[rng.integers(0, n_templates, size=(n_pairs, 2))]
    return features, template_ids[template_of_image], media_of_image, faceness, pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=469_375)
    parser.add_argument("--templates", type=int, default=23_124)
    parser.add_argument("--pairs", type=int, default=15_658_489)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--gallery-templates", type=int, default=3_531, help="templates on the pairs' first side")
    parser.add_argument("--uniform-pairs", action="store_true", help="pairs uniform over all templates (worst case)")
    parser.add_argument("--chunk", type=int, default=1 << 20, help="pairs scored per step")
    parser.add_argument("--float64", action="store_true", help="float64 template features (insightface's dtype)")
    parser.add_argument("--io", action="store_true", help="also write and read back a pair file of --pairs lines")
    args = parser.parse_args()

    print(
        f"IJB scale: {args.images:,} images x {args.dim}-D, {args.templates:,} templates, {args.pairs:,} pairs; "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; numpy {np.__version__}",
        flush=True,
    )
    feats, templates, medias, faceness, pairs = stage(
        "synthetic inputs",
        synthetic_ijb,
        args.images,
        args.templates,
        args.pairs,
        args.dim,
        0,
        None if args.uniform_pairs else args.gallery_templates,
    )
    dtype = np.float64 if args.float64 else np.float32
    ids, tfeats = stage(
        f"template_features (use_faceness, {np.dtype(dtype).name})",
        template_features,
        feats,
        templates,
        medias,
        faceness=faceness,
        use_faceness=True,
        dtype=dtype,
    )
    ids, tfeats = stage(
        "template_features (use_norm=False)", template_features, feats, templates, medias, use_norm=False, dtype=dtype
    )
    kind = "uniform pairs" if args.uniform_pairs else f"{args.gallery_templates:,} x rest"
    scores = stage(f"score_template_pairs ({kind})", score_template_pairs, tfeats, ids, pairs, chunk=args.chunk)
    gathered = stage(
        "score_template_pairs (row gathers only)",
        score_template_pairs,
        tfeats,
        ids,
        pairs,
        chunk=args.chunk,
        dense_ratio=0.0,
    )
    print(
        f"  {len(scores) / 1e6:.2f} M scores; max |dense - gathered| = {np.abs(scores - gathered).max():.2e}",
        flush=True,
    )
    if args.io:
        from pytest_facebench.data.formats.ijb import read_template_pairs

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "ijbc_template_pair_label.txt"
            labels = (np.arange(len(pairs)) % 800 == 0).astype(np.int64)

            def write() -> None:
                import pandas as pd

                pd.DataFrame({"a": pairs[:, 0], "b": pairs[:, 1], "c": labels}).to_csv(
                    path, sep=" ", header=False, index=False
                )

            stage("write the pair file (pandas)", write)
            print(f"  {path.stat().st_size / 2**20:.0f} MB", flush=True)
            frame = stage("read_template_pairs", read_template_pairs, path)
            assert len(frame) == len(pairs)


if __name__ == "__main__":
    main()
