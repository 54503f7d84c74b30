"""The plugin's behaviour as a user sees it, through pytester: grid parametrization and ids, the
fixtures, outputs (results.csv, summary.csv, distances/, run.json), xdist, skips for missing weights,
grid discovery and the terminal summary.

Grids use weight-free models (the built-in `pixels`, a seeded 2-layer conv net) on a dozen 16×16
PNGs, so each in-process run takes about a second.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from pytest_facebench.grid.config import load_grid
from pytest_facebench.grid.gridfile import grid_hash
from pytest_facebench.report.numbers import shared_decimals

ALL_CELLS = [f"{m}-{t}" for m in ("pixels", "tiny") for t in ("verif", "sim", "cond", "inv")]
LAYERS = {"pixels": ["output"], "tiny": ["conv", "fc"]}


# --- parametrization, ids and selection ---------------------------------------------------------
def test_grid_ids_are_model_major_for_every_cell(bench) -> None:
    only_tiny = (
        bench.TASKS["verif"]
        .replace('"verif"', '"verif_tiny"')
        .replace('type = "accuracy"', 'type = "accuracy"\nmodels = ["tiny"]')
    )
    bench.grid(extra=only_tiny)
    bench.test_file()
    result = bench.run("--collect-only", "-q")
    assert result.ret == 0
    expected = [f"test_bench.py::test_x[{cell}]" for cell in ALL_CELLS]
    expected.append("test_bench.py::test_x[tiny-verif_tiny]")  # `models = [...]` limits a task
    assert bench.collected_ids(result) == expected
    result.stdout.fnmatch_lines(["facebench grid: *facebench.toml (2 models, 5 tasks)"])


def test_k_selects_exactly_the_matching_cells(bench) -> None:
    bench.grid()
    bench.test_file()
    collected = bench.run("--collect-only", "-q", "-k", "pixels and verif")
    assert bench.collected_ids(collected) == ["test_bench.py::test_x[pixels-verif]"]
    result = bench.run("-k", "tiny and (sim or inv)")
    result.assert_outcomes(passed=2, deselected=6)
    results = bench.results()
    assert sorted(set(zip(results["model"], results["task"]))) == [("tiny", "inv"), ("tiny", "sim")]


def test_typed_task_fixtures_run_only_on_their_task_type(bench) -> None:
    bench.grid(extra=bench.TASKS["verif"].replace('"verif"', '"verif2"'))
    bench.test_file("""
        def test_acc(model, accuracy_task, facebench):
            assert accuracy_task.type == "accuracy"
            facebench.evaluate(model, accuracy_task)

        def test_corr(model, correlation_task):
            assert correlation_task.type == "correlation"

        def test_cond(model, conditions_task):
            assert conditions_task.conditions == ["near", "far"]

        def test_rel(model, relative_difference_task):
            assert relative_difference_task.groups == ["inverted", "upright"]

        def test_each_task(task):
            assert task.name in ("verif", "sim", "cond", "inv", "verif2")

        def test_each_model(model):
            assert model.name in ("pixels", "tiny")
    """)
    ids = bench.collected_ids(bench.run("--collect-only", "-q"))
    by_test: dict[str, list[str]] = {}
    for node in ids:
        name, _, param = node.split("::")[1].partition("[")
        by_test.setdefault(name, []).append(param.rstrip("]"))
    assert by_test == {
        "test_acc": ["pixels-verif", "pixels-verif2", "tiny-verif", "tiny-verif2"],
        "test_corr": ["pixels-sim", "tiny-sim"],
        "test_cond": ["pixels-cond", "tiny-cond"],
        "test_rel": ["pixels-inv", "tiny-inv"],
        "test_each_task": ["verif", "sim", "cond", "inv", "verif2"],
        "test_each_model": ["pixels", "tiny"],
    }
    result = bench.run()
    result.assert_outcomes(passed=len(ids))
    assert set(bench.results()["task_type"]) == {"accuracy"}  # only test_acc evaluated


def test_tests_outside_the_grid_write_no_outputs(bench) -> None:
    bench.grid(models=("pixels",), tasks=("verif",))
    bench.test_file("def test_plain():\n    pass\n")
    result = bench.run()
    result.assert_outcomes(passed=1)
    assert not bench.out.exists()
    assert "= facebench =" not in result.stdout.str()


# --- the facebench fixture ----------------------------------------------------------------------
def test_evaluate_returns_one_row_per_layer_and_metric_and_record_reaches_results(bench) -> None:
    bench.grid()
    bench.test_file("""
        def test_x(model, task, facebench):
            frame = facebench.evaluate(model, task)
            assert list(dict.fromkeys(frame["layer"])) == model.layers
            keys = frame[["metric", "condition"]].fillna("").apply(tuple, axis=1)
            per_layer = keys.groupby(frame["layer"]).apply(tuple)
            assert len(set(per_layer)) == 1  # every layer gets the same metric rows...
            assert len(set(per_layer.iloc[0])) == len(per_layer.iloc[0])  # ...each once
            assert len(frame) == len(model.layers) * len(per_layer.iloc[0])
            assert (frame["model"] == model.name).all() and (frame["task"] == task.name).all()
            assert (frame["task_type"] == task.type).all()
            headline = frame[frame["metric"] == task.headline]
            assert len(headline) >= len(model.layers) and headline["value"].notna().all()
            if task.type == "conditions":
                assert list(dict.fromkeys(headline["condition"])) == ["near", "far"]
            if task.type == "relative_difference":
                means = frame[frame["metric"] == "group_mean"]
                assert list(dict.fromkeys(means["condition"])) == ["inverted", "upright"]
            facebench.record(my_metric=1.5, n_rows=len(frame))
            facebench.record(layer=model.layers[0], condition="extra", other_metric=2)
    """)
    result = bench.run()
    result.assert_outcomes(passed=8)
    results = bench.results()
    mine = results[results["metric"] == "my_metric"]
    assert len(mine) == 8
    assert (mine["value"] == 1.5).all()
    assert sorted(zip(mine["model"], mine["task"])) == sorted(tuple(c.split("-")) for c in ALL_CELLS)
    assert set(mine["task_type"]) == {"custom"}
    other = results[results["metric"] == "other_metric"]
    assert set(other["condition"]) == {"extra"} and (other["value"] == 2.0).all()
    assert set(other.loc[other["model"] == "tiny", "layer"]) == {"conv"}
    # every row evaluate returned is in results.csv, once
    metrics = results[results["task_type"] != "custom"]
    assert len(metrics) == results.loc[results["metric"] == "n_rows", "value"].sum()
    assert set(metrics["layer"]) == {layer for layers in LAYERS.values() for layer in layers}


# --- outputs ------------------------------------------------------------------------------------
def cosine_distances(bench, pairs: pd.DataFrame) -> np.ndarray:
    """The pixel model's distances computed independently: 16×16 images are the embedding as-is."""

    def load(name: str) -> np.ndarray:
        return np.asarray(Image.open(bench.data / "images" / name), dtype=np.float64).ravel() / 255.0

    a = np.stack([load(n) for n in pairs["img1"]])
    b = np.stack([load(n) for n in pairs["img2"]])
    return 1.0 - (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_outputs_results_summary_distances_run_json_and_terminal_table(bench) -> None:
    grid = bench.grid()
    bench.test_file()
    result = bench.run()
    result.assert_outcomes(passed=8)

    results = bench.results()
    required = {"model", "layer", "task", "task_type", "metric", "value", "distance", "preprocessing"}
    assert required <= set(results.columns)
    assert list(dict.fromkeys(results["model"])) == ["pixels", "tiny"]  # grid order
    assert list(dict.fromkeys(results.loc[results["model"] == "tiny", "task"])) == ["verif", "sim", "cond", "inv"]
    assert set(results["distance"]) == {"cosine"}
    assert json.loads(results.loc[results["model"] == "pixels", "preprocessing"].iloc[0])["input_size"] == 16
    assert not results.duplicated(["model", "layer", "task", "metric", "condition"]).any()

    summary = pd.read_csv(bench.out / "summary.csv")
    assert list(zip(summary["model"], summary["layer"])) == [("pixels", "output"), ("tiny", "conv"), ("tiny", "fc")]
    for column in (
        "verif / accuracy",
        "verif / auc",
        "verif / optimal_threshold",
        "sim / correlation",
        "cond / mean_distance / near",
        "cond / mean_distance / far",
        "inv / relative_difference",
        "inv / group_mean / inverted",
        "inv / group_mean / upright",
        "inv / cohens_d",
    ):
        assert column in summary.columns
    auc = results.query("model == 'tiny' and layer == 'fc' and task == 'verif' and metric == 'auc'")["value"].item()
    assert summary.loc[2, "verif / auc"] == pytest.approx(auc, rel=1e-12)

    for task, pairs in bench.pairs.items():
        for model, layers in LAYERS.items():
            distances = pd.read_csv(bench.out / "distances" / task / f"{model}.csv")
            assert list(distances.columns) == [*pairs.columns, *layers]
            assert len(distances) == len(pairs)
            assert list(distances["img1"]) == list(pairs["img1"])
    pixel = pd.read_csv(bench.out / "distances" / "verif" / "pixels.csv")
    np.testing.assert_allclose(pixel["output"], cosine_distances(bench, bench.pairs["verif"]), rtol=1e-5, atol=1e-6)
    expected_auc = roc_auc_score(bench.pairs["verif"]["label"], -pixel["output"])
    got_auc = results.query("model == 'pixels' and task == 'verif' and metric == 'auc'")["value"].item()
    assert got_auc == pytest.approx(expected_auc, abs=1e-9)

    run = json.loads((bench.out / "run.json").read_text())
    assert {"python", "torch", "numpy", "pandas", "pytest"} <= set(run["versions"])
    assert run["grid"]["sha256"] == grid_hash(load_grid(grid).raw.data)  # the effective grid's hash
    assert run["grid"]["path"] == str(grid)
    assert sorted(run["tests"]) == sorted(f"test_bench.py::test_x[{cell}]" for cell in ALL_CELLS)
    for nodeid, entry in run["tests"].items():
        assert entry["outcome"] == "passed"
        assert isinstance(entry["duration_s"], float) and entry["duration_s"] >= 0
        assert nodeid.endswith(f"[{entry['model']}-{entry['task']}]")
    assert "--facebench-out" in run["pytest_args"] and str(bench.out) in run["pytest_args"]
    assert run["models"]["tiny"]["embedded"] == len(bench.images)  # each distinct image once per model
    assert run["models"]["tiny"]["batch_size"] > 0

    # the terminal summary: a models × tasks table of headline metrics (either orientation), and where
    # the files are
    lines = result.stdout.str().split("= facebench =", 1)[1].splitlines()
    for label in (
        "verif (Accuracy (k-fold))",
        "sim (Pearson r with human dissimilarity)",  # the task's metric_label
        "cond (Mean cosine distance",
        "inv (Relative Difference)",
        "pixels",
        "tiny",
    ):
        assert any(label in line for line in lines), label
    headline = results[(results["readout"]) & results["metric"].isin(["accuracy_kfold", "correlation"])]
    places = {  # a row's models share the decimals their CIs need
        t: shared_decimals(zip(rows["ci_low"], rows["ci_high"])) for t, rows in headline.groupby("task")
    }
    value = {(m, t): f"{v:.{places[t]}f}" for m, t, v in zip(headline["model"], headline["task"], headline["value"])}

    def cells(line: str) -> list[str]:  # a table row without its [ci_low, ci_high] intervals
        return re.sub(r"\[[^\]]*\]", "", line).split()

    model_rows = {line.split()[0]: cells(line) for line in lines if line.startswith(("pixels ", "tiny "))}
    if model_rows:  # models as rows: "<model> <verif> <sim> ..."
        assert sorted(model_rows) == ["pixels", "tiny"]
        for model, row in model_rows.items():
            assert row[1:3] == [value[model, "verif"], value[model, "sim"]]
    else:  # models as columns: "<task (Metric)> <pixels> <tiny>"
        header = next(line for line in lines if "pixels" in line and "tiny" in line)
        order = [word for word in header.split() if word in ("pixels", "tiny")]
        for task, label in (
            ("verif", "verif (Accuracy (k-fold))"),
            ("sim", "sim (Pearson r with human dissimilarity)"),
        ):
            row = cells(next(line for line in lines if line.startswith(label)))
            assert row[-2:] == [value[model, task] for model in order]
    result.stdout.fnmatch_lines([f"results: {bench.out / 'results.csv'}"])


def test_outputs_are_written_when_tests_fail_or_skip(bench) -> None:
    bench.grid()
    bench.test_file("""
        import pytest

        def test_x(model, task, facebench):
            if model.name == "tiny" and task.name == "sim":
                pytest.skip("not today")
            facebench.evaluate(model, task)
            assert task.name != "verif", "a deliberate failure"
    """)
    result = bench.run()
    result.assert_outcomes(passed=5, failed=2, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    results = bench.results()
    cells = set(zip(results["model"], results["task"]))
    assert ("pixels", "verif") in cells and ("tiny", "verif") in cells  # evaluated, then failed
    assert ("tiny", "sim") not in cells
    assert len(cells) == 7
    assert (bench.out / "summary.csv").is_file()
    assert (bench.out / "distances" / "verif" / "tiny.csv").is_file()
    tests = json.loads((bench.out / "run.json").read_text())["tests"]
    assert tests["test_bench.py::test_x[tiny-verif]"]["outcome"] == "failed"
    assert "a deliberate failure" in tests["test_bench.py::test_x[tiny-verif]"]["reason"]
    assert tests["test_bench.py::test_x[tiny-sim]"] | {"duration_s": 0} == {
        "duration_s": 0,
        "outcome": "skipped",
        "reason": "not today",
        "model": "tiny",
        "task": "sim",
    }
    result.stdout.fnmatch_lines(["results: *results.csv"])


def test_a_warm_cache_gives_identical_results_without_running_the_models(bench) -> None:
    """Embedding level (cell results are rescored here; tests/plugin/test_cell_cache.py covers their reuse)."""
    bench.grid()
    bench.test_file()
    cache = bench.path / "embedding_cache"
    cold, warm = bench.path / "out_cold", bench.path / "out_warm"
    bench.run(out=cold, cache=cache).assert_outcomes(passed=8)
    assert any(cache.rglob("*.rows")), "nothing was cached"
    bench.run("--facebench-rescore", out=warm, cache=cache).assert_outcomes(passed=8)
    pd.testing.assert_frame_equal(bench.results(cold), bench.results(warm))
    for model in ("pixels", "tiny"):
        cold_stats = json.loads((cold / "run.json").read_text())["models"][model]
        warm_stats = json.loads((warm / "run.json").read_text())["models"][model]
        assert cold_stats["embedded"] == len(bench.images)
        assert warm_stats["embedded"] == 0 and warm_stats["cache_misses"] == 0
        assert warm_stats["cache_hits"] == warm_stats["images"] > 0
    assert json.loads((warm / "run.json").read_text())["engine"]["cache"] == str(cache)


# --- xdist --------------------------------------------------------------------------------------
def test_xdist_gives_the_same_results_as_one_process(bench) -> None:
    bench.grid()
    bench.test_file("""
        def test_x(model, task, facebench):
            facebench.evaluate(model, task)
            facebench.record(n_pairs=len(task.table))
    """)
    serial, parallel = bench.path / "out_serial", bench.path / "out_xdist"
    bench.run("-n", "0", out=serial).assert_outcomes(passed=8)
    result = bench.run_subprocess("-n", "2", out=parallel)
    result.assert_outcomes(passed=8)
    assert result.ret == 0

    one, two = bench.results(serial), bench.results(parallel)
    assert list(one.columns) == list(two.columns)
    keys = ["model", "layer", "task", "task_type", "metric", "condition", "nodeid"]
    pd.testing.assert_frame_equal(one[keys], two[keys])  # same rows, same deterministic order
    np.testing.assert_allclose(two["value"], one["value"], rtol=1e-9, atol=0)
    assert sorted(set(zip(one["model"], one["task"]))) == sorted(tuple(c.split("-")) for c in ALL_CELLS)
    for task in ("verif", "inv"):
        for model in ("pixels", "tiny"):
            a = pd.read_csv(serial / "distances" / task / f"{model}.csv")
            b = pd.read_csv(parallel / "distances" / task / f"{model}.csv")
            pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9)
    run = json.loads((parallel / "run.json").read_text())
    assert run["xdist_workers"] == 2
    assert len(run["tests"]) == 8 and all(t["outcome"] == "passed" for t in run["tests"].values())
    assert set(run["models"]) == {"pixels", "tiny"}
    # only the controller writes and reports
    assert result.stdout.str().count("= facebench =") == 1


# --- missing weights ----------------------------------------------------------------------------
def test_missing_weights_skip_with_a_reason(bench, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(bench.path / "hf_home"))  # an empty cache, whatever this machine has
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE"):
        monkeypatch.delenv(variable, raising=False)
    bench.grid(
        models=("pixels",),
        tasks=("verif",),
        extra="""
[[models]]
name = "vgg_face"
factory = "vgg16"
layers = ["classifier.5"]
kwargs = { weights = "/nonexistent/ckpt.pth" }

[[models]]
name = "dino"
factory = "dino"
layers = ["output"]
pooling = "cls"
kwargs = { hub_id = "facebook/dinov2-small" }
""",
    )
    bench.test_file()
    result = bench.run_subprocess()
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED [[]1[]] *weights unavailable: model 'vgg_face': *not found: /nonexistent/ckpt.pth",
            "SKIPPED [[]1[]] *weights unavailable: model 'dino': *'facebook/dinov2-small'*",
        ]
    )
    results = bench.results()
    assert set(results["model"]) == {"pixels"}
    tests = json.loads((bench.out / "run.json").read_text())["tests"]
    assert tests["test_bench.py::test_x[vgg_face-verif]"]["outcome"] == "skipped"
    assert "/nonexistent/ckpt.pth" in tests["test_bench.py::test_x[vgg_face-verif]"]["reason"]
    assert "facebook/dinov2-small" in tests["test_bench.py::test_x[dino-verif]"]["reason"]


# --- finding the grid ---------------------------------------------------------------------------
def test_facebench_config_points_at_a_grid_elsewhere(bench, monkeypatch: pytest.MonkeyPatch) -> None:
    bench.grid(models=("tiny",), tasks=("verif",))  # the default grid, which the option overrides
    elsewhere = bench.path / "configs" / "grid.toml"
    elsewhere.parent.mkdir()
    elsewhere.write_text(bench.grid_text(models=("pixels",), tasks=("sim", "inv")).replace('"data/', '"../data/'))
    bench.test_file()
    result = bench.run("--facebench-config", "configs/grid.toml")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"facebench grid: {elsewhere} (1 models, 2 tasks)"])
    assert set(zip(bench.results()["model"], bench.results()["task"])) == {("pixels", "sim"), ("pixels", "inv")}
    assert json.loads((bench.out / "run.json").read_text())["grid"]["path"] == str(elsewhere)

    # the same through the ini option, relative to the ini file even when pytest runs from a subdirectory
    bench.pytester.makeini("[pytest]\nfacebench_config = configs/grid.toml\n")
    ids = bench.collected_ids(bench.run("--collect-only", "-q"))
    assert ids == ["test_bench.py::test_x[pixels-sim]", "test_bench.py::test_x[pixels-inv]"]
    bench.pytester.mkdir("sub")
    bench.pytester.makepyfile(**{"sub/test_sub": "def test_y(model, task):\n    pass\n"})
    monkeypatch.chdir(bench.path / "sub")
    ids = bench.collected_ids(bench.run("--collect-only", "-q"))
    assert ids == ["sub/test_sub.py::test_y[pixels-sim]", "sub/test_sub.py::test_y[pixels-inv]"]


def test_tool_facebench_in_pyproject_is_found(bench) -> None:
    text = bench.grid_text(models=("pixels", "tiny"), tasks=("cond",))
    text = text.replace("[[models]]", "[[tool.facebench.models]]").replace("[[tasks]]", "[[tool.facebench.tasks]]")
    (bench.path / "pyproject.toml").write_text('[project]\nname = "demo"\n\n' + text)
    bench.pytester.mkdir("benchmarks")
    bench.pytester.makepyfile(
        **{"benchmarks/test_bench": "def test_x(model, task, facebench):\n    facebench.evaluate(model, task)\n"}
    )
    result = bench.run("benchmarks")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"facebench grid: {bench.path / 'pyproject.toml'} (2 models, 1 tasks)"])
    assert set(bench.results()["model"]) == {"pixels", "tiny"}


def test_no_grid_anywhere_is_a_clear_collection_error(bench) -> None:
    bench.test_file()
    result = bench.run()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*facebench: no grid found: pass --facebench-config FILE*"])
    bench.assert_no_traceback(result)
