"""One number format for every view: the terminal, report.html, figures and `table` (Markdown, LaTeX).

**How many decimals.** A value with a confidence interval is printed with as many decimals as its CI needs:
the decimal place of the first significant digit of the CI's width, plus one, so the width reads to two
significant digits (`0.78 [0.71, 0.88]`: width 0.17; `0.9812 [0.9790, 0.9835]`: width 0.0045). Values that
are compared, a table column or the models of one task in the terminal, share the largest count any of
them needs (`shared_decimals`). A value without a CI gets `DEFAULT_DECIMALS` (3). The count is kept within
0‥`MAX_DECIMALS`. A fixed count (`--facebench-digits N`, `table --digits N`, `report --digits N`) overrides
all of this.

**Zero and NaN.** |x| < 1e-9 (float noise) prints as zero, and nothing prints as `-0.00`; NaN prints as `–`
(or what the caller passes).

**Minus signs.** `minus` replaces the hyphen of negative numbers: `MINUS` (U+2212) in HTML and figures,
`$-$` in LaTeX; the terminal, Markdown and CSV keep the ASCII hyphen (copyable, parseable).

**p-values.** `p < 0.001` below 0.001, else `p = 0.034` (three decimals); `format_p(p, "Holm")` writes
`p_Holm = 0.114`; `format_p_value` is the same without the name (a table column headed "p"). Every p-value
the plugin prints goes through these two (terminal, report.html, figures, relations).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

DEFAULT_DECIMALS = 3
MAX_DECIMALS = 6
ZERO = 1e-9
NAN_TEXT = "–"
MINUS = "\u2212"
P_FLOOR = 0.001


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def ci_decimals(ci_low: Any, ci_high: Any, default: int = DEFAULT_DECIMALS) -> int:
    """Decimals a value with this CI needs: one past the decimal place of the CI width's first significant
    digit (width 0.166 → 2; 0.0045 → 4; 12 → 0); `default` without a finite CI of non-zero width."""
    if not (_finite(ci_low) and _finite(ci_high)):
        return default
    width = abs(float(ci_high) - float(ci_low))
    if width < ZERO:
        return default
    return max(0, min(MAX_DECIMALS, 1 - math.floor(math.log10(width))))


def shared_decimals(
    intervals: Iterable[tuple[Any, Any]], fixed: int | None = None, default: int = DEFAULT_DECIMALS
) -> int:
    """The decimals of values printed side by side: `fixed` when given, else the most any CI needs (the
    narrowest CI decides), else `default` when none has a CI."""
    if fixed is not None:
        return int(fixed)
    needed = [ci_decimals(low, high, -1) for low, high in intervals]
    needed = [d for d in needed if d >= 0]
    return max(needed) if needed else default


def format_number(
    value: Any, decimals: int = DEFAULT_DECIMALS, nan: str = NAN_TEXT, minus: str = "-", plus: bool = False
) -> str:
    """`decimals` decimals; |x| < 1e-9 and anything that rounds to zero print without a sign; NaN as `nan`;
    negative numbers with `minus`; with `plus` a `+` before positive ones (differences)."""
    if not _finite(value):
        return nan
    number = float(value)
    if abs(number) < ZERO:
        number = 0.0
    text = f"{number:.{max(0, int(decimals))}f}"
    if text.startswith("-"):
        if float(text) == 0:
            return text[1:]
        return minus + text[1:]
    if plus and float(text) != 0:
        return "+" + text
    return text


def format_interval(
    ci_low: Any, ci_high: Any, decimals: int = DEFAULT_DECIMALS, nan: str = NAN_TEXT, minus: str = "-"
) -> str:
    """`[0.71, 0.88]`, or '' when neither bound is finite."""
    if not (_finite(ci_low) or _finite(ci_high)):
        return ""
    return f"[{format_number(ci_low, decimals, nan, minus)}, {format_number(ci_high, decimals, nan, minus)}]"


def format_estimate(
    value: Any,
    ci_low: Any = None,
    ci_high: Any = None,
    decimals: int | None = None,
    nan: str = NAN_TEXT,
    minus: str = "-",
) -> str:
    """`0.78 [0.71, 0.88]` (decimals from the CI unless given); `nan` alone for a missing value."""
    if not _finite(value):
        return nan
    if decimals is None:
        decimals = ci_decimals(ci_low, ci_high)
    text = format_number(value, decimals, nan, minus)
    interval = format_interval(ci_low, ci_high, decimals, nan, minus)
    return f"{text} {interval}" if interval else text


def format_p_value(p: Any) -> str:
    """A p-value without its name: `< 0.001`, `0.034` (three decimals, at most 1), `n/a` when missing."""
    if not _finite(p):
        return "n/a"
    value = float(p)
    if value < P_FLOOR:
        return f"< {P_FLOOR:.3f}"
    return f"{min(value, 1.0):.3f}"


def format_p(p: Any, adjusted: str = "") -> str:
    """`p < 0.001`, `p = 0.034`; `adjusted` names a correction (`p_Holm = 0.114`); `p = n/a` when missing."""
    name = f"p_{adjusted}" if adjusted else "p"
    text = format_p_value(p)
    return f"{name} {text}" if text.startswith("<") else f"{name} = {text}"
