"""The grid as raw TOML data, before validation: grid files stacked, `--facebench-set` overrides and
`--facebench-sweep` expansions applied, and the result (the *effective grid*) written back as TOML.

- **Stacking**: files are deep-merged in order. `[defaults]` merge by key; `[[models]]` and `[[tasks]]`
  entries merge by `name`. A later entry may add keys to an earlier one of the same name; giving a key a
  different value is a conflict (an error naming the entry, the key and both files) unless the later entry
  says `replace = true`, which replaces the earlier entry whole (in its place).
- **Paths**: each entry's relative paths (`pairs`, `images`, a `file.py:Class` factory or type) are made
  absolute against the directory of the file that names them, so the effective grid stands alone.
- **Overrides** `PATH=VALUE` address entries by name (`models.vgg16.kwargs.seed=3`, `defaults.n_boot=2000`);
  values are TOML (`3`, `"x"`, `["a"]`; a bare word is a string).
- **Sweeps** `PATH=V1,V2,...` replace an entry by one entry per value, named `<name>[<key>:<value>]`
  (e.g. `vgg16_untrained[seed:3]`); `:` rather than `=` because pytest's `-k` cannot parse `=`.

This module knows the grid's shape only: which keys an entry accepts is asked of a `KeyPolicy` (config.py).
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import itertools
import json
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import ConfigError

ORIGIN = "__origin__"  # hidden key of each entry: the file that defined it (never written to TOML)
SECTIONS = ("models", "tasks")
RUN_TABLE = "run"  # a saved grid.toml's provenance table: ignored when the file is read as a grid
REPLACE = "replace"
SWEPT = re.compile(r"^(?P<base>[^\[\]]+)(?P<params>(\[[^\[\]:]+:[^\[\]]*\])+)$")
_VALUE_CHARS = re.compile(r"[^A-Za-z0-9_.+-]+")

# (section, entry or None, key path inside the entry) → the keys that level accepts (None: any key)
KeyPolicy = Callable[[str, dict[str, Any] | None, tuple[str, ...]], "set[str] | None"]


@dataclass
class Source:
    """A grid file the effective grid came from."""

    path: Path
    sha256: str


@dataclass
class RawGrid:
    """Merged TOML data (`defaults`, `models`, `tasks`; entries carry `ORIGIN`) and where it came from."""

    data: dict[str, Any]
    sources: list[Source]
    prefix: str = ""  # 'tool.facebench.' for a single pyproject.toml
    overrides: list[str] = field(default_factory=list)
    sweeps: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.sources[0].path


def read_file(path: Path) -> tuple[dict[str, Any], str, str]:
    """(data, sha256 of the bytes, key prefix) of one grid file; a saved grid.toml's `[run]` table is dropped."""
    if not path.is_file():
        raise ConfigError("grid file not found; pass an existing file to --facebench-config", path=path)
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc})", path=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", path=path) from None
    prefix = ""
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("facebench")
        if data is None:
            raise ConfigError("has no [tool.facebench] table", path=path)
        prefix = "tool.facebench."
    data.pop(RUN_TABLE, None)
    return data, hashlib.sha256(raw).hexdigest(), prefix


def load_stack(paths: Sequence[Path]) -> RawGrid:
    """Read and merge grid files in order (see the module doc)."""
    if not paths:
        raise ConfigError("no grid file given")
    merged: dict[str, Any] = {}
    sources = []
    prefix = ""
    for path in paths:
        data, sha, prefix = read_file(Path(path))
        sources.append(Source(Path(path), sha))
        _tag_entries(data, Path(path), prefix)
        if not merged:
            if isinstance(data.get("defaults"), dict):
                data["defaults"].pop(REPLACE, None)
            merged = data
            continue
        _merge(merged, data, Path(path))
    return RawGrid(merged, sources, prefix if len(paths) == 1 else "")


def _tag_entries(data: dict[str, Any], path: Path, prefix: str) -> None:
    for section in SECTIONS:
        entries = data.get(section)
        if not isinstance(entries, list):
            continue
        for index, entry in enumerate(entries):
            if isinstance(entry, dict):
                replace = entry.pop(REPLACE, False)
                entry[ORIGIN] = {
                    "file": path.absolute(),
                    "where": f"{prefix}{section}[{index}]",
                    REPLACE: replace is True,
                }
                absolutize(entry, path.absolute().parent)


def resolve_path(value: str, base_dir: Path) -> Path:
    """Expand `~` and `$VARS`; resolve relative paths against `base_dir` (the naming file's directory)."""
    expanded = Path(os.path.expandvars(os.path.expanduser(value)))
    return expanded if expanded.is_absolute() else (base_dir / expanded)


def absolutize(entry: dict[str, Any], base_dir: Path, code: bool = False) -> None:
    """An entry's relative data paths, made absolute against `base_dir`; with `code` also a `file.py:Class`
    factory or type (kept as written while the grid runs, so messages show it; absolute in grid.toml)."""
    for key in ("pairs", "images"):
        if isinstance(entry.get(key), str):
            entry[key] = str(resolve_path(entry[key], base_dir))
    for key in ("factory", "type") if code else ():
        value = entry.get(key)
        if isinstance(value, str) and ".py:" in value:
            file, _, attr = value.rpartition(":")
            entry[key] = f"{resolve_path(file, base_dir)}:{attr}"


def _merge(merged: dict[str, Any], data: dict[str, Any], path: Path) -> None:
    for key, value in data.items():
        if key in SECTIONS and isinstance(value, list) and isinstance(merged.get(key, []), list):
            entries = merged.setdefault(key, [])
            for entry in value:
                _merge_entry(entries, entry, key, path)
        elif key == "defaults" and isinstance(value, dict) and isinstance(merged.get(key, {}), dict):
            target = merged.setdefault(key, {})
            replace = bool(value.pop(REPLACE, False))
            for name, item in value.items():
                if name in target and not replace and not _same(target[name], item):
                    raise ConfigError(
                        f"conflicting [defaults] {name}: {_show(target[name])} in an earlier grid file, "
                        f"{_show(item)} here; say `replace = true` in this [defaults] to override",
                        path=path,
                    )
                target[name] = item
        elif isinstance(value, list) and isinstance(merged.get(key), list):  # other arrays of tables: by name
            for entry in value:
                named = isinstance(entry, dict) and "name" in entry
                if named and any(isinstance(e, dict) and e.get("name") == entry["name"] for e in merged[key]):
                    earlier = next(e for e in merged[key] if isinstance(e, dict) and e.get("name") == entry["name"])
                    if not _same(earlier, entry):
                        raise ConfigError(
                            f"[[{key}]] '{entry['name']}' is defined differently by an earlier grid file",
                            path=path,
                            key=key,
                        )
                elif entry not in merged[key]:
                    merged[key].append(entry)
        elif key in merged and not _same(merged[key], value):
            raise ConfigError(f"'{key}' is set differently by an earlier grid file", path=path, key=key)
        else:
            merged[key] = value


def _merge_entry(entries: list[Any], entry: Any, section: str, path: Path) -> None:
    name = entry.get("name") if isinstance(entry, dict) else None
    index = next(
        (i for i, e in enumerate(entries) if isinstance(e, dict) and name is not None and e.get("name") == name), None
    )
    if index is None:
        entries.append(entry)
        return
    if entry[ORIGIN][REPLACE]:
        entries[index] = entry
        return
    earlier = entries[index]
    kind = section[:-1]
    for key, value in _flatten(entry):
        old = _get(earlier, key)
        if old is not _MISSING and not _same(old, value):
            raise ConfigError(
                f"{kind} '{name}' is defined differently here and in {earlier[ORIGIN]['file']}: "
                f"{'.'.join(key)} = {_show(value)} here, {_show(old)} there; say `replace = true` in this "
                f"entry to replace it, or remove the key",
                path=path,
                key=entry[ORIGIN]["where"],
            )
    for key, value in _flatten(entry):
        _put(earlier, key, value)


_MISSING = object()


def _flatten(entry: dict[str, Any], above: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """(key path, leaf value) of an entry; tables are descended, arrays are leaves."""
    items: list[tuple[tuple[str, ...], Any]] = []
    for key, value in entry.items():
        if key == ORIGIN:
            continue
        if isinstance(value, dict) and value:
            items += _flatten(value, (*above, key))
        else:
            items.append(((*above, key), value))
    return items


def _get(entry: Any, key: tuple[str, ...]) -> Any:
    for part in key:
        if not isinstance(entry, dict) or part not in entry:
            return _MISSING
        entry = entry[part]
    return entry


def _put(entry: dict[str, Any], key: tuple[str, ...], value: Any) -> None:
    for part in key[:-1]:
        entry = entry.setdefault(part, {})
    entry[key[-1]] = value


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)


def _show(value: Any) -> str:
    return to_toml_value(value)


# --- overrides and sweeps -----------------------------------------------------------------------------
def parse_value(text: str) -> Any:
    """A TOML value (`3`, `0.5`, `true`, `"x"`, `["a", "b"]`, `{ a = 1 }`); a bare word is a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        if text.strip()[:1] in ("[", "{", '"', "'") or not text.strip():
            raise
        return text.strip()


def parse_values(text: str) -> list[Any]:
    """A sweep's values: `0,1,2`, `"a","b"`, `[1,2],[3]`; bare words are strings."""
    try:
        return list(tomllib.loads(f"v = [{text}]")["v"])
    except tomllib.TOMLDecodeError:
        parts = [p.strip() for p in text.split(",")]
        if any(not p or p[:1] in ("[", "{", '"', "'") for p in parts):
            raise
        return [parse_value(p) for p in parts]


@dataclass
class Target:
    """Where a dotted path points: an entry (or the defaults table) and the key path inside it."""

    section: str
    entry: dict[str, Any]
    key: tuple[str, ...]

    def label(self) -> str:
        name = self.entry.get("name") if self.section in SECTIONS else None
        return ".".join([self.section, *([str(name)] if name is not None else []), *self.key])


def split_assignment(text: str, option: str) -> tuple[str, str]:
    path, sep, value = text.partition("=")
    if not sep or not path.strip():
        raise ConfigError(f"{option} {text!r}: expected PATH=VALUE, e.g. models.vgg16_untrained.kwargs.seed=3")
    return path.strip(), value.strip()


def find_target(data: dict[str, Any], path: str, option: str, policy: KeyPolicy) -> Target:
    """Resolve `models.<name>.<key>...`, `tasks.<name>.<key>...` or `defaults.<key>`; unknown parts get a
    did-you-mean (names with dots are matched whole)."""
    section, _, rest = path.partition(".")
    if section not in (*SECTIONS, "defaults"):
        raise ConfigError(f"{option} {path}: unknown section '{section}'{_hint(section, [*SECTIONS, 'defaults'])}")
    if section == "defaults":
        entry = data.setdefault("defaults", {})
        if not isinstance(entry, dict):
            raise ConfigError(f"{option} {path}: [defaults] is not a table")
    else:
        entries = [e for e in data.get(section, []) if isinstance(e, dict)]
        names = sorted((str(e.get("name")) for e in entries), key=len, reverse=True)
        name = next((n for n in names if rest == n or rest.startswith(n + ".")), None)
        if name is None:
            guess = rest.split(".", 1)[0]
            raise ConfigError(
                f"{option} {path}: no {section[:-1]} named '{guess}'{_hint(guess, names)} "
                f"(the grid's {section}: {', '.join(reversed(names)) or 'none'})"
            )
        entry = next(e for e in entries if e.get("name") == name)
        rest = rest[len(name) + 1 :]
    if not rest:
        raise ConfigError(f"{option} {path}: name a key, e.g. {path}.kwargs.seed" if section != "defaults" else "")
    key = _split_key(entry, rest)
    holder: Any = entry
    for depth, part in enumerate(key):
        allowed = policy(section, entry if section in SECTIONS else None, key[:depth])
        known = set(holder) - {ORIGIN} if isinstance(holder, dict) else set()
        if part not in known and allowed is not None and part not in allowed:
            where = ".".join([section, *([str(entry.get("name"))] if section in SECTIONS else []), *key[:depth]])
            raise ConfigError(
                f"{option} {path}: unknown key '{part}' in {where}{_hint(part, sorted(allowed | known))}; "
                f"valid keys: {', '.join(sorted(allowed | known))}"
            )
        if depth < len(key) - 1:
            holder = holder.get(part, {}) if isinstance(holder, dict) else None
            if not isinstance(holder, dict):
                raise ConfigError(f"{option} {path}: '{'.'.join(key[: depth + 1])}' is not a table")
    return Target(section, entry, key)


def _split_key(entry: dict[str, Any], rest: str) -> tuple[str, ...]:
    """`kwargs.seed` → ('kwargs', 'seed'); an existing key holding dots (`tar_at_far_0.001`) is kept whole."""
    parts: list[str] = []
    holder: Any = entry
    while rest:
        keys = (
            sorted((k for k in holder if isinstance(k, str)), key=len, reverse=True) if isinstance(holder, dict) else []
        )
        part = next((k for k in keys if rest == k or rest.startswith(k + ".")), rest.split(".", 1)[0])
        parts.append(part)
        rest = rest[len(part) + 1 :]
        holder = holder.get(part) if isinstance(holder, dict) else None
    return tuple(parts)


Declared = Callable[[Target], "tuple[type, ...] | None"]


def check_type(target: Target, value: Any, option: str, declared: Declared) -> None:
    """A value of the existing value's TOML type (an integer may stand for a float), or of the key's declared
    type (`declared`, for keys the entry does not set); else one line naming the key."""
    old = _get(target.entry, target.key)
    found = None if old is not _MISSING else declared(target)
    if old is not _MISSING:
        allowed: tuple[type, ...] = (int, float) if isinstance(old, float) else (type(old),)
        expected = f"{_type_name(old)} like the grid's {to_toml_value(old)}"
    elif found:
        allowed = tuple(t for t in found if t is not type(None))
        expected = " or ".join(dict.fromkeys(_type_name(t()) for t in allowed))
    else:
        return
    if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
        raise ConfigError(f"{option} {target.label()}: expected {expected}, got {to_toml_value(value)}")


def _type_name(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array"}
    return names.get(type(value), "a table")


def apply_set(raw: RawGrid, assignment: str, policy: KeyPolicy, declared: Declared) -> None:
    """`--facebench-set PATH=VALUE` applied to `raw.data`."""
    option = "--facebench-set"
    path, text = split_assignment(assignment, option)
    target = find_target(raw.data, path, option, policy)
    try:
        value = parse_value(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{option} {path}: {text!r} is not a TOML value ({exc})") from None
    check_type(target, value, option, declared)
    if target.section in SECTIONS and target.key[0] in ("pairs", "images", "factory", "type"):
        value = _absolute_value(target.key[0], value)
    _put(target.entry, target.key, value)
    raw.overrides.append(assignment)


def _absolute_value(key: str, value: Any) -> Any:
    """A path given on the command line is relative to the working directory."""
    probe = {key: value}
    absolutize(probe, Path.cwd(), code=True)
    return probe[key]


def apply_sweeps(raw: RawGrid, sweeps: Sequence[str], policy: KeyPolicy, declared: Declared) -> None:
    """`--facebench-sweep PATH=V1,V2,...`: each swept entry becomes one entry per value (several sweeps of one
    entry: every combination), named `<name>[<key>:<value>]...`; a task's `models` list naming a swept model
    names all its variants."""
    option = "--facebench-sweep"
    plans: dict[int, list[tuple[Target, list[Any]]]] = {}
    for sweep in sweeps:
        path, text = split_assignment(sweep, option)
        target = find_target(raw.data, path, option, policy)
        if target.section not in SECTIONS:
            raise ConfigError(f"{option} {path}: sweep a model or task key (models.<name>.<key>, tasks.<name>.<key>)")
        try:
            values = parse_values(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{option} {path}: {text!r} is not a list of TOML values ({exc})") from None
        if not values:
            raise ConfigError(f"{option} {path}: no values to sweep")
        for value in values:
            check_type(target, value, option, declared)
        plans.setdefault(id(target.entry), []).append((target, values))
        raw.sweeps.append(sweep)
    renamed: dict[str, list[str]] = {}
    for section in SECTIONS:
        expanded = []
        for entry in raw.data.get(section, []):
            plan = plans.get(id(entry)) if isinstance(entry, dict) else None
            if not plan:
                expanded.append(entry)
                continue
            variants = []
            for combination in itertools.product(*(values for _, values in plan)):
                variant = copy.deepcopy({k: v for k, v in entry.items() if k != ORIGIN})
                variant[ORIGIN] = entry.get(ORIGIN)
                suffix = ""
                for (target, _), value in zip(plan, combination):
                    key = target.key
                    if key[0] in ("pairs", "images", "factory", "type"):
                        value = _absolute_value(key[0], value)
                    _put(variant, key, value)
                    suffix += f"[{key[-1]}:{value_label(value)}]"
                variant["name"] = f"{entry['name']}{suffix}"
                variants.append(variant)
            renamed[str(entry["name"])] = [v["name"] for v in variants]
            expanded += variants
        if section in raw.data:
            raw.data[section] = expanded
    for task in raw.data.get("tasks", []):
        if isinstance(task, dict) and isinstance(task.get("models"), list):
            task["models"] = [n for m in task["models"] for n in renamed.get(m, [m])]


def value_label(value: Any) -> str:
    """A swept value as it appears in an entry's name: `3`, `0.5`, `true`, `cls`, `a+b` (characters pytest's
    `-k` cannot parse become `_`)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, list):
        text = "+".join(value_label(v) for v in value)
    elif isinstance(value, dict):
        text = "+".join(f"{k}_{value_label(v)}" for k, v in value.items())
    else:
        text = str(value)
    return _VALUE_CHARS.sub("_", text) or "_"


def swept_name(name: str) -> tuple[str, list[tuple[str, str]]] | None:
    """'vgg16[seed:3]' → ('vgg16', [('seed', '3')]); None for a name that is not a swept entry's."""
    match = SWEPT.match(name)
    if match is None:
        return None
    params = re.findall(r"\[([^\[\]:]+):([^\[\]]*)\]", match.group("params"))
    return match.group("base"), params


def _hint(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


# --- the effective grid as TOML -----------------------------------------------------------------------
def plain(data: dict[str, Any]) -> dict[str, Any]:
    """The grid data without hidden keys, every path absolute (what is written and hashed)."""
    out: dict[str, Any] = {}
    for key in ("defaults", *SECTIONS):
        if key not in data:
            continue
        value = data[key]
        if isinstance(value, list):
            value = [_standalone(e) if isinstance(e, dict) else e for e in value]
        out[key] = value
    out.update({k: v for k, v in data.items() if k not in out})
    return out


def _standalone(entry: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in entry.items() if k != ORIGIN}
    origin = entry.get(ORIGIN) or {}
    if "file" in origin:
        absolutize(out, Path(origin["file"]).parent, code=True)
    return out


def grid_hash(data: dict[str, Any]) -> str:
    """The sha256 of the effective grid (its canonical JSON): equal for equal grids, whatever files made them."""
    text = json.dumps(plain(data), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def to_toml_value(value: Any) -> str:
    """One TOML value, inline (strings as JSON-escaped basic strings, tables inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Path):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(to_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_key(str(k))} = {to_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))


def to_toml(data: dict[str, Any], header: str = "", run: dict[str, Any] | None = None) -> str:
    """The grid data as a TOML document: `[defaults]`, `[[models]]`, `[[tasks]]`, and a `[run]` table."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    body = plain(data)

    def table(name: str, values: dict[str, Any], array: bool = False) -> None:
        lines.append("")
        lines.append(f"[[{name}]]" if array else f"[{name}]")
        lines.extend(f"{_key(str(k))} = {to_toml_value(v)}" for k, v in values.items())

    for key, value in body.items():
        if isinstance(value, list) and value and all(isinstance(e, dict) for e in value):
            for entry in value:
                table(key, entry if isinstance(entry, dict) else {}, array=True)
        elif isinstance(value, dict):
            table(key, value)
        else:
            lines.insert(len(header.splitlines()), f"{_key(key)} = {to_toml_value(value)}")
    if run:
        table(RUN_TABLE, run)
    return "\n".join(lines).lstrip("\n") + "\n"


# --- the effective grid of a run: grid.toml -------------------------------------------------------------
GRID_FILE = "grid.toml"
GRID_HEADER = (
    "The effective grid of this run (pytest-facebench): its grid files stacked in order, --facebench-set\n"
    "overrides and --facebench-sweep expansions applied, paths absolute. [run] holds the command line, the\n"
    "hashes of the grid files and data files it came from. Rerun it with\n"
    "    python -m pytest_facebench reproduce <this folder>\n"
    "or show another with  python -m pytest_facebench config show [pytest args]"
)


def data_files(data: dict[str, Any]) -> list[dict[str, str]]:
    """The data files the grid's tasks read: each `pairs` file and option values that name an existing file
    (relative ones against the pairs file's folder), with their sha256 (images are keyed by content apart)."""
    from ..storage.fingerprint import file_identity

    found: dict[str, dict[str, str]] = {}
    for task in data.get("tasks", []):
        if not isinstance(task, dict) or not isinstance(task.get("pairs"), str):
            continue
        base = Path(task["pairs"]).parent
        for key, value in task.items():
            if key in ("name", "type", "images", "distance", "headline", ORIGIN) or not isinstance(value, str):
                continue
            identity = file_identity(value, base)
            if identity is not None:
                found.setdefault(identity["file"], identity)
    return list(found.values())


def grid_info(raw: RawGrid, cwd: Path) -> dict[str, Any]:
    """What run.json (and baselines) keep of the effective grid, and grid.toml is written from."""
    return {
        "effective": plain(raw.data),
        "sources": [{"file": str(s.path.absolute()), "sha256": s.sha256} for s in raw.sources],
        "overrides": list(raw.overrides),
        "sweeps": list(raw.sweeps),
        "data": data_files(raw.data),
        "cwd": str(cwd),
    }


def grid_toml(grid: dict[str, Any], pytest_args: Sequence[str] | None) -> str | None:
    """grid.toml from run.json's `grid` (None for a run without an effective grid, e.g. `run()`)."""
    effective = grid.get("effective")
    if not isinstance(effective, dict):
        return None
    run = {
        "pytest_args": [str(a) for a in pytest_args or []],
        "cwd": grid.get("cwd", ""),
        "grid_sha256": grid.get("sha256", ""),
        "sources": grid.get("sources") or [],
        "overrides": grid.get("overrides") or [],
        "sweeps": grid.get("sweeps") or [],
        "data": grid.get("data") or [],
    }
    return to_toml(effective, GRID_HEADER, run=run)


def save_grid_file(out_dir: Path, run: dict[str, Any]) -> None:
    """Write `<out>/grid.toml` from run.json's data (runs and shard merges both pass here)."""
    from ..files import atomic_write

    text = grid_toml(run.get("grid") or {}, run.get("pytest_args"))
    if text is not None:
        atomic_write(Path(out_dir) / GRID_FILE, text)


def read_saved_grid(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(grid data, `[run]` table) of a saved grid.toml."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read ({exc})", path=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", path=path) from None
    run = data.pop(RUN_TABLE, None)
    if not isinstance(run, dict):
        raise ConfigError("has no [run] table: not a grid.toml saved by a run", path=path)
    return data, run
