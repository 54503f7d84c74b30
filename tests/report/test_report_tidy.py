"""Tidy, honest output (issue 13): the demo-data banner of report.html, the illustrative human values of the
demo grid, skip reasons that carry a command that works, one terminal line and one report row per skip
reason, the verification table's column order, notes and protocols said once, links to the results dir's
files, the wide-table hint, float noise printed as 0, and pytest-html's link and row order."""

from __future__ import annotations

import html
import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from pytest_facebench.engine import hub
from pytest_facebench.errors import WeightsUnavailable
from pytest_facebench.report.data import normalize_results
from pytest_facebench.report.html import (
    DEMO_MARKER,
    LINKED_FILES,
    _notes,
    _protocols,
    _render_table,
    _skips,
    demo_data_tasks,
    fmt,
    render_html,
    task_table,
    write_html,
)
from pytest_facebench.report.pytest_html import grid_ordered, keep_collection_order, report_link
from pytest_facebench.report.terminal import number, skip_groups, skip_lines, summary_table

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO / "benchmarks"
Bench = Any  # the `bench` fixture of tests/conftest.py


def _demo_module():
    """benchmarks/demo_data.py, imported by path (`benchmarks` is not a package)."""
    name = "_facebench_demo_data_tidy"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / "demo_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _row(model: str, layer: str, metric: str, value: float, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "layer": layer,
        "task": extra.pop("task", "t"),
        "metric": metric,
        "condition": extra.pop("condition", ""),
        "value": value,
        **extra,
    }


# --- numbers ------------------------------------------------------------------------------------------
def test_float_noise_prints_as_zero_everywhere() -> None:
    assert fmt(-9.5e-13) == "0" and fmt(8.483e-15) == "0" and fmt(0.0) == "0"
    assert fmt(2e-9) == "2e-09" and fmt(-0.01496) == "-0.01496"
    assert number(-9.5e-13) == "0.000" and number(-0.0003) == "0.000" and number(-0.015) == "-0.015"
    # a frame of raw numbers as text (run.json counters): tiny ones print 0 too
    page = _render_table(pd.DataFrame({"x": ["-9.5e-13", "0.25"]}), "t")
    assert ">0<" in page and "e-13" not in page and ">0.25<" in page
    rows = [
        _row("pixels", "output", "relative_difference", -9.5e-13, ci_low=-0.2165, ci_high=0.2221, readout=True),
        _row("pixels", "output", "human_effect", -0.5, readout=True),
    ]
    frame = pd.DataFrame(rows).assign(task_type="relative_difference")
    table = task_table(frame, "t")
    assert table.loc[0, "Relative Difference"] == "0.00 [\u22120.22, 0.22]"  # the one number format, a true minus
    terminal = summary_table(normalize_results(frame.assign(readout=True, headline=[True, False])))
    assert "0.00 [-0.22, 0.22]" in terminal and "-0.00" not in terminal


def test_task_tables_share_a_columns_decimals_as_the_summary_does() -> None:
    """report.html's per-task tables write numbers as the Summary and the terminal do: a column shares the
    decimals its narrowest CI needs (width 0.0045 → 4), a value without a CI keeps them, and a fixed count wins."""
    rows = [
        _row("a", "output", "auc", 0.8219, ci_low=0.7318, ci_high=0.9174, readout=True),
        _row("b", "output", "auc", 0.98123, ci_low=0.9790, ci_high=0.9835, readout=True),
        _row("c", "output", "auc", 0.5, readout=True),
    ]
    frame = pd.DataFrame(rows).assign(task_type="accuracy")
    column = list(task_table(frame, "t")["AUC"])
    assert column == ["0.8219 [0.7318, 0.9174]", "0.9812 [0.9790, 0.9835]", "0.5000"]
    one = list(task_table(frame[:1], "t")["AUC"])
    assert one == ["0.82 [0.73, 0.92]"]


# --- the verification table ---------------------------------------------------------------------------
def test_in_sample_columns_follow_the_headline_columns() -> None:
    reported = ["accuracy", "auc", "optimal_threshold", "accuracy_kfold", "accuracy_kfold_std", "eer"]
    protocols = {"accuracy": "in-sample (Youden threshold chosen on all pairs)", "optimal_threshold": "in-sample (…)"}
    frame = pd.DataFrame(
        [
            _row("m", "fc", metric, 0.5, task="verif", task_type="accuracy", protocol=protocols.get(metric, "folds"))
            for metric in reported
        ]
    ).assign(readout=True, headline=lambda f: f["metric"] == "accuracy_kfold")
    columns = list(task_table(frame, "verif").columns)
    assert columns == [
        "model",
        "layer",
        "readout",
        "Accuracy (k-fold)",
        "Accuracy (k-fold) std",
        "Accuracy (in-sample)",
        "Threshold (in-sample)",
        "AUC",
        "EER",
        "n",
    ]


# --- notes and protocols --------------------------------------------------------------------------------
def test_notes_are_said_once_with_the_rows_they_concern() -> None:
    degenerate = "1 of 1000 bootstrap resamples were degenerate and left out of the CI"
    rows = pd.DataFrame(
        [
            _row("a", "l1", "x", 1, note=degenerate, protocol=""),
            _row("a", "l1", "y", 1, note=f"{degenerate}; only a", protocol=""),
            _row("b", "l2", "x", 1, note=degenerate, protocol=""),
            _row("b", "l2", "y", 1, note="model x -9.5e-13 vs human -0.5", protocol=""),
        ]
    )
    notes = _notes(rows)
    assert notes == [
        (degenerate, []),  # on every row: said once, without a scope
        ("only a", ["a · l1"]),
        ("model x 0 vs human -0.5", ["b · l2"]),  # float noise inside a sentence too
    ]


def test_protocols_are_listed_once_for_the_metrics_sharing_them() -> None:
    closed = "closed-set: 30 probes vs 10 gallery images"
    rows = pd.DataFrame([_row("m", "l", f"rank{k}", 0.5, protocol=closed) for k in (1, 2, 3)]).assign(note="")
    assert _protocols(rows, "rank1") == [f"Rank-1, Rank-2, Rank-3: {closed}"]


def test_the_report_shows_each_task_note_once(tmp_path: Path) -> None:
    note = "1 of 1000 bootstrap resamples were degenerate and left out of the CI"
    rows = [
        _row(m, layer, metric, 0.7, task="verif", task_type="accuracy", note=note, protocol="p", readout=True)
        for m in ("a", "b")
        for layer in ("l1",)
        for metric in ("accuracy_kfold", "auc")
    ]
    text = render_html(tmp_path, pd.DataFrame(rows), {}, {}, [])
    assert text.count(note) == 1
    assert text.count("<li>auc") + text.count("Accuracy (k-fold), AUC: p") == 1  # one protocol line for both


# --- skipped cells ------------------------------------------------------------------------------------
VGG = (
    "weights unavailable: model 'vgg-im': torchvision weights VGG16_Weights.IMAGENET1K_V1 are not in the torch hub "
    "cache and download.pytorch.org cannot be reached; save U as P"
)
OPEN_CLIP = "weights unavailable: model '{}': open_clip is not installed; pip install open_clip_torch"


def test_terminal_skip_lines_one_per_reason_naming_the_models() -> None:
    skips = {
        VGG: [f"vgg-im-{task}" for task in ("verif", "sim", "rsa-x")],
        OPEN_CLIP.format("clip_a"): ["clip_a-verif", "clip_a-sim"],
        OPEN_CLIP.format("clip_b"): ["clip_b-verif"],
        "not today": ["tiny-sim"],
    }
    lines = skip_lines(skips, models=["vgg-im", "clip_a", "clip_b", "tiny"])
    assert lines == [
        "skipped vgg-im (3 cells): weights unavailable: torchvision weights VGG16_Weights.IMAGENET1K_V1 are not "
        "in the torch hub cache and download.pytorch.org cannot be reached; save U as P",
        "skipped clip_a, clip_b (3 cells): weights unavailable: open_clip is not installed; pip install open_clip_torch",
        "skipped tiny (1 cell): not today",
    ]
    # without the grid's model names, the reason's `model '…'` tells where a name with '-' ends
    assert skip_lines({VGG: ["vgg-im-rsa-x"]})[0].startswith("skipped vgg-im (1 cell): weights unavailable: torch")
    assert skip_lines({"bad grid entry": ["facebench.toml::tasks[3]"]}) == [
        "skipped facebench.toml::tasks[3] (1 cell): bad grid entry"
    ]
    groups = skip_groups([("m", "t1", "r"), ("m", "t2", "r"), ("n", "t1", "r")])
    assert [(g.models, g.tasks, g.cells) for g in groups] == [(["m", "n"], ["t1", "t2"], 3)]


def test_the_report_groups_skipped_cells_by_reason(tmp_path: Path) -> None:
    tests = {
        f"t.py::test[{m}-{t}]": {"model": m, "task": t, "outcome": "skipped", "reason": OPEN_CLIP.format(m)}
        for m in ("clip_a", "clip_b")
        for t in ("verif", "sim")
    }
    tests["t.py::test[px-verif]"] = {"model": "px", "task": "verif", "outcome": "passed"}
    tests["t.py::test[px-sim]"] = {"model": "px", "task": "sim", "outcome": "failed", "reason": "boom"}
    table = _skips(tests)
    assert table.to_dict("records") == [
        {
            "models": "clip_a, clip_b",
            "tasks": "all 2",
            "cells": "4",
            "reason": "weights unavailable: open_clip is not installed; pip install open_clip_torch",
        }
    ]
    text = render_html(tmp_path, pd.DataFrame(), {"tests": tests}, {}, [])
    assert text.count("open_clip is not installed") == 1
    assert 'id="problems"' in text and ">boom<" in text and 'id="skips"' in text


# --- links and the wide-table hint --------------------------------------------------------------------
def test_links_to_the_results_files_that_exist(tmp_path: Path) -> None:
    (tmp_path / "comparisons.csv").write_text("task,metric\n")
    (tmp_path / "history.jsonl").write_text("{}\n")
    text = render_html(tmp_path, pd.DataFrame(), {}, {}, [])
    assert '<a href="comparisons.csv">comparisons.csv</a>' in text
    assert '<a href="history.jsonl">history.jsonl</a>' in text
    assert 'href="results.csv"' not in text  # not there: not linked
    assert set(re.findall(r'href="([^"#]+)"', text)) <= set(LINKED_FILES)


def test_wide_tables_carry_a_scroll_hint() -> None:
    wide = _render_table(pd.DataFrame([{f"c{i}": "x" for i in range(12)}]), "wide")
    narrow = _render_table(pd.DataFrame([{"a": "x", "b": "y"}]), "narrow")
    assert 'class="scroll-hint"' in wide and "scroll sideways" in wide
    assert "scroll-hint" not in narrow


# --- the demo banner ------------------------------------------------------------------------------------
def _grid_dir(tmp_path: Path, marked: bool) -> Path:
    """A copy of the benchmark grid beside a (tiny) demo data root, marked by the generator or not."""
    root = tmp_path / "bench"
    (root / ".demo_data" / "images").mkdir(parents=True)
    shutil.copy(BENCHMARKS / "facebench.toml", root / "facebench.toml")
    if marked:
        _demo_module().write_marker(root / ".demo_data")
    return root


def test_the_demo_generator_writes_the_marker_the_report_reads(tmp_path: Path) -> None:
    demo = _demo_module()
    assert demo.DEMO_MARKER == DEMO_MARKER
    demo.write_marker(tmp_path)
    about = json.loads((tmp_path / DEMO_MARKER).read_text())
    assert about["version"] == demo.DEMO_DATA_VERSION and "simulated" in about["human_ratings"]


def test_the_report_of_a_demo_run_says_so_at_the_top(tmp_path: Path) -> None:
    root = _grid_dir(tmp_path, marked=True)
    run = {"grid": {"path": str(root / "facebench.toml")}}
    tasks = demo_data_tasks(run)
    assert list(tasks) == ["verification", "similarity", "morph_rsa", "identification", "conditions", "inversion"] + [
        "thatcher"
    ]
    assert set(tasks.values()) == {str((root / ".demo_data").resolve())}
    results = pd.DataFrame([_row("px", "out", "auc", 0.7, task="verification", task_type="accuracy")])
    out = tmp_path / "out"
    write_html(out, results=results, run=run)
    text = (out / "report.html").read_text()
    banner = re.search(r'<div class="banner" id="demo-data">(.*?)</div>', text)
    assert banner and text.index('id="demo-data"') < text.index('id="overview"')
    said = html.unescape(banner.group(1))
    for words in ("drawn (synthetic cartoon) faces", "simulated", "rater noise", "illustrative", "No number"):
        assert words in said
    assert "Tasks on the demo data" not in said  # every task of the report reads it


def test_no_banner_without_the_marker_or_the_grid(tmp_path: Path) -> None:
    root = _grid_dir(tmp_path, marked=False)
    assert demo_data_tasks({"grid": {"path": str(root / "facebench.toml")}}) == {}
    assert demo_data_tasks({"grid": {"path": str(tmp_path / "gone.toml")}}) == {}
    assert demo_data_tasks({}) == {}
    text = render_html(tmp_path, pd.DataFrame(), {"grid": {"path": str(root / "facebench.toml")}}, {}, [])
    assert 'id="demo-data"' not in text


def test_a_grid_mixing_demo_and_real_data_names_the_demo_tasks(tmp_path: Path) -> None:
    marked = tmp_path / "demo"
    marked.mkdir()
    (marked / DEMO_MARKER).write_text("{}")
    (tmp_path / "pyproject.toml").write_text(
        "[[tool.facebench.tasks]]\nname = 'real'\ntype = 'accuracy'\npairs = 'real/pairs.csv'\nimages = 'real'\n"
        "[[tool.facebench.tasks]]\nname = 'toy'\ntype = 'accuracy'\npairs = 'demo/pairs.csv'\nimages = 'demo/images'\n"
    )
    run = {"grid": {"path": str(tmp_path / "pyproject.toml")}}
    assert list(demo_data_tasks(run)) == ["toy"]
    results = pd.DataFrame([_row("m", "l", "auc", 0.5, task=t, task_type="accuracy") for t in ("real", "toy")])
    text = html.unescape(render_html(tmp_path, results, run, {}, []))
    assert "Tasks on the demo data: toy." in text


# --- the demo grid's human values -----------------------------------------------------------------------
def test_the_demo_grid_declares_illustrative_human_values() -> None:
    from pytest_facebench.grid.config import load_grid
    from pytest_facebench.report.data import references_from_grid

    grid = load_grid(BENCHMARKS / "facebench.toml")
    assert not [t.error for t in grid.tasks if t.error]
    by_type: dict[str, list[Any]] = {}
    for task in grid.tasks:
        by_type.setdefault(task.type, []).append(task)
    assert all(isinstance(t.options.get("human_effect"), float) for t in by_type["relative_difference"])
    assert all(t.options.get("human_effect") for t in by_type["conditions"])
    references = references_from_grid(grid)
    assert {r["task"] for r in references} == {"verification", "identification"}
    assert all("illustrative" in r["source"] and "illustrative" in r["label"] for r in references)
    assert "ILLUSTRATIVE" in (BENCHMARKS / "facebench.toml").read_text()


# --- skip reasons carry a command that works -----------------------------------------------------------
@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEBENCH_OFFLINE", "1")


def test_hugging_face_skip_names_the_hf_cli(offline: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "hf_cached_file", lambda *a, **k: None)
    with pytest.raises(WeightsUnavailable) as info:
        hub.hf_check_available("facebook/dinov2-small", None, "dino")
    message = str(info.value)
    assert "hf download facebook/dinov2-small" in message and "huggingface-cli" not in message
    assert "FACEBENCH_OFFLINE is set" in message and "\n" not in message
    with pytest.raises(WeightsUnavailable, match=r"hf download org/repo --revision v1\.0"):
        hub.hf_check_available("org/repo", "v1.0", "m")
    assert hub.hf_download_command("a b/c") == "hf download 'a b/c'"


def test_torchvision_skip_names_the_cache_path_the_url_and_a_command(
    offline: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from pytest_facebench.zoo.vgg16 import IMAGENET_URL, Vgg16

    monkeypatch.setattr(torch.hub, "_hub_dir", torch.hub._hub_dir)  # restored after the test
    torch.hub.set_dir(str(tmp_path / "hub dir"))
    path = Path(torch.hub.get_dir()) / "checkpoints" / "vgg16-397923af.pth"
    with pytest.raises(WeightsUnavailable) as info:
        Vgg16(name="vgg_in", weights="imagenet").check_weights()
    message = str(info.value)
    assert f"save {IMAGENET_URL} as {path}" in message
    assert f"curl -L --create-dirs -o '{path}' {IMAGENET_URL}" in message
    from torchvision.models import VGG16_Weights

    with pytest.raises(WeightsUnavailable) as again:
        hub.torchvision_state_dict(VGG16_Weights.IMAGENET1K_V1, "vgg_in")
    assert f"curl -L --create-dirs -o '{path}' {IMAGENET_URL}" in str(again.value)


# --- pytest-html ----------------------------------------------------------------------------------------
def test_rows_return_to_collection_order() -> None:
    from pytest_html.basereport import BaseReport

    report = BaseReport.__new__(BaseReport)
    report._report = SimpleNamespace(_data={"tests": {"t::c": [3], "t::a": [1], "other": [9], "t::b": [2]}})
    config = SimpleNamespace(pluginmanager=SimpleNamespace(get_plugins=lambda: [object(), report]))
    keep_collection_order(config, {"t::a": 0, "t::b": 1, "t::c": 2})  # type: ignore[arg-type]
    assert list(report._report._data["tests"]) == ["t::a", "t::b", "t::c", "other"]


def test_summary_rows_follow_the_grid() -> None:
    frame = pd.DataFrame(
        [_row(m, "l", "auc", 0.5, task=t) for t, m in (("sim", "b"), ("verif", "b"), ("verif", "a"), ("x", "z"))]
    )
    ordered = grid_ordered(frame, {"a": 0, "b": 1}, {"verif": 0, "sim": 1})
    assert list(zip(ordered["task"], ordered["model"])) == [("verif", "a"), ("verif", "b"), ("sim", "b"), ("x", "z")]


def test_report_link_is_relative_to_the_pytest_html_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    options = {"facebench_no_report": False, "facebench_out": "results", "htmlpath": "ph/index.html"}
    config = SimpleNamespace(
        getoption=lambda name, default=None: options.get(name, default),
        pluginmanager=SimpleNamespace(get_plugin=lambda name: SimpleNamespace(out_dir=tmp_path / "my results")),
    )
    link = report_link(config)  # type: ignore[arg-type]
    assert '<a href="../my%20results/report.html">' in link and str(tmp_path / "my results") in link
    options["facebench_no_report"] = True
    assert report_link(config) == ""  # type: ignore[arg-type]


REGISTER_HTML = """
def pytest_configure(config):
    from pytest_facebench.report.pytest_html import register
    register(config)
"""


def test_pytest_html_under_xdist_links_the_report_and_keeps_collection_order(bench: Bench) -> None:
    bench.grid(tasks=("verif", "sim", "cond"))
    bench.test_file()
    bench.pytester.makeconftest(REGISTER_HTML)
    collected = bench.collected_ids(bench.run("--collect-only", "-q"))
    result = bench.run_subprocess("-n", "2", "--html=ph/report.html")
    result.assert_outcomes(passed=6)
    text = (bench.path / "ph" / "report.html").read_text(encoding="utf-8")
    blob = re.search(r'data-jsonblob="([^"]*)"', text)
    assert blob
    data = json.loads(html.unescape(blob.group(1)))
    assert list(data["tests"]) == collected and len(collected) == 6
    assert '<a href="../out/report.html">' in text  # the summary section: plain html of the page
