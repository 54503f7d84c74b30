"""Gates through pytest: the failing cell's test fails with one line per gate; baselines; xdist;
the compare CLI; bad gate input."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

VERIF_ONLY = ("verif",)


def grid_with(bench, thresholds: str, models=("pixels",)) -> None:
    task = bench.TASKS["verif"] + f"thresholds = [{thresholds}]\n"
    bench.grid(models=models, tasks=()).write_text(bench.grid_text(models, ()) + task)
    bench.test_file()


def auc_of(bench, model="pixels") -> float:
    results = bench.results()
    row = results[(results["model"] == model) & (results["metric"] == "auc")]
    return float(row["value"].iloc[0])


def test_threshold_pass_and_fail_with_the_exact_message(bench):
    grid_with(bench, '{ metric = "auc", min = 0.0 }')
    bench.run().assert_outcomes(passed=1)
    auc = auc_of(bench)
    results = bench.results()
    assert results.loc[results["metric"] == "auc", "gate"].tolist() == ["pass"]
    assert results.loc[results["metric"] == "eer", "gate"].tolist() == ["none"]

    grid_with(bench, '{ metric = "auc", min = 0.999 }, { metric = "accuracy", min = 0.999 }')
    result = bench.run()
    result.assert_outcomes(failed=1)
    row = bench.results().set_index("metric").loc["auc"]
    expected = f"verif · pixels · output: auc {auc:.3f} < min 0.999 (95% CI {row['ci_low']:.2f}–{row['ci_high']:.2f})"
    assert expected in result.stdout.str()
    assert "verif · pixels · output: accuracy " in result.stdout.str()  # every failing gate, not the first
    assert bench.results().set_index("metric").loc["auc", "gate"] == "fail"
    bench.assert_no_traceback(result)


def test_max_for_a_lower_is_better_metric(bench):
    grid_with(bench, '{ metric = "eer", max = 0.0001 }')
    result = bench.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*verif · pixels · output: eer * > max 0.000*"])
    grid_with(bench, '{ metric = "eer", max = 1.0 }')
    bench.run().assert_outcomes(passed=1)


def test_expect_argument_and_marker(bench):
    bench.grid(models=("pixels",), tasks=VERIF_ONLY)
    bench.test_file("""
import pytest

def test_arg(model, accuracy_task, facebench):
    facebench.evaluate(model, accuracy_task, expect={"auc": (">=", 0.999)})

@pytest.mark.facebench_expect(auc=("<=", 1.0))
def test_marker(model, accuracy_task, facebench):
    facebench.evaluate(model, accuracy_task)
""")
    result = bench.run()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*verif · pixels · output: auc * < min 0.999*"])


def test_baseline_save_compare_regression_and_gate_ci(bench):
    bench.grid(models=("pixels",), tasks=VERIF_ONLY)
    bench.test_file()
    baseline = bench.path / "baseline.json"
    bench.run("--facebench-save-baseline", str(baseline)).assert_outcomes(passed=1)
    data = json.loads(baseline.read_text())
    key = "verif|pixels|output|auc|"
    assert data["format"] == "facebench-baseline/1" and key in data["cells"]
    assert data["cells"][key]["provenance"]["preprocessing"]

    bench.run("--facebench-baseline", str(baseline)).assert_outcomes(passed=1)

    # A better baseline: this run is now a regression...
    data["cells"][key]["value"] += 0.03
    baseline.write_text(json.dumps(data))
    result = bench.run("--facebench-baseline", str(baseline))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*verif · pixels · output: auc * < baseline * by 0.030 (tolerance 0.010)*"])
    # ...within noise when the baseline value lies inside this run's CI
    bench.run("--facebench-baseline", str(baseline), "--facebench-gate-ci").assert_outcomes(passed=1)
    # ...and within a larger tolerance
    bench.run("--facebench-baseline", str(baseline), "--facebench-max-drop", "0.05").assert_outcomes(passed=1)
    # a cell the baseline never saw is new, not failed
    del data["cells"][key]
    baseline.write_text(json.dumps(data))
    bench.run("--facebench-baseline", str(baseline)).assert_outcomes(passed=1)
    results = bench.results()
    assert results.loc[results["metric"] == "auc", "gate"].tolist() == ["new"]


def test_gates_under_xdist(bench):
    grid_with(bench, '{ metric = "auc", min = 0.999 }', models=("pixels", "tiny"))
    baseline = bench.path / "baseline.json"
    result = bench.run_subprocess("-n", "2", "--facebench-save-baseline", str(baseline))
    result.assert_outcomes(failed=2)
    for line in ("*verif · pixels · output: auc * < min 0.999*", "*verif · tiny · fc: auc * < min 0.999*"):
        result.stdout.fnmatch_lines([line])  # one at a time: workers finish in any order
    assert (bench.results()["gate"] == "fail").sum() == 2
    assert baseline.is_file()


def test_history_appends_a_line_per_run(bench):
    grid_with(bench, '{ metric = "auc", min = 0.0 }')
    bench.run()
    bench.run()
    lines = (bench.out / "history.jsonl").read_text().splitlines()
    assert len(lines) == 2
    entry = json.loads(lines[-1])
    assert entry["gates"]["pass"] == 1
    assert entry["outcomes"] == {"passed": 1}
    assert any(key.startswith("verif|pixels|output|") for key in entry["headline"])


@pytest.mark.parametrize(
    "thresholds,message",
    [
        ('{ metric = "acc", min = 0.5 }', "unknown metric 'acc' for this task; valid metrics: accuracy"),
        ('{ metric = "auc", min = 0.9, max = 0.8 }', "min 0.9 is greater than max 0.8"),
    ],
)
def test_bad_thresholds_fail_their_task_clearly(bench, thresholds, message):
    grid_with(bench, thresholds)
    result = bench.run()
    assert message in result.stdout.str()
    assert "facebench.toml" in result.stdout.str()
    bench.assert_no_traceback(result)


def test_corrupt_or_missing_baseline_is_a_usage_error(bench):
    bench.grid(models=("pixels",), tasks=VERIF_ONLY)
    bench.test_file()
    (bench.path / "bad.json").write_text("{ nope")
    result = bench.run("--facebench-baseline", str(bench.path / "bad.json"))
    assert "bad.json is not valid JSON" in result.stderr.str()
    result = bench.run("--facebench-baseline", str(bench.path / "missing.json"))
    assert "baseline file not found" in result.stderr.str()


def test_compare_cli_exit_codes(bench):
    grid_with(bench, '{ metric = "auc", min = 0.0 }')
    old, new = bench.path / "old", bench.path / "new"
    bench.run(out=old)
    bench.run(out=new)
    cmd = [sys.executable, "-m", "pytest_facebench", "compare", str(old), str(new)]
    same = subprocess.run(cmd, capture_output=True, text=True)
    assert same.returncode == 0, same.stderr
    assert "0 regressions" in same.stdout
    frame = pd.read_csv(new / "results.csv")
    frame.loc[frame["metric"] == "auc", "value"] -= 0.2
    frame.to_csv(new / "results.csv", index=False)
    worse = subprocess.run(cmd, capture_output=True, text=True)
    assert worse.returncode == 1
    assert "regression" in worse.stdout and "auc" in worse.stdout
    assert subprocess.run(cmd + ["--max-drop", "0.5"], capture_output=True, text=True).returncode == 0
    missing = subprocess.run(
        [sys.executable, "-m", "pytest_facebench", "compare", str(old), str(bench.path / "x")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "x does not exist; expected a --facebench-out directory" in missing.stderr
    (bench.path / "empty").mkdir()
    empty = subprocess.run(
        [sys.executable, "-m", "pytest_facebench", "compare", str(old), str(bench.path / "empty")],
        capture_output=True,
        text=True,
    )
    assert empty.returncode == 2 and "has no results.csv" in empty.stderr


def test_report_html_lists_gates_and_comparisons(bench):
    grid_with(bench, '{ metric = "auc", min = 0.999 }', models=("pixels", "tiny"))
    bench.run("-p", "no:xdist")
    html = (bench.out / "report.html").read_text()
    assert '<section id="gates">' in html and "0 passed, 2 failed" in html
    assert '<section id="comparisons">' in html
    assert "between pixels and tiny on auc" in html or "beats" in html
