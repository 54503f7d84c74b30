"""Issue 23: `--facebench-set` overrides and stacked grids (`--facebench-config` repeated), through pytester."""

from __future__ import annotations

import pandas as pd
import pytest


def _values(bench, out) -> pd.Series:
    frame = bench.results(out)
    frame = frame[frame["metric"].isin(["auc", "correlation"])]
    return frame.set_index(["model", "layer", "task", "metric"])["value"].sort_index()


def test_set_overrides_equal_the_edited_file(bench) -> None:
    bench.grid(models=("pixels",), tasks=("verif", "sim"))
    bench.test_file()
    bench.run("--facebench-set", "models.pixels.kwargs.size=8", out=bench.path / "set").assert_outcomes(passed=2)
    bench.grid(models=("pixels",), tasks=("verif", "sim")).write_text(
        bench.grid_text(models=("pixels",), tasks=("verif", "sim")).replace("size = 16", "size = 8")
    )
    bench.run(out=bench.path / "edited").assert_outcomes(passed=2)
    bench.grid(models=("pixels",), tasks=("verif", "sim"))
    bench.run(out=bench.path / "plain").assert_outcomes(passed=2)
    overridden, edited, plain = (_values(bench, bench.path / d) for d in ("set", "edited", "plain"))
    pd.testing.assert_series_equal(overridden, edited)
    assert not overridden.equals(plain)  # the override changed the numbers


def test_set_a_task_option_and_a_list(bench) -> None:
    bench.grid(models=("pixels", "tiny"), tasks=("verif",))
    bench.test_file()
    result = bench.run("--facebench-set", "tasks.verif.fars=[0.25]", "--facebench-set", 'models.tiny.layers=["conv"]')
    result.assert_outcomes(passed=2)
    frame = bench.results()
    assert {m for m in frame["metric"] if m.startswith("tar_at_far")} == {"tar_at_far_0.25"}
    assert set(frame.loc[frame["model"] == "tiny", "layer"]) == {"conv"}


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        (
            "models.pixel.kwargs.size=8",
            "--facebench-set models.pixel.kwargs.size: no model named 'pixel' (did you mean 'pixels'?)*",
        ),
        (
            "models.pixels.kwargs.sise=8",
            "--facebench-set models.pixels.kwargs.sise: unknown key 'sise' in models.pixels.kwargs (did you mean 'size'?)*",
        ),
        (
            "tasks.verif.fold=5",
            "--facebench-set tasks.verif.fold: unknown key 'fold' in tasks.verif (did you mean 'folds'?)*",
        ),
        (
            "defaults.n_bot=5",
            "--facebench-set defaults.n_bot: unknown key 'n_bot' in defaults (did you mean 'n_boot'?)*",
        ),
        (
            "models.pixels.kwargs.size=big",
            '--facebench-set models.pixels.kwargs.size: expected an integer like the grid\'s 16, got "big"',
        ),
        ("tasks.verif.folds=0.5", "--facebench-set tasks.verif.folds: expected an integer or a string, got 0.5"),
        (
            "modles.pixels.layers=[]",
            "--facebench-set modles.pixels.layers: unknown section 'modles' (did you mean 'models'?)",
        ),
        ("models.pixels", "--facebench-set 'models.pixels': expected PATH=VALUE*"),
    ],
)
def test_bad_overrides_are_one_line_naming_the_key(bench, assignment: str, message: str) -> None:
    bench.grid(models=("pixels",), tasks=("verif",))
    bench.test_file()
    result = bench.run("--facebench-set", assignment)
    assert result.ret != 0
    result.stdout.fnmatch_lines([f"*facebench: {message}"])
    lines = [line for line in result.outlines if "--facebench-set" in line and "facebench:" in line]
    assert lines and all(line.count("facebench:") == 1 for line in lines)
    bench.assert_no_traceback(result)


def test_stacked_grids_merge_by_name_with_paths_from_their_own_file(bench) -> None:
    bench.grid(models=("pixels", "tiny"), tasks=("verif",))
    paper = bench.path / "papers" / "paper2.toml"
    paper.parent.mkdir()
    # adds a key to an existing model, replaces another whole, and adds a task whose paths are relative to itself
    paper.write_text(
        '[[models]]\nname = "pixels"\nlabel = "Pixels (raw)"\n\n'
        '[[models]]\nname = "tiny"\nreplace = true\nfactory = "pixels"\nlayers = ["output"]\nkwargs = { size = 8 }\n\n'
        + bench.TASKS["sim"].replace('"data/', '"../data/')
    )
    bench.test_file()
    result = bench.run_subprocess(
        "--facebench-config", "facebench.toml", "--facebench-config", "papers/paper2.toml", "-n", "2"
    )
    result.assert_outcomes(passed=4)
    frame = bench.results()
    assert set(zip(frame["model"], frame["task"])) == {(m, t) for m in ("pixels", "tiny") for t in ("verif", "sim")}
    assert set(frame.loc[frame["model"] == "tiny", "layer"]) == {"output"}  # replaced: a pixels model now
    bench.grid(models=("pixels",), tasks=("sim",)).write_text(
        bench.grid_text(models=("pixels",), tasks=("sim",)).replace("size = 16", "size = 8")
    )
    bench.run(out=bench.path / "alone").assert_outcomes(passed=1)
    alone = _values(bench, bench.path / "alone").droplevel("model")
    tiny = _values(bench, bench.out).xs("tiny", level="model").xs("sim", level="task", drop_level=False)
    pd.testing.assert_series_equal(tiny, alone)


def test_stacked_grids_that_disagree_are_a_conflict_naming_both_files(bench) -> None:
    base = bench.grid(models=("pixels",), tasks=("verif",))
    other = bench.path / "other.toml"
    other.write_text('[[models]]\nname = "pixels"\nfactory = "pixels"\nkwargs = { size = 32 }\n')
    bench.test_file()
    result = bench.run("--facebench-config", str(base), "--facebench-config", str(other))
    assert result.ret != 0
    expected = (
        f"facebench: {other}, models[0]: model 'pixels' is defined differently here and in {base}: "
        "kwargs.size = 32 here, 16 there; say `replace = true` in this entry to replace it, or remove the key"
    )
    assert expected in result.outlines
    bench.assert_no_traceback(result)


def test_a_grid_that_cannot_be_read_is_one_error_not_one_per_benchmark_file(bench) -> None:
    bench.grid(models=("pixels",), tasks=("verif",))
    for name in ("test_a", "test_b", "test_c"):
        bench.test_file(name=name)
    result = bench.run("--facebench-set", "models.pixels.kwargs.size=big", "-rs")
    assert result.ret != 0
    outcomes = result.parseoutcomes()
    assert outcomes.get("error", outcomes.get("errors")) == 1 and outcomes["skipped"] == 2, outcomes
    result.stdout.fnmatch_lines(["*facebench: the grid could not be read (the error above)*"])
    assert sum("expected an integer like the grid's 16" in line for line in result.outlines) == 1
