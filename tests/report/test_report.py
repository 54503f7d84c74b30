"""Reports: plots/ (PNG files that decode, the expected panels, one colour per model), report.html
(self-contained, every task, model and skip reason, reference values), `python -m pytest_facebench
report` (same tables from saved results, merging dirs), pytest-html columns and extras (also under
xdist), and a real headless-browser rendering when Debian's chromium is installed.

Synthetic results dirs come from `bench/report_speed.py`; real ones from pytester runs of the tiny grid.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pytest_facebench.__main__ import main as cli_main
from pytest_facebench.report.data import (
    load_references,
    model_colors,
    read_manifest,
    read_results,
    reference_rows,
    references_from_grid,
)
from pytest_facebench.report.html import summary_table, write_html
from pytest_facebench.report.plots import MAX_BARS, write_plots

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
Bench = Any  # the `bench` fixture of conftest.py: a tiny benchmark project in pytester's directory
MODELS = ["model_00", "model_01", "model_02"]
REFERENCES = [
    {"task": "task_00_accuracy", "model": "model_01", "metric": "accuracy", "value": 99.38, "source": "Paper 2017"},
    {"task": "task_00_accuracy", "metric": "accuracy", "value": 0.975, "label": "human", "source": "Kumar 2009"},
    {"task": "task_03_relative_difference", "value": 0.05, "label": "human effect"},
]


def _speed_module():
    spec = importlib.util.spec_from_file_location("report_speed", REPO / "bench" / "report_speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_dir(path: Path, n_models: int = 3, n_tasks: int = 5, n_layers: int = 3, seed: int = 0) -> Path:
    """A synthetic results dir (all four task types + extras: an identification task with rank-k
    metrics, a task of an unknown type, a custom record), one skipped cell."""
    out = _speed_module().make_results_dir(path, n_models, n_tasks, n_layers, n_pairs=60, seed=seed, skipped=1)
    results = pd.read_csv(out / "results.csv")
    extra = []
    for model in MODELS[:n_models]:
        for k, rank in enumerate((1, 5, 10)):
            extra.append(
                {
                    "model": model,
                    "layer": "encoder.layers.0",
                    "layer_index": 0,
                    "task": "ident",
                    "task_type": "identification",
                    "metric": f"rank{rank}",
                    "value": 0.5 + 0.1 * k,
                    "readout": True,
                }
            )
        for layer in range(2):
            extra.append(
                {
                    "model": model,
                    "layer": f"blocks.{layer}",
                    "layer_index": layer,
                    "task": "mystery",
                    "task_type": "brand_new_type",
                    "metric": "weirdness",
                    "value": 0.1 * layer,
                    "ci_low": 0.05 * layer,
                    "ci_high": 0.15 * layer + 0.01,
                    "readout": layer == 1,
                }
            )
        extra.append(
            {
                "model": model,
                "layer": "",
                "task": "task_00_accuracy",
                "task_type": "custom",
                "metric": "my_score",
                "value": 0.9,
            }
        )
        # an rsa task: 8 stimuli, every pair once, a human column named by the task
        rng = np.random.default_rng(len(extra))
        pairs = [(a, b) for a in range(8) for b in range(a + 1, 8)]
        table = pd.DataFrame(
            {
                "img1": [f"s{a}.png" for a, _ in pairs],
                "img2": [f"s{b}.png" for _, b in pairs],
                "human_distance": [abs(a - b) / 8 for a, b in pairs],
            }
        )
        for layer in range(2):
            table[f"blocks.{layer}"] = table["human_distance"] + rng.normal(0, 0.1, len(pairs))
            rsa = pd.Series(table[f"blocks.{layer}"]).rank().corr(table["human_distance"].rank())
            extra.append(
                {
                    "model": model,
                    "layer": f"blocks.{layer}",
                    "layer_index": layer,
                    "task": "rdm_task",
                    "task_type": "rsa",
                    "metric": "rsa",
                    "value": rsa,
                    "protocol": "spearman",
                    "readout": layer == 1,
                }
            )
        (out / "distances" / "rdm_task").mkdir(exist_ok=True)
        table.to_csv(out / "distances" / "rdm_task" / f"{model}.csv", index=False)
    pd.concat([results, pd.DataFrame(extra)], ignore_index=True).to_csv(out / "results.csv", index=False)
    return out


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = make_dir(tmp_path_factory.mktemp("synthetic") / "results")
    write_plots(out, references=REFERENCES, dpi=60)  # small PNGs: quicker, and still checkable
    write_html(out, references=REFERENCES)
    return out


class _Parser(HTMLParser):
    """Collects URLs (src, href, style url()), tables (id → rows of cell texts) and image sources."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.images: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href", "action", "poster", "data"):
            if values.get(name):
                self.urls.append(values[name])
        self.urls += re.findall(r"url\(([^)]*)\)", values.get("style") or "")
        if tag == "img":
            self.images.append(values.get("src") or "")
        if tag == "table":
            self._table = values.get("id") or f"table{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = []
            self.tables[self._table].append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse(path: Path) -> _Parser:
    parser = _Parser()
    text = path.read_text(encoding="utf-8")
    parser.feed(text)
    parser.close()
    parser.urls += re.findall(r"url\(([^)]*)\)", text)  # in <style> too
    return parser


def assert_self_contained(page: _Parser, text: str) -> None:
    """Nothing is loaded from outside the file; the only other links name the results dir's own files
    (report.html lies among them), which a click opens and the page never fetches."""
    from pytest_facebench.report.html import LINKED_FILES

    for url in page.urls:
        assert url.startswith(("data:", "#")) or url in LINKED_FILES, f"external or relative reference: {url[:80]}"
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", text)
    assert "@import" not in text


# --- plots ----------------------------------------------------------------------------------------
def test_plots_exist_decode_and_have_the_expected_panels(synthetic: Path) -> None:
    manifest = read_manifest(synthetic)
    entries = manifest["plots"]
    for entry in entries:
        with Image.open(synthetic / entry["file"]) as image:
            image.load()
            assert image.format == "PNG" and image.width > 120 and image.height > 90
    kinds = {(e["task"], e["kind"]): e for e in entries}
    assert kinds[(None, "overview")]["axes"] == 1
    # model_02 is skipped on task_00 (one skipped cell: the last model on the first task)
    assert kinds[("task_00_accuracy", "headline")]["axes"] == 1
    assert kinds[("task_00_accuracy", "roc")]["items"] == 2
    assert kinds[("task_00_accuracy", "distributions")]["axes"] == 2  # one panel per model
    assert kinds[("task_01_correlation", "scatter")]["axes"] == 3 * 3  # every model·layer fits in 12 panels
    assert kinds[("task_02_conditions", "conditions")]["items"] == 3
    assert kinds[("task_02_conditions", "layer_profile")]["axes"] == 3  # one panel per condition
    assert ("task_02_conditions", "headline") not in kinds  # per-condition metric: the condition bars instead
    assert kinds[("task_03_relative_difference", "conditions")]["title"].startswith(
        "task_03_relative_difference: Group Mean"
    )
    assert kinds[("ident", "cmc")]["items"] == 3
    assert kinds[("rdm_task", "rdm")]["axes"] == 1 + 3  # the human RDM and one per model
    assert {k for t, k in kinds if t == "mystery"} == {"headline", "layer_profile"}  # unknown type: generic
    for task in ("task_00_accuracy", "task_01_correlation", "task_03_relative_difference", "task_04_accuracy"):
        assert kinds[(task, "layer_profile")]["axes"] == 1
        assert kinds[(task, "headline")]["items"] == (2 if task == "task_00_accuracy" else 3) * 3
    on_disk = sorted(p.name for p in (synthetic / "plots").glob("*.png"))
    assert on_disk == sorted(Path(e["file"]).name for e in entries)


def test_each_model_keeps_its_colour_in_every_figure(synthetic: Path) -> None:
    colors = read_manifest(synthetic)["colors"]
    assert colors == model_colors(MODELS)
    assert len(set(colors.values())) == len(MODELS)
    for name in ("task_00_accuracy__roc.png", "task_02_conditions__mean_distance_conditions.png"):
        pixels = np.asarray(Image.open(synthetic / "plots" / name).convert("RGB"), dtype=int)
        for model, color in colors.items():
            if name.endswith("roc.png") and model == "model_02":
                continue  # skipped on that task
            rgb = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])
            close = (np.abs(pixels - rgb).sum(axis=-1) < 30).sum()
            assert close > 20, f"{model}'s colour {color} missing from {name}"


def test_many_layers_keep_the_bar_chart_legible(tmp_path: Path) -> None:
    rows = [
        {
            "model": m,
            "layer": f"features.{i}",
            "layer_index": i,
            "task": "t",
            "task_type": "accuracy",
            "metric": "accuracy",
            "value": 0.5 + i / 200 + j / 100,
            "readout": i == 36,
        }
        for j, m in enumerate(["vgg_a", "vgg_b"])
        for i in range(37)
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "results.csv", index=False)
    write_plots(tmp_path)
    entries = {e["kind"]: e for e in read_manifest(tmp_path)["plots"]}
    assert entries["headline"]["items"] <= MAX_BARS
    assert entries["layer_profile"]["items"] == 2
    with Image.open(tmp_path / entries["headline"]["file"]) as image:
        assert image.height <= 14 * 100 + 1


def test_no_pyplot_state_and_a_rebuild_drops_stale_figures(synthetic: Path, tmp_path: Path) -> None:
    out = shutil.copytree(synthetic, tmp_path / "copy")
    had_pyplot = "matplotlib.pyplot" in sys.modules
    results = read_results(out)
    write_plots(out, results[results["task"] == "mystery"])
    assert not (out / "plots" / "ident__cmc.png").exists()
    if not had_pyplot:
        assert "matplotlib.pyplot" not in sys.modules
    else:
        import matplotlib.pyplot as plt

        assert plt.get_fignums() == []


def test_missing_distances_and_empty_results_still_give_a_report(tmp_path: Path) -> None:
    out = make_dir(tmp_path / "r", n_models=2, n_tasks=4, n_layers=2)
    shutil.rmtree(out / "distances")
    write_plots(out)
    kinds = {e["kind"] for e in read_manifest(out)["plots"]}
    assert "headline" in kinds and "roc" not in kinds and "scatter" not in kinds
    assert write_html(out).is_file()

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "run.json").write_text(
        json.dumps(
            {
                "tests": {
                    "t.py::test[m-x]": {
                        "outcome": "skipped",
                        "model": "m",
                        "task": "x",
                        "reason": "weights unavailable: nope",
                    }
                }
            }
        )
    )
    assert write_plots(empty) == []
    text = write_html(empty).read_text()
    assert "weights unavailable: nope" in text and "No results" in text


def test_parallel_drawing_writes_the_same_figures(tmp_path: Path) -> None:
    out = make_dir(tmp_path / "p", n_models=2, n_tasks=2, n_layers=2)
    serial = write_plots(out, workers=1, dpi=40)
    first = read_manifest(out)
    parallel = write_plots(out, workers=2, dpi=40)  # spawned processes, one job per task
    assert parallel == serial
    assert read_manifest(out) == first


def test_a_failing_figure_is_reported_not_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_facebench.report import plots

    out = make_dir(tmp_path / "e", n_models=2, n_tasks=2, n_layers=2)
    monkeypatch.setattr(plots._Plotter, "scatter", lambda self, *args: 1 / 0)
    written = write_plots(out, workers=1, dpi=40)
    manifest = read_manifest(out)
    assert manifest["errors"] == [
        {"task": "task_01_correlation", "kind": "scatter", "error": "ZeroDivisionError: division by zero"}
    ]
    assert any(p.name == "task_01_correlation__headline.png" for p in written)
    assert "The scatter figure failed: ZeroDivisionError: division by zero" in write_html(out).read_text()


# --- report.html ----------------------------------------------------------------------------------
def test_html_is_self_contained_and_names_every_task_model_and_skip_reason(synthetic: Path) -> None:
    path = synthetic / "report.html"
    text = path.read_text(encoding="utf-8")
    page = parse(path)
    assert_self_contained(page, text)
    assert "http://" not in text and "https://" not in text
    results = read_results(synthetic)
    for task in dict.fromkeys(results["task"]):
        assert f'id="task-{task}"' in text
    body = " ".join(page.text)
    for model in MODELS:
        assert model in body
    run = json.loads((synthetic / "run.json").read_text())
    skipped = [t for t in run["tests"].values() if t["outcome"] == "skipped"]
    assert skipped and all(t["reason"] in body for t in skipped)
    assert len(page.images) == len(read_manifest(synthetic)["plots"])
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    summary = page.tables["summary"]
    assert summary[0][:2] == ["model", "readout layer"] and summary[0][2].startswith("task_00_accuracy")
    assert [row[0] for row in summary[1 : 1 + len(MODELS)]] == MODELS
    assert all(row[0].startswith(("noise ceiling", "human")) for row in summary[1 + len(MODELS) :])
    assert "<script>" in text and "sortable" in text
    assert run["git_commit"] in text and run["grid"]["sha256"][:16] in text


def test_reference_values_show_reproduced_published_and_delta(synthetic: Path) -> None:
    page = parse(synthetic / "report.html")
    table = page.tables["references"]
    header, rows = table[0], table[1:]
    assert header[:7] == ["task", "model", "metric", "layer", "reproduced", "published", "delta"]
    by_model = {(r[0], r[1], r[6]): r for r in rows}
    results = read_results(synthetic)
    accuracy = results.query("task == 'task_00_accuracy' and model == 'model_01' and metric == 'accuracy' and readout")[
        "value"
    ].item()
    row = next(r for r in rows if r[1] == "model_01" and r[7] == "model")
    assert row[5] == "0.9938" and float(row[4]) == pytest.approx(accuracy, abs=5e-4)
    assert float(row[6]) == pytest.approx(accuracy - 0.9938, abs=5e-4)
    assert "published in %" in row[8]
    human = [r for r in rows if r[7] == "human" and r[0] == "task_00_accuracy"]
    assert len(human) == 2  # task-level: every model evaluated on the task
    assert load_references(synthetic)[0]["value"] == 99.38  # saved for rebuilds
    assert by_model


def test_references_from_grid_tables() -> None:
    class Spec:
        def __init__(self, name: str, reference: dict) -> None:
            self.name, self.reference = name, reference

    class Grid:
        tasks = [
            Spec("lfw", {"accuracy": 0.9753, "source": "human"}),
            Spec("sim", {"dlib": {"correlation": 0.4, "paper": "X"}}),
        ]
        models = [
            Spec("dlib", {"lfw": 99.38, "source": "King 2017"}),
            Spec("vgg", {"lfw": {"auc": 0.99, "layer": "fc7"}}),
        ]

    refs = references_from_grid(Grid())
    assert {"task": "lfw", "model": None, "metric": "accuracy", "value": 0.9753, "source": "human"} in refs
    assert {"task": "sim", "model": "dlib", "metric": "correlation", "value": 0.4, "source": "X"} in refs
    assert {"task": "lfw", "model": "dlib", "metric": None, "value": 99.38, "source": "King 2017"} in refs
    assert {"task": "lfw", "model": "vgg", "metric": "auc", "value": 0.99, "layer": "fc7"} in refs
    frame = pd.DataFrame(
        [
            {
                "model": "dlib",
                "layer": "out",
                "task": "lfw",
                "task_type": "accuracy",
                "metric": "accuracy",
                "value": 0.99,
                "readout": True,
            }
        ]
    )
    table = reference_rows(frame, [r for r in refs if r["model"] == "dlib" and r["task"] == "lfw"], {"lfw": "accuracy"})
    assert table.loc[0, "published"] == pytest.approx(0.9938)
    assert table.loc[0, "delta"] == pytest.approx(0.99 - 0.9938)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (/usr/bin/chromium)")
def test_headless_chromium_renders_the_tables_and_figures(synthetic: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        "--window-size=1400,3000",
        (synthetic / "report.html").resolve().as_uri(),
    ]
    # not PIPEs: chromium's helper processes outlive it and would hold them open (~10 s)
    with open(tmp_path / "chromium.log", "wb") as log:
        subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, timeout=60, check=False)
    assert shot.is_file(), "chromium wrote no screenshot"
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=int)
    assert pixels.shape[:2] == (3000, 1400)
    gray = pixels.mean(axis=-1)
    assert (gray < 100).sum() > 5000, "no text rendered"
    saturation = pixels.max(axis=-1) - pixels.min(axis=-1)
    assert (saturation > 80).sum() > 20000, "no figure rendered (the heatmap and charts are colourful)"
    packed = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
    assert len(np.unique(packed)) > 500


# --- python -m pytest_facebench report ---------------------------------------------------------------
def tables(path: Path) -> dict[str, list[list[str]]]:
    return {
        k: v
        for k, v in parse(path).tables.items()
        if k in ("summary", "references", "problems", "skips") or k.startswith("task-")
    }


def test_report_command_rebuilds_the_same_tables_in_place_and_elsewhere(
    synthetic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = tables(synthetic / "report.html")
    copy = shutil.copytree(synthetic, tmp_path / "copy")
    (copy / "report.html").unlink()
    assert cli_main(["report", str(copy), "--no-plots"]) == 0  # figures: see the merge test
    assert f"report: {copy / 'report.html'}" in capsys.readouterr().out
    assert tables(copy / "report.html") == original

    elsewhere = tmp_path / "elsewhere"
    result = subprocess.run(
        [sys.executable, "-m", "pytest_facebench", "report", str(synthetic), "--out", str(elsewhere), "--no-plots"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # written elsewhere means derived again from the per-cell records, which a hand-made folder lacks
    assert result.returncode == 2 and "has no per-cell records (cells/)" in result.stderr, result.stderr


def test_report_command_rejects_a_dir_without_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["report", str(tmp_path)]) == 2
    assert "not a results dir" in capsys.readouterr().err


# --- a real run (pytester) --------------------------------------------------------------------------
REGISTER_HTML = """
def pytest_configure(config):
    from pytest_facebench.report.pytest_html import register
    register(config)
"""

FAILING = """
import pytest

def test_x(model, task, facebench):
    if model.name == "tiny" and task.name == "sim":
        pytest.skip("not today")
    facebench.evaluate(model, task)
    assert task.name != "cond", "a deliberate failure"
"""


def test_report_of_a_real_run_with_failures_and_the_command_reproduces_it(bench: Bench) -> None:
    bench.grid()
    bench.test_file(FAILING)
    result = bench.run()
    result.assert_outcomes(passed=5, failed=2, skipped=1)
    if not (bench.out / "report.html").is_file():  # until the session writes it itself
        write_plots(bench.out, pd.read_csv(bench.out / "results.csv"))
        write_html(bench.out, results=pd.read_csv(bench.out / "results.csv"))
    text = (bench.out / "report.html").read_text()
    page = parse(bench.out / "report.html")
    assert_self_contained(page, text)
    for name in ("pixels", "tiny", "verif", "sim", "cond", "inv", "not today", "a deliberate failure"):
        assert name in text
    problems = page.tables["problems"]
    assert sorted(r[0] for r in problems[1:]) == ["failed", "failed"]
    assert page.tables["skips"][1:] == [["tiny", "sim", "1", "not today"]]  # skipped cells: one row per reason
    results = read_results(bench.out)
    expected = summary_table(results)
    assert page.tables["summary"][0][:2] == list(expected.columns)[:2]
    assert [r[0] for r in page.tables["summary"][1:3]] == ["pixels", "tiny"]
    rebuilt = bench.path / "rebuilt"
    assert cli_main(["report", str(bench.out), "--out", str(rebuilt), "--no-plots"]) == 0
    assert tables(rebuilt / "report.html") == tables(bench.out / "report.html")


def pytest_html_rows(report: Path) -> tuple[str, list[dict]]:
    text = report.read_text(encoding="utf-8")
    blob = re.search(r'data-jsonblob="([^"]*)"', text)
    assert blob, "no pytest-html data blob"
    import html

    data = json.loads(html.unescape(blob.group(1)))
    return text, [row for rows in data["tests"].values() for row in rows]


def check_pytest_html(report: Path, expect_cells: set[str]) -> None:
    text, rows = pytest_html_rows(report)
    for header in (
        'data-column-type="fbmodel">Model',
        'data-column-type="fbtask">Task',
        'data-column-type="fbheadline">Headline metric',
    ):
        assert header in text
    seen = set()
    for row in rows:
        cells = row["resultsTableRow"]
        assert len(cells) == 7  # result, test, model, task, headline, duration, links
        model = re.search(r'class="col-fbmodel">([^<]*)<', cells[2]).group(1)
        task = re.search(r'class="col-fbtask">([^<]*)<', cells[3]).group(1)
        headline = re.search(r'class="col-fbheadline">([^<]*)<', cells[4]).group(1)
        seen.add(f"{model}-{task}")
        if task in ("verif", "sim") and "passed" in cells[0].lower():
            from pytest_facebench.grid.registry import builtin_task_types
            from pytest_facebench.outputs.metrics import display_name

            name = display_name(builtin_task_types()["accuracy" if task == "verif" else "correlation"].headline)
            assert re.match(re.escape(name) + r" -?\d", headline), headline
        if "passed" in cells[0].lower():
            kinds = [e["format_type"] for e in row["extras"]]
            assert kinds.count("html") == 1 and kinds.count("image") == 1, kinds
    assert expect_cells <= seen
    assert "facebench-summary" in text and "facebench overview" in text


def test_pytest_html_gains_columns_extras_and_summary(bench: Bench) -> None:
    bench.grid(tasks=("verif", "sim", "cond"))
    bench.test_file()
    bench.pytester.makeconftest(REGISTER_HTML)
    result = bench.run("--html=ph/report.html", "--self-contained-html")
    result.assert_outcomes(passed=6)
    check_pytest_html(bench.path / "ph" / "report.html", {"pixels-verif", "tiny-sim", "tiny-cond"})


def test_pytest_html_under_xdist(bench: Bench) -> None:
    bench.grid(tasks=("verif", "sim"))
    bench.test_file()
    bench.pytester.makeconftest(REGISTER_HTML)
    result = bench.run_subprocess("-n", "2", "--html=ph/report.html")
    result.assert_outcomes(passed=4)
    check_pytest_html(bench.path / "ph" / "report.html", {"pixels-verif", "pixels-sim", "tiny-verif", "tiny-sim"})


def test_silent_without_pytest_html(bench: Bench) -> None:
    bench.grid(models=("pixels",), tasks=("verif",))
    bench.test_file()
    bench.pytester.makeconftest(REGISTER_HTML)
    result = bench.run("-p", "no:html")
    result.assert_outcomes(passed=1)
    assert "facebench-html" not in result.stdout.str()


def test_summary_marks_the_best_sorts_by_direction_and_ends_with_reference_rows() -> None:
    from pytest_facebench.report.html import summary_html

    def rows(model: str, eer: float, r: float, effect: float) -> list[dict]:
        base = {"model": model, "layer": "out", "layer_index": 0, "readout": True, "condition": ""}
        return [
            {**base, "task": "verif", "task_type": "accuracy", "metric": "eer", "value": eer, "headline": True},
            {**base, "task": "sim", "task_type": "correlation", "metric": "correlation", "value": r, "headline": True},
            {**base, "task": "sim", "task_type": "correlation", "metric": "correlation_ceiling_low", "value": 0.9},
            {**base, "task": "sim", "task_type": "correlation", "metric": "correlation_ceiling_high", "value": 0.95},
            {**base, "task": "inv", "task_type": "relative_difference", "metric": "relative_difference"}
            | {"value": effect, "headline": True, "target": -0.15},
            {**base, "task": "inv", "task_type": "relative_difference", "metric": "human_effect", "value": -0.15}
            | {"protocol": "declared in the grid (relative_difference)"},
        ]

    frame = pd.DataFrame(rows("a", 0.30, 0.50, -0.30) + rows("b", 0.20, 0.60, -0.10))
    frame["ci_low"], frame["ci_high"] = frame["value"] - 0.05, frame["value"] + 0.05
    text = summary_html(frame)
    head = re.findall(r"<th>(.*?)</th>", text)
    assert head[2:] == [
        'verif<br><span class="ci">EER ↓</span>',
        'sim<br><span class="ci">Correlation r ↑</span>',
        'inv<br><span class="ci">Relative Difference target −0.15</span>',
    ]
    body, foot = text.split("<tfoot>")
    # bold: b's lower EER and higher r; b's effect (−0.10) is closer to −0.15 than a's (−0.30)
    assert re.findall(r'<b class="best">([^<]*)</b>', body) == ["0.20", "0.60", "−0.10"]
    # sort keys: smaller is better in every column (EER as is, r negated, the distance to the target)
    keys = [float(k) for k in re.findall(r'data-v="([^"]+)"', body.split("<tbody>")[1].split("</tr>")[0])]
    assert keys == pytest.approx([0.30, -0.50, 0.15])
    assert "noise ceiling (low)" in foot and "noise ceiling (high)" in foot and ">human<" in foot
