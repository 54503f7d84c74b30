"""Paper tables: a results dir as a Markdown, LaTeX or CSV table (`python -m pytest_facebench table DIR`).

Default layout (the rows and columns come from `results.build_table`, the one builder summary.csv also uses):

- **Rows**: one per model at its readout layer (`--layer readout`, the default; the `layer` column names
  it); with `--layer best` one per model, each cell at the layer best for that column by the metric's
  direction (higher: max, lower: min, target: closest to its target, e.g. the human value; a metric without
  a better side stays at the readout layer) and the cell says which (`0.812 [0.750, 0.860] @ conv4`; no
  `layer` column); with `--layer all` one per model·layer.
- **Columns**: `task / metric` or `task / metric / condition`, metric ids as in results.csv. By default each
  task's headline metric (results.csv's `headline` column); `--metrics` names others: a metric id (every
  task that has it), `task/metric`, `task/metric/condition`, or `all`, in the order named.
- **Reference rows** below the models, under the column they refer to: `noise ceiling (low)` and
  `noise ceiling (high)` (a task's `<metric>_ceiling_low/_high`, under `<metric>`), and `human` (a declared
  `human_effect`, under the metric that carries it). They are the same for every model and layer (the first
  model's readout row is shown); a reference metric named in `--metrics` is a column instead, never both.
  `--no-references` leaves them out.
- **Cells**: `value [ci_low, ci_high]`, decimals as `report.numbers` says: per column, as many as its narrowest
  CI needs (one past the first significant digit of the CI's width; 3 without CIs, 2 for percentages);
  `--digits D` fixes them. `--n` appends ` (n=120)`; a value with |x| < 1e-9 prints as zero and nothing prints
  as `-0.000`; NaN prints as `–` (LaTeX `--`), a cell the row does not have is blank.
- **Headers** name the task (or benchmark) and the metric by its label, with the condition, the unit and the
  direction: `↑` higher is better, `↓` lower is better, `target 0.10` closest to the human value.
- **Best values**: in each column the best model value is bold (`**0.80**` in Markdown, `\\textbf{}` in LaTeX):
  higher: the largest, lower: the smallest, target: the closest to its target (the `target` column, else the
  human value). One winner, by the unrounded values; several only on an exact tie. No bold for metrics without
  a better side, for target metrics without a target, or with fewer than two values.
- **Markdown**: a pipe table, columns padded to equal width, headers `task: Label ↑`.
- **LaTeX**: fits `\\textwidth` by default. The columns are split over several booktabs `tabular`s stacked in
  one `table` float (each repeating the model column) when the whole would be wider than `--textwidth`
  (default 345 pt, LaTeX article's one-column width), by an estimate of 5 pt per character; each tabular also
  sits in `\\begin{adjustbox}{max width=\\textwidth}`, which shrinks it only if the estimate fell short. Splitting
  keeps the font size, where `\\resizebox` of a table twice as wide would halve it. A two-line header: the task
  over its metric columns (`\\cmidrule`), then each metric's label and direction (`$\\uparrow$`, `$\\downarrow$`,
  `target 0.10`). Real minus signs (`$-$`), `\\toprule`/`\\midrule`/`\\bottomrule` (a `\\midrule` also before
  the reference rows), `_ % & # $ { } ~ ^ \\` escaped, `--caption` and `--label` once for the float. Needs
  `\\usepackage{booktabs}` and `\\usepackage{adjustbox}` (the output's first line says so).
- **CSV**: machine-readable, the same frame summary.csv holds (`results.table_frame`): `model`, `layer`,
  then per column `<key>`, `<key> [ci_low]`, `<key> [ci_high]` (with `--n` also `<key> [n]`, with
  `--layer best` also `<key> [layer]` and no `layer` column; with `--layer all` a `readout` column after
  `layer`), unrounded; a `[ci_low]`/`[ci_high]`/`[n]` column empty in every row is left out. summary.csv is exactly
  `table DIR --format csv --layer all --metrics all --no-references`.

**`--layout face-recognition`** (`results.build_face_recognition_table`; report.html's "Face recognition"
section shows the same table):

- **Columns**: the run's face-recognition benchmarks, only those it has, in the papers' order: LFW, CFP-FP,
  AgeDB-30, CALFW, CPLFW (k-fold accuracy, `accuracy_kfold`), IJB-B, IJB-C (TAR@FAR=1e-4,
  `tar_at_far_0.0001`, headed `IJB-C (TAR@FAR=1e-4)`). A task is recognized by its name, compared without
  case, spaces, `-`, `_` and `.` (`lfw`; `cfp_fp`, `CFP-FP`, `cfpfp`; `agedb_30`, `agedb30`, `agedb`; `calfw`;
  `cplfw`; `ijbb`, `ijb_b`, `IJB-B`; `ijbc`, `ijb_c`, `IJB-C`), when it has that metric. Other `accuracy`
  tasks (k-fold accuracy) and `template_verification` tasks (TAR@FAR=1e-4) follow in the grid's order under
  their own names; a verification task without that metric shows its headline, named in the header
  (`IJB-B (TAR@FAR=1e-3)`, `lfw (AUC)`). `--metrics` is an error with this layout, and so is a run
  without any such task.
- **Rows**: the models at their readout layer, no `layer` column (`--layer best`: the cells name the layer;
  `--layer all`: one row per model·layer with a `layer` column).
- **Cells**: percentages, decimals from the CIs as above but at least 2, as face-recognition papers print
  them: `99.38 [99.10, 99.60]`, the CI in brackets; the best model per column is bold (higher is better;
  published values never); headers name the metric (`LFW` over `Accuracy (k-fold) (%) ↑`).
- **Published values** (the grid's `reference` tables, saved as references.json; `--no-references` leaves
  them out) go in rows of their own, so each table cell stays one number with its CI: a model's published
  values in a `<model> (paper)` row right below it, each cell `published (Δ difference)` with Δ = reproduced
  − published in percentage points (`99.83 (Δ -0.45)`; LaTeX `99.83 ($\\Delta$ -0.45)`); a published value
  of at most 1 is read as a fraction (0.9606 → 96.06). A model the run lacks keeps its `(paper)` row, without
  Δ, after the run's models (published baselines); a value for no model in particular (e.g. human
  performance on LFW) is a row at the bottom named by its `label` (default `reference`), after a `\\midrule`
  in LaTeX. The CSV has the same rows, values in percent, and `<column> [delta]` and `<column> [source]`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from ..outputs.metrics import HIGHER, LOWER, TARGET, badness, metric_info
from ..outputs.results import Table, TableCell, TableColumn, table_frame
from . import numbers
from .numbers import NAN_TEXT, ZERO, shared_decimals

FORMATS = ("md", "latex", "csv")
DELTA = "Δ"  # a published value's cell: `99.83 (Δ -0.06)`, Δ = reproduced − published (LaTeX: `$\Delta$`)
TEXTWIDTH_PT = 345.0  # LaTeX article's \textwidth (10pt, letter/A4 one column); `--textwidth` changes it
LATEX_CHAR_PT = 5.0  # the width of a digit in 10 pt Computer Modern (other characters: `_char_pt`)
LATEX_COLUMN_PAD_PT = 12.0  # 2 × \tabcolsep
LATEX_MINUS = "$-$"
LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "−": r"$-$",
    "Δ": r"$\Delta$",
    "±": r"$\pm$",
}
UP, DOWN = "↑", "↓"


def format_number(
    value: float | None, digits: int = numbers.DEFAULT_DECIMALS, nan: str = NAN_TEXT, minus: str = "-"
) -> str:
    """`digits` decimals; |x| < 1e-9 and anything that rounds to zero print without a sign; NaN as `nan`."""
    return numbers.format_number(value, digits, nan, minus)


def format_cell(
    cell: TableCell | None,
    digits: int | None = None,
    n: bool = False,
    layer: bool = False,
    nan: str = NAN_TEXT,
    minus: str = "-",
    ci: bool = True,
) -> str:
    """`0.78 [0.71, 0.88]` (`digits` decimals, else as many as the CI needs: `report.numbers`), plus
    ` (n=120)` with `n` and ` @ layer` with `layer`; `nan` alone for a NaN value; blank without a cell.
    An aggregate cell across a sweep: `0.612 ± 0.018 [0.590, 0.634] (5 seeds)` (without `ci`: no interval)."""
    if cell is None:
        return ""
    if not math.isfinite(cell.value):
        return nan
    if digits is None:
        digits = numbers.ci_decimals(cell.ci_low, cell.ci_high)
    text = format_number(cell.value, digits, nan, minus)
    if cell.sd is not None:
        text += f" ± {format_number(cell.sd, digits, nan, minus)}"
    interval = numbers.format_interval(cell.ci_low, cell.ci_high, digits, nan, minus)
    text += f" {interval}" if interval and (ci or cell.sd is None) else ""
    if cell.runs:
        text += f" ({cell.runs})"
    if n and cell.n is not None:
        text += f" (n={cell.n})"
    if layer and cell.layer:
        text += f" @ {cell.layer}"
    if cell.delta is not None:
        text += f" ({DELTA} {format_delta(cell.delta, digits, nan, minus)})"
    return text


def format_delta(delta: float, digits: int = 3, nan: str = NAN_TEXT, minus: str = "-") -> str:
    """A difference with its sign: `+0.12`, `-0.06`, and `0.00` when it rounds to zero."""
    return numbers.format_number(delta, digits, nan, minus, plus=True)


def column_digits(table: Table, column: TableColumn, fixed: int | None = None) -> int:
    """The decimals of one column: `fixed`, else as many as its narrowest CI needs (`numbers.shared_decimals`);
    a percentage column at least 2 (as face-recognition papers, and the published values, print them)."""
    cells = [row.cells[column.key] for row in table.rows if column.key in row.cells]
    if table.unit == "%":
        return fixed if fixed is not None else max(2, shared_decimals((c.ci_low, c.ci_high) for c in cells))
    return shared_decimals(((c.ci_low, c.ci_high) for c in cells), fixed)


def best_rows(table: Table, column: TableColumn, digits: int | None = None) -> set[int]:
    """Indices (into `table.rows`) of the model rows with the best value of `column` by the metric's direction:
    one winner, several only on an exact tie (of the unrounded values; for target metrics, of their distances
    to the target); empty when the metric has no better side (or a target metric no target) or fewer than two
    values. (`digits` is accepted for callers of the earlier display-tie rule and ignored.)"""
    scored = {}
    for i, row in enumerate(table.rows):
        cell = row.cells.get(column.key)
        if row.reference or row.aggregate or cell is None or not math.isfinite(cell.value):
            continue
        bad = badness(column.metric, cell.value, cell.target)
        if bad is not None:
            scored[i] = bad
    if len(scored) < 2:
        return set()
    best = min(scored.values())
    return {i for i, bad in scored.items() if abs(bad - best) <= ZERO * max(1.0, abs(best))}


def column_target(table: Table, column: TableColumn) -> float | None:
    """The target of a `target` column (the human value its model cells carry), when there is one."""
    for row in table.model_rows:
        cell = row.cells.get(column.key)
        if cell is not None and cell.target is not None and math.isfinite(cell.target):
            return cell.target
    return None


def direction_mark(table: Table, column: TableColumn, minus: str = "-") -> str:
    """`↑` (higher is better), `↓` (lower), `target 0.10` (closest to a target: the human value), else ''."""
    direction = metric_info(column.metric).direction
    if direction == HIGHER:
        return UP
    if direction == LOWER:
        return DOWN
    target = column_target(table, column) if direction == TARGET else None
    if target is None:
        return ""
    digits = column_digits(table, column)
    return f"target {numbers.format_number(target, digits, minus=minus)}"


def header_lines(table: Table, column: TableColumn, minus: str = "-") -> tuple[str, str]:
    """A column's two header lines: what (the task, or the benchmark: `LFW`) and how (the metric's label, the
    condition, the unit and the direction: `Accuracy (k-fold) (%) ↑`, `Relative difference target −0.15`)."""
    top = column.label or column.task
    label = metric_info(column.metric).display
    if column.label and "(" in column.label and column.label.endswith(")"):  # `IJB-C (TAR@FAR=1e-4)`
        top, _, named = column.label.rpartition(" (")
        label = named[:-1]
    bottom = label + (f": {column.condition}" if column.condition else "") + (f" ({table.unit})" if table.unit else "")
    mark = direction_mark(table, column, minus)
    return top, f"{bottom} {mark}" if mark else bottom


def _lead(table: Table, label: str, layer: str) -> list[str]:
    return [label] + ([layer] if table.has_layer_column else [])


def _cells(
    table: Table,
    columns: Sequence[TableColumn],
    digits: int | None,
    n: bool,
    nan: str,
    minus: str,
    bold: tuple[str, str],
    ci: bool = True,
) -> list[list[str]]:
    """Each row's cell texts for `columns`, the best model value wrapped in `bold` (opening, closing)."""
    best_layer = table.layer == "best"
    places = {c.key: column_digits(table, c, digits) for c in columns}
    winners = {c.key: best_rows(table, c) for c in columns}
    out = []
    for i, row in enumerate(table.rows):
        texts = []
        for column in columns:
            cell = row.cells.get(column.key)
            text = format_cell(cell, places[column.key], n, best_layer and not row.reference, nan, minus, ci)
            if cell is not None and i in winners[column.key]:
                value = format_number(cell.value, places[column.key], nan, minus)
                text = bold[0] + value + bold[1] + text[len(value) :]
            texts.append(text)
        out.append(texts)
    return out


def to_markdown(table: Table, digits: int | None = None, n: bool = False) -> str:
    """A pipe table, columns padded to equal width (`|` in names escaped); headers `task: metric label ↑`,
    the best model value per column in `**bold**`."""
    lines = [["model"] + (["layer"] if table.has_layer_column else [])]
    lines[0] += [": ".join(header_lines(table, c)) for c in table.columns]
    cells = _cells(table, table.columns, digits, n, NAN_TEXT, "-", ("**", "**"))
    for row, texts in zip(table.rows, cells):
        lines.append(_lead(table, row.label, row.layer) + texts)
    lines = [[text.replace("|", "\\|") for text in line] for line in lines]
    widths = [max(3, *(len(line[i]) for line in lines)) for i in range(len(lines[0]))]

    def pipe(line: list[str]) -> str:
        return "| " + " | ".join(text.ljust(w) for text, w in zip(line, widths)) + " |"

    rule = "| " + " | ".join("-" * w for w in widths) + " |"
    return "\n".join([pipe(lines[0]), rule, *(pipe(line) for line in lines[1:])]) + "\n"


def latex_escape(text: str) -> str:
    return "".join(LATEX_ESCAPES.get(char, char) for char in text)


def _char_pt(char: str) -> float:
    """About the width of a character in 10 pt Computer Modern (pt)."""
    if char.isdigit():
        return LATEX_CHAR_PT
    if char in " .,:;[]()|'":
        return 2.9
    if char.isupper() or char in "−↑↓mw@%":
        return 7.5
    return 4.8


def _estimate_pt(texts: Sequence[str]) -> float:
    return max((sum(_char_pt(c) for c in t) for t in texts), default=LATEX_CHAR_PT) + LATEX_COLUMN_PAD_PT


def split_columns(
    table: Table, digits: int | None = None, n: bool = False, textwidth: float = TEXTWIDTH_PT
) -> list[list[TableColumn]]:
    """The columns in groups whose table (with the lead columns) fits `textwidth` by an estimate of the cells'
    widths (`LATEX_CHAR_PT` per character); each group keeps at least one column."""
    lead = [["model"] + [r.label for r in table.rows]]
    if table.has_layer_column:
        lead.append(["layer"] + [r.layer for r in table.rows])
    lead_pt = sum(_estimate_pt(texts) for texts in lead)
    cells = _cells(table, table.columns, digits, n, "--", "-", ("", ""))
    groups: list[list[TableColumn]] = []
    used = lead_pt
    for j, column in enumerate(table.columns):
        top, bottom = header_lines(table, column)
        width = _estimate_pt([top, bottom, *(row[j] for row in cells)])
        if groups and groups[-1] and used + width <= textwidth:
            groups[-1].append(column)
            used += width
        else:
            groups.append([column])
            used = lead_pt + width
    return groups


def _latex_tabular(table: Table, columns: Sequence[TableColumn], digits: int | None, n: bool) -> list[str]:
    lead = 2 if table.has_layer_column else 1
    heads = [header_lines(table, c, "−") for c in columns]
    top_cells: list[str] = []
    rules: list[str] = []
    j = 0
    while j < len(columns):  # adjacent columns of one task (benchmark) share one spanning top header
        k = j
        while k + 1 < len(columns) and heads[k + 1][0] == heads[j][0]:
            k += 1
        span = k - j + 1
        name = latex_escape(heads[j][0])
        top_cells.append(name if span == 1 else f"\\multicolumn{{{span}}}{{c}}{{{name}}}")
        rules.append(f"\\cmidrule(lr){{{lead + j + 1}-{lead + k + 1}}}")
        j = k + 1
    lines = [
        f"\\begin{{tabular}}{{{'l' * lead}{'c' * len(columns)}}}",
        "\\toprule",
        " & ".join([""] * lead + top_cells) + " \\\\",
        " ".join(rules),
        " & ".join(["model"] + (["layer"] if lead == 2 else []) + [latex_escape(h[1]) for h in heads]) + " \\\\",
        "\\midrule",
    ]
    cells = _cells(table, columns, digits, n, "--", "\x01", ("\x02", "\x03"), ci=False)  # aggregates: mean ± SD
    previous_reference = False
    for i, (row, texts) in enumerate(zip(table.rows, cells)):
        if row.reference and not any(texts):  # a reference row with nothing under these columns
            continue
        below = row.reference and not row.published  # the rows below the models (a model's published ones follow it)
        if below and not previous_reference and i > 0:
            lines.append("\\midrule")
        previous_reference = below
        shown = [
            latex_escape(t).replace("\x01", LATEX_MINUS).replace("\x02", "\\textbf{").replace("\x03", "}")
            for t in texts
        ]
        lead_cells = [latex_escape(t) for t in _lead(table, row.label, row.layer)]
        lines.append(" & ".join(lead_cells + shown) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return lines


def to_latex(
    table: Table,
    digits: int | None = None,
    n: bool = False,
    caption: str | None = None,
    label: str | None = None,
    textwidth: float = TEXTWIDTH_PT,
) -> str:
    """A booktabs table that fits `\\textwidth`: the columns split over several tabulars stacked in one `table`
    float when one would be wider than `textwidth` pt (by estimate), each tabular also in
    `\\begin{adjustbox}{max width=\\textwidth}` (shrunk only if the estimate was short); one caption and label.
    Needs `\\usepackage{booktabs}` and `\\usepackage{adjustbox}`. See the module doc."""
    groups = split_columns(table, digits, n, textwidth) or [[]]
    lines = [
        "% needs \\usepackage{booktabs} and \\usepackage{adjustbox}",
        "\\begin{table}[tbp]",
        "\\centering",
    ]
    if caption:
        lines.append(f"\\caption{{{latex_escape(caption)}}}")
    if label:
        lines.append(f"\\label{{{label}}}")
    for g, columns in enumerate(groups):
        if g:
            lines.append("\\par\\medskip")
        lines.append("\\begin{adjustbox}{max width=\\textwidth}")
        lines += _latex_tabular(table, columns, digits, n)
        lines.append("\\end{adjustbox}")
    lines.append("\\end{table}")
    return "\n".join(lines) + "\n"


def to_csv(table: Table, n: bool = False) -> str:
    """The table as summary.csv lays it out (`results.table_frame`), unrounded."""
    frame: pd.DataFrame = table_frame(table, n=n)
    return str(frame.to_csv(index=False))


def render(
    table: Table,
    fmt: str = "md",
    digits: int | None = None,
    n: bool = False,
    caption: str | None = None,
    label: str | None = None,
    textwidth: float = TEXTWIDTH_PT,
) -> str:
    if fmt == "md":
        return to_markdown(table, digits, n)
    if fmt == "latex":
        return to_latex(table, digits, n, caption, label, textwidth)
    if fmt == "csv":
        return to_csv(table, n)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
