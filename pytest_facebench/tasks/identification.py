"""Identification (`identification`): probes searched against a gallery by distance, closed or open set (1:N).

The `pairs` file lists images, one per row, with columns `image`, `identity` and `set`, any case:

- `gallery`: the enrolled images;
- `probe`: the searched images. A probe whose identity has a gallery image is *mated*; one whose identity
  has none is *non-mated* (open set, as IJB-B/C 1:N, where each probe's subject is enrolled in only one of
  the two galleries);
- `distractor`: further gallery images of identities never probed (MegaFace-style, any number; any
  identity label that no probe has, e.g. one per image). They join the gallery for ranking and are never
  a probe's mate.

An image may not be both a probe and a gallery or distractor image, nor both a gallery image and a
distractor; a distractor's identity may not be a probe's. At least one probe must be mated.

For each probe the task's `distance` to every gallery and distractor image is computed on the device, a
block of probes against a chunk of the gallery at a time (`search.scan_mates`: never the probe x gallery
matrix, and any distance): a mated probe's rank is 1 + the number of non-mates at most as far as its
closest mate (ties count against the model: `stats.probe_ranks`, as `stats.cmc_curve`).

Metrics:

- `rank<k>` = the share of mated probes whose rank is at most k, for k = 1 .. `max_rank` (default 10, at
  most the gallery size, distractors included) and always `rank1` and `rank5`. These rows **are** the CMC
  curve: plot value against k for the metrics matching `rank(\\d+)` (no condition);
- with non-mated probes, `tpir_at_fpir_<fpir>` for each of `fpirs` (default 0.01 and 0.1): the IJB / NIST
  1:N open-set rate. The threshold is set on the non-mated probes' distances to their nearest gallery image
  so that at most the FPIR's share of them (`floor(fpir * n)`) is strictly closer (accepted); a mated probe
  counts when its closest mate is its rank-1 result (no non-mate as close) and strictly closer than the
  threshold (the `threshold` column, a distance). An FPIR below 1 / the number of non-mated probes is NaN
  with a note (never extrapolated), as `tar_at_far_<far>` is.

CIs resample identities (all probes of an identity together; mated and non-mated identities each on their
own in the open set). The per-row values of a layer (distances/<task>/<model>.csv, one row per probe) are the
probes' ranks, 0 for a non-mated probe. `compare` is a paired bootstrap of rank-1 over the same resamples.

Not done: IJB's two galleries in one task. Write one task per gallery (the G1 images and all probes, then the
G2 images and all probes): the probes of the other gallery's subjects are that task's non-mated probes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import stats
from ..data.pairs import LINE
from ..data.search import MateScan, NonFiniteDistances, fpir_metric, open_set_rates, scan_mates
from ..engine.distances import Distance, distance_name
from ..errors import ConfigError, DataError, ModelError, list_some
from ..outputs.metrics import HIGHER, Axis, MetricInfo, register
from ..outputs.results import Metric
from .base import BaseTask, CellValues, bootstrap_of, paired_row

PAIR_BUDGET = 1 << 21  # probe × gallery distances computed per block
SETS = ("gallery", "probe", "distractor")
DEFAULT_FPIRS = (0.01, 0.1)


def _tpir_info(fpir: float) -> MetricInfo:
    return MetricInfo(f"TPIR@FPIR={fpir:g}", HIGHER)


class IdentificationTask(BaseTask):
    """Rank-k identification rates (the CMC curve) of probes against a gallery, with distractors and open-set
    TPIR@FPIR (see the module doc)."""

    value_name = "rank"  # per probe: the rank of its mate in the gallery (0: no mate)
    type = "identification"
    headline = "rank1"
    metrics = {
        "rank1": MetricInfo("Rank-1", HIGHER),
        "rank5": MetricInfo("Rank-5", HIGHER),  # rank<k>: a family
        **{fpir_metric(f): _tpir_info(f) for f in DEFAULT_FPIRS},  # other fpirs are registered per task
    }
    figures = ("cmc",)
    axes = {"rank*": Axis("rank-{k} identification rate", chance="k/N")}
    image_roles = ("image",)
    roles = {"identity": "identity", "set": "set"}

    def __init__(
        self,
        name: str,
        pairs: str | Path,
        images: str | Path,
        distance: Distance = "cosine",
        columns: dict[str, str] | None = None,
        max_rank: int = 10,
        fpirs: Sequence[float] = DEFAULT_FPIRS,
        n_boot: int = 1000,
        seed: int = 0,
        ci: float = 0.95,
    ):
        super().__init__(name, pairs, images, distance, columns, n_boot=n_boot, seed=seed, ci=ci)
        if isinstance(max_rank, bool) or not isinstance(max_rank, int) or max_rank < 1:
            raise ConfigError(f"task '{name}': max_rank must be a whole number >= 1; got {max_rank!r}")
        if isinstance(fpirs, (int, float)):
            fpirs = [fpirs]
        if (
            not isinstance(fpirs, (list, tuple))
            or not fpirs
            or not all(isinstance(f, (int, float)) and not isinstance(f, bool) and 0 < f <= 1 for f in fpirs)
        ):
            raise ConfigError(
                f"task '{name}': fpirs must be a list of false positive identification rates in (0, 1], "
                f"e.g. [0.01, 0.1]; got {fpirs!r}"
            )
        self.max_rank = max_rank
        self.fpirs = [float(f) for f in dict.fromkeys(fpirs)]
        register(
            {fpir_metric(f): _tpir_info(f) for f in self.fpirs}, f"{type(self).__module__}.{type(self).__qualname__}"
        )
        self.probe_rows = np.empty(0, dtype=np.int64)
        self.probe_image = np.empty(0, dtype=np.int64)
        self.gallery_image = np.empty(0, dtype=np.int64)  # the gallery, then the distractors
        self.probe_codes = np.empty(0, dtype=np.int64)
        self.gallery_codes = np.empty(0, dtype=np.int64)  # -1 for a distractor: no probe's mate
        self.probe_identity = np.empty(0, dtype=object)
        self.mated = np.empty(0, dtype=bool)
        self.n_identities = 0
        self.n_distractors = 0
        self._scan: tuple[np.ndarray, MateScan] | None = None  # the last layer's ranks and distances (for TPIR)

    def _validate(self, table: pd.DataFrame) -> None:
        set_column, id_column = self.columns["set"], self.columns["identity"]
        sets = table[set_column].astype(str).str.strip().str.lower()
        bad = ~sets.isin(SETS)
        if bad.any():
            raise DataError(
                f"{self.pairs_path}: column '{set_column}' must say 'gallery', 'probe' or 'distractor'; found "
                f"{list_some(sorted(set(table.loc[bad, set_column].astype(str))))} on line(s) "
                f"{list_some(table.loc[bad, LINE].tolist())}"
            )
        is_probe = (sets == "probe").to_numpy()
        is_gallery = (sets == "gallery").to_numpy()
        is_distractor = (sets == "distractor").to_numpy()
        for wanted, rows in (("gallery", is_gallery), ("probe", is_probe)):
            if not rows.any():
                raise DataError(
                    f"{self.pairs_path}: no {wanted} images (column '{set_column}'); identification needs "
                    f"a gallery and probes"
                )
        image = self._pair_index[:, 0]
        for first, second, what, why in (
            (is_probe, is_gallery, "the gallery and the probes", "a probe would match itself"),
            (is_probe, is_distractor, "the distractors and the probes", "a probe would be its own distractor"),
            (is_gallery, is_distractor, "the gallery and the distractors", "it would be a mate and a non-mate"),
        ):
            both = np.intersect1d(image[first], image[second])
            if len(both):
                names = [self._images[i].name for i in both]
                raise DataError(f"{self.pairs_path}: image(s) {list_some(names)} are in both {what}; {why}")
        identity = table[id_column].astype(str).str.strip().to_numpy()
        probed = sorted(set(identity[is_probe]) & set(identity[is_distractor]))
        if probed:
            raise DataError(
                f"{self.pairs_path}: distractor identities {list_some(probed)} are also probe identities; a "
                f"distractor is an image of an identity never probed (put that image in the gallery)"
            )
        _, codes = np.unique(identity, return_inverse=True)
        codes = codes.reshape(-1).astype(np.int64)
        mated = np.isin(identity[is_probe], identity[is_gallery])
        if not mated.any():
            raise DataError(
                f"{self.pairs_path}: probe identities {list_some(sorted(set(identity[is_probe])))} have no gallery "
                f"image; identification needs probes whose identity is in the gallery (mated probes)"
            )
        self.probe_rows = np.flatnonzero(is_probe)
        self.probe_image = image[is_probe]
        self.gallery_image = np.concatenate([image[is_gallery], image[is_distractor]])
        self.probe_codes = codes[is_probe]
        self.gallery_codes = np.concatenate([codes[is_gallery], np.full(int(is_distractor.sum()), -1, np.int64)])
        self.probe_identity = identity[is_probe]
        self.mated = mated
        self.n_identities = len(set(identity[is_probe]))
        self.n_distractors = int(is_distractor.sum())

    def pair_rows(self) -> pd.DataFrame:
        """The probe rows (one value per probe: its rank)."""
        return self.table.iloc[self.probe_rows].drop(columns=[LINE]).reset_index(drop=True)

    @property
    def open_set(self) -> bool:
        """Whether some probes have no mate in the gallery."""
        self.load()
        return not bool(self.mated.all())

    def layer_values(self, embeddings: Any, device: Any = "cpu") -> np.ndarray:
        """Each probe's rank of its closest mate among the gallery and distractors (pessimistic ties; 0 for a
        non-mated probe). The distances TPIR@FPIR needs stay with the task for the `score` that follows."""
        self.load()
        try:
            scan = scan_mates(
                embeddings,
                self.probe_image,
                self.gallery_image,
                self.probe_codes,
                self.gallery_codes,
                distance=self.distance,
                device=device,
                budget=PAIR_BUDGET,
            )
        except NonFiniteDistances as exc:
            raise ModelError(
                f"task '{self.name}': {exc}; check the distance '{distance_name(self.distance)}' and the layer's "
                f"outputs"
            ) from None
        ranks = scan.ranks.astype(np.float64)
        self._scan = (ranks.copy(), scan)
        return ranks

    def ranks_k(self) -> list[int]:
        n_gallery = len(self.gallery_image)
        return sorted({1, 5} | set(range(1, min(self.max_rank, n_gallery) + 1)))

    def _gallery_text(self) -> str:
        """'N gallery images' (distractors included: the report reads N as the gallery size of the chance line)."""
        return f"{len(self.gallery_image)} gallery images"

    def _identities_text(self) -> str:
        extra = f", {self.n_distractors} of the gallery images distractors" if self.n_distractors else ""
        return f"({self.n_identities} probe identities{extra})"

    def score(self, distances: np.ndarray) -> list[Metric]:
        ranks = np.asarray(distances, dtype=float)
        mated = self.mated
        ks = self.ranks_k()
        hits = ((ranks[:, None] >= 1) & (ranks[:, None] <= np.asarray(ks)[None, :])).astype(float)[mated]
        open_set = self.open_set
        scan = self._scan[1] if self._scan is not None and np.array_equal(self._scan[0], ranks) else None
        mate_scores = nonmated_scores = np.empty(0)
        if open_set and scan is not None:  # scores: higher = closer
            mate_scores, nonmated_scores = -scan.mate[mated], -scan.nonmate[~mated]
        rank1 = ranks[mated] == 1

        def metric(counts: np.ndarray) -> dict[str, np.ndarray]:
            on_mated = counts[:, mated]
            with np.errstate(invalid="ignore", divide="ignore"):
                rates = (on_mated @ hits) / on_mated.sum(axis=1, keepdims=True)
            out = {f"rank{k}": rates[:, i] for i, k in enumerate(ks)}
            if open_set and scan is not None:
                rates_at = open_set_rates(mate_scores, rank1, nonmated_scores, self.fpirs, on_mated, counts[:, ~mated])
                out.update({fpir_metric(f): r.tpir for f, r in rates_at.items()})
            return out

        samples = self.bootstrap.samples(
            metric, len(ranks), groups=self.probe_identity, strata=mated if open_set else None
        )
        n_gallery, n_mated = len(self.gallery_image), int(mated.sum())
        if open_set:
            protocol = (
                f"open-set, mated probes: {n_mated} of {len(ranks)} probes vs {self._gallery_text()} "
                f"{self._identities_text()}, {distance_name(self.distance)} distance, ties pessimistic"
            )
        else:
            protocol = (
                f"closed-set: {len(ranks)} probes vs {self._gallery_text()} {self._identities_text()}, "
                f"{distance_name(self.distance)} distance, ties pessimistic"
            )
        out = []
        for i, k in enumerate(ks):
            note = f"the gallery has only {n_gallery} images" if k > n_gallery else ""
            out.append(
                self.metric(
                    f"rank{k}",
                    float(hits[:, i].mean()),
                    samples.get(f"rank{k}"),
                    unit="identities",
                    protocol=protocol,
                    n=n_mated,
                    note=note,
                )
            )
        if open_set:
            out += self._open_set_metrics(scan, mate_scores, rank1, nonmated_scores, samples)
        return out

    def _open_set_metrics(
        self,
        scan: MateScan | None,
        mate_scores: np.ndarray,
        rank1: np.ndarray,
        nonmated_scores: np.ndarray,
        samples: dict[str, np.ndarray],
    ) -> list[Metric]:
        n_mated, n_probes = int(self.mated.sum()), len(self.mated)
        n_nonmated = n_probes - n_mated
        setting = (
            f"({n_mated} mated probes vs {self._gallery_text()} {self._identities_text()}, "
            f"{distance_name(self.distance)} distance)"
        )
        if scan is None:
            note = "needs the distances of the layer_values call that gave these ranks"
            return [
                self.metric(fpir_metric(f), np.nan, None, unit="identities", n=n_probes, note=note) for f in self.fpirs
            ]
        points = open_set_rates(mate_scores, rank1, nonmated_scores, self.fpirs)
        out = []
        for f in self.fpirs:
            point = points[f]
            name = fpir_metric(f)
            tpir, threshold = float(point.tpir[0]), float(point.threshold[0])
            note = ""
            if np.isnan(tpir):
                note = f"FPIR {f:g} needs >= {int(np.ceil(1 / f - 1e-9))} non-mated probes; got {n_nonmated}"
            out.append(
                self.metric(
                    name,
                    tpir,
                    samples.get(name),
                    unit="identities",
                    protocol=(
                        f"open-set 1:N (IJB/NIST): the threshold lets at most {f:g} of the {n_nonmated} non-mated "
                        f"probes through (nearest gallery image closer than it); a mated probe counts when its "
                        f"closest mate is its rank-1 result and closer than the threshold {setting}"
                    ),
                    n=n_probes,
                    note=note,
                    extra={"threshold": -threshold},  # a distance: accepted when strictly closer
                )
            )
        return out

    def scoring(self) -> dict[str, Any]:
        base = super().scoring()
        tpir = {fpir_metric(f): [_tpir_info(f).display, HIGHER] for f in self.fpirs}
        return {
            **base,
            "metrics": {**base["metrics"], **tpir},
            "groups": self.probe_identity.tolist(),
            "unit": "identities",
        }

    def describe(self) -> dict[str, Any]:
        self.load()
        n_mated = int(self.mated.sum())
        return {
            **super().describe(),
            "n_probes": len(self.mated),
            "n_nonmated": len(self.mated) - n_mated,
            "n_gallery": len(self.gallery_image) - self.n_distractors,
            "n_distractors": self.n_distractors,
        }

    @classmethod
    def compare(cls, a: CellValues, b: CellValues) -> list[dict[str, Any]]:
        """`rank1` over the mated probes (rank >= 1): a paired bootstrap over identities (mated and non-mated
        identities resampled on their own, as in `score`)."""
        s = a.scoring
        mated = np.asarray(a.values) >= 1
        return [
            paired_row(
                "rank1",
                a,
                b,
                lambda e: float(np.mean(e.values[mated] == 1)),
                lambda e, counts: stats.weighted_mean((e.values[mated] == 1).astype(float), counts[:, mated]),
                f"paired bootstrap({bootstrap_of(s).n_boot}, identities) of rank-1 hits",
                groups=s.get("groups"),
                strata=None if mated.all() else mated,
            )
        ]
