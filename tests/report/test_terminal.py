"""The terminal summary (report/terminal.py): 120 columns with long labels and many models, the human value or
noise ceiling beside each row, decimals from the CIs (or fixed), the cell count by outcome, the demo notice."""

from __future__ import annotations

import pandas as pd
import pytest

from pytest_facebench.report.terminal import (
    WIDTH,
    cell_count_line,
    cell_counts,
    demo_line,
    summary_rows,
    summary_table,
)


def _frame(models: int = 3) -> pd.DataFrame:
    rows = []
    for i in range(models):
        model = f"model_with_a_rather_long_name_{i}"
        base = {"model": model, "layer": "out", "readout": True, "headline": True, "target": float("nan")}
        rows.append({**base, "task": "verification", "metric": "auc", "value": 0.8 + i / 100, "ci_low": 0.7})
        rows[-1].update(ci_high=0.9)
        label = "Pearson r with human dissimilarity (mean of 6 raters)"
        rows.append({**base, "task": "similarity", "metric": "correlation", "metric_label": label})
        rows[-1].update(value=0.6, ci_low=0.5, ci_high=0.7)
        for end, value in (("low", 0.93), ("high", 0.95)):
            rows.append({**base, "task": "similarity", "metric": f"correlation_ceiling_{end}", "value": value})
            rows[-1].update(headline=False)
        rows.append({**base, "task": "inversion", "metric": "relative_difference", "value": -0.2, "ci_low": -0.3})
        rows[-1].update(ci_high=-0.1, target=-0.15)
        for condition, value in (("same_image_jitter", 0.0237), ("different_identity", 0.53)):
            rows.append({**base, "task": "conditions", "metric": "mean_distance", "condition": condition})
            rows[-1].update(value=value, ci_low=value - 0.004, ci_high=value + 0.005, target=0.02)
    return pd.DataFrame(rows)


@pytest.mark.parametrize("models", [1, 3, 7])
def test_the_summary_fits_120_columns_and_keeps_every_model(models: int) -> None:
    text = summary_table(_frame(models))
    assert max(len(line) for line in text.splitlines()) <= WIDTH
    assert all(text.count(f"model_with_a_rather_long_name_{i}") == 1 for i in range(models))
    blocks = text.count("\n\n") + 1
    assert (blocks == 1) if models == 1 else (blocks > 1)  # several models continue under the same labels
    assert text.count("similarity (") == blocks


def test_labels_shorten_and_rows_show_the_human_value_or_the_ceiling() -> None:
    _, rows = summary_rows(_frame(1))
    labels = {row[0]: row[1] for row in rows}
    # the long metric title gives way to the metric's display name, within the label width
    assert any(label.startswith("similarity (") and len(label) <= 26 for label in labels)
    assert "ceiling 0.93–0.95" in labels.values()
    assert any(v == "human -0.15" for k, v in labels.items() if k.startswith("inversion"))
    # conditions: a heading row, then one indented row per condition with its own decimals and target
    assert [k for k in labels if k.startswith("  · ")] == ["  · same_image_jitter", "  · different_identity"]
    cells = {row[0]: row[2] for row in rows}
    assert cells["  · same_image_jitter"] == "0.0237 [0.0197, 0.0287]"  # CI width 0.009: 4 decimals
    assert labels["  · same_image_jitter"] == "human 0.0200"


def test_fixed_digits_override_the_ci_rule() -> None:
    _, rows = summary_rows(_frame(1), digits=1)
    assert {row[2] for row in rows if row[0].startswith("verification")} == {"0.8 [0.7, 0.9]"}


def test_cell_count_by_outcome() -> None:
    hit = {"stats": {"cell_cache": "hit"}}
    records = [{"outcome": "passed", "cells": [hit]}] * 21 + [{"outcome": "skipped", "cells": []}] * 21
    assert cell_count_line(cell_counts(records)) == "42 cells: 21 reused, 0 scored, 21 skipped"
    mixed = [
        {"outcome": "passed", "cells": [hit, {"stats": {}}]},
        {"outcome": "failed", "cells": [{"stats": {}}]},  # a gate failure after scoring
        {"outcome": "failed"},
        {"outcome": "interrupted"},
    ]
    assert cell_count_line(cell_counts(mixed), kept=6, kept_from=["2026-01-01T00:00:00"]) == (
        "4 cells: 0 reused, 2 scored, 0 skipped, 1 failed, 1 interrupted; 6 kept from the run of 2026-01-01T00:00:00"
    )


def test_demo_notice_names_the_tasks() -> None:
    assert demo_line([]) == ""
    line = demo_line(["verification", "similarity"])
    assert "not a finding" in line and "simulated" in line and line.endswith("(tasks: verification, similarity)")


def test_nan_headlines_are_numbered_with_their_reasons_under_the_table() -> None:
    frame = _frame(7)
    auc = frame["metric"] == "auc"
    frame.loc[auc, ["value", "ci_low", "ci_high"]] = float("nan")
    frame["note"] = ""
    frame.loc[auc, "note"] = "too few different pairs " + "x" * 150  # one reason, longer than a line
    frame.loc[frame.index[auc][-1], "note"] = "another reason"
    text = summary_table(frame)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= WIDTH
    assert text.count("nan [1]") == 6 and text.count("nan [2]") == 1 and " nan\n" not in text + "\n"
    first, second = lines[-2:]
    assert first.startswith("[1] nan: too few different pairs xxx") and first.endswith("…") and len(first) == WIDTH
    assert second == "[2] nan: another reason (verification · model_with_a_rather_long_name_6)"
