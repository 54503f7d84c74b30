"""A task's `headline = "<metric>"` in the grid: the metric flagged `headline` in results.csv, shown in the
terminal table, summary.csv and `table`; validated when the grid is read and again when the cell is scored."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from testkit import one_line_failure

from pytest_facebench.report.numbers import ci_decimals


def verif_grid(bench, extra: str = "", models=("pixels",)) -> None:
    task = bench.TASKS["verif"] + extra
    bench.grid(models=models, tasks=()).write_text(bench.grid_text(models, ()) + task)
    bench.test_file()


def flagged(results: pd.DataFrame) -> set[str]:
    return set(results.loc[results["headline"].astype(bool) & results["readout"].astype(bool), "metric"])


def test_the_types_headline_by_default_and_the_grids_when_named(bench, tmp_path):
    verif_grid(bench)
    result = bench.run(cache=tmp_path / "cache")
    result.assert_outcomes(passed=1)
    assert flagged(bench.results()) == {"accuracy_kfold"}
    assert any(line.startswith("verif (Accuracy (k-fold))") for line in result.outlines), result.stdout.str()

    verif_grid(bench, 'headline = "auc"\n')  # the same cache: the choice is part of the cell's key
    result = bench.run(cache=tmp_path / "cache")
    result.assert_outcomes(passed=1)
    results = bench.results()
    assert flagged(results) == {"auc"}
    auc = results[(results["metric"] == "auc") & results["readout"].astype(bool)]
    # the AUC of 1 - distance (a distance is lower for a same pair) against the labels, as sklearn computes it
    distances = pd.read_csv(bench.out / "distances" / "verif" / "pixels.csv")
    oracle = roc_auc_score(distances["label"], -distances["output"])
    assert auc["value"].iloc[0] == pytest.approx(oracle, abs=1e-9)
    line = next(x for x in result.outlines if x.startswith("verif (AUC)"))
    value, low, high = (auc[c].iloc[0] for c in ("value", "ci_low", "ci_high"))
    places = ci_decimals(low, high)  # the terminal shows the decimals its CI needs
    assert f"{value:.{places}f} [{low:.{places}f}, {high:.{places}f}]" in line
    table = subprocess.run(
        [sys.executable, "-m", "pytest_facebench", "table", str(bench.out), "--format", "csv"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert table.stdout.splitlines()[0] == "model,layer,verif / auc,verif / auc [ci_low],verif / auc [ci_high]"


def test_a_family_metric_is_a_valid_headline(bench):
    verif_grid(bench, 'fars = [0.25]\nheadline = "tar_at_far_0.25"\n')
    bench.run().assert_outcomes(passed=1)
    assert flagged(bench.results()) == {"tar_at_far_0.25"}


def test_an_unknown_headline_names_the_grid_file_and_the_valid_metrics(bench):
    verif_grid(bench, 'headline = "acu"\n')
    result = bench.run()
    assert result.ret != 0
    text = result.stdout.str() + result.stderr.str()
    assert "headline 'acu' is not a metric of a 'accuracy' task; valid metrics: accuracy_kfold" in text
    assert "Did you mean 'auc'?" in text and "facebench.toml" in text
    bench.assert_no_traceback(result)


def test_a_headline_the_options_do_not_compute_fails_that_cell_in_one_line(bench):
    verif_grid(bench, 'headline = "tar_at_far_0.5"\n', models=("pixels", "tiny"))
    result = bench.run()
    result.assert_outcomes(failed=2)
    line = one_line_failure(result, "test_x[pixels-verif]")
    assert "task 'verif': its headline 'tar_at_far_0.5' is not among the metrics it computed" in line
    assert "auc" in line
    bench.assert_no_traceback(result)
