"""Gates as pure functions: thresholds, messages, baselines, offline comparison."""

from __future__ import annotations

import json
import math

import pytest

from pytest_facebench.errors import ConfigError, FacebenchError
from pytest_facebench.outputs.gates import (
    GateOutcome,
    baseline_payload,
    check_thresholds,
    compare_runs,
    compare_to_baseline,
    expectations,
    load_baseline,
    parse_thresholds,
)

VALID = ("accuracy", "auc", "accuracy_kfold", "eer", "tar_at_far_0.001")


def record(metric="accuracy_kfold", value=0.912, layer="classifier.5", readout=True, **extra):
    return {
        "task": "lfw",
        "model": "vgg16-face",
        "layer": layer,
        "metric": metric,
        "value": value,
        "ci_low": extra.pop("ci_low", 0.90),
        "ci_high": extra.pop("ci_high", 0.92),
        "readout": readout,
        "condition": None,
        **extra,
    }


def test_failing_min_has_the_documented_message():
    (outcome,) = check_thresholds([record()], parse_thresholds([{"metric": "accuracy_kfold", "min": 0.95}], VALID))
    assert outcome.status == "fail"
    assert outcome.message() == "lfw · vgg16-face · classifier.5: accuracy_kfold 0.912 < min 0.950 (95% CI 0.90–0.92)"


def test_passing_min_and_max_for_lower_is_better():
    thresholds = parse_thresholds([{"metric": "accuracy_kfold", "min": 0.9}, {"metric": "eer", "max": 0.05}], VALID)
    outcomes = check_thresholds(
        [record(), record("eer", 0.04), record("eer", 0.2, layer="fc", readout=False)], thresholds
    )
    assert [o.status for o in outcomes] == ["pass", "pass"]  # non-readout layer not gated
    (failing,) = check_thresholds([record("eer", 0.07)], thresholds[1:])
    assert failing.status == "fail" and "eer 0.070 > max 0.050" in failing.message()


def test_threshold_scoped_to_model_and_layer():
    (threshold,) = parse_thresholds([{"metric": "accuracy", "min": 0.99, "model": "other", "layer": "fc"}], VALID)
    assert check_thresholds([record("accuracy", 0.5)], [threshold]) == []
    outcomes = check_thresholds([record("accuracy", 0.5, layer="fc", readout=False, model="other")], [threshold])
    assert [o.status for o in outcomes] == ["fail"]


@pytest.mark.parametrize(
    "entry,message",
    [
        (
            {"metric": "acuracy", "min": 0.9},
            "unknown metric 'acuracy'.*valid metrics: accuracy, auc.*Did you mean 'accuracy'",
        ),
        ({"metric": "auc", "min": 0.9, "max": 0.8}, "min 0.9 is greater than max 0.8"),
        ({"metric": "auc"}, "needs 'min' and/or 'max'"),
        ({"metric": "auc", "min": "high"}, "'min' must be a number"),
    ],
)
def test_bad_thresholds_are_config_errors(entry, message):
    with pytest.raises(ConfigError, match=message):
        parse_thresholds([entry], VALID, where="facebench.toml, tasks[0] ('lfw')")


def test_expect_argument():
    thresholds = expectations({"auc": (">=", 0.9), "eer": ("<=", 0.1)})
    assert [(t.metric, t.min, t.max) for t in thresholds] == [("auc", 0.9, None), ("eer", None, 0.1)]
    with pytest.raises(ConfigError, match="operator must be one of"):
        expectations({"auc": ("=>", 0.9)})


def test_baseline_roundtrip_pass_regression_and_new(tmp_path):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(baseline_payload([record(value=0.95, ci_low=0.94, ci_high=0.96)])))
    baseline = load_baseline(path)
    same, warnings = compare_to_baseline([record(value=0.945)], baseline, max_drop=0.01)
    assert [o.status for o in same] == ["pass"] and warnings == []
    worse, _ = compare_to_baseline([record(value=0.90, ci_low=0.89, ci_high=0.91)], baseline, max_drop=0.01)
    assert worse[0].status == "fail"
    assert "accuracy_kfold 0.900 < baseline 0.950 by 0.050 (tolerance 0.010)" in worse[0].message()
    new, _ = compare_to_baseline([record(metric="auc", value=0.9)], baseline)
    assert new[0].status == "new"


def test_gate_ci_passes_a_drop_within_noise(tmp_path):
    baseline = baseline_payload([record(value=0.95)])
    noisy = record(value=0.93, ci_low=0.90, ci_high=0.96)  # baseline inside the current CI
    assert compare_to_baseline([noisy], baseline, max_drop=0.01, gate_ci=True)[0][0].status == "pass"
    assert compare_to_baseline([noisy], baseline, max_drop=0.01, gate_ci=False)[0][0].status == "fail"
    assert compare_to_baseline([noisy], baseline, tolerances={"accuracy_kfold": 0.05})[0][0].status == "pass"


def test_lower_is_better_baseline_and_provenance_warning():
    baseline = baseline_payload([record("eer", 0.05, precision="fp32")])
    outcomes, warnings = compare_to_baseline([record("eer", 0.08, precision="bf16")], baseline, max_drop=0.01)
    assert outcomes[0].status == "fail" and "> baseline 0.050" in outcomes[0].message()
    assert warnings and "precision" in warnings[0] and "not like-for-like" in warnings[0]


@pytest.mark.parametrize(
    "content,message",
    [
        (None, "baseline file not found"),
        ("{not json", "is not valid JSON"),
        ('{"cells": {}}', "is not a facebench baseline"),
    ],
)
def test_bad_baseline_files(tmp_path, content, message):
    path = tmp_path / "baseline.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(FacebenchError, match=message):
        load_baseline(path)


def test_compare_runs_statuses():
    old = {"t|m|l|auc|": {"value": 0.9}, "t|m|l|eer|": {"value": 0.1}, "t|m|l|rank1|": {"value": 0.5}}
    new = {"t|m|l|auc|": {"value": 0.85}, "t|m|l|eer|": {"value": 0.05}, "t|m|l|accuracy|": {"value": 0.7}}
    frame = compare_runs(old, new, max_drop=0.01).set_index("metric")
    assert frame.loc["auc", "status"] == "regression" and math.isclose(frame.loc["auc", "change"], -0.05)
    assert frame.loc["eer", "status"] == "improvement"
    assert frame.loc["accuracy", "status"] == "new" and frame.loc["rank1", "status"] == "removed"


def test_outcome_message_without_ci():
    outcome = GateOutcome(
        "t", "m", "l", "auc", None, 0.5, "fail", "min 0.900", float("nan"), float("nan"), "< min 0.900"
    )
    assert outcome.message() == "t · m · l: auc 0.500 < min 0.900"
