"""One mechanism for names → code: `Registry`, in the style of timm's `register_model` and lm-evaluation-harness's
registries. Model families (`zoo.FAMILIES`), task types (`registry.TASK_TYPES`) and metric specs
(`metrics.METRICS`) are its three instances.

- A value is an object or a lazy reference 'module:attr' (a `str`), imported only when `load`ed: listing the
  names and looking one up (`entry`) import nothing.
- An instance with an entry point `group` merges in the entry points that installed distributions declare there,
  read from their metadata on first use (nothing is imported).
- `register(name, value)`, or `@registry.register(name)` as a class or function decorator.
- One name, one meaning. Registering a name again with another value (or other default keyword arguments) is an
  error (`ConfigError` unless the instance says otherwise) naming the name, both values and both origins; the
  same value again is fine, and a registration from the same origin replaces the earlier one (a reloaded
  module). An entry point named like a built-in, or like another distribution's entry point, is such a clash
  too, raised when the name is used (`entry`, `load`), so one plugin's clash never breaks a grid that does not
  name it; neither side silently wins.
- An unknown name is an error listing the known ones, with a did-you-mean (difflib).

`import_factory` imports 'module:Attr' or 'path/file.py:Attr' (a grid's own code). This module sits in the
lowest layer, beside `errors`, so that `metrics` can build on it.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Generic, TypeVar

from .errors import ConfigError, FacebenchError, ModelError

T = TypeVar("T")
_UNSET: Any = object()


@dataclass(frozen=True)
class Entry:
    """One registered name: its value (an object, or 'module:attr' imported by `Registry.load`), who registered
    it (a module or 'module.Class', or an installed distribution's entry point) and the keyword arguments the
    name implies (`iresnet50` is `ArcFace(arch="iresnet50")`)."""

    name: str
    value: Any
    origin: str
    defaults: Mapping[str, Any] = field(default_factory=dict)

    @property
    def lazy(self) -> bool:
        return isinstance(self.value, str)

    def same_as(self, other: Entry) -> bool:
        return self.value == other.value and dict(self.defaults) == dict(other.defaults)


def describe_value(entry: Entry) -> str:
    """'module:Class' (with its default keyword arguments): how a clash message shows one side."""
    text = repr(entry.value)
    return f"{text} with {dict(entry.defaults)}" if entry.defaults else text


class Registry(Generic[T]):
    """Names → values of one kind (see the module doc). `kind` names it in messages ('model family');
    `expected` says what a valid name is, with `{names}` for the known names ('expected one of {names}');
    `clash_hint` how to resolve a clash; `describe` shows an entry's value in a clash message."""

    def __init__(
        self,
        kind: str,
        *,
        group: str | None = None,
        error: type[FacebenchError] = ConfigError,
        expected: str = "expected one of {names}",
        clash_hint: str = "rename one of them",
        describe: Callable[[Entry], str] = describe_value,
    ):
        self.kind = kind
        self.group = group
        self.error = error
        self.expected = expected
        self.clash_hint = clash_hint
        self.describe = describe
        self._entries: dict[str, Entry] = {}
        self._clashes: dict[str, tuple[Entry, Entry]] = {}  # entry points that clash: raised when the name is used
        self._from_group: set[str] = set()
        self._merged = group is None

    # --- registering --------------------------------------------------------------------------------
    def register(
        self, name: str, value: Any = _UNSET, *, origin: str | None = None, defaults: Mapping[str, Any] | None = None
    ) -> Any:
        """Register `value` under `name` and return it; without a value, a decorator registering what it decorates
        (its origin: 'module.Qualname'). `origin` says who registers (default: the calling module)."""
        if value is _UNSET:

            def decorate(obj: Any) -> Any:
                where = origin or f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
                self._add(Entry(name, obj, where, dict(defaults or {})))
                return obj

            return decorate
        self._add(Entry(name, value, origin or _caller_module(), dict(defaults or {})))
        return value

    def _add(self, entry: Entry) -> None:
        known = self._entries.get(entry.name)
        if known is None or known.origin == entry.origin:
            self._entries[entry.name] = entry
            self._from_group.discard(entry.name)
        elif not known.same_as(entry):
            raise self.clash(known, entry)

    def clash(self, first: Entry, second: Entry) -> FacebenchError:
        """The error for two registrations of one name, naming both values and both origins."""
        return self.error(
            f"{self.kind} '{first.name}' is declared twice, differently: {self.describe(first)} by {first.origin} "
            f"and {self.describe(second)} by {second.origin}; {self.clash_hint}"
        )

    # --- entry points ---------------------------------------------------------------------------------
    def _merge(self) -> None:
        """Add the group's entry points once (metadata only): a name registered otherwise with another value
        becomes a clash, raised when that name is used."""
        if self._merged:
            return
        self._merged = True
        for point in _entry_points(self.group or ""):
            entry = Entry(point.name, point.value, _entry_point_origin(point, self.group or ""))
            known = self._entries.get(point.name)
            if known is None:
                self._entries[point.name] = entry
                self._from_group.add(point.name)
            elif not known.same_as(entry):
                self._clashes.setdefault(point.name, (known, entry))

    def refresh(self) -> None:
        """Read the entry points again (after installing or removing a distribution in this process)."""
        if self.group is None:
            return
        for name in self._from_group:
            self._entries.pop(name, None)
        self._from_group.clear()
        self._clashes.clear()
        self._merged = False

    # --- looking up ---------------------------------------------------------------------------------------
    def entry(self, name: str) -> Entry:
        """The entry of `name` (nothing imported); an unknown name or a clash is an error."""
        self._merge()
        if name in self._clashes:
            raise self.clash(*self._clashes[name])
        try:
            return self._entries[name]
        except KeyError:
            raise self.unknown(name) from None

    def load(self, name: str) -> T:
        """The value of `name`, importing a lazy 'module:attr' (a module without that attr is a ModelError)."""
        return self._resolve(self.entry(name))

    def get(self, name: str, default: Any = None) -> Any:
        """The value of `name`, or `default` when no such name is registered (a clash is still an error)."""
        self._merge()
        entry = self._entries.get(name)
        if entry is None:
            return default
        if name in self._clashes:
            raise self.clash(*self._clashes[name])
        return self._resolve(entry)

    @staticmethod
    def _resolve(entry: Entry) -> Any:
        return import_factory(entry.value, []) if entry.lazy else entry.value

    def unknown(self, name: str) -> FacebenchError:
        """The error for a name nobody registered: the known names, and the closest one."""
        names = self.names()
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        return self.error(f"unknown {self.kind} '{name}'; {self.expected.format(names=', '.join(names))}.{hint}")

    def names(self) -> list[str]:
        """Every registered name, sorted (entry points included; nothing imported)."""
        self._merge()
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        """Every entry, in registration order (entry points last)."""
        self._merge()
        return list(self._entries.values())

    def copy(self) -> Registry[T]:
        """An independent registry with the same entries (tests register on a copy)."""
        twin: Registry[T] = Registry(
            self.kind,
            group=self.group,
            error=self.error,
            expected=self.expected,
            clash_hint=self.clash_hint,
            describe=self.describe,
        )
        twin._entries, twin._clashes = dict(self._entries), dict(self._clashes)
        twin._from_group, twin._merged = set(self._from_group), self._merged
        return twin

    def __contains__(self, name: object) -> bool:
        self._merge()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._merge()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} names{f', group {self.group!r}' if self.group else ''})"


def _caller_module() -> str:
    frame = sys._getframe(2)  # register's caller
    return str(frame.f_globals.get("__name__", "?"))


def _entry_points(group: str) -> list[EntryPoint]:
    return list(entry_points(group=group))


def _entry_point_origin(point: EntryPoint, group: str) -> str:
    dist = getattr(point, "dist", None)
    owner = f"distribution {dist.name} {dist.version}" if dist is not None else "an installed distribution"
    return f"the entry point of {owner} (group {group})"


def is_path_reference(value: str) -> bool:
    """'module:Attr' or 'file.py:Attr' rather than a short name."""
    return ":" in value


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
