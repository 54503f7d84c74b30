"""Reading pairs files: CSV/TSV with a header, whitespace `.txt` tables, LFW's `pairs.txt`, and insightface
`.bin` packs (`read_pack_pairs`: the pack's images are written once to a cache folder).

Every problem raises `DataError` naming the file, the line or column, and what was expected.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError, list_some
from .formats.insightface_bin import materialize_cached, read_pack

LINE = "_line"  # the 1-based line of each row in its file, for error messages
TRUE_WORDS = {"1", "true", "yes", "same", "y", "t", "1.0"}
FALSE_WORDS = {"0", "false", "no", "different", "n", "f", "0.0", "diff"}
PACK_SUFFIX = ".bin"  # an insightface validation pack (LFW, CFP-FP, AgeDB-30...), recognized by its suffix
PAIR = "pair"  # a pack table's 0-based pair index: pair i is images 2i and 2i + 1 of the pack


def is_pack(path: Path | str) -> bool:
    """Whether `path` names an insightface `.bin` pack (by its suffix)."""
    return Path(path).suffix.lower() == PACK_SUFFIX


def read_pack_pairs(path: Path, *, trusted: bool, cache_root: Path | None = None) -> tuple[pd.DataFrame, Path, str]:
    """An insightface `.bin` pack as a pairs table, the folder its images were written to, and its sha256.

    The pack is read with the trust rule of `formats.insightface_bin.read_pack` (refused unless `trusted` or
    its sha256 is a known public pack) and its images are written once, by content, to
    `<cache_root>/<sha256[:16]>/` (`materialize_cached`; default root: `$FACEBENCH_PACK_CACHE`, else
    `~/.cache/pytest-facebench/packs`). One row per pair in pack order: `pair` (i), `img1`/`img2` (the file
    names of images 2i and 2i + 1 in that folder), `label` ('1' same / '0' different) and `_line` (i + 1)."""
    pack = read_pack(path, trusted=trusted)
    if pack.n_pairs == 0:
        raise DataError(f"pack {path}: holds no pairs (an empty image list and issame_list)")
    files = materialize_cached(pack, cache_root)
    names = [f.name for f in files]
    table = pd.DataFrame(
        {
            PAIR: [str(i) for i in range(pack.n_pairs)],
            "img1": names[0::2],
            "img2": names[1::2],
            "label": np.where(pack.issame, "1", "0"),
        }
    )
    table[LINE] = np.arange(pack.n_pairs) + 1
    return table, files[0].parent, pack.sha256


def read_pairs(path: Path) -> pd.DataFrame:
    """The pairs table with an extra `_line` column. The format follows the suffix and content."""
    if path.is_dir():
        raise DataError(f"{path}: is a directory; expected a pairs file (CSV, TSV, whitespace .txt or LFW pairs.txt)")
    if not path.is_file():
        raise DataError(f"pairs file not found: {path}")
    if is_pack(path):
        raise DataError(f"{path}: an insightface .bin pack, not a pairs table; read it with read_pack_pairs")
    _require_utf8(path)
    try:
        if path.suffix.lower() == ".txt" and _looks_like_lfw(path):
            table = _read_lfw_pairs(path)
        else:
            sep = {".csv": ",", ".tsv": "\t"}.get(path.suffix.lower(), r"\s+")
            _check_header(path, sep)
            table = pd.read_csv(
                path,
                sep=sep,
                dtype=str,
                keep_default_na=False,
                skipinitialspace=True,
                engine="python" if sep == r"\s+" else "c",
            )
            table.columns = [str(c).strip() for c in table.columns]
            table[LINE] = np.arange(len(table)) + 2
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the pairs file is empty; expected a header line such as 'img1,img2,label'") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: cannot parse the pairs file: {_short(exc)}") from None
    if table.empty:
        raise DataError(f"{path}: the pairs file has a header but no rows")
    return table


def _require_utf8(path: Path) -> None:
    """Name the line and byte of the first byte that is not UTF-8 (pandas names only a chunk offset)."""
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataError(
            f"{path}, line {line}, byte {column}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8"
        ) from None


def _check_header(path: Path, sep: str) -> None:
    """Duplicate column names (pandas would silently rename the second), and a .csv that is really ';'- or
    tab-delimited (it would read as one column)."""
    with path.open(encoding="utf-8") as fh:
        header = fh.readline().rstrip("\r\n")
    names = [n.strip() for n in (header.split() if sep == r"\s+" else header.split(sep))]
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name in seen and name:
            raise DataError(
                f"{path}, line 1: column name '{name}' appears twice (columns {seen[name]} and "
                f"{position}); column names must be unique"
            )
        seen.setdefault(name, position)
    if sep == "," and len(names) == 1:
        for other, word in ((";", "semicolon"), ("\t", "tab")):
            if other in header:
                raise DataError(
                    f"{path}, line 1: the header {header[:80]!r} is {word}-delimited, but a .csv file is "
                    f"read as comma-separated; save it with commas"
                    + (", or rename it to .tsv" if other == "\t" else "")
                )


def found_columns(table: pd.DataFrame) -> str:
    """The file's own column names, for error messages ('a, b, c')."""
    return ", ".join(str(c) for c in table.columns if c != LINE)


def require_columns(table: pd.DataFrame, columns: dict[str, str], path: Path) -> None:
    """Each role's column must exist; the message names what was found."""
    absent = {role: col for role, col in columns.items() if col not in table}
    missing = [f"'{col}' ({role})" if role != col else f"'{col}'" for role, col in absent.items()]
    if missing:
        example = ", ".join(f"{role} = '<your column>'" for role in absent)
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; found columns: {found_columns(table)}. "
            f"Name them in the grid with columns = {{ {example} }}"
        )
    for _role, col in columns.items():
        blank = table[col].astype(str).str.strip() == ""
        if blank.any():
            lines = table.loc[blank, LINE].tolist()
            raise DataError(f"{path}: column '{col}' is empty on line(s) {list_some(lines)}")


def parse_labels(values: pd.Series, lines: pd.Series, path: Path, column: str) -> np.ndarray:
    """0/1, true/false, yes/no, same/different in any case → bool array; anything else is an error."""
    words = values.astype(str).str.strip().str.lower()
    is_true = words.isin(TRUE_WORDS)
    is_false = words.isin(FALSE_WORDS)
    bad = ~(is_true | is_false)
    if bad.any():
        offending = sorted(set(values[bad].astype(str)))
        raise DataError(
            f"{path}: column '{column}' must be binary (0/1, true/false, yes/no, same/different); "
            f"found {list_some([repr(v) for v in offending])} on line(s) {list_some(lines[bad].tolist())}"
        )
    return is_true.to_numpy()


def parse_numbers(values: pd.Series, lines: pd.Series, path: Path, column: str) -> np.ndarray:
    """Finite numbers; anything else (text, blank, NaN, inf) is an error naming the lines."""
    numbers = pd.to_numeric(values.astype(str).str.strip(), errors="coerce")
    bad = ~np.isfinite(numbers.to_numpy(dtype=np.float64))
    if bad.any():
        raise DataError(
            f"{path}: column '{column}' must hold finite numbers; found "
            f"{list_some([repr(v) for v in values[bad]])} on line(s) {list_some(lines[bad].tolist())}"
        )
    return numbers.to_numpy(dtype=np.float64)


def _looks_like_lfw(path: Path) -> bool:
    with path.open(encoding="utf-8") as fh:
        first = fh.readline().split()
    return 1 <= len(first) <= 2 and all(token.isdigit() for token in first)


def _read_lfw_pairs(path: Path) -> pd.DataFrame:
    """LFW `pairs.txt`: a 'sets pairs' header, then 'name i j' (same) or 'name1 i name2 j' (different)
    lines; images are `name/name_0001.jpg`. The set index becomes the `fold` column."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header = [int(x) for x in lines[0].split()]
    per_set = 2 * header[1] if len(header) == 2 else None
    pair_lines = sum(1 for line in lines[1:] if line.strip())
    if per_set is not None and pair_lines != header[0] * per_set:
        raise DataError(
            f"{path}, line 1: the header '{lines[0].strip()}' announces {header[0]} sets of {header[1]} same "
            f"and {header[1]} different pairs ({header[0] * per_set} lines), but the file has {pair_lines} "
            f"pair lines"
        )
    rows: list[dict[str, object]] = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split()
        if not fields:
            continue
        if len(fields) == 3:
            name1, i, name2, j, label = fields[0], fields[1], fields[0], fields[2], 1
        elif len(fields) == 4:
            name1, i, name2, j, label = fields[0], fields[1], fields[2], fields[3], 0
        else:
            raise DataError(f"{path}, line {number}: expected 'name i j' or 'name1 i name2 j', got {line!r}")
        if not (i.isdigit() and j.isdigit()):
            raise DataError(f"{path}, line {number}: image numbers must be integers, got {line!r}")
        fold = (len(rows) // per_set) if per_set else 0
        rows.append(
            {
                "img1": f"{name1}/{name1}_{int(i):04d}.jpg",
                "img2": f"{name2}/{name2}_{int(j):04d}.jpg",
                "label": str(label),
                "id1": name1,
                "id2": name2,
                "fold": str(fold),
                LINE: number,
            }
        )
    return pd.DataFrame(rows)


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    return re.sub(r"\s+", " ", text)
