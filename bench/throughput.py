"""Throughput of the embedding engine (a script that prints figures, not a test).

On LFW-shaped data (distinct 250×250 JPEGs, generated here) it measures:
  (a) the limit: model-only throughput on random tensors already on the device;
  (b) facebench end to end on a cold cache: sustained images/s over --sustained images, and the
      whole --pairs-pair task (model build and loader start included);
  (c) the naive pipeline: per pair, both images, single-process loading, distance per pair in Python;
  (d) a warm-cache rerun of the whole `pytest benchmarks/` grid vs a cold one (cells reused, and with
      --facebench-rescore: embeddings reused, every cell scored again);
  (e) the --pairs-pair task of (b) as a whole `pytest` process (interpreter start, imports, collection, outputs),
      cold and warm, printed beside the in-process figures of (b) (the first --precision only);
and the ratios b/a, b/c and cold/warm. On CUDA, the GPU's utilisation is sampled during the sustained run of (b)
(NVML, else `nvidia-smi`). Writes JSON to --out (after each phase, so a run stopped by a timeout keeps the
figures measured so far).

    python bench/throughput.py --device cuda --precision fp32 bf16
    python bench/throughput.py --device cpu --images 200 --pairs 600 --sustained 200 --naive-pairs 50
    python bench/throughput.py --device cpu --grid-args "-k pixels"              # a subset of the grid in (d)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_facebench.engine.distances import cosine  # noqa: E402
from pytest_facebench.engine.engine import Engine, EngineOptions  # noqa: E402
from pytest_facebench.engine.evaluate import evaluate_cell  # noqa: E402
from pytest_facebench.engine.images import load_rgb  # noqa: E402
from pytest_facebench.engine.preprocessing import Preprocessing  # noqa: E402
from pytest_facebench.storage.store import EmbeddingStore  # noqa: E402
from pytest_facebench.tasks import AccuracyTask  # noqa: E402
from pytest_facebench.zoo.vgg16 import Vgg16  # noqa: E402

LAYERS = ["avgpool", "classifier.5"]


def vgg16(device: torch.device | str, input_size: int = 224) -> Vgg16:
    """The measured model: untrained VGG16 hooked at LAYERS; `input_size` other than 224 only for quick runs."""
    if input_size == 224:
        return Vgg16(name="vgg16", layers=LAYERS, device=device)
    return Vgg16(
        name="vgg16", layers=LAYERS, device=device, preprocessing=Preprocessing(input_size=input_size, crop="none")
    )


def _make_jpeg(args: tuple[Path, int]) -> None:
    path, seed = args
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize((250, 250), Image.BICUBIC)
    noise = rng.normal(0, 6, (250, 250, 3))
    array = np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
    Image.fromarray(array).save(path, quality=90)


def make_dataset(root: Path, n_images: int, n_pairs: int, seed: int = 0) -> Path:
    """n distinct 250×250 JPEGs and a pairs CSV (half same, half different)."""
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    jobs = [
        (images / f"img_{i:05d}.jpg", seed * 1_000_003 + i)
        for i in range(n_images)
        if not (images / f"img_{i:05d}.jpg").exists()
    ]
    with Pool(os.cpu_count()) as pool:
        pool.map(_make_jpeg, jobs, chunksize=64)
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, n_images, n_pairs), rng.integers(0, n_images, n_pairs)
    labels = np.arange(n_pairs) % 2
    lines = ["img1,img2,label"] + [f"img_{x:05d}.jpg,img_{y:05d}.jpg,{lab}" for x, y, lab in zip(a, b, labels)]
    (root / "pairs.csv").write_text("\n".join(lines) + "\n")
    return root


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_only(
    device: torch.device, precision: str, channels_last: bool, batch: int, iters: int = 20, input_size: int = 224
) -> float:
    """(a) images/s of VGG16 (hooks on LAYERS) on random tensors already on the device."""
    model = vgg16(device, input_size).build()
    if channels_last:
        model.net.to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, input_size, input_size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    ctx = torch.autocast(device.type, dtype=dtype, enabled=precision != "fp32")
    with torch.inference_mode(), ctx:
        for _ in range(3):
            model.extract(x)
        sync(device)
        start = time.perf_counter()
        for _ in range(iters):
            model.extract(x)
        sync(device)
        elapsed = time.perf_counter() - start
    model.release()
    return batch * iters / elapsed


def facebench_sustained(
    paths: list[Path],
    device: str,
    precision: str,
    batch: int,
    workers: int | None,
    decode: str = "pil",
    input_size: int = 224,
) -> dict:
    """(b) cold-cache embed of all `paths` (the engine's own counters)."""
    with tempfile.TemporaryDirectory() as cache:
        engine = Engine(
            EngineOptions(device=device, precision=precision, batch_size=batch, workers=workers, decode=decode),
            EmbeddingStore(Path(cache)),
        )
        model = vgg16(engine.device, input_size)
        model.build()
        sampler = GpuUtilisation(engine.device) if engine.device.type == "cuda" else None
        start = time.perf_counter()
        result = engine.embed(model, paths)
        elapsed = time.perf_counter() - start
        utilisation = sampler.stop() if sampler is not None else None
        engine.store.close()
    return {
        "images": len(paths),
        "seconds": elapsed,
        "images_per_s": len(paths) / elapsed,
        "load_s": result.stats.load_s,
        "forward_s": result.stats.forward_s,
        "workers": result.stats.workers,
        "start_method": result.stats.start_method,
        "channels_last": result.stats.channels_last,
        "cudnn_benchmark": result.stats.cudnn_benchmark,
        "gpu_utilisation": utilisation,
    }


class GpuUtilisation:
    """Samples the GPU's utilisation (percent of time a kernel ran) every 100 ms until `stop()`: NVML through
    `pynvml` (nvidia-ml-py) when installed, else `nvidia-smi`. `stop()` gives mean, median and the sample count
    (None when neither is available)."""

    def __init__(self, device: torch.device, interval_s: float = 0.1):
        self.index = device.index or 0
        self.interval_s = interval_s
        self.samples: list[float] = []
        self.source = ""
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(self.index)
            self.source = "nvml"
            while not self._done.wait(self.interval_s):
                self.samples.append(float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu))
            return
        except Exception:  # noqa: BLE001 - no pynvml or no NVML: nvidia-smi below
            pass
        try:
            proc = subprocess.Popen(
                [
                    "nvidia-smi",
                    f"--id={self.index}",
                    "--query-gpu=utilization.gpu",
                    "--format=csv,noheader,nounits",
                    f"--loop-ms={int(self.interval_s * 1000)}",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        except OSError:
            return
        self.source = "nvidia-smi"
        assert proc.stdout is not None
        reader = threading.Thread(target=lambda: [self._add(line) for line in proc.stdout], daemon=True)
        reader.start()
        self._done.wait()
        proc.terminate()
        reader.join(timeout=2)

    def _add(self, line: str) -> None:
        if not self._done.is_set() and line.strip().isdigit():
            self.samples.append(float(line))

    def stop(self) -> dict | None:
        self._done.set()
        self._thread.join(timeout=5)
        if not self.samples:
            return None
        return {
            "mean_pct": float(np.mean(self.samples)),
            "median_pct": float(np.median(self.samples)),
            "samples": len(self.samples),
            "source": self.source,
        }


def facebench_task(
    data: Path,
    device: str,
    precision: str,
    batch: int,
    workers: int | None,
    cache: Path,
    decode: str = "pil",
    input_size: int = 224,
) -> float:
    """(b) the whole task: engine, model build, loader start, embedding, distances, scores."""
    start = time.perf_counter()
    engine = Engine(
        EngineOptions(device=device, precision=precision, batch_size=batch, workers=workers, decode=decode),
        EmbeddingStore(cache),
    )
    model = vgg16(engine.device, input_size)
    task = AccuracyTask("lfw_like", data / "pairs.csv", data / "images").load()
    evaluate_cell(engine, model, task)
    engine.store.close()
    sync(engine.device)
    return time.perf_counter() - start


def naive(data: Path, device: torch.device, n_pairs: int, input_size: int = 224) -> tuple[float, int]:
    """(c) the earlier prototype: per pair, both images through the model, PIL in the main process,
    distance per pair in Python."""
    start = time.perf_counter()
    model = vgg16(device, input_size).build()
    rows = (data / "pairs.csv").read_text().splitlines()[1 : n_pairs + 1]
    distances = []
    with torch.inference_mode():
        for row in rows:
            a, b, _ = row.split(",")
            batch = torch.stack(
                [model.preprocess(load_rgb(data / "images" / a)), model.preprocess(load_rgb(data / "images" / b))]
            ).to(device)
            out = model.extract(batch)
            for layer in LAYERS:
                distances.append(float(cosine(out[layer][:1], out[layer][1:2])[0]))
            if device.type == "cuda":
                torch.cuda.empty_cache()
    sync(device)
    return time.perf_counter() - start, len(rows)


def grid_rerun(device: str, precision: str, extra_args: list[str] | None = None) -> dict:
    """(d) `pytest benchmarks/` cold, warm (cells reused), and warm with --facebench-rescore (embeddings from
    the cache, every cell scored again): wall time and exit status of each process, on a fresh cache dir.
    `extra_args` go to every run (e.g. `-k pixels` for a subset of the grid).

    hypothesis's pytest plugin is disabled when installed: it is a test-only dependency (absent from the
    benchmark install of the README) and imports hypothesis in its terminal summary (about 1 s)."""
    import importlib.util
    from importlib.metadata import entry_points

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
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
            "--facebench-device",
            device,
            "--facebench-precision",
            precision,
            *(extra_args or []),
        ]
        if not any(e.name == "facebench" for e in entry_points(group="pytest11")):  # not pip-installed here
            cmd += ["-p", "pytest_facebench.plugin"]
        if importlib.util.find_spec("hypothesis") is not None:
            cmd += ["-p", "no:hypothesispytest"]
            times["note"] = "hypothesis's pytest plugin disabled (test-only dependency)"
        for label, extra in (("cold", []), ("warm", []), ("warm_rescore", ["--facebench-rescore"])):
            start = time.perf_counter()
            proc = subprocess.run(cmd + extra, cwd=ROOT, capture_output=True, text=True, env=env)
            times[label] = time.perf_counter() - start
            times[f"{label}_rc"] = proc.returncode
            times[f"{label}_tail"] = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
    return times


TASK_GRID = """
[[models]]
name = "vgg16"
factory = "vgg16"
layers = {layers}
{preprocessing}
[[tasks]]
name = "lfw_like"
type = "accuracy"
pairs = "{pairs}"
images = "{images}"
"""
TASK_TEST = """
def test_task(model, task, facebench):
    facebench.evaluate(model, task)
"""


def task_process(data: Path, device: str, precision: str, batch: int, workers: int | None, input_size: int) -> dict:
    """(e) the task of (b) as a whole `pytest` process: cold (fresh cache) then warm (the same cache), wall time
    and exit status of each. hypothesis's plugin is disabled (a test-only dependency, see `grid_rerun`)."""
    import importlib.util
    from importlib.metadata import entry_points

    preprocessing = "" if input_size == 224 else f"kwargs = {{ preprocessing = {{ input_size = {input_size} }} }}\n"
    times: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        project.mkdir()
        grid = TASK_GRID.format(
            layers=json.dumps(LAYERS), preprocessing=preprocessing, pairs=data / "pairs.csv", images=data / "images"
        )
        (project / "facebench.toml").write_text(grid)
        (project / "test_task.py").write_text(TASK_TEST)
        cmd = [
            sys.executable, "-m", "pytest", str(project), "-q", "-p", "no:cacheprovider",
            "--rootdir", str(project), "--facebench-cache", f"{tmp}/cache", "--facebench-out", f"{tmp}/out",
            "--facebench-device", device, "--facebench-precision", precision, "--facebench-batch-size", str(batch),
            "--facebench-no-report", "--facebench-no-progress",
        ]  # fmt: skip
        if workers is not None:
            cmd += ["--facebench-workers", str(workers)]
        if not any(e.name == "facebench" for e in entry_points(group="pytest11")):
            cmd += ["-p", "pytest_facebench.plugin"]
        if importlib.util.find_spec("hypothesis") is not None:
            cmd += ["-p", "no:hypothesispytest"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for label in ("cold", "warm"):
            start = time.perf_counter()
            proc = subprocess.run(cmd, cwd=project, capture_output=True, text=True, env=env)
            times[label] = time.perf_counter() - start
            times[f"{label}_rc"] = proc.returncode
            times[f"{label}_tail"] = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--images", type=int, default=2000, help="distinct images of the pairs task")
    parser.add_argument("--pairs", type=int, default=6000)
    parser.add_argument("--sustained", type=int, default=13000, help="distinct images for sustained throughput")
    parser.add_argument("--naive-pairs", type=int, default=6000, help="pairs for (c); extrapolated to --pairs")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--skip", nargs="*", default=[], choices=["a", "b", "c", "d", "e"])
    parser.add_argument("--decode", default="pil", choices=["pil"], help="the engine's decoding (PIL, the only one)")
    parser.add_argument("--model-only-iters", type=int, default=20, help="timed batches of (a)")
    parser.add_argument(
        "--input-size",
        type=int,
        default=224,
        help="VGG16's input side; smaller only for quick runs (e.g. a dry run on a CPU)",
    )
    parser.add_argument("--grid-args", default="", help="extra pytest arguments for (d), one shell-quoted string")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "facebench-bench-data")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "throughput.json")
    args = parser.parse_args()
    device = torch.device(args.device)
    report: dict = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "layers": LAYERS,
        "args": vars(args) | {"data": str(args.data), "out": str(args.out)},
    }
    t0 = time.perf_counter()
    task_data = make_dataset(args.data / "task", args.images, args.pairs)
    sustained = make_dataset(args.data / "sustained", args.sustained, 2, seed=1)
    report["data_generation_s"] = time.perf_counter() - t0
    paths = sorted((sustained / "images").glob("*.jpg"))[: args.sustained]
    iters = args.model_only_iters
    for precision in args.precision:
        entry: dict = {}
        report[precision] = entry
        if "a" not in args.skip:
            entry["model_only_img_s"] = model_only(device, precision, False, args.batch_size, iters, args.input_size)
            if device.type == "cuda":
                entry["model_only_channels_last_img_s"] = model_only(
                    device, precision, True, args.batch_size, iters, args.input_size
                )
            save(report, args.out)
        if "b" not in args.skip:
            entry["sustained"] = facebench_sustained(
                paths, args.device, precision, args.batch_size, args.workers, args.decode, args.input_size
            )
            with tempfile.TemporaryDirectory() as cache:
                entry["task_cold_s"] = facebench_task(
                    task_data,
                    args.device,
                    precision,
                    args.batch_size,
                    args.workers,
                    Path(cache),
                    args.decode,
                    args.input_size,
                )
                entry["task_warm_s"] = facebench_task(
                    task_data,
                    args.device,
                    precision,
                    args.batch_size,
                    args.workers,
                    Path(cache),
                    args.decode,
                    args.input_size,
                )
        if "e" not in args.skip and precision == args.precision[0]:  # one precision: two interpreter starts
            entry["task_process"] = task_process(
                task_data, args.device, precision, args.batch_size, args.workers, args.input_size
            )
        limit = entry.get("model_only_channels_last_img_s") or entry.get("model_only_img_s")
        if limit and "sustained" in entry:
            entry["b_over_a"] = entry["sustained"]["images_per_s"] / limit
        save(report, args.out)
        print(json.dumps({precision: entry}, indent=1), flush=True)
    if "c" not in args.skip:
        seconds, done = naive(task_data, device, args.naive_pairs, args.input_size)
        report["naive"] = {"pairs": done, "seconds": seconds, "extrapolated_s": seconds * args.pairs / done}
        for precision in args.precision:
            entry = report[precision]
            if "task_cold_s" in entry:
                entry["naive_over_cold_task"] = report["naive"]["extrapolated_s"] / entry["task_cold_s"]
                entry["naive_over_warm_task"] = report["naive"]["extrapolated_s"] / entry["task_warm_s"]
        save(report, args.out)
    if "d" not in args.skip:
        report["grid"] = grid_rerun(args.device, args.precision[0], shlex.split(args.grid_args))
        report["grid"]["cold_over_warm"] = report["grid"]["cold"] / report["grid"]["warm"]
        report["grid"]["cold_over_warm_rescore"] = report["grid"]["cold"] / report["grid"]["warm_rescore"]
    report["total_s"] = time.perf_counter() - t0
    save(report, args.out)
    print_table(report, args.precision)


def save(report: dict, out: Path) -> None:
    """Write the report so far (atomically: a reader never sees half a file)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(json.dumps(report, indent=2) + "\n")
    partial.replace(out)


def print_table(report: dict, precisions: list[str]) -> None:
    print(f"\nfacebench throughput on {report['device']} (VGG16, layers {', '.join(report['layers'])})")
    for precision in precisions:
        e = report.get(precision, {})
        print(
            f"[{precision}] (a) model-only {e.get('model_only_img_s', float('nan')):8.0f} img/s"
            f"  channels_last {e.get('model_only_channels_last_img_s', float('nan')):8.0f} img/s"
        )
        if "sustained" in e:
            s = e["sustained"]
            print(
                f"[{precision}] (b) sustained  {s['images_per_s']:8.0f} img/s over {s['images']} images  "
                f"b/a = {e.get('b_over_a', float('nan')):.2f}"
            )
            print(f"[{precision}] (b) whole task cold {e['task_cold_s']:.2f} s, warm {e['task_warm_s']:.3f} s")
            util = s.get("gpu_utilisation")
            if util:
                print(
                    f"[{precision}] (b) GPU utilisation during the sustained run: mean {util['mean_pct']:.0f}%, "
                    f"median {util['median_pct']:.0f}% ({util['samples']} samples, {util['source']})"
                )
        if "task_process" in e:
            t = e["task_process"]
            print(
                f"[{precision}] (e) the task as a pytest process: cold {t['cold']:.1f} s, warm {t['warm']:.1f} s"
                f" (exit {t['cold_rc']}/{t['warm_rc']}); in-process (b): cold {e.get('task_cold_s', float('nan')):.2f}"
                f" s, warm {e.get('task_warm_s', float('nan')):.3f} s"
            )
        if "naive_over_cold_task" in e:
            print(
                f"[{precision}] (c) naive {report['naive']['extrapolated_s']:.1f} s → b/c speed-up "
                f"{e['naive_over_cold_task']:.1f}× cold, {e['naive_over_warm_task']:.0f}× warm"
            )
    if "grid" in report:
        g = report["grid"]
        print(
            f"(d) pytest benchmarks/: cold {g['cold']:.1f} s, warm {g['warm']:.1f} s → {g['cold_over_warm']:.1f}×; "
            f"warm with --facebench-rescore {g['warm_rescore']:.1f} s → {g['cold_over_warm_rescore']:.1f}×"
            + (f"  ({g['note']})" if g.get("note") else "")
        )


if __name__ == "__main__":
    main()
