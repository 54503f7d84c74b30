"""Reading a run folder back: the one `read_results` every reader uses (`table`, `compare`, `report`,
gates, merges), run.json, and the per-cell records. A damaged results.csv is a `ResultsError` naming the
file, the line and what was expected, never a traceback or a silently empty table."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import FacebenchError
from .schema import (
    COMPARISONS_FILE,
    RECORDS_DIR,
    REQUIRED_COLUMNS,
    RESULT_COLUMNS,
    RESULTS_FILE,
    RUN_FILE,
    TEXT_COLUMNS,
    is_record,
)

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("facebench")


class ResultsError(FacebenchError):
    """results.csv or run.json cannot be read as a run folder's file."""


def results_path(where: Path) -> Path:
    where = Path(where)
    return where if where.suffix == ".csv" else where / RESULTS_FILE


def read_results(where: Path, *, normalized: bool = True) -> pd.DataFrame:
    """results.csv of a results dir (or the file itself): text columns as text, floats read back exactly.
    Normalized (default: text '' when missing, value/CI float, `readout` bool) unless `normalized=False`
    (the columns as written). A missing or empty file is an empty table; a damaged one a `ResultsError`."""
    import pandas as pd

    path = results_path(where)
    if not path.is_file() or path.stat().st_size == 0:
        return normalize_results(None) if normalized else pd.DataFrame(columns=RESULT_COLUMNS)
    text = _text(path)
    _check_rows(path, text)
    exact = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}  # 3.x: the default
    try:
        frame = pd.read_csv(io.StringIO(text), dtype={c: str for c in TEXT_COLUMNS}, **exact)
    except (ValueError, pd.errors.ParserError) as exc:
        raise ResultsError(f"{path}: not a results table ({exc})") from None
    _check_values(path, frame)
    return normalize_results(frame) if normalized else frame


def _text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{path}: not a results table (byte {exc.start} is not UTF-8 text)") from None
    except OSError as exc:
        raise ResultsError(f"cannot read {path}: {exc.strerror or exc}") from None
    if "\x00" in text:
        raise ResultsError(f"{path}: not a results table (it holds binary data)")
    return text


def _check_rows(path: Path, text: str) -> None:
    """The header names the required columns, every line has the header's number of fields, and the file
    ends with a complete line (a truncated copy or an interrupted write does not)."""
    rows = csv.reader(io.StringIO(text))
    header = next(rows, [])
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ResultsError(
            f"{path}: line 1: not a results table header: missing column(s) {', '.join(missing)} "
            f"(expected {', '.join(REQUIRED_COLUMNS)}, ...)"
        )
    width = len(header)
    line = 1
    for line, row in enumerate(rows, start=2):
        if row and len(row) != width:
            raise ResultsError(f"{path}: line {line}: expected {width} fields as in the header, found {len(row)}")
    if not text.endswith("\n"):
        raise ResultsError(f"{path}: line {line}: the file ends mid-line (truncated); rerun, or restore it")


def _check_values(path: Path, frame: pd.DataFrame) -> None:
    import pandas as pd

    for column in ("value", "ci_low", "ci_high"):
        if column not in frame:
            continue
        numbers = pd.to_numeric(frame[column], errors="coerce")
        bad = frame[column].notna() & numbers.isna()
        if bad.any():
            row = int(bad.to_numpy().nonzero()[0][0])
            raise ResultsError(
                f"{path}: line {row + 2}, column {column!r}: expected a number, found {frame[column].iloc[row]!r}"
            )
    for column in ("model", "task", "metric"):
        empty = frame[column].isna() | (frame[column].astype(str).str.strip() == "")
        if empty.any():
            row = int(empty.to_numpy().nonzero()[0][0])
            raise ResultsError(f"{path}: line {row + 2}, column {column!r}: empty (every row names its {column})")


def _missing(value: Any) -> bool:
    import pandas as pd

    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _truthy(value: Any) -> bool:
    if _missing(value):
        return False
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    return str(value).strip().lower() in ("true", "1", "1.0", "yes")


def normalize_results(frame: pd.DataFrame | None) -> pd.DataFrame:
    """The results table with stable types, whether it came from memory or from results.csv:
    text columns are str ('' when missing), value/CI columns float, `layer_index` float, `readout` bool."""
    import pandas as pd

    if frame is None or len(frame) == 0:
        frame = pd.DataFrame(columns=RESULT_COLUMNS + ["readout"])
    frame = frame.copy().reset_index(drop=True)
    for column in [*RESULT_COLUMNS, "readout"]:
        if column not in frame:
            frame[column] = None
    for column in TEXT_COLUMNS:
        frame[column] = [("" if _missing(v) else str(v)) for v in frame[column]]
    for column in ("value", "ci_low", "ci_high"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame["layer_index"] = pd.to_numeric(frame["layer_index"], errors="coerce").astype(float)
    frame["readout"] = [_truthy(v) for v in frame["readout"]]
    return frame


def read_run(out_dir: Path) -> dict[str, Any]:
    """run.json of a results dir ({} when absent or unreadable)."""
    try:
        return read_run_strict(out_dir)
    except ResultsError:
        return {}


def read_run_strict(out_dir: Path) -> dict[str, Any]:
    """run.json of a results dir; a missing or unreadable one is a `ResultsError` naming it."""
    path = Path(out_dir) / RUN_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{path} is missing") from None
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{path} is not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ResultsError(f"{path} is not a run.json (expected a JSON object)")
    return data


def read_comparisons(out_dir: Path) -> pd.DataFrame:
    """comparisons.csv of a results dir (empty when absent or unreadable), `diff`/CI columns float."""
    import pandas as pd

    path = Path(out_dir) / COMPARISONS_FILE
    try:
        frame = pd.read_csv(
            path, dtype={c: str for c in ("task", "metric", "condition", "model_a", "model_b", "quantity")}
        )
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return pd.DataFrame(columns=["task", "metric", "condition", "model_a", "model_b", "diff", "ci_low", "ci_high"])
    for column in ("diff", "ci_low", "ci_high", "p_value", "p_holm", "ci_level"):
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame["condition"] = frame["condition"].fillna("").astype(str) if "condition" in frame else ""
    return frame


def read_records(out_dir: Path) -> list[dict[str, Any]]:
    """Every readable per-cell record of a folder (an unreadable one is logged and skipped)."""
    folder = Path(out_dir) / RECORDS_DIR
    records = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("facebench: skipping unreadable record %s (%s)", path, exc)
            continue
        if is_record(record):
            records.append(record)
    return records
