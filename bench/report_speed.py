"""How long plotting and report writing take for a large grid (target: under 30 s on a 2-core machine).

Builds a synthetic results dir (default: 10 models × 12 tasks × 5 layers, 600 pairs per task, every
task type, CIs on the accuracy tasks, a few skipped cells) and times `write_plots` and `write_html`,
and the whole `python -m pytest_facebench report` rebuild in a fresh interpreter.

    python bench/report_speed.py [--models 10] [--tasks 12] [--layers 5] [--pairs 600] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

TYPES = ("accuracy", "correlation", "conditions", "relative_difference")
CONDITIONS = ["same_image", "same_identity", "different_identity"]


def make_results_dir(
    out: Path,
    n_models: int = 10,
    n_tasks: int = 12,
    n_layers: int = 5,
    n_pairs: int = 600,
    seed: int = 0,
    skipped: int = 3,
) -> Path:
    """A results dir shaped like the plugin's: results.csv, summary.csv, distances/, run.json."""
    from pytest_facebench.outputs.results import results_frame, summary_frame
    from pytest_facebench.report.tables import safe_name

    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    models = [f"model_{i:02d}" for i in range(n_models)]
    tasks = [(f"task_{j:02d}_{TYPES[j % len(TYPES)]}", TYPES[j % len(TYPES)]) for j in range(n_tasks)]
    layers = [f"encoder.layers.{k}" for k in range(n_layers)]
    records, tests = [], {}
    skip = {(models[-1 - i], tasks[i][0]) for i in range(skipped)}
    for mi, model in enumerate(models):
        for task, kind in tasks:
            nodeid = f"benchmarks/test_{kind}.py::test_{kind}[{model}-{task}]"
            if (model, task) in skip:
                tests[nodeid] = {
                    "duration_s": 0.01,
                    "outcome": "skipped",
                    "model": model,
                    "task": task,
                    "reason": f"weights unavailable: model '{model}' has no weights here",
                }
                continue
            tests[nodeid] = {
                "duration_s": round(float(rng.uniform(0.5, 3)), 3),
                "outcome": "passed",
                "model": model,
                "task": task,
            }
            pairs = pd.DataFrame(
                {"img1": [f"a{p}.png" for p in range(n_pairs)], "img2": [f"b{p}.png" for p in range(n_pairs)]}
            )
            signal = rng.normal(size=n_pairs)
            if kind == "accuracy":
                pairs["label"] = (np.arange(n_pairs) % 2 == 0).astype(int)
                signal = signal - 1.2 * pairs["label"].to_numpy()
            elif kind == "correlation":
                pairs["distance"] = rng.uniform(0, 1, n_pairs).round(4)
                signal = signal + 2.5 * pairs["distance"].to_numpy()
            elif kind == "conditions":
                pairs["condition"] = [CONDITIONS[p % 3] for p in range(n_pairs)]
                signal = signal + np.array([CONDITIONS.index(c) for c in pairs["condition"]])
            else:
                pairs["orientation"] = ["upright" if p % 2 else "inverted" for p in range(n_pairs)]
            for li, layer in enumerate(layers):
                depth = (li + 1) / n_layers
                d = np.abs(
                    0.3
                    + 0.1 * (signal * (0.4 + depth * (1 + mi / n_models)) + rng.normal(scale=1.5 - depth, size=n_pairs))
                )
                pairs[layer] = d
                context = {
                    "model": model,
                    "layer": layer,
                    "layer_index": li,
                    "task": task,
                    "task_type": kind,
                    "distance": "cosine",
                    "pooling": "cls",
                    "preprocessing": "{}",
                    "precision": "fp32",
                    "device": "cpu",
                    "weights": "synthetic",
                    "readout": li == n_layers - 1,
                    "nodeid": nodeid,
                    "note": "",
                    "n": n_pairs,
                }
                for row in _metrics(kind, pairs, d, rng):
                    records.append({**context, **row})
            path = out / "distances" / safe_name(task) / f"{safe_name(model)}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            pairs.to_csv(path, index=False)
    results = results_frame(records, models, [t for t, _ in tasks])
    results.to_csv(out / "results.csv", index=False)
    summary_frame(results).to_csv(out / "summary.csv", index=False)
    run = {
        "started": "2026-01-01T00:00:00+0000",
        "duration_s": 1234.5,
        "pytest_args": ["benchmarks/", "-n", "2"],
        "xdist_workers": 2,
        "grid": {"path": "benchmarks/facebench.toml", "sha256": "0" * 64},
        "engine": {"devices": ["cuda:0"], "precision": "bf16", "batch_size": 64},
        "versions": {"python": "3.11"},
        "platform": "synthetic",
        "machine": "bench",
        "git_commit": "f" * 40,
        "models": {},
        "tests": tests,
    }
    (out / "run.json").write_text(json.dumps(run, indent=2), encoding="utf-8")
    return out


def _metrics(kind: str, pairs: pd.DataFrame, d: np.ndarray, rng: np.random.Generator) -> list[dict]:
    from sklearn.metrics import roc_auc_score

    if kind == "accuracy":
        labels = pairs["label"].to_numpy().astype(bool)
        auc = roc_auc_score(labels, -d)
        acc = 0.5 + 0.45 * (auc - 0.5) * 2
        half = float(rng.uniform(0.01, 0.03))
        return [
            {"metric": "accuracy", "value": acc, "ci_low": acc - half, "ci_high": acc + half, "protocol": "10-fold"},
            {"metric": "auc", "value": auc, "protocol": "in-sample"},
            {"metric": "eer", "value": 1 - acc, "ci_low": 1 - acc - half, "ci_high": 1 - acc + half},
        ]
    if kind == "correlation":
        r = float(np.corrcoef(d, pairs["distance"])[0, 1])
        return [
            {"metric": "correlation", "value": r, "protocol": "pearson"},
            {"metric": "correlation_ceiling_low", "value": 0.62},
            {"metric": "correlation_ceiling_high", "value": 0.8},
        ]
    if kind == "conditions":
        human = {"same_identity": 0.45, "different_identity": 0.6}  # declared for two of the three conditions
        return [
            {
                "metric": "mean_distance",
                "condition": c,
                "value": float(d[pairs["condition"] == c].mean()),
                **({"human_effect": human[c]} if c in human else {}),
            }
            for c in CONDITIONS
        ]
    a, b = d[pairs["orientation"] == "inverted"], d[pairs["orientation"] == "upright"]
    return [
        {
            "metric": "relative_difference",
            "value": float((a.mean() - b.mean()) / (a.mean() + b.mean())),
            "human_effect": 0.05,
        },
        {"metric": "group_mean", "condition": "inverted", "value": float(a.mean())},
        {"metric": "group_mean", "condition": "upright", "value": float(b.mean())},
        {"metric": "cohens_d", "value": float((a.mean() - b.mean()) / np.sqrt((a.var() + b.var()) / 2))},
    ]


def cpu() -> float:
    """CPU seconds of this process and its finished children (the plotting workers)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=12)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=600)
    parser.add_argument("--out", type=Path, default=None, help="keep the results dir here (default: a temp dir)")
    parser.add_argument("--workers", type=int, default=None, help="plotting processes (default: write_plots decides)")
    args = parser.parse_args()

    started = time.perf_counter()
    import pytest_facebench.tasks  # noqa: F401  (in a pytest session the task registry is already imported)
    from pytest_facebench.report.html import write_html
    from pytest_facebench.report.plots import write_plots

    imports = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "results"
        t0 = time.perf_counter()
        make_results_dir(out, args.models, args.tasks, args.layers, args.pairs)
        t1, c1 = time.perf_counter(), cpu()
        plots = write_plots(out, workers=args.workers)
        t2, c2 = time.perf_counter(), cpu()
        report = write_html(out)
        t3, c3 = time.perf_counter(), cpu()
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]),
        }
        cli = subprocess.run(
            [sys.executable, "-m", "pytest_facebench", "report", str(out)], env=env, capture_output=True, text=True
        )
        t4 = time.perf_counter()
        if cli.returncode != 0:
            print(cli.stdout, cli.stderr, file=sys.stderr)
        rows = len(pd.read_csv(out / "results.csv"))
        print(
            f"grid: {args.models} models x {args.tasks} tasks x {args.layers} layers, {args.pairs} pairs/task "
            f"({rows} result rows), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
        )
        print(f"imports (task registry, matplotlib):  {imports:6.2f} s")
        print(f"synthetic results dir:                {t1 - t0:6.2f} s")
        print(f"write_plots ({len(plots)} PNGs):            {t2 - t1:6.2f} s wall  {c2 - c1:6.2f} s CPU")
        size = report.stat().st_size / 1e6
        print(f"write_html ({size:.1f} MB):               {t3 - t2:6.2f} s wall  {c3 - c2:6.2f} s CPU")
        print(f"write_plots + write_html:             {t3 - t1:6.2f} s wall  {c3 - c1:6.2f} s CPU   (target < 30 s)")
        print(f"python -m pytest_facebench report:    {t4 - t3:6.2f} s   (fresh interpreter, exit {cli.returncode})")


if __name__ == "__main__":
    main()
