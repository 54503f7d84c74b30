"""torch.compile against eager, model-only (a script that prints figures, not a test; issue 19).

Is `--facebench-compile` worth it? VGG16 untrained (torchvision `vgg16(weights=None)` through the project's
`Vgg16`, read at layers avgpool + classifier.5, built as bench/throughput.py builds it) runs on random tensors
already on the device, through the engine's own code: `Engine._prepare_net` (channels_last and cuDNN's benchmark
on CUDA, the `CompiledForward` of `--facebench-compile`) and `Engine._run` (the precision's autocast, inference
mode), as `model_only` in bench/overlap.py and bench/throughput.py (a) measure it. For each precision, eager and
then each compile mode:
  - compile_s: the first call (which compiles), less one steady batch;
  - img/s in the steady state (after warm-up calls; CUDA graphs are recorded by then), and the ratio to eager;
  - max |Δ| per layer of the compiled outputs against eager ones of the same model and input (and max |eager|).
Each measurement runs in a process of its own with an empty inductor cache (a cold compile: what the first run
on a machine pays), under what is left of --budget-s: a measurement that cannot start in time is skipped, one that
runs past it is stopped, both recorded. Writes JSON to --out after each measurement.

    python bench/compile_speed.py                                   # cuda if available: batch 128, 224 px
    python bench/compile_speed.py --device cpu --quick              # 32 px, batch 8, a few iterations
    python bench/compile_speed.py --budget-s 120 --modes default reduce-overhead   # as bench/device_check.sh
    python bench/compile_speed.py --modes default --precision bf16  # one mode, one precision
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODES = ("default", "reduce-overhead", "max-autotune")  # pytest_facebench.engine.options.COMPILE_MODES but off
PRECISIONS = ("fp32", "bf16")
MIN_START_S = 15  # a measurement with less than this left of the budget is not started (importing torch alone)


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """One measurement, in this (child) process: `spec` holds device, precision, mode (off: eager), batch,
    input_size, iters and warmup."""
    import torch

    sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
    from throughput import LAYERS, sync, vgg16

    from pytest_facebench.engine.engine import DeviceCopier, EmbedStats, Engine, EngineOptions
    from pytest_facebench.storage.store import EmbeddingStore

    if spec.get("backend", "inductor") != "inductor":  # a plumbing check: dynamo captures, nothing is generated
        torch.compile = functools.partial(torch.compile, backend=spec["backend"])  # type: ignore[assignment]
    options = EngineOptions(device=spec["device"], precision=spec["precision"], workers=0, compile=spec["mode"])
    engine = Engine(options, EmbeddingStore(None))
    model, stats = vgg16(engine.device, spec["input_size"]), EmbedStats()
    engine._prepare_net(model, stats)  # builds; channels_last, cuDNN benchmark and the compiled forward as a run does
    torch.backends.cudnn.benchmark = stats.cudnn_benchmark
    copier = DeviceCopier(engine.device, stats.channels_last)
    size = spec["input_size"]
    x = torch.randn(spec["batch"], 3, size, size, generator=torch.Generator().manual_seed(0)).to(engine.device)
    compiled, model.compiled_forward = model.compiled_forward, None
    eager = {k: v.float().cpu() for k, v in engine._run(model, copier, x).items()}  # the reference, eagerly
    model.compiled_forward = compiled

    def run() -> dict[str, torch.Tensor]:
        return engine._run(model, copier, x)

    sync(engine.device)
    started = time.perf_counter()
    outputs = {k: v.float().cpu() for k, v in run().items()}  # the first call: compiles (copied back: synced)
    first_s = time.perf_counter() - started
    for _ in range(spec["warmup"]):
        run()
    sync(engine.device)
    started = time.perf_counter()
    for _ in range(spec["iters"]):
        run()
    sync(engine.device)
    steady_s = (time.perf_counter() - started) / spec["iters"]
    forward = model.compiled_forward
    return {
        "img_s": spec["batch"] / steady_s,
        "batch_s": steady_s,
        "first_call_s": first_s,
        "compile_s": max(0.0, first_s - steady_s) if spec["mode"] != "off" else None,
        "compiled": bool(forward is not None and getattr(forward, "active", False)),
        "compile_note": getattr(forward, "failure", "") if forward is not None else stats.compile_note,
        "max_abs_diff": {layer: float((outputs[layer] - eager[layer]).abs().max()) for layer in LAYERS},
        "max_abs_eager": {layer: float(eager[layer].abs().max()) for layer in LAYERS},
        "channels_last": stats.channels_last,
        "device_name": torch.cuda.get_device_name(engine.device) if engine.device.type == "cuda" else "cpu",
        "torch": torch.__version__,
    }


def run_child(spec: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """`measure(spec)` in a fresh interpreter with an empty inductor cache; its JSON, or why there is none."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="compile-speed-") as cache:
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache, "PYTHONPATH": str(ROOT)}
        try:
            proc = subprocess.run(
                [sys.executable, __file__, "--child", json.dumps(spec)],
                capture_output=True,
                text=True,
                timeout=timeout_s,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"status": "timeout", "why": f"stopped after {timeout_s:.0f} s", "wall_s": timeout_s}
    wall = time.perf_counter() - started
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"status": "failed", "why": f"exit {proc.returncode}: {' | '.join(tail)[-400:]}", "wall_s": wall}
    return {"status": "ok", **json.loads(lines[-1]), "wall_s": wall}


def plan(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The measurements, most wanted first (eager, then each mode in order, each in every precision), so that a
    budget that runs out drops the last modes."""
    base = {
        "device": args.device,
        "batch": args.batch_size,
        "input_size": args.input_size,
        "iters": args.iters,
        "backend": args.backend,
    }
    return [
        {**base, "precision": precision, "mode": mode, "warmup": args.warmup}
        for mode in ("off", *args.modes)
        for precision in args.precision
    ]


def report(args: argparse.Namespace, results: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    eager = {r["precision"]: r.get("img_s") for r in results if r["mode"] == "off" and r["status"] == "ok"}
    for r in results:
        if r["mode"] != "off" and r.get("img_s") and eager.get(r["precision"]):
            r["over_eager"] = r["img_s"] / eager[r["precision"]]
    return {
        "args": {k: v for k, v in vars(args).items() if k not in ("child", "out")},
        "model": "vgg16 untrained (torchvision), layers avgpool + classifier.5",
        "results": results,
        "wall_s": wall_s,
    }


def _num(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def table(data: dict[str, Any]) -> str:
    args = data["args"]
    lines = [
        f"torch.compile vs eager, model-only: VGG16 (avgpool + classifier.5) on {args['device']}, batch "
        f"{args['batch_size']}, {args['input_size']} px, {args['iters']} timed iterations (cold inductor cache"
        f"{'' if args.get('backend', 'inductor') == 'inductor' else '; backend ' + args['backend'] + ': plumbing only'})",
        f"{'precision':<10}{'mode':<17}{'status':<9}{'img/s':>9}{'× eager':>9}{'compile s':>11}"
        f"{'max|Δ| avgpool':>16}{'max|Δ| cls.5':>14}  note",
    ]
    for r in data["results"]:
        diff = r.get("max_abs_diff") or {}
        note = r.get("why") or r.get("compile_note") or ""
        if r["mode"] != "off" and r["status"] == "ok" and not r.get("compiled"):
            note = note or "ran eagerly"
        lines.append(
            f"{r['precision']:<10}{r['mode'].replace('off', 'eager'):<17}{r['status']:<9}"
            f"{_num(r.get('img_s'), '.1f'):>9}{_num(r.get('over_eager'), '.2f'):>9}{_num(r.get('compile_s'), '.1f'):>11}"
            f"{_num(diff.get('avgpool') if r['mode'] != 'off' else None, '.2e'):>16}"
            f"{_num(diff.get('classifier.5') if r['mode'] != 'off' else None, '.2e'):>14}  {note}"
        )
    scale = next((r["max_abs_eager"] for r in data["results"] if r.get("max_abs_eager")), None)
    if scale:
        lines.append("max |eager|: " + ", ".join(f"{k} {v:.3g}" for k, v in scale.items()))
    lines.append(f"wall {data['wall_s']:.0f} s")
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda if available")
    parser.add_argument("--precision", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--batch-size", type=int, default=None, help="default 128 (--quick: 8)")
    parser.add_argument("--input-size", type=int, default=None, help="default 224 (--quick: 32)")
    parser.add_argument("--iters", type=int, default=None, help="timed calls (default 30; --quick: 5)")
    parser.add_argument("--warmup", type=int, default=3, help="calls between the first and the timed ones")
    parser.add_argument("--quick", action="store_true", help="tiny input, small batch, few iterations (the CPU)")
    parser.add_argument(
        "--backend",
        default="inductor",
        help="torch.compile's backend (default inductor, what --facebench-compile uses); 'eager' only checks the "
        "plumbing: dynamo captures the graph but generates no code (the device check's CPU dry run)",
    )
    parser.add_argument("--budget-s", type=float, default=None, help="the whole run (default 170 s; --quick: 900 s)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "compile_speed.json")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.device is None and args.child is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    args.batch_size = args.batch_size or (8 if args.quick else 128)
    args.input_size = args.input_size or (32 if args.quick else 224)
    args.iters = args.iters or (5 if args.quick else 30)
    args.budget_s = args.budget_s or (900.0 if args.quick else 170.0)
    if args.quick:
        args.warmup = min(args.warmup, 1)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.child is not None:
        print(json.dumps(measure(json.loads(args.child))))
        return 0
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for spec in plan(args):
        left = args.budget_s - (time.perf_counter() - started)
        label = f"{spec['precision']} {spec['mode'].replace('off', 'eager')}"
        if left < MIN_START_S:
            result = {"status": "skipped", "why": f"not started: {left:.0f} s left of the {args.budget_s:.0f} s budget"}
        else:
            print(f"[{label}] (at most {left:.0f} s)", flush=True)
            result = run_child(spec, left)
        results.append({"precision": spec["precision"], "mode": spec["mode"], **result})
        print(f"[{label}] {result['status']}: " + _summary(result), flush=True)
        data = report(args, results, time.perf_counter() - started)
        args.out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(table(data))
    print(f"wrote {args.out}")
    return 1 if any(r["status"] == "failed" for r in results) else 0


def _summary(result: dict[str, Any]) -> str:
    if result["status"] != "ok":
        return result.get("why", "")
    diff = result.get("max_abs_diff") or {}
    return (
        f"{result['img_s']:.1f} img/s, first call {result['first_call_s']:.1f} s, compiled {result['compiled']}, "
        f"max|Δ| {max(diff.values()):.2e}"
    )


if __name__ == "__main__":
    sys.exit(main())
