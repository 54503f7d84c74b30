"""`BaseTask`: a pairs table over an images root, a distance, and a `score` that turns per-row
values of one layer (pair distances by default) into `Metric`s. Tasks know nothing about pytest or models.

Every task takes the bootstrap options `n_boot` (default 1000; 0 turns CIs off), `seed` (0) and `ci`
(0.95): each result row carries `ci_low`, `ci_high`, `n` and a `ci_method` such as
'bootstrap(1000, pairs), 95% percentile' (see `stats/bootstrap.py`)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..distances import Distance, distance_name, pair_distances, resolve_distance
from ..errors import ConfigError, DataError
from ..images import check_images_exist
from ..pairs import LINE, read_pairs, require_columns
from ..results import Metric
from ..stats import Bootstrap


class BaseTask:
    """Subclasses set `type`, `headline`, `metrics` and `roles` (extra column roles → default names),
    and implement `score`. Column names are configurable through `columns = {role: name}`; an
    optional role named explicitly in `columns` must exist in the file, one left at its default name
    is used only when the file has it.

    Hooks: `_prepare(table)` reshapes the file's table before images are indexed (RSA, long-format
    ratings); `_validate(table)` parses the type-specific columns; `layer_values(embeddings, device)`
    gives one value per row of `pair_rows()` for a layer (pair distances by default; ranks for
    identification); `scoring()` is what `compare.py` needs to compare models on this task."""

    type: ClassVar[str] = ""
    headline: ClassVar[str] = ""
    metrics: ClassVar[tuple[str, ...]] = ()
    image_roles: ClassVar[tuple[str, ...]] = ("img1", "img2")
    roles: ClassVar[dict[str, str]] = {}
    optional_roles: ClassVar[dict[str, str]] = {}

    def __init__(self, name: str, pairs: str | Path, images: str | Path, distance: Distance = "cosine",
                 columns: dict[str, str] | None = None, n_boot: int = 1000, seed: int = 0, ci: float = 0.95):
        self.name = name
        self.pairs_path = Path(pairs)
        self.images_root = Path(images)
        self.distance = distance
        resolve_distance(distance)
        self.bootstrap = Bootstrap.checked(n_boot, seed, ci, name)
        known = {*self.image_roles, *self.roles, *self.optional_roles}
        unknown = set(columns or {}) - known
        if unknown:
            raise ConfigError(f"task '{name}': unknown column role(s) {sorted(unknown)}; "
                              f"a '{self.type}' task has roles {sorted(known)}")
        self.columns = {**{role: role for role in self.image_roles}, **self.roles, **(columns or {})}
        self.optional_columns = {role: (columns or {}).get(role, default)
                                 for role, default in self.optional_roles.items()}
        self._table: pd.DataFrame | None = None
        self._images: list[Path] = []
        self._pair_index: np.ndarray = np.empty((0, 2), dtype=np.int64)

    # --- loading ----------------------------------------------------------------------------
    def load(self) -> BaseTask:
        """Read and validate the pairs file and images (once). Raises `DataError` naming what is wrong."""
        if self._table is not None:
            return self
        if not self.images_root.is_dir():
            raise DataError(f"task '{self.name}': images directory not found: {self.images_root}")
        if self.pairs_path.is_dir():
            raise DataError(f"task '{self.name}': pairs file {self.pairs_path} is a directory; expected a pairs file "
                            f"(CSV, TSV, whitespace .txt or LFW pairs.txt)")
        if not self.pairs_path.is_file():
            raise DataError(f"task '{self.name}': pairs file not found: {self.pairs_path}")
        table = self._prepare(read_pairs(self.pairs_path))
        require_columns(table, self.columns, self.pairs_path)
        paths = [[self.images_root / str(p).strip() for p in table[self.columns[role]]] for role in self.image_roles]
        images = list(dict.fromkeys(p for column in paths for p in column))
        check_images_exist(images, self.pairs_path)
        position = {p: i for i, p in enumerate(images)}
        self._pair_index = np.array([[position[p] for p in row] for row in zip(*paths)],
                                    dtype=np.int64).reshape(len(table), len(self.image_roles))
        self._images = images
        self._validate(table)
        self._table = table
        return self

    def _prepare(self, table: pd.DataFrame) -> pd.DataFrame:
        """Reshape the table as read before its images are indexed (default: unchanged)."""
        return table

    def _validate(self, table: pd.DataFrame) -> None:
        """Parse and check the type-specific columns (labels, ratings, groups...)."""

    def column(self, role: str) -> pd.Series:
        return self.table[self.columns.get(role) or self.optional_columns[role]]

    def has_column(self, role: str) -> bool:
        return self.optional_column(self.table, role) is not None

    def optional_column(self, table: pd.DataFrame, role: str) -> str | None:
        """The column of `role` in `table` when it is there (usable inside `_validate`)."""
        name = self.columns.get(role) or self.optional_columns.get(role)
        return name if name is not None and name in table else None

    @property
    def table(self) -> pd.DataFrame:
        return self.load()._table  # type: ignore[return-value]

    @property
    def images(self) -> list[Path]:
        """Distinct image files, in order of first appearance."""
        return self.load()._images

    @property
    def pair_index(self) -> np.ndarray:
        """(P, 2) row indices into `images`."""
        return self.load()._pair_index

    @property
    def lines(self) -> pd.Series:
        return self.table[LINE]

    def pair_rows(self) -> pd.DataFrame:
        """The pairs table as read (for `distances/<task>/<model>.csv`)."""
        return self.table.drop(columns=[LINE])

    def callables(self) -> dict[str, Any]:
        """The functions this task runs that may be user code (keyed by their source in the cell cache)."""
        return {"distance": resolve_distance(self.distance)}

    # --- scoring ----------------------------------------------------------------------------
    def layer_values(self, embeddings: Any, device: Any = "cpu") -> np.ndarray:
        """One value per row of `pair_rows()` for one layer's (N, D) embeddings (rows = `images`):
        the pair distances by default."""
        return pair_distances(embeddings, self.pair_index, self.distance, device)

    def score(self, distances: np.ndarray) -> list[Metric]:
        """Metrics for one layer from its per-row values (`layer_values`)."""
        raise NotImplementedError

    def scoring(self) -> dict[str, Any]:
        """JSON-able facts `compare.py` needs to compare two models on this task (labels, groups...).
        Rides on the cell payload; `evaluate_cell` adds the layer → column map."""
        return {"type": self.type, "headline": self.headline, "n_boot": self.bootstrap.n_boot,
                "seed": self.bootstrap.seed, "ci": self.bootstrap.ci, "rows_sha256": self.rows_sha256()}

    def rows_sha256(self) -> str:
        """Content hash of the scored rows (two cells compare only when they scored the same rows)."""
        return hashlib.sha256(self.pair_rows().to_csv(index=False).encode()).hexdigest()[:16]

    def metric(self, metric: str, value: float, samples: np.ndarray | None = None, *, unit: str = "pairs",
               condition: str | None = None, protocol: str = "", n: int | None = None, note: str = "",
               extra: dict[str, Any] | None = None) -> Metric:
        """A `Metric` with its bootstrap interval from `samples` (none when the value is undefined)."""
        low = high = np.nan
        notes = [note] if note else []
        if samples is not None and np.isfinite(value) and self.bootstrap.enabled:
            low, high, ci_note = self.bootstrap.interval(samples)
            if ci_note:
                notes.append(ci_note)
        if not self.bootstrap.enabled:
            method = self.bootstrap.method(unit)
        else:
            method = self.bootstrap.method(unit) if samples is not None else "none"
        return Metric(metric, float(value), condition=condition, protocol=protocol, ci_low=low, ci_high=high, n=n,
                      note="; ".join(notes), extra={"ci_method": method, **(extra or {})})

    def describe(self) -> dict[str, Any]:
        """Provenance: the pairs file and its hash, sizes and the distance."""
        return {"task": self.name, "task_type": self.type, "pairs_file": str(self.pairs_path),
                "pairs_sha256": hashlib.sha256(self.pairs_path.read_bytes()).hexdigest()[:16],
                "n_pairs": len(self.pair_index), "n_images": len(self.images),
                "distance": distance_name(self.distance)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, pairs={str(self.pairs_path)!r})"
