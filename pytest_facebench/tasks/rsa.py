"""Representational similarity analysis (`rsa`): the model RDM against a human RDM over a stimulus set.

The `pairs` file is either

- a stimulus list (a column `image`, one stimulus per row) and the human RDM is a square CSV given by
  `human_rdm = "human_rdm.csv"` (first column and header: the image names; blank cells = missing), or
- a pairs table (`img1`, `img2`, `distance`): the stimuli are its images in order of first
  appearance, the human RDM its `distance` column (pairs it lacks are missing), unless `human_rdm`
  is given. Relative `human_rdm` paths resolve against the pairs file's directory.

Per-rater human data (one RDM per rater; the human RDM is then their cell-wise mean over the raters who
judged the cell, and the rows below are added) comes in one of three forms:

- wide per-rater columns of a pairs table: `participants = ["rater_1", "rater_2"]` or
  `participants_glob = "rater_*"`, one dissimilarity per rater and pair (blank = not judged; no
  `distance` column is read);
- a long pairs table, one row per rater × pair (`img1`, `img2`, `participant`, `distance`): picked up
  when a `participant` column is present, or named with `columns = { participant = "subject" }` (the
  rater's dissimilarity is the `distance` column);
- per-rater square CSVs like `human_rdm`: `human_rdms = ["r1.csv", "r2.csv"]` or a glob
  `human_rdms = "raters/*.csv"` (relative to the pairs file's directory; sorted), with a stimulus list
  or a pairs table (whose `distance` column is then not read).

The model RDM holds the task's `distance` between every two stimuli's embeddings (`distance =
"correlation"` is the usual RDM, 1 − Pearson r, as `stats.rdm_from_embeddings`). The RDMs are compared
over the upper triangle with `method` (`spearman` default, `pearson`, `kendall_tau_a`, the rsatoolbox
comparators); missing human cells are left out. The CI resamples stimuli; a cell pairing a drawn
stimulus with its own duplicate is masked, not counted as a zero distance (`stats.stimulus_bootstrap`).
The per-row values of a layer (distances/<task>/<model>.csv) are the model RDM's upper triangle.

With per-rater RDMs (`stats.rdm_noise_ceiling`, Nili et al. 2014, rsatoolbox's leave-one-out bounds,
with the task's `method`):

- `rsa_ceiling_high`: mean over raters of corr(rater RDM, mean RDM of all raters);
- `rsa_ceiling_low`: mean over raters of corr(rater RDM, mean RDM of the other raters);
- `rsa_normalized` = rsa / rsa_ceiling_high.

Their CIs use the stimulus resamples of `rsa` (`stats.stimulus_bootstrap_ceiling`), so the ratio is
paired per resample. Fewer than 2 raters give NaN ceilings with a note. The bounds are on the scale of a
single rater's correlation with a mean RDM, while `rsa` compares the model with the mean of all raters,
which is less noisy than any one rater: a model close to that mean can score above the upper bound
(`rsa_normalized` > 1). The mean RDM is a plain mean; rsatoolbox's `pool_rdm` first z-scores (Pearson)
or ranks (Spearman, tau-a) each rater's RDM, which differs when raters use different scales.
"""

from __future__ import annotations

import fnmatch
import glob
import re
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .. import stats
from ..data.pairs import LINE, found_columns, parse_numbers
from ..engine.distances import Distance, distance_name
from ..errors import ConfigError, DataError, list_some
from ..outputs.metrics import HIGHER, Axis, MetricInfo
from ..outputs.results import Metric
from ..stats import paired_result
from .base import BaseTask, CellValues, bootstrap_of

METHODS = ("spearman", "pearson", "kendall_tau_a")
METHOD_LABELS = {"spearman": "Spearman ρ", "pearson": "Pearson r", "kendall_tau_a": "Kendall τ-a"}
HUMAN = "human_distance"
UNIT = "stimuli, self-pairs masked"


class RsaTask(BaseTask):
    """`rsa`: correlation of model and human RDMs, with a stimulus bootstrap CI (see the module doc)."""

    type = "rsa"
    headline = "rsa"
    metrics = {
        "rsa": MetricInfo("RSA (RDM correlation)", HIGHER),
        "rsa_normalized": MetricInfo("RSA / upper ceiling", HIGHER),
        "rsa_ceiling_low": MetricInfo("Noise ceiling (low)", None),
        "rsa_ceiling_high": MetricInfo("Noise ceiling (high)", None),
    }
    figures = ("rdm",)
    axes = {"rsa": Axis("{method} between model and human RDMs", chance=0.0)}
    roles: ClassVar[dict[str, str]] = {}
    optional_roles = {"image": "image", "distance": "distance", "participant": "participant"}

    def __init__(
        self,
        name: str,
        pairs: str | Path,
        images: str | Path,
        distance: Distance = "cosine",
        columns: dict[str, str] | None = None,
        method: str = "spearman",
        human_rdm: str | None = None,
        human_rdms: list[str] | str | None = None,
        participants: list[str] | None = None,
        participants_glob: str | None = None,
        n_boot: int = 1000,
        seed: int = 0,
        ci: float = 0.95,
    ):
        super().__init__(name, pairs, images, distance, columns, n_boot=n_boot, seed=seed, ci=ci)
        if method not in METHODS:
            raise ConfigError(f"task '{name}': method must be one of {', '.join(METHODS)}, got {method!r}")
        if human_rdm is not None and not isinstance(human_rdm, str):
            raise ConfigError(f"task '{name}': human_rdm must be the path of a square CSV; got {human_rdm!r}")
        if human_rdms is not None and not (
            isinstance(human_rdms, str)
            or (isinstance(human_rdms, list) and human_rdms and all(isinstance(h, str) for h in human_rdms))
        ):
            raise ConfigError(
                f"task '{name}': human_rdms must be a list of square CSV paths (one per rater) or a glob such "
                f"as 'raters/*.csv'; got {human_rdms!r}"
            )
        if participants is not None and (
            not isinstance(participants, list) or not all(isinstance(p, str) for p in participants)
        ):
            raise ConfigError(
                f"task '{name}': participants must be a list of column names, e.g. "
                f"['rater_1', 'rater_2']; got {participants!r}"
            )
        if participants_glob is not None and not isinstance(participants_glob, str):
            raise ConfigError(
                f"task '{name}': participants_glob must be a pattern such as 'rater_*'; got {participants_glob!r}"
            )
        given = {
            "human_rdm": human_rdm is not None,
            "human_rdms": human_rdms is not None,
            "participants": participants is not None,
            "participants_glob": participants_glob is not None,
            "columns.participant": "participant" in (columns or {}),
        }
        chosen = [k for k, v in given.items() if v]
        if len(chosen) > 1:
            raise ConfigError(f"task '{name}': {' and '.join(chosen)} each name the human data; give one of them")
        if chosen and chosen[0] not in ("human_rdm", "columns.participant") and "distance" in (columns or {}):
            raise ConfigError(
                f"task '{name}': with {chosen[0]} the human RDM is the mean of the raters' RDMs; "
                f"columns.distance is not read (remove it)"
            )
        self.method = method
        self.human_rdm = None if human_rdm is None else Path(human_rdm).expanduser()
        self.human_rdms = human_rdms
        self.participant_list = participants
        self.participants_glob = participants_glob
        self.stimuli: list[str] = []
        self.human = np.empty(0)
        self.human_note = ""
        self.raters: list[str] = []
        self.rater_files: list[str] = []
        self.rater_rdms: np.ndarray | None = None
        self._ceiling: stats.NoiseCeiling | None = None
        self._ceiling_samples: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def n_stimuli(self) -> int:
        return len(self.stimuli)

    # --- loading ------------------------------------------------------------------------------
    def _prepare(self, table: pd.DataFrame) -> pd.DataFrame:
        image = self.columns.get("image", "image")
        img1, img2 = self.columns["img1"], self.columns["img2"]
        wide = self.participant_list is not None or self.participants_glob is not None
        if image in table:
            names = table[image].astype(str).str.strip()
            repeated = names.duplicated(keep=False)
            if repeated.any():
                raise DataError(
                    f"{self.pairs_path}: column '{image}' lists stimuli more than once, on line(s) "
                    f"{list_some(table.loc[repeated, LINE].tolist())}"
                )
            self.stimuli = names.tolist()
            if wide or "participant" in self.columns:
                raise DataError(
                    f"{self.pairs_path}: per-rater columns need a pairs table ('{img1}', '{img2}'), not a "
                    f"stimulus list (column '{image}'); for per-rater square RDMs set human_rdms = ['r1.csv', ...]"
                )
            if self.human_rdm is None and self.human_rdms is None:
                raise DataError(
                    f"{self.pairs_path}: a stimulus list (column '{image}') needs the human RDM as a "
                    f"square CSV: set human_rdm = 'file.csv' (or human_rdms = [...], one per rater) in the task"
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
        participant = self.columns.get("participant", "participant")
        long = (
            self.human_rdm is None
            and self.human_rdms is None
            and not wide
            and ("participant" in self.columns or participant in table)
        )
        if self.human_rdm is not None:
            self.human = self._read_square(self._resolve(self.human_rdm))
        elif self.human_rdms is not None:
            files = self._rdm_files()
            self.rater_files = [str(f) for f in files]
            self._set_raters([f.stem for f in files], [self._read_square(f) for f in files])
        elif wide:
            self._set_raters(*self._wide_raters(table, img1, img2))
        elif long:
            self._set_raters(*self._long_raters(table, img1, img2, participant))
        else:
            self.human = self._from_pairs(table, img1, img2)
        missing = int(np.isnan(self.human).sum())
        if len(self.human) - missing < 3:
            raise DataError(f"{self.pairs_path}: the human RDM has {len(self.human) - missing} known cells; need >= 3")
        self.human_note = f"{missing} of {len(self.human)} human RDM cells missing (left out)" if missing else ""
        for role in ("image", "distance", "participant"):
            self.columns.pop(role, None)
        return pd.DataFrame(
            {img1: [self.stimuli[i] for i in iu], img2: [self.stimuli[j] for j in ju], HUMAN: self.human, LINE: 0}
        )

    def _set_raters(self, names: list[str], rdms: list[np.ndarray]) -> None:
        """Per-rater condensed RDMs; the human RDM is their mean over the raters who judged each cell."""
        self.raters = names
        self.rater_rdms = np.stack(rdms)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a cell no rater judged stays missing
            self.human = np.nanmean(self.rater_rdms, axis=0)

    def _cells(self, table: pd.DataFrame, img1: str, img2: str, values: np.ndarray, who: str = "") -> np.ndarray:
        """The condensed RDM of one set of pair rows (NaN values and absent pairs = missing)."""
        position = {s: i for i, s in enumerate(self.stimuli)}
        n = len(self.stimuli)
        cell = np.full((n, n), -1, dtype=np.int64)
        cell[np.triu_indices(n, k=1)] = np.arange(n * (n - 1) // 2)
        rdm = np.full(n * (n - 1) // 2, np.nan)
        seen_line = np.zeros(len(rdm), dtype=np.int64)
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
                    f"{self.pairs_path}: the pair ({a}, {b}) appears twice{who}, on lines {seen_line[c]} and {line}"
                )
            rdm[c], seen_line[c] = value, line
        return rdm

    def _from_pairs(self, table: pd.DataFrame, img1: str, img2: str) -> np.ndarray:
        column = self.columns.get("distance", "distance")
        if column not in table:
            raise DataError(
                f"{self.pairs_path}: missing column '{column}' (the human distance of each pair); found "
                f"columns: {found_columns(table)}. Name it with columns = {{ distance = '...' }}, give "
                f"human_rdm = 'square.csv', or per-rater data (participants = [...], human_rdms = [...])"
            )
        return self._cells(table, img1, img2, parse_numbers(table[column], table[LINE], self.pairs_path, column))

    def _wide_raters(self, table: pd.DataFrame, img1: str, img2: str) -> tuple[list[str], list[np.ndarray]]:
        columns = [c for c in table.columns if c != LINE]
        if self.participant_list is not None:
            missing = [c for c in self.participant_list if c not in table]
            if missing:
                raise DataError(
                    f"{self.pairs_path}: participant column(s) {', '.join(repr(c) for c in missing)} not "
                    f"found; found columns: {', '.join(columns)}"
                )
            names = list(self.participant_list)
        else:
            assert self.participants_glob is not None
            names = [c for c in columns if fnmatch.fnmatchcase(c, self.participants_glob)]
            if not names:
                raise DataError(
                    f"{self.pairs_path}: participants_glob '{self.participants_glob}' matches no column; "
                    f"found columns: {', '.join(columns)}"
                )
        values = [_numbers_or_blank(table[c], table[LINE], self.pairs_path, c) for c in names]
        return names, [self._cells(table, img1, img2, v) for v in values]

    def _long_raters(
        self, table: pd.DataFrame, img1: str, img2: str, participant: str
    ) -> tuple[list[str], list[np.ndarray]]:
        if participant not in table:
            raise DataError(
                f"{self.pairs_path}: missing column '{participant}' (participant); found columns: "
                f"{found_columns(table)}"
            )
        column = self.columns.get("distance", "distance")
        if column not in table:
            raise DataError(
                f"{self.pairs_path}: a long table with a participant column '{participant}' needs the rater's "
                f"dissimilarity in a column '{column}' (name it with columns = {{ distance = '...' }}); found "
                f"columns: {found_columns(table)}"
            )
        values = parse_numbers(table[column], table[LINE], self.pairs_path, column)
        who = table[participant].astype(str).str.strip()
        names = sorted(set(who), key=_natural)
        rdms = []
        for name in names:
            rows = (who == name).to_numpy()
            rdms.append(self._cells(table.loc[rows], img1, img2, values[rows], f" for participant {name}"))
        return names, rdms

    def _resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else self.pairs_path.parent / path

    def _rdm_files(self) -> list[Path]:
        """The per-rater square CSVs of `human_rdms`: the listed paths, or the sorted matches of a glob."""
        if isinstance(self.human_rdms, str):
            pattern = Path(self.human_rdms).expanduser()
            found = sorted(glob.glob(str(self._resolve(pattern))), key=_natural_path)
            files = [Path(f) for f in found if Path(f).is_file()]
            if not files:
                raise DataError(
                    f"task '{self.name}': human_rdms '{self.human_rdms}' matches no file (relative to "
                    f"{self.pairs_path.parent})"
                )
            return files
        assert self.human_rdms is not None
        files = [self._resolve(Path(f).expanduser()) for f in self.human_rdms]
        absent = [str(f) for f in files if not f.is_file()]
        if absent:
            raise DataError(f"task '{self.name}': human_rdms file(s) not found: {list_some(absent)}")
        return files

    def _read_square(self, path: Path) -> np.ndarray:
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

    def metric_label(self, metric: str) -> str | None:
        """`rsa` and `rsa_normalized` named with the comparator (and the raters pooled into the human RDM)."""
        r = METHOD_LABELS[self.method]
        pooled = f", mean of {len(self.raters)} raters" if self.rater_rdms is not None else ""
        return {"rsa": f"RSA ({r} of RDMs{pooled})", "rsa_normalized": f"RSA ({r}) / upper noise ceiling"}.get(metric)

    def score(self, distances: np.ndarray) -> list[Metric]:
        model = np.asarray(distances, dtype=float)
        known = np.isfinite(self.human)
        result = stats.correlation(model[known], self.human[known], self.method)
        samples = None
        if np.isfinite(result.r) and self.bootstrap.enabled:
            samples = stats.stimulus_bootstrap(
                self.square(model), self.square(self.human), self.method, self.bootstrap.n_boot, self.bootstrap.seed
            )
        human = f"mean RDM of {len(self.raters)} raters" if self.rater_rdms is not None else "human RDM"
        protocol = (
            f"{self.method} correlation of RDM upper triangles ({int(known.sum())} cells, {self.n_stimuli} "
            f"stimuli; model RDM: {distance_name(self.distance)} distance; {human})"
        )
        note = "; ".join(n for n in (result.reason, self.human_note) if n)
        out = [
            self.metric(
                "rsa",
                result.r,
                samples,
                unit=UNIT,
                protocol=protocol,
                n=self.n_stimuli,
                note=note,
                extra={"n_cells": int(known.sum())},
            )
        ]
        if self.rater_rdms is None:
            return out
        ceiling = self.ceiling
        assert ceiling is not None
        low_samples, high_samples = self.ceiling_samples() if np.isfinite(ceiling.high) else (None, None)
        n_raters = len(self.raters)
        bounds = f"{self.method} noise ceiling over {n_raters} raters' RDMs (rsatoolbox / Nili et al. 2014): %s"
        extra = {"n_raters": n_raters}
        common: dict[str, Any] = {"unit": UNIT, "n": self.n_stimuli, "extra": extra}
        out.append(
            self.metric(
                "rsa_ceiling_low",
                ceiling.low,
                low_samples,
                protocol=bounds % "each rater vs the mean RDM of the others",
                note=ceiling.note,
                **common,
            )
        )
        out.append(
            self.metric(
                "rsa_ceiling_high",
                ceiling.high,
                high_samples,
                protocol=bounds % "each rater vs the mean RDM of all raters",
                note=ceiling.note,
                **common,
            )
        )
        normalized = result.r / ceiling.high if np.isfinite(ceiling.high) and ceiling.high != 0 else np.nan
        ratio = None
        if samples is not None and high_samples is not None:
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = np.where(high_samples != 0, samples / high_samples, np.nan)  # a zero ceiling: undefined
        out.append(
            self.metric(
                "rsa_normalized",
                normalized,
                ratio,
                protocol="rsa / rsa_ceiling_high (the same stimulus resamples)",
                note=result.reason or (ceiling.note if not np.isfinite(ceiling.high) else ""),
                **common,
            )
        )
        return out

    @property
    def ceiling(self) -> stats.NoiseCeiling | None:
        """The raters' noise ceiling (None without per-rater RDMs), computed on first use."""
        if self.rater_rdms is not None and self._ceiling is None:
            self._ceiling = stats.rdm_noise_ceiling(self._rater_squares(), self.method)
        return self._ceiling

    def ceiling_samples(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Stimulus-bootstrap samples (low, high) of the ceiling, on the resamples of `rsa`; computed once."""
        if self.rater_rdms is None or not self.bootstrap.enabled:
            return None, None
        if self._ceiling_samples is None:
            self._ceiling_samples = stats.stimulus_bootstrap_ceiling(
                self._rater_squares(), self.method, self.bootstrap.n_boot, self.bootstrap.seed
            )
        return self._ceiling_samples

    def _rater_squares(self) -> np.ndarray:
        assert self.rater_rdms is not None
        return np.stack([self.square(r) for r in self.rater_rdms])

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


def _natural(value: str) -> tuple[int, float | str]:
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)


def _natural_path(path: str) -> list[int | str]:
    """'r2.csv' before 'r10.csv'."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def _numbers_or_blank(values: pd.Series, lines: pd.Series, path: Path, column: str) -> np.ndarray:
    """Numbers; blank cells (a rater who did not judge the pair) become NaN."""
    text = values.astype(str).str.strip()
    blank = text.isin(["", "nan", "NaN", "NA"])
    out = np.full(len(values), np.nan)
    if (~blank).any():
        out[~blank.to_numpy()] = parse_numbers(values[~blank], lines[~blank], path, column)
    return out
