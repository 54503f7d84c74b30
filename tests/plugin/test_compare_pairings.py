"""`compare` (issue 20): every pairing of a baseline JSON and a results folder, both ways, matches the same
rows (a condition-less row is one row whatever the spelling) and finds the same regressions; baselines record
what the numbers were computed from, and a comparison across different kwargs says it is not like-for-like."""

from __future__ import annotations

import json
import re

import pytest

from pytest_facebench.__main__ import main as cli_main

SUMMARY = re.compile(r"(\d+) regressions, (\d+) improvements, (\d+) new, (\d+) removed, (\d+) unchanged")


def compare(capsys, old, new) -> tuple[int, tuple[int, ...], str]:
    capsys.readouterr()
    code = cli_main(["compare", str(old), str(new), "--max-drop", "0"])
    out = capsys.readouterr().out
    found = SUMMARY.search(out)
    assert found, out
    return code, tuple(int(g) for g in found.groups()), out


def test_every_pairing_of_baselines_and_folders_agrees_both_ways(bench, tmp_path, capsys):
    bench.grid(models=("pixels",), tasks=("verif", "cond"))
    bench.test_file()
    bench.run("--facebench-save-baseline", str(tmp_path / "a.json"), out=tmp_path / "a").assert_outcomes(passed=2)
    grid = bench.path / "facebench.toml"
    grid.write_text(grid.read_text().replace("size = 16", "size = 8"))  # other kwargs, other numbers
    bench.run("--facebench-save-baseline", str(tmp_path / "b.json"), out=tmp_path / "b").assert_outcomes(passed=2)
    provenance = next(iter(json.loads((tmp_path / "a.json").read_text())["cells"].values()))["provenance"]
    assert {"weights", "kwargs", "preprocessing", "precision", "pairs_sha256"} <= set(provenance)
    a, b = [(tmp_path / "a", tmp_path / "a.json")], [(tmp_path / "b", tmp_path / "b.json")]
    for old_pair, new_pair in ((a[0], b[0]), (b[0], a[0])):
        outcomes = {compare(capsys, old, new)[:2] for old in old_pair for new in new_pair}
        assert len(outcomes) == 1, outcomes  # folder/folder, folder/JSON, JSON/folder, JSON/JSON agree
        code, (regressions, improvements, new, removed, _) = outcomes.pop()
        assert new == removed == 0  # every row matched, condition-less rows included
        assert regressions + improvements > 0 and code == (1 if regressions else 0)
    forward = compare(capsys, tmp_path / "a.json", tmp_path / "b")
    backward = compare(capsys, tmp_path / "b", tmp_path / "a.json")
    assert forward[1][0] == backward[1][1] and forward[1][1] == backward[1][0]  # a regression one way, a gain back
    assert "pixels: not like-for-like (kwargs" in forward[2]


def test_a_baseline_of_other_kwargs_warns_in_the_run(bench, tmp_path):
    bench.grid(models=("pixels",), tasks=("verif",))
    bench.test_file()
    bench.run("--facebench-save-baseline", str(tmp_path / "a.json")).assert_outcomes(passed=1)
    grid = bench.path / "facebench.toml"
    grid.write_text(grid.read_text().replace("size = 16", "size = 8"))
    result = bench.run("--facebench-baseline", str(tmp_path / "a.json"), "--facebench-max-drop", "1")
    result.assert_outcomes(passed=1)
    assert re.search(r"not like-for-like with the baseline \([^)]*kwargs", result.stdout.str()), result.stdout.str()


@pytest.mark.parametrize("condition", ["", "nan"])
def test_cell_keys_spell_a_missing_condition_once(condition):
    from pytest_facebench.outputs.gates import cell_key

    spelled = {"task": "t", "model": "m", "layer": "l", "metric": "auc", "condition": float(condition or "nan")}
    assert cell_key(spelled) == cell_key({**spelled, "condition": None}) == "t|m|l|auc|"
