"""`python -m pytest_facebench table DIR --layout face-recognition` and report.html's "Face recognition"
section (results.build_face_recognition_table, report/paper.py, report/html.py) on a hand-made results dir:
benchmark names mapped by alias into the papers' order, only the columns the run has, percentages with CIs,
LaTeX booktabs with the best model in bold, published values (references.json) in `(paper)` rows with the
difference, and the report section present or absent."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from pytest_facebench.__main__ import main as cli_main
from pytest_facebench.outputs.results import face_recognition_benchmark, face_recognition_columns, far_text

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
]
# model, layer (False: not the readout layer) → task → value, ci_low, ci_high of its headline metric; the grid
# order of the tasks is not the papers' (IJB-C first), and names use several aliases
VALUES: dict[tuple[str, str], dict[str, tuple[float, float, float]]] = {
    ("arcface", "fc1"): {
        "ijb_c": (0.9120, 0.9050, 0.9190),
        "AgeDB-30": (0.9583, 0.9490, 0.9670),
        "lfw": (0.9938, 0.9910, 0.9960),
        "cfp_fp": (0.9412, 0.9301, 0.9520),
        "my_pairs": (0.80, 0.78, 0.82),
    },
    ("arcface", "stage4"): {"lfw": (0.9701, 0.9650, 0.9750)},
    ("facenet", "embedding"): {
        "ijb_c": (0.8500, 0.8400, 0.8600),
        "AgeDB-30": (0.9200, 0.9100, 0.9300),
        "lfw": (0.9963, 0.9940, 0.9980),
        "cfp_fp": (0.9000, 0.8870, 0.9130),
    },
}
REFERENCES = [
    {"task": "lfw", "model": "arcface", "metric": None, "value": 99.83, "source": "Deng et al. 2019"},
    # a fraction: read as 96.06 %
    {"task": "ijb_c", "model": "arcface", "metric": "tar_at_far_0.0001", "value": 0.9606, "source": "Deng et al. 2019"},
    {"task": "AgeDB-30", "model": "arcface", "metric": None, "value": 98.28, "source": "Deng et al. 2019"},
    {"task": "lfw", "model": "facenet", "metric": None, "value": 99.63, "source": "Schroff et al. 2015"},
    {"task": "lfw", "model": None, "metric": None, "value": 97.53, "label": "human", "source": "Kumar et al. 2009"},
    {"task": "lfw", "model": "sphereface", "metric": None, "value": 99.42, "source": "Liu et al. 2017"},
    {"task": "lfw", "model": "arcface", "metric": "eer", "value": 0.5},  # not the column's metric
    {"task": "ratings", "model": "arcface", "metric": None, "value": 0.7},  # not a face-recognition task
]


def _rows() -> list[tuple]:
    rows = []

    def add(model: str, layer: str, task: str, kind: str, metric: str, value: tuple, head: bool) -> None:
        readout, index = layer != "stage4", 0 if layer == "stage4" else 1
        rows.append((model, layer, index, task, kind, metric, "", *value, 1000, "p", readout, head))

    for (model, layer), tasks in VALUES.items():
        for task, (value, low, high) in tasks.items():
            if task == "ijb_c":
                add(model, layer, task, "template_verification", "tar_at_far_0.0001", (value, low, high), True)
                add(model, layer, task, "template_verification", "tar_at_far_0.001", (0.95, 0.94, 0.96), False)
            else:
                add(model, layer, task, "accuracy", "accuracy_kfold", (value, low, high), True)
                add(model, layer, task, "accuracy", "eer", (1 - value, 1 - high, 1 - low), False)
    for model, layer in (("arcface", "fc1"), ("facenet", "embedding"), ("vgg16", "fc7")):
        add(model, layer, "ratings", "correlation", "correlation", (0.5, 0.4, 0.6), True)
    return rows


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    out = tmp_path / "run"
    out.mkdir()
    pd.DataFrame(_rows(), columns=COLUMNS).to_csv(out / "results.csv", index=False)
    (out / "run.json").write_text("{}")
    (out / "references.json").write_text(json.dumps(REFERENCES))
    return out


def table(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli_main(["table", *args, "--layout", "face-recognition"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out


# --- columns -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "benchmark"),
    [
        ("lfw", ("LFW", "accuracy_kfold")),
        ("LFW", ("LFW", "accuracy_kfold")),
        ("cfp_fp", ("CFP-FP", "accuracy_kfold")),
        ("CFP-FP", ("CFP-FP", "accuracy_kfold")),
        ("cfpfp", ("CFP-FP", "accuracy_kfold")),
        ("agedb_30", ("AgeDB-30", "accuracy_kfold")),
        ("AgeDB30", ("AgeDB-30", "accuracy_kfold")),
        ("agedb", ("AgeDB-30", "accuracy_kfold")),
        ("CALFW", ("CALFW", "accuracy_kfold")),
        ("cplfw", ("CPLFW", "accuracy_kfold")),
        ("ijbb", ("IJB-B", "tar_at_far_0.0001")),
        ("ijb_b", ("IJB-B", "tar_at_far_0.0001")),
        ("IJB-B", ("IJB-B", "tar_at_far_0.0001")),
        ("ijbc", ("IJB-C", "tar_at_far_0.0001")),
        ("ijb_c", ("IJB-C", "tar_at_far_0.0001")),
        ("IJB-C", ("IJB-C", "tar_at_far_0.0001")),
        ("lfw_masked", None),
        ("cfp_ff", None),
        ("ijba", None),
    ],
)
def test_benchmark_aliases(name: str, benchmark: tuple[str, str] | None) -> None:
    assert face_recognition_benchmark(name) == benchmark


def test_far_text() -> None:
    assert [far_text(f"tar_at_far_{far}") for far in ("0.0001", "0.001", "1e-05", "0.00015", "0.1")] == [
        "1e-4",
        "1e-3",
        "1e-5",
        "1.5e-4",
        "1e-1",
    ]


def test_columns_fall_back_to_the_headline_and_keep_duplicate_names_apart() -> None:
    """An IJB-B template task without TAR@FAR=1e-4 shows its headline (named in the header); two LFW tasks keep
    their own names; an aliased task of another kind (a correlation task named cplfw) is no column."""
    rows = [
        ("m", "l", 0, "IJB-B", "template_verification", "tar_at_far_0.001", "", 0.9, 0.8, 1.0, 10, "p", True, True),
        ("m", "l", 0, "lfw", "accuracy", "accuracy_kfold", "", 0.99, 0.98, 1.0, 10, "p", True, True),
        ("m", "l", 0, "LFW", "accuracy", "accuracy_kfold", "", 0.98, 0.97, 0.99, 10, "p", True, True),
        ("m", "l", 0, "cplfw", "correlation", "correlation", "", 0.5, 0.4, 0.6, 10, "p", True, True),
        ("m", "l", 0, "pairs", "accuracy", "auc", "", 0.7, 0.6, 0.8, 10, "p", True, True),
    ]
    columns = face_recognition_columns(pd.DataFrame(rows, columns=COLUMNS))
    assert [(c.task, c.metric, c.title) for c in columns] == [
        ("lfw", "accuracy_kfold", "lfw"),
        ("LFW", "accuracy_kfold", "LFW"),
        ("IJB-B", "tar_at_far_0.001", "IJB-B (TAR@FAR=1e-3)"),
        ("pairs", "auc", "pairs (AUC)"),
    ]


# --- markdown ------------------------------------------------------------------------------------------
# order LFW, CFP-FP, AgeDB-30, IJB-C, then my_pairs (an accuracy task of no known benchmark); no CALFW, CPLFW,
# IJB-B (the run has none), no ratings (a correlation task), no vgg16 (no face-recognition cell); arcface at
# its readout layer fc1 (not stage4); the published IJB-C value 0.9606 in percent; human: no model's
MD = """\
| model              | LFW: Accuracy (k-fold) (%) ↑ | CFP-FP: Accuracy (k-fold) (%) ↑ | AgeDB-30: Accuracy (k-fold) (%) ↑ | IJB-C: TAR@FAR=1e-4 (%) ↑ | my_pairs: Accuracy (k-fold) (%) ↑ |
| ------------------ | ---------------------------- | ------------------------------- | --------------------------------- | ------------------------- | --------------------------------- |
| arcface            | 99.38 [99.10, 99.60]         | **94.12** [93.01, 95.20]        | **95.83** [94.90, 96.70]          | **91.20** [90.50, 91.90]  | 80.00 [78.00, 82.00]              |
| arcface (paper)    | 99.83 (Δ -0.45)              |                                 | 98.28 (Δ -2.45)                   | 96.06 (Δ -4.86)           |                                   |
| facenet            | **99.63** [99.40, 99.80]     | 90.00 [88.70, 91.30]            | 92.00 [91.00, 93.00]              | 85.00 [84.00, 86.00]      |                                   |
| facenet (paper)    | 99.63 (Δ 0.00)               |                                 |                                   |                           |                                   |
| sphereface (paper) | 99.42                        |                                 |                                   |                           |                                   |
| human              | 97.53                        |                                 |                                   |                           |                                   |
"""


def test_markdown_benchmarks_in_paper_order_in_percent_with_published_values(results_dir, capsys) -> None:
    assert table(capsys, str(results_dir)) == MD


def test_markdown_without_references_digits_and_n(results_dir, capsys) -> None:
    assert table(capsys, str(results_dir), "--no-references", "--digits", "1", "--n") == (
        "| model   | LFW: Accuracy (k-fold) (%) ↑   | CFP-FP: Accuracy (k-fold) (%) ↑ | AgeDB-30: Accuracy (k-fold) (%) ↑ | IJB-C: TAR@FAR=1e-4 (%) ↑      | my_pairs: Accuracy (k-fold) (%) ↑ |\n"
        "| ------- | ------------------------------ | ------------------------------- | --------------------------------- | ------------------------------ | --------------------------------- |\n"
        "| arcface | 99.4 [99.1, 99.6] (n=1000)     | **94.1** [93.0, 95.2] (n=1000)  | **95.8** [94.9, 96.7] (n=1000)    | **91.2** [90.5, 91.9] (n=1000) | 80.0 [78.0, 82.0] (n=1000)        |\n"
        "| facenet | **99.6** [99.4, 99.8] (n=1000) | 90.0 [88.7, 91.3] (n=1000)      | 92.0 [91.0, 93.0] (n=1000)        | 85.0 [84.0, 86.0] (n=1000)     |                                   |\n"
    )


def test_markdown_every_layer_compares_the_readout_layer(results_dir, capsys) -> None:
    text = table(capsys, str(results_dir), "--layer", "all")
    assert text.splitlines()[:5] == [
        "| model              | layer     | LFW: Accuracy (k-fold) (%) ↑ | CFP-FP: Accuracy (k-fold) (%) ↑ | AgeDB-30: Accuracy (k-fold) (%) ↑ | IJB-C: TAR@FAR=1e-4 (%) ↑ | my_pairs: Accuracy (k-fold) (%) ↑ |",
        "| ------------------ | --------- | ---------------------------- | ------------------------------- | --------------------------------- | ------------------------- | --------------------------------- |",
        "| arcface            | stage4    | 97.01 [96.50, 97.50]         |                                 |                                   |                           |                                   |",
        "| arcface            | fc1       | 99.38 [99.10, 99.60]         | **94.12** [93.01, 95.20]        | **95.83** [94.90, 96.70]          | **91.20** [90.50, 91.90]  | 80.00 [78.00, 82.00]              |",
        "| arcface (paper)    |           | 99.83 (Δ -0.45)              |                                 | 98.28 (Δ -2.45)                   | 96.06 (Δ -4.86)           |                                   |",
    ]


def test_a_reference_naming_a_layer_is_compared_with_that_layer(results_dir, capsys) -> None:
    refs = [{"task": "lfw", "model": "arcface", "layer": "stage4", "value": 0.97, "source": "ours"}]
    (results_dir / "references.json").write_text(json.dumps(refs))
    lines = table(capsys, str(results_dir)).splitlines()
    assert lines[3].startswith("| arcface (paper) | 97.00 (Δ +0.01)   ")


# --- latex ---------------------------------------------------------------------------------------------
# bold: LFW facenet, the other benchmarks arcface; my_pairs has one value (no bold); published values never
LATEX = r"""% needs \usepackage{booktabs} and \usepackage{adjustbox}
\begin{table}[tbp]
\centering
\begin{adjustbox}{max width=\textwidth}
\begin{tabular}{lcc}
\toprule
 & LFW & CFP-FP \\
\cmidrule(lr){2-2} \cmidrule(lr){3-3}
model & Accuracy (k-fold) (\%) $\uparrow$ & Accuracy (k-fold) (\%) $\uparrow$ \\
\midrule
arcface & 99.38 [99.10, 99.60] & \textbf{94.12} [93.01, 95.20] \\
arcface (paper) & 99.83 ($\Delta$ $-$0.45) &  \\
facenet & \textbf{99.63} [99.40, 99.80] & 90.00 [88.70, 91.30] \\
facenet (paper) & 99.63 ($\Delta$ 0.00) &  \\
sphereface (paper) & 99.42 &  \\
\midrule
human & 97.53 &  \\
\bottomrule
\end{tabular}
\end{adjustbox}
\par\medskip
\begin{adjustbox}{max width=\textwidth}
\begin{tabular}{lcc}
\toprule
 & AgeDB-30 & IJB-C \\
\cmidrule(lr){2-2} \cmidrule(lr){3-3}
model & Accuracy (k-fold) (\%) $\uparrow$ & TAR@FAR=1e-4 (\%) $\uparrow$ \\
\midrule
arcface & \textbf{95.83} [94.90, 96.70] & \textbf{91.20} [90.50, 91.90] \\
arcface (paper) & 98.28 ($\Delta$ $-$2.45) & 96.06 ($\Delta$ $-$4.86) \\
facenet & 92.00 [91.00, 93.00] & 85.00 [84.00, 86.00] \\
\bottomrule
\end{tabular}
\end{adjustbox}
\par\medskip
\begin{adjustbox}{max width=\textwidth}
\begin{tabular}{lc}
\toprule
 & my\_pairs \\
\cmidrule(lr){2-2}
model & Accuracy (k-fold) (\%) $\uparrow$ \\
\midrule
arcface & 80.00 [78.00, 82.00] \\
facenet &  \\
\bottomrule
\end{tabular}
\end{adjustbox}
\end{table}
"""


def test_latex_booktabs_best_model_in_bold_and_the_published_rows(results_dir, capsys) -> None:
    assert table(capsys, str(results_dir), "--format", "latex") == LATEX


# --- csv -----------------------------------------------------------------------------------------------
def test_csv_in_percent_with_delta_and_source_columns(results_dir, capsys) -> None:
    refs = [r for r in REFERENCES if r["model"] == "arcface"]
    (results_dir / "references.json").write_text(json.dumps(refs))
    text = table(capsys, str(results_dir), "--format", "csv")
    fields = " [ci_low], [ci_high], [delta], [source]".split(",")
    header = ["model"] + [
        f"{c}{f}" for c in ("LFW", "CFP-FP", "AgeDB-30", "IJB-C (TAR@FAR=1e-4)", "my_pairs") for f in ["", *fields]
    ]
    assert text.splitlines() == [
        ",".join(header),
        "arcface,99.38,99.1,99.6,,,94.12,93.01,95.2,,,95.83,94.9,96.7,,,91.2,90.5,91.9,,,80.0,78.0,82.0,,",
        "arcface (paper),99.83,,,-0.45,Deng et al. 2019,,,,,,98.28,,,-2.45,Deng et al. 2019,96.06,,,-4.86,"
        "Deng et al. 2019,,,,,",
        "facenet,99.63,99.4,99.8,,,90.0,88.7,91.3,,,92.0,91.0,93.0,,,85.0,84.0,86.0,,,,,,,",
    ]


# --- errors --------------------------------------------------------------------------------------------
def test_metrics_and_a_run_without_face_recognition_tasks_are_one_line_errors(results_dir, tmp_path, capsys) -> None:
    prefix = "python -m pytest_facebench table: error: "
    assert cli_main(["table", str(results_dir), "--layout", "face-recognition", "--metrics", "eer"]) == 2
    assert capsys.readouterr().err == (
        f"{prefix}--metrics does not apply to --layout face-recognition (its columns are the benchmarks)\n"
    )
    other = tmp_path / "other"
    other.mkdir()
    rows = [r for r in _rows() if r[3] == "ratings"]
    pd.DataFrame(rows, columns=COLUMNS).to_csv(other / "results.csv", index=False)
    assert cli_main(["table", str(other), "--layout", "face-recognition"]) == 2
    assert capsys.readouterr().err == (
        f"{prefix}{other / 'results.csv'}: no face-recognition task (an accuracy or template_verification task, "
        "or one named lfw, cfp_fp, agedb_30, calfw, cplfw, ijbb or ijbc)\n"
    )


# --- report.html ---------------------------------------------------------------------------------------
SECTION = (
    '<section id="face-recognition"><h2>Face recognition</h2><p class="muted">The face-recognition benchmarks '
    "in percent at each model's readout layer: k-fold accuracy (LFW, CFP-FP, AgeDB-30, CALFW, CPLFW and other "
    "verification tasks), TAR at the FAR named (IJB-B, IJB-C); brackets: confidence interval; bold: the best "
    "model per column. <i>(paper)</i> rows: the published value (references.json), \u0394 = reproduced "
    "\u2212 published in percentage points. The same table: <code>python -m pytest_facebench table DIR "
    '--layout face-recognition</code>.</p><div class="scroll"><table id="face-recognition-table"><thead><tr>'
    "<th>model</th><th>LFW</th><th>CFP-FP</th><th>AgeDB-30</th><th>IJB-C (TAR@FAR=1e-4)</th><th>my_pairs</th>"
    "</tr></thead><tbody>"
    '<tr><td class="model">arcface</td>'
    '<td class="num">99.38 <span class="ci">[99.10, 99.60]</span></td>'
    '<td class="num"><b>94.12</b> <span class="ci">[93.01, 95.20]</span></td>'
    '<td class="num"><b>95.83</b> <span class="ci">[94.90, 96.70]</span></td>'
    '<td class="num"><b>91.20</b> <span class="ci">[90.50, 91.90]</span></td>'
    '<td class="num">80.00 <span class="ci">[78.00, 82.00]</span></td></tr>'
    '<tr class="paper"><td class="model">arcface (paper)</td>'
    '<td class="num" title="Deng et al. 2019">99.83 <span class="delta-neg">(\u0394 \u22120.45)</span></td>'
    "<td></td>"
    '<td class="num" title="Deng et al. 2019">98.28 <span class="delta-neg">(\u0394 \u22122.45)</span></td>'
    '<td class="num" title="Deng et al. 2019">96.06 <span class="delta-neg">(\u0394 \u22124.86)</span></td>'
    "<td></td></tr>"
    '<tr><td class="model">facenet</td>'
    '<td class="num"><b>99.63</b> <span class="ci">[99.40, 99.80]</span></td>'
    '<td class="num">90.00 <span class="ci">[88.70, 91.30]</span></td>'
    '<td class="num">92.00 <span class="ci">[91.00, 93.00]</span></td>'
    '<td class="num">85.00 <span class="ci">[84.00, 86.00]</span></td><td></td></tr>'
    '<tr class="paper"><td class="model">facenet (paper)</td>'
    '<td class="num" title="Schroff et al. 2015">99.63 <span>(\u0394 0.00)</span></td>'
    "<td></td><td></td><td></td><td></td></tr>"
    '<tr class="paper"><td class="model">sphereface (paper)</td>'
    '<td class="num" title="Liu et al. 2017">99.42</td><td></td><td></td><td></td><td></td></tr>'
    '<tr class="paper"><td class="model">human</td>'
    '<td class="num" title="Kumar et al. 2009">97.53</td><td></td><td></td><td></td><td></td></tr>'
    "</tbody></table></div>"
    '<p class="muted" style="margin-bottom:0">Sources:</p><ul class="notes">'
    "<li>Deng et al. 2019: arcface · LFW, arcface · AgeDB-30, arcface · IJB-C (TAR@FAR=1e-4)</li>"
    "<li>Schroff et al. 2015: facenet · LFW</li><li>Liu et al. 2017: sphereface · LFW</li>"
    "<li>Kumar et al. 2009: human · LFW</li></ul></section>"
)


def _section(text: str) -> str:
    start = text.index('<section id="face-recognition">')
    return text[start : text.index("</section>", start) + len("</section>")]


def test_report_has_the_face_recognition_section(results_dir) -> None:
    from pytest_facebench.grid.registry import builtin_task_types
    from pytest_facebench.outputs.results import build_face_recognition_table
    from pytest_facebench.report.data import load_references, read_results
    from pytest_facebench.report.html import face_recognition_section, render_html

    builtin_task_types()
    results, references = read_results(results_dir), load_references(results_dir)
    assert face_recognition_section(build_face_recognition_table(results, references)) == SECTION
    text = render_html(results_dir, results, {}, {}, references)
    assert '<a href="#summary-section">Summary</a><a href="#face-recognition">Face recognition</a>' in text
    section = _section(text)  # the report adds each model's colour swatch: arcface, facenet and their (paper) rows
    swatch = re.compile(r'<span class="swatch" style="background:#[0-9a-f]{6}"></span>')
    assert len(swatch.findall(section)) == 4
    assert swatch.sub("", section) == SECTION
    assert text.index('id="summary-section"') < text.index('id="face-recognition"') < text.index('id="references"')


def test_report_section_without_references_and_absent_without_face_recognition_tasks(results_dir, tmp_path) -> None:
    from pytest_facebench.report.data import read_results
    from pytest_facebench.report.html import render_html

    results = read_results(results_dir)
    section = _section(render_html(results_dir, results, {}, {}, []))
    assert "(paper)" not in section and "Sources" not in section and "\u0394" not in section
    assert section.count("<tr>") == 3  # header, arcface, facenet

    others = results[results["task"] == "ratings"]
    text = render_html(tmp_path, others, {}, {}, REFERENCES)
    assert 'id="face-recognition"' not in text and "Face recognition" not in text
