"""Verification (`accuracy`): same/different pairs scored by distance.

Metrics (a pair is called 'same' when its distance is at most the threshold):

- `accuracy`, `optimal_threshold`: **in-sample**: the threshold (Youden's J on the ROC of
  similarity = −distance) is chosen on the same pairs it is scored on, which flatters it;
- `auc`: ROC AUC over all pairs (threshold-free);
- `accuracy_kfold`, `accuracy_kfold_std`: the verification protocol of LFW / insightface. For each
  fold, the accuracy-maximizing threshold is fit on the other k−1 folds and applied to the held-out
  fold; mean and (population) std over folds. Folds come from the `fold` column when the pairs file
  has one (LFW View 2); else identity-disjoint folds, stratified by label as far as the identities
  allow, when identity columns (`id1`, `id2`) exist; else stratified folds (each fold holds the same
  share of same and different pairs, file order within each class). Every fold must hold both
  classes; the `protocol` column names the scheme used and any fallback. An insightface `.bin` pack
  (`pairs = "lfw.bin"`) is scored as insightface's `verification.py` does: `folds` contiguous folds
  of the pack's pairs in pack order (sklearn `KFold` without shuffling; its `fold` column). Contiguous
  folds (a pack's, or a file's fold column) that leave a held-out fold with one class are an error naming
  the remedy: `folds = "stratified"` (stratified folds, ignoring the order or the column), or
  `folds = "contiguous"` to insist (the one-class fold is then scored and noted, as insightface does;
  on a file without a fold column it takes contiguous blocks in file order);
- `eer`: the equal error rate (FAR = FRR, interpolated on the ROC);
- `tar_at_far_<far>` for each of `fars`: the true accept rate at the largest threshold whose false
  accept rate is at most `far`. A FAR that needs more different pairs than the file has is NaN with
  a note (never extrapolated).

Confidence intervals resample pairs, or identities (clusters = the identity of `img1`) when the file
has identity columns. The k-fold CI resamples the held-out correctness of each pair (thresholds stay
as fit), averaging per-fold accuracies as the point estimate does. `accuracy_kfold_std` has no CI: resampling
adds spread between folds, so a percentile interval of the resampled std can lie wholly above the std itself.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import stats
from ..data.formats.insightface_bin import insightface_kfold_folds
from ..data.pairs import LINE, parse_labels
from ..engine.distances import Distance
from ..errors import ConfigError, DataError, DataWarning, list_some
from ..outputs.metrics import HIGHER, LOWER, Axis, MetricInfo
from ..outputs.results import Metric
from .base import BaseTask, CellValues, bootstrap_of, paired_row

IN_SAMPLE = "in-sample (Youden threshold chosen on all pairs)"
ALL_PAIRS = "all pairs (threshold-free)"
DEFAULT_FARS = (1e-3, 1e-2, 1e-1)


def tar_metrics(
    task: BaseTask, tars: dict[float, Any], samples: Any, *, n: int, protocol: str, unit: str = "pairs", note: str = ""
) -> list[Metric]:
    """One `tar_at_far_<far>` per requested FAR: the TAR (NaN where the FAR is out of reach, with its note) and the
    threshold. `protocol` names the rule as `{rule}`."""
    out = []
    for far, result in tars.items():
        name = far_metric(far)
        out.append(
            task.metric(
                name,
                result.tar if result.reachable else np.nan,
                samples.get(name),
                unit=unit,
                protocol=protocol.replace("{rule}", f"largest threshold with FAR <= {far:g}"),
                n=n,
                note="; ".join(part for part in (result.note, note) if part),
                extra={"threshold": result.threshold},
            )
        )
    return out


def checked_fars(fars: Any, name: str, example: str) -> list[float]:
    """A task's `fars` option: one false accept rate in (0, 1] or a list of them → distinct floats, in order."""
    if isinstance(fars, (int, float)) and not isinstance(fars, bool):
        fars = [fars]
    if (
        not isinstance(fars, (list, tuple))
        or not fars
        or not all(isinstance(f, (int, float)) and not isinstance(f, bool) and 0 < f <= 1 for f in fars)
    ):
        raise ConfigError(
            f"task '{name}': fars must be a list of false accept rates in (0, 1], e.g. {example}; got {fars!r}"
        )
    return [float(f) for f in dict.fromkeys(fars)]


def far_metric(far: float) -> str:
    """`tar_at_far_0.001` for 1e-3 (positional notation, no trailing zeros)."""
    return "tar_at_far_" + np.format_float_positional(float(far), trim="-")


class AccuracyTask(BaseTask):
    """Verification metrics with the in-sample, k-fold and all-pairs protocols (see the module doc)."""

    type = "accuracy"
    headline = "accuracy_kfold"
    metrics = {
        "accuracy_kfold": MetricInfo("Accuracy (k-fold)", HIGHER),
        "accuracy_kfold_std": MetricInfo("Accuracy (k-fold) std", None),
        "auc": MetricInfo("AUC", HIGHER),
        "eer": MetricInfo("EER", LOWER),
        **{far_metric(f): MetricInfo(f"TAR@FAR={f:g}", HIGHER) for f in DEFAULT_FARS},
        "accuracy": MetricInfo("Accuracy (in-sample)", HIGHER),
        "optimal_threshold": MetricInfo("Threshold (in-sample)", None),
    }
    figures = ("roc",)
    axes = {
        "accuracy_kfold": Axis("{display} (share of pairs correct)", chance=0.5),
        "accuracy_kfold_std": Axis("{display} (share of pairs correct)"),
        "accuracy": Axis("{display} (share of pairs correct)", chance=0.5),
        "auc": Axis("ROC AUC", chance=0.5),
        "eer": Axis("equal error rate", chance=0.5),
        "tar_at_far_*": Axis(chance="far"),
    }
    face_recognition_metric = "accuracy_kfold"  # LFW-style papers report the k-fold accuracy
    roles = {"label": "label"}
    optional_roles = {"fold": "fold", "identity1": "id1", "identity2": "id2"}
    reads_packs = True

    def __init__(
        self,
        name: str,
        pairs: str | Path,
        images: str | Path | None = None,
        distance: Distance = "cosine",
        columns: dict[str, str] | None = None,
        folds: int | str = 10,
        fars: Sequence[float] = DEFAULT_FARS,
        n_boot: int = 1000,
        seed: int = 0,
        ci: float = 0.95,
        trusted: bool = False,
    ):
        super().__init__(name, pairs, images, distance, columns, n_boot=n_boot, seed=seed, ci=ci, trusted=trusted)
        if folds in FOLD_SCHEMES:
            self.n_folds, self.fold_scheme = 10, str(folds)
        elif isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
            raise ConfigError(
                f'task \'{name}\': folds must be a whole number >= 2, "stratified" or "contiguous"; got {folds!r}'
            )
        else:
            self.n_folds, self.fold_scheme = folds, "auto"
        self.fars = checked_fars(fars, name, "[0.001, 0.01, 0.1]")
        self.labels = np.empty(0, dtype=bool)
        self.folds: np.ndarray | None = None
        self.kfold_protocol = ""
        self.kfold_note = ""
        self.groups: np.ndarray | None = None
        self.unit = "pairs"

    def _prepare(self, table: pd.DataFrame) -> pd.DataFrame:
        """A `.bin` pack's table gets insightface's folds: `folds` contiguous blocks in pack order (0-based);
        a file with `folds = "contiguous"` gets them in file order."""
        contiguous = self.fold_scheme == "contiguous" and self.optional_column(table, "fold") is None
        if self.pack_sha256 is None and not contiguous:
            return table
        if self.fold_scheme == "stratified":
            return table
        n, k = len(table), self.n_folds
        if k > n:
            raise DataError(
                f"task '{self.name}': {self.pairs_path} holds {n} pair(s), fewer than folds = {k}; "
                f"the k-fold protocol needs at least one pair per fold"
            )
        fold_column = self.optional_columns["fold"]
        return table.assign(**{fold_column: insightface_kfold_folds(n, k).astype(str)})

    def _validate(self, table: pd.DataFrame) -> None:
        column = self.columns["label"]
        labels = parse_labels(table[column], table["_line"], self.pairs_path, column)
        n, n_same = len(labels), int(labels.sum())
        if n_same in (0, n):
            only = "same (1)" if n_same else "different (0)"
            raise DataError(
                f"{self.pairs_path}: column '{column}' holds only {only} pairs ({n} rows); a verification "
                f"task needs both same and different pairs (AUC, EER and the accuracy threshold are "
                f"undefined otherwise, and TAR@FAR needs different pairs)"
            )
        self.labels = labels
        id_columns = [
            c
            for c in (self.optional_column(table, "identity1"), self.optional_column(table, "identity2"))
            if c is not None
        ]
        identities = (
            np.stack([self._nonblank(table, c, "identity") for c in id_columns], axis=1) if id_columns else None
        )
        if identities is not None:
            self.groups = identities[:, 0]
            self.unit = "identities"
            if identities.shape[1] == 2:
                self._warn_contradictions(table, identities, id_columns)
        fold_column = self.optional_column(table, "fold")
        if fold_column is not None and self.fold_scheme == "stratified":
            self._automatic_folds(identities)
        elif fold_column is not None and (self.pack_sha256 is not None or self.fold_scheme == "contiguous"):
            self._pack_folds(table, fold_column)
        elif fold_column is not None:
            self._folds_from_column(table, fold_column)
        else:
            self._automatic_folds(identities)

    def _nonblank(self, table: pd.DataFrame, column: str, role: str) -> np.ndarray:
        """A fold or identity column's values; a blank cell is an error (it would be a fold or identity of its own)."""
        values = table[column].astype(str).str.strip()
        blank = values.isin(["", "nan", "NaN", "None"])
        if blank.any():
            raise DataError(
                f"{self.pairs_path}: column '{column}' ({role}) is blank on line(s) "
                f"{list_some(table.loc[blank, LINE].tolist())}; give every pair a value or drop the column"
            )
        return values.to_numpy()

    def _warn_contradictions(self, table: pd.DataFrame, identities: np.ndarray, columns: list[str]) -> None:
        """A 'same' pair across two identities, or a 'different' pair within one, is probably a labelling error."""
        same_identity = identities[:, 0] == identities[:, 1]
        for wrong, what in (
            (self.labels & ~same_identity, "'same' pairs whose identities differ"),
            (~self.labels & same_identity, "'different' pairs of one identity"),
        ):
            if wrong.any():
                warnings.warn(
                    DataWarning(
                        f"{self.pairs_path}: {int(wrong.sum())} {what} (columns '{columns[0]}', '{columns[1]}' vs "
                        f"'{self.columns['label']}') on line(s) {list_some(table.loc[wrong, LINE].tolist())}"
                    ),
                    stacklevel=2,
                )

    def _folds_from_column(self, table: pd.DataFrame, column: str) -> None:
        values = self._nonblank(table, column, "folds")
        names = sorted(set(values), key=_natural)
        if len(names) < 2:
            raise DataError(
                f"{self.pairs_path}: column '{column}' (folds) holds a single fold {names}; the k-fold "
                f"protocol needs at least 2 folds"
            )
        rank = {name: i for i, name in enumerate(names)}
        folds = np.array([rank[v] for v in values], dtype=np.int64)
        problem = _fold_without_class(folds, self.labels)
        if problem is not None:
            fold, word = problem
            raise DataError(
                f"{self.pairs_path}: fold '{names[fold]}' (column '{column}', {int((folds == fold).sum())} "
                f"pairs) has no {word} pairs; every fold of the {len(names)}-fold protocol needs both same "
                f"and different pairs. {_REMEDY}"
            )
        self.folds = folds
        k = len(names)
        self.kfold_protocol = f"fold column '{column}' ({k} folds; threshold fit on the other {k - 1})"

    def _pack_folds(self, table: pd.DataFrame, column: str) -> None:
        """Contiguous folds: insightface's `calculate_roc` folds of a pack (`_prepare` wrote them), or a file's
        fold column or file order with `folds = "contiguous"`. A held-out fold with one class is an error naming
        the remedy, unless `folds = "contiguous"` insists (it is then scored and noted by
        `stats.kfold_accuracy`, as insightface does); a class found in one fold only is always an error, since
        the threshold fit on the other folds would never see it."""
        values = table[column].astype(str).str.strip()
        rank = {name: i for i, name in enumerate(sorted(set(values), key=_natural))}
        folds = np.array([rank[v] for v in values], dtype=np.int64)
        k = int(folds.max()) + 1
        where = "of the pack" if self.pack_sha256 is not None else "of the file"
        for fold in range(k):
            train = self.labels[folds != fold]
            for cls, word in ((True, "same"), (False, "different")):
                if not np.any(train == cls):
                    raise DataError(
                        f"{self.pairs_path}: every {word} pair is in fold {fold} (pairs {_span(folds, fold)} "
                        f"{where}), so the threshold fit on the other {k - 1} folds never sees one; the "
                        f"{k}-fold protocol needs {word} pairs in at least two folds"
                    )
        problem = _fold_without_class(folds, self.labels)
        if problem is not None and self.fold_scheme != "contiguous":
            fold, word = problem
            raise DataError(
                f"{self.pairs_path}: held-out fold {fold} (pairs {_span(folds, fold)} {where}) has no {word} "
                f"pairs: the {k} contiguous folds of a file sorted by label score near chance. {_REMEDY}"
            )
        self.folds = folds
        order = "insightface .bin pack order" if self.pack_sha256 is not None else 'folds = "contiguous"'
        self.kfold_protocol = f"{k}-fold ({order}: contiguous folds, threshold fit on the other {k - 1})"

    def _automatic_folds(self, identities: np.ndarray | None) -> None:
        """Identity-disjoint stratified folds when identities exist and allow it, else stratified folds; fewer
        folds than asked when a class has fewer pairs than folds. The protocol string names what was used."""
        k = self.n_folds
        notes = []
        if identities is not None:
            try:
                folds = stats.make_folds(len(self.labels), k, identities=identities, labels=self.labels)
            except ValueError as exc:
                notes.append(
                    f"identity-disjoint folds impossible ({exc}); used stratified folds, so an identity "
                    f"may appear in both the fitting and the held-out folds"
                )
            else:
                self.folds = folds
                self.kfold_protocol = f"identity-disjoint stratified {k}-fold (threshold fit on {k - 1} folds)"
                return
        smallest = int(min(self.labels.sum(), (~self.labels).sum()))
        used = min(k, smallest)
        if used < 2:
            self.kfold_protocol = f"stratified {k}-fold"
            self.kfold_note = "; ".join(
                [
                    *notes,
                    f"k-fold accuracy needs at least 2 same and 2 different pairs; got {smallest} of the rarer class",
                ]
            )
            return
        if used < k:
            notes.append(f"{used} folds instead of {k}: only {smallest} pairs of the rarer class")
        self.folds = stats.stratified_folds(self.labels, used)
        self.kfold_protocol = (
            f"stratified {used}-fold (each fold holds the same share of same and different pairs, "
            f"file order within each class; threshold fit on {used - 1} folds)"
        )
        self.kfold_note = "; ".join(notes)

    # --- scoring ------------------------------------------------------------------------------
    def score(self, distances: np.ndarray) -> list[Metric]:
        d = np.asarray(distances, dtype=float)
        y = self.labels
        n = len(d)
        point = stats.in_sample_verification(d, y)
        kfold = stats.kfold_accuracy(d, y, self.folds) if self.folds is not None else None
        eer = stats.eer(d, y)
        tars = stats.tar_at_far(d, y, self.fars)
        roc = stats.Roc(d, y)
        per_fold = (
            stats.FoldAccuracy(kfold.correct, self.folds) if kfold is not None and self.folds is not None else None
        )

        def metric(counts: np.ndarray) -> dict[str, np.ndarray]:
            m = roc.metrics(counts, self.fars)
            out = {
                "accuracy": m.accuracy,
                "auc": m.auc,
                "optimal_threshold": m.threshold,
                "eer": m.eer,
                **{far_metric(far): m.tar[far] for far in self.fars},
            }
            if per_fold is not None:
                out["accuracy_kfold"] = per_fold(counts)[0]
            return out

        samples = self.bootstrap.samples(metric, n, groups=self.groups)
        unit = self.unit
        out = [
            self.metric("accuracy", point["accuracy"], samples.get("accuracy"), unit=unit, protocol=IN_SAMPLE, n=n),
            self.metric("auc", point["auc"], samples.get("auc"), unit=unit, protocol=ALL_PAIRS, n=n),
            self.metric(
                "optimal_threshold",
                point["optimal_threshold"],
                samples.get("optimal_threshold"),
                unit=unit,
                protocol=IN_SAMPLE,
                n=n,
            ),
        ]
        if kfold is not None:
            held_out = f"{unit}, held-out correctness"
            out += [
                self.metric(
                    "accuracy_kfold",
                    kfold.mean,
                    samples.get("accuracy_kfold"),
                    unit=held_out,
                    protocol=self.kfold_protocol,
                    n=n,
                    note=_join(self.kfold_note, kfold.note),
                ),
                self.metric(  # no CI: a percentile interval of a resampled std need not contain the std itself
                    "accuracy_kfold_std", kfold.std, None, unit=held_out, protocol=self.kfold_protocol, n=n
                ),
            ]
        else:
            out += [
                self.metric(name, np.nan, None, protocol=self.kfold_protocol, n=n, note=self.kfold_note)
                for name in ("accuracy_kfold", "accuracy_kfold_std")
            ]
        out.append(
            self.metric("eer", eer, samples.get("eer"), unit=unit, n=n, protocol="all pairs (FAR = FRR, interpolated)")
        )
        out += tar_metrics(
            self, {far: tars[far] for far in self.fars}, samples, n=n, unit=unit, protocol="all pairs ({rule})"
        )
        return out

    @classmethod
    def compare(cls, a: CellValues, b: CellValues) -> list[dict[str, Any]]:
        """`accuracy_kfold`: a paired bootstrap of the held-out correctness (thresholds as fit, identities
        resampled when the file has them); `auc`: DeLong's test (the CI is diff ± z·SE)."""
        s = a.scoring
        labels = np.asarray(s["labels"], dtype=bool)
        rows = []
        if s.get("folds") is not None:
            folds = np.asarray(s["folds"], dtype=np.int64)
            correct = {e.model: stats.kfold_accuracy(e.values, labels, folds).correct for e in (a, b)}
            unit = s.get("unit", "pairs")
            rows.append(
                paired_row(
                    "accuracy_kfold",
                    a,
                    b,
                    lambda e: float(np.mean(_per_fold(correct[e.model], folds))),
                    lambda e, counts: stats.fold_accuracy(correct[e.model], folds, counts)[0],
                    f"paired bootstrap({bootstrap_of(s).n_boot}, {unit}) of held-out correctness; "
                    f"{s.get('kfold_protocol', '')}",
                    groups=s.get("groups"),
                )
            )
        result = stats.delong_test(a.values, b.values, labels)
        z = stats.normal_quantile(0.5 + float(s.get("ci", 0.95)) / 2)
        rows.append(
            {
                "metric": "auc",
                "value_a": result.auc_a,
                "value_b": result.auc_b,
                "diff": result.diff,
                "ci_low": result.diff - z * result.se,
                "ci_high": result.diff + z * result.se,
                "p_value": result.p_value,
                "test": "DeLong",
            }
        )
        return rows

    def scoring(self) -> dict[str, Any]:
        return {
            **super().scoring(),
            "labels": self.labels.astype(int).tolist(),
            "folds": None if self.folds is None else self.folds.tolist(),
            "kfold_protocol": self.kfold_protocol,
            "groups": None if self.groups is None else self.groups.tolist(),
            "unit": self.unit,
        }


def _per_fold(correct: np.ndarray, folds: np.ndarray) -> np.ndarray:
    return np.array([correct[folds == f].mean() for f in np.unique(folds)])


FOLD_SCHEMES = ("stratified", "contiguous")
_REMEDY = (
    'Use stratified folds (folds = "stratified" on the task), or set folds = "contiguous" to insist on these '
    "folds (the one-class fold is then scored and noted, as insightface does)"
)


def _fold_without_class(folds: np.ndarray, labels: np.ndarray) -> tuple[int, str] | None:
    """The first fold lacking same or different pairs, with the missing class's name; None when all hold both."""
    for fold in np.unique(folds):
        held_out = labels[folds == fold]
        for cls, word in ((True, "same (1)"), (False, "different (0)")):
            if not np.any(held_out == cls):
                return int(fold), word
    return None


def _span(folds: np.ndarray, fold: int) -> str:
    """'600..1199': the 0-based pair indices of a contiguous fold."""
    where = np.flatnonzero(folds == fold)
    return f"{where[0]}..{where[-1]}"


def _natural(value: str) -> tuple[int, float | str]:
    """Sort fold names numerically when they are numbers."""
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)
