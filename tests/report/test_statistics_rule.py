"""One rule for statistics (README "Statistics: one rule"): a model comparison is decided by its Holm-adjusted
p-value, the same way in comparisons.csv's `significant` column, report.html's verdicts and the forest plot's
filled markers, even where the unadjusted CI of the difference excludes 0."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pytest_facebench.outputs.compare import comparisons_frame
from pytest_facebench.report.html import write_html
from pytest_facebench.report.plots import draw_figures
from pytest_facebench.report.verdicts import significant, verdict
from pytest_facebench.tasks import CorrelationTask


def payload(task: CorrelationTask, model: str, values: np.ndarray) -> dict[str, Any]:
    """What evaluate_cell ships for a one-layer model (readout layer 'L')."""
    distances = {c: task.pair_rows()[c].tolist() for c in task.pair_rows().columns}
    distances["L"] = list(values)
    records = [
        {"model": model, "layer": "L", "readout": True, "metric": m.metric, "value": m.value}
        for m in task.score(values)
    ]
    return {"model": model, "task": task.name, "records": records, "distances": distances,
            "scoring": {**task.scoring(), "columns": {"L": "L"}}}  # fmt: skip


def holm_oracle(p: np.ndarray) -> np.ndarray:
    """Holm (1979) by hand: the i-th smallest p times (m − i), made monotone, at most 1."""
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order]))
    out = np.empty_like(adjusted)
    out[order] = adjusted
    return out


@pytest.fixture(scope="module")
def four_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A correlation task scored by four models (human ratings + noise of growing spread): six pairs, one of
    which (m1 − m2) has an unadjusted 95% CI excluding 0 but a Holm-adjusted p above 0.05."""
    tmp = tmp_path_factory.mktemp("rule")
    rng = np.random.default_rng(0)
    human = rng.random(40)
    rows = pd.DataFrame({"img1": [f"x{i}.png" for i in range(40)], "img2": [f"y{i}.png" for i in range(40)]})
    rows["distance"] = human
    (tmp / "images").mkdir()
    for name in [*rows["img1"], *rows["img2"]]:
        Image.new("RGB", (8, 8)).save(tmp / "images" / name)
    rows.to_csv(tmp / "pairs.csv", index=False)
    task = CorrelationTask("sim", tmp / "pairs.csv", tmp / "images", method="pearson", n_boot=500).load()
    cells = [payload(task, f"m{k}", human + rng.normal(0, s, 40)) for k, s in enumerate((0.15, 0.25, 0.35, 0.45))]
    frame = comparisons_frame(cells)
    out = tmp / "out"
    out.mkdir()
    frame.to_csv(out / "comparisons.csv", index=False)
    results = [
        {
            "model": cell["model"],
            "layer": "L",
            "layer_index": 0,
            "task": "sim",
            "task_type": "correlation",
            "metric": r["metric"],
            "condition": "",
            "value": r["value"],
            "readout": True,
            "headline": r["metric"] == "correlation",
        }
        for cell in cells
        for r in cell["records"]
    ]
    pd.DataFrame(results).to_csv(out / "results.csv", index=False)
    return out, frame


def test_holm_adjusts_within_task_and_metric(four_models: tuple[Path, pd.DataFrame]) -> None:
    _, frame = four_models
    assert len(frame) == 6
    assert frame["p_holm"].to_numpy() == pytest.approx(holm_oracle(frame["p_value"].to_numpy()))


def test_an_unadjusted_ci_excluding_0_with_holm_p_above_005_is_not_significant_anywhere(
    four_models: tuple[Path, pd.DataFrame],
) -> None:
    out, frame = four_models
    excludes = (frame["ci_low"] > 0) | (frame["ci_high"] < 0)
    case = frame[excludes & (frame["p_holm"] >= 0.05)]
    assert len(case) == 1 and (case["p_value"] < 0.05).all()  # the case the rule is about
    row = case.iloc[0]
    pair = (row["model_a"], row["model_b"])
    # comparisons.csv: the decision, written once
    written = pd.read_csv(out / "comparisons.csv")
    assert written["significant"].tolist() == [significant(r) for r in frame.to_dict("records")]
    assert not written.loc[case.index[0], "significant"]
    assert written["significant"].sum() >= 1  # and some pair is significant: the rule is not "never"
    # report.html: the verdict sentences
    text = html.unescape(write_html(out).read_text(encoding="utf-8"))
    section = text[text.index('id="comparisons"') :]
    for record in written.to_dict("records"):
        sentence = verdict(record)
        assert sentence in section
        assert sentence.startswith("no significant difference") != bool(record["significant"])
    assert f"no significant difference between {pair[0]} and {pair[1]} on correlation" in section
    assert "Holm-adjusted p" in section and "excludes 0 with a Holm-adjusted p of 0.05 or more" in section
    # the forest plot: filled = significant (the same rule), hollow otherwise
    info, fig = next((i, f) for i, f in draw_figures(out) if i.kind == "forest")
    ax = fig.axes[0]
    filled, hollow = ax.collections[-2:]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    y_of = {re.sub(r"\s+\(.*", "", label): i for i, label in enumerate(labels)}
    hollow_rows = {int(round(y)) for _, y in hollow.get_offsets()}
    filled_rows = {int(round(y)) for _, y in filled.get_offsets()}
    assert y_of[f"{pair[0]} − {pair[1]}"] in hollow_rows
    assert filled_rows == {
        y_of[f"{a} − {b}"] for a, b, s in zip(written["model_a"], written["model_b"], written["significant"]) if s
    }
    assert filled.get_label() == "significant (Holm)" and "Holm-adjusted p" in info.caption
    assert any("p_Holm" in label for label in labels)


HUMAN_CONDITIONS = """
[[tasks]]
name = "cond"
type = "conditions"
pairs = "data/cond.csv"
images = "data/images"
conditions = ["near", "far"]
human_effect = { near = 0.2, far = 0.6 }
n_boot = 200
"""


def test_a_metric_with_a_human_target_is_in_the_overview_and_the_comparisons(bench) -> None:
    """The `conditions` task's mean distance has a human target per condition: it gets an overview column per
    condition (coloured by closeness to its human value) and comparisons of |value − human| per condition,
    Holm-adjusted within the condition (before: neither)."""
    bench.grid(tasks=("verif",), extra=HUMAN_CONDITIONS)
    bench.test_file()
    result = bench.run()
    result.assert_outcomes(passed=4)
    comparisons = pd.read_csv(bench.out / "comparisons.csv", keep_default_na=False)
    cond = comparisons[comparisons["task"] == "cond"]
    assert cond[["metric", "condition"]].values.tolist() == [["mean_distance", "near"], ["mean_distance", "far"]]
    assert cond["p_holm"].tolist() == cond["p_value"].tolist()  # Holm per condition: one model pair each
    row = cond.iloc[0]
    assert row["quantity"] == "|value − human| (human 0.2)"
    results = bench.results().fillna({"condition": ""})
    near = results[(results["task"] == "cond") & (results["metric"] == "mean_distance") & results["readout"]]
    near = near[near["condition"] == "near"].set_index("model")["value"]
    assert row["value_a"] == pytest.approx(abs(near[row["model_a"]] - 0.2))  # hand: |mean − human|
    assert row["value_b"] == pytest.approx(abs(near[row["model_b"]] - 0.2))
    assert row["diff"] == pytest.approx(row["value_a"] - row["value_b"])
    assert row["ci_low"] <= row["diff"] <= row["ci_high"] and 0 <= row["p_value"] <= 1
    # report.html: the verdict names the condition
    text = html.unescape((bench.out / "report.html").read_text(encoding="utf-8"))
    assert re.search(r"closer to the human value (than \w+ )?on mean_distance \(near\)", text)
    # the overview: one column per condition of the conditions task, "near" coloured by closeness to 0.2
    overview = next(f for i, f in draw_figures(bench.out) if i.kind == "overview")
    ticks = [" ".join(t.get_text().split()) for t in overview.axes[0].get_xticklabels()]
    assert [t.split(" Mean")[0] for t in ticks if t.startswith("cond")] == ["cond · near", "cond · far"]
    assert "(closer to human 0.2 is better)" in next(t for t in ticks if t.startswith("cond · near"))
    assert "(closer to human 0.6 is better)" in next(t for t in ticks if t.startswith("cond · far"))
    # and the forest plot has a panel for each
    forest = next(f for i, f in draw_figures(bench.out) if i.kind == "forest" and i.task == "cond")
    assert [ax.get_title() for ax in forest.axes] == ["Mean distance · near", "Mean distance · far"]


def test_p_holm_of_exactly_005_is_not_below_005() -> None:
    """A Holm-adjusted bootstrap p of 25 × 0.002 prints as p_Holm = 0.050: it is not significant at 95% (the
    float 1 − 0.95 is slightly above 0.05, which used to call it significant)."""
    row = {"ci_low": 0.035, "ci_high": 0.25, "p_value": 0.002, "p_holm": 25 * 0.002, "ci_level": 0.95}
    assert not significant(row)
    assert significant({**row, "p_holm": 0.048}) and not significant({**row, "p_holm": 0.048, "ci_low": -0.01})
    assert significant({**row, "p_holm": float("nan")})  # no adjustment: the raw p decides
    assert verdict({**row, "model_a": "a", "model_b": "b", "metric": "auc", "diff": 0.1}).startswith(
        "no significant difference between a and b on auc"
    )
