"""gridfile: the raw TOML layer (values, names of swept entries, the TOML writer, stacking of other arrays)."""

from __future__ import annotations

import math
import sys

import pytest

from pytest_facebench.errors import ConfigError
from pytest_facebench.grid.gridfile import (
    grid_hash,
    load_stack,
    parse_value,
    parse_values,
    swept_name,
    to_toml,
    value_label,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@pytest.mark.parametrize(
    ("text", "value"),
    [("3", 3), ("0.5", 0.5), ("true", True), ('"x y"', "x y"), ("euclidean", "euclidean"), ('["a", 1]', ["a", 1])],
)
def test_values_are_toml_and_a_bare_word_is_a_string(text: str, value: object) -> None:
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


def test_sweep_values() -> None:
    assert parse_values("0,1,2") == [0, 1, 2]
    assert parse_values('"a", "b"') == ["a", "b"]
    assert parse_values("cls,avg") == ["cls", "avg"]
    assert parse_values('["a"],["b","c"]') == [["a"], ["b", "c"]]
    with pytest.raises(tomllib.TOMLDecodeError):
        parse_values('[1,"a"')


def test_swept_names_parse_back() -> None:
    assert swept_name("vgg16_untrained[seed:3]") == ("vgg16_untrained", [("seed", "3")])
    assert swept_name("m.x[seed:3][size:8]") == ("m.x", [("seed", "3"), ("size", "8")])
    assert swept_name("vgg16_untrained") is None
    assert [value_label(v) for v in (3, -0.5, True, "a b", ["x", "y"])] == ["3", "-0.5", "true", "a_b", "x+y"]


def test_the_toml_writer_round_trips() -> None:
    data = {
        "defaults": {"n_boot": 100, "ci": 0.95},
        "models": [
            {
                "name": "m[seed:1]",
                "kwargs": {"path": 'C:\\dir\\"q"', "naïve": "é", "x": math.inf},
                "pooling": {"a.b": "cls"},
                "layers": [],
            }
        ],
        "tasks": [
            {"name": "t", "tolerances": {"tar_at_far_0.001": 0.01}, "thresholds": [{"metric": "auc", "min": 0.5}]}
        ],
    }
    text = to_toml(data, "a header\nof two lines", run={"pytest_args": ["-k", "a and b"]})
    back = tomllib.loads(text)
    assert back.pop("run") == {"pytest_args": ["-k", "a and b"]}
    assert back == data
    assert text.startswith("# a header\n# of two lines\n")
    assert grid_hash(back) == grid_hash(data)


def test_other_arrays_of_tables_merge_by_name(tmp_path) -> None:
    (tmp_path / "a.toml").write_text('[[relations]]\nname = "r1"\nx = "a"\n')
    (tmp_path / "b.toml").write_text('[[relations]]\nname = "r2"\nx = "b"\n[[relations]]\nname = "r1"\nx = "a"\n')
    raw = load_stack([tmp_path / "a.toml", tmp_path / "b.toml"])
    assert [r["name"] for r in raw.data["relations"]] == ["r1", "r2"]
    (tmp_path / "c.toml").write_text('[[relations]]\nname = "r1"\nx = "other"\n')
    with pytest.raises(ConfigError, match=r"c\.toml, relations: \[\[relations\]\] 'r1' is defined differently"):
        load_stack([tmp_path / "a.toml", tmp_path / "c.toml"])
