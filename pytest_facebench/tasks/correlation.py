"""Correlation (`correlation`): model distances against human dissimilarities, with noise ceilings.

`method`: `pearson` (default), `spearman`, `kendall` (tau-b) or `kendall_tau_a` (for tied ratings).
The human distance is the `distance` column, or, when it is absent, the mean over participants.

Per-participant ratings give the noise ceiling (rsatoolbox's convention, Nili et al. 2014): the upper
bound is the mean over participants of corr(participant, mean of all participants), the lower bound
the mean of corr(participant, mean of the others). Ratings come as wide columns (`participants =
["rater_1", ...]` or `participants_glob = "rater_*"`) or as a long table with a participant column
(`columns = { participant = "subject", rating = "rating" }`; one row per participant × pair; the
default names `participant` and `rating` are picked up when present). Rows reported then:

- `correlation_ceiling_low`, `correlation_ceiling_high`: the bounds (same `method` as `correlation`);
- `correlation_normalized` = correlation / correlation_ceiling_high: the share of the explainable
  correlation the model reaches, against the upper bound, so a model as good as the best possible one
  scores about 1 and no better than it (dividing by the lower bound would flatter);
- `split_half_ceiling`: split-half reliability of the participant mean, Spearman–Brown corrected
  (100 random participant splits; Pearson, or Spearman for rank methods).

Fewer than 2 participants give NaN ceilings with a note; constant model distances give a NaN
correlation with the reason. CIs resample pairs (ceilings and the normalized score on the same
resamples as the correlation).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .. import stats
from ..data.pairs import LINE, found_columns, parse_numbers
from ..engine.distances import Distance
from ..errors import ConfigError, DataError, list_some
from ..outputs.metrics import HIGHER, Axis, MetricInfo
from ..outputs.results import Metric
from .base import BaseTask, CellValues, bootstrap_of, paired_row

METHODS = ("pearson", "spearman", "kendall", "kendall_tau_a")
METHOD_LABELS = {
    "pearson": "Pearson r",
    "spearman": "Spearman ρ",
    "kendall": "Kendall τ-b",
    "kendall_tau_a": "Kendall τ-a",
}
SPLIT_HALF_SPLITS = 100


class CorrelationTask(BaseTask):
    """The correlation (Pearson r by default) between model distances and human distances, plus noise ceilings."""

    type = "correlation"
    headline = "correlation"
    metrics = {
        "correlation": MetricInfo("Correlation r", HIGHER),
        "correlation_normalized": MetricInfo("r / upper ceiling", HIGHER),
        "correlation_ceiling_low": MetricInfo("Noise ceiling (low)", None),
        "correlation_ceiling_high": MetricInfo("Noise ceiling (high)", None),
        "split_half_ceiling": MetricInfo("Split-half ceiling", None),
    }
    figures = ("scatter",)
    axes = {
        "correlation": Axis(
            "{method} with human dissimilarity",
            chance=0.0,
            ceiling=("correlation_ceiling_low", "correlation_ceiling_high"),
        ),
        "correlation_normalized": Axis("{method} / noise ceiling", chance=0.0),
    }
    roles: ClassVar[dict[str, str]] = {}
    optional_roles = {"distance": "distance", "participant": "participant", "rating": "rating"}

    def __init__(
        self,
        name: str,
        pairs: str | Path,
        images: str | Path,
        distance: Distance = "cosine",
        columns: dict[str, str] | None = None,
        method: str = "pearson",
        participants: list[str] | None = None,
        participants_glob: str | None = None,
        n_boot: int = 1000,
        seed: int = 0,
        ci: float = 0.95,
    ):
        super().__init__(name, pairs, images, distance, columns, n_boot=n_boot, seed=seed, ci=ci)
        if method not in METHODS:
            raise ConfigError(f"task '{name}': method must be one of {', '.join(METHODS)}, got {method!r}")
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
        if participants is not None and participants_glob is not None:
            raise ConfigError(f"task '{name}': give participants or participants_glob, not both")
        self.method = method
        self.participant_list = participants
        self.participants_glob = participants_glob
        self.participants: list[str] = []
        self.ratings: np.ndarray | None = None
        self.human = np.empty(0)
        self.human_source = ""
        self._ceiling: stats.NoiseCeiling | None = None
        self._split_half: float | None = None
        self._ceiling_samples: dict[str, np.ndarray] | None = None

    # --- loading ------------------------------------------------------------------------------
    def _prepare(self, table: pd.DataFrame) -> pd.DataFrame:
        """A long table (one row per participant × pair) becomes one row per pair, one column per participant."""
        explicit = "participant" in self.columns
        column = self.columns.get("participant", "participant")
        if column not in table:
            if explicit:
                raise DataError(
                    f"{self.pairs_path}: missing column '{column}' (participant); found columns: {found_columns(table)}"
                )
            return table
        rating = self.columns.get("rating", "rating")
        if rating not in table:
            raise DataError(
                f"{self.pairs_path}: a long table with a participant column '{column}' needs a rating "
                f"column '{rating}' (name it with columns = {{ rating = '...' }}); found columns: "
                f"{found_columns(table)}"
            )
        img1, img2 = self.columns["img1"], self.columns["img2"]
        for role in ("img1", "img2"):
            if self.columns[role] not in table:
                return table  # require_columns reports it
        values = parse_numbers(table[rating], table[LINE], self.pairs_path, rating)
        key = table[img1].astype(str).str.strip() + "\x00" + table[img2].astype(str).str.strip()
        who = table[column].astype(str).str.strip()
        twice = pd.DataFrame({"k": key, "p": who}).duplicated(keep=False)
        if twice.any():
            raise DataError(
                f"{self.pairs_path}: a participant rated the same pair twice (column '{column}') on "
                f"line(s) {list_some(table.loc[twice, LINE].tolist())}"
            )
        names = sorted(set(who), key=_natural)
        clash = [n for n in names if n in table.columns]
        labels = {n: (f"participant_{n}" if clash else n) for n in names}
        wide_values = pd.DataFrame({"k": key, "p": who.map(labels), "v": values}).pivot(
            index="k", columns="p", values="v"
        )
        first = ~key.duplicated()
        keep = [c for c in table.columns if c not in (column, rating)]
        wide = table.loc[first, keep].reset_index(drop=True)
        ordered = [labels[n] for n in names]
        wide = pd.concat(
            [wide, pd.DataFrame(wide_values.loc[key[first].to_numpy(), ordered].to_numpy(), columns=ordered)], axis=1
        )
        self.columns.pop("participant", None)
        self.columns.pop("rating", None)
        self.participant_list = ordered
        self.participants_glob = None
        return wide

    def _validate(self, table: pd.DataFrame) -> None:
        self.participants = self._participant_columns(table)
        if self.participants:
            self.ratings = np.column_stack(
                [_numbers_or_blank(table[c], table[LINE], self.pairs_path, c) for c in self.participants]
            )
        column = self.optional_column(table, "distance")
        if column is not None:
            self.human = parse_numbers(table[column], table[LINE], self.pairs_path, column)
            self.human_source = f"column '{column}'"
        elif self.ratings is not None:
            rated = np.isfinite(self.ratings).any(axis=1)
            if not rated.all():
                raise DataError(
                    f"{self.pairs_path}: no participant rated the pair(s) on line(s) "
                    f"{list_some(table.loc[~rated, LINE].tolist())}"
                )
            self.human = np.nanmean(self.ratings, axis=1)
            self.human_source = f"mean of {len(self.participants)} participants"
        else:
            name = self.columns.get("distance", "distance")
            raise DataError(
                f"{self.pairs_path}: missing column(s) '{name}'; found columns: {found_columns(table)}. "
                f"Name the human distance column with columns = {{ distance = '...' }}, or list "
                f"per-participant rating columns with participants = [...]"
            )

    @property
    def ceiling(self) -> stats.NoiseCeiling | None:
        """The participants' noise ceiling (None without per-participant ratings), computed on first use."""
        if self.ratings is not None and self._ceiling is None:
            self._ceiling = stats.noise_ceiling(self.ratings, self.method)
        return self._ceiling

    @property
    def split_half(self) -> float:
        """Spearman–Brown corrected split-half reliability of the participant mean (nan below 2 raters)."""
        if self._split_half is None:
            ratings = self.ratings
            split_method = "pearson" if self.method == "pearson" else "spearman"
            self._split_half = (
                stats.split_half_reliability(ratings, SPLIT_HALF_SPLITS, self.bootstrap.seed, split_method)
                if ratings is not None and ratings.shape[1] >= 2
                else np.nan
            )
        return self._split_half

    def _participant_columns(self, table: pd.DataFrame) -> list[str]:
        columns = [c for c in table.columns if c != LINE]
        if self.participant_list is not None:
            missing = [c for c in self.participant_list if c not in table]
            if missing:
                raise DataError(
                    f"{self.pairs_path}: participant column(s) {', '.join(repr(c) for c in missing)} not "
                    f"found; found columns: {', '.join(columns)}"
                )
            return list(self.participant_list)
        if self.participants_glob is not None:
            chosen = [c for c in columns if fnmatch.fnmatchcase(c, self.participants_glob)]
            if not chosen:
                raise DataError(
                    f"{self.pairs_path}: participants_glob '{self.participants_glob}' matches no column; "
                    f"found columns: {', '.join(columns)}"
                )
            return chosen
        return []

    # --- scoring ------------------------------------------------------------------------------
    def metric_label(self, metric: str) -> str | None:
        raters = getattr(self, "ratings", None)
        pooled = f" (mean of {raters.shape[1]} raters)" if isinstance(raters, np.ndarray) and raters.ndim == 2 else ""
        r = METHOD_LABELS[self.method]
        return {
            "correlation": f"{r} with human dissimilarity{pooled}",
            "correlation_normalized": f"{r} / upper noise ceiling",
        }.get(metric)

    def score(self, distances: np.ndarray) -> list[Metric]:
        d = np.asarray(distances, dtype=float)
        n = len(d)
        result = stats.correlation(d, self.human, method=self.method)
        samples: dict[str, np.ndarray] = {}
        if np.isfinite(result.r) and self.bootstrap.enabled:
            samples = self.bootstrap.samples(
                lambda w: {"r": stats.resampled_correlation(d, self.human, w, self.method)}, n
            )
        out = [self.metric("correlation", result.r, samples.get("r"), protocol=self.method, n=n, note=result.reason)]
        if self.ceiling is None:
            return out
        ceiling = self.ceiling
        ceiling_samples = self.ceiling_samples() if np.isfinite(ceiling.high) else {}
        n_participants = len(self.participants)
        bounds = f"{self.method} noise ceiling over {n_participants} participants (rsatoolbox / Nili et al. 2014): %s"
        extra = {"n_participants": n_participants}
        out.append(
            self.metric(
                "correlation_ceiling_low",
                ceiling.low,
                ceiling_samples.get("low"),
                n=n,
                extra=extra,
                protocol=bounds % "each participant vs the mean of the others",
                note=ceiling.note,
            )
        )
        out.append(
            self.metric(
                "correlation_ceiling_high",
                ceiling.high,
                ceiling_samples.get("high"),
                n=n,
                extra=extra,
                protocol=bounds % "each participant vs the mean of all",
                note=ceiling.note,
            )
        )
        normalized = result.r / ceiling.high if np.isfinite(ceiling.high) and ceiling.high != 0 else np.nan
        note = result.reason or (ceiling.note if not np.isfinite(ceiling.high) else "")
        ratio = None
        if "r" in samples and "high" in ceiling_samples:
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = samples["r"] / ceiling_samples["high"]
        out.append(
            self.metric(
                "correlation_normalized",
                normalized,
                ratio,
                n=n,
                extra=extra,
                note=note,
                protocol="correlation / correlation_ceiling_high",
            )
        )
        split_method = "pearson" if self.method == "pearson" else "spearman"
        split_note = (
            ""
            if np.isfinite(self.split_half)
            else (f"split-half reliability needs >= 2 participants; got {n_participants}")
        )
        out.append(
            self.metric(
                "split_half_ceiling",
                self.split_half,
                ceiling_samples.get("split_half"),
                n=n,
                extra=extra,
                note=split_note,
                protocol=f"split-half reliability of the participant mean, Spearman-Brown corrected "
                f"({SPLIT_HALF_SPLITS} random splits, {split_method})",
            )
        )
        return out

    def ceiling_samples(self) -> dict[str, np.ndarray]:
        """Bootstrap samples of the ceilings (the same pair resamples as the correlation), computed once."""
        if self._ceiling_samples is None:
            ratings = self.ratings
            assert ratings is not None
            split_method = "pearson" if self.method == "pearson" else "spearman"
            seed = self.bootstrap.seed

            def metric(counts: np.ndarray) -> dict[str, np.ndarray]:
                low, high = stats.resampled_noise_ceiling(ratings, counts, self.method)
                split = [
                    stats.split_half_reliability(
                        ratings[np.repeat(np.arange(len(ratings)), row)], SPLIT_HALF_SPLITS, seed, split_method
                    )
                    for row in counts
                ]
                return {"low": low, "high": high, "split_half": np.asarray(split)}

            self._ceiling_samples = self.bootstrap.samples(metric, len(ratings))
        return self._ceiling_samples

    def scoring(self) -> dict[str, Any]:
        return {**super().scoring(), "human": self.human.tolist(), "method": self.method, "unit": "pairs"}

    @classmethod
    def compare(cls, a: CellValues, b: CellValues) -> list[dict[str, Any]]:
        """`correlation`: a paired bootstrap over pairs."""
        s = a.scoring
        human = np.asarray(s["human"], dtype=float)
        method = s.get("method", "pearson")
        return [
            paired_row(
                "correlation",
                a,
                b,
                lambda e: stats.correlation(e.values, human, method).r,
                lambda e, counts: stats.resampled_correlation(e.values, human, counts, method),
                f"paired bootstrap({bootstrap_of(s).n_boot}, pairs) of {method} r",
            )
        ]


def _natural(value: str) -> tuple[int, float | str]:
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)


def _numbers_or_blank(values: pd.Series, lines: pd.Series, path: Path, column: str) -> np.ndarray:
    """Numbers; blank cells (a participant who did not rate the pair) become NaN."""
    text = values.astype(str).str.strip()
    blank = text.isin(["", "nan", "NaN", "NA"])
    out = np.full(len(values), np.nan)
    if (~blank).any():
        out[~blank.to_numpy()] = parse_numbers(values[~blank], lines[~blank], path, column)
    return out
