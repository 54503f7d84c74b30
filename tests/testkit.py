"""Helpers shared by tests in several folders (importable as `testkit`: pytest puts `tests/` on sys.path for
its root conftest). Fixtures live in `conftest.py`; per-folder helpers in `stats/stats_oracles.py` and
`zoo/zoo_helpers.py`."""

from __future__ import annotations

import pytest


def cuda_available() -> bool:
    """torch is importable and sees a CUDA device (GPU-only tests skip, with a reason, otherwise)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def one_line_failure(result: pytest.RunResult, node: str) -> str:
    """The report of one failed or errored test in a pytester run, which must be a single line."""
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if line.startswith("_") and f" {node} " in line)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(("_", "="))), len(lines))
    body = [line for line in lines[start + 1 : end] if line.strip()]
    assert len(body) == 1, body
    return body[0]
