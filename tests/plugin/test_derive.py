"""A grid task's `derive` (issue 21): parsed and checked with the grid, its derived images embedded and keyed
apart from their originals, the manipulations recorded in results.csv and run.json, a warm run reusing them."""

from __future__ import annotations

import json

import pandas as pd

DERIVED = """
[[tasks]]
name = "inv"
type = "relative_difference"
pairs = "data/derived.csv"
images = "data/images"
columns = { group = "orientation" }
groups = ["inverted", "upright"]
derive = { inverted = ["grayscale", "rotate180"] }
"""


def _pairs(bench) -> None:
    names = bench.image_name
    rows = [(names(i), names(i + 1), "upright") for i in range(0, 8, 2)]
    rows += [(f"inverted:{names(i)}", f"inverted:{names(i + 1)}", "inverted") for i in range(0, 8, 2)]
    pd.DataFrame(rows, columns=["img1", "img2", "orientation"]).to_csv(bench.data / "derived.csv", index=False)


def test_derive_runs_is_recorded_and_is_reused_warm(bench):
    _pairs(bench)
    bench.grid(models=("pixels",), tasks=(), extra=DERIVED)
    bench.test_file()
    cache = bench.path / "cache"
    result = bench.run(cache=cache)
    result.assert_outcomes(passed=1)
    results = bench.results()
    assert set(results["derive"]) == {json.dumps({"inverted": ["grayscale", "rotate180"]})}
    value = results.loc[results["metric"] == "relative_difference", "value"].iloc[0]
    assert value != 0  # grey, turned pixels are not the colour originals
    run = json.loads((bench.out / "run.json").read_text())
    assert run["grid"]["derive"] == {"inv": {"inverted": ["grayscale", "rotate180"]}}
    assert run["models"]["pixels"]["images"] == 16 and run["models"]["pixels"]["embedded"] == 16
    warm = bench.run("--facebench-rescore", cache=cache)  # scored again from stored embeddings
    warm.assert_outcomes(passed=1)
    assert json.loads((bench.out / "run.json").read_text())["models"]["pixels"]["embedded"] == 0
    assert bench.results().loc[lambda f: f["metric"] == "relative_difference", "value"].iloc[0] == value


def test_an_unknown_manipulation_is_a_grid_error_with_a_suggestion(bench):
    _pairs(bench)
    bench.grid(models=("pixels",), tasks=(), extra=DERIVED.replace('"rotate180"', '"rotate_180"'))
    bench.test_file()
    result = bench.run()
    result.assert_outcomes(errors=1)  # the cell's setup fails on the grid error, as for any other bad key
    result.stdout.fnmatch_lines(
        ["*facebench.toml*tasks[[]0[]] ('inv')*unknown manipulation 'rotate_180'; did you mean 'rotate180'*"]
    )
    bench.assert_no_traceback(result)
