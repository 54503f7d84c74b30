"""One metric id, one meaning: a task class that declares an id another class declared with a different display
name or direction fails at once, naming the id and both classes; the same spec again is fine. What other
processes and saved runs report fills gaps and never overrides or contradicts a declaration."""

from __future__ import annotations

import json

import pytest

from pytest_facebench import metrics
from pytest_facebench.errors import ConfigError
from pytest_facebench.gates import register_saved_metrics
from pytest_facebench.metrics import HIGHER, LOWER, MetricInfo, metric_info, metric_vocabulary, remember_scoring
from pytest_facebench.tasks import AccuracyTask
from pytest_facebench.tasks.base import BaseTask

HERE = __name__


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    """Each test declares on a copy of the registry, so its classes leave nothing behind."""
    monkeypatch.setattr(metrics, "METRICS", metrics.METRICS.copy())
    monkeypatch.setattr(metrics, "_LEARNED", dict(metrics._LEARNED))


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
