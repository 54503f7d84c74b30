"""Sharding the grid (issue 16): `--facebench-shard K/N` deselects the cells of other shards at collection, keeps
a model's cells together where the balance allows, writes `<out>/shard-K-of-N`, and the shards merge into the
outputs of a single run; bad shard values, shards of different grids, a cell computed twice with different values
and a shard that never finished are refused, naming what is wrong."""

from __future__ import annotations

import argparse
import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from pytest_facebench.errors import FacebenchError
from pytest_facebench.outputs.merge import merge_dirs as merge_shards
from pytest_facebench.runner.shards import Cell, Shard, load_durations, parse_shard, plan, shard_from_environment

TASKS = ("verif", "sim", "inv")


def run_shards(bench, count: int, *args: str):
    results = [bench.run("--facebench-shard", f"{k}/{count}", *args) for k in range(1, count + 1)]
    return results, [bench.out / f"shard-{k}-of-{count}" for k in range(1, count + 1)]


def test_three_shards_merged_equal_one_run(bench, tmp_path):
    bench.grid(models=("pixels", "tiny"), tasks=TASKS)
    bench.test_file()
    single = bench.run(out=tmp_path / "single")
    single.assert_outcomes(passed=6)
    results, dirs = run_shards(bench, 3)
    outcomes = [r.parseoutcomes() for r in results]
    assert sum(o.get("passed", 0) for o in outcomes) == 6
    assert all("skipped" not in o for o in outcomes)  # other shards' cells are deselected, not skipped
    assert sum(o.get("deselected", 0) for o in outcomes) == 12
    plans = [json.loads((d / "run.json").read_text())["shard"] for d in dirs]
    assert [p["index"] for p in plans] == [1, 2, 3] and all(p["count"] == 3 for p in plans)
    assert len({json.dumps(p["plan"], sort_keys=True) for p in plans}) == 1  # every shard planned the same
    merged = tmp_path / "merged"
    merge_shards(dirs, merged)
    want = pd.read_csv(tmp_path / "single" / "results.csv").sort_values(["model", "layer", "task", "metric"])
    got = pd.read_csv(merged / "results.csv").sort_values(["model", "layer", "task", "metric"])
    key = ["model", "layer", "task", "metric", "condition"]
    assert want[key].fillna("").values.tolist() == got[key].fillna("").values.tolist()
    for column in ("value", "ci_low", "ci_high", "n"):
        np.testing.assert_allclose(got[column].to_numpy(float), want[column].to_numpy(float), atol=1e-9, rtol=0)
    comparisons = [
        pd.read_csv(p / "comparisons.csv").sort_values(["task", "metric"]) for p in (tmp_path / "single", merged)
    ]
    assert len(comparisons[1]) == len(comparisons[0]) > 0  # recomputed across models of different shards
    np.testing.assert_allclose(comparisons[1]["diff"].to_numpy(float), comparisons[0]["diff"].to_numpy(float))
    run = json.loads((merged / "run.json").read_text())
    assert [s["index"] for s in run["shards"]] == [1, 2, 3] and all(s["host"] for s in run["shards"])
    assert (merged / "report.html").is_file()


def test_a_missing_shard_or_an_unfinished_cell_stops_the_merge(bench, tmp_path):
    bench.grid(models=("pixels", "tiny"), tasks=TASKS)
    bench.test_file()
    _, dirs = run_shards(bench, 2)
    with pytest.raises(
        FacebenchError,
        match=r"cannot merge: shard\(s\) 2/2 not given; \d+ planned cell\(s\) did "
        r"not finish: test_bench\.py::test_x\[",
    ):
        merge_shards(dirs[:1], tmp_path / "m1")
    broken = tmp_path / "broken"
    shutil.copytree(dirs[1], broken)
    victim = sorted((broken / "cells").glob("*.json"))[0]
    nodeid = json.loads(victim.read_text())["nodeid"]
    victim.unlink()
    with pytest.raises(FacebenchError, match=r"1 planned cell\(s\) did not finish: " + re.escape(nodeid)):
        merge_shards([dirs[0], broken], tmp_path / "m2")
    assert not (tmp_path / "m2" / "report.html").exists()


def test_shards_of_different_grids_and_conflicting_cells_are_refused(bench, tmp_path):
    bench.grid(models=("pixels", "tiny"), tasks=TASKS)
    bench.test_file()
    _, dirs = run_shards(bench, 2)
    other = tmp_path / "other"
    shutil.copytree(dirs[1], other)
    run = json.loads((other / "run.json").read_text())
    run["grid"]["sha256"] = "0" * 64
    (other / "run.json").write_text(json.dumps(run))
    with pytest.raises(FacebenchError, match="the shards ran different grids and cannot be merged"):
        merge_shards([dirs[0], other], tmp_path / "m")
    twin = tmp_path / "twin"
    shutil.copytree(dirs[0], twin)
    record = sorted((twin / "cells").glob("*.json"))[0]
    data = json.loads(record.read_text())
    data["cells"][0]["records"][0]["value"] += 0.5
    record.write_text(json.dumps(data))
    with pytest.raises(FacebenchError, match="was run by two shards with different values"):
        merge_shards([dirs[0], dirs[1], twin], tmp_path / "m3")
    merge_shards([dirs[0], dirs[1], dirs[0]], tmp_path / "same")  # the same cell twice with equal values: fine


@pytest.mark.parametrize("value", ["0/3", "4/3", "a/b", "3", "1/0"])
def test_bad_shard_values_are_usage_errors(bench, value):
    bench.grid(models=("pixels",), tasks=("verif",))
    bench.test_file()
    result = bench.run("--facebench-shard", value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--facebench-shard" in result.stderr.str()
    with pytest.raises(argparse.ArgumentTypeError):
        parse_shard(value)


def test_auto_takes_the_slurm_array_task():
    env = {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "0"}
    assert shard_from_environment(env) == Shard(4, 4)
    assert shard_from_environment({**env, "SLURM_ARRAY_TASK_MIN": "1"}) == Shard(3, 4)
    with pytest.raises(ValueError, match="needs SLURM_ARRAY_TASK_ID"):
        shard_from_environment({})


def test_plan_keeps_models_together_and_balances_by_duration(tmp_path):
    cells = [
        Cell(f"t[{m}-{t}]", m, cost) for m, cost in (("a", 4.0), ("b", 3.0), ("c", 2.0), ("d", 1.0)) for t in ("x", "y")
    ] + [Cell("test_other", None, 0.0)]
    assignment = plan(cells, 2)
    for model in "abcd":
        assert assignment[f"t[{model}-x]"] == assignment[f"t[{model}-y]"]  # one load of each model per shard
    loads = [sum(c.cost for c in cells if assignment[c.nodeid] == k) for k in (1, 2)]
    assert loads == [10.0, 10.0] and assignment["test_other"] == 1
    big = [Cell(f"t[a-{i}]", "a", 1.0) for i in range(6)]
    split = plan(big, 3)
    assert sorted(split.values()) == [1, 1, 2, 2, 3, 3]  # one model alone: its cells are spread
    (tmp_path / "run.json").write_text(json.dumps({"tests": {"t[a-0]": {"duration_s": 2.5}, "x": {}}}))
    assert load_durations(tmp_path / "run.json") == {"t[a-0]": 2.5}


def test_the_report_command_merges_shards_and_names_a_missing_one(bench, tmp_path, capsys):
    from pytest_facebench.__main__ import main

    bench.grid(models=("pixels", "tiny"), tasks=TASKS)
    bench.test_file()
    _, dirs = run_shards(bench, 2)
    capsys.readouterr()
    assert main(["report", *map(str, dirs), "--out", str(tmp_path / "merged")]) == 0
    assert "merged 2 shards" in capsys.readouterr().out
    assert len(pd.read_csv(tmp_path / "merged" / "results.csv").groupby(["model", "task"])) == 6
    assert main(["report", str(dirs[0]), str(dirs[0]), "--out", str(tmp_path / "half")]) == 2
    err = capsys.readouterr().err
    assert "cannot merge: shard(s) 2/2 not given" in err and len(err.strip().splitlines()) == 1


def test_cache_command_reports_prunes_and_verifies_a_real_cache(bench, tmp_path, capsys):
    from pytest_facebench.__main__ import main

    bench.grid(models=("pixels",), tasks=("verif",))
    bench.test_file()
    cache = tmp_path / "cache"
    bench.run(cache=cache).assert_outcomes(passed=1)
    capsys.readouterr()  # the run's own output
    assert main(["cache", "info", "--cache", str(cache)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info, info
    assert main(["cache", "verify", "--cache", str(cache)]) == 0
    assert json.loads(capsys.readouterr().out)["problems"] == []
    assert main(["cache", "prune", "--cache", str(cache), "--older-than", "30d", "--dry-run"]) == 0
    capsys.readouterr()
    assert main(["cache", "prune", "--cache", str(cache), "--older-than", "soon"]) == 2
    assert "expected an age such as 30d, 12h, 45m or 90s, got 'soon'" in capsys.readouterr().err
    assert main(["cache", "info", "--cache", str(tmp_path / "nope")]) == 2


def test_submit_on_submitits_local_cluster_equals_a_single_run(bench, tmp_path, monkeypatch, capsys):
    """End to end: two shards as jobs of submitit's local cluster, then the merge; equal to one run."""
    pytest.importorskip("submitit")
    from pytest_facebench.__main__ import main

    bench.grid(models=("pixels", "tiny"), tasks=("verif", "sim"))
    bench.test_file()
    single = bench.run(out=tmp_path / "single", cache=tmp_path / "cache1")
    single.assert_outcomes(passed=4)
    monkeypatch.chdir(bench.path)
    args = bench.args(out=bench.path / "jobs_out", cache=tmp_path / "cache2")
    capsys.readouterr()
    code = main(
        [
            "submit",
            "--shards",
            "2",
            "--cluster",
            "local",
            "--gpus-per-shard",
            "1",
            "--folder",
            str(tmp_path / "jobs"),
            "--",
            *args,
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "shard 1/2: job" in printed and "merged:" in printed
    merged = bench.path / "jobs_out" / "merged"
    want = pd.read_csv(tmp_path / "single" / "results.csv").sort_values(["model", "layer", "task", "metric"])
    got = pd.read_csv(merged / "results.csv").sort_values(["model", "layer", "task", "metric"])
    np.testing.assert_allclose(got["value"].to_numpy(float), want["value"].to_numpy(float), atol=1e-9, rtol=0)
    assert main(["submit", "--status", "--folder", str(tmp_path / "jobs")]) == 0
    status = capsys.readouterr().out
    assert "shard 1/2 job" in status and "merge: written to" in status
    # a shard resubmitted after it finished (as after a preemption) reuses its cells from the cache
    rerun = bench.run("--facebench-shard", "1/2", out=bench.path / "jobs_out", cache=tmp_path / "cache2")
    info = json.loads((bench.path / "jobs_out" / "shard-1-of-2" / "run.json").read_text())
    assert rerun.ret == 0 and all(m["cells_scored"] == 0 for m in info["models"].values())


# --- issue 20: plans after deselection, empty shards, refusals by name ---------------------------------------
THIRD_MODEL = """
[[models]]
name = "coarse"
factory = "pixels"
layers = ["output"]
kwargs = { size = 8 }
"""


def test_a_k_selected_model_splits_over_the_shards_and_an_empty_shard_is_a_valid_part(bench, tmp_path, capsys):
    from pytest_facebench.__main__ import main

    bench.grid(models=("pixels", "tiny"), tasks=("verif", "sim"), extra=THIRD_MODEL)
    bench.test_file()
    results, dirs = run_shards(bench, 3, "-k", "tiny")
    assert [r.ret for r in results] == [0, 0, 0]  # the empty shard exits 0, not 5
    passed = sorted(r.parseoutcomes().get("passed", 0) for r in results)
    assert passed == [0, 1, 1]  # planned after -k: tiny's two cells on two shards
    plans = [json.loads((d / "run.json").read_text())["shard"] for d in dirs]
    assert all(len(p["plan"]) == 2 for p in plans)  # only the selected cells
    assert sorted(v["cells"] for v in plans[0]["balance"].values()) == [0, 1, 1]
    results[0].stdout.fnmatch_lines(["facebench shard 1/3: cells per shard *"])
    empty = next(d for d, r in zip(dirs, results) if not r.parseoutcomes().get("passed"))
    assert pd.read_csv(empty / "results.csv").empty
    capsys.readouterr()
    glob = sorted(str(p) for p in bench.out.glob("shard-*-of-3"))  # the README's merge glob
    assert main(["report", *glob, "--out", str(tmp_path / "merged")]) == 0
    assert set(pd.read_csv(tmp_path / "merged" / "results.csv")["model"]) == {"tiny"}


def test_cells_that_will_skip_do_not_unbalance_the_plan(bench):
    bench.grid(models=("pixels", "tiny"), tasks=("verif", "sim"))
    grid = bench.path / "facebench.toml"
    grid.write_text(grid.read_text().replace("kwargs = { size = 16 }", 'kwargs = { size = 16, weights = "gone.pth" }'))
    bench.test_file()
    results, _ = run_shards(bench, 2)
    assert [r.parseoutcomes().get("passed", 0) for r in results] == [1, 1]  # tiny's cells: one per shard


def test_shards_of_other_precision_or_without_run_json_are_refused_by_name(bench, tmp_path):
    bench.grid(models=("pixels", "tiny"), tasks=("verif",))
    bench.test_file()
    first = bench.run("--facebench-shard", "1/2")
    second = bench.run("--facebench-shard", "2/2", "--facebench-precision", "bf16")
    assert first.ret == second.ret == 0
    dirs = [bench.out / f"shard-{k}-of-2" for k in (1, 2)]
    with pytest.raises(FacebenchError, match=r"the shards ran different precisions .*\(precision fp32\).*bf16"):
        merge_shards(dirs, tmp_path / "m")
    bench.run("--facebench-shard", "2/2", out=tmp_path / "again")
    lost = tmp_path / "again" / "shard-2-of-2"
    run = json.loads((lost / "run.json").read_text())
    assert run["identity"]["device_type"] == "cpu"
    run["identity"]["device_type"] = "cuda"  # the same shard, as a GPU node would have run it
    (lost / "run.json").write_text(json.dumps(run))
    with pytest.raises(FacebenchError, match=r"the shards ran different device classes .*\(device class cpu\).*cuda"):
        merge_shards([dirs[0], lost], tmp_path / "m1")
    (lost / "run.json").unlink()
    with pytest.raises(FacebenchError, match=re.escape(f"cannot merge {lost}: {lost / 'run.json'} is missing")):
        merge_shards([dirs[0], lost], tmp_path / "m2")
    (lost / "run.json").write_text("{ truncated")
    with pytest.raises(FacebenchError, match=re.escape(f"cannot merge {lost}: {lost / 'run.json'} is not readable")):
        merge_shards([dirs[0], lost], tmp_path / "m3")


def test_submit_with_every_shard_failing_writes_no_merged_result(bench, tmp_path, monkeypatch, capsys):
    pytest.importorskip("submitit")
    from pytest_facebench.__main__ import main

    bench.grid(models=("pixels", "tiny"), tasks=("verif",))
    bench.test_file("def test_x(model, task, facebench):\n    raise AssertionError('broken')\n")
    monkeypatch.chdir(bench.path)
    args = bench.args(out=bench.path / "jobs_out")
    capsys.readouterr()
    code = main(["submit", "--shards", "2", "--cluster", "local", "--folder", str(tmp_path / "jobs"), "--", *args])
    captured = capsys.readouterr()
    assert code == 1
    assert "merge: not written: nothing to merge: no cell of" in captured.err and "outcomes: failed" in captured.err
    assert "merged:" not in captured.out
    assert not (bench.path / "jobs_out" / "merged" / "results.csv").exists()
