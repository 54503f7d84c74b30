"""The grid's model `tags` and `[[relations]]` (relations/spec.py), the `-k`-like model selection
(relations/select.py), and the `expect` gate and layer choices (relations/compute.py), without pytest runs."""

from __future__ import annotations

import importlib.util
import math
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
import tomllib

from pytest_facebench.errors import ConfigError
from pytest_facebench.grid.config import parse_grid
from pytest_facebench.relations.compute import _at_depth, gate, relation_line
from pytest_facebench.relations.select import SelectionError, compile_selection
from pytest_facebench.relations.spec import parse_layer
from pytest_facebench.stats.relations import RelationStats

PATH = Path(__file__).parent / "facebench.toml"  # the tasks' images folder, "." below, exists
MODELS = [
    {"name": "vgg", "factory": "pixels", "tags": {"diet": "objects", "parameters": 138e6, "trained": True}},
    {"name": "face_net", "factory": "pixels", "tags": {"diet": "faces", "parameters": 2e6, "trained": True}},
]
TASKS = [
    {"name": "verif", "type": "accuracy", "pairs": "p.csv", "images": "."},
    {"name": "inv", "type": "relative_difference", "pairs": "p.csv", "images": ".", "groups": ["a", "b"]},
]


def grid(relations=None, models=MODELS):
    return parse_grid({"models": models, "tasks": TASKS, "relations": relations or []}, PATH, "0" * 64)


def test_tags_are_parsed_and_numbers_are_floats():
    g = grid()
    assert g.models[0].tags == {"diet": "objects", "parameters": 138e6, "trained": True}
    assert not any(m.error for m in g.models)


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ({"diet": ["faces"]}, "tag 'diet' must be text, a finite number or true/false, got ['faces']"),
        ("faces", "'tags' must be a table"),
        ({"bad name": 1}, "tag name 'bad name' must be a word"),
    ],
)
def test_bad_tags_name_the_model(tags, message):
    g = grid(models=[{"name": "m", "factory": "pixels", "tags": tags}])
    assert message in g.models[0].error and "models[0] ('m')" in g.models[0].error


def test_a_relation_entry_is_parsed_with_defaults():
    g = grid(
        [{"name": "r1", "x": "inv/relative_difference", "y": "verif/auc", "control": "diet", "expect": "positive"}]
    )
    spec = g.relations[0]
    assert spec.error is None
    assert (spec.method, spec.control, spec.layer, spec.expect, spec.n_boot) == (
        "spearman",
        ["diet"],
        "readout",
        "positive",
        2000,
    )
    assert spec.as_dict()["x"] == "inv/relative_difference" and "source" not in spec.as_dict()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"x": "inv", "y": "verif/auc"}, "'x' must read 'task/metric'"),
        ({"x": "inv/relative_diff", "y": "verif/auc"}, "'relative_diff' is not a metric of task 'inv'"),
        (
            {"x": "inv/relative_difference", "y": "verif/auc", "method": "tau"},
            "'method' must be one of spearman, pearson, kendall",
        ),
        ({"x": "inv/relative_difference", "y": "verif/auc", "control": "diett"}, "Did you mean 'diet'?"),
        (
            {"x": "inv/relative_difference", "y": "verif/auc", "control": "diet", "method": "kendall"},
            "'control' needs method",
        ),
        (
            {"x": "inv/relative_difference", "y": "verif/auc", "expect": "up"},
            "'expect' must be one of positive, negative, none",
        ),
        (
            {"x": "inv/relative_difference", "y": "verif/auc", "models": "vgg and (diet=faces"},
            "expected ')' at column 20",
        ),
        ({"x": "inv/relative_difference", "y": "verif/auc", "layer": 1.5}, "'layer' must be 'readout', 'best', 'each'"),
        ({"x": "inv/relative_difference", "y": "verif/auc", "colour_by": "diet"}, "did you mean 'color_by'?"),
        ({"x": "inv/relative_difference", "y": "verif/auc", "ci": 95}, "'ci' must be a confidence level"),
    ],
)
def test_bad_relations_keep_one_line_errors(entry, message):
    g = grid([{"name": "r", **entry}])
    error = g.relations[0].error
    assert error is not None and message in error
    assert error.startswith(f"{PATH}, relations[0] ('r'): ") and "\n" not in error
    assert error in g.errors and not any(m.error for m in g.models)


def test_duplicate_relation_names():
    entry = {"name": "r", "x": "inv/relative_difference", "y": "verif/auc"}
    g = grid([entry, entry])
    assert g.relations[0].error is None and "duplicate relation name 'r'" in g.relations[1].error


def test_unknown_top_level_key_mentions_relations():
    with pytest.raises(ConfigError, match="and 'relations'"):
        parse_grid({"models": [], "tasks": [], "relation": []}, PATH, "0")


def test_layer_forms():
    assert parse_layer("best") == "best"
    assert parse_layer("each") == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert parse_layer(0.5) == [0.5] and parse_layer([0, 1]) == [0.0, 1.0] and parse_layer("0,0.5") == [0.0, 0.5]


@pytest.mark.parametrize(
    ("expression", "selected"),
    [
        ("diet=faces", ["face_net"]),
        ("not diet=faces", ["vgg", "pixels"]),
        ("trained", ["vgg", "face_net"]),
        ("trained=false", ["pixels"]),
        ("objects or pix", ["vgg", "pixels"]),
        ("(net or vgg) and parameters=2000000", ["face_net"]),
        ("parameters=2e6", ["face_net"]),
    ],
)
def test_selection_matches_names_tags_and_values(expression, selected):
    tags = {
        "vgg": {"diet": "objects", "parameters": 138e6, "trained": True},
        "face_net": {"diet": "faces", "parameters": 2e6, "trained": True},
        "pixels": {"trained": False},
    }
    selection = compile_selection(expression)
    assert [m for m, t in tags.items() if selection.matches(m, t)] == selected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("a b", "unexpected 'b' at column 3"),
        ("a and", "unexpected end"),
        ("or a", "unexpected 'or' at column 1"),
    ],
)
def test_selection_errors(text, message):
    with pytest.raises(SelectionError, match=message):
        compile_selection(text)


def stats(low, high, **kwargs):
    return RelationStats(r=(low + high) / 2, ci_low=low, ci_high=high, p_value=0.5, n=8, method="spearman", **kwargs)


@pytest.mark.parametrize(
    ("low", "high", "expect", "verdict"),
    [
        (0.1, 0.9, "positive", "pass"),
        (-0.2, 0.9, "positive", "inconclusive"),
        (-0.9, 0.0, "positive", "fail"),
        (-0.9, -0.1, "negative", "pass"),
        (0.0, 0.5, "negative", "fail"),
        (-0.3, 0.4, "none", "pass"),
        (0.05, 0.4, "none", "fail"),
        (0.1, 0.9, None, ""),
    ],
)
def test_gate_on_the_ci(low, high, expect, verdict):
    assert gate(stats(low, high), expect) == verdict


def test_gate_on_the_partial_ci_and_untested_without_numbers():
    s = stats(0.2, 0.9, partial_ci_low=-0.9, partial_ci_high=-0.2)
    assert gate(s, "positive", partial=True) == "fail"
    too_few = RelationStats(math.nan, math.nan, math.nan, math.nan, n=3, method="spearman", status="too few models")
    assert gate(too_few, "positive") == "untested"


def test_relative_depth_picks_the_nearest_listed_layer_deeper_on_ties():
    rows = [
        {"model": "a", "layer": f"l{i}", "layer_index": float(i), "value": float(i), "ci_low": 0.0, "ci_high": 1.0}
        for i in range(3)
    ] + [{"model": "b", "layer": "out", "layer_index": 0.0, "value": 7.0, "ci_low": 0.0, "ci_high": 1.0}]
    assert _at_depth(rows, 0.25)["a"]["layer"] == "l1"  # depths 0, 0.5, 1: 0.25 is halfway, the deeper wins
    assert _at_depth(rows, 0.2)["a"]["layer"] == "l0"
    assert _at_depth(rows, 0.0)["b"]["layer"] == "out"  # one layer: depth 1, the only choice


def test_terminal_line():
    row = {"relation": "r", "layer": "readout", "x": "a/b", "y": "c/d", "status": "ok", "method": "spearman", "r": 0.5,
           "ci_low": 0.1, "ci_high": 0.8, "p_perm": 0.0004, "n_models": 9, "control": "diet", "partial_r": 0.3,
           "partial_ci_low": -0.1, "partial_ci_high": 0.6, "expect": "positive", "gate": "pass"}  # fmt: skip
    assert relation_line(row) == (
        "relation r [readout]: c/d ~ a/b: spearman r = 0.50 [0.10, 0.80], p < 0.001, 9 models; "
        "partial r | diet = 0.30 [-0.10, 0.60]; expect positive: PASS"
    )
    assert "too few models" in relation_line({**row, "status": "too few models", "note": ""})
    assert ", p = 0.041, " in relation_line({**row, "p_perm": 0.0414})


def test_report_html_prints_a_tiny_permutation_p_as_below_0001(tmp_path):
    """Every p-value reads `p < 0.001` below 0.001 (report.numbers.format_p), never `0` or `4e-04`."""
    from pytest_facebench.relations.compute import RELATION_COLUMNS
    from pytest_facebench.report.html import relations_section

    row = {c: "" for c in RELATION_COLUMNS}
    row.update(relation="r", x="a/b", y="c/d", method="spearman", layer="readout", status="ok", n_models=9)
    row.update(r=0.5, ci_low=0.1, ci_high=0.8, p_perm=0.0004)
    pd.DataFrame([row, {**row, "relation": "s", "p_perm": 0.0414}]).to_csv(tmp_path / "relations.csv", index=False)
    section = relations_section(tmp_path, {})
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", section)
    assert "&lt; 0.001" in cells and "0.041" in cells and "0.0004" not in section and "4e-04" not in section


def test_the_demo_grid_has_eight_offline_models_and_a_valid_relation():
    from pytest_facebench.grid.config import load_grid

    bench = Path(__file__).resolve().parents[2] / "benchmarks"
    spec = importlib.util.spec_from_file_location("_facebench_demo_data_for_relations", bench / "demo_data.py")
    assert spec and spec.loader
    demo = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # dataclasses need it registered
    spec.loader.exec_module(demo)
    demo.ensure_demo_data(bench / ".demo_data")  # the tasks' files: without them every task is invalid
    grid = load_grid(bench / "facebench.toml")
    online = {"clip", "dino"}
    offline = [
        m.name
        for m in grid.models
        if not m.error and m.factory not in online and m.kwargs.get("weights", "untrained") == "untrained"
    ]
    assert len(offline) >= 8, offline
    assert all(m.tags for m in grid.models) and not [r.error for r in grid.relations if r.error]
    relation = grid.relations[0]
    assert (relation.x, relation.y) == ("inversion/relative_difference", "verification/auc")


def test_every_demo_model_centre_crops_the_drawn_faces_that_thatcherize_cannot_find():
    """The demo faces are drawn: dlib finds no landmarks in most, so a model without `on_missing =
    "center_crop"` fails its Thatcher cell in the quickstart (it did, for four models added later)."""
    raw = tomllib.loads((Path(__file__).resolve().parents[2] / "benchmarks" / "facebench.toml").read_text())
    assert any("thatcherize" in str(task.get("derive")) for task in raw["tasks"])
    assert [m["name"] for m in raw["models"] if m.get("on_missing") != "center_crop"] == []
