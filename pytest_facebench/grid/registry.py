"""Names → code for a grid: the model families and task types it may name, and importing 'module:Attr' or
'file.py:Attr' from user code. Both name tables are `registries.Registry` instances (lazy: nothing is imported
until a name is looked up and loaded).

- Model families: `zoo.FAMILIES`, the built-ins of `pytest_facebench.zoo` (`factory = "vgg16"`) and those
  third-party packages register under the entry point group `pytest_facebench.models` (`name = "module:Class"`),
  or any 'module:Class' / 'path/file.py:Class'.
- Task types: `TASK_TYPES`, the built-ins below (`type = "accuracy"`) and the entry point group
  `pytest_facebench.tasks`, or 'module:Class' / 'path/file.py:Class' (the class's `type` names its fixture,
  `<type>_task`).

An entry point named like a built-in (or like another package's entry point) is an error naming both when a grid
uses that name; grids that do not name it are unaffected.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, ModelError
from ..registries import Registry, import_factory, is_path_reference
from ..zoo import FAMILIES, MODEL_GROUP

if TYPE_CHECKING:
    from ..tasks.base import BaseTask

__all__ = [
    "BUILTIN_TASK_MODULES",
    "MODEL_GROUP",
    "TASK_GROUP",
    "TASK_TYPES",
    "builtin_task_types",
    "import_factory",
    "is_path_reference",
    "model_families",
    "resolve_family",
    "task_class",
    "task_type_names",
]

TASK_GROUP = "pytest_facebench.tasks"
BUILTIN_TASK_MODULES = {  # name → "module:Class" (imported on first use): one line per built-in task type
    "accuracy": "pytest_facebench.tasks.verification:AccuracyTask",
    "correlation": "pytest_facebench.tasks.correlation:CorrelationTask",
    "conditions": "pytest_facebench.tasks.conditions:ConditionedAverageDistances",
    "relative_difference": "pytest_facebench.tasks.relative_difference:RelativeDifferenceTask",
    "rsa": "pytest_facebench.tasks.rsa:RsaTask",
    "identification": "pytest_facebench.tasks.identification:IdentificationTask",
    "template_verification": "pytest_facebench.tasks.template_verification:TemplateVerificationTask",
}
TASK_TYPES: Registry[type[BaseTask]] = Registry(
    "task type",
    group=TASK_GROUP,
    expected="expected one of {names}, or 'module:Class' / 'path/file.py:Class'",
    clash_hint="rename one of them, or name the class itself as 'module:Class'",
)
for _name, _reference in BUILTIN_TASK_MODULES.items():
    TASK_TYPES.register(_name, _reference)


def model_families() -> dict[str, tuple[str, dict[str, Any]]]:
    """Short name → ("module:Class", default kwargs): the built-in families and the registered ones."""
    return {entry.name: (entry.value, dict(entry.defaults)) for entry in FAMILIES.entries()}


def task_type_names() -> dict[str, str]:
    """Task type name → "module:Class", built-in and registered (nothing is imported)."""
    return {entry.name: str(entry.value) for entry in TASK_TYPES.entries()}


def resolve_family(factory: str) -> tuple[str, dict[str, Any]]:
    """A grid's `factory`: a short family name becomes its "module:Class" and default kwargs (a ConfigError for
    an unknown name, with a did-you-mean, or one claimed by two packages)."""
    if is_path_reference(factory):
        return factory, {}
    entry = FAMILIES.entry(factory)
    return entry.value, dict(entry.defaults)


def task_class(type_name: str, search_paths: list[Path] | None = None) -> type[BaseTask]:
    """The class of a grid's task `type`: a built-in or registered name, or 'module:Class' / 'file.py:Class'."""
    if is_path_reference(type_name):
        return _task_class(type_name, type_name, search_paths or [])
    return _task_class(type_name, TASK_TYPES.entry(type_name).value, [])


def _task_class(type_name: str, reference: Any, search_paths: list[Path]) -> type[BaseTask]:
    """`reference` ('module:Class', 'file.py:Class' or the class itself) imported and checked to be a task type."""
    from ..tasks.base import BaseTask

    try:
        cls = import_factory(reference, search_paths) if isinstance(reference, str) else reference
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
    """The built-in task classes by name (imports the task modules; an entry point claiming a built-in name is
    reported where a grid uses it, not here)."""
    return {name: _task_class(name, reference, []) for name, reference in BUILTIN_TASK_MODULES.items()}
