"""Runs that survive (issue 11): each finished test is recorded at once; SIGINT and SIGTERM write what
finished and mark the run interrupted, never recording a running test as passed, with and without xdist;
a rerun completes the rest; one run per output folder; partial runs merge with the previous run of the
same grid; empty runs overwrite nothing; bad paths and options fail before any model loads; a write
that fails leaves the previous outputs intact."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]

HANGING_TEST = """
import os
import time
from pathlib import Path


def test_x(model, task, facebench):
    facebench.evaluate(model, task)
    marker = os.environ.get("FACEBENCH_TEST_MARKER")
    if marker and task.name == "cond":
        Path(marker).write_text("ready")
        time.sleep(300)
"""


def run_json(out: Path) -> dict:
    return json.loads((out / "run.json").read_text())


def start(bench, out: Path, *args: str, marker: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    if marker is not None:
        env["FACEBENCH_TEST_MARKER"] = str(marker)
    command = [sys.executable, "-m", "pytest", *bench.args(*args, out=out, cache=bench.path / "cache")]
    return subprocess.Popen(
        command,
        cwd=bench.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        # a shell that starts CI in the background makes SIGINT ignored, and ignored signals survive exec (Python
        # then installs no KeyboardInterrupt handler): restore the default so the run sees Ctrl-C as a user's would
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"the run ended before {path.name} appeared:\n{process.stdout.read()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.2)


@pytest.fixture
def hanging(bench):
    bench.grid()
    bench.test_file(HANGING_TEST)
    return bench


@pytest.mark.parametrize(
    "sig, workers",
    [(signal.SIGTERM, ()), (signal.SIGINT, ()), (signal.SIGTERM, ("-n", "2")), (signal.SIGINT, ("-n", "2"))],
    ids=["sigterm", "sigint", "sigterm-xdist", "sigint-xdist"],
)
def test_a_signal_writes_what_finished_and_marks_the_run_interrupted(hanging, sig, workers):
    out, marker = hanging.path / "out", hanging.path / "ready"
    process = start(hanging, out, *workers, marker=marker)
    wait_for(marker, process)
    if not workers:  # the cells before the hanging one are recorded as they finish, before any signal
        assert len(list((out / "cells").glob("*.json"))) == 2
    else:
        # the other worker may still be on a cell: wait until the controller has recorded one (a loaded CI
        # machine may take longer than a fixed pause)
        deadline = time.monotonic() + 120
        while not list((out / "cells").glob("*.json")) and time.monotonic() < deadline:
            time.sleep(0.2)
    if not workers:  # a second run into the same folder stops at once, naming the first
        second = hanging.run("-p", "no:xdist", out=out, cache=hanging.path / "cache2")
        assert second.ret == pytest.ExitCode.USAGE_ERROR
        assert f"output folder {out} is in use by another run (pid {process.pid} on host" in second.stderr.str()
    os.killpg(process.pid, sig)
    output, _ = process.communicate(timeout=120)
    assert process.returncode != 0, output
    info = run_json(out)
    assert info["interrupted"] is True, output
    outcomes = {nodeid.split("[")[1].rstrip("]"): entry["outcome"] for nodeid, entry in info["tests"].items()}
    assert outcomes["pixels-cond"] == "interrupted"  # it was running: never recorded as passed
    passed = [cell for cell, outcome in outcomes.items() if outcome == "passed"]
    assert passed, outcomes
    assert all(outcome in ("passed", "interrupted", "not started") for outcome in outcomes.values()), outcomes
    assert set(info["unfinished"]) == {
        n for n, e in info["tests"].items() if e["outcome"] in ("interrupted", "not started")
    }
    assert len(outcomes) == 8  # every selected test is accounted for, started or not
    results = pd.read_csv(out / "results.csv")
    assert sorted({f"{m}-{t}" for m, t in zip(results["model"], results["task"])}) == sorted(passed)
    assert "run INTERRUPTED" in output
    assert "Traceback" not in output
    if not workers:  # the one running, and the five that never started, did not finish
        never = {"pixels-inv", "tiny-verif", "tiny-sim", "tiny-cond", "tiny-inv"}
        assert {c for c, o in outcomes.items() if o == "not started"} == never
        assert {n.split("[")[1].rstrip("]") for n in info["unfinished"]} == {"pixels-cond", *never}
        assert "6 test(s) did not finish (1 running, 5 never started" in output
    if sig == signal.SIGTERM and not workers:  # a rerun completes the rest and clears the mark
        rerun = hanging.run(out=out, cache=hanging.path / "cache")
        rerun.assert_outcomes(passed=8)
        info = run_json(out)
        assert info["interrupted"] is False and info["unfinished"] == []
        # the two finished cells, and the hanging one, which had scored its cell before it hung
        assert info["models"]["pixels"]["cells_reused"] == 3
        assert len(pd.read_csv(out / "results.csv").groupby(["model", "task"])) == 8


def test_a_stale_lock_of_a_dead_run_is_broken(bench):
    bench.grid(models=("pixels",), tasks=("verif",))
    bench.test_file()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    from pytest_facebench.storage.leases import host_identity

    bench.out.mkdir()
    (bench.out / ".facebench.lease").write_text(
        json.dumps({**host_identity(), "pid": int(dead.stdout), "token": "x", "time": time.time()})
    )
    bench.run().assert_outcomes(passed=1)
    assert not (bench.out / ".facebench.lease").exists()


def test_a_partial_run_keeps_the_other_cells_of_the_same_grid(bench):
    bench.grid()
    bench.test_file()
    cache = bench.path / "cache"
    first = bench.run(cache=cache)
    first.assert_outcomes(passed=8)
    first.stdout.fnmatch_lines(["8 cells: 0 reused, 8 scored, 0 skipped"])
    full = bench.results()
    started = run_json(bench.out)["started"]
    subset = bench.run("-k", "verif", cache=cache)
    subset.assert_outcomes(passed=2)
    subset.stdout.fnmatch_lines([f"2 cells: 2 reused, 0 scored, 0 skipped; 6 kept from the run of {started}"])
    pd.testing.assert_frame_equal(bench.results().drop(columns="nodeid"), full.drop(columns="nodeid"))
    info = run_json(bench.out)
    assert info["cells"] == {"this_run": 2, "kept": 6, "kept_from": [started], "stale": {}}
    assert sum("kept_from" in t for t in info["tests"].values()) == 6
    # another grid (a changed option): cells of the old grid are not mixed in
    text = (bench.path / "facebench.toml").read_text().replace('name = "sim"\n', 'name = "sim"\nn_boot = 50\n')
    (bench.path / "facebench.toml").write_text(text)
    again = bench.run("-k", "verif", cache=cache)
    again.stdout.fnmatch_lines(["2 cells: 2 reused, 0 scored, 0 skipped"])
    assert "kept from" not in again.stdout.str()
    assert set(bench.results()["task"]) == {"verif"}
    assert len(list((bench.out / "cells").glob("*.json"))) == 2


def test_a_k_run_after_an_xdist_run_keeps_the_cells_the_workers_wrote(bench):
    """Issue 20's first BAD case: cells written under `-n` carried no grid hash, so a later `-k` run dropped
    them (results.csv shrank to the one selected cell, silently)."""
    bench.grid(models=("pixels", "tiny"), tasks=("verif", "sim"))
    bench.test_file()
    bench.run_subprocess("-n", "2").assert_outcomes(passed=4)
    full = bench.results()
    assert {
        r["identity"]["grid_sha256"] for r in map(json.loads, map(Path.read_text, (bench.out / "cells").glob("*.json")))
    } != {None}
    subset = bench.run("-k", "pixels and verif")
    subset.assert_outcomes(passed=1)
    subset.stdout.fnmatch_lines(["1 cell: 0 reused, 1 scored, 0 skipped; 3 kept from the run of *"])
    after = bench.results()
    assert len(after) == len(full) and set(zip(after["model"], after["task"])) == set(zip(full["model"], full["task"]))
    assert len(list((bench.out / "cells").glob("*.json"))) == 4


def test_a_run_without_results_overwrites_nothing(bench):
    bench.grid(models=("pixels",), tasks=("verif",))
    bench.test_file()
    bench.run().assert_outcomes(passed=1)
    before = (bench.out / "results.csv").read_bytes()
    empty = bench.run("-k", "no_such_cell")
    assert empty.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert (bench.out / "results.csv").read_bytes() == before
    # a grid whose only model is skipped (missing weights): nothing written, and the run fails
    text = (
        (bench.path / "facebench.toml")
        .read_text()
        .replace("kwargs = { size = 16 }", 'kwargs = { size = 16, weights = "missing.pth" }')
    )
    (bench.path / "facebench.toml").write_text(text)
    skipped = bench.run()
    skipped.assert_outcomes(skipped=1)
    assert skipped.ret == pytest.ExitCode.TESTS_FAILED
    skipped.stdout.fnmatch_lines(
        [
            "*no cell produced results; nothing written to*",
            "skipped pixels (1 cell): weights unavailable: *missing.pth*",
        ]
    )
    assert (bench.out / "results.csv").read_bytes() == before
    explained = bench.run("-k", "pixels")  # -k explains an empty result: not an error
    assert explained.ret == pytest.ExitCode.OK


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--facebench-batch-size", "0", "expected a whole number >= 1, got 0"),
        ("--facebench-workers", "-1", "expected a whole number >= 0, got -1"),
        ("--facebench-max-drop", "-0.1", "expected a number >= 0, got -0.1"),
    ],
)
def test_numeric_options_are_checked_when_the_command_line_is_read(bench, option, value, message):
    bench.grid(models=("pixels",), tasks=("verif",))
    bench.test_file()
    result = bench.run(option, value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()
    assert not bench.out.exists()


@pytest.mark.parametrize("which", ["out", "cache"])
def test_a_file_where_a_folder_belongs_is_a_usage_error_before_any_model_loads(bench, which):
    bench.grid(models=("pixels",), tasks=("verif",))
    bench.test_file("def test_x(model, task, facebench):\n    raise AssertionError('a model loaded')\n")
    blocker = bench.path / "blocker"
    blocker.write_text("")
    if which == "out":
        result = bench.run(out=blocker)
        expected = f"ERROR: facebench: output folder {blocker} is a file, not a folder"
    else:
        result = bench.run(cache=blocker / "sub")
        expected = f"ERROR: facebench: cache folder {blocker / 'sub'} cannot be created: {blocker} is a file"
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert expected in result.stderr.str()
    assert "a model loaded" not in result.stdout.str()


def test_a_failed_write_leaves_the_previous_outputs_and_says_so_in_one_line(bench, monkeypatch):
    bench.grid(models=("pixels",), tasks=("verif",))
    bench.test_file()
    bench.run().assert_outcomes(passed=1)
    before = {name: (bench.out / name).read_bytes() for name in ("results.csv", "summary.csv", "run.json")}
    grid = bench.path / "facebench.toml"  # new numbers, so the tables must be written again
    grid.write_text(grid.read_text().replace('name = "verif"\n', 'name = "verif"\nn_boot = 50\n'))
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
        [f"facebench: outputs incomplete: cannot write {bench.out / 'summary.csv'}: No space left on device*"]
    )
    assert (bench.out / "summary.csv").read_bytes() == before["summary.csv"]
    assert not list(bench.out.glob(".*.tmp"))
    assert "Traceback" not in result.stdout.str() and "INTERNALERROR" not in result.stdout.str()


def test_an_unchanged_rerun_rewrites_no_derived_output(bench):
    bench.grid(models=("pixels",), tasks=("verif", "sim"))
    bench.test_file()
    cache = bench.path / "cache"
    bench.run(cache=cache).assert_outcomes(passed=2)
    files = ["results.csv", "summary.csv", "comparisons.csv", "report.html", "distances/verif/pixels.csv"]
    stamps = {name: (bench.out / name).stat().st_mtime_ns for name in files}
    bench.run(cache=cache).assert_outcomes(passed=2)
    assert {name: (bench.out / name).stat().st_mtime_ns for name in files} == stamps
    assert len((bench.out / "history.jsonl").read_text().splitlines()) == 2  # run.json and history always


HANG_BEFORE_SCORING = """
import os
import time
from pathlib import Path


def test_x(model, task, facebench):
    marker = os.environ.get("FACEBENCH_TEST_MARKER")
    if marker and task.name == "cond":
        Path(marker).write_text("ready")
        time.sleep(300)
    facebench.evaluate(model, task)
"""


def test_a_shard_killed_mid_run_and_resubmitted_scores_only_its_unfinished_cells(bench):
    """A preempted job ends in SIGKILL, with no chance to write anything: the cells it finished are in the cell
    cache, so the resubmitted shard (the same command) scores only the cells that had not finished."""
    bench.grid(models=("pixels", "tiny"))
    bench.test_file(HANG_BEFORE_SCORING)
    out, marker = bench.path / "out", bench.path / "ready"
    process = start(bench, out, "--facebench-shard", "1/2", marker=marker)
    wait_for(marker, process)  # two cells of the shard finished, the third hangs before scoring
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    shard = out / "shard-1-of-2"
    assert len(list((shard / "cells").glob("*.json"))) == 2
    rerun = start(bench, out, "--facebench-shard", "1/2")
    output, _ = rerun.communicate(timeout=240)
    assert rerun.returncode == 0, output
    info = run_json(shard)
    assert info["interrupted"] is False and info["unfinished"] == []
    cells = len(info["tests"])  # the shard's cells (the plan balances by cost: not always half of them)
    assert cells >= 4
    reused = sum(m["cells_reused"] for m in info["models"].values())
    scored = sum(m["cells_scored"] for m in info["models"].values())
    assert (reused, scored) == (2, cells - 2), info["models"]  # the two that finished come from the cache
    assert len(pd.read_csv(shard / "results.csv").groupby(["model", "task"])) == cells


def test_the_terminal_says_when_the_data_are_the_synthetic_demo_data(bench):
    bench.grid(models=("pixels",), tasks=("verif",))
    bench.test_file()
    plain = bench.run()
    plain.assert_outcomes(passed=1)
    assert "demo data" not in plain.stdout.str()
    (bench.data / "FACEBENCH_DEMO_DATA").write_text("{}")  # the mark benchmarks/demo_data.py leaves
    marked = bench.run("--facebench-rescore")
    marked.stdout.fnmatch_lines(["*demo data: * simulated; these numbers are not a finding (tasks: verif)"])
    marked.stdout.fnmatch_lines(["1 cell: 0 reused, 1 scored, 0 skipped"])
