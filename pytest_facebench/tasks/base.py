"""`BaseTask`: a pairs table over an images root, a distance, and a `score` that turns per-row
values of one layer (pair distances by default) into `Metric`s. Tasks know nothing about pytest or models.

A task type is one class, in one file, that declares everything the plugin needs:
- `type` (the grid's name, and the `<type>_task` fixture), `headline` (the metric of summary tables);
- `metrics`: id → `MetricInfo(display name, direction)`;
- `roles`/`optional_roles`: the pairs file's columns (configurable with `columns = {role: name}`);
- options: the keyword parameters of `__init__` (typed by their annotations, checked, with defaults);
- `score(values)`: the metrics of one layer; or, for a simple type, `statistic(values, counts, scoring)`, from
  which the default `score` makes the headline with its bootstrap CI;
- `compare(a, b)`: how two models compare on it (default: a paired bootstrap of `statistic`);
- `figures`: the figure kinds of `report/plots.py` it draws beyond every task's bars and layer profile (`roc`:
  ROC and distance histograms from the per-pair distances, its AUC from the `auc` rows; `scatter`: model against
  human dissimilarity for the headline; `rdm`: the RDMs; `cmc`: CMC curves from `rank<k>` rows; `group_bars`:
  the `group_mean` rows per condition);
- `axes`: how figures show its metrics (metric id or pattern → `Axis`: the axis label, the chance or no-effect
  line, the noise ceiling); a metric without one is shown by its display name, without reference lines;
- `face_recognition_metric`: the metric a face-recognition table (`table --layout face-recognition`) gives for a
  task of this type ('' for none).

Every task takes the bootstrap options `n_boot` (default 1000; 0 turns CIs off), `seed` (0) and `ci`
(0.95): each result row carries `ci_low`, `ci_high`, `n` and a `ci_method` such as
'bootstrap(1000, pairs), 95% percentile' (see `stats/bootstrap.py`)."""

from __future__ import annotations

import copy
import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..data.pairs import LINE, is_pack, read_pack_pairs, read_pairs, require_columns
from ..engine.distances import Distance, distance_name, pair_distances, resolve_distance
from ..engine.images import check_images_exist
from ..errors import ConfigError, DataError
from ..faces.manipulations import parse_manipulation
from ..faces.stimuli import parse_derive, stimulus_path
from ..outputs.metrics import Axis, MetricInfo, TaskTypeInfo, register, register_task_type
from ..outputs.results import Metric
from ..stats import Bootstrap, paired_result
from ..storage.fingerprint import file_sha256


class BaseTask:
    """Subclasses set `type`, `headline`, `metrics` and `roles` (extra column roles → default names),
    and implement `score`. Column names are configurable through `columns = {role: name}`; an
    optional role named explicitly in `columns` must exist in the file, one left at its default name
    is used only when the file has it.

    Hooks: `_prepare(table)` reshapes the file's table before images are indexed (RSA, long-format
    ratings); `_validate(table)` parses the type-specific columns; `layer_values(embeddings, device)`
    gives one value per row of `pair_rows()` for a layer (pair distances by default; ranks for
    identification); `scoring()` is the JSON-able state `compare` needs to compare models on this task."""

    type: ClassVar[str] = ""
    headline: ClassVar[str] = ""
    metrics: ClassVar[dict[str, MetricInfo]] = {}
    figures: ClassVar[tuple[str, ...]] = ()
    axes: ClassVar[dict[str, Axis]] = {}
    face_recognition_metric: ClassVar[str] = ""
    value_name: ClassVar[str] = "distance"  # what `layer_values` gives per row (its column in distances/)
    image_roles: ClassVar[tuple[str, ...]] = ("img1", "img2")
    roles: ClassVar[dict[str, str]] = {}
    optional_roles: ClassVar[dict[str, str]] = {}
    reads_packs: ClassVar[bool] = False  # may `pairs` be an insightface .bin pack (columns img1, img2, label)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A task class's metrics become known by id to reports, gates and comparisons."""
        super().__init_subclass__(**kwargs)
        if isinstance(cls.metrics, (list, tuple)):  # plain ids: metrics without a direction
            cls.metrics = {str(m): MetricInfo(str(m)) for m in cls.metrics}
        if not isinstance(cls.metrics, dict) or not all(isinstance(v, MetricInfo) for v in cls.metrics.values()):
            raise TypeError(
                f"{cls.__qualname__}.metrics must be a dict of metric id -> MetricInfo(display, "
                f"direction), e.g. {{'auc': MetricInfo('AUC', 'higher')}}"
            )
        if not isinstance(cls.axes, dict) or not all(isinstance(v, Axis) for v in cls.axes.values()):
            raise TypeError(
                f"{cls.__qualname__}.axes must be a dict of metric id (or pattern such as 'rank*') -> Axis(label, "
                f"chance=...), e.g. {{'auc': Axis('ROC AUC', chance=0.5)}}"
            )
        register(cls.metrics, f"{cls.__module__}.{cls.__qualname__}")
        register_task_type(cls.type, cls.type_info())

    @classmethod
    def type_info(cls) -> TaskTypeInfo:
        """What reports need of this type (`metrics.TaskTypeInfo`): headline, figures, axes, face-recognition metric."""
        return TaskTypeInfo(cls.headline, tuple(cls.figures), dict(cls.axes), cls.face_recognition_metric)

    @property
    def headline_metric(self) -> str:
        """The metric results flag as this task's headline (summary tables, the terminal, `table`): the grid's
        `headline` when it names one (`choose_headline`), else the type's."""
        return str(vars(self).get("chosen_headline") or self.headline)

    def choose_headline(self, metric: str) -> None:
        """Flag `metric` rather than the type's `headline` in results (the grid's `headline = "auc"`). Part of the
        task's state, so of its cells' cache keys; the type's own `headline` still names what `statistic`
        computes and what `compare` compares."""
        self.chosen_headline = metric

    @classmethod
    def reference(cls) -> str:
        """How to import this class again ('module:Class', or 'file.py:Class' for a grid's own file)."""
        module = sys.modules.get(cls.__module__)
        file = getattr(module, "__file__", None)
        if cls.__module__.startswith("facebench_user_") and file:
            return f"{file}:{cls.__qualname__}"
        return f"{cls.__module__}:{cls.__qualname__}"

    def __init__(
        self,
        name: str,
        pairs: str | Path,
        images: str | Path | None = None,
        distance: Distance = "cosine",
        columns: dict[str, str] | None = None,
        n_boot: int = 1000,
        seed: int = 0,
        ci: float = 0.95,
        *,
        trusted: bool = False,
    ):
        """`images` is the folder the pairs file's image paths are relative to. For an insightface `.bin` pack
        (`reads_packs` types) it is optional: the root under which the pack's images are cached (see
        `pairs.read_pack_pairs`); `trusted` allows unpickling a pack whose sha256 is not a known one."""
        self.name = name
        self.pairs_path = Path(pairs)
        self.images_given = images is not None
        # for a pack: the cache root until `load` sets it to the pack's own image folder under it
        self.images_root = Path(images) if images is not None else Path()
        if not isinstance(trusted, bool):
            raise ConfigError(f"task '{name}': trusted must be true or false; got {trusted!r}")
        self.trusted = trusted
        self.pack_sha256: str | None = None
        self.distance = distance
        resolve_distance(distance)
        self.bootstrap = Bootstrap.checked(n_boot, seed, ci, name)
        known = {*self.image_roles, *self.roles, *self.optional_roles}
        unknown = set(columns or {}) - known
        if unknown:
            raise ConfigError(
                f"task '{name}': unknown column role(s) {sorted(unknown)}; "
                f"a '{self.type}' task has roles {sorted(known)}"
            )
        self.columns = {**{role: role for role in self.image_roles}, **self.roles, **(columns or {})}
        self.optional_columns = {
            role: (columns or {}).get(role, default) for role, default in self.optional_roles.items()
        }
        self._table: pd.DataFrame | None = None
        self._images: list[Path] = []
        self.dropped_rows = 0  # rows left out because an image had no face (`without_images`)
        self.derive: dict[str, tuple[str, ...]] = {}  # derived conditions: name -> manipulations (`derive_stimuli`)
        self._pair_index: np.ndarray = np.empty((0, 2), dtype=np.int64)

    # --- loading ----------------------------------------------------------------------------
    def load(self) -> BaseTask:
        """Read and validate the pairs file and images (once). Raises `DataError` naming what is wrong."""
        if self._table is not None:
            return self
        if is_pack(self.pairs_path):
            table = self._prepare(self._read_pack())
        else:
            if not self.images_given:
                raise DataError(
                    f"task '{self.name}': 'images' is required: the folder the image paths of {self.pairs_path} "
                    f"are relative to (only an insightface .bin pack brings its own images)"
                )
            if not self.images_root.is_dir():
                raise DataError(f"task '{self.name}': images directory not found: {self.images_root}")
            if self.pairs_path.is_dir():
                raise DataError(
                    f"task '{self.name}': pairs file {self.pairs_path} is a directory; expected a pairs file "
                    f"(CSV, TSV, whitespace .txt, LFW pairs.txt or an insightface .bin pack)"
                )
            if not self.pairs_path.is_file():
                raise DataError(f"task '{self.name}': pairs file not found: {self.pairs_path}")
            table = self._prepare(read_pairs(self.pairs_path))
        self._index_table(table)
        return self

    def derive_stimuli(self, derive: dict[str, Any]) -> BaseTask:
        """Declare derived conditions (the grid's `derive = { inverted = "rotate180" }`): a pairs-file cell
        `<condition>:<path>` names the image at `<path>` with the condition's manipulations applied after
        alignment (`faces.stimuli`). Part of the task's state, so of its cells' keys."""
        self.derive = parse_derive(derive)
        self._table = None
        return self

    def _image_path(self, cell: Any, line: Any) -> Path:
        if not self.derive:
            return self.images_root / str(cell).strip()
        try:
            return stimulus_path(self.images_root, str(cell), self.derive)
        except DataError as exc:
            raise DataError(f"{self.pairs_path}, line {line}: {exc}") from None

    def _index_table(self, table: pd.DataFrame) -> None:
        """Index the images of a read table (rows × image roles) and validate the type's own columns."""
        require_columns(table, self.columns, self.pairs_path)
        # Cells are factorized once (first appearance, roles in order) and only distinct cells become paths; two
        # spellings of one file ('a.jpg', './a.jpg') are one image, at its first appearance.
        lines = table[LINE] if LINE in table else pd.Series(range(2, len(table) + 2))
        cells = np.concatenate([table[self.columns[role]].astype(str).to_numpy() for role in self.image_roles])
        codes, distinct = pd.factorize(cells)
        first = np.unique(codes, return_index=True)[1] % max(len(table), 1)  # the row each distinct cell is first on
        paths = [self._image_path(cell, lines.iloc[row]) for cell, row in zip(distinct, first)]
        images = list(dict.fromkeys(paths))
        if len(images) < len(paths):
            position = {p: i for i, p in enumerate(images)}
            codes = np.array([position[p] for p in paths], dtype=np.int64)[codes]
        check_images_exist(images, self.pairs_path)
        self._pair_index = codes.astype(np.int64).reshape(len(self.image_roles), len(table)).T.copy()
        self._images = images
        self._validate(table)
        self._table = table

    def without_images(self, dropped: set[Path]) -> BaseTask:
        """A copy that scores only the rows none of whose images is in `dropped` (images in which the model's face
        detector found no face, under `on_missing = "drop"`); the type's columns are validated again on them."""
        self.load()
        if type(self).load is not BaseTask.load:
            raise DataError(
                f"task '{self.name}': a '{self.type}' task cannot drop rows; use on_missing = 'center_crop' or 'fail'"
            )
        gone = np.array([image in dropped for image in self._images], dtype=bool)
        keep = ~gone[self._pair_index].any(axis=1) if len(self._pair_index) else np.zeros(0, dtype=bool)
        if not keep.any():
            raise DataError(f"task '{self.name}': every row has an image without a face (on_missing = 'drop')")
        clone = copy.copy(self)
        assert self._table is not None
        try:
            clone._index_table(self._table[keep].reset_index(drop=True))
        except DataError as exc:
            raise DataError(
                f"task '{self.name}': after dropping {int((~keep).sum())} row(s) without a face: {exc}"
            ) from None
        clone.dropped_rows = int((~keep).sum())
        return clone

    def _read_pack(self) -> pd.DataFrame:
        """The pairs table of an insightface `.bin` pack (`pairs.read_pack_pairs`), its columns named as the task
        names its roles; `images_root` becomes the folder of the pack's images."""
        if not self.reads_packs:
            raise DataError(
                f"task '{self.name}': {self.pairs_path} is an insightface .bin pack (image pairs labelled same or "
                f"different), which a '{self.type}' task cannot read; use it with type = 'accuracy'"
            )
        try:
            table, folder, self.pack_sha256 = read_pack_pairs(
                self.pairs_path, trusted=self.trusted, cache_root=self.images_root if self.images_given else None
            )
        except DataError as exc:
            raise DataError(f"task '{self.name}': {exc}") from None
        self.images_root = folder
        names = {role: self.columns.get(role, role) for role in ("img1", "img2", "label")}
        return table.rename(columns={role: name for role, name in names.items() if name != role})

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
        return self.load()._table

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
        functions: dict[str, Any] = {"distance": resolve_distance(self.distance)}
        for condition, specs in self.derive.items():  # a user's manipulation (module:function), by its source
            for spec in specs:
                manipulation = parse_manipulation(spec)
                if not manipulation.name:
                    functions[f"derive:{condition}:{spec}"] = manipulation.function()
        return functions

    # --- scoring ----------------------------------------------------------------------------
    def layer_values(self, embeddings: Any, device: Any = "cpu") -> np.ndarray:
        """One value per row of `pair_rows()` for one layer's (N, D) embeddings (rows = `images`):
        the pair distances by default."""
        return pair_distances(embeddings, self.pair_index, self.distance, device)

    @staticmethod
    def statistic(values: np.ndarray, counts: np.ndarray, scoring: dict[str, Any]) -> np.ndarray:
        """The headline metric of per-row `values` (n,) under resampling counts (b, n) → (b,); `scoring` is the
        task's `scoring()` state. A type that defines it gets `score` (the headline with a bootstrap CI over
        rows) and `compare` (a paired bootstrap) without writing them."""
        raise NotImplementedError

    def score(self, distances: np.ndarray) -> list[Metric]:
        """Metrics for one layer from its per-row values (`layer_values`). By default: the headline from
        `statistic`, with a bootstrap CI over rows."""
        values = np.asarray(distances, dtype=float)
        scoring = self.scoring()
        point = float(self.statistic(values, np.ones((1, len(values)), dtype=np.int64), scoring)[0])
        samples = self.bootstrap.samples(lambda counts: {"s": self.statistic(values, counts, scoring)}, len(values))
        return [
            self.metric(
                self.headline,
                point,
                samples.get("s"),
                n=len(values),
                protocol=f"{type(self).__qualname__}.statistic over all rows",
            )
        ]

    def scoring(self) -> dict[str, Any]:
        """JSON-able facts `compare` needs to compare two models on this task (labels, groups...). Rides on the
        cell payload; `evaluate_cell` adds the layer → column map."""
        return {
            "type": self.type,
            "task_class": self.reference(),
            **self.type_info().as_json(),  # headline, figures, axes, face_recognition_metric
            "metrics": {m: [i.display, i.direction] for m, i in self.metrics.items()},
            "n_boot": self.bootstrap.n_boot,
            "seed": self.bootstrap.seed,
            "ci": self.bootstrap.ci,
            "rows_sha256": self.rows_sha256(),
        }

    @classmethod
    def compare(cls, a: CellValues, b: CellValues) -> list[dict[str, Any]]:
        """Rows of `comparisons.csv` for two models' readout layers on the same rows (metric, value_a, value_b,
        diff, ci_low, ci_high, p_value, test). Default: a paired bootstrap of `statistic` over rows; nothing
        for a type that defines neither."""
        if cls.statistic is BaseTask.statistic:
            return []
        s = a.scoring
        return [
            paired_row(
                cls.headline,
                a,
                b,
                lambda e: float(cls.statistic(e.values, np.ones((1, len(e.values)), np.int64), s)[0]),
                lambda e, counts: cls.statistic(e.values, counts, s),
                f"paired bootstrap({bootstrap_of(s).n_boot}, pairs) of {cls.__qualname__}.statistic",
            )
        ]

    def rows_sha256(self) -> str:
        """Content hash of the scored rows (two cells compare only when they scored the same rows)."""
        return hashlib.sha256(self.pair_rows().to_csv(index=False).encode()).hexdigest()[:16]

    def metric(
        self,
        metric: str,
        value: float,
        samples: np.ndarray | None = None,
        *,
        unit: str = "pairs",
        condition: str | None = None,
        protocol: str = "",
        n: int | None = None,
        note: str = "",
        extra: dict[str, Any] | None = None,
    ) -> Metric:
        """A `Metric` with its bootstrap interval from `samples` (none when the value is undefined). A spread
        (`*_std`) never gets one: a percentile interval of a resampled std need not contain the std itself
        (README, "Statistics: one rule")."""
        if metric.endswith("_std"):
            samples = None
        low = high = np.nan
        notes = [note] if note else []
        if samples is not None and np.isfinite(value) and self.bootstrap.enabled:
            low, high, ci_note = self.bootstrap.interval(samples)
            if ci_note:
                notes.append(ci_note)
        text = self.metric_label(metric)
        label = {"metric_label": text} if text else {}
        if not self.bootstrap.enabled:
            method = self.bootstrap.method(unit)
        else:
            method = self.bootstrap.method(unit) if samples is not None else "none"
        return Metric(
            metric,
            float(value),
            condition=condition,
            protocol=protocol,
            ci_low=low,
            ci_high=high,
            n=n,
            note="; ".join(dict.fromkeys(part for n in notes for part in n.split("; ") if part)),
            extra={"ci_method": method, **label, **(extra or {})},
        )

    def metric_label(self, metric: str) -> str | None:
        """A label naming what this task's `metric` measures with its options (the method, the distance), shown
        in tables and figures instead of the metric's display name; None keeps the display name."""
        return None

    def describe(self) -> dict[str, Any]:
        """Provenance: the pairs file and its hash, sizes and the distance."""
        return {
            "task": self.name,
            "task_type": self.type,
            "pairs_file": str(self.pairs_path),
            "pairs_sha256": self.pack_sha256 or file_sha256(self.pairs_path),
            "n_pairs": len(self.pair_index),
            "n_images": len(self.images),
            "distance": distance_name(self.distance),
            **({"derive": {k: list(v) for k, v in self.derive.items()}} if self.derive else {}),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, pairs={str(self.pairs_path)!r})"


@dataclass
class CellValues:
    """One model's per-row values of a task at its readout layer, with the task's `scoring()` facts."""

    model: str
    layer: str
    values: np.ndarray
    scoring: dict[str, Any]


def bootstrap_of(scoring: dict[str, Any]) -> Bootstrap:
    """The bootstrap settings a cell was scored with."""
    return Bootstrap(int(scoring.get("n_boot", 1000)), int(scoring.get("seed", 0)), float(scoring.get("ci", 0.95)))


def paired_row(
    metric: str,
    a: CellValues,
    b: CellValues,
    estimate: Callable[[CellValues], float],
    resampled: Callable[[CellValues, np.ndarray], np.ndarray],
    test: str,
    groups: Any = None,
    strata: Any = None,
) -> dict[str, Any]:
    """A paired-bootstrap comparison row: `estimate(cell)` for the point, `resampled(cell, counts)` → (b,) on
    resamples shared by both models."""
    boot = bootstrap_of(a.scoring)
    value_a, value_b = float(estimate(a)), float(estimate(b))
    row = {
        "metric": metric,
        "value_a": value_a,
        "value_b": value_b,
        "diff": value_a - value_b,
        "ci_low": np.nan,
        "ci_high": np.nan,
        "p_value": np.nan,
        "test": test,
    }
    if not (np.isfinite(value_a) and np.isfinite(value_b)):
        return {**row, "note": "undefined for at least one model"}
    if not boot.enabled:
        return {**row, "note": "n_boot = 0: no interval or p-value"}
    groups = None if groups is None else np.asarray(groups)
    strata = None if strata is None else np.asarray(strata)
    samples = boot.samples(
        lambda counts: {"a": resampled(a, counts), "b": resampled(b, counts)},
        len(a.values),
        groups=groups,
        strata=strata,
    )
    diff, low, high, p = paired_result(value_a, value_b, samples["a"], samples["b"], boot.ci)
    return {**row, "diff": diff, "ci_low": low, "ci_high": high, "p_value": p}
