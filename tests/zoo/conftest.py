"""Fixtures for the zoo's tests: the Hugging Face and torch caches faked inside tmp_path (nothing is ever
downloaded)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from zoo_helpers import COMMIT


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], Path]:
    """An empty Hugging Face cache in tmp_path; calling it returns where a repo's file goes (the snapshot
    layout `try_to_load_from_cache` reads, with refs/main naming the commit)."""
    import huggingface_hub.constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))

    def place(repo: str, filename: str) -> Path:
        folder = cache / f"models--{repo.replace('/', '--')}"
        (folder / "refs").mkdir(parents=True, exist_ok=True)
        (folder / "refs" / "main").write_text(COMMIT)
        target = folder / "snapshots" / COMMIT / filename
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    return place


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$TORCH_HOME inside tmp_path (torch.hub.get_dir() follows it unless set_dir was called)."""
    import torch

    home = tmp_path / "torch-home"
    home.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    return home
