"""The grid file: models × tasks (× thresholds), parsed and validated into specs.

The grid lives in `facebench.toml` (top-level `[[models]]` and `[[tasks]]` arrays) or in
`pyproject.toml` under `[tool.facebench]`. Relative paths resolve against the file's directory;
`~` and `$VARS` are expanded. Problems with one entry are kept on that entry's spec (`spec.error`)
so the other cells of the grid still run; problems with the file itself raise `ConfigError`.
"""

from __future__ import annotations

import difflib
import inspect
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import ConfigError
from .gridfile import ORIGIN, KeyPolicy, RawGrid, Target, apply_set, apply_sweeps, grid_hash, load_stack
from .gridfile import resolve_path as resolve_path

if TYPE_CHECKING:
    from ..relations.spec import RelationSpec
    from ..tasks.base import BaseTask

GRID_FILENAME = "facebench.toml"
# a name, and a swept entry's name `<name>[<key>:<value>]...` (gridfile.apply_sweeps)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.]+(\[[A-Za-z0-9_.]+:[A-Za-z0-9_.+-]+\])*$")
MODEL_KEYS = {"name", "factory", "layers", "pooling", "kwargs", "readout", "reference", "trusted", "color", "label"}
MODEL_KEYS |= {"tags"}  # metadata for relations across models (relations/spec.py)
ALIGNMENT_KEYS = ("align", "detector", "face_select", "on_missing")  # model keys passed on as kwargs (faces/)
MODEL_KEYS |= set(ALIGNMENT_KEYS)
TASK_KEYS = {
    "name",
    "type",
    "pairs",
    "images",
    "distance",
    "columns",
    "headline",
    "derive",
    "thresholds",
    "models",
    "reference",
    "tolerances",
    "trusted",
}
# `[defaults]` keys beyond the task types' own options: they apply to every task that does not set them.
DEFAULT_KEYS = {"distance", "tolerances", "trusted"}


@dataclass
class ModelSpec:
    """One `[[models]]` entry. `factory` is a family name ('vgg16'), 'module:Class' or 'path/to/file.py:Class'."""

    name: str
    factory: str = ""
    layers: list[str] = field(default_factory=list)
    pooling: dict[str, str] | str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    readout: str | None = None
    reference: dict[str, Any] = field(default_factory=dict)
    trusted: bool = False  # may a checkpoint be unpickled beyond tensors (runs code from the file)
    color: str | None = None  # the model's colour in every figure (any matplotlib colour); default: by its name
    label: str | None = None  # the model's name in figures (e.g. "VGG16 (untrained)"); default: its name
    tags: dict[str, str | float | bool] = field(default_factory=dict)  # e.g. { diet = "faces" }: relations
    source: str = ""
    base_dir: Path = Path(".")
    grid_file: Path | None = None
    error: str | None = None
    duplicate: bool = False  # a second entry of an existing name: reported once, never parametrized


@dataclass
class TaskSpec:
    """One `[[tasks]]` entry; `options` are the type-specific keys (e.g. `method`, `groups`)."""

    name: str
    type: str = ""
    pairs: Path | None = None
    images: Path | None = None
    distance: str = "cosine"
    columns: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    thresholds: list[dict[str, Any]] = field(default_factory=list)
    tolerances: dict[str, float] = field(default_factory=dict)
    models: list[str] | None = None
    reference: dict[str, Any] = field(default_factory=dict)
    trusted: bool = False  # may a data file (e.g. a pickled pack) be unpickled
    headline: str | None = None  # the metric of summary tables, when not the type's own headline
    derive: dict[str, tuple[str, ...]] = field(default_factory=dict)  # derived conditions (faces.stimuli)
    source: str = ""
    base_dir: Path = Path(".")  # where 'file.py:Class' types and relative paths resolve
    kind: str = ""  # the task class's `type` (its fixture is `<kind>_task`); equals `type` for named types
    grid_file: Path | None = None
    error: str | None = None
    duplicate: bool = False


@dataclass
class Grid:
    """A parsed grid: valid and invalid entries, in file order."""

    path: Path
    sha256: str
    models: list[ModelSpec]
    tasks: list[TaskSpec]
    errors: list[str] = field(default_factory=list)
    raw: RawGrid | None = None  # the effective grid's data and its source files (grid.toml)
    relations: list[RelationSpec] = field(default_factory=list)  # `[[relations]]` across models


def find_grid_file(start_dirs: list[Path], rootdir: Path) -> Path | None:
    """The nearest `facebench.toml` walking up from each start dir to rootdir, else a pyproject
    with `[tool.facebench]` in rootdir."""
    rootdir = rootdir.resolve()
    for start in start_dirs:
        directory = start.resolve()
        if directory.is_file():
            directory = directory.parent
        while True:
            candidate = directory / GRID_FILENAME
            if candidate.is_file():
                return candidate
            if directory == rootdir or directory.parent == directory or rootdir not in directory.parents:
                break
            directory = directory.parent
    if (rootdir / GRID_FILENAME).is_file():
        return rootdir / GRID_FILENAME
    pyproject = rootdir / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            return None
        if "facebench" in data.get("tool", {}):
            return pyproject
    return None


def load_grid(
    path: Path | str | Sequence[Path | str], overrides: Sequence[str] = (), sweeps: Sequence[str] = ()
) -> Grid:
    """Parse and validate a grid: one file or several stacked in order, then `--facebench-set` overrides and
    `--facebench-sweep` expansions (`gridfile`). File-level problems raise; entry-level ones are kept."""
    raw = effective_grid(path, overrides, sweeps)
    grid = parse_grid(raw.data, raw.path, grid_hash(raw.data), raw.prefix)
    grid.raw = raw
    return grid


def effective_grid(
    path: Path | str | Sequence[Path | str], overrides: Sequence[str] = (), sweeps: Sequence[str] = ()
) -> RawGrid:
    """The grid's data after stacking, overrides and sweeps (before validation): what `config show` prints and
    every run saves as grid.toml."""
    paths = [Path(p) for p in ([path] if isinstance(path, (str, Path)) else path)]
    raw = load_stack(paths)
    task_types = _grid_task_types(raw.data, raw.path)
    policy, declared = key_policy(task_types), declared_types(task_types)
    for assignment in overrides:
        apply_set(raw, assignment, policy, declared)
    if sweeps:
        apply_sweeps(raw, sweeps, policy, declared)
    return raw


# Types of the grid's own keys, for overrides of keys an entry does not set (`--facebench-set`)
KEY_TYPES: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(("name", "factory", "readout", "color", "label", "type", "pairs", "images", "headline"), (str,)),
    **dict.fromkeys(("distance", *ALIGNMENT_KEYS), (str,)),
    **dict.fromkeys(("layers", "models", "thresholds"), (list,)),
    **dict.fromkeys(("kwargs", "columns", "tolerances", "reference"), (dict,)),
    "pooling": (str, dict),
    "trusted": (bool,),
}


SIMPLE_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
}


def parameter_annotations(factory: Any) -> dict[str, Any]:
    """The annotations of a class's constructor parameters (its bases' too, nearest first)."""
    inits = [klass.__dict__["__init__"] for klass in getattr(factory, "__mro__", ()) if "__init__" in klass.__dict__]
    annotations: dict[str, Any] = {}
    for init in inits or [factory]:
        try:
            parameters = inspect.signature(init).parameters
        except (TypeError, ValueError):
            continue
        for name, parameter in parameters.items():
            annotations.setdefault(name, parameter.annotation)
    return annotations


def check_kwarg_types(factory: Any, kwargs: dict[str, Any], where: str) -> None:
    """A grid kwarg whose value does not match a plain annotation of the constructor (`size: int`, `power: float
    | None`) is named here, instead of failing later deep in preprocessing or a forward pass."""
    annotations = parameter_annotations(factory)
    for name, value in kwargs.items():
        allowed = simple_types(annotations.get(name, inspect.Parameter.empty))
        if allowed is None or value is None and type(None) in allowed:
            continue
        ok = isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed)
        if not ok:
            names = " or ".join(sorted({t.__name__ for t in allowed if t is not type(None)}))
            raise ConfigError(
                f"{where}.{name} must be {names} (the annotation of the '{name}' parameter of "
                f"{getattr(factory, '__qualname__', factory)}), got {value!r}"
            )


def simple_types(annotation: Any) -> tuple[type, ...] | None:
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


def declared_types(task_types: dict[str, type[BaseTask]]) -> Callable[[Target], tuple[type, ...] | None]:
    """The type a key an entry does not set must have: the grid's own keys (`KEY_TYPES`), a task option's or
    a model kwarg's plain annotation (None: unknown, the value is checked when the cell is built)."""

    def declared(target: Target) -> tuple[type, ...] | None:
        key = target.key
        if len(key) == 1 and key[0] in KEY_TYPES and target.section != "defaults":
            return KEY_TYPES[key[0]]
        owner: Any = None
        if target.section == "tasks" and len(key) == 1:
            owner = task_types.get(str(target.entry.get("type")))
        elif target.section == "defaults" and len(key) == 1:
            owners = [cls for cls in task_types.values() if key[0] in _task_options(cls)]
            found = {simple_types(parameter_annotations(cls).get(key[0])) for cls in owners}
            return found.pop() if len(found) == 1 else None
        elif target.section == "models" and len(key) == 2 and key[0] == "kwargs":
            owner = _factory(target.entry)
        if owner is None:
            return None
        allowed = simple_types(parameter_annotations(owner).get(key[-1], inspect.Parameter.empty))
        return None if allowed is None or type(None) in allowed and len(allowed) == 1 else allowed

    return declared


def key_policy(task_types: dict[str, type[BaseTask]]) -> KeyPolicy:
    """Which keys an override or sweep may name at each level of an entry (None: any)."""

    def allowed(section: str, entry: dict[str, Any] | None, above: tuple[str, ...]) -> set[str] | None:
        if section == "defaults":
            return DEFAULT_KEYS | {o for cls in task_types.values() for o in _task_options(cls)} if not above else None
        if section == "models":
            if not above:
                return set(MODEL_KEYS)
            return _factory_parameters(entry or {}) if above == ("kwargs",) else None
        if above:
            return None
        task_cls = task_types.get(str((entry or {}).get("type")))
        return TASK_KEYS | _task_options(task_cls) if task_cls is not None else None

    return allowed


def _factory(entry: dict[str, Any]) -> Any:
    """A model entry's factory (class), or None when it cannot be imported (reported on its entry)."""
    from .registry import import_factory, resolve_family

    origin = entry.get(ORIGIN) or {}
    try:
        reference, _ = resolve_family(str(entry.get("factory")))
        return import_factory(reference, [Path(origin.get("file", ".")).parent])
    except Exception:  # noqa: BLE001 - an unimportable factory is reported on its entry
        return None


def _factory_parameters(entry: dict[str, Any]) -> set[str] | None:
    """The keyword parameters a model entry's factory takes (None when it takes **kwargs or cannot be
    imported: then any key goes, and the factory itself checks)."""
    from .registry import resolve_family

    factory = _factory(entry)
    if factory is None:
        return None
    names: set[str] = set(resolve_family(str(entry.get("factory")))[1])
    for klass in getattr(factory, "__mro__", (factory,)):
        init = klass.__dict__.get("__init__") if isinstance(klass, type) else klass
        if init is None:
            continue
        try:
            parameters = inspect.signature(init).parameters
        except (TypeError, ValueError):
            return None
        names |= {n for n, p in parameters.items() if p.kind is p.KEYWORD_ONLY or p.kind is p.POSITIONAL_OR_KEYWORD}
        if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            return names - {"self", "name", "layers", "pooling", "device"}
    return None


def parse_grid(data: dict[str, Any], path: Path, sha256: str, prefix: str = "") -> Grid:
    """Validate the parsed TOML of a grid file into a `Grid`."""
    unknown = set(data) - {"models", "tasks", "defaults", "relations"}
    if unknown:
        raise ConfigError(
            f"unknown top-level key(s) {sorted(unknown)}; expected 'models', 'tasks' and optionally 'defaults' "
            "and 'relations'",
            path=path,
            key=prefix.rstrip(".") or None,
        )
    task_types = _grid_task_types(data, path)
    defaults = _defaults(data.get("defaults", {}), task_types, path, prefix)
    models = [_parse_model(entry, i, path, prefix) for i, entry in enumerate(_array(data, "models", path, prefix))]
    tasks = [
        _parse_task(entry, i, path, prefix, task_types, defaults)
        for i, entry in enumerate(_array(data, "tasks", path, prefix))
    ]
    errors = _mark_duplicates(models, "model", path) + _mark_duplicates(tasks, "task", path)
    errors += _check_task_models(tasks, models, path)
    from ..relations.spec import check_tag_types, grid_tags, parse_relations

    errors += check_tag_types(models, path)
    metrics = {
        t.name: valid_metrics(task_types[t.type]) if t.type in task_types else None for t in tasks if not t.error
    }
    relations = parse_relations(data.get("relations", []), path, prefix, metrics, grid_tags(models))
    errors += [r.error for r in relations if r.error]
    return Grid(path=path, sha256=sha256, models=models, tasks=tasks, errors=errors, relations=relations)


def _grid_task_types(data: dict[str, Any], path: Path) -> dict[str, type[BaseTask]]:
    """The built-in task classes, plus the registered or 'module:Class' types this grid names (for options
    and defaults); a type that cannot be imported is reported on its entry."""
    from .registry import builtin_task_types, task_class

    types: dict[str, type[BaseTask]] = dict(builtin_task_types())
    for entry in data.get("tasks", []) if isinstance(data.get("tasks"), list) else []:
        name = entry.get("type") if isinstance(entry, dict) else None
        if isinstance(name, str) and name not in types:
            try:
                types[name] = task_class(name, [path.parent])
            except ConfigError:
                continue
    return types


def _defaults(defaults: Any, task_types: dict[str, type[BaseTask]], path: Path, prefix: str) -> dict[str, Any]:
    """`[defaults]`: every key must be an option of some task type (or distance, tolerances, trusted)."""
    if not isinstance(defaults, dict):
        raise ConfigError(
            "[defaults] must be a table of task options, e.g. distance = 'cosine'", path=path, key=prefix + "defaults"
        )
    allowed = DEFAULT_KEYS | {option for cls in task_types.values() for option in _task_options(cls)}
    for key in defaults:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"unknown key '{key}'{hint} [defaults] takes the task options that apply to every task "
                f"(distance, n_boot, seed, ci, a type's own options...): {', '.join(sorted(allowed))}",
                path=path,
                key=f"{prefix}defaults",
            )
    return defaults


def _check_task_models(tasks: list[TaskSpec], models: list[ModelSpec], path: Path) -> list[str]:
    """A task restricted to a model that the grid does not define would silently never run: an error."""
    names = [m.name for m in models]
    errors = []
    for task in tasks:
        unknown = [m for m in task.models or [] if m not in names]
        if unknown and task.error is None:
            hints = [
                f"'{m}'"
                + (f" (did you mean '{close[0]}'?)" if (close := difflib.get_close_matches(m, names, n=1)) else "")
                for m in unknown
            ]
            task.error = (
                f"{path}, {task.source}: 'models' names {', '.join(hints)}, not in the grid; its models are "
                f"{', '.join(names) or 'none'}"
            )
            errors.append(task.error)
    return errors


def _array(data: dict[str, Any], key: str, path: Path, prefix: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ConfigError(
            f"expected an array of tables ([[{key}]]), got {type(value).__name__}", path=path, key=prefix + key
        )
    return value


def _mark_duplicates(specs: list[Any], kind: str, path: Path) -> list[str]:
    seen: dict[str, str] = {}
    errors = []
    for spec in specs:
        if spec.name in seen and spec.error is None:
            spec.error = (
                f"{path}, {spec.source}: duplicate {kind} name '{spec.name}' (first defined at "
                f"{seen[spec.name]}); {kind} names must be unique"
            )
            spec.duplicate = True
            errors.append(spec.error)
        seen.setdefault(spec.name, spec.source)
    return errors


def _entry_name(entry: Any, where: str) -> str:
    if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"]:
        return entry["name"]
    return where


def _check_name(name: str, where: str, path: Path) -> None:
    if not NAME_PATTERN.match(name):
        raise ConfigError(
            f"name '{name}' may only contain letters, digits, '_' and '.' (it becomes part of test ids and file names)",
            path=path,
            key=where,
        )


def _unknown_keys(entry: dict[str, Any], allowed: set[str], where: str, path: Path) -> None:
    for key in entry:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"unknown key '{key}'{hint} Valid keys: {', '.join(sorted(allowed))}", path=path, key=where
            )


def _origin(entry: Any, where: str, path: Path) -> tuple[Path, str, Any]:
    """The file and position that defined an entry (stacked grids), and the entry without the marker."""
    if isinstance(entry, dict) and ORIGIN in entry:
        origin = entry[ORIGIN] or {}
        entry = {k: v for k, v in entry.items() if k != ORIGIN}
        return Path(origin.get("file", path)), str(origin.get("where", where)), entry
    return path, where, entry


def _parse_model(entry: Any, index: int, path: Path, prefix: str) -> ModelSpec:
    path, where, entry = _origin(entry, f"{prefix}models[{index}]", path)
    spec = ModelSpec(name=_entry_name(entry, where), source=where, base_dir=path.parent, grid_file=path)
    try:
        if not isinstance(entry, dict):
            raise ConfigError("expected a table with 'name' and 'factory'", path=path, key=where)
        if "name" not in entry:
            raise ConfigError("missing required key 'name'", path=path, key=where)
        _check_name(spec.name, where, path)
        where = f"{where} ('{spec.name}')"
        spec.source = where
        _unknown_keys(entry, MODEL_KEYS, where, path)
        factory = entry.get("factory")
        if not isinstance(factory, str) or not factory:
            raise ConfigError(
                f"'factory' must be a model family such as 'vgg16', 'module:Class' or 'file.py:Class', got {factory!r}",
                path=path,
                key=where,
            )
        from .registry import resolve_family

        try:
            resolve_family(factory)
        except ConfigError as exc:
            raise ConfigError(str(exc), path=path, key=where) from None
        spec.factory = factory
        layers = entry.get("layers", [])
        if isinstance(layers, str):
            layers = [layers]
        if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
            raise ConfigError(
                "'layers' must be a list of module names such as ['features.30', 'classifier.5']", path=path, key=where
            )
        spec.layers = layers
        pooling = entry.get("pooling")
        if pooling is not None and not isinstance(pooling, (str, dict)):
            raise ConfigError("'pooling' must be a string or a table {layer = rule}", path=path, key=where)
        spec.pooling = pooling
        kwargs = entry.get("kwargs", {})
        if not isinstance(kwargs, dict):
            raise ConfigError("'kwargs' must be a table", path=path, key=where)
        for key in ALIGNMENT_KEYS:  # `align = "arcface_112"` in a model entry: the model's face alignment
            if key in entry:
                if key in kwargs:
                    raise ConfigError(f"'{key}' is given twice (as a key and in kwargs)", path=path, key=where)
                if not isinstance(entry[key], str):
                    raise ConfigError(f"'{key}' must be a string, got {entry[key]!r}", path=path, key=where)
                kwargs = {**kwargs, key: entry[key]}
        spec.kwargs = kwargs
        spec.readout = entry.get("readout")
        if spec.readout is not None and spec.layers and spec.readout not in spec.layers:
            raise ConfigError(
                f"'readout' {spec.readout!r} is not among the listed layers {spec.layers}", path=path, key=where
            )
        spec.reference = entry.get("reference", {})
        spec.trusted = _boolean(entry.get("trusted", False), "trusted", path, where)
        spec.color = _color(entry.get("color"), path, where)
        label = entry.get("label")
        if label is not None and (not isinstance(label, str) or not label.strip()):
            raise ConfigError(
                f"'label' must be a non-empty string such as 'VGG16 (untrained)', got {label!r}", path=path, key=where
            )
        spec.label = label
        if "tags" in entry:
            from ..relations.spec import parse_tags

            spec.tags = parse_tags(entry["tags"], path, where)
    except ConfigError as exc:
        spec.error = str(exc)
    return spec


def _color(value: Any, path: Path, where: str) -> str | None:
    """A model's `color`: any colour matplotlib knows ('#1f77b4', 'tab:blue', 'C0', 'navy')."""
    if value is None:
        return None
    from matplotlib.colors import is_color_like

    if not isinstance(value, str) or not is_color_like(value):
        raise ConfigError(
            f"'color' must be a matplotlib colour such as '#1f77b4', 'tab:blue' or 'navy', got {value!r}",
            path=path,
            key=where,
        )
    return value


def _boolean(value: Any, key: str, path: Path, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"'{key}' must be true or false, got {value!r}", path=path, key=where)
    return value


def _parse_task(
    entry: Any, index: int, path: Path, prefix: str, task_types: dict[str, type[BaseTask]], defaults: dict[str, Any]
) -> TaskSpec:
    """A `[[tasks]]` entry as a TaskSpec; its first problem goes to `spec.error` (the cells it names fail)."""
    path, where, entry = _origin(entry, f"{prefix}tasks[{index}]", path)
    spec = TaskSpec(name=_entry_name(entry, where), source=where, grid_file=path)
    try:
        if not isinstance(entry, dict):
            raise ConfigError(
                "expected a table with 'name', 'type', 'pairs' and 'images' (none for a .bin pack)",
                path=path,
                key=where,
            )
        spec.models = _task_models(entry, path, where)  # first: an invalid task's error then reaches only them
        pack = _task_pack(entry, path, where)
        _check_name(spec.name, where, path)
        where = f"{where} ('{spec.name}')"
        spec.source = where
        spec.type = str(entry["type"])
        spec.base_dir = path.parent
        task_cls = _task_class(spec.type, task_types, path, where)
        spec.kind = task_cls.type
        allowed_options = _task_options(task_cls)
        _unknown_keys(entry, TASK_KEYS | allowed_options, where, path)
        spec.pairs = resolve_path(str(entry["pairs"]), path.parent)
        spec.images = _task_images(entry, path)
        if "images" in entry and not pack:
            _check_images(spec.images, entry["images"], path, where)
        spec.distance = str(entry.get("distance", defaults.get("distance", "cosine")))
        spec.trusted = _boolean(entry.get("trusted", defaults.get("trusted", False)), "trusted", path, where)
        spec.columns = _task_columns(entry, path, where)
        spec.options = {
            **{k: v for k, v in defaults.items() if k in allowed_options},
            **{k: v for k, v in entry.items() if k in allowed_options},
        }
        thresholds = _task_thresholds(entry, task_cls, spec.options, path, where)
        if "headline" in entry:
            spec.headline = _headline(entry["headline"], task_cls, path, where, spec.options)
        if "derive" in entry:
            spec.derive = _task_derive(entry["derive"], path, where)
        spec.thresholds = thresholds
        spec.tolerances = entry.get("tolerances", defaults.get("tolerances", {}))
        spec.reference = entry.get("reference", {})
    except ConfigError as exc:
        spec.error = str(exc)
    return spec


def _task_models(entry: dict[str, Any], path: Path, where: str) -> list[str] | None:
    """A task's `models`: the model names it runs on (None: every model)."""
    models = entry.get("models")
    if models is not None and not (isinstance(models, list) and all(isinstance(m, str) for m in models)):
        raise ConfigError("'models' must be a list of model names", path=path, key=where)
    return models


def _task_pack(entry: dict[str, Any], path: Path, where: str) -> bool:
    """Whether the task's `pairs` is an insightface .bin pack, once its required keys are there (`images`
    too, unless it is a pack)."""
    for required in ("name", "type", "pairs"):
        if required not in entry:
            raise ConfigError(f"missing required key '{required}'", path=path, key=where)
    from ..data.pairs import is_pack  # imported here: pandas (the task types parsed above imported it already)

    pack = is_pack(str(entry["pairs"]))
    if "images" not in entry and not pack:
        raise ConfigError(
            "missing required key 'images' (the folder the pairs file's image paths are relative to; "
            "only an insightface .bin pack needs none)",
            path=path,
            key=where,
        )
    return pack


def _task_class(name: str, task_types: dict[str, type[BaseTask]], path: Path, where: str) -> type[BaseTask]:
    """The class of task type `name`: a built-in one, or one the registry finds (next to the grid file too)."""
    if name not in task_types or ":" not in name:  # a name: unknown, or claimed twice
        from .registry import task_class

        try:
            task_class(name, [path.parent])
        except ConfigError as exc:
            raise ConfigError(str(exc), path=path, key=where) from None
    return task_types[name]


def _task_images(entry: dict[str, Any], path: Path) -> Path:
    """A task's images folder; a .bin pack brings its images: `images`, when given, is where they are cached
    (under <sha256[:16]>/), else the pack cache's root."""
    if "images" in entry:
        return resolve_path(str(entry["images"]), path.parent)
    from ..data.formats.insightface_bin import pack_cache_root

    return pack_cache_root()


def _check_images(images: Path, given: Any, path: Path, where: str) -> None:
    """Raise ConfigError unless the images folder (not a pack's cache) exists."""
    if not images.is_dir():
        raise ConfigError(
            f"images folder not found: {images} (from images = {str(given)!r}; relative "
            f"paths in a grid are relative to the grid file's folder, {path.parent})",
            path=path,
            key=where,
        )


def _task_columns(entry: dict[str, Any], path: Path, where: str) -> dict[str, str]:
    """A task's `columns`: roles mapped to the pairs file's column names."""
    columns = entry.get("columns", {})
    if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
        raise ConfigError(
            "'columns' must be a table mapping roles to column names, e.g. "
            "{ img1 = 'left', img2 = 'right', label = 'same' }",
            path=path,
            key=where,
        )
    return columns


def _task_thresholds(
    entry: dict[str, Any], task_cls: type[BaseTask], options: dict[str, Any], path: Path, where: str
) -> list[dict[str, Any]]:
    """A task's `thresholds`, checked against the metrics its type reports with these options."""
    thresholds = entry.get("thresholds", [])
    if not isinstance(thresholds, list) or not all(isinstance(t, dict) for t in thresholds):
        raise ConfigError(
            "'thresholds' must be an array of tables like { metric = 'auc', min = 0.9 }", path=path, key=where
        )
    from ..outputs.gates import parse_thresholds

    valid = valid_metrics(task_cls, options)
    parse_thresholds(thresholds, valid, where=f"{path}, {where}", exact=bool(explicit_fars(options)))
    return thresholds


def _task_derive(value: Any, path: Path, where: str) -> dict[str, tuple[str, ...]]:
    """A task's `derive`: the stimuli derived from its images (`faces.stimuli.parse_derive`)."""
    from ..faces.stimuli import parse_derive

    try:
        return parse_derive(value)
    except ConfigError as exc:
        raise ConfigError(str(exc), path=path, key=where) from None


def _headline(
    value: Any, task_cls: type[BaseTask], path: Path, where: str, options: dict[str, Any] | None = None
) -> str:
    """A task's `headline = "<metric>"`: one of the metrics its type reports (with its `fars`)."""
    from ..outputs.gates import known_metric

    valid = valid_metrics(task_cls, options)
    if not known_metric(value, valid, exact=bool(explicit_fars(options))):
        close = difflib.get_close_matches(str(value), list(valid), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            f"headline {value!r} is not a metric of a '{task_cls.type}' task; valid metrics: {', '.join(valid)}.{hint}",
            path=path,
            key=where,
        )
    return str(value)


def valid_metrics(task_cls: type, options: dict[str, Any] | None = None) -> tuple[str, ...]:
    """The metric ids a task type reports (what thresholds may name); with the entry's `fars` option, the
    `tar_at_far_<far>` ids of those FARs instead of the type's defaults (and the type's headline, always)."""
    metrics = tuple(getattr(task_cls, "metrics", ()))
    fars = explicit_fars(options)
    if not fars:
        return metrics
    import numpy as np

    tars = [FAR_PREFIX + np.format_float_positional(float(f), trim="-") for f in fars]
    headline = getattr(task_cls, "headline", None)
    if isinstance(headline, str) and headline.startswith(FAR_PREFIX) and headline not in tars:
        tars.append(headline)
    first = next((i for i, m in enumerate(metrics) if m.startswith(FAR_PREFIX)), len(metrics))
    rest = [m for m in metrics if not m.startswith(FAR_PREFIX)]
    return tuple(rest[:first] + list(dict.fromkeys(tars)) + rest[first:])


FAR_PREFIX = "tar_at_far_"


def explicit_fars(options: dict[str, Any] | None) -> list[float]:
    """A task entry's `fars` when it names valid ones (else [], and the task's own check reports it)."""
    fars = (options or {}).get("fars")
    if isinstance(fars, (int, float)) and not isinstance(fars, bool):
        fars = [fars]
    if isinstance(fars, list) and fars and all(isinstance(f, (int, float)) and not isinstance(f, bool) for f in fars):
        return [float(f) for f in fars]
    return []


def _task_options(task_cls: type[BaseTask]) -> set[str]:
    """Type-specific option names: the keyword parameters of the task class's constructor, and of its bases'
    constructors while it passes `**kwargs` on (`def __init__(self, *args, scale=1.0, **kwargs)`)."""
    common = {"self", "name", "pairs", "images", "distance", "columns", "trusted"}  # `trusted`: a grid key
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    options: set[str] = set()
    for klass in task_cls.__mro__:
        if "__init__" not in klass.__dict__:
            continue
        params = inspect.signature(klass.__dict__["__init__"]).parameters
        options |= {p for p, v in params.items() if p not in common and v.kind not in variadic}
        if not any(v.kind is inspect.Parameter.VAR_KEYWORD for v in params.values()):
            break
    return options
