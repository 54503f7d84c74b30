"""A task type defined outside the package (`type = "mytasks.py:SameDiffGap"` in the grid) works end to end like a
built-in one: its options are checked, its `<type>_task` fixture exists, its metrics reach results.csv with CIs
and their directions reach run.json, gates and `compare` use them, models are compared on its headline, its
declared figure is drawn and reported with the axis labels and reference line it declares (also where the class
is never imported), and xdist gives the same numbers as a serial run.

The type is one small class in the pytester directory: a `label` role, a typed option with a default (`scale`),
a higher-is-better headline from `statistic` (so its CI and model comparisons come from the default machinery)
plus per-group means for its declared `group_bars` figure, and the `axes` of both metrics (labels, a no-gap line).
"""

from __future__ import annotations

import base64
import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

N_BOOT = 200

MY_TASKS = '''
from __future__ import annotations

from pathlib import Path

import numpy as np

from pytest_facebench.errors import ConfigError, DataError
from pytest_facebench.outputs.metrics import Axis, MetricInfo
from pytest_facebench.tasks.base import BaseTask


def _weighted_mean(values, counts):
    with np.errstate(invalid="ignore", divide="ignore"):
        return (counts * values).sum(axis=1) / counts.sum(axis=1)


class SameDiffGap(BaseTask):
    """scale × (mean distance of different-identity pairs − mean distance of same-identity pairs)."""

    type = "same_diff_gap"
    headline = "gap"
    metrics = {
        "gap": MetricInfo("Same/different gap", "higher"),
        "group_mean": MetricInfo("Group Mean", None),
    }
    figures = ("group_bars",)
    axes = {
        "gap": Axis("different − same pairs: mean {distance}", chance=0.0, chance_label="no gap"),
        "group_mean": Axis("mean {distance} of the pairs"),
    }
    roles = {"label": "label"}

    def __init__(
        self,
        name: str,
        pairs: str | Path,
        images: str | Path,
        distance: str = "cosine",
        columns: dict[str, str] | None = None,
        scale: float = 1.0,
        n_boot: int = 1000,
        seed: int = 0,
        ci: float = 0.95,
    ):
        super().__init__(name, pairs, images, distance, columns, n_boot=n_boot, seed=seed, ci=ci)
        if not scale > 0:
            raise ConfigError(f"task '{name}': scale must be > 0, got {scale!r}")
        self.scale = float(scale)
        self.same = np.empty(0, dtype=bool)

    def _validate(self, table):
        labels = table[self.columns["label"]].astype(str).str.strip()
        if not labels.isin(["0", "1"]).all():
            raise DataError(f"{self.pairs_path}: column '{self.columns['label']}' must hold 0 or 1")
        self.same = (labels == "1").to_numpy()

    @staticmethod
    def statistic(values, counts, scoring):
        same = np.asarray(scoring["same"], dtype=bool)
        diff = _weighted_mean(values[~same], counts[:, ~same]) - _weighted_mean(values[same], counts[:, same])
        return scoring["scale"] * diff

    def scoring(self):
        return {**super().scoring(), "same": self.same.astype(int).tolist(), "scale": self.scale}

    def score(self, distances):
        values = np.asarray(distances, dtype=float)
        out = super().score(values)
        for group, mask in (("same", self.same), ("different", ~self.same)):
            out.append(
                self.metric(
                    "group_mean", float(values[mask].mean()), condition=group, protocol="mean", n=int(mask.sum())
                )
            )
        return out
'''


def gap_task(name: str = "gap", extra: str = "") -> str:
    return f"""
[[tasks]]
name = "{name}"
type = "mytasks.py:SameDiffGap"
pairs = "data/verif.csv"
images = "data/images"
n_boot = {N_BOOT}
{extra}"""


def setup(bench, extra: str = "", models=("pixels", "tiny"), tasks: str | None = None) -> None:
    """mytasks.py, a grid with the 'gap' task (plus `tasks` entries) and the standard test file."""
    (bench.path / "mytasks.py").write_text(MY_TASKS, encoding="utf-8")
    bench.grid(models=models, tasks=(), extra=gap_task(extra=extra) if tasks is None else tasks)
    bench.test_file()


def rows_of(frame: pd.DataFrame, metric: str = "gap", task: str = "gap") -> pd.DataFrame:
    return frame[(frame["task"] == task) & (frame["metric"] == metric)]


def expected_gap(bench, model: str, layer: str, scale: float = 1.0, out=None) -> float:
    """The gap recomputed from the saved per-pair distances (distances/<task>/<model>.csv)."""
    table = pd.read_csv((out or bench.out) / "distances" / "gap" / f"{model}.csv")
    same = table["label"] == 1
    return scale * (table.loc[~same, layer].mean() - table.loc[same, layer].mean())


# --- 1. options ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "option,message",
    [
        ('scale = "big"', "tasks[0] ('gap'): option.scale must be float or int"),
        ("scal = 2.0", "tasks[0] ('gap'): unknown key 'scal'; did you mean 'scale'?"),
    ],
    ids=["wrong_type", "unknown"],
)
def test_bad_options_are_one_line_errors_naming_the_grid_entry(bench, option, message):
    setup(bench, extra=option)
    result = bench.run()
    assert result.ret != 0
    text = result.stdout.str()
    lines = [line for line in result.outlines if message in line]
    assert lines, text
    assert "facebench.toml" in lines[0], lines[0]
    bench.assert_no_traceback(result)
    assert 'mytasks.py", line' not in text and "builders.py" not in text


def test_the_class_own_option_check_is_one_line(bench):
    setup(bench, extra="scale = -1.0", models=("pixels",))
    result = bench.run()
    result.assert_outcomes(errors=1)
    assert [line for line in result.outlines if "task 'gap': scale must be > 0, got -1.0" in line]
    bench.assert_no_traceback(result)
    assert 'mytasks.py", line' not in result.stdout.str()


def test_a_valid_option_reaches_the_task(bench):
    setup(bench, extra="scale = 2.0", models=("pixels",))
    bench.run().assert_outcomes(passed=1)
    value = float(rows_of(bench.results())["value"].iloc[0])
    assert value == pytest.approx(expected_gap(bench, "pixels", "output", scale=2.0), rel=1e-6)


# --- 2. the <type>_task fixture ----------------------------------------------------------------------
def test_typed_fixture_is_parametrized_over_its_own_entries_only(bench):
    (bench.path / "mytasks.py").write_text(MY_TASKS, encoding="utf-8")
    bench.grid(tasks=("verif",), extra=gap_task() + gap_task("gap2", "scale = 3.0"))
    bench.test_file("""
        def test_gap(model, same_diff_gap_task, facebench):
            assert type(same_diff_gap_task).__name__ == "SameDiffGap"
            assert same_diff_gap_task.type == "same_diff_gap"
            assert same_diff_gap_task.scale == {"gap": 1.0, "gap2": 3.0}[same_diff_gap_task.name]
            facebench.evaluate(model, same_diff_gap_task)

        def test_acc(model, accuracy_task):
            assert accuracy_task.name == "verif"

        def test_each(task):
            pass
    """)
    ids = bench.collected_ids(bench.run("--collect-only", "-q"))
    by_test: dict[str, list[str]] = {}
    for node in ids:
        name, _, param = node.split("::")[1].partition("[")
        by_test.setdefault(name, []).append(param.rstrip("]"))
    assert by_test == {
        "test_gap": ["pixels-gap", "pixels-gap2", "tiny-gap", "tiny-gap2"],
        "test_acc": ["pixels-verif", "tiny-verif"],
        "test_each": ["verif", "gap", "gap2"],
    }
    result = bench.run()
    result.assert_outcomes(passed=len(ids))
    results = bench.results()
    assert set(results["task_type"]) == {"same_diff_gap"}
    assert set(results["task"]) == {"gap", "gap2"}


# --- 3. results.csv and run.json ------------------------------------------------------------------
def test_results_have_finite_cis_the_headline_flag_and_run_json_the_vocabulary(bench):
    setup(bench)
    bench.run().assert_outcomes(passed=2)
    results = bench.results()
    gap = rows_of(results)
    assert sorted(zip(gap["model"], gap["layer"])) == [("pixels", "output"), ("tiny", "conv"), ("tiny", "fc")]
    assert (gap["task_type"] == "same_diff_gap").all()
    for row in gap.to_dict("records"):
        assert all(math.isfinite(row[c]) for c in ("value", "ci_low", "ci_high"))
        assert row["ci_low"] <= row["value"] <= row["ci_high"]
        assert row["ci_low"] < row["ci_high"]
        assert row["n"] == len(bench.pairs["verif"])
        assert f"bootstrap({N_BOOT}, pairs)" in row["ci_method"]
        assert row["value"] == pytest.approx(expected_gap(bench, row["model"], row["layer"]), rel=1e-6)
    assert gap["headline"].map(lambda v: str(v).lower() == "true").all()
    groups = rows_of(results, "group_mean")
    assert sorted(set(groups["condition"])) == ["different", "same"]
    assert not groups["headline"].map(lambda v: str(v).lower() == "true").any()

    run = json.loads((bench.out / "run.json").read_text())
    assert run["metrics"]["gap"] == {"display": "Same/different gap", "direction": "higher"}
    summary = pd.read_csv(bench.out / "summary.csv").set_index(["model", "layer"])
    for row in gap.to_dict("records"):
        assert summary.loc[(row["model"], row["layer"]), "gap / gap"] == pytest.approx(row["value"])


# --- 4. gates ------------------------------------------------------------------------------------------
def test_thresholds_on_its_metric_pass_and_fail_the_cell(bench):
    setup(bench, extra='thresholds = [{ metric = "gap", min = -10.0 }]', models=("pixels",))
    bench.run().assert_outcomes(passed=1)
    results = bench.results()
    assert rows_of(results)["gate"].tolist() == ["pass"]
    value = float(rows_of(results)["value"].iloc[0])

    setup(bench, extra='thresholds = [{ metric = "gap", min = 10.0 }]', models=("pixels",))
    result = bench.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*gap · pixels · output: gap {value:.3f} < min 10*"])
    assert rows_of(bench.results())["gate"].tolist() == ["fail"]
    bench.assert_no_traceback(result)


def test_unknown_threshold_metric_lists_its_valid_metrics(bench):
    setup(bench, extra='thresholds = [{ metric = "gapp", min = 0.0 }]', models=("pixels",))
    result = bench.run()
    assert result.ret != 0
    lines = [line for line in result.outlines if "unknown metric 'gapp' for this task; valid metrics: " in line]
    assert lines, result.stdout.str()
    assert "gap, group_mean" in lines[0] and "facebench.toml" in lines[0]
    bench.assert_no_traceback(result)


# --- 5. comparisons --------------------------------------------------------------------------------------
def test_comparisons_pair_two_models_on_its_headline(bench):
    setup(bench)
    bench.run().assert_outcomes(passed=2)
    comparisons = pd.read_csv(bench.out / "comparisons.csv")
    rows = comparisons[(comparisons["task"] == "gap") & (comparisons["metric"] == "gap")]
    assert len(rows) == 1, comparisons.to_string()
    row = rows.iloc[0].to_dict()
    assert {row["model_a"], row["model_b"]} == {"pixels", "tiny"}
    assert f"paired bootstrap({N_BOOT}, pairs) of SameDiffGap.statistic" in row["test"]
    results = bench.results()
    readout = rows_of(results)
    readout = readout[readout["readout"].map(lambda v: str(v).lower() == "true")].set_index("model")["value"]
    assert row["value_a"] == pytest.approx(readout[row["model_a"]])
    assert row["value_b"] == pytest.approx(readout[row["model_b"]])
    assert row["diff"] == pytest.approx(row["value_a"] - row["value_b"])
    assert all(math.isfinite(row[c]) for c in ("ci_low", "ci_high", "p_value"))
    assert row["ci_low"] <= row["diff"] <= row["ci_high"]
    assert 0 <= row["p_value"] <= 1


# --- 6. figures and report -------------------------------------------------------------------------------
def test_declared_figure_is_drawn_and_the_report_has_its_section(bench):
    setup(bench)
    bench.run().assert_outcomes(passed=2)
    manifest = json.loads((bench.out / "plots" / "manifest.json").read_text())
    assert manifest["figures"]["gap"] == ["group_bars"]
    assert not [e for e in manifest["errors"] if e.get("task") == "gap"], manifest["errors"]
    mine = [p for p in manifest["plots"] if p["task"] == "gap"]
    groups = [p for p in mine if p["kind"] == "conditions" and "group_mean" in p["file"]]
    assert len(groups) == 1, mine
    assert (bench.out / groups[0]["file"]).is_file()
    assert (bench.out / groups[0]["file"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (bench.out / "report.html").read_text()
    start = html.index('<section id="task-gap"><h2>gap</h2>')
    section = html[start : html.index("</section>", start)]
    assert "type <code>same_diff_gap</code>" in section
    assert "headline <b>Same/different gap</b>" in section
    png = base64.b64encode((bench.out / groups[0]["file"]).read_bytes()).decode("ascii")
    assert f"data:image/png;base64,{png}" in section  # the figure is embedded in the task's own section


DRAW_WITHOUT_THE_CLASS = """
import json, sys
from pathlib import Path
from pytest_facebench.outputs.gates import register_saved_metrics
from pytest_facebench.report.plots import draw_figures

out = Path(sys.argv[1])
register_saved_metrics(out / "run.json")  # what `facebench report DIR` does: the run's own vocabulary
figures = {(info.task, info.kind): fig for info, fig in draw_figures(out)}
bars, groups = figures[("gap", "headline")].axes[0], figures[("gap", "conditions")].axes[0]
print(json.dumps({
    "headline": bars.get_xlabel(),
    "chance": [(line.get_label(), list(line.get_xdata())) for line in bars.get_lines() if line.get_gid() == "chance"],
    "groups": groups.get_ylabel(),
    "imported": sorted(m for m in sys.modules if "mytasks" in m),
}))
"""


def test_its_declared_axes_label_its_figures_also_where_the_class_is_never_imported(bench, tmp_path):
    setup(bench)
    bench.run().assert_outcomes(passed=2)
    run = json.loads((bench.out / "run.json").read_text())
    declared = run["task_types"]["same_diff_gap"]
    assert declared["figures"] == ["group_bars"] and declared["headline"] == "gap"
    assert declared["axes"]["gap"]["label"] == "different − same pairs: mean {distance}"
    assert declared["axes"]["gap"]["chance"] == 0.0 and declared["axes"]["gap"]["chance_label"] == "no gap"
    script = tmp_path / "draw.py"
    script.write_text(DRAW_WITHOUT_THE_CLASS, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script), str(bench.out)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    drawn = json.loads(done.stdout.splitlines()[-1])
    assert drawn == {
        "headline": "different − same pairs: mean cosine distance",
        "chance": [["no gap (0)", [0.0, 0.0]]],
        "groups": "mean cosine distance of the pairs",
        "imported": [],
    }


# --- 7. compare CLI in a process that never imports mytasks.py -------------------------------------------
def test_compare_cli_flags_a_drop_of_its_higher_is_better_headline(bench, tmp_path):
    setup(bench, models=("pixels",))
    old, new = bench.path / "old", bench.path / "new"
    bench.run(out=old).assert_outcomes(passed=1)
    bench.run(out=new).assert_outcomes(passed=1)
    cmd = [sys.executable, "-m", "pytest_facebench", "compare", str(old), str(new)]

    def compare() -> subprocess.CompletedProcess[str]:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)  # mytasks.py is not there

    same = compare()
    assert same.returncode == 0, same.stdout + same.stderr
    assert "0 regressions" in same.stdout
    frame = pd.read_csv(new / "results.csv")
    frame.loc[(frame["task"] == "gap") & (frame["metric"] == "gap"), "value"] -= 0.5
    frame.to_csv(new / "results.csv", index=False)
    worse = compare()
    assert worse.returncode == 1, worse.stdout + worse.stderr
    assert "1 regressions" in worse.stdout
    assert any("gap" in line and "regression" in line for line in worse.stdout.splitlines()), worse.stdout
    frame.loc[(frame["task"] == "gap") & (frame["metric"] == "gap"), "value"] += 1.0
    frame.to_csv(new / "results.csv", index=False)
    better = compare()  # higher is better: a rise is an improvement, not a regression
    assert better.returncode == 0, better.stdout + better.stderr
    assert "0 regressions, 1 improvements" in better.stdout


# --- 8. xdist ---------------------------------------------------------------------------------------------
def test_xdist_gives_the_serial_values(bench):
    setup(bench)
    serial, parallel = bench.path / "serial", bench.path / "parallel"
    bench.run(out=serial).assert_outcomes(passed=2)
    result = bench.run_subprocess("-n", "2", out=parallel)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*2 workers*"])
    keys = ["model", "layer", "task", "metric", "condition"]
    columns = ["value", "ci_low", "ci_high", "n", "headline", "readout", "task_type"]
    a = pd.read_csv(serial / "results.csv").sort_values(keys, na_position="first").reset_index(drop=True)
    b = pd.read_csv(parallel / "results.csv").sort_values(keys, na_position="first").reset_index(drop=True)
    assert len(a) == len(b) > 0
    pd.testing.assert_frame_equal(a[keys + columns], b[keys + columns])
    assert np.isfinite(rows_of(b)["ci_low"]).all()
    assert json.loads((parallel / "run.json").read_text())["metrics"]["gap"]["direction"] == "higher"
    comparisons = pd.read_csv(parallel / "comparisons.csv")
    assert ((comparisons["task"] == "gap") & (comparisons["metric"] == "gap")).sum() == 1
    # the controller never imported mytasks.py: the figure kinds and axes it declares still reach the report
    declared = json.loads((parallel / "run.json").read_text())["task_types"]["same_diff_gap"]
    assert declared["axes"]["group_mean"]["label"] == "mean {distance} of the pairs"
    manifest = json.loads((parallel / "plots" / "manifest.json").read_text())
    assert manifest["figures"]["gap"] == ["group_bars"]
    assert [p["file"] for p in manifest["plots"] if p["task"] == "gap" and "group_mean" in p["file"]]


def test_options_of_a_constructor_that_passes_kwargs_on_include_the_base_options():
    from pytest_facebench.grid.config import _task_options
    from pytest_facebench.tasks import BaseTask

    class Forwarding(BaseTask):
        type = "forwarding"

        def __init__(self, *args, scale: float = 1.0, **kwargs):
            super().__init__(*args, **kwargs)

    class Closed(BaseTask):
        type = "closed"

        def __init__(self, name, pairs, images, distance="cosine", columns=None, scale: float = 1.0):
            super().__init__(name, pairs, images, distance, columns)

    assert _task_options(Forwarding) == {"scale", "n_boot", "seed", "ci"}
    assert _task_options(Closed) == {"scale"}
