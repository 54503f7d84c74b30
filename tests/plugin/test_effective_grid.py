"""Issue 23: the effective grid (grid.toml in every run folder, `config show`, baselines) and `reproduce`."""

from __future__ import annotations

import hashlib
import json
import re
import sys

import pandas as pd
import pytest

from pytest_facebench.__main__ import main
from pytest_facebench.grid.config import load_grid
from pytest_facebench.runner.reproduce import compare, provenance_changes, report_lines, strip_args

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _stacked(bench) -> list[str]:
    base = bench.grid(models=("pixels", "tiny"), tasks=("verif",))
    extra = bench.path / "extra" / "more.toml"
    extra.parent.mkdir()
    extra.write_text(bench.TASKS["sim"].replace('"data/', '"../data/'))
    return [
        "--facebench-config",
        str(base),
        "--facebench-config",
        "extra/more.toml",
        "--facebench-set",
        "tasks.verif.fars=[0.25]",
        "--facebench-sweep",
        "models.pixels.kwargs.size=8,16",
    ]


def test_every_run_saves_its_effective_grid_and_config_show_prints_it(bench, capsys, monkeypatch) -> None:
    args = _stacked(bench)
    bench.test_file()
    baseline = bench.path / "baseline.json"
    bench.run(*args, "--facebench-save-baseline", str(baseline)).assert_outcomes(passed=6)
    saved = tomllib.loads((bench.out / "grid.toml").read_text())
    run = saved.pop("run")
    assert [m["name"] for m in saved["models"]] == ["pixels[size:8]", "pixels[size:16]", "tiny"]
    assert [t["name"] for t in saved["tasks"]] == ["verif", "sim"]
    assert saved["tasks"][0]["fars"] == [0.25]
    assert saved["tasks"][1]["pairs"] == str(bench.path / "extra" / ".." / "data" / "sim.csv")  # from its own file
    expected = bench.args(*args, "--facebench-save-baseline", str(baseline))
    assert [a for a in run["pytest_args"] if not a.startswith("--basetemp")] == expected  # pytester adds it
    assert run["overrides"] == ["tasks.verif.fars=[0.25]"] and run["sweeps"] == ["models.pixels.kwargs.size=8,16"]
    assert [s["sha256"] for s in run["sources"]] == [
        hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (bench.path / "facebench.toml", bench.path / "extra/more.toml")
    ]
    assert {d["file"]: d["sha256"] for d in run["data"]} == {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (bench.path / "data" / "verif.csv", bench.path / "extra" / ".." / "data" / "sim.csv")
    }
    run_json = json.loads((bench.out / "run.json").read_text())
    assert run["grid_sha256"] == run_json["grid"]["sha256"]
    # the saved grid, read back as a grid, is the same effective grid (same hash)
    assert load_grid(bench.out / "grid.toml").sha256 == run_json["grid"]["sha256"]
    # baselines record it
    assert json.loads(baseline.read_text())["run"]["grid"]["effective"] == run_json["grid"]["effective"]

    capsys.readouterr()
    monkeypatch.chdir(bench.path)
    assert main(["config", "show", *args]) == 0
    shown = tomllib.loads(capsys.readouterr().out)
    assert shown == saved


def test_config_show_reports_a_bad_override_in_one_line(bench, capsys, monkeypatch) -> None:
    bench.grid(models=("pixels",), tasks=("verif",))
    monkeypatch.chdir(bench.path)
    assert main(["config", "show", "--facebench-set", "models.pixels.kwargs.size=x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "python -m pytest_facebench config: error: --facebench-set models.pixels.kwargs.size: expected an integer "
        'like the grid\'s 16, got "x"'
    )


def test_reproduce_a_saved_run_reports_identical(bench, capsys) -> None:
    bench.grid(models=("pixels", "tiny"), tasks=("verif", "sim"))
    bench.test_file()
    bench.run("--facebench-set", "models.pixels.kwargs.size=8").assert_outcomes(passed=4)
    capsys.readouterr()
    new = bench.path / "again"
    assert main(["reproduce", str(bench.out), "--out", str(new)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "4 identical, 0 within CI, 0 differs, 0 missing of 4 cells"
    cells = sorted(re.sub(r" \(\d+ values\)$", "", line) for line in lines[-5:-1])
    assert cells == [
        "sim · pixels: identical",
        "sim · tiny: identical",
        "verif · pixels: identical",
        "verif · tiny: identical",
    ]
    pd.testing.assert_frame_equal(bench.results(), bench.results(new)[bench.results().columns])
    assert (
        json.loads((new / "run.json").read_text())["grid"]["sha256"]
        == json.loads((bench.out / "run.json").read_text())["grid"]["sha256"]
    )


def test_reproduce_refuses_changed_data_and_a_folder_without_grid_toml(bench, capsys) -> None:
    bench.grid(models=("pixels",), tasks=("verif",))
    bench.test_file()
    bench.run().assert_outcomes(passed=1)
    capsys.readouterr()
    with (bench.data / "verif.csv").open("a") as fh:
        fh.write("\n")
    assert main(["reproduce", str(bench.out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"python -m pytest_facebench reproduce: error: {bench.out / 'grid.toml'}: data file ")
    assert f"{bench.data / 'verif.csv'} changed since the run (sha256 " in err and len(err.splitlines()) == 1

    (bench.out / "grid.toml").unlink()
    assert main(["reproduce", str(bench.out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"python -m pytest_facebench reproduce: error: {bench.out}: no grid.toml; ")
    assert len(err.splitlines()) == 1


def _write(folder, values, versions, ci=0.05) -> None:
    folder.mkdir()
    rows = [
        {"model": "m", "layer": "fc", "task": t, "metric": "auc", "value": v, "ci_low": v - ci, "ci_high": v + ci}
        for t, v in values.items()
    ]
    pd.DataFrame(rows).to_csv(folder / "results.csv", index=False)
    (folder / "run.json").write_text(json.dumps({"versions": versions, "engine": {"devices": ["cpu"]}}))


def test_compare_names_cells_within_ci_and_the_provenance_that_differs(tmp_path) -> None:
    _write(tmp_path / "old", {"a": 0.8, "b": 0.7, "c": 0.6, "d": 0.5}, {"torch": "2.4.0", "numpy": "2.0"})
    _write(tmp_path / "new", {"a": 0.8, "b": 0.72, "c": 0.9}, {"torch": "2.5.0", "numpy": "2.0"})
    verdicts = compare(tmp_path / "old", tmp_path / "new")
    assert [(v.task, v.status) for v in verdicts] == [
        ("a", "identical"),
        ("b", "within CI"),
        ("c", "differs"),
        ("d", "missing"),
    ]
    changes = provenance_changes(
        json.loads((tmp_path / "old" / "run.json").read_text()), json.loads((tmp_path / "new" / "run.json").read_text())
    )
    assert changes == ["torch 2.4.0 → 2.5.0"]
    lines = report_lines(verdicts, changes)
    assert lines[1] == "b · m: within CI (1 of 1 values differ: fc/auc) (provenance differs: torch 2.4.0 → 2.5.0)"
    assert lines[-1] == "1 identical, 1 within CI, 1 differs, 1 missing of 4 cells"


@pytest.mark.parametrize(
    ("args", "kept"),
    [
        (["-k", "x", "--facebench-out", "o", "--facebench-config=g.toml", "-n", "2"], ["-k", "x", "-n", "2"]),
        (["--facebench-set", "a=1", "--facebench-no-cache", "--facebench-shard", "1/2", "t.py"], ["t.py"]),
    ],
)
def test_reproduce_replaces_the_grid_output_shard_and_cache_options(args: list[str], kept: list[str]) -> None:
    assert strip_args(args) == kept
