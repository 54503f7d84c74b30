"""The run folder as one room (issue 20): merges of runs and shards derive every file from the per-cell
records through the one writer, different grids are refused by name, a plain rerun keeps earlier SVG
figures, new output formats plug in through `pytest_facebench_write_outputs`, and a damaged results.csv
or a full disk is named in one line."""

from __future__ import annotations

import errno
import json
import os

import pandas as pd
import pytest

from pytest_facebench.__main__ import main as cli_main

GROUPS = ["model", "task"]


def figure_kinds(out) -> list[str]:
    return sorted(e["kind"] for e in json.loads((out / "plots" / "manifest.json").read_text())["plots"])


def test_report_merges_runs_of_one_grid_like_a_single_run_and_refuses_another_grid(bench, tmp_path, capsys):
    bench.grid(models=("pixels", "tiny"), tasks=("verif", "sim"))
    bench.test_file()
    bench.run(out=tmp_path / "single").assert_outcomes(passed=4)
    bench.run("-k", "pixels", out=tmp_path / "a").assert_outcomes(passed=2)
    bench.run("-k", "tiny", out=tmp_path / "b").assert_outcomes(passed=2)
    capsys.readouterr()
    merged = tmp_path / "merged"
    assert cli_main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(merged)]) == 0
    assert f"report: {merged / 'report.html'}" in capsys.readouterr().out
    single = pd.read_csv(tmp_path / "single" / "results.csv").drop(columns="nodeid")
    pd.testing.assert_frame_equal(pd.read_csv(merged / "results.csv").drop(columns="nodeid"), single)
    comparisons = pd.read_csv(merged / "comparisons.csv")
    assert len(comparisons) == len(pd.read_csv(tmp_path / "single" / "comparisons.csv")) > 0  # across the runs
    assert figure_kinds(merged) == figure_kinds(tmp_path / "single")  # forest plots included
    run = json.loads((merged / "run.json").read_text())
    assert [s["dir"] for s in run["merged_from"]] == [str(tmp_path / "a"), str(tmp_path / "b")]
    bench.grid(models=("pixels",), tasks=("verif",), filename="other.toml")
    bench.run("--facebench-config", "other.toml", out=tmp_path / "c").assert_outcomes(passed=1)
    capsys.readouterr()
    assert cli_main(["report", str(tmp_path / "a"), str(tmp_path / "c"), "--out", str(tmp_path / "m2")]) == 2
    err = capsys.readouterr().err.strip()
    assert "ran different grids and cannot be merged" in err and str(tmp_path / "c") in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "m2" / "results.csv").exists()


def test_report_no_plots_merge_writes_report_html_without_figures(bench, tmp_path, capsys):
    bench.grid(models=("pixels", "tiny"), tasks=("verif",))
    bench.test_file()
    bench.run("--facebench-shard", "1/2").assert_outcomes(passed=1)
    bench.run("--facebench-shard", "2/2").assert_outcomes(passed=1)
    capsys.readouterr()
    dirs = [str(bench.out / f"shard-{k}-of-2") for k in (1, 2)]
    assert cli_main(["report", *dirs, "--out", str(tmp_path / "m"), "--no-plots"]) == 0
    assert f"report: {tmp_path / 'm' / 'report.html'}" in capsys.readouterr().out
    assert (tmp_path / "m" / "report.html").is_file() and not (tmp_path / "m" / "plots").exists()


def test_a_plain_rerun_keeps_the_svg_figures_of_an_earlier_run(bench):
    bench.grid(models=("pixels",), tasks=("verif",))
    bench.test_file()
    bench.run("--facebench-figures", "svg").assert_outcomes(passed=1)
    svgs = sorted(p.name for p in (bench.out / "plots").glob("*.svg"))
    assert svgs
    grid = bench.path / "facebench.toml"  # new numbers: the figures are drawn again
    grid.write_text(grid.read_text().replace('name = "verif"\n', 'name = "verif"\nn_boot = 50\n'))
    bench.run().assert_outcomes(passed=1)
    assert sorted(p.name for p in (bench.out / "plots").glob("*.svg")) == svgs


HOOK = """
def pytest_facebench_write_outputs(out_dir, results, records, run, unchanged):
    (out_dir / "rows.txt").write_text(f"{len(results)} {len(records)} {run['grid']['sha256'][:8]}")
"""


def test_a_new_output_format_plugs_in_through_the_hook(bench):
    bench.grid(models=("pixels",), tasks=("verif", "sim"))
    bench.test_file()
    bench.pytester.makeconftest(HOOK)
    bench.run().assert_outcomes(passed=2)
    rows, records, sha = (bench.out / "rows.txt").read_text().split()
    assert int(rows) == len(pd.read_csv(bench.out / "results.csv")) and records == "2"
    assert sha == json.loads((bench.out / "run.json").read_text())["grid"]["sha256"][:8]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda text: text[: len(text) - 7], r"line \d+: the file ends mid-line \(truncated\)"),
        (lambda text: text.replace("\n", ",x\n", 3)[:], r"line 1: .*|line \d+: expected \d+ fields"),
        (lambda text: "\x89PNG\x00\x01garbage", "binary data"),
        (lambda text: "a,b\n1,2\n", "line 1: not a results table header: missing column"),
    ],
    ids=["truncated", "ragged", "binary", "foreign"],
)
def test_table_on_a_damaged_results_csv_names_the_file_and_line(bench, capsys, damage, message):
    bench.grid(models=("pixels",), tasks=("verif",))
    bench.test_file()
    bench.run().assert_outcomes(passed=1)
    path = bench.out / "results.csv"
    path.write_text(damage(path.read_text()))
    capsys.readouterr()
    assert cli_main(["table", str(bench.out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err, err
    assert pytest.importorskip("re").search(message, err), err
    assert "Traceback" not in err


def test_a_disk_filling_mid_run_says_which_outputs_were_written(bench, monkeypatch):
    bench.grid(models=("pixels",), tasks=("verif",))
    bench.test_file()
    import pytest_facebench.files as files

    real_replace = os.replace

    def full_disk(src, dst):
        if str(dst).endswith("summary.csv"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", full_disk)
    result = bench.run()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            f"facebench: outputs incomplete: cannot write {bench.out / 'summary.csv'}: No space left on device "
            "(written before it: results.csv)"
        ]
    )
    assert "outputs not written" not in result.stdout.str()


def test_a_full_disk_at_start_leaves_no_lease_behind(bench, monkeypatch):
    bench.grid(models=("pixels",), tasks=("verif",))
    bench.test_file()
    import pytest_facebench.storage.leases as leases

    real_write = os.write

    def full_disk(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(leases.os, "write", full_disk)
    refused = bench.run()
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    assert "cannot write its lease: No space left on device" in refused.stderr.str()
    assert not (bench.out / ".facebench.lease").exists()
    monkeypatch.setattr(leases.os, "write", real_write)
    bench.run().assert_outcomes(passed=1)  # the disk has room again: the next run is not refused


def test_a_failed_run_leaves_no_cells_folder_behind(bench):
    bench.grid(models=("pixels",), tasks=("verif",))
    bench.test_file("def test_x(model, task, facebench):\n    raise AssertionError('broken')\n")
    result = bench.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no cell produced results; nothing written to*"])
    assert not bench.out.exists(), sorted(p.name for p in bench.out.rglob("*"))


CORE_RUN_KEYS = {"started", "duration_s", "interrupted", "engine", "versions", "platform", "git_commit", "models"}


def test_report_dir_in_place_derives_every_file_again_through_the_one_writer(bench, capsys):
    """`report DIR` alone rewrites the folder from its records (tables, comparisons, figures, report.html),
    keeping its run.json's settings: deleted tables come back equal, not only the figures."""
    bench.grid(models=("pixels", "tiny"), tasks=("verif",))
    bench.test_file()
    bench.run().assert_outcomes(passed=2)
    before = {name: (bench.out / name).read_text() for name in ("results.csv", "comparisons.csv", "summary.csv")}
    run_before = json.loads((bench.out / "run.json").read_text())
    for name in before:
        (bench.out / name).unlink()
    (bench.out / "report.html").unlink()
    capsys.readouterr()
    assert cli_main(["report", str(bench.out)]) == 0
    out = capsys.readouterr().out
    assert "from its 2 per-cell records" in out and f"report: {bench.out / 'report.html'}" in out
    assert {name: (bench.out / name).read_text() for name in before} == before
    run_after = json.loads((bench.out / "run.json").read_text())
    assert run_after["tests"] == run_before["tests"] and run_after["grid"] == run_before["grid"]
    assert "forest" in figure_kinds(bench.out) or len(pd.read_csv(bench.out / "comparisons.csv")) > 0


def test_run_json_has_one_shape_from_a_run_a_merge_and_the_api(bench, tmp_path):
    """run.json is built by one builder (`outputs.write.run_info`): a pytest run, a merge of two runs and
    `pytest_facebench.run()` give the same core keys; the merge counts every model's cells."""
    bench.grid(models=("pixels", "tiny"), tasks=("verif",))
    bench.test_file()
    bench.run("-k", "pixels", out=tmp_path / "a").assert_outcomes(passed=1)
    bench.run("-k", "tiny", out=tmp_path / "b").assert_outcomes(passed=1)
    assert (
        cli_main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "m"), "--no-plots"]) == 0
    )
    from pytest_facebench import run as api_run

    api_run(bench.path / "facebench.toml", out=tmp_path / "api", cache=tmp_path / "api-cache")
    runs = {name: json.loads((tmp_path / name / "run.json").read_text()) for name in ("a", "m", "api")}
    for name, run in runs.items():
        assert CORE_RUN_KEYS <= set(run), (name, CORE_RUN_KEYS - set(run))
    assert set(runs["m"]["models"]) == {"pixels", "tiny"} and runs["m"]["models"]["tiny"]["cells_scored"] == 1
    assert runs["m"]["duration_s"] == pytest.approx(
        runs["a"]["duration_s"] + json.loads((tmp_path / "b" / "run.json").read_text())["duration_s"], abs=0.01
    )
