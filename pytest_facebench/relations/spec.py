"""Model `tags` and `[[relations]]` of the grid: parsed and validated (config.py calls these).

```toml
[[models]]
name = "vgg16_untrained"
tags = { diet = "none", parameters = 138e6, trained = false }

[[relations]]
name = "inversion_vs_verification"
x = "inversion/relative_difference"          # task/metric (or task/metric/condition)
y = "verification/auc"
method = "spearman"                          # pearson, kendall
control = ["diet"]                           # tags: the partial r given them
layer = "readout"                            # best, each, a relative depth in [0, 1], or a list of depths
expect = "positive"                          # negative, none: a gate on the CI
models = "not pixels"                        # a -k-like selection over names and tags
color_by = "diet"                            # the tag that colours the scatter
```
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..stats.relations import RELATION_METHODS
from .select import SelectionError, compile_selection

TAG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RELATION_NAME = re.compile(r"^[A-Za-z0-9_.]+$")
RELATION_KEYS = {"name", "x", "y", "method", "control", "layer", "expect", "models", "color_by", "n_boot", "n_perm"}
RELATION_KEYS |= {"seed", "ci"}
LAYER_WORDS = ("readout", "best", "each")
EACH_DEPTHS = (0.0, 0.25, 0.5, 0.75, 1.0)  # `layer = "each"`: the relation at these relative depths
EXPECTATIONS = ("positive", "negative", "none")


@dataclass
class RelationSpec:
    """One `[[relations]]` entry. `layer` is "readout", "best" or a list of relative depths in [0, 1]."""

    name: str
    x: str = ""
    y: str = ""
    method: str = "spearman"
    control: list[str] = field(default_factory=list)
    layer: str | list[float] = "readout"
    expect: str | None = None
    models: str | None = None
    color_by: str | None = None
    n_boot: int = 2000
    n_perm: int = 10_000
    seed: int = 0
    ci: float = 0.95
    source: str = ""
    error: str | None = None
    duplicate: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The plain data run.json keeps (what a shard merge or `relate` recomputes the relation from)."""
        return {k: v for k, v in asdict(self).items() if k not in ("source", "error", "duplicate")}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RelationSpec:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def tag_type(value: Any) -> str:
    """'boolean', 'number' or 'text' (the one type a tag has across models)."""
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, (int, float)) else "text"


def parse_tags(value: Any, path: Path, where: str) -> dict[str, str | float | bool]:
    """A model's `tags = { diet = "faces", parameters = 138e6, trained = true }`."""
    if not isinstance(value, dict):
        raise ConfigError(
            f"'tags' must be a table such as {{ diet = 'faces', parameters = 138e6 }}, got {value!r}",
            path=path,
            key=where,
        )
    tags: dict[str, str | float | bool] = {}
    for name, tag in value.items():
        if not TAG_NAME.match(name):
            raise ConfigError(f"tag name '{name}' must be a word (letters, digits, '_')", path=path, key=where)
        if isinstance(tag, bool) or isinstance(tag, str):
            tags[name] = tag
        elif isinstance(tag, (int, float)) and math.isfinite(tag):
            tags[name] = float(tag)
        else:
            raise ConfigError(
                f"tag '{name}' must be text, a finite number or true/false, got {tag!r}", path=path, key=where
            )
    return tags


def check_tag_types(models: Sequence[Any], path: Path) -> list[str]:
    """One type per tag across models: a model whose tag has another type than the first model's gets the error."""
    first: dict[str, tuple[str, str]] = {}  # tag → (type, where)
    errors = []
    for spec in models:
        if spec.error:
            continue
        for name, value in spec.tags.items():
            kind = tag_type(value)
            seen = first.setdefault(name, (kind, spec.source))
            if seen[0] != kind and spec.error is None:
                spec.error = (
                    f"{path}, {spec.source}: tag '{name}' is {kind} ({value!r}) but {seen[0]} in {seen[1]}; "
                    f"a tag has one type across models"
                )
                errors.append(spec.error)
    return errors


def grid_tags(models: Sequence[Any]) -> dict[str, str]:
    """Every tag of the grid's valid models and its type."""
    return {name: tag_type(value) for spec in models if not spec.error for name, value in spec.tags.items()}


def parse_relations(
    entries: Any,
    path: Path,
    prefix: str,
    tasks: Mapping[str, Sequence[str] | None],
    tags: Mapping[str, str],
) -> list[RelationSpec]:
    """`[[relations]]` entries; `tasks` maps each valid task to its metric ids (None: not known), `tags` the
    grid's tags to their types. A problem with an entry stays on `spec.error` (the cells still run)."""
    if not isinstance(entries, list):
        raise ConfigError(
            f"expected an array of tables ([[relations]]), got {type(entries).__name__}",
            path=path,
            key=prefix + "relations",
        )
    specs = []
    seen: dict[str, str] = {}
    for index, entry in enumerate(entries):
        where = f"{prefix}relations[{index}]"
        name = str(entry["name"]) if isinstance(entry, dict) and isinstance(entry.get("name"), str) else where
        spec = RelationSpec(name=name, source=where)
        try:
            _parse_relation(spec, entry, path, where, tasks, tags)
        except ConfigError as exc:
            spec.error = str(exc)
        if spec.error is None and spec.name in seen:
            spec.error = f"{path}, {spec.source}: duplicate relation name '{spec.name}' (first at {seen[spec.name]})"
            spec.duplicate = True
        seen.setdefault(spec.name, spec.source)
        specs.append(spec)
    return specs


def _parse_relation(
    spec: RelationSpec,
    entry: Any,
    path: Path,
    where: str,
    tasks: Mapping[str, Sequence[str] | None],
    tags: Mapping[str, str],
) -> None:
    if not isinstance(entry, dict):
        raise ConfigError("expected a table with 'name', 'x' and 'y'", path=path, key=where)
    for required in ("name", "x", "y"):
        if required not in entry:
            raise ConfigError(f"missing required key '{required}'", path=path, key=where)
    if not RELATION_NAME.match(spec.name):
        raise ConfigError(
            f"name '{spec.name}' may only contain letters, digits, '_' and '.' (it names files)", path=path, key=where
        )
    where = f"{where} ('{spec.name}')"
    spec.source = where
    for key in entry:
        if key not in RELATION_KEYS:
            close = difflib.get_close_matches(key, sorted(RELATION_KEYS), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"unknown key '{key}'{hint} Valid keys: {', '.join(sorted(RELATION_KEYS))}", path=path, key=where
            )
    spec.x = _axis(entry["x"], "x", tasks, path, where)
    spec.y = _axis(entry["y"], "y", tasks, path, where)
    spec.method = _choice(entry.get("method", "spearman"), "method", RELATION_METHODS, path, where)
    control = entry.get("control", [])
    control = [control] if isinstance(control, str) else control
    if not isinstance(control, list) or not all(isinstance(c, str) for c in control):
        raise ConfigError(f"'control' must be a tag name or a list of them, got {control!r}", path=path, key=where)
    for name in control:
        _known_tag(name, "control", tags, path, where)
    if control and spec.method == "kendall":
        raise ConfigError(
            "'control' needs method 'spearman' or 'pearson' (Kendall's tau has no partial form here)",
            path=path,
            key=where,
        )
    spec.control = control
    spec.layer = parse_layer(entry.get("layer", "readout"), path, where)
    if "expect" in entry:
        spec.expect = _choice(entry["expect"], "expect", EXPECTATIONS, path, where)
    if "models" in entry:
        if not isinstance(entry["models"], str):
            raise ConfigError("'models' must be a selection such as 'diet=faces and not pixels'", path=path, key=where)
        try:
            compile_selection(entry["models"])
        except SelectionError as exc:
            raise ConfigError(f"'models': {exc}", path=path, key=where) from None
        spec.models = entry["models"]
    if "color_by" in entry:
        spec.color_by = _known_tag(entry["color_by"], "color_by", tags, path, where)
    spec.n_boot = _count(entry.get("n_boot", spec.n_boot), "n_boot", 100, path, where)
    spec.n_perm = _count(entry.get("n_perm", spec.n_perm), "n_perm", 100, path, where)
    spec.seed = _count(entry.get("seed", spec.seed), "seed", 0, path, where)
    ci = entry.get("ci", spec.ci)
    if isinstance(ci, bool) or not isinstance(ci, (int, float)) or not 0 < ci < 1:
        raise ConfigError(
            f"'ci' must be a confidence level between 0 and 1 such as 0.95, got {ci!r}", path=path, key=where
        )
    spec.ci = float(ci)


def split_axis(text: str) -> tuple[str, str, str]:
    """`task/metric[/condition]` → (task, metric, condition)."""
    parts = [p.strip() for p in text.split("/")]
    return parts[0], parts[1] if len(parts) > 1 else "", parts[2] if len(parts) > 2 else ""


def _axis(value: Any, key: str, tasks: Mapping[str, Sequence[str] | None], path: Path, where: str) -> str:
    from ..outputs.gates import known_metric

    parts = value.split("/") if isinstance(value, str) else []
    if len(parts) not in (2, 3) or not all(p.strip() for p in parts):
        raise ConfigError(
            f"'{key}' must read 'task/metric' (or 'task/metric/condition'), e.g. 'verification/auc'; got {value!r}",
            path=path,
            key=where,
        )
    task, metric, _ = split_axis(value)
    if task not in tasks:
        close = difflib.get_close_matches(task, list(tasks), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else f" Tasks: {', '.join(tasks) or 'none'}."
        raise ConfigError(f"'{key}' names task '{task}', not a (valid) task of the grid.{hint}", path=path, key=where)
    metrics = tasks[task]
    if metrics and not known_metric(metric, tuple(metrics)):
        close = difflib.get_close_matches(metric, list(metrics), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            f"'{key}': '{metric}' is not a metric of task '{task}'; its metrics: {', '.join(metrics)}.{hint}",
            path=path,
            key=where,
        )
    return "/".join(p.strip() for p in parts)


def _choice(value: Any, key: str, allowed: Sequence[str], path: Path, where: str) -> str:
    if value not in allowed:
        raise ConfigError(f"'{key}' must be one of {', '.join(allowed)}; got {value!r}", path=path, key=where)
    return str(value)


def _known_tag(name: Any, key: str, tags: Mapping[str, str], path: Path, where: str) -> str:
    if not isinstance(name, str) or name not in tags:
        close = difflib.get_close_matches(str(name), list(tags), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        known = ", ".join(tags) or "none (give models tags = { ... })"
        raise ConfigError(
            f"'{key}' names {name!r}, not a model tag of the grid; tags: {known}.{hint}", path=path, key=where
        )
    return name


def _count(value: Any, key: str, minimum: int, path: Path, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"'{key}' must be an integer of at least {minimum}, got {value!r}", path=path, key=where)
    return value


def parse_layer(value: Any, path: Path | None = None, where: str | None = None) -> str | list[float]:
    """`layer`: "readout", "best", "each" (relative depths 0, 0.25, 0.5, 0.75, 1), a relative depth in [0, 1]
    (each model's listed layer nearest to it; 0 = its first, 1 = its last), or a list of depths."""
    if value == "each":
        return list(EACH_DEPTHS)
    if value in LAYER_WORDS:
        return str(value)
    depths = value if isinstance(value, list) else [value]
    if isinstance(value, str):
        try:
            depths = [float(part) for part in value.split(",")]
        except ValueError:
            depths = [value]
    good = all(not isinstance(d, bool) and isinstance(d, (int, float)) and 0 <= d <= 1 for d in depths)
    if not depths or not good:
        raise ConfigError(
            f"'layer' must be 'readout', 'best', 'each', a relative depth between 0 and 1 or a list of them; got {value!r}",
            path=path,
            key=where,
        )
    return [float(d) for d in depths]


def relation_inputs(grid: Any) -> dict[str, Any]:
    """What run.json keeps of a grid for relations: the valid relations as data, and each valid model's tags."""
    relations = [r.as_dict() for r in getattr(grid, "relations", []) if not r.error]
    tags = {m.name: dict(m.tags) for m in grid.models if not m.error and m.tags}
    return {"relations": relations, "model_tags": tags} if relations or tags else {}
