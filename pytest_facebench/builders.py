"""Grid specs → objects: a model entry becomes an (unbuilt) model, a task entry a loaded task. Errors name
the grid entry, the argument and what was expected, in one line."""

from __future__ import annotations

import inspect
import traceback
from pathlib import Path
from typing import Any, cast

from .config import ModelSpec, TaskSpec
from .errors import ConfigError, FacebenchError, ModelError
from .model import BaseModel
from .registry import import_factory, resolve_family, task_class
from .tasks.base import BaseTask


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
        model.readout = spec.readout
    return model


SIMPLE_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
}


def check_kwarg_types(factory: Any, kwargs: dict[str, Any], where: str) -> None:
    """A grid kwarg whose value does not match a plain annotation of the constructor (`size: int`, `power: float
    | None`) is named here, instead of failing later deep in preprocessing or a forward pass."""
    inits = [klass.__dict__["__init__"] for klass in getattr(factory, "__mro__", ()) if "__init__" in klass.__dict__]
    annotations: dict[str, Any] = {}
    for init in inits or [factory]:
        try:
            parameters = inspect.signature(init).parameters
        except (TypeError, ValueError):
            continue
        for name, parameter in parameters.items():
            annotations.setdefault(name, parameter.annotation)
    for name, value in kwargs.items():
        allowed = _simple_types(annotations.get(name, inspect.Parameter.empty))
        if allowed is None or value is None and type(None) in allowed:
            continue
        ok = isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed)
        if not ok:
            names = " or ".join(sorted({t.__name__ for t in allowed if t is not type(None)}))
            raise ConfigError(
                f"{where}.{name} must be {names} (the annotation of the '{name}' parameter of "
                f"{getattr(factory, '__qualname__', factory)}), got {value!r}"
            )


def _simple_types(annotation: Any) -> tuple[type, ...] | None:
    """`int`, `float | None`, `list[str]`... as the types isinstance accepts; None for anything richer."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", None)
    if not isinstance(text, str):
        return None
    allowed: list[type] = []
    for part in (p.strip() for p in text.split("|")):
        base = part.split("[", 1)[0]
        if part == "None":
            allowed.append(type(None))
        elif base in SIMPLE_TYPES:
            allowed.extend(SIMPLE_TYPES[base])
        else:
            return None
    return tuple(allowed) or None


def user_frame(exc: BaseException) -> str:
    """' (at file.py:12 in build)': the innermost frame of the user's code (not this package or a library)."""
    package = Path(__file__).resolve().parent
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
    return task.load()
