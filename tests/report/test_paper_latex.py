"""`table --format latex` compiled with pdflatex (skipped where LaTeX is not installed): the default table of a
wide run fits the page at the body font size (split over several tabulars, not shrunk), with its caption and
label; metric labels, directions, minus signs and one bold winner per column in the source."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from pytest_facebench.__main__ import main as cli_main

COLUMNS = ["model", "layer", "layer_index", "task", "task_type", "metric", "condition"]
COLUMNS += ["value", "ci_low", "ci_high", "n", "protocol", "readout", "headline", "target", "human_effect"]
MODELS = ("vgg16_untrained", "dlib_resnet", "clip_vitb32")
TASKS = 8
NEEDS_LATEX = pytest.mark.skipif(
    not (shutil.which("pdflatex") and shutil.which("pdftotext") and shutil.which("pdfinfo")),
    reason="pdflatex / poppler-utils not installed",
)


@pytest.fixture
def wide_run(tmp_path: Path) -> Path:
    """3 models × 8 verification tasks (AUC, higher) and one effect (target: the human value −0.15)."""
    rows = []
    for i, model in enumerate(MODELS):
        for t in range(TASKS):
            value = 0.7 + 0.05 * i - 0.01 * t
            rows.append((model, "out", 0, f"verification_{t}", "accuracy", "auc", "", value, value - 0.06))
            rows[-1] += (value + 0.05, 60, "k-fold", True, True, None, None)
        effect = (-0.30, -0.12, 0.05)[i]
        rows.append((model, "out", 0, "inversion", "relative_difference", "relative_difference", "", effect))
        rows[-1] += (effect - 0.1, effect + 0.1, 30, "bootstrap", True, True, -0.15, -0.15)
    out = tmp_path / "run"
    out.mkdir()
    pd.DataFrame(rows, columns=COLUMNS).to_csv(out / "results.csv", index=False)
    metrics = {"auc": {"display": "AUC", "direction": "higher"}}
    metrics["relative_difference"] = {"display": "Relative difference", "direction": "target"}
    (out / "run.json").write_text(json.dumps({"metrics": metrics}))
    return out


def latex(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli_main(["table", *args, "--format", "latex"]) == 0
    return capsys.readouterr().out


def test_latex_source_names_metrics_directions_minus_signs_and_one_winner(wide_run, capsys) -> None:
    text = latex(capsys, str(wide_run), "--caption", "AUC & effects", "--label", "tab:main")
    assert text.count("\\caption{AUC \\& effects}") == 1 and text.count("\\label{tab:main}") == 1
    assert "AUC $\\uparrow$" in text and "Relative Difference target $-$0.15" in text
    assert "verification\\_0" in text
    # minus signs are math minus, never a text hyphen before a digit
    rows = [line for line in text.splitlines() if " & out & " in line]
    assert "$-$0.30" in text and not any(re.search(r"(?<!\$)-\d", line) for line in rows)
    # one bold value per column: clip_vitb32 has the highest AUC; dlib_resnet's effect (-0.12) is closest to -0.15
    bold = re.findall(r"^([\w\\]+) & out & .*?\\textbf\{([^}]*)\}", text, flags=re.M)
    assert bold.count(("clip\\_vitb32", "0.80")) == 1 and ("dlib\\_resnet", "$-$0.12") in bold
    assert text.count("\\textbf{") == TASKS + 1


def _words(pdf: Path) -> list[tuple[float, float, float, float, str]]:
    html = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    pattern = r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>'
    return [(float(a), float(b), float(c), float(d), w) for a, b, c, d, w in re.findall(pattern, html)]


def _compile(tmp_path: Path, table: str) -> tuple[float, list[tuple[float, float, float, float, str]]]:
    (tmp_path / "table.tex").write_text(table)
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{adjustbox}\n\\pagestyle{empty}\n"
        "\\begin{document}\n\\input{table.tex}\n\\end{document}\n"
    )
    run = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-2000:]
    info = subprocess.run(["pdfinfo", str(tmp_path / "doc.pdf")], capture_output=True, text=True, check=True).stdout
    page_width = float(re.search(r"Page size:\s+([\d.]+) x", info).group(1))  # type: ignore[union-attr]
    return page_width, _words(tmp_path / "doc.pdf")


@NEEDS_LATEX
def test_default_latex_table_fits_the_page_width_at_body_font_size(wide_run, capsys, tmp_path) -> None:
    page_width, words = _compile(tmp_path, latex(capsys, str(wide_run), "--caption", "Results"))
    left, right = min(w[0] for w in words), max(w[2] for w in words)
    assert 0 <= left and right <= page_width
    assert right - left <= 345 + 1  # article's \textwidth
    # nothing was dropped: every model's row is in every part, and every task's column is there
    text = " ".join(w[4] for w in words)
    parts = text.count("model")
    assert parts >= 2 and all(text.count(m.replace("_", " ")) == parts for m in MODELS)  # (OT1 `\_`: a rule)
    assert all(f"verification {t}" in text for t in range(TASKS)) and "inversion" in text
    # split, not shrunk: the numbers keep the body font size (10 pt text: words about 9–10 pt high)
    heights = [w[3] - w[1] for w in words if re.fullmatch(r"\[?0\.\d+,?\]?", w[4])]
    assert heights and min(heights) > 8


@NEEDS_LATEX
def test_one_unsplit_tabular_would_be_shrunk_below_a_readable_size(wide_run, capsys, tmp_path) -> None:
    """The check above can fail: the same table forced into one tabular is scaled down to fit."""
    _, words = _compile(tmp_path, latex(capsys, str(wide_run), "--textwidth", "5000"))
    heights = [w[3] - w[1] for w in words if re.fullmatch(r"\[?0\.\d+,?\]?", w[4])]
    assert heights and max(heights) < 6
