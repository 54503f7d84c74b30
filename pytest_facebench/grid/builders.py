"""Grid specs → objects: a model entry becomes an (unbuilt) model, a task entry a loaded task. Errors name
the grid entry, the argument and what was expected, in one line."""

from __future__ import annotations

import difflib
import inspect
import traceback
from pathlib import Path
from typing import Any, cast

from ..engine.model import BaseModel
from ..errors import ConfigError, FacebenchError, ModelError
from ..tasks.base import BaseTask
from .config import SIMPLE_TYPES as SIMPLE_TYPES
from .config import ModelSpec, TaskSpec, check_kwarg_types
from .registry import import_factory, resolve_family, task_class


def project_root(start: Path) -> list[Path]:
    """The nearest ancestor holding pyproject.toml or .git (where a project's model modules usually live)."""
    for directory in [start.resolve(), *start.resolve().parents]:
        if (directory / "pyproject.toml").is_file() or (directory / ".git").exists():
            return [directory]
    return []


def build_model(spec: ModelSpec, device: str = "cpu", search_paths: list[Path] | None = None) -> BaseModel:
    """Instantiate (not build) the model of a grid entry; errors name the entry."""
    if spec.error:
        raise ConfigError(spec.error)
    paths = [spec.base_dir, *(search_paths or []), *project_root(spec.base_dir)]
    where = f"{spec.grid_file}, {spec.source}" if spec.grid_file else spec.source
    reference, defaults = resolve_family(spec.factory)
    kwargs = {**defaults, **spec.kwargs}
    try:
        factory = import_factory(reference, paths)
    except FacebenchError as exc:
        raise ModelError(f"{where}: cannot import factory '{spec.factory}': {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any import-time failure of user code
        raise ModelError(f"{where}: cannot import factory '{spec.factory}': {type(exc).__name__}: {exc}") from None
    extra = {"trusted": True} if spec.trusted else {}
    check_kwarg_types(factory, kwargs, f"{where}: kwargs")
    kwargs = _landmarks_detector(kwargs, spec, where)
    try:
        model = factory(
            name=spec.name, layers=spec.layers or None, pooling=spec.pooling, device=device, **kwargs, **extra
        )
    except FacebenchError as exc:
        raise ModelError(f"{where}: {exc}") from None
    except TypeError as exc:
        raise ModelError(f"{where}: {spec.factory}(...) rejected its arguments: {exc}. Check 'kwargs'") from None
    except Exception as exc:  # noqa: BLE001 - a user's constructor may raise anything
        raise ModelError(f"{where}: {spec.factory}(...) raised {type(exc).__name__}: {exc}{user_frame(exc)}") from None
    if not isinstance(model, BaseModel):
        raise ModelError(f"{where}: factory '{spec.factory}' returned {type(model).__name__}, not a BaseModel")
    if spec.readout:
        if spec.readout not in model.layers:
            close = difflib.get_close_matches(str(spec.readout), model.layers, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ModelError(
                f"{where}: 'readout' {spec.readout!r} is not one of the layers model '{spec.name}' computes "
                f"({', '.join(model.layers)}){hint} The readout is the layer thresholds and headlines use"
            )
        model.readout = spec.readout
    return model


def _landmarks_detector(kwargs: dict[str, Any], spec: ModelSpec, where: str) -> dict[str, Any]:
    """`detector = "landmarks:<file>"`: the file, relative to the grid file, must exist (a model's mistake is
    named on the model, with the path resolved, before any task runs)."""
    detector = kwargs.get("detector")
    if not isinstance(detector, str) or not detector.startswith("landmarks:") or not detector[len("landmarks:") :]:
        return kwargs
    path = Path(detector[len("landmarks:") :]).expanduser()
    if not path.is_absolute() and spec.base_dir is not None:
        path = Path(spec.base_dir) / path
    if not path.is_file():
        raise ModelError(
            f"{where}: detector landmarks file not found: {path} (from detector = {detector!r}; a relative "
            f"path is relative to the grid file's folder {spec.base_dir})"
        )
    return {**kwargs, "detector": f"landmarks:{path}"}


def user_frame(exc: BaseException) -> str:
    """' (at file.py:12 in build)': the innermost frame of the user's code (not this package or a library)."""
    package = Path(__file__).resolve().parents[1]  # pytest_facebench/
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if "site-packages" not in f.filename and not Path(f.filename).resolve().is_relative_to(package)
    ]
    if not frames:
        return ""
    frame = frames[-1]
    return f" (at {frame.filename}:{frame.lineno} in {frame.name})"


def build_task(spec: TaskSpec) -> BaseTask:
    """Instantiate and load the task of a grid entry (pairs and images validated)."""
    if spec.error:
        raise ConfigError(spec.error)
    if spec.pairs is None or spec.images is None:  # parsing sets both or records an error
        raise ConfigError(f"{spec.source}: 'pairs' and 'images' are required")
    cls = task_class(spec.type, [spec.base_dir])
    extra = (
        {"trusted": True} if spec.trusted and "trusted" in inspect.signature(cast(Any, cls).__init__).parameters else {}
    )
    where = f"{spec.grid_file}, {spec.source}" if spec.grid_file else spec.source
    check_kwarg_types(cls, spec.options, f"{where}: option")
    try:
        task = cls(
            name=spec.name,
            pairs=spec.pairs,
            images=spec.images,
            distance=spec.distance,
            columns=spec.columns,
            **spec.options,
            **extra,
        )
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if spec.headline:
        task.choose_headline(spec.headline)
    if spec.derive:
        task.derive_stimuli(dict(spec.derive))
    return task.load()
