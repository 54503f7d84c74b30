"""Helpers for the zoo's tests (a module with a unique name: `conftest` is not importable by name when
several test folders have one)."""

from __future__ import annotations

from typing import Any

from pytest_facebench.engine.model import BaseModel
from pytest_facebench.grid.builders import build_model
from pytest_facebench.grid.config import ModelSpec

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def grid_model(
    factory: str, name: str = "m", layers: list[str] | None = None, pooling: Any = None, **kwargs: Any
) -> BaseModel:
    """A model instantiated (not built) from a grid entry `{ factory = ..., kwargs = {...} }`."""
    spec = ModelSpec(
        name=name, factory=factory, kwargs=kwargs, layers=layers or [], pooling=pooling, source=f"models[{name}]"
    )
    return build_model(spec)
