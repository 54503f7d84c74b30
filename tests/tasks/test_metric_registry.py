"""One metric id, one meaning: a task class that declares an id another class declared with a different display
name or direction fails at once, naming the id and both classes; the same spec again is fine. What other
processes and saved runs report fills gaps and never overrides or contradicts a declaration. A task type's figure
vocabulary (`axes`: labels, chance lines, ceilings) is declared on its class and travels as JSON the same way."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pytest_facebench.errors import ConfigError
from pytest_facebench.outputs import metrics
from pytest_facebench.outputs.gates import register_saved_metrics
from pytest_facebench.outputs.metrics import (
    HIGHER,
    LOWER,
    Axis,
    MetricInfo,
    TaskTypeInfo,
    metric_info,
    metric_vocabulary,
    remember_scoring,
    task_type_info,
)
from pytest_facebench.report.figures.labels import chance_level, metric_label
from pytest_facebench.tasks import AccuracyTask
from pytest_facebench.tasks.base import BaseTask

HERE = __name__


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    """Each test declares on a copy of the registry, so its classes leave nothing behind."""
    monkeypatch.setattr(metrics, "METRICS", metrics.METRICS.copy())
    monkeypatch.setattr(metrics, "_LEARNED", dict(metrics._LEARNED))
    monkeypatch.setattr(metrics, "_TASK_TYPES", dict(metrics._TASK_TYPES))


def test_a_different_second_declaration_names_the_id_and_both_classes():
    class First(BaseTask):
        metrics = {"gap_score": MetricInfo("Gap", HIGHER)}

    with pytest.raises(ConfigError) as caught:

        class Second(BaseTask):
            metrics = {"gap_score": MetricInfo("Gap", LOWER)}

    message = str(caught.value)
    assert "metric 'gap_score'" in message
    assert f"{HERE}.{First.__qualname__}" in message
    assert f"{HERE}.test_a_different_second_declaration_names_the_id_and_both_classes.<locals>.Second" in message
    assert "('Gap', higher)" in message and "('Gap', lower)" in message
    assert "\n" not in message
    assert metric_info("gap_score") == MetricInfo("Gap", HIGHER)  # the first declaration still holds


def test_another_display_name_is_a_collision_too_and_so_is_one_against_a_built_in():
    with pytest.raises(ConfigError, match=r"metric 'auc' .* by pytest_facebench\.tasks\.verification\.AccuracyTask"):

        class MyAuc(BaseTask):
            metrics = {"auc": MetricInfo("Area under ROC", HIGHER)}

    class Plain(BaseTask):
        metrics = {"plain_score": MetricInfo("plain_score")}

    with pytest.raises(ConfigError, match=r"\('plain_score', no direction\) by .*Plain and \('Plain', no direction\)"):

        class Renamed(BaseTask):
            metrics = {"plain_score": MetricInfo("Plain")}


def test_the_same_spec_again_is_allowed_and_the_first_class_stays_the_declarer():
    class Original(BaseTask):
        metrics = {"twin_score": MetricInfo("Twin", HIGHER), "auc": AccuracyTask.metrics["auc"]}

    class Copy(BaseTask):
        metrics = {"twin_score": MetricInfo("Twin", HIGHER)}

    class Inherits(Original):  # a subclass declares its parent's metrics again
        pass

    assert metric_info("twin_score") == MetricInfo("Twin", HIGHER)
    assert metrics.METRICS.entry("twin_score").origin.endswith("<locals>.Original")
    assert metrics.METRICS.entry("auc").origin == "pytest_facebench.tasks.verification.AccuracyTask"


def test_a_class_declared_again_from_the_same_place_replaces_its_spec():
    def declare(direction: str) -> type[BaseTask]:
        class Reloaded(BaseTask):  # same module and qualname each time, as after importlib.reload
            metrics = {"reloaded_score": MetricInfo("Reloaded", direction)}

        return Reloaded

    declare(HIGHER)
    declare(LOWER)
    assert metric_info("reloaded_score").direction == LOWER


def test_learned_vocabulary_fills_gaps_but_never_overrides_or_collides(tmp_path):
    remember_scoring({"metrics": {"auc": ["AUC from elsewhere", LOWER], "far_score": ["Far", HIGHER]}})
    run_json = tmp_path / "run.json"
    run_json.write_text(json.dumps({"metrics": {"eer": {"display": "Old EER", "direction": HIGHER}}}))
    register_saved_metrics(run_json)
    assert metric_info("auc") == AccuracyTask.metrics["auc"]
    assert metric_info("eer") == AccuracyTask.metrics["eer"]
    assert metric_info("far_score") == MetricInfo("Far", HIGHER)
    assert metric_vocabulary()["auc"] == ("AUC", HIGHER) and metric_vocabulary()["far_score"] == ("Far", HIGHER)

    class Declares(BaseTask):  # a declaration after a learned spec: no error, and the declaration wins
        metrics = {"far_score": MetricInfo("Far (declared)", LOWER)}

    assert metric_info("far_score") == MetricInfo("Far (declared)", LOWER)


# --- a task type's figure vocabulary -----------------------------------------------------------------------
def test_a_task_class_declares_how_figures_show_its_metrics():
    class Steps(BaseTask):
        type = "steps_axes"
        headline = "step1"
        metrics = {"step1": MetricInfo("Step 1", HIGHER), "spread": MetricInfo("Spread", None)}
        axes = {
            "step*": Axis("share of steps ≤ {k} ({display})", chance=0.25),
            "spread": Axis("spread of {distance}\n{protocol}", when={"scaled": "scaled spread of {distance}"}),
        }

    info = task_type_info("steps_axes")
    assert info == Steps.type_info() and info.axis("step12") is Steps.axes["step*"] and info.axis("other") is None
    rows = pd.DataFrame(
        {"task_type": "steps_axes", "metric": ["step12", "spread"], "protocol": ["", ""], "distance": "euclidean"}
    )
    assert metric_label("step12", rows) == "share of steps ≤ 12 (step12)"  # {k}; an undeclared display name
    assert metric_label("spread", rows) == "spread of euclidean distance"  # an empty {protocol} line is dropped
    assert chance_level("step3", rows) == (0.25, "chance (0.25)") and chance_level("spread", rows) is None
    rows["protocol"] = ["", "Scaled by the mean"]
    assert metric_label("spread", rows) == "scaled spread of euclidean distance"  # `when` the protocol says so
    rows["task_type"] = "custom"
    assert metric_label("spread", rows) == "Spread" and chance_level("step3", rows) is None  # no type: no vocabulary


def test_declared_axes_travel_as_json_and_a_learned_type_never_overrides_a_declared_one():
    info = TaskTypeInfo(
        "gap",
        ("group_bars",),
        {"gap": Axis("gap of {distance}", chance=0.0, chance_label="no gap", ceiling=("gap_low", "gap_high"))},
        "gap",
    )
    assert TaskTypeInfo.from_json(json.loads(json.dumps(info.as_json()))) == info
    remember_scoring({"type": "learned_axes", "metrics": {}, **info.as_json()})  # as a cell's scoring carries it
    assert task_type_info("learned_axes") == info
    remember_scoring({"type": "accuracy", **info.as_json()})
    assert task_type_info("accuracy") == AccuracyTask.type_info()


def test_a_bad_axes_declaration_fails_at_once():
    with pytest.raises(ValueError, match="chance must be a number, one of"):
        Axis("x", chance="half")
    with pytest.raises(TypeError, match=r"Wrong\.axes must be a dict of metric id .* -> Axis"):

        class Wrong(BaseTask):
            axes = {"auc": "ROC AUC"}
