"""Scale of the packed embedding store (`pytest_facebench/store.py`): a script that prints figures.

For each layer width and row count, in a fresh process (ru_maxrss is per process), it writes N
synthetic float32 rows under one layer key (40-hex content hashes, like the engine's), closes, then
with a new store object: checks the cache hit of all N (`found`), reads a random 10% subset and all rows
(`get_many`, 4,096 at a time) and 2,000 single `get`s. It prints wall times, rows/s, peak RSS (after writing, and in all: the reads return
arrays of 10% of N rows and of 4,096 rows), bytes and
files on disk, and the per-row cost of each part: hashing the id, building a record (CRC32), the index
lookup, and the write (including fdatasync). (The one-file-per-row store it replaced wrote 400-530 rows/s
and one file per row on this machine.)

    python bench/store_scale.py                              # 5k, 20k, 50k rows of 3,072-D and 512-D
    python bench/store_scale.py --dir /shared/nfs/scratch    # measure on the filesystem you will use
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEY = "0123456789abcdef0123456789abcdef"


def image_hash(i: int) -> str:
    return hashlib.blake2b(i.to_bytes(8, "little"), digest_size=20).hexdigest()


def disk_usage(folder: Path) -> tuple[int, int]:
    files = size = 0
    for parent, _, names in os.walk(folder):
        for name in names:
            files += 1
            size += os.stat(os.path.join(parent, name)).st_size
    return files, size


def one_case(dim: int, n: int, folder: Path, legacy: bool) -> dict:
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from pytest_facebench.storage.store import ShardStore, record_header, row_id

    store_class = ShardStore
    rng = np.random.default_rng(0)
    base = rng.standard_normal((64, dim)).astype(np.float32)  # rows are made on the fly: RSS is the store's
    hashes = [image_hash(i) for i in range(n)]

    started = time.perf_counter()
    store = store_class(folder)
    for i, h in enumerate(hashes):
        store.put(KEY, h, base[i % 64] + np.float32(i))
    store.close()
    write_s = time.perf_counter() - started
    write_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    files, size = disk_usage(folder)

    store = store_class(folder)
    result = {
        "dim": dim,
        "rows": n,
        "store": "v1 (legacy)" if legacy else "v2 (packed)",
        "write_s": write_s,
        "write_rows_per_s": n / write_s,
        "write_MB_per_s": n * dim * 4 / 1e6 / write_s,
        "write_peak_rss_MB": write_peak,
        "files": files,
        "bytes": size,
        "overhead_bytes_per_row": (size - n * dim * 4) / n,
    }
    started = time.perf_counter()
    hit = store.contains_all(KEY, hashes)
    result["hit_check_s"] = time.perf_counter() - started
    assert hit, "rows missing after close"

    sample = sorted(rng.choice(n, size=max(1, n // 10), replace=False).tolist())
    started = time.perf_counter()
    rows, found = store.get_many(KEY, [hashes[i] for i in sample])
    assert found.all()
    result["subset_read_s"] = time.perf_counter() - started
    assert np.array_equal(rows[-1], base[sample[-1] % 64] + np.float32(sample[-1]))

    started = time.perf_counter()
    for start in range(0, n, 4096):
        chunk = hashes[start : start + 4096]
        _, found = store.get_many(KEY, chunk)
        assert found.all()
    result["full_read_s"] = time.perf_counter() - started
    result["full_read_rows_per_s"] = n / result["full_read_s"]
    result["full_read_MB_per_s"] = n * dim * 4 / 1e6 / result["full_read_s"]

    singles = hashes[: min(n, 2000)]
    started = time.perf_counter()
    for h in singles:
        store.get(KEY, h)
    result["get_us_per_row"] = (time.perf_counter() - started) / len(singles) * 1e6
    store.close()

    # where the time of a row goes
    if n:
        started = time.perf_counter()
        idents = [row_id(KEY, h) for h in hashes]
        result["hash_us_per_row"] = (time.perf_counter() - started) / n * 1e6
        started = time.perf_counter()
        for k in range(min(n, 5000)):
            record_header(idents[k], base[k % 64])
        result["record_us_per_row"] = (time.perf_counter() - started) / min(n, 5000) * 1e6
        result["index_lookup_us_per_row"] = result["hit_check_s"] / n * 1e6
        result["write_us_per_row"] = write_s / n * 1e6
        result["index_bytes_in_memory_per_row"] = 24  # ids, shard, offset, dim arrays (store.KeyIndex)
    result["peak_rss_MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[5000, 20000, 50000])
    parser.add_argument("--dims", type=int, nargs="+", default=[3072, 512])
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temporary folder)")
    parser.add_argument("--case", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        dim, n, folder, legacy = args.case
        print(json.dumps(one_case(int(dim), int(n), Path(folder), legacy == "1")))
        return
    base = Path(tempfile.mkdtemp(prefix="facebench-store-scale-", dir=args.dir))
    results = []
    try:
        for dim in args.dims:
            for n in args.rows:
                for legacy in [False]:
                    folder = base / f"{dim}-{n}-{int(legacy)}"
                    out = subprocess.run(
                        [sys.executable, __file__, "--case", str(dim), str(n), str(folder), str(int(legacy))],
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    results.append(json.loads(out.stdout.strip().splitlines()[-1]))
                    shutil.rmtree(folder, ignore_errors=True)
                    r = results[-1]
                    print(
                        f"{r['store']:12s} dim {dim:5d} rows {n:6d}: write {r['write_s']:6.2f}s "
                        f"({r['write_rows_per_s']:8.0f} rows/s, {r['write_MB_per_s']:6.0f} MB/s)  "
                        f"hit check {r['hit_check_s'] * 1e3:7.1f}ms  subset(10%) {r['subset_read_s']:5.2f}s  "
                        f"all {r['full_read_s']:5.2f}s ({r['full_read_rows_per_s']:8.0f} rows/s)  "
                        f"get {r['get_us_per_row']:6.1f}us  files {r['files']:6d}  "
                        f"{r['bytes'] / 1e6:8.1f} MB (+{r['overhead_bytes_per_row']:.0f} B/row)  "
                        f"peak RSS {r['write_peak_rss_MB']:4.0f} MB writing, {r['peak_rss_MB']:4.0f} MB in all",
                        flush=True,
                    )
                    if "hash_us_per_row" in r:
                        print(
                            f"{'':12s} per row: id hash {r['hash_us_per_row']:.2f}us, record+CRC "
                            f"{r['record_us_per_row']:.2f}us, index lookup {r['index_lookup_us_per_row']:.2f}us, "
                            f"write (put..close) {r['write_us_per_row']:.1f}us; index in memory "
                            f"{r['index_bytes_in_memory_per_row']} B/row",
                            flush=True,
                        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
