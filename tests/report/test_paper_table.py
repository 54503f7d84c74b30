"""`python -m pytest_facebench table` (report/paper.py) and summary.csv (results.summary_frame), on a small
hand-made results dir: exact Markdown, LaTeX (bold by direction: higher, lower, target with a human value,
none), CSV, --layer best/all, --metrics selection and its errors, tiny values printed as zero."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from pytest_facebench.__main__ import main as cli_main
from pytest_facebench.outputs.reading import read_results
from pytest_facebench.outputs.results import TableCell, build_table, summary_frame
from pytest_facebench.report.paper import format_number

NAN = math.nan
COLUMNS = [
    "model",
    "layer",
    "layer_index",
    "task",
    "task_type",
    "metric",
    "condition",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "protocol",
    "readout",
    "headline",
    "target",
    "human_effect",
]
# directions come from run.json: `paper_spread` is known to no task class
METRICS = {
    "accuracy_kfold": {"display": "Accuracy (k-fold)", "direction": "higher"},
    "eer": {"display": "EER", "direction": "lower"},
    "correlation": {"display": "Correlation", "direction": "higher"},
    "correlation_ceiling_low": {"display": "Noise ceiling (low)", "direction": None},
    "correlation_ceiling_high": {"display": "Noise ceiling (high)", "direction": None},
    "relative_difference": {"display": "Relative Difference", "direction": "target"},
    "human_effect": {"display": "Human effect", "direction": None},
    "mean_distance": {"display": "Mean distance", "direction": "target"},
    "paper_spread": {"display": "Spread", "direction": "lower"},
}


def _rows() -> list[tuple]:
    """(model, layer, index, task, type, metric, condition, value, lo, hi, n, readout, headline, target, human)."""
    rows = []
    layers = {"alpha": [("l1", 0, False), ("l2", 1, True)], "beta": [("out", 0, True)]}
    values = {  # model, layer → task → metric[/condition] → (value, lo, hi)
        ("alpha", "l1"): {
            "verif": {"accuracy_kfold": (0.70, 0.60, 0.80), "eer": (0.30, 0.20, 0.40)},
            "sim": {"correlation": (0.65, 0.50, 0.75)},
            "inv": {"relative_difference": (0.30, 0.10, 0.50)},
            "cond": {"mean_distance/near": (0.20, 0.15, 0.25), "mean_distance/far": (0.50, 0.45, 0.55)},
            "spread": {"paper_spread": (2.0, 1.0, 3.0)},
        },
        ("alpha", "l2"): {
            "verif": {"accuracy_kfold": (0.80, 0.72, 0.88), "eer": (0.25, 0.18, 0.33)},
            "sim": {"correlation": (0.55, 0.40, 0.68)},
            "inv": {"relative_difference": (0.05, -0.10, 0.20)},
            "cond": {"mean_distance/near": (0.10, 0.05, 0.15), "mean_distance/far": (0.60, 0.55, 0.65)},
            "spread": {"paper_spread": (1.5, 1.0, 2.0)},
        },
        ("beta", "out"): {
            "verif": {"accuracy_kfold": (0.75, 0.65, 0.85), "eer": (0.20, 0.12, 0.28)},
            "sim": {"correlation": (0.60, 0.45, 0.72)},
            "inv": {"relative_difference": (-4e-12, -0.20, 3e-10)},
            "cond": {"mean_distance/near": (0.30, 0.20, 0.40), "mean_distance/far": (NAN, NAN, NAN)},
            "spread": {"paper_spread": (1.0, 0.5, 1.5)},
        },
    }
    types = {"verif": "accuracy", "sim": "correlation", "inv": "relative_difference", "cond": "conditions"}
    types["spread"] = "paper_custom"
    heads = {"verif": "accuracy_kfold", "sim": "correlation", "inv": "relative_difference", "cond": "mean_distance"}
    heads["spread"] = "paper_spread"
    n = {"verif": 100, "sim": 66, "inv": 30, "cond": 20, "spread": 10}
    for model, model_layers in layers.items():
        for layer, index, readout in model_layers:
            for task, metrics in values[(model, layer)].items():
                for name, (value, lo, hi) in metrics.items():
                    metric, _, condition = name.partition("/")
                    target = human = 0.1 if metric == "relative_difference" else NAN
                    head = heads[task] == metric
                    row = (model, layer, index, task, types[task], metric, condition, value, lo, hi, n[task])
                    rows.append((*row, readout, head, target, human))
                if task == "sim":  # the same ceilings at every layer
                    for metric, (value, lo, hi) in {
                        "correlation_ceiling_low": (0.90, 0.88, 0.92),
                        "correlation_ceiling_high": (0.95, 0.93, 0.97),
                    }.items():
                        rows.append((model, layer, index, task, "correlation", metric, "", value, lo, hi, 66))
                        rows[-1] += (readout, False, NAN, NAN)
                if task == "inv":
                    row = (model, layer, index, task, "relative_difference", "human_effect", "", 0.1, NAN, NAN, 30)
                    rows.append((*row, readout, False, NAN, NAN))
    return rows


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    out = tmp_path / "run"
    out.mkdir()
    frame = pd.DataFrame([(*r[:11], "p", *r[11:]) for r in _rows()], columns=COLUMNS)
    frame.loc[frame["metric"] == "human_effect", "protocol"] = "declared in the grid (relative_difference)"
    frame.to_csv(out / "results.csv", index=False)
    (out / "run.json").write_text(json.dumps({"metrics": METRICS}))
    return out


def table(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli_main(["table", *args]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out


def error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli_main(["table", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    return captured.err


# --- numbers -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "digits", "text"),
    [
        (0.7834, 3, "0.783"),
        (0.7835001, 2, "0.78"),
        (-4e-12, 3, "0.000"),
        (3e-10, 12, "0.000000000000"),  # below 1e-9: zero, at any precision
        (-0.0002, 3, "0.000"),  # rounds to zero: no sign
        (-0.0006, 3, "-0.001"),
        (-0.0, 1, "0.0"),
        (NAN, 3, "–"),
        (None, 3, "–"),
        (12.5, 0, "12"),
    ],
)
def test_format_number(value: float | None, digits: int, text: str) -> None:
    assert format_number(value, digits) == text


def test_cell_text_with_ci_n_layer_and_nan() -> None:
    from pytest_facebench.report.paper import format_cell

    cell = TableCell(0.5, -1e-12, 0.75, 120, "conv4")
    assert format_cell(cell) == "0.50 [0.00, 0.75]"  # decimals from the CI's width (0.75: 2)
    assert format_cell(cell, digits=1, n=True, layer=True) == "0.5 [0.0, 0.8] (n=120) @ conv4"
    assert format_cell(TableCell(0.5, NAN, 0.75)) == "0.500 [–, 0.750]"
    assert format_cell(TableCell(0.5)) == "0.500"
    assert format_cell(TableCell(NAN, 0.1, 0.2, 12)) == "–"
    assert format_cell(None) == ""


# --- markdown ------------------------------------------------------------------------------------------
MD = """\
| model                | layer | verif: Accuracy (k-fold) ↑ | sim: Correlation r ↑     | inv: Relative Difference target 0.10 | cond: Mean distance: near | cond: Mean distance: far | spread: Spread ↓   |
| -------------------- | ----- | -------------------------- | ------------------------ | ------------------------------------ | ------------------------- | ------------------------ | ------------------ |
| alpha                | l2    | **0.80** [0.72, 0.88]      | 0.550 [0.400, 0.680]     | **0.05** [-0.10, 0.20]               | 0.10 [0.05, 0.15]         | 0.60 [0.55, 0.65]        | 1.5 [1.0, 2.0]     |
| beta                 | out   | 0.75 [0.65, 0.85]          | **0.600** [0.450, 0.720] | 0.00 [-0.20, 0.00]                   | 0.30 [0.20, 0.40]         | –                        | **1.0** [0.5, 1.5] |
| noise ceiling (low)  |       |                            | 0.900 [0.880, 0.920]     |                                      |                           |                          |                    |
| noise ceiling (high) |       |                            | 0.950 [0.930, 0.970]     |                                      |                           |                          |                    |
| human                |       |                            |                          | 0.10                                 |                           |                          |                    |
"""


def test_markdown_headline_metrics_at_the_readout_layer_with_reference_rows(results_dir, capsys) -> None:
    assert table(capsys, str(results_dir)) == MD


def test_markdown_n_digits_and_out_file(results_dir, capsys, tmp_path) -> None:
    out = tmp_path / "t.md"
    assert table(capsys, str(results_dir), "--metrics", "verif/eer", "--digits", "2", "--n", "--out", str(out)) == ""
    assert out.read_text() == (
        "| model | layer | verif: EER ↓                  |\n"
        "| ----- | ----- | ----------------------------- |\n"
        "| alpha | l2    | 0.25 [0.18, 0.33] (n=100)     |\n"
        "| beta  | out   | **0.20** [0.12, 0.28] (n=100) |\n"
    )


def test_markdown_all_layers(results_dir, capsys) -> None:
    assert table(capsys, str(results_dir), "--layer", "all", "--metrics", "correlation", "eer") == (
        "| model                | layer | sim: Correlation r ↑     | verif: EER ↓          |\n"
        "| -------------------- | ----- | ------------------------ | --------------------- |\n"
        "| alpha                | l1    | **0.650** [0.500, 0.750] | 0.30 [0.20, 0.40]     |\n"
        "| alpha                | l2    | 0.550 [0.400, 0.680]     | 0.25 [0.18, 0.33]     |\n"
        "| beta                 | out   | 0.600 [0.450, 0.720]     | **0.20** [0.12, 0.28] |\n"
        "| noise ceiling (low)  |       | 0.900 [0.880, 0.920]     |                       |\n"
        "| noise ceiling (high) |       | 0.950 [0.930, 0.970]     |                       |\n"
    )


def test_markdown_best_layer_names_the_layer_in_each_cell(results_dir, capsys) -> None:
    text = table(capsys, str(results_dir), "--layer", "best", "--metrics", "verif/accuracy_kfold", "sim/correlation")
    assert text == (
        "| model                | verif: Accuracy (k-fold) ↑ | sim: Correlation r ↑          |\n"
        "| -------------------- | -------------------------- | ----------------------------- |\n"
        "| alpha                | **0.80** [0.72, 0.88] @ l2 | **0.650** [0.500, 0.750] @ l1 |\n"
        "| beta                 | 0.75 [0.65, 0.85] @ out    | 0.600 [0.450, 0.720] @ out    |\n"
        "| noise ceiling (low)  |                            | 0.900 [0.880, 0.920]          |\n"
        "| noise ceiling (high) |                            | 0.950 [0.930, 0.970]          |\n"
    )


# --- latex ---------------------------------------------------------------------------------------------
# bold: accuracy (higher) alpha; correlation (higher) beta; relative difference (target, human 0.1) alpha's
# 0.05 over beta's 0; mean distance (target without a target): none; paper_spread (lower, from run.json) beta
LATEX = r"""% needs \usepackage{booktabs} and \usepackage{adjustbox}
\begin{table}[tbp]
\centering
\begin{adjustbox}{max width=\textwidth}
\begin{tabular}{llcc}
\toprule
 &  & verif & sim \\
\cmidrule(lr){3-3} \cmidrule(lr){4-4}
model & layer & Accuracy (k-fold) $\uparrow$ & Correlation r $\uparrow$ \\
\midrule
alpha & l2 & \textbf{0.80} [0.72, 0.88] & 0.550 [0.400, 0.680] \\
beta & out & 0.75 [0.65, 0.85] & \textbf{0.600} [0.450, 0.720] \\
\midrule
noise ceiling (low) &  &  & 0.900 [0.880, 0.920] \\
noise ceiling (high) &  &  & 0.950 [0.930, 0.970] \\
\bottomrule
\end{tabular}
\end{adjustbox}
\par\medskip
\begin{adjustbox}{max width=\textwidth}
\begin{tabular}{llc}
\toprule
 &  & inv \\
\cmidrule(lr){3-3}
model & layer & Relative Difference target 0.10 \\
\midrule
alpha & l2 & \textbf{0.05} [$-$0.10, 0.20] \\
beta & out & 0.00 [$-$0.20, 0.00] \\
\midrule
human &  & 0.10 \\
\bottomrule
\end{tabular}
\end{adjustbox}
\par\medskip
\begin{adjustbox}{max width=\textwidth}
\begin{tabular}{llcc}
\toprule
 &  & \multicolumn{2}{c}{cond} \\
\cmidrule(lr){3-4}
model & layer & Mean distance: near & Mean distance: far \\
\midrule
alpha & l2 & 0.10 [0.05, 0.15] & 0.60 [0.55, 0.65] \\
beta & out & 0.30 [0.20, 0.40] & -- \\
\bottomrule
\end{tabular}
\end{adjustbox}
\par\medskip
\begin{adjustbox}{max width=\textwidth}
\begin{tabular}{llc}
\toprule
 &  & spread \\
\cmidrule(lr){3-3}
model & layer & Spread $\downarrow$ \\
\midrule
alpha & l2 & 1.5 [1.0, 2.0] \\
beta & out & \textbf{1.0} [0.5, 1.5] \\
\bottomrule
\end{tabular}
\end{adjustbox}
\end{table}
"""

# best layer: alpha's correlation at l1 (0.65) now beats beta; its relative difference closest to 0.1 at l2
# (0.05, not l1's 0.30); its spread (lower) at l2; the mean distance (no target) stays at the readout layer
LATEX_BEST = r"""% needs \usepackage{booktabs} and \usepackage{adjustbox}
\begin{table}[tbp]
\centering
\begin{adjustbox}{max width=\textwidth}
\begin{tabular}{lcc}
\toprule
 & verif & sim \\
\cmidrule(lr){2-2} \cmidrule(lr){3-3}
model & Accuracy (k-fold) $\uparrow$ & Correlation r $\uparrow$ \\
\midrule
alpha & \textbf{0.80} [0.72, 0.88] @ l2 & \textbf{0.65} [0.50, 0.75] @ l1 \\
beta & 0.75 [0.65, 0.85] @ out & 0.60 [0.45, 0.72] @ out \\
\midrule
noise ceiling (low) &  & 0.90 [0.88, 0.92] \\
noise ceiling (high) &  & 0.95 [0.93, 0.97] \\
\bottomrule
\end{tabular}
\end{adjustbox}
\par\medskip
\begin{adjustbox}{max width=\textwidth}
\begin{tabular}{lc}
\toprule
 & inv \\
\cmidrule(lr){2-2}
model & Relative Difference target 0.10 \\
\midrule
alpha & \textbf{0.05} [$-$0.10, 0.20] @ l2 \\
beta & 0.00 [$-$0.20, 0.00] @ out \\
\midrule
human & 0.10 \\
\bottomrule
\end{tabular}
\end{adjustbox}
\par\medskip
\begin{adjustbox}{max width=\textwidth}
\begin{tabular}{lcc}
\toprule
 & \multicolumn{2}{c}{cond} \\
\cmidrule(lr){2-3}
model & Mean distance: near & Mean distance: far \\
\midrule
alpha & 0.10 [0.05, 0.15] @ l2 & 0.60 [0.55, 0.65] @ l2 \\
beta & 0.30 [0.20, 0.40] @ out & -- \\
\bottomrule
\end{tabular}
\end{adjustbox}
\par\medskip
\begin{adjustbox}{max width=\textwidth}
\begin{tabular}{lc}
\toprule
 & spread \\
\cmidrule(lr){2-2}
model & Spread $\downarrow$ \\
\midrule
alpha & 1.50 [1.00, 2.00] @ l2 \\
beta & \textbf{1.00} [0.50, 1.50] @ out \\
\bottomrule
\end{tabular}
\end{adjustbox}
\end{table}
"""


def test_latex_booktabs_with_the_best_value_per_column_in_bold(results_dir, capsys) -> None:
    assert table(capsys, str(results_dir), "--format", "latex") == LATEX


def test_latex_best_layer(results_dir, capsys) -> None:
    assert table(capsys, str(results_dir), "--format", "latex", "--layer", "best", "--digits", "2") == LATEX_BEST


def test_latex_escapes_and_bolds_one_winner_unless_an_exact_tie(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    out.mkdir()
    rows = [
        ("m_1&2", "layer_a", 0, "t%1", "accuracy", "eer", "", 0.2501, 0.2, 0.3, 10, "p", True, True),
        ("m#2", "layer_a", 0, "t%1", "accuracy", "eer", "", 0.2499, 0.2, 0.3, 10, "p", True, True),
        ("m3", "layer_a", 0, "t%1", "accuracy", "eer", "", 0.3, 0.2, 0.4, 10, "p", True, True),
        ("m_1&2", "layer_a", 0, "t%1", "accuracy", "auc", "", 0.9, 0.85, 0.95, 10, "p", True, False),
        ("m#2", "layer_a", 0, "t%1", "accuracy", "auc", "", 0.9, 0.85, 0.95, 10, "p", True, False),
        ("m3", "layer_a", 0, "t%1", "accuracy", "auc", "", 0.8, 0.75, 0.85, 10, "p", True, False),
    ]
    pd.DataFrame(rows, columns=COLUMNS[:14]).to_csv(out / "results.csv", index=False)
    # EER: 0.2499 and 0.2501 both print 0.25, but only the lower one wins; AUC: an exact tie, both bold
    body = table(capsys, str(out), "--format", "latex", "--digits", "2", "--metrics", "eer", "auc")
    assert body.splitlines()[4:16] == [
        "\\begin{tabular}{llcc}",
        "\\toprule",
        " &  & \\multicolumn{2}{c}{t\\%1} \\\\",
        "\\cmidrule(lr){3-4}",
        "model & layer & EER $\\downarrow$ & AUC $\\uparrow$ \\\\",
        "\\midrule",
        "m\\_1\\&2 & layer\\_a & 0.25 [0.20, 0.30] & \\textbf{0.90} [0.85, 0.95] \\\\",
        "m\\#2 & layer\\_a & \\textbf{0.25} [0.20, 0.30] & \\textbf{0.90} [0.85, 0.95] \\\\",
        "m3 & layer\\_a & 0.30 [0.20, 0.40] & 0.80 [0.75, 0.85] \\\\",
        "\\bottomrule",
        "\\end{tabular}",
        "\\end{adjustbox}",
    ]


# --- metric selection ----------------------------------------------------------------------------------
def test_a_reference_metric_named_in_metrics_is_a_column_not_a_row(results_dir, capsys) -> None:
    text = table(capsys, str(results_dir), "--metrics", "correlation", "sim / correlation_ceiling_low")
    assert text == (
        "| model                | layer | sim: Correlation r ↑     | sim: Noise ceiling (low) |\n"
        "| -------------------- | ----- | ------------------------ | ------------------------ |\n"
        "| alpha                | l2    | 0.550 [0.400, 0.680]     | 0.900 [0.880, 0.920]     |\n"
        "| beta                 | out   | **0.600** [0.450, 0.720] | 0.900 [0.880, 0.920]     |\n"
        "| noise ceiling (high) |       | 0.950 [0.930, 0.970]     |                          |\n"
    )
    no_refs = table(capsys, str(results_dir), "--metrics", "cond/mean_distance/far", "--no-references")
    assert no_refs == (
        "| model | layer | cond: Mean distance: far |\n"
        "| ----- | ----- | ------------------------ |\n"
        "| alpha | l2    | 0.60 [0.55, 0.65]        |\n"
        "| beta  | out   | –                        |\n"
    )


def test_unknown_metric_is_a_one_line_error_with_a_hint(results_dir, capsys) -> None:
    csv = results_dir / "results.csv"
    assert error(capsys, str(results_dir), "--metrics", "accuracy_kfol") == (
        f"python -m pytest_facebench table: error: {csv}: unknown metric 'accuracy_kfol'; "
        "did you mean 'accuracy_kfold'?\n"
    )
    assert error(capsys, str(results_dir), "--metrics", "verif/correlation") == (
        f"python -m pytest_facebench table: error: {csv}: unknown metric 'verif/correlation'; "
        "did you mean 'sim / correlation'?\n"
    )
    assert error(capsys, str(results_dir), "--metrics", "zzz") == (
        f"python -m pytest_facebench table: error: {csv}: unknown metric 'zzz'; metrics: accuracy_kfold, eer, "
        "correlation, correlation_ceiling_low, correlation_ceiling_high, relative_difference, human_effect, "
        "mean_distance, paper_spread\n"
    )


def test_missing_dir_no_results_and_bad_digits_are_one_line_errors(results_dir, tmp_path, capsys) -> None:
    prefix = "python -m pytest_facebench table: error: "
    missing = tmp_path / "nope"
    assert (
        error(capsys, str(missing)) == f"{prefix}{missing} does not exist; expected a results dir (with results.csv)\n"
    )
    assert error(capsys, str(tmp_path)) == f"{prefix}{tmp_path}: not a results dir (no results.csv)\n"
    assert error(capsys, str(results_dir), "--digits", "-1") == f"{prefix}--digits must be between 0 and 15; got -1\n"
    (missing / "results.csv").parent.mkdir()
    (missing / "results.csv").write_text("")
    assert error(capsys, str(missing)) == f"{prefix}{missing / 'results.csv'} has no results\n"


# --- csv and summary.csv -------------------------------------------------------------------------------
def test_csv_plain_values_with_ci_columns(results_dir, capsys) -> None:
    assert table(capsys, str(results_dir), "--format", "csv", "--metrics", "inv/relative_difference") == (
        "model,layer,inv / relative_difference,inv / relative_difference [ci_low],"
        "inv / relative_difference [ci_high]\n"
        "alpha,l2,0.05,-0.1,0.2\n"
        "beta,out,-4e-12,-0.2,3e-10\n"
        "human,,0.1,,\n"
    )
    best = table(capsys, str(results_dir), "--format", "csv", "--layer", "best", "--n", "--metrics", "eer,correlation")
    assert best == (
        "model,verif / eer,verif / eer [ci_low],verif / eer [ci_high],verif / eer [n],verif / eer [layer],"
        "sim / correlation,sim / correlation [ci_low],sim / correlation [ci_high],sim / correlation [n],"
        "sim / correlation [layer]\n"
        "alpha,0.25,0.18,0.33,100,l2,0.65,0.5,0.75,66,l1\n"
        "beta,0.2,0.12,0.28,100,out,0.6,0.45,0.72,66,out\n"
        "noise ceiling (low),,,,,,0.9,0.88,0.92,66,\n"
        "noise ceiling (high),,,,,,0.95,0.93,0.97,66,\n"
    )


def test_summary_csv_is_the_table_csv_of_every_metric_and_layer(results_dir, capsys) -> None:
    results = read_results(results_dir / "results.csv", normalized=False)
    summary = summary_frame(results)
    keys = [
        "verif / accuracy_kfold",
        "verif / eer",
        "sim / correlation",
        "sim / correlation_ceiling_low",
        "sim / correlation_ceiling_high",
        "inv / relative_difference",
        "inv / human_effect",
        "cond / mean_distance / near",
        "cond / mean_distance / far",
        "spread / paper_spread",
    ]
    no_ci = {"inv / human_effect"}  # a declared value: its always-empty CI columns are left out
    assert list(summary.columns) == ["model", "layer", "readout"] + [
        f"{k}{s}" for k in keys for s in ("", " [ci_low]", " [ci_high]") if not (k in no_ci and s)
    ]
    assert list(zip(summary["model"], summary["layer"])) == [("alpha", "l1"), ("alpha", "l2"), ("beta", "out")]
    assert summary["readout"].tolist() == [False, True, True]  # alpha reads out at l2
    assert not any(summary[c].isna().all() for c in summary.columns if c.endswith("]"))
    assert summary["sim / correlation [ci_high]"].tolist() == [0.75, 0.68, 0.72]
    assert summary["cond / mean_distance / far"].isna().tolist() == [False, False, True]
    text = table(capsys, str(results_dir), "--format", "csv", "--layer", "all", "--metrics", "all", "--no-references")
    assert text == summary.to_csv(index=False)


def test_summary_frame_of_in_memory_records(results_dir) -> None:
    """results_frame's records (condition None, readout bool, no target column) give the same summary."""
    from pytest_facebench.outputs.results import results_frame

    read = read_results(results_dir / "results.csv", normalized=False)
    records = [
        {k: (None if k == "condition" and v == "" else v) for k, v in r.items() if k not in ("target", "human_effect")}
        for r in pd.read_csv(results_dir / "results.csv", keep_default_na=False).to_dict("records")
    ]
    memory = results_frame(records, None, list(dict.fromkeys(read["task"])))
    assert memory["condition"].isna().any()
    expected = summary_frame(read)
    pd.testing.assert_frame_equal(summary_frame(memory), expected)
    assert summary_frame(pd.DataFrame()).columns.tolist() == ["model", "layer"]


def test_build_table_rejects_an_unknown_layer_mode(results_dir) -> None:
    from pytest_facebench.errors import ConfigError

    with pytest.raises(ConfigError, match="layer must be one of readout, best, all; got 'top'"):
        build_table(read_results(results_dir / "results.csv", normalized=False), layer="top")
