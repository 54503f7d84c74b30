"""results.csv, summary.csv, distances/<task>/<model>.csv and run.json."""

from __future__ import annotations

import importlib.metadata
import json
import math
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from ..results import results_frame, summary_frame


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def write_tables(out: Path, records: list[dict[str, Any]], cells: list[dict[str, Any]],
                 model_order: list[str] | None = None, task_order: list[str] | None = None) -> pd.DataFrame:
    """Write results.csv, summary.csv and the per-pair distances; return the results frame."""
    out.mkdir(parents=True, exist_ok=True)
    results = results_frame(records, model_order, task_order)
    results.to_csv(out / "results.csv", index=False)
    summary_frame(results).to_csv(out / "summary.csv", index=False)
    for cell in cells:
        if cell.get("distances"):
            path = out / "distances" / safe_name(cell["task"]) / f"{safe_name(cell['model'])}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(cell["distances"]).to_csv(path, index=False)
    return results


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(data), indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return _jsonable(value.item())
    if isinstance(value, Path):
        return str(value)
    return value


def environment() -> dict[str, Any]:
    """Versions and machine facts for provenance."""
    versions = {"python": platform.python_version()}
    distributions = {"sklearn": "scikit-learn"}  # module → distribution, where they differ
    for module in ("torch", "torchvision", "transformers", "numpy", "pandas", "scipy", "sklearn", "pytest"):
        imported = sys.modules.get(module)
        if imported is not None:
            versions[module] = getattr(imported, "__version__", "?")
            continue
        try:  # the installed version, without paying for an import (transformers takes seconds)
            versions[module] = importlib.metadata.version(distributions.get(module, module))
        except importlib.metadata.PackageNotFoundError:
            continue
    info: dict[str, Any] = {"versions": versions, "platform": platform.platform(), "machine": platform.node()}
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    info["git_commit"] = git_commit()
    return info


def git_commit(cwd: Path | None = None) -> str | None:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=cwd)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None
