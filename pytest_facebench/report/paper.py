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
- **Cells**: `value [ci_low, ci_high]` with `--digits` decimals (default 3), `--n` appends ` (n=120)`; a
  value with |x| < 1e-9 prints as zero and nothing prints as `-0.000`; NaN prints as `–` (LaTeX `--`), a
  cell the row does not have is blank.
- **Markdown**: a pipe table, columns padded to equal width.
- **LaTeX**: a booktabs `tabular` (`\\toprule`, `\\midrule`, `\\bottomrule`; a `\\midrule` also before the
  reference rows), `_ % & # $ { } ~ ^ \\` escaped. In each column the best model value is `\\textbf{}`:
  higher: the largest, lower: the smallest, target: the closest to its target (the `target` column, else
  the human value); no bold for metrics without a better side, for target metrics without a target, or
  with fewer than two values. Ties at the printed precision (of the value; for target metrics, of its
  distance to the target) are all bold.
- **CSV**: machine-readable, the same frame summary.csv holds (`results.table_frame`): `model`, `layer`,
  then per column `<key>`, `<key> [ci_low]`, `<key> [ci_high]` (with `--n` also `<key> [n]`, with
  `--layer best` also `<key> [layer]` and no `layer` column), unrounded. summary.csv is exactly
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
- **Cells**: percentages with `--digits 2` by default, as face-recognition papers print them:
  `99.38 [99.10, 99.60]`, the CI in brackets; LaTeX bolds the best model per column (higher is better;
  published values never).
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
from dataclasses import replace
from pathlib import Path

import pandas as pd

from ..metrics import badness
from ..results import Table, TableCell, TableColumn, table_frame

FORMATS = ("md", "latex", "csv")
NAN_TEXT = "–"
DELTA = "Δ"  # a published value's cell: `99.83 (Δ -0.06)`, Δ = reproduced − published (LaTeX: `$\Delta$`)
ZERO = 1e-9
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
}


def format_number(value: float | None, digits: int = 3, nan: str = NAN_TEXT) -> str:
    """`digits` decimals; |x| < 1e-9 and anything that rounds to zero print without a sign; NaN as `nan`."""
    if value is None or not math.isfinite(value):
        return nan
    if abs(value) < ZERO:
        value = 0.0
    text = f"{value:.{digits}f}"
    if text.startswith("-") and float(text) == 0:
        text = text[1:]
    return text


def format_cell(
    cell: TableCell | None,
    digits: int = 3,
    n: bool = False,
    layer: bool = False,
    nan: str = NAN_TEXT,
) -> str:
    """`0.783 [0.709, 0.875]`, plus ` (n=120)` with `n` and ` @ layer` with `layer`; `nan` alone for a NaN
    value; blank without a cell."""
    if cell is None:
        return ""
    if not math.isfinite(cell.value):
        return nan
    text = format_number(cell.value, digits, nan)
    if math.isfinite(cell.ci_low) or math.isfinite(cell.ci_high):
        text += f" [{format_number(cell.ci_low, digits, nan)}, {format_number(cell.ci_high, digits, nan)}]"
    if n and cell.n is not None:
        text += f" (n={cell.n})"
    if layer and cell.layer:
        text += f" @ {cell.layer}"
    if cell.delta is not None:
        text += f" ({DELTA} {format_delta(cell.delta, digits, nan)})"
    return text


def format_delta(delta: float, digits: int = 3, nan: str = NAN_TEXT) -> str:
    """A difference with its sign: `+0.12`, `-0.06`, and `0.00` when it rounds to zero."""
    text = format_number(delta, digits, nan)
    return text if text.startswith("-") or text == nan or float(text) == 0 else "+" + text


def best_rows(table: Table, column: TableColumn, digits: int = 3) -> set[int]:
    """Indices (into `table.rows`) of the model rows with the best value of `column` by the metric's direction;
    empty when the metric has no better side (or a target metric no target) or fewer than two values."""
    scored = {}
    for i, row in enumerate(table.rows):
        cell = row.cells.get(column.key)
        if row.reference or cell is None or not math.isfinite(cell.value):
            continue
        bad = badness(column.metric, cell.value, cell.target)
        if bad is not None:
            scored[i] = bad
    if len(scored) < 2:
        return set()
    best = format_number(min(scored.values()), digits)
    return {i for i, bad in scored.items() if format_number(bad, digits) == best}


def _header(table: Table) -> list[str]:
    return ["model"] + (["layer"] if table.has_layer_column else []) + [c.title for c in table.columns]


def _lead(table: Table, label: str, layer: str) -> list[str]:
    return [label] + ([layer] if table.has_layer_column else [])


def to_markdown(table: Table, digits: int = 3, n: bool = False) -> str:
    """A pipe table, columns padded to equal width (`|` in names escaped)."""
    best = table.layer == "best"
    lines = [_header(table)]
    for row in table.rows:
        cells = [format_cell(row.cells.get(c.key), digits, n, best and not row.reference) for c in table.columns]
        lines.append(_lead(table, row.label, row.layer) + cells)
    lines = [[text.replace("|", "\\|") for text in line] for line in lines]
    widths = [max(3, *(len(line[i]) for line in lines)) for i in range(len(lines[0]))]

    def pipe(line: list[str]) -> str:
        return "| " + " | ".join(text.ljust(w) for text, w in zip(line, widths)) + " |"

    rule = "| " + " | ".join("-" * w for w in widths) + " |"
    return "\n".join([pipe(lines[0]), rule, *(pipe(line) for line in lines[1:])]) + "\n"


def latex_escape(text: str) -> str:
    return "".join(LATEX_ESCAPES.get(char, char) for char in text)


def to_latex(table: Table, digits: int = 3, n: bool = False) -> str:
    """A booktabs tabular; the best model value per column in `\\textbf{}` (see the module doc)."""
    best_layer = table.layer == "best"
    bold = {c.key: best_rows(table, c, digits) for c in table.columns}
    lead = 2 if table.has_layer_column else 1
    lines = [
        f"\\begin{{tabular}}{{{'l' * lead}{'c' * len(table.columns)}}}",
        "\\toprule",
        " & ".join(latex_escape(text) for text in _header(table)) + " \\\\",
        "\\midrule",
    ]
    previous_reference = False
    for i, row in enumerate(table.rows):
        below = row.reference and not row.published  # the rows below the models (a model's published ones follow it)
        if below and not previous_reference and i > 0:
            lines.append("\\midrule")
        previous_reference = below
        cells = []
        for column in table.columns:
            cell = row.cells.get(column.key)
            shown = None if cell is None else replace(cell, delta=None)
            text = latex_escape(format_cell(shown, digits, n, best_layer and not row.reference, nan="--"))
            if cell is not None and cell.delta is not None:
                text += f" ($\\Delta$ {format_delta(cell.delta, digits, '--')})"
            if cell is not None and i in bold[column.key]:
                value = latex_escape(format_number(cell.value, digits, "--"))
                text = f"\\textbf{{{value}}}" + text[len(value) :]
            cells.append(text)
        lines.append(" & ".join([latex_escape(t) for t in _lead(table, row.label, row.layer)] + cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def to_csv(table: Table, n: bool = False) -> str:
    """The table as summary.csv lays it out (`results.table_frame`), unrounded."""
    frame: pd.DataFrame = table_frame(table, n=n)
    return str(frame.to_csv(index=False))


def read_results_csv(path: Path) -> pd.DataFrame:
    """results.csv as written (text columns as text; floats read back exactly, so the CSV format reproduces
    summary.csv)."""
    from .data import TEXT_COLUMNS

    if path.stat().st_size == 0:
        return pd.DataFrame()
    exact = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}  # 3.x: the default
    return pd.read_csv(path, dtype={c: str for c in TEXT_COLUMNS}, **exact)


def render(table: Table, fmt: str = "md", digits: int = 3, n: bool = False) -> str:
    if fmt == "md":
        return to_markdown(table, digits, n)
    if fmt == "latex":
        return to_latex(table, digits, n)
    if fmt == "csv":
        return to_csv(table, n)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
