"""The POOR cases of issue 20 (deliverables 8 and 9): each mistake is one clear message, said once, naming
what to change: a readout that is not a layer, an invalid task restricted to some models, an empty grid, a
distance returning numpy, `--older-than` without a unit, a missing landmarks file, bad baseline values, CUDA
asked for where there is none, thresholds on FARs the task does not compute, a missing label column."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from pytest_facebench.data.pairs import require_columns
from pytest_facebench.errors import DataError, FacebenchError
from pytest_facebench.outputs.gates import load_baseline


def one_line(result: pytest.RunResult, node: str) -> str:
    """The single line of the failure report of `node`."""
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if line.startswith("_") and f" {node} " in line)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(("_", "="))), len(lines))
    body = [line for line in lines[start + 1 : end] if line.strip()]
    assert len(body) == 1, body
    return body[0]


def test_a_readout_that_is_not_one_of_the_models_layers_is_refused_with_a_suggestion(bench) -> None:
    tiny = bench.MODELS["tiny"].replace('layers = ["conv", "fc"]\npooling = { conv = "avg" }\n', 'readout = "fcc"\n')
    assert 'readout = "fcc"' in tiny
    bench.grid(models=("pixels",), tasks=("verif",), extra=tiny)
    bench.test_file()
    result = bench.run()
    result.assert_outcomes(passed=1, errors=1)
    line = one_line(result, "ERROR at setup of test_x[tiny-verif]")
    assert re.search(
        r"^ModelError: .*facebench\.toml, models\[\d\] \('tiny'\): 'readout' 'fcc' is not one of the layers "
        r"model 'tiny' computes \(fc\); did you mean 'fc'\?",
        line,
    ), line


def test_an_invalid_task_restricted_to_one_model_fails_once(bench) -> None:
    broken = '\n[[tasks]]\nname = "broken"\ntype = "acuracy"\npairs = "data/verif.csv"\nimages = "data/images"\n'
    broken += 'models = ["pixels"]\n'
    bench.grid(models=("pixels", "tiny"), tasks=("verif",), extra=broken)
    bench.test_file()
    result = bench.run()
    result.assert_outcomes(passed=2, failed=1)
    failures = [line for line in result.outlines if line.startswith("FacebenchError:")]  # the FAILURES section
    assert len(failures) == 1 and "unknown task type 'acuracy'" in failures[0]  # said once, not once per model
    assert "tiny-broken" not in result.stdout.str() and "pixels-broken" not in result.stdout.str()


@pytest.mark.parametrize("missing", ["tasks", "models"])
def test_an_empty_grid_is_one_clear_error(bench, missing: str) -> None:
    if missing == "tasks":
        bench.grid(models=("pixels",), tasks=())
    else:
        bench.grid(models=(), tasks=("verif",))
    bench.test_file()
    result = bench.run()
    assert result.ret != 0
    assert f"facebench: grid {bench.path / 'facebench.toml'} has no [[{missing}]] entry" in result.stdout.str()
    assert "got empty parameter set" not in result.stdout.str()


def test_a_distance_returning_a_numpy_array_is_told_to_use_torch() -> None:
    from pytest_facebench.engine.distances import pair_distances

    def numpy_distance(a, b):
        return (a - b).numpy().sum(axis=1)

    with pytest.raises(ValueError) as error:
        pair_distances(np.eye(4, dtype=np.float32), np.array([[0, 1], [2, 3]]), numpy_distance)
    message = str(error.value)
    assert "must return a torch tensor" in message and "got a numpy.ndarray of shape (2,)" in message
    assert "use torch operations" in message


def test_cache_prune_without_a_unit_is_refused(tmp_path) -> None:
    (tmp_path / "cache").mkdir()
    cli = subprocess.run(
        [sys.executable, "-m", "pytest_facebench", "cache", "prune", "--cache", str(tmp_path / "cache")]
        + ["--older-than", "30"],
        capture_output=True,
        text=True,
    )
    assert cli.returncode != 0 and "'30' has no unit; write e.g. 30d (days)" in cli.stderr + cli.stdout


def test_a_missing_landmarks_file_is_blamed_on_the_model_with_its_resolved_path(bench) -> None:
    grids = bench.path / "grids"
    grids.mkdir()
    model = '\n[[models]]\nname = "px"\nfactory = "pixels"\nkwargs = { size = 16 }\nalign = "arcface_112"\n'
    model += 'detector = "landmarks:marks.csv"\n'
    task = bench.TASKS["verif"].replace("data/", "../data/")
    (grids / "facebench.toml").write_text(model + task)
    bench.test_file()
    result = bench.run("--facebench-config", str(grids / "facebench.toml"))
    result.assert_outcomes(errors=1)
    line = one_line(result, "ERROR at setup of test_x[px-verif]")
    assert f"detector landmarks file not found: {grids / 'marks.csv'}" in line
    assert line.startswith("ModelError: ") and "('px')" in line and "task 'verif'" not in line
    assert f"relative to the grid file's folder {grids}" in line


@pytest.mark.parametrize(
    "value, expected",
    [
        ('"0.9"', r"value is \"0.9\" \(str\); expected a number, or null"),
        ("[0.9]", r"value is \[0.9\] \(list\); expected a number"),
        ("NaN", r"value is nan; expected a finite number"),
        ("true", r"value is true \(bool\); expected a number"),
    ],
)
def test_a_baseline_value_that_is_not_a_number_is_refused_naming_the_cell(tmp_path, value, expected) -> None:
    path = tmp_path / "baseline.json"
    cells = '{"verif|px|output|auc|": {"value": ' + value + "}}"
    path.write_text('{"format": "facebench-baseline/1", "cells": ' + cells + "}")
    with pytest.raises(FacebenchError, match=rf"baseline file .*: cell 'verif\|px\|output\|auc\|': {expected}"):
        load_baseline(path)


def test_a_null_baseline_value_is_said_not_compared(bench, tmp_path) -> None:
    from pytest_facebench.outputs.gates import BASELINE_FORMAT, compare_to_baseline

    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"format": BASELINE_FORMAT, "cells": {"verif|px|output|auc|": {"value": None}}}))
    baseline = load_baseline(path)
    record = {"task": "verif", "model": "px", "layer": "output", "metric": "auc", "value": 0.8, "readout": True}
    (outcome,), _ = compare_to_baseline([record], baseline)
    assert outcome.status == "new" and outcome.detail == "not compared (the baseline holds no value)"


def test_a_string_baseline_value_is_a_usage_error_before_anything_runs(bench, tmp_path) -> None:
    bench.grid(models=("pixels",), tasks=("verif",))
    bench.test_file()
    path = tmp_path / "baseline.json"
    path.write_text('{"format": "facebench-baseline/1", "cells": {"verif|pixels|output|auc|": {"value": "high"}}}')
    result = bench.run("--facebench-baseline", str(path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(['*--facebench-baseline: baseline file *: value is "high" (str); expected*'])


def test_cuda_without_cuda_is_one_usage_error_up_front(bench) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    bench.grid()
    bench.test_file()
    result = bench.run("--facebench-device", "cuda")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stderr.str()
    assert text.count("CUDA is not available on this machine") == 1 and "use --facebench-device cpu or auto" in text
    assert not (bench.out / "results.csv").exists()


def test_a_threshold_on_a_far_the_task_does_not_compute_lists_the_tasks_own_fars(bench) -> None:
    task = bench.TASKS["verif"] + 'fars = [0.05]\nthresholds = [{ metric = "tar_at_far_0.001", min = 0.1 }]\n'
    bench.grid(models=("pixels",), tasks=("sim",), extra=task.replace('name = "verif"', 'name = "v2"'))
    bench.test_file()
    result = bench.run()
    result.assert_outcomes(passed=1, failed=1)
    text = result.stdout.str()
    assert "unknown metric 'tar_at_far_0.001' for this task; valid metrics: " in text
    valid = re.search(r"valid metrics: ([^.]*(?:\.\d+[^.]*)*)\. Did you mean", text)
    assert valid is not None and "tar_at_far_0.05" in valid.group(1)
    assert "tar_at_far_0.01" not in valid.group(1) and "tar_at_far_0.1," not in valid.group(1)


def test_the_missing_label_column_hint_names_the_missing_role(tmp_path) -> None:
    table = pd.DataFrame({"img1": ["a.png"], "img2": ["b.png"], "same": [1], "_line": [2]})
    with pytest.raises(DataError) as error:
        require_columns(table, {"img1": "img1", "img2": "img2", "label": "label"}, tmp_path / "pairs.csv")
    message = str(error.value)
    assert "missing column(s) 'label'" in message and "columns = { label = '<your column>' }" in message
    assert "img1 = " not in message
