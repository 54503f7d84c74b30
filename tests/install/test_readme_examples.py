"""The README's `-k` example selects what its comment says: one model on one task of the default grid."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_readme_k_example_selects_one_model_on_one_task(tmp_path: Path) -> None:
    line = next(line for line in (REPO / "README.md").read_text().splitlines() if "# one model on one task" in line)
    expression = re.search(r'-k "([^"]+)"', line).group(1)  # type: ignore[union-attr]
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks/", "--collect-only", "-q", "-k", expression, "-p"]
        + ["no:cacheprovider", "--facebench-out", str(tmp_path / "out"), "--facebench-no-report"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    items = [x for x in collected.stdout.splitlines() if x.startswith("benchmarks/") and "::" in x]
    assert len(items) == 1, collected.stdout[-2000:]
    model, task = re.search(r"\[(.+)-(.+)\]$", items[0]).groups()  # type: ignore[union-attr]
    assert (model, task) == ("dlib_resnet", "verification")
