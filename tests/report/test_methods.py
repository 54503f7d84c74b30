"""`python -m pytest_facebench methods RESULTS_DIR`: a methods section written from a real run's records (a tiny
grid run through pytester), in Markdown and LaTeX (compiled with pdflatex where installed)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from pytest_facebench.__main__ import main as cli_main


@pytest.fixture
def run_dir(bench):
    bench.grid(models=("pixels", "tiny"), tasks=("verif", "sim", "inv"))
    bench.test_file()
    bench.run().assert_outcomes(passed=6)
    return bench.out


def methods(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli_main(["methods", *args]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out


def test_methods_are_written_from_the_run_records(run_dir, capsys) -> None:
    text = methods(capsys, str(run_dir))
    run = json.loads((run_dir / "run.json").read_text())
    heads = [p.split(".**")[0] for p in text.split("\n\n")]
    assert heads == [
        "**Models",
        "**Tasks and protocols",
        "**Confidence intervals",
        "**Model comparisons",  # (no ceilings or human values in this grid: no paragraph about them)
        "**Software and provenance",
    ]
    # models: layers, readout layer, preprocessing as recorded in results.csv
    assert "We evaluated 2 models: pixels and tiny." in text
    assert "headline numbers at the readout layer" in text and "input resized to 16×16 px" in text
    # protocols: the k-fold protocol (folds and where thresholds are fit), FARs, distances, n
    assert "stratified 10-fold (each fold holds the same share of same and different pairs" in text
    assert "threshold fit on 9 folds" in text and "(TAR reported at FAR 0.001, 0.01 and 0.1)" in text
    assert "Task verif (accuracy; n = 24; cosine distance between embeddings)" in text
    # bootstrap: resamples, unit, CI method and level
    assert "95% percentile intervals from" in text and "bootstrap resamples of" in text
    # comparisons and their correction
    assert "Holm's method" in text and "DeLong" in text and "(4 comparisons)" in text
    assert "significant when its Holm-adjusted p-value was below 0.05 and its confidence interval excluded 0" in text
    # software versions, grid hash and commit
    assert f"numpy {run['versions']['numpy']}" in text and run["grid"]["sha256"] in text
    assert "pytest-facebench" in text


@pytest.mark.skipif(not shutil.which("pdflatex"), reason="pdflatex not installed")
def test_latex_methods_compile(run_dir, capsys, tmp_path) -> None:
    text = methods(capsys, str(run_dir), "--format", "latex")
    assert text.count("\\paragraph{") == 5 and "\\_" in text
    (tmp_path / "m.tex").write_text(
        "\\documentclass{article}\n\\usepackage[utf8]{inputenc}\n\\usepackage{textcomp}\n\\begin{document}\n"
        + text
        + "\\end{document}\n"
    )
    done = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "m.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:]


def test_methods_of_a_dir_without_results_is_a_one_line_error(tmp_path, capsys) -> None:
    assert cli_main(["methods", str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_ceilings_and_human_values_are_described() -> None:
    import pandas as pd

    from pytest_facebench.report.methods import references_paragraph

    rows = [
        ("sim", "correlation_ceiling_low", "", 0.931, None, "noise ceiling over 6 participants (low)"),
        ("sim", "correlation_ceiling_high", "", 0.952, None, "noise ceiling over 6 participants (high)"),
        ("inv", "relative_difference", "", -0.2, -0.15, "(inverted - upright) / (inverted + upright)"),
    ]
    frame = pd.DataFrame(rows, columns=["task", "metric", "condition", "value", "human_effect", "protocol"])
    text = references_paragraph(frame)
    assert "Noise ceiling: noise ceiling over 6 participants (low)." in text
    assert "For sim the ceiling lies between 0.93 and 0.95." in text
    assert "Models' Relative Difference on inv is compared with the human value -0.15." in text
