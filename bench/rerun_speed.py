"""Cold run vs unchanged reruns of `pytest benchmarks/` (a script that prints figures, not a test).

One cold run (empty cache and output folder), then --runs warm reruns into the same folder: every cell is
reused from the cell cache and no derived output is rewritten. Prints each wall time, the median of the
warm runs and cold / median. Python writes bytecode in these runs, as on a user's machine (a session with
PYTHONDONTWRITEBYTECODE=1 would recompile every module on every run); hypothesis's pytest plugin, a
test-only dependency absent from the benchmark install, is disabled.

    python bench/rerun_speed.py --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed_run(cache: Path, out: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "benchmarks/",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:hypothesispytest",
        "--facebench-cache",
        str(cache),
        "--facebench-out",
        str(out),
        "--facebench-no-progress",
    ]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"pytest benchmarks/ failed ({result.returncode}):\n{result.stdout[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="warm reruns (default 5)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="facebench-rerun-") as tmp:
        cache, out = Path(tmp) / "cache", Path(tmp) / "out"
        cold = timed_run(cache, out)
        print(f"cold: {cold:.2f} s")
        warm = []
        for i in range(args.runs):
            warm.append(timed_run(cache, out))
            print(f"warm {i + 1}: {warm[-1]:.2f} s")
        reused = json.loads((out / "run.json").read_text())["models"]
    median = statistics.median(warm)
    print(f"median warm: {median:.2f} s (target <= 2 s); cold / warm = {cold / median:.1f}x (target >= 25x)")
    print(
        "cells reused in the last run: "
        + ", ".join(f"{m} {s['cells_reused']}/{s['cells_reused'] + s['cells_scored']}" for m, s in reused.items())
    )
    if args.json:
        args.json.write_text(
            json.dumps({"cold_s": cold, "warm_s": warm, "median_warm_s": median, "ratio": cold / median}, indent=2)
            + "\n"
        )


if __name__ == "__main__":
    main()
