"""1:N search at MegaFace scale on CPU: 10k probes x 1M distractors (512-D float32 memmap, ~2 GB).

    python bench/topk_scale.py                                   # 10,000 x 1,000,000, k = 10
    python bench/topk_scale.py --gallery 200000 --probes 2000    # a quicker run
    python bench/topk_scale.py --what scan                       # only the identification task's own scan

Writes the distractors to a temporary .npy memmap, then times `search.topk` over it (`--what topk`), and
`search.scan_mates`, the exact chunked rank scan the `identification` task runs, with one mate per probe
in front of the distractors (`--what scan`; both by default), and prints for each time,
throughput, peak RSS during the search (the kernel's high-water mark, reset before it; resource.getrusage
where that is unavailable; the memmap's cached file pages count while resident), the peak of anonymous
memory (what the search allocates, sampled), and a projection to one H200 from stated assumptions.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_facebench.data.search import scan_mates, topk

# H200 SXM figures assumed for the projection (NVIDIA data sheet): dense FP32 (no tensor cores) and
# TF32 tensor-core rates, HBM3e bandwidth, and a practical PCIe Gen5 x16 host-to-device rate.
H200_FP32_FLOPS = 67e12
H200_TF32_FLOPS = 495e12
H200_HBM_BYTES_S = 4.8e12
PCIE_BYTES_S = 25e9
PAGE_CACHE_BYTES_S = 5e9  # reading the memmap from the host's page cache (warm); a cold NVMe read is slower


def peak_mb() -> float:
    """Peak RSS (MB): the kernel's high-water mark VmHWM (reset by reset_peak()), else resource.getrusage."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> None:
    """Reset the kernel's RSS high-water mark, so the next peak is the search's own (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def rss_parts_mb() -> tuple[float, float]:
    """(anonymous, file-backed) resident MB now: the search's own arrays vs the memmap's cached pages."""
    values = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("RssAnon:", "RssFile:")):
                values[line.split(":")[0]] = int(line.split()[1]) / 1024
    return values.get("RssAnon", float("nan")), values.get("RssFile", float("nan"))


class AnonPeak(threading.Thread):
    """Samples the anonymous RSS every 50 ms: its maximum is the memory the search itself allocates."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak, self.stop = 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_parts_mb()[0])
            time.sleep(0.05)


def write_distractors(path: Path, rows: int, dim: int, seed: int) -> np.memmap:
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, dim))
    for start in range(0, rows, 65536):
        out[start : start + 65536] = rng.standard_normal((min(65536, rows - start), dim), dtype=np.float32)
    out.flush()
    del out
    return np.load(path, mmap_mode="r")


class GalleryRows:
    """Rows 0..len(head)-1 from an in-memory array (probes, then their mates), the rest from the distractors'
    memmap: what `scan_mates` reads, indexed by row arrays as it indexes the engine's stored rows."""

    def __init__(self, head: np.ndarray, tail: np.ndarray):
        self.head, self.tail = head, tail
        self.shape = (len(head) + len(tail), head.shape[1])

    def __getitem__(self, index: np.ndarray) -> np.ndarray:
        index = np.asarray(index)
        out = np.empty((len(index), self.shape[1]), dtype=np.float32)
        front = index < len(self.head)
        out[front] = self.head[index[front]]
        out[~front] = self.tail[index[~front] - len(self.head)]
        return out


def measure(label: str, run, work: float) -> object:
    """Time `run()`, printing time, throughput and memory (peak RSS, sampled anonymous peak)."""
    anon_before, _ = rss_parts_mb()
    reset_peak()
    sampler = AnonPeak()
    sampler.start()
    start = time.perf_counter()
    result = run()
    elapsed = time.perf_counter() - start
    sampler.stop.set()
    sampler.join()
    print(f"{label}: {elapsed:.1f} s, {work / elapsed / 1e9:.2f} G distances/s", flush=True)
    print(
        f"  peak RSS {peak_mb():.0f} MB (VmHWM; includes the memmap's cached file pages, "
        f"{rss_parts_mb()[1]:.0f} MB resident now); anonymous memory peak {sampler.peak:.0f} MB "
        f"(sampled; {anon_before:.0f} MB before)",
        flush=True,
    )
    return result


def projection(probes: int, gallery: int, dim: int, k: int) -> None:
    flop = 2.0 * probes * gallery * dim
    # the score matrix is written once and read by the threshold compare (plus top-k on the first chunk)
    score_bytes = 2 * 4.0 * probes * gallery
    gallery_bytes = 4.0 * gallery * dim
    fp32 = flop / H200_FP32_FLOPS
    tf32 = flop / H200_TF32_FLOPS
    hbm = score_bytes / H200_HBM_BYTES_S
    feed = gallery_bytes / PCIE_BYTES_S + gallery_bytes / PAGE_CACHE_BYTES_S
    print("H200 projection (engine='torch', device='cuda'; assumptions, not a measurement):")
    print(
        f"  matmul {flop / 1e12:.1f} TFLOP: {fp32:.2f} s at {H200_FP32_FLOPS / 1e12:.0f} TFLOP/s FP32 "
        f"({tf32:.3f} s at {H200_TF32_FLOPS / 1e12:.0f} TFLOP/s if TF32 is allowed)"
    )
    print(f"  score traffic {score_bytes / 1e9:.0f} GB over HBM at {H200_HBM_BYTES_S / 1e12:.1f} TB/s: {hbm:.3f} s")
    print(
        f"  gallery {gallery_bytes / 1e9:.1f} GB from page cache ({PAGE_CACHE_BYTES_S / 1e9:.0f} GB/s) and over PCIe "
        f"({PCIE_BYTES_S / 1e9:.0f} GB/s): {feed:.2f} s, overlappable with compute only by a prefetching reader"
    )
    print(
        f"  => about {max(fp32, hbm) + feed:.1f} s FP32 (the sequential loop adds the feed to the compute), "
        f"{max(tf32, hbm) + feed:.1f} s with TF32; merges of ~P*k*(1 + ln(G/chunk)) candidates run on the CPU"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=10_000)
    parser.add_argument("--gallery", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--chunk-rows", type=int, default=32768)
    parser.add_argument("--probe-rows", type=int, default=2048)
    parser.add_argument("--what", choices=("topk", "scan", "both"), default="both", help="what to time")
    parser.add_argument("--dir", default=None, help="where to write the memmap (default: a temporary directory)")
    args = parser.parse_args()
    print(
        f"top-k scale: {args.probes:,} probes x {args.gallery:,} distractors x {args.dim}-D float32, k={args.k}; "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        start = time.perf_counter()
        gallery = write_distractors(Path(tmp) / "distractors.npy", args.gallery, args.dim, 0)
        size = (Path(tmp) / "distractors.npy").stat().st_size
        print(f"wrote the memmap: {size / 2**30:.2f} GiB in {time.perf_counter() - start:.1f} s", flush=True)
        probes = np.random.default_rng(1).standard_normal((args.probes, args.dim), dtype=np.float32)
        work = float(args.probes) * args.gallery
        if args.what in ("topk", "both"):
            scores, _indices = measure(
                "topk (numpy, CPU, float32)",
                lambda: topk(probes, gallery, args.k, chunk_rows=args.chunk_rows, probe_rows=args.probe_rows),
                work,
            )
            print(f"  result {scores.shape}, best score {scores[:, 0].mean():.4f} on average", flush=True)
        if args.what in ("scan", "both"):
            noise = np.random.default_rng(2).standard_normal(probes.shape, dtype=np.float32)
            # one mate per probe identity, at cosine ~0.24 from it: near the best of a million random distractors
            mates = probes + 4.0 * noise
            rows = GalleryRows(np.concatenate([probes, mates]), gallery)
            n = args.probes
            codes = np.arange(n)
            scan = measure(
                "scan_mates (identification's exact ranks, torch CPU, float64)",
                lambda: scan_mates(
                    rows,
                    np.arange(n),
                    np.arange(n, 2 * n + args.gallery),
                    codes,
                    np.concatenate([codes, np.full(args.gallery, -1)]),
                    distance="cosine",
                ),
                float(n) * (n + args.gallery),
            )
            print(
                f"  rank-1 {np.mean(scan.ranks == 1):.3f}, median rank {np.median(scan.ranks):.0f} "
                f"({n:,} probes, {n:,} mates + {args.gallery:,} distractors)",
                flush=True,
            )
    projection(args.probes, args.gallery, args.dim, args.k)


if __name__ == "__main__":
    main()
