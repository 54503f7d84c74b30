"""Bad grids and bad data: each problem is one clear message naming the file, the item and what was
expected, and every other cell of the grid still runs and reaches results.csv."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from pytest_facebench.grid.registry import BUILTIN_TASK_MODULES as TASK_TYPES

GOOD_CELLS = [("pixels", "verif"), ("pixels", "sim")]
VALID_TYPES = re.escape(", ".join(sorted(TASK_TYPES)) + ", or 'module:Class' / 'path/file.py:Class'")


def broken_task(
    path: str = "data/broken.csv", images: str = "data/images", type_: str = "accuracy", extra: str = ""
) -> str:
    return f'''
[[tasks]]
name = "broken"
type = "{type_}"
pairs = "{path}"
images = "{images}"
{extra}
'''


def run_with(bench, extra: str, models: tuple[str, ...] = ("pixels",)) -> pytest.RunResult:
    bench.grid(models=models, tasks=("verif", "sim"), extra=extra)
    bench.test_file()
    return bench.run()


def assert_others_ran(bench, result: pytest.RunResult, cells: list[tuple[str, str]] = GOOD_CELLS) -> None:
    """The good cells passed and their rows (only theirs) are in results.csv; no traceback leaked."""
    result.stdout.fnmatch_lines_random([f"PASSED test_bench.py::test_x[{m}-{t}]" for m, t in cells])
    assert result.parseoutcomes()["passed"] == len(cells)
    results = bench.results()
    assert sorted(set(zip(results["model"], results["task"]))) == sorted(cells)
    bench.assert_no_traceback(result)


def failure_lines(result: pytest.RunResult, node: str) -> list[str]:
    """The report section of one failed/errored test (its longrepr lines)."""
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if line.startswith("_") and f" {node} " in line)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(("_", "="))), len(lines))
    return [line for line in lines[start + 1 : end] if line.strip()]


def assert_one_line(result: pytest.RunResult, node: str, pattern: str) -> str:
    """The failure of `node` is a single line matching `pattern` (a regex)."""
    lines = failure_lines(result, node)
    assert len(lines) == 1, lines
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


# --- pairs files and images -----------------------------------------------------------------------
def test_missing_pairs_file(bench) -> None:
    result = run_with(bench, broken_task(path="data/nope.csv"))
    result.assert_outcomes(passed=2, errors=1)
    path = bench.data / "nope.csv"
    assert_one_line(
        result,
        "ERROR at setup of test_x[pixels-broken]",
        rf"^DataError: task 'broken': pairs file not found: {re.escape(str(path))}$",
    )
    assert_others_ran(bench, result)


def test_missing_images_directory(bench) -> None:
    """One failing grid item up front (not one error per model), saying where relative paths start."""
    bench.pairs["verif"].to_csv(bench.data / "broken.csv", index=False)
    result = run_with(bench, broken_task(images="data/no_such_dir"), models=("pixels", "tiny"))
    result.assert_outcomes(passed=4, failed=1)
    assert_one_line(
        result,
        "facebench grid: facebench.toml::broken",
        rf"facebench\.toml, tasks\[2\] \('broken'\): images folder not found: "
        rf"{re.escape(str(bench.data / 'no_such_dir'))} \(from images = '.*data/no_such_dir'; relative paths in a "
        rf"grid are relative to the grid file's folder, {re.escape(str(bench.path))}\)$",
    )
    assert_others_ran(bench, result, [(m, t) for m in ("pixels", "tiny") for t in ("verif", "sim")])


def test_missing_image_files_are_listed_up_to_ten_with_a_count(bench) -> None:
    ghosts = [f"ghost{i:02d}.png" for i in range(12)]
    pairs = pd.DataFrame({"img1": [bench.image_name(i) for i in range(12)], "img2": ghosts, "label": [0, 1] * 6})
    pairs.to_csv(bench.data / "broken.csv", index=False)
    result = run_with(bench, broken_task())
    result.assert_outcomes(passed=2, errors=1)
    line = assert_one_line(
        result,
        "test_x[pixels-broken]",
        rf"^DataError: {re.escape(str(bench.data / 'broken.csv'))}: 12 of 24 image file\(s\) "
        rf"not found: .*\(and 2 more\)$",
    )
    listed = re.findall(r"ghost\d\d\.png", line)
    assert listed == ghosts[:10]
    assert str(bench.data / "images" / "ghost00.png") in line
    assert_others_ran(bench, result)


def test_pairs_file_without_img1_img2_names_the_columns_found(bench) -> None:
    pairs = bench.pairs["verif"].rename(columns={"img1": "left", "img2": "right"})
    pairs.to_csv(bench.data / "broken.csv", index=False)
    result = run_with(bench, broken_task())
    result.assert_outcomes(passed=2, errors=1)
    assert_one_line(
        result,
        "test_x[pixels-broken]",
        rf"^DataError: {re.escape(str(bench.data / 'broken.csv'))}: missing column\(s\) 'img1', 'img2'; "
        r"found columns: left, right, label\. Name them in the grid with columns = ",
    )
    assert_others_ran(bench, result)


def test_labels_that_are_not_binary_name_the_values_and_lines(bench) -> None:
    pairs = bench.pairs["verif"].astype({"label": str})
    pairs.loc[1, "label"] = "maybe"  # line 3 (line 1 is the header)
    pairs.loc[3, "label"] = "2"  # line 5
    pairs.to_csv(bench.data / "broken.csv", index=False)
    result = run_with(bench, broken_task())
    result.assert_outcomes(passed=2, errors=1)
    assert_one_line(
        result,
        "test_x[pixels-broken]",
        rf"^DataError: {re.escape(str(bench.data / 'broken.csv'))}: column 'label' must be binary "
        r"\(0/1, true/false, yes/no, same/different\); found '2', 'maybe' on line\(s\) 3, 5$",
    )
    assert_others_ran(bench, result)


@pytest.mark.parametrize("groups", [["upright", "inverted", "sideways"], ["upright"]], ids=["three", "one"])
def test_relative_difference_needs_exactly_the_two_declared_groups(bench, groups: list[str]) -> None:
    pairs = bench.pairs["inv"].copy()
    pairs["orientation"] = [groups[i % len(groups)] for i in range(len(pairs))]
    pairs.to_csv(bench.data / "broken.csv", index=False)
    extra = broken_task(
        type_="relative_difference", extra='columns = { group = "orientation" }\ngroups = ["inverted", "upright"]'
    )
    result = run_with(bench, extra)
    result.assert_outcomes(passed=2, errors=1)
    counts = pairs["orientation"].value_counts()
    found = ", ".join(f"'{g}' \\({counts[g]} rows\\)" for g in groups)
    assert_one_line(
        result,
        "test_x[pixels-broken]",
        rf"^DataError: {re.escape(str(bench.data / 'broken.csv'))}: column 'orientation' must hold "
        rf"exactly the two declared groups \['inverted', 'upright'\]; found {found}$",
    )
    assert_others_ran(bench, result)


def test_corrupt_and_zero_byte_images_fail_their_task_only(bench) -> None:
    for name, content in (("corrupt", b"\x89PNG\r\n\x1a\n this is not really a png"), ("empty", b"")):
        directory = bench.data / f"{name}_images"
        directory.mkdir()
        good = [bench.image_name(i) for i in range(4)]
        for image in good:
            (directory / image).write_bytes((bench.data / "images" / image).read_bytes())
        (directory / "bad.png").write_bytes(content)
        pd.DataFrame({"img1": good, "img2": ["bad.png", good[2], "bad.png", good[0]], "label": [0, 1, 0, 1]}).to_csv(
            bench.data / f"{name}.csv", index=False
        )
    extra = "".join(
        bench.TASKS["verif"]
        .replace('"verif"', f'"{name}"')
        .replace("data/verif.csv", f"data/{name}.csv")
        .replace("data/images", f"data/{name}_images")
        for name in ("corrupt", "empty")
    )
    bench.grid(models=("pixels", "tiny"), tasks=("verif", "sim"), extra=extra)
    bench.test_file()
    result = bench.run()
    result.assert_outcomes(passed=4, failed=2, errors=2)
    for model in ("pixels", "tiny"):
        bad = re.escape(str(bench.data / "corrupt_images" / "bad.png"))
        assert_one_line(
            result,
            f"test_x[{model}-corrupt]",
            rf"^DataError: task 'corrupt' \(\S*corrupt.csv\): model '{model}': 1 image\(s\) could not be "
            rf"read: cannot decode image {bad}: ",
        )
        assert_one_line(
            result,
            f"test_x[{model}-empty]",
            rf"^DataError: {re.escape(str(bench.data / 'empty.csv'))}: 1 image file\(s\) are empty "
            rf"\(0 bytes\): {re.escape(str(bench.data / 'empty_images' / 'bad.png'))}$",
        )
    assert_others_ran(bench, result, [(m, t) for m in ("pixels", "tiny") for t in ("verif", "sim")])


# --- the grid ---------------------------------------------------------------------------------------
def test_unknown_task_type_is_a_failing_item_named_after_the_entry(bench) -> None:
    """Benchmarks take typed fixtures (`accuracy_task`...), so no cell would ever mention the entry."""
    bench.grid(models=("pixels",), tasks=("verif", "sim"), extra=broken_task(type_="acuracy"))
    bench.test_file("""
        def test_acc(model, accuracy_task, facebench):
            facebench.evaluate(model, accuracy_task)

        def test_corr(model, correlation_task, facebench):
            facebench.evaluate(model, correlation_task)
    """)
    result = bench.run()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["FAILED facebench.toml::broken - *"])
    grid = re.escape(str(bench.path / "facebench.toml"))
    assert_one_line(
        result,
        "facebench grid: facebench.toml::broken",
        rf"{grid}, tasks\[2\] \('broken'\): unknown task type 'acuracy'; expected one of {VALID_TYPES}\. "
        r"Did you mean 'accuracy'\?$",
    )
    result.stdout.fnmatch_lines_random(
        ["PASSED test_bench.py::test_acc[[]pixels-verif[]]", "PASSED test_bench.py::test_corr[[]pixels-sim[]]"]
    )
    assert set(zip(bench.results()["model"], bench.results()["task"])) == set(GOOD_CELLS)
    bench.assert_no_traceback(result)


def test_unknown_task_type_is_one_failing_item_with_a_generic_task_fixture(bench) -> None:
    result = run_with(bench, broken_task(type_="nonsense"), models=("pixels", "tiny"))
    result.assert_outcomes(passed=4, failed=1)  # once, not once per model
    assert_one_line(
        result,
        "facebench grid: facebench.toml::broken",
        r"facebench\.toml, tasks\[2\] \('broken'\): unknown task type 'nonsense'; "
        rf"expected one of {VALID_TYPES}\.$",
    )
    assert_others_ran(bench, result, [(m, t) for m in ("pixels", "tiny") for t in ("verif", "sim")])


@pytest.mark.parametrize(
    "factory, module_source, pattern",
    [
        ("no_such_module:Model", None, r"ModuleNotFoundError: No module named 'no_such_module'"),
        ("badmodel.py:Model", "import torch\ndef broken(:\n", r"SyntaxError: .*\(badmodel\.py, line 2\)"),
        ("badmodel:Model", "raise ImportError('needs opencv (cv2)')\n", r"ImportError: needs opencv \(cv2\)"),
        ("tinymodel:Tinyy", None, r"module 'tinymodel' has no 'Tinyy'; it defines .*Tiny"),
    ],
    ids=["missing-module", "syntax-error", "import-error", "missing-attribute"],
)
def test_factory_that_fails_to_import(bench, factory: str, module_source: str | None, pattern: str) -> None:
    if module_source is not None:
        (bench.path / "badmodel.py").write_text(module_source)
    result = run_with(bench, f'[[models]]\nname = "ghost"\nfactory = "{factory}"\n')
    result.assert_outcomes(passed=2, errors=2)
    for task in ("verif", "sim"):
        assert_one_line(
            result,
            f"test_x[ghost-{task}]",
            rf"^ModelError: \S*facebench.toml, models\[1\] \('ghost'\): cannot import factory "
            rf"'{re.escape(factory)}': " + pattern,
        )
    assert_others_ran(bench, result)


def test_unknown_layer_lists_the_closest_valid_names(bench) -> None:
    wrong = bench.MODELS["tiny"].replace('"tiny"', '"tiny_bad"').replace('["conv", "fc"]', '["conv", "fcc"]')
    result = run_with(bench, wrong, models=("pixels", "tiny"))
    result.assert_outcomes(passed=4, failed=2)
    for task in ("verif", "sim"):  # the second cell gets the same message, not a half-built model
        assert_one_line(
            result,
            f"test_x[tiny_bad-{task}]",
            r"^ModelError: model 'tiny_bad': unknown layer 'fcc' \(closest: fc\)\. "
            r"It has 6 layers: conv, relu, pool, flat, fc, output$",
        )
    assert_others_ran(bench, result, [(m, t) for m in ("pixels", "tiny") for t in ("verif", "sim")])


@pytest.mark.parametrize("kind", ["model", "task"])
def test_duplicate_names(bench, kind: str) -> None:
    if kind == "model":
        extra = bench.MODELS["pixels"].replace("size = 16", "size = 8")  # a second 'pixels'
        grid = bench.grid(models=("pixels", "tiny"), tasks=("verif", "sim"), extra=extra)
        first, second, name = "models[0] ('pixels')", r"models\[2\] \('pixels'\)", "pixels"
    else:
        grid = bench.grid(models=("pixels", "tiny"), tasks=("verif", "sim"), extra=bench.TASKS["verif"])
        first, second, name = "tasks[0] ('verif')", r"tasks\[2\] \('verif'\)", "verif"
    bench.test_file()
    result = bench.run()
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines([f"FAILED facebench.toml::{name} - *"])
    assert_one_line(
        result,
        f"facebench grid: facebench.toml::{name}",
        rf"{re.escape(str(grid))}, {second}: duplicate {kind} name '{name}' \(first defined at "
        rf"{re.escape(first)}\); {kind} names must be unique$",
    )
    cells = [(m, t) for m in ("pixels", "tiny") for t in ("verif", "sim")]
    assert_others_ran(bench, result, cells)
    results = bench.results()
    assert list(dict.fromkeys(results["model"])) == ["pixels", "tiny"]  # grid order, the first entry's place
    pixels = results[(results["model"] == "pixels") & (results["metric"] == "correlation")]
    assert len(pixels) == 1  # the first entry only (size 16), not the duplicate
    assert '"input_size":16' in pixels["preprocessing"].item()


def test_invalid_toml_names_the_file_and_line(bench) -> None:
    text = bench.grid_text(models=("pixels",), tasks=("verif",)) + '\n[[tasks]\nname = "x"\n'
    (bench.path / "facebench.toml").write_text(text)
    line = text.splitlines().index("[[tasks]") + 1
    bench.test_file()
    result = bench.run()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [f"*facebench: {bench.path / 'facebench.toml'}: invalid TOML: * (at line {line}, column *)"]
    )
    bench.assert_no_traceback(result)


def test_grid_entry_with_a_misspelt_key_names_the_key_and_a_suggestion(bench) -> None:
    extra = broken_task(extra='distanse = "euclidean"').replace('pairs = "data/broken.csv"', 'pairs = "data/verif.csv"')
    result = run_with(bench, extra)
    result.assert_outcomes(passed=2, failed=1)
    assert_one_line(
        result,
        "facebench grid: facebench.toml::broken",
        r"facebench\.toml, tasks\[2\] \('broken'\): unknown key 'distanse'; "
        r"did you mean 'distance'\?",
    )
    assert_others_ran(bench, result)


def test_a_misspelt_device_is_a_usage_error_before_anything_runs(bench) -> None:
    """Checked on the command line: a run served from the cell cache never builds the engine."""
    bench.grid(models=("pixels",), tasks=("verif",))
    bench.test_file()
    result = bench.run("--facebench-device", "gpu")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--facebench-device: expected auto, cpu, cuda or cuda:N, got 'gpu'*"])
    assert not (bench.out / "results.csv").exists()
