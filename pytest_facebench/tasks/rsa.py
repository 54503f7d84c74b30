"""Representational similarity analysis (`rsa`): the model RDM against a human RDM over a stimulus set.

The `pairs` file is either

- a stimulus list (a column `image`, one stimulus per row) and the human RDM is a square CSV given by
  `human_rdm = "human_rdm.csv"` (first column and header: the image names; blank cells = missing), or
- a pairs table (`img1`, `img2`, `distance`): the stimuli are its images in order of first
  appearance, the human RDM its `distance` column (pairs it lacks are missing), unless `human_rdm`
  is given. Relative `human_rdm` paths resolve against the pairs file's directory.

The model RDM holds the task's `distance` between every two stimuli's embeddings (`distance =
"correlation"` is the usual RDM, 1 − Pearson r, as `stats.rdm_from_embeddings`). The RDMs are compared
over the upper triangle with `method` (`spearman` default, `pearson`, `kendall_tau_a`, the rsatoolbox
comparators); missing human cells are left out. The CI resamples stimuli; a cell pairing a drawn
stimulus with its own duplicate is masked, not counted as a zero distance (`stats.stimulus_bootstrap`).
The per-row values of a layer (distances/<task>/<model>.csv) are the model RDM's upper triangle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .. import stats
from ..distances import Distance, distance_name
from ..errors import ConfigError, DataError, list_some
from ..metrics import HIGHER, MetricInfo
from ..pairs import LINE, found_columns, parse_numbers
from ..results import Metric
from ..stats import paired_result
from .base import BaseTask, CellValues, bootstrap_of

METHODS = ("spearman", "pearson", "kendall_tau_a")
HUMAN = "human_distance"


class RsaTask(BaseTask):
    """`rsa`: correlation of model and human RDMs, with a stimulus bootstrap CI (see the module doc)."""

    type = "rsa"
    headline = "rsa"
    metrics = {"rsa": MetricInfo("RSA", HIGHER)}
    figures = ("rdm",)
    roles: ClassVar[dict[str, str]] = {}
    optional_roles = {"image": "image", "distance": "distance"}

    def __init__(
        self,
        name: str,
        pairs: str | Path,
        images: str | Path,
        distance: Distance = "cosine",
        columns: dict[str, str] | None = None,
        method: str = "spearman",
        human_rdm: str | None = None,
        n_boot: int = 1000,
        seed: int = 0,
        ci: float = 0.95,
    ):
        super().__init__(name, pairs, images, distance, columns, n_boot=n_boot, seed=seed, ci=ci)
        if method not in METHODS:
            raise ConfigError(f"task '{name}': method must be one of {', '.join(METHODS)}, got {method!r}")
        if human_rdm is not None and not isinstance(human_rdm, str):
            raise ConfigError(f"task '{name}': human_rdm must be the path of a square CSV; got {human_rdm!r}")
        self.method = method
        self.human_rdm = None if human_rdm is None else Path(human_rdm).expanduser()
        self.stimuli: list[str] = []
        self.human = np.empty(0)
        self.human_note = ""

    @property
    def n_stimuli(self) -> int:
        return len(self.stimuli)

    # --- loading ------------------------------------------------------------------------------
    def _prepare(self, table: pd.DataFrame) -> pd.DataFrame:
        image = self.columns.get("image", "image")
        img1, img2 = self.columns["img1"], self.columns["img2"]
        if image in table:
            names = table[image].astype(str).str.strip()
            repeated = names.duplicated(keep=False)
            if repeated.any():
                raise DataError(
                    f"{self.pairs_path}: column '{image}' lists stimuli more than once, on line(s) "
                    f"{list_some(table.loc[repeated, LINE].tolist())}"
                )
            self.stimuli = names.tolist()
            if self.human_rdm is None:
                raise DataError(
                    f"{self.pairs_path}: a stimulus list (column '{image}') needs the human RDM as a "
                    f"square CSV: set human_rdm = 'file.csv' in the task"
                )
        elif img1 in table and img2 in table:
            first = table[[img1, img2]].astype(str).apply(lambda s: s.str.strip()).to_numpy().ravel()
            self.stimuli = list(dict.fromkeys(first))
        else:
            raise DataError(
                f"{self.pairs_path}: an rsa task needs a column '{image}' (the stimulus list) or columns "
                f"'{img1}' and '{img2}' (a pairs table); found columns: {found_columns(table)}"
            )
        n = len(self.stimuli)
        if n < 3:
            raise DataError(f"{self.pairs_path}: an RDM needs at least 3 stimuli; got {n}")
        iu, ju = np.triu_indices(n, k=1)
        if self.human_rdm is not None:
            self.human = self._read_square()
        else:
            self.human = self._from_pairs(table, img1, img2)
        missing = int(np.isnan(self.human).sum())
        if len(self.human) - missing < 3:
            raise DataError(f"{self.pairs_path}: the human RDM has {len(self.human) - missing} known cells; need >= 3")
        self.human_note = f"{missing} of {len(self.human)} human RDM cells missing (left out)" if missing else ""
        for role in ("image", "distance"):
            self.columns.pop(role, None)
        return pd.DataFrame(
            {img1: [self.stimuli[i] for i in iu], img2: [self.stimuli[j] for j in ju], HUMAN: self.human, LINE: 0}
        )

    def _from_pairs(self, table: pd.DataFrame, img1: str, img2: str) -> np.ndarray:
        column = self.columns.get("distance", "distance")
        if column not in table:
            raise DataError(
                f"{self.pairs_path}: missing column '{column}' (the human distance of each pair); found "
                f"columns: {found_columns(table)}. Name it with columns = {{ distance = '...' }} or give "
                f"human_rdm = 'square.csv'"
            )
        values = parse_numbers(table[column], table[LINE], self.pairs_path, column)
        position = {s: i for i, s in enumerate(self.stimuli)}
        n = len(self.stimuli)
        cell = np.full((n, n), -1, dtype=np.int64)
        cell[np.triu_indices(n, k=1)] = np.arange(n * (n - 1) // 2)
        human = np.full(n * (n - 1) // 2, np.nan)
        seen_line = np.zeros(len(human), dtype=np.int64)
        for a, b, value, line in zip(
            table[img1].astype(str).str.strip(), table[img2].astype(str).str.strip(), values, table[LINE]
        ):
            i, j = sorted((position[a], position[b]))
            if i == j:
                raise DataError(
                    f"{self.pairs_path}, line {line}: a stimulus paired with itself ({a}); an RDM's "
                    f"diagonal is not data"
                )
            c = cell[i, j]
            if seen_line[c]:
                raise DataError(
                    f"{self.pairs_path}: the pair ({a}, {b}) appears twice, on lines {seen_line[c]} and {line}"
                )
            human[c], seen_line[c] = value, line
        return human

    def _read_square(self) -> np.ndarray:
        assert self.human_rdm is not None
        path = self.human_rdm if self.human_rdm.is_absolute() else self.pairs_path.parent / self.human_rdm
        if not path.is_file():
            raise DataError(f"task '{self.name}': human_rdm file not found: {path}")
        try:
            square = pd.read_csv(path, index_col=0, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise DataError(
                f"{path}: cannot read the human RDM ({type(exc).__name__}); expected a square CSV whose "
                f"first column and header are the image names"
            ) from None
        square.index = [str(i).strip() for i in square.index]
        square.columns = [str(c).strip() for c in square.columns]
        if sorted(square.index) != sorted(square.columns) or square.index.duplicated().any():
            raise DataError(
                f"{path}: the human RDM must be square with the same image names as row labels (first "
                f"column) and header; rows {list_some(list(square.index))}, columns "
                f"{list_some(list(square.columns))}"
            )
        absent = [s for s in self.stimuli if s not in square.index]
        if absent:
            raise DataError(f"{path}: the human RDM lacks stimuli {list_some(absent)} of {self.pairs_path}")
        cells = square.loc[self.stimuli, self.stimuli]
        text = cells.apply(lambda s: s.str.strip())
        numbers = text.apply(pd.to_numeric, errors="coerce")
        bad = ~np.isfinite(numbers.to_numpy(dtype=float)) & ~text.isin(["", "nan", "NaN", "NA"]).to_numpy()
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise DataError(
                f"{path}: the human RDM must hold finite numbers (blank = missing); found {text.iat[r, c]!r} at "
                f"({self.stimuli[r]}, {self.stimuli[c]})"
            )
        m = numbers.to_numpy(dtype=float)
        both = np.isfinite(m) & np.isfinite(m.T)
        asym = both & ~np.isclose(m, m.T, rtol=1e-6, atol=1e-9)
        if asym.any():
            r, c = np.argwhere(asym)[0]
            raise DataError(
                f"{path}: the human RDM is not symmetric: ({self.stimuli[r]}, {self.stimuli[c]}) = "
                f"{m[r, c]:g} but ({self.stimuli[c]}, {self.stimuli[r]}) = {m[c, r]:g}"
            )
        m = np.where(np.isfinite(m), m, m.T)  # one triangle may be blank
        return m[np.triu_indices(len(self.stimuli), k=1)]

    # --- scoring ------------------------------------------------------------------------------
    def square(self, condensed: np.ndarray) -> np.ndarray:
        n = self.n_stimuli
        out = np.zeros((n, n))
        iu = np.triu_indices(n, k=1)
        out[iu] = condensed
        out.T[iu] = condensed
        return out

    def score(self, distances: np.ndarray) -> list[Metric]:
        model = np.asarray(distances, dtype=float)
        known = np.isfinite(self.human)
        result = stats.correlation(model[known], self.human[known], self.method)
        samples = None
        if np.isfinite(result.r) and self.bootstrap.enabled:
            samples = stats.stimulus_bootstrap(
                self.square(model), self.square(self.human), self.method, self.bootstrap.n_boot, self.bootstrap.seed
            )
        protocol = (
            f"{self.method} correlation of RDM upper triangles ({int(known.sum())} cells, {self.n_stimuli} "
            f"stimuli; model RDM: {distance_name(self.distance)} distance)"
        )
        note = "; ".join(n for n in (result.reason, self.human_note) if n)
        return [
            self.metric(
                "rsa",
                result.r,
                samples,
                unit="stimuli, self-pairs masked",
                protocol=protocol,
                n=self.n_stimuli,
                note=note,
                extra={"n_cells": int(known.sum())},
            )
        ]

    def scoring(self) -> dict[str, Any]:
        return {
            **super().scoring(),
            "human": self.human.tolist(),
            "n_stimuli": self.n_stimuli,
            "method": self.method,
            "unit": "stimuli",
        }

    @classmethod
    def compare(cls, a: CellValues, b: CellValues) -> list[dict[str, Any]]:
        """`rsa`: a paired bootstrap over stimuli (self-pairs masked)."""
        s = a.scoring
        human = np.asarray(s["human"], dtype=float)
        n, method = int(s["n_stimuli"]), s.get("method", "spearman")
        boot = bootstrap_of(s)
        known = np.isfinite(human)
        values = [stats.correlation(e.values[known], human[known], method).r for e in (a, b)]
        row = {
            "metric": "rsa",
            "value_a": values[0],
            "value_b": values[1],
            "diff": values[0] - values[1],
            "ci_low": np.nan,
            "ci_high": np.nan,
            "p_value": np.nan,
            "test": f"paired bootstrap({boot.n_boot}, stimuli, self-pairs masked) of {method} RDM correlation",
        }
        if not all(np.isfinite(values)) or not boot.enabled:
            return [{**row, "note": "undefined for at least one model" if boot.enabled else "n_boot = 0"}]
        squares = [_square(e.values, n) for e in (a, b)]
        human_square = _square(human, n)
        samples = [stats.stimulus_bootstrap(sq, human_square, method, boot.n_boot, boot.seed) for sq in squares]
        diff, low, high, p = paired_result(values[0], values[1], samples[0], samples[1], boot.ci)
        return [{**row, "diff": diff, "ci_low": low, "ci_high": high, "p_value": p}]


def _square(condensed: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((n, n))
    iu = np.triu_indices(n, k=1)
    out[iu] = condensed
    out.T[iu] = condensed
    return out
