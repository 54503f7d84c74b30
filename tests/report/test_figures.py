"""Figures for a paper: formats and resolution, colours and labels from the grid (stable by model name),
axis labels naming the quantity, chance lines, ROC and CMC bands, layer profiles, RDMs, the forest plot of
comparisons, the overview coloured by metric direction, and titles that are never clipped.

Each test reads what a figure contains (titles, labels, artists, colours) through `plots.draw_figures`, which
builds the figures `write_plots` writes without saving them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib import colormaps
from matplotlib.colors import to_hex, to_rgba
from PIL import Image

from pytest_facebench.__main__ import main as cli_main
from pytest_facebench.grid.config import load_grid
from pytest_facebench.outputs.reading import read_records
from pytest_facebench.outputs.write import write_outputs
from pytest_facebench.report.data import (
    _name_slot,
    _palette,
    model_colors,
    model_labels,
    model_styles_from_grid,
    read_manifest,
    read_run,
)
from pytest_facebench.report.figures.base import FORMATS, titles
from pytest_facebench.report.figures.draw import NEUTRAL, roc_curve
from pytest_facebench.report.figures.labels import chance_level, distance_label, metric_label
from pytest_facebench.report.html import write_html
from pytest_facebench.report.plots import draw_figures, write_plots

Bench = Any  # the `bench` fixture of conftest.py
CMC_PROTOCOL = "closed-set: 40 probes vs 20 gallery images (10 probe identities), cosine distance, ties pessimistic"


# --- synthetic results dirs -------------------------------------------------------------------------
def row(model: str, task: str, task_type: str, metric: str, value: float, layer: str = "out", index: int = 0, **extra):
    return {
        "model": model,
        "layer": layer,
        "layer_index": index,
        "task": task,
        "task_type": task_type,
        "metric": metric,
        "value": value,
        "distance": "cosine",
        "readout": True,
        **extra,
    }


def write_dir(
    out: Path,
    rows: list[dict[str, Any]],
    distances: dict[tuple[str, str], pd.DataFrame] | None = None,
    comparisons: list[dict[str, Any]] | None = None,
) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out / "results.csv", index=False)
    for (task, model), table in (distances or {}).items():
        (out / "distances" / task).mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "distances" / task / f"{model}.csv", index=False)
    if comparisons:
        pd.DataFrame(comparisons).to_csv(out / "comparisons.csv", index=False)
    return out


def verification_dir(out: Path, models: tuple[str, ...] = ("vgg", "clip"), task: str = "lfw", n: int = 200) -> Path:
    rng = np.random.default_rng(0)
    rows, distances = [], {}
    labels = np.arange(n) % 2 == 0
    for i, model in enumerate(models):
        table = pd.DataFrame({"img1": [f"a{p}.png" for p in range(n)], "img2": [f"b{p}.png" for p in range(n)]})
        table["label"] = labels.astype(int)
        for k, layer in enumerate(("block3", "block5")):
            table[layer] = np.abs(0.6 - (0.15 + 0.1 * i + 0.05 * k) * labels + rng.normal(0, 0.15, n))
            accuracy = 0.7 + 0.05 * i + 0.05 * k
            rows.append(
                row(model, task, "accuracy", "accuracy_kfold", accuracy, layer, k, readout=k == 1, headline=True)
            )
            rows.append(row(model, task, "accuracy", "auc", accuracy + 0.1, layer, k, readout=k == 1))
        distances[(task, model)] = table
    return write_dir(out, rows, distances)


def figures_of(out: Path, **kwargs: Any) -> dict[tuple[str | None, str], Any]:
    return {
        (info.task, info.kind): fig for info, fig in draw_figures(out, figures=kwargs.pop("figures", None), **kwargs)
    }


def lines_with(ax, gid: str) -> list[Any]:
    return [line for line in ax.get_lines() if line.get_gid() == gid]


def data_axes(fig) -> list[Any]:
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


# --- 1. formats and resolution ----------------------------------------------------------------------
def test_every_figure_is_written_in_each_requested_format_with_one_stem(tmp_path: Path) -> None:
    out = verification_dir(tmp_path / "r")
    pngs = write_plots(out, formats=("svg", "pdf"), dpi=50)
    manifest = read_manifest(out)
    assert manifest["formats"] == ["png", "svg", "pdf"]
    assert [out / e["file"] for e in manifest["plots"]] == pngs  # `file` (what report.html embeds) stays the PNG
    for entry in manifest["plots"]:
        stem = entry["file"].removesuffix(".png")
        assert entry["files"] == [f"{stem}.png", f"{stem}.svg", f"{stem}.pdf"]
        assert (out / f"{stem}.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")
        assert "<svg" in (out / f"{stem}.svg").read_text(encoding="utf-8")
        assert (out / f"{stem}.pdf").read_bytes().startswith(b"%PDF")
    roc = next(e for e in manifest["plots"] if e["kind"] == "roc")
    with Image.open(out / roc["file"]) as small:
        small_width = small.width
    svg = {f: f.read_bytes() for f in (out / "plots").glob("*.svg")}
    write_plots(out)  # a rebuild (the `report` command) keeps the formats and resolution of the last report
    assert {f: f.read_bytes() for f in (out / "plots").glob("*.svg")} == svg  # byte for byte (no dates, salted ids)
    with Image.open(out / roc["file"]) as same:
        assert same.width == small_width
    write_plots(out, formats="png", dpi=100)  # PNG only: the SVG and PDF of the previous report are stale
    assert not list((out / "plots").glob("*.svg")) and not list((out / "plots").glob("*.pdf"))
    with Image.open(out / roc["file"]) as large:
        assert abs(large.width / small_width - 2) < 0.05
    html = write_html(out).read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") >= len(read_manifest(out)["plots"])
    with pytest.raises(ValueError, match="unknown figure format.*'gif'"):
        write_plots(out, formats=("gif",))


def test_figures_and_dpi_options_parse_and_reject_with_a_usage_line(pytester: pytest.Pytester) -> None:
    from pytest_facebench.plugin import FIGURE_FORMATS, _figure_formats

    assert FIGURE_FORMATS == FORMATS
    assert _figure_formats("svg, PDF") == ("png", "svg", "pdf")
    config = pytester.parseconfig("--facebench-figures", "pdf", "--facebench-dpi", "300")
    assert config.getoption("facebench_figures") == ("png", "pdf")
    assert config.getoption("facebench_dpi") == 300
    assert pytester.parseconfig().getoption("facebench_figures") is None  # the previous run's formats
    result = pytester.runpytest("--facebench-figures", "png,gif")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if "--facebench-figures" in line]
    assert len(errors) == 1 and errors[0].endswith(
        "error: argument --facebench-figures: expected figure formats among png, svg, pdf separated by "
        "commas, got 'png,gif'"
    )
    result = pytester.runpytest("--facebench-dpi", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


# --- 2. colours and labels --------------------------------------------------------------------------
def test_a_models_colour_comes_from_its_name_not_the_run() -> None:
    palette = _palette()
    names = ["vgg16", "clip_b32", "dinov2", "arcface", "facenet", "pixels", "iresnet100", "openclip"]
    alone = {name: model_colors([name])[name] for name in names}
    assert all(alone[name] == palette[_name_slot(name)] for name in names)  # a hash of the name picks it
    everyone = model_colors(names)
    assert model_colors(list(reversed(names))) == everyone  # the order of the run does not matter
    assert len(set(everyone.values())) == len(names)
    for name in names:  # only names sorting before a model can move it (collisions resolve in name order)
        assert everyone[name] == model_colors([n for n in names if n <= name])[name]
        assert everyone[name] == model_colors([n for n in names if n <= name] + ["zz_added_later"])[name]
    distinct = {}  # names whose slots all differ keep their own colour in any run
    for i in range(200):
        distinct.setdefault(_name_slot(f"model{i}"), f"model{i}")
    some = list(distinct.values())[:6]
    assert model_colors(some) == {name: palette[_name_slot(name)] for name in some}
    many = model_colors([f"model_{i:02d}" for i in range(30)])
    assert len(set(many.values())) == 30  # past the 20 palette colours: a hue wheel


def test_grid_colours_win_and_are_never_handed_to_another_model() -> None:
    red = "#d62728"
    on_red = next(f"m{i}" for i in range(1000) if _palette()[_name_slot(f"m{i}")] == red)
    colors = model_colors(["zz_top", on_red], {"zz_top": "tab:red"})
    assert colors["zz_top"] == red and colors[on_red] != red
    assert model_colors(["a"], {"a": "not a colour"})["a"] == _palette()[_name_slot("a")]
    assert model_labels(["vgg", "clip"], {"vgg": "VGG16 (untrained)", "clip": ""}) == {
        "vgg": "VGG16 (untrained)",
        "clip": "clip",
    }


def test_grid_colour_and_label_are_validated_with_one_line(tmp_path: Path) -> None:
    grid = tmp_path / "facebench.toml"
    grid.write_text(
        '[[models]]\nname = "pixels"\nfactory = "pixels"\ncolor = "#1f77b4"\nlabel = "Pixels (raw)"\n'
        '[[models]]\nname = "bad"\nfactory = "pixels"\ncolor = "blurple"\n'
        '[[models]]\nname = "nolabel"\nfactory = "pixels"\nlabel = 3\n',
        encoding="utf-8",
    )
    good, bad, nolabel = load_grid(grid).models
    assert (good.color, good.label, good.error) == ("#1f77b4", "Pixels (raw)", None)
    assert bad.error == (
        f"{grid}, models[1] ('bad'): 'color' must be a matplotlib colour such as '#1f77b4', 'tab:blue' or "
        "'navy', got 'blurple'"
    )
    assert (
        nolabel.error is not None
        and "\n" not in nolabel.error
        and "'label' must be a non-empty string" in nolabel.error
    )
    assert str(grid) in nolabel.error and "models[2] ('nolabel')" in nolabel.error
    assert model_styles_from_grid(load_grid(grid)) == {"pixels": {"color": "#1f77b4", "label": "Pixels (raw)"}}


def test_grid_styles_reach_the_figures_through_write_outputs_and_a_rebuild(bench: Bench, tmp_path: Path) -> None:
    text = bench.grid_text(tasks=("verif", "inv")).replace(
        'name = "pixels"\n', 'name = "pixels"\ncolor = "#123456"\nlabel = "Pixels (raw)"\n', 1
    )
    (bench.path / "facebench.toml").write_text(text, encoding="utf-8")
    bench.test_file()
    bench.run().assert_outcomes(passed=4)
    styles = model_styles_from_grid(load_grid(bench.path / "facebench.toml"))
    assert styles == {"pixels": {"color": "#123456", "label": "Pixels (raw)"}}
    written = write_outputs(
        bench.out,
        read_records(bench.out),
        read_run(bench.out),
        model_order=["pixels", "tiny"],
        task_order=["verif", "inv"],
        figure_formats=("svg",),
        dpi=50,
        model_styles=styles,
    )
    assert written.report_error is None
    assert read_run(bench.out)["model_styles"] == styles
    manifest = read_manifest(bench.out)
    assert manifest["colors"]["pixels"] == "#123456" and manifest["labels"]["pixels"] == "Pixels (raw)"
    assert manifest["colors"]["tiny"] == model_colors(["tiny"])["tiny"]
    assert all((bench.out / e["file"].replace(".png", ".svg")).is_file() for e in manifest["plots"])
    with Image.open(bench.out / next(e["file"] for e in manifest["plots"] if e["kind"] == "roc")) as image:
        assert image.width < 600  # 50 dpi
    headline = figures_of(bench.out)[("verif", "headline")]
    ax = headline.axes[0]
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert "Pixels (raw) · output" in ticks
    bar = ax.patches[ticks.index("Pixels (raw) · output")]
    assert to_hex(bar.get_facecolor()) == "#123456"
    elsewhere = tmp_path / "copy"
    assert cli_main(["report", str(bench.out), "--out", str(elsewhere)]) == 0
    assert read_manifest(elsewhere)["colors"] == manifest["colors"]
    assert read_manifest(elsewhere)["labels"] == manifest["labels"]
    copied = read_manifest(elsewhere)
    assert copied["formats"] == ["png", "svg"] and copied["dpi"] == 50  # a rebuild elsewhere keeps them
    assert all((elsewhere / e["file"].replace(".png", ".svg")).is_file() for e in copied["plots"])
    assert cli_main(["report", str(elsewhere), "--formats", "pdf"]) == 0
    rebuilt = read_manifest(elsewhere)
    assert rebuilt["formats"] == ["png", "pdf"]
    assert all((elsewhere / e["file"].replace(".png", ".pdf")).is_file() for e in rebuilt["plots"])
    assert not any((elsewhere / e["file"].replace(".png", ".svg")).exists() for e in rebuilt["plots"])


def test_report_command_rejects_an_unknown_format_with_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "run.json").write_text("{}")
    assert cli_main(["report", str(tmp_path), "--formats", "png,gif"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--formats: unknown figure format(s) ['gif']" in err[0]


# --- 3. axis labels ---------------------------------------------------------------------------------
def test_axis_labels_name_the_quantity(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    pairs = pd.DataFrame({"img1": [f"a{i}" for i in range(30)], "img2": [f"b{i}" for i in range(30)]})
    pairs["distance"] = rng.uniform(0, 1, 30)
    pairs["out"] = pairs["distance"] + rng.normal(0, 0.2, 30)
    rows = [
        row("vgg", "sim", "correlation", "correlation", 0.6, protocol="spearman", distance="euclidean", headline=True),
        *[
            row("vgg", "cond", "conditions", "mean_distance", v, condition=c, protocol="mean", headline=True)
            for c, v in (("same", 0.2), ("different", 0.5))
        ],
    ]
    out = write_dir(tmp_path / "r", rows, {("sim", "vgg"): pairs})
    figures = figures_of(out, figures={"sim": ["scatter"], "cond": []})
    assert figures[("sim", "headline")].axes[0].get_xlabel() == "Spearman ρ with human dissimilarity"
    scatter = figures[("sim", "scatter")]
    assert scatter._supxlabel.get_text() == "human dissimilarity (distance)"
    assert scatter._supylabel.get_text() == "model euclidean distance"
    assert figures[("cond", "conditions")].axes[0].get_ylabel() == "mean cosine distance"
    frame = pd.DataFrame([row("m", "t", "rsa", "rsa", 0.3, protocol="pearson correlation of RDM upper triangles")])
    assert metric_label("rsa", frame) == "Pearson r between model and human RDMs"
    assert metric_label("correlation", pd.DataFrame([row("m", "t", "correlation", "correlation", 0.3)])) == (
        "Pearson r with human dissimilarity"
    )
    assert distance_label(pd.DataFrame({"distance": ["mypkg.dist:angular"]})) == "angular distance"


# --- 4. chance lines --------------------------------------------------------------------------------
def test_chance_lines_where_a_metric_has_one(tmp_path: Path) -> None:
    rows = [
        *[row(m, "lfw", "accuracy", "accuracy_kfold", v, headline=True) for m, v in (("vgg", 0.8), ("clip", 0.9))],
        *[row(m, "faces_rsa", "rsa", "rsa", v, headline=True) for m, v in (("vgg", 0.2), ("clip", 0.3))],
        *[
            row(m, "inversion", "relative_difference", "relative_difference", v, headline=True)
            for m, v in (("vgg", 0.02), ("clip", -0.01))
        ],
        *[
            row(m, "ident", "identification", f"rank{k}", 0.3 + 0.05 * k, protocol=CMC_PROTOCOL, headline=k == 1)
            for m in ("vgg", "clip")
            for k in (1, 5, 10)
        ],
        *[row(m, "ident_nosize", "identification", f"rank{k}", 0.4 + 0.05 * k) for m in ("vgg",) for k in (1, 5, 10)],
    ]
    out = write_dir(tmp_path / "r", rows)
    infos = {
        (i.task, i.kind): (i, f) for i, f in draw_figures(out, figures={"ident": ["cmc"], "ident_nosize": ["cmc"]})
    }
    for task, value, label in (
        ("lfw", 0.5, "chance (0.5)"),
        ("faces_rsa", 0.0, "chance (0)"),
        ("inversion", 0.0, "no effect (0)"),
    ):
        (line,) = lines_with(infos[(task, "headline")][1].axes[0], "chance")
        assert list(line.get_xdata()) == [value, value] and line.get_label() == label
    verification = pd.DataFrame([row("m", "lfw", "accuracy", "auc", 0.9)])  # the task type declares its chance
    assert chance_level("auc", verification) == (0.5, "chance (0.5)")  # levels (AccuracyTask.axes)
    assert chance_level("tar_at_far_0.001", verification) == (0.001, "chance (0.001)")
    assert chance_level("auc", pd.DataFrame([row("m", "t", "custom", "auc", 0.9)])) is None  # no type, no line
    info, cmc = infos[("ident", "cmc")]
    (line,) = lines_with(cmc.axes[0], "chance")
    assert np.allclose(line.get_ydata(), np.arange(1, 11) / 20) and line.get_label() == "chance (k/N, N = 20)"
    info, cmc = infos[("ident_nosize", "cmc")]
    assert lines_with(cmc.axes[0], "chance") == []
    assert "No chance line: the gallery size is not recorded" in info.caption


# --- 5. ROC and CMC bands ---------------------------------------------------------------------------
def test_roc_has_bootstrap_bands_and_a_log_far_panel(tmp_path: Path) -> None:
    out = verification_dir(tmp_path / "r")
    roc = figures_of(out, figures={"lfw": ["roc"]})[("lfw", "roc")]
    linear, log = roc.axes
    # the log axis starts at the smallest FAR the data resolve: 1 / the number of different pairs (100 here)
    assert log.get_xscale() == "log" and np.allclose(log.get_xlim(), (1 / 100, 1))
    assert log.get_title() == "log FAR (1/100 to 1)"
    assert linear.get_xlabel() == "false accept rate (FAR)" and linear.get_ylabel() == "true accept rate (TAR)"
    for ax in (linear, log):
        bands = [c for c in ax.collections if c.get_gid() == "ci_band"]
        assert len(bands) == 2  # one per model
        assert [to_hex(b.get_facecolor()[0][:3]) for b in bands] == [
            model_colors(["vgg", "clip"])[m] for m in ("vgg", "clip")
        ]
        assert len(lines_with(ax, "chance")) == 1
    # results.csv has no CI for these AUCs: the legend shows none either (none is made up)
    assert all("AUC" in t.get_text() and "[" not in t.get_text() for t in linear.get_legend().get_texts()[:2])

    rng = np.random.default_rng(3)
    labels = np.arange(400) % 2 == 0
    distances = np.abs(0.6 - 0.3 * labels + rng.normal(0, 0.2, 400))
    curve = roc_curve("m", "#000000", labels, distances)
    again = roc_curve("m", "#000000", labels, distances)
    assert curve is not None and again is not None and curve.low is not None and curve.high is not None
    assert np.array_equal(curve.low, again.low)  # fixed seed
    tar = curve.tar[np.clip(np.searchsorted(curve.far, curve.grid, side="right") - 1, 0, None)]
    assert (curve.low <= curve.high).all() and np.mean((curve.low <= tar) & (tar <= curve.high)) > 0.95
    assert curve.auc_ci is None  # a figure never computes a CI of its own for a number
    assert roc_curve("m", "#000000", labels, distances, n_boot=0).low is None  # type: ignore[union-attr]


def test_the_roc_legend_quotes_the_auc_and_ci_of_results_csv(tmp_path: Path) -> None:
    """One CI per number: the ROC legend's AUC [CI] is results.csv's row, as the tables print it (the figure
    used to bootstrap pairs and print another interval)."""
    from pytest_facebench.report.numbers import format_estimate
    from pytest_facebench.report.terminal import summary_table

    out = verification_dir(tmp_path / "r")
    results = pd.read_csv(out / "results.csv")
    auc = results["metric"] == "auc"
    results.loc[auc, "ci_low"] = results.loc[auc, "value"] - [0.1234, 0.0456, 0.0789, 0.0321]
    results.loc[auc, "ci_high"] = results.loc[auc, "value"] + [0.0111, 0.0222, 0.0333, 0.0444]
    results.loc[auc, "ci_method"] = "bootstrap(1000, identities), 95% percentile"
    results["headline"] = auc  # the tables show the AUC
    results.to_csv(out / "results.csv", index=False)
    info, roc = next((i, f) for i, f in draw_figures(out, figures={"lfw": ["roc"]}) if i.kind == "roc")
    legend = [t.get_text() for t in roc.axes[0].get_legend().get_texts()]
    table = summary_table(pd.read_csv(out / "results.csv"), width=200)
    for model in ("vgg", "clip"):
        mine = results[auc & (results["model"] == model) & results["readout"]].iloc[0]
        text = format_estimate(mine["value"], mine["ci_low"], mine["ci_high"])
        assert any(line.startswith(f"{model} · block5") and line.endswith(f"(AUC {text})") for line in legend)
        assert text in table
    assert "1000 resamples of identities" in info.caption.replace(",", "")


def test_cmc_band_from_the_rank_rows_or_a_bootstrap_over_probes(tmp_path: Path) -> None:
    rows = [
        row(
            "vgg",
            "ident",
            "identification",
            f"rank{k}",
            0.3 + 0.05 * k,
            ci_low=0.25 + 0.05 * k,
            ci_high=0.35 + 0.05 * k,
        )
        for k in (1, 2, 5)
    ] + [row("clip", "ident", "identification", f"rank{k}", 0.4) for k in (1, 2, 5)]
    ranks = pd.DataFrame({"image": [f"p{i}" for i in range(50)], "out": np.random.default_rng(0).integers(1, 8, 50)})
    out = write_dir(tmp_path / "r", rows, {("ident", "clip"): ranks})
    info, fig = next((i, f) for i, f in draw_figures(out, figures={"ident": ["cmc"]}) if i.kind == "cmc")
    bands = [c for c in fig.axes[0].collections if c.get_gid() == "ci_band"]
    assert [to_hex(b.get_facecolor()[0][:3]) for b in bands] == [
        model_colors(["vgg", "clip"])[m] for m in ("vgg", "clip")
    ]
    assert "bootstrap over probes" in info.caption


# --- 6. layer profiles ------------------------------------------------------------------------------
def profile_dir(out: Path, same_layers: bool) -> Path:
    layers = {"vgg": ["features.10", "features.20", "classifier.4"]}
    layers["clip"] = (
        list(layers["vgg"]) if same_layers else ["visual.l1", "visual.l2", "visual.l3", "visual.l4", "proj"]
    )
    rows = []
    for model, names in layers.items():
        for i, layer in enumerate(names):
            last = i == len(names) - 1
            rows.append(
                row(
                    model,
                    "sim",
                    "correlation",
                    "correlation",
                    0.2 + 0.1 * i,
                    layer,
                    i,
                    protocol="pearson",
                    readout=last,
                    headline=True,
                )
            )
            rows.append(row(model, "sim", "correlation", "correlation_ceiling_low", 0.62, layer, i, readout=last))
            rows.append(row(model, "sim", "correlation", "correlation_ceiling_high", 0.8, layer, i, readout=last))
            rows.append(
                row(
                    model,
                    "inv",
                    "relative_difference",
                    "relative_difference",
                    0.01 * i,
                    layer,
                    i,
                    human_effect=0.05,
                    readout=last,
                    headline=True,
                )
            )
    return write_dir(out, rows)


def test_layer_profile_names_layers_or_uses_relative_depth(tmp_path: Path) -> None:
    shared = figures_of(profile_dir(tmp_path / "same", True))[("sim", "layer_profile")]
    ax = shared.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["features.10", "features.20", "classifier.4"]
    assert ax.get_ylabel() == "Pearson r with human dissimilarity"
    ceiling = sorted(line.get_ydata()[0] for line in lines_with(ax, "ceiling"))
    assert ceiling == [0.62, 0.8]
    assert [line.get_ydata()[0] for line in lines_with(ax, "chance")] == [0.0]

    different = profile_dir(tmp_path / "different", False)
    ax = figures_of(different, layer_axis="depth")[("sim", "layer_profile")].axes[0]  # the option: relative depth
    assert ax.get_xlabel().startswith("relative depth")
    curves = [line for line in ax.get_lines() if line.get_gid() is None and len(line.get_xdata()) > 2]
    assert [list(np.round(line.get_xdata(), 2)) for line in curves] == [[0, 0.5, 1], [0, 0.25, 0.5, 0.75, 1]]
    per_model = figures_of(different)[("sim", "layer_profile")]  # the default: layer names, a panel per model
    vgg, clip = data_axes(per_model)
    assert [t.get_text() for t in clip.get_xticklabels()] == [
        "visual.l1",
        "visual.l2",
        "visual.l3",
        "visual.l4",
        "proj",
    ]
    assert [t.get_text() for t in vgg.get_xticklabels()] == ["features.10", "features.20", "classifier.4"]
    assert (vgg.get_title(), clip.get_title()) == ("vgg", "clip")
    inv = figures_of(different, layer_axis="depth")[("inv", "layer_profile")].axes[0]
    assert [line.get_ydata()[0] for line in lines_with(inv, "human")] == [0.05]
    assert [line.get_ydata()[0] for line in lines_with(inv, "chance")] == [0.0]
    with pytest.raises(ValueError, match="layer_axis"):
        write_plots(different, layer_axis="sideways")


# --- 7. RDMs ----------------------------------------------------------------------------------------
def rsa_dir(out: Path, n_stimuli: int) -> Path:
    rng = np.random.default_rng(2)
    pairs = [(a, b) for a in range(n_stimuli) for b in range(a + 1, n_stimuli)]
    rows, tables = [], {}
    for i, model in enumerate(("vgg", "clip")):
        table = pd.DataFrame(
            {"img1": [f"faces/s{a}.png" for a, _ in pairs], "img2": [f"faces/s{b}.png" for _, b in pairs]}
        )
        table["human"] = [abs(a - b) / n_stimuli for a, b in pairs]
        table["out"] = (1 + i) * (table["human"] + rng.normal(0, 0.05, len(pairs)))  # clip twice the scale of vgg
        tables[("faces", model)] = table
        rsa = table["out"].rank().corr(table["human"].rank())
        rows.append(
            row(
                model, "faces", "rsa", "rsa", rsa, protocol="spearman correlation of RDM upper triangles", headline=True
            )
        )
    return write_dir(out, rows, tables)


def test_rdms_have_colour_bars_stimulus_names_and_a_shared_scale_option(tmp_path: Path) -> None:
    out = rsa_dir(tmp_path / "few", 8)
    fig = figures_of(out, figures={"faces": ["rdm"]})[("faces", "rdm")]
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    human, vgg, clip = data_axes(fig)
    assert len(bars) == 3
    assert [b.get_ylabel() for b in bars] == ["human dissimilarity", "cosine distance", "cosine distance"]
    assert [t.get_text() for t in vgg.get_xticklabels()] == [f"s{i}" for i in range(8)]
    assert human.get_title() == "human (human)" and "Spearman ρ" in vgg.get_title()
    # the default: the models' RDMs on one colour scale (the human RDM, in other units, on its own)
    assert vgg.images[0].get_clim() == clip.images[0].get_clim() != human.images[0].get_clim()
    panel = figures_of(out, figures={"faces": ["rdm"]}, rdm_scale="panel")[("faces", "rdm")]
    human, vgg, clip = data_axes(panel)
    assert vgg.images[0].get_clim() != clip.images[0].get_clim()
    crowded = figures_of(rsa_dir(tmp_path / "many", 30), figures={"faces": ["rdm"]})[("faces", "rdm")]
    assert all(len(ax.get_xticks()) == 0 for ax in data_axes(crowded))


# --- 8. forest plot ---------------------------------------------------------------------------------
def test_forest_plot_of_the_model_comparisons(tmp_path: Path) -> None:
    models = ("vgg", "clip", "dino")
    rows = [row(m, "lfw", "accuracy", "auc", 0.8 + 0.05 * i, headline=True) for i, m in enumerate(models)]
    comparisons = [
        {
            "task": "lfw",
            "metric": "auc",
            "model_a": a,
            "model_b": b,
            "diff": d,
            "ci_low": lo,
            "ci_high": hi,
            "p_holm": p,
            "quantity": "value",
            "ci_level": 0.95,
        }
        for (a, b, d, lo, hi, p) in (
            ("vgg", "clip", -0.05, -0.09, -0.01, 0.01),
            ("vgg", "dino", -0.1, -0.15, -0.05, 0.001),
            ("clip", "dino", -0.05, -0.12, 0.02, 0.2),
            ("vgg", "vgg2", 0.03, 0.01, 0.05, 0.08),  # the CI excludes 0, the Holm-adjusted p does not decide
            ("clip", "vgg2", 0.02, 0.01, 0.03, 0.0),  # a permutation p of 0: printed as below 0.001, never "= 0"
        )
    ]
    out = write_dir(tmp_path / "r", rows, comparisons=comparisons)
    (info, fig) = next((i, f) for i, f in draw_figures(out) if i.kind == "forest")
    assert (
        info.task == "lfw"
        and info.items == 5
        and info.title == "lfw: paired differences between models (readout layers)"
    )
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "vgg − clip  (p_Holm = 0.010)",
        "vgg − dino  (p_Holm = 0.001)",
        "clip − dino  (p_Holm = 0.200)",
        "vgg − vgg2  (p_Holm = 0.080)",
        "clip − vgg2  (p_Holm < 0.001)",
    ]
    (zero,) = lines_with(ax, "zero")
    assert list(zero.get_xdata()) == [0, 0]
    assert ax.get_xlabel() == "difference in ROC AUC (A − B)"
    filled, hollow = ax.collections[-2:]
    assert filled.get_offsets()[:, 1].tolist() == [0, 1, 4]  # significant by the report's one rule
    assert hollow.get_offsets()[:, 1].tolist() == [2, 3]  # not: CI includes 0, or p_Holm ≥ 0.05
    assert "95% CI" in info.caption
    write_plots(out)
    assert "lfw__forest.png" in {Path(e["file"]).name for e in read_manifest(out)["plots"]}


# --- 9. overview by direction -----------------------------------------------------------------------
def test_overview_colours_each_column_by_its_metric_direction(tmp_path: Path) -> None:
    models = ("a", "b", "c")
    tasks = {
        "higher": ("accuracy", "auc", [0.7, 0.9, 0.8], {}),
        "lower": ("accuracy", "eer", [0.3, 0.1, 0.2], {}),
        "human": ("relative_difference", "relative_difference", [0.2, 0.06, -0.05], {"human_effect": 0.05}),
        "target": ("relative_difference", "cohens_d", [0.4, 0.0, -0.6], {}),
        "custom": ("brand_new", "weirdness", [1.0, 2.0, 3.0], {}),
    }
    rows = [
        row(m, task, kind, metric, values[i], headline=True, **extra)
        for task, (kind, metric, values, extra) in tasks.items()
        for i, m in enumerate(models)
    ]
    overview = figures_of(write_dir(tmp_path / "r", rows))[(None, "overview")]
    ax = overview.axes[0]
    rgba = np.asarray(ax.images[0].get_array())
    best = np.array(colormaps["viridis"](1.0))
    columns = list(tasks)
    assert np.allclose(rgba[1, columns.index("higher")], best)  # 0.9, the highest
    assert np.allclose(rgba[1, columns.index("lower")], best)  # 0.1, the lowest
    assert np.allclose(rgba[1, columns.index("human")], best)  # 0.06, closest to the human 0.05
    assert np.allclose(rgba[0, columns.index("human")], colormaps["viridis"](0.0))  # 0.2, the farthest (0.15)
    assert np.allclose(rgba[2, columns.index("human")], colormaps["viridis"](0.05 / 0.14))  # -0.05: 0.1 away
    diverging = rgba[:, columns.index("target")]
    assert np.allclose(diverging[1], colormaps["RdBu_r"](0.5))  # 0: the centre of the diverging map
    assert diverging[0][0] > diverging[0][2] and diverging[2][2] > diverging[2][0]  # positive red, negative blue
    assert all(np.allclose(c, to_rgba(NEUTRAL)) for c in rgba[:, columns.index("custom")])
    ticks = [" ".join(t.get_text().split()) for t in ax.get_xticklabels()]  # hints wrap over lines
    assert ticks[columns.index("lower")].endswith("(lower is better)")
    assert ticks[columns.index("human")].endswith("(closer to human 0.05 is better)")
    assert ticks[columns.index("target")].endswith("(0-centred, no better side)")
    assert ticks[columns.index("custom")].endswith("(descriptive)")


# --- 10. no clipped titles --------------------------------------------------------------------------
def test_titles_stay_whole_inside_the_figure_with_one_model_and_a_long_task_name(tmp_path: Path) -> None:
    task = "lfw_verification_with_a_very_long_descriptive_task_name_for_the_supplementary_material_2024"
    out = verification_dir(tmp_path / "r", models=("vgg",), task=task)
    drawn = draw_figures(out, figures={task: ["roc"]})
    assert {i.kind for i, _ in drawn} >= {"headline", "roc", "distributions", "layer_profile"}
    for info, fig in drawn:
        renderer = fig.canvas.get_renderer()
        shown = titles(fig)
        assert shown, info.kind
        for text in shown:
            box = text.get_window_extent(renderer)
            assert box.x0 >= fig.bbox.x0 - 0.5 and box.x1 <= fig.bbox.x1 + 0.5, (info.kind, text.get_text())
            assert box.y0 >= fig.bbox.y0 - 0.5 and box.y1 <= fig.bbox.y1 + 0.5, (info.kind, text.get_text())
        if info.task:
            assert any(task in "".join(t.get_text().split()) for t in shown), info.kind
        axes_tops = [ax.get_window_extent(renderer).y1 for ax in data_axes(fig)]
        if fig._suptitle is not None:  # the suptitle does not overlap what lies below it
            assert fig._suptitle.get_window_extent(renderer).y0 >= max(axes_tops) - 0.5, info.kind
    write_plots(out)
    for entry in read_manifest(out)["plots"]:
        assert entry["title"].startswith(task) or entry["task"] is None


def test_manifest_is_json_with_colours_labels_and_formats(tmp_path: Path) -> None:
    out = verification_dir(tmp_path / "r")
    write_plots(out, model_styles={"vgg": {"color": "navy", "label": "VGG16 (untrained)"}})
    manifest = json.loads((out / "plots" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["colors"]["vgg"] == "#000080" and manifest["labels"]["vgg"] == "VGG16 (untrained)"
    assert manifest["model_styles"] == {"vgg": {"color": "navy", "label": "VGG16 (untrained)"}}
    (run_json := out / "run.json").write_text(json.dumps({"model_styles": {"clip": {"color": "#00ff00"}}}))
    write_plots(out)  # no styles passed: the results dir's run.json
    assert read_manifest(out)["colors"]["clip"] == "#00ff00" and run_json.is_file()


# --- distance histograms ----------------------------------------------------------------------------
def test_distance_histograms_have_a_density_axis(tmp_path: Path) -> None:
    out = verification_dir(tmp_path / "r")
    fig = figures_of(out, figures={"lfw": ["roc"]})[("lfw", "distributions")]
    for ax in data_axes(fig):
        assert ax.get_ylabel() == "density" and len(ax.get_yticks()) > 0 and ax.get_ylim()[0] == 0
        heights = np.concatenate([p.get_data().values for p in ax.patches])  # the stairs: probability densities
        assert heights.max() > 0


def test_every_figure_caption_says_what_its_error_bars_or_bands_are(tmp_path: Path) -> None:
    from pytest_facebench.report.plots import interval_text

    out = verification_dir(tmp_path / "r")
    infos = [info for info, _ in draw_figures(out, figures={"lfw": ["roc"]})]
    assert {i.kind for i in infos} >= {"overview", "headline", "roc", "distributions", "layer_profile"}
    for info in infos:
        assert re.search(r"Error bars|Bands|No error bars|95% CI", info.caption), (info.kind, info.caption)
    rows = pd.DataFrame({"ci_method": ["bootstrap(1000, identities), 95% percentile"] * 2})
    assert interval_text(rows) == "95% percentile bootstrap CIs (1,000 resamples of identities)"
    assert interval_text(pd.DataFrame()) == "confidence intervals where reported"


def test_the_overview_png_has_no_blank_band(tmp_path: Path) -> None:
    out = verification_dir(tmp_path / "r")
    write_plots(out, figures={"lfw": ["roc"]})
    entry = next(e for e in read_manifest(out)["plots"] if e["kind"] == "overview")
    with Image.open(out / entry["file"]) as image:
        pixels = np.asarray(image.convert("L"), dtype=int)
    inked = np.flatnonzero((pixels < 200).any(axis=1))  # rows holding anything drawn
    margin = 0.1 * read_manifest(out)["dpi"]  # the crop's padding
    assert pixels.shape[0] - 1 - inked.max() <= margin + 3 and inked.min() <= margin + 3
