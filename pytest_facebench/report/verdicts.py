"""Comparisons as sentences: `verdict(row)` turns a row of comparisons.csv into what the report prints, and
`significant(row)` is the one rule that decides a comparison everywhere (comparisons.csv's `significant`
column, the verdicts of report.html, the filled markers of the forest plots).

**The rule.** A difference is significant when its Holm-adjusted p-value (`p_holm`: adjusted within a task and
metric over the model pairs; the raw `p_value` when there is no adjustment) is below 1 − the CI level (0.05
for 95% CIs) and its CI excludes 0. The CI is the per-comparison (unadjusted) interval of the difference, so
a CI that excludes 0 with `p_holm` ≥ 0.05 is *not* significant: the correction for the number of model pairs
decides.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..outputs.metrics import metric_info
from .numbers import format_p


# --- comparisons as sentences -----------------------------------------------------------------
def _signed(value: float) -> str:
    text = f"{value:.3f}"
    return ("0.000" if text == "-0.000" else text).replace("-", "−")


def _ci_text(low: float, high: float) -> str:
    joint = "–" if low >= 0 and high >= 0 else " to "
    return f"{_signed(low)}{joint}{_signed(high)}"


def _p_text(value: float, adjusted: str = "") -> str:
    """`p = 0.038`, `p < 0.001` (`report.numbers.format_p`); `adjusted` names the correction (`p_Holm = 0.114`)."""
    return format_p(value, adjusted)


def _float(row: dict[str, Any] | pd.Series, name: str) -> float:
    try:
        value = row.get(name)
        return math.nan if value is None else float(value)
    except (TypeError, ValueError):
        return math.nan


def significant(row: dict[str, Any] | pd.Series) -> bool:
    """The module's rule: `p_holm` (else `p_value`) < 1 − `ci_level` and the CI [ci_low, ci_high] excludes 0."""
    low, high = _float(row, "ci_low"), _float(row, "ci_high")
    p_holm = _float(row, "p_holm")
    p_used = p_holm if math.isfinite(p_holm) else _float(row, "p_value")
    level = _float(row, "ci_level")
    level = level if math.isfinite(level) and 0 < level < 1 else 0.95
    alpha = round(1 - level, 9)  # 1 − 0.95 is 0.050000000000000044 in floats: p = 0.05 is not below it
    return (
        math.isfinite(low)
        and math.isfinite(high)
        and (low > 0 or high < 0)
        and math.isfinite(p_used)
        and p_used < alpha - 1e-12  # 25 × 0.002 (a Holm-adjusted bootstrap p) is 0.05, whatever its last bit
    )


def verdict(row: dict[str, Any] | pd.Series) -> str:
    """'A beats B on auc (Δ=0.031, 95% CI 0.012–0.050, DeLong p=0.002)', or 'no significant difference
    between A and B on auc (...)'. Significant: `significant(row)`, the module's one rule. Δ is the winner minus the loser; for lower-is-better metrics the
    winner is the model with the lower value. A `target` metric (an effect) never "beats": a row comparing
    `quantity` "|value − human|" says which model is closer to the human value, one comparing "|value|"
    which effect is larger in magnitude."""
    get = row.get
    a, b, metric = str(get("model_a")), str(get("model_b")), str(get("metric"))
    condition = get("condition")
    on = f"{metric} ({condition})" if isinstance(condition, str) and condition else metric
    diff, low, high = float(get("diff", np.nan)), float(get("ci_low", np.nan)), float(get("ci_high", np.nan))
    p, p_holm = _float(row, "p_value"), _float(row, "p_holm")
    level = float(get("ci_level", 0.95) or 0.95)
    test = "DeLong" if str(get("test", "")).startswith("DeLong") else "bootstrap"
    decided = significant(row)
    quantity = str(get("quantity") or "value")
    closeness, magnitude = quantity.startswith("|value −"), quantity == "|value|"
    direction = metric_info(metric).direction
    lower_wins = closeness or (not magnitude and direction == "lower")
    a_wins = (diff < 0) if lower_wins else (diff > 0)
    if decided and not a_wins:  # report Δ as winner − loser
        diff, low, high = -diff, -high, -low
    p_text = _p_text(p) + (f", {_p_text(p_holm, 'Holm')}" if math.isfinite(p_holm) and p_holm != p else "")
    delta = "Δ" if quantity == "value" else f"Δ{quantity.split(' (')[0]}"
    detail = (
        f"{delta}={_signed(diff)}, {100 * level:.0f}% CI {_ci_text(low, high)}, {test} {p_text}"
        if math.isfinite(diff)
        else "undefined"
    )
    winner, loser = (a, b) if a_wins else (b, a)
    if closeness:
        if not decided:
            return f"neither {a} nor {b} is significantly closer to the human value on {on} ({detail})"
        return f"{winner} is closer to the human value than {loser} on {on} ({detail})"
    if magnitude or direction == "target":
        if not decided:
            return f"no significant difference in magnitude between {a} and {b} on {on} ({detail})"
        return f"{winner}'s {on} is larger in magnitude than {loser}'s ({detail})"
    if not decided:
        return f"no significant difference between {a} and {b} on {on} ({detail})"
    return f"{winner} beats {loser} on {on} ({detail})"
