"""Relations across models through pytest: relations.csv, the terminal line, the `expect` gate, a bad relation
as one failing item, too few models, tags in results.csv, figures and the report section, the shard merge."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sst

SIZES = (8, 10, 12, 14, 16)


def models_text(sizes=SIZES, tags: bool = True) -> str:
    out = ""
    for size in sizes:
        tag = f'tags = {{ size = {size}, family = "{"small" if size < 12 else "large"}" }}\n' if tags else ""
        out += f'\n[[models]]\nname = "pixels{size}"\nfactory = "pixels"\nlayers = ["output"]\nkwargs = {{ size = {size} }}\n{tag}'
    return out


RELATION = """
[[relations]]
name = "inv_vs_verif"
x = "inv/relative_difference"
y = "verif/auc"
control = ["family"]
color_by = "size"
n_boot = 200
n_perm = 200
"""


def project(bench, relation: str = RELATION, sizes=SIZES, tags: bool = True) -> None:
    text = models_text(sizes, tags) + bench.TASKS["verif"] + bench.TASKS["inv"] + relation
    (bench.path / "facebench.toml").write_text(text, encoding="utf-8")
    bench.test_file()


def readout_values(results: pd.DataFrame, task: str, metric: str) -> pd.Series:
    rows = results[(results["task"] == task) & (results["metric"] == metric)]
    return rows.set_index("model")["value"]


def test_relation_written_printed_and_reported(bench):
    project(bench)
    result = bench.run()
    result.assert_outcomes(passed=10)
    results = bench.results()
    assert results["tag_size"].notna().all() and set(results["tag_family"]) == {"small", "large"}
    frame = pd.read_csv(bench.out / "relations.csv")
    row = frame.iloc[0]
    assert (row["relation"], row["layer"], row["n_models"], row["method"]) == ("inv_vs_verif", "readout", 5, "spearman")
    x = readout_values(results, "inv", "relative_difference")
    y = readout_values(results, "verif", "auc").loc[x.index]
    assert row["r"] == pytest.approx(sst.spearmanr(x, y).statistic, abs=1e-12)
    assert row["control"] == "family" and np.isfinite(row["partial_r"]) and 0 < row["p_perm"] <= 1
    assert "bootstrap over models (200 resamples" in row["protocol"]
    points = pd.read_csv(bench.out / "relation_models.csv")
    assert list(points["model"]) == [f"pixels{s}" for s in SIZES]
    assert points["x"].tolist() == pytest.approx(x.tolist())
    result.stdout.fnmatch_lines(
        [
            "relation inv_vs_verif [[]readout]: verif/auc ~ inv/relative_difference: spearman r = *, p = *, 5 models; partial r | family = *"
        ]
    )
    manifest = json.loads((bench.out / "plots" / "relations" / "manifest.json").read_text())
    assert [e["kind"] for e in manifest] == ["relation", "matrix"]
    assert all((bench.out / e["file"]).stat().st_size > 5000 for e in manifest)
    html = (bench.out / "report.html").read_text()
    assert '<section id="relations"><h2>Relations</h2>' in html and html.count("data:image/png;base64") >= 2
    assert "inv_vs_verif" in html


@pytest.mark.parametrize(("expect", "gate"), [("positive", "pass"), ("negative", "fail"), ("none", "fail")])
def test_expect_is_a_gate_on_the_ci(bench, expect, gate):
    relation = f'\n[[relations]]\nname = "self"\nx = "verif/auc"\ny = "verif/auc"\nexpect = "{expect}"\nn_boot = 100\nn_perm = 100\n'
    project(bench, relation)
    result = bench.run()
    result.assert_outcomes(passed=10)  # every cell passed; the relation alone decides
    frame = pd.read_csv(bench.out / "relations.csv")
    assert frame["gate"].tolist() == [gate]
    failed = [line for line in result.outlines if line.startswith("FAILED relation")]
    if gate == "fail":
        assert result.ret == 1
        assert failed == [
            f"FAILED relation self [readout]: verif/auc ~ verif/auc: spearman r = 1.00 [1.00, 1.00], p = {frame['p_perm'][0]:.3f}, 5 models; expect {expect}: FAIL"
        ]
    else:
        assert result.ret == 0 and not failed
        result.stdout.fnmatch_lines(["relation self *expect positive: PASS"])


def test_too_few_models(bench):
    project(bench, RELATION.replace('control = ["family"]\n', ""), sizes=(8, 12, 16))
    result = bench.run()
    result.assert_outcomes(passed=6)
    frame = pd.read_csv(bench.out / "relations.csv")
    assert frame["status"].tolist() == ["too few models"] and np.isnan(frame["r"][0])
    result.stdout.fnmatch_lines(
        ["relation inv_vs_verif [[]readout]: * too few models (too few models: 3 with both values, at least 5 needed)"]
    )


def test_a_bad_relation_is_one_failing_item_and_the_cells_still_run(bench):
    project(bench, RELATION.replace('"verif/auc"', '"verification/auc"'))
    result = bench.run()
    result.assert_outcomes(passed=10, failed=1)
    line = (
        "facebench.toml, relations[0] ('inv_vs_verif'): 'y' names task 'verification', not a (valid) task of the grid."
    )
    assert any(text.endswith(f"{line} Tasks: verif, inv.") for text in result.outlines)
    assert not (bench.out / "relations.csv").exists()
    bench.assert_no_traceback(result)


def test_tag_of_two_types_is_an_error_on_the_model(bench):
    text = models_text().replace('tags = { size = 16, family = "large" }', 'tags = { size = "big", family = "large" }')
    (bench.path / "facebench.toml").write_text(text + bench.TASKS["verif"], encoding="utf-8")
    bench.test_file()
    result = bench.run()
    result.assert_outcomes(passed=4, failed=1)  # one failing grid item, as for any other error of a model entry
    line = "models[4] ('pixels16'): tag 'size' is text ('big') but number in models[0] ('pixels8'); a tag has one "
    assert any(text.endswith(line + "type across models") for text in result.outlines)


def test_models_selection_and_relative_depth(bench):
    relation = RELATION.replace('control = ["family"]\n', 'models = "not family=small"\nlayer = 0.5\n')
    project(bench, relation, sizes=(8, 10, 12, 14, 16, 18, 20))
    bench.run().assert_outcomes(passed=14)
    frame = pd.read_csv(bench.out / "relations.csv")
    assert frame["layer"].tolist() == ["depth 0.5"] and frame["n_models"].tolist() == [5]
    assert frame["models"][0] == "pixels12, pixels14, pixels16, pixels18, pixels20"


def test_relate_cli_reproduces_the_grids_relation(bench, capsys):
    from pytest_facebench.__main__ import main

    project(bench)
    bench.run().assert_outcomes(passed=10)
    grid_row = pd.read_csv(bench.out / "relations.csv").iloc[0]
    out = bench.path / "relate.csv"
    args = ["relate", str(bench.out), "--x", "inv/relative_difference", "--y", "verif/auc", "--control", "family"]
    assert main([*args, "--n-boot", "200", "--n-perm", "200", "--out", str(out)]) == 0
    row = pd.read_csv(out).iloc[0]
    for column in ("r", "ci_low", "ci_high", "p_perm", "partial_r", "partial_ci_low", "partial_ci_high", "n_models"):
        assert row[column] == grid_row[column], column
    assert "verif/auc ~ inv/relative_difference: spearman r = " in capsys.readouterr().out
    # without --x/--y: the grid's own relations from run.json, the same numbers
    assert main(["relate", str(bench.out), "--out", str(out)]) == 0
    assert (
        pd.read_csv(out).drop(columns=["note"]).equals(pd.read_csv(bench.out / "relations.csv").drop(columns=["note"]))
    )
    # tags also come back from results.csv's tag columns when run.json has none
    run = json.loads((bench.out / "run.json").read_text())
    run.pop("model_tags")
    (bench.out / "run.json").write_text(json.dumps(run))
    assert main([*args, "--n-boot", "200", "--n-perm", "200", "--out", str(out)]) == 0
    assert pd.read_csv(out).iloc[0]["partial_r"] == grid_row["partial_r"]
    # a contradicted --expect exits 1; an unknown metric is one line naming the task's metrics
    assert (
        main(
            [
                "relate",
                str(bench.out),
                "--x",
                "verif/auc",
                "--y",
                "verif/auc",
                "--expect",
                "negative",
                "--n-perm",
                "100",
            ]
        )
        == 1
    )
    assert main(["relate", str(bench.out), "--x", "inv/relative_diff", "--y", "verif/auc"]) == 2
    assert "--x inv/relative_diff: not in results.csv; metrics of inv: inv/cohens_d" in capsys.readouterr().err


def test_shards_merge_with_the_relation(bench, tmp_path):
    from pytest_facebench.outputs.merge import merge_dirs as merge_shards

    project(bench)
    whole = tmp_path / "whole"
    bench.run(out=whole).assert_outcomes(passed=10)
    for k in (1, 2):
        bench.run("--facebench-shard", f"{k}/2")
    shards = [bench.out / f"shard-{k}-of-2" for k in (1, 2)]
    assert all(len(pd.read_csv(d / "relations.csv")) == 1 for d in shards)  # each shard: its own models only
    merge_shards(shards, tmp_path / "merged", report=False)
    merged = pd.read_csv(tmp_path / "merged" / "relations.csv")
    assert merged.drop(columns=["protocol"]).equals(pd.read_csv(whole / "relations.csv").drop(columns=["protocol"]))
    assert merged["n_models"].tolist() == [5]


def test_computed_on_the_xdist_controller(bench):
    pytest.importorskip("xdist")
    project(bench)
    result = bench.run_subprocess("-n", "2")
    result.assert_outcomes(passed=10)
    frame = pd.read_csv(bench.out / "relations.csv")
    assert frame["n_models"].tolist() == [5] and frame["status"].tolist() == ["ok"]
    result.stdout.fnmatch_lines(["relation inv_vs_verif [[]readout]: *5 models*"])
