"""Template verification (`template_verification`): IJB-B / IJB-C 1:1, pairs of templates scored by the
cosine of their template features (insightface's ``ijb_11.py`` protocol).

Files (insightface's ``recognition/_evaluation_/ijb`` layout, read by `formats.ijb`):

- `pairs`: ``*_template_pair_label.txt``, ``template_1 template_2 label`` (1 = same subject);
- `faces`: ``*_face_tid_mid.txt``, ``image_name template_id media_id``: every image it lists (under
  `images`, e.g. ``loose_crop/``) is embedded; it says which template and media each image belongs to;
- `faceness` (optional): ``*_name_5pts_score.txt``, whose last column (the detector's face score) weights
  each image (insightface's default 'D1'); every image of `faces` needs a row.

A relative `faces` or `faceness` path is looked up in the pairs file's folder, then in each folder above
it (so a path written relative to the grid file works too). The 5 landmarks of the same file are the
model's business: ``align = "arcface_112"``, ``detector = "landmarks:<file>"`` on the model.

Per layer, each template's feature is the sum over its media of the mean of the media's image embeddings,
L2-normalized (`templates.template_features`: one sparse weighted sum, in row chunks; ``use_norm = false``
L2-normalizes every image embedding first, insightface's 'N0'; faceness multiplies each image's weight).
Flip-test features come from the model (``flip_test = true``, which sums the two passes and L2-normalizes,
so the image norm `use_norm` keeps is then 1). A pair's value is its cosine distance ``1 − cos`` of the
two template features (`templates.score_template_pairs`, chunked, on the device).

Metrics: `tar_at_far_<far>` for each of `fars` (default 1e-6 … 1e-1; 1e-4, the headline, always): the
true accept rate at the largest distance whose false accept rate is at most `far`; NaN with a note when
the file has fewer than 1/far different pairs. `auc`: ROC AUC over all pairs.

Confidence intervals resample pairs (the same pair bootstrap as `accuracy`), computed without touching
every pair per resample: TAR@FAR and AUC of a resample depend only on how many resampled pairs fall in
each of a few *cells* (each same pair on its own; the different pairs near each FAR's threshold on their
own; the others grouped between consecutive same-pair distances), and the pair bootstrap's cell counts are
exactly multinomial (n pairs, cell sizes / n). Drawing those counts costs O(cells), about 50 k for an
IJB-C-sized set, instead of O(15.7 M pairs): on two CPU cores, 9 s to build the cells once per layer and
6-8 s for 1000 resamples, where `stats.Roc` on every pair takes 4 s per resample (over an hour). Windows
around each threshold span ±8 standard deviations of its resampled position; a resample whose threshold
falls outside (probability < 1e-14) is counted as degenerate in the CI note. `compare` gives DeLong's test
of the AUCs and a paired bootstrap of the headline TAR on the same kind of cells (joint over the two models).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .. import stats
from ..data.formats.ijb import attach_landmarks, read_face_tid_mid, read_landmarks, read_template_pairs
from ..data.pairs import LINE
from ..data.templates import score_template_pairs, template_features
from ..engine.distances import Distance, distance_name
from ..errors import ConfigError, DataError, list_some
from ..outputs.metrics import HIGHER, Axis, MetricInfo
from ..outputs.results import Metric
from ..stats.roc import FAR_TOLERANCE
from .base import BaseTask, CellValues, bootstrap_of
from .verification import checked_fars, far_metric, tar_metrics

if TYPE_CHECKING:
    from numpy.typing import NDArray

IJB_FARS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
HEADLINE_FAR = 1e-4
WINDOW_SD = 8.0  # half-width of a threshold's window of individually counted different pairs, in SDs
BLOCK_COUNTS = 1 << 22  # resamples x cells per block of the cell bootstrap


class TemplateVerificationTask(BaseTask):
    """IJB-B / IJB-C 1:1 template verification: TAR@FAR and AUC of template pairs (see the module doc)."""

    type = "template_verification"
    headline = far_metric(HEADLINE_FAR)
    metrics = {
        **{far_metric(f): MetricInfo(f"TAR@FAR={f:g}", HIGHER) for f in IJB_FARS},
        "auc": MetricInfo("AUC", HIGHER),
    }
    figures = ("roc",)
    axes = {"auc": Axis("ROC AUC", chance=0.5), "tar_at_far_*": Axis(chance="far")}
    face_recognition_metric = far_metric(HEADLINE_FAR)  # IJB-B/C papers report TAR@FAR=1e-4
    value_name = "distance"  # 1 − cosine of the two template features
    image_roles = ()

    def __init__(
        self,
        name: str,
        pairs: str | Path,
        images: str | Path,
        faces: str | Path | None = None,
        faceness: str | Path | None = None,
        use_norm: bool = True,
        fars: Sequence[float] = IJB_FARS,
        distance: Distance = "cosine",
        columns: dict[str, str] | None = None,
        n_boot: int = 1000,
        seed: int = 0,
        ci: float = 0.95,
    ):
        if columns:
            raise ConfigError(
                f"task '{name}': a '{self.type}' task reads IJB's fixed columns (template_1 template_2 label; "
                f"image_name template_id media_id); remove 'columns' ({sorted(columns)})"
            )
        if distance != "cosine":
            raise ConfigError(
                f"task '{name}': a '{self.type}' task scores template pairs by the cosine of their template "
                f"features (insightface's protocol); distance must be 'cosine', got {distance_name(distance)!r}"
            )
        super().__init__(name, pairs, images, "cosine", None, n_boot=n_boot, seed=seed, ci=ci)
        if faces is None or not isinstance(faces, (str, Path)) or not str(faces).strip():
            raise ConfigError(
                f"task '{name}': option 'faces' is required: the image → template, media file "
                f"(IJB's *_face_tid_mid.txt), e.g. faces = 'meta/ijbc_face_tid_mid.txt'"
            )
        if faceness is not None and (not isinstance(faceness, (str, Path)) or not str(faceness).strip()):
            raise ConfigError(f"task '{name}': faceness must be a file path; got {faceness!r}")
        if not isinstance(use_norm, bool):
            raise ConfigError(f"task '{name}': use_norm must be true or false; got {use_norm!r}")
        self.faces_path = self._locate(Path(faces).expanduser())
        self.faceness_path = None if faceness is None else self._locate(Path(faceness).expanduser())
        self.use_norm = use_norm
        self.fars = _check_fars(fars, name)
        self.template_protocol = ""
        self._faces: pd.DataFrame | None = None
        self._labels = np.empty(0, dtype=bool)
        self._pair_templates = np.empty((0, 2), dtype=np.int64)
        self._record_image = np.empty(0, dtype=np.int64)
        self._faceness: np.ndarray | None = None
        self._zero_templates = 0

    def _locate(self, path: Path) -> Path:
        """A relative path: the first of the pairs file's folder and the folders above it that holds it."""
        if path.is_absolute():
            return path
        folders = [self.pairs_path.parent, *self.pairs_path.parent.parents]
        for folder in folders:
            if (folder / path).is_file():
                return folder / path
        return self.pairs_path.parent / path  # not found: load() names it

    # --- loading ------------------------------------------------------------------------------
    def load(self) -> TemplateVerificationTask:
        """Read the pairs, faces (and faceness) files, check them against each other and the images (once).
        Raises a one-line `DataError` naming the file and line of the first problem."""
        if self._table is not None:
            return self
        if not self.images_root.is_dir():
            raise DataError(f"task '{self.name}': images directory not found: {self.images_root}")
        for option, path in (("pairs", self.pairs_path), ("faces", self.faces_path), ("faceness", self.faceness_path)):
            if path is not None and not path.is_file():
                where = "" if option == "pairs" else f" (relative paths: from {self.pairs_path.parent} upwards)"
                raise DataError(f"task '{self.name}': {option} file not found: {path}{where}")
        faces = read_face_tid_mid(self.faces_path)
        pairs = read_template_pairs(self.pairs_path, faces=faces)  # an unknown template: its pair line
        labels = pairs["label"].to_numpy() == 1
        if labels.all() or not labels.any():
            only = "same (1)" if labels.all() else "different (0)"
            raise DataError(
                f"{self.pairs_path}: only {only} pairs ({len(labels)} rows); TAR@FAR needs both same and "
                f"different template pairs"
            )
        if self.faceness_path is not None:
            faces = attach_landmarks(faces, read_landmarks(self.faceness_path), self.faceness_path)
            self._faceness = faces["faceness"].to_numpy(dtype=np.float64)
            negative = np.flatnonzero(self._faceness < 0)
            if len(negative):
                raise DataError(
                    f"{self.faceness_path}: image {faces['image'].iat[negative[0]]!r} has a negative faceness "
                    f"score {self._faceness[negative[0]]:g}; expected scores >= 0"
                )
        codes, names = pd.factorize(faces["image"], sort=False)
        images = [self.images_root / str(n) for n in names]
        missing = [i for i, p in enumerate(images) if not p.is_file()]
        if missing:
            first = int(np.argmax(codes == missing[0]))
            raise DataError(
                f"{self.faces_path}: line {faces[LINE].iat[first]}: image {names[missing[0]]!r} not found under "
                f"{self.images_root} ({len(missing)} of {len(images)} image file(s) missing: "
                f"{list_some([str(names[i]) for i in missing])})"
            )
        self._record_image = codes.astype(np.int64)
        self._images = images
        self._faces = faces
        self._labels = labels
        self._pair_templates = np.stack(
            [pairs["template_1"].to_numpy(np.int64), pairs["template_2"].to_numpy(np.int64)], axis=1
        )
        n_templates = len(np.unique(faces["template_id"].to_numpy()))
        self.template_protocol = (
            f"insightface IJB 1:1: media mean, template sum, L2 ("
            f"{'image norms kept' if self.use_norm else 'images L2-normalized first'}; "
            f"{'faceness-weighted (' + self.faceness_path.name + ')' if self.faceness_path else 'unweighted'}); "
            f"cosine of template features; {n_templates} templates, {len(pairs)} pairs "
            f"({int(labels.sum())} same)"
        )
        self._table = pairs
        return self

    def pair_rows(self) -> pd.DataFrame:
        """One row per template pair: template_1, template_2, label (the ROC figure reads `label`)."""
        return self.table.drop(columns=[LINE])

    @property
    def labels(self) -> np.ndarray:
        return self.load()._labels

    @property
    def pair_templates(self) -> np.ndarray:
        """(P, 2) template ids of each pair, in file order."""
        return self.load()._pair_templates

    def rows_sha256(self) -> str:
        """Content hash of the scored pairs (numbers, not CSV text: IJB-C has 15.7 M of them)."""
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(self.pair_templates).tobytes())
        digest.update(self.labels.astype(np.uint8).tobytes())
        return digest.hexdigest()[:16]

    # --- scoring ------------------------------------------------------------------------------
    def template_features(self, embeddings: Any) -> tuple[np.ndarray, np.ndarray]:
        """(sorted template ids (T,), L2-normalized template features (T, D) float32) of one layer's image
        embeddings (rows = `images`)."""
        faces = self.load()._faces
        assert faces is not None
        ids, features = template_features(
            embeddings,
            faces["template_id"].to_numpy(),
            faces["media_id"].to_numpy(),
            faceness=self._faceness,
            use_norm=self.use_norm,
            use_faceness=self._faceness is not None,
            image_rows=self._record_image,
        )
        return ids, features

    def layer_values(self, embeddings: Any, device: Any = "cpu") -> np.ndarray:
        """The cosine distance 1 − cos of each template pair's two template features (file order)."""
        ids, features = self.template_features(embeddings)
        self._zero_templates = int((~np.any(features != 0, axis=1)).sum())
        device = str(device)
        cosine = score_template_pairs(features, ids, self.pair_templates, device=device)
        return 1.0 - cosine.astype(np.float64)

    def score(self, distances: np.ndarray) -> list[Metric]:
        d = np.asarray(distances, dtype=float)
        y = self.labels
        n = len(d)
        tars = stats.tar_at_far(d, y, self.fars)
        auc = float(stats.roc_auc(d, y))
        samples: dict[str, np.ndarray] = {}
        if self.bootstrap.enabled:
            cells = ScoreCells.build(d[None, :], y, self.fars, with_auc=True)
            samples = cells.bootstrap(self.bootstrap.n_boot, self.bootstrap.seed, self.fars, with_auc=True)[0]
        note = (
            f"{self._zero_templates} template(s) have a zero feature (weights summing to 0): their pairs score cosine 0"
            if self._zero_templates
            else ""
        )
        out = [
            self.metric("auc", auc, samples.get("auc"), n=n, protocol=f"{self.template_protocol}; all pairs", note=note)
        ]
        out += tar_metrics(
            self,
            {far: tars[far] for far in self.fars},
            samples,
            n=n,
            protocol=self.template_protocol + "; {rule}",
            note=note,
        )
        return out

    def scoring(self) -> dict[str, Any]:
        """Labels ride as the rows of the same pairs (IJB-C: 19.5 k of 15.7 M), with the FARs."""
        return {
            **super().scoring(),
            "same_rows": np.flatnonzero(self.labels).tolist(),
            "n_pairs": len(self.labels),
            "fars": list(self.fars),
            "unit": "pairs",
        }

    @classmethod
    def compare(cls, a: CellValues, b: CellValues) -> list[dict[str, Any]]:
        """The headline TAR@FAR: a paired pair bootstrap (on cells joint over both models); `auc`: DeLong."""
        s = a.scoring
        labels = np.zeros(int(s.get("n_pairs", len(a.values))), dtype=bool)
        labels[np.asarray(s.get("same_rows", []), dtype=np.int64)] = True
        if len(labels) != len(a.values) or labels.all() or not labels.any():
            return []
        boot = bootstrap_of(s)
        far = HEADLINE_FAR
        name = far_metric(far)
        values = [stats.tar_at_far(e.values, labels, [far])[far] for e in (a, b)]
        value_a, value_b = (r.tar if r.reachable else np.nan for r in values)
        row: dict[str, Any] = {
            "metric": name,
            "value_a": value_a,
            "value_b": value_b,
            "diff": value_a - value_b,
            "ci_low": np.nan,
            "ci_high": np.nan,
            "p_value": np.nan,
            "test": f"paired bootstrap({boot.n_boot}, pairs) of TAR@FAR={far:g}",
        }
        if not (np.isfinite(value_a) and np.isfinite(value_b)):
            row["note"] = "undefined for at least one model"
        elif not boot.enabled:
            row["note"] = "n_boot = 0: no interval or p-value"
        else:
            cells = ScoreCells.build(np.stack([a.values, b.values]), labels, [far], with_auc=False)
            sa, sb = cells.bootstrap(boot.n_boot, boot.seed, [far], with_auc=False)
            diff, low, high, p = stats.paired_result(value_a, value_b, sa[name], sb[name], boot.ci)
            row.update(diff=diff, ci_low=low, ci_high=high, p_value=p)
        result = stats.delong_test(a.values, b.values, labels)
        z = stats.normal_quantile(0.5 + float(s.get("ci", 0.95)) / 2)
        auc_row = {
            "metric": "auc",
            "value_a": result.auc_a,
            "value_b": result.auc_b,
            "diff": result.diff,
            "ci_low": result.diff - z * result.se,
            "ci_high": result.diff + z * result.se,
            "p_value": result.p_value,
            "test": "DeLong",
        }
        return [row, auc_row]

    def describe(self) -> dict[str, Any]:
        faces = self.load()._faces
        assert faces is not None
        out = {
            "task": self.name,
            "task_type": self.type,
            "pairs_file": str(self.pairs_path),
            "pairs_sha256": _file_sha256(self.pairs_path),
            "faces_file": str(self.faces_path),
            "faces_sha256": _file_sha256(self.faces_path),
            "n_pairs": len(self.labels),
            "n_same": int(self.labels.sum()),
            "n_templates": len(np.unique(faces["template_id"].to_numpy())),
            "n_images": len(self.images),
            "distance": "cosine (1 − cos of template features)",
            "use_norm": self.use_norm,
        }
        if self.faceness_path is not None:
            out.update(faceness_file=str(self.faceness_path), faceness_sha256=_file_sha256(self.faceness_path))
        return out


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_fars(fars: Any, name: str) -> list[float]:
    """The FARs asked for (distinct, ascending), always with the headline's."""
    return sorted({*checked_fars(fars, name, "[1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1]"), HEADLINE_FAR})


# ------------------------------------------------------------------------------ the cell bootstrap


@dataclass
class _ModelCells:
    """One model's view of the cells: same pairs ordered by distance, different-pair cells by position."""

    pos_order: NDArray[np.int64]  # cell index of each same pair, by ascending distance
    pos_sorted: NDArray[np.float64]  # their distances
    neg_order: NDArray[np.int64]  # different-pair cells in ascending position (`key`)
    neg_valid: NDArray[np.bool_]  # a threshold crossing at this cell is exact (its distance is known)
    neg_value: NDArray[np.float64]  # the distance there
    below_lt: NDArray[np.int64] | None = None  # per same pair (cell order): cells with distance < its own
    below_le: NDArray[np.int64] | None = None  # ... with distance <= its own


@dataclass
class _Positions:
    """One model's different pairs along its distances: where each lies, the region edges and the windows."""

    rank: NDArray[np.int64]  # different pair k is at position rank[k] of the ascending distances
    sorted_neg: NDArray[np.float64]  # the different pairs' distances, ascending
    bounds: NDArray[np.int64]  # region edges over positions: windows (and, with AUC, same-pair distances)
    in_window: NDArray[np.bool_]  # by position: inside a threshold's window


def _positions(
    dm: np.ndarray, pos_idx: np.ndarray, neg_idx: np.ndarray, fars: Sequence[float], with_auc: bool, z: float
) -> _Positions:
    """One model's `_Positions` from its distances `dm`: a window of ±`z` SDs around each FAR's threshold."""
    n_neg = len(neg_idx)
    negatives = dm[neg_idx]
    order = np.argsort(negatives)  # negative k is at position rank[k] (ties in any order: same metrics)
    rank = np.empty(n_neg, dtype=np.int64)
    rank[order] = np.arange(n_neg)
    sorted_neg = negatives[order]
    del negatives
    window = np.zeros(n_neg + 1, dtype=np.int64)  # +1/-1 at window edges, over positions
    edges = [0, n_neg]
    for far in fars:
        centre = math.floor(far * n_neg + FAR_TOLERANCE)
        half = math.ceil(z * math.sqrt(far * n_neg * (1 + far) + 1)) + 16
        first, stop = max(0, centre - half), min(n_neg, centre + half + 1)
        window[first] += 1
        window[stop] -= 1
        edges += [first, stop]
    if with_auc:
        values = dm[pos_idx]
        edges += [*np.searchsorted(sorted_neg, values, "left"), *np.searchsorted(sorted_neg, values, "right")]
    bounds = np.unique(np.asarray(edges, dtype=np.int64))
    return _Positions(rank, sorted_neg, bounds, np.cumsum(window[:-1]) > 0)


def _group_rest(rest: np.ndarray, per_model: list[_Positions]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The grouped different pairs (`rest`, indices into the different pairs) by the region they fall in for
    every model: each one's group, the groups' sizes, and per group its region in each model (columns)."""
    code = np.zeros(len(rest), dtype=np.int64)  # the regions of a grouped negative, one per model, as one int
    for p in per_model:
        code = code * (len(p.bounds) + 1) + np.searchsorted(p.bounds, p.rank[rest], "right")
    span = math.prod(len(p.bounds) + 1 for p in per_model)
    if span <= 4 * len(rest) + (1 << 20):  # few possible codes (one model): a count, no sort
        per_code = np.bincount(code, minlength=span)
        codes = np.flatnonzero(per_code)
        renumber = np.zeros(span, dtype=np.int64)
        renumber[codes] = np.arange(len(codes))
        group, counts = renumber[code], per_code[codes]
    else:
        codes, group, counts = np.unique(code, return_inverse=True, return_counts=True)
    signatures = np.empty((len(codes), len(per_model)), dtype=np.int64)
    for m in range(len(per_model) - 1, -1, -1):
        signatures[:, m] = codes % (len(per_model[m].bounds) + 1)
        codes = codes // (len(per_model[m].bounds) + 1)
    return group, counts, signatures


def _model_cells(
    dm: np.ndarray,
    p: _Positions,
    agg_region: np.ndarray,
    pos_idx: np.ndarray,
    neg_idx: np.ndarray,
    singles: np.ndarray,
    with_auc: bool,
) -> _ModelCells:
    """One model's `_ModelCells`: its same pairs by distance, and the different-pair cells (the singles, then
    the groups, each group in region `agg_region`) by position, with where a threshold crossing is exact."""
    n_pos, n_neg = len(pos_idx), len(neg_idx)
    rank, sorted_neg, inside, b = p.rank, p.sorted_neg, p.in_window, p.bounds
    # regions [b[r-1], b[r]) of this model whose different pairs all share one distance
    lo = np.concatenate([[0], b[:-1]])
    width = b - lo
    constant = np.zeros(len(b) + 1, dtype=bool)
    constant[: len(b)] = (width > 0) & (sorted_neg[np.minimum(lo, n_neg - 1)] == sorted_neg[np.maximum(b - 1, 0)])
    single_pos = rank[singles]
    single_region = np.searchsorted(b, single_pos, "right")
    key = np.concatenate([single_pos.astype(np.float64), b[np.minimum(agg_region, len(b) - 1)] - 0.5])
    valid = np.concatenate([inside[single_pos] | constant[single_region], constant[agg_region]])
    value = np.concatenate(
        [dm[neg_idx[singles]], sorted_neg[np.minimum(lo[np.minimum(agg_region, len(b) - 1)], n_neg - 1)]]
    )
    order = np.argsort(key, kind="stable")
    pos_order = np.argsort(dm[pos_idx], kind="stable")
    model = _ModelCells(
        pos_order=pos_order.astype(np.int64),
        pos_sorted=dm[pos_idx][pos_order],
        neg_order=(n_pos + order).astype(np.int64),
        neg_valid=valid[order],
        neg_value=value[order],
    )
    if with_auc:
        keys = key[order]
        values = dm[pos_idx]
        model.below_lt = np.searchsorted(keys, np.searchsorted(sorted_neg, values, "left"), "left")
        model.below_le = np.searchsorted(keys, np.searchsorted(sorted_neg, values, "right"), "left")
    return model


@dataclass
class ScoreCells:
    """A partition of the pairs into cells whose resampled counts determine TAR@FAR (and AUC) of every
    model exactly (see the module doc). Cells: each same pair; each different pair inside a threshold
    window of any model; the remaining different pairs grouped by the region (between window edges and,
    with AUC, same-pair distances) they fall in for every model."""

    sizes: NDArray[np.int64]  # pairs per cell
    n_pos: int  # cells 0 .. n_pos - 1 are the same pairs, in file order
    models: list[_ModelCells]
    cell_of_pair: NDArray[np.int64]  # (n,) the cell of each pair

    @property
    def n(self) -> int:
        return int(self.sizes.sum())

    @classmethod
    def build(
        cls, distances: np.ndarray, labels: np.ndarray, fars: Sequence[float], *, with_auc: bool, z: float = WINDOW_SD
    ) -> ScoreCells:
        """Cells for the (M, n) `distances` of M models on the same labelled pairs (AUC needs M = 1)."""
        d = np.asarray(distances, dtype=np.float64)
        y = np.asarray(labels, dtype=bool)
        if with_auc and len(d) != 1:
            raise ValueError("AUC cells are built for one model at a time")
        pos_idx, neg_idx = np.flatnonzero(y), np.flatnonzero(~y)
        n_pos, n_neg = len(pos_idx), len(neg_idx)
        if n_pos == 0 or n_neg == 0 or d.ndim != 2 or d.shape[1] != len(y):
            raise ValueError(f"cells need (M, n) distances of pairs of both classes; got {d.shape}, {n_pos} same")
        per_model = [_positions(dm, pos_idx, neg_idx, fars, with_auc, z) for dm in d]
        individual = np.zeros(n_neg, dtype=bool)
        for p in per_model:
            individual |= p.in_window[p.rank]
        singles = np.flatnonzero(individual)  # negatives (index into neg_idx) counted one by one
        rest = np.flatnonzero(~individual)
        group, counts, signatures = _group_rest(rest, per_model)
        n_single = len(singles)
        cell_of_pair = np.empty(len(y), dtype=np.int64)
        cell_of_pair[pos_idx] = np.arange(n_pos)
        cell_of_pair[neg_idx[singles]] = n_pos + np.arange(n_single)
        cell_of_pair[neg_idx[rest]] = n_pos + n_single + group.reshape(-1)
        sizes = np.concatenate([np.ones(n_pos + n_single, dtype=np.int64), counts.astype(np.int64)])
        models = [
            _model_cells(dm, p, signatures[:, m], pos_idx, neg_idx, singles, with_auc)
            for m, (dm, p) in enumerate(zip(d, per_model))
        ]
        return cls(sizes=sizes, n_pos=n_pos, models=models, cell_of_pair=cell_of_pair)

    def aggregate(self, pair_counts: np.ndarray) -> np.ndarray:
        """(b, cells) cell counts of (b, n) per-pair resampling counts (the same resamples, drawn pair by pair)."""
        counts = np.atleast_2d(np.asarray(pair_counts))
        cells = len(self.sizes)
        return np.stack([np.bincount(self.cell_of_pair, weights=row, minlength=cells) for row in counts]).astype(
            np.int64
        )

    def metrics(self, counts: np.ndarray, fars: Sequence[float], *, with_auc: bool) -> list[dict[str, np.ndarray]]:
        """Per model, {metric: (b,)} of (b, cells) resampled cell counts; NaN where undefined."""
        x = np.asarray(counts, dtype=np.int64)
        b = len(x)
        rows = np.arange(b)
        p_star = x[:, : self.n_pos].sum(axis=1)
        n_star = x.sum(axis=1) - p_star
        degenerate = (p_star == 0) | (n_star == 0)
        out = []
        for model in self.models:
            neg = np.cumsum(x[:, model.neg_order], axis=1)
            pos = np.cumsum(x[:, model.pos_order], axis=1)
            values: dict[str, np.ndarray] = {}
            with np.errstate(invalid="ignore", divide="ignore"):
                for far in fars:
                    k = np.floor(far * n_star + FAR_TOLERANCE)
                    crosses = neg[:, -1] > k
                    j = np.argmax(neg > k[:, None], axis=1)
                    u = np.where(crosses, model.neg_value[j], np.inf)
                    exact = ~crosses | model.neg_valid[j]
                    below = np.searchsorted(model.pos_sorted, u, "left")
                    tp = np.where(below > 0, pos[rows, np.maximum(below - 1, 0)], 0)
                    tar = tp / p_star
                    bad = degenerate | ~exact | (n_star * far < 1 - FAR_TOLERANCE)
                    values[far_metric(far)] = np.where(bad, np.nan, tar)
                if with_auc and model.below_lt is not None and model.below_le is not None:
                    padded = np.concatenate([np.zeros((b, 1), dtype=np.int64), neg], axis=1)
                    lt, le = padded[:, model.below_lt], padded[:, model.below_le]
                    wins = (n_star[:, None] - le) + 0.5 * (le - lt)
                    auc = np.einsum("bi,bi->b", x[:, : self.n_pos].astype(np.float64), wins) / (p_star * n_star)
                    values["auc"] = np.where(degenerate, np.nan, auc)
            out.append(values)
        return out

    def bootstrap(
        self, n_boot: int, seed: int, fars: Sequence[float], *, with_auc: bool
    ) -> list[dict[str, np.ndarray]]:
        """Per model, {metric: (n_boot,)} over pair resamples: cell counts ~ Multinomial(n, sizes / n)."""
        rng = np.random.default_rng(seed)
        n = self.n
        p = self.sizes / n
        per_block = max(1, BLOCK_COUNTS // len(self.sizes))
        parts: list[list[dict[str, np.ndarray]]] = []
        for start in range(0, n_boot, per_block):
            counts = rng.multinomial(n, p, size=min(per_block, n_boot - start))
            parts.append(self.metrics(counts, fars, with_auc=with_auc))
        return [
            {name: np.concatenate([part[m][name] for part in parts]) for name in parts[0][m]}
            for m in range(len(self.models))
        ]
