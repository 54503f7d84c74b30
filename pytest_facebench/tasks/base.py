"""`BaseTask`: a pairs table over an images root, a distance, and a `score` that turns per-pair
distances of one layer into `Metric`s. Tasks know nothing about pytest or models."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..distances import Distance, distance_name, resolve_distance
from ..errors import ConfigError, DataError
from ..images import check_images_exist
from ..pairs import LINE, read_pairs, require_columns
from ..results import Metric


class BaseTask:
    """Subclasses set `type`, `headline`, `metrics` and `roles` (extra column roles → default names),
    and implement `score`. Column names are configurable through `columns = {role: name}`."""

    type: ClassVar[str] = ""
    headline: ClassVar[str] = ""
    metrics: ClassVar[tuple[str, ...]] = ()
    roles: ClassVar[dict[str, str]] = {}
    optional_roles: ClassVar[dict[str, str]] = {}

    def __init__(self, name: str, pairs: str | Path, images: str | Path, distance: Distance = "cosine",
                 columns: dict[str, str] | None = None):
        self.name = name
        self.pairs_path = Path(pairs)
        self.images_root = Path(images)
        self.distance = distance
        resolve_distance(distance)
        known = {"img1", "img2", *self.roles, *self.optional_roles}
        unknown = set(columns or {}) - known
        if unknown:
            raise ConfigError(f"task '{name}': unknown column role(s) {sorted(unknown)}; "
                              f"a '{self.type}' task has roles {sorted(known)}")
        self.columns = {"img1": "img1", "img2": "img2", **self.roles, **(columns or {})}
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
        if not self.pairs_path.is_file():
            raise DataError(f"task '{self.name}': pairs file not found: {self.pairs_path}")
        table = read_pairs(self.pairs_path)
        require_columns(table, self.columns, self.pairs_path)
        paths1 = [self.images_root / p.strip() for p in table[self.columns["img1"]]]
        paths2 = [self.images_root / p.strip() for p in table[self.columns["img2"]]]
        images = list(dict.fromkeys(paths1 + paths2))
        check_images_exist(images, self.pairs_path)
        position = {p: i for i, p in enumerate(images)}
        self._pair_index = np.array([[position[a], position[b]] for a, b in zip(paths1, paths2)], dtype=np.int64)
        self._images = images
        self._validate(table)
        self._table = table
        return self

    def _validate(self, table: pd.DataFrame) -> None:
        """Parse and check the type-specific columns (labels, ratings, groups...)."""

    def column(self, role: str) -> pd.Series:
        return self.table[self.columns.get(role) or self.optional_columns[role]]

    def has_column(self, role: str) -> bool:
        name = self.columns.get(role) or self.optional_columns.get(role)
        return name is not None and name in self.table

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

    # --- scoring ----------------------------------------------------------------------------
    def score(self, distances: np.ndarray) -> list[Metric]:
        """Metrics for one layer from its (P,) pair distances."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Provenance: the pairs file and its hash, sizes and the distance."""
        return {"task": self.name, "task_type": self.type, "pairs_file": str(self.pairs_path),
                "pairs_sha256": hashlib.sha256(self.pairs_path.read_bytes()).hexdigest()[:16],
                "n_pairs": len(self.pair_index), "n_images": len(self.images),
                "distance": distance_name(self.distance)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, pairs={str(self.pairs_path)!r})"
