"""Metric directions (issue 13): `higher`, `lower` and `target`. An effect (a `target` metric) is never ranked as
if more were better: comparisons say which model comes closer to the declared human value, or with none which
effect is larger in magnitude; baselines and `compare` flag a move away from the target as a regression."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_facebench import stats
from pytest_facebench.outputs.gates import compare_runs, compare_to_baseline
from pytest_facebench.outputs.metrics import badness, metric_info
from pytest_facebench.report.verdicts import verdict
from pytest_facebench.tasks import RelativeDifferenceTask
from pytest_facebench.tasks.base import CellValues

GROUPS = np.array(["inverted"] * 6 + ["upright"] * 6)


def cell(model: str, values: list[float], human: float | None = None, n_boot: int = 400) -> CellValues:
    scoring = {
        "in_a": (GROUPS == "inverted").astype(int).tolist(),
        "strata": GROUPS.tolist(),
        "n_boot": n_boot,
        "seed": 0,
        "ci": 0.95,
        "human_effect": human,
        "human_effect_metric": "relative_difference",
    }
    return CellValues(model, "output", np.asarray(values, dtype=float), scoring)


def rel(values: list[float]) -> float:
    v = np.asarray(values, dtype=float)
    a, b = v[:6].mean(), v[6:].mean()
    return (a - b) / (a + b)


# a: inverted pairs closer than upright ones (negative effect, like humans under groups = [inverted, upright])
A = [0.30, 0.32, 0.29, 0.31, 0.30, 0.33, 0.50, 0.52, 0.49, 0.51, 0.50, 0.48]
# b: almost no effect
B = [0.40, 0.41, 0.39, 0.40, 0.42, 0.40, 0.41, 0.40, 0.39, 0.41, 0.40, 0.40]


def test_effects_are_targets_and_accuracy_and_eer_keep_their_sides():
    assert metric_info("relative_difference").direction == "target"
    assert metric_info("cohens_d").direction == "target"
    assert metric_info("mean_distance").direction == "target"
    assert metric_info("accuracy_kfold").direction == "higher" and metric_info("eer").direction == "lower"
    assert badness("accuracy_kfold", 0.9) == -0.9 and badness("eer", 0.1) == 0.1
    assert badness("relative_difference", -0.2, target=-0.25) == pytest.approx(0.05)
    assert badness("relative_difference", -0.2) is None  # no target declared: no better side


def test_without_a_human_value_models_are_compared_on_the_magnitude_of_their_effects():
    [row] = RelativeDifferenceTask.compare(cell("a", A), cell("b", B))
    assert row["quantity"] == "|value|"
    assert row["value_a"] == pytest.approx(abs(rel(A))) and row["value_b"] == pytest.approx(abs(rel(B)))
    assert row["diff"] == pytest.approx(abs(rel(A)) - abs(rel(B)))
    assert row["ci_low"] > 0  # a's effect is clearly the larger one
    sentence = verdict({**row, "model_a": "a", "model_b": "b", "ci_level": 0.95})
    assert sentence.startswith("a's relative_difference is larger in magnitude than b's (Δ|value|=")
    assert "beats" not in sentence


def test_with_a_human_value_models_are_compared_on_their_distance_to_it():
    human = -0.05  # b's near-zero effect is closer to this weak human effect than a's strong one
    [row] = RelativeDifferenceTask.compare(cell("a", A, human), cell("b", B, human))
    assert row["quantity"].startswith("|value − human|")
    assert row["value_a"] == pytest.approx(abs(rel(A) - human))
    assert row["value_b"] == pytest.approx(abs(rel(B) - human))
    assert row["diff"] == pytest.approx(abs(rel(A) - human) - abs(rel(B) - human))
    # the bootstrap distribution of the closeness difference, recomputed with the stats engine
    boot = stats.Bootstrap(400, 0, 0.95)
    in_a = GROUPS == "inverted"

    def closeness(values, counts):
        return np.abs(stats.group_effects(np.asarray(values), in_a, counts)["relative_difference"] - human)

    samples = boot.samples(lambda c: {"a": closeness(A, c), "b": closeness(B, c)}, 12, strata=GROUPS)
    _, low, high, _ = stats.paired_result(row["value_a"], row["value_b"], samples["a"], samples["b"], 0.95)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high))
    sentence = verdict({**row, "model_a": "a", "model_b": "b", "ci_level": 0.95})
    assert sentence.startswith("b is closer to the human value than a on relative_difference (Δ|value − human|=")


def test_a_non_significant_target_comparison_never_names_a_winner():
    row = {
        "model_a": "a",
        "model_b": "b",
        "metric": "relative_difference",
        "diff": 0.01,
        "ci_low": -0.02,
        "ci_high": 0.04,
        "p_value": 0.4,
        "ci_level": 0.95,
    }
    assert verdict({**row, "quantity": "|value|"}).startswith("no significant difference in magnitude")
    assert verdict({**row, "quantity": "|value − human| (human 0.1)"}).startswith(
        "neither a nor b is significantly closer"
    )
    significant = {**row, "ci_low": 0.005, "p_value": 0.01}
    assert "beats" not in verdict(significant)  # a target metric in an old row without `quantity`
    assert verdict({**significant, "metric": "auc", "quantity": "value"}).startswith("a beats b on auc")
    assert verdict(
        {**significant, "metric": "eer", "diff": -0.01, "ci_low": -0.04, "ci_high": -0.005, "quantity": "value"}
    ).startswith("a beats b on eer")


def record(metric: str, value: float, target: float | None = None) -> dict:
    return {
        "task": "inv",
        "model": "m",
        "layer": "output",
        "metric": metric,
        "condition": None,
        "value": value,
        "readout": True,
        "target": math.nan if target is None else target,
    }


@pytest.mark.parametrize(
    "metric,old,new,target,status",
    [
        ("accuracy_kfold", 0.90, 0.85, None, "fail"),
        ("accuracy_kfold", 0.90, 0.95, None, "pass"),
        ("eer", 0.10, 0.15, None, "fail"),
        ("eer", 0.10, 0.05, None, "pass"),
        ("relative_difference", -0.20, -0.10, -0.25, "fail"),  # moved away from the human value
        ("relative_difference", -0.20, -0.24, -0.25, "pass"),  # moved towards it
        ("relative_difference", -0.20, -0.30, -0.25, "pass"),  # overshoot, but no further than before
        ("relative_difference", -0.20, -0.40, -0.25, "fail"),  # overshoot further than before
    ],
)
def test_baselines_gate_each_direction(metric, old, new, target, status):
    baseline = {"cells": {f"inv|m|output|{metric}|": {"value": old}}}
    outcomes, _ = compare_to_baseline([record(metric, new, target)], baseline, max_drop=0.01)
    assert [o.status for o in outcomes] == [status]


def test_an_effect_without_a_target_is_not_gated_and_compare_calls_it_changed():
    baseline = {"cells": {"inv|m|output|relative_difference|": {"value": -0.2}}}
    outcomes, _ = compare_to_baseline([record("relative_difference", 0.3)], baseline)
    assert outcomes == []
    key = "inv|m|output|relative_difference|"
    changes = compare_runs({key: {"value": -0.2, "target": None}}, {key: {"value": 0.3, "target": None}})
    assert changes["status"].tolist() == ["changed"]
    towards = compare_runs({key: {"value": -0.2, "target": -0.25}}, {key: {"value": -0.24, "target": -0.25}})
    away = compare_runs({key: {"value": -0.2, "target": -0.25}}, {key: {"value": -0.1, "target": -0.25}})
    assert towards["status"].tolist() == ["improvement"] and away["status"].tolist() == ["regression"]
