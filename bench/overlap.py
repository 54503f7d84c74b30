"""Does the engine overlap loading, the forward pass, copying back and storing? A CPU stand-in for a GPU (a script
that prints figures, not a test).

The stand-in model's forward holds no GIL for a set time per image (`time.sleep`, as a CUDA kernel leaves the
host free while it runs) and returns two layers of rows (512 and 4,096 floats, like VGG16's avgpool and
classifier.5) to be copied and stored. It prints:
  - model-only: images/s of the forward alone, on tensors already in memory (the limit);
  - sustained: images/s of `Engine.embed` on a cold store over --images distinct 250×250 JPEGs, from the first
    batch to the last (steady state), and end to end (loader start included);
  - sustained ÷ model-only: 1.0 when everything else hides behind the forward; the target is >= 0.9;
  - the serial prediction 1 ÷ (1/decode + 1/model + 1/store), from the measured decode and store rates: what a
    loop doing everything in turn would reach.

    python bench/overlap.py                              # 2,000 images, 4 ms an image, default loader workers
    python bench/overlap.py --ms-per-image 2 --images 4000 --workers 1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from throughput import make_dataset  # noqa: E402

from pytest_facebench.engine.engine import Engine, EngineOptions  # noqa: E402
from pytest_facebench.engine.images import load_rgb  # noqa: E402
from pytest_facebench.engine.model import BaseModel  # noqa: E402
from pytest_facebench.engine.preprocessing import Preprocessing  # noqa: E402
from pytest_facebench.storage.store import EmbeddingStore  # noqa: E402

WIDTHS = {"avgpool": 512, "classifier": 4096}


class SleepNet(nn.Module):
    """Sleeps `seconds_per_image` per image without the GIL, then returns cheap rows of the layers' widths."""

    def __init__(self, seconds_per_image: float):
        super().__init__()
        self.seconds_per_image = seconds_per_image
        self.avgpool = nn.Identity()
        self.classifier = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.seconds_per_image * len(x))
        base = x.mean(dim=(2, 3))  # (B, 3)
        self.avgpool(base.repeat(1, WIDTHS["avgpool"] // 3 + 1)[:, : WIDTHS["avgpool"]])
        return self.classifier(base.repeat(1, WIDTHS["classifier"] // 3 + 1)[:, : WIDTHS["classifier"]])


class StandIn(BaseModel):
    """The GPU stand-in: `SleepNet` read at its two layers."""

    default_layers = ("avgpool", "classifier")

    def __init__(self, *args: Any, seconds_per_image: float = 0.004, input_size: int = 112, **kwargs: Any):
        super().__init__(*args, preprocessing=Preprocessing(input_size=input_size), **kwargs)
        self.seconds_per_image = seconds_per_image

    def _build_model(self) -> nn.Module:
        return SleepNet(self.seconds_per_image)


class Clock:
    """A progress bar that only notes when images arrive (the engine calls `update` after each batch)."""

    def __init__(self, **_: Any):
        self.times: list[tuple[float, int]] = []

    def update(self, n: int) -> None:
        self.times.append((time.perf_counter(), n))

    def close(self) -> None:
        pass


def model_only(model: StandIn, batch: int, iters: int) -> float:
    x = torch.randn(batch, 3, model.preprocessing.input_size, model.preprocessing.input_size)
    model.build()
    with torch.inference_mode():
        model.extract(x)
        start = time.perf_counter()
        for _ in range(iters):
            model.extract(x)
        return batch * iters / (time.perf_counter() - start)


def decode_rate(model: StandIn, paths: list[Path]) -> float:
    """Images/s of one process decoding and preprocessing (what one loader worker does)."""
    model.preprocess(load_rgb(paths[0]))  # imports torchvision's transforms: not part of the rate
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a DataLoader worker
    try:
        start = time.perf_counter()
        for path in paths:
            model.preprocess(load_rgb(path))
        return len(paths) / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)


def store_rate(root: Path, n: int) -> float:
    """Images/s of storing both layers' rows (as the writer does, flushed to disk)."""
    store = EmbeddingStore(root)
    rng = np.random.default_rng(0)
    rows = {layer: rng.normal(size=(n, width)).astype(np.float32) for layer, width in WIDTHS.items()}
    hashes = [f"{i:040x}" for i in range(n)]
    start = time.perf_counter()
    for at in range(0, n, 64):
        for layer, block in rows.items():
            store.put_many(layer * 8, hashes[at : at + 64], block[at : at + 64])
    store.flush()
    seconds = time.perf_counter() - start
    store.close()
    return n / seconds


def sustained(engine: Engine, clocks: list[Clock], paths: list[Path], model: StandIn) -> dict[str, Any]:
    start = time.perf_counter()
    result = engine.embed(model, paths)
    end = time.perf_counter()
    engine.store.close()
    times = clocks[0].times
    first_t, first_n = times[0]
    steady = (len(paths) - first_n) / (times[-1][0] - first_t) if len(times) > 1 else float("nan")
    return {
        "images": len(paths),
        "end_to_end_img_s": len(paths) / (end - start),
        "steady_img_s": steady,
        "first_batch_after_s": first_t - start,
        "workers": result.stats.workers,
        "start_method": result.stats.start_method,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--ms-per-image", type=float, default=4.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=None, help="loader workers (default: the engine's)")
    parser.add_argument("--input-size", type=int, default=112)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "facebench-bench-overlap")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "overlap.json")
    args = parser.parse_args()
    data = make_dataset(args.data, args.images, 2, seed=2)
    paths = sorted((data / "images").glob("*.jpg"))[: args.images]
    model = StandIn(name="standin", seconds_per_image=args.ms_per_image / 1000, input_size=args.input_size)
    clocks: list[Clock] = []

    def progress(**kwargs: Any) -> Clock:
        clocks.append(Clock(**kwargs))
        return clocks[-1]

    cache = tempfile.TemporaryDirectory()
    # created first, as a session creates it before its first cell: its loader workers' server starts meanwhile
    engine = Engine(
        EngineOptions(device="cpu", batch_size=args.batch_size, workers=args.workers),
        EmbeddingStore(Path(cache.name)),
        progress=progress,
    )
    limit = model_only(model, args.batch_size, max(3, int(2.0 / (args.batch_size * args.ms_per_image / 1000))))
    decode = decode_rate(model, paths[:200])
    with tempfile.TemporaryDirectory() as tmp:
        store = store_rate(Path(tmp) / "store", 2000)
        run = sustained(engine, clocks, paths, model)
    cache.cleanup()
    serial = 1 / (1 / decode + 1 / limit + 1 / store)
    report = {
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average": os.getloadavg()[0],
        "args": {k: str(v) for k, v in vars(args).items()},
        "model_only_img_s": limit,
        "decode_img_s_one_process": decode,
        "store_img_s": store,
        "serial_prediction_img_s": serial,
        "sustained": run,
        "steady_over_model_only": run["steady_img_s"] / limit,
        "end_to_end_over_model_only": run["end_to_end_img_s"] / limit,
        "serial_over_model_only": serial / limit,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"stand-in ({args.ms_per_image:g} ms an image without the GIL, layers 512 + 4,096 floats, batch "
        f"{args.batch_size}, {run['workers']} loader worker(s) by {run['start_method'] or 'the main process'}, "
        f"{report['usable_cpus']} usable CPUs, load {report['load_average']:.1f})"
    )
    print(f"  model-only             {limit:8.0f} img/s")
    print(f"  decode (one process)   {decode:8.0f} img/s;  store {store:8.0f} img/s")
    print(f"  serial loop, predicted {serial:8.0f} img/s  = {serial / limit:.2f} of model-only")
    print(
        f"  sustained, steady      {run['steady_img_s']:8.0f} img/s  = {report['steady_over_model_only']:.2f} of "
        f"model-only  (target >= 0.90)"
    )
    print(
        f"  sustained, end to end  {run['end_to_end_img_s']:8.0f} img/s  = {report['end_to_end_over_model_only']:.2f}"
        f" (first batch after {run['first_batch_after_s']:.1f} s: worker start)"
    )


if __name__ == "__main__":
    main()
