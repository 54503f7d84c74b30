"""Issue 23: `--facebench-sweep` expands an entry per value (`pixels[size:8]`), selectable with `-k`, under
xdist and shards; tables add an aggregate row (mean ± SD across the values, with the t-interval of the mean)."""

from __future__ import annotations

import io
import json
import math
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pytest_facebench.__main__ import main

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SWEEP = "models.pixels.kwargs.size=8,12,16"
VARIANTS = ["pixels[size:8]", "pixels[size:12]", "pixels[size:16]"]


def _auc(frame: pd.DataFrame, model: str) -> float:
    return float(frame.query(f"model == '{model}' and task == 'verif' and metric == 'auc'")["value"].item())


def test_a_sweep_runs_one_entry_per_value_under_xdist_equal_to_overrides(bench) -> None:
    bench.grid(models=("pixels", "tiny"), tasks=("verif",))
    bench.test_file()
    ids = bench.collected_ids(bench.run("--facebench-sweep", SWEEP, "--collect-only", "-q"))
    assert ids == [*(f"test_bench.py::test_x[{v}-verif]" for v in VARIANTS), "test_bench.py::test_x[tiny-verif]"]
    # -k selects one variant by its name
    ids = bench.collected_ids(bench.run("--facebench-sweep", SWEEP, "-k", "pixels[size:12]", "--collect-only", "-q"))
    assert ids == ["test_bench.py::test_x[pixels[size:12]-verif]"]

    result = bench.run_subprocess("--facebench-sweep", SWEEP, "-n", "2", "-k", "pixels")
    result.assert_outcomes(passed=3)
    swept = bench.results()
    assert list(dict.fromkeys(swept["model"])) == VARIANTS
    for size, variant in zip((8, 12, 16), VARIANTS):
        single = bench.path / f"single{size}"
        bench.run("--facebench-set", f"models.pixels.kwargs.size={size}", "-k", "pixels", out=single)
        assert _auc(swept, variant) == _auc(bench.results(single), "pixels")


def test_the_table_has_an_aggregate_row_across_the_sweep(bench, capsys: pytest.CaptureFixture[str]) -> None:
    bench.grid(models=("pixels",), tasks=("verif",))
    bench.test_file()
    bench.run("--facebench-sweep", SWEEP).assert_outcomes(passed=3)
    values = [_auc(bench.results(), v) for v in VARIANTS]
    mean, sd = float(np.mean(values)), float(np.std(values, ddof=1))
    low, high = stats.t.interval(0.95, 2, loc=mean, scale=sd / math.sqrt(3))
    capsys.readouterr()  # the run's own output

    assert main(["table", str(bench.out), "--format", "csv", "--metrics", "verif/auc"]) == 0
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out))
    row = frame[frame["model"] == "pixels (across sizes)"].iloc[0]
    assert list(frame["model"]) == [*VARIANTS, "pixels (across sizes)"]
    assert row["verif / auc"] == pytest.approx(mean, abs=1e-12)
    assert row["verif / auc [sd]"] == pytest.approx(sd, abs=1e-12)
    assert (row["verif / auc [ci_low]"], row["verif / auc [ci_high]"]) == pytest.approx((low, high), abs=1e-12)

    assert main(["table", str(bench.out), "--format", "latex", "--metrics", "verif/auc", "--digits", "3"]) == 0
    latex = capsys.readouterr().out
    assert f"pixels (across sizes) & output & {mean:.3f} $\\pm$ {sd:.3f} (3 sizes) \\\\" in latex
    assert main(["table", str(bench.out), "--metrics", "verif/auc", "--digits", "3"]) == 0
    assert f"{mean:.3f} ± {sd:.3f} [{low:.3f}, {high:.3f}] (3 sizes)" in capsys.readouterr().out


def test_shards_of_a_sweep_merge_into_the_whole_sweep(bench, tmp_path) -> None:
    bench.grid(models=("pixels", "tiny"), tasks=("verif", "sim"))
    bench.test_file()
    for k in (1, 2):
        bench.run("--facebench-sweep", SWEEP, "--facebench-shard", f"{k}/2")
    dirs = [bench.out / f"shard-{k}-of-2" for k in (1, 2)]
    assert main(["report", *map(str, dirs), "--out", str(tmp_path / "merged"), "--no-plots"]) == 0
    merged = pd.read_csv(tmp_path / "merged" / "results.csv")
    assert set(zip(merged["model"], merged["task"])) == {(m, t) for m in [*VARIANTS, "tiny"] for t in ("verif", "sim")}
    # the merged folder keeps the effective grid (grid.toml), the same as each shard's
    saved = [tomllib.loads((d / "grid.toml").read_text()) for d in (*dirs, tmp_path / "merged")]
    assert [m["name"] for m in saved[2]["models"]] == [*VARIANTS, "tiny"]
    assert {json.dumps({k: v for k, v in g.items() if k != "run"}, sort_keys=True) for g in saved} == {
        json.dumps({k: v for k, v in saved[0].items() if k != "run"}, sort_keys=True)
    }


@pytest.mark.parametrize(
    ("sweep", "message"),
    [
        (
            "models.pixels.kwargs.sise=8,16",
            "--facebench-sweep models.pixels.kwargs.sise: unknown key 'sise' in models.pixels.kwargs "
            "(did you mean 'size'?)*",
        ),
        ("models.pixel.kwargs.size=8,16", "--facebench-sweep models.pixel.kwargs.size: no model named 'pixel'*"),
        (
            "models.pixels.kwargs.size=8,big",
            '--facebench-sweep models.pixels.kwargs.size: expected an integer like the grid\'s 16, got "big"',
        ),
        ("defaults.n_boot=10,20", "--facebench-sweep defaults.n_boot: sweep a model or task key*"),
    ],
)
def test_bad_sweeps_are_one_line_naming_the_key(bench, sweep: str, message: str) -> None:
    bench.grid(models=("pixels",), tasks=("verif",))
    bench.test_file()
    result = bench.run("--facebench-sweep", sweep)
    assert result.ret != 0
    result.stdout.fnmatch_lines([f"*facebench: {message}"])
    bench.assert_no_traceback(result)
