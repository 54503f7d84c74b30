"""Generates the embedded demo stimuli (deterministic, offline) before the grid is collected."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_configure(config: pytest.Config) -> None:
    sys.path.insert(0, str(HERE))
    from demo_data import ensure_demo_data

    ensure_demo_data(HERE / ".demo_data")
