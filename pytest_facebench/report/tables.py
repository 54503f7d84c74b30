"""Provenance for run.json (versions, machine, git commit) and file-name helpers."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def environment() -> dict[str, Any]:
    """Versions and machine facts for provenance."""
    versions = {"python": platform.python_version()}
    distributions = {"sklearn": "scikit-learn", "pytest_facebench": "pytest-facebench"}  # where they differ
    for module in (
        "pytest_facebench",
        "torch",
        "torchvision",
        "transformers",
        "numpy",
        "pandas",
        "scipy",
        "sklearn",
        "pytest",
    ):
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
