"""Helpers of `bench/device_check.sh`: the environment, the GPU-only tests, and the summary table.

    python3 bench/device_summary.py env --out WORK/env.json [--require-cuda]
    python3 bench/device_summary.py gpu-tests [tests] [--pytest-args]
    python3 bench/device_summary.py summarize --out OUT --work WORK [--dry-run]

GPU-only tests are the tests under `tests/` decorated (function, class, or a module `pytestmark`) with a
`pytest.mark.skipif(...)` whose condition or reason names CUDA or a GPU, e.g.
`@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")`. They are found by reading
the source (no import, no collection), so listing them costs milliseconds.

`summarize` reads what the check's steps left (OUT/throughput_*.json, OUT/compile_speed.json, OUT/*.xml,
WORK/steps.tsv, WORK/env.json), writes OUT/summary.json, prints the table and exits 0 when every required step ran and
passed, 1 otherwise (missed targets are reported, never an error). Nothing here imports torch except `env`.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import platform
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

PRECISIONS = ("fp32", "bf16")
DECODES = ("pil",)  # torchvision's nvJPEG decoding was removed (issue 19)
# the performance targets of the engine (issue 19; issue 3 set the first ones)
SUSTAINED_TARGETS = {"fp32": 0.85, "bf16": 0.70}
NAIVE_COLD_TARGET = 25.0
NAIVE_WARM_TARGET = 150.0
GRID_TARGET = 20.0
TASK_COLD_MAX_S = 2.0  # the 6,000-pair task in-process
TASK_WARM_MAX_S = 0.3
TASK_PROCESS_COLD_MAX_S = 8.0  # the same task as a whole pytest process
GRID_COLD_MAX_S = 12.0  # the demo grid, `pytest benchmarks/`, cold
TIMEOUT_CODES = (124, 137)  # `timeout`: TERM worked / KILL was needed
GPU_WORDS = re.compile(r"cuda|gpu", re.IGNORECASE)
OUTPUT_FILES = (
    "summary.json",
    "check.log",
    "throughput_pil.json",
    "gpu_tests.xml",
    "xdist_grid.xml",
    "compile_speed.json",
)


# --- the environment --------------------------------------------------------------------------------
def environment() -> dict[str, Any]:
    """Versions, devices and the driver, as JSON-able data (imports torch)."""
    import torch

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cuda_available": torch.cuda.is_available(),
        "devices": [],
    }
    for name in ("torchvision", "numpy", "PIL", "xdist", "pandas"):
        try:
            env[name] = getattr(__import__(name), "__version__", "?")
        except ImportError:
            env[name] = None
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            env["devices"].append(
                {
                    "index": index,
                    "name": props.name,
                    "memory_gib": round(props.total_memory / 2**30, 1),
                    "capability": f"{props.major}.{props.minor}",
                    "multiprocessors": props.multi_processor_count,
                }
            )
    env["nvidia_smi"] = _command(["nvidia-smi", "-L"])
    env["driver"] = _command(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
    env["commit"] = _command(["git", "rev-parse", "--short", "HEAD"])
    return env


def _command(argv: list[str]) -> str | None:
    """A command's stdout, or None when it is missing or fails."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


# --- GPU-only tests ---------------------------------------------------------------------------------
def _is_gpu_skipif(node: ast.expr) -> bool:
    """`pytest.mark.skipif(<condition or reason naming cuda/gpu>)`, also inside a list of marks."""
    if isinstance(node, (ast.List, ast.Tuple)):
        return any(_is_gpu_skipif(item) for item in node.elts)
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "skipif"):
        return False
    return bool(GPU_WORDS.search(" ".join(ast.unparse(part) for part in [*node.args, *node.keywords])))


def _tests_in(body: list[ast.stmt], prefix: str, inherited: bool) -> list[str]:
    found = []
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            if inherited or any(_is_gpu_skipif(d) for d in node.decorator_list):
                found.append(f"{prefix}::{node.name}")
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            marked = (
                inherited
                or any(_is_gpu_skipif(d) for d in node.decorator_list)
                or any(
                    isinstance(s, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in s.targets)
                    and _is_gpu_skipif(s.value)
                    for s in node.body
                )
            )
            found += _tests_in(node.body, f"{prefix}::{node.name}", marked)
    return found


def find_gpu_tests(tests_dir: Path, root: Path | None = None) -> list[str]:
    """Node ids (relative to `root`, default the parent of `tests_dir`) of the GPU-only tests, in file order.
    A module whose `pytestmark` is such a skipif gives its path alone (all its tests)."""
    root = root or tests_dir.resolve().parent
    ids: list[str] = []
    for path in sorted(tests_dir.rglob("test_*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (SyntaxError, UnicodeDecodeError) as exc:
            print(f"device_summary: cannot read {path}: {exc}", file=sys.stderr)
            continue
        relative = path.resolve().relative_to(root.resolve()).as_posix()
        module_marked = any(
            isinstance(s, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in s.targets)
            and _is_gpu_skipif(s.value)
            for s in tree.body
        )
        if module_marked:
            ids.append(relative)
        else:
            ids += _tests_in(tree.body, relative, False)
    return ids


def pytest_selection(ids: list[str]) -> list[str]:
    """pytest arguments that run the tests `ids` names: their files, and `-k` with their names (a whole module by
    its file name). Files rather than node ids: a module that skips at collection (`importorskip` of an absent
    library) is then reported as skipped, where a node id in it makes pytest stop with exit 4 ("found no
    collectors") before running any other test."""
    files = list(dict.fromkeys(i.split("::", 1)[0] for i in ids))
    names = list(dict.fromkeys(i.rsplit("::", 1)[1] if "::" in i else Path(i).name for i in ids))
    return [*files, "-k", " or ".join(names)] if files else []


# --- reading the steps' outputs ---------------------------------------------------------------------
def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_steps(path: Path) -> list[dict[str, Any]]:
    """WORK/steps.tsv: name, required (1/0), rc, seconds, timeout, state (ran|skipped), note."""
    steps = []
    if not path.is_file():
        return steps
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = (line.split("\t") + [""] * 7)[:7]
        name, required, rc, seconds, limit, state, note = fields
        steps.append(
            {
                "name": name,
                "required": required == "1",
                "rc": int(rc) if rc.lstrip("-").isdigit() else None,
                "seconds": float(seconds or 0),
                "timeout_s": int(limit) if limit.lstrip("-").isdigit() else None,
                "state": state,
                "note": note,
            }
        )
    return steps


def read_junit(path: Path) -> list[dict[str, Any]] | None:
    """One entry per test case of a junit XML file (pytest's xunit1 family: `file` attributes)."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    cases = []
    for case in root.iter("testcase"):
        name, classname, file = case.get("name", ""), case.get("classname", ""), case.get("file")
        if file:
            module = file[:-3].replace("/", ".") if file.endswith(".py") else file
            inner = classname[len(module) + 1 :] if classname.startswith(module + ".") else ""
            nodeid = "::".join(p for p in (file, inner, name) if p)
        else:
            nodeid = f"{classname}::{name}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                message = (child.get("message") or "").splitlines()[0][:200] if child.get("message") else ""
                if outcome != "skipped":
                    break
        cases.append(
            {"nodeid": nodeid, "outcome": outcome, "message": message, "seconds": float(case.get("time") or 0)}
        )
    return cases


def count(cases: list[dict[str, Any]] | None) -> dict[str, int]:
    totals = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    for case in cases or []:
        totals[case["outcome"]] += 1
    return totals


# --- figures and targets ----------------------------------------------------------------------------
def _get(data: dict | None, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def model_only_limit(pil: dict | None, precision: str) -> float | None:
    """The model-only limit (a) as throughput.py divides by it: channels_last where measured (CUDA)."""
    entry = _get(pil, precision) or {}
    return entry.get("model_only_channels_last_img_s") or entry.get("model_only_img_s")


def figures(runs: dict[str, dict | None]) -> dict[str, Any]:
    """The measured figures of both throughput runs, by precision and decoder."""
    pil = runs.get("pil")
    out: dict[str, Any] = {"model_only_img_s": {}, "sustained_img_s": {}, "task_cold_s": {}, "task_warm_s": {}}
    for precision in PRECISIONS:
        entry = _get(pil, precision) or {}
        out["model_only_img_s"][precision] = {
            "plain": entry.get("model_only_img_s"),
            "channels_last": entry.get("model_only_channels_last_img_s"),
            "limit": model_only_limit(pil, precision),
        }
        for decode in DECODES:
            run = runs.get(decode)
            out["sustained_img_s"].setdefault(precision, {})[decode] = _get(run, precision, "sustained", "images_per_s")
            out["task_cold_s"].setdefault(precision, {})[decode] = _get(run, precision, "task_cold_s")
            out["task_warm_s"].setdefault(precision, {})[decode] = _get(run, precision, "task_warm_s")
    out["gpu_utilisation"] = {p: _get(pil, p, "sustained", "gpu_utilisation") for p in PRECISIONS}
    out["task_process"] = {p: _get(pil, p, "task_process") for p in PRECISIONS}
    out["naive"] = _get(pil, "naive")
    grid = _get(pil, "grid")
    out["grid"] = (
        None
        if grid is None
        else {
            k: grid.get(k)
            for k in (
                "cold",
                "warm",
                "warm_rescore",
                "cold_rc",
                "warm_rc",
                "warm_rescore_rc",
                "cold_over_warm",
                "cold_over_warm_rescore",
                "cold_tail",
                "warm_tail",
            )
        }
    )
    out["sizes"] = (
        {
            k: _get(pil, "args", k)
            for k in (
                "images",
                "pairs",
                "sustained",
                "naive_pairs",
                "batch_size",
                "model_only_iters",
                "input_size",
                "workers",
                "grid_args",
            )
        }
        if pil
        else None
    )
    out["data_generation_s"] = _get(pil, "data_generation_s")
    return out


def compile_figures(run: dict | None) -> list[dict[str, Any]]:
    """bench/compile_speed.py's measurements (eager and each torch.compile mode, by precision), as it wrote them."""
    keys = ("precision", "mode", "status", "img_s", "over_eager", "compile_s", "compiled", "compile_note", "why")
    rows = []
    for result in _get(run, "results") or []:
        row = {key: result.get(key) for key in keys}
        diff = result.get("max_abs_diff") or {}
        row["max_abs_diff"] = max(diff.values()) if diff and result.get("mode") != "off" else None
        rows.append(row)
    return rows


def _row(
    target_id: str,
    what: str,
    numerator: float | None,
    denominator: float | None,
    minimum: float,
    unit: str,
    at_most: bool = False,
) -> dict[str, Any]:
    """A target row: the measured value (numerator / denominator; the numerator alone when the denominator is
    1.0) against the target, at least `minimum`, or at most it with `at_most`."""
    value = _ratio(numerator, denominator)
    met = None if value is None or math.isnan(value) else (value <= minimum if at_most else value >= minimum)
    return {
        "id": target_id,
        "what": what,
        "numerator": numerator,
        "denominator": denominator,
        "value": value,
        "target": minimum,
        "at_most": at_most,
        "unit": unit,
        "result": "MISSING" if met is None else ("PASS" if met else "FAIL"),
    }


def target_rows(runs: dict[str, dict | None]) -> list[dict[str, Any]]:
    """Every target row, whether measured or not (MISSING), in a fixed order."""
    pil = runs.get("pil")
    naive_s = _get(pil, "naive", "extrapolated_s")
    rows = []
    for decode in DECODES:
        for precision in PRECISIONS:
            rows.append(
                _row(
                    f"sustained/model_only[{precision},{decode}]",
                    f"{precision} {decode}: sustained img/s / model-only img/s",
                    _get(runs.get(decode), precision, "sustained", "images_per_s"),
                    model_only_limit(pil, precision),
                    SUSTAINED_TARGETS[precision],
                    "fraction",
                )
            )
    for decode in DECODES:
        for precision in PRECISIONS:
            rows.append(
                _row(
                    f"naive/task_cold[{precision},{decode}]",
                    f"{precision} {decode}: naive pipeline s / facebench cold task s",
                    naive_s,
                    _get(runs.get(decode), precision, "task_cold_s"),
                    NAIVE_COLD_TARGET,
                    "x",
                )
            )
            rows.append(
                _row(
                    f"naive/task_warm[{precision},{decode}]",
                    f"{precision} {decode}: naive pipeline s / facebench warm task s",
                    naive_s,
                    _get(runs.get(decode), precision, "task_warm_s"),
                    NAIVE_WARM_TARGET,
                    "x",
                )
            )
    for precision in PRECISIONS:
        rows.append(
            _row(
                f"task_cold_s[{precision}]",
                f"{precision}: the task in-process, cold, s",
                _get(pil, precision, "task_cold_s"),
                1.0,
                TASK_COLD_MAX_S,
                "s",
                at_most=True,
            )
        )
        rows.append(
            _row(
                f"task_warm_s[{precision}]",
                f"{precision}: the task in-process, warm, s",
                _get(pil, precision, "task_warm_s"),
                1.0,
                TASK_WARM_MAX_S,
                "s",
                at_most=True,
            )
        )
        if precision != PRECISIONS[0]:
            continue  # throughput.py runs the task as a pytest process in its first precision only
        rows.append(
            _row(
                f"task_process_cold_s[{precision}]",
                f"{precision}: the task as a whole pytest process, cold, s",
                _get(pil, precision, "task_process", "cold"),
                1.0,
                TASK_PROCESS_COLD_MAX_S,
                "s",
                at_most=True,
            )
        )
    rows.append(
        _row(
            "grid_cold_s",
            "pytest benchmarks/, cold, s",
            _get(pil, "grid", "cold"),
            1.0,
            GRID_COLD_MAX_S,
            "s",
            at_most=True,
        )
    )
    rows.append(
        _row(
            "grid_cold/grid_warm",
            "pytest benchmarks/: cold s / warm rerun s",
            _get(pil, "grid", "cold"),
            _get(pil, "grid", "warm"),
            GRID_TARGET,
            "x",
        )
    )
    return rows


# --- step statuses ----------------------------------------------------------------------------------
def step_status(
    step: dict[str, Any],
    dry_run: bool,
    runs: dict[str, dict | None],
    gpu_cases: list[dict] | None,
    xdist_cases: list[dict] | None,
    compile_run: dict | None = None,
) -> tuple[str, str]:
    """(status, why): ok | failed | timeout | skipped, for one step, from its exit status and its outputs."""
    if step["state"] == "skipped":
        return "skipped", step["note"] or "not run"
    if step["rc"] in TIMEOUT_CODES:
        return "timeout", f"stopped after {step['timeout_s']} s"
    if step["rc"] != 0:
        return "failed", step["note"] or f"exit status {step['rc']}"
    name = step["name"]
    if name.startswith("throughput_"):
        run = runs.get(name.removeprefix("throughput_"))
        if run is None:
            return "failed", "no JSON written"
        grid = run.get("grid") or {}
        broken = [label for label in ("cold", "warm", "warm_rescore") if grid.get(f"{label}_rc") not in (None, 0)]
        if broken:
            return "failed", f"pytest benchmarks/ exited non-zero in the {', '.join(broken)} run(s)"
        process = [
            f"{precision} {label}"
            for precision in PRECISIONS
            for label in ("cold", "warm")
            if (_get(run, precision, "task_process") or {}).get(f"{label}_rc") not in (None, 0)
        ]
        if process:
            return "failed", f"the task as a pytest process exited non-zero ({', '.join(process)})"
    if name == "gpu_tests":
        if gpu_cases is None or not gpu_cases:
            return "failed", "no junit XML / no test ran"
        no_gpu = [c for c in gpu_cases if c["outcome"] == "skipped" and GPU_WORDS.search(c.get("message") or "")]
        if not dry_run and no_gpu:  # skipped for want of a library (dlib) is fine; for want of the GPU is not
            return "failed", f"{len(no_gpu)} GPU-only test(s) skipped on the GPU machine (CUDA not seen?)"
    if name == "xdist_grid" and xdist_cases is None:
        return "failed", "no junit XML"
    if name == "compile_speed" and compile_run is None:
        return "failed", "no JSON written"
    return "ok", ""


# --- the summary ------------------------------------------------------------------------------------
def summarize(
    out: Path, work: Path, dry_run: bool, budget_s: float | None = None, wall_s: float | None = None
) -> dict[str, Any]:
    runs = {decode: read_json(out / f"throughput_{decode}.json") for decode in DECODES}
    gpu_cases = read_junit(out / "gpu_tests.xml")
    xdist_cases = read_junit(out / "xdist_grid.xml")
    compile_run = read_json(out / "compile_speed.json")
    steps = read_steps(work / "steps.tsv")
    for step in steps:
        step["status"], step["why"] = step_status(step, dry_run, runs, gpu_cases, xdist_cases, compile_run)
    xdist_step = next((s for s in steps if s["name"] == "xdist_grid"), None)
    run_json = read_json(work / "xdist" / "out" / "run.json")
    xdist = {
        **count(xdist_cases),
        "seconds": xdist_step["seconds"] if xdist_step else None,
        "status": xdist_step["status"] if xdist_step else "missing",
        "devices": _get(run_json, "engine", "devices"),
        "workers": _get(run_json, "xdist_workers"),
    }
    rows = target_rows(runs)
    broken = [s["name"] for s in steps if s["status"] != "ok" and (s["required"] or s["status"] != "skipped")]
    expected = {"env", "throughput_pil", "gpu_tests", "xdist_grid"}  # compile_speed is optional
    broken += sorted(expected - {s["name"] for s in steps})  # a step the script never recorded
    summary = {
        "dry_run": dry_run,
        "env": read_json(work / "env.json"),
        "steps": steps,
        "figures": {**figures(runs), "compile": compile_figures(compile_run)},
        "targets": rows,
        "gpu_tests": gpu_cases or [],
        "xdist_grid": xdist,
        "steps_ok": not broken,
        "broken_steps": broken,
        "targets_met": sum(r["result"] == "PASS" for r in rows),
        "targets_total": len(rows),
        "budget_s": budget_s,
        "wall_s": wall_s,
        "exit_status": 0 if not broken else 1,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _num(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def format_table(summary: dict[str, Any]) -> str:
    """The printed summary: steps, figures, targets (PASS/FAIL/MISSING), GPU-only tests, the xdist grid."""
    env = summary.get("env") or {}
    devices = ", ".join(d["name"] for d in env.get("devices", [])) or "no CUDA device"
    lines = [
        f"== facebench device check{' (DRY RUN: CPU, tiny sizes)' if summary['dry_run'] else ''} ==",
        f"{devices}; torch {env.get('torch', '?')} (CUDA {env.get('torch_cuda')}), torchvision "
        f"{env.get('torchvision', '?')}, python {env.get('python', '?')}, {env.get('cpus', '?')} CPUs"
        + (f", driver {env['driver']}" if env.get("driver") else ""),
        "",
        f"{'step':<24}{'status':<9}{'seconds':>8}{'timeout':>8}  note",
    ]
    for s in summary["steps"]:
        lines.append(f"{s['name']:<24}{s['status']:<9}{s['seconds']:>8.1f}{_num(s['timeout_s'], 'd'):>8}  {s['why']}")
    f = summary["figures"]
    sizes = f.get("sizes") or {}
    lines += [
        "",
        "figures (VGG16, layers avgpool + classifier.5; sizes: "
        + (", ".join(f"{k} {v}" for k, v in sizes.items() if v not in (None, "")) or "—")
        + ")",
        (
            f"{'':<8}{'model-only':>12}{'chan_last':>11}{'sustained':>11}{'GPU util':>10}"
            f"{'task cold':>11}{'warm':>8}{'pytest cold':>13}{'warm':>7}"
        ),
    ]
    for p in PRECISIONS:
        m, s = f["model_only_img_s"][p], f["sustained_img_s"][p]
        util = (f.get("gpu_utilisation") or {}).get(p) or {}
        process = (f.get("task_process") or {}).get(p) or {}
        lines.append(
            f"{p:<8}{_num(m['plain'], '.0f'):>12}{_num(m['channels_last'], '.0f'):>11}"
            f"{_num(s['pil'], '.0f'):>11}{_num(util.get('mean_pct'), '.0f') + ('%' if util else ''):>10}"
            f"{_num(f['task_cold_s'][p]['pil'], '.2f'):>11}{_num(f['task_warm_s'][p]['pil'], '.3f'):>8}"
            f"{_num(process.get('cold'), '.1f'):>13}{_num(process.get('warm'), '.1f'):>7}"
        )
    lines.append(
        "        (img/s for model-only and sustained, the GPU's mean utilisation during the sustained run; seconds for"
        " the 6,000-pair task in-process and as a whole pytest process, cold and warm cache)"
    )
    naive = f.get("naive")
    if naive:
        lines.append(
            f"naive pipeline: {naive['pairs']} pairs in {naive['seconds']:.1f} s, "
            f"extrapolated {naive['extrapolated_s']:.1f} s"
        )
    grid = f.get("grid")
    if grid:
        lines.append(
            f"pytest benchmarks/ ({', '.join(sizes.get('grid_args') and [sizes['grid_args']] or ['whole grid'])}): "
            f"cold {_num(grid['cold'], '.1f')} s, warm {_num(grid['warm'], '.1f')} s, "
            f"warm --facebench-rescore {_num(grid['warm_rescore'], '.1f')} s"
        )
    lines += _compile_lines(f.get("compile") or [])
    lines += ["", f"{'target':<44}{'measured':>10}{'target':>9}  result"]
    for r in summary["targets"]:
        unit = {"x": "×", "s": " s"}.get(r["unit"], "")
        bound = ("≤ " if r.get("at_most") else "≥ ") + format(r["target"], "g") + unit
        lines.append(
            f"{r['id']:<44}{_num(r['value'], '.2f') + (unit if r['value'] is not None else ''):>10}{bound:>9}"
            f"  {r['result']}"
        )
    lines += ["", "GPU-only tests:"]
    for case in summary["gpu_tests"] or [{"nodeid": "(none ran)", "outcome": "", "message": ""}]:
        lines.append(f"  {case['nodeid']:<60} {case['outcome']}" + (f" ({case['message']})" if case["message"] else ""))
    x = summary["xdist_grid"]
    lines.append(
        f"pytest benchmarks/ -n 2: {x['status']} in {_num(x['seconds'], '.1f')} s: {x['passed']} passed, "
        f"{x['failed'] + x['error']} failed, {x['skipped']} skipped; devices {x['devices']}"
    )
    lines += [
        "",
        f"targets met: {summary['targets_met']}/{summary['targets_total']}; "
        + ("every step ran" if summary["steps_ok"] else f"BROKEN steps: {', '.join(summary['broken_steps'])}")
        + (
            f"; wall {summary['wall_s']:.0f} s of a {summary['budget_s']:.0f} s budget"
            if summary.get("wall_s") is not None and summary.get("budget_s")
            else ""
        )
        + f"; exit {summary['exit_status']}",
    ]
    return "\n".join(lines)


def _compile_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The torch.compile figures (bench/compile_speed.py), none when the step did not run."""
    if not rows:
        return []
    lines = [
        "",
        "torch.compile, model-only (bench/compile_speed.py: cold compiles; × eager: img/s over eager's)",
        f"{'':<8}{'mode':<17}{'status':<9}{'img/s':>9}{'× eager':>9}{'compile s':>11}{'max |Δ|':>10}  note",
    ]
    for r in rows:
        note = r.get("why") or r.get("compile_note") or ""
        lines.append(
            f"{r['precision'] or '':<8}{(r['mode'] or '').replace('off', 'eager'):<17}{r['status'] or '':<9}"
            f"{_num(r['img_s'], '.0f'):>9}{_num(r['over_eager'], '.2f'):>9}{_num(r['compile_s'], '.1f'):>11}"
            f"{_num(r['max_abs_diff'], '.1e'):>10}  {note}"
        )
    return lines


# --- command line -----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    env = commands.add_parser("env", help="write the environment as JSON")
    env.add_argument("--out", type=Path, required=True)
    env.add_argument("--require-cuda", action="store_true", help="exit 1 when torch sees no CUDA device")
    gpu = commands.add_parser("gpu-tests", help="print the node ids of the GPU-only tests, one a line")
    gpu.add_argument("tests", type=Path, nargs="?", default=Path("tests"))
    gpu.add_argument(
        "--pytest-args", action="store_true", help="print the pytest arguments that select them instead (one a line)"
    )
    summary = commands.add_parser("summarize", help="write OUT/summary.json and print the table")
    summary.add_argument("--out", type=Path, required=True)
    summary.add_argument("--work", type=Path, required=True)
    summary.add_argument("--dry-run", action="store_true")
    summary.add_argument("--budget", type=float, default=None)
    summary.add_argument("--wall", type=float, default=None)
    args = parser.parse_args(argv)
    if args.command == "env":
        data = environment()
        args.out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        print(json.dumps(data, indent=2))
        print(_command(["nvidia-smi"]) or "nvidia-smi: not available")  # clocks, memory, other processes
        if args.require_cuda and not data["cuda_available"]:
            print("device_summary: torch sees no CUDA device", file=sys.stderr)
            return 1
        return 0
    if args.command == "gpu-tests":
        found = find_gpu_tests(args.tests)
        print("\n".join(pytest_selection(found) if args.pytest_args else found))
        return 0
    result = summarize(args.out, args.work, args.dry_run, args.budget, args.wall)
    print(format_table(result))
    return result["exit_status"]


if __name__ == "__main__":
    sys.exit(main())
