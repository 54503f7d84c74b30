"""A grid task's `derive` (issue 21): parsed and checked with the grid, its derived images embedded and keyed
apart from their originals, the manipulations recorded in results.csv and run.json, a warm run reusing them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from PIL import Image

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
    assert run["grid"]["derive_example"] == str(bench.data / "images" / bench.image_name(0))
    assert (bench.out / "plots" / "stimuli.png").is_file()  # one face in every manipulation, in report.html
    report = (bench.out / "report.html").read_text()
    assert '<section id="stimuli">' in report and "inv: inverted = grayscale + rotate180" in report
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
    result.assert_outcomes(failed=1, skipped=1)  # one failing grid item for the invalid entry; no cell is left
    result.stdout.fnmatch_lines(
        ["*facebench.toml*tasks[[]0[]] ('inv')*unknown manipulation 'rotate_180'; did you mean 'rotate180'*"]
    )
    bench.assert_no_traceback(result)


def test_embeddings_command_reads_the_store_and_reports_what_is_missing(bench, capsys):
    """`python -m pytest_facebench embeddings`: path, content hash and vector per image, from the store; the
    derived images' rows are their manipulated originals; a task that did not run is reported, not computed."""
    from pytest_facebench.__main__ import main

    _pairs(bench)
    bench.grid(models=("pixels",), tasks=("verif",), extra=DERIVED)
    bench.test_file()
    bench.run("-k", "inv", cache=bench.path / "cache").assert_outcomes(passed=1)
    out = bench.path / "emb.npz"

    def export(*args: str) -> tuple[int, str]:
        status = main(["embeddings", str(bench.out), "--model", "pixels", "--layer", "output", *args])
        return status, capsys.readouterr().err

    status, err = export("--out", str(out))
    assert status == 1 and "1 image(s) have no stored embedding (not computed): task 'verif'" in err
    data = np.load(out)
    paths = list(data["path"])
    assert len(paths) == 16 and len(set(data["content_hash"])) == 16
    assert data["vector"].shape == (16, 3 * 16 * 16)
    original = bench.data / "images" / bench.image_name(0)
    pixels = np.asarray(Image.open(original).convert("RGB"), dtype=np.float64)
    luma = np.clip(np.rint(pixels @ np.array([0.299, 0.587, 0.114])), 0, 255)
    derived = np.repeat(luma[..., None], 3, axis=2)[::-1, ::-1]
    for name, expected in ((str(original), pixels), (f"inverted:{original}", derived)):
        row = data["vector"][paths.index(name)]
        np.testing.assert_allclose(row, expected.transpose(2, 0, 1).reshape(-1) / 255, atol=1e-6)

    parquet = bench.path / "emb.parquet"
    assert export("--task", "inv", "--out", str(parquet))[0] == 0
    frame = pd.read_parquet(parquet)
    assert list(frame["path"]) == paths and np.allclose(np.stack(frame["vector"]), data["vector"])

    empty = bench.path / "empty_cache"
    empty.mkdir()
    status, err = export("--task", "inv", "--cache", str(empty), "--out", str(out))
    assert status == 2 and "no stored embedding of model 'pixels', layer 'output'" in err
    status, err = export("--layer", "fc", "--out", str(out))
    assert status == 2 and "model 'pixels' has no layer 'fc' in this run" in err
