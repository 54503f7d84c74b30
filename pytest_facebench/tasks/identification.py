"""Closed-set identification (`identification`): probes matched against a gallery by distance.

The `pairs` file lists images, one per row, with columns `image`, `identity` and `set` (`gallery` or
`probe`, any case). Every probe identity must have a gallery image; an image may not be in both sets.
For each probe, the task's `distance` to every gallery image is computed (on the device, in chunks of
probes), and the probe's rank is 1 + the number of wrong-identity gallery images at most as far as
its closest correct one (ties count against the model: `stats.probe_ranks`, as `stats.cmc_curve`).

Metrics: `rank<k>` = the share of probes whose rank is at most k, for k = 1 .. `max_rank` (default
10, at most the gallery size) and always `rank1` and `rank5`. These rows **are** the CMC curve: plot
value against k for the metrics matching `rank(\\d+)` (no condition). CIs resample identities (all
probes of an identity together). The per-row values of a layer (distances/<task>/<model>.csv, one row
per probe) are the probes' ranks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import stats
from ..distances import Distance, distance_name, pair_distances
from ..errors import ConfigError, DataError, list_some
from ..metrics import HIGHER, MetricInfo
from ..pairs import LINE
from ..results import Metric
from ..stats import probe_ranks
from .base import BaseTask, CellValues, bootstrap_of, paired_row

PAIR_BUDGET = 1 << 21  # probe × gallery distances computed per chunk
SETS = ("gallery", "probe")


class IdentificationTask(BaseTask):
    """Rank-k identification rates (the CMC curve) of probes against a gallery (see the module doc)."""

    value_name = "rank"  # per probe: the rank of its mate in the gallery
    type = "identification"
    headline = "rank1"
    metrics = {"rank1": MetricInfo("Rank-1", HIGHER), "rank5": MetricInfo("Rank-5", HIGHER)}  # rank<k>: a family
    figures = ("cmc",)
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
        n_boot: int = 1000,
        seed: int = 0,
        ci: float = 0.95,
    ):
        super().__init__(name, pairs, images, distance, columns, n_boot=n_boot, seed=seed, ci=ci)
        if isinstance(max_rank, bool) or not isinstance(max_rank, int) or max_rank < 1:
            raise ConfigError(f"task '{name}': max_rank must be a whole number >= 1; got {max_rank!r}")
        self.max_rank = max_rank
        self.probe_rows = np.empty(0, dtype=np.int64)
        self.probe_image = np.empty(0, dtype=np.int64)
        self.gallery_image = np.empty(0, dtype=np.int64)
        self.probe_codes = np.empty(0, dtype=np.int64)
        self.gallery_codes = np.empty(0, dtype=np.int64)
        self.probe_identity = np.empty(0, dtype=object)
        self.n_identities = 0

    def _validate(self, table: pd.DataFrame) -> None:
        set_column, id_column = self.columns["set"], self.columns["identity"]
        sets = table[set_column].astype(str).str.strip().str.lower()
        bad = ~sets.isin(SETS)
        if bad.any():
            raise DataError(
                f"{self.pairs_path}: column '{set_column}' must say 'gallery' or 'probe'; found "
                f"{list_some(sorted(set(table.loc[bad, set_column].astype(str))))} on line(s) "
                f"{list_some(table.loc[bad, LINE].tolist())}"
            )
        is_probe = (sets == "probe").to_numpy()
        for wanted, rows in (("gallery", ~is_probe), ("probe", is_probe)):
            if not rows.any():
                raise DataError(
                    f"{self.pairs_path}: no {wanted} images (column '{set_column}'); identification needs "
                    f"a gallery and probes"
                )
        image = self._pair_index[:, 0]
        both = np.intersect1d(image[is_probe], image[~is_probe])
        if len(both):
            names = [self._images[i].name for i in both]
            raise DataError(
                f"{self.pairs_path}: image(s) {list_some(names)} are in both the gallery and the probes; "
                f"a probe would match itself"
            )
        identity = table[id_column].astype(str).str.strip().to_numpy()
        absent = sorted(set(identity[is_probe]) - set(identity[~is_probe]))
        if absent:
            raise DataError(
                f"{self.pairs_path}: probe identities {list_some(absent)} have no gallery image "
                f"(closed-set identification needs each probe's identity in the gallery)"
            )
        _, codes = np.unique(identity, return_inverse=True)
        self.probe_rows = np.flatnonzero(is_probe)
        self.probe_image, self.gallery_image = image[is_probe], image[~is_probe]
        self.probe_codes, self.gallery_codes = codes[is_probe], codes[~is_probe]
        self.probe_identity = identity[is_probe]
        self.n_identities = len(set(identity[is_probe]))

    def pair_rows(self) -> pd.DataFrame:
        """The probe rows (one value per probe: its rank)."""
        return self.table.iloc[self.probe_rows].drop(columns=[LINE]).reset_index(drop=True)

    def layer_values(self, embeddings: Any, device: Any = "cpu") -> np.ndarray:
        """Each probe's rank of its first correct gallery match (pessimistic ties)."""
        import torch

        self.load()
        device = torch.device(device)
        gallery = _rows(embeddings, self.gallery_image, device)
        n_gallery, n_probe = len(self.gallery_image), len(self.probe_image)
        chunk = max(1, PAIR_BUDGET // n_gallery)
        ranks = np.empty(n_probe, dtype=np.float64)
        for start in range(0, n_probe, chunk):
            stop = min(start + chunk, n_probe)
            probes = _rows(embeddings, self.probe_image[start:stop], device)
            p = stop - start
            both = torch.cat([probes, gallery])
            index = np.stack([np.repeat(np.arange(p), n_gallery), np.tile(np.arange(n_gallery) + p, p)], axis=1)
            dist = pair_distances(both, index, self.distance, device).reshape(p, n_gallery)
            ranks[start:stop] = probe_ranks(dist, self.probe_codes[start:stop], self.gallery_codes)
        return ranks

    def ranks_k(self) -> list[int]:
        n_gallery = len(self.gallery_image)
        return sorted({1, 5} | set(range(1, min(self.max_rank, n_gallery) + 1)))

    def score(self, distances: np.ndarray) -> list[Metric]:
        ranks = np.asarray(distances, dtype=float)
        ks = self.ranks_k()
        hits = (ranks[:, None] <= np.asarray(ks)[None, :]).astype(float)

        def metric(counts: np.ndarray) -> dict[str, np.ndarray]:
            with np.errstate(invalid="ignore", divide="ignore"):
                rates = (counts @ hits) / counts.sum(axis=1, keepdims=True)
            return {f"rank{k}": rates[:, i] for i, k in enumerate(ks)}

        samples = self.bootstrap.samples(metric, len(ranks), groups=self.probe_identity)
        n_gallery = len(self.gallery_image)
        protocol = (
            f"closed-set: {len(ranks)} probes vs {n_gallery} gallery images ({self.n_identities} probe "
            f"identities), {distance_name(self.distance)} distance, ties pessimistic"
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
                    n=len(ranks),
                    note=note,
                )
            )
        return out

    def scoring(self) -> dict[str, Any]:
        return {**super().scoring(), "groups": self.probe_identity.tolist(), "unit": "identities"}

    @classmethod
    def compare(cls, a: CellValues, b: CellValues) -> list[dict[str, Any]]:
        """`rank1`: a paired bootstrap over identities."""
        s = a.scoring
        return [
            paired_row(
                "rank1",
                a,
                b,
                lambda e: float(np.mean(e.values <= 1)),
                lambda e, counts: stats.weighted_mean((e.values <= 1).astype(float), counts),
                f"paired bootstrap({bootstrap_of(s).n_boot}, identities) of rank-1 hits",
                groups=s.get("groups"),
            )
        ]


def _rows(embeddings: Any, index: np.ndarray, device: Any) -> Any:
    import torch

    if isinstance(embeddings, torch.Tensor):
        return embeddings[torch.as_tensor(index, device=embeddings.device)].to(device)
    return torch.from_numpy(np.ascontiguousarray(embeddings[np.asarray(index)])).to(device)
