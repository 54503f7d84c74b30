"""Names → code: the model families and task types a grid may name, and importing 'module:Attr' or
'file.py:Attr' from user code.

- Model families: the built-ins of `pytest_facebench.zoo` (`factory = "vgg16"`), those third-party packages
  register under the entry point group `pytest_facebench.models` (`name = "module:Class"`), or any
  'module:Class' / 'path/file.py:Class'.
- Task types: the built-ins of `pytest_facebench.tasks` (`type = "accuracy"`), the entry point group
  `pytest_facebench.tasks`, or 'module:Class' / 'path/file.py:Class' (the class's `type` names its fixture,
  `<type>_task`).

Entry points are read from installed distributions' metadata: listing them imports nothing.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import sys
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, ModelError

if TYPE_CHECKING:
    from .tasks.base import BaseTask

MODEL_GROUP = "pytest_facebench.models"
TASK_GROUP = "pytest_facebench.tasks"
BUILTIN_TASK_MODULES = {  # name → "module:Class" (imported on first use)
    "accuracy": "pytest_facebench.tasks.verification:AccuracyTask",
    "correlation": "pytest_facebench.tasks.correlation:CorrelationTask",
    "conditions": "pytest_facebench.tasks.conditions:ConditionedAverageDistances",
    "relative_difference": "pytest_facebench.tasks.relative_difference:RelativeDifferenceTask",
    "rsa": "pytest_facebench.tasks.rsa:RsaTask",
    "identification": "pytest_facebench.tasks.identification:IdentificationTask",
    "template_verification": "pytest_facebench.tasks.template_verification:TemplateVerificationTask",
}


@cache
def _entry_points(group: str) -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=group)}


def model_families() -> dict[str, tuple[str, dict[str, Any]]]:
    """Short name → ("module:Class", default kwargs): the built-in families and the registered ones."""
    from .zoo import FAMILIES

    return {**{name: (value, {}) for name, value in _entry_points(MODEL_GROUP).items()}, **FAMILIES}


def task_type_names() -> dict[str, str]:
    """Task type name → "module:Class", built-in and registered (nothing is imported)."""
    return {**_entry_points(TASK_GROUP), **BUILTIN_TASK_MODULES}


def is_path_reference(value: str) -> bool:
    """'module:Attr' or 'file.py:Attr' rather than a short name."""
    return ":" in value


def resolve_family(factory: str) -> tuple[str, dict[str, Any]]:
    """A grid's `factory`: a short family name becomes its "module:Class" and default kwargs."""
    if is_path_reference(factory):
        return factory, {}
    families = model_families()
    if factory not in families:
        close = difflib.get_close_matches(factory, sorted(families), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            f"unknown model family '{factory}'; 'factory' is a built-in or registered family "
            f"({', '.join(sorted(families))}), 'module:Class' or 'path/file.py:Class'.{hint}"
        )
    return families[factory]


def task_class(type_name: str, search_paths: list[Path] | None = None) -> type[BaseTask]:
    """The class of a grid's task `type`: a built-in or registered name, or 'module:Class' / 'file.py:Class'."""
    from .tasks.base import BaseTask

    names = task_type_names()
    if is_path_reference(type_name):
        reference = type_name
    elif type_name in names:
        reference = names[type_name]
    else:
        close = difflib.get_close_matches(type_name, sorted(names), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            f"unknown task type '{type_name}'; expected one of {', '.join(sorted(names))}, or "
            f"'module:Class' / 'path/file.py:Class'.{hint}"
        )
    try:
        cls = import_factory(reference, search_paths or [])
    except ModelError as exc:
        raise ConfigError(f"task type '{type_name}': {exc}") from None
    except Exception as exc:  # noqa: BLE001 - import-time failure of user code
        raise ConfigError(
            f"task type '{type_name}': cannot import '{reference}': {type(exc).__name__}: {exc}"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, BaseTask)):
        raise ConfigError(
            f"task type '{type_name}': '{reference}' is not a subclass of pytest_facebench.tasks.BaseTask"
        )
    if not cls.type:
        raise ConfigError(f"task type '{type_name}': class {cls.__qualname__} sets no `type` name")
    return cls


def builtin_task_types() -> dict[str, type[BaseTask]]:
    """The built-in task classes by name (imports the task modules)."""
    return {name: task_class(name) for name in BUILTIN_TASK_MODULES}


def import_factory(factory: str, search_paths: list[Path]) -> Any:
    """'package.module:Attr' (searched on sys.path plus `search_paths`) or 'path/file.py:Attr'."""
    module_name, _, attr = factory.rpartition(":")
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_absolute():
            path = next((p / path for p in search_paths if (p / path).is_file()), path)
        if not path.is_file():
            raise ModelError(f"factory file not found: {path}")
        spec = importlib.util.spec_from_file_location(f"facebench_user_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[spec.name] = module  # type: ignore[union-attr]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    else:
        for path in search_paths:
            if str(path) not in sys.path:
                sys.path.append(str(path))
        module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        public = [n for n in dir(module) if not n.startswith("_")]
        raise ModelError(f"module '{module_name}' has no '{attr}'; it defines {', '.join(public[:15])}") from None
